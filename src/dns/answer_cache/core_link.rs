//! The answer cache's link to the cache core: every entry of the front index is also an entry
//! of the core (namespace `dns-answers`, the same `Arc`, charged its bytes), so the core's
//! TinyLFU admission, its eviction and its one byte budget (`cache.memory`) decide what the
//! front keeps.
//!
//! The hot path never awaits moka: a new entry and its hits (each of the first
//! [`TOUCH_FIRST`], then one in [`TOUCH_EVERY`], by the query's ID) are sent with `try_send` on a bounded channel to one background
//! task per answer cache, which inserts them into the core or records the access
//! (`Cache::touch`). The core's removal hook then takes out of the front whatever the core
//! drops, including new entries TinyLFU refused to admit, so what the front holds is what the
//! core holds, give or take the entries on their way through the channel or moka's write log.
//!
//! Keys are the answer cache's generation (one per instance, so one per reload) followed by
//! the entry's hash; when the answer cache is dropped, its task ends by purging its
//! generation, so a reload's old answers stop charging the budget.

use std::any::Any;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Entry, Front};
use crate::cache::{Cache, CacheKey, CacheOutcome, EntryMeta, Namespace, PurgeMode};

/// An entry's first hits are each reported to the core's policy: TinyLFU's frequencies count
/// up to 15, and telling an answer asked a few times from a one-time name is what matters.
pub const TOUCH_FIRST: u32 = 8;
/// Beyond those, one hit in this many is reported: enough to keep a popular answer's
/// frequency at the top and its recency fresh, at a fraction of moka's per-read cost.
pub const TOUCH_EVERY: u32 = 128;
/// Inserts and touches waiting for the task at most; beyond, a new entry is not stored at
/// all and a touch is dropped (counted nowhere: it is only a sample).
const QUEUE: usize = 4096;
/// How long an entry may stay in the core without being replaced. Authoritative answers are
/// valid until the next reload (which drops them all); the bound only lets moka expire
/// entries of a state nobody queries any more.
const LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Distinguishes the entries of answer caches built one after another (reloads).
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// What the task does for the front.
enum CoreOp {
    /// Insert an entry the front has just stored.
    Admit { hash: u64, entry: Arc<Entry> },
    /// Record an access to a stored entry.
    Touch { hash: u64 },
}

/// The front's handle on the core: the channel to its task.
pub(super) struct CoreLink {
    ops: mpsc::Sender<CoreOp>,
    /// For the namespace's hit and miss counters, bumped on the hot path (atomics only).
    core: Cache,
}

impl CoreLink {
    /// Installs the removal hook for `front` and starts the task; None outside a tokio
    /// runtime (the answer cache then stands alone).
    pub(super) fn start(core: &Cache, front: &Arc<Front>) -> Option<CoreLink> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        let (ops, queue) = mpsc::channel(QUEUE);
        // Weak: the core outlives answer caches, which must not be kept alive by it.
        let front = Arc::downgrade(front);
        core.on_removal(
            Namespace::DnsAnswer,
            Arc::new(move |key, value| removed(&front, generation, key, value)),
        );
        // A plain spawn, not `crate::tasks`: one task per answer cache, ending when the
        // answer cache is dropped (its senders with it), so it needs no bound or drain.
        runtime.spawn(run(core.clone(), generation, queue));
        Some(CoreLink {
            ops,
            core: core.clone(),
        })
    }

    /// Queues `entry`, just stored in the front under `hash`, for the core; false when the
    /// queue is full (the caller then takes it out of the front again).
    pub(super) fn admit(&self, hash: u64, entry: Arc<Entry>) -> bool {
        self.ops.try_send(CoreOp::Admit { hash, entry }).is_ok()
    }

    /// Counts a hit on the entry under `hash` (`hits` is its counter), reporting it to the
    /// core if it is one of the entry's first [`TOUCH_FIRST`], and after those when the
    /// query's ID (random, RFC 5452) is a multiple of [`TOUCH_EVERY`]: one hit in that many,
    /// with no state. Past its first hits an entry's counter is only read, so a popular
    /// answer's cache line is not written by every core on every hit. (Two threads may count
    /// the same early hit once: it is a sample.)
    #[inline]
    pub(super) fn hit(&self, hash: u64, hits: &AtomicU32, id: [u8; 2]) {
        let n = hits.load(Ordering::Relaxed);
        let report = if n < TOUCH_FIRST {
            hits.store(n + 1, Ordering::Relaxed);
            true
        } else {
            u32::from(u16::from_be_bytes(id)).is_multiple_of(TOUCH_EVERY)
        };
        if report {
            let _ = self.ops.try_send(CoreOp::Touch { hash });
        }
    }
}

impl CoreLink {
    /// Counts a lookup of the front in the core's `dns-answers` statistics.
    #[inline]
    pub(super) fn count(&self, outcome: CacheOutcome) {
        self.core.count(Namespace::DnsAnswer, outcome);
    }
}

fn key(generation: u64, hash: u64) -> CacheKey {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&generation.to_be_bytes());
    bytes[8..].copy_from_slice(&hash.to_be_bytes());
    CacheKey::new(Namespace::DnsAnswer, bytes.to_vec())
}

/// The removal hook: takes the entry out of the front if it is still the one stored there
/// (a replaced entry's late notice must not remove its successor).
fn removed(
    front: &Weak<Front>,
    generation: u64,
    key: &CacheKey,
    value: &Arc<dyn Any + Send + Sync>,
) {
    let Some((prefix, hash)) = key.key.split_first_chunk::<8>() else {
        return;
    };
    if u64::from_be_bytes(*prefix) != generation {
        return;
    }
    let (Ok(hash), Some(entry), Some(front)) = (
        <[u8; 8]>::try_from(hash).map(u64::from_be_bytes),
        value.downcast_ref::<Entry>(),
        front.upgrade(),
    ) else {
        return;
    };
    front.remove_if_same(hash, entry);
}

/// The task: applies the front's operations to the core until the answer cache is dropped,
/// then purges its generation.
async fn run(core: Cache, generation: u64, mut queue: mpsc::Receiver<CoreOp>) {
    let mut batch = Vec::with_capacity(64);
    while queue.recv_many(&mut batch, 64).await > 0 {
        let mut admitted = false;
        for op in batch.drain(..) {
            match op {
                CoreOp::Admit { hash, entry } => {
                    let meta = EntryMeta {
                        fresh_for: LIFETIME,
                        stale_for: Duration::ZERO,
                        weight: entry.charge(),
                        tags: Vec::new(),
                    };
                    core.insert(key(generation, hash), entry, meta).await;
                    admitted = true;
                }
                CoreOp::Touch { hash } => core.touch(&key(generation, hash)).await,
            }
        }
        // Idle: let moka apply the admissions now, so refused entries leave the front
        // promptly rather than at its next housekeeping.
        if admitted && queue.is_empty() {
            core.run_pending_tasks().await;
        }
    }
    let prefix = generation.to_be_bytes();
    core.purge_prefix(Namespace::DnsAnswer, &prefix, PurgeMode::Hard)
        .await;
}
