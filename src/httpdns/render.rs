//! Response shapes: plain text (DNSPod), Alibaba Cloud JSON, Google/Cloudflare JSON DoH, and
//! RFC 8484 bytes with a Cache-Control derived from the TTLs.

use std::net::{IpAddr, Ipv6Addr};

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use ipnet::IpNet;
use serde_json::{Value, json};

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

    /// `{host, ips, ipsv6, ttl, origin_ttl, client_ip}`; the client is `ip=` when given.
    pub(super) fn to_json(&self, client: IpAddr, subnet: Option<IpNet>) -> Value {
        let client_ip = subnet.map_or(client, |s| s.addr());
        json!({
            "host": self.host,
            "ips": self.ips,
            "ipsv6": self.ipsv6,
            "ttl": self.ttl,
            "origin_ttl": self.ttl,
            "client_ip": client_ip.to_string(),
        })
    }
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
    use std::net::Ipv4Addr;

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
