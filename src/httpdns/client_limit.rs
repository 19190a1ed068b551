//! The per-client request budget. A client is an IPv4 address, or an IPv6 prefix of
//! `httpdns.client_prefix_v6` bits (default /64): one subscriber usually holds a whole /64,
//! so a budget per IPv6 address would let one client spend 2^64 budgets. IPv4-mapped IPv6
//! addresses count as the IPv4 address they map.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub(super) struct ClientLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    v6_prefix: u8,
}

impl ClientLimiter {
    pub(super) fn new(quota: Quota, v6_prefix: u8) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            v6_prefix,
        }
    }

    /// Spends one request of `client`'s budget; Err: how long until the next is allowed.
    pub(super) fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&key(client, self.v6_prefix))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    pub(super) fn retain_recent(&self) {
        self.limiter.retain_recent();
    }
}

/// The budget `client` spends from: itself for IPv4, its prefix for IPv6.
pub(super) fn key(client: IpAddr, v6_prefix: u8) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u32::from(v6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::key;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_share_their_prefix_and_mapped_addresses_are_ipv4() {
        assert_eq!(key(ip("2001:db8:1:2:aaaa::1"), 64), ip("2001:db8:1:2::"));
        assert_eq!(key(ip("2001:db8:1:2:bbbb::9"), 64), ip("2001:db8:1:2::"));
        assert_ne!(
            key(ip("2001:db8:1:3::1"), 64),
            key(ip("2001:db8:1:2::1"), 64)
        );
        assert_eq!(key(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(key(ip("2001:db8:ffff::1"), 48), ip("2001:db8:ffff::"));
        assert_eq!(key(ip("::ffff:192.0.2.7"), 64), ip("192.0.2.7"));
        assert_eq!(key(ip("192.0.2.7"), 64), ip("192.0.2.7"));
    }
}
