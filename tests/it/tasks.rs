//! Issue 18, finding 10: background tasks (fills, recursive answers for UDP clients, preload
//! jobs) are bounded per kind (`[tasks]`), reported (`edgenode_tasks_*`), and shutdown waits
//! for them up to a grace period, then cancels them.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::origin::{Origin, node_for};
use crate::support::{Node, http_request, metric, metrics_text};

fn terminate(node: &Node) {
    let status = Command::new("kill")
        .args(["-TERM", &node.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A fill whose client went away (held at the origin), started before SIGTERM.
async fn abandoned_fill(origin: &Origin, node: &Node, path: &str) {
    let proxy = node.http.unwrap();
    let path = path.to_string();
    let client = tokio::spawn(async move { http_request(proxy, "GET", &path, &[], vec![]).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while origin.holding() == 0 {
        assert!(
            Instant::now() < deadline,
            "the fill never reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.abort();
    let _ = client.await;
}

async fn wait_exit(node: &mut Node, within: Duration) -> Duration {
    let started = Instant::now();
    while !node.exited() {
        assert!(started.elapsed() < within, "still running after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Shutdown waits for a fill in flight (its client long gone) to finish and store.
#[tokio::test]
async fn shutdown_waits_for_a_fill_in_flight() {
    let origin = Origin::start().await;
    let mut node = node_for(&origin, "");
    abandoned_fill(&origin, &node, "/hold/a").await;
    terminate(&node);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!node.exited(), "exited with a fill in flight");
    origin.release();
    let took = wait_exit(&mut node, Duration::from_secs(3)).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(origin.holding(), 0);
}

/// A fill that does not end within the grace period (5 s) is cancelled, and the node exits.
#[tokio::test]
async fn shutdown_cancels_a_fill_past_the_grace_period() {
    let origin = Origin::start().await;
    let mut node = node_for(&origin, "");
    abandoned_fill(&origin, &node, "/hold/stuck").await;
    let started = Instant::now();
    terminate(&node);
    wait_exit(&mut node, Duration::from_secs(9)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4), "did not wait: {took:?}");
}

/// With `tasks.fills = 1`, a second fill while one runs is refused with 503 and
/// `Retry-After`, counted, and the running one is reported.
#[tokio::test]
async fn fills_beyond_the_bound_are_refused_and_counted() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "[tasks]\nfills = 1\n");
    let proxy = node.http.unwrap();
    let held =
        tokio::spawn(async move { http_request(proxy, "GET", "/hold/x", &[], vec![]).await });
    while origin.holding() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, headers, _) = http_request(proxy, "GET", "/cached", &[], vec![]).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    let text = metrics_text(node.admin.unwrap()).await;
    assert_eq!(
        metric(&text, "edgenode_tasks_running{kind=\"fill\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "edgenode_tasks_refused_total{kind=\"fill\"}"),
        1.0
    );
    origin.release();
    let (status, _, _) = held.await.unwrap();
    assert_eq!(status, 200);
    // Its place is free again.
    let (status, _, _) = http_request(proxy, "GET", "/cached", &[], vec![]).await;
    assert_eq!(status, 200);
}

/// With `tasks.preload_jobs = 1`, a second job while one runs gets 503.
#[tokio::test]
async fn preload_jobs_beyond_the_bound_are_refused() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "[tasks]\npreload_jobs = 1\n");
    let admin = node.admin.unwrap();
    let post = |url: &'static str| async move {
        let body = format!("[\"{url}\"]");
        let headers = [("content-type", "application/json")];
        http_request(admin, "POST", "/admin/preload", &headers, body.into_bytes()).await
    };
    let (status, _, _) = post("http://shop.test/hold/p").await;
    assert_eq!(status, 202);
    let (status, headers, body) = post("http://shop.test/cached").await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains_key("retry-after"));
    origin.release();
    let text = metrics_text(node.admin.unwrap()).await;
    assert_eq!(
        metric(&text, "edgenode_tasks_refused_total{kind=\"preload\"}"),
        1.0
    );
}

/// With `tasks.recursion = 1` and a forwarder that never answers, one query waits in its task
/// and the others are dropped, counted.
#[tokio::test]
async fn recursive_answers_beyond_the_bound_are_dropped_and_counted() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let forwarder = silent.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[recursion]\nforwarders = [\"{forwarder}\"]\n[tasks]\nrecursion = 1\n");
    let node = Node::with_zones_and(dir.path(), &extra);
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for id in 0..5u16 {
        let mut query = hickory_proto::op::Message::query();
        query.metadata.id = id;
        query.metadata.recursion_desired = true;
        let name = hickory_proto::rr::Name::from_ascii(format!("n{id}.elsewhere.test.")).unwrap();
        query.add_query(hickory_proto::op::Query::query(
            name,
            hickory_proto::rr::RecordType::A,
        ));
        let bytes = query.to_vec().unwrap();
        client.send_to(&bytes, node.dns()).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics_text(node.admin.unwrap()).await;
        let refused = metric(&text, "edgenode_tasks_refused_total{kind=\"recursion\"}");
        if refused >= 4.0 {
            assert_eq!(
                metric(&text, "edgenode_tasks_running{kind=\"recursion\"}"),
                1.0
            );
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(silent);
}
