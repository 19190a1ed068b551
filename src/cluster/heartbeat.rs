//! Heartbeats and discovery: who is up, and what each peer says of itself. An answer counts
//! only when it is signed by the peer asked (`auth`) and describes it within bounds: a
//! configured peer must answer with its configured id; a discovered one with a valid id that
//! no other node has, a weight of at most `MAX_WEIGHT` and a few routable addresses. Anything
//! else is a missed heartbeat, logged and counted, and changes nothing.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use tokio::time::Instant;

use super::signed::Failure;
use super::{Cluster, Member, Peer};
use crate::config::{MAX_WEIGHT, valid_id};

/// The most addresses a discovered peer may announce for DNS steering.
pub const MAX_ADDRESSES: usize = 16;

impl Cluster {
    /// Asks every peer at once, then applies the answers: up on a valid answer, down after
    /// `down_after` misses in a row, unless self-preservation holds the set.
    pub(super) async fn heartbeat_round(&self) {
        let targets: Vec<(SocketAddr, Option<Arc<str>>)> = self
            .lock()
            .iter()
            .filter_map(|p| {
                let expected = (!p.discovered).then(|| Arc::clone(&p.member.id));
                p.member.admin.map(|admin| (admin, expected))
            })
            .collect();
        let probes = targets
            .iter()
            .map(|(admin, expected)| self.probe(*admin, expected.as_deref()));
        let answers = futures_util::future::join_all(probes).await;
        let now = Instant::now();
        let mut peers = self.lock();
        for ((admin, _), answer) in targets.iter().zip(answers) {
            let answer = answer.and_then(|info| self.check_answer(&peers, *admin, info));
            let Some(peer) = peers.iter_mut().find(|p| p.member.admin == Some(*admin)) else {
                continue;
            };
            match answer {
                Ok(info) => {
                    if peer.discovered {
                        // A discovered peer is known by its address until it says who it is.
                        peer.member = Arc::new(Member {
                            proxy: peer.member.proxy,
                            admin: peer.member.admin,
                            ..info
                        });
                    }
                    if !peer.up {
                        tracing::info!(peer = %peer.member.id, "peer up");
                    }
                    peer.up = true;
                    peer.missed = 0;
                    peer.last_seen = Some(now);
                }
                Err(Miss::Silent) => {
                    self.metrics.heartbeat_failures.inc();
                    peer.missed = peer.missed.saturating_add(1);
                }
                Err(Miss::Refused(reason)) => {
                    // Loud once, then quiet while it goes on.
                    if peer.missed == 0 {
                        tracing::warn!(peer = %peer.member.id, %admin, %reason, "heartbeat answer refused");
                    } else {
                        tracing::debug!(peer = %peer.member.id, %admin, %reason, "heartbeat answer refused");
                    }
                    self.metrics.heartbeats_refused.inc();
                    peer.missed = peer.missed.saturating_add(1);
                }
            }
        }
        // A discovered address that turns out to be this node.
        peers.retain(|p| !(p.discovered && p.member.id == self.me.id));
        self.apply_misses(&mut peers);
    }

    /// Marks down the peers that missed `down_after` heartbeats in a row, unless so many go
    /// at once that this node is more likely cut off (self-preservation), and publishes.
    fn apply_misses(&self, peers: &mut [Peer]) {
        let down_after = self.config.down_after;
        let failing: Vec<usize> = (0..peers.len())
            .filter(|&i| peers[i].up && peers[i].missed >= down_after)
            .collect();
        let already_down = peers.iter().filter(|p| !p.up).count();
        let share = (already_down + failing.len()) as f64 / peers.len().max(1) as f64;
        let preserving = failing.len() >= 2 && share > self.config.self_preservation;
        if preserving {
            if !self.view.load().self_preservation {
                tracing::warn!(
                    failing = failing.len(),
                    peers = peers.len(),
                    "self-preservation: most peers stopped answering at once; keeping the last known set"
                );
            }
        } else {
            if self.view.load().self_preservation {
                tracing::info!("self-preservation over");
            }
            for i in failing {
                tracing::warn!(peer = %peers[i].member.id, missed = peers[i].missed, "peer down");
                peers[i].up = false;
            }
        }
        self.publish(peers, preserving);
    }

    /// One heartbeat: the peer's own description, signed by `expected` (by whoever it says
    /// it is, for a discovered peer).
    async fn probe(&self, admin: SocketAddr, expected: Option<&str>) -> Result<Member, Miss> {
        let timeout = Duration::from_millis(self.config.heartbeat_timeout_ms);
        let request = (&Method::GET, "/cluster/heartbeat");
        let body = self
            .ask_peer(admin, expected, request, timeout)
            .await
            .map_err(|failure| match failure {
                Failure::Refused(reason) => Miss::Refused(reason),
                Failure::NoAnswer(_) => Miss::Silent,
            })?;
        if !body.status.is_success() {
            return Err(Miss::Refused(format!("status {}", body.status)));
        }
        serde_json::from_slice::<Member>(&body.bytes)
            .map_err(|e| Miss::Refused(format!("not a node's description: {e}")))
            .and_then(|info| match *info.id == *body.signer {
                true => Ok(info),
                false => Err(Miss::Refused(format!(
                    "signed by {} but describes {}",
                    body.signer, info.id
                ))),
            })
    }

    /// Whether a peer's description of itself may be taken: see the module's comment.
    fn check_answer(
        &self,
        peers: &[Peer],
        admin: SocketAddr,
        info: Member,
    ) -> Result<Member, Miss> {
        let refuse = |reason: String| Err(Miss::Refused(reason));
        let Some(peer) = peers.iter().find(|p| p.member.admin == Some(admin)) else {
            return refuse("no longer a peer".into());
        };
        if !peer.discovered {
            // Signed by the configured id (checked in `probe`); the configured description
            // (region, addresses, weight) is the one used.
            return Ok(info);
        }
        if !valid_id(&info.id) {
            return refuse(format!("invalid id {:?}", info.id));
        }
        let taken = *info.id != *self.me.id
            && peers
                .iter()
                .any(|p| p.member.admin != Some(admin) && p.member.id == info.id);
        if taken {
            return refuse(format!("id {} belongs to another node", info.id));
        }
        if !(1..=MAX_WEIGHT).contains(&info.weight) {
            return refuse(format!("weight {} outside 1..={MAX_WEIGHT}", info.weight));
        }
        if info.addresses.len() > MAX_ADDRESSES {
            return refuse(format!(
                "{} addresses, at most {MAX_ADDRESSES}",
                info.addresses.len()
            ));
        }
        if let Some(bad) = info.addresses.iter().find(|a| !steerable(a)) {
            return refuse(format!("address {bad} cannot be answered with"));
        }
        Ok(info)
    }

    /// Resolves the discovery name; new addresses become peers (down until they answer),
    /// vanished ones are dropped. A failed lookup changes nothing.
    pub(super) async fn discover(&self, name: &str, proxy_port: u16, admin_port: u16) {
        let addrs: HashSet<IpAddr> = match tokio::net::lookup_host((name, admin_port)).await {
            Ok(found) => found.map(|a| a.ip()).collect(),
            Err(error) => {
                tracing::warn!(%name, %error, "peer discovery failed; keeping the known peers");
                return;
            }
        };
        let mut peers = self.lock();
        peers.retain(|p| !p.discovered || p.member.admin.is_some_and(|a| addrs.contains(&a.ip())));
        for ip in addrs {
            let admin = SocketAddr::new(ip, admin_port);
            if peers.iter().any(|p| p.member.admin == Some(admin)) {
                continue;
            }
            tracing::info!(%admin, "peer discovered");
            peers.push(Peer {
                member: Arc::new(Member {
                    id: Arc::from(admin.to_string()),
                    country: None,
                    continent: None,
                    addresses: Vec::new(),
                    proxy: Some(SocketAddr::new(ip, proxy_port)),
                    admin: Some(admin),
                    weight: 100,
                }),
                up: false,
                missed: 0,
                last_seen: None,
                discovered: true,
            });
        }
        let preserving = self.view.load().self_preservation;
        self.publish(&peers, preserving);
    }
}

/// Why a heartbeat did not count.
enum Miss {
    /// No answer in time (or no connection).
    Silent,
    /// An answer that is not signed by the peer, or describes it out of bounds.
    Refused(String),
}

/// Whether DNS steering may answer with `address`: not unspecified, multicast or broadcast.
fn steerable(address: &IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}
