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
use md5::{Digest, Md5};

use super::question::{Params, QueryName, Question, parse_ip, parse_type};
use super::render::{self, HostAnswer};
use super::rendered::{self, Rendering};
use super::{ApiError, Endpoint, HttpDns, doh_json};
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
            Reply::Send => Ok(out),
            _ => Err(ApiError::bad_request("InvalidQuery", "not a DNS query")),
        }
    }

    /// DNSPod: `GET /d?dn=NAME[&ip=][&ttl=1][&type=AAAA]` -> `1.2.3.4;5.6.7.8[,TTL]`.
    pub(super) async fn dnspod(
        &self,
        params: &Params<'_>,
        client: IpAddr,
    ) -> Result<Response<Body>, ApiError> {
        let name = QueryName::parse(params.get("dn"), "dn")?;
        let rtype = match params.get("type") {
            None => RecordType::A,
            Some(t) if t.eq_ignore_ascii_case("aaaa") => RecordType::AAAA,
            Some(t) if t.eq_ignore_ascii_case("a") => RecordType::A,
            Some(t) => {
                return Err(ApiError::bad_request(
                    "InvalidType",
                    format!("type={t:?}: A or AAAA"),
                ));
            }
        };
        let subnet = parse_ip(params.get("ip"))?;
        let question = Question {
            name: &name,
            rtype,
            subnet,
            checking_disabled: false,
            dnssec_ok: false,
        };
        let answer = host_answer(&self.ask(&question, client).await?)?;
        let addresses = if rtype == RecordType::A {
            &answer.ips
        } else {
            &answer.ipsv6
        };
        let mut body = addresses.join(";");
        if params.flag("ttl") && !addresses.is_empty() {
            body.push_str(&format!(",{}", answer.ttl));
        }
        Ok(render::text(StatusCode::OK, body))
    }

    /// Alibaba Cloud: `GET /{account}/d?host=NAME[&ip=][&query=4,6]` (one host object) and the
    /// batch `GET /{account}/resolve?host=a,b,c` (`{"dns": [...]}`); their `sign_` variants
    /// check `t` and `s` first.
    pub(super) async fn account_api(
        &self,
        endpoint: Endpoint,
        account: Option<&str>,
        params: &Params<'_>,
        client: IpAddr,
    ) -> Result<Response<Body>, ApiError> {
        let host = params.get("host");
        if matches!(endpoint, Endpoint::SignD | Endpoint::SignResolve) {
            self.verify_signature(account, host.unwrap_or(""), params)?;
        }
        let batch = matches!(endpoint, Endpoint::AccountResolve | Endpoint::SignResolve);
        let hosts: Vec<&str> = match (host, batch) {
            (Some(h), true) => h.split(',').filter(|h| !h.is_empty()).collect(),
            (Some(h), false) => vec![h],
            (None, _) => Vec::new(),
        };
        if hosts.is_empty() {
            return Err(ApiError::bad_request("MissingArgument", "host is required"));
        }
        if hosts.len() > self.max_hosts {
            let message = format!(
                "{} hosts; at most {} per request",
                hosts.len(),
                self.max_hosts
            );
            return Err(ApiError::bad_request("TooManyHosts", message));
        }
        let names = hosts
            .iter()
            .map(|h| QueryName::parse(Some(h), "host"))
            .collect::<Result<Vec<_>, _>>()?;
        let subnet = parse_ip(params.get("ip"))?;
        let families = Families::parse(params.get("query"))?;
        let mut answers = Vec::with_capacity(names.len());
        for name in &names {
            answers.push(self.host_answer(name, subnet, families, client).await?);
        }
        let client_ip = subnet.map_or(client, |s| s.addr());
        let body = render::host_answers(&answers, client_ip, batch);
        Ok(render::bytes(StatusCode::OK, "application/json", body))
    }

    async fn host_answer(
        &self,
        name: &QueryName,
        subnet: Option<IpNet>,
        families: Families,
        client: IpAddr,
    ) -> Result<HostAnswer, ApiError> {
        let mut answer = HostAnswer::new(name.host());
        for (wanted, rtype) in [
            (families.v4, RecordType::A),
            (families.v6, RecordType::AAAA),
        ] {
            if wanted {
                let question = Question {
                    name,
                    rtype,
                    subnet,
                    checking_disabled: false,
                    dnssec_ok: false,
                };
                answer.merge(host_answer(&self.ask(&question, client).await?)?);
            }
        }
        Ok(answer)
    }

    /// `s` must be md5(`host-secret-t`) in hex, and `t` (unix seconds) not yet past.
    fn verify_signature(
        &self,
        account: Option<&str>,
        host: &str,
        params: &Params<'_>,
    ) -> Result<(), ApiError> {
        let secret = account
            .and_then(|id| self.accounts.get(id))
            .and_then(|a| a.secret.as_deref())
            .ok_or_else(|| {
                ApiError::forbidden(
                    "SignatureNotSupported",
                    "this account has no signing secret",
                )
            })?;
        let expiry = params
            .get("t")
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::forbidden("InvalidSignature", "t (expiry, unix seconds) is required")
            })?;
        let signature = params
            .get("s")
            .ok_or_else(|| ApiError::forbidden("InvalidSignature", "s (signature) is required"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if expiry < now {
            return Err(ApiError::forbidden(
                "SignatureExpired",
                format!("t={expiry} is in the past"),
            ));
        }
        let expected = hex(&Md5::digest(format!("{host}-{secret}-{expiry}")));
        let matches = expected.len() == signature.len()
            && expected
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
                == 0;
        if !matches {
            return Err(ApiError::forbidden("InvalidSignature", "s does not match"));
        }
        Ok(())
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

/// Which address families `query=4,6` asks for (default: IPv4 only).
#[derive(Clone, Copy)]
struct Families {
    v4: bool,
    v6: bool,
}

impl Families {
    fn parse(text: Option<&str>) -> Result<Families, ApiError> {
        let Some(text) = text else {
            return Ok(Families {
                v4: true,
                v6: false,
            });
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
                        format!("query={other:?}: use 4, 6 or 4,6"),
                    ));
                }
            }
        }
        Ok(families)
    }
}

/// The DNS handler's response could not be read: never expected, as it wrote it.
fn malformed() -> ApiError {
    let message = "the DNS response could not be read";
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
}

fn host_answer(wire: &[u8]) -> Result<HostAnswer, ApiError> {
    HostAnswer::from_wire(wire).ok_or_else(malformed)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
