//! Geo answer policies: a `<zone>.geo.toml` beside a zone file gives alternative record sets for
//! one owner name and type, chosen by where the client is ([`super::policy_file`] reads it).
//!
//! The most specific matching selector wins: cidr (longest prefix), then asn, country,
//! continent, and finally the default.
//!
//! Instead of selectors, an A or AAAA entry may name a pool of nodes (`pool = "cluster"`,
//! with `count` and `ttl`): it is answered with the healthy nodes nearest the client
//! (see [`super::steering`]).

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::Record;
use ipnet::IpNet;

use super::client::{Client, DEFAULT_LABEL};
use super::steering::PoolRrset;
use crate::geo::Code;

/// What a policy file says about one RRset.
#[derive(Debug)]
pub enum RrsetPolicy {
    /// Alternative records chosen by where the client is.
    Geo(GeoRrset),
    /// The healthy nodes of a pool nearest the client.
    Pool(PoolRrset),
}

/// The geo alternatives of one RRset.
#[derive(Debug, Default)]
pub struct GeoRrset {
    /// Longest prefix first, so the first match is the most specific.
    pub(super) cidr: Vec<(IpNet, Selection)>,
    pub(super) asn: HashMap<u32, Selection>,
    pub(super) country: HashMap<Code, Selection>,
    pub(super) continent: HashMap<Code, Selection>,
    /// Replaces the zone file's records when no selector matches.
    pub(super) default: Option<Selection>,
}

/// One alternative: the records to answer and the label that metrics and logs show.
#[derive(Debug)]
pub struct Selection {
    /// e.g. "continent:AS"; shared so that counting a decision allocates nothing.
    pub label: Arc<str>,
    pub records: Vec<Record>,
}

impl GeoRrset {
    /// The alternative for `client`, or None to answer the zone file's records.
    pub fn select<'a>(&'a self, client: &mut Client<'_>) -> Option<&'a Selection> {
        if let Some((net, sel)) = self.cidr.iter().find(|(net, _)| client.consulted(net)) {
            client.decision = Some((sel.label.clone(), net.prefix_len()));
            return Some(sel);
        }
        let needs_lookup =
            !(self.asn.is_empty() && self.country.is_empty() && self.continent.is_empty());
        let (chosen, prefix) = if needs_lookup {
            let scope = client.scope();
            let chosen = None
                .or_else(|| scope.asn.and_then(|a| self.asn.get(&a)))
                .or_else(|| scope.country.and_then(|c| self.country.get(&c)))
                .or_else(|| scope.continent.and_then(|c| self.continent.get(&c)));
            (chosen, scope.prefix_len)
        } else {
            (None, 0)
        };
        let chosen = chosen.or(self.default.as_ref());
        let label = chosen.map_or_else(|| Arc::clone(&DEFAULT_LABEL), |s| s.label.clone());
        client.decision = Some((label, prefix));
        chosen
    }
}
