//! HTTPDNS and DNS over HTTPS on top of the DNS handler: every request becomes a DNS query
//! answered by `dns::handler::DnsHandler` (zones, geo policies, recursion, its cache), so for
//! one name and client location HTTPDNS and port 53 give the same answer.
//!
//! Endpoints (see README "HTTPDNS"): DNSPod `GET /d`, Alibaba Cloud `GET /{account}/d`,
//! `/{account}/resolve` and the signed `sign_d` / `sign_resolve`, JSON DoH `GET /resolve` and
//! `GET /dns-query?name=`, RFC 8484 `GET /dns-query?dns=` and `POST /dns-query`.

mod api;
mod doh_json;
mod question;
mod render;
mod rendered;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
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
use question::Params;

/// A request's endpoint, for routing and the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Dnspod,
    AccountD,
    AccountResolve,
    SignD,
    SignResolve,
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
            Endpoint::JsonDoh => "json",
            Endpoint::Rfc8484 => "dns-message",
            Endpoint::Unknown => "unknown",
        }
    }
}

/// An account of the Alibaba-style API.
struct Account {
    secret: Option<String>,
    require_signature: bool,
    /// The account's own request budget; None: unlimited.
    limiter: Option<DefaultDirectRateLimiter>,
}

/// The HTTPDNS service; shared by every connection behind an Arc.
pub struct HttpDns {
    dns: DnsHandler,
    accounts: HashMap<String, Account>,
    /// Peers allowed to name the client in X-Forwarded-For.
    trusted_proxies: Vec<IpNet>,
    max_hosts: usize,
    max_body: usize,
    /// The body read timeout, and the metric of clients stopped by a limit.
    limits: Limits,
    /// Per client address; None: unlimited.
    client_limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
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
    ) -> Arc<HttpDns> {
        let accounts = config
            .accounts
            .iter()
            .map(|a| {
                let account = Account {
                    secret: a.secret.clone().filter(|s| !s.is_empty()),
                    require_signature: a.require_signature,
                    limiter: quota(a.rate, a.burst).map(RateLimiter::direct),
                };
                (a.id.clone(), account)
            })
            .collect();
        Arc::new(HttpDns {
            dns,
            accounts,
            trusted_proxies: config.trusted_proxies.clone(),
            max_hosts: config.max_hosts,
            max_body: config.max_body,
            limits,
            client_limiter: quota(config.client_rate, config.client_burst).map(RateLimiter::keyed),
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

    /// Routes one request; never fails: errors become their HTTP answer.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let client = self.client_address(req.headers(), peer);
        let (parts, body) = req.into_parts();
        let (mut endpoint, account) = route(parts.uri.path());
        let params = Params::parse(parts.uri.query());
        // `GET /dns-query?name=` is the JSON flavour (Cloudflare's), `?dns=` the RFC 8484 one.
        if endpoint == Endpoint::Rfc8484 && params.get("name").is_some() {
            endpoint = Endpoint::JsonDoh;
        }
        let response = match self.admit(client) {
            Err(error) => error.into_response(),
            Ok(()) => match self
                .dispatch(endpoint, account, &parts, body, &params, client)
                .await
            {
                Ok(response) => response,
                Err(error) => error.into_response(),
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
        endpoint: Endpoint,
        account: Option<&str>,
        req: &Parts,
        body: Incoming,
        params: &Params<'_>,
        client: IpAddr,
    ) -> Result<Response<Body>, ApiError> {
        let get_only = endpoint != Endpoint::Rfc8484 && endpoint != Endpoint::Unknown;
        if get_only && req.method != hyper::Method::GET {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "use GET",
            ));
        }
        if let Some(id) = account {
            self.check_account(endpoint, id)?;
        }
        match endpoint {
            Endpoint::Dnspod => self.dnspod(params, client).await,
            Endpoint::AccountD
            | Endpoint::SignD
            | Endpoint::AccountResolve
            | Endpoint::SignResolve => self.account_api(endpoint, account, params, client).await,
            Endpoint::JsonDoh => self.json_doh(req, params, client).await,
            Endpoint::Rfc8484 => self.dns_query(req, body, params, client).await,
            Endpoint::Unknown => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                "no such endpoint",
            )),
        }
    }

    /// The client: the peer, or the last X-Forwarded-For hop when the peer is a trusted proxy.
    fn client_address(&self, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
        let peer = peer.ip();
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
            .unwrap_or(peer)
    }

    fn admit(&self, client: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.client_limiter else {
            return Ok(());
        };
        limiter.check_key(&client).map_err(|not_until| {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "rate limit for this client",
            );
            error.retry_after = Some(not_until.wait_time_from(DefaultClock::default().now()));
            error
        })
    }

    /// Unknown accounts and unsigned requests to signing accounts are refused; the account's
    /// own rate limit applies.
    fn check_account(&self, endpoint: Endpoint, id: &str) -> Result<(), ApiError> {
        let Some(account) = self.accounts.get(id) else {
            return Err(ApiError::forbidden(
                "InvalidAccount",
                format!("unknown account {id:?}"),
            ));
        };
        let signed = matches!(endpoint, Endpoint::SignD | Endpoint::SignResolve);
        if account.require_signature && !signed {
            return Err(ApiError::forbidden(
                "SignatureRequired",
                "this account accepts signed requests only",
            ));
        }
        if let Some(limiter) = &account.limiter {
            limiter.check().map_err(|not_until| {
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "rate limit for this account",
                );
                error.retry_after = Some(not_until.wait_time_from(DefaultClock::default().now()));
                error
            })?;
        }
        Ok(())
    }
}

/// `/d`, `/resolve`, `/dns-query`, `/{account}/{d,resolve,sign_d,sign_resolve}`.
fn route(path: &str) -> (Endpoint, Option<&str>) {
    match path {
        "/d" => return (Endpoint::Dnspod, None),
        "/resolve" => return (Endpoint::JsonDoh, None),
        "/dns-query" => return (Endpoint::Rfc8484, None),
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
        _ => return (Endpoint::Unknown, None),
    };
    (endpoint, Some(account))
}
