//! Coalescing, stale-on-error and fill failure handling.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::*;

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
    let stats = *cache.stats().namespace(Namespace::Dns);
    assert_eq!(
        (stats.fill_errors, stats.misses, stats.coalesced),
        (1, 1, 99)
    );
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

    let stats = *cache.stats().namespace(Namespace::Dns);
    let calls = (stats.hits, stats.stale_hits, stats.misses, stats.coalesced);
    assert_eq!(calls, (0, 1, 3, 0), "each call counted once");
    assert_eq!((stats.fills, stats.fill_errors), (4, 3));
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
