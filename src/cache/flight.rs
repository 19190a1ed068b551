//! Coalescing of concurrent misses: one fill per key runs in its own task, every other caller
//! that misses meanwhile waits for that fill's outcome instead of starting another.
//!
//! The registry of fills in flight is a `std::sync::Mutex<HashMap>` held only to look up, insert
//! or remove one entry, never across an await (as mini-redis' `Db`): waiters clone a `Shared`
//! future out of it and await that.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;

use crate::tasks::Kind;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Cache, CacheKey, CacheOutcome, EntryMeta, Filled, Inner};

/// What waiters learn when a fill ends, with the value and error erased to the types every
/// namespace shares; each waiter downcasts back to its own `T` or `E`.
#[derive(Clone)]
pub(super) enum FlightOutcome {
    Filled {
        value: Arc<dyn Any + Send + Sync>,
        stored_at: Instant,
    },
    Failed(Arc<dyn Any + Send + Sync>),
    /// The fill panicked or its task was cancelled: waiters retry with their own fill.
    Aborted,
}

type Waiting = Shared<BoxFuture<'static, FlightOutcome>>;

struct Flight {
    /// Tells this flight apart from a later one for the same key when retiring.
    id: u64,
    /// Cloned by each waiter; resolves once the fill ends, however it ends.
    outcome: Waiting,
}

#[derive(Default)]
struct FlightMap {
    flights: HashMap<CacheKey, Flight>,
    /// Source of `Flight::id`; under the same lock as the map it labels.
    next_id: u64,
}

/// Fills in flight, by key.
#[derive(Clone, Default)]
pub(super) struct Flights {
    /// Shared with each `Ticket`, which retires its flight from inside the fill task.
    map: Arc<Mutex<FlightMap>>,
}

pub(super) enum Role {
    /// No fill was in flight: this caller runs one and must finish the ticket.
    Lead(Ticket),
    /// Another caller's fill is in flight: await its outcome.
    Wait(Waiting),
}

fn lock(map: &Mutex<FlightMap>) -> MutexGuard<'_, FlightMap> {
    // Nothing panics while the lock is held (plain HashMap calls), so a poisoned map is intact.
    map.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Flights {
    pub(super) fn join_or_lead(&self, key: &CacheKey) -> Role {
        let mut map = lock(&self.map);
        if let Some(flight) = map.flights.get(key) {
            return Role::Wait(flight.outcome.clone());
        }
        let (sender, receiver) = oneshot::channel();
        // A dropped sender (fill panicked, task cancelled) reads as Aborted.
        let outcome = async move { receiver.await.unwrap_or(FlightOutcome::Aborted) }
            .boxed()
            .shared();
        map.next_id += 1;
        let id = map.next_id;
        map.flights.insert(key.clone(), Flight { id, outcome });
        Role::Lead(Ticket {
            map: Arc::clone(&self.map),
            key: key.clone(),
            id,
            sender: Some(sender),
        })
    }

    #[cfg(test)]
    pub(super) fn in_flight(&self) -> usize {
        lock(&self.map).flights.len()
    }
}

/// The leader's obligation to end its flight. Dropping it unfinished (a panic, a cancelled task)
/// still retires the flight and wakes the waiters with `Aborted`.
pub(super) struct Ticket {
    /// The registry to retire the flight from.
    map: Arc<Mutex<FlightMap>>,
    /// The flight's key in that registry.
    key: CacheKey,
    /// Which flight for `key` this ticket owns.
    id: u64,
    /// Taken by `finish`; `None` once the waiters have been told.
    sender: Option<oneshot::Sender<FlightOutcome>>,
}

impl Ticket {
    /// Retires the flight and then tells its waiters, in that order: a waiter that retries
    /// after `Aborted` must not find the finished flight still registered.
    pub(super) fn finish(mut self, outcome: FlightOutcome) {
        self.retire();
        if let Some(sender) = self.sender.take() {
            // Nobody waiting is fine.
            let _ = sender.send(outcome);
        }
    }

    fn retire(&self) {
        let mut map = lock(&self.map);
        if map.flights.get(&self.key).is_some_and(|f| f.id == self.id) {
            map.flights.remove(&self.key);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.sender.is_some() {
            self.retire();
        }
        // `sender` drops after this body, so waiters wake only once the flight is retired.
    }
}

/// What the fill task hands back to the leader: the typed result, or a panic to re-raise.
type FillResult<T, E> = Result<Result<(Arc<T>, Instant), Arc<E>>, Box<dyn Any + Send>>;

impl Cache {
    /// Fresh hit -> returned. Otherwise one fill runs per key however many callers miss at
    /// once; the others wait and get the same `Arc` (or the same error). A successful fill is
    /// stored with the meta it returns.
    ///
    /// On fill error: with `stale_on_error`, an entry still within its stale window is returned
    /// with outcome `Stale`; otherwise the error. Errors are never cached here (return `Ok` with
    /// a short meta for negative caching). A stale entry does not short-circuit: it triggers a
    /// fill, and is served only if that fill fails (RFC 8767).
    ///
    /// The fill runs in a spawned task, so callers that give up do not cancel it for the
    /// others. If it panics, the panic resumes in the caller whose closure it was, and waiters
    /// retry with their own closure (at most one fill per caller). Must be called within a
    /// tokio runtime.
    pub async fn get_or_fill<T, E, F, Fut>(
        &self,
        key: CacheKey,
        stale_on_error: bool,
        fill: F,
    ) -> Result<Filled<T>, Arc<E>>
    where
        T: Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Arc<T>, EntryMeta), E>> + Send + 'static,
    {
        let ticket = loop {
            let now = self.inner.clock.now();
            if let Some((value, age)) = self.inner.fresh::<T>(&key, now).await {
                return Ok(self.answer(&key, CacheOutcome::Hit, value, age));
            }
            let waiting = match self.inner.flights.join_or_lead(&key) {
                Role::Lead(ticket) => break ticket,
                Role::Wait(waiting) => waiting,
            };
            match waiting.await {
                FlightOutcome::Filled { value, stored_at } => {
                    // Another type under the same key is a caller bug; fill our own instead.
                    if let Ok(value) = value.downcast::<T>() {
                        let age = self.inner.clock.now().saturating_duration_since(stored_at);
                        return Ok(self.answer(&key, CacheOutcome::Coalesced, value, age));
                    }
                }
                FlightOutcome::Failed(error) => {
                    if let Ok(error) = error.downcast::<E>() {
                        let failed = Failed {
                            error,
                            counts_as: CacheOutcome::Coalesced,
                        };
                        return self.after_failure(&key, stale_on_error, failed).await;
                    }
                }
                FlightOutcome::Aborted => {}
            }
        };

        match self.lead(&key, ticket, fill()).await {
            Ok(Ok(Ok((value, stored_at)))) => {
                let age = self.inner.clock.now().saturating_duration_since(stored_at);
                Ok(self.answer(&key, CacheOutcome::Miss, value, age))
            }
            Ok(Ok(Err(error))) => {
                let failed = Failed {
                    error,
                    counts_as: CacheOutcome::Miss,
                };
                self.after_failure(&key, stale_on_error, failed).await
            }
            Ok(Err(panic)) => {
                self.inner.stats.answered(key.namespace, CacheOutcome::Miss);
                std::panic::resume_unwind(panic)
            }
            // We never abort fill tasks; only a runtime shutting down cancels them, and then
            // there is neither a value nor an `E` to return.
            Err(join_error) => panic!("cache fill task did not complete: {join_error}"),
        }
    }

    /// Runs the fill this caller leads in a task of its own (`tasks::Kind::Fill`), and its
    /// result once it ends; never returns when the task was cancelled at shutdown.
    async fn lead<T, E, Fut>(
        &self,
        key: &CacheKey,
        ticket: Ticket,
        fill: Fut,
    ) -> Result<FillResult<T, E>, tokio::task::JoinError>
    where
        T: Send + Sync + 'static,
        E: Send + Sync + 'static,
        Fut: Future<Output = Result<(Arc<T>, EntryMeta), E>> + Send + 'static,
    {
        self.inner.stats.fill(key.namespace);
        let task = fill_task(Arc::clone(&self.inner), key.clone(), ticket, fill);
        let done = match self.inner.tasks.spawn(Kind::Fill, task) {
            Ok(handle) => handle.await.map(|finished| {
                // None: cancelled at shutdown, past the grace period; the node is stopping and
                // this caller goes with it, so there is nothing left to answer.
                finished.ok_or(())
            }),
            // At the bound: filled in this caller's own task instead (bounded by the callers;
            // if this caller goes away, the fill's waiters fill for themselves).
            Err(refused) => Ok(Ok(refused.task.await)),
        };
        match done {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(())) => std::future::pending().await,
            Err(join_error) => Err(join_error),
        }
    }

    /// Counts the call under its outcome (each call counts exactly once) and builds the answer.
    fn answer<T>(
        &self,
        key: &CacheKey,
        outcome: CacheOutcome,
        value: Arc<T>,
        age: Duration,
    ) -> Filled<T> {
        self.inner.stats.answered(key.namespace, outcome);
        Filled {
            value,
            age,
            outcome,
        }
    }

    async fn after_failure<T, E>(
        &self,
        key: &CacheKey,
        stale_on_error: bool,
        failed: Failed<E>,
    ) -> Result<Filled<T>, Arc<E>>
    where
        T: Send + Sync + 'static,
    {
        if stale_on_error {
            let now = self.inner.clock.now();
            match self.inner.servable::<T>(key, now).await {
                // Someone stored a fresh value while our fill was failing.
                Some((value, age, true)) => {
                    return Ok(self.answer(key, CacheOutcome::Hit, value, age));
                }
                Some((value, age, false)) => {
                    return Ok(self.answer(key, CacheOutcome::Stale, value, age));
                }
                None => {}
            }
        }
        self.inner.stats.answered(key.namespace, failed.counts_as);
        Err(failed.error)
    }
}

/// A fill's error as one caller sees it: the shared error, and whether this caller ran the
/// fill (`Miss`) or waited for it (`Coalesced`), which is what it counts as if nothing stale
/// can be served instead.
struct Failed<E> {
    error: Arc<E>,
    counts_as: CacheOutcome,
}

/// The spawned part of a fill: run it, store a success, count, then finish the flight. Panics
/// are caught so the flight is finished (as `Aborted`) and counted before the leader re-raises.
async fn fill_task<T, E, Fut>(
    inner: Arc<Inner>,
    key: CacheKey,
    ticket: Ticket,
    fill: Fut,
) -> FillResult<T, E>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
    Fut: Future<Output = Result<(Arc<T>, EntryMeta), E>> + Send + 'static,
{
    let namespace = key.namespace;
    match AssertUnwindSafe(fill).catch_unwind().await {
        Ok(Ok((value, meta))) => {
            let erased: Arc<dyn Any + Send + Sync> = value.clone();
            // Stored before the flight retires, so a caller arriving in between finds either
            // the flight or the entry, never neither.
            let stored_at = inner.store(key, Arc::clone(&erased), meta).await;
            ticket.finish(FlightOutcome::Filled {
                value: erased,
                stored_at,
            });
            Ok(Ok((value, stored_at)))
        }
        Ok(Err(error)) => {
            inner.stats.fill_error(namespace);
            let error = Arc::new(error);
            ticket.finish(FlightOutcome::Failed(error.clone()));
            Ok(Err(error))
        }
        Err(panic) => {
            inner.stats.fill_error(namespace);
            ticket.finish(FlightOutcome::Aborted);
            Err(panic)
        }
    }
}
