//! Origin fetches under pressure: a client that stops reading does not stall the others, one
//! client cannot take every place for origin fetches, and a fetch whose clients have all gone
//! stops when much of it is left.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::Request;
use hyper::body::{Frame, Incoming};
use tokio::sync::mpsc;

use crate::proxy_stream::{
    BoxError, Origin, cache_status, full, response, send, send_to, text, tokio_stream_of,
};

/// Two clients share the fetch of a 32 MiB object too large to store; one never reads. After
/// `slow_reader_ms` with the other waiting on it, it is cut off, and the other gets the whole
/// object.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_not_waited_for() {
    let origin = Origin::start(Arc::new(|_req: &Request<Incoming>| {
        let length = (32usize << 20).to_string();
        response(
            &[
                ("cache-control", "max-age=60"),
                ("content-length", &length),
                // Both clients join before the first byte.
                ("x-delay", "1"),
            ],
            full(vec![b'v'; 32 << 20]),
        )
    }))
    .await;
    let node = origin.node("max_object_size = \"1MiB\"\nslow_reader_ms = 300\n");
    let (stuck, reading) = tokio::join!(send(&node, "/video", &[]), send(&node, "/video", &[]));
    assert_eq!(origin.count("/video"), 1, "one fetch for both");
    let whole = tokio::time::timeout(Duration::from_secs(20), text(reading))
        .await
        .expect("the reading client is not held back by the one that reads nothing");
    assert_eq!(whole.len(), 32 << 20);
    let cut = tokio::time::timeout(Duration::from_secs(5), stuck.into_body().collect()).await;
    assert!(
        matches!(cut, Ok(Err(_))),
        "the client that fell behind gets a cut body"
    );
    let metrics = crate::dns::http_get(node.admin.unwrap(), "/metrics").await;
    assert!(
        metrics.contains("edgenode_proxy_fill_limits_total{limit=\"slow_reader\"} 1"),
        "{metrics}"
    );
}

/// One client (behind a trusted proxy, as `X-Forwarded-For` names it) may have
/// `max_fills_per_client` fetches waiting on the origin; the next waits `fill_queue_ms` and
/// gets 503 with Retry-After, while another client is still served.
#[tokio::test]
async fn one_client_cannot_take_every_origin_fetch() {
    let origin = Origin::start(Arc::new(|_req: &Request<Incoming>| {
        response(
            &[("cache-control", "max-age=60"), ("x-delay", "1")],
            full("slow page"),
        )
    }))
    .await;
    let node = origin.node(
        "trusted_proxies = [\"127.0.0.0/8\"]\nmax_fills_per_client = 2\nfill_queue_ms = 100\n",
    );
    let greedy = [("x-forwarded-for", "192.0.2.1")];
    let other = [("x-forwarded-for", "192.0.2.2")];
    let (a, b, c, d) = tokio::join!(
        send(&node, "/a", &greedy),
        send(&node, "/b", &greedy),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            send(&node, "/c", &greedy).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            send(&node, "/d", &other).await
        },
    );
    let statuses = [a.status(), b.status(), c.status(), d.status()].map(|s| s.as_u16());
    assert_eq!(statuses, [200, 200, 503, 200]);
    assert_eq!(c.headers()["retry-after"], "1");
    assert_eq!(origin.count("/c"), 0, "never sent to the origin");
    // Its place is free again once its fetches are done.
    assert_eq!(text(send(&node, "/c", &greedy).await).await, "slow page");
    let metrics = crate::dns::http_get(node.admin.unwrap(), "/metrics").await;
    assert!(
        metrics.contains("edgenode_proxy_fill_limits_total{limit=\"client\"} 1"),
        "{metrics}"
    );
}

/// A storable object's only client leaves after the first megabyte of eight: the fetch stops
/// instead of fetching seven more for nobody (the origin sees its body dropped).
#[tokio::test]
async fn a_fetch_nobody_waits_for_stops() {
    let (sender, receiver) = mpsc::channel::<Bytes>(1);
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let origin = Origin::start(Arc::new(move |_req: &Request<Incoming>| {
        let receiver = receiver.lock().unwrap().take().expect("one origin request");
        let chunks = tokio_stream_of(receiver).map(|c| Ok::<_, BoxError>(Frame::data(c)));
        let length = (8usize << 20).to_string();
        response(
            &[("cache-control", "max-age=60"), ("content-length", &length)],
            BodyExt::boxed_unsync(StreamBody::new(chunks)),
        )
    }))
    .await;
    let node = origin.node("max_object_size = \"16MiB\"\n");
    sender.send(Bytes::from(vec![b'm'; 1 << 20])).await.unwrap();
    let leaving = send(&node, "/movie", &[]).await;
    assert_eq!(cache_status(&leaving), "edgenode; fwd=miss; stored");
    let mut body = leaving.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    // The fill notices at its next piece, and drops the origin's body.
    let _ = sender.send(Bytes::from(vec![b'm'; 1 << 20])).await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), async {
        while sender.send(Bytes::from_static(b"m")).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(stopped.await.is_ok(), "the fetch went on for nobody");
    let next = send_to(node.http.unwrap(), "/movie", &[]).await;
    assert!(
        !cache_status(&next).contains("hit"),
        "nothing half-fetched is stored"
    );
    let metrics = crate::dns::http_get(node.admin.unwrap(), "/metrics").await;
    assert!(
        metrics.contains("edgenode_proxy_fill_limits_total{limit=\"abandoned\"} 1"),
        "{metrics}"
    );
}
