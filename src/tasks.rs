//! The node's background work besides its listeners: recursive answers for UDP clients, cache
//! fills, preload jobs, and connections to upstreams (forwarders, OCSP responders). Every such
//! task is spawned here, so that:
//! - the number of each kind in flight is bounded (`[tasks]` in the config); a spawn at the
//!   bound is refused and the caller degrades (a UDP query is dropped as if lost, a fill is
//!   answered 503 with `Retry-After`, a preload job is refused with 503, a background refresh
//!   is skipped and the stale copy served), counted in `edgenode_tasks_refused_total{kind}`;
//! - the number in flight is reported (`edgenode_tasks_running{kind}`);
//! - shutdown waits for them up to a grace period and then cancels what is left
//!   (`Tasks::shutdown`), so none outlives the node's listeners unseen.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::TasksConfig;

/// The kinds of background task, each with its own bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A recursive answer a UDP client waits for (`tasks.recursion`).
    Recursion,
    /// A cache fill: an origin or sibling fetch, or a resolution, that stores what it gets
    /// whether or not its client is still there (`tasks.fills`).
    Fill,
    /// A preload job (`tasks.preload_jobs`).
    Preload,
    /// A connection's driver to an upstream: a forwarder, an OCSP responder
    /// (`tasks.upstream_connections`). It serves the other tasks' queries and has no work of
    /// its own, so shutdown does not wait for it: it is cancelled with the rest when the
    /// others are done or the grace period is over.
    Upstream,
}

const KINDS: [Kind; 4] = [Kind::Recursion, Kind::Fill, Kind::Preload, Kind::Upstream];

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Recursion => "recursion",
            Kind::Fill => "fill",
            Kind::Preload => "preload",
            Kind::Upstream => "upstream",
        }
    }
}

/// A spawn refused: `kind` is at its bound. The task is given back, not started.
pub struct Refused<F> {
    pub kind: Kind,
    pub task: F,
}

impl<F> std::fmt::Debug for Refused<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Refused({:?})", self.kind)
    }
}

impl<F> std::fmt::Display for Refused<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "too many {} tasks in flight", self.kind.label())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Spawns, bounds, reports and stops background tasks. Cheap to clone.
#[derive(Clone)]
pub struct Tasks {
    inner: Arc<Inner>,
}

struct Inner {
    tracker: TaskTracker,
    /// Cancelled when the shutdown grace period is over.
    cancel: CancellationToken,
    running: [AtomicUsize; 4],
    limits: [usize; 4],
    running_gauge: Family<KindLabels, Gauge>,
    refused: Family<KindLabels, Counter>,
}

/// Counts a task as running until it ends (or is dropped unstarted).
struct Running {
    inner: Arc<Inner>,
    kind: Kind,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.inner.running[self.kind.index()].fetch_sub(1, Ordering::AcqRel);
        self.inner.gauge(self.kind).dec();
    }
}

impl Tasks {
    pub fn new(config: &TasksConfig) -> Tasks {
        let limits = [
            config.recursion,
            config.fills,
            config.preload_jobs,
            config.upstream_connections,
        ];
        Tasks {
            inner: Arc::new(Inner {
                tracker: TaskTracker::new(),
                cancel: CancellationToken::new(),
                running: Default::default(),
                limits,
                running_gauge: Family::default(),
                refused: Family::default(),
            }),
        }
    }

    /// With the default bounds (for tests and tools that build parts of the node).
    pub fn unconfigured() -> Tasks {
        Tasks::new(&TasksConfig::default())
    }

    /// Runs `task` in the background, unless `kind` is at its bound. The handle yields None
    /// when the task was cancelled at shutdown.
    pub fn spawn<F>(&self, kind: Kind, task: F) -> Result<JoinHandle<Option<F::Output>>, Refused<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let running = &self.inner.running[kind.index()];
        let limit = self.inner.limits[kind.index()];
        let admitted = running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.inner.refused.get_or_create(&labels(kind)).inc();
            return Err(Refused { kind, task });
        }
        self.inner.gauge(kind).inc();
        let guard = Running {
            inner: Arc::clone(&self.inner),
            kind,
        };
        let cancel = self.inner.cancel.clone();
        let run = async move {
            let _running = guard;
            tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                output = task => Some(output),
            }
        };
        Ok(match kind {
            Kind::Upstream => tokio::spawn(run),
            _ => self.inner.tracker.spawn(run),
        })
    }

    /// How many tasks of `kind` are in flight.
    pub fn running(&self, kind: Kind) -> usize {
        self.inner.running[kind.index()].load(Ordering::Acquire)
    }

    /// Waits up to `grace` for the tasks in flight, then cancels the rest (and every upstream
    /// connection's driver) and waits for them to unwind. Returns how many were cancelled,
    /// drivers not counted.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.inner.tracker.close();
        let finished = tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_ok();
        let left = self.inner.tracker.len();
        if !finished {
            tracing::info!(
                tasks = left,
                "background tasks still running after the grace period; cancelling them"
            );
        }
        self.inner.cancel.cancel();
        self.inner.tracker.wait().await;
        left
    }

    /// Registers `edgenode_tasks_running{kind}` and `edgenode_tasks_refused_total{kind}`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        for kind in KINDS {
            // Every kind shows, at 0 until used.
            self.inner.gauge(kind);
            let _ = self.inner.refused.get_or_create(&labels(kind));
        }
        let sub = registry.sub_registry_with_prefix("tasks");
        sub.register(
            "running",
            "Background tasks in flight, by kind (recursion, fill, preload, upstream)",
            self.inner.running_gauge.clone(),
        );
        sub.register(
            "refused",
            "Background tasks not started because their kind was at its bound (tasks.*)",
            self.inner.refused.clone(),
        );
    }
}

impl Inner {
    fn gauge(&self, kind: Kind) -> Gauge {
        self.running_gauge.get_or_create(&labels(kind)).clone()
    }
}

fn labels(kind: Kind) -> KindLabels {
    KindLabels { kind: kind.label() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(limit: usize) -> Tasks {
        Tasks::new(&TasksConfig {
            recursion: limit,
            fills: limit,
            preload_jobs: limit,
            upstream_connections: limit,
        })
    }

    #[tokio::test]
    async fn a_kind_at_its_bound_refuses_and_frees_its_place_when_a_task_ends() {
        let tasks = tasks(2);
        let (release, wait) = tokio::sync::watch::channel(false);
        let held = |mut wait: tokio::sync::watch::Receiver<bool>| async move {
            let _ = wait.wait_for(|go| *go).await;
        };
        let first = tasks.spawn(Kind::Fill, held(wait.clone())).unwrap();
        let _second = tasks.spawn(Kind::Fill, held(wait.clone())).unwrap();
        assert_eq!(tasks.running(Kind::Fill), 2);
        let refused = tasks.spawn(Kind::Fill, held(wait.clone())).unwrap_err();
        assert_eq!(refused.kind, Kind::Fill);
        // Another kind has its own bound.
        let other = tasks.spawn(Kind::Preload, async { 7 }).unwrap();
        assert_eq!(other.await.unwrap(), Some(7));
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap(), Some(()));
        while tasks.running(Kind::Fill) > 0 {
            tokio::task::yield_now().await;
        }
        assert!(tasks.spawn(Kind::Fill, async {}).is_ok());
        assert_eq!(
            tasks.inner.refused.get_or_create(&labels(Kind::Fill)).get(),
            1
        );
    }

    #[tokio::test]
    async fn shutdown_waits_for_quick_tasks_and_cancels_stuck_ones() {
        let tasks = tasks(10);
        let quick = tasks
            .spawn(
                Kind::Recursion,
                tokio::time::sleep(Duration::from_millis(20)),
            )
            .unwrap();
        let stuck = tasks
            .spawn(Kind::Fill, std::future::pending::<()>())
            .unwrap();
        let started = std::time::Instant::now();
        let cancelled = tasks.shutdown(Duration::from_millis(200)).await;
        assert_eq!(cancelled, 1);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(quick.await.unwrap(), Some(()));
        assert_eq!(stuck.await.unwrap(), None);
        assert_eq!(tasks.running(Kind::Fill), 0);
    }
}
