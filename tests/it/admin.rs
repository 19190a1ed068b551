//! The admin API against a web page in a browser on the node (issue 18 finding 6): DNS
//! rebinding (a `Host` that is not the node's) and cross-site requests (`Origin`,
//! `Sec-Fetch-Site`) are refused; the API's own clients get through.

use crate::support::{Node, http_request};

fn start() -> Node {
    Node::start(&[
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ])
}

#[tokio::test]
async fn a_rebound_name_or_a_cross_site_page_cannot_use_the_admin_api() {
    let node = start();
    let admin = node.admin.unwrap();
    let post = |headers: &'static [(&'static str, &'static str)]| {
        http_request(
            admin,
            "POST",
            "/admin/purge?url=http://a.test/x",
            headers,
            Vec::new(),
        )
    };
    // What a rebinding attack looks like: the attacker's own name.
    let (status, _, body) = post(&[("host", "evil.test:9153")]).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // A page on another site posting to http://127.0.0.1:9153 (no rebinding needed).
    let (status, _, _) = post(&[("origin", "http://evil.test")]).await;
    assert_eq!(status, 403);
    let (status, _, _) = post(&[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(status, 403);
    // curl and edgenode's own commands: an IP literal or localhost, no Origin.
    let (status, _, _) = post(&[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = post(&[("host", "localhost:9153")]).await;
    assert_eq!(status, 200);
    // Reading metrics and health is not affected (Prometheus may scrape by name).
    let (status, _, _) = http_request(
        admin,
        "GET",
        "/metrics",
        &[("host", "node1.internal")],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);
}

#[test]
fn a_weak_token_beyond_loopback_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::write_file(
        dir.path(),
        "edgenode.toml",
        "[admin]\nlisten = \"192.0.2.1:9153\"\ntoken = \"change-me\"\n",
    );
    let (ok, _, stderr) =
        crate::support::edgenode(&["check", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("admin.token") && stderr.contains("too weak"),
        "{stderr}"
    );
}
