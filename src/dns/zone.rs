//! One authoritative zone loaded from an RFC 1035 master file, indexed for lookups.

use std::collections::HashMap;
use std::path::Path;

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use super::ZoneError;
use super::policy::RrsetPolicy;

/// A zone: every owner name (including empty non-terminals) mapped to its RRsets.
#[derive(Debug)]
pub struct Zone {
    pub origin: LowerName,
    /// Owner name -> node. Empty non-terminals are present with no RRsets, so "does this name
    /// exist" (NXDOMAIN versus NODATA, RFC 4592 wildcards) is one hash lookup.
    nodes: HashMap<LowerName, Node>,
    /// The SOA with its TTL lowered to the SOA MINIMUM for negative answers (RFC 2308 section 3).
    negative_soa: Record,
    /// Label count of the origin, where the downward walk of a lookup starts.
    origin_labels: usize,
}

#[derive(Debug, Default)]
pub struct Node {
    /// Few per name, so a Vec scanned by type beats a map.
    pub rrsets: Vec<RrSet>,
    /// NS at a name other than the apex: a delegation point (zone cut).
    pub cut: bool,
}

#[derive(Debug)]
pub struct RrSet {
    pub rtype: RecordType,
    /// The zone file's records: the answer when no geo selector matches.
    pub records: Vec<Record>,
    /// Geo alternatives or a node pool from the zone's policy file, if any.
    pub policy: Option<Box<RrsetPolicy>>,
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

impl Zone {
    /// Parses `path` as the master file of `origin` and validates it; returns every problem found.
    pub fn load(path: &Path, origin: &Name) -> Result<Zone, Vec<ZoneError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ZoneError::new(
                path,
                None,
                format!("cannot read zone file: {e}"),
            )]
        })?;
        Self::parse(&text, path, origin)
    }

    pub fn parse(text: &str, path: &Path, origin: &Name) -> Result<Zone, Vec<ZoneError>> {
        let parsed = Parser::new(text, Some(path.to_path_buf()), Some(origin.clone())).parse();
        let (_, sets) = parsed.map_err(|e| {
            let line = locate_parse_error(text, path, origin, &e.to_string());
            vec![ZoneError::new(path, line, e.to_string())]
        })?;

        let origin_lower = LowerName::from(origin);
        let mut problems = Vec::new();
        let mut nodes: HashMap<LowerName, Node> = HashMap::new();
        for (key, set) in sets {
            let owner = key.name.clone();
            if !origin_lower.zone_of(&owner) {
                let msg = format!(
                    "{owner} {}: owner is outside the zone {origin}",
                    key.record_type
                );
                problems.push(ZoneError::new(path, None, msg));
                continue;
            }
            let records: Vec<Record> = set.records_without_rrsigs().cloned().collect();
            if let Some(r) = records.iter().find(|r| r.dns_class != DNSClass::IN) {
                let msg = format!(
                    "{owner} {}: class {} is not served (IN only)",
                    key.record_type, r.dns_class
                );
                problems.push(ZoneError::new(path, None, msg));
                continue;
            }
            let node = nodes.entry(owner).or_default();
            node.rrsets.push(RrSet {
                rtype: key.record_type,
                records,
                policy: None,
            });
        }

        let apex = nodes.get(&origin_lower);
        let soa = apex
            .and_then(|n| n.get(RecordType::SOA))
            .map(|s| s.records.as_slice());
        let negative_soa = match soa {
            Some([soa]) => Some(negative_soa(soa)),
            Some(_) => {
                problems.push(ZoneError::new(
                    path,
                    None,
                    format!("{origin}: more than one SOA record"),
                ));
                None
            }
            None => {
                problems.push(ZoneError::new(
                    path,
                    None,
                    format!("{origin}: no SOA record at the zone apex"),
                ));
                None
            }
        };
        if apex.and_then(|n| n.get(RecordType::NS)).is_none() {
            problems.push(ZoneError::new(
                path,
                None,
                format!("{origin}: no NS records at the zone apex"),
            ));
        }
        for (name, node) in &nodes {
            // (Of several CNAMEs at one name, hickory's parser keeps the last.)
            if node.get(RecordType::CNAME).is_some() && node.rrsets.len() > 1 {
                let msg = format!(
                    "{name}: CNAME and other data at the same name (RFC 1034 section 3.6.2)"
                );
                problems.push(ZoneError::new(path, None, msg));
            }
        }
        let Some(negative_soa) = negative_soa.filter(|_| problems.is_empty()) else {
            return Err(problems);
        };

        for (name, node) in nodes.iter_mut() {
            node.cut = *name != origin_lower && node.get(RecordType::NS).is_some();
        }
        add_empty_non_terminals(&mut nodes, &origin_lower);
        Ok(Zone {
            origin_labels: label_count(origin),
            origin: origin_lower,
            nodes,
            negative_soa,
        })
    }

    pub fn node(&self, name: &LowerName) -> Option<&Node> {
        self.nodes.get(name)
    }

    pub fn node_mut(&mut self, name: &LowerName) -> Option<&mut Node> {
        self.nodes.get_mut(name)
    }

    /// The `rtype` RRset at `name`, created empty (with its node and any empty non-terminals
    /// above it) when the zone file has none: for policies that answer without the zone file's
    /// records. The caller checks that `name` is in the zone and not below a cut.
    pub fn rrset_or_insert(&mut self, name: &LowerName, rtype: RecordType) -> &mut RrSet {
        if !self.nodes.contains_key(name) {
            let mut parent = name.base_name();
            while self.origin.zone_of(&parent) && !self.nodes.contains_key(&parent) {
                self.nodes.insert(parent.clone(), Node::default());
                parent = parent.base_name();
            }
        }
        let node = self.nodes.entry(name.clone()).or_default();
        let index = match node.rrsets.iter().position(|s| s.rtype == rtype) {
            Some(index) => index,
            None => {
                node.rrsets.push(RrSet {
                    rtype,
                    records: Vec::new(),
                    policy: None,
                });
                node.rrsets.len() - 1
            }
        };
        &mut node.rrsets[index]
    }

    /// The SOA for the authority section of negative answers.
    pub fn negative_soa(&self) -> &Record {
        &self.negative_soa
    }

    /// Number of owner names with data (for logs).
    pub fn record_count(&self) -> usize {
        self.nodes
            .values()
            .flat_map(|n| &n.rrsets)
            .map(|s| s.records.len())
            .sum()
    }

    /// Finds where `qname` lands in this zone (RFC 1034 section 4.3.2 step 3, RFC 4592).
    ///
    /// Walks down from the apex one label at a time, so that a zone cut above `qname` is seen
    /// before anything occluded below it. `ds_at_cut` asks for the parent side of a cut (a DS
    /// query at the delegation point is answered by the parent, RFC 4035 section 3.1.4.1).
    pub fn find(&self, qname: &LowerName, ds_at_cut: bool) -> Found<'_> {
        let total = label_count(qname);
        let Some(mut closest) = self.nodes.get(&self.origin) else {
            return Found::NxDomain;
        };
        let mut closest_depth = self.origin_labels;
        for depth in self.origin_labels + 1..=total {
            let name = LowerName::new(&qname.trim_to(depth));
            let Some(node) = self.nodes.get(&name) else {
                break;
            };
            if node.cut && !(ds_at_cut && depth == total) {
                return Found::Delegation(node);
            }
            closest = node;
            closest_depth = depth;
        }
        if closest_depth == total {
            return Found::Exact(closest);
        }
        // qname does not exist: a wildcard at the closest encloser may synthesize it.
        let encloser = qname.trim_to(closest_depth);
        let wildcard = match encloser.prepend_label("*") {
            Ok(name) => LowerName::new(&name),
            Err(_) => return Found::NxDomain, // the encloser is already at the length limit
        };
        match self.nodes.get(&wildcard) {
            Some(node) => Found::Wildcard(node),
            None => Found::NxDomain,
        }
    }
}

/// Where a name lands in a zone.
#[derive(Debug, Clone, Copy)]
pub enum Found<'z> {
    /// The name exists (possibly as an empty non-terminal).
    Exact(&'z Node),
    /// The name does not exist, but `*.<closest encloser>` does (RFC 4592).
    Wildcard(&'z Node),
    /// The name is at or below a zone cut: the node holding the NS RRset.
    Delegation(&'z Node),
    NxDomain,
}

fn negative_soa(soa: &Record) -> Record {
    let mut negative = soa.clone();
    if let RData::SOA(data) = &soa.data {
        negative.ttl = soa.ttl.min(data.minimum);
    }
    negative
}

/// Every ancestor of an owner name, up to the apex, exists (RFC 4592 section 2.2.2).
fn add_empty_non_terminals(nodes: &mut HashMap<LowerName, Node>, origin: &LowerName) {
    let owners: Vec<LowerName> = nodes.keys().cloned().collect();
    for owner in owners {
        let mut name = owner.base_name();
        while origin.zone_of(&name) && name != *origin {
            if nodes.contains_key(&name) {
                break;
            }
            nodes.insert(name.clone(), Node::default());
            name = name.base_name();
        }
    }
}

/// hickory's zone parser reports no line numbers: find the first line at which a prefix of the
/// file fails with the same error, by bisection over prefixes (a handful of re-parses).
fn locate_parse_error(text: &str, path: &Path, origin: &Name, error: &str) -> Option<usize> {
    let ends: Vec<usize> = text
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain([text.len()])
        .collect();
    let fails_at = |lines: usize| {
        let prefix = &text[..ends[lines - 1]];
        let result = Parser::new(prefix, Some(path.to_path_buf()), Some(origin.clone())).parse();
        matches!(result, Err(e) if e.to_string() == error)
    };
    let (mut lo, mut hi) = (1, ends.len());
    if !fails_at(hi) {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails_at(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// Labels in `name`, counting a leading `*` (hickory's `num_labels` leaves it out, as RRSIG
/// label counts do, but a literal `*.example.` query is a name of its own).
pub fn label_count(name: &Name) -> usize {
    name.iter().count()
}
