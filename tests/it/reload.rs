//! Reload (POST /admin/reload and SIGHUP) and the `check` / `geoip` commands, as a user runs them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};

use crate::dns::{http, http_get};
use crate::support::{Node, ask, dns_client, edgenode, query, repo_root, write_file};

fn copy_zones(to: &Path) {
    for name in ["example.test.zone", "example.test.geo.toml"] {
        std::fs::copy(repo_root().join("zones").join(name), to.join(name)).unwrap();
    }
}

async fn api_address(node: &Node) -> String {
    let udp = dns_client(node.dns(), false).await;
    let r = ask(&udp, query("api.example.test.", RecordType::A, Some(1232))).await;
    match r.answers.first().map(|a| &a.data) {
        Some(RData::A(a)) => a.0.to_string(),
        other => format!("{other:?}"),
    }
}

fn edit_zone(dir: &Path, from: &str, to: &str) {
    let path = dir.join("example.test.zone");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from));
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

#[tokio::test]
async fn reload_swaps_good_state_and_keeps_serving_on_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    copy_zones(dir.path());
    let zones = dir.path().to_str().unwrap();
    let node = Node::with_zones(zones);
    let admin = node.admin.unwrap();
    assert_eq!(api_address(&node).await, "127.0.10.2");

    edit_zone(dir.path(), "127.0.10.2", "127.0.10.3");
    let (status, body) = http(admin, "POST", "/admin/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    assert_eq!(api_address(&node).await, "127.0.10.3");

    // A broken zone file: the reload fails with the file and line, the old zone keeps serving.
    edit_zone(
        dir.path(),
        "api         IN A    127.0.10.3",
        "api         IN A    127.0.10.999",
    );
    let (status, body) = http(admin, "POST", "/admin/reload", None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("example.test.zone:32:"), "{body}");
    assert_eq!(api_address(&node).await, "127.0.10.3");

    // A broken policy file is refused the same way.
    edit_zone(dir.path(), "127.0.10.999", "127.0.10.4");
    write_file(
        dir.path(),
        "example.test.geo.toml",
        "[[rrset]]\nname = \"www\"\ntype = \"A\"\ncontinent = { XX = [\"127.0.0.9\"] }\n",
    );
    let (status, body) = http(admin, "POST", "/admin/reload", None).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("example.test.geo.toml:1: rrset www A: continent.XX"),
        "{body}"
    );
    assert_eq!(api_address(&node).await, "127.0.10.3");

    // SIGHUP reloads too, once the files are good again.
    copy_zones(dir.path());
    edit_zone(dir.path(), "127.0.10.2", "127.0.10.5");
    let kill = Command::new("kill")
        .args(["-HUP", &node.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while api_address(&node).await != "127.0.10.5" {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let metrics = http_get(admin, "/metrics").await;
    assert!(
        metrics.contains("edgenode_reloads_total{result=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgenode_reloads_total{result=\"failed\"} 2"),
        "{metrics}"
    );
    assert_eq!(http(admin, "GET", "/admin/reload", None).await.0, 405);
    assert_eq!(
        http(admin, "GET", "/healthz", None).await,
        (200, "ok\n".to_string())
    );
}

#[tokio::test]
async fn admin_token_is_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "edgenode.toml",
        &format!(
            "[dns]\nzones = \"{}\"\n[admin]\ntoken = \"s3cret\"\n",
            repo_root().join("zones").display()
        ),
    );
    let node = Node::with_config(&config);
    let admin = node.admin.unwrap();
    assert_eq!(http(admin, "POST", "/admin/reload", None).await.0, 401);
    assert_eq!(
        http(admin, "POST", "/admin/reload", Some("wrong")).await.0,
        401
    );
    assert_eq!(
        http(admin, "POST", "/admin/reload", Some("s3cret")).await.0,
        200
    );
}

#[test]
fn check_passes_on_the_shipped_files_and_lists_every_problem() {
    let (ok, stdout, stderr) = edgenode(&["check"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("zone example.test.: ok"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "a.test.zone",
        "$ORIGIN a.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 127.0.0.1\nbad A 1.2.3\n",
    );
    write_file(
        dir.path(),
        "b.test.zone",
        "$ORIGIN b.test.\n$TTL 60\n@ NS ns\nx CNAME y\nx A 127.0.0.1\n",
    );
    write_file(dir.path(), "c.test.geo.toml", "[[rrset]]\nname = \"www\"\n");
    let config = write_file(
        dir.path(),
        "bad.toml",
        "[dns]\nedns_payload = 99\n[geoip]\nfiles = [\"missing.mmdb\"]\n",
    );
    let (ok, _, stderr) = edgenode(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--zones",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    for expected in [
        "dns.edns_payload: 99 is outside",
        "a.test.zone:6:",
        "b.test.zone: b.test.: no SOA record",
        "x.b.test.: CNAME and other data",
        "c.test.geo.toml",
        "missing.mmdb",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from:\n{stderr}"
        );
    }
}

#[test]
fn geoip_build_then_lookup_shows_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_file(
        dir.path(),
        "in.csv",
        "# network,country,continent,asn\n175.16.199.0/24,CN,AS,4134\n",
    );
    let mmdb = dir.path().join("out.mmdb");
    let (ok, stdout, stderr) = edgenode(&[
        "geoip",
        "build",
        csv.to_str().unwrap(),
        "-o",
        mmdb.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    let (ok, stdout, _) = edgenode(&[
        "geoip",
        "lookup",
        "175.16.199.7",
        "--geoip",
        mmdb.to_str().unwrap(),
    ]);
    assert!(ok);
    for expected in [
        "country    CN",
        "continent  AS",
        "asn        4134",
        "override   -",
        "prefix     /24",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    // The embedded overrides name the loopback regions.
    let (_, stdout, _) = edgenode(&["geoip", "lookup", "127.0.2.9"]);
    assert!(
        stdout.contains("override   loopback-north-america"),
        "{stdout}"
    );

    let bad = write_file(
        dir.path(),
        "bad.csv",
        "10.0.0/8,CN,AS\n1.0.0.0/8,CHINA,AS\n",
    );
    let (ok, _, stderr) = edgenode(&[
        "geoip",
        "build",
        bad.to_str().unwrap(),
        "-o",
        mmdb.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("bad.csv:1:") && stderr.contains("bad.csv:2:"),
        "{stderr}"
    );
}

#[test]
fn check_reports_a_broken_tls_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_file(dir.path(), "cert.pem", "not a certificate\n");
    let key = write_file(dir.path(), "key.pem", "not a key\n");
    let text = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let config = write_file(dir.path(), "edgenode.toml", &text);
    let (ok, _, stderr) = edgenode(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--zones",
        "zones",
    ]);
    assert!(!ok);
    assert!(stderr.contains("cert.pem: no PEM certificate"), "{stderr}");
}
