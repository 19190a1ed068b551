//! The checks of the sections in `sections`, one `validate` each (what serde cannot check:
//! ranges, combinations); `Config::validate` calls them in order.

use super::{
    CacheConfig, DnsConfig, HttpConfig, LogConfig, Problems, RecursionConfig, TasksConfig,
};

/// Bounds on `http.max_headers` (hyper allocates room for that many fields per request) and
/// `http.max_header_bytes` (hyper's smallest HTTP/1.1 read buffer).
const MAX_HEADER_FIELDS: usize = 10_000;
const MIN_HEADER_BYTES: u64 = 8192;

impl DnsConfig {
    /// Everything but `dns.listen`, which `Config::validate` checks first.
    pub fn validate(&self, problems: &mut Problems) {
        if !(512..=4096).contains(&self.edns_payload) {
            problems.add(
                "dns.edns_payload",
                format!("{} is outside 512..=4096", self.edns_payload),
            );
        }
        problems.at_least_one([
            ("dns.tcp_max_connections", self.tcp_max_connections as u64),
            (
                "dns.tcp_max_connections_per_prefix",
                self.tcp_max_connections_per_prefix as u64,
            ),
        ]);
        if self.tcp_ipv4_prefix > 32 || self.tcp_ipv6_prefix > 128 {
            problems.add(
                "dns.tcp_ipv4_prefix",
                "prefix lengths are at most 32 (IPv4) and 128 (dns.tcp_ipv6_prefix)",
            );
        }
        if self.tcp_idle_timeout == 0 {
            problems.add("dns.tcp_idle_timeout", "must be at least 1 second");
        }
    }
}

impl RecursionConfig {
    pub fn validate(&self, problems: &mut Problems) {
        if self.iterative && !self.forwarders.is_empty() {
            problems.add(
                "recursion.iterative",
                "choose forwarders or iterative resolution, not both",
            );
        }
        if self.root_hints.is_some() && !self.iterative {
            problems.add(
                "recursion.root_hints",
                "only used with recursion.iterative (--recursion)",
            );
        }
        if let Some(net) = self.allow.iter().find(|n| n.prefix_len() == 0) {
            problems.add(
                "recursion.allow",
                format!("{net} would make an open resolver; list client networks"),
            );
        }
        problems.at_least_one([
            ("recursion.timeout_ms", self.timeout_ms),
            ("recursion.attempts", u64::from(self.attempts)),
        ]);
        if self.min_ttl > self.max_ttl {
            problems.add(
                "recursion.min_ttl",
                format!("{} is above max_ttl {}", self.min_ttl, self.max_ttl),
            );
        }
    }
}

impl HttpConfig {
    pub fn validate(&self, problems: &mut Problems) {
        problems.at_least_one([
            ("http.header_timeout_ms", self.header_timeout_ms),
            ("http.body_timeout_ms", self.body_timeout_ms),
            ("http.idle_timeout_ms", self.idle_timeout_ms),
            ("http.max_streams", u64::from(self.max_streams)),
            ("http.max_pending_resets", self.max_pending_resets as u64),
            ("http.max_connections", self.max_connections as u64),
        ]);
        if !(1..=MAX_HEADER_FIELDS).contains(&self.max_headers) {
            problems.add(
                "http.max_headers",
                format!("{} is outside 1..={MAX_HEADER_FIELDS}", self.max_headers),
            );
        }
        if !(MIN_HEADER_BYTES..=u64::from(u32::MAX)).contains(&self.max_header_bytes.0) {
            problems.add(
                "http.max_header_bytes",
                format!(
                    "{} bytes is outside 8KiB..4GiB (the HTTP/1.1 read buffer needs 8KiB)",
                    self.max_header_bytes.0
                ),
            );
        }
    }
}

impl CacheConfig {
    pub fn validate(&self, problems: &mut Problems) {
        if self.memory.0 < 1 << 20 {
            problems.add(
                "cache.memory",
                format!("{} bytes is below the 1MiB minimum", self.memory.0),
            );
        }
    }
}

impl LogConfig {
    pub fn validate(&self, problems: &mut Problems) {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            problems.add("log.level", format!("{:?}: {e}", self.level));
        }
    }
}

impl TasksConfig {
    pub fn validate(&self, problems: &mut Problems) {
        let bounds = self.bounds().map(|(key, value)| (key, value as u64));
        problems.at_least_one(bounds);
    }
}
