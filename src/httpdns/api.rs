//! The endpoints: each turns its parameters into DNS queries for the DNS handler and renders
//! the answers in the shape its clients expect.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use base64::Engine;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use ipnet::IpNet;
use md5::{Digest, Md5};

use super::render::{self, HostAnswer};
use super::{ApiError, Endpoint, HttpDns};
use crate::dns::handler::{Reply, Transport};
use crate::http_server::{Body, BodyError, read_body};

/// Query-string parameters; the first value of a repeated key wins.
pub(super) struct Params(HashMap<String, String>);

impl Params {
    pub(super) fn parse(query: Option<&str>) -> Params {
        let mut map = HashMap::new();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            map.entry(key.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Params(map)
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true"))
    }
}

/// One question for the DNS handler.
struct Question {
    name: Name,
    rtype: RecordType,
    /// Where the client is, when the request says (`ip=`, `edns_client_subnet=`).
    subnet: Option<IpNet>,
    checking_disabled: bool,
    dnssec_ok: bool,
}

fn parse_name(text: Option<&str>, param: &str) -> Result<Name, ApiError> {
    let text = text
        .ok_or_else(|| ApiError::bad_request("MissingArgument", format!("{param} is required")))?;
    let invalid =
        |e: String| ApiError::bad_request("InvalidHost", format!("{param}={text:?}: {e}"));
    if text.len() > 253 || text.contains(['/', ' ']) {
        return Err(invalid("not a domain name".into()));
    }
    let mut name = Name::from_utf8(text).map_err(|e| invalid(e.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

fn parse_type(text: Option<&str>) -> Result<RecordType, ApiError> {
    let Some(text) = text else {
        return Ok(RecordType::A);
    };
    let rtype = match text.parse::<u16>() {
        Ok(number) => RecordType::from(number),
        Err(_) => RecordType::from_str(&text.to_ascii_uppercase()).map_err(|_| {
            ApiError::bad_request("InvalidType", format!("type={text:?} is not a record type"))
        })?,
    };
    match rtype {
        RecordType::AXFR | RecordType::IXFR | RecordType::OPT => Err(ApiError::bad_request(
            "InvalidType",
            format!("type={text} cannot be asked here"),
        )),
        rtype => Ok(rtype),
    }
}

/// `ip=` is the client's address: a host route, so the answer is tailored to exactly it.
fn parse_ip(text: Option<&str>) -> Result<Option<IpNet>, ApiError> {
    text.map(|t| {
        t.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
            ApiError::bad_request("InvalidIp", format!("ip={t:?} is not an IP address"))
        })
    })
    .transpose()
}

impl HttpDns {
    /// Asks the DNS handler, as a query from `client` would on port 53.
    async fn ask(&self, question: &Question, client: IpAddr) -> Result<Message, ApiError> {
        let mut message = Message::query();
        message.add_query(Query::query(question.name.clone(), question.rtype));
        message.metadata.recursion_desired = true;
        message.metadata.checking_disabled = question.checking_disabled;
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(question.dnssec_ok);
        if let Some(subnet) = question.subnet {
            let subnet = ClientSubnet::new(subnet.network(), subnet.prefix_len(), 0);
            edns.options_mut().insert(EdnsOption::Subnet(subnet));
        }
        message.set_edns(edns);
        let bytes = message.to_vec().map_err(|e| internal(e.to_string()))?;
        let response = self.exchange(&bytes, client).await?;
        Message::from_vec(&response).map_err(|e| internal(e.to_string()))
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
        params: &Params,
        client: IpAddr,
    ) -> Result<Response<Body>, ApiError> {
        let name = parse_name(params.get("dn"), "dn")?;
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
            name,
            rtype,
            subnet,
            checking_disabled: false,
            dnssec_ok: false,
        };
        let answer = HostAnswer::from_message(&self.ask(&question, client).await?);
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
        params: &Params,
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
            .map(|h| parse_name(Some(h), "host"))
            .collect::<Result<Vec<_>, _>>()?;
        let subnet = parse_ip(params.get("ip"))?;
        let families = Families::parse(params.get("query"))?;
        let mut dns = Vec::with_capacity(names.len());
        for name in &names {
            let answer = self.host_answer(name, subnet, families, client).await?;
            dns.push(answer.to_json(client, subnet));
        }
        let body = match batch {
            true => serde_json::json!({ "dns": dns }),
            false => dns.into_iter().next().unwrap_or_default(),
        };
        Ok(render::json(StatusCode::OK, &body))
    }

    async fn host_answer(
        &self,
        name: &Name,
        subnet: Option<IpNet>,
        families: Families,
        client: IpAddr,
    ) -> Result<HostAnswer, ApiError> {
        let mut answer = HostAnswer::new(name);
        for (wanted, rtype) in [
            (families.v4, RecordType::A),
            (families.v6, RecordType::AAAA),
        ] {
            if wanted {
                let question = Question {
                    name: name.clone(),
                    rtype,
                    subnet,
                    checking_disabled: false,
                    dnssec_ok: false,
                };
                answer.merge(HostAnswer::from_message(
                    &self.ask(&question, client).await?,
                ));
            }
        }
        Ok(answer)
    }

    /// `s` must be md5(`host-secret-t`) in hex, and `t` (unix seconds) not yet past.
    fn verify_signature(
        &self,
        account: Option<&str>,
        host: &str,
        params: &Params,
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
        req: &Request<Incoming>,
        params: &Params,
        client: IpAddr,
    ) -> Result<Response<Body>, ApiError> {
        let name = parse_name(params.get("name"), "name")?;
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
            name,
            rtype,
            subnet,
            checking_disabled: params.flag("cd"),
            dnssec_ok: params.flag("do"),
        };
        let message = self.ask(&question, client).await?;
        let accept = req
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let content_type = if accept.contains("application/dns-json") {
            "application/dns-json"
        } else {
            "application/json"
        };
        let body = render::doh_json(&message, subnet);
        let mut response = render::bytes(StatusCode::OK, content_type, body);
        render::cache_control(&mut response, &message);
        Ok(response)
    }

    /// RFC 8484: `GET /dns-query?dns=BASE64URL` and `POST /dns-query` (application/dns-message).
    pub(super) async fn dns_query(
        &self,
        req: Request<Incoming>,
        params: &Params,
        client: IpAddr,
    ) -> Result<Response<Body>, ApiError> {
        let query = match *req.method() {
            Method::GET => {
                let encoded = params.get("dns").ok_or_else(|| {
                    ApiError::bad_request("MissingArgument", "dns= (or name=) is required")
                })?;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(encoded.trim_end_matches('='))
                    .map_err(|e| ApiError::bad_request("InvalidQuery", format!("dns=: {e}")))?
            }
            Method::POST => self.read_body(req).await?,
            _ => {
                return Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "use GET or POST",
                ));
            }
        };
        let response = self.exchange(&query, client).await?;
        let message = Message::from_vec(&response).map_err(|e| internal(e.to_string()))?;
        let mut http = render::bytes(StatusCode::OK, "application/dns-message", response);
        render::cache_control(&mut http, &message);
        Ok(http)
    }

    async fn read_body(&self, req: Request<Incoming>) -> Result<Vec<u8>, ApiError> {
        let content_type = req
            .headers()
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
        let body = read_body(req.into_body(), self.max_body, &self.limits)
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

fn internal(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
