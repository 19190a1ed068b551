//! Criterion benchmark of the cache core: lookups (hit), inserts and `get_or_fill` (hit, and a
//! miss that fills at once), on a multi-thread tokio runtime with one worker per core.
//!
//! `cargo bench --bench cache` (add `-- --quick` for a short run). The `parallel` variants run
//! one task per worker and report throughput of the whole runtime; the others time one task.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgenode::cache::{Cache, CacheKey, EntryMeta, Lookup, Namespace};

/// Keys looked up in the hit benchmarks: enough to spread over moka's table, few enough to
/// stay resident in the budget below.
const KEYS: usize = 10_000;
/// Roomy enough that the hit set never gets evicted.
const BUDGET: u64 = 256 * 1024 * 1024;

/// A DNS-answer-sized value.
struct Answer {
    #[allow(dead_code)]
    wire: Vec<u8>,
}

fn meta() -> EntryMeta {
    EntryMeta {
        fresh_for: Duration::from_secs(3600),
        stale_for: Duration::from_secs(60),
        weight: 200,
        tags: Vec::new(),
    }
}

fn key(i: usize) -> CacheKey {
    CacheKey::new(
        Namespace::Dns,
        format!("www.example{i}.test.|A|do").into_bytes(),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn workers() -> u64 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u64)
}

async fn filled_cache(keys: &[CacheKey]) -> Cache {
    let cache = Cache::new(BUDGET);
    let value = Arc::new(Answer { wire: vec![0; 200] });
    for k in keys {
        cache.insert(k.clone(), Arc::clone(&value), meta()).await;
    }
    cache.run_pending_tasks().await;
    cache
}

/// Runs `op` `iters` times split over `tasks` spawned tasks and returns the wall time. Even one
/// task is spawned, so the operations run on a worker as a server's request tasks do (awaiting
/// from criterion's `block_on` thread would time cross-thread wake-ups instead).
async fn on_workers<F, Fut>(iters: u64, tasks: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in (t..iters).step_by(tasks as usize) {
                    op(i).await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("bench task");
    }
    start.elapsed()
}

fn bench_cache(c: &mut Criterion) {
    let rt = runtime();
    let keys: Arc<Vec<CacheKey>> = Arc::new((0..KEYS).map(key).collect());
    let cache = rt.block_on(filled_cache(&keys));
    let value = Arc::new(Answer { wire: vec![0; 200] });
    // Moves the key sequence on between criterion's samples.
    let offset = Arc::new(AtomicU64::new(0));

    let mut group = c.benchmark_group("cache");
    group.throughput(Throughput::Elements(1));

    for (name, tasks) in [("get_hit", 1), ("get_hit_parallel", workers())] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (cache, keys) = (cache.clone(), Arc::clone(&keys));
                on_workers(iters, tasks, move |i| {
                    let (cache, keys) = (cache.clone(), Arc::clone(&keys));
                    async move {
                        let found = cache.get::<Answer>(&keys[i as usize % KEYS]).await;
                        debug_assert!(matches!(found, Lookup::Fresh { .. }));
                        black_box(found);
                    }
                })
            })
        });
    }

    group.bench_function("get_or_fill_hit", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (cache, keys) = (cache.clone(), Arc::clone(&keys));
            on_workers(iters, 1, move |i| {
                let (cache, keys) = (cache.clone(), Arc::clone(&keys));
                async move {
                    let key = keys[i as usize % KEYS].clone();
                    let filled = cache
                        .get_or_fill(key, true, || async {
                            Err::<(Arc<Answer>, EntryMeta), ()>(())
                        })
                        .await;
                    black_box(filled.is_ok());
                }
            })
        })
    });

    // Inserts cycle over a key space ten times the hit set, replacing as they go.
    for (name, tasks) in [("insert", 1), ("insert_parallel", workers())] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (cache, value) = (cache.clone(), Arc::clone(&value));
                on_workers(iters, tasks, move |i| {
                    let (cache, value) = (cache.clone(), Arc::clone(&value));
                    async move {
                        cache
                            .insert(key(i as usize % (KEYS * 10)), value, meta())
                            .await
                    }
                })
            })
        });
    }

    // A miss whose fill answers at once: the cost of the coalescing machinery, the spawn and
    // the insert (fresh keys each time, so moka's table keeps growing and evicting).
    group.bench_function("get_or_fill_miss", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (cache, value) = (cache.clone(), Arc::clone(&value));
            let base = offset.fetch_add(iters, Ordering::Relaxed);
            on_workers(iters, 1, move |i| {
                let (cache, value) = (cache.clone(), Arc::clone(&value));
                async move {
                    let url = format!("https://cdn.test/{}", base + i);
                    let key = CacheKey::new(Namespace::Http, url.into_bytes());
                    let filled = cache
                        .get_or_fill(
                            key,
                            false,
                            move || async move { Ok::<_, ()>((value, meta())) },
                        )
                        .await;
                    black_box(filled.is_ok());
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_cache);
criterion_main!(benches);
