//! Shared test helpers: start the real `edgenode` binary on port 0 and read back its addresses.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `edgenode serve` child process; killed when dropped.
pub struct Node {
    child: Child,
    pub dns_udp: Vec<SocketAddr>,
    pub dns_tcp: Vec<SocketAddr>,
    pub httpdns: Option<SocketAddr>,
    pub httpdns_tls: Option<SocketAddr>,
    /// The caching proxy's listeners.
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    /// The self-signed certificate the HTTPS listener uses (PEM), for curl --cacert.
    pub certificate: Option<PathBuf>,
    pub admin: Option<SocketAddr>,
    /// The admin API over TLS (`admin.tls_listen`).
    pub admin_tls: Option<SocketAddr>,
    /// stdout lines after `ready`, kept so a test can wait for later output (reloads).
    pub lines: mpsc::Receiver<String>,
}

impl Node {
    /// Runs `edgenode serve ARGS...` from the repository root and waits for its `ready` line.
    /// HTTPDNS listeners go on port 0 unless ARGS place them (the embedded defaults are fixed
    /// ports, which parallel tests cannot share).
    pub fn start(args: &[&str]) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_edgenode"));
        command.arg("serve").args(args);
        for flag in [
            "--httpdns-listen",
            "--httpdns-tls-listen",
            "--http-listen",
            "--https-listen",
        ] {
            if !args.contains(&flag) {
                command.args([flag, "127.0.0.1:0"]);
            }
        }
        let mut child = command
            .current_dir(repo_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn edgenode");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut node = Node {
            child,
            dns_udp: Vec::new(),
            dns_tcp: Vec::new(),
            httpdns: None,
            httpdns_tls: None,
            http: None,
            https: None,
            certificate: None,
            admin: None,
            admin_tls: None,
            lines: rx,
        };
        loop {
            let line = match node.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => line,
                Err(e) => panic!("edgenode did not print `ready`: {e}"),
            };
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("listening"), Some(kind), Some(addr)) => {
                    let addr: SocketAddr = addr.parse().expect("listen address");
                    match kind {
                        "dns-udp" => node.dns_udp.push(addr),
                        "dns-tcp" => node.dns_tcp.push(addr),
                        "admin" => node.admin = Some(addr),
                        "admin-tls" => node.admin_tls = Some(addr),
                        "httpdns" => node.httpdns = Some(addr),
                        "httpdns-tls" => node.httpdns_tls = Some(addr),
                        "http" => node.http = Some(addr),
                        "https" => node.https = Some(addr),
                        _ => {}
                    }
                }
                (Some("tls-certificate"), Some(path), _) => node.certificate = Some(path.into()),
                (Some("ready"), _, _) => break,
                _ => {}
            }
        }
        node
    }

    /// `serve` for the zones in `dir`, every listener on port 0.
    pub fn with_zones(dir: &str) -> Node {
        Node::start(&[
            "--zones",
            dir,
            "--dns-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
    }

    /// `serve --geoip FILE` with the repository's zones, every listener on port 0.
    pub fn with_geoip(mmdb: &Path) -> Node {
        let mmdb = mmdb.to_str().expect("utf-8 path");
        Node::start(&[
            "--geoip",
            mmdb,
            "--dns-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
    }

    /// `serve` with the repository's zones and `extra` (TOML sections) in a config file written
    /// to `dir`, every listener on port 0.
    pub fn with_zones_and(dir: &Path, extra: &str) -> Node {
        let text = format!(
            "[dns]\nzones = \"{}\"\n{extra}",
            repo_root().join("zones").display()
        );
        Node::with_config(&write_file(dir, "edgenode.toml", &text))
    }

    /// `serve --config FILE`, every listener on port 0.
    pub fn with_config(config: &Path) -> Node {
        let config = config.to_str().expect("utf-8 path");
        Node::start(&[
            "--config",
            config,
            "--dns-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
    }

    /// The first DNS address (UDP and TCP share it when started with one `--dns-listen`).
    pub fn dns(&self) -> SocketAddr {
        self.dns_udp[0]
    }

    /// Whether the process has exited (reaped here if so).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    /// SIGTERM (a graceful stop, which also removes the generated certificate), SIGKILL after 5 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `cluster.secret` of every test cluster (and of the fake peers that hold it).
pub const CLUSTER_SECRET: &str = "test-cluster-secret-0123456789abcdef";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/geoip` beside the checkout, or None (with the reason printed) when it is absent.
pub fn shared_geoip() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/geoip");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} is absent", dir.display());
        None
    }
}

/// True when `program` is on PATH; prints why the caller skips otherwise. Set
/// `EDGENODE_REQUIRE_TOOLS=1` (CI does) to turn a missing tool into a failure.
pub fn have_tool(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("EDGENODE_REQUIRE_TOOLS").is_some() {
            panic!("{program} is required (EDGENODE_REQUIRE_TOOLS is set) but not on PATH");
        }
        eprintln!("skipping: {program} is not installed");
    }
    found
}

/// Runs `dig` against `server` with extra arguments and returns its stdout.
pub fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path
}

/// A hickory client over UDP (`tcp = false`) or TCP to `server`.
pub async fn dns_client(
    server: SocketAddr,
    tcp: bool,
) -> hickory_net::client::Client<hickory_net::runtime::TokioRuntimeProvider> {
    use hickory_net::client::Client;
    use hickory_net::runtime::TokioRuntimeProvider;
    let provider = TokioRuntimeProvider::default();
    let timeout = Some(Duration::from_secs(3));
    if tcp {
        let (connect, handle) =
            hickory_net::tcp::TcpClientStream::new(server, None, timeout, provider);
        let stream = connect.await.expect("tcp connect");
        let (client, background) = Client::<TokioRuntimeProvider>::new(stream, handle);
        tokio::spawn(background);
        client
    } else {
        let stream = hickory_net::udp::UdpClientStream::builder(server, provider)
            .with_timeout(timeout)
            .build();
        let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
        tokio::spawn(background);
        client
    }
}

/// A query as a resolver sends it: RD clear, EDNS with `payload` when given, name case kept.
pub fn query(
    name: &str,
    rtype: hickory_proto::rr::RecordType,
    payload: Option<u16>,
) -> hickory_proto::op::Message {
    use hickory_proto::op::{Edns, Message, Query};
    let name = hickory_proto::rr::Name::from_ascii(name).expect("test name");
    let mut message = Message::query();
    message.add_query(Query::query(name, rtype));
    message.metadata.recursion_desired = false;
    if let Some(payload) = payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        message.set_edns(edns);
    }
    message
}

/// `query` with EDNS and an ECS option for `subnet`/`prefix` (RFC 7871), as a resolver
/// forwarding for a client in that network sends it.
pub fn query_from_subnet(
    name: &str,
    rtype: hickory_proto::rr::RecordType,
    subnet: &str,
    prefix: u8,
) -> hickory_proto::op::Message {
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    let mut message = query(name, rtype, Some(1232));
    if let Some(edns) = message.edns.as_mut() {
        let subnet = ClientSubnet::new(subnet.parse().expect("a test subnet"), prefix, 0);
        edns.options_mut().insert(EdnsOption::Subnet(subnet));
    }
    message
}

/// Sends `message` with `client` and returns the response.
pub async fn ask(
    client: &hickory_net::client::Client<hickory_net::runtime::TokioRuntimeProvider>,
    message: hickory_proto::op::Message,
) -> hickory_proto::op::Message {
    use hickory_net::xfer::{DnsHandle, FirstAnswer};
    use hickory_proto::op::{DnsRequest, DnsRequestOptions};
    let mut options = DnsRequestOptions::default();
    options.use_edns = message.edns.is_some();
    options.recursion_desired = message.metadata.recursion_desired;
    let response = client
        .send(DnsRequest::new(message, options))
        .first_answer()
        .await
        .expect("dns response");
    response.into_message()
}

/// One HTTP/1.1 request with hyper's client: (status, headers, body).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, hyper::HeaderMap, bytes::Bytes) {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut request = hyper::Request::builder().method(method).uri(path);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request = request.header("host", addr.to_string());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(body)))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, body)
}

/// Runs `edgenode ARGS...` to completion from the repository root: (success, stdout, stderr).
pub fn edgenode(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgenode"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run edgenode");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// A self-signed certificate for `names` written to `dir/{stem}.pem` and its key to
/// `dir/{stem}.key`: (certificate path, key path, certificate DER).
pub fn certificate(dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf, Vec<u8>) {
    let names = names.iter().map(ToString::to_string).collect::<Vec<_>>();
    let generated = rcgen::generate_simple_self_signed(names).expect("rcgen certificate");
    let cert = write_file(dir, &format!("{stem}.pem"), &generated.cert.pem());
    let key = write_file(
        dir,
        &format!("{stem}.key"),
        &generated.signing_key.serialize_pem(),
    );
    (cert, key, generated.cert.der().to_vec())
}

/// What a TLS handshake got: the server's certificate (DER) and the protocol version.
pub struct Handshake {
    pub certificate: Vec<u8>,
    pub version: rustls::ProtocolVersion,
}

/// A TLS handshake with `addr` offering only `versions`, sending `server_name` as SNI (an IP
/// address sends none). The certificate is not verified: tests compare it with the one they
/// expect. Err is the handshake's error.
pub async fn tls_handshake(
    addr: SocketAddr,
    server_name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Handshake, std::io::Error> {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from(server_name.to_string()).expect("a server name");
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let connection = tls.get_ref().1;
    Ok(Handshake {
        certificate: connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.to_vec())
            .unwrap_or_default(),
        version: connection.protocol_version().expect("negotiated"),
    })
}

/// Accepts any server certificate, still checking the handshake signatures.
#[derive(Debug)]
pub struct AnyCertificate(pub std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A node's `/metrics` text, from its admin listener.
pub async fn metrics_text(admin: SocketAddr) -> String {
    let (_, _, body) = http_request(admin, "GET", "/metrics", &[], Vec::new()).await;
    String::from_utf8_lossy(&body).into_owned()
}

/// The value of the first series in `text` starting with `line_start`; 0 when there is none.
pub fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
