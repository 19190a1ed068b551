use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::*;

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
async fn a_hundred_concurrent_misses_run_one_fill() {
    let cache = Cache::with_manual_clock(1 << 20);
    let key = dns("busy.test.|A");
    let fills = Arc::new(AtomicUsize::new(0));
    // The fill blocks until every caller has had the chance to join it.
    let gate = Arc::new(Semaphore::new(0));
    let mut callers = Vec::new();
    for _ in 0..100 {
        let (cache, key, fills, gate) = (cache.clone(), key.clone(), fills.clone(), gate.clone());
        callers.push(tokio::spawn(async move {
            cache
                .get_or_fill(key, false, move || async move {
                    fills.fetch_add(1, Ordering::SeqCst);
                    let _permit = gate.acquire().await;
                    Ok::<_, Upstream>((Arc::new("5.6.7.8".to_string()), meta(60, 0)))
                })
                .await
        }));
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);

    let mut answers = Vec::new();
    for caller in callers {
        answers.push(caller.await.expect("caller task").expect("fill succeeds"));
    }
    assert_eq!(fills.load(Ordering::SeqCst), 1);
    let first = &answers[0].value;
    assert!(
        answers.iter().all(|a| Arc::ptr_eq(&a.value, first)),
        "one shared Arc"
    );
    let misses = answers
        .iter()
        .filter(|a| a.outcome == CacheOutcome::Miss)
        .count();
    let coalesced = answers
        .iter()
        .filter(|a| a.outcome == CacheOutcome::Coalesced)
        .count();
    assert_eq!((misses, coalesced), (1, 99));

    let stats = *cache.stats().namespace(Namespace::Dns);
    assert_eq!((stats.misses, stats.fills, stats.coalesced), (1, 1, 99));
    assert_eq!(cache.inner.flights.in_flight(), 0);
    let again = cache
        .get_or_fill(key, false, failing)
        .await
        .expect("now a hit");
    assert_eq!(again.outcome, CacheOutcome::Hit);
    assert!(Arc::ptr_eq(&again.value, first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_worker_threads_still_run_one_fill() {
    let cache = Cache::with_manual_clock(1 << 20);
    let key = http("https://cdn.test/hot.js");
    let fills = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let (cache, key, fills) = (cache.clone(), key.clone(), fills.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fill(key, false, move || async move {
                        fills.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, Upstream>((Arc::new(vec![1u8; 64]), meta(60, 0)))
                    })
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for caller in callers {
        answers.push(caller.await.expect("caller task").expect("fill succeeds"));
    }
    assert_eq!(fills.load(Ordering::SeqCst), 1);
    assert!(
        answers
            .iter()
            .all(|a| Arc::ptr_eq(&a.value, &answers[0].value))
    );
    let misses = answers
        .iter()
        .filter(|a| a.outcome == CacheOutcome::Miss)
        .count();
    assert_eq!(misses, 1, "late callers are hits, the others coalesced");
}

#[tokio::test]
async fn a_failed_fill_gives_every_waiter_the_same_error_and_is_not_cached() {
    let cache = Cache::with_manual_clock(1 << 20);
    let key = dns("broken.test.|A");
    let fills = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let mut callers = Vec::new();
    for _ in 0..100 {
        let (cache, key, fills, gate) = (cache.clone(), key.clone(), fills.clone(), gate.clone());
        callers.push(tokio::spawn(async move {
            cache
                .get_or_fill(key, true, move || async move {
                    fills.fetch_add(1, Ordering::SeqCst);
                    let _permit = gate.acquire().await;
                    Err::<(Arc<String>, EntryMeta), _>(Upstream("servfail"))
                })
                .await
        }));
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);

    let mut errors = Vec::new();
    for caller in callers {
        errors.push(caller.await.expect("caller task").expect_err("fill fails"));
    }
    assert_eq!(fills.load(Ordering::SeqCst), 1);
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "one shared error"
    );
    assert_eq!(*errors[0], Upstream("servfail"));
    assert_eq!(cache.stats().namespace(Namespace::Dns).fill_errors, 1);
    assert_eq!(cache.inner.flights.in_flight(), 0);

    let retried = cache
        .get_or_fill(key, false, || async {
            Ok::<_, Upstream>((Arc::new(7u32), meta(60, 0)))
        })
        .await
        .expect("errors are not cached");
    assert_eq!((*retried.value, retried.outcome), (7, CacheOutcome::Miss));
}

#[tokio::test]
async fn stale_is_served_only_when_the_refresh_fails() {
    let cache = Cache::with_manual_clock(1 << 20);
    let key = dns("stale.test.|A");
    cache
        .insert(key.clone(), Arc::new("old".to_string()), meta(1, 60))
        .await;
    cache.advance(Duration::from_secs(2));

    let served = cache
        .get_or_fill(key.clone(), true, failing)
        .await
        .expect("stale");
    assert_eq!(
        (served.value.as_str(), served.outcome),
        ("old", CacheOutcome::Stale)
    );
    assert_eq!(served.age, Duration::from_secs(2));
    let refused = cache.get_or_fill(key.clone(), false, failing).await;
    assert_eq!(
        *refused.expect_err("stale_on_error off"),
        Upstream("timeout")
    );

    let refreshed = cache
        .get_or_fill(key.clone(), true, || async {
            Ok::<_, Upstream>((Arc::new("new".to_string()), meta(1, 60)))
        })
        .await
        .expect("refresh");
    assert_eq!(
        (refreshed.value.as_str(), refreshed.outcome),
        ("new", CacheOutcome::Miss)
    );

    cache.advance(Duration::from_secs(62));
    let gone = cache.get_or_fill(key, true, failing).await;
    assert!(gone.is_err(), "past the stale window nothing is served");
}

#[tokio::test]
async fn a_panicking_fill_is_retired_and_waiters_fill_themselves() {
    let cache = Cache::with_manual_clock(1 << 20);
    let key = dns("panic.test.|A");
    let gate = Arc::new(Semaphore::new(0));
    let leader = {
        let (cache, key, gate) = (cache.clone(), key.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get_or_fill(key, false, move || async move {
                    let _permit = gate.acquire().await;
                    panic!("fill bug");
                    #[allow(unreachable_code)]
                    Ok::<(Arc<String>, EntryMeta), Upstream>((Arc::new(String::new()), meta(1, 1)))
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    let waiter = {
        let (cache, key) = (cache.clone(), key.clone());
        tokio::spawn(async move {
            cache
                .get_or_fill(key, false, || async {
                    Ok::<_, Upstream>((Arc::new("second".to_string()), meta(60, 0)))
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    gate.add_permits(1);

    assert!(
        leader
            .await
            .expect_err("the panic reaches its caller")
            .is_panic()
    );
    let filled = waiter.await.expect("waiter task").expect("its own fill");
    assert_eq!(
        (filled.value.as_str(), filled.outcome),
        ("second", CacheOutcome::Miss)
    );
    assert_eq!(cache.inner.flights.in_flight(), 0);
    let stats = *cache.stats().namespace(Namespace::Dns);
    assert_eq!((stats.fills, stats.fill_errors), (2, 1));
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_cancel_the_fill() {
    let cache = Cache::with_manual_clock(1 << 20);
    let key = http("https://cdn.test/big.bin");
    let gate = Arc::new(Semaphore::new(0));
    let impatient = {
        let (cache, key, gate) = (cache.clone(), key.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get_or_fill(key, false, move || async move {
                    let _permit = gate.acquire().await;
                    Ok::<_, Upstream>((Arc::new("body".to_string()), meta(60, 0)))
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    impatient.abort();
    assert!(impatient.await.expect_err("aborted").is_cancelled());
    gate.add_permits(1);

    let later = cache
        .get_or_fill(key, false, failing)
        .await
        .expect("joined or hit");
    assert_eq!(later.value.as_str(), "body");
    assert!(matches!(
        later.outcome,
        CacheOutcome::Coalesced | CacheOutcome::Hit
    ));
}

#[tokio::test]
async fn purge_by_key_hard_and_soft() {
    let cache = Cache::with_manual_clock(1 << 20);
    let (a, b) = (dns("a.test.|A"), dns("b.test.|A"));
    cache
        .insert(a.clone(), Arc::new("a".to_string()), meta(60, 30))
        .await;
    cache
        .insert(b.clone(), Arc::new("b".to_string()), meta(60, 30))
        .await;

    assert_eq!(cache.purge_key(&a, PurgeMode::Hard).await, 1);
    assert_eq!(cache.purge_key(&a, PurgeMode::Hard).await, 0);
    assert!(matches!(cache.get::<String>(&a).await, Lookup::Miss));

    assert_eq!(cache.purge_key(&b, PurgeMode::Soft).await, 1);
    assert_eq!(
        cache.purge_key(&b, PurgeMode::Soft).await,
        0,
        "already stale"
    );
    assert!(matches!(
        cache.get::<String>(&b).await,
        Lookup::Stale { .. }
    ));
    let served = cache
        .get_or_fill(b.clone(), true, failing)
        .await
        .expect("stale");
    assert_eq!(served.outcome, CacheOutcome::Stale);
    // The stale window now runs from the purge: 30 s, not the 90 s the entry had left.
    cache.advance(Duration::from_secs(31));
    assert!(matches!(cache.get::<String>(&b).await, Lookup::Miss));

    cache.run_pending_tasks().await;
    assert_eq!(cache.stats().namespace(Namespace::Dns).evictions.purged, 1);
}

#[tokio::test]
async fn purge_by_prefix_hard_and_soft() {
    let cache = Cache::with_manual_clock(1 << 20);
    for path in ["/img/1.png", "/img/2.png", "/css/site.css"] {
        let key = http(&format!("https://cdn.test{path}"));
        cache
            .insert(key, Arc::new(path.to_string()), meta(60, 60))
            .await;
    }
    let dns_twin = CacheKey::new(Namespace::Dns, &b"https://cdn.test/img/1.png"[..]);
    cache
        .insert(dns_twin.clone(), Arc::new("dns".to_string()), meta(60, 60))
        .await;

    let soft = cache.purge_prefix(Namespace::Http, b"https://cdn.test/img/", PurgeMode::Soft);
    assert_eq!(soft.await, 2);
    let img = http("https://cdn.test/img/1.png");
    let css = http("https://cdn.test/css/site.css");
    assert!(matches!(
        cache.get::<String>(&img).await,
        Lookup::Stale { .. }
    ));
    assert!(matches!(
        cache.get::<String>(&css).await,
        Lookup::Fresh { .. }
    ));
    assert!(matches!(
        cache.get::<String>(&dns_twin).await,
        Lookup::Fresh { .. }
    ));

    let hard = cache.purge_prefix(Namespace::Http, b"https://cdn.test/", PurgeMode::Hard);
    assert_eq!(hard.await, 3);
    assert!(matches!(cache.get::<String>(&css).await, Lookup::Miss));
    assert!(matches!(
        cache.get::<String>(&dns_twin).await,
        Lookup::Fresh { .. }
    ));
}

#[tokio::test]
async fn purge_by_tag_hard_and_soft() {
    let cache = Cache::with_manual_clock(1 << 20);
    let (one, two, three) = (http("https://a/1"), http("https://a/2"), dns("x.test.|A"));
    cache
        .insert(
            one.clone(),
            Arc::new("1".to_string()),
            tagged(60, 60, &["site-a", "img"]),
        )
        .await;
    cache
        .insert(
            two.clone(),
            Arc::new("2".to_string()),
            tagged(60, 60, &["site-a"]),
        )
        .await;
    cache
        .insert(
            three.clone(),
            Arc::new("3".to_string()),
            tagged(60, 60, &["img"]),
        )
        .await;

    assert_eq!(cache.purge_tag("img", PurgeMode::Soft).await, 2);
    assert!(matches!(
        cache.get::<String>(&one).await,
        Lookup::Stale { .. }
    ));
    assert!(matches!(
        cache.get::<String>(&three).await,
        Lookup::Stale { .. }
    ));
    assert!(matches!(
        cache.get::<String>(&two).await,
        Lookup::Fresh { .. }
    ));

    assert_eq!(cache.purge_tag("site-a", PurgeMode::Hard).await, 2);
    assert_eq!(cache.purge_tag("nobody", PurgeMode::Hard).await, 0);
    assert!(matches!(cache.get::<String>(&one).await, Lookup::Miss));
    assert!(matches!(cache.get::<String>(&two).await, Lookup::Miss));
    assert!(matches!(
        cache.get::<String>(&three).await,
        Lookup::Stale { .. }
    ));
}

#[tokio::test]
async fn churn_stays_within_the_budget() {
    let budget = 256 * 1024;
    let cache = Cache::with_manual_clock(budget);
    let value = Arc::new(vec![0u8; 1000]);
    for i in 0..5_000u32 {
        let ns = Namespace::ALL[(i % 3) as usize];
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
