//! The proxy's limits against abusive clients: slow headers and bodies, oversized heads and
//! bodies, ambiguous framing, HTTP/2 stream limits and rapid reset, and cache keys that one
//! client cannot use to poison another's answer. Malformed and slow input goes over raw TCP
//! sockets; HTTP/2 (in `http2`) over the `h2` crate's client and raw frames.

mod connections;
mod http2;
mod http2_tls;
mod versions;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::dns::http;
use crate::origin::{Origin, cache_status, get, node_for, reflected};
use crate::support::{Node, http_request};
use http2::{close, h2_client, h2_get};

/// A raw HTTP/1.1 connection: bytes in, the response parsed just enough to assert on.
struct Raw {
    stream: TcpStream,
    /// Bytes read but not yet returned as a response.
    buffer: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Raw {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Writes `bytes`; false once the server has closed the connection.
    async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// The next response within 10 s: (status, head and body as text); None when the
    /// connection closed (or reset) first.
    async fn response(&mut self) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(length) = complete_response(&self.buffer) {
                let response: Vec<u8> = self.buffer.drain(..length).collect();
                let text = String::from_utf8_lossy(&response).into_owned();
                let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                return Some((status, text));
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => panic!("no response within 10 s: {:?}", self.text()),
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether the server closes the connection within `limit` (reading and dropping anything
    /// it still sends).
    async fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut chunk = [0u8; 8192];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Open, with nothing to read, at this moment.
    fn is_open(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer).into_owned()
    }
}

/// The length of the first whole response in `buffer` (head and a Content-Length or chunked
/// body), if it is all there.
fn complete_response(buffer: &[u8]) -> Option<usize> {
    let head_end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    match length {
        Some(length) => (buffer.len() >= head_end + length).then_some(head_end + length),
        None if head.contains("transfer-encoding: chunked") => buffer[head_end..]
            .windows(5)
            .position(|w| w == b"0\r\n\r\n")
            .map(|end| head_end + end + 5),
        None => Some(head_end),
    }
}

/// The body of a response `text`.
fn body_of(text: &str) -> &str {
    text.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// Asserts that `edgenode_http_limits_total{limit="..."}` reaches `expected` and stays there
/// (a connection's count lands when its task ends, just after the client saw it close).
async fn assert_hits(node: &Node, limit: &str, expected: u64) {
    let prefix = format!("edgenode_http_limits_total{{limit=\"{limit}\"}} ");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, metrics) = http(node.admin.unwrap(), "GET", "/metrics", None).await;
        let hits = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap());
        if hits >= expected || Instant::now() > deadline {
            assert_eq!(hits, expected, "{limit}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain client is still served, quickly.
async fn still_serves(node: &Node) {
    let started = Instant::now();
    let (status, _, body) = get(node, "/cached", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /cached"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// Slowloris: a request line, then header bytes one at a time. hyper ends the header section's
/// time at `http.header_timeout_ms`, and the accept loop does the same for a client that sends
/// nothing or half an HTTP/2 preface; an idle keep-alive connection is closed as well.
#[tokio::test]
async fn slow_headers_are_cut_off_at_the_header_timeout() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "[http]\nheader_timeout_ms = 300\n");
    let addr = node.http.unwrap();

    let started = Instant::now();
    let mut slow = Raw::connect(addr).await;
    slow.send(b"GET /cached HTTP/1.1\r\nHost: example.test\r\n")
        .await;
    for byte in b"X-Slow: ".iter().chain([b'a'; 200].iter()) {
        if !slow.send(&[*byte]).await || !slow.is_open() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(slow.closed_within(Duration::from_secs(5)).await);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}"
    );
    assert!(
        slow.text().is_empty() || slow.text().starts_with("HTTP/1.1 408"),
        "{:?}",
        slow.text()
    );

    // Nothing at all; half an HTTP/2 preface; a finished request, then silence.
    for opening in [
        &b""[..],
        b"PRI * HTTP/2.0\r\n",
        b"GET /cached HTTP/1.1\r\nHost: a.test\r\n\r\n",
    ] {
        let started = Instant::now();
        let mut client = Raw::connect(addr).await;
        client.send(opening).await;
        if !opening.is_empty() && opening.starts_with(b"GET") {
            assert_eq!(client.response().await.map(|r| r.0), Some(200));
        }
        assert!(
            client.closed_within(Duration::from_secs(5)).await,
            "{opening:?} still open"
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(250),
            "{opening:?}: {elapsed:?}"
        );
    }
    assert_eq!(
        origin.total(),
        1,
        "only the finished request reached the origin"
    );
    assert_hits(&node, "header_timeout", 4).await;
    still_serves(&node).await;
}

/// 50 slowloris connections held open do not slow a plain client down; they are closed at the
/// header timeout.
#[tokio::test]
async fn slow_clients_do_not_delay_others() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "[http]\nheader_timeout_ms = 8000\n");
    let addr = node.http.unwrap();
    let connected = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut client = Raw::connect(addr).await;
        client.send(b"GET /cached HTTP/1.1\r\nX-Slow: ").await;
        slow.push(client);
    }
    // One header byte per connection every 100 ms; after half a second, five plain requests.
    let mut served = false;
    while slow.iter().any(Raw::is_open) {
        let elapsed = connected.elapsed();
        assert!(elapsed < Duration::from_secs(20), "slow clients still open");
        for client in slow.iter_mut().filter(|c| c.is_open()) {
            client.send(b"a").await;
        }
        if elapsed > Duration::from_millis(500) && !served {
            let open = || slow.iter().filter(|c| c.is_open()).count();
            assert_eq!(open(), 50, "slow clients cut off after {elapsed:?}");
            for _ in 0..5 {
                still_serves(&node).await;
            }
            assert_eq!(
                open(),
                50,
                "slow clients cut off after {:?}",
                connected.elapsed()
            );
            served = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served);
    assert!(connected.elapsed() >= Duration::from_millis(7500));
    still_serves(&node).await;
}

/// A body that stalls gets 408 at `http.body_timeout_ms`, and the origin never sees a part of
/// the request.
#[tokio::test]
async fn stalled_request_bodies_get_408() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "[http]\nbody_timeout_ms = 300\n");
    let addr = node.http.unwrap();
    let stalls: [&[u8]; 2] = [
        b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100\r\n\r\nonly ten b",
        b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    ];
    for stall in stalls {
        let started = Instant::now();
        let mut client = Raw::connect(addr).await;
        client.send(stall).await;
        let (status, text) = client.response().await.expect("a 408");
        assert_eq!(status, 408, "{text}");
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
        assert!(client.closed_within(Duration::from_secs(5)).await);
    }
    assert_eq!(origin.total(), 0);
    assert_hits(&node, "body_timeout", 2).await;

    let (status, _, body) =
        http_request(addr, "POST", "/echo", &[], b"a whole body".to_vec()).await;
    assert_eq!((status, &body[..]), (200, &b"a whole body"[..]));
    assert_eq!(origin.count("POST /echo"), 1);
}

/// Over `http.max_headers` fields or `http.max_header_bytes` of head: 431 and the connection
/// closed; at the limits: served.
#[tokio::test]
async fn oversized_request_heads_get_431() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let addr = node.http.unwrap();
    let head = |fields: usize, big: usize| {
        let mut head = String::from("GET /cached HTTP/1.1\r\nHost: a.test\r\n");
        for i in 1..fields {
            head.push_str(&format!("X-Field-{i}: {i}\r\n"));
        }
        if big > 0 {
            head.push_str(&format!("X-Big: {}\r\n", "b".repeat(big)));
        }
        head + "\r\n"
    };
    // 100 fields (Host included) and a 60 KiB field are within the defaults.
    for (fields, big, expected) in [
        (100, 0, 200),
        (101, 0, 431),
        (1, 60 << 10, 200),
        (1, 70 << 10, 431),
    ] {
        let mut client = Raw::connect(addr).await;
        client.send(head(fields, big).as_bytes()).await;
        let (status, text) = client.response().await.expect("a response");
        assert_eq!(status, expected, "{fields} fields, {big} bytes: {text}");
        if expected == 431 {
            assert!(client.closed_within(Duration::from_secs(5)).await);
        }
    }
    assert_hits(&node, "header_too_large", 2).await;
    still_serves(&node).await;
}

/// One client address holds at most `http.max_connections_per_client` connections of a
/// listener; another address still gets in (issue 18 finding 7).
#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let origin = Origin::start().await;
    let node = node_for(
        &origin,
        "[http]\nmax_connections = 20\nmax_connections_per_client = 5\n",
    );
    let addr = node.http.unwrap();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(Raw::connect(addr).await);
    }
    let mut sixth = Raw::connect(addr).await;
    assert!(
        sixth.closed_within(Duration::from_secs(2)).await,
        "the sixth is closed at once"
    );
    // From 127.0.1.1, another client: served.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.1.1:0".parse().unwrap()).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut other = Raw {
        stream,
        buffer: Vec::new(),
    };
    other
        .send(b"GET /cached HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await;
    let (status, _) = other.response().await.expect("an answer");
    assert_eq!(status, 200);
    assert_hits(&node, "client_connections", 1).await;
    drop(held);
}

/// A request target over `http.max_uri_bytes` gets 414 (RFC 9112 3) and never reaches the
/// origin; one too long for the whole request head still gets hyper's 431.
#[tokio::test]
async fn overlong_request_targets_get_414() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let addr = node.http.unwrap();
    for (length, expected) in [
        (16 << 10, 200),
        (20 << 10, 414),
        (60 << 10, 414),
        (100 << 10, 431),
    ] {
        let path = format!("/cached?{}", "q".repeat(length - "/cached?".len()));
        let mut client = Raw::connect(addr).await;
        client
            .send(format!("GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n").as_bytes())
            .await;
        let (status, text) = client.response().await.expect("a response");
        assert_eq!(status, expected, "{length}-byte target: {text}");
    }
    assert_eq!(origin.count("/cached"), 1, "only the one within the limit");
    assert_hits(&node, "uri_too_long", 2).await;
    still_serves(&node).await;
}

/// Over `proxy.max_request_body`: 413 before the body is sent (Content-Length, also with
/// `Expect: 100-continue`) or once it grows past the limit (chunked); never forwarded.
#[tokio::test]
async fn oversized_request_bodies_get_413() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "max_request_body = \"1KiB\"\n");
    let addr = node.http.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 700, "c".repeat(700));
    let requests = [
        "POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n"
            .to_string(),
        "POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1025\r\n\r\n".to_string(),
        format!("PUT /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n"),
    ];
    for request in &requests {
        let mut client = Raw::connect(addr).await;
        client.send(request.as_bytes()).await;
        let (status, text) = client.response().await.expect("a 413");
        assert_eq!(status, 413, "{text}");
        assert!(!text.contains("100 Continue"), "{text}");
        assert!(client.closed_within(Duration::from_secs(5)).await);
    }
    assert_eq!(origin.total(), 0);
    assert_hits(&node, "body_too_large", 3).await;
    let (status, _, body) = http_request(addr, "POST", "/echo", &[], vec![b'x'; 1024]).await;
    assert_eq!(
        (status, body.len()),
        (200, 1024),
        "exactly the limit is fine"
    );
}

/// Requests whose framing or host two parsers could read differently are refused with 400
/// (hyper's parser or the proxy's host check) and never reach the origin.
#[tokio::test]
async fn ambiguous_requests_are_refused_and_never_forwarded() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let addr = node.http.unwrap();
    let refused: [(&str, &[u8]); 12] = [
        (
            "two different Content-Lengths",
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "a list of different lengths",
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5, 6\r\n\r\nhello!",
        ),
        (
            "a signed length",
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: +5\r\n\r\nhello",
        ),
        (
            "a bad chunk size",
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a transfer coding other than chunked last",
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            b"POST /echo HTTP/1.0\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "an obs-fold continuation line",
            b"GET /cached HTTP/1.1\r\nHost: a.test\r\nX-Folded: one\r\n two\r\n\r\n",
        ),
        (
            "white space before the colon",
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length : 5\r\n\r\nhello",
        ),
        (
            "two Host lines",
            b"GET /cached HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
        ),
        (
            "no Host in HTTP/1.1",
            b"GET /cached HTTP/1.1\r\n\r\n",
        ),
        (
            "a Host with a path in it (key a.test/cached + /x)",
            b"GET /x HTTP/1.1\r\nHost: a.test/cached\r\n\r\n",
        ),
        (
            "userinfo in the target",
            b"GET http://user@a.test/cached HTTP/1.1\r\nHost: a.test\r\n\r\n",
        ),
    ];
    for (i, (what, request)) in refused.into_iter().enumerate() {
        let mut client = Raw::connect(addr).await;
        client.send(request).await;
        let answer = client.response().await;
        let (status, text) = answer.unwrap_or_else(|| panic!("{what}: closed, no answer"));
        assert_eq!(status, 400, "{what}: {text}");
        // The framing errors (the first eight) leave the connection unusable: it is closed.
        if i < 8 {
            let closed = client.closed_within(Duration::from_secs(5)).await;
            assert!(closed, "{what}: kept open");
        }
        assert_eq!(origin.total(), 0, "{what} reached the origin");
    }
    assert_hits(&node, "bad_request", 7).await;
    assert_hits(&node, "bad_body", 1).await;
    still_serves(&node).await;
}

/// Content-Length and Transfer-Encoding together: hyper frames the request by the chunked
/// coding alone and closes the connection after answering (RFC 9112 6.1), so bytes smuggled
/// behind the chunked body are never read as a request; the origin gets the request with a
/// length of its own.
#[tokio::test]
async fn length_and_chunked_together_cannot_smuggle_a_request() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let addr = node.http.unwrap();
    for method in ["POST /echo", "GET /cached"] {
        let mut client = Raw::connect(addr).await;
        let request = format!(
            "{method} HTTP/1.1\r\nHost: a.test\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n\
             3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n"
        );
        client.send(request.as_bytes()).await;
        let (status, text) = client.response().await.expect("an answer");
        assert_eq!(status, 200, "{text}");
        if method.starts_with("POST") {
            assert_eq!(body_of(&text), "abc", "{text}");
        }
        assert!(
            client.closed_within(Duration::from_secs(5)).await,
            "{method}: kept open"
        );
        assert!(
            !client.text().contains("HTTP/1.1"),
            "{method}: a second answer"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(origin.count("/smuggled"), 0);
    assert_eq!(origin.count("POST /echo"), 1);
}

/// One object per host however its case and port are written; the fields origins read as
/// host or URL overrides never reach the origin, so the answer one client fills the cache with
/// is the one a plain client would get; an absolute-form target's host is used for both the
/// key and the origin request; and a GET's body length is not forwarded without its body.
#[tokio::test]
async fn cache_keys_are_normalised_and_cannot_be_poisoned() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let addr = node.http.unwrap();
    let plain = reflected("example.test");
    let (_, headers, body) = get(&node, "/reflect", &[("host", "EXAMPLE.test:80")]).await;
    assert_eq!(
        (body.as_str(), cache_status(&headers).as_str()),
        (plain.as_str(), "edgenode; fwd=miss; stored")
    );
    for host in ["example.test", "Example.Test.", "example.test:8080"] {
        let (_, headers, body) = get(&node, "/reflect", &[("host", host)]).await;
        assert_eq!(
            (body.as_str(), cache_status(&headers).as_str()),
            (plain.as_str(), "edgenode; hit"),
            "{host}"
        );
    }
    assert_eq!(origin.count("/reflect"), 1);

    // The first client asks with overrides; the origin never sees them.
    let overrides = [
        ("host", "shop.test"),
        ("x-forwarded-host", "evil.test"),
        ("x-original-url", "/admin"),
        ("forwarded", "host=evil.test;proto=http"),
    ];
    let (_, _, poisoned) = get(&node, "/reflect", &overrides).await;
    let (_, headers, clean) = get(&node, "/reflect", &[("host", "shop.test")]).await;
    let expected = reflected("shop.test");
    assert_eq!(
        (poisoned.as_str(), clean.as_str()),
        (expected.as_str(), expected.as_str())
    );
    assert_eq!(cache_status(&headers), "edgenode; hit");
    assert_eq!(origin.count("/reflect"), 2);

    // Absolute-form: the target's host, not the Host field, for the key and for the origin.
    let mut client = Raw::connect(addr).await;
    client
        .send(b"GET http://Abs.test/reflect HTTP/1.1\r\nHost: decoy.test\r\n\r\n")
        .await;
    let (status, text) = client.response().await.expect("an answer");
    assert_eq!(
        (status, body_of(&text)),
        (200, reflected("abs.test").as_str())
    );
    let (_, headers, _) = get(&node, "/reflect", &[("host", "abs.test")]).await;
    assert_eq!(cache_status(&headers), "edgenode; hit");
    let (_, _, body) = get(&node, "/reflect", &[("host", "decoy.test")]).await;
    assert!(body.starts_with("host=decoy.test "), "{body}");
    assert_eq!(origin.count("/reflect"), 4);

    // A GET with a body: neither the body nor its length goes to the origin.
    let (status, _, body) = http_request(
        addr,
        "GET",
        "/reflect",
        &[("host", "body.test")],
        b"hello".to_vec(),
    )
    .await;
    assert_eq!((status, body), (200, Bytes::from(reflected("body.test"))));

    // HTTP/2: the :authority is the host.
    let (h2, connection) = h2_client(addr).await;
    let request = hyper::Request::get("http://H2.test/reflect")
        .body(())
        .unwrap();
    let (status, body) = h2_get(h2, request).await;
    assert_eq!((status, body), (200, reflected("h2.test")));
    close(connection).await;
}
