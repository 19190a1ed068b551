//! The answer cache over the cache core: what the core keeps is what the front serves, a
//! flood of one-time entries does not displace popular ones, and a dropped answer cache's
//! entries stop charging the budget.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use super::*;
use crate::cache::{Cache, Namespace, PurgeMode};

const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A query's bytes: the answer cache does not parse them, only keys on them.
fn raw(n: u32) -> Vec<u8> {
    let mut raw = vec![0u8; HEADER_LEN];
    raw.extend_from_slice(format!("name-{n}").as_bytes());
    raw
}

fn stored() -> WireAnswer {
    WireAnswer {
        wire: vec![0u8; 100].into(),
        class: ResponseClass::Answer(1),
        queries: Counter::default(),
        region: None,
    }
}

fn insert(cache: &AnswerCache, n: u32) {
    let raw = raw(n);
    let query = cache.query(&raw, Transport::Udp, false).unwrap();
    cache.insert(&query, stored(), None);
}

fn hit(cache: &AnswerCache, n: u32) -> bool {
    let raw = raw(n);
    let query = cache.query(&raw, Transport::Udp, false).unwrap();
    cache.answer(&query, SOURCE, 0, &mut Vec::new()).is_some()
}

/// Lets the link's task and moka catch up.
async fn settle(core: &Cache) {
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        core.run_pending_tasks().await;
    }
}

fn held(core: &Cache) -> u64 {
    core.stats().namespace(Namespace::DnsAnswer).entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_serves_what_the_core_keeps() {
    let core = Cache::new(1 << 20);
    let cache = AnswerCache::with_core(&core);
    insert(&cache, 1);
    assert!(hit(&cache, 1), "served at once");
    settle(&core).await;
    assert_eq!(held(&core), 1, "charged in the core");
    assert!(core.stats().namespace(Namespace::DnsAnswer).bytes > 100);

    core.purge_prefix(Namespace::DnsAnswer, b"", PurgeMode::Hard)
        .await;
    settle(&core).await;
    assert!(!hit(&cache, 1), "gone from the front with the core's entry");
    assert!(cache.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_entries_do_not_displace_popular_ones() {
    // Room for about 300 entries.
    let core = Cache::new(256 << 10);
    let cache = AnswerCache::with_core(&core);
    for n in 0..50 {
        insert(&cache, n);
    }
    settle(&core).await;
    for _ in 0..10 {
        for n in 0..50 {
            assert!(hit(&cache, n));
        }
    }
    settle(&core).await;
    for n in 1000..6000 {
        insert(&cache, n);
        if n % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    settle(&core).await;
    let kept = (0..50).filter(|&n| hit(&cache, n)).count();
    assert!(kept >= 45, "{kept} of 50 popular entries kept");
    assert!(core.stats().weighted_size <= 256 << 10);
    assert!(
        cache.len() as u64 <= held(&core) + 64,
        "the front follows the core"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_answer_cache_stops_charging() {
    let core = Cache::new(1 << 20);
    let cache = AnswerCache::with_core(&core);
    for n in 0..10 {
        insert(&cache, n);
    }
    settle(&core).await;
    assert_eq!(held(&core), 10);
    let next = AnswerCache::with_core(&core);
    insert(&next, 1);
    drop(cache);
    settle(&core).await;
    assert_eq!(held(&core), 1, "only the new answer cache's entry");
    assert!(hit(&next, 1));
}

#[test]
fn outside_a_runtime_the_front_stands_alone() {
    let core = Cache::new(1 << 20);
    let cache = AnswerCache::with_core(&core);
    insert(&cache, 1);
    assert!(hit(&cache, 1));
}
