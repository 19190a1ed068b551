//! Connections per client network: DNS over TCP gives a /24 (IPv4) or /56 (IPv6) at most
//! `dns.tcp_max_connections_per_prefix` connections, the HTTP listeners an address (an IPv6
//! /64) at most `http.max_connections_per_client`, so that one network that opens connections
//! and holds them cannot take a listener's global limit from everyone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Open connections by client network.
#[derive(Debug)]
pub struct PrefixLimiter {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
    v4_prefix: u8,
    v6_prefix: u8,
}

/// One connection's place in its network's count, given back when dropped.
#[derive(Debug)]
pub struct PrefixPermit {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    network: IpAddr,
}

impl Drop for PrefixPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.network) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.network);
            }
        }
    }
}

impl PrefixLimiter {
    pub fn new(max: usize, v4_prefix: u8, v6_prefix: u8) -> PrefixLimiter {
        PrefixLimiter {
            open: Arc::default(),
            max,
            v4_prefix: v4_prefix.min(32),
            v6_prefix: v6_prefix.min(128),
        }
    }

    /// A place for a connection from `peer`, or None when its network holds `max` already.
    pub fn admit(&self, peer: IpAddr) -> Option<PrefixPermit> {
        let network = self.network_of(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(network).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(PrefixPermit {
            open: Arc::clone(&self.open),
            network,
        })
    }

    /// `peer`'s network: an IPv4-mapped IPv6 address counts as the IPv4 address it is.
    fn network_of(&self, peer: IpAddr) -> IpAddr {
        match peer.to_canonical() {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.v4_prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.v6_prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// Networks with a connection open.
    #[cfg(test)]
    fn networks(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn a_network_holds_at_most_its_share() {
        let limiter = PrefixLimiter::new(2, 24, 56);
        let a = limiter.admit(ip("192.0.2.1")).expect("first");
        let _b = limiter
            .admit(ip("::ffff:192.0.2.200"))
            .expect("same /24, mapped");
        assert!(limiter.admit(ip("192.0.2.77")).is_none(), "the /24 is full");
        assert!(limiter.admit(ip("192.0.3.1")).is_some(), "another /24");
        drop(a);
        assert!(
            limiter.admit(ip("192.0.2.77")).is_some(),
            "a place came back"
        );
        let _c = limiter.admit(ip("2001:db8:0:ff::1")).expect("v6");
        let _d = limiter.admit(ip("2001:db8:0:1::1")).expect("same /56");
        assert!(
            limiter.admit(ip("2001:db8:0:2::1")).is_none(),
            "the /56 is full"
        );
    }

    #[test]
    fn empty_networks_are_forgotten() {
        let limiter = PrefixLimiter::new(4, 24, 56);
        let permits: Vec<_> = (1..=3)
            .filter_map(|i| limiter.admit(ip(&format!("10.{i}.0.1"))))
            .collect();
        assert_eq!(limiter.networks(), 3);
        drop(permits);
        assert_eq!(limiter.networks(), 0);
    }
}
