//! The cluster's side of `auth`: signing what this node sends its peers, checking what they
//! send back and what they ask of it, and one signed exchange with a peer's admin listener
//! (heartbeats, purge fan-out). Every refusal is counted in
//! `edgenode_cluster_auth_refused_total`.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HOST, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};

use super::Cluster;
use super::auth::{AUTH_HEADER, Nonce, Target, Verified};

/// The largest answer a peer's admin listener may give to a signed exchange.
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// A peer's signed answer.
pub struct Answer {
    pub signer: String,
    pub status: StatusCode,
    pub bytes: Bytes,
}

/// Why an exchange with a peer gave nothing.
#[derive(Debug)]
pub enum Failure {
    /// No answer in time, or no connection.
    NoAnswer(String),
    /// An answer, but not one signed by the peer asked.
    Refused(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NoAnswer(reason) => write!(f, "no answer: {reason}"),
            Failure::Refused(reason) => write!(f, "answer refused: {reason}"),
        }
    }
}

impl Cluster {
    /// The field that signs a request from this node; None without a secret (no cluster).
    pub fn sign(&self, target: Target<'_>) -> Option<(HeaderValue, Nonce)> {
        let keys = self.keys.as_ref()?;
        Some(keys.sign_request(&self.me.id, target, SystemTime::now()))
    }

    /// The node that signed a request, when it verifies; a request that carries a signature
    /// that does not is logged and counted. A node never takes its own id from elsewhere.
    pub fn verify_request(&self, headers: &HeaderMap, target: Target<'_>) -> Option<Verified> {
        let keys = self.keys.as_ref()?;
        match keys.verify_request(headers, target, SystemTime::now()) {
            Ok(verified) if *verified.peer != *self.me.id => Some(verified),
            Ok(_) => {
                self.refused("request", "signed with this node's own id");
                None
            }
            Err(super::auth::AuthError::Missing) => None,
            Err(error) => {
                self.refused("request", &error.to_string());
                None
            }
        }
    }

    /// The field that signs this node's answer to a verified request.
    pub fn sign_answer(
        &self,
        nonce: &Nonce,
        status: StatusCode,
        body: Option<&[u8]>,
    ) -> Option<HeaderValue> {
        let keys = self.keys.as_ref()?;
        Some(keys.sign_answer(&self.me.id, nonce, status, body))
    }

    /// Whether an answer is `expected`'s to the request with `nonce` (whole `body` when it
    /// is in hand); a refusal is logged and counted.
    pub fn verify_answer(
        &self,
        headers: &HeaderMap,
        expected: &str,
        nonce: &Nonce,
        status: StatusCode,
    ) -> bool {
        let Some(keys) = self.keys.as_ref() else {
            return false;
        };
        match keys.verify_answer(headers, Some(expected), nonce, status, None) {
            Ok(_) => true,
            Err(error) => {
                self.refused("answer", &format!("from {expected}: {error}"));
                false
            }
        }
    }

    fn refused(&self, what: &'static str, reason: &str) {
        tracing::debug!(what, reason, "cluster signature refused");
        self.metrics
            .auth_refused
            .get_or_create(&super::WhatLabels { what })
            .inc();
    }

    /// A signed request to a peer's admin listener, and its answer's body when the answer is
    /// signed by `expected` (by any node of the cluster when None, for a discovered peer
    /// that has not said who it is), within `timeout`.
    pub(crate) async fn ask_peer(
        &self,
        admin: SocketAddr,
        expected: Option<&str>,
        (method, path): (&Method, &str),
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| Failure::Refused("no cluster.secret".into()))?;
        let host = admin.to_string();
        let target = Target {
            method,
            host: &host,
            path,
        };
        let (field, nonce) = keys.sign_request(&self.me.id, target, SystemTime::now());
        let request = hyper::Request::builder()
            .method(method.clone())
            .uri(format!("http://{admin}{path}"))
            .header(HOST, &host)
            .header(AUTH_HEADER, field)
            .body(Empty::new())
            .map_err(|e| Failure::NoAnswer(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| Failure::NoAnswer(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, MAX_ANSWER_BYTES);
            let bytes = body
                .collect()
                .await
                .map_err(|e| Failure::NoAnswer(e.to_string()))?
                .to_bytes();
            let signer = keys
                .verify_answer(&parts.headers, expected, &nonce, parts.status, Some(&bytes))
                .map_err(|e| {
                    self.refused("answer", &format!("from {admin}: {e}"));
                    Failure::Refused(e.to_string())
                })?;
            Ok(Answer {
                signer,
                status: parts.status,
                bytes,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(Failure::NoAnswer("timed out".into())))
    }
}
