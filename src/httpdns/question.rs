//! A request's question, parsed from its parameters and written as the wire-format DNS query
//! the DNS handler answers: the same bytes hickory-proto's `Message::to_vec` writes for it
//! (bar the ID), without building a `Message` per request.

use std::borrow::Cow;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use ipnet::IpNet;

use super::ApiError;
use crate::dns::reader::{self, rtype};

/// Query-string parameters, borrowed from the query unless escaped; the first value of a
/// repeated key wins.
pub(super) struct Params<'q>(Vec<(Cow<'q, str>, Cow<'q, str>)>);

impl<'q> Params<'q> {
    /// Every SDK request goes through here, so the common case (no escapes) borrows each key
    /// and value, found with memchr (SIMD) rather than byte by byte.
    pub(super) fn parse(query: Option<&'q str>) -> Params<'q> {
        let mut pairs = Vec::with_capacity(8);
        let mut rest = query.unwrap_or("");
        while !rest.is_empty() {
            let end = memchr::memchr(b'&', rest.as_bytes()).unwrap_or(rest.len());
            // `&` is ASCII: both sides are on char boundaries.
            let pair = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or("");
            if !pair.is_empty() {
                pairs.extend(Self::pair(pair));
            }
        }
        Params(pairs)
    }

    /// `key=value`, `key` alone (an empty value); percent escapes and `+` decoded by
    /// form_urlencoded, which is what a pair without them would come out as from it too.
    fn pair(pair: &'q str) -> Option<(Cow<'q, str>, Cow<'q, str>)> {
        if memchr::memchr2(b'%', b'+', pair.as_bytes()).is_some() {
            return form_urlencoded::parse(pair.as_bytes()).next();
        }
        // `=` is ASCII: both sides are on char boundaries.
        let (key, value) = match memchr::memchr(b'=', pair.as_bytes()) {
            Some(e) => (&pair[..e], &pair[e + 1..]),
            None => (pair, ""),
        };
        Some((Cow::Borrowed(key), Cow::Borrowed(value)))
    }

    /// The first value of `key`; None when absent or empty.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    }

    /// Every pair, in request order.
    pub(super) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Every non-empty value of `key`, in request order.
    pub(super) fn get_all<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s str> {
        self.pairs()
            .filter(move |(k, v)| *k == key && !v.is_empty())
            .map(|(_, v)| v)
    }

    pub(super) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true"))
    }
}

/// A domain name from a request, in wire form, as hickory's `Name::from_utf8` (IDNA, UTS 46)
/// makes it.
pub(super) struct QueryName {
    wire: Vec<u8>,
}

impl QueryName {
    pub(super) fn parse(text: Option<&str>, param: &str) -> Result<QueryName, ApiError> {
        let text = text.ok_or_else(|| {
            ApiError::bad_request("MissingArgument", format!("{param} is required"))
        })?;
        let invalid =
            |e: String| ApiError::bad_request("InvalidHost", format!("{param}={text:?}: {e}"));
        if text.len() > 253 {
            return Err(invalid("not a domain name".into()));
        }
        if let Some(wire) = plain_wire(text) {
            return Ok(QueryName { wire });
        }
        if text.contains(['/', ' ']) {
            return Err(invalid("not a domain name".into()));
        }
        let name = Name::from_utf8(text).map_err(|e| invalid(e.to_string()))?;
        let mut wire = Vec::with_capacity(name.len() + 2);
        for label in name.iter() {
            // Labels are at most 63 bytes: Name checks.
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        wire.push(0);
        Ok(QueryName { wire })
    }

    /// The name as hickory displays it, without the final dot (the Alibaba API's `host`).
    pub(super) fn host(&self) -> String {
        let mut text = String::with_capacity(self.wire.len());
        if !reader::write_plain_name(&self.wire, 0, &mut text) {
            let decoded = Name::read(&mut BinDecoder::new(&self.wire));
            text = decoded.map(|name| name.to_utf8()).unwrap_or_default();
        }
        if text.ends_with('.') {
            text.pop();
        }
        text
    }
}

/// The wire form of a name whose labels are letters, digits and hyphens (not first), not
/// punycode: for those UTS 46 only lowercases. None for anything else (hickory decides those).
fn plain_wire(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_suffix('.').unwrap_or(text).as_bytes();
    let mut wire = Vec::with_capacity(text.len() + 2);
    for label in text.split(|&b| b == b'.') {
        let plain = label.first().is_some_and(u8::is_ascii_alphanumeric)
            && label.len() <= 63
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
            && !label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"));
        if !plain {
            return None;
        }
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    wire.push(0);
    Some(wire)
}

pub(super) fn parse_type(text: Option<&str>) -> Result<RecordType, ApiError> {
    let Some(text) = text else {
        return Ok(RecordType::A);
    };
    let rtype = match text.parse::<u16>() {
        Ok(number) => RecordType::from(number),
        Err(_) if text.eq_ignore_ascii_case("a") => RecordType::A,
        Err(_) if text.eq_ignore_ascii_case("aaaa") => RecordType::AAAA,
        Err(_) => RecordType::from_str(&text.to_ascii_uppercase()).map_err(|_| {
            ApiError::bad_request("InvalidType", format!("type={text:?} is not a record type"))
        })?,
    };
    match rtype {
        RecordType::AXFR | RecordType::IXFR | RecordType::OPT => Err(ApiError::bad_request(
            "InvalidType",
            format!("type={text} cannot be asked here"),
        )),
        rtype => Ok(rtype),
    }
}

/// The client's addresses a request names (`ip=`, repeated or comma-separated: a dual-stack
/// client may give one of each family). Each is a host route, so the answer is tailored to
/// exactly it; IPv4-mapped IPv6 addresses are the IPv4 address.
#[derive(Clone, Debug, Default)]
pub(super) struct ClientIps(Vec<IpAddr>);

impl ClientIps {
    pub(super) fn parse<'v>(values: impl Iterator<Item = &'v str>) -> Result<ClientIps, ApiError> {
        let mut ips = Vec::new();
        for text in values.flat_map(|v| v.split(',')).filter(|t| !t.is_empty()) {
            let ip = text.trim().parse::<IpAddr>().map_err(|_| {
                ApiError::bad_request("InvalidIp", format!("ip={text:?} is not an IP address"))
            })?;
            ips.push(ip.to_canonical());
        }
        Ok(ClientIps(ips))
    }

    /// The address for a query of `rtype`: the first of the same family, else the first.
    pub(super) fn subnet_for(&self, rtype: RecordType) -> Option<IpNet> {
        let v6 = rtype == RecordType::AAAA;
        self.0
            .iter()
            .find(|ip| ip.is_ipv6() == v6)
            .or(self.0.first())
            .map(|ip| IpNet::from(*ip))
    }

    /// The address the answer reports as the client's: the first named, else `peer`.
    pub(super) fn reported(&self, peer: IpAddr) -> IpAddr {
        self.0.first().copied().unwrap_or(peer)
    }
}

/// One question for the DNS handler.
pub(super) struct Question<'n> {
    pub(super) name: &'n QueryName,
    pub(super) rtype: RecordType,
    /// Where the client is, when the request says (`ip=`, `edns_client_subnet=`).
    pub(super) subnet: Option<IpNet>,
    pub(super) checking_disabled: bool,
    pub(super) dnssec_ok: bool,
}

/// The EDNS payload size the queries offer.
const MAX_PAYLOAD: u16 = 1232;
const FLAG_RD: u16 = 0x0100;
const FLAG_CD: u16 = 0x0010;
const EDNS_DO: u16 = 0x8000;
const CLASS_IN: u16 = 1;
const OPTION_ECS: u16 = 8;

impl Question<'_> {
    /// The query: ID 0, RD (and CD when asked), the question, and an OPT record with DO when
    /// asked and the client subnet when known.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut wire = Vec::with_capacity(reader::HEADER_LEN + self.name.wire.len() + 32);
        let flags = FLAG_RD | if self.checking_disabled { FLAG_CD } else { 0 };
        for field in [0, flags, 1, 0, 0, 1] {
            wire.extend_from_slice(&field.to_be_bytes());
        }
        wire.extend_from_slice(&self.name.wire);
        wire.extend_from_slice(&u16::from(self.rtype).to_be_bytes());
        wire.extend_from_slice(&CLASS_IN.to_be_bytes());
        // OPT: root owner, type, payload size as class, then rcode, version and flags as TTL.
        wire.push(0);
        wire.extend_from_slice(&rtype::OPT.to_be_bytes());
        wire.extend_from_slice(&MAX_PAYLOAD.to_be_bytes());
        wire.extend_from_slice(&[0, 0]);
        let edns_flags = if self.dnssec_ok { EDNS_DO } else { 0 };
        wire.extend_from_slice(&edns_flags.to_be_bytes());
        let Some(subnet) = self.subnet else {
            wire.extend_from_slice(&[0, 0]);
            return wire;
        };
        // RFC 7871 section 6: family, source prefix, scope prefix 0, the prefix's bytes.
        let (family, octets) = match subnet.network() {
            IpAddr::V4(ip) => (1u16, ip.octets().to_vec()),
            IpAddr::V6(ip) => (2u16, ip.octets().to_vec()),
        };
        let prefix = subnet.prefix_len();
        let address = &octets[..usize::from(prefix).div_ceil(8)];
        let option_len = 4 + address.len() as u16;
        for field in [4 + option_len, OPTION_ECS, option_len, family] {
            wire.extend_from_slice(&field.to_be_bytes());
        }
        wire.extend_from_slice(&[prefix, 0]);
        wire.extend_from_slice(address);
        wire
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    use hickory_proto::rr::{Name, RecordType};
    use hickory_proto::serialize::binary::BinDecodable;

    use super::{Params, QueryName, Question};

    /// What the handler got before: the query hickory-proto writes.
    fn reference(text: &str, question: &Question<'_>) -> Vec<u8> {
        let mut name = Name::from_utf8(text).unwrap();
        name.set_fqdn(true);
        let mut message = Message::query();
        message.add_query(Query::query(name, question.rtype));
        message.metadata.recursion_desired = true;
        message.metadata.checking_disabled = question.checking_disabled;
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(question.dnssec_ok);
        if let Some(subnet) = question.subnet {
            let subnet = ClientSubnet::new(subnet.network(), subnet.prefix_len(), 0);
            edns.options_mut().insert(EdnsOption::Subnet(subnet));
        }
        message.set_edns(edns);
        let mut wire = message.to_vec().unwrap();
        wire[..2].copy_from_slice(&[0, 0]);
        wire
    }

    const NAMES: [&str; 14] = [
        "www.example.test",
        "WWW.Example.TEST.",
        "a-b.c--d.example",
        "lead.trail-.test",
        "_srv._tcp.Example.test",
        "*.example.test",
        "xn--bcher-kva.example",
        "XN--BCHER-KVA.example",
        "bücher.example",
        "ÖBB.at",
        "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.0.1.2.3.4.5.6.7.8.9",
        "x12345678901234567890123456789012345678901234567890123456789012.test",
        "1.2.3.4.in-addr.arpa",
        "example",
    ];

    #[test]
    fn parameters_are_what_form_urlencoded_makes_of_them() {
        let queries = [
            "name=www.example.test&type=A",
            "name=a+b&type=%41%41%41%41&&x",
            "dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlBHRlc3QAAAEAAQ&=v&k=&k=2",
            "name=%E4%BE%8B%E5.test&a=b=c&%ZZ=1&q=%",
            "",
        ];
        for query in queries {
            let ours = Params::parse(Some(query)).0;
            let theirs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
            assert_eq!(ours, theirs, "{query}");
        }
    }

    #[test]
    fn names_are_what_hickory_makes_of_them() {
        let long = "x123456789012345678901234567890123456789012345678901234567890123.test";
        let bad = [
            "a..b",
            ".",
            "a b",
            "x/y",
            "-lead.test",
            "a.-b",
            "a_b.test",
            long,
        ];
        for text in NAMES.iter().chain(&bad) {
            let ours = QueryName::parse(Some(text), "name");
            let theirs = Name::from_utf8(text);
            match (&ours, theirs) {
                (Ok(ours), Ok(mut theirs)) => {
                    theirs.set_fqdn(true);
                    let decoded = Name::from_bytes(&ours.wire).unwrap();
                    assert_eq!(decoded.to_ascii(), theirs.to_ascii(), "{text}");
                    let host = theirs.to_utf8();
                    assert_eq!(
                        ours.host(),
                        host.strip_suffix('.').unwrap_or(&host),
                        "{text}"
                    );
                }
                (Err(_), _) if text.contains([' ', '/']) => {}
                (Err(_), Err(_)) => {}
                (ours, theirs) => panic!("{text}: {:?} vs {theirs:?}", ours.is_ok()),
            }
        }
    }

    #[test]
    fn queries_are_the_bytes_hickory_writes() {
        let subnets = [
            None,
            Some("192.0.2.77/32"),
            Some("192.0.2.0/24"),
            Some("10.1.0.0/15"),
            Some("0.0.0.0/0"),
            Some("2001:db8::1/128"),
            Some("2001:db8:ab00::/40"),
        ];
        for text in NAMES {
            let name = QueryName::parse(Some(text), "name").unwrap();
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
                for subnet in subnets {
                    for (checking_disabled, dnssec_ok) in [(false, false), (true, true)] {
                        let question = Question {
                            name: &name,
                            rtype,
                            subnet: subnet.map(|s| s.parse().unwrap()),
                            checking_disabled,
                            dnssec_ok,
                        };
                        assert_eq!(
                            question.encode(),
                            reference(text, &question),
                            "{text} {rtype} {subnet:?}"
                        );
                    }
                }
            }
        }
    }
}
