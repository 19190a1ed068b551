//! Authentication between the nodes of a cluster. Every request one node sends another
//! (heartbeats, sibling fetches, preload hand-offs, purge fan-out) carries an HMAC-SHA256 of
//! what it asks, keyed with the cluster's shared secret (`cluster.secret`), a timestamp and a
//! random nonce; every answer to such a request is signed back, bound to that nonce, so a
//! node takes nothing from an address that does not hold the secret.
//!
//! Why a shared secret and not mutual TLS: it needs no certificate authority, no issuing and
//! no rotation of certificates per node, and no listener of its own: the requests go to the
//! same plain listeners as before, so a Kubernetes headless Service or the simulation's
//! loopback addresses work unchanged, at the cost of one HMAC per request. What it does not
//! give is secrecy: requests between nodes carry no client credentials (a request with
//! `Authorization` or `Cookie` goes to the origin, not to a sibling), and the objects they
//! carry are the ones any client can fetch; where the network between nodes is not trusted,
//! run it through a tunnel (WireGuard, IPsec). `SECURITY.md` says more.
//!
//! The field, on requests: `x-edgenode-auth: id=<sender>;t=<unix seconds>;n=<nonce>;s=<mac>`,
//! the MAC over the id, time, nonce, method, `Host` and path with query. On answers:
//! `x-edgenode-auth: id=<responder>;n=<the request's nonce>;s=<mac>`, the MAC over those, the
//! status and, when the answer is small and whole (heartbeats, purge results), its body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, StatusCode};
use sha2::{Digest, Sha256};

/// The field that carries a request's or an answer's signature.
pub const AUTH_HEADER: &str = "x-edgenode-auth";

/// How far a request's time may be from this node's clock, either way.
pub const MAX_SKEW: Duration = Duration::from_secs(30);

/// A request's nonce, kept by the sender to check the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    /// The nonce a request's field carries, read without checking anything (a node that
    /// cannot verify a request still has to say which one its refusal answers).
    pub fn of_request(headers: &HeaderMap) -> Option<Nonce> {
        parse(headers).ok().map(|f| Nonce(f.nonce.to_string()))
    }
}

/// What a request between nodes is: method, `Host` field and path with query.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub method: &'a Method,
    pub host: &'a str,
    pub path: &'a str,
}

/// Why a signature was refused (for logs and tests; peers are told only 401).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no {AUTH_HEADER} field")]
    Missing,
    #[error("the {AUTH_HEADER} field is malformed")]
    Malformed,
    #[error("the request's time is more than {}s from this node's clock", MAX_SKEW.as_secs())]
    Skew,
    #[error("signed by {0}, not by the node asked")]
    WrongNode(String),
    #[error("the signature does not match (another secret, or a changed request)")]
    Mismatch,
}

/// A request that verified: who sent it, and the nonce its answer must be bound to.
#[derive(Clone, Debug)]
pub struct Verified {
    pub peer: String,
    pub nonce: Nonce,
}

/// Signs and checks with the cluster's secret.
#[derive(Clone)]
pub struct Keys {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// The parts of one `x-edgenode-auth` field.
struct Fields<'a> {
    id: &'a str,
    time: Option<u64>,
    nonce: &'a str,
    mac: Vec<u8>,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Keys {
        // HMAC takes a key of any length.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        Keys { mac }
    }

    /// Signs a request from node `me` at `now`: the field to send, and the nonce to check
    /// the answer with.
    pub fn sign_request(
        &self,
        me: &str,
        target: Target<'_>,
        now: SystemTime,
    ) -> (HeaderValue, Nonce) {
        let time = unix_seconds(now);
        let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let mac = self.request_mac(me, time, &nonce, target);
        let field = format!(
            "id={me};t={time};n={nonce};s={}",
            URL_SAFE_NO_PAD.encode(mac)
        );
        // Ids, digits and base64url are all visible ASCII.
        let value = HeaderValue::from_str(&field).unwrap_or(HeaderValue::from_static("invalid"));
        (value, Nonce(nonce))
    }

    /// Checks a request's field against what it asks, at `now`.
    pub fn verify_request(
        &self,
        headers: &HeaderMap,
        target: Target<'_>,
        now: SystemTime,
    ) -> Result<Verified, AuthError> {
        let fields = parse(headers)?;
        let time = fields.time.ok_or(AuthError::Malformed)?;
        if unix_seconds(now).abs_diff(time) > MAX_SKEW.as_secs() {
            return Err(AuthError::Skew);
        }
        let mut mac = self.mac.clone();
        feed_request(&mut mac, fields.id, time, fields.nonce, target);
        mac.verify_slice(&fields.mac)
            .map_err(|_| AuthError::Mismatch)?;
        Ok(Verified {
            peer: fields.id.to_string(),
            nonce: Nonce(fields.nonce.to_string()),
        })
    }

    /// The field for an answer from node `me` to the request with `nonce`; `body` when the
    /// whole body is in hand (and then the MAC covers it).
    pub fn sign_answer(
        &self,
        me: &str,
        nonce: &Nonce,
        status: StatusCode,
        body: Option<&[u8]>,
    ) -> HeaderValue {
        let mac = self.answer_mac(me, &nonce.0, status, body);
        let field = format!("id={me};n={};s={}", nonce.0, URL_SAFE_NO_PAD.encode(mac));
        HeaderValue::from_str(&field).unwrap_or(HeaderValue::from_static("invalid"))
    }

    /// Checks that an answer comes from node `expected` (any node when None) and answers the
    /// request with `nonce`; returns the signer's id.
    pub fn verify_answer(
        &self,
        headers: &HeaderMap,
        expected: Option<&str>,
        nonce: &Nonce,
        status: StatusCode,
        body: Option<&[u8]>,
    ) -> Result<String, AuthError> {
        let fields = parse(headers)?;
        if let Some(expected) = expected
            && fields.id != expected
        {
            return Err(AuthError::WrongNode(fields.id.to_string()));
        }
        if fields.nonce != nonce.0 {
            return Err(AuthError::Mismatch);
        }
        let mut mac = self.mac.clone();
        feed_answer(&mut mac, fields.id, &nonce.0, status, body);
        mac.verify_slice(&fields.mac)
            .map_err(|_| AuthError::Mismatch)?;
        Ok(fields.id.to_string())
    }

    fn request_mac(&self, id: &str, time: u64, nonce: &str, target: Target<'_>) -> Vec<u8> {
        let mut mac = self.mac.clone();
        feed_request(&mut mac, id, time, nonce, target);
        mac.finalize().into_bytes().to_vec()
    }

    fn answer_mac(
        &self,
        id: &str,
        nonce: &str,
        status: StatusCode,
        body: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut mac = self.mac.clone();
        feed_answer(&mut mac, id, nonce, status, body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Each part is length-prefixed, so no two different requests feed the same bytes.
fn feed(mac: &mut Hmac<Sha256>, part: &[u8]) {
    mac.update(&(part.len() as u64).to_be_bytes());
    mac.update(part);
}

fn feed_request(mac: &mut Hmac<Sha256>, id: &str, time: u64, nonce: &str, target: Target<'_>) {
    feed(mac, b"edgenode request v1");
    feed(mac, id.as_bytes());
    feed(mac, &time.to_be_bytes());
    feed(mac, nonce.as_bytes());
    feed(mac, target.method.as_str().as_bytes());
    feed(mac, target.host.to_ascii_lowercase().as_bytes());
    feed(mac, target.path.as_bytes());
}

fn feed_answer(
    mac: &mut Hmac<Sha256>,
    id: &str,
    nonce: &str,
    status: StatusCode,
    body: Option<&[u8]>,
) {
    feed(mac, b"edgenode answer v1");
    feed(mac, id.as_bytes());
    feed(mac, nonce.as_bytes());
    feed(mac, &status.as_u16().to_be_bytes());
    match body {
        Some(body) => feed(mac, &Sha256::digest(body)),
        None => feed(mac, b""),
    }
}

fn parse(headers: &HeaderMap) -> Result<Fields<'_>, AuthError> {
    let value = headers.get(AUTH_HEADER).ok_or(AuthError::Missing)?;
    let text = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (mut id, mut time, mut nonce, mut mac) = (None, None, None, None);
    for part in text.split(';') {
        let (name, value) = part.trim().split_once('=').ok_or(AuthError::Malformed)?;
        match name {
            "id" => id = Some(value),
            "t" => time = Some(value.parse::<u64>().map_err(|_| AuthError::Malformed)?),
            "n" => nonce = Some(value),
            "s" => {
                mac = Some(
                    URL_SAFE_NO_PAD
                        .decode(value)
                        .map_err(|_| AuthError::Malformed)?,
                )
            }
            _ => return Err(AuthError::Malformed),
        }
    }
    match (id, nonce, mac) {
        (Some(id), Some(nonce), Some(mac)) if !id.is_empty() && !nonce.is_empty() => Ok(Fields {
            id,
            time,
            nonce,
            mac,
        }),
        _ => Err(AuthError::Malformed),
    }
}

/// A new random secret: 32 random bytes as 64 hex digits (`edgenode secret`).
pub fn new_secret() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn get<'a>(host: &'a str, path: &'a str) -> Target<'a> {
        Target {
            method: &Method::GET,
            host,
            path,
        }
    }

    fn signed(keys: &Keys, target: Target<'_>, at: SystemTime) -> (HeaderMap, Nonce) {
        let (value, nonce) = keys.sign_request("node1", target, at);
        let mut headers = HeaderMap::new();
        headers.insert(AUTH_HEADER, value);
        (headers, nonce)
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_is_refused() {
        let keys = Keys::new(SECRET);
        let now = SystemTime::now();
        let (headers, nonce) = signed(&keys, get("Example.com", "/a?b=1"), now);
        let verified = keys
            .verify_request(&headers, get("example.com", "/a?b=1"), now)
            .expect("verifies");
        assert_eq!(verified.peer, "node1");
        assert_eq!(verified.nonce, nonce);

        for other in [get("example.com", "/a?b=2"), get("other.com", "/a?b=1")] {
            assert_eq!(
                keys.verify_request(&headers, other, now).unwrap_err(),
                AuthError::Mismatch
            );
        }
        let post = Target {
            method: &Method::POST,
            ..get("example.com", "/a?b=1")
        };
        assert!(keys.verify_request(&headers, post, now).is_err());
        let stranger = Keys::new(b"another secret of enough length!");
        assert_eq!(
            stranger
                .verify_request(&headers, get("example.com", "/a?b=1"), now)
                .unwrap_err(),
            AuthError::Mismatch
        );
        let later = now + MAX_SKEW + Duration::from_secs(1);
        assert_eq!(
            keys.verify_request(&headers, get("example.com", "/a?b=1"), later)
                .unwrap_err(),
            AuthError::Skew
        );
        assert_eq!(
            keys.verify_request(&HeaderMap::new(), get("example.com", "/"), now)
                .unwrap_err(),
            AuthError::Missing
        );
    }

    #[test]
    fn an_answer_is_bound_to_its_request_node_status_and_body() {
        let keys = Keys::new(SECRET);
        let (_, nonce) = signed(&keys, get("h", "/"), SystemTime::now());
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTH_HEADER,
            keys.sign_answer("node2", &nonce, StatusCode::OK, Some(b"{}")),
        );
        let ok = keys.verify_answer(&headers, Some("node2"), &nonce, StatusCode::OK, Some(b"{}"));
        assert_eq!(ok.as_deref(), Ok("node2"));
        assert_eq!(
            keys.verify_answer(&headers, Some("node3"), &nonce, StatusCode::OK, Some(b"{}")),
            Err(AuthError::WrongNode("node2".into()))
        );
        let (_, other_nonce) = signed(&keys, get("h", "/"), SystemTime::now());
        let checks = [
            (&other_nonce, StatusCode::OK, Some(&b"{}"[..])),
            (&nonce, StatusCode::NOT_FOUND, Some(&b"{}"[..])),
            (&nonce, StatusCode::OK, Some(&b"{\"weight\":1}"[..])),
        ];
        for (nonce, status, body) in checks {
            assert!(
                keys.verify_answer(&headers, None, nonce, status, body)
                    .is_err()
            );
        }
    }

    #[test]
    fn malformed_fields_are_refused_not_panicked_on() {
        let keys = Keys::new(SECRET);
        for text in [
            "",
            "id=a",
            "id=a;t=x;n=b;s=c",
            "id=;n=b;s=AA",
            "x=1",
            "id=a;n=b;s=!!",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(AUTH_HEADER, HeaderValue::from_str(text).unwrap());
            assert!(
                keys.verify_request(&headers, get("h", "/"), SystemTime::now())
                    .is_err(),
                "{text:?}"
            );
        }
    }
}
