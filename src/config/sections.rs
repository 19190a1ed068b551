//! The sections of the configuration file, one struct each, with their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::geo::CidrOverride;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Each address gets a UDP socket and a TCP listener.
    pub listen: Vec<SocketAddr>,
    /// Directory of `<zone>.zone` master files and optional `<zone>.geo.toml` policies.
    pub zones: PathBuf,
    /// Largest UDP payload we answer with when the client offers more (RFC 6891; 1232 avoids
    /// IP fragmentation, the DNS Flag Day 2020 value).
    pub edns_payload: u16,
    /// Seconds a TCP connection may stay idle between queries (and may take to read an
    /// answer).
    pub tcp_idle_timeout: u64,
    /// Open TCP connections at most; more are closed at once (RFC 7766 section 6.2.2).
    pub tcp_max_connections: usize,
    /// Open TCP connections one client network may hold; more are closed at once.
    pub tcp_max_connections_per_prefix: usize,
    /// The client networks of `tcp_max_connections_per_prefix`: IPv4 prefix length ...
    pub tcp_ipv4_prefix: u8,
    /// ... and IPv6 prefix length.
    pub tcp_ipv6_prefix: u8,
    /// Log one line per query (off by default: it costs throughput; it also bypasses the
    /// answer cache).
    pub query_log: bool,
    /// Keep pre-built authoritative responses for repeated queries, as entries of the cache
    /// core (admitted, evicted and charged within `cache.memory`); false: off.
    pub answer_cache: bool,
    /// Receive and send UDP in batches (recvmmsg/sendmmsg, Linux only; elsewhere ignored).
    /// Off: one system call per datagram each way, for comparison.
    pub udp_batch: bool,
    /// Response rate limiting for UDP.
    pub rrl: RrlConfig,
}

/// `[dns.rrl]`: UDP responses per client network and class of response (answers per name and
/// type or wildcard, NXDOMAIN and NODATA per zone, referrals per delegation point, errors; see
/// `dns::rrl`); beyond the budget dropped, every `slip`-th sent truncated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RrlConfig {
    /// Per network and class; 0 turns RRL off.
    pub responses_per_second: u32,
    /// Seconds of budget a quiet network may spend at once (the burst).
    pub window: u32,
    /// Every this many limited responses, one goes out truncated (TC=1) instead of being
    /// dropped, so a real client retries over TCP; 0 drops them all.
    pub slip: u32,
    /// Client addresses are grouped into networks of these prefixes.
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Networks never limited (monitoring, local resolvers, load tests).
    pub exempt: Vec<ipnet::IpNet>,
}

impl Default for RrlConfig {
    fn default() -> Self {
        Self {
            responses_per_second: 200,
            window: 2,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec![
                "127.0.0.0/8".parse().expect("literal network"),
                "::1/128".parse().expect("literal network"),
            ],
        }
    }
}

/// Recursive resolution for names outside the served zones; off unless `forwarders` or
/// `iterative` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecursionConfig {
    /// Upstream resolvers, tried in order (forwarding mode).
    pub forwarders: Vec<SocketAddr>,
    /// Resolve iteratively from the root hints.
    pub iterative: bool,
    /// Root hints zone file (A/AAAA records of the root servers); none: the real root servers.
    pub root_hints: Option<PathBuf>,
    /// Clients that may recurse; everyone else gets REFUSED outside the served zones.
    pub allow: Vec<ipnet::IpNet>,
    /// Name-server networks the iterative resolver may ask although its built-in filter denies
    /// them (loopback, private, documentation ranges): for private hierarchies and tests.
    pub allow_servers: Vec<ipnet::IpNet>,
    /// Milliseconds to wait for one upstream answer.
    pub timeout_ms: u64,
    /// Rounds over the upstreams before giving up (with backoff between rounds).
    pub attempts: u32,
    /// Bounds on the TTLs of cached answers, in seconds.
    pub min_ttl: u32,
    pub max_ttl: u32,
    /// Upper bound on the TTL of cached negative answers (RFC 2308 section 5), in seconds.
    pub max_negative_ttl: u32,
    /// Seconds after expiry during which an answer may be served when upstreams fail (RFC 8767).
    pub stale_window: u32,
    /// TTL of a stale answer (RFC 8767 section 4 recommends 30 s).
    pub stale_ttl: u32,
}

/// Limits on every HTTP listener (proxy, HTTPDNS, admin): how long and how much a client may
/// send before it is answered 4xx or disconnected.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// From accept, the TLS handshake and the first request's header section must arrive within
    /// this; so must each later HTTP/1.1 request's (an idle keep-alive connection is closed).
    pub header_timeout_ms: u64,
    /// Once its headers are in, a request body the server reads must arrive whole within this.
    pub body_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed: HTTP/2 with GOAWAY
    /// (pings do not count as activity); HTTP/1.1 between requests (`header_timeout_ms` also
    /// applies there, whichever is shorter).
    pub idle_timeout_ms: u64,
    /// Request header fields at most (HTTP/1.1); more is a 431.
    pub max_headers: usize,
    /// Size of a request head: HTTP/1.1 request line and fields (more is a 431); HTTP/2 the
    /// decoded field list (SETTINGS_MAX_HEADER_LIST_SIZE).
    pub max_header_bytes: ByteSize,
    /// HTTP/2 streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_streams: u32,
    /// HTTP/2, per connection: streams the client resets before they are served, and streams
    /// the server resets for the client's errors; one more closes the connection with GOAWAY
    /// (rapid reset, CVE-2023-44487).
    pub max_pending_resets: usize,
    /// Connections open at once per listener; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold open at once per listener.
    pub max_connections_per_client: usize,
    /// Request target (path and query) at most; longer gets 414 (RFC 9112 3). A request line
    /// longer than `max_header_bytes` gets 431 from the HTTP/1.1 parser before this applies.
    pub max_uri_bytes: ByteSize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_headers: 100,
            max_header_bytes: ByteSize(64 << 10),
            max_streams: 256,
            max_pending_resets: 64,
            max_connections: 10_000,
            max_uri_bytes: ByteSize(16 << 10),
            max_connections_per_client: 1000,
        }
    }
}

/// The one cache core shared by every cache of the node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Memory budget for all cached data, e.g. "256MiB".
    pub memory: ByteSize,
}

/// A size in bytes written as a number or as "64KiB", "256MiB", "1GiB" (also KB, MB, GB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Why a text is not a `ByteSize`; each names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ByteSizeError {
    #[error("{text:?} is not a size like \"256MiB\"")]
    NotASize { text: String },
    #[error("unknown unit {unit:?} in {text:?} (use KiB, MiB or GiB)")]
    UnknownUnit { unit: String, text: String },
    #[error("{text:?} is too large")]
    TooLarge { text: String },
}

impl std::str::FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(text: &str) -> Result<Self, ByteSizeError> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| ByteSizeError::NotASize {
            text: text.to_string(),
        })?;
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" => 1 << 10,
            "MiB" | "M" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => {
                return Err(ByteSizeError::UnknownUnit {
                    unit: other.to_string(),
                    text: text.to_string(),
                });
            }
        };
        number
            .checked_mul(scale)
            .map(ByteSize)
            .ok_or_else(|| ByteSizeError::TooLarge {
                text: text.to_string(),
            })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoipConfig {
    /// MaxMind DB files, consulted in order (e.g. a country and an ASN database).
    pub files: Vec<PathBuf>,
    /// CIDR table that overrides the databases (private networks, tests).
    pub overrides: Vec<CidrOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter such as "info" or "edgenode=debug"; RUST_LOG wins when set.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for RecursionConfig {
    fn default() -> Self {
        Self {
            forwarders: Vec::new(),
            iterative: false,
            root_hints: None,
            allow: vec![
                "127.0.0.0/8".parse().expect("literal"),
                "::1/128".parse().expect("literal"),
            ],
            allow_servers: Vec::new(),
            timeout_ms: 1000,
            attempts: 2,
            min_ttl: 0,
            max_ttl: 86_400,
            max_negative_ttl: 3600,
            stale_window: 86_400,
            stale_ttl: 30,
        }
    }
}

impl RecursionConfig {
    /// Whether names outside the served zones are resolved at all.
    pub fn enabled(&self) -> bool {
        self.iterative || !self.forwarders.is_empty()
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory: ByteSize(256 << 20),
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5353))],
            zones: PathBuf::from("zones"),
            edns_payload: 1232,
            tcp_idle_timeout: 10,
            tcp_max_connections: 1024,
            tcp_max_connections_per_prefix: 64,
            tcp_ipv4_prefix: 24,
            tcp_ipv6_prefix: 56,
            query_log: false,
            answer_cache: true,
            udp_batch: true,
            rrl: RrlConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `[tasks]`: how many background tasks of each kind may run at once (`crate::tasks`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TasksConfig {
    /// Recursive answers UDP clients wait for; beyond, a query is dropped (as if lost).
    pub recursion: usize,
    /// Cache fills (origin, sibling and recursive fetches that finish without their client);
    /// beyond, a miss is answered 503 with Retry-After and a background refresh is skipped.
    pub fills: usize,
    /// Preload jobs running at once; beyond, `POST /admin/preload` answers 503.
    pub preload_jobs: usize,
    /// Connection drivers to upstreams (forwarders over TCP, OCSP responders).
    pub upstream_connections: usize,
}

impl Default for TasksConfig {
    fn default() -> Self {
        Self {
            recursion: 10_000,
            fills: 4_096,
            preload_jobs: 16,
            upstream_connections: 4_096,
        }
    }
}

impl TasksConfig {
    /// Each bound with its key path.
    pub fn bounds(&self) -> [(&'static str, usize); 4] {
        [
            ("tasks.recursion", self.recursion),
            ("tasks.fills", self.fills),
            ("tasks.preload_jobs", self.preload_jobs),
            ("tasks.upstream_connections", self.upstream_connections),
        ]
    }
}
