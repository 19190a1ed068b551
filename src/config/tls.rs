//! `[tls]`: the certificates of the HTTPS listeners, and their checks (server names included,
//! so that this module depends on nothing the `tls` module does).

use std::collections::HashSet;
use std::path::PathBuf;

use rustls::pki_types::DnsName;
use serde::Deserialize;

use super::Problems;

/// The certificates of every HTTPS listener; none: a self-signed one generated at start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The default certificate: for handshakes without SNI or with a name no
    /// `certificates` entry serves. Absent: the first of `certificates` is the default.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Certificates chosen by the client's SNI.
    pub certificates: Vec<TlsCertificate>,
    /// "1.3" (default) or "1.2" to accept TLS 1.2 as well.
    pub min_version: MinVersion,
    /// Staple OCSP answers for certificates whose chain holds their issuer (`tls::Stapler`).
    pub ocsp_stapling: bool,
    /// An OCSP responder (http://) asked instead of the one each certificate names.
    pub ocsp_responder: Option<String>,
}

/// One `[[tls.certificates]]` entry: a PEM chain and key, and the server names they serve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Exact names or `*.example.com`; absent: the DNS names of the certificate's
    /// subjectAltName.
    pub names: Option<Vec<String>>,
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

impl TlsConfig {
    pub fn validate(&self, problems: &mut Problems) {
        if let Some(url) = &self.ocsp_responder
            && !url.starts_with("http://")
        {
            problems.add(
                "tls.ocsp_responder",
                format!("{url:?}: an http:// URL (OCSP responders are asked over plain HTTP)"),
            );
        }
        if self.cert.is_some() != self.key.is_some() {
            problems.add(
                "tls.cert",
                "tls.cert and tls.key go together: set both or neither",
            );
        }
        let mut names = HashSet::new();
        for (i, entry) in self.certificates.iter().enumerate() {
            let key = format!("tls.certificates[{i}].names");
            let Some(listed) = &entry.names else {
                continue;
            };
            if listed.is_empty() {
                problems.add(
                    &key,
                    "empty: list server names, or omit names to take the certificate's own",
                );
            }
            for name in listed {
                if let Err(message) = check_server_name(name) {
                    problems.add(&key, message);
                } else if !names.insert(name.trim_end_matches('.').to_ascii_lowercase()) {
                    problems.add(&key, format!("{name:?} is listed by an earlier entry too"));
                }
            }
        }
    }
}

/// Checks a configured server name: `www.example.com`, or `*.example.com` for one label more.
pub fn check_server_name(name: &str) -> Result<(), String> {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let bare = bare.strip_suffix('.').unwrap_or(bare);
    if bare.contains('*') {
        return Err(format!(
            "{name:?}: a wildcard must be the whole first label (*.example.com)"
        ));
    }
    DnsName::try_from(bare)
        .map(|_| ())
        .map_err(|_| format!("{name:?} is not a DNS name"))
}

#[cfg(test)]
mod tests {
    use super::check_server_name;

    #[test]
    fn configured_server_names_are_checked() {
        for good in [
            "a.test",
            "*.a.test",
            "localhost",
            "xn--bcher-kva.test",
            "a.test.",
        ] {
            assert!(check_server_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "*",
            "a.*.test",
            "*a.test",
            "a..test",
            "-a.test",
            "a test",
            "127.0.0.1",
        ] {
            assert!(check_server_name(bad).is_err(), "{bad:?}");
        }
    }
}
