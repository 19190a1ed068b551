//! What hickory's iterative resolver reports of its own caches, in the node's metrics.
//!
//! The recursor keeps three caches of its own beside the cache core (responses, name server
//! pools, connections), each bounded by an entry count (`iterative::RESPONSE_CACHE`, ...).
//! It reports their sizes through the `metrics` facade; this module is that facade's recorder
//! for the names the node shows (as hickory last set them: it counts its response cache after
//! each resolution, and that count may lag the latest inserts), and ignores the rest:
//! `edgenode_dns_recursor_cache_entries{cache}` (and `..._cache_capacity{cache}`, the bounds),
//! `edgenode_dns_recursor_in_flight`, `edgenode_dns_recursor_outgoing_queries_total`.
//!
//! The facade has one recorder per process, installed before the first recursor is built;
//! every node of the process (one, outside tests) shares these handles.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::registry::Registry;

type FloatGauge = PromGauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
}

/// The handles hickory's reports land in.
#[derive(Default)]
pub struct RecursorMetrics {
    entries: Family<CacheLabels, FloatGauge>,
    capacity: Family<CacheLabels, FloatGauge>,
    in_flight: FloatGauge,
    outgoing: PromCounter,
}

/// hickory's names (`hickory_resolver::metrics::recursor`) and the cache each one is.
const CACHES: [(&str, &str); 3] = [
    ("hickory_recursor_response_cache_size", "responses"),
    ("hickory_recursor_name_server_cache_size", "name_servers"),
    ("hickory_recursor_connection_cache_size", "connections"),
];
const IN_FLIGHT: &str = "hickory_recursor_in_flight_queries";
const OUTGOING: &str = "hickory_recursor_outgoing_queries_total";

/// The process's handles; created (and the recorder installed) on first use.
pub fn shared() -> &'static RecursorMetrics {
    static SHARED: OnceLock<RecursorMetrics> = OnceLock::new();
    SHARED.get_or_init(|| {
        // Fails only if another recorder was installed first; then hickory reports to it.
        let _ = metrics::set_global_recorder(Bridge);
        RecursorMetrics::default()
    })
}

impl RecursorMetrics {
    /// Records the bounds each cache was built with.
    pub fn set_capacity(&self, responses: usize, name_servers: usize, connections: usize) {
        for (cache, bound) in [
            ("responses", responses),
            ("name_servers", name_servers),
            ("connections", connections),
        ] {
            self.capacity
                .get_or_create(&CacheLabels { cache })
                .set(bound as f64);
        }
    }

    /// Registers the `edgenode_dns_recursor_*` metrics.
    pub fn register(&self, registry: &mut Registry) {
        for (_, cache) in CACHES {
            let _ = self.entries.get_or_create(&CacheLabels { cache });
        }
        registry.register(
            "dns_recursor_cache_entries",
            "Entries in the iterative resolver's own caches (responses, name server pools, connections)",
            self.entries.clone(),
        );
        registry.register(
            "dns_recursor_cache_capacity",
            "The bound of each of the iterative resolver's own caches, in entries",
            self.capacity.clone(),
        );
        registry.register(
            "dns_recursor_in_flight",
            "Iterative resolutions in progress",
            self.in_flight.clone(),
        );
        registry.register(
            "dns_recursor_outgoing_queries",
            "Queries the iterative resolver sent to authoritative servers",
            self.outgoing.clone(),
        );
    }
}

/// The `metrics` recorder: the names above to their handles, everything else to nothing.
struct Bridge;

struct GaugeHandle(FloatGauge);

impl GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        self.0.inc_by(value);
    }

    fn decrement(&self, value: f64) {
        self.0.dec_by(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

struct CounterHandle(PromCounter);

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        self.0.inc_by(value);
    }

    fn absolute(&self, _value: u64) {
        // hickory only increments.
    }
}

impl Recorder for Bridge {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match key.name() {
            OUTGOING => Counter::from_arc(Arc::new(CounterHandle(shared().outgoing.clone()))),
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let metrics = shared();
        let gauge = match key.name() {
            IN_FLIGHT => metrics.in_flight.clone(),
            name => match CACHES.iter().find(|(n, _)| *n == name) {
                Some((_, cache)) => metrics
                    .entries
                    .get_or_create(&CacheLabels { cache })
                    .clone(),
                None => return Gauge::noop(),
            },
        };
        Gauge::from_arc(Arc::new(GaugeHandle(gauge)))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
