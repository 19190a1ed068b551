//! The Prometheus registry and the metric handles each module keeps.
//!
//! Metrics are registered once at start; request paths hold the handles and never look a metric
//! up by name (label families hash a small label set of static strings).

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub proto: &'static str,
    pub qtype: &'static str,
    pub rcode: &'static str,
}

/// A geo selection label such as "continent:AS"; an `Arc<str>` so counting allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Region(pub Arc<str>);

impl EncodeLabelValue for Region {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, &self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionLabels {
    pub region: Region,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRequestLabels {
    pub endpoint: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: &'static str,
}

/// Handles the DNS handler updates per query.
#[derive(Clone, Default)]
pub struct DnsMetrics {
    pub queries: Family<QueryLabels, Counter>,
    pub geo_decisions: Family<RegionLabels, Counter>,
    /// Zones currently served (set at start and on every reload).
    pub zones: Gauge,
    /// Recursive answers by how the cache answered (hit, miss, coalesced, stale, failed).
    pub recursion: Family<OutcomeLabels, Counter>,
    /// Expired answers served because the upstreams failed (RFC 8767).
    pub stale_answers: Counter,
    /// UDP responses held back by response rate limiting: dropped, or slipped (sent truncated).
    pub rrl: Family<ActionLabels, Counter>,
    /// Queries by what the answer cache did: hit, miss (answered and stored), uncacheable.
    pub answer_cache: Family<ResultLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FillLimitLabels {
    pub limit: &'static str,
}

/// Handles the proxy updates per fill.
#[derive(Clone, Default)]
pub struct ProxyMetrics {
    /// Cache fills by where they were fetched from: origin, sibling, or sibling-failed (the
    /// owner did not answer in time and the origin was asked instead).
    pub fetches: Family<SourceLabels, Counter>,
    /// Requests from other nodes of the cluster (sibling fetches this node answered).
    pub sibling_requests: Counter,
    /// Origin circuits opened by the breaker.
    pub breaker_opened: Counter,
    /// Fills held back or cut short by a limit (`proxy::fill_limits`), by limit.
    pub fill_limits: Family<FillLimitLabels, Counter>,
}

impl ProxyMetrics {
    fn registered(registry: &mut Registry) -> ProxyMetrics {
        let proxy = ProxyMetrics::default();
        registry.register(
                "proxy_fetches",
                "Cache fills by source: origin, sibling (the key's owner), sibling-failed (then the origin)",
                proxy.fetches.clone(),
            );
        registry.register(
            "proxy_sibling_requests",
            "Requests from other nodes of the cluster answered by this one",
            proxy.sibling_requests.clone(),
        );
        registry.register(
            "proxy_breaker_opened",
            "Origin circuits opened: failures (no response, or an opted-in status) made \
                 breaker_ratio of an origin's outcomes in breaker_window_secs",
            proxy.breaker_opened.clone(),
        );
        registry.register(
                "proxy_fill_limits",
                "Origin fetches held back or cut short, by limit: global and client (max_fills, \
                 max_fills_per_client: waited in line), bytes (max_fill_bytes: streamed, not stored), \
                 slow_reader (a client cut off for falling behind), abandoned (clients all gone)",
                proxy.fill_limits.clone(),
            );
        proxy
    }
}

impl DnsMetrics {
    fn registered(registry: &mut Registry) -> DnsMetrics {
        let dns = DnsMetrics::default();
        registry.register(
            "dns_queries",
            "DNS queries answered, by protocol, query type and response code",
            dns.queries.clone(),
        );
        registry.register(
            "dns_geo_decisions",
            "Answers shaped by a geo policy, by the selector that matched",
            dns.geo_decisions.clone(),
        );
        registry.register("dns_zones", "Zones currently served", dns.zones.clone());
        registry.register(
            "dns_recursion",
            "Recursive answers by cache outcome: hit, miss, coalesced, stale, failed (SERVFAIL)",
            dns.recursion.clone(),
        );
        registry.register(
            "dns_stale_answers",
            "Expired answers served because the upstreams failed (RFC 8767)",
            dns.stale_answers.clone(),
        );
        registry.register(
                "dns_rrl",
                "UDP responses held back by response rate limiting, by action: dropped, slipped (sent truncated)",
                dns.rrl.clone(),
            );
        registry.register(
            "dns_answer_cache",
            "Authoritative queries by answer cache result: hit, miss (answered, then stored), \
                 uncacheable (recursion, errors, query log on, too large)",
            dns.answer_cache.clone(),
        );
        dns
    }
}

/// Every metric of the node, and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    pub dns: DnsMetrics,
    pub proxy: ProxyMetrics,
    /// HTTPDNS and DoH requests by endpoint and status.
    pub httpdns_requests: Family<HttpRequestLabels, Counter>,
    /// HTTP clients stopped by a limit of `[http]` or the proxy's body size, by limit.
    pub http_limits: Family<LimitLabels, Counter>,
    pub reloads: Family<ReloadLabels, Counter>,
}

impl Metrics {
    /// `register_others` registers the metrics of the modules that keep their own (the cache
    /// core, the tasks, the recursor, the cluster) first, so this module depends on none of them.
    pub fn new(register_others: impl FnOnce(&mut Registry)) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("edgenode");
        register_others(&mut registry);
        let proxy = ProxyMetrics::registered(&mut registry);
        let dns = DnsMetrics::registered(&mut registry);
        let httpdns_requests = Family::<HttpRequestLabels, Counter>::default();
        registry.register(
            "httpdns_requests",
            "HTTPDNS and DoH requests by endpoint and HTTP status",
            httpdns_requests.clone(),
        );
        let http_limits = Family::<LimitLabels, Counter>::default();
        registry.register(
            "http_limits",
            "HTTP requests or connections stopped by a limit (header_timeout, header_too_large, \
             bad_request, body_timeout, body_too_large, bad_body)",
            http_limits.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "reloads",
            "Reloads of zones, policies and GeoIP data, by result",
            reloads.clone(),
        );
        Arc::new(Metrics {
            registry,
            dns,
            proxy,
            httpdns_requests,
            http_limits,
            reloads,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
