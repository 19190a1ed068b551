//! Open fills: coalescing for values that are useful before they are complete. `get_or_fill`
//! hands waiters the finished value; an HTTP object must instead reach every waiting client
//! while its body is still arriving. Here the leader registers a shared handle (the object as
//! it grows) that later callers for the same key join, and the leader's ticket retires it.
//!
//! The registry is a `std::sync::Mutex<HashMap>` held only to look up, insert or remove one
//! entry, as the `get_or_fill` flights are.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::stats::Stats;
use super::{Cache, CacheKey};

type Handle = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
struct Registry {
    open: HashMap<CacheKey, (u64, Handle)>,
    /// Tells one open fill from a later one of the same key when retiring.
    next_id: u64,
}

/// Open fills by key.
#[derive(Clone, Default)]
pub(super) struct OpenFills {
    registry: Arc<Mutex<Registry>>,
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // Nothing panics while the lock is held (plain HashMap calls), so a poisoned map is intact.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What `join_fill` found.
pub enum Joined<H> {
    /// No fill of the key was open: the caller runs this one and ends it with the ticket.
    Lead(Arc<H>, FillTicket),
    /// Another caller's fill is open: follow its handle.
    Follow(Arc<H>),
}

/// The leader's obligation to retire its open fill; dropping it does so too, so a fill that
/// panics or is cancelled never leaves its key blocked.
pub struct FillTicket {
    registry: Arc<Mutex<Registry>>,
    key: CacheKey,
    id: u64,
    stats: Arc<Stats>,
}

impl FillTicket {
    /// The fill is over (its value stored, or not to be shared): later callers start their own.
    pub fn retire(self) {}

    /// The fill failed: counted as a fill error, and retired.
    pub fn failed(self) {
        self.stats.fill_error(self.key.namespace);
    }
}

impl Drop for FillTicket {
    fn drop(&mut self) {
        let mut registry = lock(&self.registry);
        if registry
            .open
            .get(&self.key)
            .is_some_and(|(id, _)| *id == self.id)
        {
            registry.open.remove(&self.key);
        }
    }
}

impl Cache {
    /// Joins the open fill of `key`, or opens one with the handle `start` makes. A leader's
    /// fill is counted; answers are not (the caller counts each request once with
    /// [`Cache::count`], a follower as coalesced). A handle of another type under the same
    /// key (a caller bug) is replaced.
    pub fn join_fill<H: Send + Sync + 'static>(
        &self,
        key: &CacheKey,
        start: impl FnOnce() -> H,
    ) -> Joined<H> {
        let stats = &self.inner.stats;
        let mut registry = lock(&self.inner.open_fills.registry);
        if let Some((_, handle)) = registry.open.get(key)
            && let Ok(handle) = Arc::clone(handle).downcast::<H>()
        {
            return Joined::Follow(handle);
        }
        registry.next_id += 1;
        let id = registry.next_id;
        let handle = Arc::new(start());
        let erased: Handle = Arc::clone(&handle) as Handle;
        registry.open.insert(key.clone(), (id, erased));
        stats.fill(key.namespace);
        Joined::Lead(
            handle,
            FillTicket {
                registry: Arc::clone(&self.inner.open_fills.registry),
                key: key.clone(),
                id,
                stats: Arc::clone(stats),
            },
        )
    }

    /// Open fills right now (tests and metrics).
    pub fn open_fills(&self) -> usize {
        lock(&self.inner.open_fills.registry).open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Namespace;

    #[test]
    fn followers_share_the_leaders_handle_until_it_retires() {
        let cache = Cache::new(1 << 20);
        let key = CacheKey::new(Namespace::Http, "example.test/a");
        let Joined::Lead(lead, ticket) = cache.join_fill(&key, || 7u32) else {
            panic!("first caller leads");
        };
        let Joined::Follow(follow) = cache.join_fill(&key, || 8u32) else {
            panic!("second caller follows");
        };
        assert!(Arc::ptr_eq(&lead, &follow));
        assert_eq!(cache.open_fills(), 1);
        ticket.retire();
        assert_eq!(cache.open_fills(), 0);
        assert!(matches!(cache.join_fill(&key, || 9u32), Joined::Lead(h, _) if *h == 9));
        let stats = cache.stats();
        let http = stats.namespace(Namespace::Http);
        // Followers are counted by the caller, once per request (`Cache::count`).
        assert_eq!((http.fills, http.coalesced), (2, 0));
    }

    #[test]
    fn an_old_ticket_does_not_retire_a_newer_fill() {
        let cache = Cache::new(1 << 20);
        let key = CacheKey::new(Namespace::Http, "example.test/b");
        let Joined::Lead(_, first) = cache.join_fill(&key, || 1u8) else {
            panic!("leads");
        };
        // Replaced by a handle of another type (a caller bug), then the old ticket drops.
        let Joined::Lead(_, second) = cache.join_fill(&key, || "other") else {
            panic!("another type leads anew");
        };
        drop(first);
        assert_eq!(cache.open_fills(), 1);
        second.failed();
        assert_eq!(cache.open_fills(), 0);
        assert_eq!(cache.stats().namespace(Namespace::Http).fill_errors, 1);
    }
}
