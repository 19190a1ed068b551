//! `[admin]`: the admin listeners (plain HTTP, and optionally TLS), who may use them, and the
//! checks `Config::validate` makes of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Problems;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Admin HTTP listener (plain HTTP): operators on loopback, and the other nodes of a
    /// cluster, whose heartbeats and purge fan-out come here (signed with `cluster.secret`).
    /// `"off"` (or `""`) for none.
    #[serde(deserialize_with = "listen_or_off")]
    pub listen: Option<SocketAddr>,
    /// A second admin listener, over TLS with the certificates of `[tls]` (reloaded with them):
    /// the same routes, for operators who reach the API across a network. Absent: none.
    pub tls_listen: Option<SocketAddr>,
    /// A PEM bundle of CA certificates: when set, `tls_listen` asks every client for a
    /// certificate signed by one of them and refuses the handshake without one (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// Bearer token for `/admin/*`; required when `listen` or `tls_listen` is not a loopback
    /// address, and then at least 16 characters and not a placeholder.
    pub token: Option<String>,
    /// Host names `/admin/*` may be asked by (besides IP literals and `localhost`): any other
    /// `Host` is refused, so a web page cannot reach the API through DNS rebinding.
    pub names: Vec<String>,
}

/// A socket address, or `"off"` / `""` for none (TOML has no null).
fn listen_or_off<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim() {
        "" | "off" => Ok(None),
        addr => addr.parse().map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "{addr:?}: {e} (an address such as \"127.0.0.1:9153\", or \"off\")"
            ))
        }),
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9153))),
            tls_listen: None,
            client_ca: None,
            token: None,
            names: Vec::new(),
        }
    }
}

/// Parts of tokens that say nobody chose them.
const PLACEHOLDERS: [&str; 6] = [
    "change-me",
    "changeme",
    "secret",
    "password",
    "admin",
    "token",
];

impl AdminConfig {
    pub fn validate(&self, problems: &mut Problems) {
        let token = self.token.as_deref().unwrap_or_default();
        let placeholder = PLACEHOLDERS
            .iter()
            .any(|weak| token.to_ascii_lowercase().contains(weak));
        let listeners = [
            ("admin.listen", self.listen),
            ("admin.tls_listen", self.tls_listen),
        ];
        // TLS hides the token on the wire; it does not replace it: without one, anybody who
        // reaches the port (with a certificate from client_ca, when set) could purge or reload.
        for (key, addr) in listeners {
            let Some(addr) = addr.filter(|a| !a.ip().is_loopback()) else {
                continue;
            };
            let message = if token.is_empty() {
                format!("required because {key} {addr} is not a loopback address")
            } else if token.len() < 16 || placeholder {
                format!(
                    "too weak for {key} {addr} beyond loopback: at least 16 characters and no \
                     placeholder such as change-me"
                )
            } else {
                continue;
            };
            problems.add("admin.token", message);
            // One problem with the token is enough, whichever listener shows it.
            break;
        }
        if let Some(path) = &self.client_ca {
            if self.tls_listen.is_none() {
                problems.add(
                    "admin.client_ca",
                    "requires admin.tls_listen: client certificates are asked for over TLS only",
                );
            }
            if let Err(error) = check_ca_bundle(path) {
                problems.add("admin.client_ca", error.to_string());
            }
        }
    }
}

/// Why `admin.client_ca` cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaBundleError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{}: no PEM certificate in the file", path.display())]
    Empty { path: PathBuf },
    #[error("{}: not a usable CA certificate: {source}", path.display())]
    Unusable {
        path: PathBuf,
        source: rustls::Error,
    },
}

/// Whether `path` is a PEM bundle of certificates each usable as a trust anchor.
fn check_ca_bundle(path: &Path) -> Result<(), CaBundleError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let path_buf = || path.to_path_buf();
    let bytes = std::fs::read(path).map_err(|source| CaBundleError::Read {
        path: path_buf(),
        source,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| CaBundleError::Pem {
            path: path_buf(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(CaBundleError::Empty { path: path_buf() });
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|source| CaBundleError::Unusable {
                path: path_buf(),
                source,
            })?;
    }
    Ok(())
}
