//! Unit tests of the cache core; `fill` and `purge` hold the coalescing and purge ones.

use std::sync::Arc;
use std::time::Duration;

use super::*;

mod fill;
mod purge;

fn dns(name: &str) -> CacheKey {
    CacheKey::new(Namespace::Dns, name.as_bytes().to_vec())
}

fn http(url: &str) -> CacheKey {
    CacheKey::new(Namespace::Http, url.as_bytes().to_vec())
}

fn meta(fresh: u64, stale: u64) -> EntryMeta {
    EntryMeta {
        fresh_for: Duration::from_secs(fresh),
        stale_for: Duration::from_secs(stale),
        weight: 100,
        tags: Vec::new(),
    }
}

fn tagged(fresh: u64, stale: u64, tags: &[&str]) -> EntryMeta {
    EntryMeta {
        tags: tags.iter().map(|t| Arc::from(*t)).collect(),
        ..meta(fresh, stale)
    }
}

#[derive(Debug, PartialEq)]
struct Upstream(&'static str);

async fn failing() -> Result<(Arc<String>, EntryMeta), Upstream> {
    Err(Upstream("timeout"))
}

fn value_of(found: Lookup<String>) -> Option<(bool, String, Duration)> {
    match found {
        Lookup::Fresh { value, age } => Some((true, (*value).clone(), age)),
        Lookup::Stale { value, age } => Some((false, (*value).clone(), age)),
        Lookup::Miss => None,
    }
}

#[tokio::test]
async fn fresh_then_stale_then_gone() {
    let cache = Cache::with_manual_clock(1 << 20);
    let key = dns("example.test.|A");
    cache
        .insert(key.clone(), Arc::new("1.2.3.4".to_string()), meta(10, 5))
        .await;

    let found = value_of(cache.get(&key).await);
    assert_eq!(found, Some((true, "1.2.3.4".into(), Duration::ZERO)));
    cache.advance(Duration::from_secs(9));
    let found = value_of(cache.get(&key).await);
    assert_eq!(
        found,
        Some((true, "1.2.3.4".into(), Duration::from_secs(9)))
    );
    cache.advance(Duration::from_secs(2));
    let found = value_of(cache.get(&key).await);
    assert_eq!(
        found,
        Some((false, "1.2.3.4".into(), Duration::from_secs(11)))
    );
    cache.advance(Duration::from_secs(4));
    assert!(
        value_of(cache.get(&key).await).is_none(),
        "past fresh + stale"
    );

    let dns_stats = *cache.stats().namespace(Namespace::Dns);
    assert_eq!(
        (dns_stats.hits, dns_stats.stale_hits, dns_stats.misses),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn zero_stale_window_goes_straight_to_miss() {
    let cache = Cache::with_manual_clock(1 << 20);
    let key = dns("a.test.|A");
    cache
        .insert(key.clone(), Arc::new("x".to_string()), meta(1, 0))
        .await;
    cache.advance(Duration::from_secs(1));
    assert!(matches!(cache.get::<String>(&key).await, Lookup::Miss));
}

#[tokio::test]
async fn wrong_type_is_a_miss_and_namespaces_do_not_collide() {
    let cache = Cache::with_manual_clock(1 << 20);
    let bytes = b"same-bytes".to_vec();
    let in_dns = CacheKey::new(Namespace::Dns, bytes.clone());
    let in_http = CacheKey::new(Namespace::Http, bytes.clone());
    let in_httpdns = CacheKey::new(Namespace::HttpDns, bytes);
    cache
        .insert(in_dns.clone(), Arc::new("dns".to_string()), meta(60, 0))
        .await;
    cache
        .insert(in_http.clone(), Arc::new("http".to_string()), meta(60, 0))
        .await;

    assert_eq!(
        value_of(cache.get(&in_dns).await).map(|v| v.1),
        Some("dns".into())
    );
    assert_eq!(
        value_of(cache.get(&in_http).await).map(|v| v.1),
        Some("http".into())
    );
    assert!(value_of(cache.get(&in_httpdns).await).is_none());
    assert!(matches!(cache.get::<u64>(&in_dns).await, Lookup::Miss));

    assert_eq!(
        cache
            .purge_prefix(Namespace::Http, b"same", PurgeMode::Hard)
            .await,
        1
    );
    assert!(
        value_of(cache.get(&in_dns).await).is_some(),
        "other namespace untouched"
    );
}

#[tokio::test]
async fn churn_stays_within_the_budget() {
    let budget = 256 * 1024;
    let cache = Cache::with_manual_clock(budget);
    let value = Arc::new(vec![0u8; 1000]);
    for i in 0..5_000u32 {
        let ns = Namespace::ALL[i as usize % Namespace::ALL.len()];
        let key = CacheKey::new(ns, format!("churn-{i}").into_bytes());
        let entry_meta = EntryMeta {
            weight: 1000,
            ..meta(600, 0)
        };
        cache.insert(key, Arc::clone(&value), entry_meta).await;
    }
    for _ in 0..4 {
        cache.run_pending_tasks().await;
    }

    let stats = cache.stats();
    assert!(
        stats.weighted_size <= budget,
        "{} > {budget}",
        stats.weighted_size
    );
    assert!(
        stats.weighted_size > budget / 2,
        "the budget is used: {}",
        stats.weighted_size
    );
    let bytes: u64 = stats.namespaces.iter().map(|ns| ns.bytes).sum();
    let entries: u64 = stats.namespaces.iter().map(|ns| ns.entries).sum();
    let size_evictions: u64 = stats.namespaces.iter().map(|ns| ns.evictions.size).sum();
    assert_eq!((bytes, entries), (stats.weighted_size, stats.entry_count));
    assert_eq!(size_evictions + entries, 5_000);
    assert!(stats.namespaces.iter().all(|ns| ns.evictions.size > 0));
    assert_eq!(stats.budget, budget);
}

#[tokio::test]
async fn replacing_an_entry_counts_and_restarts_its_clock() {
    let cache = Cache::with_manual_clock(1 << 20);
    let key = dns("r.test.|A");
    cache
        .insert(key.clone(), Arc::new("v1".to_string()), meta(10, 0))
        .await;
    cache.advance(Duration::from_secs(8));
    cache
        .insert(key.clone(), Arc::new("v2".to_string()), meta(10, 0))
        .await;
    cache.advance(Duration::from_secs(8));
    let found = value_of(cache.get(&key).await);
    assert_eq!(found, Some((true, "v2".into(), Duration::from_secs(8))));

    cache.run_pending_tasks().await;
    let stats = *cache.stats().namespace(Namespace::Dns);
    assert_eq!((stats.evictions.replaced, stats.entries), (1, 1));
    let charge = u64::from(100 + 9 + ENTRY_OVERHEAD);
    assert_eq!(stats.bytes, charge);
}

#[tokio::test]
async fn metrics_are_exposed_per_namespace() {
    let cache = Cache::with_manual_clock(4096);
    let mut registry = prometheus_client::registry::Registry::with_prefix("edgenode");
    cache.register_metrics(&mut registry);
    let key = dns("m.test.|A");
    assert!(matches!(cache.get::<String>(&key).await, Lookup::Miss));

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    assert!(
        text.contains("edgenode_cache_misses_total{namespace=\"dns\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("edgenode_cache_hits_total{namespace=\"http\"} 0"),
        "{text}"
    );
    assert!(text.contains("edgenode_cache_evictions_total{namespace=\"dns\",cause=\"size\"} 0"));
    assert!(text.contains("edgenode_cache_budget_bytes 4096"), "{text}");
}
