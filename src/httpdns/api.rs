//! The endpoints: each turns its parameters into DNS queries for the DNS handler and renders
//! the answers in the shape its clients expect.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use hickory_proto::rr::RecordType;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use ipnet::IpNet;

use super::question::{ClientIps, Params, QueryName, Question, parse_type};
use super::render::{self, FamilyAnswer, HostAnswer};
use super::rendered::{self, Rendering};
use super::{ApiError, HttpDns, doh_json};
use crate::dns::handler::{Reply, Transport};
use crate::http_server::{Body, BodyError, read_body};

impl HttpDns {
    /// Asks the DNS handler, as a query from `client` would on port 53; the wire response.
    async fn ask(&self, question: &Question<'_>, client: IpAddr) -> Result<Vec<u8>, ApiError> {
        self.exchange(&question.encode(), client).await
    }

    /// Wire-format query in, wire-format response out, through the DNS handler.
    async fn exchange(&self, query: &[u8], client: IpAddr) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::with_capacity(512);
        let src = SocketAddr::new(client, 0);
        let reply = match self.dns.respond(query, src, Transport::Https, &mut out) {
            // Boxed: recursion's future (cache fill, upstream exchange) is kilobytes, and
            // inline it would make every request's future that large, copied whole each time
            // hyper spawns and polls it, authoritative answers included.
            Reply::Recurse(pending) => Box::pin(self.dns.recurse(*pending, &mut out)).await,
            reply => reply,
        };
        match reply {
            Reply::Send(_) => Ok(out),
            _ => Err(ApiError::bad_request("InvalidQuery", "not a DNS query")),
        }
    }

    /// The addresses of `name` for each family of `families`, each asked with the client
    /// address of its family from `ips` (else the peer's).
    pub(super) async fn lookup_host(
        &self,
        name: &QueryName,
        families: Families,
        ips: &ClientIps,
        client: IpAddr,
    ) -> Result<HostAnswer, ApiError> {
        let mut answer = HostAnswer {
            host: name.host(),
            v4: None,
            v6: None,
        };
        for (wanted, rtype) in [
            (families.v4, RecordType::A),
            (families.v6, RecordType::AAAA),
        ] {
            if !wanted {
                continue;
            }
            let question = Question {
                name,
                rtype,
                subnet: ips.subnet_for(rtype),
                checking_disabled: false,
                dnssec_ok: false,
            };
            let family = FamilyAnswer::from_wire(&self.ask(&question, client).await?);
            let family = Some(family.ok_or_else(malformed)?);
            match rtype {
                RecordType::A => answer.v4 = family,
                _ => answer.v6 = family,
            }
        }
        Ok(answer)
    }

    /// The names of a request: `text` split at commas when `batch`, each checked, at most
    /// `max_hosts` of them.
    pub(super) fn names(
        &self,
        text: Option<&str>,
        param: &str,
        batch: bool,
    ) -> Result<Vec<QueryName>, ApiError> {
        let hosts: Vec<&str> = match (text, batch) {
            (Some(h), true) => h.split(',').filter(|h| !h.is_empty()).collect(),
            (Some(h), false) => vec![h],
            (None, _) => Vec::new(),
        };
        if hosts.is_empty() {
            let message = format!("{param} is required");
            return Err(ApiError::bad_request("MissingArgument", message));
        }
        if hosts.len() > self.max_hosts {
            let message = format!(
                "{} hosts; at most {} per request",
                hosts.len(),
                self.max_hosts
            );
            return Err(ApiError::bad_request("TooManyHosts", message));
        }
        hosts
            .iter()
            .map(|h| QueryName::parse(Some(h), param))
            .collect()
    }

    /// JSON DoH (Google / Cloudflare): `GET /resolve?name=&type=[&edns_client_subnet=][&cd=][&do=]`.
    pub(super) async fn json_doh(
        &self,
        req: &Parts,
        params: &Params<'_>,
        client: IpAddr,
    ) -> Result<Response<Body>, ApiError> {
        let name = QueryName::parse(params.get("name"), "name")?;
        let rtype = parse_type(params.get("type"))?;
        let subnet = params
            .get("edns_client_subnet")
            .map(|s| {
                let parsed = s
                    .parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from));
                parsed.map(|n| n.trunc()).map_err(|_| {
                    ApiError::bad_request(
                        "InvalidSubnet",
                        format!("edns_client_subnet={s:?} is not an address/prefix"),
                    )
                })
            })
            .transpose()?;
        let question = Question {
            name: &name,
            rtype,
            subnet,
            checking_disabled: params.flag("cd"),
            dnssec_ok: params.flag("do"),
        };
        let wire = self.ask(&question, client).await?;
        let accept = req
            .headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let content_type = if accept.contains("application/dns-json") {
            "application/dns-json"
        } else {
            "application/json"
        };
        let render = || {
            Some(Rendering {
                body: doh_json::render(&wire, subnet)?.into(),
                cache_control: render::cache_control(&wire),
            })
        };
        let rendering = rendered::get_or_render(&wire, subnet, render);
        let Rendering {
            body,
            cache_control,
        } = rendering.ok_or_else(malformed)?;
        Ok(render::dns_response(content_type, body, cache_control))
    }

    /// RFC 8484: `GET /dns-query?dns=BASE64URL` and `POST /dns-query` (application/dns-message).
    pub(super) async fn dns_query(
        &self,
        req: &Parts,
        body: Incoming,
        params: &Params<'_>,
        client: IpAddr,
    ) -> Result<Response<Body>, ApiError> {
        let query = match req.method {
            Method::GET => {
                let encoded = params.get("dns").ok_or_else(|| {
                    ApiError::bad_request("MissingArgument", "dns= (or name=) is required")
                })?;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(encoded.trim_end_matches('='))
                    .map_err(|e| ApiError::bad_request("InvalidQuery", format!("dns=: {e}")))?
            }
            Method::POST => self.read_body(req, body).await?,
            _ => {
                return Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "use GET or POST",
                ));
            }
        };
        let response = self.exchange(&query, client).await?;
        let cache_control = render::cache_control(&response);
        Ok(render::dns_response(
            "application/dns-message",
            response,
            cache_control,
        ))
    }

    async fn read_body(&self, req: &Parts, body: Incoming) -> Result<Vec<u8>, ApiError> {
        let content_type = req
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type != "application/dns-message" {
            let message =
                format!("Content-Type {content_type:?}; application/dns-message expected");
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                message,
            ));
        }
        let too_large = || {
            let message = format!("a DNS query body is at most {} bytes", self.max_body);
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", message)
        };
        let body =
            read_body(body, self.max_body, &self.limits)
                .await
                .map_err(|error| match error {
                    BodyError::TooLarge(_) => too_large(),
                    BodyError::Timeout(_) => {
                        ApiError::new(error.status(), "RequestTimeout", error.to_string())
                    }
                    _ => ApiError::new(error.status(), "MalformedBody", error.to_string()),
                })?;
        Ok(body.to_vec())
    }
}

/// Which address families a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Families {
    pub(super) v4: bool,
    pub(super) v6: bool,
}

impl Families {
    pub(super) const V4: Families = Families {
        v4: true,
        v6: false,
    };

    /// `4`, `6`, `4,6` (Alibaba `query=`, v2 `q=`); absent: `default`.
    pub(super) fn parse(
        text: Option<&str>,
        param: &str,
        default: Families,
    ) -> Result<Families, ApiError> {
        let Some(text) = text else {
            return Ok(default);
        };
        let mut families = Families {
            v4: false,
            v6: false,
        };
        for part in text.split(',') {
            match part.trim() {
                "4" => families.v4 = true,
                "6" => families.v6 = true,
                other => {
                    return Err(ApiError::bad_request(
                        "InvalidQuery",
                        format!("{param}={other:?}: use 4, 6 or 4,6"),
                    ));
                }
            }
        }
        Ok(families)
    }
}

/// The DNS handler's response could not be read: never expected, as it wrote it.
pub(super) fn malformed() -> ApiError {
    let message = "the DNS response could not be read";
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
}
