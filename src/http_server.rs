//! The HTTP accept loop every HTTP listener of the node shares (admin, HTTPDNS; the proxy
//! later): HTTP/1.1 and HTTP/2 on one port (h2c by preface, h2 by ALPN under TLS), a header
//! read timeout against slow clients, and a graceful stop on the shutdown token.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The response body every handler of the node returns: in memory, or streamed (a proxied
/// object too large to store).
pub type Body = BoxBody<Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body held in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A client that has not sent its request headers (or finished a TLS handshake) by then is
/// disconnected, so slow clients cannot hold connections open for free.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Request header fields at most (HTTP/1.1); more is a 431.
const MAX_HEADERS: usize = 100;
/// HTTP/2: concurrent streams per connection, and the decoded size of one header list.
const MAX_STREAMS: u32 = 256;
const MAX_HEADER_BYTES: u32 = 64 << 10;
/// HTTP/2 streams reset before we could answer them, per connection, before it is closed.
const MAX_PENDING_RESETS: usize = 64;
/// How long a stop waits for requests in flight before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `listener` until `shutdown`, calling `handler` with each request and the peer address.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    shutdown: CancellationToken,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_BYTES)
        // Rapid reset (CVE-2023-44487): a client resetting streams faster than we serve them
        // gets its connection closed instead of an unbounded queue of work.
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(MAX_PENDING_RESETS);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::debug!(%error, "http accept error");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = hyper::service::service_fn(move |req| {
            let response = handler(req, peer);
            async move { Ok::<_, Infallible>(response.await) }
        });
        match &tls {
            None => {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection.into_owned());
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, %peer, "http connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let (acceptor, builder) = (acceptor.clone(), builder.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%error, %peer, "tls handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(%error, %peer, "https connection ended with an error");
                    }
                });
            }
        }
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("http connections still open after the drain timeout; closing them");
    }
}
