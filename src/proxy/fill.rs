//! Cache fills: fetching from the origin for the cache (revalidating what is stored),
//! turning an origin response into a cache entry, and background refreshes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::{HeaderMap, Method, Response, StatusCode};

use super::policy;
use super::store::Stored;
use super::upstream::{Fetched, UpstreamError};
use super::{CLIENT_CONDITIONALS, Proxy, TOO_LARGE, cache_key, storable_reason};
use crate::cache::{CacheKey, EntryMeta};
use crate::http_server::Body;

impl Proxy {
    /// RFC 5861 stale-while-revalidate: one refresh per key runs in the background (the cache
    /// core coalesces it with any other fill of the key), and the next request gets its result.
    pub(super) fn refresh_in_background(
        self: &Arc<Self>,
        host: &str,
        path: &str,
        headers: &HeaderMap,
        key: &CacheKey,
    ) {
        let proxy = Arc::clone(self);
        let (host, path, headers, key) = (
            host.to_string(),
            path.to_string(),
            headers.clone(),
            key.clone(),
        );
        tokio::spawn(async move {
            let filler = Arc::clone(&proxy);
            let refreshed = proxy
                .cache
                .get_or_fill(key, true, move || async move {
                    filler.fetch_for_cache(&host, &path, &headers).await
                })
                .await;
            if let Err(error) = refreshed {
                tracing::debug!(%error, "background refresh failed; the stale copy stays");
            }
        });
    }

    /// The origin's response as a cache entry: stored when RFC 9111 allows, otherwise kept for
    /// no time at all (the callers waiting on this fill still get it: hit-for-pass).
    ///
    /// The fetch is for the cache, not for one client: the client's conditionals and Range are
    /// not forwarded (they are answered from the full stored object, and waiters coalesced on
    /// this fill may not share them). A stored copy of the same variant is revalidated with its
    /// own validators instead (RFC 9111 4.3.1); a 304 refreshes it (4.3.4).
    pub(super) async fn fetch_for_cache(
        &self,
        host: &str,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(Arc<Stored>, EntryMeta), UpstreamError> {
        let previous = self
            .stored_variant(&cache_key(host, path), headers)
            .await
            .map(|(stored, _)| stored)
            .filter(|p| storable_reason(p).is_none() && p.status == StatusCode::OK);
        let mut upstream_headers = headers.clone();
        for name in CLIENT_CONDITIONALS {
            upstream_headers.remove(name);
        }
        if let Some(previous) = &previous {
            upstream_headers.extend(policy::validation_headers(&previous.headers));
        }
        let request_time = SystemTime::now();
        let fetched = self
            .upstream
            .fetch(host, &Method::GET, path, &upstream_headers, Bytes::new())
            .await?;
        if matches!(fetched.status.as_u16(), 500 | 502 | 503 | 504) {
            return Err(UpstreamError::ServerError(Box::new(fetched)));
        }
        let response_time = SystemTime::now();
        match previous {
            Some(previous)
                if fetched.status == StatusCode::NOT_MODIFIED
                    && policy::validated_by(&previous.headers, &fetched.headers) =>
            {
                let mut merged = previous.headers.clone();
                policy::merge_304(&mut merged, &fetched.headers);
                let refreshed = Fetched {
                    status: previous.status,
                    headers: merged,
                    body: previous.body.clone(),
                };
                Ok(self.to_entry(headers, refreshed, request_time, response_time))
            }
            _ => Ok(self.to_entry(headers, fetched, request_time, response_time)),
        }
    }

    /// A request that must not take a coalesced or stored answer (another variant, or a stored
    /// response its directives refuse): straight to the origin, then stored.
    pub(super) async fn fetch_uncoalesced(
        &self,
        host: &str,
        path: &str,
        headers: &HeaderMap,
        key: &CacheKey,
    ) -> Response<Body> {
        let (stored, meta) = match self.fetch_for_cache(host, path, headers).await {
            Ok(entry) => entry,
            Err(UpstreamError::TooLarge(..)) => {
                return self
                    .pass(host, &Method::GET, path, headers, Bytes::new(), TOO_LARGE)
                    .await;
            }
            Err(error) => return self.upstream_error(&error),
        };
        let status = match storable_reason(&stored) {
            Some(reason) => format!("edgenode; fwd=miss; detail=\"{reason}\""),
            None => "edgenode; fwd=miss; stored".to_string(),
        };
        let age = stored.meta(SystemTime::now(), self.heuristic_max).age;
        let response = self.serve(&Method::GET, &stored, age, headers, &status);
        if storable_reason(&stored).is_none() {
            self.cache.insert(key.clone(), stored, meta).await;
        }
        response
    }

    pub(super) fn to_entry(
        &self,
        req_headers: &HeaderMap,
        fetched: Fetched,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> (Arc<Stored>, EntryMeta) {
        let storable =
            policy::storable(&Method::GET, req_headers, fetched.status, &fetched.headers);
        let mut headers = fetched.headers;
        policy::strip_hop_by_hop(&mut headers);
        if storable.is_ok() {
            policy::strip_unshared_fields(&mut headers);
        }
        let stored = Stored {
            not_storable: storable.err(),
            status: fetched.status,
            vary_key: policy::vary_key(&headers, req_headers),
            headers,
            body: fetched.body,
            request_time,
            response_time,
        };
        let meta = stored.meta(response_time, self.heuristic_max);
        let (fresh_for, stale_for) = match storable {
            Err(_) => (Duration::ZERO, Duration::ZERO),
            Ok(()) => {
                let cc = &meta.cache_control;
                let revalidate = cc.no_cache || cc.must_revalidate || cc.proxy_revalidate;
                let windows = [cc.stale_if_error, cc.stale_while_revalidate];
                let window = windows
                    .into_iter()
                    .flatten()
                    .max()
                    .map_or(Duration::ZERO, Duration::from_secs);
                let stale = if revalidate {
                    Duration::ZERO
                } else {
                    window.max(self.grace)
                };
                (meta.lifetime.saturating_sub(meta.age), stale)
            }
        };
        let entry = EntryMeta {
            fresh_for,
            stale_for,
            weight: stored.weight(),
            tags: stored.tags(),
        };
        (Arc::new(stored), entry)
    }

    /// The operator's grace (`proxy.grace_secs`) for a failing origin, unless the response
    /// forbids serving it stale.
    pub(super) fn within_grace(&self, meta: &policy::StoredMeta) -> bool {
        let cc = &meta.cache_control;
        !(cc.no_cache || cc.must_revalidate || cc.proxy_revalidate)
            && meta.staleness() <= self.grace
    }
}
