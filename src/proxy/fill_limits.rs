//! Bounds on what origin fetches in progress may cost the node: how many run at once (over
//! all clients, and per client address), and how many bytes the bodies being stored hold
//! before they are in the cache. Over a count limit a fetch waits in line for
//! `proxy.fill_queue_ms`, then gets 503 with `Retry-After`; over the byte budget a body is
//! streamed through instead of stored. Each time a limit is hit it is counted
//! (`edgenode_proxy_fill_limits_total{limit}`).
//!
//! Without them a client that asks for many distinct uncached URLs at once (or a cache-busting
//! flood, `?rand=...`) opens as many origin connections and buffers as it likes: the origin is
//! overwhelmed and the node's memory grows past `cache.memory` by every body in flight.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::upstream::FetchError;
use crate::config::ProxyConfig;
use crate::metrics::FillLimitLabels;

/// The node's fetch limits; shared by every fill.
pub(super) struct FillLimits {
    /// Fetches in progress over all clients (`proxy.max_fills`).
    global: Arc<Semaphore>,
    /// Fetches in progress per client address (`proxy.max_fills_per_client`); an address
    /// is listed while it has one.
    per_client: Arc<Mutex<HashMap<IpAddr, Arc<Semaphore>>>>,
    per_client_max: usize,
    /// How long a fetch waits for a place before it is refused.
    queue_timeout: Duration,
    /// Bytes held by bodies being stored, and the budget for them (`proxy.max_fill_bytes`).
    held: Arc<AtomicU64>,
    max_held: u64,
    hits: Family<FillLimitLabels, Counter>,
}

/// A fetch's place: it keeps its places for as long as it lives.
pub(super) struct FillPermit {
    _global: OwnedSemaphorePermit,
    client: Option<(IpAddr, OwnedSemaphorePermit)>,
    per_client: Arc<Mutex<HashMap<IpAddr, Arc<Semaphore>>>>,
}

impl Drop for FillPermit {
    fn drop(&mut self) {
        let Some((addr, permit)) = self.client.take() else {
            return;
        };
        drop(permit);
        // The address's last fetch: its entry goes (the map holds only busy clients).
        let mut map = self
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(semaphore) = map.get(&addr)
            && Arc::strong_count(semaphore) == 1
        {
            map.remove(&addr);
        }
    }
}

/// Bytes of one body counted against the budget, given back when it is stored or dropped.
pub(super) struct HeldBytes {
    held: Arc<AtomicU64>,
    bytes: u64,
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl HeldBytes {
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.bytes
    }
}

impl FillLimits {
    pub fn new(config: &ProxyConfig, hits: Family<FillLimitLabels, Counter>) -> FillLimits {
        FillLimits {
            global: Arc::new(Semaphore::new(config.max_fills)),
            per_client: Arc::default(),
            per_client_max: config.max_fills_per_client,
            queue_timeout: Duration::from_millis(config.fill_queue_ms),
            held: Arc::default(),
            max_held: config.max_fill_bytes.0,
            hits,
        }
    }

    /// A place for one fetch for `client` (None: the node's own, such as a preload, which
    /// only the global limit bounds), waiting up to the queue timeout for each limit.
    pub async fn admit(&self, client: Option<IpAddr>) -> Result<FillPermit, FetchError> {
        let client = match client {
            Some(addr) => {
                let semaphore = {
                    let mut map = self
                        .per_client
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    let entry = map
                        .entry(addr)
                        .or_insert_with(|| Arc::new(Semaphore::new(self.per_client_max)));
                    Arc::clone(entry)
                };
                let permit = self.acquire(semaphore, "client").await;
                // Refused: the entry may be this address's last reference.
                let permit = match permit {
                    Ok(permit) => permit,
                    Err(error) => {
                        let mut map = self
                            .per_client
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        if map.get(&addr).is_some_and(|s| Arc::strong_count(s) == 1) {
                            map.remove(&addr);
                        }
                        return Err(error);
                    }
                };
                Some((addr, permit))
            }
            None => None,
        };
        let global = self.acquire(Arc::clone(&self.global), "global").await?;
        Ok(FillPermit {
            _global: global,
            client,
            per_client: Arc::clone(&self.per_client),
        })
    }

    async fn acquire(
        &self,
        semaphore: Arc<Semaphore>,
        limit: &'static str,
    ) -> Result<OwnedSemaphorePermit, FetchError> {
        if let Ok(permit) = Arc::clone(&semaphore).try_acquire_owned() {
            return Ok(permit);
        }
        self.hit(limit);
        match tokio::time::timeout(self.queue_timeout, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(FetchError::Overloaded {
                what: if limit == "client" {
                    "this client's origin fetches"
                } else {
                    "origin fetches"
                },
                retry_after: self.queue_timeout.as_secs().max(1),
            }),
        }
    }

    /// Counts `more` bytes of a body being stored against the budget, into `held`; false (and
    /// nothing counted) when the budget cannot take them: the body is then not stored.
    pub fn hold(&self, held: &mut Option<HeldBytes>, more: u64) -> bool {
        let mut current = self.held.load(Ordering::Acquire);
        loop {
            if current.saturating_add(more) > self.max_held {
                self.hit("bytes");
                return false;
            }
            match self.held.compare_exchange_weak(
                current,
                current + more,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        match held {
            Some(held) => held.bytes += more,
            None => {
                *held = Some(HeldBytes {
                    held: Arc::clone(&self.held),
                    bytes: more,
                });
            }
        }
        true
    }

    /// Counts one time a limit of the fills was hit (also a slow reader cut off, or a fetch
    /// stopped because its clients left).
    pub fn hit(&self, limit: &'static str) {
        self.hits.get_or_create(&FillLimitLabels { limit }).inc();
    }

    /// Bytes held by bodies being stored now.
    #[cfg(test)]
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    /// Client addresses with a fetch in progress.
    #[cfg(test)]
    pub fn busy_clients(&self) -> usize {
        self.per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ByteSize;

    fn limits(global: usize, per_client: usize, bytes: u64) -> FillLimits {
        let config = ProxyConfig {
            max_fills: global,
            max_fills_per_client: per_client,
            fill_queue_ms: 50,
            max_fill_bytes: ByteSize(bytes),
            ..ProxyConfig::default()
        };
        FillLimits::new(&config, Family::default())
    }

    fn count(limits: &FillLimits, limit: &'static str) -> u64 {
        limits.hits.get_or_create(&FillLimitLabels { limit }).get()
    }

    #[tokio::test]
    async fn one_client_cannot_take_every_place() {
        let limits = limits(3, 2, 1 << 20);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let first = limits.admit(Some(a)).await.expect("first");
        let _second = limits.admit(Some(a)).await.expect("second");
        let refused = limits.admit(Some(a)).await.err().expect("third refused");
        assert!(
            matches!(refused, FetchError::Overloaded { .. }),
            "{refused}"
        );
        assert_eq!(refused.status(), hyper::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(count(&limits, "client"), 1);
        // Another client still gets the last place; then the node is full.
        let _other = limits.admit(Some(b)).await.expect("other client");
        assert!(limits.admit(None).await.is_err());
        assert_eq!(count(&limits, "global"), 1);
        // A place that frees up is taken by one waiting in line.
        let waiting = limits.admit(Some(b));
        drop(first);
        assert!(waiting.await.is_ok());
        assert_eq!(limits.busy_clients(), 2);
    }

    #[tokio::test]
    async fn idle_clients_are_forgotten() {
        let limits = limits(8, 1, 1 << 20);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let permit = limits.admit(Some(a)).await.expect("place");
        assert!(limits.admit(Some(a)).await.is_err());
        assert_eq!(limits.busy_clients(), 1);
        drop(permit);
        assert_eq!(limits.busy_clients(), 0);
    }

    #[test]
    fn bodies_being_stored_share_one_byte_budget() {
        let limits = limits(8, 8, 100);
        let (mut one, mut two) = (None, None);
        assert!(limits.hold(&mut one, 60));
        assert!(limits.hold(&mut two, 40));
        assert!(!limits.hold(&mut two, 1), "over the budget");
        assert_eq!(two.as_ref().map(HeldBytes::len), Some(40));
        drop(one);
        assert_eq!(limits.held(), 40);
        assert!(limits.hold(&mut two, 60));
        drop(two);
        assert_eq!(limits.held(), 0);
        assert_eq!(count(&limits, "bytes"), 1);
    }
}
