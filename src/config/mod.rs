//! Configuration: serde TOML structs with defaults, CLI overrides, and `validate()`.
//!
//! Parse, then validate, in one place: unknown keys are errors, and every problem is reported
//! with the file and the key path (`dns.edns_payload`) or the line the TOML parser names.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod admin;
mod cluster;
mod httpdns;
mod proxy;
mod sections;

pub use admin::*;
pub use cluster::*;
pub use httpdns::*;
pub use proxy::*;
pub use sections::*;

/// Bounds on `http.max_headers` (hyper allocates room for that many fields per request) and
/// `http.max_header_bytes` (hyper's smallest HTTP/1.1 read buffer).
const MAX_HEADER_FIELDS: usize = 10_000;
const MIN_HEADER_BYTES: u64 = 8192;

/// The embedded configuration used when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// One problem with the configuration, naming where it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax or type error; the message carries line and column.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    /// A value that parsed but makes no sense, named by its key path.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub dns: DnsConfig,
    pub recursion: RecursionConfig,
    pub httpdns: HttpDnsConfig,
    pub http: HttpConfig,
    pub proxy: ProxyConfig,
    pub tls: TlsConfig,
    pub cache: CacheConfig,
    pub geoip: GeoipConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub cluster: ClusterConfig,
    pub tasks: TasksConfig,
    /// Where this configuration came from ("embedded default" or a file path), for messages.
    #[serde(skip)]
    pub origin: String,
}

/// Command-line values that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub zones: Option<PathBuf>,
    pub dns_listen: Vec<SocketAddr>,
    pub geoip: Vec<PathBuf>,
    pub admin_listen: Option<SocketAddr>,
    pub admin_tls_listen: Option<SocketAddr>,
    pub log_format: Option<LogFormat>,
    pub query_log: bool,
    pub forwarders: Vec<SocketAddr>,
    pub recursion: bool,
    pub root_hints: Option<PathBuf>,
    pub recursion_allow: Vec<ipnet::IpNet>,
    pub httpdns_listen: Vec<SocketAddr>,
    pub httpdns_tls_listen: Vec<SocketAddr>,
    pub http_listen: Vec<SocketAddr>,
    pub https_listen: Vec<SocketAddr>,
    pub origin: Option<String>,
    /// `cluster.id`: one config file for many nodes (a Kubernetes pod's name).
    pub cluster_id: Option<String>,
    /// `cluster.addresses` (a pod's or host's IP).
    pub cluster_addresses: Vec<IpAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dns: DnsConfig::default(),
            recursion: RecursionConfig::default(),
            httpdns: HttpDnsConfig::default(),
            http: HttpConfig::default(),
            proxy: ProxyConfig::default(),
            tls: TlsConfig::default(),
            cache: CacheConfig::default(),
            geoip: GeoipConfig::default(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
            cluster: ClusterConfig::default(),
            tasks: TasksConfig::default(),
            origin: "defaults".into(),
        }
    }
}

impl Config {
    /// The embedded default configuration (src/config/default.toml).
    pub fn embedded() -> Result<Config, ConfigError> {
        Self::from_toml_str(DEFAULT_CONFIG, "embedded default config", None)
    }

    /// Reads a file; relative paths inside it are taken from the file's directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), path.parent())
    }

    /// `--config FILE` when given, else the embedded default; then the CLI overrides.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::embedded()?,
        };
        config.apply(overrides);
        Ok(config)
    }

    pub fn from_toml_str(
        text: &str,
        origin: &str,
        base_dir: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.origin = origin.to_string();
        if let Some(base) = base_dir.filter(|b| !b.as_os_str().is_empty()) {
            config.dns.zones = base.join(&config.dns.zones);
            for file in &mut config.geoip.files {
                *file = base.join(&*file);
            }
            if let Some(hints) = &mut config.recursion.root_hints {
                *hints = base.join(&*hints);
            }
            let tls = &mut config.tls;
            let optional = [
                &mut tls.cert,
                &mut tls.key,
                &mut config.proxy.origin_ca,
                &mut config.cluster.secret_file,
                &mut config.admin.client_ca,
            ];
            let pairs = tls
                .certificates
                .iter_mut()
                .flat_map(|c| [&mut c.cert, &mut c.key]);
            for path in optional.into_iter().flatten().chain(pairs) {
                *path = base.join(&*path);
            }
        }
        Ok(config)
    }

    pub fn apply(&mut self, o: &Overrides) {
        if let Some(zones) = &o.zones {
            self.dns.zones = zones.clone();
        }
        if !o.dns_listen.is_empty() {
            self.dns.listen = o.dns_listen.clone();
        }
        if !o.geoip.is_empty() {
            self.geoip.files = o.geoip.clone();
        }
        if let Some(admin) = o.admin_listen {
            self.admin.listen = Some(admin);
        }
        if let Some(admin) = o.admin_tls_listen {
            self.admin.tls_listen = Some(admin);
        }
        if let Some(format) = o.log_format {
            self.log.format = format;
        }
        if o.query_log {
            self.dns.query_log = true;
        }
        if !o.forwarders.is_empty() {
            self.recursion.forwarders = o.forwarders.clone();
        }
        if o.recursion {
            self.recursion.iterative = true;
        }
        if let Some(hints) = &o.root_hints {
            self.recursion.root_hints = Some(hints.clone());
        }
        if !o.recursion_allow.is_empty() {
            self.recursion.allow = o.recursion_allow.clone();
        }
        if !o.httpdns_listen.is_empty() {
            self.httpdns.listen = o.httpdns_listen.clone();
        }
        if !o.httpdns_tls_listen.is_empty() {
            self.httpdns.tls_listen = o.httpdns_tls_listen.clone();
        }
        if !o.http_listen.is_empty() {
            self.proxy.listen = o.http_listen.clone();
        }
        if !o.https_listen.is_empty() {
            self.proxy.tls_listen = o.https_listen.clone();
        }
        if let Some(origin) = &o.origin {
            self.proxy.origin = Some(origin.clone());
        }
        if let Some(id) = &o.cluster_id {
            self.cluster.id = id.clone();
        }
        if !o.cluster_addresses.is_empty() {
            self.cluster.addresses = o.cluster_addresses.clone();
        }
    }

    /// Checks what serde cannot; returns every problem, not just the first.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let mut invalid = |key: &str, message: String| {
            problems.push(ConfigError::Invalid {
                origin: self.origin.clone(),
                key: key.to_string(),
                message,
            })
        };
        if self.dns.listen.is_empty() {
            invalid("dns.listen", "at least one address is needed".into());
        }
        for (key, message) in self.cluster.problems() {
            invalid(&key, message);
        }
        if self.cluster.enabled() && self.admin.listen.is_none() {
            invalid(
                "admin.listen",
                "is off, but the cluster is on: peers send heartbeats and purges to it".into(),
            );
        }
        for (key, value) in self.tasks.bounds() {
            if value == 0 {
                invalid(key, "must be at least 1".into());
            }
        }
        if !(512..=4096).contains(&self.dns.edns_payload) {
            invalid(
                "dns.edns_payload",
                format!("{} is outside 512..=4096", self.dns.edns_payload),
            );
        }
        if self.dns.tcp_max_connections == 0 {
            invalid("dns.tcp_max_connections", "must be at least 1".into());
        }
        if self.dns.tcp_max_connections_per_prefix == 0 {
            invalid(
                "dns.tcp_max_connections_per_prefix",
                "must be at least 1".into(),
            );
        }
        if self.dns.tcp_ipv4_prefix > 32 || self.dns.tcp_ipv6_prefix > 128 {
            invalid(
                "dns.tcp_ipv4_prefix",
                "prefix lengths are at most 32 (IPv4) and 128 (dns.tcp_ipv6_prefix)".into(),
            );
        }
        if self.dns.tcp_idle_timeout == 0 {
            invalid("dns.tcp_idle_timeout", "must be at least 1 second".into());
        }
        for (key, message) in self.admin.problems() {
            invalid(&key, message);
        }
        let r = &self.recursion;
        if r.iterative && !r.forwarders.is_empty() {
            invalid(
                "recursion.iterative",
                "choose forwarders or iterative resolution, not both".into(),
            );
        }
        if r.root_hints.is_some() && !r.iterative {
            invalid(
                "recursion.root_hints",
                "only used with recursion.iterative (--recursion)".into(),
            );
        }
        if let Some(net) = r.allow.iter().find(|n| n.prefix_len() == 0) {
            invalid(
                "recursion.allow",
                format!("{net} would make an open resolver; list client networks"),
            );
        }
        if r.timeout_ms == 0 {
            invalid("recursion.timeout_ms", "must be at least 1".into());
        }
        if r.attempts == 0 {
            invalid("recursion.attempts", "must be at least 1".into());
        }
        if r.min_ttl > r.max_ttl {
            invalid(
                "recursion.min_ttl",
                format!("{} is above max_ttl {}", r.min_ttl, r.max_ttl),
            );
        }
        for (key, message) in self.httpdns.problems() {
            invalid(&key, message);
        }
        let l = &self.http;
        for (key, value) in [
            ("http.header_timeout_ms", l.header_timeout_ms),
            ("http.body_timeout_ms", l.body_timeout_ms),
            ("http.idle_timeout_ms", l.idle_timeout_ms),
            ("http.max_streams", u64::from(l.max_streams)),
            ("http.max_pending_resets", l.max_pending_resets as u64),
            ("http.max_connections", l.max_connections as u64),
        ] {
            if value == 0 {
                invalid(key, "must be at least 1".into());
            }
        }
        if !(1..=MAX_HEADER_FIELDS).contains(&l.max_headers) {
            invalid(
                "http.max_headers",
                format!("{} is outside 1..={MAX_HEADER_FIELDS}", l.max_headers),
            );
        }
        if !(MIN_HEADER_BYTES..=u64::from(u32::MAX)).contains(&l.max_header_bytes.0) {
            invalid(
                "http.max_header_bytes",
                format!(
                    "{} bytes is outside 8KiB..4GiB (the HTTP/1.1 read buffer needs 8KiB)",
                    l.max_header_bytes.0
                ),
            );
        }
        let p = &self.proxy;
        for (key, value) in [
            ("proxy.connect_timeout_ms", p.connect_timeout_ms),
            ("proxy.first_byte_timeout_ms", p.first_byte_timeout_ms),
            ("proxy.total_timeout_ms", p.total_timeout_ms),
        ] {
            if value == 0 {
                invalid(key, "must be at least 1".into());
            }
        }
        if !(p.breaker_ratio > 0.0 && p.breaker_ratio <= 1.0) {
            invalid(
                "proxy.breaker_ratio",
                "must be above 0 and at most 1".into(),
            );
        }
        if p.breaker_window_secs == 0 {
            invalid("proxy.breaker_window_secs", "must be at least 1".into());
        }
        let statuses = [
            ("proxy.breaker_statuses".to_string(), &p.breaker_statuses),
            (
                "proxy.never_store_statuses".to_string(),
                &p.never_store_statuses,
            ),
        ]
        .into_iter()
        .chain(p.hosts.iter().enumerate().flat_map(|(i, h)| {
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
                invalid(&key, format!("{bad} is not an HTTP status (100-599)"));
            }
        }
        if p.breaker_failures == 0 {
            invalid("proxy.breaker_failures", "must be at least 1".into());
        }
        for (key, value) in [
            ("proxy.max_fills", p.max_fills),
            ("proxy.max_fills_per_client", p.max_fills_per_client),
        ] {
            if value == 0 {
                invalid(key, "must be at least 1".into());
            }
        }
        let slice = p.slice_size.0;
        if slice != 0 && slice < 64 << 10 {
            invalid(
                "proxy.slice_size",
                format!("{slice} bytes: 0 (off), or at least 64KiB"),
            );
        }
        if p.preload_concurrency == 0 {
            invalid("proxy.preload_concurrency", "must be at least 1".into());
        }
        let hsts = std::iter::once(("proxy.hsts".to_string(), &p.hsts)).chain(
            p.hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (format!("proxy.hosts[{i}].hsts"), &h.hsts)),
        );
        for (key, value) in hsts {
            let value = value.as_deref().map(str::trim).unwrap_or_default();
            if let Some(problem) = Some(value).filter(|v| !v.is_empty()).and_then(hsts_problem) {
                invalid(&key, format!("{value:?} {problem}"));
            }
        }
        if let Some(name) = &p.targeted_cache_control
            && let Some(problem) = field_name_problem(name)
        {
            invalid(
                "proxy.targeted_cache_control",
                format!("{name:?} {problem}"),
            );
        }
        if let Some(url) = &self.tls.ocsp_responder
            && !url.starts_with("http://")
        {
            invalid(
                "tls.ocsp_responder",
                format!("{url:?}: an http:// URL (OCSP responders are asked over plain HTTP)"),
            );
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            invalid(
                "tls.cert",
                "tls.cert and tls.key go together: set both or neither".into(),
            );
        }
        let mut names = std::collections::HashSet::new();
        for (i, entry) in self.tls.certificates.iter().enumerate() {
            let key = format!("tls.certificates[{i}].names");
            let Some(listed) = &entry.names else {
                continue;
            };
            if listed.is_empty() {
                invalid(
                    &key,
                    "empty: list server names, or omit names to take the certificate's own".into(),
                );
            }
            for name in listed {
                if let Err(message) = crate::tls::check_server_name(name) {
                    invalid(&key, message);
                } else if !names.insert(name.trim_end_matches('.').to_ascii_lowercase()) {
                    invalid(&key, format!("{name:?} is listed by an earlier entry too"));
                }
            }
        }
        if self.cache.memory.0 < 1 << 20 {
            invalid(
                "cache.memory",
                format!("{} bytes is below the 1MiB minimum", self.cache.memory.0),
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            invalid("log.level", format!("{:?}: {e}", self.log.level));
        }
        problems
    }
}

#[cfg(test)]
mod tests;
