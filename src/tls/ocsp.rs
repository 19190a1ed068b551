//! OCSP stapling (RFC 6066 8, RFC 6960), as nginx's `ssl_stapling` does it: for each
//! certificate whose chain holds its issuer, the node asks the certificate's OCSP responder
//! (its Authority Information Access URL, or `tls.ocsp_responder`) whether it is good, and
//! hands the signed answer to every client in the handshake, so that clients need not ask the
//! CA themselves (slow, and a privacy leak).
//!
//! An answer is kept until its `nextUpdate` and asked again halfway through its validity; a
//! failed ask is tried again after 5 s, then twice as long each time up to a minute, and
//! meanwhile the last good answer is stapled while it lasts. Only a `good` answer for the certificate's own serial is stapled (a client given
//! a `revoked` one would refuse the connection; nginx staples only good ones too). The
//! answer's signature is left to the client to check, as every client does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use der::{Decode, Encode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;
use x509_ocsp::builder::OcspRequestBuilder;
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus};

use super::CertStore;

/// How long an ask of a responder may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest OCSP answer read.
const MAX_ANSWER: usize = 64 << 10;
/// After a failed ask: 5 s, then twice as long each time, up to a minute.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(60);
/// The longest sleep between two looks at the certificates (a reload replaces them).
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// One good answer for one certificate.
#[derive(Clone)]
struct Staple {
    der: Vec<u8>,
    refresh_at: SystemTime,
    expires: SystemTime,
}

/// Keeps the certificates of `store` stapled; see the module's comment.
pub struct Stapler {
    store: Arc<CertStore>,
    /// `tls.ocsp_responder`: asked instead of the certificates' own responders.
    responder: Option<String>,
    /// By leaf certificate.
    staples: HashMap<Vec<u8>, Staple>,
    /// When a leaf's failed ask may be tried again, and the wait after the next failure.
    retry_at: HashMap<Vec<u8>, (SystemTime, Duration)>,
}

impl Stapler {
    pub fn new(store: Arc<CertStore>, responder: Option<String>) -> Stapler {
        Stapler {
            store,
            responder,
            staples: HashMap::new(),
            retry_at: HashMap::new(),
        }
    }

    /// Staples until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let wake = self.refresh().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wake.min(LOOK_EVERY)) => {}
            }
        }
    }

    /// Asks for what is due, staples what is good, and says how long until the next ask.
    pub async fn refresh(&mut self) -> Duration {
        let now = SystemTime::now();
        let set = self.store.current();
        let mut next = LOOK_EVERY;
        for key in set.keys() {
            let Some(leaf) = key.cert.first() else {
                continue;
            };
            let leaf = leaf.as_ref().to_vec();
            let due = self
                .staples
                .get(&leaf)
                .is_none_or(|staple| staple.refresh_at <= now);
            let waiting = self.retry_at.get(&leaf).is_some_and(|(at, _)| *at > now);
            if due && !waiting {
                match self.ask(&key).await {
                    Ok(staple) => {
                        tracing::info!(expires = ?staple.expires, "ocsp: stapled a good answer");
                        self.retry_at.remove(&leaf);
                        self.staples.insert(leaf.clone(), staple);
                    }
                    Err(error) => {
                        let wait = self
                            .retry_at
                            .get(&leaf)
                            .map_or(FIRST_RETRY, |(_, wait)| *wait);
                        tracing::warn!(%error, ?wait, "ocsp: no answer to staple; trying again");
                        self.retry_at
                            .insert(leaf.clone(), (now + wait, (wait * 2).min(RETRY)));
                    }
                }
            }
            let again = match (self.retry_at.get(&leaf), self.staples.get(&leaf)) {
                (Some((at, _)), _) => Some(*at),
                (None, Some(staple)) => Some(staple.refresh_at),
                (None, None) => None,
            };
            if let Some(again) = again {
                let until = again.duration_since(now).unwrap_or_default();
                next = next.min(until.max(Duration::from_secs(1)));
            }
        }
        self.staples.retain(|_, staple| staple.expires > now);
        let staples = &self.staples;
        if let Some(stapled) =
            set.restapled(|leaf| staples.get(leaf.as_ref()).map(|s| s.der.clone()))
        {
            self.store.swap(stapled);
        }
        next
    }

    /// One ask of the responder for `key`'s leaf.
    async fn ask(&self, key: &CertifiedKey) -> Result<Staple, OcspError> {
        let (Some(leaf), Some(issuer)) = (key.cert.first(), key.cert.get(1)) else {
            return Err(OcspError::Chain(
                "the chain holds no issuer certificate to name the leaf by",
            ));
        };
        let url = match &self.responder {
            Some(url) => url.clone(),
            None => responder_of(leaf)
                .ok_or(OcspError::Chain("the certificate names no OCSP responder"))?,
        };
        let der = |what: &'static str| move |e: der::Error| OcspError::Der { what, error: e };
        let leaf_cert =
            x509_cert::Certificate::from_der(leaf.as_ref()).map_err(der("the certificate"))?;
        let issuer_cert =
            x509_cert::Certificate::from_der(issuer.as_ref()).map_err(der("its issuer"))?;
        let request = x509_ocsp::Request::from_cert::<sha1::Sha1>(&issuer_cert, &leaf_cert)
            .map_err(|e| OcspError::Request(e.to_string()))?;
        let body = OcspRequestBuilder::default()
            .with_request(request)
            .build()
            .to_der()
            .map_err(der("the request"))?;
        let responder = |problem: String| OcspError::Responder {
            url: url.clone(),
            problem,
        };
        let answer = tokio::time::timeout(ASK_TIMEOUT, post(&url, body))
            .await
            .map_err(|_| responder(format!("no answer in {ASK_TIMEOUT:?}")))?
            .map_err(responder)?;
        good_answer(&answer, leaf).map_err(responder)
    }
}

/// Why a certificate got no staple this time (logged; asked again later).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// The chain cannot be asked about: no issuer, or no responder named.
    #[error("{0}")]
    Chain(&'static str),
    /// A certificate of the chain, or the request built from them, does not encode.
    #[error("{what}: {error}")]
    Der {
        what: &'static str,
        error: der::Error,
    },
    #[error("the request: {0}")]
    Request(String),
    /// The responder at `url` did not answer, or not with a good answer for the certificate.
    #[error("{url}: {problem}")]
    Responder { url: String, problem: String },
}

/// The answer `der` if it is a successful basic response that says `leaf` is good now, with
/// when to ask again and when it expires.
fn good_answer(der: &[u8], leaf: &CertificateDer<'_>) -> Result<Staple, String> {
    let response = OcspResponse::from_der(der).map_err(|e| format!("not an OCSP response: {e}"))?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(format!("answered {:?}", response.response_status));
    }
    let bytes = response
        .response_bytes
        .ok_or("a successful answer with no response")?;
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| format!("not a basic OCSP response: {e}"))?;
    let serial = serial_of(leaf)?;
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| r.cert_id.serial_number.as_bytes() == serial.as_slice())
        .ok_or("no answer for this certificate's serial")?;
    if !matches!(single.cert_status, CertStatus::Good(_)) {
        return Err(format!("the certificate is {:?}", single.cert_status));
    }
    let now = SystemTime::now();
    let this_update = UNIX_EPOCH + single.this_update.0.to_unix_duration();
    // Without a nextUpdate the responder always has newer news (RFC 6960 4.2.2.1): kept an hour.
    let expires = single
        .next_update
        .map_or(now + Duration::from_secs(3600), |t| {
            UNIX_EPOCH + t.0.to_unix_duration()
        });
    if expires <= now {
        return Err("the answer has expired already".into());
    }
    let validity = expires.duration_since(this_update).unwrap_or_default();
    let refresh_at = (this_update + validity / 2).max(now + Duration::from_secs(1));
    Ok(Staple {
        der: der.to_vec(),
        refresh_at,
        expires,
    })
}

/// The serial number of `leaf`, as its DER integer's content octets.
fn serial_of(leaf: &CertificateDer<'_>) -> Result<Vec<u8>, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("the certificate: {e}"))?;
    Ok(parsed.tbs_certificate.raw_serial().to_vec())
}

/// The OCSP responder URL in `leaf`'s Authority Information Access extension.
fn responder_of(leaf: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    parsed
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => aia.accessdescs.iter().find_map(|desc| {
                let ocsp = desc.access_method
                    == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP;
                match &desc.access_location {
                    GeneralName::URI(uri) if ocsp => Some((*uri).to_string()),
                    _ => None,
                }
            }),
            _ => None,
        })
}

/// POSTs an OCSP request to `url` (plain HTTP, as OCSP responders are reached) and reads the
/// answer. The connection is driven in this future, not a task of its own, so it ends with
/// the stapler (at shutdown) and nothing outlives it.
/// Errors say what went wrong, without the URL (`OcspError::Responder` adds it).
async fn post(url: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// responders are asked".into());
    }
    let host = uri.host().ok_or("no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let authority = uri.authority().map_or(host, |a| a.as_str()).to_string();
    let request = Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/ocsp-request")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        // Dropping the sender lets the connection finish.
        drop(sender);
        Ok(body.to_bytes().to_vec())
    };
    // The connection ends once the exchange has dropped its sender (or fails first, and then
    // so does the exchange).
    let (answer, _) = tokio::join!(exchange, connection);
    answer
}
