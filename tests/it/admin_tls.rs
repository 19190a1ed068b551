//! The admin API over TLS (`admin.tls_listen`, issue 18 finding 6): reached with the node's
//! certificates by curl, a rustls client and `edgenode purge --cacert`, still behind the
//! token; plain HTTP on its port gets nothing; with `admin.client_ca` only a client with a
//! certificate from that CA completes the handshake; a certificate reload reaches it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::support::{Node, certificate, edgenode, have_tool, http_request, write_file};

const TOKEN: &str = "0123456789abcdef-admin-tls";

/// A node with its admin API on plain HTTP and on TLS, serving `cert`/`key`, and `admin`
/// (more `[admin]` keys) in its config file in `dir`.
fn start(dir: &Path, cert: &Path, key: &Path, admin: &str) -> Node {
    let extra = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n[admin]\ntls_listen = \"127.0.0.1:0\"\n\
         token = \"{TOKEN}\"\n{admin}",
        cert.display(),
        key.display()
    );
    Node::with_zones_and(dir, &extra)
}

/// A client certificate chain and key, as PEM files in `dir`.
struct Identity {
    cert: PathBuf,
    key: PathBuf,
}

/// A CA for client certificates, written to `dir/clients-ca.pem`, and a certificate for an
/// operator signed by it.
fn client_ca(dir: &Path) -> (PathBuf, Identity) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "edgenode admin clients");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = params.self_signed(&ca_key).unwrap();
    let ca = write_file(dir, "clients-ca.pem", &ca_cert.pem());
    let issuer = Issuer::new(params, ca_key);

    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "operator");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let identity = Identity {
        cert: write_file(dir, "operator.pem", &cert.pem()),
        key: write_file(dir, "operator.key", &key.serialize_pem()),
    };
    (ca, identity)
}

/// One HTTP/1.1 request over TLS to `addr` (by IP address), trusting `ca` and presenting
/// `identity` when given: (status, body), or the error and its causes.
async fn over_tls(
    addr: SocketAddr,
    ca: &Path,
    identity: Option<&Identity>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Full};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = CertificateDer::pem_file_iter(&identity.cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(&identity.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::IpAddress(addr.ip().into());
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let io = hyper_util::rt::TokioIo::new(tls);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Full::new(bytes::Bytes::new()))?)
            .await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((
            status,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    };
    exchange.await.map_err(|e| {
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(next) = cause {
            text = format!("{text}: {next}");
            cause = next.source();
        }
        text
    })
}

/// `curl -sS ARGS...`: (success, stdout, stderr).
fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

const PURGE: &str = "/admin/purge?url=http://a.test/x";

#[tokio::test]
async fn the_admin_api_over_tls_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path(), "admin", &["localhost", "127.0.0.1"]);
    let node = start(dir.path(), &cert, &key, "");
    let tls = node.admin_tls.expect("an admin-tls listener announced");
    let bearer = format!("Bearer {TOKEN}");

    // A rustls client that trusts the node's certificate.
    let (status, body) = over_tls(tls, &cert, None, "GET", "/metrics", &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("edgenode_"), "{body}");
    let authorized = [("authorization", bearer.as_str())];
    let (status, body) = over_tls(tls, &cert, None, "POST", PURGE, &authorized)
        .await
        .unwrap();
    assert_eq!((status, body.contains("\"purged\"")), (200, true), "{body}");
    // TLS hides the token on the wire; it is still needed.
    let (status, _) = over_tls(tls, &cert, None, "POST", PURGE, &[])
        .await
        .unwrap();
    assert_eq!(status, 401);

    // Plain HTTP on the TLS port gets no HTTP answer (a TLS alert record, then the close).
    let plain = tokio::net::TcpStream::connect(tls).await.unwrap();
    let answer = plain_exchange(plain).await;
    assert!(!answer.starts_with("HTTP/"), "{answer:?}");
    // The plain listener is still there (the other nodes of a cluster call it).
    let (status, _, _) = http_request(node.admin.unwrap(), "GET", "/healthz", &[], vec![]).await;
    assert_eq!(status, 200);

    let url = format!("https://127.0.0.1:{}", tls.port());
    if have_tool("curl") {
        let cacert = cert.to_str().unwrap();
        let purge = format!("{url}{PURGE}");
        let auth = format!("authorization: {bearer}");
        let (ok, out, err) = curl(&["--cacert", cacert, "-X", "POST", "-H", &auth, &purge]);
        assert!(ok && out.contains("\"purged\""), "{out}{err}");
        let (ok, out, _) = curl(&["--cacert", cacert, &format!("{url}/metrics")]);
        assert!(ok && out.contains("edgenode_"));
        // The certificate is checked: without --cacert curl does not trust it.
        let (ok, _, _) = curl(&[&format!("{url}/metrics")]);
        assert!(!ok);
        let (ok, _, _) = curl(&[&format!("http://127.0.0.1:{}/metrics", tls.port())]);
        assert!(!ok, "plain HTTP to the TLS port");
    }

    // The command line, as an operator runs it.
    let cli = |extra: &[&str]| {
        let mut args = vec!["purge", "--admin", &url, "--token", TOKEN];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--url", "http://a.test/x"]);
        edgenode(&args)
    };
    let (ok, out, err) = cli(&["--cacert", cert.to_str().unwrap()]);
    assert!(ok && out.contains("purged 0 (hard)"), "{out}{err}");
    let (ok, _, err) = cli(&[]);
    assert!(!ok && err.contains("invalid peer certificate"), "{err}");
}

/// Writes an HTTP/1.1 request on `stream` and returns what comes back (until it closes).
async fn plain_exchange(mut stream: tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = b"GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn with_client_ca_only_a_certificate_from_it_gets_through() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path(), "admin", &["localhost", "127.0.0.1"]);
    let (_, operator) = client_ca(dir.path());
    // A certificate the node's CA did not sign.
    let (stranger_cert, stranger_key, _) = certificate(dir.path(), "stranger", &["x.test"]);
    let stranger = Identity {
        cert: stranger_cert,
        key: stranger_key,
    };
    // Relative: taken from the config file's directory.
    let node = start(dir.path(), &cert, &key, "client_ca = \"clients-ca.pem\"\n");
    let tls = node.admin_tls.unwrap();

    let refused = over_tls(tls, &cert, None, "GET", "/metrics", &[])
        .await
        .expect_err("no client certificate");
    assert!(refused.contains("CertificateRequired"), "{refused}");
    let refused = over_tls(tls, &cert, Some(&stranger), "GET", "/metrics", &[])
        .await
        .expect_err("a certificate from another CA");
    assert!(refused.contains("UnknownCA"), "{refused}");
    let (status, _) = over_tls(tls, &cert, Some(&operator), "GET", "/metrics", &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Client certificates come on top of the token, not instead of it.
    let (status, _) = over_tls(tls, &cert, Some(&operator), "POST", PURGE, &[])
        .await
        .unwrap();
    assert_eq!(status, 401);

    let url = format!("https://127.0.0.1:{}", tls.port());
    let cacert = cert.to_str().unwrap();
    let (op_cert, op_key) = (
        operator.cert.to_str().unwrap(),
        operator.key.to_str().unwrap(),
    );
    if have_tool("curl") {
        let (ok, out, err) = curl(&[
            "--cacert",
            cacert,
            "--cert",
            op_cert,
            "--key",
            op_key,
            &format!("{url}/metrics"),
        ]);
        assert!(ok && out.contains("edgenode_"), "{err}");
        let (ok, _, _) = curl(&["--cacert", cacert, &format!("{url}/metrics")]);
        assert!(!ok, "curl without a client certificate");
    }
    let cli = |extra: &[&str]| {
        let mut args = vec![
            "purge", "--admin", &url, "--token", TOKEN, "--cacert", cacert,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--tag", "red"]);
        edgenode(&args)
    };
    let (ok, out, err) = cli(&["--cert", op_cert, "--key", op_key]);
    assert!(ok && out.contains("purged 0 (hard)"), "{out}{err}");
    let (ok, _, err) = cli(&[]);
    assert!(!ok && err.contains("CertificateRequired"), "{err}");
}

#[tokio::test]
async fn a_certificate_reload_reaches_the_admin_tls_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first) = certificate(dir.path(), "admin", &["localhost", "127.0.0.1"]);
    let node = start(dir.path(), &cert, &key, "");
    let tls = node.admin_tls.unwrap();
    let served = || async {
        let versions = &[&rustls::version::TLS13];
        crate::support::tls_handshake(tls, "localhost", versions)
            .await
            .expect("handshake")
            .certificate
    };
    assert!(served().await == first);
    // New files at the same paths, then a reload through the plain admin listener.
    let (_, _, second) = certificate(dir.path(), "admin", &["localhost", "127.0.0.1"]);
    let bearer = format!("Bearer {TOKEN}");
    let authorized = [("authorization", bearer.as_str())];
    let (status, _, body) = http_request(
        node.admin.unwrap(),
        "POST",
        "/admin/reload",
        &authorized,
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(served().await == second);
}
