//! Step 2 of starting a node: every listener bound before anything is served (a port in use
//! fails the start, not a request later), and how the HTTP ones are served.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::StartError;
use crate::config::Config;
use crate::dns::server::DnsListeners;
use crate::http_server::Limits;
use crate::httpdns::{HttpDns, Scheme};
use crate::proxy::Proxy;

/// Every listener of the node, bound.
pub(super) struct Bound {
    dns: DnsListeners,
    http: HttpBound,
}

/// The TCP listeners of the HTTP services.
pub(super) struct HttpBound {
    /// `admin.listen` and `admin.tls_listen`.
    pub admin: (Option<TcpListener>, Option<TcpListener>),
    pub httpdns: Vec<TcpListener>,
    pub httpdns_tls: Vec<TcpListener>,
    /// The caching proxy's.
    pub http: Vec<TcpListener>,
    pub https: Vec<TcpListener>,
}

/// The addresses a node's listeners were bound to (port 0 resolved).
pub struct Listening {
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
}

impl Listening {
    /// Every address with the name of its kind (`dns-udp`, `httpdns-tls`, `admin`, ...), in
    /// the order `serve` announces them.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, SocketAddr)> + '_ {
        fn many<'a>(
            kind: &'static str,
            addrs: &'a [SocketAddr],
        ) -> impl Iterator<Item = (&'static str, SocketAddr)> + 'a {
            addrs.iter().map(move |a| (kind, *a))
        }
        many("dns-udp", &self.dns_udp)
            .chain(many("dns-tcp", &self.dns_tcp))
            .chain(many("httpdns", &self.httpdns))
            .chain(many("httpdns-tls", &self.httpdns_tls))
            .chain(many("http", &self.http))
            .chain(many("https", &self.https))
            .chain(self.admin.map(|a| ("admin", a)))
            .chain(self.admin_tls.map(|a| ("admin-tls", a)))
    }
}

impl Bound {
    pub(super) async fn bind(config: &Config) -> Result<Bound, StartError> {
        let dns = DnsListeners::bind(&config.dns.listen)
            .await
            .map_err(StartError::Bind)?;
        let admin = bind_one(config.admin.listen, "admin").await?;
        let admin_tls = bind_one(config.admin.tls_listen, "admin-tls").await?;
        let http = HttpBound {
            admin: (admin, admin_tls),
            httpdns: bind_all(&config.httpdns.listen, "httpdns").await?,
            httpdns_tls: bind_all(&config.httpdns.tls_listen, "httpdns-tls").await?,
            http: bind_all(&config.proxy.listen, "http").await?,
            https: bind_all(&config.proxy.tls_listen, "https").await?,
        };
        Ok(Bound { dns, http })
    }

    /// Whether any listener speaks TLS (then the certificates are loaded, or one generated).
    pub(super) fn needs_tls(&self) -> bool {
        let http = &self.http;
        !http.httpdns_tls.is_empty() || !http.https.is_empty() || self.has_admin_tls()
    }

    pub(super) fn has_admin_tls(&self) -> bool {
        self.http.admin.1.is_some()
    }

    pub(super) fn addresses(&self) -> Listening {
        let local = |ls: &[TcpListener]| {
            ls.iter()
                .filter_map(|l| l.local_addr().ok())
                .collect::<Vec<_>>()
        };
        let one = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        let http = &self.http;
        Listening {
            dns_udp: self.dns.udp_addrs(),
            dns_tcp: self.dns.tcp_addrs(),
            httpdns: local(&http.httpdns),
            httpdns_tls: local(&http.httpdns_tls),
            http: local(&http.http),
            https: local(&http.https),
            admin: one(&http.admin.0),
            admin_tls: one(&http.admin.1),
        }
    }

    pub(super) fn split(self) -> (DnsListeners, HttpBound) {
        (self.dns, self.http)
    }
}

/// What every HTTP listener of the node is served with.
pub(super) struct HttpListeners<'a> {
    pub acceptor: &'a Option<TlsAcceptor>,
    pub limits: &'a Limits,
    pub shutdown: &'a CancellationToken,
}

impl HttpListeners<'_> {
    /// HTTPDNS and DoH, over plain HTTP and over TLS.
    pub(super) fn spawn_httpdns(
        &self,
        tasks: &mut JoinSet<()>,
        service: Arc<HttpDns>,
        plain: Vec<TcpListener>,
        secure: Vec<TcpListener>,
    ) {
        let plain_handle = {
            let service = Arc::clone(&service);
            move |req, peer| Arc::clone(&service).handle(req, peer, Scheme::Http)
        };
        let tls_handle = move |req, peer| Arc::clone(&service).handle(req, peer, Scheme::Https);
        self.spawn(tasks, plain, Vec::new(), plain_handle);
        self.spawn(tasks, Vec::new(), secure, tls_handle);
    }

    /// The same proxy behind both; each listener says how its clients connected.
    pub(super) fn spawn_proxy(
        &self,
        tasks: &mut JoinSet<()>,
        proxy: &Arc<Proxy>,
        plain: Vec<TcpListener>,
        secure: Vec<TcpListener>,
    ) {
        for (plain, secure, scheme) in [
            (plain, Vec::new(), crate::proxy::Scheme::Http),
            (Vec::new(), secure, crate::proxy::Scheme::Https),
        ] {
            let proxy = Arc::clone(proxy);
            let handle = move |req, peer| Arc::clone(&proxy).handle(req, peer, scheme);
            self.spawn(tasks, plain, secure, handle);
        }
    }

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
