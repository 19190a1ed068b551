//! Builds a node from a `Config` in four steps: load (zones, policies and GeoIP data, the
//! cache core, the cluster, the metrics), bind (every listener), build (TLS, the proxy,
//! recursion, the DNS handler) and spawn (one task per listener and per background loop).
//! Owns shutdown (one CancellationToken, one JoinSet); reload is `crate::reload`'s.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::dns::DnsState;
use crate::dns::handler::DnsHandler;
use crate::dns::recursion::Recursion;
use crate::dns::server::{DnsListeners, TcpLimits};
use crate::http_server::Limits;
use crate::httpdns::HttpDns;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::reload::{LoadError, Reloader, load_state, summary};
use crate::tasks::Tasks;
use crate::tls::{TlsError, TlsSetup};

mod listeners;

pub use listeners::Listening;

use listeners::{Bound, HttpListeners};

/// How long shutdown waits for background tasks (fills, recursive answers, preload jobs)
/// once the listeners have stopped, before cancelling them.
const BACKGROUND_GRACE: Duration = Duration::from_secs(5);

/// A running node.
pub struct Node {
    /// Where its listeners are.
    pub listening: Listening,
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

/// What every part of the node shares, built from the configuration alone (step 1).
struct Shared {
    config: Arc<Config>,
    background: Tasks,
    cache: Cache,
    /// What the DNS handler serves from; a reload swaps it.
    state: Arc<ArcSwap<DnsState>>,
    cluster: Arc<Cluster>,
    metrics: Arc<Metrics>,
}

/// What the listeners serve, built once they are bound (step 3).
struct Services {
    tls: Option<TlsSetup>,
    /// The admin TLS listener's own rustls configuration (client certificates).
    admin_acceptor: Option<TlsAcceptor>,
    http_limits: Limits,
    proxy: Arc<Proxy>,
    /// For the DNS handler and `/admin/dns/flush`; None when recursion is off.
    recursion: Option<Arc<Recursion>>,
    reloader: Reloader,
}

impl Node {
    /// Loads the state and binds every listener; fails before serving anything if either fails.
    pub async fn start(config: Config) -> Result<Node, StartError> {
        let shared = Shared::load(config)?;
        let bound = Bound::bind(&shared.config).await?;
        let services = Services::build(&shared, &bound)?;
        Ok(Node::spawn(shared, bound, services))
    }

    /// Step 4: one task per listener and per background loop.
    fn spawn(shared: Shared, bound: Bound, services: Services) -> Node {
        let config = &shared.config;
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let addresses = bound.addresses();
        let (dns, http) = bound.split();
        let handler = serve_dns(&shared, &services, dns, &shutdown, &mut tasks);
        let acceptor = services
            .tls
            .as_ref()
            .map(|t| TlsAcceptor::from(Arc::clone(&t.config)));
        let listeners = HttpListeners {
            acceptor: &acceptor,
            limits: &services.http_limits,
            shutdown: &shutdown,
        };
        let own = crate::httpdns::Listeners {
            plain: addresses.httpdns.clone(),
            tls: addresses.httpdns_tls.clone(),
        };
        let service = HttpDns::new(
            &config.httpdns,
            services.http_limits.clone(),
            handler,
            shared.metrics.httpdns_requests.clone(),
            own,
        );
        tasks.spawn(Arc::clone(&service).sweep_limiters(shutdown.clone()));
        listeners.spawn_httpdns(&mut tasks, service, http.httpdns, http.httpdns_tls);
        listeners.spawn_proxy(&mut tasks, &services.proxy, http.http, http.https);
        spawn_admin(&shared, &services, http.admin, &shutdown, &mut tasks);
        spawn_background(&shared, &services, &shutdown, &mut tasks);
        let tls = services.tls;
        Node {
            listening: addresses,
            self_signed_cert: tls.as_ref().and_then(|t| t.self_signed_cert.clone()),
            scratch: tls.and_then(|t| t.scratch),
            reloader: services.reloader,
            shutdown,
            tasks,
            background: shared.background,
        }
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

impl Shared {
    /// Step 1: the DNS state (every zone, policy and GeoIP file checked), the cache core, the
    /// cluster and the metrics.
    fn load(config: Config) -> Result<Shared, StartError> {
        let background = Tasks::new(&config.tasks);
        let cache = Cache::with_tasks(config.cache.memory.0, background.clone());
        let state = load_state(&config, Some(&cache)).map_err(StartError::Load)?;
        let cluster = Cluster::new(&config.cluster);
        // Each of these modules keeps its own handles; the registry renders them all.
        let metrics = Metrics::new(|registry| {
            cache.register_metrics(registry);
            cache.tasks().register_metrics(registry);
            crate::dns::recursion::recursor_metrics::shared().register(registry);
            cluster.register_metrics(registry);
        });
        tracing::info!(summary = %summary(&state), "loaded");
        for line in state.geo.describe() {
            tracing::info!(database = %line, "geoip");
        }
        metrics.dns.zones.set(state.zones.len() as i64);
        Ok(Shared {
            config: Arc::new(config),
            background,
            cache,
            state: Arc::new(ArcSwap::from_pointee(state)),
            cluster,
            metrics,
        })
    }
}

impl Services {
    /// Step 3: TLS (when a TLS listener is bound), the proxy, recursion and the reloader.
    fn build(shared: &Shared, bound: &Bound) -> Result<Services, StartError> {
        let Shared {
            config,
            cache,
            metrics,
            ..
        } = shared;
        let tls = match bound.needs_tls() {
            false => None,
            true => {
                let setup = crate::tls::setup(&config.tls, &std::env::temp_dir())
                    .map_err(StartError::Tls)?;
                for line in setup.store.current().summary() {
                    tracing::info!(certificate = %line, "tls");
                }
                Some(setup)
            }
        };
        let http_limits = Limits::new(&config.http, metrics.http_limits.clone());
        let proxy = Proxy::new(
            &config.proxy,
            cache.clone(),
            http_limits.clone(),
            Arc::clone(&shared.cluster),
            metrics.proxy.clone(),
        )
        .map_err(StartError::Proxy)?;
        // A rustls configuration of its own (client certificates), over the certificate store
        // of the HTTPS listeners, so that a reload reaches it too.
        let admin_acceptor = match (&tls, bound.has_admin_tls()) {
            (Some(tls), true) => {
                let client_ca = config.admin.client_ca.as_deref();
                let server = crate::tls::admin_config(tls, config.tls.min_version, client_ca)
                    .map_err(StartError::Tls)?;
                Some(TlsAcceptor::from(server))
            }
            _ => None,
        };
        let reloader = Reloader::new(
            Arc::clone(config),
            Arc::clone(&shared.state),
            Arc::clone(metrics),
            cache.clone(),
            tls.as_ref().map(|t| Arc::clone(&t.store)),
        );
        let recursion = Recursion::new(&config.recursion, cache.clone(), metrics.dns.clone())
            .map_err(StartError::Recursion)?;
        if let Some(recursion) = &recursion {
            tracing::info!(allow = ?config.recursion.allow, "recursion on: {}", recursion.describe());
        }
        Ok(Services {
            tls,
            admin_acceptor,
            http_limits,
            proxy,
            recursion: recursion.map(Arc::new),
            reloader,
        })
    }
}

/// The DNS handler, serving the UDP and TCP listeners; returned for HTTPDNS and DoH.
fn serve_dns(
    shared: &Shared,
    services: &Services,
    listeners: DnsListeners,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> DnsHandler {
    let dns = &shared.config.dns;
    let handler = DnsHandler::new(
        Arc::clone(&shared.state),
        services.recursion.clone(),
        Arc::clone(&shared.cluster) as Arc<dyn crate::dns::steering::NodePool>,
        shared.metrics.dns.clone(),
        dns.edns_payload,
        dns.query_log,
    );
    let limits = TcpLimits {
        idle_timeout: Duration::from_secs(dns.tcp_idle_timeout),
        max_connections: dns.tcp_max_connections,
        max_per_prefix: dns.tcp_max_connections_per_prefix,
        ipv4_prefix: dns.tcp_ipv4_prefix,
        ipv6_prefix: dns.tcp_ipv6_prefix,
    };
    let udp = crate::dns::server::UdpSetup {
        syscalls: crate::dns::server::UdpSyscalls::from_config(dns.udp_batch),
        rrl: crate::dns::rrl::Rrl::new(&dns.rrl).map(Arc::new),
        background: shared.background.clone(),
    };
    listeners.serve(handler.clone(), udp, limits, shutdown, tasks);
    handler
}

/// The loops beside the listeners: reload on SIGHUP, OCSP stapling, cluster heartbeats.
fn spawn_background(
    shared: &Shared,
    services: &Services,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    let Shared {
        config, cluster, ..
    } = shared;
    tasks.spawn(services.reloader.clone().on_sighup(shutdown.clone()));
    if let Some(tls) = &services.tls
        && config.tls.ocsp_stapling
    {
        let stapler =
            crate::tls::Stapler::new(Arc::clone(&tls.store), config.tls.ocsp_responder.clone());
        tasks.spawn(stapler.run(shutdown.clone()));
    }
    if cluster.enabled() {
        tracing::info!(id = %cluster.me().id, peers = cluster.peers().len(), "cluster on");
    }
    tasks.spawn(Arc::clone(cluster).run(shutdown.clone()));
}

/// The admin API on `admin.listen` and `admin.tls_listen`, when either is bound.
fn spawn_admin(
    shared: &Shared,
    services: &Services,
    (plain, secure): (Option<TcpListener>, Option<TcpListener>),
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    if plain.is_none() && secure.is_none() {
        return;
    }
    let preload = crate::admin::preload::Preloader::new(
        Arc::clone(&services.proxy),
        Arc::clone(&shared.cluster),
        shared.config.proxy.preload_concurrency,
        shutdown.clone(),
    );
    let admin = crate::admin::Admin::new(
        Arc::clone(&shared.metrics),
        services.reloader.clone(),
        &shared.config.admin,
        services.recursion.clone(),
        Arc::clone(&services.proxy),
        Arc::clone(&shared.cluster),
        preload,
    );
    let plain = plain.map(|l| (l, None)).into_iter();
    let secure = secure.map(|l| (l, services.admin_acceptor.clone()));
    for (listener, acceptor) in plain.chain(secure) {
        let limits = services.http_limits.clone();
        let serve = admin
            .clone()
            .serve(listener, acceptor, limits, shutdown.clone());
        tasks.spawn(serve);
    }
}

/// Why a node could not start; nothing was served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Zones, policies or GeoIP files are broken: one problem per line.
    #[error("{0}")]
    Load(LoadError),
    /// The certificates or keys of `[tls]`, or `admin.client_ca`.
    #[error("{0}")]
    Tls(TlsError),
    /// The proxy's origins (`[proxy]`).
    #[error("{0}")]
    Proxy(crate::proxy::SetupError),
    /// The recursion's upstreams or root hints (`[recursion]`).
    #[error("{0}")]
    Recursion(crate::dns::recursion::RecursionSetupError),
    #[error("{0}")]
    Bind(std::io::Error),
}
