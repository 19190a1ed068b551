//! Configuration: serde TOML structs with defaults, CLI overrides, and `validate()`.
//!
//! Parse, then validate, in one place: unknown keys are errors, and every problem is reported
//! with the file and the key path (`dns.edns_payload`) or the line the TOML parser names. Each
//! section checks itself (`validate` into `Problems`); `Config::validate` calls them in order and
//! checks what spans two sections. This module depends on none of the modules it configures
//! (what a check needs from them, such as the server name rule of `[tls]`, lives here).

use std::path::{Path, PathBuf};

use serde::Deserialize;

mod admin;
mod checks;
mod cluster;
mod httpdns;
mod overrides;
mod proxy;
mod sections;
mod tls;

pub use admin::*;
pub use cluster::*;
pub use httpdns::*;
pub use overrides::Overrides;
pub use proxy::*;
pub use sections::*;
pub use tls::*;

/// The embedded configuration used when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// One problem with the configuration, naming where it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax or type error; the message carries line and column. `config` names the
    /// configuration (`Config::source`), here and below.
    #[error("{config}: {message}")]
    Parse { config: String, message: String },
    /// A value that parsed but makes no sense, named by its key path.
    #[error("{config}: {key}: {message}")]
    Invalid {
        config: String,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub dns: DnsConfig,
    pub recursion: RecursionConfig,
    pub httpdns: HttpDnsConfig,
    pub http: HttpConfig,
    pub proxy: ProxyConfig,
    pub tls: TlsConfig,
    pub cache: CacheConfig,
    pub geoip: GeoipConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub cluster: ClusterConfig,
    pub tasks: TasksConfig,
    /// Where this configuration came from ("embedded default" or a file path), for messages.
    #[serde(skip)]
    pub source: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dns: DnsConfig::default(),
            recursion: RecursionConfig::default(),
            httpdns: HttpDnsConfig::default(),
            http: HttpConfig::default(),
            proxy: ProxyConfig::default(),
            tls: TlsConfig::default(),
            cache: CacheConfig::default(),
            geoip: GeoipConfig::default(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
            cluster: ClusterConfig::default(),
            tasks: TasksConfig::default(),
            source: "defaults".into(),
        }
    }
}

impl Config {
    /// The embedded default configuration (src/config/default.toml).
    pub fn embedded() -> Result<Config, ConfigError> {
        Self::from_toml_str(DEFAULT_CONFIG, "embedded default config", None)
    }

    /// Reads a file; relative paths inside it are taken from the file's directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), path.parent())
    }

    /// `--config FILE` when given, else the embedded default; then the CLI overrides.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::embedded()?,
        };
        config.apply(overrides);
        Ok(config)
    }

    pub fn from_toml_str(
        text: &str,
        source: &str,
        base_dir: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            config: source.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.source = source.to_string();
        if let Some(base) = base_dir.filter(|b| !b.as_os_str().is_empty()) {
            config.dns.zones = base.join(&config.dns.zones);
            for file in &mut config.geoip.files {
                *file = base.join(&*file);
            }
            if let Some(hints) = &mut config.recursion.root_hints {
                *hints = base.join(&*hints);
            }
            let tls = &mut config.tls;
            let optional = [
                &mut tls.cert,
                &mut tls.key,
                &mut config.proxy.origin_ca,
                &mut config.cluster.secret_file,
                &mut config.admin.client_ca,
            ];
            let pairs = tls
                .certificates
                .iter_mut()
                .flat_map(|c| [&mut c.cert, &mut c.key]);
            for path in optional.into_iter().flatten().chain(pairs) {
                *path = base.join(&*path);
            }
        }
        Ok(config)
    }

    /// Checks what serde cannot; returns every problem, not just the first. Each section checks
    /// itself; what spans two sections is checked here.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut problems = Problems::default();
        if self.dns.listen.is_empty() {
            problems.add("dns.listen", "at least one address is needed");
        }
        self.cluster.validate(&mut problems);
        if self.cluster.enabled() && self.admin.listen.is_none() {
            problems.add(
                "admin.listen",
                "is off, but the cluster is on: peers send heartbeats and purges to it",
            );
        }
        self.tasks.validate(&mut problems);
        self.dns.validate(&mut problems);
        self.admin.validate(&mut problems);
        self.recursion.validate(&mut problems);
        self.httpdns.validate(&mut problems);
        self.http.validate(&mut problems);
        self.proxy.validate(&mut problems);
        self.tls.validate(&mut problems);
        self.cache.validate(&mut problems);
        self.log.validate(&mut problems);
        problems.into_errors(&self.source)
    }
}

/// What a section's `validate` found, as (key path, message), in the order found.
#[derive(Debug, Default)]
pub struct Problems(Vec<(String, String)>);

impl Problems {
    pub fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push((key.into(), message.into()));
    }

    /// `message` under `key` unless `ok`.
    pub fn check(&mut self, key: impl Into<String>, ok: bool, message: &str) {
        if !ok {
            self.add(key, message);
        }
    }

    /// "must be at least 1" for each key whose value is 0.
    pub fn at_least_one<'a>(&mut self, values: impl IntoIterator<Item = (&'a str, u64)>) {
        for (key, value) in values {
            self.check(key, value != 0, "must be at least 1");
        }
    }

    /// The problems as errors of the configuration from `source`.
    fn into_errors(self, source: &str) -> Vec<ConfigError> {
        let invalid = |(key, message)| ConfigError::Invalid {
            config: source.to_string(),
            key,
            message,
        };
        self.0.into_iter().map(invalid).collect()
    }
}

#[cfg(test)]
mod tests;
