//! Authoritative DNS: zones from `<zone>.zone` master files, geo policies from `<zone>.geo.toml`,
//! the lookup algorithm, the request handler, and the answer cache in front of it.

pub mod answer_cache;
mod client;
pub mod handler;
mod lookup;
mod policy;
mod policy_file;
pub mod reader;
pub mod recursion;
pub mod rrl;
pub mod server;
pub mod steering;
mod transport;
mod wire;
mod zone;
pub mod zonefile;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{LowerName, Name};

use crate::geo::Geo;
use answer_cache::AnswerCache;
use zone::Zone;

/// One problem in a zone or policy file, with the line (and column) when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl ZoneError {
    pub fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            column: None,
            message: message.into(),
        }
    }

    /// A problem at a line and column (both 1-based; line 0 means the file as a whole).
    pub fn at(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: (line > 0).then_some(line),
            column: (line > 0 && column > 0).then_some(column),
            message: message.into(),
        }
    }
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{file}:{line}:{column}: {}", self.message),
            (Some(line), None) => write!(f, "{file}:{line}: {}", self.message),
            _ => write!(f, "{file}: {}", self.message),
        }
    }
}

impl std::error::Error for ZoneError {}

/// Every served zone, by origin.
#[derive(Debug, Default)]
pub struct ZoneSet {
    zones: HashMap<LowerName, Zone>,
}

impl ZoneSet {
    /// Loads every `DIR/<origin>.zone` and its optional `DIR/<origin>.geo.toml`; returns every
    /// problem in every file, so that `edgenode check` can list them all at once.
    pub fn load_dir(dir: &Path) -> Result<ZoneSet, Vec<ZoneError>> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            vec![ZoneError::new(
                dir,
                None,
                format!("cannot read zones directory: {e}"),
            )]
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "zone"))
            .collect();
        paths.sort();
        let mut set = ZoneSet::default();
        let mut problems = Vec::new();
        for path in paths {
            match load_zone(&path) {
                Ok(zone) => {
                    set.zones.insert(zone.origin.clone(), zone);
                }
                Err(mut errors) => problems.append(&mut errors),
            }
        }
        let policies = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok());
        for policy in policies.map(|e| e.path()) {
            let Some(origin) = policy
                .file_name()
                .and_then(|n| n.to_str()?.strip_suffix(".geo.toml"))
            else {
                continue;
            };
            let zone_file = dir.join(format!("{origin}.zone"));
            if !zone_file.exists() {
                let msg = format!(
                    "policy file without a zone file ({} is missing)",
                    zone_file.display()
                );
                problems.push(ZoneError::new(&policy, None, msg));
            }
        }
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(problems)
        }
    }

    /// The zone that holds `name`: the longest served origin that `name` is at or under, found
    /// by looking up each ancestor of `name` (a few hash lookups, however many zones).
    /// A DS query for a zone apex belongs to the parent when we serve it too (RFC 4035 3.1.4.1).
    pub fn find(&self, name: &LowerName, ds: bool) -> Option<&Zone> {
        let labels = zone::label_count(name);
        let mut apex_zone = None;
        for depth in (0..=labels).rev() {
            let candidate = if depth == labels {
                self.zones.get(name)
            } else {
                self.zones.get(&LowerName::new(&name.trim_to(depth)))
            };
            match candidate {
                Some(zone) if ds && depth == labels && depth > 0 => apex_zone = Some(zone),
                Some(zone) => return Some(zone),
                None => {}
            }
        }
        apex_zone
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    pub fn origins(&self) -> impl Iterator<Item = &LowerName> {
        self.zones.keys()
    }

    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values()
    }
}

/// Loads `<origin>.zone` and, when present beside it, `<origin>.geo.toml`.
fn load_zone(path: &Path) -> Result<Zone, Vec<ZoneError>> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    // `root.zone` holds the root zone "." (a file cannot be named ".zone" usefully).
    let named = match stem {
        "root" => Ok(Name::root()),
        _ => Name::parse(stem, Some(&Name::root())),
    };
    // A file may say its origin in a leading `$ORIGIN` instead: for names that cannot be file
    // names (too long) or files named otherwise. Only where the file name gives no zone the
    // file's records could be in, so that a leading `$ORIGIN sub.example.` in
    // `example.zone` keeps meaning what it means to NSD and BIND.
    let declared = zonefile::leading_origin(path).and_then(|wire| zone::name_from_wire(&wire));
    let origin = match (named, declared) {
        (Ok(named), Some(declared)) if !named.zone_of(&declared) => declared,
        (Ok(named), _) => named,
        (Err(_), Some(declared)) => declared,
        (Err(e), None) => {
            return Err(vec![ZoneError::new(
                path,
                None,
                format!(
                    "file name is not a zone name ({e}): name the file <zone>.zone or start it \
                     with $ORIGIN <zone>."
                ),
            )]);
        }
    };
    let mut zone = Zone::load(path, &origin)?;
    let policy = path.with_file_name(format!("{stem}.geo.toml"));
    if policy.exists() {
        let problems = policy_file::apply_policy_file(&mut zone, &origin, &policy);
        if !problems.is_empty() {
            return Err(problems);
        }
    }
    Ok(zone)
}

/// What one reload swaps in atomically: the zones with their policies, the GeoIP data, and
/// the answer cache built from them (a reload starts with an empty one).
pub struct DnsState {
    pub zones: ZoneSet,
    pub geo: Geo,
    pub answers: AnswerCache,
}

impl DnsState {
    /// With a standalone answer cache of at most `answer_cache_entries` entries (0: off),
    /// outside the cache core: for tests, benches and tools.
    pub fn new(zones: ZoneSet, geo: Geo, answer_cache_entries: usize) -> DnsState {
        DnsState::with_answers(zones, geo, AnswerCache::new(answer_cache_entries))
    }

    /// With the given answer cache (the node's: `AnswerCache::with_core`).
    pub fn with_answers(zones: ZoneSet, geo: Geo, answers: AnswerCache) -> DnsState {
        DnsState {
            zones,
            geo,
            answers,
        }
    }
}
