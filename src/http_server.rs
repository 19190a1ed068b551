//! The HTTP accept loop every HTTP listener of the node shares (proxy, HTTPDNS, admin):
//! HTTP/1.1 and HTTP/2 on one port (h2c by preface, h2 by ALPN under TLS), the `[http]` limits
//! against slow and abusive clients (`limits`), and a graceful stop on the shutdown token.

mod limits;

pub use limits::{BodyError, Limit, Limits, read_body};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
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

/// How long a stop waits for requests in flight before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection's byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Serves `listener` until `shutdown`, calling `handler` with each request and the peer address.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    limits: Limits,
    shutdown: CancellationToken,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let builder = connection_builder(&limits);
    let open = Arc::new(Semaphore::new(limits.max_connections));
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
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            limits.hit(Limit::Connections);
            tracing::debug!(%peer, "too many open connections; closing the new one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The TLS handshake and the first request's headers must both arrive by then.
        let deadline = Instant::now() + limits.header_timeout;
        // Set by the first request: after that hyper's own timeouts and limits apply.
        let started = Arc::new(AtomicBool::new(false));
        let handler = handler.clone();
        let request_started = Arc::clone(&started);
        let service = hyper::service::service_fn(move |req| {
            request_started.store(true, Ordering::Relaxed);
            let response = handler(req, peer);
            async move { Ok::<_, Infallible>(response.await) }
        });
        let (acceptor, builder, limits) = (tls.clone(), builder.clone(), limits.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // Held for as long as the connection is served.
            let _permit = permit;
            let io: Box<dyn Io> = match acceptor {
                None => Box::new(stream),
                Some(acceptor) => {
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => Box::new(stream),
                        Ok(Err(error)) => {
                            tracing::debug!(%error, %peer, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            limits.hit(Limit::HeaderTimeout);
                            return;
                        }
                    }
                }
            };
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let connection = watcher.watch(connection.into_owned());
            tokio::pin!(connection);
            // hyper times out HTTP/1.1 headers, but not a client that sends nothing, or only
            // part of the HTTP/2 preface, or no HTTP/2 request: such a connection is dropped.
            let ended = tokio::select! {
                result = &mut connection => Some(result),
                _ = tokio::time::sleep_until(deadline) => None,
            };
            let result = match ended {
                Some(result) => result,
                None if !started.load(Ordering::Relaxed) => {
                    limits.hit(Limit::HeaderTimeout);
                    tracing::debug!(%peer, "no request before the header timeout; closing");
                    return;
                }
                None => connection.await,
            };
            if let Err(error) = result {
                limits.count_connection_error(&*error);
                tracing::debug!(%error, %peer, "http connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("http connections still open after the drain timeout; closing them");
    }
}

/// HTTP/1.1 and HTTP/2 (by preface or ALPN) with the limits applied.
fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        // A request head that fills the read buffer gets a 431 (hyper-util does not offer
        // hyper's separate max_header_size); the buffer also caps write batching, harmlessly.
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .max_header_list_size(limits.max_header_bytes as u32)
        // Rapid reset (CVE-2023-44487): a client resetting streams faster than we serve them
        // gets its connection closed instead of an unbounded queue of work; likewise one that
        // keeps causing stream errors (opening streams beyond max_streams, say).
        .max_pending_accept_reset_streams(limits.max_pending_resets)
        .max_local_error_reset_streams(limits.max_pending_resets);
    builder
}
