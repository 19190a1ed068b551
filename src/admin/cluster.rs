//! What the admin listener answers other nodes, and asks them: `GET /cluster/heartbeat`,
//! `POST /cluster/purge` (both only for requests signed with the cluster's secret, and
//! answered signed: `cluster::auth`), and the fan-out of `POST /admin/purge?...&cluster=1`
//! to every peer, so that an operator's token never leaves the node it was given to.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::{Admin, QueryParams, text};
use crate::cluster::auth::{AUTH_HEADER, Nonce, Target, Verified};
use crate::http_server::{Body, full};

/// How long a peer may take to answer a purge.
const PEER_PURGE_TIMEOUT: Duration = Duration::from_secs(5);

impl Admin {
    /// `GET /cluster/heartbeat`: this node's description, to a node of the cluster.
    pub(super) fn heartbeat(&self, req: &Request<Incoming>) -> Response<Body> {
        match self.verified(req) {
            Some(verified) => {
                self.signed_json(&verified.nonce, StatusCode::OK, &**self.cluster.me())
            }
            None => unsigned(),
        }
    }

    /// `POST /cluster/purge?...`: a purge fanned out by another node of the cluster.
    pub(super) async fn peer_purge(&self, req: &Request<Incoming>) -> Response<Body> {
        let Some(verified) = self.verified(req) else {
            return unsigned();
        };
        tracing::info!(peer = %verified.peer, "purge from a peer");
        let params = QueryParams::parse(req.uri().query().unwrap_or(""));
        let (status, value) = self.purge_here(&params).await;
        self.signed_json(&verified.nonce, status, &value)
    }

    /// `POST /admin/purge?...`: on this node, and with `cluster=1` on every peer it knows (up
    /// or down), each peer's result under `nodes`.
    pub(super) async fn purge(&self, params: &QueryParams) -> Response<Body> {
        let fan_out = matches!(params.get("cluster"), Some("1" | "true"));
        let (status, mut here) = self.purge_here(params).await;
        if !fan_out || status != StatusCode::OK {
            return super::json(status, here);
        }
        let forwarded: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.0.iter().filter(|(k, _)| k != "cluster"))
            .finish();
        let path = format!("/cluster/purge?{forwarded}");
        let peers = self.cluster.peers();
        let asks = peers.iter().map(|peer| {
            let path = &path;
            async move {
                let Some(admin) = peer.admin else {
                    return json!({"node": &*peer.id, "error": "no admin address known"});
                };
                let request = (&Method::POST, path.as_str());
                let answer = self
                    .cluster
                    .ask_peer(admin, Some(&peer.id), request, PEER_PURGE_TIMEOUT)
                    .await;
                let result = answer.and_then(|answer| {
                    serde_json::from_slice::<serde_json::Value>(&answer.bytes)
                        .map_err(|e| crate::cluster::Failure::Refused(e.to_string()))
                        .map(|value| (answer.status, value))
                });
                match result {
                    Ok((status, mut value)) if status == StatusCode::OK => {
                        value["node"] = json!(&*peer.id);
                        value
                    }
                    Ok((status, value)) => {
                        json!({"node": &*peer.id, "error": format!("{status}: {value}")})
                    }
                    Err(failure) => json!({"node": &*peer.id, "error": failure.to_string()}),
                }
            }
        });
        let mut nodes = vec![json!({
            "node": &*self.cluster.me().id,
            "purged": here["purged"],
            "mode": here["mode"],
        })];
        nodes.extend(futures_util::future::join_all(asks).await);
        here["nodes"] = json!(nodes);
        super::json(StatusCode::OK, here)
    }

    /// The request's signature, verified.
    fn verified(&self, req: &Request<Incoming>) -> Option<Verified> {
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let target = Target {
            method: req.method(),
            host,
            path,
        };
        self.cluster.verify_request(req.headers(), target)
    }

    /// A JSON answer signed for the request with `nonce`, body included.
    fn signed_json(
        &self,
        nonce: &Nonce,
        status: StatusCode,
        value: &impl serde::Serialize,
    ) -> Response<Body> {
        let body = serde_json::to_vec(value)
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes());
        let mut response = Response::new(full(body.clone()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(field) = self.cluster.sign_answer(nonce, status, Some(&body)) {
            headers.insert(AUTH_HEADER, field);
        }
        response
    }
}

/// The answer to a request for nodes that is not signed with the cluster's secret.
fn unsigned() -> Response<Body> {
    text(
        StatusCode::UNAUTHORIZED,
        "only for nodes of this cluster: sign with cluster.secret\n",
    )
}
