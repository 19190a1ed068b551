//! `[proxy]`: the caching reverse proxy, its origins and what it stores.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ByteSize, Problems};

/// The caching reverse proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Plain HTTP (HTTP/1.1 and h2c).
    pub listen: Vec<SocketAddr>,
    /// HTTPS (TLS per `[tls]`, ALPN h2 and http/1.1).
    pub tls_listen: Vec<SocketAddr>,
    /// The origin for hosts not in `hosts`, e.g. "http://127.0.0.1:8000" or
    /// "https://origin.example.com".
    pub origin: Option<String>,
    /// Per-host origins, tried in order.
    pub hosts: Vec<ProxyHost>,
    /// A PEM bundle of CA certificates trusted for https origins in addition to the public
    /// roots (origins with certificates from a private CA).
    pub origin_ca: Option<PathBuf>,
    /// Larger responses are passed through and not stored.
    pub max_object_size: ByteSize,
    /// Largest request body passed to the origin (POST, PUT); larger gets 413.
    pub max_request_body: ByteSize,
    pub connect_timeout_ms: u64,
    /// Until the origin's response headers arrive.
    pub first_byte_timeout_ms: u64,
    /// For the whole origin exchange, body included.
    pub total_timeout_ms: u64,
    /// Extra attempts for idempotent requests (with backoff).
    pub retries: u32,
    /// The circuit of an origin opens when, within the last `breaker_window_secs`, at least
    /// `breaker_failures` failures make at least `breaker_ratio` of its outcomes; it stays
    /// open `breaker_open_secs`, then one request probes it.
    pub breaker_failures: u32,
    pub breaker_ratio: f64,
    pub breaker_window_secs: u64,
    pub breaker_open_secs: u64,
    /// Response statuses never stored, whatever the response says (CPDoS: statuses only the
    /// client's own request can cause).
    pub never_store_statuses: Vec<u16>,
    /// Response statuses held against an origin like failures (none by default: any response
    /// is an answer). `[[proxy.hosts]]` may give its own list.
    pub breaker_statuses: Vec<u16>,
    /// Cap on heuristic freshness (10% of the time since Last-Modified), in seconds.
    pub heuristic_max_secs: u64,
    /// How long past expiry a stored response may be served when the origin fails, when the
    /// response itself does not say (stale-if-error), in seconds.
    pub grace_secs: u64,
    /// Peers whose `Forwarded`, `X-Forwarded-*` and `X-Real-IP` fields are believed and
    /// appended to (load balancers in front, other nodes); from anyone else they are removed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Never store a response that sets a cookie, even one the origin marks shared (`public`,
    /// `s-maxage`). `[[proxy.hosts]]` may say otherwise.
    pub never_store_set_cookie: bool,
    /// `Strict-Transport-Security` sent on every HTTPS response (replacing the origin's), e.g.
    /// "max-age=31536000; includeSubDomains"; none by default. `[[proxy.hosts]]` may give its
    /// own, or "" for none.
    pub hsts: Option<String>,
    /// A response field for this node alone (RFC 9213 2.1), e.g. "Edgenode-Cache-Control":
    /// when valid it is followed over `CDN-Cache-Control`, `Surrogate-Control` and
    /// `Cache-Control`, and never passed on to clients.
    pub targeted_cache_control: Option<String>,
    /// Read `Surrogate-Control` (the Edge Architecture's field, as Fastly and Akamai read it)
    /// below `CDN-Cache-Control` and above `Cache-Control`, strip it toward clients, and
    /// announce `Surrogate-Capability` to the origin.
    pub surrogate_control: bool,
    /// URLs warmed at once by `POST /admin/preload`, over all jobs: a preload must not crowd
    /// out clients' fetches from the origin.
    pub preload_concurrency: usize,
    /// Origin fetches (cache fills and passed requests) in progress at once, over all clients.
    pub max_fills: usize,
    /// Origin fetches one client address may have started and still be waiting on.
    pub max_fills_per_client: usize,
    /// How long a fetch over either limit waits for a place before it gets 503.
    pub fill_queue_ms: u64,
    /// Bytes the bodies being stored may hold before they are in the cache; a body that does
    /// not fit is streamed through and not stored.
    pub max_fill_bytes: ByteSize,
    /// A fetch whose clients have all gone is finished (and stored) only when at most this
    /// much of it is left to fetch; else it stops.
    pub abandon_fill_bytes: ByteSize,
    /// A client that stays a streaming window (1 MiB) behind the other readers of an object
    /// that is not being stored this long is cut off, so that it holds nobody back.
    pub slow_reader_ms: u64,
    /// Objects larger than `max_object_size` are fetched and stored in byte ranges of this
    /// size (nginx's slice module), at most `max_object_size`; 0 turns slicing off.
    pub slice_size: ByteSize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyHost {
    pub host: String,
    pub origins: Vec<String>,
    /// This host's origins' `breaker_statuses`, instead of `proxy.breaker_statuses`.
    pub breaker_statuses: Option<Vec<u16>>,
    /// Instead of `proxy.never_store_statuses`, for this host.
    pub never_store_statuses: Option<Vec<u16>>,
    /// Instead of `proxy.never_store_set_cookie`, for this host.
    pub never_store_set_cookie: Option<bool>,
    /// Instead of `proxy.hsts`, for this host ("" sends none).
    pub hsts: Option<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            tls_listen: Vec::new(),
            origin: None,
            hosts: Vec::new(),
            origin_ca: None,
            max_object_size: ByteSize(8 << 20),
            max_request_body: ByteSize(16 << 20),
            connect_timeout_ms: 2000,
            first_byte_timeout_ms: 10_000,
            total_timeout_ms: 30_000,
            retries: 1,
            breaker_failures: 5,
            breaker_ratio: 0.5,
            breaker_window_secs: 10,
            breaker_open_secs: 10,
            breaker_statuses: Vec::new(),
            never_store_statuses: vec![400, 413, 414, 431],
            heuristic_max_secs: 86_400,
            grace_secs: 3600,
            trusted_proxies: Vec::new(),
            never_store_set_cookie: false,
            hsts: None,
            targeted_cache_control: None,
            surrogate_control: true,
            max_fills: 1024,
            max_fills_per_client: 100,
            fill_queue_ms: 2000,
            max_fill_bytes: ByteSize(256 << 20),
            abandon_fill_bytes: ByteSize(1 << 20),
            slow_reader_ms: 5000,
            slice_size: ByteSize(1 << 20),
            preload_concurrency: 8,
        }
    }
}

impl ProxyConfig {
    pub fn validate(&self, problems: &mut Problems) {
        problems.at_least_one([
            ("proxy.connect_timeout_ms", self.connect_timeout_ms),
            ("proxy.first_byte_timeout_ms", self.first_byte_timeout_ms),
            ("proxy.total_timeout_ms", self.total_timeout_ms),
        ]);
        if !(self.breaker_ratio > 0.0 && self.breaker_ratio <= 1.0) {
            problems.add("proxy.breaker_ratio", "must be above 0 and at most 1");
        }
        problems.at_least_one([("proxy.breaker_window_secs", self.breaker_window_secs)]);
        self.validate_statuses(problems);
        problems.at_least_one([
            ("proxy.breaker_failures", u64::from(self.breaker_failures)),
            ("proxy.max_fills", self.max_fills as u64),
            (
                "proxy.max_fills_per_client",
                self.max_fills_per_client as u64,
            ),
        ]);
        let slice = self.slice_size.0;
        if slice != 0 && slice < 64 << 10 {
            problems.add(
                "proxy.slice_size",
                format!("{slice} bytes: 0 (off), or at least 64KiB"),
            );
        }
        problems.at_least_one([("proxy.preload_concurrency", self.preload_concurrency as u64)]);
        self.validate_fields(problems);
    }

    /// `breaker_statuses` and `never_store_statuses`, here and in each of `hosts`.
    fn validate_statuses(&self, problems: &mut Problems) {
        let statuses = [
            ("proxy.breaker_statuses".to_string(), &self.breaker_statuses),
            (
                "proxy.never_store_statuses".to_string(),
                &self.never_store_statuses,
            ),
        ]
        .into_iter()
        .chain(self.hosts.iter().enumerate().flat_map(|(i, h)| {
            let lists = [
                ("breaker_statuses", &h.breaker_statuses),
                ("never_store_statuses", &h.never_store_statuses),
            ];
            lists.into_iter().filter_map(move |(name, list)| {
                let key = format!("proxy.hosts[{i}].{name}");
                list.as_ref().map(|s| (key, s))
            })
        }));
        for (key, list) in statuses {
            if let Some(bad) = list.iter().find(|s| !(100..=599).contains(*s)) {
                problems.add(key, format!("{bad} is not an HTTP status (100-599)"));
            }
        }
    }

    /// The response fields the proxy adds: `hsts` (here and per host) and
    /// `targeted_cache_control`.
    fn validate_fields(&self, problems: &mut Problems) {
        let hsts = std::iter::once(("proxy.hsts".to_string(), &self.hsts)).chain(
            self.hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (format!("proxy.hosts[{i}].hsts"), &h.hsts)),
        );
        for (key, value) in hsts {
            let value = value.as_deref().map(str::trim).unwrap_or_default();
            if let Some(problem) = Some(value).filter(|v| !v.is_empty()).and_then(hsts_problem) {
                problems.add(key, format!("{value:?} {problem}"));
            }
        }
        if let Some(name) = &self.targeted_cache_control
            && let Some(problem) = field_name_problem(name)
        {
            problems.add(
                "proxy.targeted_cache_control",
                format!("{name:?} {problem}"),
            );
        }
    }
}

/// What is wrong with a `Strict-Transport-Security` value, if anything: it needs a
/// `max-age=SECONDS` (RFC 6797 6.1.1: without one, browsers ignore the field) and only visible
/// ASCII.
pub fn hsts_problem(value: &str) -> Option<&'static str> {
    if !value
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Some("has characters a field value cannot hold");
    }
    let has_max_age = value.split(';').any(|directive| {
        directive
            .trim()
            .split_once('=')
            .is_some_and(|(name, seconds)| {
                name.trim().eq_ignore_ascii_case("max-age")
                    && seconds.trim().trim_matches('"').parse::<u64>().is_ok()
            })
    });
    (!has_max_age).then_some("has no max-age=SECONDS (RFC 6797 6.1.1)")
}

/// What is wrong with a response field name, if anything (`proxy.targeted_cache_control`).
pub fn field_name_problem(name: &str) -> Option<&'static str> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Some("is not a field name (letters, digits and -)");
    }
    let reserved = ["cache-control", "expires", "pragma", "surrogate-control"];
    reserved
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
        .then_some("names a field the cache already reads; choose one for this node alone")
}
