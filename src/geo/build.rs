//! `edgenode geoip build`: CSV rows `network,country,continent[,asn]` to a MaxMind DB file.
//!
//! The records are shaped like GeoIP2 Country plus GeoLite2 ASN
//! (`{"country":{"iso_code":"CN"},"continent":{"code":"AS"},"autonomous_system_number":4134}`),
//! so MaxMind's readers understand the file as well as ours.

use std::collections::HashMap;
use std::path::Path;

use ipnet::IpNet;
use mmdb_writer::{Value, Writer};

use super::code::Code;
use super::continents::continent_of;
use super::error::GeoError;

/// Names the database to readers (`metadata.database_type`).
const DATABASE_TYPE: &str = "edgenode-GeoIP2-Country";

/// IPv6 space that MMDB IPv6 trees alias to the IPv4 subtree; rows there would be unreachable,
/// so they are refused with a hint rather than left to the writer's terse error.
const ALIASED: [&str; 3] = ["::ffff:0:0/96", "2001::/32", "2002::/16"];

/// One validated CSV row.
struct Row {
    line: usize,
    net: IpNet,
    country: Option<Code>,
    continent: Option<Code>,
    asn: Option<u32>,
}

/// `edgenode geoip build`: parse CSV rows and return the bytes of a MaxMind DB file.
pub fn build_mmdb_from_csv(csv_path: &Path) -> Result<Vec<u8>, Vec<GeoError>> {
    let text = std::fs::read_to_string(csv_path).map_err(|source| {
        vec![match source.kind() {
            std::io::ErrorKind::NotFound => GeoError::Missing {
                path: csv_path.into(),
            },
            _ => GeoError::Read {
                path: csv_path.into(),
                source,
            },
        }]
    })?;
    build_mmdb_from_csv_str(&csv_path.display().to_string(), &text)
}

/// Same from text already in memory (tests use it); `label` names the input in errors.
pub fn build_mmdb_from_csv_str(label: &str, text: &str) -> Result<Vec<u8>, Vec<GeoError>> {
    let rows = parse_rows(label, text)?;
    write_rows(label, rows).map_err(|e| vec![e])
}

/// Every row validated; every problem reported with its line.
fn parse_rows(label: &str, text: &str) -> Result<Vec<Row>, Vec<GeoError>> {
    let aliased: Vec<IpNet> = ALIASED.iter().filter_map(|n| n.parse().ok()).collect();
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut first_line: HashMap<IpNet, usize> = HashMap::new();
    let mut seen_data = false;
    // Spreadsheet exports often start with a byte-order mark; it is not part of the header.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let is_first = !seen_data;
        seen_data = true;
        if is_first
            && content
                .get(..7)
                .is_some_and(|w| w.eq_ignore_ascii_case("network"))
        {
            continue;
        }
        let mut problems = Vec::new();
        let row = parse_row(line, content, &aliased, &mut problems);
        if let Some(row) = row {
            if let Some(first) = first_line.insert(row.net, line) {
                problems.push(format!(
                    "duplicate network {} (first on line {first})",
                    row.net
                ));
            } else if problems.is_empty() {
                rows.push(row);
            }
        }
        errors.extend(problems.into_iter().map(|message| GeoError::CsvRow {
            label: label.to_string(),
            line,
            message,
        }));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if rows.is_empty() {
        return Err(vec![GeoError::CsvEmpty {
            label: label.to_string(),
        }]);
    }
    Ok(rows)
}

/// Parses one data line; pushes a message per problem. Returns the row when its network is
/// valid (so duplicates can still be reported), even if other fields are not.
fn parse_row(
    line: usize,
    content: &str,
    aliased: &[IpNet],
    problems: &mut Vec<String>,
) -> Option<Row> {
    let fields: Vec<&str> = content.split(',').map(str::trim).collect();
    let [network, country, continent, rest @ ..] = fields.as_slice() else {
        problems.push(format!(
            "expected network,country,continent[,asn], found {} field(s)",
            fields.len()
        ));
        return None;
    };
    let asn_text = match rest {
        [] => "",
        [asn] => *asn,
        _ => {
            problems.push(format!(
                "expected network,country,continent[,asn], found {} fields",
                fields.len()
            ));
            return None;
        }
    };
    let country = parse_code(country, "country", problems);
    let continent = parse_code(continent, "continent", problems);
    if let Some(code) = continent.filter(|c| !c.is_continent()) {
        problems.push(format!(
            "continent: {:?} is not a continent code (AF AN AS EU NA OC SA)",
            code.as_str()
        ));
    }
    let asn = parse_asn(asn_text, problems);
    if country.is_none() && continent.is_none() && asn.is_none() && problems.is_empty() {
        problems.push("row sets none of country, continent, asn".into());
    }
    let net = parse_net(network, aliased, problems)?;
    Some(Row {
        line,
        net: net.trunc(),
        country,
        continent: continent.or_else(|| country.and_then(continent_of)),
        asn,
    })
}

/// The row's network; a problem when it has host bits set or lies where readers map to IPv4
/// (returned all the same, so that duplicates can still be reported); None when invalid.
fn parse_net(network: &str, aliased: &[IpNet], problems: &mut Vec<String>) -> Option<IpNet> {
    let net = match network.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => {
            problems.push(format!("invalid network {network:?}"));
            return None;
        }
    };
    if net.trunc() != net {
        problems.push(format!(
            "{net} has host bits set; did you mean {}?",
            net.trunc()
        ));
    } else if aliased.iter().any(|a| a.contains(&net)) {
        problems.push(format!(
            "{net} lies in IPv6 space that MaxMind DB readers map to IPv4 \
             (::ffff:0:0/96, 2001::/32, 2002::/16); write the IPv4 network instead"
        ));
    }
    Some(net)
}

fn parse_code(text: &str, what: &str, problems: &mut Vec<String>) -> Option<Code> {
    if text.is_empty() {
        return None;
    }
    text.parse::<Code>()
        .map_err(|e| problems.push(format!("{what}: {e}")))
        .ok()
}

/// Plain digits, or with the customary `AS` prefix.
fn parse_asn(text: &str, problems: &mut Vec<String>) -> Option<u32> {
    if text.is_empty() {
        return None;
    }
    let digits = text
        .strip_prefix("AS")
        .or_else(|| text.strip_prefix("as"))
        .unwrap_or(text);
    match digits.parse::<u32>() {
        Ok(0) => {
            problems.push("asn: AS0 is reserved and never originates routes (RFC 7607)".into());
            None
        }
        Ok(asn) => Some(asn),
        Err(_) => {
            problems.push(format!("asn: {text:?} is not a 32-bit AS number"));
            None
        }
    }
}

fn write_rows(label: &str, mut rows: Vec<Row>) -> Result<Vec<u8>, GeoError> {
    let write_error = |source| GeoError::Write {
        label: label.to_string(),
        source,
    };
    let mut writer = Writer::builder(DATABASE_TYPE)
        .description(&[(
            "en",
            "edgenode GeoIP database built from CSV by `edgenode geoip build`",
        )])
        .build();
    // The writer lets later inserts win; inserting broad networks first makes the most specific
    // row win wherever rows overlap, whatever their order in the file.
    rows.sort_by_key(|row| match row.net {
        IpNet::V4(n) => 96 + n.prefix_len(),
        IpNet::V6(n) => n.prefix_len(),
    });
    for row in rows {
        let mut record = Vec::with_capacity(3);
        if let Some(country) = row.country {
            record.push((
                "country",
                Value::map([("iso_code", Value::from(country.as_str()))]),
            ));
        }
        if let Some(continent) = row.continent {
            record.push((
                "continent",
                Value::map([("code", Value::from(continent.as_str()))]),
            ));
        }
        if let Some(asn) = row.asn {
            record.push(("autonomous_system_number", Value::from(asn)));
        }
        writer
            .insert_value(row.net, Value::map(record))
            .map_err(|source| GeoError::CsvRow {
                label: label.to_string(),
                line: row.line,
                message: format!("cannot insert {}: {source}", row.net),
            })?;
    }
    writer.to_bytes().map_err(write_error)
}
