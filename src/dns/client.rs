//! The querying client as answer policies see it, and the door to the nodes pool entries
//! answer with ([`NodePool`]): what geo policies ([`super::policy`]), steering
//! ([`super::steering`]), the lookup and the handler share, below all of them.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::geo::{Code, Geo, GeoScope, common_prefix_len};

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

/// The querying client as geo policies see it; the GeoIP lookup runs at most once per query
/// and only when a policy needs it.
pub struct Client<'g> {
    pub addr: IpAddr,
    geo: &'g Geo,
    /// Where pool entries find their nodes; None: pool entries answer their fallback.
    pub(crate) nodes: Option<&'g dyn NodePool>,
    scope: Option<GeoScope>,
    /// The selection that shaped the answer and the RFC 7871 scope prefix it implies.
    pub decision: Option<(Arc<str>, u8)>,
    /// Every address sharing this many leading bits with `addr` makes the same choices in the
    /// policies consulted so far (cidr membership, GeoScope), so gets the same answer: what
    /// the answer cache keys a located answer by. Unlike the decision's ECS prefix it counts
    /// the cidr selectors the address missed, too.
    pub stable_prefix: u8,
}

impl<'g> Client<'g> {
    pub fn new(addr: IpAddr, geo: &'g Geo) -> Self {
        Self {
            addr,
            geo,
            nodes: None,
            scope: None,
            decision: None,
            stable_prefix: 0,
        }
    }

    /// Lets pool entries answer with the nodes of `nodes`.
    pub fn with_nodes(mut self, nodes: &'g dyn NodePool) -> Self {
        self.nodes = Some(nodes);
        self
    }

    pub(crate) fn scope(&mut self) -> &GeoScope {
        let (geo, addr) = (self.geo, self.addr);
        let scope = self.scope.get_or_insert_with(|| geo.lookup(addr));
        self.stable_prefix = self.stable_prefix.max(scope.prefix_len);
        scope
    }

    /// Notes that the answer depends on whether `addr` is inside `net`.
    pub(crate) fn consulted(&mut self, net: &IpNet) -> bool {
        let inside = net.contains(&self.addr);
        // Inside: the whole network answers alike. Outside: so do all addresses that differ
        // from the network within one more bit than they share. Another family: never inside.
        let bits = match common_prefix_len(self.addr, *net) {
            Some(_) if inside => net.prefix_len(),
            Some(common) => common.saturating_add(1).min(net.prefix_len()),
            None => 0,
        };
        self.stable_prefix = self.stable_prefix.max(bits);
        inside
    }
}

/// The label of an answer no selector or node chose (the zone file's records, or a default).
pub(crate) static DEFAULT_LABEL: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from("default"));
