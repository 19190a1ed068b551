//! The `[httpdns]` section: listeners, the Alibaba-style accounts, the DNSPod keys and the
//! limits of both APIs.

use std::collections::HashSet;
use std::net::SocketAddr;

use serde::Deserialize;

use super::Problems;

/// HTTPDNS and DNS over HTTPS listeners, accounts and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpDnsConfig {
    /// Plain HTTP (HTTP/1.1 and h2c).
    pub listen: Vec<SocketAddr>,
    /// HTTPS (TLS per `[tls]`, ALPN h2 and http/1.1).
    pub tls_listen: Vec<SocketAddr>,
    /// Peers whose X-Forwarded-For names the client (load balancers in front of the node).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Most hosts in one batch (`/{account}/resolve?host=a,b,c`, `/d?dn=a,b`, `/v2/d`).
    pub max_hosts: usize,
    /// Requests per second allowed per client (0: unlimited), and the burst above it.
    pub client_rate: u32,
    pub client_burst: u32,
    /// IPv6 clients share one per-client budget per prefix of this length: one subscriber
    /// usually holds a whole /64, and a budget per address would be no budget at all.
    pub client_prefix_v6: u8,
    /// How far in the future a signature's `t` (expiry) may lie, in seconds: a signed URL
    /// cannot be made to last longer than this.
    pub max_signature_lifetime: u64,
    /// Largest RFC 8484 POST body accepted, in bytes.
    pub max_body: usize,
    pub accounts: Vec<HttpDnsAccount>,
    /// DNSPod / Tencent Cloud authorisations (`/d?id=`): the DES/AES key and HTTPS token.
    pub dnspod_keys: Vec<DnspodKey>,
}

/// An HTTPDNS account (`/{id}/d`, `/{id}/resolve`, the signed `sign_d` / `sign_resolve`,
/// `/{id}/ss` and `/v2/d?id=`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDnsAccount {
    pub id: String,
    /// Signing secret: `s = md5(host-secret-t)` for the v1 API; the hex key of the v2 API's
    /// HMAC-SHA256.
    pub secret: Option<String>,
    /// Refuse unsigned requests for this account.
    #[serde(default)]
    pub require_signature: bool,
    /// The v2 API's AES key, in hex (16, 24 or 32 bytes: the SDKs' `aesSecretKey`): requests
    /// with `m=1` (AES-CBC) or `m=2` (AES-GCM) carry their parameters encrypted with it in
    /// `enc`, and get their answer encrypted the same way.
    #[serde(default)]
    pub aes_key: Option<String>,
    /// Answer this account over HTTPS only (plain HTTP gets 403 `HttpsRequired`).
    #[serde(default)]
    pub https_only: bool,
    /// Requests per second for the whole account (0: unlimited), and the burst above it.
    #[serde(default)]
    pub rate: u32,
    #[serde(default)]
    pub burst: u32,
}

/// An account's `aes_key` as bytes: hex of a 16, 24 or 32-byte key.
pub fn account_aes_key(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim().as_bytes();
    if !matches!(hex.len(), 32 | 48 | 64) {
        return None;
    }
    hex.chunks_exact(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// One `[[httpdns.dnspod_keys]]` entry: what the DNSPod SDK is configured with for `id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnspodKey {
    /// The authorisation id the SDK sends as `id=`.
    pub id: String,
    /// The DES key (its first 8 bytes), and the AES key unless `aes_key` is given (padded
    /// with "0" to 16 bytes as the SDK pads it).
    pub key: Option<String>,
    /// The AES key when it differs from `key`.
    pub aes_key: Option<String>,
    /// The HTTPS token (`token=`): required on `/d` for this id when set.
    pub token: Option<String>,
}

impl DnspodKey {
    /// The DES key bytes: the first 8 of `key`.
    pub fn des_key(&self) -> Option<&[u8]> {
        self.key.as_deref().and_then(|k| k.as_bytes().get(..8))
    }

    /// The AES key bytes, padded with b'0' to 16 when shorter (as the SDK pads it).
    pub fn aes_key(&self) -> Option<Vec<u8>> {
        let key = self.aes_key.as_deref().or(self.key.as_deref())?;
        let mut bytes = key.as_bytes().to_vec();
        if bytes.len() < 16 {
            bytes.resize(16, b'0');
        }
        matches!(bytes.len(), 16 | 24 | 32).then_some(bytes)
    }
}

impl Default for HttpDnsConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            tls_listen: Vec::new(),
            trusted_proxies: Vec::new(),
            max_hosts: 5,
            client_rate: 100,
            client_burst: 200,
            client_prefix_v6: 64,
            max_signature_lifetime: 86_400,
            max_body: 4096,
            accounts: Vec::new(),
            dnspod_keys: Vec::new(),
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl HttpDnsConfig {
    pub fn validate(&self, problems: &mut Problems) {
        problems.at_least_one([("httpdns.max_hosts", self.max_hosts as u64)]);
        if self.max_body < 512 {
            problems.add("httpdns.max_body", "must be at least 512 bytes");
        }
        if !(1..=128).contains(&self.client_prefix_v6) {
            problems.add("httpdns.client_prefix_v6", "1 to 128");
        }
        problems.at_least_one([(
            "httpdns.max_signature_lifetime",
            self.max_signature_lifetime,
        )]);
        self.validate_accounts(problems);
        self.validate_dnspod_keys(problems);
    }

    /// `[[httpdns.accounts]]`: unique ids, usable keys.
    fn validate_accounts(&self, problems: &mut Problems) {
        let mut ids = HashSet::new();
        for (i, account) in self.accounts.iter().enumerate() {
            let key = format!("httpdns.accounts[{i}].id");
            if !valid_id(&account.id) {
                let message = format!("{:?}: letters, digits, - and _ only", account.id);
                problems.add(key, message);
            } else if !ids.insert(account.id.as_str()) {
                problems.add(key, format!("{:?} is listed twice", account.id));
            }
            if let Some(key) = &account.aes_key
                && account_aes_key(key).is_none()
            {
                problems.add(
                    format!("httpdns.accounts[{i}].aes_key"),
                    "must be 32, 48 or 64 hex digits (a 16, 24 or 32-byte AES key)",
                );
            }
            if account.require_signature && account.secret.as_deref().is_none_or(str::is_empty) {
                problems.add(
                    format!("httpdns.accounts[{i}].secret"),
                    "require_signature needs a secret",
                );
            }
        }
    }

    /// `[[httpdns.dnspod_keys]]`: unique ids, at least one usable key each.
    fn validate_dnspod_keys(&self, problems: &mut Problems) {
        let mut ids = HashSet::new();
        for (i, entry) in self.dnspod_keys.iter().enumerate() {
            let key = format!("httpdns.dnspod_keys[{i}]");
            if !valid_id(&entry.id) {
                let message = format!("{:?}: letters, digits, - and _ only", entry.id);
                problems.add(format!("{key}.id"), message);
            } else if !ids.insert(entry.id.as_str()) {
                problems.add(
                    format!("{key}.id"),
                    format!("{:?} is listed twice", entry.id),
                );
            }
            if entry.key.is_none() && entry.aes_key.is_none() && entry.token.is_none() {
                problems.add(key.clone(), "needs key, aes_key or token");
            }
            if entry.key.is_some() && entry.des_key().is_none() {
                problems.add(
                    format!("{key}.key"),
                    "at least 8 bytes (DES uses the first 8)",
                );
            }
            if entry.aes_key.is_some() && entry.aes_key().is_none() {
                let message = "16, 24 or 32 bytes (shorter keys are padded with \"0\" to 16)";
                problems.add(format!("{key}.aes_key"), message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn problems(text: &str) -> String {
        let config = Config::from_toml_str(text, "t.toml", None).expect("parses");
        let problems: Vec<String> = config.validate().iter().map(|p| p.to_string()).collect();
        problems.join("\n")
    }

    #[test]
    fn dnspod_keys_and_limits_are_checked() {
        let all = problems(
            "[httpdns]\nclient_prefix_v6 = 0\nmax_signature_lifetime = 0\n\
             [[httpdns.dnspod_keys]]\nid = \"1\"\nkey = \"short\"\n\
             [[httpdns.dnspod_keys]]\nid = \"1\"\naes_key = \"0123456789abcdef0\"\n\
             [[httpdns.dnspod_keys]]\nid = \"2\"\n\
             [[httpdns.accounts]]\nid = \"v2\"\naes_key = \"not-hex-and-not-32-digits\"\n",
        );
        for expected in [
            "httpdns.client_prefix_v6",
            "httpdns.max_signature_lifetime",
            "httpdns.dnspod_keys[0].key: at least 8 bytes",
            "httpdns.dnspod_keys[1].id: \"1\" is listed twice",
            "httpdns.dnspod_keys[1].aes_key: 16, 24 or 32 bytes",
            "httpdns.dnspod_keys[2]: needs key, aes_key or token",
            "httpdns.accounts[0].aes_key: must be 32, 48 or 64 hex digits",
        ] {
            assert!(all.contains(expected), "{expected:?} missing from:\n{all}");
        }
    }

    #[test]
    fn keys_are_what_the_sdk_makes_of_them() {
        let config = Config::from_toml_str(
            "[[httpdns.dnspod_keys]]\nid = \"1\"\nkey = \"dnspodkey-long\"\n",
            "t.toml",
            None,
        )
        .unwrap();
        let key = &config.httpdns.dnspod_keys[0];
        assert_eq!(key.des_key(), Some(&b"dnspodke"[..]));
        assert_eq!(key.aes_key().as_deref(), Some(&b"dnspodkey-long00"[..]));
        assert!(problems("").is_empty());
    }
}
