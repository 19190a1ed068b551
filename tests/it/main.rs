//! All integration tests in one binary: each module starts real nodes on 127.0.0.1:0 and talks to
//! them with real clients (hickory, dig, HTTP).

mod admin;
mod admin_tls;
mod answer_flood;
mod cluster;
mod cluster_auth;
mod deploy;
mod dns;
mod dns_tcp;
mod drain;
mod fuzz_corpus;
mod geoip;
mod httpdns;
mod mapped;
mod nsd_diff;
mod ocsp;
mod origin;
mod preload;
mod proxy;
mod proxy_fields;
mod proxy_fills;
mod proxy_limits;
mod proxy_slices;
mod proxy_stream;
mod proxy_tls;
mod recursion;
mod reload;
mod rrl;
mod steering;
mod support;
mod tasks;
mod tls;
mod udp_batch;
mod zone_diff;
