//! The caching proxy against a test origin on 127.0.0.1:0 that counts what it is asked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

use crate::dns::http;
use crate::support::{Node, http_request};

/// A small origin: every path answers as listed in `respond`; requests are counted per path.
pub(crate) struct Origin {
    addr: SocketAddr,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    /// While set, every request gets a 500.
    failing: Arc<AtomicBool>,
    /// Connections served (over TLS: completed handshakes), to see the proxy reuse them.
    connections: Arc<AtomicUsize>,
    scheme: &'static str,
}

impl Origin {
    pub(crate) async fn start() -> Origin {
        Origin::start_with(None).await
    }

    /// The same origin over TLS (HTTP/1.1) with `acceptor`'s certificate.
    pub(crate) async fn start_tls(acceptor: tokio_rustls::TlsAcceptor) -> Origin {
        Origin::start_with(Some(acceptor)).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (c, f, n) = (
            Arc::clone(&counts),
            Arc::clone(&failing),
            Arc::clone(&connections),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (c, f, n, tls) = (Arc::clone(&c), Arc::clone(&f), Arc::clone(&n), tls.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (c, f) = (Arc::clone(&c), Arc::clone(&f));
                        async move { Ok::<_, std::convert::Infallible>(respond(req, &c, &f).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let Some(acceptor) = tls else {
                        n.fetch_add(1, Ordering::SeqCst);
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = http.serve_connection(io, service).await;
                        return;
                    };
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    n.fetch_add(1, Ordering::SeqCst);
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = http.serve_connection(io, service).await;
                });
            }
        });
        Origin {
            addr,
            counts,
            failing,
            connections,
            scheme,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub(crate) fn count(&self, path: &str) -> usize {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn respond(
    req: Request<hyper::body::Incoming>,
    counts: &Mutex<HashMap<String, usize>>,
    failing: &AtomicBool,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let key = format!("{} {}", req.method(), path);
    *counts
        .lock()
        .unwrap()
        .entry(if req.method() == hyper::Method::GET {
            path.clone()
        } else {
            key
        })
        .or_default() += 1;
    if failing.load(Ordering::SeqCst) {
        return Response::builder()
            .status(500)
            .body(Full::new(Bytes::from("down")))
            .unwrap();
    }
    let language = req
        .headers()
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    let (cache_control, extra): (&str, Vec<(&str, String)>) = match path.as_str() {
        "/cached" | "/big" => ("max-age=60", vec![]),
        "/short" => ("max-age=1, stale-if-error=60", vec![]),
        "/swr" => ("max-age=1, stale-while-revalidate=30", vec![]),
        "/validated" => {
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
            ("max-age=1", vec![("etag", "\"v7\"".to_string())])
        }
        "/strict" => ("max-age=1, must-revalidate", vec![]),
        "/private" => ("private, max-age=60", vec![]),
        "/nostore" => ("no-store", vec![]),
        "/tagged" => ("max-age=60", vec![("cache-tag", "red blue".into())]),
        "/etag" => ("max-age=60", vec![("etag", "\"v1\"".into())]),
        "/vary" => ("max-age=60", vec![("vary", "Accept-Language".into())]),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            ("max-age=60", vec![])
        }
        "/broken" => {
            return Response::builder()
                .status(500)
                .body(Full::new(Bytes::from("broken")))
                .unwrap();
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

pub(crate) async fn get(
    node: &Node,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, hyper::HeaderMap, String) {
    let (status, headers, body) =
        http_request(node.http.unwrap(), "GET", path, headers, Vec::new()).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

pub(crate) fn cache_status(headers: &hyper::HeaderMap) -> String {
    headers
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn start(origin: &Origin) -> Node {
    Node::start(&[
        "--origin",
        &origin.url(),
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ])
}

#[tokio::test]
async fn stores_serves_and_answers_conditionals_and_ranges() {
    let origin = Origin::start().await;
    let node = start(&origin);

    let (status, headers, body) = get(&node, "/cached", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /cached"));
    assert_eq!(cache_status(&headers), "edgenode; fwd=miss; stored");
    assert!(headers["via"].to_str().unwrap().contains("edgenode"));
    let (status, headers, body) = get(&node, "/cached", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /cached"));
    assert_eq!(cache_status(&headers), "edgenode; hit");
    assert!(headers.contains_key("age"));
    assert_eq!(origin.count("/cached"), 1);

    // Not stored: private and no-store go to the origin every time, saying why.
    for path in ["/private", "/nostore"] {
        get(&node, path, &[]).await;
        let (_, headers, _) = get(&node, path, &[]).await;
        assert!(
            cache_status(&headers).contains("fwd=miss; detail="),
            "{path}: {headers:?}"
        );
        assert_eq!(origin.count(path), 2, "{path}");
    }

    // Conditional requests and ranges from the stored object.
    get(&node, "/etag", &[]).await;
    let (status, _, body) = get(&node, "/etag", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((status, body.as_str()), (304, ""));
    let (status, headers, body) = get(&node, "/cached", &[("range", "bytes=0-4")]).await;
    assert_eq!((status, body.as_str()), (206, "hello"));
    assert_eq!(headers["content-range"], "bytes 0-4/18");
    let (status, headers, _) = get(&node, "/cached", &[("range", "bytes=100-")]).await;
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], "bytes */18");
    let (status, _, body) =
        http_request(node.http.unwrap(), "HEAD", "/cached", &[], Vec::new()).await;
    assert_eq!((status, body.len()), (200, 0));

    // Vary: each Accept-Language gets its own answer.
    let (_, _, en) = get(&node, "/vary", &[("accept-language", "en")]).await;
    let (_, _, fr) = get(&node, "/vary", &[("accept-language", "fr")]).await;
    assert_eq!((en.as_str(), fr.as_str()), ("en", "fr"));
    // Both variants stay stored side by side.
    for language in ["en", "fr", "en"] {
        let (_, headers, body) = get(&node, "/vary", &[("accept-language", language)]).await;
        assert_eq!(
            (body.as_str(), cache_status(&headers).as_str()),
            (language, "edgenode; hit")
        );
    }
    assert_eq!(origin.count("/vary"), 2);
    assert_eq!(origin.count("/cached"), 1);
}

#[tokio::test]
async fn concurrent_misses_make_one_origin_request() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let mut requests = Vec::new();
    for _ in 0..200 {
        let addr = node.http.unwrap();
        requests.push(tokio::spawn(async move {
            http_request(addr, "GET", "/slow", &[], Vec::new()).await
        }));
    }
    let mut collapsed = 0;
    for request in requests {
        let (status, headers, body) = request.await.unwrap();
        assert_eq!((status, &body[..]), (200, &b"hello from /slow"[..]));
        collapsed += usize::from(cache_status(&headers).contains("collapsed"));
    }
    assert_eq!(origin.count("/slow"), 1);
    assert!(
        collapsed >= 1,
        "some requests waited on the first one's fetch"
    );
}

#[tokio::test]
async fn stale_if_error_purge_and_invalidation() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let admin = node.admin.unwrap();

    // stale-if-error: expired, origin failing: the stored copy is served; must-revalidate: 502.
    get(&node, "/short", &[]).await;
    get(&node, "/strict", &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    origin.failing.store(true, Ordering::SeqCst);
    let (status, headers, body) = get(&node, "/short", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /short"));
    assert!(
        cache_status(&headers).contains("stale-if-error"),
        "{headers:?}"
    );
    // must-revalidate: never stale; the origin's own error goes through.
    let (status, _, body) = get(&node, "/strict", &[]).await;
    assert_eq!((status, body.as_str()), (500, "down"));
    origin.failing.store(false, Ordering::SeqCst);

    // Purge by URL, tag and prefix: the next request goes to the origin again.
    get(&node, "/cached", &[]).await;
    get(&node, "/tagged", &[]).await;
    let host = node.http.unwrap();
    let (status, body) = http(
        admin,
        "POST",
        &format!("/admin/purge?url=http://{host}/cached"),
        None,
    )
    .await;
    assert_eq!(
        (status, body.contains("\"purged\":1")),
        (200, true),
        "{body}"
    );
    get(&node, "/cached", &[]).await;
    assert_eq!(origin.count("/cached"), 2);
    let (_, body) = http(admin, "POST", "/admin/purge?tag=blue", None).await;
    assert!(body.contains("\"purged\":1"), "{body}");
    get(&node, "/tagged", &[]).await;
    assert_eq!(origin.count("/tagged"), 2);
    let (_, body) = http(
        admin,
        "POST",
        &format!("/admin/purge?prefix={host}/ca"),
        None,
    )
    .await;
    assert!(body.contains("\"purged\":1"), "{body}");
    assert_eq!(http(admin, "POST", "/admin/purge", None).await.0, 400);

    // The origin's own answers pass through when they are not errors to hide.
    let (status, _, _) = get(&node, "/never-seen", &[]).await;
    assert_eq!(status, 404, "the origin's own 404 passes through");

    // A successful POST invalidates the stored URL (RFC 9111 4.4).
    get(&node, "/etag", &[]).await;
    let (status, _, _) =
        http_request(node.http.unwrap(), "POST", "/etag", &[], b"x".to_vec()).await;
    assert_eq!(status, 200);
    get(&node, "/etag", &[]).await;
    assert_eq!(origin.count("/etag"), 2);
}

/// No origin listening: 502; an origin slower than the first-byte timeout: 504.
#[tokio::test]
async fn unreachable_and_slow_origins() {
    let down = Node::start(&[
        "--origin",
        "http://127.0.0.1:9",
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let (status, headers, _) = get(&down, "/anything", &[]).await;
    assert_eq!(status, 502);
    assert!(headers.contains_key("cache-status"));

    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\nfirst_byte_timeout_ms = 50\nretries = 0\n",
        crate::support::repo_root().join("zones").display(),
        origin.url()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    let (status, _, body) = get(&node, "/slow", &[]).await;
    assert_eq!(status, 504, "{body}");
}

/// stale-while-revalidate: the stale copy is served at once and refreshed once in the background.
#[tokio::test]
async fn stale_while_revalidate_refreshes_in_the_background() {
    let origin = Origin::start().await;
    let node = start(&origin);
    assert_eq!(get(&node, "/swr", &[]).await.2, "version 1");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, headers, body) = get(&node, "/swr", &[]).await;
    assert_eq!((status, body.as_str()), (200, "version 1"));
    assert!(
        cache_status(&headers).contains("stale-while-revalidate"),
        "{headers:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // Under load the refreshed copy may itself go stale and refresh again before the loop
    // sees it: any later version shows the refresh landed.
    while get(&node, "/swr", &[]).await.2 == "version 1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the background refresh never landed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(origin.count("/swr") >= 2);
}

/// curl over TLS 1.3 and HTTP/2 to the proxy: the second request is a hit.
#[test]
fn curl_over_tls_and_http2() {
    if !crate::support::have_tool("curl") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let node = start(&origin);
    let cert = node.certificate.clone().expect("self-signed certificate");
    let url = format!("https://localhost:{}/cached", node.https.unwrap().port());
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let out = std::process::Command::new("curl")
            .args(["-sv", "--http2", "--cacert", cert.to_str().unwrap(), &url])
            .output()
            .unwrap();
        let verbose = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            verbose.contains("TLSv1.3") && verbose.contains("HTTP/2 200"),
            "{verbose}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from /cached");
        let status = verbose
            .lines()
            .find(|l| l.starts_with("< cache-status:"))
            .unwrap_or_default()
            .to_string();
        statuses.push(status);
    }
    assert_eq!(statuses[1], "< cache-status: edgenode; hit", "{statuses:?}");
    assert_eq!(origin.count("/cached"), 1);
}

/// A stale object with a validator is revalidated: the origin's 304 refreshes the stored copy,
/// and clients' own conditionals never reach the origin on a cache fill.
#[tokio::test]
async fn stale_objects_are_revalidated_with_their_validators() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let (_, _, body) = get(
        &node,
        "/validated",
        &[("if-none-match", "\"something-else\"")],
    )
    .await;
    assert_eq!(
        body, "hello from /validated",
        "the client's If-None-Match is not forwarded"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, headers, body) = get(&node, "/validated", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello from /validated"),
        "the 304 refreshed the stored body"
    );
    assert_eq!(
        cache_status(&headers),
        "edgenode; fwd=stale; fwd-status=304; stored",
        "RFC 9211: forwarded to validate a stale copy, which the 304 refreshed"
    );
    let (_, headers, _) = get(&node, "/validated", &[]).await;
    assert_eq!(
        cache_status(&headers),
        "edgenode; hit",
        "fresh again after revalidation"
    );
    assert_eq!(origin.count("/validated"), 2);
}

/// Objects over `proxy.max_object_size` stream through whole and are not stored.
#[tokio::test]
async fn large_objects_stream_through_uncached() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\nmax_object_size = \"64KiB\"\n",
        crate::support::repo_root().join("zones").display(),
        origin.url()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    for _ in 0..2 {
        let (status, headers, body) = get(&node, "/big", &[]).await;
        assert_eq!((status, body.len()), (200, 200 << 10));
        assert!(cache_status(&headers).contains("too-large"), "{headers:?}");
    }
    assert_eq!(
        origin.count("/big"),
        2,
        "one origin request each: the fill streams what it cannot store"
    );
    assert_eq!(
        get(&node, "/cached", &[]).await.0,
        200,
        "small objects are still stored"
    );
}

/// The cache key ignores the host's case and port: one object, stored once.
#[tokio::test]
async fn cache_keys_are_normalised() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let (_, headers, _) = get(&node, "/cached", &[("host", "Shop.Example.TEST:8080")]).await;
    assert_eq!(cache_status(&headers), "edgenode; fwd=miss; stored");
    let (_, headers, _) = get(&node, "/cached", &[("host", "shop.example.test")]).await;
    assert_eq!(cache_status(&headers), "edgenode; hit");
    let (_, headers, _) = get(&node, "/cached", &[("host", "other.example.test")]).await;
    assert_eq!(
        cache_status(&headers),
        "edgenode; fwd=miss; stored",
        "another host is another object"
    );
    assert_eq!(origin.count("/cached"), 2);
}

/// An origin that keeps failing opens its circuit: requests are refused at once instead of
/// waiting on it, until the open period ends.
#[tokio::test]
async fn failing_origins_open_their_circuit() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"http://127.0.0.1:9\"\nretries = 0\n\
         breaker_failures = 2\nbreaker_open_secs = 60\n",
        crate::support::repo_root().join("zones").display()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    for _ in 0..2 {
        let (status, _, body) = get(&node, "/x", &[]).await;
        assert_eq!(status, 502);
        assert!(!body.contains("circuit"), "{body}");
    }
    let (status, _, body) = get(&node, "/x", &[]).await;
    assert_eq!(status, 502);
    assert!(body.contains("circuit is open"), "{body}");
}

/// After the open period one request probes the origin while the circuit stays open to the
/// rest; the probe's success closes it, its failure opens it again.
#[tokio::test]
async fn a_half_open_circuit_lets_one_probe_through() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\nretries = 0\n\
         breaker_failures = 2\nbreaker_open_secs = 1\n",
        crate::support::repo_root().join("zones").display(),
        origin.url()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    let addr = node.http.unwrap();
    // Distinct URLs, so that the cache's coalescing plays no part.
    let burst = |from: usize| async move {
        let requests = (from..from + 10).map(|i| async move {
            let path = format!("/cached?{i}");
            http_request(addr, "GET", &path, &[], Vec::new()).await.0
        });
        futures_util::future::join_all(requests).await
    };
    origin.failing.store(true, Ordering::SeqCst);
    for i in 0..2 {
        assert_eq!(get(&node, &format!("/cached?f{i}"), &[]).await.0, 500);
    }
    assert_eq!(origin.count("/cached"), 2);
    let (_, _, body) = get(&node, "/cached?open", &[]).await;
    assert!(body.contains("circuit is open"), "{body}");
    assert_eq!(origin.count("/cached"), 2, "an open circuit sends nothing");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    burst(0).await;
    assert_eq!(origin.count("/cached"), 3, "one probe, and it failed");

    origin.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&node, "/cached?probe", &[]).await.0, 200);
    let statuses = burst(100).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        origin.count("/cached"),
        14,
        "closed again: everything goes through"
    );
}
