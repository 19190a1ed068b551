//! The connector to origins: TCP with a connect timeout and TCP_NODELAY for `http://` origins,
//! and TLS on top of it for `https://` ones (hyper-rustls), verified against the Mozilla root
//! store (webpki-roots) plus the operator's `proxy.origin_ca` bundle, for the host in the
//! origin's URL (SNI and name check; an IP address is checked against the certificate's IP
//! names). HTTP/1.1 only: the proxy forwards the client's Host header, which in HTTP/2 would
//! have to equal `:authority`, the origin's own address.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tower_service::Service;

use super::{TlsError, read_certificates};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens origin connections for hyper's pooled client; failures are logged with their cause
/// (an untrusted certificate, a refused connection), which the client's own error hides.
#[derive(Clone)]
pub struct OriginConnector {
    inner: HttpsConnector<HttpConnector>,
}

impl OriginConnector {
    /// `origin_ca`: a PEM bundle trusted in addition to the public roots (config
    /// `proxy.origin_ca`), for origins with certificates from a private CA.
    pub fn new(
        connect_timeout: Duration,
        origin_ca: Option<&Path>,
    ) -> Result<OriginConnector, TlsError> {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(true);
        // The scheme is checked by the TLS layer, which passes http:// through.
        tcp.enforce_http(false);
        let inner = HttpsConnectorBuilder::new()
            .with_tls_config(client_config(origin_ca)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(OriginConnector { inner })
    }
}

/// TLS 1.3 and 1.2 (origins are often older than the edge), the ring provider, and the roots.
fn client_config(origin_ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots: RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    if let Some(path) = origin_ca {
        for cert in read_certificates(path, "proxy.origin_ca")? {
            roots.add(cert).map_err(|e| TlsError::File {
                key: "proxy.origin_ca".into(),
                path: path.to_path_buf(),
                message: format!("not a usable CA certificate: {e}"),
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Service<Uri> for OriginConnector {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let origin = uri.authority().map(ToString::to_string).unwrap_or_default();
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let connected = connecting.await;
            if let Err(error) = &connected {
                let error = with_causes(error.as_ref());
                tracing::warn!(%origin, %error, "cannot connect to the origin");
            }
            connected
        })
    }
}

/// "tcp connect error: Connection refused (os error 111)": the error and each cause.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}
