//! `[cluster]`: this node's identity and its peers, heartbeats, sibling fetches.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

/// Cluster membership. Off (a node of its own) unless `peers` or `discovery` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's id, unique in the cluster (rendezvous hashing uses it).
    pub id: String,
    /// Where this node is, for DNS steering: ISO country and continent codes.
    pub country: Option<String>,
    pub continent: Option<String>,
    /// The addresses DNS steering answers with for this node (A and AAAA).
    pub addresses: Vec<IpAddr>,
    /// Share of the keys (rendezvous) and of the DNS answers relative to the other nodes.
    pub weight: u32,
    pub peers: Vec<PeerConfig>,
    /// Peers found by resolving a name (a Kubernetes headless Service) periodically.
    pub discovery: Option<DiscoveryConfig>,
    /// How often each peer is asked for a heartbeat, and how long one may take.
    pub heartbeat_ms: u64,
    pub heartbeat_timeout_ms: u64,
    /// Heartbeats missed in a row that mark a peer down (one answered marks it up).
    pub down_after: u32,
    /// When more than this share of the peers would go down in one round (and at least two),
    /// the node keeps the last known set instead (self-preservation: it is more likely that
    /// this node is cut off than that they all failed at once).
    pub self_preservation: f64,
    /// How long a sibling fetch may take to answer before the origin is asked instead.
    pub sibling_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: String,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub continent: Option<String>,
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// The peer's proxy (plain HTTP) listener, for sibling fetches.
    pub proxy: SocketAddr,
    /// The peer's admin listener, for heartbeats, preload and purge.
    pub admin: SocketAddr,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// A name whose A/AAAA records are the peers' addresses (e.g. a headless Service,
    /// `edgenode.edge.svc.cluster.local`).
    pub name: String,
    /// The peers' proxy and admin ports.
    pub proxy_port: u16,
    pub admin_port: u16,
    #[serde(default = "default_discovery_interval")]
    pub interval_secs: u64,
}

fn default_weight() -> u32 {
    100
}

fn default_discovery_interval() -> u64 {
    30
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            id: "edgenode".into(),
            country: None,
            continent: None,
            addresses: Vec::new(),
            weight: default_weight(),
            peers: Vec::new(),
            discovery: None,
            heartbeat_ms: 1000,
            heartbeat_timeout_ms: 500,
            down_after: 3,
            self_preservation: 0.5,
            sibling_timeout_ms: 1000,
        }
    }
}

impl ClusterConfig {
    /// Whether this node is part of a cluster at all.
    pub fn enabled(&self) -> bool {
        !self.peers.is_empty() || self.discovery.is_some()
    }

    /// Problems as (key path, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut check = |key: String, ok: bool, message: &str| {
            if !ok {
                problems.push((key, message.to_string()));
            }
        };
        check("cluster.id".into(), valid_id(&self.id), ID_RULE);
        check(
            "cluster.weight".into(),
            self.weight > 0,
            "must be at least 1",
        );
        check_region(&mut check, "cluster", &self.country, &self.continent);
        check(
            "cluster.heartbeat_ms".into(),
            self.heartbeat_ms > 0,
            "must be at least 1",
        );
        check(
            "cluster.heartbeat_timeout_ms".into(),
            self.heartbeat_timeout_ms > 0 && self.heartbeat_timeout_ms <= self.heartbeat_ms,
            "must be between 1 and cluster.heartbeat_ms",
        );
        check(
            "cluster.down_after".into(),
            self.down_after > 0,
            "must be at least 1",
        );
        check(
            "cluster.self_preservation".into(),
            self.self_preservation > 0.0 && self.self_preservation <= 1.0,
            "must be a share above 0 and at most 1",
        );
        check(
            "cluster.sibling_timeout_ms".into(),
            self.sibling_timeout_ms > 0,
            "must be at least 1",
        );
        let mut seen = vec![self.id.as_str()];
        for (i, peer) in self.peers.iter().enumerate() {
            let key = |field: &str| format!("cluster.peers[{i}].{field}");
            check(key("id"), valid_id(&peer.id), ID_RULE);
            check(
                key("id"),
                !seen.contains(&peer.id.as_str()),
                "ids must be unique in the cluster (cluster.id included)",
            );
            seen.push(&peer.id);
            check(key("weight"), peer.weight > 0, "must be at least 1");
            check_region(
                &mut check,
                &format!("cluster.peers[{i}]"),
                &peer.country,
                &peer.continent,
            );
        }
        if let Some(discovery) = &self.discovery {
            check(
                "cluster.discovery.name".into(),
                !discovery.name.trim().is_empty(),
                "must name a DNS name",
            );
            check(
                "cluster.discovery.interval_secs".into(),
                discovery.interval_secs > 0,
                "must be at least 1",
            );
        }
        problems
    }
}

const ID_RULE: &str = "must be 1 to 63 characters of letters, digits, '-', '_' or '.'";

fn valid_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_region(
    check: &mut impl FnMut(String, bool, &str),
    prefix: &str,
    country: &Option<String>,
    continent: &Option<String>,
) {
    if let Some(country) = country {
        let ok = country.parse::<crate::geo::Code>().is_ok();
        check(
            format!("{prefix}.country"),
            ok,
            "must be a two-letter ISO country code",
        );
    }
    if let Some(continent) = continent {
        let ok = continent
            .parse::<crate::geo::Code>()
            .is_ok_and(|c| crate::geo::CONTINENTS.contains(&c));
        check(
            format!("{prefix}.continent"),
            ok,
            "must be one of AF AN AS EU NA OC SA",
        );
    }
}
