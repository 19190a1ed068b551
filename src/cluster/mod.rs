//! The cluster: who the peers are (from the config, and from a DNS name for Kubernetes),
//! which of them are up (heartbeats, with self-preservation against partitions), which node
//! owns a cache key (weighted rendezvous hashing over the healthy nodes), and which nodes are
//! nearest a client (DNS steering).
//!
//! The node's view is rebuilt after every heartbeat round and swapped in whole (arc-swap), so
//! request paths read it without locks.

pub mod auth;
mod heartbeat;
mod rendezvous;
mod signed;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::geo::Code;

pub use rendezvous::score;
pub use signed::{Answer, Failure};

/// The field that marks a request on the proxy listener as one from another node of the
/// cluster (a fetch from the key's owner, a preload hand-off): its signature (`auth`). A
/// request that carries a valid one is never forwarded to another node; one that does not is
/// a client's, and loses the field.
pub const SIBLING_HEADER: &str = auth::AUTH_HEADER;

/// One node of the cluster, this one included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: Arc<str>,
    #[serde(with = "code_text")]
    pub country: Option<Code>,
    #[serde(with = "code_text")]
    pub continent: Option<Code>,
    /// What DNS steering answers with for this node.
    pub addresses: Vec<IpAddr>,
    /// Proxy and admin listeners; None for this node itself.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proxy: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub admin: Option<SocketAddr>,
    pub weight: u32,
}

/// The healthy part of the cluster as of the last heartbeat round.
#[derive(Debug)]
pub struct View {
    /// This node first, then every peer that is up.
    pub healthy: Vec<Arc<Member>>,
    /// Peers are being kept although many stopped answering at once.
    pub self_preservation: bool,
}

/// What `GET /admin/cluster` shows of one peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    #[serde(flatten)]
    pub member: Member,
    pub up: bool,
    /// Heartbeats missed in a row.
    pub missed: u32,
    /// Milliseconds since the last answered heartbeat.
    pub last_seen_ms: Option<u64>,
    /// Found through `cluster.discovery` rather than listed in the config.
    pub discovered: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub id: Arc<str>,
    pub enabled: bool,
    pub self_preservation: bool,
    pub peers: Vec<PeerStatus>,
}

struct Peer {
    member: Arc<Member>,
    up: bool,
    missed: u32,
    last_seen: Option<Instant>,
    discovered: bool,
}

#[derive(Default)]
struct ClusterMetrics {
    peers_up: Gauge,
    peers_down: Gauge,
    self_preservation: Gauge,
    heartbeat_failures: Counter,
    heartbeats_refused: Counter,
    auth_refused: Family<WhatLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatLabels {
    what: &'static str,
}

pub struct Cluster {
    me: Arc<Member>,
    config: ClusterConfig,
    peers: Mutex<Vec<Peer>>,
    view: ArcSwap<View>,
    /// Advanced after each change of the healthy set (`publish`), so that DNS answers built
    /// from an older view can tell they are stale (the answer cache, `NodePool::epoch`).
    epoch: AtomicU64,
    client: Client<HttpConnector, Empty<Bytes>>,
    /// Signs and checks every exchange between nodes; None without `cluster.secret` (then
    /// this node neither sends nor accepts any).
    keys: Option<auth::Keys>,
    metrics: ClusterMetrics,
}

fn parse_code(text: &Option<String>) -> Option<Code> {
    text.as_deref().and_then(|t| t.parse().ok())
}

impl Cluster {
    /// The cluster as configured (validated by `Config::validate`); peers start down until
    /// their first heartbeat answers.
    pub fn new(config: &ClusterConfig) -> Arc<Cluster> {
        let me = Arc::new(Member {
            id: Arc::from(config.id.as_str()),
            country: parse_code(&config.country),
            continent: parse_code(&config.continent),
            addresses: config.addresses.clone(),
            proxy: None,
            admin: None,
            weight: config.weight,
        });
        let peers = config
            .peers
            .iter()
            .map(|p| Peer {
                member: Arc::new(Member {
                    id: Arc::from(p.id.as_str()),
                    country: parse_code(&p.country),
                    continent: parse_code(&p.continent),
                    addresses: p.addresses.clone(),
                    proxy: Some(p.proxy),
                    admin: Some(p.admin),
                    weight: p.weight,
                }),
                up: false,
                missed: 0,
                last_seen: None,
                discovered: false,
            })
            .collect();
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(config.heartbeat_timeout_ms)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let cluster = Cluster {
            view: ArcSwap::from_pointee(View {
                healthy: vec![Arc::clone(&me)],
                self_preservation: false,
            }),
            epoch: AtomicU64::new(0),
            me,
            config: config.clone(),
            peers: Mutex::new(peers),
            client,
            // Validated with the rest of the config; a file gone since then means no secret,
            // and every exchange between nodes fails closed.
            keys: config.secret().ok().flatten().map(|s| auth::Keys::new(&s)),
            metrics: ClusterMetrics::default(),
        };
        cluster.publish(&cluster.lock(), false);
        Arc::new(cluster)
    }

    pub fn me(&self) -> &Arc<Member> {
        &self.me
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled()
    }

    pub fn view(&self) -> Arc<View> {
        self.view.load_full()
    }

    /// How many times the healthy set has changed; read it before `nearest` (see `epoch`).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// How long a sibling fetch may take to answer.
    pub fn sibling_timeout(&self) -> Duration {
        Duration::from_millis(self.config.sibling_timeout_ms)
    }

    /// The healthy peer that owns `key`; None when this node owns it (or is alone).
    pub fn owner(&self, key: &[u8]) -> Option<Arc<Member>> {
        let view = self.view.load();
        let members = view.healthy.iter().map(|m| (&*m.id, m.weight));
        let owner = &view.healthy[rendezvous::owner(members, key)?];
        (owner.id != self.me.id).then(|| Arc::clone(owner))
    }

    /// Up to `count` healthy nodes nearest a client in `country` / `continent`: same country
    /// first, then same continent, then the rest; within each, an order by weighted
    /// rendezvous on `client` (its subnet), so one client keeps its nodes and the load
    /// spreads by weight. Nodes without addresses are left out.
    pub fn nearest(
        &self,
        country: Option<Code>,
        continent: Option<Code>,
        client: &[u8],
        count: usize,
    ) -> Vec<Arc<Member>> {
        let view = self.view.load();
        let tier = |m: &Member| {
            if country.is_some() && m.country == country {
                0
            } else if continent.is_some() && m.continent == continent {
                1
            } else {
                2
            }
        };
        let mut ranked: Vec<(u8, f64, &Arc<Member>)> = view
            .healthy
            .iter()
            .filter(|m| !m.addresses.is_empty())
            .map(|m| (tier(m), score(&m.id, m.weight, client), m))
            .collect();
        ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        ranked
            .into_iter()
            .take(count)
            .map(|(_, _, m)| Arc::clone(m))
            .collect()
    }

    /// Every known peer (up or down), for purge and preload fan-out.
    pub fn peers(&self) -> Vec<Arc<Member>> {
        self.lock().iter().map(|p| Arc::clone(&p.member)).collect()
    }

    pub fn status(&self) -> ClusterStatus {
        let now = Instant::now();
        let peers = self
            .lock()
            .iter()
            .map(|p| PeerStatus {
                member: (*p.member).clone(),
                up: p.up,
                missed: p.missed,
                last_seen_ms: p
                    .last_seen
                    .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                discovered: p.discovered,
            })
            .collect();
        ClusterStatus {
            id: Arc::clone(&self.me.id),
            enabled: self.enabled(),
            self_preservation: self.view.load().self_preservation,
            peers,
        }
    }

    /// Registers `edgenode_cluster_*`.
    pub fn register_metrics(self: &Arc<Self>, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("cluster");
        sub.register(
            "peers_up",
            "Peers answering heartbeats",
            self.metrics.peers_up.clone(),
        );
        sub.register(
            "peers_down",
            "Peers marked down",
            self.metrics.peers_down.clone(),
        );
        sub.register(
            "self_preservation",
            "1 while peers are kept although many stopped answering at once",
            self.metrics.self_preservation.clone(),
        );
        sub.register(
            "heartbeat_failures",
            "Heartbeats that got no answer in time",
            self.metrics.heartbeat_failures.clone(),
        );
        sub.register(
            "heartbeats_refused",
            "Heartbeat answers not taken: unsigned, signed by another node, or out of bounds",
            self.metrics.heartbeats_refused.clone(),
        );
        sub.register(
            "auth_refused",
            "Requests and answers between nodes whose signature was refused",
            self.metrics.auth_refused.clone(),
        );
    }

    /// Heartbeats (and discovery) until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if !self.enabled() {
            return;
        }
        let mut heartbeat = tokio::time::interval(Duration::from_millis(self.config.heartbeat_ms));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let discovery = self.config.discovery.clone();
        let discover_every = discovery.as_ref().map_or(Duration::from_secs(3600), |d| {
            Duration::from_secs(d.interval_secs)
        });
        let mut discover = tokio::time::interval(discover_every);
        discover.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = heartbeat.tick() => self.heartbeat_round().await,
                _ = discover.tick(), if discovery.is_some() => {
                    if let Some(d) = &discovery {
                        self.discover(&d.name, d.proxy_port, d.admin_port).await;
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Peer>> {
        // Held only for plain Vec updates, never across an await.
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, peers: &[Peer], self_preservation: bool) {
        let mut healthy = vec![Arc::clone(&self.me)];
        healthy.extend(peers.iter().filter(|p| p.up).map(|p| Arc::clone(&p.member)));
        let up = healthy.len() - 1;
        self.metrics.peers_up.set(up as i64);
        self.metrics.peers_down.set((peers.len() - up) as i64);
        self.metrics
            .self_preservation
            .set(i64::from(self_preservation));
        // Every heartbeat round publishes; only a real change (a node up or down, or a
        // discovered node's new description) advances the epoch.
        let changed = self.view.load().healthy != healthy;
        self.view.store(Arc::new(View {
            healthy,
            self_preservation,
        }));
        if changed {
            // After the store: whoever reads the new epoch sees the new view.
            self.epoch.fetch_add(1, Ordering::Release);
        }
    }
}

/// Optional two-letter codes as JSON strings.
mod code_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::geo::Code;

    pub fn serialize<S: Serializer>(code: &Option<Code>, s: S) -> Result<S::Ok, S::Error> {
        match code {
            Some(code) => s.serialize_some(&code.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Code>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        Ok(text.and_then(|t| t.parse().ok()))
    }
}

#[cfg(test)]
mod tests;
