//! The answer cache: wire responses the slow path built, handed out again for the same query
//! by copying the bytes and patching the ID (issue 7's first lever).
//!
//! **Key.** The query exactly as received after its ID (flags with RD/CD/AD, the counts, the
//! question, the OPT record with its payload size, DO bit and options such as ECS), plus what
//! else the response depends on: the transport (its size limit) and whether the source may
//! recurse (the RA bit). The slow path is a function of these bytes, so nothing is parsed here:
//! a hit means the slow path already accepted these very bytes and answered them cacheably.
//! The question name keeps its case: the response echoes the question as sent, and the
//! answers' owner names are written in the question's spelling (a pointer to it, as in NSD);
//! each spelling is an entry of its own rather than a patched copy.
//! Each spelling gets its own entry.
//!
//! **Located answers.** An answer shaped by a geo policy or a steering pool depends on the
//! client's address (the ECS address when the query has a usable one, else the source). The
//! question's entry then says "located" and lists the prefix lengths its answers were stored
//! under; each answer lives in an entry of its own keyed by the question and the client's
//! address cut to `Client::stable_prefix`, the number of leading bits every address sharing
//! them answers alike with (GeoScope's `prefix_len`, raised for cidr selectors the address
//! missed). A lookup tries each listed prefix; any match is valid for this client, so a hit
//! needs no GeoIP lookup. Pool answers also depend on cluster health: located answers carry
//! the `NodePool::epoch` read before they were built, and another epoch is a miss.
//!
//! **What is stored.** Authoritative answers the slow path sent (never errors or dropped
//! queries), at most [`MAX_RESPONSE`] bytes, for queries of at most [`MAX_QUERY`], with the
//! metric handles the slow path counted into, so hits count alike, and the response's
//! `rrl::ResponseClass`, so hits spend the rate limiter's budget the fresh answer did. Recursive answers built
//! from a fresh entry of the recursion cache are kept too, with their TTLs rewritten on every
//! hit to what the slow path would send (`aged`), and served only while that entry is fresh.
//!
//! **Bounds and invalidation.** The node's answer cache is a front index over entries the
//! cache core holds (`core_link`): each entry (a question, a located answer, a recursive
//! answer) is inserted into the core under namespace `dns-answers`, charged its bytes within
//! `cache.memory`, admitted or refused by the core's TinyLFU and evicted by it; the core's
//! removal hook takes out of the front what the core drops. Hits are served from the front
//! (sharded maps behind `RwLock`s, `front`, no await) and reported to the core's policy.
//! A flood of one-time names is therefore refused by the core rather than displacing the
//! popular answers. The front also has a hard cap on entries as a safety net (the most the
//! budget could hold, at [`ENTRY_OVERHEAD`] each): a full shard takes no new entry, it is
//! never cleared. The cache lives in `DnsState`, so a reload starts with an empty one and the
//! old one's core entries are purged when it is dropped.
//!
//! **Standalone.** Without a core (unit tests, benches, the fuzz target, `edgenode check`)
//! [`AnswerCache::new`] builds the front alone, bounded by its entry count only.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use prometheus_client::metrics::counter::Counter;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::reader::HEADER_LEN;
use super::rrl::ResponseClass;
use super::transport::Transport;
use crate::cache::{Cache, ENTRY_OVERHEAD};

mod aged;
mod core_link;
#[cfg(test)]
mod core_tests;
mod front;
mod outcome;
#[cfg(test)]
mod recursive_tests;
#[cfg(test)]
mod tests;

pub use aged::Aged;
pub use outcome::AnswerCacheOutcome;
pub(crate) use outcome::CacheCounters;

use core_link::CoreLink;
use front::{Front, read};

/// Longest query answered from the cache (a 255-byte name, an OPT record with ECS and a
/// cookie fit easily); longer ones take the slow path.
pub const MAX_QUERY: usize = 512;
/// Largest response kept (the default EDNS payload): bounds an entry's memory.
pub const MAX_RESPONSE: usize = 1232;
/// Prefix lengths one located question is stored under at most (GeoIP networks of a handful
/// of sizes); answers for clients needing another one are not stored.
const MAX_PREFIXES: usize = 8;
const MAX_SHARDS: usize = 64;
/// Shards are not made smaller than this, so that a hash imbalance costs little.
const MIN_PER_SHARD: usize = 64;
/// Bytes an entry costs besides its query, response and `Entry`: its map slot and `Arc`
/// header in the front (the core adds its own overhead and the key).
const FRONT_OVERHEAD: usize = 48;

/// Pre-built responses by query; see the module documentation.
pub struct AnswerCache {
    /// The index hits are served from; shared (weakly) with the core's removal hook.
    front: Arc<Front>,
    /// Keys are hashes of client-chosen bytes: a per-process seed keeps collisions unplannable.
    seed: u64,
    /// The cache core deciding what the front keeps; None for a standalone front.
    core: Option<CoreLink>,
}

/// A query as the cache sees it, borrowed from the received bytes.
#[derive(Clone, Copy)]
pub struct Query<'q> {
    /// Transport and recursion bits (see `AnswerCache::query`).
    context: u8,
    id: [u8; 2],
    /// Everything after the ID.
    bytes: &'q [u8],
    hash: u64,
}

/// A `Query` whose bytes are owned, for a recursive answer to be stored once it is known.
pub struct OwnedQuery {
    context: u8,
    bytes: Box<[u8]>,
    hash: u64,
}

impl OwnedQuery {
    /// The query as the cache sees it (with ID 0: inserts ignore it).
    pub fn as_query(&self) -> Query<'_> {
        Query {
            context: self.context,
            id: [0; 2],
            bytes: &self.bytes,
            hash: self.hash,
        }
    }
}

impl Query<'_> {
    pub fn to_owned(&self) -> OwnedQuery {
        OwnedQuery {
            context: self.context,
            bytes: self.bytes.into(),
            hash: self.hash,
        }
    }
}

/// One response as sent, with the metric handles a hit counts into.
pub struct WireAnswer {
    pub wire: Box<[u8]>,
    /// The budget it spends under response rate limiting, decided when it was built.
    pub class: ResponseClass,
    /// `edgenode_dns_queries_total` with this response's labels.
    pub queries: Counter,
    /// `edgenode_dns_geo_decisions_total` of the region that shaped it, if any.
    pub region: Option<Counter>,
}

/// Where a located answer applies.
pub struct Location {
    /// The address geo decisions used.
    pub client: IpAddr,
    /// Whether that address came from the query's ECS option (else it is the source's).
    pub from_subnet: bool,
    /// `Client::stable_prefix` of the decision.
    pub prefix: u8,
    /// `NodePool::epoch` read before the answer was built.
    pub epoch: u64,
}

pub(crate) struct Entry {
    context: u8,
    query: Box<[u8]>,
    kind: Kind,
    /// Hits served, for reporting them to the core's policy (`core_link`).
    hits: AtomicU32,
}

enum Kind {
    /// The same response for every client.
    Fixed(WireAnswer),
    /// Located answers exist for this query, each under its own key.
    Located {
        /// The client address is the query's ECS address (fixed by the key): no need to
        /// look at the source.
        subnet_client: Option<IpAddr>,
        prefixes: Prefixes,
    },
    /// One located answer.
    InSubnet {
        subnet: Subnet,
        epoch: u64,
        stored: WireAnswer,
    },
    /// A recursive answer whose TTLs age (boxed: the largest kind, and the rarest per query).
    Recursive(Box<Aged>),
}

#[derive(Clone, Copy, Default)]
struct Prefixes {
    len: u8,
    lens: [u8; MAX_PREFIXES],
}

impl Prefixes {
    fn as_slice(&self) -> &[u8] {
        &self.lens[..usize::from(self.len)]
    }

    /// Adds `prefix`; false when it is not there and there is no room.
    fn add(&mut self, prefix: u8) -> bool {
        if self.as_slice().contains(&prefix) {
            return true;
        }
        let Some(slot) = self.lens.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = prefix;
        self.len += 1;
        true
    }
}

/// A client address cut to a prefix.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Subnet {
    bits: u128,
    prefix: u8,
    v6: bool,
}

impl Subnet {
    fn new(addr: IpAddr, prefix: u8) -> Subnet {
        let (bits, width, v6) = match addr {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32, false),
            IpAddr::V6(v6) => (u128::from(v6), 128, true),
        };
        let prefix = u32::from(prefix).min(width);
        let host = width - prefix;
        let bits = match host {
            0 => bits,
            _ if host >= 128 => 0,
            _ => bits & !((1u128 << host) - 1),
        };
        Subnet {
            bits,
            prefix: prefix as u8,
            v6,
        }
    }
}

impl AnswerCache {
    /// A standalone front of at most `entries` entries, outside the cache core; 0 turns it
    /// off. For tests, benches and tools; the node uses [`AnswerCache::with_core`].
    pub fn new(entries: usize) -> AnswerCache {
        AnswerCache {
            front: Arc::new(Front::new(entries)),
            seed: RandomState::new().hash_one(0u8),
            core: None,
        }
    }

    /// The node's answer cache: a front over entries `core` admits, evicts and charges
    /// within its budget. Must be called inside a tokio runtime (it starts the task that
    /// talks to the core); outside one, the front stands alone, bounded as the core would.
    pub fn with_core(core: &Cache) -> AnswerCache {
        // The most entries the budget could hold, each charged at least the core's overhead.
        let most = usize::try_from(core.stats().budget / ENTRY_OVERHEAD as u64)
            .unwrap_or(usize::MAX)
            .max(MIN_PER_SHARD);
        let front = Arc::new(Front::new(most));
        let core = CoreLink::start(core, &front);
        AnswerCache {
            front,
            seed: RandomState::new().hash_one(0u8),
            core,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.front.shards.is_empty()
    }

    /// Entries held now (questions and located answers).
    pub fn len(&self) -> usize {
        self.front.shards.iter().map(|s| read(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache's view of `raw`, or None when the cache is off or the message is too short
    /// or too long to be kept.
    pub fn query<'q>(
        &self,
        raw: &'q [u8],
        transport: Transport,
        recursion_available: bool,
    ) -> Option<Query<'q>> {
        if !self.enabled() || !(HEADER_LEN..=MAX_QUERY).contains(&raw.len()) {
            return None;
        }
        let transport = match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Https => 2,
        };
        let context = transport | u8::from(recursion_available) << 2;
        let bytes = &raw[2..];
        let seed = self.seed ^ u64::from(context).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Some(Query {
            context,
            id: [raw[0], raw[1]],
            bytes,
            hash: xxh3_64_with_seed(bytes, seed),
        })
    }

    /// Writes the stored response to `query` from `source` into `out` with the query's ID,
    /// counts it and returns its class; None on a miss. `epoch` is the node pool's current one.
    pub fn answer(
        &self,
        query: &Query<'_>,
        source: IpAddr,
        epoch: u64,
        out: &mut Vec<u8>,
    ) -> Option<ResponseClass> {
        let (client, prefixes) = {
            let shard = read(self.front.shard(query.hash));
            let entry = shard.get(&query.hash).filter(|e| e.answers(query))?;
            match &entry.kind {
                Kind::Fixed(stored) => {
                    self.hit(query.hash, entry, query);
                    return Some(send(stored, query, out));
                }
                Kind::Located {
                    subnet_client,
                    prefixes,
                } => {
                    self.hit(query.hash, entry, query);
                    (subnet_client.unwrap_or(source), *prefixes)
                }
                Kind::Recursive(aged) => {
                    let class = aged.serve(query, out)?;
                    self.hit(query.hash, entry, query);
                    return Some(class);
                }
                Kind::InSubnet { .. } => return None,
            }
        };
        for &prefix in prefixes.as_slice() {
            let subnet = Subnet::new(client, prefix);
            let hash = self.subnet_hash(query.hash, subnet);
            let shard = read(self.front.shard(hash));
            let found = shard.get(&hash).filter(|e| e.answers(query)).map(|e| &**e);
            if let Some(
                entry @ Entry {
                    kind:
                        Kind::InSubnet {
                            subnet: stored_subnet,
                            epoch: stored_epoch,
                            stored,
                        },
                    ..
                },
            ) = found
                && *stored_subnet == subnet
                && *stored_epoch == epoch
            {
                self.hit(hash, entry, query);
                return Some(send(stored, query, out));
            }
        }
        None
    }

    /// Keeps `stored` as the response to `query`, for every client or, with `location`, for
    /// the clients of its subnet.
    pub fn insert(&self, query: &Query<'_>, stored: WireAnswer, location: Option<Location>) {
        if stored.wire.len() > MAX_RESPONSE {
            return;
        }
        let Some(location) = location else {
            let entry = Entry::new(query, Kind::Fixed(stored));
            self.put(query.hash, entry);
            return;
        };
        let subnet_client = location.from_subnet.then_some(location.client);
        let index = {
            let shard = read(self.front.shard(query.hash));
            match shard
                .get(&query.hash)
                .filter(|e| e.answers(query))
                .map(|e| &e.kind)
            {
                Some(Kind::Located {
                    subnet_client,
                    prefixes,
                }) => {
                    let mut prefixes = *prefixes;
                    match prefixes.as_slice().contains(&location.prefix) {
                        true => None,
                        false if prefixes.add(location.prefix) => Some(Kind::Located {
                            subnet_client: *subnet_client,
                            prefixes,
                        }),
                        false => return,
                    }
                }
                // A question is located for every client or for none; never both.
                Some(_) => return,
                None => {
                    let mut prefixes = Prefixes::default();
                    prefixes.add(location.prefix);
                    Some(Kind::Located {
                        subnet_client,
                        prefixes,
                    })
                }
            }
        };
        // A new or grown index entry replaces the old one (in the core too): entries are
        // shared with the core, so they are never changed in place.
        if let Some(kind) = index
            && !self.put(query.hash, Entry::new(query, kind))
        {
            return;
        }
        let subnet = Subnet::new(location.client, location.prefix);
        let hash = self.subnet_hash(query.hash, subnet);
        let kind = Kind::InSubnet {
            subnet,
            epoch: location.epoch,
            stored,
        };
        self.put(hash, Entry::new(query, kind));
    }

    /// Keeps a recursive answer to `query` (replacing an older one).
    pub fn insert_recursive(&self, query: &Query<'_>, aged: Aged) {
        if aged.len() > MAX_RESPONSE {
            return;
        }
        self.put(
            query.hash,
            Entry::new(query, Kind::Recursive(Box::new(aged))),
        );
    }

    /// Stores `entry` in the front and hands it to the core; false when it was not kept
    /// (the shard is full, or the core's queue is).
    fn put(&self, hash: u64, entry: Entry) -> bool {
        let entry = Arc::new(entry);
        if !self.front.put(hash, Arc::clone(&entry)) {
            return false;
        }
        // Stored first, queued second: the core's refusal, however quick, then finds it.
        match &self.core {
            Some(core) if !core.admit(hash, Arc::clone(&entry)) => {
                // Nothing uncharged stays in the front.
                self.front.remove_if_same(hash, &entry);
                false
            }
            _ => true,
        }
    }

    /// Counts a lookup's outcome in the core's `dns-answers` statistics (nothing standalone).
    #[inline]
    fn count(&self, outcome: AnswerCacheOutcome) {
        if let Some(core) = &self.core {
            core.count(match outcome {
                AnswerCacheOutcome::Hit => crate::cache::CacheOutcome::Hit,
                AnswerCacheOutcome::Miss | AnswerCacheOutcome::Uncacheable => {
                    crate::cache::CacheOutcome::Miss
                }
            });
        }
    }

    /// Reports a hit on `entry`, under `hash`, for `query`, to the core's policy
    /// (`CoreLink::hit`).
    #[inline]
    fn hit(&self, hash: u64, entry: &Entry, query: &Query<'_>) {
        if let Some(core) = &self.core {
            core.hit(hash, &entry.hits, query.id);
        }
    }

    fn subnet_hash(&self, query_hash: u64, subnet: Subnet) -> u64 {
        let mut key = [0u8; 26];
        key[..8].copy_from_slice(&query_hash.to_le_bytes());
        key[8..24].copy_from_slice(&subnet.bits.to_le_bytes());
        key[24] = subnet.prefix;
        key[25] = u8::from(subnet.v6);
        xxh3_64_with_seed(&key, self.seed)
    }
}

impl Entry {
    fn new(query: &Query<'_>, kind: Kind) -> Entry {
        Entry {
            context: query.context,
            query: query.bytes.into(),
            kind,
            hits: AtomicU32::new(0),
        }
    }

    fn answers(&self, query: &Query<'_>) -> bool {
        self.context == query.context && *self.query == *query.bytes
    }

    /// Bytes the entry is charged in the core (its response, its query and its structures).
    fn charge(&self) -> u32 {
        let response = match &self.kind {
            Kind::Fixed(stored) | Kind::InSubnet { stored, .. } => stored.wire.len(),
            Kind::Located { .. } => 0,
            // The wire copy, its TTL offsets and the aged answer itself, roughly.
            Kind::Recursive(aged) => aged.len() * 2 + std::mem::size_of::<Aged>(),
        };
        let bytes = response + self.query.len() + std::mem::size_of::<Entry>() + FRONT_OVERHEAD;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// Copies `stored` into `out` as the answer to `query`, counts it, and returns its class.
fn send(stored: &WireAnswer, query: &Query<'_>, out: &mut Vec<u8>) -> ResponseClass {
    out.clear();
    out.extend_from_slice(&stored.wire);
    if let Some(id) = out.get_mut(..2) {
        id.copy_from_slice(&query.id);
    }
    stored.queries.inc();
    if let Some(region) = &stored.region {
        region.inc();
    }
    stored.class
}
