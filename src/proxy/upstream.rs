//! The origin side: which origin serves a host, a pooled HTTP client (plain or TLS, see
//! `tls::origin`) with connect, first-byte and total timeouts, bounded retries for idempotent
//! requests, and a circuit breaker per origin.
//!
//! **What is a failure.** A response with any status is the origin's answer: passed on (or
//! stored where RFC 9111 allows), never retried, never held against the origin, so that a URL
//! answering 500 cannot take its whole origin off the air. Failures are what leaves no answer:
//! connect and TLS errors, a connection closed before a complete head, timeouts; plus the
//! statuses an operator opts in with `breaker_statuses`. Only a request that cannot have
//! reached the origin (the connection was never made) is tried again.
//!
//! **The breaker** counts, per origin URL, failures and answers over a sliding window of
//! `breaker_window_secs` (two buckets, the older weighted by how much of it is still inside);
//! it opens when at least `breaker_failures` failures make at least `breaker_ratio` of the
//! window's outcomes, for `breaker_open_secs`, then lets one probe through.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::http::uri::{Authority, Scheme};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

use super::setup::SetupError;
use crate::config::ProxyConfig;
use crate::tls::origin::OriginConnector;

/// Why a fetch (from the origin, or from another node) gave no response; decides 502 versus
/// 504 and whether stale may be served. It says which side failed ([`FetchError::side`]) and
/// whether the request may be sent again ([`FetchError::retry_safe`]), as pingora's errors do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("no origin is configured for host {0:?}")]
    NoOrigin(String),
    #[error("origin {origin} is failing; its circuit is open")]
    CircuitOpen { origin: String, retry_after: u64 },
    #[error("origin {0} timed out")]
    Timeout(String),
    #[error("origin {origin}: {message}")]
    Failed { origin: String, message: String },
    #[error("origin {0} sent a body larger than the {1}-byte limit")]
    TooLarge(String, usize),
    /// The origin answered 500, 502, 503 or 504: an error for stale-if-error (RFC 5861 4), and
    /// the answer itself when nothing stale may be served.
    #[error("origin answered {}", .0.status)]
    ServerError(Box<Fetched>),
    /// A limit of the fills (`fill_limits`) had no place in time: the node is busy, not the
    /// origin broken.
    #[error("too many {what} in progress; try again shortly")]
    Overloaded {
        what: &'static str,
        retry_after: u64,
    },
}

/// Which side of the proxy a fetch failed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Side {
    /// The client: a request the node would not pass on (a body too large or cut short, see
    /// `http_server::read_body`; not a `FetchError`, named here so that every side is).
    Client,
    /// The origin, or the node asked for the object: no answer, too slow, too large, a 5xx,
    /// an open circuit.
    Upstream,
    /// This node: no origin configured for the host, or no place for another fetch.
    Internal,
}

impl FetchError {
    /// Which side failed.
    pub fn side(&self) -> Side {
        match self {
            FetchError::NoOrigin(_) | FetchError::Overloaded { .. } => Side::Internal,
            _ => Side::Upstream,
        }
    }

    /// Whether sending the request again is safe: only when it never left this node (an open
    /// circuit, no place for a fetch), so that the origin cannot have acted on it.
    pub fn retry_safe(&self) -> bool {
        matches!(
            self,
            FetchError::CircuitOpen { .. } | FetchError::Overloaded { .. }
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            FetchError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            // Unavailable for a while, not broken: the client may come back (Retry-After).
            FetchError::CircuitOpen { .. } | FetchError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// Seconds after which the request is worth trying again, for `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            FetchError::CircuitOpen { retry_after, .. }
            | FetchError::Overloaded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// An origin response read whole (bodies up to `max_object_size`).
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An origin response head; its body is to be read by `deadline` (the total timeout).
pub struct Opened {
    pub response: Response<Incoming>,
    pub deadline: Instant,
    /// The origin that answered, for errors.
    pub origin: String,
}

impl Opened {
    /// The whole body, up to `max` bytes, by the deadline.
    pub async fn read_whole(self, max: usize) -> Result<Fetched, FetchError> {
        let (parts, body) = self.response.into_parts();
        let name = self.origin;
        let collected = tokio::time::timeout_at(self.deadline, Limited::new(body, max).collect());
        let body = match collected.await {
            Err(_) => return Err(FetchError::Timeout(name)),
            Ok(Err(e))
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err(FetchError::TooLarge(name, max));
            }
            Ok(Err(e)) => {
                return Err(FetchError::Failed {
                    origin: name,
                    message: format!("body: {e}"),
                });
            }
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        Ok(Fetched {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// One origin URL and its health.
struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// Statuses held against this origin like failures (`breaker_statuses`; none by default).
    failure_statuses: Arc<[u16]>,
    /// Outcomes in the breaker's window; a std Mutex: held for a few additions, never across
    /// an await, and only on the way to the origin (never for a cache hit).
    window: Mutex<Window>,
    /// Milliseconds since the breaker's epoch until which requests are refused (0: closed).
    open_until_ms: AtomicU64,
}

/// Failures and answers of the current and the previous window bucket.
#[derive(Default)]
struct Window {
    /// When the current bucket began (ms since the breaker's epoch).
    start_ms: u64,
    current: [f64; 2],
    previous: [f64; 2],
}

impl Window {
    /// Adds one outcome at `now` and returns the window's weighted (failures, total).
    fn record(&mut self, now: u64, length: u64, failed: bool) -> (f64, f64) {
        let length = length.max(1);
        if now >= self.start_ms + length {
            // A bucket over; two or more: nothing of them is left in the window.
            self.previous = if now < self.start_ms + 2 * length {
                self.current
            } else {
                [0.0; 2]
            };
            self.current = [0.0; 2];
            self.start_ms = now - (now - self.start_ms) % length;
        }
        self.current[usize::from(failed)] += 1.0;
        let inside = 1.0 - (now - self.start_ms) as f64 / length as f64;
        let failures = self.current[1] + self.previous[1] * inside;
        let answers = self.current[0] + self.previous[0] * inside;
        (failures, failures + answers)
    }
}

pub struct Upstream {
    client: Client<OriginConnector, Full<Bytes>>,
    /// Host (lowercase, without port) -> its origins, tried in order.
    hosts: HashMap<String, Vec<Arc<Origin>>>,
    /// For hosts not in the table.
    default: Vec<Arc<Origin>>,
    first_byte_timeout: Duration,
    total_timeout: Duration,
    retries: u32,
    max_body: usize,
    breaker_failures: u32,
    breaker_ratio: f64,
    breaker_window: Duration,
    breaker_open: Duration,
    epoch: Instant,
    /// Circuits opened (`edgenode_proxy_breaker_opened_total`); unregistered under `check`.
    pub breaker_opened: Counter,
}

/// Pause before a retry; doubles for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

impl Upstream {
    pub fn new(config: &ProxyConfig) -> Result<Upstream, SetupError> {
        // The TLS handshake of an https origin counts against the first-byte timeout.
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let connector = OriginConnector::new(connect_timeout, config.origin_ca.as_deref())
            .map_err(|e| SetupError::OriginCa(e.to_string()))?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let parse_all = |urls: &[String], key: &str, statuses: &Arc<[u16]>| {
            urls.iter()
                .map(|u| {
                    parse_origin(u, Arc::clone(statuses)).map_err(|problem| SetupError::Origin {
                        key: key.to_string(),
                        url: u.clone(),
                        problem,
                    })
                })
                .collect::<Result<Vec<_>, SetupError>>()
        };
        let statuses: Arc<[u16]> = Arc::from(config.breaker_statuses.as_slice());
        let mut hosts = HashMap::new();
        for (i, entry) in config.hosts.iter().enumerate() {
            let own = entry.breaker_statuses.as_deref().map(Arc::from);
            let key = format!("proxy.hosts[{i}].origins");
            let origins = parse_all(&entry.origins, &key, own.as_ref().unwrap_or(&statuses))?;
            hosts.insert(entry.host.to_ascii_lowercase(), origins);
        }
        let default = parse_all(config.origin.as_slice(), "proxy.origin", &statuses)?;
        Ok(Upstream {
            client,
            hosts,
            default,
            first_byte_timeout: Duration::from_millis(config.first_byte_timeout_ms),
            total_timeout: Duration::from_millis(config.total_timeout_ms),
            retries: config.retries,
            max_body: config.max_object_size.0 as usize,
            breaker_failures: config.breaker_failures,
            breaker_ratio: config.breaker_ratio,
            breaker_window: Duration::from_secs(config.breaker_window_secs),
            breaker_open: Duration::from_secs(config.breaker_open_secs),
            epoch: Instant::now(),
            breaker_opened: Counter::default(),
        })
    }

    /// Sends `method path` with `headers` to the host's origins (in order, skipping open
    /// circuits) and returns the first response head, whatever its status, its body still to
    /// be read by the deadline. An idempotent request that could not be sent at all (no
    /// connection) is tried again, on the next origin or after a backoff; one that may have
    /// reached an origin is not.
    pub async fn open(
        &self,
        host: &str,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Opened, FetchError> {
        let origins = self.hosts.get(host).unwrap_or(&self.default);
        if origins.is_empty() {
            return Err(FetchError::NoOrigin(host.to_string()));
        }
        let idempotent = matches!(
            *method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let attempts = if idempotent { self.retries + 1 } else { 1 };
        let mut last = None;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            for origin in origins {
                if let Some(retry_after) = self.refused(origin) {
                    last = Some(FetchError::CircuitOpen {
                        origin: origin.authority.to_string(),
                        retry_after,
                    });
                    continue;
                }
                let started = Instant::now();
                match self
                    .send_head(origin, method, path_and_query, headers, body.clone())
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        self.outcome(origin, origin.failure_statuses.contains(&status));
                        return Ok(self.opened(origin, response, started));
                    }
                    Err(Unanswered { error, unsent }) => {
                        self.outcome(origin, true);
                        if !(unsent && idempotent) {
                            return Err(error);
                        }
                        last = Some(error);
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| FetchError::NoOrigin(host.to_string())))
    }

    fn opened(&self, origin: &Origin, response: Response<Incoming>, started: Instant) -> Opened {
        Opened {
            response,
            deadline: started + self.total_timeout,
            origin: origin.authority.to_string(),
        }
    }

    /// A GET to another node of the cluster (the key's owner) for `host`: no retries and no
    /// circuit breaker (heartbeats decide whether the node is up), the head within `timeout`.
    pub async fn open_sibling(
        &self,
        node: SocketAddr,
        host: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Result<Opened, FetchError> {
        let name = node.to_string();
        let failed = |message: String| FetchError::Failed {
            origin: format!("sibling {node}"),
            message,
        };
        let uri = format!("http://{node}{path_and_query}");
        let mut request = Request::get(uri);
        if let Some(request_headers) = request.headers_mut() {
            request_headers.clone_from(headers);
            if let Ok(value) = HeaderValue::from_str(host) {
                request_headers.insert(hyper::header::HOST, value);
            }
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| failed(e.to_string()))?;
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Err(_) => Err(FetchError::Timeout(format!("sibling {name}"))),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Ok(Ok(response)) => Ok(Opened {
                response,
                deadline: started + self.total_timeout,
                origin: format!("sibling {name}"),
            }),
        }
    }

    /// The longest wait for the next piece of a body that is streamed through, not stored.
    pub fn read_timeout(&self) -> Duration {
        self.first_byte_timeout
    }

    /// How long one origin exchange may take, body included (`proxy.total_timeout_ms`).
    pub fn total_timeout(&self) -> Duration {
        self.total_timeout
    }

    /// The largest body the cache keeps (`proxy.max_object_size`).
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Sends the request to one origin and waits (within the first-byte timeout) for the
    /// response head; the body is left to the caller.
    async fn send_head(
        &self,
        origin: &Origin,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Incoming>, Unanswered> {
        let name = || origin.authority.to_string();
        let failed = |message: String| Unanswered {
            error: FetchError::Failed {
                origin: name(),
                message,
            },
            unsent: false,
        };
        let uri = Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(origin.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let mut request = Request::builder().method(method.clone()).uri(uri);
        if let Some(request_headers) = request.headers_mut() {
            request_headers.clone_from(headers);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string()))?;
        match tokio::time::timeout(self.first_byte_timeout, self.client.request(request)).await {
            Err(_) => Err(Unanswered {
                error: FetchError::Timeout(name()),
                unsent: false,
            }),
            Ok(Err(e)) => Err(Unanswered {
                // No connection was made (refused, unreachable, TLS handshake): nothing was
                // sent. hyper's pool itself resends a request whose pooled connection was
                // closed before it was written (the keep-alive race).
                unsent: e.is_connect(),
                ..failed(format!("{e}: {}", error_chain(&e)))
            }),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// None when the origin may be asked: closed, or half-open once the open period is over,
    /// when the first request to ask is let through as the probe and the circuit stays open to
    /// the others until the probe's outcome closes or reopens it, or the probe's own time (the
    /// first-byte timeout) runs out and another request may probe. Else the seconds to wait.
    fn refused(&self, origin: &Origin) -> Option<u64> {
        let until = origin.open_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return None;
        }
        let now = self.now_ms();
        if until > now {
            return Some((until - now).div_ceil(1000).max(1));
        }
        let probe_until = now + self.first_byte_timeout.as_millis() as u64 + 1;
        match origin.open_until_ms.compare_exchange(
            until,
            probe_until,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => None,
            Err(_) => Some(1),
        }
    }

    /// Counts an answer or a failure, and opens or closes the circuit.
    fn outcome(&self, origin: &Origin, failed: bool) {
        let now = self.now_ms();
        if !failed {
            origin
                .window
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(now, self.breaker_window.as_millis() as u64, false);
            if origin.open_until_ms.swap(0, Ordering::Relaxed) != 0 {
                tracing::info!(origin = %origin.authority, "circuit closed: the probe succeeded");
            }
            return;
        }
        let (failures, total) = origin
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(now, self.breaker_window.as_millis() as u64, true);
        let probing = origin.open_until_ms.load(Ordering::Relaxed) != 0;
        let tripped = failures >= f64::from(self.breaker_failures.max(1))
            && failures >= self.breaker_ratio * total;
        if probing || tripped {
            let until = now + self.breaker_open.as_millis() as u64;
            if origin.open_until_ms.swap(until, Ordering::Relaxed) == 0 {
                self.breaker_opened.inc();
                tracing::warn!(
                    origin = %origin.authority, failures, outcomes = total,
                    "circuit opened for {:?}", self.breaker_open
                );
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// Why a request got no response head, and whether it is certain nothing was sent.
struct Unanswered {
    error: FetchError,
    unsent: bool,
}

/// The causes under an error, for the log line ("connection refused" under "client error").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.join(": ")
}

fn parse_origin(url: &str, failure_statuses: Arc<[u16]>) -> Result<Arc<Origin>, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
    let scheme = uri
        .scheme()
        .cloned()
        .ok_or("a scheme (http:// or https://) is required")?;
    if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
        return Err("only http:// and https:// origins are supported".into());
    }
    let authority = uri.authority().cloned().ok_or("a host is required")?;
    Ok(Arc::new(Origin {
        scheme,
        authority,
        failure_statuses,
        window: Mutex::new(Window::default()),
        open_until_ms: AtomicU64::new(0),
    }))
}
