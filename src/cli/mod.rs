//! The commands that drive a running node through its admin API: `edgenode preload`
//! (`preload`) and `edgenode purge` (`purge`), over `AdminClient` (plain HTTP to
//! `admin.listen`, or HTTPS to `admin.tls_listen` with `ClientTls`).

pub mod preload;
pub mod purge;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::{ClientConfig, RootCertStore};
use serde::de::DeserializeOwned;

use crate::tls::{TlsError, read_certificates, read_key};

/// How long one admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest admin answer read (a job of 10,000 URLs with long reasons fits).
const MAX_ANSWER: usize = 32 << 20;

/// Why a command could not talk to a node, or did not like its answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("--admin {0:?}: {1}")]
    AdminUrl(String, String),
    #[error("{admin}: {message}")]
    Unreachable { admin: String, message: String },
    #[error("{admin}: no answer within {REQUEST_TIMEOUT:?}")]
    Timeout { admin: String },
    /// The node answered with an error status; `message` is its body.
    #[error("{admin}: {status}: {message}")]
    Refused {
        admin: String,
        status: StatusCode,
        message: String,
    },
    #[error("{admin}: unexpected answer: {message}")]
    Answer { admin: String, message: String },
    #[error("{0}")]
    Input(String),
    /// A file of `--cacert`, `--cert` or `--key` cannot be used.
    #[error("{0}")]
    Tls(TlsError),
}

/// What an `https://` client trusts and presents, as curl's `--cacert`, `--cert` and `--key`;
/// unused for `http://`.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// Trust only the certificates of this PEM file (a CA bundle, or the node's self-signed
    /// certificate); None: the public roots (webpki-roots).
    pub cacert: Option<PathBuf>,
    /// A client certificate chain and its private key (PEM files), for a node that asks for
    /// one (`admin.client_ca`).
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// A client of one node's admin API (HTTP or HTTPS, bearer token when given).
#[derive(Clone)]
pub struct AdminClient {
    /// `http://host:port` or `https://host:port` plus any path prefix, without a trailing
    /// slash.
    base: String,
    token: Option<String>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl AdminClient {
    /// `admin` is `http://host:port` (or `host:port`) or `https://host:port`, optionally with
    /// a path prefix; `tls` applies to `https://` only.
    pub fn new(
        admin: &str,
        token: Option<String>,
        tls: &ClientTls,
    ) -> Result<AdminClient, CliError> {
        let bad = |message: &str| CliError::AdminUrl(admin.to_string(), message.to_string());
        let with_scheme = match admin.contains("://") {
            true => admin.to_string(),
            false => format!("http://{admin}"),
        };
        let uri: Uri = with_scheme.parse().map_err(|e| bad(&format!("{e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(bad(
                    "use http:// (admin.listen) or https:// (admin.tls_listen)",
                ));
            }
        };
        if uri.authority().is_none() {
            return Err(bad("no host"));
        }
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(Duration::from_secs(5)));
        // The scheme is checked by the TLS layer, which passes http:// through.
        tcp.enforce_http(false);
        let tls = match https {
            true => tls,
            // Never used; the files of an https setting (EDGENODE_ADMIN_CACERT) are not read.
            false => &ClientTls::default(),
        };
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(client_config(tls).map_err(CliError::Tls)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(AdminClient {
            base: with_scheme.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            client,
        })
    }

    /// Where this client sends its requests.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<(&'static str, String)>,
    ) -> Result<T, CliError> {
        self.send(Method::POST, path, body).await
    }

    /// One request; a 2xx answer's JSON body as `T`, anything else an error.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, String)>,
    ) -> Result<T, CliError> {
        let admin = self.base.clone();
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let content = match body {
            Some((content_type, text)) => {
                request = request.header(CONTENT_TYPE, content_type);
                Bytes::from(text)
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(content))
            .map_err(|e| CliError::AdminUrl(admin.clone(), e.to_string()))?;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| CliError::Unreachable {
                        admin: admin.clone(),
                        message: with_causes(&e),
                    })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| CliError::Answer {
                    admin: admin.clone(),
                    message: e.to_string(),
                })?
                .to_bytes();
            Ok::<_, CliError>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| CliError::Timeout {
                admin: admin.clone(),
            })??;
        if !status.is_success() {
            return Err(CliError::Refused {
                admin,
                status,
                message: error_text(&body),
            });
        }
        serde_json::from_slice(&body).map_err(|e| CliError::Answer {
            admin,
            message: e.to_string(),
        })
    }
}

/// TLS 1.3 and 1.2, the ring provider; `--cacert`'s certificates or the public roots; and
/// the client certificate when given.
fn client_config(tls: &ClientTls) -> Result<ClientConfig, TlsError> {
    let roots = match &tls.cacert {
        None => webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(path, "--cacert")? {
                roots.add(cert).map_err(|e| TlsError::File {
                    key: "--cacert".into(),
                    path: path.clone(),
                    message: format!("not a usable CA certificate: {e}"),
                })?;
            }
            roots
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let Some((cert, key)) = &tls.identity else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = read_certificates(cert, "--cert")?;
    builder
        .with_client_auth_cert(chain, read_key(key, "--key")?)
        .map_err(|e| TlsError::File {
            key: "--key".into(),
            path: key.clone(),
            message: format!("cannot be used with --cert: {e}"),
        })
}

/// An error answer's message: the `error` of a JSON body, or the text itself.
fn error_text(body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")?.as_str()) {
        Some(error) => error.to_string(),
        None => String::from_utf8_lossy(body).trim().to_string(),
    }
}

/// An error and its causes, `a: b: c` (hyper's "client error (Connect)" alone says little).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text = format!("{text}: {next}");
        cause = next.source();
    }
    text
}
