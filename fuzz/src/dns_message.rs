//! Raw bytes as a DNS query, through the full request handler over UDP and over TCP, against
//! the repository's own `zones/` (with its geo policy and a steering pool) and a small CIDR
//! table standing in for GeoIP, the way the UDP and TCP loops call it.
//!
//! Asserts: no panic; no recursion (it is off); a response parses back as a DNS message, is a
//! response with the query's ID, and fits the transport's limit (UDP: 512 bytes without EDNS,
//! else the smaller of the client's payload and ours; TCP: 65,535).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use edgenode::dns::handler::{DnsHandler, Reply, Transport};
use edgenode::dns::steering::{Family, NodePool};
use edgenode::dns::{DnsState, ZoneSet};
use edgenode::geo::{CidrOverride, Code, Geo};
use edgenode::metrics::DnsMetrics;
use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

const ZONE: &str = include_str!("../../zones/example.test.zone");
const POLICY: &str = include_str!("../../zones/example.test.geo.toml");
/// Networks on three continents, so that the policy's selectors and the ECS scope both vary.
const GEOIP: &[(&str, &str, &str, Option<u32>)] = &[
    ("1.0.0.0/8", "CN", "AS", Some(4134)),
    ("8.0.0.0/8", "US", "NA", Some(15169)),
    ("81.0.0.0/8", "GB", "EU", None),
    ("2001:db8::/32", "DE", "EU", Some(3320)),
];
/// `dns.edns_payload` as configured by default.
const EDNS_PAYLOAD: u16 = 1232;
const PLAIN_UDP_LIMIT: usize = 512;

/// A cluster of two nodes, so that pool answers (`cdn.example.test`) have addresses.
struct TwoNodes;

impl NodePool for TwoNodes {
    fn epoch(&self) -> u64 {
        0
    }

    fn nearest(
        &self,
        _country: Option<Code>,
        _continent: Option<Code>,
        _key: &[u8],
        family: Family,
        count: usize,
    ) -> Vec<IpAddr> {
        let nodes = [
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10)),
        ];
        nodes
            .into_iter()
            .filter(|a| family.contains(a))
            .take(count)
            .collect()
    }
}

/// Built once per process: loading zones and GeoIP per input would drown the handler's cost.
fn handler() -> &'static DnsHandler {
    static HANDLER: OnceLock<DnsHandler> = OnceLock::new();
    HANDLER.get_or_init(|| {
        let dir = super::scratch_dir();
        std::fs::write(dir.path().join("example.test.zone"), ZONE).expect("write zone");
        std::fs::write(dir.path().join("example.test.geo.toml"), POLICY).expect("write policy");
        let zones = ZoneSet::load_dir(dir.path()).expect("the repository's zones load");
        handler_for(zones)
    })
}

/// The GeoIP data every target that answers queries uses: a CIDR table (no file to write).
pub(super) fn geo() -> Geo {
    let overrides: Vec<CidrOverride> = GEOIP
        .iter()
        .map(|&(cidr, country, continent, asn)| CidrOverride {
            cidr: cidr.parse().expect("a sample network"),
            name: None,
            country: Some(country.to_string()),
            continent: Some(continent.to_string()),
            asn,
        })
        .collect();
    Geo::load(&[], &overrides).expect("the sample networks load")
}

/// A handler as `app` builds one, on `zones`, without recursion.
pub(super) fn handler_for(zones: ZoneSet) -> DnsHandler {
    // With the answer cache on, as nodes run: a repeated input is then answered from it.
    let state = DnsState::new(zones, geo(), 65_536);
    DnsHandler::new(
        Arc::new(ArcSwap::from_pointee(state)),
        None,
        Arc::new(TwoNodes),
        DnsMetrics::default(),
        EDNS_PAYLOAD,
        false,
    )
}

pub fn run(data: &[u8]) {
    exchange(handler(), data);
}

/// `query` through `handler` over UDP (from an IPv4 source) and TCP (IPv6), checking each
/// response.
pub(super) fn exchange(handler: &DnsHandler, query: &[u8]) {
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)), 5353);
    let v6 = SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        5353,
    );
    for (transport, src) in [(Transport::Udp, v4), (Transport::Tcp, v6)] {
        let mut out = Vec::new();
        match handler.respond(query, src, transport, &mut out) {
            Reply::Send(_) => check_response(query, &out, transport),
            Reply::Drop => {}
            Reply::Recurse(_) => panic!("recursion is off, yet a query was handed to it"),
        }
    }
}

/// Well-formed queries for the names and types a zone or policy file may hold, and the geo
/// names again with client subnets on three continents: what `zone_file` and `geo_policy` ask
/// of what they loaded.
pub(super) fn sample_queries() -> &'static [Vec<u8>] {
    static QUERIES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    QUERIES.get_or_init(|| {
        let names = [
            "example.test.",
            "www.example.test.",
            "cdn.example.test.",
            "a.img.example.test.",
            "static.example.test.",
            "no.such.example.test.",
        ];
        let types = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::SOA,
            RecordType::NS,
            RecordType::MX,
            RecordType::DS,
        ];
        let subnets = ["1.2.3.0/24", "8.8.8.0/24", "81.2.69.0/24", "2001:db8::/56"];
        let mut queries = Vec::new();
        for name in names {
            for rtype in types {
                queries.push(query_bytes(name, rtype, None));
            }
        }
        for name in &names[1..4] {
            for rtype in [RecordType::A, RecordType::AAAA] {
                for subnet in subnets {
                    queries.push(query_bytes(name, rtype, Some(subnet)));
                }
            }
        }
        queries
    })
}

fn query_bytes(name: &str, rtype: RecordType, subnet: Option<&str>) -> Vec<u8> {
    let name = Name::from_ascii(name).expect("a sample name");
    let mut message = Message::query();
    message.add_query(Query::query(name, rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    if let Some(subnet) = subnet {
        let net: ipnet::IpNet = subnet.parse().expect("a sample subnet");
        let ecs = ClientSubnet::new(net.network(), net.prefix_len(), 0);
        edns.options_mut().insert(EdnsOption::Subnet(ecs));
    }
    message.set_edns(edns);
    message.to_vec().expect("a sample query encodes")
}

fn check_response(query: &[u8], out: &[u8], transport: Transport) {
    let response = match Message::from_vec(out) {
        Ok(response) => response,
        Err(error) => panic!("the response does not parse back: {error}; {out:02x?}"),
    };
    assert_eq!(response.metadata.message_type, MessageType::Response);
    let id = u16::from_be_bytes([query[0], query[1]]);
    assert_eq!(response.metadata.id, id, "the response carries another ID");
    let limit = match transport {
        Transport::Udp => udp_limit(query),
        Transport::Tcp | Transport::Https => usize::from(u16::MAX),
    };
    assert!(
        out.len() <= limit,
        "a {}-byte {} response is over its {limit}-byte limit",
        out.len(),
        transport.as_str()
    );
}

/// What a UDP response may take: 512 bytes, or with EDNS the client's payload (at least 512)
/// capped at ours.
fn udp_limit(query: &[u8]) -> usize {
    let edns = Message::from_vec(query).ok().and_then(|m| m.edns);
    match edns {
        Some(edns) => usize::from(edns.max_payload().clamp(512, EDNS_PAYLOAD)),
        None => PLAIN_UDP_LIMIT,
    }
}
