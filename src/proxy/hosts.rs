//! What the proxy does differently for each host of `[[proxy.hosts]]`: which responses it never
//! stores, and the `Strict-Transport-Security` it sends. Resolved once from the configuration
//! (a host's own setting, else the `[proxy]` one), so a request looks up one table entry.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::header::HeaderValue;

use super::setup::SetupError;
use crate::config::ProxyConfig;

/// One host's rules.
#[derive(Debug)]
pub(super) struct HostRules {
    /// Statuses never stored (CPDoS: statuses only a client's own request causes).
    pub never_store: Box<[u16]>,
    /// Responses that set a cookie are never stored, whatever their Cache-Control.
    pub never_store_set_cookie: bool,
    /// `Strict-Transport-Security` for HTTPS responses.
    pub hsts: Option<HeaderValue>,
}

/// Every host's rules.
#[derive(Debug)]
pub(super) struct HostTable {
    default: Arc<HostRules>,
    /// Lowercased host -> its rules; only hosts that differ from the default are listed.
    by_host: HashMap<String, Arc<HostRules>>,
}

impl HostTable {
    /// Errors name the field (`proxy.hosts[1].hsts`).
    pub fn new(config: &ProxyConfig) -> Result<HostTable, SetupError> {
        let default = HostRules {
            never_store: config.never_store_statuses.clone().into_boxed_slice(),
            never_store_set_cookie: config.never_store_set_cookie,
            hsts: hsts_value("proxy.hsts", config.hsts.as_deref())?,
        };
        let mut by_host = HashMap::new();
        for (i, entry) in config.hosts.iter().enumerate() {
            if entry.never_store_statuses.is_none()
                && entry.never_store_set_cookie.is_none()
                && entry.hsts.is_none()
            {
                continue;
            }
            let hsts = match &entry.hsts {
                Some(value) => hsts_value(&format!("proxy.hosts[{i}].hsts"), Some(value))?,
                None => default.hsts.clone(),
            };
            let rules = HostRules {
                never_store: entry
                    .never_store_statuses
                    .clone()
                    .map_or_else(|| default.never_store.clone(), Vec::into_boxed_slice),
                never_store_set_cookie: entry
                    .never_store_set_cookie
                    .unwrap_or(default.never_store_set_cookie),
                hsts,
            };
            by_host.insert(entry.host.to_ascii_lowercase(), Arc::new(rules));
        }
        Ok(HostTable {
            default: Arc::new(default),
            by_host,
        })
    }

    /// The rules for `host` (lowercased, as the cache key has it).
    pub fn get(&self, host: &str) -> &HostRules {
        if self.by_host.is_empty() {
            return &self.default;
        }
        self.by_host.get(host).unwrap_or(&self.default)
    }
}

/// An HSTS value as a field value: None for none or "", an error naming `key` for a value
/// `config::hsts_problem` finds fault with.
fn hsts_value(key: &str, value: Option<&str>) -> Result<Option<HeaderValue>, SetupError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Some(problem) = crate::config::hsts_problem(value) {
        return Err(SetupError::Hsts {
            key: key.to_string(),
            value: value.to_string(),
            problem: problem.to_string(),
        });
    }
    HeaderValue::from_str(value)
        .map(Some)
        .map_err(|_| SetupError::HstsField {
            key: key.to_string(),
            value: value.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProxyHost;

    fn host(name: &str) -> ProxyHost {
        ProxyHost {
            host: name.into(),
            origins: vec!["http://127.0.0.1:1".into()],
            breaker_statuses: None,
            never_store_statuses: None,
            never_store_set_cookie: None,
            hsts: None,
        }
    }

    #[test]
    fn a_host_takes_its_own_settings_and_the_rest_from_proxy() {
        let mut config = ProxyConfig {
            hsts: Some("max-age=600".into()),
            ..ProxyConfig::default()
        };
        let mut shop = host("Shop.test");
        shop.never_store_set_cookie = Some(true);
        shop.hsts = Some(String::new());
        let mut api = host("api.test");
        api.never_store_statuses = Some(vec![]);
        config.hosts = vec![shop, api, host("plain.test")];
        let table = HostTable::new(&config).expect("valid");
        let shop = table.get("shop.test");
        assert!(shop.never_store_set_cookie);
        assert_eq!(shop.hsts, None);
        assert_eq!(&*shop.never_store, [400, 413, 414, 431]);
        let api = table.get("api.test");
        assert!(api.never_store.is_empty());
        assert_eq!(
            api.hsts.as_ref().map(|v| v.as_bytes()),
            Some(&b"max-age=600"[..])
        );
        let other = table.get("other.test");
        assert!(!other.never_store_set_cookie);
        assert_eq!(table.by_host.len(), 2);
    }

    #[test]
    fn an_hsts_value_needs_a_max_age() {
        for good in [
            "max-age=31536000",
            "includeSubDomains; max-age=\"60\"; preload",
        ] {
            assert!(hsts_value("k", Some(good)).expect(good).is_some());
        }
        assert!(hsts_value("k", Some(" ")).expect("empty").is_none());
        for bad in ["includeSubDomains", "max-age=soon", "max-age=60; x=\u{1}"] {
            let error = hsts_value("proxy.hsts", Some(bad))
                .expect_err(bad)
                .to_string();
            assert!(error.starts_with("proxy.hsts: "), "{error}");
        }
    }
}
