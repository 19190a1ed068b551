//! Against ../shared/geoip (MaxMind's test databases, known-bad files, a real database);
//! each test skips with a printed reason when that folder is absent.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{load, messages};
use crate::geo::{Code, Geo, continent_of};

fn shared(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/geoip")).join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: {} absent", dir.display());
        None
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn code(text: &str) -> Code {
    text.parse().expect("test code")
}

fn mmdb_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "mmdb"))
        .collect();
    files.sort();
    files
}

/// Lookups across both families and the odd corners (all-zero, all-one, mapped, aliased).
fn probe(geo: &Geo) {
    for first in 0..=255_u8 {
        geo.lookup(IpAddr::from([first, first, 1, 1]));
        geo.lookup(IpAddr::from([
            u16::from(first) << 8 | 0x20,
            0x0218,
            0,
            0,
            0,
            0,
            0,
            1,
        ]));
    }
    for addr in [
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:1.2.3.4",
        "2002:102:304::1",
    ] {
        geo.lookup(ip(addr));
    }
    geo.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
}

fn source_records(path: &Path) -> Vec<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(path).expect("read source.json");
    let list: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(&text).expect("source.json is a list of {network: record}");
    list.into_iter().flatten().collect()
}

#[test]
fn maxmind_country_test_database() {
    let Some(dir) = shared("maxmind-test") else {
        return;
    };
    for file in [
        "GeoIP2-Country-Test.mmdb",
        "GeoIP2-City-Test.mmdb",
        "GeoLite2-City-Test.mmdb",
    ] {
        let geo = load(&[&dir.join(file)], &[]);
        let scope = geo.lookup(ip("81.2.69.161"));
        assert_eq!(
            (scope.country, scope.continent),
            (Some(code("GB")), Some(code("EU"))),
            "{file}"
        );
    }
    let geo = load(&[&dir.join("GeoIP2-Country-Test.mmdb")], &[]);
    for (addr, country, continent) in [
        ("175.16.199.1", "CN", "AS"),
        ("216.160.83.57", "US", "NA"),
        ("81.2.69.161", "GB", "EU"),
        ("2001:218::1", "JP", "AS"),
    ] {
        let scope = geo.lookup(ip(addr));
        assert_eq!(scope.country, Some(code(country)), "{addr}");
        assert_eq!(scope.continent, Some(code(continent)), "{addr}");
        assert!(scope.prefix_len > 0, "{addr}");
    }
    assert_eq!(geo.lookup(ip("175.16.199.1")).prefix_len, 24);
    assert!(
        geo.describe()[0].contains("GeoIP2-Country-Test"),
        "{:?}",
        geo.describe()
    );
}

#[test]
fn maxmind_asn_test_database_matches_its_source() {
    let Some(dir) = shared("maxmind-test") else {
        return;
    };
    let geo = load(&[&dir.join("GeoLite2-ASN-Test.mmdb")], &[]);
    let records = source_records(&dir.join("GeoLite2-ASN-Test.source.json"));
    let mut checked = 0;
    for (network, record) in records {
        let (Ok(net), Some(asn)) = (
            network.parse::<ipnet::IpNet>(),
            record
                .get("autonomous_system_number")
                .and_then(serde_json::Value::as_u64),
        ) else {
            continue;
        };
        let scope = geo.lookup(net.addr());
        assert_eq!(scope.asn.map(u64::from), Some(asn), "{network}");
        // Not always the source's prefix: the writer merges neighbours with equal data.
        assert!(scope.prefix_len > 0, "{network}");
        checked += 1;
    }
    assert!(checked > 0, "no ASN records in the source");
}

#[test]
fn continent_table_agrees_with_maxmind_data() {
    let Some(dir) = shared("maxmind-test") else {
        return;
    };
    for file in [
        "GeoIP2-Country-Test.source.json",
        "GeoLite2-City-Test.source.json",
    ] {
        for (network, record) in source_records(&dir.join(file)) {
            let field = |outer: &str, inner: &str| {
                record
                    .get(outer)?
                    .get(inner)?
                    .as_str()?
                    .parse::<Code>()
                    .ok()
            };
            if let (Some(country), Some(continent)) =
                (field("country", "iso_code"), field("continent", "code"))
            {
                assert_eq!(continent_of(country), Some(continent), "{file} {network}");
            }
        }
    }
}

#[test]
fn real_database_gives_public_resolvers_a_country() {
    let Some(dir) = shared("real") else { return };
    let geo = load(&[&dir.join("geo-whois-asn-country.mmdb")], &[]);
    // The file has no ::ffff:0:0/96 alias; the mapped form works because lookup unmaps it.
    for addr in [
        "1.1.1.1",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
    ] {
        let scope = geo.lookup(ip(addr));
        assert!(scope.country.is_some(), "{addr}: {scope:?}");
        // Flat schema: the continent is derived from the country.
        assert!(scope.continent.is_some(), "{addr}: {scope:?}");
        assert!(scope.prefix_len > 0, "{addr}: {scope:?}");
    }
}

#[test]
fn known_bad_files_never_panic_and_corrupt_ones_are_refused() {
    let Some(dir) = shared("maxmind-bad") else {
        return;
    };
    let must_reject = std::fs::read_to_string(dir.join("MUST-REJECT.txt")).expect("list");
    let must_reject: Vec<&str> = must_reject
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let files = mmdb_files(&dir);
    for name in &must_reject {
        assert!(
            files.iter().any(|f| f.ends_with(name)),
            "{name} listed but absent"
        );
    }
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        match Geo::load(std::slice::from_ref(&path), &[]) {
            Ok(geo) => {
                assert!(
                    !must_reject.contains(&name.as_str()),
                    "{name} loaded but must be refused"
                );
                probe(&geo);
            }
            Err(errors) => {
                for text in messages(&errors) {
                    assert!(text.contains(&name), "error does not name the file: {text}");
                }
            }
        }
    }
}

#[test]
fn maxmind_test_files_load_or_fail_cleanly() {
    let Some(dir) = shared("maxmind-test") else {
        return;
    };
    for path in mmdb_files(&dir) {
        if let Ok(geo) = Geo::load(std::slice::from_ref(&path), &[]) {
            probe(&geo);
        }
    }
}
