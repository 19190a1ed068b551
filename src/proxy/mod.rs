//! The CDN cache: a caching reverse proxy over HTTP/1.1 and HTTP/2 (TLS via `tls`), storing
//! objects in the shared cache core (namespace `http`) under RFC 9111 rules (`policy`), with one
//! origin fetch per object however many clients miss at once, stale-if-error, and purge.
//!
//! The request path, as pingora names its phases: request filter (method, hop-by-hop) -> cache
//! key (host + path + query) -> cache phase (`outcome::ProxyOutcome`: hit, stale, miss,
//! bypass, ..., which names the `Cache-Status` field and the statistics a request counts in) ->
//! upstream (`upstream`: origin table, timeouts, retries, circuit breaker).

mod compact_head;
mod fill;
mod fill_limits;
mod flight;
mod forwarded;
mod hosts;
mod keys;
mod outcome;
pub mod policy;
mod preload;
mod request;
mod setup;
mod sibling;
mod slice;
mod store;
mod targeted;
pub mod upstream;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use crate::cache::{Cache, CacheKey, CacheOutcome, Lookup as CoreLookup, Namespace, PurgeMode};
use crate::cluster::auth::{Target, Verified};
use crate::cluster::{Cluster, SIBLING_HEADER};
use crate::config::ProxyConfig;
use crate::http_server::{Body, Limits, full, read_body};
use crate::metrics::ProxyMetrics;
use fill::Ask;
use fill_limits::FillLimits;
use forwarded::Client;
use hosts::HostTable;
use outcome::ProxyOutcome;
use policy::{CacheControl, Reuse};
use sibling::Sibling;
use store::HttpObject;
use targeted::Targets;
use upstream::{FetchError, Upstream};

pub use forwarded::Scheme;
use keys::variant_key;
pub use keys::{PurgeTarget, cache_key};
pub use preload::Warmed;
pub use setup::SetupError;

/// Client request fields a cache fill does not forward: the cache answers them itself.
const CLIENT_CONDITIONALS: [HeaderName; 6] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

/// The `Cache-Status` response field (RFC 9211).
const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// The proxy service, shared by every connection.
pub struct Proxy {
    upstream: Upstream,
    cache: Cache,
    /// Owners of keys among the cluster's nodes (a lone node owns every key).
    cluster: Arc<Cluster>,
    metrics: ProxyMetrics,
    /// Cap on heuristic freshness.
    heuristic_max: Duration,
    /// Stale-on-error window when the response does not give one.
    grace: Duration,
    /// Per-host storage rules and HSTS (`[[proxy.hosts]]` over `[proxy]`).
    hosts: HostTable,
    /// Peers whose forwarding fields are believed (`proxy.trusted_proxies`).
    trusted_proxies: Box<[ipnet::IpNet]>,
    /// This node's `Via` entry, on responses and on requests it forwards: `1.1 <cluster.id>`.
    via: HeaderValue,
    /// The cache directives meant for this node (its own field, CDN-Cache-Control,
    /// Surrogate-Control).
    targets: Targets,
    /// Bounds on origin fetches in progress (`fill_limits`).
    fill_limits: FillLimits,
    /// How long a reader may hold back the other readers of a streamed object.
    slow_reader: Duration,
    /// A fill whose clients all left stops unless at most this much is left to fetch.
    abandon_bytes: u64,
    /// Objects larger than `max_object_size` are kept in slices of this many bytes (0: not).
    slice_size: u64,
    /// Largest request body passed to the origin; larger gets 413.
    max_request_body: usize,
    /// The body read timeout, and the metric of clients stopped by a limit.
    limits: Limits,
}

impl Proxy {
    pub fn new(
        config: &ProxyConfig,
        cache: Cache,
        limits: Limits,
        cluster: Arc<Cluster>,
        metrics: ProxyMetrics,
    ) -> Result<Arc<Proxy>, SetupError> {
        let mut upstream = Upstream::new(config)?;
        upstream.breaker_opened = metrics.breaker_opened.clone();
        let via = HeaderValue::from_str(&format!("1.1 {}", cluster.me().id))
            .map_err(|_| SetupError::Via)?;
        let targets = Targets::new(config, &cluster.me().id);
        let fill_limits = FillLimits::new(config, metrics.fill_limits.clone());
        Ok(Arc::new(Proxy {
            upstream,
            cache,
            cluster,
            metrics,
            heuristic_max: Duration::from_secs(config.heuristic_max_secs),
            grace: Duration::from_secs(config.grace_secs),
            hosts: HostTable::new(config)?,
            trusted_proxies: config.trusted_proxies.clone().into_boxed_slice(),
            via,
            targets,
            fill_limits,
            slow_reader: Duration::from_millis(config.slow_reader_ms),
            abandon_bytes: config.abandon_fill_bytes.0,
            // A slice is stored like any object, so it is never larger than one may be.
            slice_size: config.slice_size.0.min(config.max_object_size.0),
            max_request_body: usize::try_from(config.max_request_body.0).unwrap_or(usize::MAX),
            limits,
        }))
    }

    /// The node's background tasks (`crate::tasks`), which fills run under.
    pub fn tasks(&self) -> &crate::tasks::Tasks {
        self.cache.tasks()
    }

    /// The stored variant of `primary` this request selects (RFC 9111 4.1): the one under the
    /// URL's key, or the one beside it for this request's `Vary` values; and its key (borrowed
    /// when it is `primary`: a hit clones no key).
    pub(super) async fn stored_variant<'k>(
        &self,
        primary: &'k CacheKey,
        req_headers: &HeaderMap,
    ) -> Option<(Arc<HttpObject>, Cow<'k, CacheKey>)> {
        let first = self.stored_at(primary).await?;
        if first.selected_by(req_headers) {
            return Some((first, Cow::Borrowed(primary)));
        }
        let other = variant_key(primary, &first.vary_key_for(req_headers)?);
        let stored = self.stored_at(&other).await?;
        stored
            .selected_by(req_headers)
            .then_some((stored, Cow::Owned(other)))
    }

    /// The object stored under `key`, fresh or stale.
    async fn stored_at(&self, key: &CacheKey) -> Option<Arc<HttpObject>> {
        match self.cache.peek::<HttpObject>(key).await {
            CoreLookup::Fresh { value, .. } | CoreLookup::Stale { value, .. } => Some(value),
            CoreLookup::Miss => None,
        }
    }

    /// Answers one client request that arrived over `scheme` from `peer`.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        scheme: Scheme,
    ) -> Response<Body> {
        let host = match request::host(&req) {
            Ok(host) => host,
            Err(reason) => return self.error(StatusCode::BAD_REQUEST, reason),
        };
        // Looked up before the host moves into the request's path; plain HTTP has none.
        let hsts = match scheme {
            Scheme::Https => self.hosts.get(&host).hsts.clone(),
            Scheme::Http => None,
        };
        let (mut response, node) = self.answer(req, host, peer, scheme).await;
        match node {
            // Another node gets the directives for this cache (RFC 9213), and a signed answer.
            Some(node) => {
                let signed = self
                    .cluster
                    .sign_answer(&node.nonce, response.status(), None);
                if let Some(field) = signed {
                    response.headers_mut().insert(SIBLING_HEADER, field);
                }
            }
            None => {
                response.headers_mut().remove(policy::CDN_CACHE_CONTROL);
            }
        }
        if let Some(hsts) = hsts {
            response
                .headers_mut()
                .insert(header::STRICT_TRANSPORT_SECURITY, hsts);
        }
        response
    }

    /// The response, and the node of the cluster the request came from, if it did.
    async fn answer(
        self: &Arc<Self>,
        req: Request<Incoming>,
        host: String,
        peer: SocketAddr,
        scheme: Scheme,
    ) -> (Response<Body>, Option<Verified>) {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let (parts, body) = req.into_parts();
        let method = parts.method;
        let mut headers = parts.headers;
        let addr = peer.ip().to_canonical();
        let trusted = self.trusted_proxies.iter().any(|net| net.contains(&addr));
        let client = Client::new(addr, scheme, trusted, &headers);
        let target = Target {
            method: &method,
            host: &host,
            path: &path,
        };
        let sibling = self.filter_request(&mut headers, target, client.trusted);
        let from_sibling = sibling.is_some();
        let node = sibling.and_then(|s| s.verified);

        if !policy::is_cacheable_method(&method) {
            let response = self.read_and_pass(&host, &method, &path, headers, &client, body);
            return (response.await, node);
        }
        let ask = Ask {
            key: cache_key(&host, &path),
            request_cc: CacheControl::parse(&headers),
            host,
            path,
            headers,
            from_sibling,
            client: Some(client),
        };
        let response = match self.cached_response(&ask).await {
            Some(response) => response,
            None if ask.request_cc.only_if_cached => {
                self.count(CacheOutcome::Miss);
                self.error(StatusCode::GATEWAY_TIMEOUT, "only-if-cached: not in cache")
            }
            // A large object kept in slices, or a Range request that finds one.
            None => match self.sliced(&ask, &method).await {
                Some(response) => response,
                None => self.fetch(&ask).await,
            },
        };
        match method == Method::HEAD {
            true => (head_of(response), node),
            false => (response, node),
        }
    }

    /// A request the cache does not keep: its body read (up to `proxy.max_request_body`),
    /// then passed to the origin.
    async fn read_and_pass(
        &self,
        host: &str,
        method: &Method,
        path: &str,
        headers: HeaderMap,
        client: &Client,
        body: Incoming,
    ) -> Response<Body> {
        match read_body(body, self.max_request_body, &self.limits).await {
            Ok(body) => self.pass(host, method, path, headers, client, body).await,
            Err(error) => request::closing(self.error(error.status(), &error.to_string())),
        }
    }

    /// Makes a client's `headers` what the cache and the origin see: without hop-by-hop and
    /// override fields (`request`), without forwarding fields unless the client is a
    /// `trusted` proxy, with the normalised host. Whether the request comes from another
    /// node of the cluster (`sibling`).
    fn filter_request(
        &self,
        headers: &mut HeaderMap,
        target: Target<'_>,
        trusted: bool,
    ) -> Option<Sibling> {
        // Most requests have none of the fields the steps below remove or read.
        let sibling = if request::has_filtered_field(headers) {
            policy::strip_hop_by_hop(headers);
            request::remove_client_fields(headers, trusted);
            self.sibling_request(headers, target)
        } else {
            None
        };
        request::set_host(headers, target.host);
        sibling
    }

    /// A stored response this request may have (fresh, or stale where allowed), or None. A
    /// request answered here counts in the cache's statistics as a hit or a stale hit; one
    /// that is not counts where it is answered (`fetch`: a miss or coalesced; a sliced object:
    /// each slice's lookup), so each request counts once however many entries it looks at.
    async fn cached_response(self: &Arc<Self>, ask: &Ask) -> Option<Response<Body>> {
        let (response, outcome) = self.reuse_stored(ask).await?;
        self.count(outcome.counted_as());
        Some(response)
    }

    /// Counts one request in the cache's statistics (namespace `http`).
    fn count(&self, outcome: CacheOutcome) {
        self.cache.count(Namespace::Http, outcome);
    }

    /// A stored response this request may have, and how it may have it; not counted.
    async fn reuse_stored(self: &Arc<Self>, ask: &Ask) -> Option<(Response<Body>, ProxyOutcome)> {
        let (stored, slot) = self.stored_variant(&ask.key, &ask.headers).await?;
        if storable_reason(&stored).is_some() {
            return None;
        }
        let headers = stored.headers();
        let meta = stored.meta_with(&headers, SystemTime::now(), self.heuristic_max);
        let outcome = match policy::reuse(&meta, &ask.request_cc) {
            Reuse::Fresh => ProxyOutcome::Hit,
            Reuse::StaleWhileRevalidate => {
                self.refresh_in_background(ask, &slot);
                ProxyOutcome::StaleWhileRevalidate
            }
            Reuse::StaleAccepted => ProxyOutcome::MaxStale,
            _ => return None,
        };
        let response = self.serve_get(&stored, headers, meta.age, &ask.headers, outcome);
        Some((response, outcome))
    }

    /// A response from a stored object, whose fields `headers` are (`HttpObject::headers`, so no
    /// `Content-Length`: the body's own is sent): Age, conditional 304s, and single byte ranges.
    /// `serve` for a GET: how fills and stale answers reply from a stored object.
    fn serve_get(
        &self,
        stored: &HttpObject,
        headers: HeaderMap,
        age: Duration,
        req_headers: &HeaderMap,
        outcome: ProxyOutcome,
    ) -> Response<Body> {
        self.serve(&Method::GET, stored, headers, age, req_headers, outcome)
    }

    fn serve(
        &self,
        method: &Method,
        stored: &HttpObject,
        mut headers: HeaderMap,
        age: Duration,
        req_headers: &HeaderMap,
        outcome: ProxyOutcome,
    ) -> Response<Body> {
        let (status, headers, body) = if stored.status != StatusCode::OK {
            (stored.status, headers, stored.body.clone())
        } else if policy::not_modified(req_headers, &headers) {
            (StatusCode::NOT_MODIFIED, headers, Bytes::new())
        } else {
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            let len = stored.body.len() as u64;
            match policy::byte_range(method, req_headers, &headers, len) {
                Ok(None) => (StatusCode::OK, headers, stored.body.clone()),
                Ok(Some(range)) => {
                    let (start, end) = (range.first, range.last);
                    if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
                    {
                        headers.insert(header::CONTENT_RANGE, value);
                    }
                    let body = stored.body.slice(start as usize..=end as usize);
                    (StatusCode::PARTIAL_CONTENT, headers, body)
                }
                Err(_) => {
                    let mut headers = HeaderMap::new();
                    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                        headers.insert(header::CONTENT_RANGE, value);
                    }
                    (StatusCode::RANGE_NOT_SATISFIABLE, headers, Bytes::new())
                }
            }
        };
        // Hop-by-hop fields were removed before the object was stored.
        self.finish(status, headers, full(body), Some(age), outcome)
    }

    /// Requests the cache does not keep (unsafe methods) go to the origin and stream back; a
    /// successful unsafe method invalidates the stored URL (RFC 9111 4.4).
    async fn pass(
        &self,
        host: &str,
        method: &Method,
        path: &str,
        mut headers: HeaderMap,
        client: &Client,
        body: Bytes,
    ) -> Response<Body> {
        self.add_hop(&mut headers, Some(client), host);
        let _place = match self.fill_limits.admit(client.limit_key).await {
            Ok(place) => place,
            Err(error) => return self.upstream_error(&error),
        };
        let mut opened = match self.upstream.open(host, method, path, &headers, body).await {
            Ok(opened) => opened,
            Err(error) => return self.upstream_error(&error),
        };
        self.targets.settle(opened.response.headers_mut());
        if policy::invalidates(method, opened.response.status()) {
            self.purge(PurgeTarget::Url(&format!("{host}{path}")), PurgeMode::Hard)
                .await;
        }
        let (parts, body) = opened.response.into_parts();
        let body = body
            .map_err(|e| Box::new(e) as crate::http_server::BoxError)
            .boxed();
        self.respond_with(
            parts.status,
            parts.headers,
            body,
            None,
            ProxyOutcome::Bypass,
        )
    }

    fn respond(
        &self,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        age: Option<Duration>,
        outcome: ProxyOutcome,
    ) -> Response<Body> {
        self.respond_with(status, headers, full(body), age, outcome)
    }

    /// A response with Age, Via and Cache-Status added and hop-by-hop fields removed.
    fn respond_with(
        &self,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Body,
        age: Option<Duration>,
        outcome: ProxyOutcome,
    ) -> Response<Body> {
        policy::strip_hop_by_hop(&mut headers);
        self.finish(status, headers, body, age, outcome)
    }

    /// Age, Via and Cache-Status added to `headers`.
    fn finish(
        &self,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Body,
        age: Option<Duration>,
        outcome: ProxyOutcome,
    ) -> Response<Body> {
        if let Some(age) = age {
            headers.insert(header::AGE, HeaderValue::from(age.as_secs()));
        }
        headers.append(header::VIA, self.via.clone());
        headers.insert(CACHE_STATUS, outcome.cache_status());
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }

    /// This node as a hop of a request it forwards: the client's address and how it connected
    /// (`forwarded`), or for a request of the node's own (a preload), only `Via`; and what it
    /// reads of the origin's targeted directives (`Surrogate-Capability`).
    fn add_hop(&self, headers: &mut HeaderMap, client: Option<&Client>, host: &str) {
        self.targets.announce(headers);
        match client {
            Some(client) => forwarded::add_hop(headers, client, host, &self.via),
            None => {
                headers.append(header::VIA, self.via.clone());
            }
        }
    }

    fn upstream_error(&self, error: &FetchError) -> Response<Body> {
        let (side, retry_safe) = (error.side(), error.retry_safe());
        tracing::debug!(%error, ?side, retry_safe, "origin failed");
        if let FetchError::ServerError(fetched) = error {
            let (status, headers, body) = (
                fetched.status,
                fetched.headers.clone(),
                fetched.body.clone(),
            );
            return self.respond(status, headers, body, None, ProxyOutcome::OriginError);
        }
        let mut response = self.error(error.status(), &error.to_string());
        if let Some(seconds) = error.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
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
            ProxyOutcome::Forwarded,
        )
    }
}

/// A GET's response as the answer to a HEAD: the GET response's length, without its body
/// (RFC 9110 9.3.2).
fn head_of(mut response: Response<Body>) -> Response<Body> {
    let length = hyper::body::Body::size_hint(response.body()).exact();
    if let Some(length) = length
        && !response.headers().contains_key(header::CONTENT_LENGTH)
    {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    *response.body_mut() = full(Bytes::new());
    response
}

fn storable_reason(stored: &HttpObject) -> Option<&'static str> {
    stored.not_storable.map(policy::NotStorable::as_str)
}
