//! The node with MaxMind's own test databases and with corrupt ones (from ../shared/geoip), and
//! a GeoIP file broken between two reloads.

use std::path::Path;
use std::process::Command;

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};

use crate::dns::http;
use crate::support::{
    Node, ask, dig, dns_client, edgenode, have_tool, query_from_subnet, repo_root, shared_geoip,
    write_file,
};

/// The example of docs/dns.md: MaxMind's test country DB puts 175.16.199.0/24 in Asia and
/// 216.160.83.56/29 in North America.
#[test]
fn maxmind_test_database_steers_by_client_subnet() {
    let Some(geoip) = shared_geoip() else { return };
    if !have_tool("dig") {
        return;
    }
    let country = geoip.join("maxmind-test/GeoIP2-Country-Test.mmdb");
    let asn = geoip.join("maxmind-test/GeoLite2-ASN-Test.mmdb");
    let node = Node::start(&[
        "--geoip",
        country.to_str().unwrap(),
        "--geoip",
        asn.to_str().unwrap(),
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let cn = dig(node.dns(), &["www.example.test", "+subnet=175.16.199.0/24"]);
    assert!(cn.contains("127.0.1.10"), "{cn}");
    assert!(cn.contains("CLIENT-SUBNET: 175.16.199.0/24/24"), "{cn}");
    let us = dig(
        node.dns(),
        &["www.example.test", "+subnet=216.160.83.56/29", "+short"],
    );
    assert_eq!(us.trim(), "127.0.2.10");
    let gb = dig(
        node.dns(),
        &["www.example.test", "+subnet=81.2.69.160/27", "+short"],
    );
    assert_eq!(gb.trim(), "127.0.3.10");
}

/// Every corrupt database is refused with its path, by `check` and at start; none panics.
#[test]
fn corrupt_databases_are_refused_with_their_path() {
    let Some(geoip) = shared_geoip() else { return };
    let bad = geoip.join("maxmind-bad");
    let must_reject = std::fs::read_to_string(bad.join("MUST-REJECT.txt")).unwrap();
    for name in must_reject.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = bad.join(name);
        for command in ["check", "serve"] {
            let out = Command::new(env!("CARGO_BIN_EXE_edgenode"))
                .args([
                    command,
                    "--geoip",
                    path.to_str().unwrap(),
                    "--dns-listen",
                    "127.0.0.1:0",
                ])
                .args(["--admin-listen", "127.0.0.1:0"])
                .current_dir(repo_root())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{command} {name}: {stderr}");
            assert!(stderr.contains(name), "{command} {name}: {stderr}");
            assert!(!stderr.contains("panicked"), "{command} {name}: {stderr}");
        }
    }
}

/// `edgenode geoip build` from one CSV line: `network,country,continent`.
fn build_mmdb(dir: &Path, line: &str, out: &Path) {
    let csv = write_file(
        dir,
        "geo.csv",
        &format!("network,country,continent,asn\n{line}\n"),
    );
    let (ok, stdout, stderr) = edgenode(&[
        "geoip",
        "build",
        csv.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}{stderr}");
}

/// A GeoIP file replaced by a broken one: the reload fails naming the file, the old database
/// keeps deciding (cached answers included); a good file afterwards is taken at once.
#[tokio::test]
async fn a_reload_with_a_broken_database_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let mmdb = dir.path().join("geo.mmdb");
    build_mmdb(dir.path(), "175.16.199.0/24,CN,AS", &mmdb);
    let node = Node::with_geoip(&mmdb);
    let admin = node.admin.unwrap();
    let udp = dns_client(node.dns(), false).await;
    let www_for_subnet =
        || query_from_subnet("www.example.test.", RecordType::A, "175.16.199.0", 24);
    let first_a = |m: &Message| match m.answers.first().map(|a| &a.data) {
        Some(RData::A(a)) => a.0.to_string(),
        other => format!("{other:?}"),
    };
    assert_eq!(first_a(&ask(&udp, www_for_subnet()).await), "127.0.1.10");

    // Truncated to half, then a file of garbage, then (when ../shared is there) every database
    // that must be rejected.
    let good = std::fs::read(&mmdb).unwrap();
    let mut broken = vec![good[..good.len() / 2].to_vec(), b"not a database".to_vec()];
    match shared_geoip() {
        Some(geoip) => {
            let bad = geoip.join("maxmind-bad");
            let list = std::fs::read_to_string(bad.join("MUST-REJECT.txt")).unwrap();
            for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
                broken.push(std::fs::read(bad.join(name)).unwrap());
            }
        }
        None => println!("../shared/geoip absent: only the project's own broken files"),
    }
    for (i, bytes) in broken.iter().enumerate() {
        std::fs::write(&mmdb, bytes).unwrap();
        let (status, body) = http(admin, "POST", "/admin/reload", None).await;
        assert_eq!(status, 422, "broken file {i}: {body}");
        assert!(body.contains("geo.mmdb"), "broken file {i}: {body}");
        assert_eq!(
            first_a(&ask(&udp, www_for_subnet()).await),
            "127.0.1.10",
            "broken file {i}"
        );
    }

    // A good database that moves the subnet to Europe is used at once.
    build_mmdb(dir.path(), "175.16.199.0/24,DE,EU", &mmdb);
    let (status, body) = http(admin, "POST", "/admin/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(first_a(&ask(&udp, www_for_subnet()).await), "127.0.3.10");
}
