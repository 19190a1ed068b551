//! The CIDR override table from `[[geoip.overrides]]`: validated once at load, then matched
//! per query before the databases.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::CidrOverride;
use super::code::Code;
use super::continents::continent_of;
use super::error::GeoError;

/// One validated override.
#[derive(Debug)]
pub(super) struct OverrideEntry {
    /// The network, host bits zero (validation refuses anything else).
    pub net: IpNet,
    /// `GeoScope::matched_override`: the name, else the CIDR text; shared, not copied, per query.
    pub label: Arc<str>,
    /// Wins over the databases when set, as do `continent` and `asn`.
    pub country: Option<Code>,
    /// As configured, else derived from `country`: an override that moves a network to JP
    /// must not keep the database's continent for it.
    pub continent: Option<Code>,
    pub asn: Option<u32>,
}

/// The matching override for an address, and the prefix length an answer built from it (or
/// from the databases, when none matched) may be cached for.
pub(super) struct OverrideMatch<'a> {
    pub entry: Option<&'a OverrideEntry>,
    pub scope_len: u8,
}

/// Overrides sorted most specific first.
///
/// A linear scan rather than a trie: the table holds tens of entries, and the RFC 7871 scope
/// needs the distance from the address to *every* override anyway (an override near the
/// address but not containing it narrows the scope), which a trie walk would not give for free.
#[derive(Debug, Default)]
pub(super) struct OverrideTable {
    /// Longest prefix first, so the first containing entry is the longest match.
    entries: Vec<OverrideEntry>,
}

impl OverrideTable {
    /// Validates every row and reports every problem, each with its config key path.
    pub fn new(rows: &[CidrOverride]) -> Result<OverrideTable, Vec<GeoError>> {
        let mut errors = Vec::new();
        let mut entries = Vec::with_capacity(rows.len());
        let mut seen: HashMap<IpNet, usize> = HashMap::new();
        for (index, row) in rows.iter().enumerate() {
            let mut problem = |field, message: String| {
                errors.push(GeoError::Override {
                    index,
                    field,
                    message,
                })
            };
            let net = row.cidr;
            if net.trunc() != net {
                problem(
                    "cidr",
                    format!("{net} has host bits set; did you mean {}?", net.trunc()),
                );
            } else if let Some(first) = seen.insert(net, index) {
                problem(
                    "cidr",
                    format!("{net} is already listed at geoip.overrides[{first}]"),
                );
            }
            entries.push(entry(row, &mut problem));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.net.prefix_len()));
        Ok(OverrideTable { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn lookup(&self, ip: IpAddr) -> OverrideMatch<'_> {
        let mut found = OverrideMatch {
            entry: None,
            scope_len: 0,
        };
        for entry in &self.entries {
            let Some(common) = common_prefix_len(ip, entry.net) else {
                continue;
            };
            let prefix = entry.net.prefix_len();
            if common >= prefix {
                if found.entry.is_none() {
                    found.entry = Some(entry);
                    found.scope_len = found.scope_len.max(prefix);
                }
            } else {
                // Addresses sharing `common + 1` leading bits with `ip` all miss this entry;
                // a shorter scope would cover some that hit it.
                found.scope_len = found.scope_len.max(common + 1);
            }
        }
        found
    }
}

/// How many leading bits `ip` shares with `net`'s address; `None` across families.
pub fn common_prefix_len(ip: IpAddr, net: IpNet) -> Option<u8> {
    let bits = match (ip, net) {
        (IpAddr::V4(a), IpNet::V4(n)) => (u32::from(a) ^ u32::from(n.addr())).leading_zeros(),
        (IpAddr::V6(a), IpNet::V6(n)) => (u128::from(a) ^ u128::from(n.addr())).leading_zeros(),
        _ => return None,
    };
    // At most 128, so the conversion cannot fail.
    u8::try_from(bits).ok()
}

/// The entry of one row, its fields checked (the CIDR itself is checked by the caller); each
/// problem goes to `problem` with its field.
fn entry(row: &CidrOverride, problem: &mut impl FnMut(&'static str, String)) -> OverrideEntry {
    let net = row.cidr;
    let name = match row.name.as_deref() {
        Some(name) if name.trim().is_empty() => {
            problem("name", "must not be empty (leave it out instead)".into());
            None
        }
        name => name,
    };
    let country = row.country.as_deref().and_then(|text| {
        text.parse::<Code>()
            .map_err(|e| problem("country", e.to_string()))
            .ok()
    });
    let continent = row
        .continent
        .as_deref()
        .and_then(|text| match text.parse::<Code>() {
            Ok(code) if code.is_continent() => Some(code),
            Ok(_) => {
                problem(
                    "continent",
                    format!("{text:?} is not a continent code (AF AN AS EU NA OC SA)"),
                );
                None
            }
            Err(e) => {
                problem("continent", e.to_string());
                None
            }
        });
    if row.name.is_none() && row.country.is_none() && row.continent.is_none() && row.asn.is_none() {
        problem(
            "cidr",
            format!("{net} sets none of name, country, continent, asn"),
        );
    }
    OverrideEntry {
        net,
        label: Arc::from(name.map_or_else(|| net.to_string(), str::to_string)),
        country,
        continent: continent.or_else(|| country.and_then(continent_of)),
        asn: row.asn,
    }
}
