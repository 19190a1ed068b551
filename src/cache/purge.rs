//! Purge by key, key prefix and tag, hard (remove) or soft (mark stale).
//!
//! Prefix and tag purges scan the whole store (moka's weakly consistent iterator): purges are
//! rare admin operations, and a scan costs nothing on the lookup path, where a tag index would
//! cost on every insert and eviction. An entry inserted during the scan may be missed; one
//! replaced during it may be removed in its new version (one extra miss, never a stale serve).

use std::sync::Arc;

use tokio::time::Instant;

use super::entry::{Entry, EntryAge};
use super::{Cache, CacheKey, Namespace, PurgeMode};

impl Cache {
    /// Purges one key. Returns 1 if it affected an entry (`Hard`: removed a fresh or stale one;
    /// `Soft`: made a fresh one stale), else 0.
    pub async fn purge_key(&self, key: &CacheKey, mode: PurgeMode) -> usize {
        let now = self.inner.clock.now();
        match mode {
            PurgeMode::Hard => {
                let removed = self.inner.store.remove(key).await;
                usize::from(removed.is_some_and(|entry| is_live(&entry, now)))
            }
            PurgeMode::Soft => {
                let found = self.inner.store.get(key).await;
                usize::from(found.is_some_and(|entry| entry.soft_purge(now)))
            }
        }
    }

    /// Purges every key of `namespace` whose bytes start with `prefix`; returns how many entries
    /// were affected (for `Soft`, how many fresh entries became stale).
    pub async fn purge_prefix(
        &self,
        namespace: Namespace,
        prefix: &[u8],
        mode: PurgeMode,
    ) -> usize {
        self.purge_matching(mode, |key, _| {
            key.namespace == namespace && key.key.starts_with(prefix)
        })
        .await
    }

    /// Purges every entry carrying `tag`, in any namespace; returns how many were affected.
    pub async fn purge_tag(&self, tag: &str, mode: PurgeMode) -> usize {
        self.purge_matching(mode, |_, entry| entry.has_tag(tag))
            .await
    }

    async fn purge_matching(
        &self,
        mode: PurgeMode,
        matches: impl Fn(&CacheKey, &Entry) -> bool,
    ) -> usize {
        let now = self.inner.clock.now();
        match mode {
            PurgeMode::Soft => self
                .inner
                .store
                .iter()
                .filter(|(key, entry)| matches(key, entry) && entry.soft_purge(now))
                .count(),
            PurgeMode::Hard => {
                // Collected first: the iterator is not held across the removals' awaits.
                let doomed: Vec<Arc<CacheKey>> = self
                    .inner
                    .store
                    .iter()
                    .filter(|(key, entry)| matches(key, entry))
                    .map(|(key, _)| key)
                    .collect();
                let mut purged = 0;
                for key in doomed {
                    if let Some(entry) = self.inner.store.remove(&*key).await {
                        purged += usize::from(is_live(&entry, now));
                    }
                }
                purged
            }
        }
    }
}

/// Whether a lookup could still have served the entry (expired ones are not counted as purged).
fn is_live(entry: &Entry, now: Instant) -> bool {
    entry.freshness(now) != EntryAge::Expired
}
