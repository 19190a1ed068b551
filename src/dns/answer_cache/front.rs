//! The answer cache's index: entries by the hash of their key in shards behind `RwLock`s,
//! each shard with a hard cap (a full shard takes no new entry; it is never cleared).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{Entry, MAX_SHARDS, MIN_PER_SHARD};

/// The sharded index of entries.
pub(crate) struct Front {
    /// Empty when the cache is off.
    pub(super) shards: Box<[RwLock<Shard>]>,
    /// Entries one shard takes at most; a full shard takes no new one.
    pub(super) per_shard: usize,
}

/// Entries by the hash of their key; the entry holds the key itself for the final comparison.
/// `Arc`: the core holds the same entry.
pub(super) type Shard = HashMap<u64, Arc<Entry>, BuildHasherDefault<PreHashed>>;

impl Front {
    /// At most `entries` entries; 0: off.
    pub(super) fn new(entries: usize) -> Front {
        let shards = (entries / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
        let shards = if entries == 0 {
            0
        } else {
            // A power of two at most `shards`, so that `entries` is never exceeded.
            1 << shards.ilog2()
        };
        Front {
            shards: (0..shards).map(|_| RwLock::default()).collect(),
            per_shard: entries.checked_div(shards).unwrap_or(0),
        }
    }

    pub(super) fn shard(&self, hash: u64) -> &RwLock<Shard> {
        // The middle bits: the map uses the low ones for buckets and the high ones for tags.
        &self.shards[(hash >> 32) as usize % self.shards.len()]
    }

    pub(super) fn write(&self, hash: u64) -> RwLockWriteGuard<'_, Shard> {
        self.shard(hash)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `entry` (replacing one under `hash`); false when the shard is full.
    pub(super) fn put(&self, hash: u64, entry: Arc<Entry>) -> bool {
        let mut shard = self.write(hash);
        if shard.len() >= self.per_shard && !shard.contains_key(&hash) {
            return false;
        }
        shard.insert(hash, entry);
        true
    }

    /// Removes the entry under `hash` if it is `entry` itself (not a successor).
    pub(super) fn remove_if_same(&self, hash: u64, entry: &Entry) {
        let mut shard = self.write(hash);
        if shard
            .get(&hash)
            .is_some_and(|held| std::ptr::eq(Arc::as_ptr(held), entry))
        {
            shard.remove(&hash);
        }
    }
}

pub(super) fn read(shard: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
    // A panic elsewhere cannot leave a map half-updated in a way that matters here.
    shard.read().unwrap_or_else(PoisonError::into_inner)
}

/// The map's hasher for keys that are already hashes.
#[derive(Default)]
pub(super) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
