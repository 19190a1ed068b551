//! The node with MaxMind's own test databases and with corrupt ones (from ../shared/geoip).

use std::process::Command;

use crate::support::{Node, dig, have_tool, repo_root, shared_geoip};

/// The README example: MaxMind's test country DB puts 175.16.199.0/24 in Asia and
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
