//! The proxy's fills as clients see them while the origin is still sending: bodies streamed
//! to every waiting client as they arrive and stored once complete, one origin request per
//! variant, responses that must not be shared, and bodies that fail half-way.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use tokio::sync::mpsc;

use crate::support::Node;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type OriginBody = UnsyncBoxBody<Bytes, BoxError>;
pub type Handler = dyn Fn(&Request<Incoming>) -> Response<OriginBody> + Send + Sync;

/// An origin on 127.0.0.1:0 answering with `handler`, counting requests by path and
/// Accept-Language.
pub struct Origin {
    addr: SocketAddr,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Origin {
    pub async fn start(handler: Arc<Handler>) -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let shared = Arc::clone(&counts);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (counts, handler) = (Arc::clone(&shared), Arc::clone(&handler));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let language = req
                            .headers()
                            .get("accept-language")
                            .map(|v| v.to_str().unwrap().to_string());
                        let key = match language {
                            Some(language) => format!("{} {language}", req.uri().path()),
                            None => req.uri().path().to_string(),
                        };
                        *counts.lock().unwrap().entry(key).or_default() += 1;
                        let response = handler(&req);
                        async move {
                            // Lets concurrent clients pile up behind the first one's fill.
                            if response.headers().contains_key("x-delay") {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Origin { addr, counts }
    }

    pub fn count(&self, key: &str) -> usize {
        self.counts.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn node(&self, extra: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"http://{}\"\n{extra}",
            crate::support::repo_root().join("zones").display(),
            self.addr
        );
        let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
        let node = Node::with_config(&config);
        std::mem::forget(dir);
        node
    }
}

pub fn full(text: impl Into<Bytes>) -> OriginBody {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn response(headers: &[(&str, &str)], body: OriginBody) -> Response<OriginBody> {
    let mut builder = Response::builder();
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).unwrap()
}

/// A request to the node's plain HTTP listener; the response's body is left unread.
pub async fn send(node: &Node, path: &str, headers: &[(&str, &str)]) -> Response<Incoming> {
    send_to(node.http.unwrap(), path, headers).await
}

pub async fn send_to(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .uri(path)
        .header("host", "shop.example.test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::new())).unwrap();
    sender.send_request(request).await.unwrap()
}

pub async fn text(response: Response<Incoming>) -> String {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

pub fn cache_status(response: &Response<Incoming>) -> String {
    let value = response.headers().get("cache-status");
    value.map_or(String::new(), |v| v.to_str().unwrap().to_string())
}

/// The first client gets the first part of the body while the origin is still sending the
/// rest, a client arriving meanwhile shares the same fetch, and the object is stored whole.
#[tokio::test]
async fn bodies_stream_to_waiting_clients_while_being_stored() {
    let (sender, receiver) = mpsc::channel::<Bytes>(4);
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let origin = Origin::start(Arc::new(move |_req: &Request<Incoming>| {
        let receiver = receiver.lock().unwrap().take().expect("one origin request");
        let chunks = tokio_stream_of(receiver).map(|c| Ok::<_, BoxError>(Frame::data(c)));
        response(
            &[("cache-control", "max-age=60")],
            BodyExt::boxed_unsync(StreamBody::new(chunks)),
        )
    }))
    .await;
    let node = origin.node("");

    sender.send(Bytes::from("first part, ")).await.unwrap();
    let first = send(&node, "/growing", &[]).await;
    assert_eq!(cache_status(&first), "edgenode; fwd=miss; stored");
    let mut first = first.into_body();
    let chunk = tokio::time::timeout(Duration::from_secs(5), first.frame())
        .await
        .expect("the first part arrives before the origin has finished")
        .unwrap()
        .unwrap();
    assert_eq!(chunk.into_data().unwrap(), "first part, ");

    let second = send(&node, "/growing", &[]).await;
    assert_eq!(
        cache_status(&second),
        "edgenode; fwd=miss; stored; collapsed"
    );
    sender.send(Bytes::from("second part")).await.unwrap();
    drop(sender);
    let rest = first.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second part");
    assert_eq!(text(second).await, "first part, second part");

    let third = send(&node, "/growing", &[]).await;
    assert_eq!(cache_status(&third), "edgenode; hit");
    assert_eq!(text(third).await, "first part, second part");
    assert_eq!(origin.count("/growing"), 1);
}

/// `tokio::sync::mpsc::Receiver` as a stream.
pub fn tokio_stream_of(receiver: mpsc::Receiver<Bytes>) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
}

fn vary_origin() -> Arc<Handler> {
    Arc::new(|req: &Request<Incoming>| {
        let language = req
            .headers()
            .get("accept-language")
            .map_or("none".to_string(), |v| v.to_str().unwrap().to_string());
        let cache_control = match req.uri().path() {
            "/short" => "max-age=1, stale-if-error=60",
            _ => "max-age=60",
        };
        if req.headers().contains_key("x-fail") {
            return Response::builder().status(503).body(full("down")).unwrap();
        }
        response(
            &[
                ("cache-control", cache_control),
                ("vary", "Accept-Language"),
                ("x-delay", "1"),
            ],
            full(format!("in {language}")),
        )
    })
}

/// A URL's second and later variants are coalesced like its first: many clients asking for
/// a variant not yet stored cause one origin request for it.
#[tokio::test]
async fn every_variant_is_fetched_once_however_many_ask() {
    let origin = Origin::start(vary_origin()).await;
    let node = origin.node("");
    let first = send(&node, "/page", &[("accept-language", "en")]).await;
    assert_eq!(text(first).await, "in en");

    let addr = node.http.unwrap();
    let mut clients = Vec::new();
    for i in 0..60 {
        let language = if i % 2 == 0 { "fr" } else { "de" };
        clients.push(tokio::spawn(async move {
            let response = send_to(addr, "/page", &[("accept-language", language)]).await;
            (language, text(response).await)
        }));
    }
    for client in clients {
        let (language, body) = client.await.unwrap();
        assert_eq!(body, format!("in {language}"));
    }
    assert_eq!(origin.count("/page en"), 1);
    assert_eq!(origin.count("/page fr"), 1, "one fetch for the fr variant");
    assert_eq!(origin.count("/page de"), 1, "one fetch for the de variant");
    for language in ["en", "fr", "de"] {
        let response = send(&node, "/page", &[("accept-language", language)]).await;
        assert_eq!(cache_status(&response), "edgenode; hit", "{language}");
        assert_eq!(text(response).await, format!("in {language}"));
    }
}

/// stale-if-error covers every variant, not only the first one stored.
#[tokio::test]
async fn later_variants_are_served_stale_when_the_origin_fails() {
    let origin = Origin::start(vary_origin()).await;
    let node = origin.node("");
    for language in ["en", "fr"] {
        let response = send(&node, "/short", &[("accept-language", language)]).await;
        assert_eq!(text(response).await, format!("in {language}"));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stale = send(
        &node,
        "/short",
        &[("accept-language", "fr"), ("x-fail", "1")],
    )
    .await;
    assert_eq!(stale.status(), 200);
    assert_eq!(
        cache_status(&stale),
        "edgenode; hit; detail=\"stale-if-error\""
    );
    assert_eq!(text(stale).await, "in fr");
}

/// A response that may not be stored (private) is not handed to the clients that waited on
/// its fetch: each gets its own.
#[tokio::test]
async fn unshareable_responses_are_not_given_to_waiting_clients() {
    let origin = Origin::start(Arc::new(|req: &Request<Incoming>| {
        let user = req
            .headers()
            .get("x-user")
            .map_or("nobody".to_string(), |v| v.to_str().unwrap().to_string());
        response(
            &[("cache-control", "private, max-age=60"), ("x-delay", "1")],
            full(format!("account of {user}")),
        )
    }))
    .await;
    let node = origin.node("");
    let addr = node.http.unwrap();
    let mut clients = Vec::new();
    for i in 0..20 {
        clients.push(tokio::spawn(async move {
            let user = format!("user{i}");
            let response = send_to(addr, "/account", &[("x-user", &user)]).await;
            (user, text(response).await)
        }));
    }
    for client in clients {
        let (user, body) = client.await.unwrap();
        assert_eq!(body, format!("account of {user}"));
    }
    assert_eq!(origin.count("/account"), 20);
}

/// A body that ends early reaches the client as an error (never as a complete response) and
/// is not stored; an object with no declared length that outgrows `max_object_size` streams
/// through whole and is not stored either.
#[tokio::test]
async fn cut_and_oversized_bodies_are_never_stored() {
    let origin = Origin::start(Arc::new(|req: &Request<Incoming>| {
        match req.uri().path() {
            "/cut" => {
                // Declares 100 bytes, sends 40, then (once they are on the wire) fails.
                let chunks = futures_util::stream::unfold(0, |step| async move {
                    let item = match step {
                        0 => Ok(Frame::data(Bytes::from(vec![b'a'; 40]))),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Err(BoxError::from("origin reset"))
                        }
                        _ => return None,
                    };
                    Some((item, step + 1))
                });
                let body = BodyExt::boxed_unsync(StreamBody::new(chunks));
                response(
                    &[("cache-control", "max-age=60"), ("content-length", "100")],
                    body,
                )
            }
            _ => {
                // 100 KiB in 10 chunks, no Content-Length (chunked).
                let chunks =
                    futures_util::stream::iter((0..10).map(|_| {
                        Ok::<_, BoxError>(Frame::data(Bytes::from(vec![b'b'; 10 << 10])))
                    }));
                response(
                    &[("cache-control", "max-age=60")],
                    BodyExt::boxed_unsync(StreamBody::new(chunks)),
                )
            }
        }
    }))
    .await;
    let node = origin.node("max_object_size = \"64KiB\"\n");
    for _ in 0..2 {
        let cut = send(&node, "/cut", &[]).await;
        assert_eq!(cut.status(), 200);
        let body = cut.into_body().collect().await;
        assert!(body.is_err(), "a cut body must not look complete");
    }
    assert_eq!(origin.count("/cut"), 2, "nothing was stored");

    for _ in 0..2 {
        let big = send(&node, "/chunked", &[]).await;
        assert_eq!(big.status(), 200, "{:?}", big.headers());
        assert_eq!(text(big).await.len(), 100 << 10);
    }
    assert_eq!(origin.count("/chunked"), 2, "too large to store");
}

/// A Range request that misses is answered 206 from the complete object once it is stored.
#[tokio::test]
async fn a_range_request_that_misses_gets_its_range() {
    let origin = Origin::start(Arc::new(|_req: &Request<Incoming>| {
        response(&[("cache-control", "max-age=60")], full("0123456789"))
    }))
    .await;
    let node = origin.node("");
    let partial = send(&node, "/digits", &[("range", "bytes=2-5")]).await;
    assert_eq!(partial.status(), 206);
    assert_eq!(
        partial.headers().get("content-range").unwrap(),
        "bytes 2-5/10"
    );
    assert_eq!(text(partial).await, "2345");
    let whole = send(&node, "/digits", &[]).await;
    assert_eq!(cache_status(&whole), "edgenode; hit");
    assert_eq!(text(whole).await, "0123456789");
}
