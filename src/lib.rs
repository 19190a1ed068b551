//! edgenode: one binary that runs a CDN point of presence.
//!
//! Module map (one line each; docs/architecture.md says the same):
//!
//! - [`cache`]: the one cache core (moka, one byte budget): recursive DNS answers, the answer
//!   cache's pre-built responses and HTTP objects, each a namespace.
//! - [`config`]: TOML configuration, embedded defaults, CLI overrides, `validate()` into typed
//!   errors; depends on none of the modules it configures.
//! - [`geo`]: client address -> [`geo::GeoScope`] from MaxMind DB files and a CIDR override table.
//! - [`dns`]: the zone file reader (`dns::zonefile`), zones in wire form, geo answer policies,
//!   steering to cluster nodes, the authoritative lookup, the handler and its answer cache of
//!   pre-built responses.
//! - [`httpdns`]: HTTPDNS as the DNSPod / Tencent Cloud and Alibaba Cloud SDKs speak it (scheduling,
//!   v1 and v2, DES/AES), JSON DoH and RFC 8484 DoH on `dns`.
//! - [`http_server`]: the HTTP/1.1 + HTTP/2 accept loop all HTTP listeners share, with their limits.
//! - [`prefix_limit`]: connections per client network, for the DNS TCP and HTTP listeners.
//! - [`tls`]: rustls for the HTTPS listeners and the admin TLS listener (certificates chosen
//!   by SNI, reloadable, ALPN; client certificates for admin) and the connector to https origins.
//! - [`proxy`]: the CDN cache: RFC 9111 caching reverse proxy on the cache core, origins, purge.
//! - [`admin`]: the admin HTTP listeners (plain, and TLS): `/metrics`, `/healthz`,
//!   `POST /admin/reload`, purge, preload jobs.
//! - [`cli`]: `edgenode preload` and `edgenode purge`, clients of a node's admin API (http or
//!   https).
//! - [`cluster`]: the peers (config or DNS discovery) and which are up (heartbeats), which node
//!   owns a cache key (rendezvous hashing), which are nearest a client; requests between nodes
//!   signed with the cluster's secret.
//! - [`tasks`]: background tasks (UDP recursion, fills, preload jobs, upstream connections),
//!   bounded per kind, reported, and stopped at shutdown.
//! - [`metrics`]: the Prometheus registry and the metric handles each module keeps.
//! - [`reload`]: builds what a reload swaps in (zones, policies, GeoIP data, certificates) and
//!   swaps it all or nothing, for SIGHUP and `POST /admin/reload`.
//! - `node_pool`: where `dns` meets `cluster`: the cluster as the `NodePool` DNS steering asks.
//! - [`app`]: builds the node from a config (load, bind, build, spawn), owns listeners and
//!   shutdown.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dns;
pub mod geo;
pub mod http_server;
pub mod httpdns;
pub mod metrics;
mod node_pool;
pub mod prefix_limit;
pub mod proxy;
pub mod reload;
pub mod tasks;
pub mod tls;
