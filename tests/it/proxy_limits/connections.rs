//! `http.max_connections`: beyond it a new connection is closed at once, and room comes back
//! as connections close.

use std::time::Duration;

use super::{Raw, assert_hits, still_serves};
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
