//! `http.max_connections`: beyond it a new connection is closed at once, and room comes back
//! as connections close. `http.idle_timeout_ms`: an HTTP/2 connection with no request in
//! flight is closed with GOAWAY, however long a request in flight takes.

use std::time::{Duration, Instant};

use super::{Raw, assert_hits, h2_client, h2_get, still_serves};
use crate::origin::{Origin, node_for};

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let origin = Origin::start().await;
    let node = node_for(
        &origin,
        "[http]\nmax_connections = 2\nheader_timeout_ms = 10000\n",
    );
    let addr = node.http.unwrap();
    // Two idle connections take every place (they have not sent a request yet).
    let first = Raw::connect(addr).await;
    let mut second = Raw::connect(addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(first.is_open() && second.is_open());
    let mut third = Raw::connect(addr).await;
    assert!(
        third.closed_within(Duration::from_secs(2)).await,
        "a third connection must be closed at once"
    );
    assert_hits(&node, "connections", 1).await;
    // One closes; a client is served again.
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    still_serves(&node).await;
    assert!(
        second
            .send(b"GET /cached HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .await
    );
    let (status, _) = second.response().await.expect("served");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn idle_http2_connections_are_closed_and_busy_ones_kept() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "[http]\nidle_timeout_ms = 400\n");
    let (client, connection) = h2_client(node.http.unwrap()).await;
    let get = |path: &str| {
        let request = hyper::Request::get(format!("http://a.test{path}"))
            .body(())
            .unwrap();
        h2_get(client.clone(), request)
    };
    // A request every 150 ms for over three idle timeouts: the connection stays.
    let busy_until = Instant::now() + Duration::from_millis(1300);
    while Instant::now() < busy_until {
        assert_eq!(get("/cached").await.0, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // A request held by the origin for longer than the idle timeout is not cut off.
    let held = tokio::spawn(get("/hold/1"));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(!connection.is_finished(), "closed with a request in flight");
    origin.release();
    assert_eq!(held.await.unwrap(), (200, "held".to_string()));
    // Then nothing: GOAWAY, and the client's connection ends, after the timeout, not before.
    let idle_from = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), connection)
        .await
        .expect("an idle connection must be closed")
        .unwrap();
    let idled = idle_from.elapsed();
    assert!(idled >= Duration::from_millis(350), "{idled:?}");
    assert_hits(&node, "idle_timeout", 1).await;
    still_serves(&node).await;
}
