//! Builds a [`Zone`] from the reader's records: the checks the reader cannot make alone
//! (owners in the zone, CNAME and DNAME exclusivity, one SOA, one TTL per RRset), then the
//! index (cuts, empty non-terminals) and the shrinking of every buffer to its size.

use std::path::Path;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::{NameNode, Nodes, RrData, RrSet, Zone, in_zone, label_count, to_record};
use crate::dns::ZoneError;
use crate::dns::zonefile::{self, Place, ReadRecord, name as wire_name, types};

/// Why a record read from the zone file is refused (reported at its line).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordProblem {
    #[error("{owner} {rtype}: class {class} is not served (IN only)")]
    Class {
        owner: String,
        rtype: String,
        class: u16,
    },
    #[error("{0}: an SOA record belongs at the zone apex only")]
    SoaBelowApex(String),
    #[error(
        "{owner}: below the DNAME at {dname} (RFC 6672 section 2.3: a DNAME owner has no \
         descendants)"
    )]
    BelowDname { owner: String, dname: String },
    /// CNAME, SOA and DNAME exclusivity (`problem` says which rule).
    #[error("{owner}: {problem}")]
    Conflict {
        owner: String,
        problem: &'static str,
    },
}

/// Types that may stand beside a CNAME (RFC 4035 section 2.5, RFC 2181 section 10.1).
fn cname_may_share(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC | RecordType::KEY
    )
}

/// Collects the reader's records into nodes, checking what the reader cannot see alone.
pub(super) struct Builder {
    origin: Box<[u8]>,
    nodes: Nodes,
    /// NSEC3 records and their signatures, apart: their owners are hashes, not names of the
    /// zone's tree (a query for one is NXDOMAIN, RFC 5155 section 7.2.8, as NSD and Knot say).
    nsec3: Nodes,
    /// The current record's owner, lowercased (a buffer reused for every record).
    owner: Vec<u8>,
    /// The previous record's owner: the same one again needs no new key.
    last_owner: Vec<u8>,
    /// Whether a DNAME was seen: only then is each owner checked for one above it.
    dnames: bool,
    warnings: Vec<ZoneError>,
}

/// What RFC 2181 section 8 makes of a TTL with the top bit set.
const MAX_TTL: u32 = (1 << 31) - 1;

impl Builder {
    pub(super) fn new(origin: Box<[u8]>) -> Self {
        Self {
            origin,
            nodes: Nodes::default(),
            nsec3: Nodes::default(),
            owner: Vec::new(),
            last_owner: Vec::new(),
            dnames: false,
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, place: Place<'_>, message: String) {
        self.warnings.push(ZoneError::at(
            place.file,
            place.line,
            place.column,
            format!("warning: {message}"),
        ));
    }

    pub(super) fn add(
        &mut self,
        record: &ReadRecord<'_>,
        place: Place<'_>,
    ) -> Result<(), RecordProblem> {
        let rtype_name = || types::type_name(record.rtype);
        let owner_text = || wire_name::to_text(record.owner);
        if record.class != 1 {
            return Err(RecordProblem::Class {
                owner: owner_text(),
                rtype: rtype_name(),
                class: record.class,
            });
        }
        self.owner.clear();
        self.owner.extend_from_slice(record.owner);
        wire_name::lowercase(&mut self.owner);
        if !in_zone(&self.owner, &self.origin) {
            // Knot's reading: left out, said (NSD refuses the zone; one stray line should not
            // take a zone off the air).
            let origin = wire_name::to_text(&self.origin);
            let (owner, rtype) = (owner_text(), rtype_name());
            self.warn(
                place,
                format!("{owner} {rtype}: owner is outside the zone {origin}: ignored"),
            );
            return Ok(());
        }
        let rtype = RecordType::from(record.rtype);
        if rtype == RecordType::SOA && *self.owner != *self.origin {
            return Err(RecordProblem::SoaBelowApex(owner_text()));
        }
        let ttl = self.checked_ttl(record, place);
        let nsec3 = is_nsec3(rtype, record.rdata);
        // Only zones with DNAMEs pay for the walk up the owner's ancestors.
        let dname = (self.dnames && !nsec3)
            .then(|| self.dname_above())
            .flatten();
        if let Some(dname) = dname {
            let (owner, dname) = (owner_text(), wire_name::to_text(&dname));
            return Err(RecordProblem::BelowDname { owner, dname });
        }
        let Some(node) = self.node_for(nsec3) else {
            return Ok(()); // unreachable: the last owner was inserted
        };
        if let Some(problem) = conflict(node, rtype) {
            return Err(RecordProblem::Conflict {
                owner: owner_text(),
                problem,
            });
        }
        let mismatch = push_record(node, rtype, ttl, record.rdata);
        if rtype == RecordType::DNAME {
            self.dnames = true;
        }
        if let Some(first) = mismatch {
            let (owner, rtype) = (owner_text(), rtype_name());
            let message = format!(
                "{owner} {rtype}: TTL {ttl} differs from the RRset's {first}: {first} used (RFC 2181 section 5.2)"
            );
            self.warn(place, message);
        }
        Ok(())
    }

    /// The record's TTL, or 0 (said) when it is over 2^31 - 1.
    fn checked_ttl(&mut self, record: &ReadRecord<'_>, place: Place<'_>) -> u32 {
        if record.ttl <= MAX_TTL {
            return record.ttl;
        }
        let message = format!(
            "{} {}: TTL {} is over 2^31 - 1: 0 used (RFC 2181 section 8)",
            wire_name::to_text(record.owner),
            types::type_name(record.rtype),
            record.ttl
        );
        self.warn(place, message);
        0
    }

    /// The node of the current owner, among the NSEC3 owners or the zone's names.
    fn node_for(&mut self, nsec3: bool) -> Option<&mut NameNode> {
        if nsec3 {
            return Some(
                self.nsec3
                    .entry(self.owner.clone().into_boxed_slice())
                    .or_default(),
            );
        }
        if self.last_owner == self.owner {
            // Records of one owner mostly come together: a repeated owner is looked up, a
            // new one inserted with one hash of its name (a later repeat drops a key).
            return self.nodes.get_mut(self.owner.as_slice());
        }
        self.last_owner.clone_from(&self.owner);
        Some(
            self.nodes
                .entry(self.owner.clone().into_boxed_slice())
                .or_default(),
        )
    }

    /// The closest DNAME owner strictly above the current owner, inside the zone.
    fn dname_above(&self) -> Option<Vec<u8>> {
        let name = &self.owner;
        let mut pos = 0;
        while pos + self.origin.len() < name.len() {
            pos += 1 + usize::from(name[pos]);
            let ancestor = &name[pos..];
            if self
                .nodes
                .get(ancestor)
                .is_some_and(|n| n.get(RecordType::DNAME).is_some())
            {
                return Some(ancestor.to_vec());
            }
        }
        None
    }

    pub(super) fn finish(
        mut self,
        path: &Path,
        origin: &Name,
        report: zonefile::Report,
    ) -> Result<Zone, Vec<ZoneError>> {
        let origin_wire = std::mem::take(&mut self.origin);
        let mut problems = report.errors;
        let mut warnings = report.warnings;
        warnings.append(&mut self.warnings);
        let negative_soa = apex_checks(&self.nodes, &origin_wire, origin, path, &mut problems);
        warnings.extend(apex_warning(&self.nodes, &origin_wire, origin, path));
        problems.extend(dnames_with_descendants(&self.nodes, &origin_wire, path));
        let Some(negative_soa) = negative_soa.filter(|_| problems.is_empty()) else {
            return Err(problems);
        };
        settle(&mut self.nodes, &origin_wire);
        add_empty_non_terminals(&mut self.nodes, &origin_wire);
        self.nodes.shrink_to_fit();
        // Kept for the DNSSEC issue's denial of existence; nothing answers from them yet.
        drop(self.nsec3);
        Ok(Zone {
            origin_labels: label_count(origin),
            origin: LowerName::from(origin),
            origin_wire,
            nodes: self.nodes,
            negative_soa,
            warnings,
        })
    }
}

/// The apex SOA as negative answers carry it (TTL lowered to the SOA MINIMUM); a problem when
/// there is none.
fn apex_checks(
    nodes: &Nodes,
    origin_wire: &[u8],
    origin: &Name,
    path: &Path,
    problems: &mut Vec<ZoneError>,
) -> Option<Record> {
    let soa = nodes.get(origin_wire).and_then(|n| n.get(RecordType::SOA));
    let Some(soa) = soa else {
        problems.push(ZoneError::new(
            path,
            None,
            format!("{origin}: no SOA record at the zone apex"),
        ));
        return None;
    };
    let (ttl, rdata) = soa.data.iter().next()?;
    let mut record = to_record(origin, RecordType::SOA, ttl, rdata);
    if let RData::SOA(data) = &record.data {
        record.ttl = ttl.min(data.minimum);
    }
    Some(record)
}

/// The warning for a zone without apex NS records.
fn apex_warning(
    nodes: &Nodes,
    origin_wire: &[u8],
    origin: &Name,
    path: &Path,
) -> Option<ZoneError> {
    let ns = nodes.get(origin_wire).and_then(|n| n.get(RecordType::NS));
    ns.is_none().then(|| {
        ZoneError::new(
            path,
            None,
            format!(
                "warning: {origin}: no NS records at the zone apex (served, but the zone \
                 cannot be delegated to)"
            ),
        )
    })
}

/// Marks the zone cuts and drops duplicate records and spare capacity.
fn settle(nodes: &mut Nodes, origin_wire: &[u8]) {
    for (name, node) in nodes.iter_mut() {
        node.cut = **name != *origin_wire && node.get(RecordType::NS).is_some();
        for set in &mut node.rrsets {
            set.data.dedup();
            set.data.0.shrink_to_fit();
        }
        node.rrsets.shrink_to_fit();
    }
}

/// DNAMEs with names below them that came first in the file (the others are refused as they
/// are read, with their line).
fn dnames_with_descendants(nodes: &Nodes, origin: &[u8], path: &Path) -> Vec<ZoneError> {
    let mut problems = Vec::new();
    for name in nodes.keys() {
        let mut pos = 0;
        while pos + origin.len() < name.len() {
            pos += 1 + usize::from(name[pos]);
            if nodes
                .get(&name[pos..])
                .is_some_and(|n| n.get(RecordType::DNAME).is_some())
            {
                problems.push(ZoneError::new(
                    path,
                    None,
                    format!(
                        "{}: below the DNAME at {} (RFC 6672 section 2.3: a DNAME owner has no \
                         descendants)",
                        wire_name::to_text(name),
                        wire_name::to_text(&name[pos..])
                    ),
                ));
                break;
            }
        }
    }
    problems
}

/// Every ancestor of an owner name, up to the apex, exists (RFC 4592 section 2.2.2). Only
/// missing parents are copied, so a flat zone costs one scan.
fn add_empty_non_terminals(nodes: &mut Nodes, origin: &[u8]) {
    let parent = |name: &[u8]| -> Option<Box<[u8]>> {
        let len = usize::from(*name.first()?);
        let parent = name.get(1 + len..)?;
        (parent.len() > origin.len() && in_zone(parent, origin)).then(|| parent.into())
    };
    let mut missing: Vec<Box<[u8]>> = nodes
        .keys()
        .filter_map(|name| parent(name))
        .filter(|p| !nodes.contains_key(p))
        .collect();
    while let Some(name) = missing.pop() {
        if nodes.contains_key(&name) {
            continue;
        }
        if let Some(up) = parent(&name).filter(|p| !nodes.contains_key(p)) {
            missing.push(up);
        }
        nodes.insert(name, NameNode::default());
    }
}

/// Whether a record belongs to the NSEC3 chain: an NSEC3, or an RRSIG covering one.
fn is_nsec3(rtype: RecordType, rdata: &[u8]) -> bool {
    let covered = rdata.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
    rtype == RecordType::NSEC3
        || (rtype == RecordType::RRSIG && covered == Some(u16::from(RecordType::NSEC3)))
}

/// What forbids a record of `rtype` at `node`, if anything (CNAME, SOA and DNAME rules).
fn conflict(node: &NameNode, rtype: RecordType) -> Option<&'static str> {
    let existing = node.get(rtype).is_some();
    match rtype {
        RecordType::CNAME if existing => Some("more than one CNAME at one name"),
        RecordType::CNAME if node.rrsets.iter().any(|s| !cname_may_share(s.rtype)) => {
            Some("CNAME and other data at the same name (RFC 1034 section 3.6.2)")
        }
        RecordType::SOA if existing => Some("more than one SOA record"),
        RecordType::DNAME if existing => Some("more than one DNAME at one name"),
        RecordType::DNAME if node.get(RecordType::CNAME).is_some() => {
            Some("a DNAME and a CNAME at one name (RFC 6672 section 2.4)")
        }
        _ if !cname_may_share(rtype) && node.get(RecordType::CNAME).is_some() => {
            Some("CNAME and other data at the same name (RFC 1034 section 3.6.2)")
        }
        _ => None,
    }
}

/// Adds a record to its RRset at `node`, creating the RRset; returns the RRset's TTL when
/// the record's differed from it (the RRset's is used).
fn push_record(node: &mut NameNode, rtype: RecordType, ttl: u32, rdata: &[u8]) -> Option<u32> {
    let Some(set) = node.rrsets.iter_mut().find(|s| s.rtype == rtype) else {
        let mut data = RrData::default();
        data.push(ttl, rdata);
        // One more RRset, not four (Vec's first growth): most names have one or two.
        node.rrsets.reserve_exact(1);
        node.rrsets.push(RrSet {
            rtype,
            data,
            policy: None,
        });
        return None;
    };
    // One TTL per RRset (RFC 2181 section 5.2): the first one, as BIND does. Not for
    // signatures: each has its covered RRset's TTL (RFC 4034 section 3).
    let first = set.data.first_ttl().unwrap_or(ttl);
    let signature = matches!(rtype, RecordType::RRSIG | RecordType::SIG);
    set.data.push(if signature { ttl } else { first }, rdata);
    (first != ttl && !signature).then_some(first)
}
