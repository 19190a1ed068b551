//! The HTTP accept loop every HTTP listener of the node shares (proxy, HTTPDNS, admin):
//! HTTP/1.1 and HTTP/2 on one port (h2c by preface, h2 by ALPN under TLS), the `[http]` limits
//! against slow and abusive clients (`limits`), and a graceful stop on the shutdown token.

mod cork;
mod limits;
mod streams;
mod version;

pub use limits::{BodyError, Limit, Limits, read_body};
use streams::{LocalExecutor, Streams};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    let connections = TaskTracker::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    // Per client address (an IPv6 /64), so that one client cannot hold every place.
    let per_client =
        crate::prefix_limit::PrefixLimiter::new(limits.max_connections_per_client, 32, 64);
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
        let Some(permits) = admit(&per_client, &open, &limits, peer) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let service = request_service(handler.clone(), peer, &activity, &limits);
        let connection = Connection {
            peer,
            activity,
            limits: limits.clone(),
            shutdown: shutdown.clone(),
        };
        let acceptor = tls.clone();
        connections.spawn(async move {
            // Held for as long as the connection is served.
            let _permits = permits;
            connection.serve(stream, acceptor, service).await;
        });
    }
    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait())
        .await
        .is_err()
    {
        tracing::debug!("http connections still open after the drain timeout; closing them");
    }
}

/// The service answering one connection's requests with `handler`: a request target over
/// `http.max_uri_bytes` gets a 414, and each request is in flight on the connection's
/// `activity` until its response is sent.
fn request_service<H, F>(
    handler: H,
    peer: SocketAddr,
    activity: &Arc<Activity>,
    limits: &Limits,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future: Send + 'static,
> + Send
+ 'static
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let on_request = Arc::clone(activity);
    let uri_limits = limits.clone();
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let in_flight = InFlight::start(&on_request);
        // RFC 9112 3: a request target longer than the server will parse is a 414.
        let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
        let too_long = target > uri_limits.max_uri_bytes;
        // Boxed: hyper moves the service future into a task per HTTP/2 stream and tokio
        // moves it again on completion; the handlers' futures are large (profiled: those
        // copies were a fifth of the CPU time in memcpy under h2load).
        let response = (!too_long).then(|| Box::pin(handler(req, peer)));
        if too_long {
            uri_limits.hit(Limit::UriTooLong);
        }
        async move {
            let response = match response {
                Some(response) => response.await,
                None => uri_too_long(),
            };
            Ok::<_, Infallible>(in_flight.until_sent(response))
        }
    })
}

/// The places a new connection from `peer` holds: one of its client's (an IPv6 /64) and one
/// of all; None, counted as the limit it hit, when either is full.
fn admit(
    per_client: &crate::prefix_limit::PrefixLimiter,
    open: &Arc<Semaphore>,
    limits: &Limits,
    peer: SocketAddr,
) -> Option<(
    tokio::sync::OwnedSemaphorePermit,
    crate::prefix_limit::PrefixPermit,
)> {
    let Some(client_permit) = per_client.admit(peer.ip()) else {
        limits.hit(Limit::ClientConnections);
        tracing::debug!(%peer, "too many open connections from this client; closing the new one");
        return None;
    };
    let Ok(permit) = Arc::clone(open).try_acquire_owned() else {
        limits.hit(Limit::Connections);
        tracing::debug!(%peer, "too many open connections; closing the new one");
        return None;
    };
    Some((permit, client_permit))
}

/// The 414 for a request target over `http.max_uri_bytes`.
fn uri_too_long() -> Response<Body> {
    let mut response = Response::new(full(Bytes::from_static(b"request target too long\n")));
    *response.status_mut() = hyper::StatusCode::URI_TOO_LONG;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Requests in flight on one connection, and since when none has been.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Whether a request has ever started (before one, the header timeout applies).
    started: AtomicBool,
    /// Milliseconds after `opened` at which the last request in flight ended.
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    /// When the connection will have been idle for `timeout`; None while a request is in flight.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        Some(self.opened + since + timeout)
    }
}

/// One request being answered; its end marks the connection's activity.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.started.store(true, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(activity))
    }

    /// The request's `response`, in flight until it is sent. A body still to come (streamed
    /// from a fill, a slice, a pass) keeps the request in flight until its end, so a long
    /// download is never idle; a small one of known length (a hit, an error page) is as good
    /// as sent and costs no wrapper.
    fn until_sent(self, response: Response<Body>) -> Response<Body> {
        let body = response.body();
        let small = hyper::body::Body::size_hint(body)
            .exact()
            .is_some_and(|len| len <= SMALL_BODY);
        if hyper::body::Body::is_end_stream(body) || small {
            return response;
        }
        response.map(|body| {
            InFlightBody {
                body,
                _in_flight: self,
            }
            .boxed()
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.opened.elapsed().as_millis();
        self.0
            .idle_since_ms
            .fetch_max(u64::try_from(now).unwrap_or(u64::MAX), Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bodies up to this size, of known length, leave their request's in-flight count with the
/// head: they are written at once.
const SMALL_BODY: u64 = 64 << 10;

/// A streamed response body that keeps its request in flight until it ends (or is dropped).
struct InFlightBody {
    body: Body,
    /// Dropped with the body.
    _in_flight: InFlight,
}

impl hyper::body::Body for InFlightBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// One accepted connection and what its serving needs to know.
struct Connection {
    peer: SocketAddr,
    activity: Arc<Activity>,
    limits: Limits,
    shutdown: CancellationToken,
}

impl Connection {
    /// TLS handshake (if any), then HTTP until the client leaves, a limit closes the
    /// connection, or the node stops (gracefully: requests in flight finish).
    async fn serve<S>(self, stream: TcpStream, acceptor: Option<TlsAcceptor>, service: S)
    where
        S: hyper::service::Service<
                Request<Incoming>,
                Response = Response<Body>,
                Error = Infallible,
            > + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let Connection {
            peer,
            activity,
            limits,
            shutdown,
        } = self;
        let mut streams = Streams::default();
        // The TLS handshake and the first request's headers must both arrive by then.
        let first_request_by = activity.opened + limits.header_timeout;
        let opened = open_stream(stream, acceptor, first_request_by, &limits, peer).await;
        let Some((io, rewritten, uncork)) = opened else {
            return;
        };
        if let Some(uncork) = uncork {
            streams.uncork_with(uncork);
        }
        let builder = connection_builder(&limits, streams.executor(), rewritten);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let connection = connection.into_owned();
        tokio::pin!(connection);
        // hyper times out HTTP/1.1 headers, but not a client that sends nothing, or only part
        // of the HTTP/2 preface, or no HTTP/2 request: such a connection is dropped. Nor does
        // it close an HTTP/2 connection with no streams: that is the idle timeout.
        let mut check_at = first_request_by.min(activity.opened + limits.idle_timeout);
        let mut closing = false;
        let result = loop {
            let close = tokio::select! {
                result = streams.drive(connection.as_mut()) => break result,
                _ = shutdown.cancelled(), if !closing => true,
                _ = tokio::time::sleep_until(check_at) => {
                    if closing {
                        // A client that never finishes the graceful close (an HTTP/2 client
                        // that ignores GOAWAY's ping, say) is cut off.
                        tracing::debug!(%peer, "graceful close not finished in time; dropping");
                        return;
                    }
                    match idle_check(&activity, &limits, first_request_by, peer) {
                        IdleCheck::Until(at) => {
                            check_at = at;
                            false
                        }
                        IdleCheck::Drop => return,
                        IdleCheck::Close => true,
                    }
                }
            };
            if close {
                closing = true;
                check_at = Instant::now() + DRAIN_TIMEOUT;
                connection.as_mut().graceful_shutdown();
            }
        };
        if let Err(error) = result {
            limits.count_connection_error(&*error);
            tracing::debug!(%error, %peer, "http connection ended with an error");
        }
    }
}

/// What a connection's timer found.
enum IdleCheck {
    /// Nothing to do until then.
    Until(Instant),
    /// No request came before the header timeout: dropped.
    Drop,
    /// Idle for the idle timeout: closed gracefully.
    Close,
}

/// Whether a connection that has not sent a first request, or has had none in flight for
/// `http.idle_timeout`, is to go (counted as the limit it hit).
fn idle_check(
    activity: &Activity,
    limits: &Limits,
    first_request_by: Instant,
    peer: SocketAddr,
) -> IdleCheck {
    if !activity.started.load(Ordering::Relaxed) {
        if Instant::now() < first_request_by {
            return IdleCheck::Until(first_request_by);
        }
        limits.hit(Limit::HeaderTimeout);
        tracing::debug!(%peer, "no request before the header timeout; closing");
        return IdleCheck::Drop;
    }
    match activity.idle_deadline(limits.idle_timeout) {
        Some(at) if at <= Instant::now() => {
            limits.hit(Limit::IdleTimeout);
            tracing::debug!(%peer, "idle connection; closing it gracefully");
            IdleCheck::Close
        }
        Some(at) => IdleCheck::Until(at),
        None => IdleCheck::Until(Instant::now() + limits.idle_timeout),
    }
}

/// The connection's byte stream once its TLS handshake (if any) is done, by `by`: an HTTP/1
/// connection's first request line's version settled (`version`; and whether it was
/// rewritten), an HTTP/2 one's writes gathered until the task's round is done (`cork`, with
/// its uncorking handle). None when the client failed or was too slow.
async fn open_stream(
    stream: TcpStream,
    acceptor: Option<TlsAcceptor>,
    by: Instant,
    limits: &Limits,
    peer: SocketAddr,
) -> Option<(Box<dyn Io>, bool, Option<Box<dyn cork::Uncork>>)> {
    let Some(acceptor) = acceptor else {
        let (stream, rewritten) = settle_version(stream, by, limits).await?;
        return Some((Box::new(stream), rewritten, None));
    };
    match tokio::time::timeout_at(by, acceptor.accept(stream)).await {
        Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
            let (corked, uncork) = cork::cork(stream);
            Some((Box::new(corked), false, Some(uncork)))
        }
        Ok(Ok(stream)) => {
            let (stream, rewritten) = settle_version(stream, by, limits).await?;
            Some((Box::new(stream), rewritten, None))
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, %peer, "tls handshake failed");
            None
        }
        Err(_) => {
            limits.hit(Limit::HeaderTimeout);
            None
        }
    }
}

/// HTTP/1.1 and HTTP/2 (by preface or ALPN) with the limits applied.
/// The stream with its first request line read and its version settled (`version`), and
/// whether it was rewritten; None when the client sent nothing in time or the read failed.
async fn settle_version<T: tokio::io::AsyncRead + Unpin>(
    stream: T,
    by: tokio::time::Instant,
    limits: &Limits,
) -> Option<(version::Versioned<T>, bool)> {
    match tokio::time::timeout_at(by, version::Versioned::read_first(stream)).await {
        Ok(Ok(settled)) => Some(settled),
        Ok(Err(_)) => None,
        Err(_) => {
            limits.hit(Limit::HeaderTimeout);
            None
        }
    }
}

/// `rewritten`: the first request line was rewritten (`version`), so the connection serves
/// that one request only.
fn connection_builder(
    limits: &Limits,
    executor: LocalExecutor,
    rewritten: bool,
) -> auto::Builder<LocalExecutor> {
    let mut builder = auto::Builder::new(executor);
    if rewritten {
        builder.http1().keep_alive(false);
    }
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
