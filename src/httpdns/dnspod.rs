//! DNSPod / Tencent Cloud HTTPDNS: `GET /d?dn=NAME[,NAME2][&ip=][&clientip=1][&ttl=1][&id=]
//! [&type=aaaa|addrs][&alg=des|aes][&token=]`, in plain text:
//!
//! - one name: `IPS[,TTL][|CLIENT_IP]`, IPS `;`-separated;
//! - `type=addrs`: `V4S,TTL-V6S,TTL[|CLIENT_IP]`;
//! - several names (`dn=a,b`): one line per name, `name.:IPS,TTL[|CLIENT_IP]` (or the `addrs`
//!   form after `name.:`), joined by `\n`;
//! - `query=1`: the single answer is written as a batch line too (the iOS SDK asks for it);
//! - a family without addresses is `0` with TTL `0` (what the SDK reads as "no record").
//!
//! The iOS SDK appends `;EXPIRY` (unix seconds, 10 minutes on) to the names before encrypting
//! them: it is checked like a signature's expiry and removed.
//!
//! With `alg=des|aes`, `dn` (and `ip` when it is not an address) is hex ciphertext under the
//! key configured for `id` (`[[httpdns.dnspod_keys]]`), and the answer is encrypted the same way.
//! An id with a `token` requires `token=` on plain requests (the HTTPS "enterprise" mode).
//! Errors are an empty body with the status: 400 for a request that cannot be read, 401 for an
//! unknown id, a missing key or a wrong token (the SDK clears its cached answer on a 401).

use std::fmt::Write;
use std::net::IpAddr;

use hyper::header::HeaderValue;
use hyper::header::RETRY_AFTER;
use hyper::{Response, StatusCode};

use super::accounts::now;
use super::api::Families;
use super::dnspod_cipher::DnspodCipher;
use super::question::{ClientIps, QueryName};
use super::render::{self, FamilyAnswer, HostAnswer};
use super::{ApiError, ApiRequest, HttpDns};
use crate::http_server::Body;

/// What an empty family reads as (the SDK's `Const.INVALID_IP`).
const NO_ADDRESS: &str = "0";

/// The answer's layout, from `type=`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    A,
    Aaaa,
    /// Both families: `V4S,TTL-V6S,TTL`.
    Addrs,
}

impl Layout {
    fn parse(text: Option<&str>) -> Result<Layout, ApiError> {
        match text {
            None => Ok(Layout::A),
            Some(t) if t.eq_ignore_ascii_case("a") => Ok(Layout::A),
            Some(t) if t.eq_ignore_ascii_case("aaaa") => Ok(Layout::Aaaa),
            Some(t) if t.eq_ignore_ascii_case("addrs") => Ok(Layout::Addrs),
            Some(t) => {
                let message = format!("type={t:?}: a, aaaa or addrs");
                Err(ApiError::bad_request("InvalidType", message))
            }
        }
    }

    fn families(self) -> Families {
        match self {
            Layout::A => Families::V4,
            Layout::Aaaa => Families {
                v4: false,
                v6: true,
            },
            Layout::Addrs => Families { v4: true, v6: true },
        }
    }
}

impl HttpDns {
    pub(super) async fn dnspod(&self, req: &ApiRequest<'_>) -> Result<Response<Body>, ApiError> {
        let params = req.params;
        let cipher = self.dnspod_cipher(req)?;
        let decrypt = |text: &str, param: &str| match &cipher {
            None => Ok(text.to_string()),
            Some(cipher) => cipher.decrypt_hex(text).ok_or_else(|| {
                let message = format!("{param} does not decrypt with the key of this id");
                ApiError::bad_request("DecryptFailed", message)
            }),
        };
        let dn = params
            .get("dn")
            .ok_or_else(|| ApiError::bad_request("MissingArgument", "dn is required"))?;
        let dn = decrypt(dn, "dn")?;
        let dn = self.without_expiry(&dn)?;
        let layout = Layout::parse(params.get("type"))?;
        // `ip` is sent in the clear by the SDK, encrypted by others: decrypt what is not an
        // address.
        let ip = match params.get("ip") {
            Some(ip) if cipher.is_some() && ip.parse::<IpAddr>().is_err() => {
                Some(decrypt(ip, "ip")?)
            }
            ip => ip.map(str::to_string),
        };
        let ips = ClientIps::parse(ip.as_deref().into_iter())?;
        let batch = dn.contains(',');
        let names = self.names(Some(dn), "dn", batch)?;
        let families = layout.families();
        let mut answers = Vec::with_capacity(names.len());
        for name in &names {
            answers.push(self.lookup_host(name, families, &ips, req.client).await?);
        }
        let format = Format {
            layout,
            ttl: params.flag("ttl"),
            // `query=1`: every line names its host, a single one too (the iOS SDK's form).
            named: batch || params.flag("query"),
            client_ip: params.flag("clientip").then(|| ips.reported(req.client)),
        };
        let body = format.body(&answers, &names);
        let body = match &cipher {
            None => body,
            Some(cipher) => cipher.encrypt_hex(&body).ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "encrypt",
                )
            })?,
        };
        Ok(render::text(StatusCode::OK, body))
    }

    /// `dn` without the expiry the iOS SDK appends (`a.com,b.com;UNIX_SECONDS`), which must be
    /// neither past nor more than `max_signature_lifetime` ahead.
    fn without_expiry<'d>(&self, dn: &'d str) -> Result<&'d str, ApiError> {
        let Some((names, expiry)) = dn.rsplit_once(';') else {
            return Ok(dn);
        };
        let expiry = expiry.parse::<u64>().map_err(|_| {
            ApiError::bad_request("InvalidHost", format!("dn={dn:?}: NAMES[;EXPIRY]"))
        })?;
        let now = now();
        if expiry < now || expiry > now.saturating_add(self.max_signature_lifetime) {
            let message = format!("dn expiry {expiry} is past or too far ahead");
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "Expired", message));
        }
        Ok(names)
    }

    /// The cipher of `alg=` with the key of `id=`; checks `token=` where the id has one.
    fn dnspod_cipher<'s>(
        &'s self,
        req: &ApiRequest<'_>,
    ) -> Result<Option<DnspodCipher<'s>>, ApiError> {
        let params = req.params;
        let alg = params.get("alg");
        let token = params.get("token");
        let unauthorized = |message: &str| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                message.to_string(),
            )
        };
        let entry = match params.get("id") {
            Some(id) => self.dnspod_keys.get(id),
            None => None,
        };
        let Some(entry) = entry else {
            if alg.is_some() || token.is_some() {
                return Err(unauthorized("no key for this id"));
            }
            return Ok(None);
        };
        match alg {
            Some(alg) if alg.eq_ignore_ascii_case("des") => {
                let key = entry
                    .des
                    .as_ref()
                    .ok_or_else(|| unauthorized("no DES key for this id"))?;
                Ok(Some(DnspodCipher::Des(key)))
            }
            Some(alg) if alg.eq_ignore_ascii_case("aes") => {
                let key = entry
                    .aes
                    .as_deref()
                    .ok_or_else(|| unauthorized("no AES key for this id"))?;
                Ok(Some(DnspodCipher::Aes(key)))
            }
            Some(alg) => Err(ApiError::bad_request(
                "InvalidAlg",
                format!("alg={alg:?}: des or aes"),
            )),
            None => match (&entry.token, token) {
                (None, _) => Ok(None),
                (Some(expected), Some(given)) if same(expected, given) => Ok(None),
                (Some(_), _) => Err(unauthorized("token missing or wrong")),
            },
        }
    }
}

/// Equal strings, in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// How the answer is written, from `type=`, `ttl=1` and `clientip=1`.
struct Format {
    layout: Layout,
    ttl: bool,
    /// Every line starts `host.:` (a batch, or `query=1`).
    named: bool,
    client_ip: Option<IpAddr>,
}

impl Format {
    fn body(&self, answers: &[HostAnswer], names: &[QueryName]) -> String {
        let batch = self.named;
        let mut body = String::with_capacity(64 * answers.len());
        for (i, (answer, name)) in answers.iter().zip(names).enumerate() {
            if i > 0 {
                body.push('\n');
            }
            if batch {
                body.push_str(&name.host());
                body.push_str(".:");
            }
            let empty = FamilyAnswer::default();
            let v4 = answer.v4.as_ref().unwrap_or(&empty);
            let v6 = answer.v6.as_ref().unwrap_or(&empty);
            match self.layout {
                Layout::A => self.family(&mut body, v4, batch),
                Layout::Aaaa => self.family(&mut body, v6, batch),
                Layout::Addrs => {
                    self.family(&mut body, v4, true);
                    body.push('-');
                    self.family(&mut body, v6, true);
                }
            }
            match self.client_ip {
                Some(IpAddr::V4(ip)) => {
                    body.push('|');
                    render::write_ipv4(&mut body, ip.octets());
                }
                Some(ip) => {
                    body.push('|');
                    // Writing to a String cannot fail.
                    let _ = write!(body, "{ip}");
                }
                None => {}
            }
        }
        body
    }

    /// `IPS[,TTL]`, the TTL when asked or when the line is structured (batch, `addrs`);
    /// `0` for no address when the line has fields to keep apart.
    fn family(&self, line: &mut String, family: &FamilyAnswer, structured: bool) {
        let show_ttl = self.ttl || structured;
        if family.ips.is_empty() && (show_ttl || self.client_ip.is_some()) {
            line.push_str(NO_ADDRESS);
        }
        for (i, ip) in family.ips.iter().enumerate() {
            if i > 0 {
                line.push(';');
            }
            line.push_str(ip);
        }
        if show_ttl {
            line.push(',');
            line.push_str(itoa::Buffer::new().format(family.ttl));
        }
    }
}

/// A DNSPod error: an empty body with the status (and Retry-After when rate limited).
pub(super) fn error_response(error: ApiError) -> Response<Body> {
    let mut response = render::text(error.status, String::new());
    if let Some(wait) = error.retry_after {
        let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
    }
    response
}
