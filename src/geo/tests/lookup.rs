//! Lookups: CSV-built databases, flat and odd schemas, several files, overrides, validation.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use mmdb_writer::{Value, Writer};

use super::{csv_db, load, messages, temp_db};
use crate::geo::{CidrOverride, Code, Geo, GeoScope};

const FIXTURE: &str = "\
# networks for the lookup tests
network,country,continent,asn
175.16.199.0/24,CN,AS,4134
81.2.69.128/26,SE,EU,1257
81.2.69.0/24,GB,EU
2001:218::/32,JP,AS,2516
2a02:ff00::/24,IT,,
203.0.113.0/24,,,AS64500
";

fn code(text: &str) -> Code {
    text.parse().expect("test code")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn scope(
    country: Option<&str>,
    continent: Option<&str>,
    asn: Option<u32>,
    prefix_len: u8,
) -> GeoScope {
    GeoScope {
        country: country.map(code),
        continent: continent.map(code),
        asn,
        matched_override: None,
        prefix_len,
    }
}

fn with_override(mut scope: GeoScope, name: &str) -> GeoScope {
    scope.matched_override = Some(Arc::from(name));
    scope
}

fn row(cidr: &str) -> CidrOverride {
    CidrOverride {
        cidr: cidr.parse().expect("test CIDR"),
        name: None,
        country: None,
        continent: None,
        asn: None,
    }
}

fn writer() -> Writer {
    Writer::builder("test-flat")
        .description(&[("en", "test")])
        .build()
}

fn net(text: &str) -> IpNet {
    text.parse().expect("test network")
}

#[test]
fn csv_database_answers_v4_and_v6() {
    let db = csv_db(FIXTURE);
    let geo = load(&[&db.path], &[]);
    let cases = [
        (
            "175.16.199.1",
            scope(Some("CN"), Some("AS"), Some(4134), 24),
        ),
        // The /26 splits the /24: the rest of the lower half is one /25.
        ("81.2.69.1", scope(Some("GB"), Some("EU"), None, 25)),
        ("81.2.69.130", scope(Some("SE"), Some("EU"), Some(1257), 26)),
        ("2001:218::1", scope(Some("JP"), Some("AS"), Some(2516), 32)),
        // The CSV left the continent empty: derived from IT.
        ("2a02:ff00::1", scope(Some("IT"), Some("EU"), None, 24)),
        ("203.0.113.9", scope(None, None, Some(64500), 24)),
        // IPv4-mapped IPv6 reaches the IPv4 data through the writer's alias.
        (
            "::ffff:175.16.199.1",
            scope(Some("CN"), Some("AS"), Some(4134), 120),
        ),
    ];
    for (addr, want) in cases {
        assert_eq!(geo.lookup(ip(addr)), want, "{addr}");
    }
    let miss = geo.lookup(ip("192.0.2.1"));
    assert_eq!((miss.country, miss.continent, miss.asn), (None, None, None));
    assert!(
        (1..=32).contains(&miss.prefix_len),
        "a miss is scoped to its empty network"
    );
    assert_eq!(Geo::empty().lookup(ip("175.16.199.1")), GeoScope::default());
}

#[test]
fn flat_and_odd_schemas_decode_field_by_field() {
    let mut w = writer();
    let records = [
        (
            "192.0.2.0/25",
            Value::map([("country_code", Value::from("JP"))]),
        ),
        // A string ASN (as some vendors write it) is ignored; the country still counts.
        (
            "192.0.2.128/25",
            Value::map([
                ("country_code", Value::from("fr")),
                ("autonomous_system_number", Value::from("AS3215")),
            ]),
        ),
        (
            "198.51.100.0/24",
            Value::map([
                ("country", Value::from("BR")),
                ("autonomous_system_number", Value::from(28573_u16)),
                ("continent_code", Value::from("SA")),
            ]),
        ),
        (
            "2001:db8::/32",
            Value::map([
                (
                    "registered_country",
                    Value::map([("iso_code", Value::from("NZ"))]),
                ),
                ("continent", Value::map([("code", Value::from("XX"))])),
                ("autonomous_system_number", Value::from(9500_u64)),
                ("location", Value::map([("latitude", Value::from(1.5_f64))])),
            ]),
        ),
    ];
    for (network, value) in records {
        w.insert_value(net(network), value).expect("insert");
    }
    let db = temp_db(&w.to_bytes().expect("serialize"));
    let geo = load(&[&db.path], &[]);
    let cases = [
        ("192.0.2.1", scope(Some("JP"), Some("AS"), None, 25)),
        ("192.0.2.129", scope(Some("FR"), Some("EU"), None, 25)),
        (
            "198.51.100.7",
            scope(Some("BR"), Some("SA"), Some(28573), 24),
        ),
        // registered_country as the fallback; a bogus continent is replaced by the derived one.
        ("2001:db8::1", scope(Some("NZ"), Some("OC"), Some(9500), 32)),
    ];
    for (addr, want) in cases {
        assert_eq!(geo.lookup(ip(addr)), want, "{addr}");
    }
}

#[test]
fn fields_come_from_the_first_file_that_has_them() {
    let country = csv_db("198.51.100.0/24,FR,EU\n");
    let mut w = writer();
    w.insert_value(
        net("198.51.100.0/25"),
        Value::map([
            ("country_code", Value::from("DE")),
            ("autonomous_system_number", Value::from(3320_u32)),
        ]),
    )
    .expect("insert");
    let asn = temp_db(&w.to_bytes().expect("serialize"));

    let geo = load(&[&country.path, &asn.path], &[]);
    assert_eq!(
        geo.lookup(ip("198.51.100.1")),
        scope(Some("FR"), Some("EU"), Some(3320), 25)
    );
    // The second file has nothing here, but its empty /25 still bounds the scope.
    assert_eq!(
        geo.lookup(ip("198.51.100.200")),
        scope(Some("FR"), Some("EU"), None, 25)
    );

    let geo = load(&[&asn.path, &country.path], &[]);
    assert_eq!(
        geo.lookup(ip("198.51.100.1")),
        scope(Some("DE"), Some("EU"), Some(3320), 25)
    );
    assert_eq!(geo.describe().len(), 2);
    assert!(
        geo.describe()[0].contains("test-flat"),
        "{:?}",
        geo.describe()
    );
}

#[test]
fn overrides_win_field_by_field_and_the_longest_match_wins() {
    let db = csv_db(FIXTURE);
    let overrides = [
        CidrOverride {
            name: Some("lab".into()),
            country: Some("US".into()),
            ..row("175.16.199.0/25")
        },
        CidrOverride {
            continent: Some("EU".into()),
            ..row("10.0.0.0/8")
        },
        CidrOverride {
            name: Some("office".into()),
            asn: Some(64512),
            ..row("10.1.0.0/16")
        },
        CidrOverride {
            name: Some("doc6".into()),
            country: Some("de".into()),
            ..row("2001:218::/48")
        },
    ];
    let geo = load(&[&db.path], &overrides);
    let cases = [
        // Country from the override, its continent derived from it (not the database's AS),
        // the ASN still from the database.
        (
            "175.16.199.1",
            with_override(scope(Some("US"), Some("NA"), Some(4134), 25), "lab"),
        ),
        (
            "175.16.199.200",
            scope(Some("CN"), Some("AS"), Some(4134), 25),
        ),
        (
            "10.1.2.3",
            with_override(scope(None, None, Some(64512), 16), "office"),
        ),
        // 10.2.x shares 14 bits with the office /16: a /15 scope keeps the office out.
        (
            "10.2.3.4",
            with_override(scope(None, Some("EU"), None, 15), "10.0.0.0/8"),
        ),
        // Even far from it, the office /16 inside the /8 forces one more bit.
        (
            "10.200.0.1",
            with_override(scope(None, Some("EU"), None, 9), "10.0.0.0/8"),
        ),
        (
            "2001:218::1",
            with_override(scope(Some("DE"), Some("EU"), Some(2516), 48), "doc6"),
        ),
        (
            "2001:218:1::1",
            scope(Some("JP"), Some("AS"), Some(2516), 48),
        ),
    ];
    for (addr, want) in cases {
        assert_eq!(geo.lookup(ip(addr)), want, "{addr}");
    }
    // Overrides alone (no database) are enough for a useful node.
    let geo = load(&[], &overrides);
    assert_eq!(
        geo.lookup(ip("10.1.2.3")),
        with_override(scope(None, None, Some(64512), 16), "office")
    );
}

#[test]
fn every_override_problem_is_reported_with_its_key_path() {
    let rows = [
        CidrOverride {
            country: Some("XYZ".into()),
            ..row("10.0.0.1/8")
        },
        CidrOverride {
            country: Some("US".into()),
            ..row("10.0.0.0/8")
        },
        CidrOverride {
            continent: Some("XX".into()),
            ..row("10.0.0.0/8")
        },
        CidrOverride {
            name: Some(" ".into()),
            ..row("192.0.2.0/24")
        },
        row("198.51.100.0/24"),
        CidrOverride {
            continent: Some("Europe".into()),
            ..row("2001:db8::/32")
        },
    ];
    let errors = Geo::load(&[], &rows).expect_err("invalid overrides");
    assert_eq!(
        messages(&errors),
        [
            "geoip.overrides[0].cidr: 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?",
            "geoip.overrides[0].country: \"XYZ\" is not a two-letter code",
            "geoip.overrides[2].cidr: 10.0.0.0/8 is already listed at geoip.overrides[1]",
            "geoip.overrides[2].continent: \"XX\" is not a continent code (AF AN AS EU NA OC SA)",
            "geoip.overrides[3].name: must not be empty (leave it out instead)",
            "geoip.overrides[4].cidr: 198.51.100.0/24 sets none of name, country, continent, asn",
            "geoip.overrides[5].continent: \"Europe\" is not a two-letter code",
        ]
    );
}

#[test]
fn overrides_deserialize_strictly() {
    #[derive(serde::Deserialize)]
    struct Table {
        overrides: Vec<CidrOverride>,
    }
    let ok: Table = toml::from_str("[[overrides]]\ncidr = \"10.0.0.0/8\"\ncountry = \"US\"\n")
        .expect("valid override");
    assert_eq!(ok.overrides[0].cidr, net("10.0.0.0/8"));
    assert!(
        toml::from_str::<Table>("[[overrides]]\ncidr = \"10.0.0.0/8\"\ncity = \"x\"\n").is_err()
    );
    assert!(toml::from_str::<Table>("[[overrides]]\ncidr = \"10.0.0/8\"\n").is_err());
}

#[test]
fn load_reports_every_file_and_override_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.mmdb");
    let garbage = dir.path().join("garbage.mmdb");
    std::fs::write(&garbage, b"not a database").expect("write");
    let errors = Geo::load(&[missing.clone(), garbage.clone()], &[row("10.0.0.0/8")])
        .expect_err("nothing here loads");
    let text = messages(&errors);
    assert_eq!(text.len(), 3, "{text:#?}");
    assert_eq!(text[0], format!("{}: file not found", missing.display()));
    assert!(
        text[1].starts_with(&format!("{}: corrupt MaxMind DB: ", garbage.display())),
        "{}",
        text[1]
    );
    assert!(
        text[2].starts_with("geoip.overrides[0].cidr: "),
        "{}",
        text[2]
    );
}

#[test]
fn geo_is_shareable_across_threads_and_dates_render() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Geo>();
    assert_eq!(crate::geo::mmdb::utc_date(0), "1970-01-01");
    assert_eq!(crate::geo::mmdb::utc_date(951_782_400), "2000-02-29");
    assert_eq!(crate::geo::mmdb::utc_date(1_700_000_000), "2023-11-14");
}
