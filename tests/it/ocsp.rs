//! OCSP stapling against `openssl ocsp` acting as the CA's responder on 127.0.0.1: the node
//! asks the responder its certificate names (Authority Information Access) and staples the
//! good answer, which `openssl s_client -status` then sees in the handshake.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Node, have_tool, write_file};

/// Runs openssl with `args` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The responder: a test HTTP server on 127.0.0.1 that hands each OCSP request to
/// `openssl ocsp -reqin` (its answers are openssl's: this runs no OCSP code of its own);
/// `openssl ocsp -port` would listen on every interface.
struct Responder {
    addr: std::net::SocketAddr,
    /// Requests answered.
    asked: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

async fn responder(dir: &Path) -> Responder {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = dir.to_path_buf();
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&asked);
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let dir = dir.clone();
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let dir = dir.clone();
                        let counted = Arc::clone(&counted);
                        async move {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            std::fs::write(dir.join("req.der"), body.unwrap_or_default()).unwrap();
                            openssl(
                                &dir,
                                &[
                                    "ocsp",
                                    "-index",
                                    "index.txt",
                                    "-CA",
                                    "ca.crt",
                                    "-rsigner",
                                    "ca.crt",
                                    "-rkey",
                                    "ca.key",
                                    "-reqin",
                                    "req.der",
                                    "-respout",
                                    "resp.der",
                                    "-nmin",
                                    "10",
                                ],
                            );
                            let answer = std::fs::read(dir.join("resp.der")).unwrap();
                            counted.fetch_add(1, Ordering::SeqCst);
                            let response = hyper::Response::builder()
                                .header("content-type", "application/ocsp-response")
                                .body(Full::new(bytes::Bytes::from(answer)))
                                .unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Responder {
        addr,
        asked,
        _server: server,
    }
}

/// A CA, a leaf for localhost (serial 0x1234) naming the responder as its OCSP responder
/// (Authority Information Access), and the responder's index saying the leaf is `status` ("V"
/// good, "R" revoked).
async fn ca_leaf_and_responder(dir: &Path, status: &str) -> Responder {
    let responder = responder(dir).await;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ],
    );
    write_file(
        dir,
        "leaf.ext",
        &format!(
            "subjectAltName=DNS:localhost\nauthorityInfoAccess=OCSP;URI:http://{}/\n",
            responder.addr
        ),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0x1234",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.crt",
        ],
    );
    let chain = std::fs::read_to_string(dir.join("leaf.crt")).unwrap()
        + &std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    write_file(dir, "chain.pem", &chain);
    let revoked = if status == "R" { "261201000000Z" } else { "" };
    write_file(
        dir,
        "index.txt",
        &format!("{status}\t301231000000Z\t{revoked}\t1234\tunknown\t/CN=localhost\n"),
    );
    responder
}

/// What `openssl s_client -status` prints of the handshake with `port` (stdout).
fn handshake_status(port: u16) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-status",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn node_with(dir: &Path) -> Node {
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nocsp_stapling = true\n",
        dir.join("chain.pem").display(),
        dir.join("leaf.key").display(),
    );
    Node::with_zones_and(dir, &tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_answer_from_the_certificates_responder_is_stapled() {
    if !have_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _responder = ca_leaf_and_responder(dir.path(), "V").await;
    let node = node_with(dir.path());
    let port = node.https.expect("https listener").port();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = handshake_status(port);
    while !seen.contains("OCSP Response Status: successful") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        seen = handshake_status(port);
    }
    assert!(seen.contains("OCSP Response Status: successful"), "{seen}");
    assert!(seen.contains("Cert Status: good"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_answer_is_not_stapled() {
    if !have_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let responder = ca_leaf_and_responder(dir.path(), "R").await;
    let node = node_with(dir.path());
    let port = node.https.expect("https listener").port();
    let deadline = Instant::now() + Duration::from_secs(20);
    while responder.asked.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        responder.asked.load(Ordering::SeqCst) > 0,
        "the node never asked"
    );
    // What it would have stapled is in place by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = handshake_status(port);
    assert!(seen.contains("OCSP response: no response sent"), "{seen}");
}
