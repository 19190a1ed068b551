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

use std::borrow::Cow;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::policy::{Client, DEFAULT_LABEL, RrsetPolicy, RrsetSpec};
use super::zone::{Found, Zone};
use crate::cluster::Cluster;
use crate::geo::Code;

#[cfg(test)]
mod tests;

/// The pools a policy may name: the cluster this node belongs to (this node alone when the
/// cluster is off).
const POOLS: [&str; 1] = ["cluster"];
/// Nodes per answer unless the entry says `count`.
const DEFAULT_COUNT: u32 = 2;
/// A short TTL, so that resolvers follow health changes within seconds.
const DEFAULT_TTL: u32 = 20;

/// An address family, from the RRset type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn contains(self, addr: &IpAddr) -> bool {
        matches!(
            (self, addr),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        )
    }
}

/// Where steering finds the nodes nearest a client: the boundary between DNS and the cluster.
///
/// Contract: `nearest` returns the addresses of `family` of at most `count` healthy nodes,
/// nearest first: same `country`, then same `continent`, then any; within a tier an order by
/// weighted rendezvous on `key`, the same for the same key while the healthy set stays. Each
/// chosen node contributes all its addresses of `family`; nodes with none are skipped, not
/// counted. Empty only when no healthy node has an address of `family`, whoever asks. It runs
/// on the query path: no I/O, no blocking.
///
/// `epoch` changes whenever `nearest` may start answering differently (the healthy set or a
/// member's description changed), and is advanced only after the change is visible to
/// `nearest`: an answer built after reading epoch `e` is stale once `epoch` is not `e`.
pub trait NodePool: Send + Sync {
    fn epoch(&self) -> u64;

    fn nearest(
        &self,
        country: Option<Code>,
        continent: Option<Code>,
        key: &[u8],
        family: Family,
        count: usize,
    ) -> Vec<IpAddr>;
}

impl NodePool for Cluster {
    fn epoch(&self) -> u64 {
        Cluster::epoch(self)
    }

    fn nearest(
        &self,
        country: Option<Code>,
        continent: Option<Code>,
        key: &[u8],
        family: Family,
        count: usize,
    ) -> Vec<IpAddr> {
        // Every healthy node ranked (a handful), so that nodes without an address of this
        // family do not take the places of those with one.
        Cluster::nearest(self, country, continent, key, usize::MAX)
            .iter()
            .filter(|m| m.addresses.iter().any(|a| family.contains(a)))
            .take(count)
            .flat_map(|m| m.addresses.iter().filter(|a| family.contains(a)).copied())
            .collect()
    }
}

/// A pool entry of a policy file, ready to answer.
#[derive(Debug)]
pub struct PoolRrset {
    /// e.g. "pool:cluster": the metric label of a steered answer.
    label: Arc<str>,
    family: Family,
    count: usize,
    ttl: u32,
    /// The owner name the records carry (wildcard owners are renamed by the lookup).
    owner: Name,
    /// The zone file's records for the name and type with the TTL capped at `ttl`, for when no
    /// node qualifies; empty: NODATA.
    fallback: Vec<Record>,
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

/// Builds the pool entry `spec` and attaches it to its RRset, creating the RRset when the zone
/// file has none (the answer is then NODATA while no node qualifies).
pub(super) fn attach_pool(
    zone: &mut Zone,
    origin: &Name,
    spec: &RrsetSpec,
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let pool = spec.pool.as_deref().unwrap_or_default();
    if !POOLS.contains(&pool) {
        problems.push(format!(
            "pool: unknown pool {pool:?} (known: {})",
            POOLS.join(", ")
        ));
    }
    let rtype = RecordType::from_str(&spec.rtype.to_ascii_uppercase()).ok();
    let family = match rtype {
        Some(RecordType::A) => Some(Family::V4),
        Some(RecordType::AAAA) => Some(Family::V6),
        _ => {
            problems.push(format!(
                "type: a pool answers A or AAAA, not {}",
                spec.rtype
            ));
            None
        }
    };
    let count = spec.count.unwrap_or(DEFAULT_COUNT);
    if count == 0 {
        problems.push("count: must be at least 1".into());
    }
    if spec.has_selectors() {
        problems.push(
            "a pool entry takes no cidr, asn, country, continent or default (the pool decides)"
                .into(),
        );
    }
    let owner = Name::parse(&spec.name, Some(origin)).map_err(|e| format!("name: {e}"));
    let owner = owner.and_then(|owner| placeable(zone, owner));
    let (owner, family, rtype) = match (owner, family, rtype) {
        (Ok(owner), Some(family), Some(rtype)) if problems.is_empty() => (owner, family, rtype),
        (owner, ..) => {
            problems.extend(owner.err());
            return Err(problems);
        }
    };
    let ttl = spec.ttl.unwrap_or(DEFAULT_TTL);
    let set = zone.rrset_or_insert(&LowerName::new(&owner), rtype);
    let fallback = set
        .records(&owner)
        .into_iter()
        .map(|mut r| {
            r.ttl = r.ttl.min(ttl);
            r
        })
        .collect();
    set.policy = Some(Box::new(RrsetPolicy::Pool(PoolRrset {
        label: Arc::from(format!("pool:{pool}")),
        family,
        count: count as usize,
        ttl,
        owner,
        fallback,
    })));
    Ok(())
}

/// `owner` if a pool may answer there: inside the zone, not at or below a delegation, not
/// beside a CNAME.
fn placeable(zone: &Zone, owner: Name) -> Result<Name, String> {
    let lower = LowerName::new(&owner);
    if !zone.origin.zone_of(&lower) {
        return Err(format!("name: {owner} is outside the zone {}", zone.origin));
    }
    match zone.find(&lower, false) {
        Found::Delegation(..) => Err(format!("name: {owner} is at or below a delegation")),
        Found::Exact(node) if node.get(RecordType::CNAME).is_some() => Err(format!(
            "name: {owner} has a CNAME, which allows no other data"
        )),
        _ => Ok(owner),
    }
}
