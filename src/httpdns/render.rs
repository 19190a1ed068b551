//! Response shapes: plain text (DNSPod), Alibaba Cloud JSON, Google/Cloudflare JSON DoH, and
//! RFC 8484 bytes with a Cache-Control derived from the TTLs.

use std::net::{IpAddr, Ipv6Addr};

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::dns::reader::{Records, Section, rtype};
use crate::http_server::{Body, full};

pub(super) fn bytes(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(super) fn text(status: StatusCode, body: String) -> Response<Body> {
    bytes(status, "text/plain; charset=utf-8", body)
}

pub(super) fn json(status: StatusCode, value: &Value) -> Response<Body> {
    bytes(status, "application/json", value.to_string())
}

/// The addresses of one family for one host, from one DNS response.
#[derive(Clone, Debug, Default)]
pub(super) struct FamilyAnswer {
    pub(super) ips: Vec<String>,
    /// Smallest TTL of the addresses (0 when there are none).
    pub(super) ttl: u32,
    /// The name does not exist (NXDOMAIN), as opposed to having no address of the family.
    pub(super) nxdomain: bool,
}

/// DNS header: the RCODE is the low nibble of byte 3.
const RCODE_BYTE: usize = 3;
const NXDOMAIN: u8 = 3;

impl FamilyAnswer {
    /// The A and AAAA records of a response's answer section (a CNAME chain's end); None when
    /// the response is malformed.
    pub(super) fn from_wire(wire: &[u8]) -> Option<Self> {
        let mut answer = Self {
            nxdomain: wire.get(RCODE_BYTE)? & 0x0f == NXDOMAIN,
            ..Self::default()
        };
        let mut ttl: Option<u32> = None;
        for record in Records::new(wire)? {
            let record = record?;
            if record.section != Section::Answer {
                break;
            }
            let rdata = wire.get(record.rdata.clone())?;
            if let Ok(octets) = <[u8; 4]>::try_from(rdata)
                && record.rtype == rtype::A
            {
                let mut ip = String::with_capacity(15);
                write_ipv4(&mut ip, octets);
                answer.ips.push(ip);
            } else if let Ok(octets) = <[u8; 16]>::try_from(rdata)
                && record.rtype == rtype::AAAA
            {
                answer.ips.push(Ipv6Addr::from(octets).to_string());
            } else {
                continue;
            }
            ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        }
        answer.ttl = ttl.unwrap_or(0);
        Some(answer)
    }
}

/// The addresses for one host, as the Alibaba and DNSPod APIs report them: one
/// `FamilyAnswer` per family asked (None: not asked, and then not reported at all).
#[derive(Clone, Debug)]
pub(super) struct HostAnswer {
    pub(super) host: String,
    pub(super) v4: Option<FamilyAnswer>,
    pub(super) v6: Option<FamilyAnswer>,
}

impl HostAnswer {
    /// The smallest TTL of the families that have addresses (0 when none has).
    pub(super) fn ttl(&self) -> u32 {
        [&self.v4, &self.v6]
            .into_iter()
            .flatten()
            .filter(|f| !f.ips.is_empty())
            .map(|f| f.ttl)
            .min()
            .unwrap_or(0)
    }
}

/// The Alibaba shape of one host: `{client_ip, host, ips, ipsv6, origin_ttl, ttl}` with `ips`
/// only when IPv4 was asked and `ipsv6` only when IPv6 was (the C SDK makes one result per key
/// present, an empty one for an empty list); keys sorted, as `serde_json`'s `json!` writes them.
#[derive(Serialize)]
struct HostJson<'a> {
    client_ip: IpAddr,
    host: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ips: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipsv6: Option<&'a [String]>,
    origin_ttl: u32,
    ttl: u32,
    /// Batch entries are per family: 1 (A, addresses in `ips`) or 28 (AAAA, in `ipsv6`), which
    /// the C SDK reads as the entry's type and the Go SDK merges by host.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    rtype: Option<u16>,
}

#[derive(Serialize)]
struct Batch<'a> {
    dns: Vec<HostJson<'a>>,
}

/// One host object (`/{account}/d`); the client is `ip=` when given.
pub(super) fn host_answer(answer: &HostAnswer, client_ip: IpAddr) -> Vec<u8> {
    let ttl = answer.ttl();
    let host = HostJson {
        client_ip,
        host: &answer.host,
        ips: answer.v4.as_ref().map(|f| f.ips.as_slice()),
        ipsv6: answer.v6.as_ref().map(|f| f.ips.as_slice()),
        origin_ttl: ttl,
        ttl,
        rtype: None,
    };
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_vec(&host).unwrap_or_default()
}

/// `{"dns": [...]}` for a batch: one entry per host and family asked.
pub(super) fn batch_answers(answers: &[HostAnswer], client_ip: IpAddr) -> Vec<u8> {
    let mut dns = Vec::with_capacity(answers.len() * 2);
    for answer in answers {
        for (family, rtype) in [(&answer.v4, 1u16), (&answer.v6, 28)] {
            let Some(family) = family else { continue };
            let ips = Some(family.ips.as_slice());
            dns.push(HostJson {
                client_ip,
                host: &answer.host,
                ips: ips.filter(|_| rtype == 1),
                ipsv6: ips.filter(|_| rtype == 28),
                origin_ttl: family.ttl,
                ttl: family.ttl,
                rtype: Some(rtype),
            });
        }
    }
    serde_json::to_vec(&Batch { dns }).unwrap_or_default()
}

/// `Ipv4Addr`'s display, without the formatting machinery (a hot path: every A record).
pub(super) fn write_ipv4(text: &mut String, octets: [u8; 4]) {
    for (i, octet) in octets.into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(itoa::Buffer::new().format(octet));
    }
}

/// RFC 8484 section 5.1: the freshness lifetime is the smallest TTL in the answer (for a
/// negative answer, the SOA's), so HTTP caches never outlive the DNS data.
/// The `Cache-Control` value, none without records.
pub(super) fn cache_control(wire: &[u8]) -> Option<HeaderValue> {
    let mut ttl: Option<u32> = None;
    for record in Records::new(wire).into_iter().flatten() {
        let Some(record) = record else { break };
        if record.section == Section::Additional {
            break;
        }
        if record.rtype != rtype::OPT {
            ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        }
    }
    let mut value = Vec::with_capacity(18);
    value.extend_from_slice(b"max-age=");
    value.extend_from_slice(itoa::Buffer::new().format(ttl?).as_bytes());
    HeaderValue::from_maybe_shared(Bytes::from(value)).ok()
}

/// A 200 answer with its `cache_control`.
pub(super) fn dns_response(
    content_type: &'static str,
    body: impl Into<Bytes>,
    cache_control: Option<HeaderValue>,
) -> Response<Body> {
    let mut response = bytes(StatusCode::OK, content_type, body);
    if let Some(value) = cache_control {
        response.headers_mut().insert(CACHE_CONTROL, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use serde_json::json;

    use super::{FamilyAnswer, HostAnswer};

    fn family(ips: &[&str], ttl: u32) -> Option<FamilyAnswer> {
        Some(FamilyAnswer {
            ips: ips.iter().map(|s| s.to_string()).collect(),
            ttl,
            nxdomain: false,
        })
    }

    #[test]
    fn only_the_families_asked_are_reported() {
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let mut answer = HostAnswer {
            host: "www.example.test".into(),
            v4: family(&["127.0.10.1"], 60),
            v6: None,
        };
        let single = super::host_answer(&answer, client);
        let expected = json!({"client_ip": "192.0.2.7", "host": "www.example.test",
            "ips": ["127.0.10.1"], "origin_ttl": 60, "ttl": 60});
        assert_eq!(single, expected.to_string().into_bytes());
        answer.v6 = family(&["::1"], 30);
        let single: serde_json::Value =
            serde_json::from_slice(&super::host_answer(&answer, client)).unwrap();
        assert_eq!(
            (single["ipsv6"].clone(), single["ttl"].clone()),
            (json!(["::1"]), json!(30))
        );
        let batch = super::batch_answers(&[answer], client);
        let expected = json!({"dns": [
            {"client_ip": "192.0.2.7", "host": "www.example.test", "ips": ["127.0.10.1"],
             "origin_ttl": 60, "ttl": 60, "type": 1},
            {"client_ip": "192.0.2.7", "host": "www.example.test", "ipsv6": ["::1"],
             "origin_ttl": 30, "ttl": 30, "type": 28},
        ]});
        assert_eq!(batch, expected.to_string().into_bytes());
    }

    #[test]
    fn ipv4_text_is_the_display_form() {
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.7",
            "192.0.2.1",
            "1.22.133.9",
        ] {
            let ip: Ipv4Addr = ip.parse().unwrap();
            let mut text = String::from("x");
            super::write_ipv4(&mut text, ip.octets());
            assert_eq!(text, format!("x{ip}"));
        }
    }
}
