//! Recursive answers from the answer cache against the slow path: two handlers share one
//! `Recursion` (so one recursion cache and the same entry ages), one with an answer cache and
//! one without. For every query variant the cached handler's second answer (a wire copy) must
//! be byte for byte the reference's; after a second both have aged their TTLs alike; a flush
//! and the end of freshness send queries back to the slow path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, MessageType, Query as Question, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::rdata::{A, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

use crate::cache::{Cache, PurgeMode};
use crate::config::RecursionConfig;
use crate::dns::handler::{DnsHandler, Reply, Transport};
use crate::dns::recursion::Recursion;
use crate::dns::steering::{Family, NodePool};
use crate::dns::{DnsState, ZoneSet};
use crate::geo::{Code, Geo};
use crate::metrics::DnsMetrics;

/// A stand-in upstream resolver: `nx.*` is NXDOMAIN and AAAA NODATA, both with an SOA (negative
/// TTL 120); `alias.*` a CNAME to `www.test.`, `short.*` an A record of TTL 1, anything else an
/// A record of TTL 300.
async fn upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = [0u8; 1500];
        loop {
            let Ok((len, src)) = socket.recv_from(&mut buffer).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let response = answer(query);
            let _ = socket.send_to(&response.to_vec().unwrap(), src).await;
        }
    });
    addr
}

fn answer(query: Message) -> Message {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = true;
    response.metadata.recursion_available = true;
    let question = query.queries[0].clone();
    let name = question.name().clone();
    let label = name.to_lowercase().to_ascii();
    let a = |ttl, name: &Name| Record::from_rdata(name.clone(), ttl, RData::A(A::new(10, 0, 0, 7)));
    let nodata = question.query_type() == RecordType::AAAA;
    if label.starts_with("nx.") || nodata {
        if !nodata {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        let soa = SOA::new(
            Name::from_ascii("ns.test.").unwrap(),
            Name::from_ascii("hostmaster.test.").unwrap(),
            1,
            3600,
            600,
            86400,
            120,
        );
        let zone = Name::from_ascii("test.").unwrap();
        response.add_authority(Record::from_rdata(zone, 600, RData::SOA(soa)));
    } else if label.starts_with("alias.") {
        let target = Name::from_ascii("www.test.").unwrap();
        response.add_answer(Record::from_rdata(
            name,
            200,
            RData::CNAME(CNAME(target.clone())),
        ));
        response.add_answer(a(300, &target));
    } else if label.starts_with("short.") {
        response.add_answer(a(1, &name));
    } else {
        response.add_answer(a(300, &name));
    }
    response.add_query(question);
    if let Some(edns) = query.edns {
        response.set_edns(edns);
    }
    response
}

/// No cluster: recursion never consults it.
struct NoPool;

impl NodePool for NoPool {
    fn epoch(&self) -> u64 {
        0
    }

    fn nearest(
        &self,
        _country: Option<Code>,
        _continent: Option<Code>,
        _key: &[u8],
        _family: Family,
        _count: usize,
    ) -> Vec<std::net::IpAddr> {
        Vec::new()
    }
}

struct Pair {
    cached: DnsHandler,
    reference: DnsHandler,
    recursion: Arc<Recursion>,
    metrics: DnsMetrics,
    _zones: tempfile::TempDir,
}

async fn pair() -> Pair {
    let config = RecursionConfig {
        forwarders: vec![upstream().await],
        ..RecursionConfig::default()
    };
    let metrics = DnsMetrics::default();
    let recursion = Recursion::new(&config, Cache::new(1 << 20), metrics.clone())
        .unwrap()
        .unwrap();
    let recursion = Arc::new(recursion);
    let zones = tempfile::tempdir().unwrap();
    let handler = |entries, metrics: DnsMetrics| {
        let state = DnsState::new(
            ZoneSet::load_dir(zones.path()).unwrap(),
            Geo::empty(),
            entries,
        );
        DnsHandler::new(
            Arc::new(ArcSwap::from_pointee(state)),
            Some(Arc::clone(&recursion)),
            Arc::new(NoPool),
            metrics,
            1232,
            false,
        )
    };
    Pair {
        cached: handler(1024, metrics.clone()),
        reference: handler(0, DnsMetrics::default()),
        recursion,
        metrics,
        _zones: zones,
    }
}

async fn ask(handler: &DnsHandler, raw: &[u8], transport: Transport) -> Vec<u8> {
    let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let mut out = Vec::new();
    let reply = match handler.respond(raw, src, transport, &mut out) {
        Reply::Recurse(pending) => handler.recurse(*pending, &mut out).await,
        reply => reply,
    };
    assert!(matches!(reply, Reply::Send(_)));
    out
}

/// How one query is sent.
#[derive(Clone, Copy, Debug)]
struct Variant {
    transport: Transport,
    payload: Option<u16>,
    dnssec_ok: bool,
    checking_disabled: bool,
    subnet: Option<(&'static str, u8)>,
}

const PLAIN: Variant = Variant {
    transport: Transport::Udp,
    payload: Some(1232),
    dnssec_ok: false,
    checking_disabled: false,
    subnet: None,
};

fn wire(id: u16, name: &str, rtype: RecordType, variant: Variant) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    message.metadata.checking_disabled = variant.checking_disabled;
    message.add_query(Question::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(payload) = variant.payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        edns.set_dnssec_ok(variant.dnssec_ok);
        if let Some((addr, prefix)) = variant.subnet {
            let subnet = ClientSubnet::new(addr.parse().unwrap(), prefix, 0);
            edns.options_mut().insert(EdnsOption::Subnet(subnet));
        }
        message.set_edns(edns);
    }
    message.to_vec().unwrap()
}

fn variants() -> Vec<Variant> {
    vec![
        PLAIN,
        Variant {
            payload: None,
            ..PLAIN
        },
        Variant {
            transport: Transport::Tcp,
            ..PLAIN
        },
        Variant {
            transport: Transport::Https,
            payload: Some(4096),
            ..PLAIN
        },
        Variant {
            dnssec_ok: true,
            ..PLAIN
        },
        Variant {
            checking_disabled: true,
            ..PLAIN
        },
        Variant {
            subnet: Some(("192.0.2.0", 24)),
            ..PLAIN
        },
    ]
}

const NAMES: [(&str, RecordType); 5] = [
    ("www.example.test.", RecordType::A),
    ("WwW.ExAmPlE.tEsT.", RecordType::A),
    ("alias.example.test.", RecordType::A),
    ("nx.example.test.", RecordType::A),
    ("www.example.test.", RecordType::AAAA),
];

fn answer_cache_hits(metrics: &DnsMetrics) -> u64 {
    let labels = crate::metrics::ResultLabels { result: "hit" };
    metrics.answer_cache.get_or_create(&labels).get()
}

/// The TTLs of the answer and authority records.
fn ttls(response: &[u8]) -> Vec<u32> {
    let message = Message::from_vec(response).unwrap();
    assert_eq!(message.metadata.message_type, MessageType::Response);
    let records = message.answers.iter().chain(&message.authorities);
    records.map(|r| r.ttl).collect()
}

/// Asks both handlers (twice the cached one, so that its answer is a wire copy) and checks
/// they agree apart from the ID; retried if a second boundary falls between the two.
async fn compare(pair: &Pair, id: u16, name: &str, rtype: RecordType, variant: Variant) -> Vec<u8> {
    let raw = wire(id, name, rtype, variant);
    ask(&pair.cached, &raw, variant.transport).await;
    for _ in 0..3 {
        let hits = answer_cache_hits(&pair.metrics);
        let cached = ask(&pair.cached, &raw, variant.transport).await;
        let reference = ask(&pair.reference, &raw, variant.transport).await;
        assert_eq!(
            answer_cache_hits(&pair.metrics),
            hits + 1,
            "{name} {rtype} {variant:?}: not served from the answer cache"
        );
        assert_eq!(&cached[..2], &id.to_be_bytes());
        if cached == reference {
            return cached;
        }
        assert_eq!(ttls(&cached).len(), ttls(&reference).len());
    }
    panic!("{name} {rtype} {variant:?}: the wire copy differs from the slow path");
}

#[tokio::test]
async fn recursive_wire_copies_match_the_slow_path_and_age() {
    let pair = pair().await;
    let mut first = Vec::new();
    for (index, variant) in variants().into_iter().enumerate() {
        for (name, rtype) in NAMES {
            let id = (index * 16 + first.len()) as u16;
            let response = compare(&pair, id, name, rtype, variant).await;
            first.push((name, rtype, variant, ttls(&response)));
        }
    }
    // 300 s records start at 300 (or 299 across a second), the 120 s negative answer likewise.
    assert!(first.iter().all(|(.., ttls)| !ttls.is_empty()));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (id, (name, rtype, variant, before)) in first.into_iter().enumerate() {
        let response = compare(&pair, id as u16, name, rtype, variant).await;
        let after = ttls(&response);
        assert_eq!(after.len(), before.len());
        for (after, before) in after.iter().zip(&before) {
            assert!(
                after < before,
                "{name} {rtype} {variant:?}: {before} -> {after}"
            );
        }
    }
}

#[tokio::test]
async fn flushes_and_expiry_send_queries_back_to_the_slow_path() {
    let pair = pair().await;
    let raw = wire(7, "www.flush.test.", RecordType::A, PLAIN);
    ask(&pair.cached, &raw, Transport::Udp).await;
    let hits = answer_cache_hits(&pair.metrics);
    ask(&pair.cached, &raw, Transport::Udp).await;
    assert_eq!(answer_cache_hits(&pair.metrics), hits + 1);

    let name = Name::from_ascii("www.flush.test.").unwrap();
    assert_eq!(pair.recursion.flush(&name, PurgeMode::Hard).await, 1);
    ask(&pair.cached, &raw, Transport::Udp).await;
    assert_eq!(
        answer_cache_hits(&pair.metrics),
        hits + 1,
        "served after a flush"
    );
    ask(&pair.cached, &raw, Transport::Udp).await;
    assert_eq!(answer_cache_hits(&pair.metrics), hits + 2, "stored again");

    // A 1-second answer is not served from the wire copy once its entry is no longer fresh.
    let raw = wire(8, "short.flush.test.", RecordType::A, PLAIN);
    ask(&pair.cached, &raw, Transport::Udp).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let hits = answer_cache_hits(&pair.metrics);
    let response = ask(&pair.cached, &raw, Transport::Udp).await;
    assert_eq!(
        answer_cache_hits(&pair.metrics),
        hits,
        "served after expiry"
    );
    assert_eq!(ttls(&response), vec![1]);
}
