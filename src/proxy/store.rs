//! A stored response and what the proxy keeps about its exchange.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{self, HeaderName};
use hyper::{HeaderMap, Method, StatusCode};

use super::Proxy;
use super::compact_head::CompactHead;
use super::policy::{self, StoredMeta};
use super::upstream::Fetched;
use crate::cache::EntryMeta;

/// Fields a response from a stored object adds to the stored ones (`Accept-Ranges` or
/// `Content-Range`, `Age`, `Via`, `Cache-Status`): the rebuilt map has room for them.
const ADDED_FIELDS: usize = 4;

/// Heap bytes a `Bytes` buffer costs beyond its data once it is shared (the first clone or
/// slice moves a buffer that came from a `Vec` behind this shared header).
const SHARED_BYTES_HEADER: usize = 24;

/// One stored response: everything to answer from cache and to judge its freshness.
pub struct HttpObject {
    /// Why RFC 9111 forbids reusing this response, when it does: the entry then lives for no
    /// time and only the callers coalesced on its fill get it (hit-for-pass).
    pub not_storable: Option<policy::NotStorable>,
    pub status: StatusCode,
    /// Hop-by-hop and unshared fields already removed; packed (a `HeaderMap` would cost more
    /// than a 1 KiB body), rebuilt to answer.
    head: CompactHead,
    pub body: Bytes,
    /// When the origin's response was received (RFC 9111 4.2.3), in nanoseconds since the Unix
    /// epoch (not a `SystemTime`: 8 bytes less puts the struct, with its `Arc` header, in
    /// mimalloc's 112-byte size class).
    response_nanos: u64,
    /// Its age on arrival (RFC 9111 4.2.3 `corrected_initial_age`: `Age`, `Date` and the
    /// round trip), in milliseconds: computed once, so that a hit does not parse `Date` and
    /// `Age` again, and 4 bytes (not a `Duration`: 12 more); saturates at 49 days.
    initial_age_ms: u32,
    /// The request's values of the response's `Vary` fields (`policy::vary_key` of this head,
    /// so empty when it names no field); None for `Vary: *`.
    pub vary_key: Option<Box<str>>,
}

impl HttpObject {
    /// A stored response from the origin's (already filtered) `headers`, copied into
    /// allocations of the stored object's own, for a request with `request_headers` (its
    /// `Vary` values are kept). `Content-Length` is left out: a response from a stored object
    /// has the body's own length.
    pub fn new(
        not_storable: Option<policy::NotStorable>,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        request_time: SystemTime,
        response_time: SystemTime,
        request_headers: &HeaderMap,
    ) -> HttpObject {
        HttpObject {
            not_storable,
            status,
            head: CompactHead::new(headers, |name| name != header::CONTENT_LENGTH),
            body,
            response_nanos: response_time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            initial_age_ms: u32::try_from(
                policy::initial_age(headers, request_time, response_time).as_millis(),
            )
            .unwrap_or(u32::MAX),
            vary_key: policy::vary_key(headers, request_headers).map(String::into_boxed_str),
        }
    }

    /// The stored header fields (never `Content-Length`), with room for those a response adds.
    pub fn headers(&self) -> HeaderMap {
        self.head.to_header_map(ADDED_FIELDS)
    }

    /// Freshness facts for a request arriving `now`, from `headers`: this object's fields, as
    /// [`HttpObject::headers`] rebuilt them (the caller answers with them too).
    pub fn meta_with(
        &self,
        headers: &HeaderMap,
        now: SystemTime,
        heuristic_cap: Duration,
    ) -> StoredMeta {
        let response_time = UNIX_EPOCH + Duration::from_nanos(self.response_nanos);
        let resident = now.duration_since(response_time).unwrap_or_default();
        let age = Duration::from_millis(u64::from(self.initial_age_ms)).saturating_add(resident);
        StoredMeta::with_age(headers, self.status, response_time, age, heuristic_cap)
    }

    /// Whether this stored variant is the one `request_headers` selects (RFC 9111 4.1).
    pub fn selected_by(&self, request_headers: &HeaderMap) -> bool {
        match self.vary_key.as_deref() {
            // `Vary: *` is never stored to be reused; a hit-for-pass object serves its fill.
            None => true,
            // The head names no request field, so every request's key is empty too.
            Some("") => true,
            Some(key) => {
                let vary = self.head.only(&header::VARY);
                policy::vary_matches(key, &vary, request_headers)
            }
        }
    }

    /// The values of the response's `Vary` fields in `request_headers` (RFC 9111 4.1).
    pub fn vary_key_for(&self, request_headers: &HeaderMap) -> Option<String> {
        policy::vary_key(&self.head.only(&header::VARY), request_headers)
    }

    /// Bytes charged against the cache budget: the heap this object holds (body, packed head,
    /// `Vary` key, the shared headers of its two buffers) and this struct. The `Arc` around it
    /// is in the cache core's per-entry overhead.
    pub fn weight(&self) -> u32 {
        let vary = self.vary_key.as_ref().map_or(0, |v| v.len());
        let bytes = self.body.len()
            + self.head.heap_bytes()
            + vary
            + 2 * SHARED_BYTES_HEADER
            + std::mem::size_of::<HttpObject>();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// Purge tags from `Cache-Tag` and `Surrogate-Key` (space- or comma-separated).
    pub fn tags(&self) -> Vec<Arc<str>> {
        let names = [
            HeaderName::from_static("cache-tag"),
            HeaderName::from_static("surrogate-key"),
        ];
        let values: Vec<_> = self
            .head
            .iter()
            .filter(|(name, _)| names.contains(name))
            .map(|(_, value)| value)
            .collect();
        let mut tags: Vec<Arc<str>> = values
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([' ', ',']))
            .filter(|t| !t.is_empty())
            .map(Arc::from)
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }
}

/// An origin's response head split for the cache: what every client may get, and what only
/// the client whose request fetched it may.
pub(super) struct StoredFields {
    /// Hop-by-hop fields removed, and unshared ones too when the response is stored.
    pub shared: HeaderMap,
    /// The unshared fields (a `Set-Cookie` not marked shared, fields named by a qualified
    /// `private` or `no-cache`) of a stored response, for the fetching client alone.
    pub own: HeaderMap,
    pub storable: Result<(), policy::NotStorable>,
}

/// What the proxy stores of an origin's response, and for how long.
impl Proxy {
    /// RFC 9111's answer for a GET's response, and then the operator's rules for `host`:
    /// statuses never stored, and responses setting cookies never stored.
    pub(super) fn storable(
        &self,
        host: &str,
        req_headers: &HeaderMap,
        status: StatusCode,
        resp_headers: &HeaderMap,
    ) -> Result<(), policy::NotStorable> {
        policy::storable(&Method::GET, req_headers, status, resp_headers)?;
        let rules = self.hosts.get(host);
        if rules.never_store.contains(&status.as_u16()) {
            return Err(policy::NotStorable::NeverStore);
        }
        if rules.never_store_set_cookie && resp_headers.contains_key(header::SET_COOKIE) {
            return Err(policy::NotStorable::SetCookie);
        }
        Ok(())
    }

    /// The origin's fields as the cache keeps them (hop-by-hop ones removed, and unshared
    /// ones too when the response may be stored), and whether it may be stored.
    pub(super) fn stored_fields(
        &self,
        host: &str,
        req_headers: &HeaderMap,
        status: StatusCode,
        mut headers: HeaderMap,
    ) -> StoredFields {
        let storable = self.storable(host, req_headers, status, &headers);
        policy::strip_hop_by_hop(&mut headers);
        let own = match storable {
            Ok(()) => policy::strip_unshared_fields(&mut headers),
            Err(_) => HeaderMap::new(),
        };
        StoredFields {
            shared: headers,
            own,
            storable,
        }
    }

    /// The origin's response as a cache entry; one RFC 9111 forbids storing lives for no time.
    pub(super) fn to_entry(
        &self,
        host: &str,
        req_headers: &HeaderMap,
        fetched: Fetched,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> (Arc<HttpObject>, EntryMeta) {
        let StoredFields {
            shared: headers,
            storable,
            ..
        } = self.stored_fields(host, req_headers, fetched.status, fetched.headers);
        let stored = HttpObject::new(
            storable.err(),
            fetched.status,
            &headers,
            fetched.body,
            request_time,
            response_time,
            req_headers,
        );
        let entry = self.entry_meta(&stored, &headers);
        (Arc::new(stored), entry)
    }

    /// How long `stored` is kept: none when RFC 9111 forbids reusing it; else fresh for what is
    /// left of its lifetime, then kept for the longest window it may be served stale in, and
    /// at least the grace: a response that must be revalidated (no-cache, must-revalidate) is
    /// kept too, so that it is revalidated with its validators rather than fetched again whole
    /// (`reuse` and the stale checks decide what is served).
    /// `headers`: the stored fields (`HttpObject::headers`, or the map it was made from).
    pub(super) fn entry_meta(&self, stored: &HttpObject, headers: &HeaderMap) -> EntryMeta {
        let (fresh_for, stale_for) = if stored.not_storable.is_some() {
            (Duration::ZERO, Duration::ZERO)
        } else {
            let received = UNIX_EPOCH + Duration::from_nanos(stored.response_nanos);
            let meta = stored.meta_with(headers, received, self.heuristic_max);
            let cc = &meta.cache_control;
            let windows = [cc.stale_if_error, cc.stale_while_revalidate];
            let window = windows
                .into_iter()
                .flatten()
                .max()
                .map_or(Duration::ZERO, Duration::from_secs);
            (
                meta.lifetime.saturating_sub(meta.age),
                window.max(self.grace),
            )
        };
        EntryMeta {
            fresh_for,
            stale_for,
            weight: stored.weight(),
            tags: stored.tags(),
        }
    }

    /// The operator's grace (`proxy.grace_secs`) for a failing origin, unless the response
    /// forbids serving it stale: `s-maxage` implies `proxy-revalidate` (RFC 9111 5.2.2.10), so
    /// only its own stale-if-error may serve it stale.
    pub(super) fn within_grace(&self, meta: &StoredMeta) -> bool {
        let cc = &meta.cache_control;
        let revalidate = cc.no_cache || cc.stale_must_revalidate() || cc.s_maxage.is_some();
        !revalidate && meta.staleness() <= self.grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn stored(headers: &HeaderMap, body: usize) -> HttpObject {
        let now = SystemTime::now();
        HttpObject::new(
            None,
            StatusCode::OK,
            headers,
            Bytes::from(vec![0u8; body]),
            now,
            now,
            &HeaderMap::new(),
        )
    }

    #[test]
    fn the_weight_is_the_body_the_packed_head_and_the_struct() {
        let mut headers = HeaderMap::new();
        headers.insert("cache-control", HeaderValue::from_static("max-age=60"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.insert("x-served-by", HeaderValue::from_static("origin-1"));
        let stored = stored(&headers, 1024);
        // Known names cost nothing but their 8-byte field entry; others their text too.
        let head = "max-age=60".len() + "text/plain".len() + "x-served-by".len() + 8 + 3 * 8 + 4;
        let expected = 1024 + head + 2 * SHARED_BYTES_HEADER + std::mem::size_of::<HttpObject>();
        assert_eq!(stored.weight() as usize, expected);
        // What the packed form saves: a `HeaderMap` of three fields alone took over 500 bytes.
        assert!(stored.weight() < 1024 + 300, "{}", stored.weight());
        assert_eq!(stored.headers(), headers);
        // The stored struct fits mimalloc's 112-byte size class with its `Arc` header.
        assert!(std::mem::size_of::<HttpObject>() + 16 <= 112);
    }

    #[test]
    fn content_length_is_not_kept_and_the_exchange_times_are() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", HeaderValue::from_static("5"));
        headers.insert("cache-control", HeaderValue::from_static("max-age=60"));
        headers.insert("age", HeaderValue::from_static("10"));
        let sent = SystemTime::now();
        let received = sent + Duration::from_secs(3);
        let stored = HttpObject::new(
            None,
            StatusCode::OK,
            &headers,
            Bytes::from_static(b"hello"),
            sent,
            received,
            &HeaderMap::new(),
        );
        assert!(!stored.headers().contains_key("content-length"));
        let meta = stored.meta_with(&stored.headers(), received, Duration::ZERO);
        // Age 10 plus the 3 s the origin took (RFC 9111 4.2.3).
        assert_eq!(meta.age, Duration::from_secs(13));
        // Kept as the initial age; the time since arrival is added at each request.
        let later = received + Duration::from_millis(5_500);
        let meta = stored.meta_with(&stored.headers(), later, Duration::ZERO);
        assert_eq!(meta.age, Duration::from_millis(18_500));
        assert_eq!(
            meta.age,
            policy::current_age(&headers, sent, received, later),
            "the same as computed from the fields each time"
        );
    }

    #[test]
    fn a_variant_is_selected_by_the_requests_of_its_vary_values() {
        let now = SystemTime::now();
        let request = |language: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("accept-language", HeaderValue::from_static(language));
            headers
        };
        let mut response = HeaderMap::new();
        let store = |response: &HeaderMap| {
            let body = Bytes::new();
            let en = request("en");
            HttpObject::new(None, StatusCode::OK, response, body, now, now, &en)
        };
        // Without `Vary`, every request selects it.
        let plain = store(&response);
        assert_eq!(plain.vary_key.as_deref(), Some(""));
        assert!(plain.selected_by(&request("de")) && plain.selected_by(&HeaderMap::new()));
        response.insert("vary", HeaderValue::from_static("Accept-Language"));
        let varied = store(&response);
        assert!(varied.selected_by(&request("en")));
        assert!(!varied.selected_by(&request("de")));
        assert!(!varied.selected_by(&HeaderMap::new()));
    }

    #[test]
    fn tags_come_from_cache_tag_and_surrogate_key() {
        let mut headers = HeaderMap::new();
        headers.append("cache-tag", HeaderValue::from_static("b, a"));
        headers.append("surrogate-key", HeaderValue::from_static("c a"));
        let tags = stored(&headers, 0).tags();
        let tags: Vec<&str> = tags.iter().map(|t| &**t).collect();
        assert_eq!(tags, ["a", "b", "c"]);
    }
}
