//! GeoIP: client address -> [`GeoScope`] (country, continent, ASN) from MaxMind DB files and a
//! CIDR override table.
//!
//! - [`Geo::load`] reads and fully verifies every database and validates the overrides,
//!   reporting every problem at once; the result is immutable and shared behind an `Arc`
//!   (a reload builds a new `Geo` and swaps it in).
//! - [`Geo::lookup`] is the per-query hot path: no locks, no allocation.
//! - [`build_mmdb_from_csv`] is `edgenode geoip build`: a CSV of networks to a MaxMind DB that
//!   this module and MaxMind's own readers understand.
//!
//! Files: `code` (the two-letter [`Code`]), `continents` (country -> continent), `mmdb` (one
//! database and its schema-tolerant record decoding), `verify` (full file verification),
//! `overrides` (the CIDR table), `build` (CSV -> MMDB), `error`.

mod build;
mod code;
mod continents;
mod error;
mod mmdb;
mod overrides;
#[cfg(test)]
mod tests;
mod verify;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use build::{build_mmdb_from_csv, build_mmdb_from_csv_str};
pub use code::{CONTINENTS, Code, CodeError};
pub use continents::continent_of;
pub use error::GeoError;
pub use overrides::common_prefix_len;

use mmdb::Database;
use overrides::OverrideTable;

/// What edgenode knows about one client address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoScope {
    /// ISO 3166 country: the override's, else the first database's that has one.
    pub country: Option<Code>,
    /// Continent code, given or derived from the country, override first as for `country`.
    pub continent: Option<Code>,
    /// Autonomous system number, override first as for `country`.
    pub asn: Option<u32>,
    /// Name (or CIDR text when unnamed) of the CIDR override that matched, if any.
    pub matched_override: Option<Arc<str>>,
    /// The RFC 7871 ECS scope prefix: every address sharing this many leading bits with the
    /// looked-up one gets the same `GeoScope`. It is the longest of the networks consulted (the
    /// matched override's CIDR and the MMDB network of each database consulted, whether or not
    /// it had data there), raised where needed so that no override the address misses lies
    /// inside it. 0 only when nothing can tell addresses apart (no databases, no overrides
    /// of this address family).
    pub prefix_len: u8,
}

/// One row of the CIDR override table from the config (`[[geoip.overrides]]`).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CidrOverride {
    /// The network, without host bits (`10.0.0.0/8`, not `10.0.0.1/8`).
    pub cidr: ipnet::IpNet,
    /// Reported as `GeoScope::matched_override`; the CIDR text stands in when absent.
    pub name: Option<String>,
    /// Two letters, any case; when `continent` is absent it is derived from this.
    pub country: Option<String>,
    /// One of AF AN AS EU NA OC SA.
    pub continent: Option<String>,
    pub asn: Option<u32>,
}

/// Loaded GeoIP state; immutable after load, shared behind an Arc by the caller.
pub struct Geo {
    /// In configured order: each field comes from the first database that has it.
    databases: Vec<Database>,
    /// Consulted before the databases; the fields an override sets win.
    overrides: OverrideTable,
}

impl Geo {
    /// Loads every MMDB file (in order) and validates the overrides; returns EVERY problem found.
    pub fn load(files: &[PathBuf], overrides: &[CidrOverride]) -> Result<Geo, Vec<GeoError>> {
        let mut errors = Vec::new();
        let mut databases = Vec::with_capacity(files.len());
        for path in files {
            match Database::load(path) {
                Ok(db) => databases.push(db),
                Err(e) => errors.push(e),
            }
        }
        let overrides = OverrideTable::new(overrides).unwrap_or_else(|mut problems| {
            errors.append(&mut problems);
            OverrideTable::default()
        });
        if errors.is_empty() {
            Ok(Geo {
                databases,
                overrides,
            })
        } else {
            Err(errors)
        }
    }

    /// No databases and no overrides: every lookup is an empty scope.
    pub fn empty() -> Geo {
        Geo {
            databases: Vec::new(),
            overrides: OverrideTable::default(),
        }
    }

    /// Hot path (per DNS query with a geo policy): no locks, no heap allocation.
    ///
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports for an
    /// IPv4 client) is looked up as the IPv4 address, so IPv4 overrides and databases without
    /// the mapped alias still apply; its `prefix_len` stays in IPv6 terms (96 + the IPv4 one).
    pub fn lookup(&self, ip: IpAddr) -> GeoScope {
        if let IpAddr::V6(v6) = ip
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            let mut scope = self.lookup_canonical(IpAddr::V4(v4));
            scope.prefix_len += 96;
            return scope;
        }
        self.lookup_canonical(ip)
    }

    fn lookup_canonical(&self, ip: IpAddr) -> GeoScope {
        let found = self.overrides.lookup(ip);
        let mut scope = GeoScope {
            prefix_len: found.scope_len,
            ..GeoScope::default()
        };
        if let Some(entry) = found.entry {
            scope.country = entry.country;
            scope.continent = entry.continent;
            scope.asn = entry.asn;
            scope.matched_override = Some(Arc::clone(&entry.label));
        }
        for db in &self.databases {
            if scope.country.is_some() && scope.continent.is_some() && scope.asn.is_some() {
                break;
            }
            let answer = db.lookup(ip);
            scope.prefix_len = scope.prefix_len.max(answer.prefix_len);
            scope.country = scope.country.or(answer.country);
            scope.continent = scope.continent.or(answer.continent);
            scope.asn = scope.asn.or(answer.asn);
        }
        scope
    }

    /// One line per loaded database for startup logs: path, database_type, node count, build epoch.
    pub fn describe(&self) -> Vec<String> {
        self.databases.iter().map(Database::describe).collect()
    }
}

impl fmt::Debug for Geo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Geo")
            .field("databases", &self.describe())
            .field("overrides", &self.overrides.len())
            .finish()
    }
}
