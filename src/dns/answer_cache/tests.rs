//! The answer cache against the slow path, at the handler: every query of the differential
//! corpus plus geo and pool names, over UDP with and without EDNS and over TCP, with several
//! spellings, sources and ECS subnets, must come back from the cache byte for byte as a
//! handler without a cache answers it; and the cache must be emptied by reloads and bounded.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, Query as Question};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use prometheus_client::registry::Registry;

use super::*;
use crate::dns::handler::{DnsHandler, Reply};
use crate::dns::steering::{Family, NodePool};
use crate::dns::{DnsState, ZoneSet};
use crate::geo::{Code, Geo, build_mmdb_from_csv_str};
use crate::metrics::DnsMetrics;

const GEO_ZONE: &str = "$ORIGIN geo.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 60\n@ NS ns\n\
                        ns A 127.0.0.1\na A 10.0.0.1\nc A 10.0.0.1\n*.w A 10.0.0.1\n\
                        alias CNAME a\ncdn A 10.0.0.9\n";

/// Nested cidr selectors (a /26 inside a /25 inside the GeoIP /24), a GeoIP-keyed selector,
/// a wildcard, and a pool.
const GEO_POLICY: &str = r#"
[[rrset]]
name = "a"
type = "A"
cidr = { "175.16.199.0/25" = ["10.1.0.1"], "175.16.199.0/26" = ["10.1.0.2"] }
asn = { "4134" = ["10.2.0.1"] }
country = { CN = ["10.3.0.1"] }

[[rrset]]
name = "c"
type = "A"
continent = { EU = ["10.4.0.3"] }
default = ["10.9.9.9"]

[[rrset]]
name = "*.w"
type = "A"
continent = { AS = ["10.4.0.4"] }

[[rrset]]
name = "cdn"
type = "A"
pool = "cluster"
count = 2
"#;

/// A node pool whose answer and epoch the test changes.
#[derive(Default)]
struct TestPool {
    addrs: Mutex<Vec<IpAddr>>,
    epoch: AtomicU64,
}

impl TestPool {
    fn set(&self, addrs: &[&str]) {
        *self.addrs.lock().unwrap() = addrs.iter().map(|a| a.parse().unwrap()).collect();
        self.epoch.fetch_add(1, Ordering::Release);
    }
}

impl NodePool for TestPool {
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn nearest(
        &self,
        _country: Option<Code>,
        _continent: Option<Code>,
        key: &[u8],
        family: Family,
        count: usize,
    ) -> Vec<IpAddr> {
        // Depends on the key (the client's subnet), as rendezvous ordering does.
        let mut addrs: Vec<IpAddr> = self.addrs.lock().unwrap().clone();
        addrs.retain(|a| family.contains(a));
        let turn = key.iter().map(|&b| usize::from(b)).sum::<usize>();
        if !addrs.is_empty() {
            let len = addrs.len();
            addrs.rotate_left(turn % len);
        }
        addrs.truncate(count);
        addrs
    }
}

/// The corpus zones and the geo zone in one directory, with a GeoIP database.
fn zone_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diff");
    for zone in ["diff.test.zone", "other.test.zone"] {
        std::fs::copy(data.join(zone), dir.path().join(zone)).unwrap();
    }
    std::fs::write(dir.path().join("geo.test.zone"), GEO_ZONE).unwrap();
    std::fs::write(dir.path().join("geo.test.geo.toml"), GEO_POLICY).unwrap();
    let csv = "175.16.199.0/24,CN,AS,4134\n175.16.200.0/24,CN,AS,\n81.2.69.0/24,GB,EU,\n\
               2001:db8::/32,DE,EU,\n";
    std::fs::write(
        dir.path().join("geo.mmdb"),
        build_mmdb_from_csv_str("t.csv", csv).unwrap(),
    )
    .unwrap();
    dir
}

fn state(dir: &Path, entries: usize) -> DnsState {
    let zones = ZoneSet::load_dir(dir).unwrap();
    let geo = Geo::load(&[dir.join("geo.mmdb")], &[]).unwrap();
    DnsState::new(zones, geo, entries)
}

fn handler(state: DnsState, pool: &Arc<TestPool>) -> (DnsHandler, Arc<ArcSwap<DnsState>>) {
    let state = Arc::new(ArcSwap::from_pointee(state));
    let nodes = Arc::clone(pool) as Arc<dyn NodePool>;
    let handler = DnsHandler::new(
        Arc::clone(&state),
        None,
        nodes,
        DnsMetrics::default(),
        1232,
        false,
    );
    (handler, state)
}

/// The corpus of the NSD differential test, names as written.
fn corpus() -> Vec<(String, RecordType)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diff/queries.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut queries = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [name, rtype] = fields[..] {
            queries.push((name.to_string(), rtype.parse().unwrap()));
        }
    }
    assert!(queries.len() > 60, "{} queries", queries.len());
    queries
}

/// How one query is sent.
#[derive(Clone, Copy, Debug)]
struct Variant {
    transport: Transport,
    /// The EDNS payload size; None: no OPT record.
    payload: Option<u16>,
    /// An ECS option: address and source prefix.
    subnet: Option<(&'static str, u8)>,
}

fn wire(id: u16, name: &str, rtype: RecordType, variant: Variant) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = false;
    message.add_query(Question::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(payload) = variant.payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        if let Some((addr, prefix)) = variant.subnet {
            let subnet = ClientSubnet::new(addr.parse().unwrap(), prefix, 0);
            edns.options_mut().insert(EdnsOption::Subnet(subnet));
        }
        message.set_edns(edns);
    }
    message.to_vec().unwrap()
}

/// Mixed case: every other letter upper case.
fn mixed(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| match i % 2 {
            0 => c.to_ascii_uppercase(),
            _ => c.to_ascii_lowercase(),
        })
        .collect()
}

struct Pair {
    cached: DnsHandler,
    reference: DnsHandler,
}

impl Pair {
    /// Sends one query to both handlers; asserts identical bytes apart from the ID, and the
    /// same rate limiting class, and returns whether the cached handler answered from its cache.
    fn check(&self, name: &str, rtype: RecordType, variant: Variant, source: &str) -> bool {
        let src = SocketAddr::new(source.parse().unwrap(), 5300);
        let hits_before = self.hits();
        let mut reference = Vec::new();
        let reply = self.reference.respond(
            &wire(0x1111, name, rtype, variant),
            src,
            variant.transport,
            &mut reference,
        );
        let Reply::Send(reference_class) = reply else {
            panic!("{name} {rtype} {variant:?}: no response");
        };
        let mut cached = Vec::new();
        let reply = self.cached.respond(
            &wire(0x2222, name, rtype, variant),
            src,
            variant.transport,
            &mut cached,
        );
        let Reply::Send(class) = reply else {
            panic!("{name} {rtype} {variant:?}: no response from the cached handler");
        };
        assert_eq!(&cached[..2], &[0x22, 0x22], "the query's ID");
        cached[..2].copy_from_slice(&[0x11, 0x11]);
        assert_eq!(
            cached, reference,
            "{name} {rtype} {variant:?} from {source}: the cache differs from the slow path"
        );
        assert_eq!(
            class, reference_class,
            "{name} {rtype} {variant:?}: RRL class"
        );
        self.hits() > hits_before
    }

    fn hits(&self) -> u64 {
        counter(&self.cached, "hit")
    }
}

fn counter(handler: &DnsHandler, result: &'static str) -> u64 {
    let labels = crate::metrics::ResultLabels { result };
    handler.metrics().answer_cache.get_or_create(&labels).get()
}

/// The queries and geo decisions counted, as Prometheus text.
fn counted(handler: &DnsHandler) -> String {
    let mut registry = Registry::default();
    registry.register("q", "", handler.metrics().queries.clone());
    registry.register("g", "", handler.metrics().geo_decisions.clone());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines.join("\n")
}

fn pair(dir: &Path, pool: &Arc<TestPool>) -> Pair {
    Pair {
        cached: handler(state(dir, 65_536), pool).0,
        reference: handler(state(dir, 0), pool).0,
    }
}

const UDP: Variant = Variant {
    transport: Transport::Udp,
    payload: None,
    subnet: None,
};
const UDP_EDNS: Variant = Variant {
    payload: Some(1232),
    ..UDP
};

#[test]
fn every_corpus_query_is_answered_from_the_cache_as_the_slow_path_answers_it() {
    let dir = zone_dir();
    let pool = Arc::new(TestPool::default());
    pool.set(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    let pair = pair(dir.path(), &pool);
    let variants = [
        UDP,
        UDP_EDNS,
        Variant {
            payload: Some(512),
            ..UDP
        },
        Variant {
            transport: Transport::Tcp,
            ..UDP
        },
        Variant {
            transport: Transport::Tcp,
            ..UDP_EDNS
        },
    ];
    for (name, rtype) in corpus() {
        for spelling in [name.clone(), name.to_ascii_lowercase(), mixed(&name)] {
            for variant in variants {
                // The first may already be a hit: the corpus spells some names twice.
                pair.check(&spelling, rtype, variant, "127.0.0.1");
                let second = pair.check(&spelling, rtype, variant, "127.0.0.2");
                assert!(
                    second,
                    "{spelling} {rtype} {variant:?}: not a hit the second time"
                );
            }
        }
    }
    assert_eq!(counted(&pair.cached), counted(&pair.reference));
    assert_eq!(counter(&pair.cached, "uncacheable"), 0);
}

#[test]
fn located_answers_follow_the_client_subnet() {
    let dir = zone_dir();
    let pool = Arc::new(TestPool::default());
    pool.set(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    let pair = pair(dir.path(), &pool);
    let sources = [
        "175.16.199.100", // the /25 selector, outside the /26 inside it
        "175.16.199.1",   // the /26: a cache keyed by the GeoIP /24 would answer the /25's
        "175.16.199.2",
        "175.16.199.101",
        "175.16.199.200", // the asn selector (the /24, outside both cidrs)
        "175.16.200.1",   // country
        "81.2.69.1",      // EU
        "81.2.69.77",
        "198.51.100.1", // nowhere in the database
        "::ffff:175.16.199.1",
        "::ffff:81.2.69.1",
        "2001:db8::1",
        "2001:db8:1::1",
    ];
    let subnets = [
        None,
        Some(("175.16.199.0", 24)),
        Some(("175.16.199.0", 26)),
        Some(("175.16.199.64", 26)),
        Some(("175.16.199.128", 25)),
        Some(("81.2.69.0", 24)),
        Some(("0.0.0.0", 0)), // opt out: locate the source
        Some(("2001:db8::", 48)),
    ];
    let names = ["a.geo.test", "A.Geo.Test", "alias.geo.test", "c.geo.test"];
    let names = names.into_iter().chain(["x.w.geo.test", "cdn.geo.test"]);
    for name in names {
        for subnet in subnets {
            let variant = Variant { subnet, ..UDP_EDNS };
            for round in 0..2 {
                for source in sources {
                    pair.check(name, RecordType::A, variant, source);
                }
                pair.check(name, RecordType::A, UDP, sources[round]);
            }
        }
    }
    assert_eq!(counted(&pair.cached), counted(&pair.reference));
    // Addresses of one cidr share an answer: the second is a hit without a GeoIP lookup.
    assert!(pair.check("a.geo.test", RecordType::A, UDP, "175.16.199.3"));
    pair.check("c.geo.test", RecordType::A, UDP, "81.2.69.1");
    assert!(pair.check("c.geo.test", RecordType::A, UDP, "81.2.69.200"));
    assert!(!pair.check("c.geo.test", RecordType::A, UDP, "81.2.70.1"));
}

#[test]
fn a_new_pool_epoch_is_a_miss() {
    let dir = zone_dir();
    let pool = Arc::new(TestPool::default());
    pool.set(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    let pair = pair(dir.path(), &pool);
    let ecs = Variant {
        subnet: Some(("81.2.69.0", 24)),
        ..UDP_EDNS
    };
    for variant in [UDP, ecs] {
        assert!(!pair.check("cdn.geo.test", RecordType::A, variant, "127.0.0.1"));
        assert!(pair.check("cdn.geo.test", RecordType::A, variant, "127.0.0.1"));
    }
    for nodes in [&["192.0.2.7"][..], &[], &["192.0.2.8", "192.0.2.9"]] {
        pool.set(nodes);
        for variant in [UDP, ecs] {
            assert!(!pair.check("cdn.geo.test", RecordType::A, variant, "127.0.0.1"));
            assert!(pair.check("cdn.geo.test", RecordType::A, variant, "127.0.0.1"));
        }
    }
    assert_eq!(counted(&pair.cached), counted(&pair.reference));
}

#[test]
fn the_question_keeps_its_case_because_the_response_echoes_it() {
    // Why the key holds the name as sent: the response echoes the question as sent and its
    // answers' owner points at it (as NSD's do), so two spellings are two responses, alike
    // in length but not in bytes.
    let dir = zone_dir();
    let pool = Arc::new(TestPool::default());
    let (handler, _) = handler(state(dir.path(), 0), &pool);
    let src = SocketAddr::from(([127, 0, 0, 1], 5300));
    let mut lower = Vec::new();
    let mut upper = Vec::new();
    let query = |name| wire(1, name, RecordType::A, UDP);
    handler.respond(&query("www.diff.test"), src, Transport::Udp, &mut lower);
    handler.respond(&query("WWW.diff.test"), src, Transport::Udp, &mut upper);
    assert_eq!(
        lower.len(),
        upper.len(),
        "the owner compresses against either spelling"
    );
    assert_ne!(lower[2..], upper[2..]);
}

#[test]
fn a_reload_starts_with_an_empty_cache() {
    let dir = zone_dir();
    let pool = Arc::new(TestPool::default());
    let (handler, shared) = handler(state(dir.path(), 1024), &pool);
    let src = SocketAddr::from(([127, 0, 0, 1], 5300));
    let ask = |out: &mut Vec<u8>| {
        let query = wire(7, "host.other.test", RecordType::A, UDP);
        handler.respond(&query, src, Transport::Udp, out);
    };
    let (mut before, mut again) = (Vec::new(), Vec::new());
    ask(&mut before);
    ask(&mut again);
    assert_eq!(before, again);
    assert_eq!(counter(&handler, "hit"), 1);

    let zone = std::fs::read_to_string(dir.path().join("other.test.zone")).unwrap();
    let changed = zone.replace("192.0.2.", "198.18.0.");
    assert_ne!(zone, changed, "the zone has IPv4 addresses to change");
    std::fs::write(dir.path().join("other.test.zone"), changed).unwrap();
    shared.store(Arc::new(state(dir.path(), 1024)));
    let mut after = Vec::new();
    ask(&mut after);
    assert_ne!(after, before, "the new zone's answer");
    assert_eq!(counter(&handler, "hit"), 1, "a miss after the reload");
    ask(&mut again);
    assert_eq!(again, after);
    assert_eq!(counter(&handler, "hit"), 2);
}

#[test]
fn the_number_of_entries_is_bounded() {
    let dir = zone_dir();
    let pool = Arc::new(TestPool::default());
    pool.set(&["192.0.2.1"]);
    for bound in [1, 100, 1000] {
        let (handler, shared) = handler(state(dir.path(), bound), &pool);
        let mut out = Vec::new();
        for i in 0..3000 {
            let name = format!("n{i}.diff.test");
            let query = wire(1, &name, RecordType::A, UDP);
            let src = SocketAddr::from(([10, 0, (i / 256) as u8, i as u8], 5300));
            handler.respond(&query, src, Transport::Udp, &mut out);
            let located = wire(1, "a.geo.test", RecordType::A, UDP);
            handler.respond(&located, src, Transport::Udp, &mut out);
            assert!(shared.load().answers.len() <= bound, "{bound}");
        }
        assert!(
            shared.load().answers.len() > bound / 4,
            "{bound}: the cache is used"
        );
    }
}

#[test]
fn a_zero_bound_turns_the_cache_off() {
    let cache = AnswerCache::new(0);
    assert!(!cache.enabled());
    let query = wire(1, "www.diff.test", RecordType::A, UDP);
    assert!(cache.query(&query, Transport::Udp, false).is_none());
}

#[test]
fn subnets_keep_only_their_prefix() {
    let v4 = |a: &str, p| Subnet::new(a.parse().unwrap(), p);
    assert!(v4("10.1.2.3", 24) == v4("10.1.2.200", 24));
    assert!(v4("10.1.2.3", 24) != v4("10.1.3.3", 24));
    assert!(v4("10.1.2.3", 0) == v4("192.0.2.1", 0));
    assert!(v4("10.1.2.3", 32) != v4("10.1.2.4", 32));
    assert!(
        v4("10.1.2.3", 40) == v4("10.1.2.3", 32),
        "cut to the family's width"
    );
    assert!(v4("0.0.0.0", 0) != v4("::", 0), "families stay apart");
    assert!(v4("2001:db8::1", 32) == v4("2001:db8:ffff::1", 32));
    assert!(v4("2001:db8::1", 128) != v4("2001:db8::2", 128));
}
