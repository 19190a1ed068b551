//! Builds a node from a `Config`: loads zones, policies and GeoIP data, binds the listeners,
//! and owns reload (SIGHUP, `POST /admin/reload`) and shutdown (one CancellationToken, one
//! JoinSet).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::tasks::Tasks;

/// How long shutdown waits for background tasks (fills, recursive answers, preload jobs)
/// once the listeners have stopped, before cancelling them.
const BACKGROUND_GRACE: Duration = Duration::from_secs(5);
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::dns::answer_cache::AnswerCache;
use crate::dns::handler::DnsHandler;
use crate::dns::recursion::Recursion;
use crate::dns::server::{DnsListeners, TcpLimits};
use crate::dns::{DnsState, ZoneSet};
use crate::geo::Geo;
use crate::http_server::Limits;
use crate::httpdns::{HttpDns, Scheme};
use crate::metrics::{Metrics, ReloadLabels};
use crate::proxy::Proxy;
use crate::tls::CertStore;

/// Entries of an answer cache built without the cache core (`edgenode check`).
const STANDALONE_ANSWERS: usize = 1024;

/// Builds everything a reload swaps in, validating it fully; returns every problem found.
/// The answer cache keeps its entries in `core` (None: a standalone one, for `check`).
pub fn load_state(config: &Config, core: Option<&Cache>) -> Result<DnsState, Vec<String>> {
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
            let mut problems: Vec<String> = Vec::new();
            if let Err(errors) = zones {
                problems.extend(errors.iter().map(ToString::to_string));
            }
            if let Err(errors) = geo {
                problems.extend(errors.iter().map(ToString::to_string));
            }
            Err(problems)
        }
    }
}

/// Rebuilds the DNS state from the configuration and swaps it in, or keeps the old one.
#[derive(Clone)]
pub struct Reloader {
    config: Arc<Config>,
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
    /// Loads on a blocking thread (file reads, MMDB verification), then swaps atomically.
    /// Returns a one-line summary, or every problem while the old state keeps serving.
    pub async fn reload(&self) -> Result<String, Vec<String>> {
        let _guard = self.lock.lock().await;
        let config = Arc::clone(&self.config);
        let certs = self.certs.clone();
        let cache = self.cache.clone();
        // Everything is built and checked before anything is swapped: all or nothing.
        let loaded = tokio::task::spawn_blocking(move || {
            let certs = certs
                .as_ref()
                .map(|c| c.load())
                .transpose()
                .map_err(|e| e.to_string());
            match (load_state(&config, Some(&cache)), certs) {
                (Ok(state), Ok(certs)) => Ok((state, certs.flatten())),
                (state, certs) => {
                    let mut problems = state.err().unwrap_or_default();
                    problems.extend(certs.err());
                    Err(problems)
                }
            }
        })
        .await
        .unwrap_or_else(|e| Err(vec![format!("reload task failed: {e}")]));
        match loaded {
            Ok((state, certs)) => {
                let summary = summary(&state);
                self.metrics.dns.zones.set(state.zones.len() as i64);
                self.state.store(Arc::new(state));
                if let (Some(store), Some(certs)) = (&self.certs, certs) {
                    store.swap(certs);
                }
                self.metrics
                    .reloads
                    .get_or_create(&ReloadLabels { result: "ok" })
                    .inc();
                tracing::info!(%summary, "reload ok");
                Ok(summary)
            }
            Err(problems) => {
                self.metrics
                    .reloads
                    .get_or_create(&ReloadLabels { result: "failed" })
                    .inc();
                for problem in &problems {
                    tracing::error!(%problem, "reload failed; the previous zones and GeoIP data keep serving");
                }
                Err(problems)
            }
        }
    }
}

fn summary(state: &DnsState) -> String {
    let records: usize = state.zones.zones().map(|z| z.record_count()).sum();
    let mut origins: Vec<String> = state.zones.origins().map(ToString::to_string).collect();
    origins.sort();
    format!(
        "{} zones ({}), {records} records",
        state.zones.len(),
        origins.join(" ")
    )
}

/// A running node.
pub struct Node {
    pub dns_udp: Vec<SocketAddr>,
    pub dns_tcp: Vec<SocketAddr>,
    pub httpdns: Vec<SocketAddr>,
    pub httpdns_tls: Vec<SocketAddr>,
    /// The caching proxy's listeners.
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// The admin API over TLS (`admin.tls_listen`).
    pub admin_tls: Option<SocketAddr>,
    /// The generated certificate's PEM file, when TLS listeners use a self-signed one.
    pub self_signed_cert: Option<std::path::PathBuf>,
    /// The private directory it is in, removed at shutdown.
    scratch: Option<tempfile::TempDir>,
    pub reloader: Reloader,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    /// Fills, recursive answers, preload jobs, upstream connections (`crate::tasks`).
    background: Tasks,
}

impl Node {
    /// Loads the state and binds every listener; fails before serving anything if either fails.
    pub async fn start(config: Config) -> Result<Node, StartError> {
        let background = Tasks::new(&config.tasks);
        let cache = Cache::with_tasks(config.cache.memory.0, background.clone());
        let state = load_state(&config, Some(&cache)).map_err(StartError::Load)?;
        let cluster = Cluster::new(&config.cluster);
        let metrics = Metrics::new(&cache, &cluster);
        tracing::info!(summary = %summary(&state), "loaded");
        for line in state.geo.describe() {
            tracing::info!(database = %line, "geoip");
        }
        metrics.dns.zones.set(state.zones.len() as i64);
        let state = Arc::new(ArcSwap::from_pointee(state));
        let config = Arc::new(config);

        let listeners = DnsListeners::bind(&config.dns.listen)
            .await
            .map_err(StartError::Bind)?;
        let admin_listener = bind_one(config.admin.listen, "admin").await?;
        let admin_tls_listener = bind_one(config.admin.tls_listen, "admin-tls").await?;
        let httpdns_listeners = bind_all(&config.httpdns.listen, "httpdns").await?;
        let httpdns_tls_listeners = bind_all(&config.httpdns.tls_listen, "httpdns-tls").await?;
        let proxy_listeners = bind_all(&config.proxy.listen, "http").await?;
        let proxy_tls_listeners = bind_all(&config.proxy.tls_listen, "https").await?;
        let no_tls = httpdns_tls_listeners.is_empty()
            && proxy_tls_listeners.is_empty()
            && admin_tls_listener.is_none();
        let tls = match no_tls {
            true => None,
            false => {
                let setup = crate::tls::setup(&config.tls, &std::env::temp_dir())
                    .map_err(|e| StartError::Load(vec![e.to_string()]))?;
                for line in setup.store.current().summary() {
                    tracing::info!(certificate = %line, "tls");
                }
                Some(setup)
            }
        };
        let (dns_udp, dns_tcp) = (listeners.udp_addrs(), listeners.tcp_addrs());
        let local = |ls: &[TcpListener]| {
            ls.iter()
                .filter_map(|l| l.local_addr().ok())
                .collect::<Vec<_>>()
        };
        let (httpdns, httpdns_tls) = (local(&httpdns_listeners), local(&httpdns_tls_listeners));
        let (http, https) = (local(&proxy_listeners), local(&proxy_tls_listeners));
        let http_limits = Limits::new(&config.http, metrics.http_limits.clone());
        let proxy = Proxy::new(
            &config.proxy,
            cache.clone(),
            http_limits.clone(),
            Arc::clone(&cluster),
            metrics.proxy.clone(),
        )
        .map_err(|e| StartError::Load(vec![e]))?;
        let admin = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
        let admin_tls = admin_tls_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok());
        // A rustls configuration of its own (client certificates), over the certificate store
        // of the HTTPS listeners, so that a reload reaches it too.
        let admin_acceptor = match (&tls, &admin_tls_listener) {
            (Some(tls), Some(_)) => {
                let client_ca = config.admin.client_ca.as_deref();
                let server = crate::tls::admin_config(tls, config.tls.min_version, client_ca)
                    .map_err(|e| StartError::Load(vec![e.to_string()]))?;
                Some(tokio_rustls::TlsAcceptor::from(server))
            }
            _ => None,
        };

        let reloader = Reloader {
            config: Arc::clone(&config),
            state: Arc::clone(&state),
            metrics: Arc::clone(&metrics),
            cache: cache.clone(),
            certs: tls.as_ref().map(|t| Arc::clone(&t.store)),
            lock: Arc::default(),
        };
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let recursion = Recursion::new(&config.recursion, cache.clone(), metrics.dns.clone())
            .map_err(|e| StartError::Load(vec![e.to_string()]))?;
        if let Some(recursion) = &recursion {
            tracing::info!(allow = ?config.recursion.allow, "recursion on: {}", recursion.describe());
        }
        let recursion = recursion.map(Arc::new);
        let handler = DnsHandler::new(
            state,
            recursion.clone(),
            Arc::clone(&cluster) as Arc<dyn crate::dns::steering::NodePool>,
            metrics.dns.clone(),
            config.dns.edns_payload,
            config.dns.query_log,
        );
        let limits = TcpLimits {
            idle_timeout: Duration::from_secs(config.dns.tcp_idle_timeout),
            max_connections: config.dns.tcp_max_connections,
            max_per_prefix: config.dns.tcp_max_connections_per_prefix,
            ipv4_prefix: config.dns.tcp_ipv4_prefix,
            ipv6_prefix: config.dns.tcp_ipv6_prefix,
        };
        let udp = crate::dns::server::UdpSetup {
            syscalls: crate::dns::server::UdpSyscalls::from_config(config.dns.udp_batch),
            rrl: crate::dns::rrl::Rrl::new(&config.dns.rrl).map(Arc::new),
            background: background.clone(),
        };
        listeners.serve(handler.clone(), udp, limits, &shutdown, &mut tasks);

        let own_listeners = crate::httpdns::Listeners {
            plain: httpdns.clone(),
            tls: httpdns_tls.clone(),
        };
        let service = HttpDns::new(
            &config.httpdns,
            http_limits.clone(),
            handler,
            metrics.httpdns_requests.clone(),
            own_listeners,
        );
        tasks.spawn(Arc::clone(&service).sweep_limiters(shutdown.clone()));
        let acceptor = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(Arc::clone(&t.config)));
        let plain_handle = {
            let service = Arc::clone(&service);
            move |req, peer| Arc::clone(&service).handle(req, peer, Scheme::Http)
        };
        let tls_handle = move |req, peer| Arc::clone(&service).handle(req, peer, Scheme::Https);
        let listeners = HttpListeners {
            acceptor: &acceptor,
            limits: &http_limits,
            shutdown: &shutdown,
        };
        listeners.spawn(&mut tasks, httpdns_listeners, Vec::new(), plain_handle);
        listeners.spawn(&mut tasks, Vec::new(), httpdns_tls_listeners, tls_handle);
        // The same proxy behind both; each listener says how its clients connected.
        for (plain, secure, scheme) in [
            (proxy_listeners, Vec::new(), crate::proxy::Scheme::Http),
            (Vec::new(), proxy_tls_listeners, crate::proxy::Scheme::Https),
        ] {
            let proxy = Arc::clone(&proxy);
            let handle = move |req, peer| Arc::clone(&proxy).handle(req, peer, scheme);
            listeners.spawn(&mut tasks, plain, secure, handle);
        }

        if admin_listener.is_some() || admin_tls_listener.is_some() {
            let preload = crate::admin::preload::Preloader::new(
                Arc::clone(&proxy),
                Arc::clone(&cluster),
                config.proxy.preload_concurrency,
                shutdown.clone(),
            );
            let admin = crate::admin::Admin::new(
                Arc::clone(&metrics),
                reloader.clone(),
                &config.admin,
                recursion,
                Arc::clone(&proxy),
                Arc::clone(&cluster),
                preload,
            );
            let plain = admin_listener.map(|l| (l, None)).into_iter();
            let secure = admin_tls_listener.map(|l| (l, admin_acceptor));
            for (listener, acceptor) in plain.chain(secure) {
                let limits = http_limits.clone();
                let serve = admin
                    .clone()
                    .serve(listener, acceptor, limits, shutdown.clone());
                tasks.spawn(serve);
            }
        }
        tasks.spawn(reload_on_sighup(reloader.clone(), shutdown.clone()));
        if let Some(tls) = &tls
            && config.tls.ocsp_stapling
        {
            let stapler =
                crate::tls::Stapler::new(Arc::clone(&tls.store), config.tls.ocsp_responder.clone());
            tasks.spawn(stapler.run(shutdown.clone()));
        }
        if cluster.enabled() {
            tracing::info!(id = %cluster.me().id, peers = cluster.peers().len(), "cluster on");
        }
        tasks.spawn(Arc::clone(&cluster).run(shutdown.clone()));

        Ok(Node {
            dns_udp,
            dns_tcp,
            httpdns,
            httpdns_tls,
            http,
            https,
            admin,
            admin_tls,
            self_signed_cert: tls.as_ref().and_then(|t| t.self_signed_cert.clone()),
            scratch: tls.and_then(|t| t.scratch),
            reloader,
            shutdown,
            tasks,
            background,
        })
    }

    /// Stops accepting, lets in-flight work finish, and waits for every task: the listeners
    /// and their connections, then the background tasks for up to `BACKGROUND_GRACE`
    /// (cancelling what is left).
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.background.shutdown(BACKGROUND_GRACE).await;
        // The generated certificate lives in a directory of its own, made for this process.
        drop(self.scratch.take());
    }
}

/// What every HTTP listener of the node is served with.
struct HttpListeners<'a> {
    acceptor: &'a Option<tokio_rustls::TlsAcceptor>,
    limits: &'a Limits,
    shutdown: &'a CancellationToken,
}

impl HttpListeners<'_> {
    /// Serves `plain` listeners as they are and `secure` ones over TLS, each request by
    /// `handle`.
    fn spawn<H, F>(
        &self,
        tasks: &mut JoinSet<()>,
        plain: Vec<TcpListener>,
        secure: Vec<TcpListener>,
        handle: H,
    ) where
        H: Fn(hyper::Request<hyper::body::Incoming>, SocketAddr) -> F
            + Clone
            + Send
            + Sync
            + 'static,
        F: std::future::Future<Output = hyper::Response<crate::http_server::Body>> + Send + 'static,
    {
        let plain = plain.into_iter().map(|l| (l, None));
        let secure = secure.into_iter().map(|l| (l, self.acceptor.clone()));
        for (listener, acceptor) in plain.chain(secure) {
            tasks.spawn(crate::http_server::serve(
                listener,
                acceptor,
                handle.clone(),
                self.limits.clone(),
                self.shutdown.clone(),
            ));
        }
    }
}

async fn bind_all(addrs: &[SocketAddr], what: &str) -> Result<Vec<TcpListener>, StartError> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            StartError::Bind(std::io::Error::new(
                e.kind(),
                format!("cannot bind {what} {addr}: {e}"),
            ))
        })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

async fn bind_one(addr: Option<SocketAddr>, what: &str) -> Result<Option<TcpListener>, StartError> {
    let addrs: Vec<SocketAddr> = addr.into_iter().collect();
    Ok(bind_all(&addrs, what).await?.pop())
}

async fn reload_on_sighup(reloader: Reloader, shutdown: CancellationToken) {
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
                let _ = reloader.reload().await;
            }
        }
    }
}

/// Why a node could not start; nothing was served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Zones, policies or GeoIP files are broken: one problem per line.
    #[error("{}", .0.join("\n"))]
    Load(Vec<String>),
    #[error("{0}")]
    Bind(std::io::Error),
}
