//! Requests between the nodes of a cluster on the proxy listener. A node asks the owner of a
//! key for it (a fill) or hands it a URL to warm (preload), with the request signed
//! (`cluster::auth`); the owner answers it signed back, and the asking node takes nothing
//! that is not. A request that carries client credentials (`Authorization`, `Cookie`) is
//! never sent to another node: it goes to the origin, the only party the client meant it for.
//! A client that sends the sibling field itself, without the cluster's secret, is an
//! ordinary client: the field is removed and nothing else changes.

use std::time::Duration;

use hyper::header;
use hyper::{HeaderMap, Method};

use super::Proxy;
use super::upstream::{FetchError, Opened};
use crate::cluster::auth::{Target, Verified};
use crate::cluster::{Member, SIBLING_HEADER};

/// A request that came from the cluster rather than from a client.
pub(super) struct Sibling {
    /// The node that signed it; None when it is only this node's own request come back
    /// (its id in `Via`).
    pub verified: Option<Verified>,
}

impl Proxy {
    /// Whether the request comes from another node of the cluster (signed with the
    /// cluster's secret) or is this node's own come back (its id in `Via`): either way it is
    /// never forwarded to a node again. The sibling field is removed; it goes no further.
    pub(super) fn sibling_request(
        &self,
        headers: &mut HeaderMap,
        target: Target<'_>,
    ) -> Option<Sibling> {
        let verified = match headers.contains_key(SIBLING_HEADER) {
            true => self.cluster.verify_request(headers, target),
            false => None,
        };
        headers.remove(SIBLING_HEADER);
        let me = &*self.cluster.me().id;
        let looped = headers
            .get_all(header::VIA)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|hop| hop.split_whitespace().nth(1) == Some(me));
        if verified.is_none() && !looped {
            return None;
        }
        self.metrics.sibling_requests.inc();
        Some(Sibling { verified })
    }

    /// GET `host` + `path` from `node`'s proxy listener, signed, with `headers`; the answer
    /// only when `node` signed it for this request.
    pub(super) async fn ask_node(
        &self,
        node: &Member,
        host: &str,
        path: &str,
        mut headers: HeaderMap,
        timeout: Duration,
    ) -> Result<Opened, FetchError> {
        let failed = |message: String| FetchError::Failed {
            origin: format!("node {}", node.id),
            message,
        };
        let addr = node
            .proxy
            .ok_or_else(|| failed("no proxy address known".into()))?;
        let target = Target {
            method: &Method::GET,
            host,
            path,
        };
        let (field, nonce) = self
            .cluster
            .sign(target)
            .ok_or_else(|| failed("no cluster.secret to sign with".into()))?;
        headers.insert(SIBLING_HEADER, field);
        let opened = self
            .upstream
            .open_sibling(addr, host, path, &headers, timeout)
            .await?;
        let response = &opened.response;
        match self
            .cluster
            .verify_answer(response.headers(), &node.id, &nonce, response.status())
        {
            true => Ok(opened),
            false => Err(failed(format!(
                "the answer from {addr} is not signed by {}",
                node.id
            ))),
        }
    }
}

/// Whether a request carries a client's credentials, which no other node may see.
pub(super) fn carries_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || headers.contains_key(header::COOKIE)
}
