//! Alibaba Cloud HTTPDNS v2: `GET /v2/d?id=ACCOUNT&dn=a[,b]&q=4,6&m=0[&ip=][&exp=&s=]`, signed
//! with HMAC-SHA256 (see `accounts`). The answer:
//!
//! ```json
//! {"code":"success","mode":0,"data":{"cip":"192.0.2.7","answers":[
//!   {"dn":"a","v4":{"ips":["192.0.2.1"],"ttl":60},"v6":{"ips":[],"ttl":0,"no_ip_code":"RRNotExist"}}]}}
//! ```
//!
//! Errors are `{"code": ..., "error": ...}` with the service's codes and statuses:
//! `MissingArgument`, `InvalidHost`, `TooManyHosts` (400), `InvalidAccount` and the signature
//! codes (403), `MethodNotAllowed` (405), `InternalError` (500).
//!
//! `m=1` (AES-CBC) and `m=2` (AES-GCM), for accounts with an `aes_key`: the parameters come as
//! JSON in `enc` (`{"dn":..,"q":..}`), and the answer's `data` is the JSON above encrypted the
//! same way, in base64, with `"mode":1` or `2` (`alibaba_cipher`). Without a key, or with
//! another mode, 400 `UnsupportedMode`; an `enc` that does not decrypt, 400 `InvalidArgument`.

use hyper::{Response, StatusCode};
use serde::Serialize;

use super::accounts::Signed;
use super::alibaba_cipher::Mode;
use super::api::Families;
use super::question::ClientIps;
use super::render::{self, FamilyAnswer, HostAnswer};
use super::{ApiError, ApiRequest, HttpDns};
use crate::http_server::Body;

#[derive(Serialize)]
struct V2Response<'a> {
    code: &'static str,
    mode: u8,
    data: V2Data<'a>,
}

/// The answer in an encrypted mode: `data` sealed, in base64.
#[derive(Serialize)]
struct V2Sealed {
    code: &'static str,
    mode: u8,
    data: String,
}

/// The parameters an encrypted request carries in `enc`.
#[derive(serde::Deserialize)]
struct Encrypted {
    dn: Option<String>,
    q: Option<String>,
}

#[derive(Serialize)]
struct V2Data<'a> {
    cip: String,
    answers: Vec<V2Answer<'a>>,
}

#[derive(Serialize)]
struct V2Answer<'a> {
    dn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    v4: Option<V2Family<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v6: Option<V2Family<'a>>,
}

#[derive(Serialize)]
struct V2Family<'a> {
    ips: &'a [String],
    ttl: u32,
    /// Why there is no address: the name has none of this family, or does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    no_ip_code: Option<&'static str>,
}

impl<'a> V2Family<'a> {
    fn new(family: &'a FamilyAnswer) -> Self {
        let no_ip_code = match (family.ips.is_empty(), family.nxdomain) {
            (false, _) => None,
            (true, true) => Some("DomainNotExist"),
            (true, false) => Some("RRNotExist"),
        };
        Self {
            ips: &family.ips,
            ttl: family.ttl,
            no_ip_code,
        }
    }
}

impl HttpDns {
    pub(super) async fn v2(&self, req: &ApiRequest<'_>) -> Result<Response<Body>, ApiError> {
        let params = req.params;
        let id = params
            .get("id")
            .ok_or_else(|| ApiError::bad_request("MissingArgument", "id is required"))?;
        let signed = params.get("s").is_some();
        let account = self.account(id, req.scheme, signed)?;
        if signed {
            self.verify(account, Signed::V2, params)?;
        }
        self.spend(account)?;
        let (mode, key) = mode_and_key(params.get("m"), account.aes_key.as_deref())?;
        let encrypted = match key {
            None => None,
            Some(key) => Some(decrypt_parameters(mode, key, params.get("enc"))?),
        };
        let (dn, q) = match &encrypted {
            Some(sent) => (sent.dn.as_deref(), sent.q.as_deref()),
            None => (params.get("dn"), params.get("q")),
        };
        let names = self.names(dn, "dn", true)?;
        let families = Families::parse(q, "q", Families::V4)?;
        let ips = ClientIps::parse(params.get_all("ip").chain(params.get_all("cip")))?;
        let mut hosts = Vec::with_capacity(names.len());
        for name in &names {
            hosts.push(self.lookup_host(name, families, &ips, req.client).await?);
        }
        let data = V2Data {
            cip: ips.reported(req.client).to_string(),
            answers: hosts.iter().map(V2Answer::new).collect(),
        };
        Ok(render::bytes(
            StatusCode::OK,
            "application/json",
            v2_body(data, mode, key)?,
        ))
    }
}

impl<'a> V2Answer<'a> {
    fn new(host: &'a HostAnswer) -> Self {
        V2Answer {
            dn: &host.host,
            v4: host.v4.as_ref().map(V2Family::new),
            v6: host.v6.as_ref().map(V2Family::new),
        }
    }
}

/// The mode `m` asks for, and the account's AES key when the mode is an encrypted one.
fn mode_and_key<'k>(
    m: Option<&str>,
    aes_key: Option<&'k [u8]>,
) -> Result<(Mode, Option<&'k [u8]>), ApiError> {
    let mode = Mode::parse(m).ok_or_else(|| {
        let message = format!("m={m:?}: 0 (plain), 1 (AES-CBC) or 2 (AES-GCM)");
        ApiError::bad_request("UnsupportedMode", message)
    })?;
    match (mode, aes_key) {
        (Mode::Plain, _) => Ok((mode, None)),
        (_, Some(key)) => Ok((mode, Some(key))),
        (_, None) => {
            let message = "this account has no aes_key for the encrypted modes";
            Err(ApiError::bad_request("UnsupportedMode", message))
        }
    }
}

/// The answer's JSON: `data` as it is in the plain mode, sealed with `key` in the others.
fn v2_body(data: V2Data<'_>, mode: Mode, key: Option<&[u8]>) -> Result<Vec<u8>, ApiError> {
    let body = match key {
        None => serde_json::to_vec(&V2Response {
            code: "success",
            mode: 0,
            data,
        }),
        Some(key) => {
            let plain = serde_json::to_vec(&data).unwrap_or_default();
            let sealed = mode.encrypt_base64(key, &plain).ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "the answer could not be encrypted",
                )
            })?;
            serde_json::to_vec(&V2Sealed {
                code: "success",
                mode: mode.number(),
                data: sealed,
            })
        }
    };
    Ok(body.unwrap_or_default())
}

/// The parameters of an encrypted request, from its `enc`.
fn decrypt_parameters(mode: Mode, key: &[u8], enc: Option<&str>) -> Result<Encrypted, ApiError> {
    let enc = enc.ok_or_else(|| {
        ApiError::bad_request("MissingArgument", "enc is required in the encrypted modes")
    })?;
    let plain = mode.decrypt_hex(key, enc).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidArgument",
            "enc does not decrypt with this account's aes_key",
        )
    })?;
    serde_json::from_slice(&plain).map_err(|e| {
        ApiError::bad_request(
            "InvalidArgument",
            format!("enc: not the JSON of the parameters: {e}"),
        )
    })
}
