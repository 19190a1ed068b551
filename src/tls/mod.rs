//! TLS for the node: the server side of every HTTPS listener (HTTPDNS, the proxy and the
//! admin API's `admin.tls_listen`) and the client side of https origins.
//!
//! Listeners: rustls with TLS 1.3 by default, ALPN h2 and http/1.1, certificates and keys from
//! PEM files chosen by SNI (`certs`), or, when none is configured, a self-signed one generated
//! at start and written out so clients can trust it. Certificates from files reload with the
//! zones (SIGHUP, `POST /admin/reload`): the whole set is loaded and checked, then swapped in
//! one step; new handshakes use it, one broken pair changes nothing.
//!
//! Origins (`origin`): the Mozilla root store plus `proxy.origin_ca`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoClientAuth, ResolvesServerCert, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};

use crate::config::{MinVersion, TlsConfig};

mod certs;
mod ocsp;
pub mod origin;

pub use certs::{CertSet, CertStore};
pub use ocsp::Stapler;

/// Why TLS could not be set up; names the config key and the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file named by a config key (`tls.certificates[1].key`) cannot be used.
    #[error("{key}: {path}: {message}")]
    File {
        key: String,
        path: PathBuf,
        message: String,
    },
    #[error("tls.cert and tls.key go together: set both or neither")]
    HalfConfigured,
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// A ready server configuration, and where its certificate came from.
pub struct TlsSetup {
    pub config: Arc<ServerConfig>,
    /// The certificates handshakes choose from; swapped whole by a reload.
    pub store: Arc<CertStore>,
    /// The PEM file of the generated certificate when self-signed (clients pass it as their CA).
    pub self_signed_cert: Option<PathBuf>,
    /// The private directory that file is in (removed when dropped).
    pub scratch: Option<tempfile::TempDir>,
}

/// The listeners' TLS configuration from `[tls]`; without certificates, a self-signed one
/// whose PEM file is written into a new private directory under `scratch_parent`.
pub fn setup(config: &TlsConfig, scratch_parent: &Path) -> Result<TlsSetup, TlsError> {
    let (store, self_signed_cert, scratch) = match CertStore::from_config(config)? {
        Some(store) => (store, None, None),
        None => {
            // Mode 0700, an unpredictable name, made new (never an existing directory or a
            // symlink someone else planted in a shared /tmp).
            let mut builder = tempfile::Builder::new();
            builder.prefix("edgenode-");
            #[cfg(unix)]
            builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
            let scratch = builder
                .tempdir_in(scratch_parent)
                .map_err(|e| TlsError::Generate(format!("{}: {e}", scratch_parent.display())))?;
            let (chain, key, path) = self_signed(scratch.path())?;
            (CertStore::generated(chain, key)?, Some(path), Some(scratch))
        }
    };
    let store = Arc::new(store);
    let config = server_config(&store, config.min_version, Arc::new(NoClientAuth))?;
    Ok(TlsSetup {
        config,
        store,
        self_signed_cert,
        scratch,
    })
}

/// The admin listener's TLS (`admin.tls_listen`): the certificates of `setup`, the very same
/// store, so a reload reaches this listener too; with `client_ca` (`admin.client_ca`), a
/// client certificate signed by one of its CAs is required, and a handshake without one
/// fails. The CA bundle is read once, at start.
pub fn admin_config(
    setup: &TlsSetup,
    min_version: MinVersion,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let clients: Arc<dyn ClientCertVerifier> = match client_ca {
        None => Arc::new(NoClientAuth),
        Some(path) => {
            let key = "admin.client_ca";
            let fail = |message: String| TlsError::File {
                key: key.into(),
                path: path.to_path_buf(),
                message,
            };
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(path, key)? {
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| fail(e.to_string()))?
        }
    };
    server_config(&setup.store, min_version, clients)
}

/// A listener's configuration: certificates from `store`, the versions `min_version` allows,
/// ALPN h2 and http/1.1, session tickets, and `clients` deciding on client certificates.
fn server_config(
    store: &Arc<CertStore>,
    min_version: MinVersion,
    clients: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        MinVersion::Tls13 => &[&rustls::version::TLS13],
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(clients)
        .with_cert_resolver(Arc::clone(store) as Arc<dyn ResolvesServerCert>);
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Session resumption by stateless tickets (keys random per process, rotated every 6 h,
    // tickets valid 12 h), as nginx's default: a returning client skips the certificate and
    // the key exchange's signature, and no per-client state is kept (rustls's default is a
    // 256-entry session cache, which a busy node cycles through in moments).
    server.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(server))
}

/// The PEM certificates in `path` (a chain, or a CA bundle); `key` is the config key naming it.
pub(crate) fn read_certificates(
    path: &Path,
    key: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |message: String| TlsError::File {
        key: key.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if chain.is_empty() {
        return Err(fail("no PEM certificate in the file".into()));
    }
    Ok(chain)
}

pub(crate) fn read_key(path: &Path, key: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        key: key.to_string(),
        path: path.to_path_buf(),
        message: format!("no usable private key: {e}"),
    })
}

/// A certificate for "localhost" and 127.0.0.1/::1, written to `dir/edgenode-selfsigned.pem`.
fn self_signed(
    dir: &Path,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
        PathBuf,
    ),
    TlsError,
> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let path = dir.join("edgenode-selfsigned.pem");
    // create_new: fails rather than write through anything already at that name.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, generated.cert.pem().as_bytes()))
        .map_err(|e| TlsError::Generate(format!("{}: {e}", path.display())))?;
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((vec![generated.cert.der().clone()], key, path))
}

#[cfg(test)]
mod tests;
