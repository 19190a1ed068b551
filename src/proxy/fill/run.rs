//! The fetch behind a fill, in its own task: open the origin (or a sibling), revalidate a
//! stored copy, stream the body to the fill's readers and store it when complete.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header;
use hyper::{HeaderMap, Method, StatusCode};

use crate::cache::{CacheKey, FillTicket, Lookup};
use crate::metrics::SourceLabels;
use crate::proxy::flight::{BodyFill, Disposition, Head, Readers};
use crate::proxy::keys::variant_key;
use crate::proxy::policy::{self};
use crate::proxy::store::{HttpObject, StoredFields};
use crate::proxy::upstream::{FetchError, Fetched, Opened};
use crate::proxy::{CLIENT_CONDITIONALS, Proxy, storable_reason};

use super::Ask;

impl Proxy {
    /// The fetch behind a fill. It runs in its own task, so clients that go away do not stop
    /// an object being stored. Clients' conditionals and Range are not forwarded (they are
    /// answered from the whole object, and other clients share the fetch); a stored copy of
    /// the variant is revalidated with its own validators instead (RFC 9111 4.3.1), and the
    /// origin's 304 refreshes it (4.3.4). Then the body streams to the clients
    /// ([`Proxy::pump`]) and is stored when complete.
    pub(super) async fn run_fill(&self, flight: &BodyFill, ticket: Option<FillTicket>, ask: &Ask) {
        let previous = self
            .stored_variant(&ask.key, &ask.headers)
            .await
            .filter(|(p, _)| storable_reason(p).is_none() && p.status == StatusCode::OK);
        let limited = ask.client.as_ref().and_then(|c| c.limit_key);
        let _place = match self.fill_limits.admit(limited).await {
            Ok(place) => place,
            Err(error) => return fail(flight, ticket, error),
        };
        let validators = previous.as_ref().map(|(p, _)| p.headers());
        let exchange = match self.open_for_fill_with(ask, validators.as_ref()).await {
            Ok(exchange) => exchange,
            Err(error) => return fail(flight, ticket, error),
        };
        let exchange = match self.revalidate(ask, previous, exchange).await {
            Revalidation::Failed(error) => return fail(flight, ticket, error),
            Revalidation::Refreshed(stored) => return flight.complete(stored),
            Revalidation::Fetched(exchange) => exchange,
        };
        self.stream_and_store(flight, ticket, ask, exchange).await;
        // `ticket` dropped in there, after the object was stored: a request arriving meanwhile
        // finds the open fill or the stored object, never neither.
    }

    /// Opens the fill's request: the client's fields without its conditionals and Range, with
    /// the stored copy's validators (`validators`: its fields) when there is one to revalidate.
    async fn open_for_fill_with(
        &self,
        ask: &Ask,
        validators: Option<&HeaderMap>,
    ) -> Result<Exchange, FetchError> {
        let mut upstream_headers = ask.headers.clone();
        for name in CLIENT_CONDITIONALS {
            upstream_headers.remove(name);
        }
        if let Some(previous) = validators {
            upstream_headers.extend(policy::validation_headers(previous));
        }
        self.add_hop(&mut upstream_headers, ask.client.as_ref(), &ask.host);
        let request_time = SystemTime::now();
        let opened = self.open_for_fill(ask, upstream_headers).await;
        let response_time = SystemTime::now();
        let mut opened = opened?;
        self.targets.settle(opened.response.headers_mut());
        Ok(Exchange {
            opened,
            request_time,
            response_time,
        })
    }

    /// What the origin's answer does to a stored copy (`previous`) being revalidated.
    async fn revalidate(
        &self,
        ask: &Ask,
        previous: Option<(Arc<HttpObject>, Cow<'_, CacheKey>)>,
        exchange: Exchange,
    ) -> Revalidation {
        let Some((previous, slot)) = previous else {
            return Revalidation::Fetched(exchange);
        };
        let response = &exchange.opened.response;
        let status = response.status();
        // A 5xx is an error when a stored response might be served instead (stale-if-error,
        // RFC 5861 4); with nothing stored it is the origin's answer, stored like any other
        // where its own freshness allows.
        if matches!(status.as_u16(), 500 | 502 | 503 | 504) {
            let max = self.upstream.max_body();
            return Revalidation::Failed(match exchange.opened.read_whole(max).await {
                Ok(fetched) => FetchError::ServerError(Box::new(fetched)),
                Err(error) => error,
            });
        }
        if status != StatusCode::NOT_MODIFIED
            || !policy::validated_by(&previous.headers(), response.headers())
        {
            return Revalidation::Fetched(exchange);
        }
        let mut merged = previous.headers();
        policy::merge_304(&mut merged, response.headers());
        let refreshed = Fetched {
            status: previous.status,
            headers: merged,
            body: previous.body.clone(),
        };
        let (stored, meta) = self.to_entry(
            &ask.host,
            &ask.headers,
            refreshed,
            exchange.request_time,
            exchange.response_time,
        );
        if storable_reason(&stored).is_none() {
            self.cache
                .insert(slot.into_owned(), Arc::clone(&stored), meta)
                .await;
        }
        Revalidation::Refreshed(stored)
    }

    /// Starts the fill's body: its head to the clients, what becomes of it, and the body
    /// pumped to them; the object stored when it is complete and kept.
    async fn stream_and_store(
        &self,
        flight: &BodyFill,
        mut ticket: Option<FillTicket>,
        ask: &Ask,
        exchange: Exchange,
    ) {
        let (request_time, response_time) = (exchange.request_time, exchange.response_time);
        let (deadline, origin) = (exchange.opened.deadline, exchange.opened.origin);
        let (parts, body) = exchange.opened.response.into_parts();
        let StoredFields {
            shared: headers,
            own: own_fields,
            storable,
        } = self.stored_fields(&ask.host, &ask.headers, parts.status, parts.headers);
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let disposition = match storable {
            Err(reason) => Disposition::Pass(reason),
            Ok(()) if declared.is_some_and(|len| len > self.upstream.max_body() as u64) => {
                Disposition::TooLarge
            }
            Ok(()) => Disposition::Store,
        };
        let head = Arc::new(Head {
            status: parts.status,
            vary_key: policy::vary_key(&headers, &ask.headers),
            headers,
            own_fields,
            disposition,
            request_time,
            response_time,
        });
        self.slice_if_too_large(ask, &head, declared).await;
        flight.start_body(Arc::clone(&head));
        let keeping = disposition == Disposition::Store;
        if !keeping {
            // Nothing will be stored: later clients fetch for themselves.
            drop(ticket.take());
        }
        let body = OriginBody {
            body,
            deadline,
            origin,
            declared,
        };
        match self.pump(flight, &mut ticket, body, keeping).await {
            Ok(kept) => {
                if kept && let Some(body) = flight.whole_body() {
                    self.store_fill(flight, ask, &head, body).await;
                }
                flight.end(Ok(()));
            }
            Err(reason) => {
                tracing::debug!(%reason, host = %ask.host, path = %ask.path, "fill ended early; nothing stored");
                flight.end(Err(reason));
                if let Some(ticket) = ticket {
                    ticket.failed();
                }
            }
        }
    }

    /// A response too large to store whole, offered in ranges: kept in slices from now on.
    async fn slice_if_too_large(&self, ask: &Ask, head: &Head, declared: Option<u64>) {
        let ranges = head
            .headers
            .get(header::ACCEPT_RANGES)
            .is_some_and(|v| v == "bytes");
        if let (Disposition::TooLarge, Some(length), true) = (head.disposition, declared, ranges)
            && self.slice_size > 0
            && head.status == StatusCode::OK
            && !crate::proxy::slice::varies(&head.headers)
        {
            let like = HttpObject::new(
                None,
                head.status,
                &head.headers,
                Bytes::new(),
                head.request_time,
                head.response_time,
                &ask.headers,
            );
            self.mark_sliced(&ask.key, length, &like).await;
        }
    }

    /// Moves the origin's body into the fill as its clients read it; Ok(whether it is still
    /// kept whole, to be stored) when it ended complete. Keeping (`keeping`: the object is to
    /// be stored) stops, and `ticket` goes, when the body outgrows `max_object_size` or
    /// `proxy.max_fill_bytes`.
    async fn pump(
        &self,
        flight: &BodyFill,
        ticket: &mut Option<FillTicket>,
        mut origin: OriginBody,
        mut keeping: bool,
    ) -> Result<bool, String> {
        let max = self.upstream.max_body() as u64;
        // Bytes of the body counted against `proxy.max_fill_bytes` while it is kept whole.
        let mut held = None;
        loop {
            match flight.wait_for_readers(self.slow_reader).await {
                Readers::Gone => return Err("no client is reading".to_string()),
                Readers::Go { cut } => (0..cut).for_each(|_| self.fill_limits.hit("slow_reader")),
            }
            if keeping && flight.abandoned() && self.not_worth_finishing(flight, origin.declared) {
                self.fill_limits.hit("abandoned");
                return Err("every client left before the object was complete".to_string());
            }
            let Some(data) = origin.next(keeping, self.upstream.read_timeout()).await? else {
                return Ok(keeping);
            };
            let over = flight.received() + data.len() as u64 > max;
            if keeping && (over || !self.fill_limits.hold(&mut held, data.len() as u64)) {
                keeping = false;
                held = None;
                flight.stop_keeping();
                drop(ticket.take());
            }
            flight.push(data);
        }
    }

    /// Whether a fill whose clients all left has more than `proxy.abandon_fill_bytes` to go.
    fn not_worth_finishing(&self, flight: &BodyFill, declared: Option<u64>) -> bool {
        let fetched = flight.received();
        let left = declared.map_or(u64::MAX, |len| len.saturating_sub(fetched));
        left > self.abandon_bytes || (declared.is_none() && fetched > self.abandon_bytes)
    }

    /// Stores a fill's complete `body` and hands the stored copy to its clients.
    async fn store_fill(&self, flight: &BodyFill, ask: &Ask, head: &Head, body: Bytes) {
        let fetched = Fetched {
            status: head.status,
            headers: head.headers.clone(),
            body,
        };
        let (stored, meta) = self.to_entry(
            &ask.host,
            &ask.headers,
            fetched,
            head.request_time,
            head.response_time,
        );
        let slot = self.store_slot(ask, &stored).await;
        self.cache.insert(slot, Arc::clone(&stored), meta).await;
        flight.stored(stored);
    }

    /// The response for a fill: from the key's owner when another node of the cluster owns it
    /// (and this request did not come from a node), else, or when the owner fails or is slow
    /// (`cluster.sibling_timeout_ms`), from the origin.
    async fn open_for_fill(&self, ask: &Ask, headers: HeaderMap) -> Result<Opened, FetchError> {
        // A request with a client's credentials goes to the origin, never to another node.
        let owner = match ask.from_sibling || crate::proxy::sibling::carries_credentials(&headers) {
            true => None,
            false => self.cluster.owner(&ask.key.key),
        };
        if let Some(owner) = owner {
            let timeout = self.cluster.sibling_timeout();
            let sibling = self
                .ask_node(&owner, &ask.host, &ask.path, headers.clone(), timeout)
                .await;
            match sibling {
                Ok(opened) if !opened.response.status().is_server_error() => {
                    self.count_fetch("sibling");
                    return Ok(opened);
                }
                Ok(opened) => {
                    tracing::debug!(owner = %owner.id, status = %opened.response.status(), "sibling failed; asking the origin");
                }
                Err(error) => {
                    tracing::debug!(owner = %owner.id, %error, "sibling failed; asking the origin");
                }
            }
            self.count_fetch("sibling-failed");
        }
        self.count_fetch("origin");
        self.upstream
            .open(&ask.host, &Method::GET, &ask.path, &headers, Bytes::new())
            .await
    }

    pub(in crate::proxy) fn count_fetch(&self, source: &'static str) {
        let labels = SourceLabels { source };
        self.metrics.fetches.get_or_create(&labels).inc();
    }

    /// Where a complete object goes: under the URL's key, unless that holds another variant
    /// (then beside it, under this variant's key).
    async fn store_slot(&self, ask: &Ask, stored: &HttpObject) -> CacheKey {
        let Some(vary) = stored.vary_key.as_ref().filter(|v| !v.is_empty()) else {
            return ask.key.clone();
        };
        match self.cache.peek::<HttpObject>(&ask.key).await {
            Lookup::Fresh { value, .. } | Lookup::Stale { value, .. }
                if value.vary_key.as_ref() != Some(vary) =>
            {
                variant_key(&ask.key, vary)
            }
            _ => ask.key.clone(),
        }
    }
}

/// The origin's answer to a fill's request, and when it was asked and answered.
struct Exchange {
    opened: Opened,
    request_time: SystemTime,
    response_time: SystemTime,
}

/// What the origin's answer did to the stored copy a fill revalidates.
enum Revalidation {
    /// A 5xx (or its body failed): an error, so that the stored copy may be served instead.
    Failed(FetchError),
    /// A 304 that validated it: the stored copy, refreshed.
    Refreshed(Arc<HttpObject>),
    /// A new response (or nothing was revalidated): its body is the fill's.
    Fetched(Exchange),
}

/// The origin's body of a fill, read frame by frame.
struct OriginBody {
    body: hyper::body::Incoming,
    /// When a body being stored must be complete (the origin's total timeout).
    deadline: tokio::time::Instant,
    /// The origin, for errors.
    origin: String,
    /// Its `Content-Length`, when it gave one.
    declared: Option<u64>,
}

impl OriginBody {
    /// The next bytes, None at the end. A body being stored (`keeping`) must arrive within the
    /// total timeout; one streamed through may take as long as it keeps coming (`read_timeout`
    /// between frames).
    async fn next(
        &mut self,
        keeping: bool,
        read_timeout: std::time::Duration,
    ) -> Result<Option<Bytes>, String> {
        loop {
            let frame = if keeping {
                tokio::time::timeout_at(self.deadline, self.body.frame()).await
            } else {
                tokio::time::timeout(read_timeout, self.body.frame()).await
            };
            let origin = &self.origin;
            match frame {
                Err(_) => return Err(format!("origin {origin} timed out sending the body")),
                Ok(None) => return Ok(None),
                Ok(Some(Err(error))) => return Err(format!("origin {origin}: body: {error}")),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// A fill that got no usable response: its clients learn why, and it is counted and retired.
fn fail(flight: &BodyFill, ticket: Option<FillTicket>, error: FetchError) {
    flight.fail(error);
    if let Some(ticket) = ticket {
        ticket.failed();
    }
}
