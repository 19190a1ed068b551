//! SIGTERM under load: the node stops accepting at once, and every request already in flight
//! is answered in full before it exits.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::origin::Origin;
use crate::support::{Node, http_request};

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish() {
    let origin = Origin::start().await;
    let node = Node::start(&[
        "--origin",
        &origin.url(),
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let proxy = node.http.unwrap();
    // 40 requests for objects the origin answers after 200 ms, half of them coalesced.
    let requests: Vec<_> = (0..40)
        .map(|i| {
            let path = format!("/slow?{}", i % 20);
            tokio::spawn(async move { http_request(proxy, "GET", &path, &[], Vec::new()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &node.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut answered = 0;
    for request in requests {
        let (status, _, body) = request.await.expect("no in-flight request fails");
        assert_eq!((status, &body[..]), (200, &b"hello from /slow"[..]));
        answered += 1;
    }
    assert_eq!(answered, 40);
    // New connections are refused once the listeners are closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(proxy).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        stopped.elapsed() < Duration::from_secs(6),
        "{:?}",
        stopped.elapsed()
    );
}
