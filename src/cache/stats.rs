//! Per-namespace counters: atomics (prometheus-client's own handles) bumped on the hot path, read
//! by [`Cache::stats`](super::Cache::stats) snapshots and by Prometheus scrapes alike.

use moka::notification::RemovalCause;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{CacheOutcome, Namespace};

/// Why an entry left the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EvictionCause {
    /// Evicted (or refused admission) to keep the store within its byte budget.
    Size,
    /// Its fresh and stale windows both ran out.
    Expired,
    /// Removed by a hard purge.
    Purged,
    /// Overwritten by a newer value for the same key.
    Replaced,
}

impl EvictionCause {
    pub const ALL: [EvictionCause; 4] = [
        EvictionCause::Size,
        EvictionCause::Expired,
        EvictionCause::Purged,
        EvictionCause::Replaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EvictionCause::Size => "size",
            EvictionCause::Expired => "expired",
            EvictionCause::Purged => "purged",
            EvictionCause::Replaced => "replaced",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn from_moka(cause: RemovalCause) -> EvictionCause {
        match cause {
            RemovalCause::Size => EvictionCause::Size,
            RemovalCause::Expired => EvictionCause::Expired,
            // The core removes entries explicitly only when purging.
            RemovalCause::Explicit => EvictionCause::Purged,
            RemovalCause::Replaced => EvictionCause::Replaced,
        }
    }
}

/// Evictions of one namespace by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evictions {
    pub size: u64,
    pub expired: u64,
    pub purged: u64,
    pub replaced: u64,
}

/// A snapshot of one namespace's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceStats {
    pub namespace: Namespace,
    /// Each `get`, `get_or_fill` and `count` call counts once in exactly one of `hits`,
    /// `stale_hits`, `misses` and `coalesced` (`peek` does not count). Fresh answers.
    pub hits: u64,
    /// Stale answers: `get` on a stale entry, or `get_or_fill` serving stale after a failed fill.
    pub stale_hits: u64,
    /// `get` found nothing servable, or a `get_or_fill` caller ran the fill (whatever its result).
    pub misses: u64,
    /// `get_or_fill` callers answered by another caller's fill (its value or its error), and
    /// HTTP requests that joined another request's open fill (counted by the proxy).
    pub coalesced: u64,
    /// Fills started (one per coalesced group).
    pub fills: u64,
    /// Fills that returned an error or panicked.
    pub fill_errors: u64,
    pub evictions: Evictions,
    /// Entries held (including ones pending eviction until moka runs its housekeeping).
    pub entries: u64,
    /// Bytes charged against the budget by those entries.
    pub bytes: u64,
}

/// A snapshot of the whole cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheStats {
    /// The configured budget in bytes for all namespaces together.
    pub budget: u64,
    /// Moka's own total of charged bytes (exact after `run_pending_tasks`).
    pub weighted_size: u64,
    /// Moka's own entry count (exact after `run_pending_tasks`).
    pub entry_count: u64,
    /// Indexed like `Namespace::ALL`; use [`CacheStats::namespace`].
    pub namespaces: [NamespaceStats; Namespace::ALL.len()],
}

impl CacheStats {
    pub fn namespace(&self, namespace: Namespace) -> &NamespaceStats {
        &self.namespaces[namespace.index()]
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvictionLabels {
    namespace: &'static str,
    cause: &'static str,
}

/// One namespace's handles, cloned out of the families once so the hot path never hashes labels.
struct NamespaceCounters {
    hits: Counter,
    stale_hits: Counter,
    misses: Counter,
    fills: Counter,
    fill_errors: Counter,
    coalesced: Counter,
    /// Indexed by `EvictionCause::index`.
    evictions: [Counter; 4],
    entries: Gauge,
    bytes: Gauge,
}

/// Every counter of the cache, plus the families that expose them to Prometheus.
pub(super) struct Stats {
    /// Indexed by `Namespace::index`.
    namespaces: [NamespaceCounters; Namespace::ALL.len()],
    /// Kept to hand to the registry; the counters above are clones of their members.
    families: Families,
    /// A gauge only so the budget shows on the same dashboard as the usage.
    budget: Gauge,
}

struct Families {
    hits: Family<NamespaceLabels, Counter>,
    stale_hits: Family<NamespaceLabels, Counter>,
    misses: Family<NamespaceLabels, Counter>,
    fills: Family<NamespaceLabels, Counter>,
    fill_errors: Family<NamespaceLabels, Counter>,
    coalesced: Family<NamespaceLabels, Counter>,
    evictions: Family<EvictionLabels, Counter>,
    entries: Family<NamespaceLabels, Gauge>,
    bytes: Family<NamespaceLabels, Gauge>,
}

impl Stats {
    pub(super) fn new(budget: u64) -> Stats {
        let families = Families {
            hits: Family::default(),
            stale_hits: Family::default(),
            misses: Family::default(),
            fills: Family::default(),
            fill_errors: Family::default(),
            coalesced: Family::default(),
            evictions: Family::default(),
            entries: Family::default(),
            bytes: Family::default(),
        };
        let namespaces = Namespace::ALL.map(|ns| {
            let labels = NamespaceLabels {
                namespace: ns.as_str(),
            };
            NamespaceCounters {
                hits: families.hits.get_or_create_owned(&labels),
                stale_hits: families.stale_hits.get_or_create_owned(&labels),
                misses: families.misses.get_or_create_owned(&labels),
                fills: families.fills.get_or_create_owned(&labels),
                fill_errors: families.fill_errors.get_or_create_owned(&labels),
                coalesced: families.coalesced.get_or_create_owned(&labels),
                evictions: EvictionCause::ALL.map(|cause| {
                    families.evictions.get_or_create_owned(&EvictionLabels {
                        namespace: ns.as_str(),
                        cause: cause.as_str(),
                    })
                }),
                entries: families.entries.get_or_create_owned(&labels),
                bytes: families.bytes.get_or_create_owned(&labels),
            }
        });
        let budget_gauge = Gauge::default();
        budget_gauge.set(i64::try_from(budget).unwrap_or(i64::MAX));
        Stats {
            namespaces,
            families,
            budget: budget_gauge,
        }
    }

    fn of(&self, namespace: Namespace) -> &NamespaceCounters {
        &self.namespaces[namespace.index()]
    }

    /// Counts one lookup or `get_or_fill` call under its outcome; each call counts once, so
    /// hits + stale_hits + misses + coalesced is the number of calls.
    pub(super) fn answered(&self, namespace: Namespace, outcome: CacheOutcome) {
        let ns = self.of(namespace);
        let counter = match outcome {
            CacheOutcome::Hit => &ns.hits,
            CacheOutcome::Stale => &ns.stale_hits,
            CacheOutcome::Miss => &ns.misses,
            CacheOutcome::Coalesced => &ns.coalesced,
        };
        counter.inc();
    }

    pub(super) fn fill(&self, namespace: Namespace) {
        self.of(namespace).fills.inc();
    }

    pub(super) fn fill_error(&self, namespace: Namespace) {
        self.of(namespace).fill_errors.inc();
    }

    /// An entry went into the store; moka reports every way out through `removed`.
    pub(super) fn stored(&self, namespace: Namespace, charge: u32) {
        let ns = self.of(namespace);
        ns.entries.inc();
        ns.bytes.inc_by(i64::from(charge));
    }

    /// Called by moka's eviction listener for every entry that leaves, whatever the cause
    /// (including a new entry refused admission, reported as `Size`).
    pub(super) fn removed(&self, namespace: Namespace, charge: u32, cause: RemovalCause) {
        let ns = self.of(namespace);
        ns.evictions[EvictionCause::from_moka(cause).index()].inc();
        ns.entries.dec();
        ns.bytes.dec_by(i64::from(charge));
    }

    pub(super) fn snapshot(&self, weighted_size: u64, entry_count: u64) -> CacheStats {
        let budget = u64::try_from(self.budget.get()).unwrap_or(0);
        let namespaces = Namespace::ALL.map(|namespace| {
            let ns = self.of(namespace);
            let evictions = |cause: EvictionCause| ns.evictions[cause.index()].get();
            NamespaceStats {
                namespace,
                hits: ns.hits.get(),
                stale_hits: ns.stale_hits.get(),
                misses: ns.misses.get(),
                fills: ns.fills.get(),
                fill_errors: ns.fill_errors.get(),
                coalesced: ns.coalesced.get(),
                evictions: Evictions {
                    size: evictions(EvictionCause::Size),
                    expired: evictions(EvictionCause::Expired),
                    purged: evictions(EvictionCause::Purged),
                    replaced: evictions(EvictionCause::Replaced),
                },
                // Transiently negative when moka reports a removal before we count the insert.
                entries: u64::try_from(ns.entries.get()).unwrap_or(0),
                bytes: u64::try_from(ns.bytes.get()).unwrap_or(0),
            }
        });
        CacheStats {
            budget,
            weighted_size,
            entry_count,
            namespaces,
        }
    }

    /// Registers under the `cache` sub-prefix, so a registry built with
    /// `Registry::with_prefix("edgenode")` exposes `edgenode_cache_*`.
    pub(super) fn register(&self, registry: &mut Registry) {
        let f = &self.families;
        let r = registry.sub_registry_with_prefix("cache");
        r.register("hits", "Fresh cache answers", f.hits.clone());
        r.register(
            "stale_hits",
            "Stale cache answers (stale lookups, or stale served after a failed fill)",
            f.stale_hits.clone(),
        );
        r.register(
            "misses",
            "Lookups that found nothing servable, and fills started by a caller",
            f.misses.clone(),
        );
        r.register(
            "fills",
            "Fills started, one per coalesced group",
            f.fills.clone(),
        );
        r.register(
            "fill_errors",
            "Fills that failed or panicked",
            f.fill_errors.clone(),
        );
        r.register(
            "coalesced",
            "Callers answered by another caller's fill",
            f.coalesced.clone(),
        );
        r.register(
            "evictions",
            "Entries that left the cache, by cause (size, expired, purged, replaced)",
            f.evictions.clone(),
        );
        r.register("entries", "Entries held", f.entries.clone());
        r.register(
            "bytes",
            "Bytes charged against the memory budget",
            f.bytes.clone(),
        );
        r.register(
            "budget_bytes",
            "Memory budget in bytes for all namespaces together",
            self.budget.clone(),
        );
    }
}
