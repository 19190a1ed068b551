//! `[cluster]`: this node's identity and its peers, heartbeats, sibling fetches.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use super::Problems;

/// The fewest bytes a cluster secret may have.
pub const MIN_SECRET_BYTES: usize = 32;

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
    /// The shared secret every request between nodes is signed with (at least 32 bytes;
    /// `edgenode secret` makes one), or a file holding it; one of the two is required when
    /// the cluster is on. See `cluster::auth`.
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
}

/// The largest weight a node may have (configured, or announced by a discovered peer).
pub const MAX_WEIGHT: u32 = 10_000;

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
            secret: None,
            secret_file: None,
        }
    }
}

impl ClusterConfig {
    /// Whether this node is part of a cluster at all.
    pub fn enabled(&self) -> bool {
        !self.peers.is_empty() || self.discovery.is_some()
    }

    /// The secret's bytes: `secret`, or the contents of `secret_file` without surrounding
    /// whitespace; None when neither is set. Errors name the key and say what is wrong.
    pub fn secret(&self) -> Result<Option<Vec<u8>>, (String, String)> {
        let secret = match (&self.secret, &self.secret_file) {
            (Some(_), Some(_)) => {
                return Err((
                    "cluster.secret".into(),
                    "set cluster.secret or cluster.secret_file, not both".into(),
                ));
            }
            (None, None) => return Ok(None),
            (Some(text), None) => ("cluster.secret", text.trim().as_bytes().to_vec()),
            (None, Some(path)) => match std::fs::read(path) {
                Ok(bytes) => ("cluster.secret_file", bytes.trim_ascii().to_vec()),
                Err(error) => {
                    let message = format!("cannot read {}: {error}", path.display());
                    return Err(("cluster.secret_file".into(), message));
                }
            },
        };
        let (key, bytes) = secret;
        if bytes.len() < MIN_SECRET_BYTES {
            let message = format!(
                "has {} bytes; at least {} are needed (`edgenode secret` makes one)",
                bytes.len(),
                MIN_SECRET_BYTES
            );
            return Err((key.into(), message));
        }
        Ok(Some(bytes))
    }

    pub fn validate(&self, problems: &mut Problems) {
        match self.secret() {
            Err((key, message)) => problems.add(key, message),
            Ok(None) if self.enabled() => problems.add(
                "cluster.secret",
                "required when cluster.peers or cluster.discovery is set: every request \
                 between nodes is signed with it (`edgenode secret` makes one; or \
                 cluster.secret_file)",
            ),
            Ok(_) => {}
        }
        self.validate_node(problems);
        self.validate_peers(problems);
        if let Some(discovery) = &self.discovery {
            problems.check(
                "cluster.discovery.name",
                !discovery.name.trim().is_empty(),
                "must name a DNS name",
            );
            problems.check(
                "cluster.discovery.interval_secs",
                discovery.interval_secs > 0,
                "must be at least 1",
            );
        }
    }

    /// This node's identity and timings.
    fn validate_node(&self, problems: &mut Problems) {
        problems.check("cluster.id", valid_id(&self.id), ID_RULE);
        let weight_ok = (1..=MAX_WEIGHT).contains(&self.weight);
        problems.check("cluster.weight", weight_ok, WEIGHT_RULE);
        check_region(problems, "cluster", &self.country, &self.continent);
        problems.check(
            "cluster.heartbeat_ms",
            self.heartbeat_ms > 0,
            "must be at least 1",
        );
        problems.check(
            "cluster.heartbeat_timeout_ms",
            self.heartbeat_timeout_ms > 0 && self.heartbeat_timeout_ms <= self.heartbeat_ms,
            "must be between 1 and cluster.heartbeat_ms",
        );
        problems.check(
            "cluster.down_after",
            self.down_after > 0,
            "must be at least 1",
        );
        problems.check(
            "cluster.self_preservation",
            self.self_preservation > 0.0 && self.self_preservation <= 1.0,
            "must be a share above 0 and at most 1",
        );
        problems.check(
            "cluster.sibling_timeout_ms",
            self.sibling_timeout_ms > 0,
            "must be at least 1",
        );
    }

    /// `[[cluster.peers]]`: valid and unique ids (this node's included), weights, regions.
    fn validate_peers(&self, problems: &mut Problems) {
        let mut seen = vec![self.id.as_str()];
        for (i, peer) in self.peers.iter().enumerate() {
            let key = |field: &str| format!("cluster.peers[{i}].{field}");
            problems.check(key("id"), valid_id(&peer.id), ID_RULE);
            problems.check(
                key("id"),
                !seen.contains(&peer.id.as_str()),
                "ids must be unique in the cluster (cluster.id included)",
            );
            seen.push(&peer.id);
            let weight_ok = (1..=MAX_WEIGHT).contains(&peer.weight);
            problems.check(key("weight"), weight_ok, WEIGHT_RULE);
            let prefix = format!("cluster.peers[{i}]");
            check_region(problems, &prefix, &peer.country, &peer.continent);
        }
    }
}

const ID_RULE: &str = "must be 1 to 63 characters of letters, digits, '-', '_' or '.'";

const WEIGHT_RULE: &str = "must be between 1 and 10000";

/// Whether `id` is a valid node id (`ID_RULE`).
pub fn valid_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_region(
    problems: &mut Problems,
    prefix: &str,
    country: &Option<String>,
    continent: &Option<String>,
) {
    if let Some(country) = country {
        let ok = country.parse::<crate::geo::Code>().is_ok();
        problems.check(
            format!("{prefix}.country"),
            ok,
            "must be a two-letter ISO country code",
        );
    }
    if let Some(continent) = continent {
        let ok = continent
            .parse::<crate::geo::Code>()
            .is_ok_and(|c| crate::geo::CONTINENTS.contains(&c));
        problems.check(
            format!("{prefix}.continent"),
            ok,
            "must be one of AF AN AS EU NA OC SA",
        );
    }
}
