//! DNS steering: an A or AAAA RRset answered with the healthy cluster nodes nearest the client
//! instead of fixed records.
//!
//! ```toml
//! [[rrset]]
//! name = "cdn"
//! type = "A"                # or AAAA: the nodes' addresses of that family
//! pool = "cluster"          # the cluster's healthy nodes
//! count = 2                 # nodes per answer at most (default 2)
//! ttl = 20                  # answer TTL (default 20)
//! ```
//!
//! The client's location is the same [`GeoScope`](crate::geo::GeoScope) geo selectors use, and
//! the rendezvous key that orders nodes within a tier is the client's address cut to that
//! scope's prefix: every address the ECS scope prefix covers gets the same answer. When no
//! healthy node has an address of the family, the answer is the zone file's own records for
//! the name and type (their TTL capped at the pool's), else NODATA.
//!
//! The nodes come through [`NodePool`], the one door between DNS and the cluster (defined in
//! `dns::client` beside the querying client, re-exported here; the cluster's implementation is
//! in `crate::node_pool`). Pool entries are read from the policy file by `policy_file::pool`.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record};

use super::client::{Client, DEFAULT_LABEL};
pub use super::client::{Family, NodePool};

#[cfg(test)]
mod tests;

/// A pool entry of a policy file, ready to answer.
#[derive(Debug)]
pub struct PoolRrset {
    /// e.g. "pool:cluster": the metric label of a steered answer.
    pub(super) label: Arc<str>,
    pub(super) family: Family,
    pub(super) count: usize,
    pub(super) ttl: u32,
    /// The owner name the records carry (wildcard owners are renamed by the lookup).
    pub(super) owner: Name,
    /// The zone file's records for the name and type with the TTL capped at `ttl`, for when no
    /// node qualifies; empty: NODATA.
    pub(super) fallback: Vec<Record>,
}

impl PoolRrset {
    /// The nearest healthy nodes' addresses for `client`, or the fallback. Records the
    /// decision and its ECS scope in `client`.
    pub fn answer<'a>(&'a self, client: &mut Client<'_>) -> Cow<'a, [Record]> {
        let Some((addrs, prefix)) = nearest_nodes(client, self.family, self.count) else {
            // No node qualifies, for any client: the same answer everywhere (scope 0).
            client.decision = Some((Arc::clone(&DEFAULT_LABEL), 0));
            return Cow::Borrowed(&self.fallback);
        };
        client.decision = Some((Arc::clone(&self.label), prefix));
        let record = |addr: IpAddr| {
            let data = match addr {
                IpAddr::V4(v4) => RData::A(A(v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
            };
            Record::from_rdata(self.owner.clone(), self.ttl, data)
        };
        Cow::Owned(addrs.into_iter().map(record).collect())
    }
}

/// The addresses of `family` of at most `count` healthy nodes nearest `client`, as pool entries
/// choose them, and the ECS scope prefix the choice holds for; None when no node qualifies
/// (or `client` has no pool). HTTPDNS scheduling (`/{account}/ss`) chooses with it too.
pub fn nearest_nodes(
    client: &mut Client<'_>,
    family: Family,
    count: usize,
) -> Option<(Vec<IpAddr>, u8)> {
    let nodes = client.nodes?;
    let addr = client.addr;
    let scope = client.scope();
    let (country, continent, prefix) = (scope.country, scope.continent, scope.prefix_len);
    let (key, len) = subnet_key(addr, prefix);
    let addrs = nodes.nearest(country, continent, &key[..len], family, count);
    (!addrs.is_empty()).then_some((addrs, prefix))
}

/// The rendezvous key of a client: its address cut to `prefix` bits, and the prefix. An
/// IPv4-mapped IPv6 address (a dual-stack socket's IPv4 client) keys as the IPv4 address, so
/// one client gets one answer either way. Returns the buffer and the length used.
fn subnet_key(addr: IpAddr, prefix: u8) -> ([u8; 17], usize) {
    let (addr, prefix) = match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), prefix.saturating_sub(96)),
            None => (addr, prefix),
        },
        IpAddr::V4(_) => (addr, prefix),
    };
    let mut key = [0u8; 17];
    let octets: &[u8] = match &addr {
        IpAddr::V4(v4) => &v4.octets(),
        IpAddr::V6(v6) => &v6.octets(),
    };
    let prefix = usize::from(prefix).min(octets.len() * 8);
    for (i, byte) in octets.iter().enumerate() {
        let kept = prefix.saturating_sub(i * 8).min(8);
        // The top `kept` bits: 0xff00 >> 0 keeps none of the low byte, 0xff00 >> 8 all of it.
        let mask = (0xff00u16 >> kept) as u8;
        key[i] = byte & mask;
    }
    key[octets.len()] = prefix as u8;
    (key, octets.len() + 1)
}
