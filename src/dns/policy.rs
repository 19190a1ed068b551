//! Geo answer policies: `<zone>.geo.toml` beside a zone file gives alternative record sets for
//! one owner name and type, chosen by where the client is.
//!
//! ```toml
//! [[rrset]]
//! name = "www"              # relative to the zone, or absolute with a trailing dot
//! type = "A"
//! ttl = 60                  # optional; default: the zone file's TTL for this RRset
//! continent = { AS = ["127.0.1.10"], EU = ["127.0.3.10"] }
//! country = { CN = ["127.0.1.20"] }
//! asn = { "4134" = ["127.0.1.30"] }
//! cidr = { "10.0.0.0/8" = ["127.0.9.1"] }
//! # default = [...]         # optional; otherwise the zone file's own records
//! ```
//!
//! The most specific matching selector wins: cidr (longest prefix), then asn, country,
//! continent, and finally the default.
//!
//! Instead of selectors, an A or AAAA entry may name a pool of nodes (`pool = "cluster"`,
//! with `count` and `ttl`): it is answered with the healthy nodes nearest the client
//! (see [`super::steering`]).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use ipnet::IpNet;
use serde::Deserialize;

use super::ZoneError;
use super::steering::{NodePool, PoolRrset};
use super::zone::{Zone, lower_wire, to_record};
use super::zonefile;
use crate::geo::{CONTINENTS, Code, Geo, GeoScope, common_prefix_len};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    rrset: Vec<toml::Spanned<RrsetSpec>>,
}

type Alternatives = BTreeMap<String, Vec<String>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RrsetSpec {
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) rtype: String,
    pub(super) ttl: Option<u32>,
    /// A pool of nodes answers instead of fixed records (only "cluster" today).
    pub(super) pool: Option<String>,
    /// Pool entries: nodes per answer at most.
    pub(super) count: Option<u32>,
    #[serde(default)]
    cidr: Alternatives,
    #[serde(default)]
    asn: Alternatives,
    #[serde(default)]
    country: Alternatives,
    #[serde(default)]
    continent: Alternatives,
    default: Option<Vec<String>>,
}

impl RrsetSpec {
    /// Whether any geo alternative (or a default) is given.
    pub(super) fn has_selectors(&self) -> bool {
        !(self.cidr.is_empty()
            && self.asn.is_empty()
            && self.country.is_empty()
            && self.continent.is_empty()
            && self.default.is_none())
    }
}

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
    cidr: Vec<(IpNet, Selection)>,
    asn: HashMap<u32, Selection>,
    country: HashMap<Code, Selection>,
    continent: HashMap<Code, Selection>,
    /// Replaces the zone file's records when no selector matches.
    default: Option<Selection>,
}

/// One alternative: the records to answer and the label that metrics and logs show.
#[derive(Debug)]
pub struct Selection {
    /// e.g. "continent:AS"; shared so that counting a decision allocates nothing.
    pub label: Arc<str>,
    pub records: Vec<Record>,
}

/// The querying client as geo policies see it; the GeoIP lookup runs at most once per query
/// and only when a policy needs it.
pub struct Client<'g> {
    pub addr: IpAddr,
    geo: &'g Geo,
    /// Where pool entries find their nodes; None: pool entries answer their fallback.
    pub(super) nodes: Option<&'g dyn NodePool>,
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

    pub(super) fn scope(&mut self) -> &GeoScope {
        let (geo, addr) = (self.geo, self.addr);
        let scope = self.scope.get_or_insert_with(|| geo.lookup(addr));
        self.stable_prefix = self.stable_prefix.max(scope.prefix_len);
        scope
    }

    /// Notes that the answer depends on whether `addr` is inside `net`.
    fn consulted(&mut self, net: &IpNet) -> bool {
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

pub(super) static DEFAULT_LABEL: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from("default"));

/// Reads `path` and attaches its alternatives to the RRsets of `zone`; returns every problem.
pub fn apply_policy_file(zone: &mut Zone, origin: &Name, path: &Path) -> Vec<ZoneError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            return vec![ZoneError::new(
                path,
                None,
                format!("cannot read policy file: {e}"),
            )];
        }
    };
    let file: PolicyFile = match toml::from_str(&text) {
        Ok(file) => file,
        Err(e) => {
            let line = e.span().map(|s| line_of(&text, s.start));
            return vec![ZoneError::new(path, line, e.message().to_string())];
        }
    };
    let mut problems = Vec::new();
    for spanned in file.rrset {
        let line = Some(line_of(&text, spanned.span().start));
        let spec = spanned.into_inner();
        let mut err = |msg: String| {
            let msg = format!("rrset {} {}: {msg}", spec.name, spec.rtype);
            problems.push(ZoneError::new(path, line, msg));
        };
        let attached = if spec.pool.is_some() {
            super::steering::attach_pool(zone, origin, &spec)
        } else {
            attach(zone, origin, &spec)
        };
        if let Err(msg) = attached {
            msg.into_iter().for_each(&mut err);
        }
    }
    problems
}

fn attach(zone: &mut Zone, origin: &Name, spec: &RrsetSpec) -> Result<(), Vec<String>> {
    let owner = Name::parse(&spec.name, Some(origin)).map_err(|e| vec![format!("name: {e}")])?;
    let rtype = RecordType::from_str(&spec.rtype.to_ascii_uppercase())
        .map_err(|e| vec![format!("type: {e}")])?;
    if spec.count.is_some() {
        return Err(vec!["count: only a pool entry has a count".into()]);
    }
    let lower = LowerName::new(&owner);
    let Some(existing) = zone.node(&lower).and_then(|n| n.get(rtype)) else {
        return Err(vec![format!(
            "the zone file has no {owner} {rtype} records; they are the default answer, add them"
        )]);
    };
    let ttl = spec
        .ttl
        .unwrap_or_else(|| existing.data.first_ttl().unwrap_or(300));
    let mut problems = Vec::new();
    let mut geo = GeoRrset::default();
    let build = |kind: &str, key: &str, rdata: &[String]| -> Result<Selection, String> {
        let label: Arc<str> = Arc::from(format!("{kind}:{key}"));
        parse_records(origin, &owner, ttl, rtype, rdata)
            .map(|records| Selection { label, records })
            .map_err(|e| format!("{kind}.{key}: {e}"))
    };
    for (key, rdata) in &spec.cidr {
        let net = key.parse::<IpNet>().map_err(|e| format!("cidr.{key}: {e}"));
        match net.and_then(|net| Ok((net.trunc(), build("cidr", key, rdata)?))) {
            Ok(entry) => geo.cidr.push(entry),
            Err(e) => problems.push(e),
        }
    }
    for (key, rdata) in &spec.asn {
        let asn = key
            .trim_start_matches("AS")
            .parse::<u32>()
            .map_err(|_| format!("asn.{key}: not an AS number"));
        match asn.and_then(|asn| Ok((asn, build("asn", key, rdata)?))) {
            Ok((asn, sel)) => drop(geo.asn.insert(asn, sel)),
            Err(e) => problems.push(e),
        }
    }
    for (key, rdata) in &spec.country {
        let code = Code::from_str(key).map_err(|e| format!("country.{key}: {e}"));
        match code.and_then(|code| Ok((code, build("country", key, rdata)?))) {
            Ok((code, sel)) => drop(geo.country.insert(code, sel)),
            Err(e) => problems.push(e),
        }
    }
    for (key, rdata) in &spec.continent {
        let code = Code::from_str(key)
            .ok()
            .filter(|c| CONTINENTS.contains(c))
            .ok_or_else(|| format!("continent.{key}: not one of AF AN AS EU NA OC SA"));
        match code.and_then(|code| Ok((code, build("continent", key, rdata)?))) {
            Ok((code, sel)) => drop(geo.continent.insert(code, sel)),
            Err(e) => problems.push(e),
        }
    }
    if let Some(rdata) = &spec.default {
        match build("default", "", rdata) {
            Ok(mut sel) => {
                sel.label = Arc::clone(&DEFAULT_LABEL);
                geo.default = Some(sel);
            }
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    geo.cidr
        .sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
    if let Some(set) = zone
        .node_mut(&lower)
        .and_then(|n| n.rrsets.iter_mut().find(|s| s.rtype == rtype))
    {
        set.policy = Some(Box::new(RrsetPolicy::Geo(geo)));
    }
    Ok(())
}

/// Parses rdata in master-file syntax with the zone file reader, so relative names and
/// escapes work as in the zone file.
fn parse_records(
    origin: &Name,
    owner: &Name,
    ttl: u32,
    rtype: RecordType,
    rdata: &[String],
) -> Result<Vec<Record>, String> {
    if rdata.is_empty() {
        return Err("an empty record list (use a NODATA-free alternative instead)".into());
    }
    let origin_wire = lower_wire(origin);
    let mut records = Vec::with_capacity(rdata.len());
    for item in rdata {
        if item.contains(['\n', ';']) {
            return Err(format!("{item:?}: one record's data per string"));
        }
        let line = format!("@ {ttl} IN {rtype} {item}\n");
        let mut parsed = Vec::new();
        let report = zonefile::read_text(
            line.as_bytes(),
            Path::new("policy"),
            &origin_wire,
            &mut |record, _| {
                parsed.push(to_record(owner, rtype, record.ttl, record.rdata));
                Ok(())
            },
        );
        if let Some(error) = report.errors.first() {
            return Err(format!("{item:?}: {}", error.message));
        }
        records.extend(parsed);
    }
    Ok(records)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
