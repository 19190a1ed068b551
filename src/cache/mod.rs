//! THE cache core shared by the DNS answer cache, HTTPDNS and the HTTP object cache: keys by
//! namespace, entries with fresh and stale windows, one byte budget for everything, coalescing
//! of concurrent misses, purge by key, prefix and tag, and statistics.
//!
//! One moka `future::Cache` holds every namespace, so a busy namespace can use memory an idle
//! one does not need (eviction is moka's TinyLFU over all entries together). The DNS answer
//! cache serves its hits from an index of its own, but only of entries held here: it inserts
//! each one (namespace `dns-answers`), reports hits with [`Cache::touch`], and drops from its
//! index what [`Cache::on_removal`] reports, so admission, eviction and the charge are the
//! core's.
//!
//! # Memory
//!
//! Each entry is charged `EntryMeta::weight + key length + tags + ENTRY_OVERHEAD` bytes, where
//! [`ENTRY_OVERHEAD`] (544) is the measured resident cost of moka's and this module's per-entry
//! structures, and moka holds the sum of charges to the budget. What the process can hold beyond
//! the budget:
//!
//! - whatever callers' `weight` under-counts of their values (the value's own `Arc` header is
//!   already in the overhead);
//! - between moka's housekeeping runs (every 64 writes or 300 ms, or `run_pending_tasks`),
//!   writes not yet applied: at most moka's write log of 384 entries' charges, typically 64;
//! - values a caller still holds (`Arc`s) after their entry was evicted;
//! - moka's TinyLFU frequency sketch, sized once when the store first reaches half its budget:
//!   8 bytes per entry held then (rounded up to a power of two), so at most about
//!   `budget / (ENTRY_OVERHEAD + mean weight) * 16` bytes, under 3% of the budget;
//! - a few KiB of fixed structures (moka's channels and timer wheel, the in-flight fill map).
//!
//! Because admission is TinyLFU, a new entry can be refused when the store is full and the
//! entries it would displace are more popular; that counts as a `size` eviction.
//!
//! # Time
//!
//! Freshness is measured on tokio's clock (`tokio::time::Instant`), so paused tokio time
//! applies. Moka expires entries on its own (std) clock only to free memory; what is served is
//! decided by [`Cache::get`] on tokio's clock, so an entry moka has not yet evicted is still a
//! miss once past its stale window. (This crate does not enable tokio's `test-util`, so this
//! module's own tests move a per-cache manual clock instead of pausing tokio's.)

mod entry;
mod flight;
mod open_fill;
mod purge;
mod stats;
#[cfg(test)]
mod tests;

use crate::tasks::Tasks;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

pub use entry::ENTRY_OVERHEAD;
pub use open_fill::{FillTicket, Joined};
pub use stats::{CacheStats, EvictionCause, Evictions, NamespaceStats};

use entry::{Entry, EntryAge, EntryLifetime};
use flight::Flights;
use open_fill::OpenFills;
use stats::Stats;

/// Who owns a key; keys of different namespaces never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    Dns,
    HttpDns,
    Http,
    /// The DNS answer cache's pre-built wire responses (`dns::answer_cache`).
    DnsAnswer,
}

impl Namespace {
    pub const ALL: [Namespace; 4] = [
        Namespace::Dns,
        Namespace::HttpDns,
        Namespace::Http,
        Namespace::DnsAnswer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Dns => "dns",
            Namespace::HttpDns => "httpdns",
            Namespace::Http => "http",
            Namespace::DnsAnswer => "dns-answers",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Key: a namespace and opaque bytes (DNS: lowercased qname + type + flags; HTTP: the URL).
/// Prefix purge works on the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub namespace: Namespace,
    pub key: Bytes,
}

impl CacheKey {
    pub fn new(namespace: Namespace, key: impl Into<Bytes>) -> Self {
        CacheKey {
            namespace,
            key: key.into(),
        }
    }
}

/// How long an entry is fresh, how long it may then be served stale, its weight and tags.
#[derive(Clone, Debug)]
pub struct EntryMeta {
    pub fresh_for: Duration,
    pub stale_for: Duration,
    /// Bytes of the value (the core adds the key, the tags and [`ENTRY_OVERHEAD`]).
    pub weight: u32,
    pub tags: Vec<Arc<str>>,
}

/// What a lookup found. `age` = time since stored (so callers can decrement DNS TTLs).
#[derive(Debug)]
pub enum Lookup<T> {
    Fresh { value: Arc<T>, age: Duration },
    Stale { value: Arc<T>, age: Duration },
    Miss,
}

/// How a `get_or_fill` was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    /// The fill failed and a stale entry was served instead.
    Stale,
    /// This caller ran the fill.
    Miss,
    /// This caller waited for another caller's fill.
    Coalesced,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Coalesced => "coalesced",
        }
    }
}

/// The answer of a `get_or_fill`.
#[derive(Debug)]
pub struct Filled<T> {
    pub value: Arc<T>,
    pub age: Duration,
    pub outcome: CacheOutcome,
}

/// Soft = mark stale (still served on fill error within its stale window, which then starts at
/// the purge and never outlasts the original one); Hard = remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurgeMode {
    Hard,
    Soft,
}

/// Called with each entry that leaves the store of the namespace it was registered for (evicted,
/// refused admission, expired, purged or replaced), with the value as stored. It runs inside
/// moka's housekeeping: it must be quick and must not call back into the cache.
pub type RemovalHook = Arc<dyn Fn(&CacheKey, &Arc<dyn Any + Send + Sync>) + Send + Sync>;

/// One optional removal hook per namespace, read by moka's eviction listener.
type RemovalHooks = [arc_swap::ArcSwapOption<RemovalHook>; Namespace::ALL.len()];

/// The cache handle; cloning is shallow (an `Arc`).
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    /// The one store for every namespace, so one budget covers them all.
    store: moka::future::Cache<CacheKey, Arc<Entry>>,
    /// Fills in progress, so concurrent misses of one key share one fill.
    flights: Flights,
    /// Fills whose value is shared while it grows (HTTP bodies).
    open_fills: OpenFills,
    /// Counters; shared with moka's eviction listener, which cannot hold `Inner` (a cycle).
    stats: Arc<Stats>,
    /// The time source for freshness.
    clock: Clock,
    /// Who wants to hear of removals, by namespace (the DNS answer cache's front index).
    hooks: Arc<RemovalHooks>,
    /// Where fills run (`tasks::Kind::Fill`), bounded and stopped at shutdown; shared with
    /// the modules that fill through this cache.
    tasks: Tasks,
}

impl Cache {
    /// `memory` = budget in bytes for all namespaces together; background tasks with the
    /// default bounds.
    pub fn new(memory: u64) -> Cache {
        Cache::with_tasks(memory, Tasks::unconfigured())
    }

    /// A cache whose fills (and those of the modules using it) run under `tasks`.
    pub fn with_tasks(memory: u64, tasks: Tasks) -> Cache {
        let stats = Arc::new(Stats::new(memory));
        let listener_stats = Arc::clone(&stats);
        let hooks: Arc<RemovalHooks> = Arc::new(Default::default());
        let listener_hooks = Arc::clone(&hooks);
        let store = moka::future::Cache::builder()
            .name("edgenode")
            .max_capacity(memory)
            .weigher(|_key: &CacheKey, entry: &Arc<Entry>| entry.charge)
            .expire_after(EntryLifetime)
            .eviction_listener(move |key: Arc<CacheKey>, entry: Arc<Entry>, cause| {
                listener_stats.removed(key.namespace, entry.charge, cause);
                if let Some(hook) = &*listener_hooks[key.namespace.index()].load() {
                    hook(&key, &entry.value);
                }
            })
            .build();
        Cache {
            inner: Arc::new(Inner {
                store,
                flights: Flights::default(),
                open_fills: OpenFills::default(),
                stats,
                clock: Clock::default(),
                hooks,
                tasks,
            }),
        }
    }

    /// The node's background tasks (`crate::tasks`).
    pub fn tasks(&self) -> &Tasks {
        &self.inner.tasks
    }

    /// The value stored under `key` if it is of type `T` (another type is a `Miss`), counted
    /// in the statistics as a hit, a stale hit or a miss.
    pub async fn get<T: Send + Sync + 'static>(&self, key: &CacheKey) -> Lookup<T> {
        let found = self.peek::<T>(key).await;
        let outcome = match &found {
            Lookup::Fresh { .. } => CacheOutcome::Hit,
            Lookup::Stale { .. } => CacheOutcome::Stale,
            Lookup::Miss => CacheOutcome::Miss,
        };
        self.inner.stats.answered(key.namespace, outcome);
        found
    }

    /// As [`Cache::get`], without counting the lookup: for callers that look up several
    /// entries for one request and count the request once with [`Cache::count`] (the HTTP
    /// cache: a variant beside the URL's entry, a slice marker, a re-check before a fill).
    /// It is still an access for the eviction policy.
    pub async fn peek<T: Send + Sync + 'static>(&self, key: &CacheKey) -> Lookup<T> {
        let now = self.inner.clock.now();
        match self.inner.servable::<T>(key, now).await {
            Some((value, age, true)) => Lookup::Fresh { value, age },
            Some((value, age, false)) => Lookup::Stale { value, age },
            None => Lookup::Miss,
        }
    }

    /// Stores `value` under `key`, replacing any previous entry.
    pub async fn insert<T: Send + Sync + 'static>(
        &self,
        key: CacheKey,
        value: Arc<T>,
        meta: EntryMeta,
    ) {
        self.inner.store(key, value, meta).await;
    }

    /// Records an access to `key` for the eviction policy (recency and TinyLFU frequency)
    /// without counting it in the statistics: for callers that answered from their own view
    /// of the entry (the DNS answer cache's front) and report a sample of those hits.
    pub async fn touch(&self, key: &CacheKey) {
        let _ = self.inner.store.get(key).await;
    }

    /// Sets (replacing any earlier one) the hook told of every entry of `namespace` that
    /// leaves the store, so that a caller's own index of those entries follows the core's
    /// admission and eviction decisions (see [`RemovalHook`]).
    pub fn on_removal(&self, namespace: Namespace, hook: RemovalHook) {
        self.inner.hooks[namespace.index()].store(Some(Arc::new(hook)));
    }

    /// Counts a lookup the caller answered from its own view of the entries (the DNS answer
    /// cache's front: its hits and misses under `dns-answers`, and its wire copies of recursive
    /// answers as hits under `dns`), or a request whose lookups were [`Cache::peek`]s (the HTTP
    /// cache, once per request under `http`), so that the statistics count every answer.
    pub fn count(&self, namespace: Namespace, outcome: CacheOutcome) {
        self.inner.stats.answered(namespace, outcome);
    }

    /// A snapshot of the counters, per namespace.
    pub fn stats(&self) -> CacheStats {
        let store = &self.inner.store;
        self.inner
            .stats
            .snapshot(store.weighted_size(), store.entry_count())
    }

    /// Registers the `cache_*` metrics (label `namespace`; evictions also `cause`) under the
    /// sub-prefix `cache`: `edgenode_cache_*` in a registry made with
    /// `Registry::with_prefix("edgenode")`. Call once per registry.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.inner.stats.register(registry);
    }

    /// Applies moka's pending writes, evictions and expirations (and so their eviction counts).
    pub async fn run_pending_tasks(&self) {
        self.inner.store.run_pending_tasks().await;
    }

    /// A cache whose clock stands still until [`Cache::advance`] moves it.
    #[cfg(test)]
    fn with_manual_clock(memory: u64) -> Cache {
        let mut cache = Cache::new(memory);
        if let Some(inner) = Arc::get_mut(&mut cache.inner) {
            inner.clock = Clock::Manual {
                base: Instant::now(),
                skew_nanos: std::sync::atomic::AtomicU64::new(0),
            };
        }
        cache
    }

    /// Moves a manual clock forward, as `tokio::time::advance` would.
    #[cfg(test)]
    fn advance(&self, by: Duration) {
        if let Clock::Manual { skew_nanos, .. } = &self.inner.clock {
            let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            skew_nanos.fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Inner {
    /// The entry if it can be served now, with its age and whether it is fresh.
    async fn servable<T: Send + Sync + 'static>(
        &self,
        key: &CacheKey,
        now: Instant,
    ) -> Option<(Arc<T>, Duration, bool)> {
        let entry = self.store.get(key).await?;
        let fresh = match entry.freshness(now) {
            EntryAge::Fresh => true,
            EntryAge::Stale => false,
            EntryAge::Expired => return None,
        };
        let value = Arc::clone(&entry.value).downcast::<T>().ok()?;
        Some((value, entry.age(now), fresh))
    }

    /// The entry if it is fresh now, with its age.
    async fn fresh<T: Send + Sync + 'static>(
        &self,
        key: &CacheKey,
        now: Instant,
    ) -> Option<(Arc<T>, Duration)> {
        match self.servable::<T>(key, now).await {
            Some((value, age, true)) => Some((value, age)),
            _ => None,
        }
    }

    /// Stores a value and returns the instant its age counts from.
    async fn store(
        &self,
        key: CacheKey,
        value: Arc<dyn Any + Send + Sync>,
        meta: EntryMeta,
    ) -> Instant {
        let stored_at = self.clock.now();
        // The key in an allocation of its own, sized to fit: the caller's may be a `String`'s
        // buffer with spare capacity, or a slice keeping a larger buffer alive.
        let key = CacheKey::new(key.namespace, Bytes::copy_from_slice(&key.key));
        let entry = Entry::new(&key, value, meta, stored_at);
        self.stats.stored(key.namespace, entry.charge);
        self.store.insert(key, Arc::new(entry)).await;
        stored_at
    }
}

/// Where freshness reads the time: tokio's clock (so `tokio::time::pause` applies), or in unit
/// tests a frozen clock each test moves by hand (tokio's `test-util` is not enabled here).
#[derive(Default)]
enum Clock {
    #[default]
    Tokio,
    #[cfg(test)]
    Manual {
        /// The frozen start.
        base: Instant,
        /// Nanoseconds the test has advanced since `base`.
        skew_nanos: std::sync::atomic::AtomicU64,
    },
}

impl Clock {
    fn now(&self) -> Instant {
        match self {
            Clock::Tokio => Instant::now(),
            #[cfg(test)]
            Clock::Manual { base, skew_nanos } => {
                *base + Duration::from_nanos(skew_nanos.load(std::sync::atomic::Ordering::Relaxed))
            }
        }
    }
}
