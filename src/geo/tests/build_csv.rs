//! `geoip build`: CSV validation and the shape of the written database.

use std::net::IpAddr;

use super::{messages, temp_db};
use crate::geo::{GeoError, build_mmdb_from_csv, build_mmdb_from_csv_str};

#[test]
fn every_bad_line_is_reported_with_its_number() {
    let csv = "\
# comment
network,country,continent,asn
10.0.0/8,US,NA
10.0.0.0/8,USA,NA
10.1.0.0/16,US,XX
10.2.0.0/16,US,NA,abc
10.3.0.0/16,US

10.4.0.0/16,US,NA
10.4.0.0/16,CA,NA
10.5.0.1/16,US,NA
::ffff:10.0.0.0/104,US,NA
10.6.0.0/16,,,
10.7.0.0/16,US,NA,0
10.8.0.0/16,US,NA,1,2
";
    let errors = build_mmdb_from_csv_str("in.csv", csv).expect_err("bad rows");
    assert_eq!(
        messages(&errors),
        [
            "in.csv:3: invalid network \"10.0.0/8\"",
            "in.csv:4: country: \"USA\" is not a two-letter code",
            "in.csv:5: continent: \"XX\" is not a continent code (AF AN AS EU NA OC SA)",
            "in.csv:6: asn: \"abc\" is not a 32-bit AS number",
            "in.csv:7: expected network,country,continent[,asn], found 2 field(s)",
            "in.csv:10: duplicate network 10.4.0.0/16 (first on line 9)",
            "in.csv:11: 10.5.0.1/16 has host bits set; did you mean 10.5.0.0/16?",
            "in.csv:12: ::ffff:10.0.0.0/104 lies in IPv6 space that MaxMind DB readers map to IPv4 \
             (::ffff:0:0/96, 2001::/32, 2002::/16); write the IPv4 network instead",
            "in.csv:13: row sets none of country, continent, asn",
            "in.csv:14: asn: AS0 is reserved and never originates routes (RFC 7607)",
            "in.csv:15: expected network,country,continent[,asn], found 5 fields",
        ]
    );
}

#[test]
fn empty_and_missing_inputs_are_errors() {
    let errors = build_mmdb_from_csv_str("empty.csv", "# nothing\n\nnetwork,country,continent\n")
        .expect_err("no rows");
    assert_eq!(
        messages(&errors),
        ["empty.csv: no network rows (expected network,country,continent[,asn])"]
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.csv");
    let errors = build_mmdb_from_csv(&missing).expect_err("missing file");
    assert!(
        matches!(errors.as_slice(), [GeoError::Missing { .. }]),
        "{errors:?}"
    );
}

#[test]
fn built_file_reads_back_as_geoip2_country_plus_asn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("in.csv");
    // As a spreadsheet saves it: byte-order mark, header, CRLF.
    let text = "\u{feff}network,country,continent,asn\r\n175.16.199.0/24,CN,AS,4134\r\n\
                2001:218::/32,JP,AS\r\n";
    std::fs::write(&csv, text).expect("write");
    let bytes = build_mmdb_from_csv(&csv).expect("valid CSV");

    // Read it back with maxminddb's own GeoIP2 structs: MaxMind-shaped, not just ours.
    let reader = maxminddb::Reader::from_source(bytes.clone()).expect("parses");
    reader.verify().expect("verifies");
    assert_eq!(reader.metadata().database_type, "edgenode-GeoIP2-Country");
    assert_eq!(reader.metadata().ip_version, 6);
    let ip: IpAddr = "175.16.199.1".parse().expect("address");
    let result = reader.lookup(ip).expect("lookup");
    let country: maxminddb::geoip2::Country = result.decode().expect("decodes").expect("has data");
    assert_eq!(country.country.iso_code, Some("CN"));
    assert_eq!(country.continent.code, Some("AS"));
    let asn: maxminddb::geoip2::Asn = result.decode().expect("decodes").expect("has data");
    assert_eq!(asn.autonomous_system_number, Some(4134));

    let db = temp_db(&bytes);
    let geo = super::load(&[&db.path], &[]);
    let v6 = geo.lookup("2001:218::1".parse().expect("address"));
    assert_eq!(
        (v6.country.map(|c| c.to_string()), v6.asn),
        (Some("JP".into()), None)
    );
}
