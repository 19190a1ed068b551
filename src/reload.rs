//! Reload: builds what a reload swaps in (zones, geo policies, GeoIP data, the HTTPS
//! certificates) from the configuration, and swaps it in all or nothing.
//!
//! Its own module so that the admin API (`POST /admin/reload`) and the node (`app`, which
//! builds the admin and reloads on SIGHUP) both depend on it and not on each other.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::config::Config;
use crate::dns::answer_cache::AnswerCache;
use crate::dns::{DnsState, ZoneError, ZoneSet};
use crate::geo::{Geo, GeoError};
use crate::metrics::{Metrics, ReloadLabels};
use crate::tls::{CertStore, TlsError};

/// Entries of an answer cache built without the cache core (`edgenode check`).
const STANDALONE_ANSWERS: usize = 1024;

/// One reason a load or a reload was refused; each names its file (and line) or config key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadProblem {
    /// A zone or geo policy file.
    #[error("{0}")]
    Zone(ZoneError),
    /// A GeoIP database or a `[[geoip.overrides]]` entry.
    #[error("{0}")]
    Geo(GeoError),
    /// A certificate or key file of `[tls]`.
    #[error("{0}")]
    Tls(TlsError),
    /// The blocking task that loads the files did not finish (it panicked).
    #[error("reload task failed: {0}")]
    Task(String),
}

/// Every problem a load or a reload found, one per line; the previous state keeps serving.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.lines().join("\n"))]
#[non_exhaustive]
pub struct LoadError {
    pub problems: Vec<LoadProblem>,
}

impl LoadError {
    /// Each problem's message, in the order found.
    pub fn lines(&self) -> Vec<String> {
        self.problems.iter().map(ToString::to_string).collect()
    }
}

/// Builds everything a reload swaps in, validating it fully; returns every problem found.
/// The answer cache keeps its entries in `core` (None: a standalone one, for `check`).
pub fn load_state(config: &Config, core: Option<&Cache>) -> Result<DnsState, LoadError> {
    let zones = ZoneSet::load_dir(&config.dns.zones);
    let geo = Geo::load(&config.geoip.files, &config.geoip.overrides);
    match (zones, geo) {
        (Ok(zones), Ok(geo)) => {
            for warning in zones.zones().flat_map(|zone| &zone.warnings) {
                tracing::warn!("{warning}");
            }
            let answers = match (config.dns.answer_cache, core) {
                (false, _) => AnswerCache::new(0),
                (true, Some(core)) => AnswerCache::with_core(core),
                (true, None) => AnswerCache::new(STANDALONE_ANSWERS),
            };
            Ok(DnsState::with_answers(zones, geo, answers))
        }
        (zones, geo) => {
            let zones = zones.err().into_iter().flatten().map(LoadProblem::Zone);
            let geo = geo.err().into_iter().flatten().map(LoadProblem::Geo);
            Err(LoadError {
                problems: zones.chain(geo).collect(),
            })
        }
    }
}

/// Rebuilds the DNS state from the configuration and swaps it in, or keeps the old one.
#[derive(Clone)]
pub struct Reloader {
    config: Arc<Config>,
    /// What the DNS handler serves from; a reload is one store into it.
    state: Arc<ArcSwap<DnsState>>,
    metrics: Arc<Metrics>,
    /// The cache core the new state's answer cache keeps its entries in.
    cache: Cache,
    /// The HTTPS certificates, reloaded from their files with the rest; None without HTTPS.
    certs: Option<Arc<CertStore>>,
    /// Serializes reloads so two at once cannot swap in an older state last.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Reloader {
    pub fn new(
        config: Arc<Config>,
        state: Arc<ArcSwap<DnsState>>,
        metrics: Arc<Metrics>,
        cache: Cache,
        certs: Option<Arc<CertStore>>,
    ) -> Reloader {
        Reloader {
            config,
            state,
            metrics,
            cache,
            certs,
            lock: Arc::default(),
        }
    }

    /// Loads on a blocking thread (file reads, MMDB verification), then swaps atomically.
    /// Returns a one-line summary, or every problem while the old state keeps serving.
    pub async fn reload(&self) -> Result<String, LoadError> {
        let _guard = self.lock.lock().await;
        let config = Arc::clone(&self.config);
        let certs = self.certs.clone();
        let cache = self.cache.clone();
        // Everything is built and checked before anything is swapped: all or nothing.
        let loaded = tokio::task::spawn_blocking(move || {
            let certs = certs.as_ref().map(|c| c.load()).transpose();
            match (load_state(&config, Some(&cache)), certs) {
                (Ok(state), Ok(certs)) => Ok((state, certs.flatten())),
                (state, certs) => {
                    let mut problems = state.err().map(|e| e.problems).unwrap_or_default();
                    problems.extend(certs.err().map(LoadProblem::Tls));
                    Err(LoadError { problems })
                }
            }
        })
        .await
        .unwrap_or_else(|e| {
            Err(LoadError {
                problems: vec![LoadProblem::Task(e.to_string())],
            })
        });
        match loaded {
            Ok((state, certs)) => {
                let summary = summary(&state);
                self.metrics.dns.zones.set(state.zones.len() as i64);
                self.state.store(Arc::new(state));
                if let (Some(store), Some(certs)) = (&self.certs, certs) {
                    store.swap(certs);
                }
                self.count("ok");
                tracing::info!(%summary, "reload ok");
                Ok(summary)
            }
            Err(error) => {
                self.count("failed");
                for problem in &error.problems {
                    tracing::error!(%problem, "reload failed; the previous zones and GeoIP data keep serving");
                }
                Err(error)
            }
        }
    }

    fn count(&self, result: &'static str) {
        self.metrics
            .reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
    }

    /// Reloads on every SIGHUP until `shutdown`.
    pub async fn on_sighup(self, shutdown: CancellationToken) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /admin/reload");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP: reloading");
                    // Outcome is logged and counted by reload() itself.
                    let _ = self.reload().await;
                }
            }
        }
    }
}

/// One line on what a state serves: "2 zones (a. b.), 14 records".
pub fn summary(state: &DnsState) -> String {
    let records: usize = state.zones.zones().map(|z| z.record_count()).sum();
    let mut origins: Vec<String> = state.zones.origins().map(ToString::to_string).collect();
    origins.sort();
    format!(
        "{} zones ({}), {records} records",
        state.zones.len(),
        origins.join(" ")
    )
}
