//! The origin side: which origin serves a host, a pooled HTTP client (plain or TLS, see
//! `tls::origin`) with connect, first-byte and total timeouts, bounded retries for idempotent
//! requests, and a circuit breaker per origin.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::http::uri::{Authority, Scheme};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::config::ProxyConfig;
use crate::tls::origin::OriginConnector;

/// Why the origin gave no response; decides 502 versus 504 and whether stale may be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    #[error("no origin is configured for host {0:?}")]
    NoOrigin(String),
    #[error("origin {0} is failing; its circuit is open")]
    CircuitOpen(String),
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
}

impl UpstreamError {
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
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
    pub async fn read_whole(self, max: usize) -> Result<Fetched, UpstreamError> {
        let (parts, body) = self.response.into_parts();
        let name = self.origin;
        let collected = tokio::time::timeout_at(self.deadline, Limited::new(body, max).collect());
        let body = match collected.await {
            Err(_) => return Err(UpstreamError::Timeout(name)),
            Ok(Err(e))
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err(UpstreamError::TooLarge(name, max));
            }
            Ok(Err(e)) => {
                return Err(UpstreamError::Failed {
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

/// One origin URL's health.
struct Origin {
    scheme: Scheme,
    authority: Authority,
    consecutive_failures: AtomicU32,
    /// Milliseconds since the breaker's epoch until which requests are refused (0: closed).
    open_until_ms: AtomicU64,
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
    breaker_open: Duration,
    epoch: Instant,
}

/// Pause before a retry; doubles for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

impl Upstream {
    pub fn new(config: &ProxyConfig) -> Result<Upstream, String> {
        // The TLS handshake of an https origin counts against the first-byte timeout.
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let connector = OriginConnector::new(connect_timeout, config.origin_ca.as_deref())
            .map_err(|e| e.to_string())?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let parse_all = |urls: &[String], key: &str| -> Result<Vec<Arc<Origin>>, String> {
            urls.iter()
                .map(|u| parse_origin(u).map_err(|e| format!("{key}: {u:?}: {e}")))
                .collect()
        };
        let mut hosts = HashMap::new();
        for (i, entry) in config.hosts.iter().enumerate() {
            let origins = parse_all(&entry.origins, &format!("proxy.hosts[{i}].origins"))?;
            hosts.insert(entry.host.to_ascii_lowercase(), origins);
        }
        let default = parse_all(config.origin.as_slice(), "proxy.origin")?;
        Ok(Upstream {
            client,
            hosts,
            default,
            first_byte_timeout: Duration::from_millis(config.first_byte_timeout_ms),
            total_timeout: Duration::from_millis(config.total_timeout_ms),
            retries: config.retries,
            max_body: config.max_object_size.0 as usize,
            breaker_failures: config.breaker_failures,
            breaker_open: Duration::from_secs(config.breaker_open_secs),
            epoch: Instant::now(),
        })
    }

    /// Sends `method path` with `headers` to the host's origins (in order, skipping open
    /// circuits, retrying idempotent requests with backoff) and returns the first response
    /// head, its body still to be read by the deadline. A 5xx is retried while attempts are
    /// left and then returned as it is: an answer for the client, a failure for the breaker.
    pub async fn open(
        &self,
        host: &str,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Opened, UpstreamError> {
        let origins = self.hosts.get(host).unwrap_or(&self.default);
        if origins.is_empty() {
            return Err(UpstreamError::NoOrigin(host.to_string()));
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
                if !self.closed(origin) {
                    last = Some(UpstreamError::CircuitOpen(origin.authority.to_string()));
                    continue;
                }
                let started = Instant::now();
                match self
                    .send_head(origin, method, path_and_query, headers, body.clone())
                    .await
                {
                    Ok(response) if response.status().is_server_error() => {
                        self.failed(origin);
                        if !(idempotent && attempt + 1 < attempts) {
                            return Ok(self.opened(origin, response, started));
                        }
                        last = Some(UpstreamError::Failed {
                            origin: origin.authority.to_string(),
                            message: format!("answered {}", response.status()),
                        });
                    }
                    Ok(response) => {
                        self.succeeded(origin);
                        return Ok(self.opened(origin, response, started));
                    }
                    Err(error) => {
                        self.failed(origin);
                        last = Some(error);
                    }
                }
                if !idempotent {
                    break;
                }
            }
        }
        Err(last.unwrap_or_else(|| UpstreamError::NoOrigin(host.to_string())))
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
    ) -> Result<Opened, UpstreamError> {
        let name = node.to_string();
        let failed = |message: String| UpstreamError::Failed {
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
            Err(_) => Err(UpstreamError::Timeout(format!("sibling {name}"))),
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
    ) -> Result<Response<Incoming>, UpstreamError> {
        let name = || origin.authority.to_string();
        let failed = |message: String| UpstreamError::Failed {
            origin: name(),
            message,
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
            Err(_) => Err(UpstreamError::Timeout(name())),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Closed; or half-open once the open period is over, when the first request to ask is
    /// let through as the probe and the circuit stays open to the others until the probe's
    /// outcome closes it (`succeeded`) or opens it again (`failed`), or the probe's own time
    /// (the first-byte timeout) runs out and another request may probe.
    fn closed(&self, origin: &Origin) -> bool {
        let until = origin.open_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if until > now {
            return false;
        }
        let probe_until = now + self.first_byte_timeout.as_millis() as u64 + 1;
        origin
            .open_until_ms
            .compare_exchange(until, probe_until, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    fn succeeded(&self, origin: &Origin) {
        origin.consecutive_failures.store(0, Ordering::Relaxed);
        if origin.open_until_ms.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!(origin = %origin.authority, "circuit closed: the probe succeeded");
        }
    }

    fn failed(&self, origin: &Origin) {
        let failures = origin.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.breaker_failures {
            let until = self.now_ms() + self.breaker_open.as_millis() as u64;
            if origin.open_until_ms.swap(until, Ordering::Relaxed) == 0 {
                tracing::warn!(origin = %origin.authority, failures, "circuit opened for {:?}", self.breaker_open);
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

fn parse_origin(url: &str) -> Result<Arc<Origin>, String> {
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
        consecutive_failures: AtomicU32::new(0),
        open_until_ms: AtomicU64::new(0),
    }))
}
