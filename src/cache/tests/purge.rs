//! Purge by key, prefix and tag, hard and soft.

use std::sync::Arc;
use std::time::Duration;

use super::*;

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
