//! The CDN cache: a caching reverse proxy over HTTP/1.1 and HTTP/2 (TLS via `tls`), storing
//! objects in the shared cache core (namespace `http`) under RFC 9111 rules (`policy`), with one
//! origin fetch per object however many clients miss at once, stale-if-error, and purge.
//!
//! The request path, as pingora names its phases: request filter (method, hop-by-hop) -> cache
//! key (host + path + query) -> cache phase (`CacheOutcome`: hit, stale, miss, bypass) ->
//! upstream (`upstream`: origin table, timeouts, retries, circuit breaker).

mod fill;
pub mod policy;
mod request;
mod store;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use crate::cache::{Cache, CacheKey, CacheOutcome, Lookup as CoreLookup, Namespace, PurgeMode};
use crate::config::ProxyConfig;
use crate::http_server::{Body, Limits, full, read_body};
use policy::{CacheControl, Reuse};
use store::Stored;
use upstream::{Upstream, UpstreamError};

/// Client request fields a cache fill does not forward: the cache answers them itself.
const CLIENT_CONDITIONALS: [HeaderName; 6] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

/// Cache-Status of an object too large to store, streamed through instead.
const TOO_LARGE: &str = "edgenode; fwd=miss; detail=\"too-large\"";

/// The proxy service, shared by every connection.
pub struct Proxy {
    upstream: Upstream,
    cache: Cache,
    /// Cap on heuristic freshness.
    heuristic_max: Duration,
    /// Stale-on-error window when the response does not give one.
    grace: Duration,
    /// Largest request body passed to the origin; larger gets 413.
    max_request_body: usize,
    /// The body read timeout, and the metric of clients stopped by a limit.
    limits: Limits,
}

impl Proxy {
    pub fn new(config: &ProxyConfig, cache: Cache, limits: Limits) -> Result<Arc<Proxy>, String> {
        Ok(Arc::new(Proxy {
            upstream: Upstream::new(config)?,
            cache,
            heuristic_max: Duration::from_secs(config.heuristic_max_secs),
            grace: Duration::from_secs(config.grace_secs),
            max_request_body: usize::try_from(config.max_request_body.0).unwrap_or(usize::MAX),
            limits,
        }))
    }

    /// Purges by URL (`http://host/path?query` or `host/path`), URL prefix, or tag.
    pub async fn purge(&self, target: PurgeTarget<'_>, mode: PurgeMode) -> usize {
        match target {
            PurgeTarget::Url(url) => {
                // The URL's own entry and every variant stored beside it.
                let key = url_key(url);
                let mut variants = key.key.to_vec();
                variants.push(0);
                let beside = self
                    .cache
                    .purge_prefix(Namespace::Http, &variants, mode)
                    .await;
                self.cache.purge_key(&key, mode).await + beside
            }
            PurgeTarget::Prefix(prefix) => {
                let key = url_key(prefix);
                self.cache
                    .purge_prefix(Namespace::Http, &key.key, mode)
                    .await
            }
            PurgeTarget::Tag(tag) => self.cache.purge_tag(tag, mode).await,
        }
    }

    /// The stored variant of `primary` this request selects (RFC 9111 4.1): the one under the
    /// URL's key, or the one beside it for this request's `Vary` values; and its key.
    pub(super) async fn stored_variant(
        &self,
        primary: &CacheKey,
        req_headers: &HeaderMap,
    ) -> Option<(Arc<Stored>, CacheKey)> {
        let lookup = |key: CacheKey| async move {
            match self.cache.get::<Stored>(&key).await {
                CoreLookup::Fresh { value, .. } | CoreLookup::Stale { value, .. } => {
                    Some((value, key))
                }
                CoreLookup::Miss => None,
            }
        };
        let (first, key) = lookup(primary.clone()).await?;
        if first.selected_by(req_headers) {
            return Some((first, key));
        }
        let other = variant_key(primary, &policy::vary_key(&first.headers, req_headers)?);
        lookup(other)
            .await
            .filter(|(stored, _)| stored.selected_by(req_headers))
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> Response<Body> {
        let host = match request::host(&req) {
            Ok(host) => host,
            Err(reason) => return self.error(StatusCode::BAD_REQUEST, reason),
        };
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let method = req.method().clone();
        let mut headers = req.headers().clone();
        policy::strip_hop_by_hop(&mut headers);
        request::prepare_forwarded(&mut headers, &host);
        let key = cache_key(&host, &path);

        if !policy::is_cacheable_method(&method) {
            let body = match read_body(req.into_body(), self.max_request_body, &self.limits).await {
                Ok(body) => body,
                Err(error) => {
                    return request::closing(self.error(error.status(), &error.to_string()));
                }
            };
            return self
                .pass(
                    &host,
                    &method,
                    &path,
                    &headers,
                    body,
                    "edgenode; fwd=bypass",
                )
                .await;
        }
        let request_cc = CacheControl::parse(&headers);
        let head = method == Method::HEAD;
        if let Some(mut response) = self
            .cached_response(&host, &path, &key, &headers, &request_cc)
            .await
        {
            strip_body_for_head(&mut response, head);
            return response;
        }
        if request_cc.only_if_cached {
            return self.error(StatusCode::GATEWAY_TIMEOUT, "only-if-cached: not in cache");
        }
        let mut response = Arc::clone(&self)
            .fetch(host, path, headers, key, request_cc)
            .await;
        strip_body_for_head(&mut response, head);
        response
    }

    /// A stored response this request may have (fresh, or stale where allowed), or None.
    async fn cached_response(
        self: &Arc<Self>,
        host: &str,
        path: &str,
        key: &CacheKey,
        req_headers: &HeaderMap,
        request_cc: &CacheControl,
    ) -> Option<Response<Body>> {
        let (stored, _) = self.stored_variant(key, req_headers).await?;
        if storable_reason(&stored).is_some() {
            return None;
        }
        let meta = stored.meta(SystemTime::now(), self.heuristic_max);
        match policy::reuse(&meta, request_cc) {
            Reuse::Fresh => Some(self.serve(
                &Method::GET,
                &stored,
                meta.age,
                req_headers,
                "edgenode; hit",
            )),
            Reuse::StaleWhileRevalidate => {
                self.refresh_in_background(host, path, req_headers, key);
                let status = "edgenode; hit; fwd=stale; detail=\"stale-while-revalidate\"";
                Some(self.serve(&Method::GET, &stored, meta.age, req_headers, status))
            }
            Reuse::StaleAccepted => Some(self.serve(
                &Method::GET,
                &stored,
                meta.age,
                req_headers,
                "edgenode; hit; detail=\"max-stale\"",
            )),
            _ => None,
        }
    }

    /// Misses and stale entries: one origin fetch per key however many ask at once (the cache
    /// core coalesces); stale served when the origin fails and the rules allow.
    async fn fetch(
        self: Arc<Self>,
        host: String,
        path: String,
        headers: HeaderMap,
        key: CacheKey,
        request_cc: CacheControl,
    ) -> Response<Body> {
        let proxy = Arc::clone(&self);
        let (fill_headers, fill_host, fill_path) = (headers.clone(), host.clone(), path.clone());
        let filled = self
            .cache
            .get_or_fill(key.clone(), true, move || async move {
                proxy
                    .fetch_for_cache(&fill_host, &fill_path, &fill_headers)
                    .await
            })
            .await;
        let filled = match filled {
            Ok(filled) => filled,
            Err(error) if matches!(*error, UpstreamError::TooLarge(..)) => {
                return self
                    .pass(
                        &host,
                        &Method::GET,
                        &path,
                        &headers,
                        Bytes::new(),
                        TOO_LARGE,
                    )
                    .await;
            }
            Err(error) => return self.upstream_error(&error),
        };
        let stored = &filled.value;
        let meta = stored.meta(SystemTime::now(), self.heuristic_max);
        let selected = stored.selected_by(&headers);
        match filled.outcome {
            // Stored by another request meanwhile: it must suit this one too.
            CacheOutcome::Hit if selected && policy::reuse(&meta, &request_cc) == Reuse::Fresh => {
                self.serve(&Method::GET, stored, meta.age, &headers, "edgenode; hit")
            }
            CacheOutcome::Stale => {
                let allowed =
                    policy::serve_stale_on_error(&meta, &request_cc) || self.within_grace(&meta);
                if allowed && selected {
                    self.serve(
                        &Method::GET,
                        stored,
                        meta.age,
                        &headers,
                        "edgenode; hit; detail=\"stale-if-error\"",
                    )
                } else {
                    self.error(
                        StatusCode::BAD_GATEWAY,
                        "the origin failed and no stored copy may be served",
                    )
                }
            }
            CacheOutcome::Miss | CacheOutcome::Coalesced if selected => {
                let status = match (filled.outcome, storable_reason(stored)) {
                    (_, Some(reason)) => format!("edgenode; fwd=miss; detail=\"{reason}\""),
                    (CacheOutcome::Coalesced, None) => {
                        "edgenode; fwd=miss; stored; collapsed".to_string()
                    }
                    _ => "edgenode; fwd=miss; stored".to_string(),
                };
                self.serve(&Method::GET, stored, meta.age, &headers, &status)
            }
            // Another variant is stored under the URL: this one goes beside it.
            _ => {
                let key = policy::vary_key(&stored.headers, &headers)
                    .map_or(key.clone(), |v| variant_key(&key, &v));
                self.fetch_uncoalesced(&host, &path, &headers, &key).await
            }
        }
    }

    /// A response from a stored object: Age, conditional 304s, and single byte ranges.
    fn serve(
        &self,
        method: &Method,
        stored: &Stored,
        age: Duration,
        req_headers: &HeaderMap,
        cache_status: &str,
    ) -> Response<Body> {
        let mut headers = stored.headers.clone();
        headers.remove(header::CONTENT_LENGTH);
        if stored.status != StatusCode::OK {
            return self.respond(
                stored.status,
                headers,
                stored.body.clone(),
                Some(age),
                cache_status,
            );
        }
        if policy::not_modified(req_headers, &stored.headers) {
            return self.respond(
                StatusCode::NOT_MODIFIED,
                headers,
                Bytes::new(),
                Some(age),
                cache_status,
            );
        }
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let len = stored.body.len() as u64;
        match policy::byte_range(method, req_headers, &stored.headers, len) {
            Ok(None) => self.respond(
                StatusCode::OK,
                headers,
                stored.body.clone(),
                Some(age),
                cache_status,
            ),
            Ok(Some(range)) => {
                let (start, end) = (range.first, range.last);
                if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                let body = stored.body.slice(start as usize..=end as usize);
                self.respond(
                    StatusCode::PARTIAL_CONTENT,
                    headers,
                    body,
                    Some(age),
                    cache_status,
                )
            }
            Err(_) => {
                let mut headers = HeaderMap::new();
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                self.respond(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    headers,
                    Bytes::new(),
                    Some(age),
                    cache_status,
                )
            }
        }
    }

    /// Requests the cache does not keep (unsafe methods, objects over `max_object_size`) go to
    /// the origin and stream back without being buffered whole; a successful unsafe method
    /// invalidates the stored URL (RFC 9111 4.4).
    async fn pass(
        &self,
        host: &str,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
        cache_status: &str,
    ) -> Response<Body> {
        let response = match self
            .upstream
            .fetch_stream(host, method, path, headers, body)
            .await
        {
            Ok(response) => response,
            Err(error) => return self.upstream_error(&error),
        };
        if policy::invalidates(method, response.status()) {
            self.cache
                .purge_key(&cache_key(host, path), PurgeMode::Hard)
                .await;
        }
        let (mut parts, body) = response.into_parts();
        policy::strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .append(header::VIA, HeaderValue::from_static("1.1 edgenode"));
        if let Ok(value) = HeaderValue::from_str(cache_status) {
            parts
                .headers
                .insert(HeaderName::from_static("cache-status"), value);
        }
        let body = body
            .map_err(|e| Box::new(e) as crate::http_server::BoxError)
            .boxed();
        Response::from_parts(parts, body)
    }

    fn respond(
        &self,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
        age: Option<Duration>,
        cache_status: &str,
    ) -> Response<Body> {
        policy::strip_hop_by_hop(&mut headers);
        if let Some(age) = age
            && let Ok(value) = HeaderValue::from_str(&age.as_secs().to_string())
        {
            headers.insert(header::AGE, value);
        }
        let via = HeaderValue::from_static("1.1 edgenode");
        headers.append(header::VIA, via);
        if let Ok(value) = HeaderValue::from_str(cache_status) {
            headers.insert(HeaderName::from_static("cache-status"), value);
        }
        let mut response = Response::new(full(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }

    fn upstream_error(&self, error: &UpstreamError) -> Response<Body> {
        tracing::debug!(%error, "origin failed");
        if let UpstreamError::ServerError(fetched) = error {
            let (status, headers, body) = (
                fetched.status,
                fetched.headers.clone(),
                fetched.body.clone(),
            );
            return self.respond(
                status,
                headers,
                body,
                None,
                "edgenode; fwd=miss; detail=\"origin-error\"",
            );
        }
        self.error(error.status(), &error.to_string())
    }

    fn error(&self, status: StatusCode, message: &str) -> Response<Body> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.respond(
            status,
            headers,
            Bytes::from(format!("{message}\n")),
            None,
            "edgenode; fwd=miss",
        )
    }
}

fn storable_reason(stored: &Stored) -> Option<&'static str> {
    stored.not_storable.map(policy::NotStorable::as_str)
}

/// HEAD gets the GET response's headers without its body.
fn strip_body_for_head(response: &mut Response<Body>, head: bool) {
    if head {
        *response.body_mut() = full(Bytes::new());
    }
}

/// What a purge names.
#[derive(Clone, Copy, Debug)]
pub enum PurgeTarget<'a> {
    Url(&'a str),
    Prefix(&'a str),
    Tag(&'a str),
}

/// The cache key of a URL as an operator writes it: the scheme is dropped, the host lowercased.
fn url_key(url: &str) -> CacheKey {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (host, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    cache_key(&host.to_ascii_lowercase(), path)
}

/// Where the variant of a URL for one set of `Vary` values is stored, when it is not the one
/// under the URL's own key (the first variant stored).
fn variant_key(primary: &CacheKey, vary_key: &str) -> CacheKey {
    let mut key = primary.key.to_vec();
    key.push(0);
    key.extend_from_slice(vary_key.as_bytes());
    CacheKey::new(Namespace::Http, key)
}

/// The primary cache key: host and path with query (purge by URL and prefix work on it).
pub fn cache_key(host: &str, path_and_query: &str) -> CacheKey {
    CacheKey::new(Namespace::Http, format!("{host}{path_and_query}"))
}
