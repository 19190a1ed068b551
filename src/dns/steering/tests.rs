//! Pool entries: answers from a stand-in pool, the fallback, validation, and the rendezvous key.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use super::*;
use crate::dns::lookup::resolve;
use crate::dns::{DnsState, ZoneSet};
use crate::geo::Code;
use crate::geo::{CidrOverride, Geo};

const ZONE: &str = "$ORIGIN s.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 60\n@ NS ns\nns A 127.0.0.1\n\
                    cdn A 10.0.0.1\nalias CNAME cdn\nsub NS ns.sub\nns.sub A 10.0.0.53\n";

const POLICY: &str = r#"
[[rrset]]
name = "cdn"
type = "A"
pool = "cluster"

[[rrset]]
name = "v6.cdn"
type = "AAAA"
pool = "cluster"
count = 3
ttl = 5

[[rrset]]
name = "*.w"
type = "A"
pool = "cluster"
count = 1
"#;

/// One `nearest` call: country, continent, key, family, count.
type Question = (Option<Code>, Option<Code>, Vec<u8>, Family, usize);

/// A pool that answers from a fixed list and remembers what it was asked.
#[derive(Default)]
struct FakePool {
    addrs: Vec<IpAddr>,
    asked: Mutex<Vec<Question>>,
}

impl NodePool for FakePool {
    fn epoch(&self) -> u64 {
        0
    }

    fn nearest(
        &self,
        country: Option<Code>,
        continent: Option<Code>,
        key: &[u8],
        family: Family,
        count: usize,
    ) -> Vec<IpAddr> {
        self.asked
            .lock()
            .unwrap()
            .push((country, continent, key.to_vec(), family, count));
        let matching = self.addrs.iter().filter(|a| family.contains(a));
        matching.take(count).copied().collect()
    }
}

fn state(dir: &Path, policy: &str) -> Result<DnsState, Vec<String>> {
    std::fs::write(dir.join("s.test.zone"), ZONE).unwrap();
    std::fs::write(dir.join("s.test.geo.toml"), policy).unwrap();
    let overrides = [CidrOverride {
        cidr: "127.0.1.0/24".parse().unwrap(),
        name: None,
        country: Some("CN".into()),
        continent: None,
        asn: None,
    }];
    let zones =
        ZoneSet::load_dir(dir).map_err(|e| e.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    Ok(DnsState::new(zones, Geo::load(&[], &overrides).unwrap(), 0))
}

struct Asked {
    rcode: ResponseCode,
    data: Vec<String>,
    ttls: Vec<u32>,
    owners: Vec<String>,
    decision: Option<(String, u8)>,
}

fn ask(
    state: &DnsState,
    pool: Option<&FakePool>,
    name: &str,
    rtype: RecordType,
    client: &str,
) -> Asked {
    let mut client = Client::new(client.parse().unwrap(), &state.geo);
    if let Some(pool) = pool {
        client = client.with_nodes(pool);
    }
    let answer = resolve(
        &state.zones,
        &Name::from_ascii(name).unwrap(),
        rtype,
        &mut client,
    );
    Asked {
        rcode: answer.rcode,
        data: answer.answers.iter().map(|r| r.data.to_string()).collect(),
        ttls: answer.answers.iter().map(|r| r.ttl).collect(),
        owners: answer.answers.iter().map(|r| r.name.to_string()).collect(),
        decision: client
            .decision
            .map(|(label, prefix)| (label.to_string(), prefix)),
    }
}

fn pool(addrs: &[&str]) -> FakePool {
    FakePool {
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        ..FakePool::default()
    }
}

#[test]
fn a_pool_answers_with_the_nodes_for_the_clients_scope() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), POLICY).unwrap();
    let nodes = pool(&["192.0.2.1", "2001:db8::1", "192.0.2.2", "192.0.2.3"]);
    let got = ask(
        &state,
        Some(&nodes),
        "cdn.s.test.",
        RecordType::A,
        "127.0.1.7",
    );
    assert_eq!(got.data, ["192.0.2.1", "192.0.2.2"], "count defaults to 2");
    assert_eq!(got.ttls, [20, 20], "ttl defaults to 20");
    assert_eq!(got.decision, Some(("pool:cluster".into(), 24)));
    let asked = nodes.asked.lock().unwrap().pop().unwrap();
    assert_eq!(asked.0, "CN".parse().ok());
    assert_eq!(asked.1, "AS".parse().ok(), "the continent derives from CN");
    assert_eq!(
        asked.2,
        [127, 0, 1, 0, 24],
        "the key: the client's /24 and its length"
    );
    assert_eq!((asked.3, asked.4), (Family::V4, 2));

    // Every address in the scope gets the same key, so the same answer.
    ask(
        &state,
        Some(&nodes),
        "cdn.s.test.",
        RecordType::A,
        "127.0.1.200",
    );
    assert_eq!(
        nodes.asked.lock().unwrap().pop().unwrap().2,
        [127, 0, 1, 0, 24]
    );

    let got = ask(
        &state,
        Some(&nodes),
        "v6.cdn.s.test.",
        RecordType::AAAA,
        "127.0.1.7",
    );
    assert_eq!(
        (got.data, got.ttls),
        (vec!["2001:db8::1".to_string()], vec![5])
    );
    assert_eq!(nodes.asked.lock().unwrap().pop().unwrap().4, 3);
}

#[test]
fn a_cname_or_a_wildcard_leads_to_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), POLICY).unwrap();
    let nodes = pool(&["192.0.2.1", "192.0.2.2"]);
    let got = ask(
        &state,
        Some(&nodes),
        "alias.s.test.",
        RecordType::A,
        "127.0.1.7",
    );
    assert_eq!(got.data, ["cdn.s.test.", "192.0.2.1", "192.0.2.2"]);
    let got = ask(
        &state,
        Some(&nodes),
        "x.w.s.test.",
        RecordType::A,
        "127.0.1.7",
    );
    assert_eq!(
        (got.data, got.owners),
        (
            vec!["192.0.2.1".to_string()],
            vec!["x.w.s.test.".to_string()]
        )
    );
}

#[test]
fn without_nodes_the_zone_records_answer_else_nodata() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), POLICY).unwrap();
    let empty = pool(&[]);
    for nodes in [None, Some(&empty)] {
        let got = ask(&state, nodes, "cdn.s.test.", RecordType::A, "127.0.1.7");
        assert_eq!(got.data, ["10.0.0.1"]);
        assert_eq!(got.ttls, [20], "the zone's TTL capped at the pool's");
        assert_eq!(
            got.decision,
            Some(("default".into(), 0)),
            "the same for everyone"
        );
        // The policy created v6.cdn: NODATA, not NXDOMAIN.
        let got = ask(
            &state,
            nodes,
            "v6.cdn.s.test.",
            RecordType::AAAA,
            "127.0.1.7",
        );
        assert_eq!((got.rcode, got.data.len()), (ResponseCode::NoError, 0));
    }
    let got = ask(&state, None, "v6.cdn.s.test.", RecordType::A, "127.0.1.7");
    assert_eq!((got.rcode, got.data.len()), (ResponseCode::NoError, 0));
}

#[test]
fn pool_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let policy = "[[rrset]]\nname = \"a\"\ntype = \"A\"\npool = \"edge\"\n\n\
                  [[rrset]]\nname = \"b\"\ntype = \"A\"\npool = \"cluster\"\ncount = 0\n\n\
                  [[rrset]]\nname = \"c\"\ntype = \"TXT\"\npool = \"cluster\"\n\n\
                  [[rrset]]\nname = \"cdn\"\ntype = \"A\"\npool = \"cluster\"\ncontinent = { AS = [\"10.0.0.9\"] }\n\n\
                  [[rrset]]\nname = \"cdn\"\ntype = \"A\"\ncount = 3\ncontinent = { AS = [\"10.0.0.9\"] }\n\n\
                  [[rrset]]\nname = \"x.sub\"\ntype = \"A\"\npool = \"cluster\"\n\n\
                  [[rrset]]\nname = \"alias\"\ntype = \"A\"\npool = \"cluster\"\n\n\
                  [[rrset]]\nname = \"out.example.\"\ntype = \"A\"\npool = \"cluster\"\n";
    let errors = state(dir.path(), policy).err().unwrap();
    let expected = [
        "s.test.geo.toml:1: rrset a A: pool: unknown pool \"edge\" (known: cluster)",
        "s.test.geo.toml:6: rrset b A: count: must be at least 1",
        "s.test.geo.toml:12: rrset c TXT: type: a pool answers A or AAAA, not TXT",
        "s.test.geo.toml:17: rrset cdn A: a pool entry takes no cidr",
        "s.test.geo.toml:23: rrset cdn A: count: only a pool entry has a count",
        "s.test.geo.toml:29: rrset x.sub A: name: x.sub.s.test. is at or below a delegation",
        "s.test.geo.toml:34: rrset alias A: name: alias.s.test. has a CNAME",
        "s.test.geo.toml:39: rrset out.example. A: name: out.example. is outside the zone",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, expected) in errors.iter().zip(expected) {
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    }
}

#[test]
fn keys_cut_the_address_to_the_prefix() {
    let key = |addr: &str, prefix| {
        let (key, len) = subnet_key(addr.parse().unwrap(), prefix);
        key[..len].to_vec()
    };
    assert_eq!(key("198.51.100.77", 24), [198, 51, 100, 0, 24]);
    assert_eq!(key("198.51.100.77", 20), [198, 51, 96, 0, 20]);
    assert_eq!(key("198.51.100.77", 0), [0, 0, 0, 0, 0]);
    assert_eq!(key("198.51.100.77", 32), [198, 51, 100, 77, 32]);
    assert_eq!(key("::ffff:198.51.100.77", 120), key("198.51.100.77", 24));
    let v6 = key("2001:db8:abcd:1234::1", 36);
    assert_eq!(v6[..5], [0x20, 0x01, 0x0d, 0xb8, 0xa0]);
    assert!(v6[5..16].iter().all(|b| *b == 0));
    assert_eq!(v6[16], 36);
}
