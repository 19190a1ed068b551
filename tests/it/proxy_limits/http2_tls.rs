//! HTTP/2 over TLS as the proxy serves it: a connection's streams run on the connection's
//! task and their responses are written together (`http_server::streams`, `http_server::cork`).
//! A stream waiting on the origin must not hold the others back, and every response, small or
//! larger than the gathering limit, must arrive whole.

use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::http2::{close, h2_get};
use crate::origin::{Origin, node_for, numbered};
use crate::support::AnyCertificate;

/// An `h2` client over TLS 1.3 (ALPN h2) to `node`'s HTTPS listener, and its connection task.
async fn h2_tls_client(
    addr: std::net::SocketAddr,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    h2_tls_client_over(tcp, &h2::client::Builder::new()).await
}

/// The same over `io`, with `builder`'s settings.
async fn h2_tls_client_over<S>(
    io: S,
    builder: &h2::client::Builder,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, io)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (client, connection) = builder.handshake(tls).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}

async fn get(client: &h2::client::SendRequest<Bytes>, path: &str) -> (u16, String) {
    let request = hyper::Request::get(format!("https://localhost{path}"))
        .body(())
        .unwrap();
    h2_get(client.clone(), request).await
}

#[tokio::test]
async fn http2_over_tls_streams_do_not_wait_for_each_other_and_arrive_whole() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let (client, connection) = h2_tls_client(node.https.unwrap()).await;
    // Warm: a small object and one of 200 KiB (more than a TLS record).
    assert_eq!(get(&client, "/cached").await.0, 200);
    assert_eq!(get(&client, "/big").await.1.len(), 200 << 10);

    // One stream waits on the origin; forty hits on the same connection answer meanwhile.
    let held = tokio::spawn({
        let client = client.clone();
        async move { get(&client, "/hold/a").await }
    });
    for _ in 0..100 {
        if origin.holding() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(origin.holding(), 1, "the held request reached the origin");
    let hits: Vec<_> = (0..40)
        .map(|i| {
            let client = client.clone();
            let path = if i % 4 == 0 { "/big" } else { "/cached" };
            tokio::spawn(async move { (path, get(&client, path).await) })
        })
        .collect();
    for hit in hits {
        let (path, (status, body)) = tokio::time::timeout(Duration::from_secs(10), hit)
            .await
            .expect("a hit answered while another stream waits")
            .unwrap();
        assert_eq!(status, 200, "{path}");
        match path {
            "/big" => assert!(body.len() == 200 << 10 && body.bytes().all(|b| b == b'x')),
            _ => assert_eq!(body, "hello from /cached"),
        }
    }
    assert_eq!(
        origin.holding(),
        1,
        "still held while the hits were answered"
    );
    assert_eq!(
        origin.count("/cached") + origin.count("/big"),
        2,
        "all hits"
    );

    origin.release();
    let (status, body) = held.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "held"));
    // Closed before the node stops, which would otherwise wait for it to answer GOAWAY.
    close(connection).await;
}

/// A client socket that reads nothing until a set time: the server's writes then fill the
/// socket buffers and must wait for it.
struct Paused {
    tcp: TcpStream,
    until: Arc<Mutex<Option<Instant>>>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl AsyncRead for Paused {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let until = *self.until.lock().unwrap();
        if let Some(until) = until.filter(|at| *at > Instant::now()) {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        self.sleep = None;
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Paused {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn large_bodies_over_tls_arrive_in_order_when_the_client_stops_reading() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let until = Arc::new(Mutex::new(None));
    let tcp = TcpStream::connect(node.https.unwrap()).await.unwrap();
    let io = Paused {
        tcp,
        until: Arc::clone(&until),
        sleep: None,
    };
    // Windows large enough that only the sockets hold the server back.
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(32 << 20)
        .initial_connection_window_size(128 << 20);
    let (client, connection) = h2_tls_client_over(io, &builder).await;
    let expected = numbered();
    assert_eq!(get(&client, "/numbered").await.1, expected, "the fill");

    // Six hits of 3 MiB at once, with small ones between, while the client reads nothing for
    // half a second: the node's TLS writes find the socket full and must resume in order.
    *until.lock().unwrap() = Some(Instant::now() + Duration::from_millis(500));
    let hits: Vec<_> = (0..12)
        .map(|i| {
            let client = client.clone();
            let path = if i % 2 == 0 { "/numbered" } else { "/cached" };
            tokio::spawn(async move { (path, get(&client, path).await) })
        })
        .collect();
    for hit in hits {
        let (path, (status, body)) = tokio::time::timeout(Duration::from_secs(20), hit)
            .await
            .expect("answered")
            .unwrap();
        assert_eq!(status, 200, "{path}");
        match path {
            "/numbered" => assert!(body == expected, "a 3 MiB body arrived out of order"),
            _ => assert_eq!(body, "hello from /cached"),
        }
    }
    assert_eq!(origin.count("/numbered"), 1, "the rest were hits");
    close(connection).await;
}
