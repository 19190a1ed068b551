//! Bytes as a MaxMind DB file through `Geo::load` (which verifies the whole file), then
//! lookups of IPv4, IPv6 and IPv4-mapped addresses in whatever loaded.
//!
//! Asserts: no panic, no hang; a scope's prefix length fits its address family.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use edgenode::geo::Geo;

pub fn run(data: &[u8]) {
    let dir = super::scratch_dir();
    let path = dir.path().join("fuzz.mmdb");
    std::fs::write(&path, data).expect("write mmdb");
    let Ok(geo) = Geo::load(&[path], &[]) else {
        return;
    };
    let _ = geo.describe();
    let addresses = [
        IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
        IpAddr::V4(Ipv4Addr::new(81, 2, 69, 160)),
        IpAddr::V4(Ipv4Addr::new(175, 16, 199, 1)),
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0x218, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::new(
            0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
        )),
        IpAddr::V6(Ipv4Addr::new(81, 2, 69, 160).to_ipv6_mapped()),
    ];
    for addr in addresses {
        let scope = geo.lookup(addr);
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        assert!(
            scope.prefix_len <= bits,
            "{addr}: prefix length {} is longer than the address",
            scope.prefix_len
        );
    }
}
