//! Geo policy selection and zone validation, on zones and GeoIP data made here.

use std::net::IpAddr;
use std::path::Path;

use hickory_proto::rr::{Name, RData, RecordType};

use super::client::Client;
use super::lookup::resolve;
use super::{DnsState, ZoneSet};
use crate::geo::{Geo, build_mmdb_from_csv_str};

const ZONE: &str = "$ORIGIN geo.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 60\n@ NS ns\nns A 127.0.0.1\n\
                    a A 10.0.0.1\nb A 10.0.0.1\nc A 10.0.0.1\n*.w A 10.0.0.1\n";

const POLICY: &str = r#"
[[rrset]]
name = "a"
type = "A"
cidr = { "175.16.199.0/25" = ["10.1.0.1"], "175.16.199.0/26" = ["10.1.0.2"] }
asn = { "4134" = ["10.2.0.1"] }
country = { CN = ["10.3.0.1"] }
continent = { AS = ["10.4.0.1"] }

[[rrset]]
name = "b.geo.test."
type = "A"
ttl = 5
country = { CN = ["10.3.0.2"] }
continent = { AS = ["10.4.0.2"] }

[[rrset]]
name = "c"
type = "A"
continent = { EU = ["10.4.0.3"] }
default = ["10.9.9.9"]

[[rrset]]
name = "*.w"
type = "A"
continent = { AS = ["10.4.0.4"] }
"#;

fn state(dir: &Path) -> DnsState {
    std::fs::write(dir.join("geo.test.zone"), ZONE).unwrap();
    std::fs::write(dir.join("geo.test.geo.toml"), POLICY).unwrap();
    let csv = "175.16.199.0/24,CN,AS,4134\n175.16.200.0/24,CN,AS,\n81.2.69.0/24,GB,EU,\n";
    let mmdb = build_mmdb_from_csv_str("t.csv", csv).unwrap();
    std::fs::write(dir.join("geo.mmdb"), mmdb).unwrap();
    DnsState::new(
        ZoneSet::load_dir(dir).unwrap(),
        Geo::load(&[dir.join("geo.mmdb")], &[]).unwrap(),
        0,
    )
}

fn answer(state: &DnsState, name: &str, client: &str) -> (Vec<String>, u32, Option<String>) {
    let addr: IpAddr = client.parse().unwrap();
    let mut client = Client::new(addr, &state.geo);
    let name = Name::from_ascii(name).unwrap();
    let answer = resolve(&state.zones, &name, RecordType::A, &mut client);
    let ips = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    let ttl = answer.answers.first().map_or(0, |r| r.ttl);
    (
        ips,
        ttl,
        client.decision.map(|(label, _)| label.to_string()),
    )
}

#[test]
fn the_most_specific_selector_wins() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let a = |client| answer(&state, "a.geo.test.", client).0;
    assert_eq!(a("175.16.199.1"), ["10.1.0.2"], "the longest cidr");
    assert_eq!(a("175.16.199.100"), ["10.1.0.1"], "the shorter cidr");
    assert_eq!(a("175.16.199.200"), ["10.2.0.1"], "asn before country");
    assert_eq!(a("175.16.200.1"), ["10.3.0.1"], "country before continent");
    assert_eq!(
        a("81.2.69.1"),
        ["10.0.0.1"],
        "no match: the zone file's records"
    );

    let (ips, ttl, label) = answer(&state, "b.geo.test.", "175.16.200.1");
    assert_eq!(
        (ips, ttl, label.as_deref()),
        (vec!["10.3.0.2".to_string()], 5, Some("country:CN"))
    );
    let (ips, _, label) = answer(&state, "c.geo.test.", "175.16.200.1");
    assert_eq!(
        (ips, label.as_deref()),
        (vec!["10.9.9.9".to_string()], Some("default"))
    );
    assert_eq!(answer(&state, "c.geo.test.", "81.2.69.1").0, ["10.4.0.3"]);
    // A name without a policy takes no geo decision at all.
    assert_eq!(answer(&state, "ns.geo.test.", "175.16.200.1").2, None);
}

#[test]
fn wildcard_policies_apply_to_synthesized_names() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    assert_eq!(
        answer(&state, "x.w.geo.test.", "175.16.200.1").0,
        ["10.4.0.4"]
    );
    assert_eq!(answer(&state, "x.w.geo.test.", "81.2.69.1").0, ["10.0.0.1"]);
}

#[test]
fn policy_errors_name_the_file_line_and_selector() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("geo.test.zone"), ZONE).unwrap();
    let policy = "[[rrset]]\nname = \"a\"\ntype = \"A\"\ncountry = { CHINA = [\"10.0.0.1\"] }\n\n\
                  [[rrset]]\nname = \"nothing\"\ntype = \"A\"\ncontinent = { AS = [\"10.0.0.1\"] }\n\n\
                  [[rrset]]\nname = \"b\"\ntype = \"A\"\ncidr = { \"10.0.0.0/8\" = [\"not-an-ip\"] }\n";
    std::fs::write(dir.path().join("geo.test.geo.toml"), policy).unwrap();
    let errors: Vec<String> = ZoneSet::load_dir(dir.path())
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("geo.test.geo.toml:1: rrset a A: country.CHINA"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("geo.test.geo.toml:6: rrset nothing A: the zone file has no"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("geo.test.geo.toml:11: rrset b A: cidr.10.0.0.0/8"),
        "{}",
        errors[2]
    );

    std::fs::write(
        dir.path().join("geo.test.geo.toml"),
        "[[rrset]]\nname = \"a\"\ntype = \"A\"\nbogus = 1\n",
    )
    .unwrap();
    let errors = ZoneSet::load_dir(dir.path()).unwrap_err();
    assert_eq!(errors[0].line, Some(4), "{}", errors[0]);
}

#[test]
fn zone_errors_are_all_listed() {
    let dir = tempfile::tempdir().unwrap();
    let zone = "$ORIGIN z.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\nx CNAME a\nx A 127.0.0.1\ny A 127.0.0.256\n";
    std::fs::write(dir.path().join("z.test.zone"), zone).unwrap();
    let errors: Vec<String> = ZoneSet::load_dir(dir.path())
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let all = errors.join("\n");
    for expected in [
        "z.test.zone:6:5: bad IPv4 address 127.0.0.256",
        "z.test.zone:5:1: x.z.test.: CNAME and other data",
    ] {
        assert!(all.contains(expected), "{expected:?} missing from:\n{all}");
    }
    // No apex NS is a warning (NSD and Knot serve such a zone): loaded, and said.
    let zone = "$ORIGIN z.test.\n@ 60 SOA ns h 1 2 3 4 5\nx A 127.0.0.1\nout.other. A 127.0.0.1\n";
    std::fs::write(dir.path().join("z.test.zone"), zone).unwrap();
    let zones = ZoneSet::load_dir(dir.path()).unwrap();
    let warnings: Vec<String> = zones
        .zones()
        .flat_map(|z| &z.warnings)
        .map(|w| w.to_string())
        .collect();
    let all = warnings.join("\n");
    for expected in [
        "z.test.zone:3:1: warning: no $TTL",
        "warning: z.test.: no NS records",
        "z.test.zone:4:1: warning: out.other. A: owner is outside the zone z.test.: ignored",
    ] {
        assert!(all.contains(expected), "{expected:?} missing from:\n{all}");
    }
    // A second SOA is refused; the error names its line.
    let zone = "$ORIGIN z.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n@ SOA ns h 2 2 3 4 5\n";
    std::fs::write(dir.path().join("z.test.zone"), zone).unwrap();
    let errors = ZoneSet::load_dir(dir.path()).unwrap_err();
    assert_eq!(errors[0].line, Some(5), "{}", errors[0]);
}

#[test]
fn origins_come_from_the_file_name_or_a_leading_origin_line() {
    let dir = tempfile::tempdir().unwrap();
    let body = "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 127.0.0.1\n";
    // Underscores are fine in a file name.
    std::fs::write(dir.path().join("_svc.z.test.zone"), body).unwrap();
    // A name too long for a file name: the file says it in a leading $ORIGIN.
    let long = format!(
        "{}.{}.{}.{}.test.",
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(60),
        "d".repeat(60)
    );
    std::fs::write(
        dir.path().join("long.zone"),
        format!("$ORIGIN {long}\n{body}"),
    )
    .unwrap();
    // A leading $ORIGIN below the file's zone keeps the file's zone (as in NSD and BIND).
    let sub = format!("$ORIGIN sub.y.test.\nw A 127.0.0.2\n$ORIGIN y.test.\n{body}");
    std::fs::write(dir.path().join("y.test.zone"), sub).unwrap();
    let zones = ZoneSet::load_dir(dir.path()).unwrap();
    let mut origins: Vec<String> = zones.origins().map(ToString::to_string).collect();
    origins.sort();
    assert_eq!(origins, ["_svc.z.test.", long.as_str(), "y.test."]);
}

#[test]
fn names_below_a_dname_are_refused_wherever_they_come() {
    let origin = Name::from_ascii("d.test.").unwrap();
    let head = "$ORIGIN d.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 60\n@ NS ns\nns A 127.0.0.1\n";
    for body in [
        "x DNAME y.test.\na.x A 10.0.0.1\n",
        "a.x A 10.0.0.1\nx DNAME y.test.\n",
    ] {
        let text = format!("{head}{body}");
        let errors = super::zone::Zone::parse(&text, Path::new("d.test.zone"), &origin)
            .map(|_| ())
            .unwrap_err();
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 1, "{messages:#?}");
        assert!(
            messages[0].contains(
                "a.x.d.test.: below the DNAME at x.d.test. (RFC 6672 section 2.3: a DNAME owner \
                 has no descendants)"
            ),
            "{messages:#?}"
        );
    }
}
