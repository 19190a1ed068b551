//! Alibaba Cloud HTTPDNS, v1: `GET /{account}/d?host=NAME[&ip=][&query=4,6]` (one host object)
//! and the batch `GET /{account}/resolve?host=a,b,c[&ip=][&query=]` (`{"dns": [...]}`, one
//! entry per host and family); their signed `sign_d` / `sign_resolve` variants carry `t` and
//! `s` (see `accounts`).

use hyper::{Response, StatusCode};

use super::accounts::Signed;
use super::api::Families;
use super::question::ClientIps;
use super::render;
use super::{ApiError, ApiRequest, Endpoint, HttpDns};
use crate::http_server::Body;

impl HttpDns {
    pub(super) async fn account_api(
        &self,
        req: &ApiRequest<'_>,
    ) -> Result<Response<Body>, ApiError> {
        let params = req.params;
        let id = req.account.unwrap_or_default();
        let signed = matches!(req.endpoint, Endpoint::SignD | Endpoint::SignResolve);
        let account = self.account(id, req.scheme, signed)?;
        let host = params.get("host");
        if signed {
            self.verify(account, Signed::Host(host.unwrap_or("")), params)?;
        }
        self.spend(account)?;
        let batch = matches!(
            req.endpoint,
            Endpoint::AccountResolve | Endpoint::SignResolve
        );
        let names = self.names(host, "host", batch)?;
        let ips = ClientIps::parse(params.get_all("ip"))?;
        let families = Families::parse(params.get("query"), "query", Families::V4)?;
        let mut answers = Vec::with_capacity(names.len());
        for name in &names {
            answers.push(self.lookup_host(name, families, &ips, req.client).await?);
        }
        let client_ip = ips.reported(req.client);
        let body = match (batch, answers.first()) {
            (false, Some(answer)) => render::host_answer(answer, client_ip),
            _ => render::batch_answers(&answers, client_ip),
        };
        Ok(render::bytes(StatusCode::OK, "application/json", body))
    }
}
