//! The HTTPS listeners as a TLS client sees them: the certificate chosen by SNI, certificates
//! reloaded all together, and the TLS versions offered.

use std::net::SocketAddr;
use std::path::Path;

use rustls::{ProtocolVersion, SupportedProtocolVersion};

use crate::dns::http;
use crate::support::{Node, certificate, have_tool, tls_handshake, write_file};

const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// `serve` with the repository's zones and `tls` (TOML) in its config file in `dir`.
fn start(dir: &Path, tls: &str) -> Node {
    Node::with_zones_and(dir, tls)
}

/// The DER of the certificate `listener` serves for `server_name`.
async fn served(listener: SocketAddr, server_name: &str) -> Vec<u8> {
    match tls_handshake(listener, server_name, TLS13_ONLY).await {
        Ok(handshake) => handshake.certificate,
        Err(e) => panic!("handshake with {listener} for {server_name}: {e}"),
    }
}

/// `[[tls.certificates]]` for a pair, with `names` when given.
fn entry(cert: &Path, key: &Path, names: Option<&str>) -> String {
    let names = names.map(|n| format!("names = {n}\n")).unwrap_or_default();
    format!(
        "[[tls.certificates]]\ncert = \"{}\"\nkey = \"{}\"\n{names}",
        cert.display(),
        key.display()
    )
}

#[tokio::test]
async fn sni_picks_the_certificate_and_unknown_names_get_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let (d_cert, d_key, default) = certificate(dir.path(), "default", &["default.test"]);
    let (a_cert, a_key, a) = certificate(dir.path(), "a", &["a.test"]);
    let (b_cert, b_key, b) = certificate(dir.path(), "b", &["b.test", "*.b.test"]);
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n{}{}",
        d_cert.display(),
        d_key.display(),
        entry(&a_cert, &a_key, None),
        entry(&b_cert, &b_key, Some("[\"b.test\", \"*.b.test\"]")),
    );
    let node = start(dir.path(), &tls);
    let cases = [
        ("a.test", &a, "the certificate's own name"),
        ("A.Test", &a, "names are case-insensitive"),
        ("b.test", &b, "a listed name"),
        ("www.b.test", &b, "a listed wildcard"),
        ("www.a.test", &default, "no wildcard for a.test"),
        ("c.test", &default, "an unknown name"),
        ("127.0.0.1", &default, "no SNI at all"),
    ];
    // One certificate set serves both HTTPS listeners.
    for listener in [node.https.unwrap(), node.httpdns_tls.unwrap()] {
        for (name, expected, why) in cases {
            assert!(
                served(listener, name).await == *expected,
                "{name} on {listener}: {why}"
            );
        }
    }

    // A verifying client: curl trusts a.test's certificate alone and asks for a.test.
    if have_tool("curl") {
        let port = node.httpdns_tls.unwrap().port();
        let out = std::process::Command::new("curl")
            .args(["-sS", "--resolve", &format!("a.test:{port}:127.0.0.1")])
            .args(["--cacert", a_cert.to_str().unwrap()])
            .arg(format!("https://a.test:{port}/d?dn=www.example.test"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "127.0.10.1",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One broken pair fails the reload and keeps every old certificate, even the ones whose new
/// files were fine; once it is fixed, all of them change at once.
#[tokio::test]
async fn a_reload_with_one_broken_key_keeps_every_old_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, a_key, old_a) = certificate(dir.path(), "a", &["a.test"]);
    let (b_cert, b_key, old_b) = certificate(dir.path(), "b", &["b.test"]);
    let tls = entry(&a_cert, &a_key, None) + &entry(&b_cert, &b_key, None);
    let node = start(dir.path(), &tls);
    let (https, admin) = (node.https.unwrap(), node.admin.unwrap());
    assert!(served(https, "b.test").await == old_b);
    assert!(
        served(https, "other.test").await == old_a,
        "without tls.cert the first entry is the default"
    );

    let (_, _, new_a) = certificate(dir.path(), "a", &["a.test"]);
    write_file(dir.path(), "b.key", "garbage\n");
    let (status, body) = http(admin, "POST", "/admin/reload", None).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("tls.certificates[1].key") && body.contains("b.key"),
        "{body}"
    );
    assert!(
        served(https, "a.test").await == old_a,
        "a.test's new pair is not used"
    );
    assert!(served(https, "b.test").await == old_b);

    let (_, _, new_b) = certificate(dir.path(), "b", &["b.test"]);
    let (status, body) = http(admin, "POST", "/admin/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(served(https, "a.test").await == new_a);
    assert!(served(https, "b.test").await == new_b);
}

/// The proxy's HTTPS listener: TLS 1.3 only by default, TLS 1.2 too with min_version = "1.2".
#[tokio::test]
async fn tls_1_2_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let strict = start(dir.path(), "");
    let https = strict.https.unwrap();
    let refused = tls_handshake(https, "localhost", TLS12_ONLY).await;
    assert!(refused.is_err(), "a TLS 1.2 client is refused by default");
    let accepted = tls_handshake(https, "localhost", TLS13_ONLY).await.unwrap();
    assert_eq!(accepted.version, ProtocolVersion::TLSv1_3);

    let dir = tempfile::tempdir().unwrap();
    let lenient = start(dir.path(), "[tls]\nmin_version = \"1.2\"\n");
    let https = lenient.https.unwrap();
    let accepted = tls_handshake(https, "localhost", TLS12_ONLY).await.unwrap();
    assert_eq!(accepted.version, ProtocolVersion::TLSv1_2);
    let both = rustls::ALL_VERSIONS;
    let preferred = tls_handshake(https, "localhost", both).await.unwrap();
    assert_eq!(
        preferred.version,
        ProtocolVersion::TLSv1_3,
        "1.3 when the client offers it"
    );
}

/// TLS 1.3 session resumption by stateless tickets: a client that comes back resumes, also
/// after many more clients than a session cache would hold (rustls keeps 256 by default).
#[tokio::test]
async fn returning_clients_resume_their_sessions() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "");
    let listener = node.https.unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = || {
        let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(TLS13_ONLY)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::support::AnyCertificate(Arc::clone(
                &provider,
            ))))
            .with_no_client_auth();
        Arc::new(config)
    };
    // One request per connection, read to the end, so that the client takes in the tickets
    // the server sends after the handshake; returns how the handshake went.
    let visit = |config: Arc<rustls::ClientConfig>| async move {
        let tcp = tokio::net::TcpStream::connect(listener).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap();
        let kind = tls.get_ref().1.handshake_kind();
        tls.write_all(b"GET /nothing HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        assert!(response.starts_with(b"HTTP/1.1 "), "{response:?}");
        kind
    };
    let returning = client();
    assert_eq!(
        visit(Arc::clone(&returning)).await,
        Some(rustls::HandshakeKind::Full)
    );
    assert_eq!(
        visit(Arc::clone(&returning)).await,
        Some(rustls::HandshakeKind::Resumed)
    );
    for _ in 0..300 {
        visit(client()).await;
    }
    assert_eq!(
        visit(returning).await,
        Some(rustls::HandshakeKind::Resumed),
        "resumed after 300 other clients"
    );
}
