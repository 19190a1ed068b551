//! What the store holds per key: the type-erased value, when it was stored, its freshness and
//! stale windows, its charge against the byte budget, its tags, and a soft-purge mark.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::Expiry;
use tokio::time::Instant;

use super::{CacheKey, EntryMeta};

/// Bytes charged per entry on top of the value's own weight and the key's length.
///
/// Measured with a counting global allocator (moka 0.12.16, this file's `Entry`, a weigher, the
/// per-entry expiry and an eviction listener; 50 k to 1 M entries with 32-byte keys): beyond the
/// key's bytes and the value's allocation, each entry costs 410 to 414 heap bytes in 8
/// allocations (moka's hash-table bucket and its share of table growth, `ValueEntry` and
/// `EntryInfo`, deque and timer-wheel nodes, the `Arc` moka puts around the key; our
/// `Arc<Entry>`, 112 bytes then, 96 since), which glibc malloc turns into 515 to 520 bytes of RSS.
/// Add the value's own `Arc` header (16 bytes, which a caller's `weight` rarely counts) and round
/// up: 544. With mimalloc (the binary's allocator), bench/memory.sh finds the charge of a whole
/// stored 1 KiB HTTP object within a few percent of the RSS it adds.
pub const ENTRY_OVERHEAD: u32 = 544;

/// Bytes charged per tag: the slot in the tag list plus the tag's text (shared tags are charged
/// once per entry that carries them, which over-counts rather than under-counts).
const TAG_SLOT: u32 = 16;

/// Sentinel of `Entry::purged_after`: the entry was never soft-purged.
const NOT_PURGED: u64 = u64::MAX;

/// One stored value. Immutable after creation except for the soft-purge mark.
pub(super) struct Entry {
    /// Erased so one store serves every namespace's value type; `get::<T>` downcasts.
    pub(super) value: Arc<dyn Any + Send + Sync>,
    /// Tokio's clock, not moka's, so that callers and tests (paused time) agree on ages.
    pub(super) stored_at: Instant,
    /// How long after `stored_at` the entry is served as fresh, in nanoseconds (not a
    /// `Duration`: 8 bytes less, and 16 less per entry puts `Arc<Entry>` in a smaller size
    /// class; 584 years at most).
    fresh_for: u64,
    /// How long after going stale the entry may still be served (on refresh failure), in
    /// nanoseconds.
    stale_for: u64,
    /// Bytes charged against the budget, computed once so the weigher and the eviction listener
    /// always agree.
    pub(super) charge: u32,
    /// Purge-by-tag matches against these.
    pub(super) tags: Box<[Arc<str>]>,
    /// Nanoseconds after `stored_at` at which a soft purge marked the entry stale, or
    /// `NOT_PURGED`; atomic so a purge never takes a lock that readers would contend on.
    purged_after: AtomicU64,
}

/// Where an entry stands at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EntryAge {
    Fresh,
    Stale,
    /// Past its stale window: never served, whatever moka still holds.
    Expired,
}

impl Entry {
    pub(super) fn new(
        key: &CacheKey,
        value: Arc<dyn Any + Send + Sync>,
        meta: EntryMeta,
        stored_at: Instant,
    ) -> Entry {
        let charge = charge(key, &meta);
        Entry {
            value,
            stored_at,
            fresh_for: nanos(meta.fresh_for),
            stale_for: nanos(meta.stale_for),
            charge,
            tags: meta.tags.into_boxed_slice(),
            purged_after: AtomicU64::new(NOT_PURGED),
        }
    }

    pub(super) fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored_at)
    }

    fn fresh_for(&self) -> Duration {
        Duration::from_nanos(self.fresh_for)
    }

    fn stale_for(&self) -> Duration {
        Duration::from_nanos(self.stale_for)
    }

    /// How long moka keeps the entry: its whole servable life.
    fn lifetime(&self) -> Duration {
        self.fresh_for().saturating_add(self.stale_for())
    }

    pub(super) fn freshness(&self, now: Instant) -> EntryAge {
        let age = self.age(now);
        let purged_after = self.purged_after.load(Ordering::Acquire);
        let (fresh_until, stale_until) = if purged_after == NOT_PURGED {
            (self.fresh_for(), self.lifetime())
        } else {
            // A soft purge ends freshness at once and starts the stale window then, but never
            // extends the window the entry already had.
            let purged = Duration::from_nanos(purged_after);
            let stale_until = purged.saturating_add(self.stale_for()).min(self.lifetime());
            (self.fresh_for().min(purged), stale_until)
        };
        if age < fresh_until {
            EntryAge::Fresh
        } else if age < stale_until {
            EntryAge::Stale
        } else {
            EntryAge::Expired
        }
    }

    /// Marks the entry stale from `now`. Returns whether it was fresh until now (a second soft
    /// purge, or one of an already stale entry, changes nothing and is not counted).
    pub(super) fn soft_purge(&self, now: Instant) -> bool {
        if self.freshness(now) != EntryAge::Fresh {
            return false;
        }
        let at = u64::try_from(self.age(now).as_nanos()).unwrap_or(NOT_PURGED - 1);
        // Only the first purge counts; a racing one that lost keeps the earlier instant.
        self.purged_after
            .compare_exchange(NOT_PURGED, at, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub(super) fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| &**t == tag)
    }
}

/// `duration` in nanoseconds, saturating at `u64::MAX` (584 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The entry's charge against the budget: value + key + tags + [`ENTRY_OVERHEAD`], saturating at
/// `u32::MAX` (moka's weight type; such an entry is larger than any sane budget and is refused).
pub(super) fn charge(key: &CacheKey, meta: &EntryMeta) -> u32 {
    let tags = meta.tags.iter().fold(0u32, |sum, tag| {
        let len = u32::try_from(tag.len()).unwrap_or(u32::MAX);
        sum.saturating_add(len).saturating_add(TAG_SLOT)
    });
    let key_len = u32::try_from(key.key.len()).unwrap_or(u32::MAX);
    meta.weight
        .saturating_add(key_len)
        .saturating_add(tags)
        .saturating_add(ENTRY_OVERHEAD)
}

/// Per-entry expiry for moka: an entry lives for its fresh plus stale windows from its latest
/// write. Moka measures this on its own clock; `Entry::freshness` (tokio's clock) is what
/// decides what is served, moka's expiry only frees the memory.
pub(super) struct EntryLifetime;

impl Expiry<CacheKey, Arc<Entry>> for EntryLifetime {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        entry: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.lifetime())
    }

    // The default keeps the replaced value's deadline; a new value brings its own.
    fn expire_after_update(
        &self,
        _key: &CacheKey,
        entry: &Arc<Entry>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.lifetime())
    }
}
