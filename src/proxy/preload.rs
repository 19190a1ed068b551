//! Warming the cache on purpose (push preload): one URL fetched through this node's normal GET
//! path, or sent to another node's proxy listener, read to its end, and what came of it judged
//! from the response's status and `Cache-Status` (read back as the `ProxyOutcome` it was made
//! from).
//!
//! Going through the request path means a warm-up fills, coalesces with clients, stores
//! variants and revalidates exactly as a client's GET would; nothing here stores anything.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, StatusCode};

use super::fill::Ask;
use super::outcome::ProxyOutcome;
use super::policy::CacheControl;
use super::upstream::FetchError;
use super::{CACHE_STATUS, Proxy, cache_key};
use crate::cluster::Member;

/// What warming one URL on one node came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warmed {
    /// Fetched from the origin (or a sibling), or revalidated, and stored.
    Stored,
    /// Already fresh in the cache: nothing was fetched.
    Fresh,
    /// Not stored, and why (the origin's status, a timeout, a response that may not be stored).
    Failed(String),
}

/// How much of an error response's body is kept as its reason.
const REASON_BYTES: usize = 200;

impl Proxy {
    /// GETs `host` + `path_and_query` through this node's cache as a client would, without
    /// accepting a stale copy (a stale one is revalidated or fetched again), and reads the
    /// response to its end so that a fill completes and is stored.
    ///
    /// `as_owner`: this node was chosen as the key's owner, so it fetches from the origin
    /// itself; otherwise a key owned by another node is fetched from that node, as for clients.
    pub async fn warm(
        self: &Arc<Self>,
        host: &str,
        path_and_query: &str,
        as_owner: bool,
    ) -> Warmed {
        let ask = Ask {
            key: cache_key(host, path_and_query),
            request_cc: not_stale(),
            host: host.to_string(),
            path: path_and_query.to_string(),
            headers: HeaderMap::new(),
            from_sibling: as_owner,
            client: None,
        };
        let exchange = async {
            let response = match self.cached_response(&ask).await {
                Some(response) => response,
                None => self.fetch(&ask).await,
            };
            let (parts, body) = response.into_parts();
            judge(parts.status, &parts.headers, read_to_end(body).await)
        };
        self.within_budget(exchange).await
    }

    /// The same GET sent to another node's proxy listener. `as_owner`: the node owns the key,
    /// and the request is signed as from a node so that it fetches from the origin itself
    /// (and its answer must be signed back); otherwise it is an ordinary request there (a
    /// non-owner fetches from the owner).
    pub async fn warm_on(
        &self,
        node: &Member,
        host: &str,
        path_and_query: &str,
        as_owner: bool,
    ) -> Warmed {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("min-fresh=0"),
        );
        let budget = self.preload_budget();
        let exchange = async {
            let opened = match (as_owner, node.proxy) {
                (true, _) => {
                    self.ask_node(node, host, path_and_query, headers, budget)
                        .await
                }
                (false, Some(addr)) => {
                    self.upstream
                        .open_sibling(addr, host, path_and_query, &headers, budget)
                        .await
                }
                (false, None) => {
                    return Warmed::Failed(format!("node {} has no proxy address", node.id));
                }
            };
            match opened {
                Ok(opened) => {
                    let (parts, body) = opened.response.into_parts();
                    judge(parts.status, &parts.headers, read_to_end(body).await)
                }
                Err(FetchError::Timeout(_)) => {
                    Warmed::Failed(format!("node {} did not answer within {budget:?}", node.id))
                }
                Err(FetchError::Failed { message, .. }) => {
                    Warmed::Failed(format!("node {}: {message}", node.id))
                }
                Err(error) => Warmed::Failed(format!("node {}: {error}", node.id)),
            }
        };
        self.within_budget(exchange).await
    }

    /// The longest one warm-up may take: the origin's total timeout twice (retries, a
    /// revalidation that falls back to a full fetch) plus a sibling's.
    pub fn preload_budget(&self) -> Duration {
        self.upstream.total_timeout() * 2 + self.cluster.sibling_timeout()
    }

    async fn within_budget(&self, exchange: impl Future<Output = Warmed>) -> Warmed {
        let budget = self.preload_budget();
        tokio::time::timeout(budget, exchange)
            .await
            .unwrap_or_else(|_| Warmed::Failed(format!("timed out after {budget:?}")))
    }
}

/// A request's `Cache-Control: min-fresh=0`: a fresh copy is used, a stale one never.
fn not_stale() -> CacheControl {
    CacheControl {
        min_fresh: Some(0),
        ..CacheControl::default()
    }
}

/// Reads a body to its end, keeping only its first bytes (an error's text).
async fn read_to_end<B>(mut body: B) -> Result<Bytes, String>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Display,
{
    let mut start = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data()
            && start.len() < REASON_BYTES
        {
            let take = data.len().min(REASON_BYTES - start.len());
            start.extend_from_slice(&data[..take]);
        }
    }
    Ok(start.freeze())
}

/// What a warm-up's response says happened: its status, and its `Cache-Status` read back as
/// the outcome it was made from.
fn judge(status: StatusCode, headers: &HeaderMap, body: Result<Bytes, String>) -> Warmed {
    let outcome = headers
        .get(CACHE_STATUS)
        .and_then(ProxyOutcome::from_cache_status);
    let body = match body {
        Ok(body) => body,
        Err(error) => return Warmed::Failed(format!("the body failed: {error}")),
    };
    if !status.is_success() {
        // The node's own errors (no origin, timeouts, refused connections) say why in the body.
        let own_error = outcome == Some(ProxyOutcome::Forwarded);
        let text = String::from_utf8_lossy(&body);
        let text = text.lines().next().unwrap_or("").trim();
        return match own_error && !text.is_empty() {
            true => Warmed::Failed(format!("{status}: {text}")),
            false => Warmed::Failed(format!("origin answered {status}")),
        };
    }
    match outcome {
        Some(outcome) => outcome.warmed(),
        None => Warmed::Failed("not stored: no reason given".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(status: u16, cache_status: &str, body: &str) -> Warmed {
        let mut headers = HeaderMap::new();
        if !cache_status.is_empty() {
            headers.insert("cache-status", HeaderValue::from_str(cache_status).unwrap());
        }
        let status = StatusCode::from_u16(status).unwrap();
        judge(status, &headers, Ok(Bytes::from(body.to_string())))
    }

    #[test]
    fn cache_status_decides_stored_fresh_or_failed() {
        assert_eq!(judged(200, "edgenode; hit", ""), Warmed::Fresh);
        assert_eq!(
            judged(200, "edgenode; fwd=miss; stored", ""),
            Warmed::Stored
        );
        assert_eq!(
            judged(200, "edgenode; fwd=miss; stored; collapsed", ""),
            Warmed::Stored
        );
        assert_eq!(
            judged(200, "edgenode; fwd=stale; fwd-status=304; stored", ""),
            Warmed::Stored
        );
        assert_eq!(
            judged(200, "edgenode; fwd=miss; detail=\"private\"", ""),
            Warmed::Failed("not stored: private".into())
        );
        assert_eq!(
            judged(200, "edgenode; hit; detail=\"stale-if-error\"", ""),
            Warmed::Failed("the origin failed; a stale copy is kept (stale-if-error)".into())
        );
        assert_eq!(
            judged(200, "", ""),
            Warmed::Failed("not stored: no reason given".into())
        );
    }

    #[test]
    fn failures_name_the_origin_status_or_the_nodes_reason() {
        assert_eq!(
            judged(404, "edgenode; fwd=miss; stored", "no"),
            Warmed::Failed("origin answered 404 Not Found".into())
        );
        assert_eq!(
            judged(500, "edgenode; fwd=miss; detail=\"origin-error\"", "down"),
            Warmed::Failed("origin answered 500 Internal Server Error".into())
        );
        assert_eq!(
            judged(504, "edgenode; fwd=miss", "origin 127.0.0.1:9 timed out\n"),
            Warmed::Failed("504 Gateway Timeout: origin 127.0.0.1:9 timed out".into())
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "cache-status",
            HeaderValue::from_static("edgenode; fwd=miss; stored"),
        );
        assert_eq!(
            judge(StatusCode::OK, &headers, Err("connection reset".into())),
            Warmed::Failed("the body failed: connection reset".into())
        );
    }
}
