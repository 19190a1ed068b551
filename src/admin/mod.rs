//! The admin HTTP listener: `GET /metrics` (Prometheus text), `GET /healthz`, `GET /readyz`,
//! `POST /admin/reload`, purge, and preload jobs (`preload`). `/admin/*` needs
//! `Authorization: Bearer <admin.token>` when a token is configured (and config validation
//! requires one beyond loopback). The same routes are served on `admin.listen` (plain HTTP,
//! where the other nodes of a cluster call) and on `admin.tls_listen` (TLS, optionally with
//! client certificates from `admin.client_ca`).

mod cluster;
pub mod preload;

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::cache::PurgeMode;
use crate::cluster::Cluster;
use crate::dns::recursion::Recursion;
use crate::metrics::Metrics;
use crate::proxy::{Proxy, PurgeTarget};
use crate::reload::Reloader;
use hickory_proto::rr::Name;
use preload::Preloader;

/// Shared by every admin connection; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    metrics: Arc<Metrics>,
    reloader: Reloader,
    /// Bearer token for `/admin/*`; None leaves them open (loopback only, enforced by config).
    token: Option<Arc<str>>,
    /// Lowercased host names `/admin/*` answers to besides IP literals and `localhost`.
    names: Arc<[String]>,
    /// For `/admin/dns/flush`; None when recursion is off (nothing is cached).
    recursion: Option<Arc<Recursion>>,
    /// For `/admin/purge`.
    proxy: Arc<Proxy>,
    /// For heartbeats and `/admin/cluster`.
    cluster: Arc<Cluster>,
    /// Runs and keeps `/admin/preload` jobs.
    preload: Arc<Preloader>,
}

use crate::http_server::{Body, Limits, full};

impl Admin {
    pub fn new(
        metrics: Arc<Metrics>,
        reloader: Reloader,
        access: &crate::config::AdminConfig,
        recursion: Option<Arc<Recursion>>,
        proxy: Arc<Proxy>,
        cluster: Arc<Cluster>,
        preload: Arc<Preloader>,
    ) -> Self {
        Self {
            metrics,
            reloader,
            token: access
                .token
                .clone()
                .filter(|t| !t.is_empty())
                .map(Arc::from),
            names: access
                .names
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .collect(),
            recursion,
            proxy,
            cluster,
            preload,
        }
    }

    /// Serves admin requests on `listener` (over TLS with `tls`: `admin.tls_listen`) until
    /// `shutdown`, then lets open requests finish. Both listeners serve the same routes under
    /// the same rules: TLS keeps the token from the wire, it does not replace it.
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        limits: Limits,
        shutdown: CancellationToken,
    ) {
        let handler = move |req, _peer| {
            let admin = self.clone();
            async move { admin.route(req).await }
        };
        crate::http_server::serve(listener, tls, handler, limits, shutdown).await;
    }

    async fn route(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        if path.starts_with("/admin/") {
            if let Err(reason) = self.same_site(&req) {
                return text(StatusCode::FORBIDDEN, reason);
            }
            if !self.authorized(&req) {
                return text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
            }
        }
        let query = req.uri().query().unwrap_or("");
        let endpoint = match Endpoint::of(req.method(), path) {
            Some(Ok(endpoint)) => endpoint,
            Some(Err(MethodNotAllowed)) => {
                return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            }
            None => return text(StatusCode::NOT_FOUND, "not found\n"),
        };
        match endpoint {
            Endpoint::Metrics => {
                let mut response = text(StatusCode::OK, self.metrics.render());
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            Endpoint::Health => text(StatusCode::OK, "ok\n"),
            // What peers learn of this node: its id, region, addresses and weight.
            Endpoint::Heartbeat => self.heartbeat(&req),
            Endpoint::ClusterStatus => json(StatusCode::OK, self.cluster.status()),
            Endpoint::Reload => match self.reloader.reload().await {
                Ok(summary) => json(
                    StatusCode::OK,
                    serde_json::json!({"status": "ok", "loaded": summary}),
                ),
                Err(error) => json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    serde_json::json!({"status": "failed", "errors": error.lines(), "serving": "previous state"}),
                ),
            },
            Endpoint::Flush => self.flush(query).await,
            Endpoint::Purge => self.purge(&QueryParams::parse(query)).await,
            Endpoint::PeerPurge => self.peer_purge(&req).await,
            Endpoint::PreloadStart => {
                let query = query.to_string();
                preload::post(&self.preload, req, &query).await
            }
            Endpoint::PreloadJobs => json(StatusCode::OK, self.preload.jobs()),
            Endpoint::PreloadJob => preload::get(&self.preload, &path["/admin/preload/".len()..]),
        }
    }

    /// `POST /admin/dns/flush?name=NAME[&soft=1]`: forget (or mark stale) a name's cached answers.
    async fn flush(&self, query: &str) -> Response<Body> {
        let params = QueryParams::parse(query);
        let (name, mode) = (params.get("name"), params.mode());
        let Some(recursion) = &self.recursion else {
            return json(
                StatusCode::CONFLICT,
                serde_json::json!({"error": "recursion is off: nothing is cached"}),
            );
        };
        let parsed = name.map(|n| {
            Name::from_ascii(n).map(|mut n| {
                n.set_fqdn(true);
                n
            })
        });
        let name = match parsed {
            Some(Ok(name)) => name,
            Some(Err(e)) => {
                return json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": format!("name: {e}")}),
                );
            }
            None => {
                return json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": "name= is required"}),
                );
            }
        };
        let flushed = recursion.flush(&name, mode).await;
        json(
            StatusCode::OK,
            serde_json::json!({"name": name.to_ascii(), "flushed": flushed}),
        )
    }

    /// `POST /admin/purge?url=U|prefix=P|tag=T[&soft=1]`: remove (or mark stale) cached
    /// objects on this node: the answer's status and body.
    async fn purge_here(&self, params: &QueryParams) -> (StatusCode, serde_json::Value) {
        let target = match (params.get("url"), params.get("prefix"), params.get("tag")) {
            (Some(url), None, None) => PurgeTarget::Url(url),
            (None, Some(prefix), None) => PurgeTarget::Prefix(prefix),
            (None, None, Some(tag)) => PurgeTarget::Tag(tag),
            _ => {
                let error = "give exactly one of url=, prefix=, tag=";
                return (StatusCode::BAD_REQUEST, serde_json::json!({"error": error}));
            }
        };
        let mode = params.mode();
        let purged = self.proxy.purge(target, mode).await;
        let mode = if mode == PurgeMode::Soft {
            "soft"
        } else {
            "hard"
        };
        (
            StatusCode::OK,
            serde_json::json!({"purged": purged, "mode": mode}),
        )
    }

    /// Refuses what a web page in a browser on the node could send (CSRF, DNS rebinding): a
    /// `Host` that is neither an IP literal, `localhost` nor one of `admin.names`, and any
    /// state-changing request a browser made for another site (`Origin`, `Sec-Fetch-Site`).
    /// The API's clients (curl, `edgenode purge`, other nodes) send none of these.
    fn same_site(&self, req: &Request<Incoming>) -> Result<(), &'static str> {
        let host = req
            .uri()
            .host()
            .map(str::to_string)
            .or_else(|| {
                let line = req.headers().get(hyper::header::HOST)?.to_str().ok()?;
                let host = match line.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or_default(),
                    None => line.rsplit_once(':').map_or(line, |(h, _)| h),
                };
                Some(host.to_string())
            })
            .unwrap_or_default()
            .to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let known = host.parse::<std::net::IpAddr>().is_ok()
            || host == "localhost"
            || self.names.iter().any(|n| n == host);
        if !known {
            return Err("this Host is not one the admin API answers to (admin.names)\n");
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let cross_site = req
                .headers()
                .get("sec-fetch-site")
                .is_some_and(|v| v != "same-origin" && v != "none");
            if req.headers().contains_key(hyper::header::ORIGIN) || cross_site {
                return Err("a browser's request from a web page is refused\n");
            }
        }
        Ok(())
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes()))
    }
}

/// What the admin listener serves; each path is named once, here and in `Endpoint::of`.
#[derive(Clone, Copy)]
enum Endpoint {
    Metrics,
    /// `/healthz` and `/readyz`.
    Health,
    Heartbeat,
    ClusterStatus,
    Reload,
    Flush,
    Purge,
    PeerPurge,
    PreloadStart,
    PreloadJobs,
    /// `/admin/preload/<id>`.
    PreloadJob,
}

/// A known path asked with a method it does not answer.
struct MethodNotAllowed;

impl Endpoint {
    /// The endpoint at `path` for `method`; None for a path the admin does not serve.
    fn of(method: &Method, path: &str) -> Option<Result<Endpoint, MethodNotAllowed>> {
        let (answers, endpoint) = match path {
            "/metrics" => (Method::GET, Endpoint::Metrics),
            "/healthz" | "/readyz" => (Method::GET, Endpoint::Health),
            "/cluster/heartbeat" => (Method::GET, Endpoint::Heartbeat),
            "/admin/cluster" => (Method::GET, Endpoint::ClusterStatus),
            "/admin/reload" => (Method::POST, Endpoint::Reload),
            "/admin/dns/flush" => (Method::POST, Endpoint::Flush),
            "/admin/purge" => (Method::POST, Endpoint::Purge),
            "/cluster/purge" => (Method::POST, Endpoint::PeerPurge),
            "/admin/preload" if method == Method::POST => (Method::POST, Endpoint::PreloadStart),
            "/admin/preload" => (Method::GET, Endpoint::PreloadJobs),
            _ if path.starts_with("/admin/preload/") => (Method::GET, Endpoint::PreloadJob),
            _ => return None,
        };
        Some(if method == answers {
            Ok(endpoint)
        } else {
            Err(MethodNotAllowed)
        })
    }
}

/// A query string, percent-decoded (`name=`, `url=` may carry escaped characters).
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(query: &str) -> Self {
        Self(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `soft=1` marks entries stale instead of removing them.
    fn mode(&self) -> PurgeMode {
        match self.get("soft") {
            Some("1" | "true") => PurgeMode::Soft,
            _ => PurgeMode::Hard,
        }
    }
}

/// Compares without an early exit, so response timing does not reveal the token's prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(status: StatusCode, value: impl serde::Serialize) -> Response<Body> {
    let text = serde_json::to_string(&value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    let mut response = Response::new(full(text + "\n"));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
