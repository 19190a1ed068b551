//! HTTP/2 limits: the stream limit for clients that keep to it (the `h2` client) and for those
//! that do not, rapid reset, and oversized header lists; the last two with frames written by
//! hand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::still_serves;
use crate::origin::{Origin, node_for};

/// An HTTP/2 client that follows the SETTINGS opens at most `http.max_streams` streams at once
/// (the rest wait in the client); the origin never sees more at a time.
#[tokio::test]
async fn http2_clients_get_the_stream_limit_and_keep_to_it() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "[http]\nmax_streams = 8\n");
    let (client, connection) = h2_client(node.http.unwrap()).await;
    // One exchange first, so that the server's SETTINGS are in.
    let request = hyper::Request::get("http://a.test/cached")
        .body(())
        .unwrap();
    assert_eq!(h2_get(client.clone(), request).await.0, 200);
    assert_eq!(client.current_max_send_streams(), 8);

    let mut requests = Vec::new();
    for i in 0..12 {
        let client = client.clone();
        let request = hyper::Request::get(format!("http://a.test/hold/{i}"))
            .body(())
            .unwrap();
        requests.push(tokio::spawn(async move { h2_get(client, request).await }));
    }
    wait_for_holding(&origin, 8).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((origin.holding(), origin.peak_holding()), (8, 8));
    origin.release();
    for request in requests {
        assert_eq!(request.await.unwrap(), (200, "held".to_string()));
    }
    assert_eq!(origin.peak_holding(), 8);
    close(connection).await;
}

/// A client that ignores the limit gets REFUSED_STREAM for every stream beyond it; the others
/// are served.
#[tokio::test]
async fn http2_streams_beyond_the_limit_are_refused() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "[http]\nmax_streams = 8\n");
    let mut conn = RawH2::connect(node.http.unwrap()).await;
    assert_eq!(conn.server_max_streams, Some(8));
    let mut burst = Vec::new();
    for i in 0..12u32 {
        burst.extend(headers_frame(2 * i + 1, &format!("/hold/{i}"), true));
    }
    conn.stream.write_all(&burst).await.unwrap();
    let mut refused = Vec::new();
    while refused.len() < 4 {
        match conn.frame().await {
            Some((RST_STREAM, id, payload)) if payload == [0, 0, 0, 7] => refused.push(id),
            Some(_) => {}
            None => panic!("connection closed; refused so far: {refused:?}"),
        }
    }
    assert_eq!(refused, [17, 19, 21, 23]);
    wait_for_holding(&origin, 8).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(origin.peak_holding(), 8);
    origin.release();
    let mut answered = Vec::new();
    while answered.len() < 8 {
        match conn.frame().await {
            Some((HEADERS, id, _)) => answered.push(id),
            Some(_) => {}
            None => panic!("connection closed; answered so far: {answered:?}"),
        }
    }
    answered.sort_unstable();
    assert_eq!(answered, [1, 3, 5, 7, 9, 11, 13, 15]);
}

/// Rapid reset (CVE-2023-44487): streams opened and reset at once, more than
/// `http.max_pending_resets`, end the connection with GOAWAY ENHANCE_YOUR_CALM.
#[tokio::test]
async fn http2_rapid_reset_closes_the_connection() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let mut conn = RawH2::connect(node.http.unwrap()).await;
    let mut burst = Vec::new();
    for i in 0..500u32 {
        let id = 2 * i + 1;
        burst.extend(headers_frame(id, "/cached", true));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes())); // CANCEL
    }
    // The server may close before it has read everything.
    let _ = conn.stream.write_all(&burst).await;
    let mut goaway = None;
    while let Some((kind, _, payload)) = conn.frame().await {
        if kind == GOAWAY {
            goaway = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        }
    }
    assert_eq!(goaway, Some(11), "GOAWAY with ENHANCE_YOUR_CALM");
    still_serves(&node).await;
}

/// An HTTP/2 header list over `http.max_header_bytes` gets 431.
#[tokio::test]
async fn http2_oversized_header_lists_get_431() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let mut conn = RawH2::connect(node.http.unwrap()).await;
    let mut block = header_block("/cached");
    // x-big: 70 KiB, a literal field without indexing and a new name.
    block.push(0x00);
    hpack_string(&mut block, b"x-big");
    hpack_string(&mut block, &vec![b'b'; 70 << 10]);
    let mut chunks = block.chunks(16 << 10).peekable();
    let mut first = true;
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let kind = if first { HEADERS } else { CONTINUATION };
        let flags = if first { END_STREAM } else { 0 } | if last { END_HEADERS } else { 0 };
        conn.stream
            .write_all(&frame(kind, flags, 1, chunk))
            .await
            .unwrap();
        first = false;
    }
    loop {
        match conn.frame().await {
            // :status 431 is not in HPACK's static table: a string literal, plain or
            // Huffman-coded ('4' 011010, '3' 011001, '1' 00001, then EOS padding; RFC 7541 B).
            Some((HEADERS, 1, payload)) => {
                let coded = |w: &[u8]| w == b"431" || w == [0x69, 0x90, 0xff];
                assert!(payload.windows(3).any(coded), "{payload:?}");
                break;
            }
            Some(_) => {}
            None => panic!("closed without an answer"),
        }
    }
    assert_eq!(origin.total(), 0);
    still_serves(&node).await;
}

/// A download that takes longer than `http.idle_timeout_ms` is activity: the connection gets
/// no GOAWAY while it streams, and takes the next request at once (issue 18 finding 9).
#[tokio::test]
async fn a_long_download_keeps_its_connection_from_idling() {
    use crate::proxy_stream::{BoxError, Origin as StreamOrigin, full, response};
    use futures_util::StreamExt;
    use http_body_util::{BodyExt, StreamBody};
    let origin = StreamOrigin::start(std::sync::Arc::new(
        |req: &hyper::Request<hyper::body::Incoming>| {
            if req.uri().path() != "/slow-download" {
                return response(&[("cache-control", "no-store")], full("next"));
            }
            // Ten pieces, 150 ms apart: 1.5 s, three idle timeouts.
            let pieces = futures_util::stream::iter(0..10).then(|_| async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                Ok::<_, BoxError>(hyper::body::Frame::data(Bytes::from(vec![b'd'; 1000])))
            });
            response(
                &[("cache-control", "no-store")],
                BodyExt::boxed_unsync(StreamBody::new(pieces)),
            )
        },
    ))
    .await;
    let node = origin.node("[http]\nidle_timeout_ms = 500\n");
    let (client, connection) = h2_client(node.http.unwrap()).await;
    let request = |path: &str| {
        hyper::Request::get(format!("http://shop.example.test{path}"))
            .body(())
            .unwrap()
    };
    let (status, body) = h2_get(client.clone(), request("/slow-download")).await;
    assert_eq!((status, body.len()), (200, 10_000));
    let (status, body) = h2_get(client, request("/next")).await;
    assert_eq!((status, body.as_str()), (200, "next"));
    close(connection).await;
}

async fn wait_for_holding(origin: &Origin, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while origin.holding() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} requests reached the origin",
            origin.holding()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An `h2` client over cleartext (prior knowledge) to `addr`, and the task driving its
/// connection: end it with `close` before the node is dropped, or the node's graceful stop
/// waits out its drain timeout for a client that cannot answer its GOAWAY.
pub(super) async fn h2_client(
    addr: SocketAddr,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}

/// Ends an `h2_client` connection (its socket is closed once the task is dropped).
pub(super) async fn close(connection: tokio::task::JoinHandle<()>) {
    connection.abort();
    let _ = connection.await;
}

/// Sends a body-less request (once the client may open a stream) and reads the whole answer:
/// (status, body).
pub(super) async fn h2_get(
    client: h2::client::SendRequest<Bytes>,
    request: hyper::Request<()>,
) -> (u16, String) {
    let mut client = client.ready().await.unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    (status, String::from_utf8(bytes).unwrap())
}

// HTTP/2 frames written by hand, for clients that break the rules (RFC 9113 4.1, 6).
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// An HPACK string literal, not Huffman-coded (RFC 7541 5.2).
fn hpack_string(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() < 127 {
        out.push(bytes.len() as u8);
    } else {
        out.push(127);
        let mut rest = bytes.len() - 127;
        while rest >= 128 {
            out.push((rest % 128) as u8 | 0x80);
            rest /= 128;
        }
        out.push(rest as u8);
    }
    out.extend(bytes);
}

/// `GET http://a.test{path}`: :method GET and :scheme http from the static table, :path and
/// :authority as literals with indexed names (RFC 7541 6.1, 6.2.2).
fn header_block(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x04];
    hpack_string(&mut block, path.as_bytes());
    block.push(0x01);
    hpack_string(&mut block, b"a.test");
    block
}

fn headers_frame(stream: u32, path: &str, end_stream: bool) -> Vec<u8> {
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, &header_block(path))
}

/// A raw HTTP/2 connection after the preface and the SETTINGS exchange.
struct RawH2 {
    stream: TcpStream,
    /// SETTINGS_MAX_CONCURRENT_STREAMS as the server announced it.
    server_max_streams: Option<u32>,
}

impl RawH2 {
    async fn connect(addr: SocketAddr) -> RawH2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        stream.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
        let mut conn = RawH2 {
            stream,
            server_max_streams: None,
        };
        loop {
            match conn.frame().await {
                // The server's own SETTINGS come first (its preface), before any ACK of ours.
                Some((SETTINGS, _, payload)) => {
                    for setting in payload.chunks_exact(6) {
                        if setting[..2] == [0, 3] {
                            let value = u32::from_be_bytes(setting[2..].try_into().unwrap());
                            conn.server_max_streams = Some(value);
                        }
                    }
                    let ack = frame(SETTINGS, ACK, 0, &[]);
                    conn.stream.write_all(&ack).await.unwrap();
                    break;
                }
                Some(_) => {}
                None => panic!("closed during the HTTP/2 handshake"),
            }
        }
        conn
    }

    /// The next frame within 10 s: (type, stream, payload); None once the connection closed.
    async fn frame(&mut self) -> Option<(u8, u32, Vec<u8>)> {
        let read = async {
            let mut head = [0u8; 9];
            self.stream.read_exact(&mut head).await.ok()?;
            let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let stream = u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff;
            let mut payload = vec![0u8; length];
            self.stream.read_exact(&mut payload).await.ok()?;
            Some((head[3], stream, payload))
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("no HTTP/2 frame within 10 s")
    }
}
