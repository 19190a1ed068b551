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
//! codes (403), `MethodNotAllowed` (405), `InternalError` (500). Only `m=0` (plain data) is
//! served; the encrypted modes answer 400 `UnsupportedMode`.

use hyper::{Response, StatusCode};
use serde::Serialize;

use super::accounts::Signed;
use super::api::Families;
use super::question::ClientIps;
use super::render::{self, FamilyAnswer};
use super::{ApiError, ApiRequest, HttpDns};
use crate::http_server::Body;

#[derive(Serialize)]
struct V2Response<'a> {
    code: &'static str,
    mode: u8,
    data: V2Data<'a>,
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
        match params.get("m") {
            None | Some("0") => {}
            Some(mode) => {
                let message = format!("m={mode:?}: only 0 (plain) is served");
                return Err(ApiError::bad_request("UnsupportedMode", message));
            }
        }
        let names = self.names(params.get("dn"), "dn", true)?;
        let families = Families::parse(params.get("q"), "q", Families::V4)?;
        let ips = ClientIps::parse(params.get_all("ip").chain(params.get_all("cip")))?;
        let mut hosts = Vec::with_capacity(names.len());
        for name in &names {
            hosts.push(self.lookup_host(name, families, &ips, req.client).await?);
        }
        let answers = hosts
            .iter()
            .map(|host| V2Answer {
                dn: &host.host,
                v4: host.v4.as_ref().map(V2Family::new),
                v6: host.v6.as_ref().map(V2Family::new),
            })
            .collect();
        let response = V2Response {
            code: "success",
            mode: 0,
            data: V2Data {
                cip: ips.reported(req.client).to_string(),
                answers,
            },
        };
        let body = serde_json::to_vec(&response).unwrap_or_default();
        Ok(render::bytes(StatusCode::OK, "application/json", body))
    }
}
