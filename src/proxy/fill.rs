//! Cache fills: one origin fetch per object variant however many clients miss it at once
//! (an open fill of the cache core), its body streamed to them as it arrives and stored when
//! complete; revalidation of stored copies; background refreshes; stale answers when the
//! origin fails.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};

use super::flight::{BodyFill, Disposition, Head, Phase, Reader};
use super::forwarded::Client;
use super::keys::variant_key;
use super::outcome::ProxyOutcome;
use super::policy::{self, CacheControl, Reuse, StoredMeta};
use super::upstream::FetchError;
use super::{Proxy, storable_reason};
use crate::cache::{CacheKey, CacheOutcome, FillTicket, Joined};
use crate::http_server::Body;
use crate::tasks::Kind;

mod run;

/// A cacheable request (GET or HEAD), as the cache phase needs it.
#[derive(Clone)]
pub(super) struct Ask {
    pub host: String,
    pub path: String,
    /// Hop-by-hop fields removed.
    pub headers: HeaderMap,
    /// The URL's primary key.
    pub key: CacheKey,
    pub request_cc: CacheControl,
    /// Sent by another node of the cluster: fetched from the origin, never from a node.
    pub from_sibling: bool,
    /// Who asked (None for the node's own requests: preloads), for the forwarding fields.
    pub client: Option<Client>,
}

/// What a client learns from a fill it joined.
enum Joining {
    Answer(Response<Body>),
    /// The fill's response is not for this request (another variant, or not shareable):
    /// join the fill of this key, or run a fill of its own (None).
    Retry(Option<CacheKey>),
}

impl Proxy {
    /// A miss, or a stored copy this request may not have as it is: join the open fill of this
    /// request's variant, or open one; a fill that cannot serve this request leads to one that
    /// can (at most three, the last one this request's own). The request counts in the
    /// cache's statistics here: a miss when it opened the fill, coalesced when it joined one.
    pub(super) async fn fetch(self: &Arc<Self>, ask: &Ask) -> Response<Body> {
        let mut target = Some(self.variant_slot(ask).await);
        let mut answer = None;
        for attempt in 0..3 {
            let (flight, reader, leader) = match target.take().filter(|_| attempt < 2) {
                Some(key) => match self.cache.join_fill(&key, BodyFill::new) {
                    Joined::Lead(flight, ticket) => {
                        // A fill that ended just before this one opened may have stored it.
                        if attempt == 0
                            && let Some((response, outcome)) = self.reuse_stored(ask).await
                        {
                            self.count(outcome.counted_as());
                            return response;
                        }
                        let reader = flight.reader();
                        self.spawn_fill(Arc::clone(&flight), Some(ticket), ask);
                        (flight, reader, true)
                    }
                    Joined::Follow(flight) => {
                        let reader = flight.reader();
                        (flight, reader, false)
                    }
                },
                None => {
                    let flight = Arc::new(BodyFill::new());
                    let reader = flight.reader();
                    self.spawn_fill(Arc::clone(&flight), None, ask);
                    (flight, reader, true)
                }
            };
            if attempt == 0 {
                self.count(match leader {
                    true => CacheOutcome::Miss,
                    false => CacheOutcome::Coalesced,
                });
            }
            match self.join(&flight, reader, leader, ask).await {
                Joining::Answer(response) => {
                    answer = Some(response);
                    break;
                }
                Joining::Retry(key) => target = key,
            }
        }
        answer.unwrap_or_else(|| {
            self.error(
                StatusCode::BAD_GATEWAY,
                "no origin response suits this request",
            )
        })
    }

    /// Where this request's variant is stored, or would be: the key of its stored copy; else,
    /// when the URL's key holds another variant, the key beside it for this request's `Vary`
    /// values; else the URL's key.
    async fn variant_slot(&self, ask: &Ask) -> CacheKey {
        // One lookup, of the URL's key: the key beside it is this request's variant whether
        // or not a copy of it is stored there.
        let Some(first) = self.stored_at(&ask.key).await else {
            return ask.key.clone();
        };
        if first.selected_by(&ask.headers) {
            return ask.key.clone();
        }
        first
            .vary_key_for(&ask.headers)
            .filter(|v| !v.is_empty())
            .map_or_else(|| ask.key.clone(), |v| variant_key(&ask.key, &v))
    }

    /// The answer for one client of a fill, once its head is in.
    async fn join(&self, flight: &BodyFill, reader: Reader, leader: bool, ask: &Ask) -> Joining {
        let collapsed = !leader;
        match flight.head().await {
            Phase::Pending => Joining::Retry(None),
            Phase::Failed(error) => Joining::Answer(self.after_failure(ask, &error).await),
            Phase::Complete(stored) => {
                let headers = stored.headers();
                let age = stored
                    .meta_with(&headers, SystemTime::now(), self.heuristic_max)
                    .age;
                let outcome = ProxyOutcome::Revalidated { collapsed };
                Joining::Answer(self.serve_get(&stored, headers, age, &ask.headers, outcome))
            }
            Phase::Streaming(head) => {
                if !leader {
                    if matches!(head.disposition, Disposition::Pass(_)) || reader.is_behind() {
                        return Joining::Retry(None);
                    }
                    let selected = head
                        .vary_key
                        .as_ref()
                        .is_some_and(|v| policy::vary_matches(v, &head.headers, &ask.headers));
                    if !selected {
                        let own = policy::vary_key(&head.headers, &ask.headers)
                            .map(|v| variant_key(&ask.key, &v));
                        return Joining::Retry(own);
                    }
                }
                Joining::Answer(self.stream(&head, reader, ask, collapsed).await)
            }
        }
    }

    /// A response from a fill's head with the body streaming as it arrives. Conditionals
    /// are answered from the head; a Range waits for the stored copy (served whole when the
    /// object is not being stored, as RFC 9110 14.2 allows).
    async fn stream(
        &self,
        head: &Head,
        mut reader: Reader,
        ask: &Ask,
        collapsed: bool,
    ) -> Response<Body> {
        let outcome = match head.disposition {
            Disposition::Store => ProxyOutcome::Stored { collapsed },
            Disposition::TooLarge => ProxyOutcome::TooLarge { collapsed },
            Disposition::Pass(reason) => ProxyOutcome::NotStorable(reason),
        };
        let meta = StoredMeta::new(
            &head.headers,
            head.status,
            head.request_time,
            head.response_time,
            SystemTime::now(),
            self.heuristic_max,
        );
        let whole = head.status == StatusCode::OK && head.disposition == Disposition::Store;
        // The leader's own fields (its cookie) go to it alone.
        let own = |mut headers: HeaderMap| {
            if !collapsed {
                for (name, value) in &head.own_fields {
                    headers.append(name, value.clone());
                }
            }
            headers
        };
        if whole && ask.headers.contains_key(header::RANGE) {
            return match reader.finished().await {
                Some(stored) => {
                    let headers = own(stored.headers());
                    self.serve_get(&stored, headers, meta.age, &ask.headers, outcome)
                }
                None => self.error(StatusCode::BAD_GATEWAY, "the origin's body failed"),
            };
        }
        let mut headers = own(head.headers.clone());
        if head.status == StatusCode::OK && policy::not_modified(&ask.headers, &head.headers) {
            headers.remove(header::CONTENT_LENGTH);
            return self.respond(
                StatusCode::NOT_MODIFIED,
                headers,
                Bytes::new(),
                Some(meta.age),
                outcome,
            );
        }
        if whole {
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        }
        self.respond_with(
            head.status,
            headers,
            reader.into_body(),
            Some(meta.age),
            outcome,
        )
    }

    /// The origin failed (or answered 5xx): a stored copy where RFC 5861 stale-if-error or the
    /// operator's grace allow it, else the failure.
    async fn after_failure(&self, ask: &Ask, error: &FetchError) -> Response<Body> {
        if let Some((stored, _)) = self.stored_variant(&ask.key, &ask.headers).await
            && storable_reason(&stored).is_none()
        {
            let headers = stored.headers();
            let meta = stored.meta_with(&headers, SystemTime::now(), self.heuristic_max);
            let outcome = if policy::reuse(&meta, &ask.request_cc) == Reuse::Fresh {
                Some(ProxyOutcome::Hit)
            } else if policy::serve_stale_on_error(&meta, &ask.request_cc)
                || self.within_grace(&meta)
            {
                Some(ProxyOutcome::StaleIfError)
            } else {
                None
            };
            if let Some(outcome) = outcome {
                return self.serve_get(&stored, headers, meta.age, &ask.headers, outcome);
            }
        }
        self.upstream_error(error)
    }

    /// RFC 5861 stale-while-revalidate: one refresh per variant runs in the background (or
    /// none, when a fill of it is already open); the next request gets its result.
    pub(super) fn refresh_in_background(self: &Arc<Self>, ask: &Ask, slot: &CacheKey) {
        if let Joined::Lead(flight, ticket) = self.cache.join_fill(slot, BodyFill::new) {
            self.spawn_fill(flight, Some(ticket), ask);
        }
    }

    /// Runs the fill in a task of its own (`tasks::Kind::Fill`); at that bound the fill
    /// fails at once as overloaded: its clients get 503 with `Retry-After` (or a stale copy
    /// where one may be served), and a background refresh does not happen.
    fn spawn_fill(self: &Arc<Self>, flight: Arc<BodyFill>, ticket: Option<FillTicket>, ask: &Ask) {
        let proxy = Arc::clone(self);
        let ask = ask.clone();
        let failing = Arc::clone(&flight);
        let task = async move { proxy.run_fill(&flight, ticket, &ask).await };
        if let Err(refused) = self.cache.tasks().spawn(Kind::Fill, task) {
            // The task was never started: its ticket is in it, and dropping it retires the
            // fill, after the flight has its error.
            let error = FetchError::Overloaded {
                what: "cache fills",
                retry_after: 1,
            };
            failing.fail(error);
            drop(refused);
        }
    }
}
