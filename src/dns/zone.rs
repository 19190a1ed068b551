//! One authoritative zone loaded from an RFC 1035 master file, indexed for lookups.
//!
//! **Representation.** Owner names are keys in wire form, lowercased (one allocation each);
//! an RRset keeps its records' TTLs and rdata in wire form in one buffer (one allocation per
//! RRset). Answers turn them into hickory records only when a query needs them, so a zone
//! of a million records costs about what NSD's does (README, "Zones at scale").

use std::collections::HashMap;
use std::path::Path;

use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};

use super::ZoneError;
use super::policy::RrsetPolicy;
use super::zonefile::{self, name as wire_name};

mod build;

use build::Builder;

/// A zone: every owner name (including empty non-terminals) mapped to its RRsets.
#[derive(Debug)]
pub struct Zone {
    pub origin: LowerName,
    /// The origin in lowercase wire form, the suffix every owner key ends with.
    origin_wire: Box<[u8]>,
    /// Lowercase wire owner name -> node. Empty non-terminals are present with no RRsets, so
    /// "does this name exist" (NXDOMAIN versus NODATA, RFC 4592 wildcards) is one hash lookup.
    nodes: Nodes,
    /// The SOA with its TTL lowered to the SOA MINIMUM for negative answers (RFC 2308 section 3).
    negative_soa: Record,
    /// Label count of the origin, where the downward walk of a lookup starts.
    origin_labels: usize,
    /// Problems that do not stop the zone (no apex NS, a default TTL), for `check` and logs.
    pub warnings: Vec<ZoneError>,
}

#[derive(Debug, Default)]
pub struct NameNode {
    /// Few per name, so a Vec scanned by type beats a map.
    pub rrsets: Vec<RrSet>,
    /// NS at a name other than the apex: a delegation point (zone cut).
    pub cut: bool,
}

#[derive(Debug)]
pub struct RrSet {
    pub rtype: RecordType,
    /// The zone file's records: the answer when no geo selector matches.
    pub data: RrData,
    /// Geo alternatives or a node pool from the zone's policy file, if any.
    pub policy: Option<Box<RrsetPolicy>>,
}

/// Bytes of an RRset up to which each added record is checked against the others at once.
const SCAN_LIMIT: usize = 8192;

/// The records of one RRset in wire form: `[ttl: u32][length: u16][rdata]` after each other.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RrData(Vec<u8>);

impl RrData {
    /// Each record's TTL and rdata.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8])> {
        let mut rest = self.0.as_slice();
        std::iter::from_fn(move || {
            let (head, tail) = rest.split_at_checked(6)?;
            let ttl = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
            let (rdata, tail) = tail.split_at_checked(len)?;
            rest = tail;
            Some((ttl, rdata))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Adds a record unless the same rdata is there already (RFC 2181 section 5: an RRset
    /// has no duplicates). Past [`SCAN_LIMIT`] bytes the scan is left to [`RrData::dedup`],
    /// which the zone's builder runs once at the end (no quadratic loads of huge RRsets).
    fn push(&mut self, ttl: u32, rdata: &[u8]) {
        let small = self.0.len() < SCAN_LIMIT;
        if small && self.iter().any(|(_, existing)| existing == rdata) {
            return;
        }
        if small {
            self.0.reserve_exact(6 + rdata.len());
        }
        self.0.extend_from_slice(&ttl.to_be_bytes());
        self.0
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.0.extend_from_slice(rdata);
    }

    /// Drops repeated rdata from a set too large for `push` to have checked.
    fn dedup(&mut self) {
        if self.0.len() < SCAN_LIMIT {
            return;
        }
        let mut seen = std::collections::HashSet::new();
        let mut kept = Vec::with_capacity(self.0.len());
        for (ttl, rdata) in self.iter() {
            if seen.insert(rdata) {
                kept.extend_from_slice(&ttl.to_be_bytes());
                kept.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                kept.extend_from_slice(rdata);
            }
        }
        drop(seen);
        self.0 = kept;
    }

    /// The TTL of the first record (policy defaults).
    pub fn first_ttl(&self) -> Option<u32> {
        self.iter().next().map(|(ttl, _)| ttl)
    }
}

impl RrSet {
    /// The records as hickory records owned by `owner`.
    pub fn records(&self, owner: &Name) -> Vec<Record> {
        self.data
            .iter()
            .map(|(ttl, rdata)| to_record(owner, self.rtype, ttl, rdata))
            .collect()
    }
}

impl NameNode {
    pub fn get(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// A hickory record from a stored one. The RFC 1035 types whose rdata names are compressed in
/// answers (NS, CNAME, SOA, PTR, MX) are decoded, and addresses (which policies and tests
/// read); every other type is sent as stored, so its rdata goes out byte for byte (RFC 3597
/// section 4: no compression in later types).
pub fn to_record(owner: &Name, rtype: RecordType, ttl: u32, rdata: &[u8]) -> Record {
    let code = u16::from(rtype);
    let decoded = match rtype {
        RecordType::NS
        | RecordType::CNAME
        | RecordType::SOA
        | RecordType::PTR
        | RecordType::MX
        | RecordType::A
        | RecordType::AAAA => {
            let mut decoder = BinDecoder::new(rdata);
            RData::read(&mut decoder, rtype, Restrict::new(rdata.len() as u16)).ok()
        }
        _ => None,
    };
    let data = decoded.unwrap_or_else(|| RData::Unknown {
        code: RecordType::from(code),
        rdata: if rdata.is_empty() {
            NULL::new()
        } else {
            NULL::with(rdata.to_vec())
        },
    });
    Record::from_rdata(owner.clone(), ttl, data)
}

/// A name from wire form (None when malformed; the reader only stores well-formed ones).
pub fn name_from_wire(wire: &[u8]) -> Option<Name> {
    Name::read(&mut BinDecoder::new(wire)).ok()
}

/// The lowercase wire form of `name`.
pub fn lower_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// Offsets of each label of a wire name, the root's last: `wire[offsets[i]..]` is the name
/// without its first `i` labels.
fn label_offsets(wire: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(8);
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        offsets.push(pos);
        if len == 0 {
            break;
        }
        pos += 1 + usize::from(len);
    }
    offsets
}

/// Whether the wire name `name` is `origin` or below it (both lowercase).
fn in_zone(name: &[u8], origin: &[u8]) -> bool {
    if !name.ends_with(origin) {
        return false;
    }
    let at = name.len() - origin.len();
    let mut pos = 0;
    while pos < at {
        pos += 1 + usize::from(name[pos]);
    }
    pos == at
}

/// Hashes owner keys with xxh3 under a per-process seed: SipHash was a seventh of a large
/// zone's load time, and zone names are not chosen by whoever sends queries anyway.
#[derive(Clone)]
pub struct NameHashing {
    seed: u64,
}

impl Default for NameHashing {
    fn default() -> Self {
        use std::hash::BuildHasher as _;
        Self {
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
        }
    }
}

impl std::hash::BuildHasher for NameHashing {
    type Hasher = NameHasher;
    fn build_hasher(&self) -> NameHasher {
        NameHasher(self.seed)
    }
}

/// See [`NameHashing`].
pub struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Owner name (lowercase wire form) -> node.
type Nodes = HashMap<Box<[u8]>, NameNode, NameHashing>;

impl Zone {
    /// Reads `path` as the master file of `origin` and validates it; returns every problem found.
    pub fn load(path: &Path, origin: &Name) -> Result<Zone, Vec<ZoneError>> {
        let origin_wire = lower_wire(origin);
        let mut builder = Builder::new(origin_wire.clone().into_boxed_slice());
        let report = zonefile::read_file(path, &origin_wire, &mut |record, place| {
            builder.add(record, place).map_err(|e| e.to_string())
        });
        builder.finish(path, origin, report)
    }

    /// Reads `text` as the master file of `origin` (`path` names it in messages).
    pub fn parse(text: &str, path: &Path, origin: &Name) -> Result<Zone, Vec<ZoneError>> {
        let origin_wire = lower_wire(origin);
        let mut builder = Builder::new(origin_wire.clone().into_boxed_slice());
        let report =
            zonefile::read_text(text.as_bytes(), path, &origin_wire, &mut |record, place| {
                builder.add(record, place).map_err(|e| e.to_string())
            });
        builder.finish(path, origin, report)
    }

    pub fn node(&self, name: &LowerName) -> Option<&NameNode> {
        self.nodes.get(lower_wire(name).as_slice())
    }

    pub fn node_mut(&mut self, name: &LowerName) -> Option<&mut NameNode> {
        self.nodes.get_mut(lower_wire(name).as_slice())
    }

    /// The node of a lowercase wire name.
    pub fn node_wire(&self, wire: &[u8]) -> Option<&NameNode> {
        self.nodes.get(wire)
    }

    /// The `rtype` RRset at `name`, created empty (with its node and any empty non-terminals
    /// above it) when the zone file has none: for policies that answer without the zone file's
    /// records. The caller checks that `name` is in the zone and not below a cut.
    pub fn rrset_or_insert(&mut self, name: &LowerName, rtype: RecordType) -> &mut RrSet {
        let wire = lower_wire(name);
        for &offset in label_offsets(&wire).iter().skip(1) {
            let parent = &wire[offset..];
            if !in_zone(parent, &self.origin_wire) || self.nodes.contains_key(parent) {
                break;
            }
            self.nodes.insert(parent.into(), NameNode::default());
        }
        let node = self.nodes.entry(wire.into_boxed_slice()).or_default();
        let index = match node.rrsets.iter().position(|s| s.rtype == rtype) {
            Some(index) => index,
            None => {
                node.rrsets.push(RrSet {
                    rtype,
                    data: RrData::default(),
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

    /// Number of records (for logs).
    pub fn record_count(&self) -> usize {
        self.nodes
            .values()
            .flat_map(|n| &n.rrsets)
            .map(|s| s.data.len())
            .sum()
    }

    /// Finds where `qname` lands in this zone (RFC 1034 section 4.3.2 step 3, RFC 4592,
    /// RFC 6672).
    pub fn find(&self, qname: &LowerName, ds_at_cut: bool) -> Found<'_> {
        self.find_wire(&lower_wire(qname), ds_at_cut)
    }

    /// [`Zone::find`] for a lowercase wire name (NXDOMAIN for one outside the zone). Walks down from the apex one label at a time,
    /// so that a zone cut or a DNAME above `qname` is seen before anything occluded below it.
    /// `ds_at_cut` asks for the parent side of a cut (a DS query at the delegation point is
    /// answered by the parent, RFC 4035 section 3.1.4.1).
    pub fn find_wire(&self, qname: &[u8], ds_at_cut: bool) -> Found<'_> {
        if !in_zone(qname, &self.origin_wire) {
            return Found::NxDomain; // not a name of this zone at all
        }
        let offsets = label_offsets(qname);
        let total = offsets.len() - 1;
        let Some(mut closest) = self.nodes.get(&self.origin_wire) else {
            return Found::NxDomain;
        };
        let mut depth = self.origin_labels;
        while depth < total {
            if closest.get(RecordType::DNAME).is_some() {
                return Found::Dname(closest, depth);
            }
            let name = &qname[offsets[total - depth - 1]..];
            let Some(node) = self.nodes.get(name) else {
                break;
            };
            depth += 1;
            if node.cut && !(ds_at_cut && depth == total) {
                return Found::Delegation(node, depth);
            }
            closest = node;
        }
        if depth == total {
            return Found::Exact(closest);
        }
        // qname does not exist: a wildcard at the closest encloser may synthesize it.
        let encloser = &qname[offsets[total - depth]..];
        if encloser.len() + 2 > wire_name::MAX_NAME {
            return Found::NxDomain;
        }
        let mut wildcard = Vec::with_capacity(encloser.len() + 2);
        wildcard.extend_from_slice(&[1, b'*']);
        wildcard.extend_from_slice(encloser);
        match self.nodes.get(wildcard.as_slice()) {
            Some(node) => Found::Wildcard(node, depth),
            None => Found::NxDomain,
        }
    }
}

/// Where a name lands in a zone.
#[derive(Debug, Clone, Copy)]
pub enum Found<'z> {
    /// The name exists (possibly as an empty non-terminal).
    Exact(&'z NameNode),
    /// The name does not exist, but `*.<closest encloser>` does (RFC 4592): that node and the
    /// closest encloser's label count.
    Wildcard(&'z NameNode, usize),
    /// The name is at or below a zone cut: the node holding the NS RRset and its label count.
    Delegation(&'z NameNode, usize),
    /// The name is below a DNAME (RFC 6672): the node holding it and its label count.
    Dname(&'z NameNode, usize),
    NxDomain,
}

/// Labels in `name`, counting a leading `*` (hickory's `num_labels` leaves it out, as RRSIG
/// label counts do, but a literal `*.example.` query is a name of its own).
pub fn label_count(name: &Name) -> usize {
    name.iter().count()
}
