//! TLS for every HTTPS listener of the node (HTTPDNS now, the proxy later): rustls with TLS 1.3
//! by default, ALPN h2 and http/1.1, a certificate and key from PEM files or, when none is
//! configured, a self-signed one generated at start and written out so clients can trust it.
//! Certificates from files reload with the zones (SIGHUP, `POST /admin/reload`): the new pair
//! is loaded and checked, then swapped in; new handshakes use it, a broken pair changes nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why TLS could not be set up; names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
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
    /// The certificate every handshake gets; swapped by `CertStore::reload`.
    pub store: Arc<CertStore>,
    /// The PEM file of the generated certificate when self-signed (clients pass it as their CA).
    pub self_signed_cert: Option<PathBuf>,
}

/// The current certificate and key, swapped whole on reload (lock-free for handshakes).
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
    /// The files to reload from; None for a generated certificate (nothing to reload).
    files: Option<(PathBuf, PathBuf)>,
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl CertStore {
    /// Loads and checks the files without swapping (None for a generated certificate).
    pub fn load(&self) -> Result<Option<CertifiedKey>, TlsError> {
        let Some((cert, key)) = &self.files else {
            return Ok(None);
        };
        certified_key(read_chain(cert)?, read_key(key)?).map(Some)
    }

    /// Makes `key` (from `load`) current.
    pub fn swap(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    Ok(CertifiedKey::from_der(
        chain,
        key,
        &rustls::crypto::ring::default_provider(),
    )?)
}

/// TLS versions to offer (config `tls.min_version`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum MinVersion {
    #[default]
    #[serde(rename = "1.3")]
    Tls13,
    #[serde(rename = "1.2")]
    Tls12,
}

/// Loads `cert`/`key`, or generates a self-signed certificate for localhost and 127.0.0.1
/// into `generated_dir` when neither is given.
pub fn setup(
    cert: Option<&Path>,
    key: Option<&Path>,
    min_version: MinVersion,
    generated_dir: &Path,
) -> Result<TlsSetup, TlsError> {
    let (chain, private_key, self_signed_cert) = match (cert, key) {
        (Some(cert_path), Some(key_path)) => (read_chain(cert_path)?, read_key(key_path)?, None),
        (None, None) => {
            let (chain, key, path) = self_signed(generated_dir)?;
            (chain, key, Some(path))
        }
        _ => return Err(TlsError::HalfConfigured),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        MinVersion::Tls13 => &[&rustls::version::TLS13],
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let files = cert
        .zip(key)
        .map(|(c, k)| (c.to_path_buf(), k.to_path_buf()));
    let store = Arc::new(CertStore {
        current: ArcSwap::from_pointee(certified_key(chain, private_key)?),
        files,
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&store) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(config),
        store,
        self_signed_cert,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |message: String| TlsError::File {
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

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
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
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, generated.cert.pem()))
        .map_err(|e| TlsError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((vec![generated.cert.der().clone()], key, path))
}
