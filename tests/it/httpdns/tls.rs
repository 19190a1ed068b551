//! HTTPDNS and DoH over TLS as outside clients use them: curl over HTTP/2 and HTTP/1.1 with
//! TLS 1.3, kdig +https, curl --doh-url; and certificates reloaded without a restart.

use std::process::Command;

use crate::support::{Node, have_tool, repo_root, write_file};

/// curl over TLS 1.3 with HTTP/2 and HTTP/1.1, kdig +https, and curl resolving through DoH.
#[test]
fn curl_and_kdig_over_tls() {
    if !have_tool("curl") || !have_tool("kdig") {
        return;
    }
    let node = Node::start(&[
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let tls = node.httpdns_tls.unwrap();
    let cert = node
        .certificate
        .clone()
        .expect("a self-signed certificate path");
    let url = format!("https://localhost:{}/d?dn=www.example.test", tls.port());
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = Command::new("curl")
            .args(["-sS", "--tlsv1.3", flag, "--cacert", cert.to_str().unwrap()])
            .args(["-w", "\n%{http_version} %{ssl_verify_result}", &url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text,
            format!("127.0.10.1\n{version} 0"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let out = Command::new("kdig")
        .args([
            "@127.0.0.1",
            "-p",
            &tls.port().to_string(),
            "+https",
            "+tls-hostname=localhost",
        ])
        .arg(format!("+tls-ca={}", cert.display()))
        .arg("api.example.test")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("status: NOERROR") && text.contains("127.0.10.2"),
        "{text}"
    );

    // curl resolves ns1.example.test (127.0.0.1) through edgenode's DoH, then fetches /healthz.
    let admin = node.admin.unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--doh-url",
            &format!("https://localhost:{}/dns-query", tls.port()),
        ])
        .args(["--cacert", cert.to_str().unwrap()])
        .arg(format!("http://ns1.example.test:{}/healthz", admin.port()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a new self-signed certificate for localhost to `localhost.pem` / `localhost.key`.
fn new_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key, _) = crate::support::certificate(dir, "localhost", &["localhost"]);
    (cert, key)
}

fn curl_status(tls: std::net::SocketAddr, ca: &std::path::Path) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            ca.to_str().unwrap(),
        ])
        .arg(format!(
            "https://localhost:{}/d?dn=www.example.test",
            tls.port()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Certificate files reload with the zones; a broken pair keeps the old one serving.
#[tokio::test]
async fn certificates_reload_without_a_restart() {
    if !have_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = new_certificate(dir.path());
    let first = dir.path().join("first-ca.pem");
    std::fs::copy(&cert, &first).unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        repo_root().join("zones").display(),
        cert.display(),
        key.display()
    );
    let config = write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    let tls = node.httpdns_tls.unwrap();
    assert!(
        node.certificate.is_none(),
        "configured certificates are not self-signed"
    );
    assert_eq!(curl_status(tls, &first), "200");

    new_certificate(dir.path());
    let (status, body) = crate::dns::http(node.admin.unwrap(), "POST", "/admin/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        curl_status(tls, &cert),
        "200",
        "the new certificate is served"
    );
    assert_eq!(curl_status(tls, &first), "000", "the old one is gone");

    write_file(dir.path(), "localhost.key", "garbage\n");
    let (status, body) = crate::dns::http(node.admin.unwrap(), "POST", "/admin/reload", None).await;
    assert_eq!(status, 422);
    assert!(body.contains("localhost.key"), "{body}");
    assert_eq!(
        curl_status(tls, &cert),
        "200",
        "a broken pair changes nothing"
    );
}
