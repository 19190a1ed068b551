//! The test origin the proxy tests put behind a node (HTTP/1.1 on 127.0.0.1:0, a fixed answer
//! per path, and a count of every request it gets), and the client helpers those tests share.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use tokio::sync::watch;

use crate::support::{Node, http_request, repo_root, write_file};

/// A small origin: every path answers as listed in `respond`; requests are counted per path
/// (GET by path, other methods as "METHOD path").
pub struct Origin {
    pub addr: SocketAddr,
    state: Arc<State>,
    /// While set, every request gets a 500.
    pub failing: Arc<AtomicBool>,
    scheme: &'static str,
}

struct State {
    counts: Mutex<HashMap<String, usize>>,
    failing: Arc<AtomicBool>,
    /// `/hold/...` requests being answered now, and the most there ever were at once.
    holding: AtomicUsize,
    peak_holding: AtomicUsize,
    /// `/hold/...` requests wait until this is true.
    released: watch::Receiver<bool>,
    release: watch::Sender<bool>,
    /// Connections served (over TLS: completed handshakes).
    connections: AtomicUsize,
}

impl Origin {
    pub async fn start() -> Origin {
        Origin::start_with(None).await
    }

    /// The same origin over TLS (HTTP/1.1) with `acceptor`'s certificate.
    pub async fn start_tls(acceptor: tokio_rustls::TlsAcceptor) -> Origin {
        Origin::start_with(Some(acceptor)).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let (release, released) = watch::channel(false);
        let state = Arc::new(State {
            counts: Mutex::new(HashMap::new()),
            failing: Arc::clone(&failing),
            holding: AtomicUsize::new(0),
            peak_holding: AtomicUsize::new(0),
            released,
            release,
            connections: AtomicUsize::new(0),
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (state, tls) = (Arc::clone(&shared), tls.clone());
                tokio::spawn(async move {
                    let counted = Arc::clone(&state);
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, std::convert::Infallible>(respond(req, &state).await) }
                    });
                    let mut http = hyper::server::conn::http1::Builder::new();
                    // A client's 100 fields (the node's limit) plus the ones the node adds.
                    http.max_headers(128);
                    let Some(acceptor) = tls else {
                        counted.connections.fetch_add(1, Ordering::SeqCst);
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = http.serve_connection(io, service).await;
                        return;
                    };
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    counted.connections.fetch_add(1, Ordering::SeqCst);
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = http.serve_connection(io, service).await;
                });
            }
        });
        Origin {
            addr,
            state,
            failing,
            scheme,
        }
    }

    /// Connections served (over TLS: completed handshakes), to see the proxy reuse them.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Requests for `path` ("/x" for GET, "POST /x" for others).
    pub fn count(&self, path: &str) -> usize {
        let counts = self.state.counts.lock().unwrap();
        counts.get(path).copied().unwrap_or(0)
    }

    /// Every request the origin has received.
    pub fn total(&self) -> usize {
        self.state.counts.lock().unwrap().values().sum()
    }

    /// `/hold/...` requests waiting now, and the most that ever waited at once.
    pub fn holding(&self) -> usize {
        self.state.holding.load(Ordering::SeqCst)
    }

    pub fn peak_holding(&self) -> usize {
        self.state.peak_holding.load(Ordering::SeqCst)
    }

    /// Lets every `/hold/...` request (now and later) answer.
    pub fn release(&self) {
        self.state.release.send_replace(true);
    }
}

pub async fn get(
    node: &Node,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, hyper::HeaderMap, String) {
    let (status, headers, body) =
        http_request(node.http.unwrap(), "GET", path, headers, Vec::new()).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

pub fn cache_status(headers: &hyper::HeaderMap) -> String {
    headers
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A node in front of `origin` with every listener on port 0; `extra` is appended to its
/// `[proxy]` section and may open further sections (`[http]`).
/// An origin that answers every connection with `response` (raw HTTP/1.1 that closes the
/// connection) until its task is aborted, after which nothing listens: for origins that go
/// away.
pub async fn fixed_origin(response: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    (addr, server)
}

pub fn node_for(origin: &Origin, extra: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\n{extra}",
        repo_root().join("zones").display(),
        origin.url()
    );
    Node::with_config(&write_file(dir.path(), "edgenode.toml", &text))
}

async fn respond(req: Request<hyper::body::Incoming>, state: &State) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let key = format!("{} {}", req.method(), path);
    let counts = &state.counts;
    *counts
        .lock()
        .unwrap()
        .entry(if req.method() == hyper::Method::GET {
            path.clone()
        } else {
            key
        })
        .or_default() += 1;
    if state.failing.load(Ordering::SeqCst) {
        return Response::builder()
            .status(500)
            .body(Full::new(Bytes::from("down")))
            .unwrap();
    }
    let field = |name: &str| {
        req.headers().get(name).map_or("-".to_string(), |v| {
            String::from_utf8_lossy(v.as_bytes()).into()
        })
    };
    let language = field("accept-language");
    let language = if language == "-" {
        "none".into()
    } else {
        language
    };
    if path == "/reflect" {
        // What an origin that builds links from request fields would put in its page.
        let body = format!(
            "host={} x-forwarded-host={} x-original-url={} forwarded={} content-length={}\n\
             x-forwarded-for={} x-forwarded-proto={} x-real-ip={} via={} surrogate-capability={}",
            field("host"),
            field("x-forwarded-host"),
            field("x-original-url"),
            field("forwarded"),
            field("content-length"),
            field("x-forwarded-for"),
            field("x-forwarded-proto"),
            field("x-real-ip"),
            field("via"),
            field("surrogate-capability"),
        );
        return Response::builder()
            .header("cache-control", "max-age=60")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
    }
    if path.starts_with("/hold/") {
        return hold(state).await;
    }
    if path == "/echo" {
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        return Response::builder()
            .body(Full::new(body.unwrap_or_default()))
            .unwrap();
    }
    let (cache_control, extra): (&str, Vec<(&str, String)>) = match path.as_str() {
        "/cached" | "/big" | "/numbered" => ("max-age=60", vec![]),
        "/short" => ("max-age=1, stale-if-error=60", vec![]),
        "/swr" => ("max-age=1, stale-while-revalidate=30", vec![]),
        "/validated" | "/validated-strict" => {
            let matches = req
                .headers()
                .get("if-none-match")
                .is_some_and(|v| v == "\"v7\"");
            if matches {
                let not_modified = Response::builder().status(304).header("etag", "\"v7\"");
                return not_modified
                    .header("cache-control", "max-age=60")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            }
            let cc = if path == "/validated" {
                "max-age=1"
            } else {
                "max-age=1, must-revalidate"
            };
            (cc, vec![("etag", "\"v7\"".to_string())])
        }
        "/strict" => ("max-age=1, must-revalidate", vec![]),
        "/private" => ("private, max-age=60", vec![]),
        "/nostore" => ("no-store", vec![]),
        "/cdn" => {
            // Browsers must not store it; this CDN may, for a minute (RFC 9213).
            return Response::builder()
                .header("cache-control", "no-store")
                .header("cdn-cache-control", "max-age=60")
                .body(Full::new(Bytes::from("for the cdn")))
                .unwrap();
        }
        "/surrogate" => {
            // Browsers must not store it; surrogates may, for a minute (Edge Architecture).
            return Response::builder()
                .header("cache-control", "no-store")
                .header("surrogate-control", "max-age=60, content=\"ESI/1.0\"")
                .body(Full::new(Bytes::from("for surrogates")))
                .unwrap();
        }
        "/own-field" => {
            // CDNs in general must not store it; the node named by its own field may.
            return Response::builder()
                .header("cache-control", "max-age=60")
                .header("cdn-cache-control", "no-store")
                .header("edge-cache-control", "max-age=60")
                .body(Full::new(Bytes::from("for this node")))
                .unwrap();
        }
        "/cookie" => {
            // Shared by the origin's say-so, and setting a cookie.
            return Response::builder()
                .header("cache-control", "public, max-age=60")
                .header("set-cookie", "visitor=1; Path=/")
                .body(Full::new(Bytes::from("with a cookie")))
                .unwrap();
        }
        "/bad-request" => {
            // What an origin says to an oversized or malformed request, and marks cacheable.
            return Response::builder()
                .status(400)
                .header("cache-control", "max-age=60")
                .body(Full::new(Bytes::from("bad request")))
                .unwrap();
        }
        "/fresh-error" => {
            return Response::builder()
                .status(503)
                .header("cache-control", "max-age=60")
                .body(Full::new(Bytes::from("down for maintenance")))
                .unwrap();
        }
        "/broken" => {
            return Response::builder()
                .status(500)
                .body(Full::new(Bytes::from("broken")))
                .unwrap();
        }
        "/tagged" => ("max-age=60", vec![("cache-tag", "red blue".into())]),
        "/etag" => ("max-age=60", vec![("etag", "\"v1\"".into())]),
        "/vary" => ("max-age=60", vec![("vary", "Accept-Language".into())]),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            ("max-age=60", vec![])
        }
        "/session" => {
            // Slow enough for clients to share the fetch; each fetch sets a cookie of its own.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let n = counts.lock().unwrap().get(&path).copied().unwrap_or(0);
            ("max-age=60", vec![("set-cookie", format!("session={n}"))])
        }
        _ => {
            return Response::builder()
                .status(404)
                .body(Full::new(Bytes::from("no")))
                .unwrap();
        }
    };
    let count = counts.lock().unwrap().get(&path).copied().unwrap_or(0);
    let body = match path.as_str() {
        "/big" => "x".repeat(200 << 10),
        "/numbered" => numbered(),
        "/vary" => language,
        "/swr" => format!("version {count}"),
        _ => format!("hello from {path}"),
    };
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("cache-control", cache_control);
    for (name, value) in extra {
        response = response.header(name, value);
    }
    response.body(Full::new(Bytes::from(body))).unwrap()
}

/// What `/reflect` says the origin saw of a plain-HTTP request for `host` that a node (with the
/// default `cluster.id`) forwarded from an untrusted client on 127.0.0.1.
pub fn reflected(host: &str) -> String {
    format!(
        "host={host} x-forwarded-host={host} x-original-url=- \
         forwarded=for=127.0.0.1;host={host};proto=http content-length=-\n\
         x-forwarded-for=127.0.0.1 x-forwarded-proto=http x-real-ip=- via=1.1 edgenode \
         surrogate-capability=edgenode=\"Surrogate/1.0\""
    )
}

/// `/numbered`: 3 MiB of numbered lines (8 bytes each), so that a byte out of place shows.
pub fn numbered() -> String {
    (0..(3 << 20) / 8).map(|i| format!("{i:07}\n")).collect()
}

/// Waits for `Origin::release` (at most 30 s), counting the requests waiting meanwhile.
async fn hold(state: &State) -> Response<Full<Bytes>> {
    let now = state.holding.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak_holding.fetch_max(now, Ordering::SeqCst);
    let mut released = state.released.clone();
    let _ = tokio::time::timeout(Duration::from_secs(30), released.wait_for(|r| *r)).await;
    state.holding.fetch_sub(1, Ordering::SeqCst);
    Response::builder()
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from("held")))
        .unwrap()
}
