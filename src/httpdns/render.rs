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

/// The addresses for one host, as the Alibaba and DNSPod APIs report them.
#[derive(Clone)]
pub(super) struct HostAnswer {
    host: String,
    pub(super) ips: Vec<String>,
    pub(super) ipsv6: Vec<String>,
    /// Smallest TTL of the addresses (0 when there are none).
    pub(super) ttl: u32,
}

impl HostAnswer {
    pub(super) fn new(host: String) -> Self {
        Self {
            host,
            ips: Vec::new(),
            ipsv6: Vec::new(),
            ttl: 0,
        }
    }

    /// The A and AAAA records of a response's answer section (a CNAME chain's end); None when
    /// the response is malformed.
    pub(super) fn from_wire(wire: &[u8]) -> Option<Self> {
        let mut answer = Self::new(String::new());
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
                answer.ipsv6.push(Ipv6Addr::from(octets).to_string());
            } else {
                continue;
            }
            ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        }
        answer.ttl = ttl.unwrap_or(0);
        Some(answer)
    }

    pub(super) fn merge(&mut self, other: HostAnswer) {
        let had = !self.ips.is_empty() || !self.ipsv6.is_empty();
        let has = !other.ips.is_empty() || !other.ipsv6.is_empty();
        self.ttl = match (had, has) {
            (true, true) => self.ttl.min(other.ttl),
            (false, true) => other.ttl,
            _ => self.ttl,
        };
        self.ips.extend(other.ips);
        self.ipsv6.extend(other.ipsv6);
    }
}

/// The Alibaba shape of one host: `{client_ip, host, ips, ipsv6, origin_ttl, ttl}`, keys in
/// the order `serde_json`'s `json!` wrote them (sorted), so the bytes are those of the earlier
/// `Value` rendering.
#[derive(Serialize)]
struct HostJson<'a> {
    client_ip: IpAddr,
    host: &'a str,
    ips: &'a [String],
    ipsv6: &'a [String],
    origin_ttl: u32,
    ttl: u32,
}

#[derive(Serialize)]
struct Batch<'a> {
    dns: Vec<HostJson<'a>>,
}

/// The body for `answers`: one host object, or `{"dns": [...]}` for a batch. The client is
/// `ip=` when given.
pub(super) fn host_answers(answers: &[HostAnswer], client_ip: IpAddr, batch: bool) -> Vec<u8> {
    let mut hosts = answers.iter().map(|answer| HostJson {
        client_ip,
        host: &answer.host,
        ips: &answer.ips,
        ipsv6: &answer.ipsv6,
        origin_ttl: answer.ttl,
        ttl: answer.ttl,
    });
    // Serializing plain structs of strings and numbers cannot fail.
    let body = match batch {
        true => serde_json::to_vec(&Batch {
            dns: hosts.collect(),
        }),
        false => serde_json::to_vec(&hosts.next()),
    };
    body.unwrap_or_default()
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

    use serde_json::{Value, json};

    use super::HostAnswer;

    /// The `Value` rendering `host_answers` replaced.
    fn reference(answer: &HostAnswer, client_ip: IpAddr) -> Value {
        json!({
            "host": answer.host,
            "ips": answer.ips,
            "ipsv6": answer.ipsv6,
            "ttl": answer.ttl,
            "origin_ttl": answer.ttl,
            "client_ip": client_ip.to_string(),
        })
    }

    #[test]
    fn host_answers_are_the_bytes_of_the_value_rendering() {
        let mut one = HostAnswer::new("www.example.test".into());
        one.ips = vec!["127.0.10.1".into(), "127.0.10.2".into()];
        one.ipsv6 = vec!["::1".into()];
        one.ttl = 60;
        let mut other = HostAnswer::new("a\"b.test".into());
        other.ttl = 0;
        for client in ["192.0.2.7", "2001:db8::7"] {
            let client: IpAddr = client.parse().unwrap();
            let single = super::host_answers(std::slice::from_ref(&one), client, false);
            assert_eq!(single, reference(&one, client).to_string().into_bytes());
            let batch = super::host_answers(&[one.clone(), other.clone()], client, true);
            let expected = json!({"dns": [reference(&one, client), reference(&other, client)]});
            assert_eq!(batch, expected.to_string().into_bytes());
        }
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
