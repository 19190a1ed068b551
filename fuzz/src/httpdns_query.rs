//! HTTPDNS requests through `HttpDns::handle` as a listener serves them: hyper's HTTP/1.1
//! server on an in-memory connection, so query strings, RFC 8484 GET (base64url) and POST
//! bodies, X-Forwarded-For and the Alibaba signature check all run on real `Request`s.
//!
//! Input: a first byte choosing the method and endpoint (the DNSPod, Alibaba, signed,
//! scheduling, v2, JSON DoH and RFC 8484 endpoints, and a few wrong ones), then the query string, a newline, an
//! X-Forwarded-For value (the peer is a trusted proxy), a newline, and the body, sent with
//! `Content-Type: application/dns-message`. Query bytes that a URI cannot carry are
//! percent-encoded, and X-Forwarded-For keeps visible ASCII only, so inputs reach the handler
//! instead of hyper's 400.
//!
//! Asserts: no panic; a complete HTTP response; never a 5xx (recursion is off, so every
//! request is answered from the zones or refused as a client error).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use edgenode::config::{DnspodKey, HttpConfig, HttpDnsAccount, HttpDnsConfig};
use edgenode::dns::ZoneSet;
use edgenode::http_server::Limits;
use edgenode::httpdns::{HttpDns, Listeners, Scheme};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::family::Family;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use super::dns_message::handler_for;

const ZONE: &str = include_str!("../../zones/example.test.zone");
const POLICY: &str = include_str!("../../zones/example.test.geo.toml");
/// The signing secret of account `signed`: `s = md5(host-secret-t)`.
pub const SECRET: &str = "fuzz-secret";
/// The DNSPod key of id `pod` (DES: its first 8 bytes; AES: padded to 16).
pub const DNSPOD_KEY: &str = "fuzzkey1";

/// What the first byte chooses (modulo the length).
const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/d"),
    ("GET", "/resolve"),
    ("GET", "/dns-query"),
    ("POST", "/dns-query"),
    ("GET", "/open/d"),
    ("GET", "/open/resolve"),
    ("GET", "/signed/sign_d"),
    ("GET", "/signed/sign_resolve"),
    ("GET", "/open/sign_d"),
    ("GET", "/signed/d"),
    ("GET", "/nobody/d"),
    ("PUT", "/dns-query"),
    ("POST", "/d"),
    ("GET", "/elsewhere"),
    ("GET", "/open/ss"),
    ("GET", "/signed/ss"),
    ("GET", "/v2/d"),
];

struct Fixture {
    runtime: Runtime,
    service: Arc<HttpDns>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = super::scratch_dir();
        std::fs::write(dir.path().join("example.test.zone"), ZONE).expect("write zone");
        std::fs::write(dir.path().join("example.test.geo.toml"), POLICY).expect("write policy");
        let zones = ZoneSet::load_dir(dir.path()).expect("the repository's zones load");
        let config = HttpDnsConfig {
            trusted_proxies: vec!["127.0.0.0/8".parse().expect("a network")],
            // No rate limits: a fuzzer is one very busy client.
            client_rate: 0,
            accounts: vec![
                account("open", None, false),
                account("signed", Some(SECRET), true),
            ],
            // DNSPod `id=pod` with `alg=des|aes` decrypts `dn` and `ip` under this key.
            dnspod_keys: vec![DnspodKey {
                id: "pod".to_string(),
                key: Some(DNSPOD_KEY.to_string()),
                aes_key: None,
                token: None,
            }],
            ..HttpDnsConfig::default()
        };
        let limits = Limits::new(&HttpConfig::default(), Family::default());
        let listeners = Listeners {
            plain: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8053)],
            tls: Vec::new(),
        };
        let service = HttpDns::new(
            &config,
            limits,
            handler_for(zones),
            Family::default(),
            listeners,
        );
        Fixture { runtime, service }
    })
}

fn account(id: &str, secret: Option<&str>, require_signature: bool) -> HttpDnsAccount {
    HttpDnsAccount {
        id: id.to_string(),
        secret: secret.map(str::to_string),
        require_signature,
        // The v2 encrypted modes (`m=1`, `m=2`) decrypt what `enc` carries with it.
        aes_key: Some("00112233445566778899aabbccddeeff".to_string()),
        https_only: false,
        rate: 0,
        burst: 0,
    }
}

pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (method, path) = ENDPOINTS[usize::from(selector) % ENDPOINTS.len()];
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let query = uri_query(parts.next().unwrap_or_default());
    let forwarded: Vec<u8> = parts
        .next()
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|b| (0x20..0x7f).contains(b))
        .collect();
    let body = parts.next().unwrap_or_default();

    let mut request = format!("{method} {path}?{query} HTTP/1.1\r\nhost: httpdns.test\r\n");
    if !forwarded.is_empty() {
        request.push_str("x-forwarded-for: ");
        request.push_str(&String::from_utf8_lossy(&forwarded));
        request.push_str("\r\n");
    }
    request.push_str("content-type: application/dns-message\r\naccept: application/dns-json\r\n");
    request.push_str("connection: close\r\n");
    request.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut request = request.into_bytes();
    request.extend_from_slice(body);

    let fixture = fixture();
    let response = fixture
        .runtime
        .block_on(exchange(Arc::clone(&fixture.service), request));
    check_response(&response);
}

/// The query string as a URI carries it: bytes outside a conservative set are percent-encoded
/// (a raw `%` is kept, so malformed escapes still reach the parser).
fn uri_query(raw: &[u8]) -> String {
    const KEEP: &[u8] = b"-._~&=%+,:;/!$'()*@?";
    let mut query = String::with_capacity(raw.len());
    for &b in raw {
        if b.is_ascii_alphanumeric() || KEEP.contains(&b) {
            query.push(char::from(b));
        } else {
            query.push_str(&format!("%{b:02X}"));
        }
    }
    query
}

/// One HTTP/1.1 exchange with the service over an in-memory connection; the raw response.
async fn exchange(service: Arc<HttpDns>, request: Vec<u8>) -> Vec<u8> {
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let handler = hyper::service::service_fn(move |req| {
            let service = Arc::clone(&service);
            async move { Ok::<_, Infallible>(service.handle(req, peer, Scheme::Http).await) }
        });
        // A client error ends the connection early; the response bytes tell the rest.
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(server), handler)
            .await;
    });
    let mut response = Vec::new();
    // `connection: close` ends the exchange after one response; the write side stays open, as
    // hyper (without half-close) drops a connection whose client has shut it down.
    if client.write_all(&request).await.is_ok() {
        let _ = client.read_to_end(&mut response).await;
    }
    let _ = server.await;
    response
}

fn check_response(response: &[u8]) {
    let text = String::from_utf8_lossy(response);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok());
    let Some(status) = status else {
        panic!("no HTTP response: {text:?}");
    };
    assert!(
        status < 500,
        "a server error for a client's request: {text}"
    );
}
