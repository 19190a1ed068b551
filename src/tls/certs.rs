//! The certificates of the HTTPS listeners: a default one and any number chosen by SNI, loaded
//! from PEM files into one `CertSet` that a reload replaces whole.
//!
//! Selection: the exact server name, then a `*.parent` wildcard (one label, as in RFC 6125
//! 6.4.3), both case-insensitive; anything else, and handshakes without SNI, get the default.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;

use super::{TlsError, read_certificates, read_key};
use crate::config::TlsConfig;

/// The certificates handshakes choose from, reloadable from their files.
///
/// rustls' `ResolvesServerCertUsingSni` cannot be changed once serving, so the set sits behind
/// an `ArcSwap`: handshakes never lock, and a reload is one pointer store.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertSet>,
    /// The pairs to reload, the default first; empty for a generated certificate.
    sources: Vec<CertSource>,
}

/// One loaded, consistent set of certificates.
#[derive(Debug)]
pub struct CertSet {
    /// For handshakes without SNI or with a name no certificate claims.
    default: Arc<CertifiedKey>,
    /// Lowercase server name -> certificate.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` is kept under "example.com": it serves any one label more.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// One line per certificate ("cert.pem (default; a.test *.a.test)"), for `check` and logs.
    summary: Vec<String>,
}

/// One certificate and key file pair as the configuration names it.
#[derive(Debug, Clone)]
struct CertSource {
    /// Its config key ("tls" or "tls.certificates[1]"), for messages.
    key: String,
    cert: PathBuf,
    private_key: PathBuf,
    names: Names,
}

/// Which server names select a pair.
#[derive(Debug, Clone)]
enum Names {
    /// `tls.cert`: the default, selected by no name of its own.
    DefaultOnly,
    /// `names = [...]`, checked against the certificate.
    Listed(Vec<String>),
    /// No `names`: the DNS names in the certificate's subjectAltName.
    FromCertificate,
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.current.load().select(hello.server_name())))
    }
}

impl CertStore {
    /// Loads the pairs `[tls]` names; None when it names none (the caller generates one).
    pub(super) fn from_config(config: &TlsConfig) -> Result<Option<CertStore>, TlsError> {
        let mut sources = Vec::new();
        match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => sources.push(CertSource {
                key: "tls".into(),
                cert: cert.clone(),
                private_key: key.clone(),
                names: Names::DefaultOnly,
            }),
            (None, None) => {}
            _ => return Err(TlsError::HalfConfigured),
        }
        for (i, entry) in config.certificates.iter().enumerate() {
            sources.push(CertSource {
                key: format!("tls.certificates[{i}]"),
                cert: entry.cert.clone(),
                private_key: entry.key.clone(),
                names: entry
                    .names
                    .clone()
                    .map_or(Names::FromCertificate, Names::Listed),
            });
        }
        let Some(set) = load_set(&sources)? else {
            return Ok(None);
        };
        Ok(Some(CertStore {
            current: ArcSwap::from_pointee(set),
            sources,
        }))
    }

    /// A store of one generated certificate, with nothing to reload.
    pub(super) fn generated(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<CertStore, TlsError> {
        let key = CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())?;
        Ok(CertStore {
            current: ArcSwap::from_pointee(CertSet {
                default: Arc::new(key),
                exact: HashMap::new(),
                wildcard: HashMap::new(),
                summary: vec!["self-signed (localhost 127.0.0.1 ::1)".into()],
            }),
            sources: Vec::new(),
        })
    }

    /// Loads and checks every pair without swapping (None for a generated certificate). One
    /// broken pair fails the whole load, naming its key and file.
    pub fn load(&self) -> Result<Option<CertSet>, TlsError> {
        load_set(&self.sources)
    }

    /// Makes `set` (from `load`) current for new handshakes.
    pub fn swap(&self, set: CertSet) {
        self.current.store(Arc::new(set));
    }

    /// The set handshakes use now.
    pub fn current(&self) -> Arc<CertSet> {
        self.current.load_full()
    }
}

impl CertSet {
    /// Every certificate of the set, each once.
    pub fn keys(&self) -> Vec<Arc<CertifiedKey>> {
        let mut keys: Vec<Arc<CertifiedKey>> = vec![Arc::clone(&self.default)];
        for key in self.exact.values().chain(self.wildcard.values()) {
            if !keys.iter().any(|k| Arc::ptr_eq(k, key)) {
                keys.push(Arc::clone(key));
            }
        }
        keys
    }

    /// The set with each certificate's stapled OCSP answer set to `staple_for(leaf)`; None
    /// when that changes nothing.
    pub fn restapled(
        &self,
        staple_for: impl Fn(&CertificateDer<'_>) -> Option<Vec<u8>>,
    ) -> Option<CertSet> {
        let mut changed = false;
        let mut replaced: Vec<(Arc<CertifiedKey>, Arc<CertifiedKey>)> = Vec::new();
        for key in self.keys() {
            let staple = key.cert.first().and_then(&staple_for);
            let new = if staple == key.ocsp {
                Arc::clone(&key)
            } else {
                changed = true;
                let mut stapled = CertifiedKey::clone(&key);
                stapled.ocsp = staple;
                Arc::new(stapled)
            };
            replaced.push((key, new));
        }
        if !changed {
            return None;
        }
        let swap = |key: &Arc<CertifiedKey>| {
            replaced
                .iter()
                .find(|(old, _)| Arc::ptr_eq(old, key))
                .map_or_else(|| Arc::clone(key), |(_, new)| Arc::clone(new))
        };
        Some(CertSet {
            default: swap(&self.default),
            exact: self
                .exact
                .iter()
                .map(|(n, k)| (n.clone(), swap(k)))
                .collect(),
            wildcard: self
                .wildcard
                .iter()
                .map(|(n, k)| (n.clone(), swap(k)))
                .collect(),
            summary: self.summary.clone(),
        })
    }

    /// The certificate for a handshake with this SNI (rustls passes it lowercase).
    pub fn select(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return &self.default;
        };
        // Allocates only for names that are not lowercase already (rustls lowercases SNI).
        let name = name.strip_suffix('.').unwrap_or(name);
        let lowered;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = name.to_ascii_lowercase();
            lowered.as_str()
        } else {
            name
        };
        if let Some(found) = self.exact.get(name) {
            return found;
        }
        name.split_once('.')
            .filter(|(label, _)| !label.is_empty())
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
    }

    /// One line per certificate: its file and the names that select it.
    pub fn summary(&self) -> &[String] {
        &self.summary
    }
}

/// Loads every pair into one set, the first pair the default; None for no pairs.
fn load_set(sources: &[CertSource]) -> Result<Option<CertSet>, TlsError> {
    let mut loaded = Vec::with_capacity(sources.len());
    for source in sources {
        loaded.push(source.load()?);
    }
    let Some(default) = loaded.first().map(|(key, _)| Arc::clone(key)) else {
        return Ok(None);
    };
    let mut set = CertSet {
        default,
        exact: HashMap::new(),
        wildcard: HashMap::new(),
        summary: Vec::new(),
    };
    for (i, ((key, names), source)) in loaded.into_iter().zip(sources).enumerate() {
        for name in &names {
            let (table, name) = match name.strip_prefix("*.") {
                Some(parent) => (&mut set.wildcard, parent),
                None => (&mut set.exact, name.as_str()),
            };
            // The first pair to claim a name serves it.
            table
                .entry(name.to_string())
                .or_insert_with(|| Arc::clone(&key));
        }
        let role = if i == 0 { "default" } else { "" };
        let names = [role.to_string(), names.join(" ")]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        set.summary
            .push(format!("{} ({names})", source.cert.display()));
    }
    Ok(Some(set))
}

impl CertSource {
    /// The pair, checked (the key fits the certificate, listed names are the certificate's),
    /// and the names that select it.
    fn load(&self) -> Result<(Arc<CertifiedKey>, Vec<String>), TlsError> {
        let cert_key = format!("{}.cert", self.key);
        let key_key = format!("{}.key", self.key);
        let chain = read_certificates(&self.cert, &cert_key)?;
        let private_key = read_key(&self.private_key, &key_key)?;
        let fail = |key: &str, message: String| TlsError::File {
            key: key.to_string(),
            path: self.cert.clone(),
            message,
        };
        let names = match &self.names {
            Names::DefaultOnly => Vec::new(),
            Names::FromCertificate => {
                let sans = chain
                    .first()
                    .map_or(Ok(Vec::new()), dns_names)
                    .map_err(|message| fail(&cert_key, message))?;
                if sans.is_empty() {
                    return Err(fail(
                        &cert_key,
                        format!(
                            "no DNS names in its subjectAltName: list the names it serves in {}.names",
                            self.key
                        ),
                    ));
                }
                sans
            }
            Names::Listed(listed) => {
                let sans = chain
                    .first()
                    .map_or(Ok(Vec::new()), dns_names)
                    .map_err(|message| fail(&cert_key, message))?;
                let listed: Vec<String> = listed.iter().map(|n| normalize(n)).collect();
                if let Some(name) = listed.iter().find(|name| !covers(&sans, name)) {
                    return Err(fail(
                        &format!("{}.names", self.key),
                        format!(
                            "{name} is not a name of this certificate ({})",
                            sans.join(" ")
                        ),
                    ));
                }
                listed
            }
        };
        let provider = rustls::crypto::ring::default_provider();
        let certified =
            CertifiedKey::from_der(chain, private_key, &provider).map_err(|e| TlsError::File {
                key: key_key,
                path: self.private_key.clone(),
                message: format!("does not fit {}: {e}", self.cert.display()),
            })?;
        Ok((Arc::new(certified), names))
    }
}

/// The DNS names in a certificate's subjectAltName, lowercased.
fn dns_names(cert: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| format!("unreadable subjectAltName: {e}"))?;
    let names = san.map_or_else(Vec::new, |ext| {
        ext.value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(normalize(dns)),
                _ => None,
            })
            .collect()
    });
    Ok(names)
}

/// Whether a certificate with these subjectAltNames is valid for `name` (a listed wildcard
/// needs the same wildcard in the certificate).
fn covers(sans: &[String], name: &str) -> bool {
    sans.iter().any(|san| {
        san == name
            || san.strip_prefix("*.").is_some_and(|parent| {
                name.split_once('.').is_some_and(|(label, rest)| {
                    !label.is_empty() && label != "*" && rest == parent
                })
            })
    })
}

/// Lowercase, without a trailing dot: the form names are compared in.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}
