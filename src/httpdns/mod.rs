//! HTTPDNS and DNS over HTTPS on top of the DNS handler: every request becomes a DNS query
//! answered by `dns::handler::DnsHandler` (zones, geo policies, recursion, its cache), so for
//! one name and client location HTTPDNS and port 53 give the same answer.
//!
//! Endpoints (see docs/httpdns.md): DNSPod / Tencent Cloud `GET /d`
//! (plain, DES, AES, HTTPS token; `dnspod.rs`), Alibaba Cloud `GET /{account}/d`,
//! `/{account}/resolve`, the signed `sign_d` / `sign_resolve` (`alibaba.rs`), its scheduling
//! request `/{account}/ss` (`schedule.rs`) and its v2 API `GET /v2/d` (`alibaba_v2.rs`), JSON DoH
//! `GET /resolve` and `GET /dns-query?name=`, RFC 8484 `GET /dns-query?dns=` and
//! `POST /dns-query` (`api.rs`). Accounts, signatures and budgets are in `accounts.rs`, the
//! per-client budget in `client_limit.rs`.

mod accounts;
mod alibaba;
mod alibaba_cipher;
mod alibaba_v2;
mod api;
mod client_limit;
mod dnspod;
mod dnspod_cipher;
mod doh_json;
mod hex;
mod question;
mod render;
mod rendered;
mod schedule;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Request, Response, StatusCode};
use ipnet::IpNet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::config::HttpDnsConfig;
use crate::dns::handler::DnsHandler;
use crate::http_server::{Body, Limits};
use crate::metrics::HttpRequestLabels;
use accounts::Account;
use client_limit::ClientLimiter;
use dnspod_cipher::DnspodKeys;
use question::Params;

/// A request's endpoint, for routing and the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Dnspod,
    AccountD,
    AccountResolve,
    SignD,
    SignResolve,
    Schedule,
    V2,
    JsonDoh,
    Rfc8484,
    Unknown,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Dnspod => "dnspod",
            Endpoint::AccountD => "d",
            Endpoint::AccountResolve => "resolve",
            Endpoint::SignD => "sign_d",
            Endpoint::SignResolve => "sign_resolve",
            Endpoint::Schedule => "ss",
            Endpoint::V2 => "v2_d",
            Endpoint::JsonDoh => "json",
            Endpoint::Rfc8484 => "dns-message",
            Endpoint::Unknown => "unknown",
        }
    }
}

/// How the request reached the node: the scheduling answer names listeners of the same kind,
/// and HTTPS-only accounts refuse plain HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// This node's own HTTPDNS listeners, as bound: what `/{account}/ss` answers when there is no
/// cluster to choose from.
#[derive(Clone, Debug, Default)]
pub struct Listeners {
    pub plain: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
}

/// The HTTPDNS service; shared by every connection behind an Arc.
pub struct HttpDns {
    dns: DnsHandler,
    accounts: HashMap<String, Account>,
    /// DNSPod authorisations by `id`: keys for `alg=des|aes`, the HTTPS token.
    dnspod_keys: HashMap<String, DnspodKeys>,
    /// Peers allowed to name the client in X-Forwarded-For.
    trusted_proxies: Vec<IpNet>,
    max_hosts: usize,
    max_body: usize,
    /// How far in the future a signature's expiry may lie, in seconds.
    max_signature_lifetime: u64,
    /// The body read timeout, and the metric of clients stopped by a limit.
    limits: Limits,
    /// Per client (an IPv4 address or an IPv6 prefix); None: unlimited.
    client_limiter: Option<ClientLimiter>,
    listeners: Listeners,
    requests: Family<HttpRequestLabels, Counter>,
}

/// An answer to give instead of a result: status and a JSON error body.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    fn too_many(message: &str, wait: Duration) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message);
        error.retry_after = Some(wait);
        error
    }

    fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({"code": self.code, "error": self.message});
        let mut response = render::json(self.status, &body);
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
        }
        response
    }
}

fn quota(rate: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst.max(rate.get())).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// How often idle per-client rate-limit state is dropped, bounding its memory.
const LIMITER_SWEEP: Duration = Duration::from_secs(60);

impl HttpDns {
    pub fn new(
        config: &HttpDnsConfig,
        limits: Limits,
        dns: DnsHandler,
        requests: Family<HttpRequestLabels, Counter>,
        listeners: Listeners,
    ) -> Arc<HttpDns> {
        let accounts = config
            .accounts
            .iter()
            .map(|a| {
                let account = Account {
                    secret: a.secret.clone().filter(|s| !s.is_empty()),
                    v2_mac: a
                        .secret
                        .as_deref()
                        .filter(|s| !s.is_empty())
                        .and_then(accounts::v2_key),
                    require_signature: a.require_signature,
                    https_only: a.https_only,
                    aes_key: a
                        .aes_key
                        .as_deref()
                        .and_then(crate::config::account_aes_key),
                    limiter: quota(a.rate, a.burst).map(RateLimiter::direct),
                };
                (a.id.clone(), account)
            })
            .collect();
        let dnspod_keys = config
            .dnspod_keys
            .iter()
            .map(|k| (k.id.clone(), DnspodKeys::new(k)))
            .collect();
        let client_limiter = quota(config.client_rate, config.client_burst)
            .map(|q| ClientLimiter::new(q, config.client_prefix_v6));
        Arc::new(HttpDns {
            dns,
            accounts,
            dnspod_keys,
            trusted_proxies: config.trusted_proxies.clone(),
            max_hosts: config.max_hosts,
            max_body: config.max_body,
            max_signature_lifetime: config.max_signature_lifetime,
            limits,
            client_limiter,
            listeners,
            requests,
        })
    }

    /// Drops idle per-client limiter state now and then, until `shutdown`.
    pub async fn sweep_limiters(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let Some(limiter) = &self.client_limiter else {
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(LIMITER_SWEEP) => limiter.retain_recent(),
            }
        }
    }

    /// Routes one request that arrived over `scheme`; never fails: errors become their HTTP
    /// answer.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        scheme: Scheme,
    ) -> Response<Body> {
        let client = self.client_address(req.headers(), peer);
        let (parts, body) = req.into_parts();
        let (mut endpoint, account) = route(parts.uri.path());
        let params = Params::parse(parts.uri.query());
        // `GET /dns-query?name=` is the JSON flavour (Cloudflare's), `?dns=` the RFC 8484 one.
        if endpoint == Endpoint::Rfc8484 && params.get("name").is_some() {
            endpoint = Endpoint::JsonDoh;
        }
        let request = ApiRequest {
            endpoint,
            account,
            parts: &parts,
            params: &params,
            client,
            scheme,
        };
        let response = match self.admit(client) {
            Err(error) => self.error_response(&request, error),
            Ok(()) => match self.dispatch(&request, body).await {
                Ok(response) => response,
                Err(error) => self.error_response(&request, error),
            },
        };
        let labels = HttpRequestLabels {
            endpoint: endpoint.as_str(),
            status: response.status().as_u16(),
        };
        self.requests.get_or_create(&labels).inc();
        response
    }

    async fn dispatch(
        &self,
        req: &ApiRequest<'_>,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let endpoint = req.endpoint;
        let get_only = endpoint != Endpoint::Rfc8484 && endpoint != Endpoint::Unknown;
        if get_only && req.parts.method != hyper::Method::GET {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "use GET",
            ));
        }
        match endpoint {
            Endpoint::Dnspod => self.dnspod(req).await,
            Endpoint::AccountD
            | Endpoint::SignD
            | Endpoint::AccountResolve
            | Endpoint::SignResolve => self.account_api(req).await,
            Endpoint::Schedule => self.schedule(req),
            Endpoint::V2 => self.v2(req).await,
            Endpoint::JsonDoh => self.json_doh(req.parts, req.params, req.client).await,
            Endpoint::Rfc8484 => {
                self.dns_query(req.parts, body, req.params, req.client)
                    .await
            }
            Endpoint::Unknown => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                "no such endpoint",
            )),
        }
    }

    /// Errors in the shape each API's clients read.
    fn error_response(&self, req: &ApiRequest<'_>, error: ApiError) -> Response<Body> {
        match req.endpoint {
            Endpoint::Dnspod => dnspod::error_response(error),
            _ => error.into_response(),
        }
    }

    /// The client: the peer, or the last X-Forwarded-For hop when the peer is a trusted proxy;
    /// an IPv4-mapped IPv6 address is the IPv4 address it maps.
    fn client_address(&self, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
        let peer = peer.ip().to_canonical();
        if !self.trusted_proxies.iter().any(|net| net.contains(&peer)) {
            return peer;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .next_back()
            .map_or(peer, |ip| ip.to_canonical())
    }

    fn admit(&self, client: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.client_limiter else {
            return Ok(());
        };
        limiter
            .check(client)
            .map_err(|wait| ApiError::too_many("rate limit for this client", wait))
    }
}

/// One request as the endpoints see it.
struct ApiRequest<'r> {
    endpoint: Endpoint,
    /// The account named in the path (`/{account}/...`).
    account: Option<&'r str>,
    parts: &'r Parts,
    params: &'r Params<'r>,
    client: IpAddr,
    scheme: Scheme,
}

/// `/d`, `/resolve`, `/dns-query`, `/v2/d`, `/{account}/{d,resolve,sign_d,sign_resolve,ss}`.
fn route(path: &str) -> (Endpoint, Option<&str>) {
    match path {
        "/d" => return (Endpoint::Dnspod, None),
        "/resolve" => return (Endpoint::JsonDoh, None),
        "/dns-query" => return (Endpoint::Rfc8484, None),
        "/v2/d" => return (Endpoint::V2, None),
        _ => {}
    }
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (Some(account), Some(action)) = (parts.next(), parts.next()) else {
        return (Endpoint::Unknown, None);
    };
    let endpoint = match action {
        "d" => Endpoint::AccountD,
        "resolve" => Endpoint::AccountResolve,
        "sign_d" => Endpoint::SignD,
        "sign_resolve" => Endpoint::SignResolve,
        "ss" => Endpoint::Schedule,
        _ => return (Endpoint::Unknown, None),
    };
    (endpoint, Some(account))
}
