//! Reading `<zone>.geo.toml`: each `[[rrset]]` entry becomes the [`RrsetPolicy`] of one RRset
//! of the zone, geo alternatives here and pool entries in [`pool`].
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
//! Instead of selectors, an A or AAAA entry may name a pool of nodes (`pool = "cluster"`,
//! with `count` and `ttl`; see [`super::steering`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use ipnet::IpNet;
use serde::Deserialize;

use super::ZoneError;
use super::client::DEFAULT_LABEL;
use super::policy::{GeoRrset, RrsetPolicy, Selection};
use super::zone::{Zone, lower_wire, to_record};
use super::zonefile;
use crate::geo::{CONTINENTS, Code};

mod pool;

/// What is wrong with one `[[rrset]]` entry; shown after `<file>:<line>: rrset <name> <type>: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RrsetProblem {
    #[error("name: {0}")]
    Name(String),
    #[error("type: {0}")]
    Type(String),
    #[error("count: only a pool entry has a count")]
    CountWithoutPool,
    #[error("the zone file has no {owner} {rtype} records; they are the default answer, add them")]
    NoZoneRecords { owner: String, rtype: RecordType },
    /// One alternative (`cidr."10.0.0.0/8"`, `country.CN`...): its key or its records.
    #[error("{kind}.{key}: {message}")]
    Alternative {
        kind: &'static str,
        key: String,
        message: String,
    },
    #[error("pool: unknown pool {pool:?} (known: {known})")]
    UnknownPool { pool: String, known: String },
    #[error("type: a pool answers A or AAAA, not {0}")]
    PoolType(String),
    #[error("count: must be at least 1")]
    ZeroCount,
    #[error("a pool entry takes no cidr, asn, country, continent or default (the pool decides)")]
    PoolSelectors,
    #[error("name: {owner} is outside the zone {zone}")]
    OutsideZone { owner: String, zone: String },
    #[error("name: {0} is at or below a delegation")]
    BelowDelegation(String),
    #[error("name: {0} has a CNAME, which allows no other data")]
    BesideCname(String),
}

/// An alternative's problem.
fn alternative(kind: &'static str, key: &str, message: impl ToString) -> RrsetProblem {
    RrsetProblem::Alternative {
        kind,
        key: key.to_string(),
        message: message.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    rrset: Vec<toml::Spanned<RrsetSpec>>,
}

type Alternatives = BTreeMap<String, Vec<String>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RrsetSpec {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    ttl: Option<u32>,
    /// A pool of nodes answers instead of fixed records (only "cluster" today).
    pool: Option<String>,
    /// Pool entries: nodes per answer at most.
    count: Option<u32>,
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
    fn has_selectors(&self) -> bool {
        !(self.cidr.is_empty()
            && self.asn.is_empty()
            && self.country.is_empty()
            && self.continent.is_empty()
            && self.default.is_none())
    }
}

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
        let mut err = |problem: RrsetProblem| {
            let msg = format!("rrset {} {}: {problem}", spec.name, spec.rtype);
            problems.push(ZoneError::new(path, line, msg));
        };
        let attached = if spec.pool.is_some() {
            pool::attach_pool(zone, origin, &spec)
        } else {
            attach(zone, origin, &spec)
        };
        if let Err(msg) = attached {
            msg.into_iter().for_each(&mut err);
        }
    }
    problems
}

fn attach(zone: &mut Zone, origin: &Name, spec: &RrsetSpec) -> Result<(), Vec<RrsetProblem>> {
    let owner = Name::parse(&spec.name, Some(origin))
        .map_err(|e| vec![RrsetProblem::Name(e.to_string())])?;
    let rtype = RecordType::from_str(&spec.rtype.to_ascii_uppercase())
        .map_err(|e| vec![RrsetProblem::Type(e.to_string())])?;
    if spec.count.is_some() {
        return Err(vec![RrsetProblem::CountWithoutPool]);
    }
    let lower = LowerName::new(&owner);
    let Some(existing) = zone.node(&lower).and_then(|n| n.get(rtype)) else {
        return Err(vec![RrsetProblem::NoZoneRecords {
            owner: owner.to_string(),
            rtype,
        }]);
    };
    let ttl = spec
        .ttl
        .unwrap_or_else(|| existing.data.first_ttl().unwrap_or(300));
    let build = |kind: &'static str, key: &str, rdata: &[String]| {
        let label: Arc<str> = Arc::from(format!("{kind}:{key}"));
        parse_records(origin, &owner, ttl, rtype, rdata)
            .map(|records| Selection { label, records })
            .map_err(|e| alternative(kind, key, e))
    };
    let mut geo = alternatives(spec, &build)?;
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

/// The geo alternatives of `spec`, each built with `build`; every problem when any.
fn alternatives(spec: &RrsetSpec, build: &Build<'_>) -> Result<GeoRrset, Vec<RrsetProblem>> {
    let mut problems = Vec::new();
    let cidr = selections(&spec.cidr, "cidr", build, &mut problems, |key| {
        let net = key
            .parse::<IpNet>()
            .map_err(|e| alternative("cidr", key, e))?;
        Ok(net.trunc())
    });
    let asn = selections(&spec.asn, "asn", build, &mut problems, |key| {
        key.trim_start_matches("AS")
            .parse::<u32>()
            .map_err(|_| alternative("asn", key, "not an AS number"))
    });
    let country = selections(&spec.country, "country", build, &mut problems, |key| {
        Code::from_str(key).map_err(|e| alternative("country", key, e))
    });
    let continent = selections(&spec.continent, "continent", build, &mut problems, |key| {
        Code::from_str(key)
            .ok()
            .filter(|c| CONTINENTS.contains(c))
            .ok_or_else(|| alternative("continent", key, "not one of AF AN AS EU NA OC SA"))
    });
    let default = spec.default.as_ref().and_then(|rdata| {
        build("default", "", rdata)
            .map(|sel| Selection {
                label: Arc::clone(&DEFAULT_LABEL),
                ..sel
            })
            .map_err(|e| problems.push(e))
            .ok()
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(GeoRrset {
        cidr,
        asn: asn.into_iter().collect(),
        country: country.into_iter().collect(),
        continent: continent.into_iter().collect(),
        default,
    })
}

/// Builds a selection's records from its kind, key and rdata strings.
type Build<'a> = dyn Fn(&'static str, &str, &[String]) -> Result<Selection, RrsetProblem> + 'a;

/// The selections of one kind (`cidr`, `asn`...), keyed by `parse_key`; problems go to
/// `problems`, in the file's order.
fn selections<K>(
    entries: &BTreeMap<String, Vec<String>>,
    kind: &'static str,
    build: &Build<'_>,
    problems: &mut Vec<RrsetProblem>,
    parse_key: impl Fn(&str) -> Result<K, RrsetProblem>,
) -> Vec<(K, Selection)> {
    let mut built = Vec::new();
    for (key, rdata) in entries {
        match parse_key(key).and_then(|k| Ok((k, build(kind, key, rdata)?))) {
            Ok(entry) => built.push(entry),
            Err(e) => problems.push(e),
        }
    }
    built
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
