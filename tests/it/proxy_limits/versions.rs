//! HTTP/1.x minor versions (RFC 9110 2.5): a request line with `HTTP/1.2` .. `HTTP/1.9` is read
//! as HTTP/1.1 and answered (hyper alone answers 400), on a connection then closed after the
//! response; other versions are unchanged.

use std::time::Duration;

use super::Raw;
use crate::origin::{Origin, node_for};

#[tokio::test]
async fn higher_minor_versions_are_served_as_http_1_1() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let addr = node.http.unwrap();
    for version in ["HTTP/1.2", "HTTP/1.9"] {
        let mut client = Raw::connect(addr).await;
        let request = format!("GET /cached {version}\r\nHost: a.test\r\n\r\n");
        client.send(request.as_bytes()).await;
        let (status, text) = client.response().await.expect("an answer");
        assert_eq!(status, 200, "{version}: {text}");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
        assert!(text.ends_with("hello from /cached"), "{text}");
        assert!(client.closed_within(Duration::from_secs(5)).await);
    }
    // 1.1 keeps its connection for another request; 2.0 in an HTTP/1 request line is refused.
    let mut client = Raw::connect(addr).await;
    for _ in 0..2 {
        client
            .send(b"GET /cached HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .await;
        let (status, text) = client.response().await.expect("an answer");
        assert_eq!(status, 200);
        assert!(
            !text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
    let mut client = Raw::connect(addr).await;
    client
        .send(b"GET /cached HTTP/2.0\r\nHost: a.test\r\n\r\n")
        .await;
    let answer = client.response().await;
    assert!(
        answer.as_ref().is_none_or(|(status, _)| *status >= 400),
        "{answer:?}"
    );
    assert_eq!(origin.count("/cached"), 1);
}
