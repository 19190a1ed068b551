//! Large objects in slices, as nginx's slice module keeps them: an object larger than
//! `proxy.max_object_size` is fetched from the origin in fixed-size byte ranges
//! (`proxy.slice_size`, 1 MiB by default), each slice a cache entry of its own with its own
//! coalescing, so a client seeking to 3.0 GB of a 4 GB video makes the node fetch the slices
//! around 3.0 GB, not the four gigabytes before them.
//!
//! An object is known to be sliced by a small marker under its URL's key (`SlicedObject`: its
//! length and validator), left by a fetch that found it too large to store whole (and offered
//! byte ranges), or by a Range request that missed: that one asks the origin for the slice
//! holding its first byte, and a 206 for an object over `max_object_size` starts the slicing.
//! Every slice must carry the validator of the first one the response was built from; a slice
//! with another one means the object changed, and then every slice of it is dropped and the
//! response ends with an error rather than mix two versions.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Response, StatusCode};

use super::fill::Ask;
use super::flight::stream_body;
use super::outcome::ProxyOutcome;
use super::policy::{self, ByteRange};
use super::store::HttpObject;
use super::upstream::{FetchError, Fetched, Opened};
use super::{CLIENT_CONDITIONALS, Proxy};
use crate::cache::{CacheKey, CacheOutcome, EntryMeta, Lookup, Namespace, PurgeMode};
use crate::http_server::{Body, BoxError};

/// The marker of an object kept in slices.
#[derive(Debug)]
pub(super) struct SlicedObject {
    /// The representation's length in bytes.
    pub length: u64,
}

/// Why a slice could not be had.
#[derive(Debug)]
pub(super) enum SliceError {
    /// The object is not one to slice (small enough to store whole, or the origin ignores
    /// ranges): the ordinary path serves it.
    NotSliced,
    /// The origin answered something other than a range (404, 5xx): its answer.
    Answer(Fetched),
    Upstream(FetchError),
}

/// One slice and what it says of the whole object.
struct Slice {
    stored: Arc<HttpObject>,
    /// The bytes of the representation it holds.
    range: ByteRange,
    length: u64,
    /// Its `ETag`, else its `Last-Modified`: every slice of one response must have the same.
    validator: Option<HeaderValue>,
}

impl Slice {
    fn of(stored: Arc<HttpObject>) -> Option<Slice> {
        let headers = stored.headers();
        let (range, length) =
            policy::content_range(headers.get(header::CONTENT_RANGE)?.as_bytes())?;
        let validator = headers
            .get(header::ETAG)
            .or_else(|| headers.get(header::LAST_MODIFIED))
            .cloned();
        Some(Slice {
            stored,
            range,
            length,
            validator,
        })
    }
}

impl Proxy {
    /// The response for a GET or HEAD that missed, when the object is (or turns out to be)
    /// kept in slices; None for the ordinary path.
    pub(super) async fn sliced(
        self: &Arc<Self>,
        ask: &Ask,
        method: &Method,
    ) -> Option<Response<Body>> {
        let size = self.slice_size;
        if size == 0 {
            return None;
        }
        let marked = match self.cache.peek::<SlicedObject>(&ask.key).await {
            Lookup::Fresh { value, .. } | Lookup::Stale { value, .. } => Some(value.length),
            Lookup::Miss => None,
        };
        let start = policy::range_start(&ask.headers);
        if marked.is_none() && start.is_none() {
            return None;
        }
        let first_index = start.unwrap_or(0) / size;
        let (first, outcome) = match self.slice(ask, first_index).await {
            Ok(found) => found,
            Err(error) => return self.slice_failed(error),
        };
        if marked.is_none() && first.length <= self.upstream.max_body() as u64 {
            // Small enough to store whole: the ordinary fill does that.
            return None;
        }
        if marked != Some(first.length) {
            self.mark_sliced(&ask.key, first.length, &first.stored)
                .await;
        }
        Some(self.sliced_response(ask, method, first, outcome))
    }

    /// Marks `key`'s object as kept in slices, for as long as `like` (a slice or the response
    /// that was too large) may be kept.
    pub(super) async fn mark_sliced(&self, key: &CacheKey, length: u64, like: &HttpObject) {
        let mut meta = self.entry_meta(like, &like.headers());
        meta.weight = 64;
        self.cache
            .insert(key.clone(), Arc::new(SlicedObject { length }), meta)
            .await;
    }

    fn slice_failed(&self, error: Arc<SliceError>) -> Option<Response<Body>> {
        match &*error {
            SliceError::NotSliced => None,
            SliceError::Answer(fetched) => Some(self.respond(
                fetched.status,
                fetched.headers.clone(),
                fetched.body.clone(),
                None,
                ProxyOutcome::Forwarded,
            )),
            SliceError::Upstream(error) => Some(self.upstream_error(error)),
        }
    }

    /// The response from the first slice it needs, `first`; the rest of the body comes slice
    /// by slice as the client reads it.
    fn sliced_response(
        self: &Arc<Self>,
        ask: &Ask,
        method: &Method,
        first: Slice,
        outcome: CacheOutcome,
    ) -> Response<Body> {
        let mut headers = first.stored.headers();
        headers.remove(header::CONTENT_RANGE);
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let length = first.length;
        let (status, range) = match policy::byte_range(method, &ask.headers, &headers, length) {
            Ok(Some(range)) => (StatusCode::PARTIAL_CONTENT, range),
            Ok(None) if length == 0 => {
                return self.respond(
                    StatusCode::OK,
                    headers,
                    Bytes::new(),
                    None,
                    ProxyOutcome::Forwarded,
                );
            }
            Ok(None) => (
                StatusCode::OK,
                ByteRange {
                    first: 0,
                    last: length - 1,
                },
            ),
            Err(error) => {
                let mut headers = HeaderMap::new();
                if let Ok(value) = HeaderValue::from_str(&error.content_range(length)) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                return self.respond(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    headers,
                    Bytes::new(),
                    None,
                    ProxyOutcome::Forwarded,
                );
            }
        };
        if status == StatusCode::PARTIAL_CONTENT
            && let Ok(value) = HeaderValue::from_str(&range.content_range(length))
        {
            headers.insert(header::CONTENT_RANGE, value);
        }
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(range.byte_count()),
        );
        let hit = matches!(outcome, CacheOutcome::Hit | CacheOutcome::Stale);
        let body = self.slice_body(ask, first, range);
        self.respond_with(status, headers, body, None, ProxyOutcome::Slice { hit })
    }

    /// The bytes of `range`, slice after slice, each from the cache or fetched when the client
    /// gets to it. A slice of another version (validator or length) than `first` ends the
    /// body with an error and drops every slice of the object.
    fn slice_body(self: &Arc<Self>, ask: &Ask, first: Slice, range: ByteRange) -> Body {
        let walk = Walk {
            proxy: Arc::clone(self),
            ask: ask.clone(),
            validator: first.validator.clone(),
            length: first.length,
            held: Some(first),
            at: range.first,
            last: range.last,
        };
        let stream = futures_util::stream::unfold(walk, |mut walk| async move {
            if walk.at > walk.last {
                return None;
            }
            match walk.next().await {
                Ok(bytes) => Some((Ok(bytes), walk)),
                Err(error) => {
                    // Nothing more after an error.
                    walk.at = u64::MAX;
                    walk.last = 0;
                    Some((Err(error), walk))
                }
            }
        });
        stream_body(stream.boxed())
    }

    /// Slice `index` of `ask`'s object: from the cache, or fetched once however many clients
    /// want it at once.
    async fn slice(
        self: &Arc<Self>,
        ask: &Ask,
        index: u64,
    ) -> Result<(Slice, CacheOutcome), Arc<SliceError>> {
        let key = slice_key(&ask.key, index);
        let proxy = Arc::clone(self);
        let owned = ask.clone();
        let filled = self
            .cache
            .get_or_fill::<HttpObject, SliceError, _, _>(key, true, move || async move {
                proxy.fetch_slice(&owned, index).await
            })
            .await?;
        match Slice::of(filled.value) {
            Some(slice) => Ok((slice, filled.outcome)),
            None => Err(Arc::new(SliceError::NotSliced)),
        }
    }

    /// Asks for slice `index` with a Range request: from the slice's owner in the cluster
    /// (each slice has its own, so a large object's slices spread over the nodes; the owner
    /// slices it too, fetching from the origin once for the cluster), else, or when the owner
    /// fails, from the origin. A 206 for exactly that slice is stored like any response (its
    /// own freshness), anything else is an error.
    async fn fetch_slice(
        &self,
        ask: &Ask,
        index: u64,
    ) -> Result<(Arc<HttpObject>, EntryMeta), SliceError> {
        let limited = ask.client.as_ref().and_then(|c| c.limit_key);
        let _place = self
            .fill_limits
            .admit(limited)
            .await
            .map_err(SliceError::Upstream)?;
        let (first, last) = (index * self.slice_size, (index + 1) * self.slice_size - 1);
        let mut headers = ask.headers.clone();
        for name in CLIENT_CONDITIONALS {
            headers.remove(name);
        }
        if let Ok(value) = HeaderValue::from_str(&format!("bytes={first}-{last}")) {
            headers.insert(header::RANGE, value);
        }
        self.add_hop(&mut headers, ask.client.as_ref(), &ask.host);
        let request_time = SystemTime::now();
        let opened = match self.slice_from_owner(ask, index, &headers).await {
            Some(opened) => Ok(opened),
            None => {
                self.count_fetch("origin");
                self.upstream
                    .open(&ask.host, &Method::GET, &ask.path, &headers, Bytes::new())
                    .await
            }
        };
        let mut opened = opened.map_err(SliceError::Upstream)?;
        let response_time = SystemTime::now();
        self.targets.settle(opened.response.headers_mut());
        let fetched = self.read_slice(ask, opened, first, last).await?;
        // Stored as the part of a 200 it is: the freshness and storage rules of the whole.
        let whole = Fetched {
            status: StatusCode::OK,
            ..fetched
        };
        Ok(self.to_entry(&ask.host, &ask.headers, whole, request_time, response_time))
    }

    /// The body of a 206 for exactly bytes `first` to `last`; any other answer is an error.
    async fn read_slice(
        &self,
        ask: &Ask,
        opened: Opened,
        first: u64,
        last: u64,
    ) -> Result<Fetched, SliceError> {
        let status = opened.response.status();
        // Slices are kept per URL, not per variant: an object that varies is not sliced (it
        // is streamed through whole, as any object too large to store).
        if status == StatusCode::PARTIAL_CONTENT && varies(opened.response.headers()) {
            return Err(SliceError::NotSliced);
        }
        if status != StatusCode::PARTIAL_CONTENT {
            if matches!(status.as_u16(), 200 | 416) {
                return Err(SliceError::NotSliced);
            }
            let fetched = opened.read_whole(self.upstream.max_body()).await;
            return Err(fetched.map_or_else(SliceError::Upstream, SliceError::Answer));
        }
        let fetched = opened
            .read_whole(usize::try_from(self.slice_size).unwrap_or(usize::MAX))
            .await
            .map_err(SliceError::Upstream)?;
        let covers = fetched
            .headers
            .get(header::CONTENT_RANGE)
            .and_then(|v| policy::content_range(v.as_bytes()))
            .is_some_and(|(range, _)| {
                range.first == first && range.byte_count() == fetched.body.len() as u64
            });
        if !covers {
            let origin = ask.host.clone();
            let message = format!("a 206 for bytes {first}-{last} with another Content-Range");
            return Err(SliceError::Upstream(FetchError::Failed { origin, message }));
        }
        Ok(fetched)
    }
}

impl Proxy {
    /// Slice `index` from its owner, when another node of the cluster owns it and this
    /// request may go there (not from a node itself, no client credentials); None when the
    /// origin is to be asked (no owner, or the owner failed or did not answer a 206 within
    /// `cluster.sibling_timeout_ms`).
    async fn slice_from_owner(&self, ask: &Ask, index: u64, headers: &HeaderMap) -> Option<Opened> {
        if ask.from_sibling || super::sibling::carries_credentials(headers) {
            return None;
        }
        let owner = self.cluster.owner(&slice_key(&ask.key, index).key)?;
        let timeout = self.cluster.sibling_timeout();
        let asked = self
            .ask_node(&owner, &ask.host, &ask.path, headers.clone(), timeout)
            .await;
        match asked {
            Ok(opened) if opened.response.status() == StatusCode::PARTIAL_CONTENT => {
                self.count_fetch("sibling");
                return Some(opened);
            }
            Ok(opened) => {
                tracing::debug!(owner = %owner.id, status = %opened.response.status(), index, "slice owner failed; asking the origin");
            }
            Err(error) => {
                tracing::debug!(owner = %owner.id, %error, index, "slice owner failed; asking the origin");
            }
        }
        self.count_fetch("sibling-failed");
        None
    }
}

/// Whether a response varies by request fields (a `Vary` with any field named).
pub(super) fn varies(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::VARY)
        .iter()
        .any(|v| !v.as_bytes().trim_ascii().is_empty())
}

/// Where a sliced body stands.
struct Walk {
    proxy: Arc<Proxy>,
    ask: Ask,
    /// The version the response was built from.
    validator: Option<HeaderValue>,
    length: u64,
    /// The slice already at hand (the first one).
    held: Option<Slice>,
    /// The next byte to send, and the last one.
    at: u64,
    last: u64,
}

impl Walk {
    /// The bytes from `at` to the end of its slice (or of the range).
    async fn next(&mut self) -> Result<Bytes, BoxError> {
        let size = self.proxy.slice_size;
        let index = self.at / size;
        let slice = match self.held.take().filter(|s| s.range.first / size == index) {
            Some(slice) => slice,
            None => match self.proxy.slice(&self.ask, index).await {
                Ok((slice, _)) => slice,
                Err(error) => return Err(format!("slice {index} failed: {error:?}").into()),
            },
        };
        if slice.validator != self.validator || slice.length != self.length {
            drop_slices(&self.proxy, &self.ask.key).await;
            return Err(
                "the object changed while it was being sent; its slices were dropped".into(),
            );
        }
        let from = usize::try_from(self.at - slice.range.first).unwrap_or(usize::MAX);
        let end = self.last.min(slice.range.last) - slice.range.first + 1;
        let to = usize::try_from(end).unwrap_or(usize::MAX);
        if from >= to || to > slice.stored.body.len() {
            return Err("a slice shorter than its Content-Range".into());
        }
        self.at = slice.range.first + end;
        Ok(slice.stored.body.slice(from..to))
    }
}

/// Where slice `index` of the object under `primary` is stored: beside it (a purge of the URL
/// takes its slices too).
fn slice_key(primary: &CacheKey, index: u64) -> CacheKey {
    let mut key = primary.key.to_vec();
    key.extend_from_slice(b"\0slice:");
    key.extend_from_slice(index.to_string().as_bytes());
    CacheKey::new(Namespace::Http, key)
}

/// The prefix of every slice key of `primary`.
fn slices_prefix(primary: &CacheKey) -> Vec<u8> {
    let mut key = primary.key.to_vec();
    key.extend_from_slice(b"\0slice:");
    key
}

/// Drops every slice of the object under `primary`, and its marker.
async fn drop_slices(proxy: &Proxy, primary: &CacheKey) {
    proxy
        .cache
        .purge_prefix(Namespace::Http, &slices_prefix(primary), PurgeMode::Hard)
        .await;
    proxy.cache.purge_key(primary, PurgeMode::Hard).await;
}
