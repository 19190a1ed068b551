//! What an HTTP client may cost before it is answered 4xx or disconnected (`[http]`), the
//! bounded request-body read handlers share, and the metric counting each limit hit.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::StatusCode;
use hyper::body::{Body as _, Incoming};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::config::HttpConfig;
use crate::metrics::LimitLabels;

/// hyper's smallest HTTP/1.1 read buffer (`max_buf_size` panics below it).
const MIN_HEADER_BYTES: usize = 8192;

/// The limits of every HTTP listener, from `[http]`; cheap to clone (the counters are shared).
#[derive(Clone, Debug)]
pub struct Limits {
    /// First request (TLS handshake included) from accept; each later HTTP/1.1 header section.
    pub header_timeout: Duration,
    /// A request body read whole by a handler, from when it starts reading.
    pub body_timeout: Duration,
    /// No request in flight for this long: the connection is closed gracefully.
    pub idle_timeout: Duration,
    pub max_headers: usize,
    /// HTTP/1.1 request head (hyper's read buffer); HTTP/2 decoded header list.
    pub max_header_bytes: usize,
    pub max_streams: u32,
    pub max_pending_resets: usize,
    /// Connections open at once per listener.
    pub max_connections: usize,
    /// Request target bytes at most (414).
    pub max_uri_bytes: usize,
    /// Connections open at once per client address (IPv6: per /64) per listener.
    pub max_connections_per_client: usize,
    /// `edgenode_http_limits_total{limit}`: one count per client stopped by a limit.
    hits: Family<LimitLabels, Counter>,
}

/// A limit a client ran into; its name is the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// No complete request head in time (or no TLS handshake, or nothing at all).
    HeaderTimeout,
    /// Too many header fields or too many header bytes: 431.
    HeaderTooLarge,
    /// A request target over `max_uri_bytes`: 414.
    UriTooLong,
    /// A request head hyper could not parse (ambiguous lengths, obs-fold, bad tokens): 400.
    BadRequest,
    /// The request body did not arrive in time: 408.
    BodyTimeout,
    /// The request body is over the handler's size limit: 413.
    BodyTooLarge,
    /// The request body's framing is broken (a bad chunk size) or the client vanished: 400.
    BadBody,
    /// `max_connections` were open: the new one was closed at once.
    Connections,
    /// `max_connections_per_client` were open from its address: the new one was closed.
    ClientConnections,
    /// No request in flight for `idle_timeout`: closed gracefully (HTTP/2 GOAWAY).
    IdleTimeout,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::HeaderTimeout => "header_timeout",
            Limit::Connections => "connections",
            Limit::ClientConnections => "client_connections",
            Limit::IdleTimeout => "idle_timeout",
            Limit::HeaderTooLarge => "header_too_large",
            Limit::UriTooLong => "uri_too_long",
            Limit::BadRequest => "bad_request",
            Limit::BodyTimeout => "body_timeout",
            Limit::BodyTooLarge => "body_too_large",
            Limit::BadBody => "bad_body",
        }
    }
}

impl Limits {
    pub fn new(config: &HttpConfig, hits: Family<LimitLabels, Counter>) -> Limits {
        Limits {
            header_timeout: Duration::from_millis(config.header_timeout_ms),
            body_timeout: Duration::from_millis(config.body_timeout_ms),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms),
            max_headers: config.max_headers,
            // validate() keeps it in range; clamp anyway, since hyper panics outside it.
            max_header_bytes: (config.max_header_bytes.0.min(u64::from(u32::MAX)) as usize)
                .max(MIN_HEADER_BYTES),
            max_streams: config.max_streams,
            max_pending_resets: config.max_pending_resets,
            max_connections: config.max_connections.max(1),
            max_uri_bytes: usize::try_from(config.max_uri_bytes.0).unwrap_or(usize::MAX),
            max_connections_per_client: config.max_connections_per_client.max(1),
            hits,
        }
    }

    /// Counts one client stopped by `limit`.
    pub fn hit(&self, limit: Limit) {
        self.hits
            .get_or_create(&LimitLabels {
                limit: limit.as_str(),
            })
            .inc();
    }

    /// Counts the limit behind a connection that hyper ended with `error`, if one was.
    pub(super) fn count_connection_error(&self, error: &(dyn std::error::Error + 'static)) {
        let Some(error) = error.downcast_ref::<hyper::Error>() else {
            return;
        };
        if error.is_timeout() {
            self.hit(Limit::HeaderTimeout);
        } else if error.is_parse_too_large() {
            self.hit(Limit::HeaderTooLarge);
        } else if error.is_parse() {
            self.hit(Limit::BadRequest);
        }
    }
}

/// Why a request body could not be read; each maps to the status the client gets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    #[error("malformed request body: {0}")]
    Malformed(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn limit(&self) -> Limit {
        match self {
            BodyError::TooLarge(_) => Limit::BodyTooLarge,
            BodyError::Timeout(_) => Limit::BodyTimeout,
            BodyError::Malformed(_) => Limit::BadBody,
        }
    }
}

/// Reads a request body whole: at most `max` bytes (a larger declared length fails before any
/// of it is read, so a client expecting `100 Continue` never sends it), within the body
/// timeout. The unread rest of a refused body is left on the connection: answer with
/// `Connection: close`.
pub async fn read_body(body: Incoming, max: usize, limits: &Limits) -> Result<Bytes, BodyError> {
    let result = if body.size_hint().lower() > max as u64 {
        Err(BodyError::TooLarge(max))
    } else {
        match tokio::time::timeout(limits.body_timeout, Limited::new(body, max).collect()).await {
            Err(_) => Err(BodyError::Timeout(limits.body_timeout)),
            Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
                Err(BodyError::TooLarge(max))
            }
            Ok(Err(error)) => Err(BodyError::Malformed(error.to_string())),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    };
    if let Err(error) = &result {
        limits.hit(error.limit());
    }
    result
}
