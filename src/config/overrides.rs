//! Command-line values that replace the file's: each flag declared once, here (`edgenode
//! serve`, `check` and `geoip lookup` flatten it into their arguments), and applied once.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::{Config, LogFormat};

/// Command-line values that replace the file's; the doc comments are the flags' help.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Directory of `<zone>.zone` files and `<zone>.geo.toml` policies.
    #[arg(long)]
    pub zones: Option<PathBuf>,
    /// DNS address, UDP and TCP (repeatable; port 0 picks a free port).
    #[arg(long = "dns-listen", value_name = "ADDR")]
    pub dns_listen: Vec<SocketAddr>,
    /// MaxMind DB file (repeatable, consulted in order; replaces geoip.files).
    #[arg(long = "geoip", value_name = "FILE")]
    pub geoip: Vec<PathBuf>,
    /// Admin HTTP address (metrics, health, reload).
    #[arg(long = "admin-listen", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// The admin API over TLS as well, with the [tls] certificates (admin.tls_listen).
    #[arg(long = "admin-tls-listen", value_name = "ADDR")]
    pub admin_tls_listen: Option<SocketAddr>,
    #[arg(long = "log-format", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log one line per DNS query.
    #[arg(long = "query-log")]
    pub query_log: bool,
    /// Forward queries outside the served zones to this resolver (repeatable; turns recursion on).
    #[arg(long = "forwarder", value_name = "ADDR")]
    pub forwarders: Vec<SocketAddr>,
    /// Resolve names outside the served zones iteratively from the root (turns recursion on).
    #[arg(long)]
    pub recursion: bool,
    /// Root hints zone file for --recursion (default: the real root servers).
    #[arg(long = "root-hints", value_name = "FILE")]
    pub root_hints: Option<PathBuf>,
    /// Client network allowed to recurse (repeatable; replaces the default 127.0.0.0/8 and ::1).
    #[arg(long = "recursion-allow", value_name = "CIDR")]
    pub recursion_allow: Vec<ipnet::IpNet>,
    /// HTTPDNS and DoH over plain HTTP/1.1 and h2c (repeatable).
    #[arg(long = "httpdns-listen", value_name = "ADDR")]
    pub httpdns_listen: Vec<SocketAddr>,
    /// HTTPDNS and DoH over TLS 1.3, ALPN h2 and http/1.1 (repeatable).
    #[arg(long = "httpdns-tls-listen", value_name = "ADDR")]
    pub httpdns_tls_listen: Vec<SocketAddr>,
    /// The caching proxy over plain HTTP/1.1 and h2c (repeatable).
    #[arg(long = "http-listen", value_name = "ADDR")]
    pub http_listen: Vec<SocketAddr>,
    /// The caching proxy over TLS, ALPN h2 and http/1.1 (repeatable).
    #[arg(long = "https-listen", value_name = "ADDR")]
    pub https_listen: Vec<SocketAddr>,
    /// The default origin of the proxy, e.g. http://127.0.0.1:8000 or https://origin.example.com.
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
    /// This node's id in the cluster (replaces cluster.id; e.g. a Kubernetes pod's name).
    #[arg(long = "cluster-id", value_name = "ID")]
    pub cluster_id: Option<String>,
    /// An address DNS steering answers with for this node (repeatable; replaces
    /// cluster.addresses).
    #[arg(long = "cluster-address", value_name = "IP")]
    pub cluster_addresses: Vec<IpAddr>,
}

impl Config {
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
}
