//! Alibaba Cloud scheduling: `GET /{account}/ss[?region=&platform=&sdk_version=&sid=]`, signed
//! with `s`, `t` and a nonce `n` when the SDK has a secret. The answer,
//! `{"service_ip": [...], "service_ipv6": [...]}`, lists the HTTPDNS servers the SDK then
//! resolves with: the healthy cluster nodes nearest the client, chosen as DNS steering chooses
//! pool members, or this node's own listeners when no node qualifies (no cluster).
//!
//! The C, Go, Node.js and iOS SDKs build their URLs as `scheme://{entry}/...`, so an entry may
//! carry a port: it carries this node's listener port of the scheme the request came over
//! (cluster nodes are assumed to listen on the same ports, as a DaemonSet does), and none when
//! that port is the scheme's default (80, 443). The Android SDK (`platform=android`) adds
//! `:port` itself, from `service_ip_port` / `service_ipv6_port` (its `RegionServer`): it gets
//! bare addresses and those lists.

use std::net::{IpAddr, SocketAddr};

use hyper::{Response, StatusCode};
use serde::Serialize;

use super::accounts::Signed;
use super::render;
use super::{ApiError, ApiRequest, HttpDns, Scheme};
use crate::dns::steering::Family;
use crate::http_server::Body;

/// Servers per family in one answer: enough to fail over, few enough to stay near.
const SERVERS: usize = 3;

#[derive(Serialize)]
struct ServerList {
    service_ip: Vec<String>,
    service_ipv6: Vec<String>,
    /// For the Android SDK: each server's port, in the order of the addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    service_ip_port: Option<Vec<u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_ipv6_port: Option<Vec<u16>>,
}

impl HttpDns {
    pub(super) fn schedule(&self, req: &ApiRequest<'_>) -> Result<Response<Body>, ApiError> {
        let id = req.account.unwrap_or_default();
        let signed = req.params.get("s").is_some();
        let account = self.account(id, req.scheme, signed)?;
        if signed {
            self.verify(account, Signed::Nonce, req.params)?;
        }
        self.spend(account)?;
        let own = match req.scheme {
            Scheme::Http => &self.listeners.plain,
            Scheme::Https => &self.listeners.tls,
        };
        let port = own.first().map_or(0, SocketAddr::port);
        let mut v4 = self.dns.nearest_nodes(req.client, Family::V4, SERVERS);
        let mut v6 = self.dns.nearest_nodes(req.client, Family::V6, SERVERS);
        if v4.is_empty() && v6.is_empty() {
            let specific = own
                .iter()
                .map(SocketAddr::ip)
                .filter(|ip| !ip.is_unspecified());
            (v4, v6) = specific.partition(IpAddr::is_ipv4);
        }
        let list = match req.params.get("platform") {
            Some("android") => ServerList {
                service_ip: v4.iter().map(IpAddr::to_string).collect(),
                service_ipv6: v6.iter().map(IpAddr::to_string).collect(),
                service_ip_port: (port != 0).then(|| vec![port; v4.len()]),
                service_ipv6_port: (port != 0).then(|| vec![port; v6.len()]),
            },
            _ => {
                let entry = |ip: &IpAddr| server_entry(*ip, port, req.scheme);
                ServerList {
                    service_ip: v4.iter().map(entry).collect(),
                    service_ipv6: v6.iter().map(entry).collect(),
                    service_ip_port: None,
                    service_ipv6_port: None,
                }
            }
        };
        let body = serde_json::to_vec(&list).unwrap_or_default();
        Ok(render::bytes(StatusCode::OK, "application/json", body))
    }
}

/// `ip`, `ip:port`, `[ip6]:port`: the port only when not the scheme's default.
fn server_entry(ip: IpAddr, port: u16, scheme: Scheme) -> String {
    let default = match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    if port == default || port == 0 {
        return ip.to_string();
    }
    SocketAddr::new(ip, port).to_string()
}

#[cfg(test)]
mod tests {
    use super::{Scheme, server_entry};

    #[test]
    fn entries_carry_ports_other_than_the_default() {
        let v4 = "192.0.2.1".parse().unwrap();
        let v6 = "2001:db8::1".parse().unwrap();
        assert_eq!(server_entry(v4, 80, Scheme::Http), "192.0.2.1");
        assert_eq!(server_entry(v4, 8053, Scheme::Http), "192.0.2.1:8053");
        assert_eq!(server_entry(v4, 443, Scheme::Https), "192.0.2.1");
        assert_eq!(server_entry(v6, 8443, Scheme::Https), "[2001:db8::1]:8443");
    }
}
