//! The proxy with https origins: the counting test origin of `proxy.rs` over TLS on
//! 127.0.0.1:0, with an rcgen certificate trusted through `proxy.origin_ca` (or not).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::origin::{Origin, cache_status, get};
use crate::support::{Node, certificate, edgenode, repo_root, write_file};

/// The test origin over TLS with a certificate for `names`; returns it and the certificate.
async fn tls_origin(dir: &Path, names: &[&str]) -> (Origin, PathBuf) {
    let (cert, key, _) = certificate(dir, "origin", names);
    let chain = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    (Origin::start_tls(acceptor).await, cert)
}

/// A config file in `dir` serving the repository's zones with `proxy` (TOML lines) in `[proxy]`.
fn config(dir: &Path, proxy: &str) -> PathBuf {
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\n{proxy}",
        repo_root().join("zones").display()
    );
    write_file(dir, "edgenode.toml", &text)
}

#[tokio::test]
async fn an_https_origin_with_its_ca_fills_the_cache_over_pooled_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, ca) = tls_origin(dir.path(), &["127.0.0.1", "localhost"]).await;
    let proxy = format!(
        "origin = \"{}\"\norigin_ca = \"{}\"\n\
         [[proxy.hosts]]\nhost = \"shop.example.test\"\norigins = [\"{}\"]\n",
        origin.url(),
        ca.display(),
        origin.url()
    );
    let node = Node::with_config(&config(dir.path(), &proxy));

    let (status, headers, body) = get(&node, "/cached", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /cached"));
    assert_eq!(cache_status(&headers), "edgenode; fwd=miss; stored");
    let (status, headers, body) = get(&node, "/cached", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /cached"));
    assert_eq!(cache_status(&headers), "edgenode; hit");
    assert_eq!(origin.count("/cached"), 1);

    // A [[proxy.hosts]] origin, and more misses: the TLS connection is pooled and reused.
    let shop = [("host", "shop.example.test")];
    let (status, headers, _) = get(&node, "/cached", &shop).await;
    assert_eq!(status, 200);
    assert_eq!(cache_status(&headers), "edgenode; fwd=miss; stored");
    for path in ["/etag", "/tagged", "/vary", "/private"] {
        assert_eq!(get(&node, path, &[]).await.0, 200, "{path}");
    }
    assert_eq!(origin.count("/cached"), 2);
    assert!(
        origin.connections() <= 2,
        "6 origin requests took {} TLS connections",
        origin.connections()
    );
}

/// Without `origin_ca` the rcgen certificate is not trusted: 502 at once, never a hang, and
/// the failures count against the origin's circuit like any other.
#[tokio::test]
async fn an_untrusted_origin_certificate_is_a_prompt_502() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, _) = tls_origin(dir.path(), &["127.0.0.1", "localhost"]).await;
    let proxy = format!(
        "origin = \"{}\"\nretries = 0\nbreaker_failures = 2\nbreaker_open_secs = 60\n",
        origin.url()
    );
    let node = Node::with_config(&config(dir.path(), &proxy));
    let started = Instant::now();
    for _ in 0..2 {
        let (status, _, body) = get(&node, "/cached", &[]).await;
        assert_eq!(status, 502, "{body}");
        assert!(!body.contains("circuit"), "{body}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let (status, _, body) = get(&node, "/cached", &[]).await;
    assert_eq!(status, 503);
    assert!(body.contains("circuit is open"), "{body}");
    assert_eq!(
        (origin.connections(), origin.count("/cached")),
        (0, 0),
        "no handshake completed"
    );
}

/// The certificate is checked against the host in the origin's URL: a trusted certificate for
/// another name does not do for https://127.0.0.1:PORT.
#[tokio::test]
async fn the_origin_certificate_must_be_valid_for_the_url_host() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, ca) = tls_origin(dir.path(), &["origin.example.test"]).await;
    let proxy = format!(
        "origin = \"{}\"\norigin_ca = \"{}\"\nretries = 0\n",
        origin.url(),
        ca.display()
    );
    let node = Node::with_config(&config(dir.path(), &proxy));
    let (status, _, body) = get(&node, "/cached", &[("host", "origin.example.test")]).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(origin.connections(), 0);
}

/// An origin that accepts TCP but never answers the TLS handshake: the first-byte timeout
/// covers the handshake (504), as it covers a slow response.
#[tokio::test]
async fn a_stalled_tls_handshake_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let proxy = format!("origin = \"https://{addr}\"\nfirst_byte_timeout_ms = 300\nretries = 0\n");
    let node = Node::with_config(&config(dir.path(), &proxy));
    let started = Instant::now();
    let (status, _, body) = get(&node, "/cached", &[]).await;
    assert_eq!(status, 504, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

/// A missing or unreadable `proxy.origin_ca` stops `serve` and fails `check`, naming the key
/// and the file.
#[test]
fn a_bad_origin_ca_is_a_startup_error_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let text = format!(
        "origin = \"https://127.0.0.1:9\"\norigin_ca = \"{}\"\n",
        missing.display()
    );
    let config = config(dir.path(), &text);
    let config = config.to_str().unwrap();
    let (ok, _, stderr) = edgenode(&["check", "--config", config]);
    assert!(!ok);
    assert!(
        stderr.contains("proxy.origin_ca: ") && stderr.contains("missing-ca.pem"),
        "{stderr}"
    );

    let mut serve = Command::new(env!("CARGO_BIN_EXE_edgenode"))
        .args(["serve", "--config", config])
        .args([
            "--dns-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = serve.kill();
            panic!("serve started despite a missing origin_ca");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = serve.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success());
    assert!(
        stderr.contains("proxy.origin_ca: ") && stderr.contains("missing-ca.pem"),
        "{stderr}"
    );

    write_file(dir.path(), "missing-ca.pem", "not a certificate\n");
    let (ok, _, stderr) = edgenode(&["check", "--config", config]);
    assert!(!ok);
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
}
