//! Response shapes: plain text (DNSPod), Alibaba Cloud JSON, Google/Cloudflare JSON DoH, and
//! RFC 8484 bytes with a Cache-Control derived from the TTLs.

use std::net::IpAddr;

use bytes::Bytes;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::{Value, json};

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
    pub(super) fn new(name: &Name) -> Self {
        let host = name.to_utf8();
        let host = host.strip_suffix('.').unwrap_or(&host).to_string();
        Self {
            host,
            ips: Vec::new(),
            ipsv6: Vec::new(),
            ttl: 0,
        }
    }

    /// The A and AAAA records of the answer section (a CNAME chain's end).
    pub(super) fn from_message(message: &Message) -> Self {
        let mut answer = Self::new(message.queries.first().map_or(&Name::root(), |q| q.name()));
        let mut ttl: Option<u32> = None;
        for record in &message.answers {
            match &record.data {
                RData::A(a) => answer.ips.push(a.0.to_string()),
                RData::AAAA(a) => answer.ipsv6.push(a.0.to_string()),
                _ => continue,
            }
            ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        }
        answer.ttl = ttl.unwrap_or(0);
        answer
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

/// The Google / Cloudflare JSON schema, serialized straight from the message: no `Value` tree
/// per answer. Fields are declared in the order `json!` used to emit them (sorted keys), so
/// the bytes are those of the earlier `Value` rendering.
pub(super) fn doh_json(message: &Message, subnet: Option<IpNet>) -> Vec<u8> {
    let meta = &message.metadata;
    let records = |records: &[Record]| -> Vec<DohRecord> {
        records
            .iter()
            .filter(|r| r.record_type() != RecordType::OPT)
            .map(|r| DohRecord {
                ttl: r.ttl,
                data: r.data.to_string(),
                name: r.name.to_utf8(),
                rtype: u16::from(r.record_type()),
            })
            .collect()
    };
    let response = DohResponse {
        ad: meta.authentic_data,
        answer: records(&message.answers),
        authority: records(&message.authorities),
        cd: meta.checking_disabled,
        question: message
            .queries
            .iter()
            .map(|q| DohQuestion {
                name: q.name().to_utf8(),
                rtype: u16::from(q.query_type()),
            })
            .collect(),
        ra: meta.recursion_available,
        rd: meta.recursion_desired,
        status: u16::from(meta.response_code),
        tc: meta.truncation,
        edns_client_subnet: subnet.map(|s| s.to_string()),
    };
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_vec(&response).unwrap_or_default()
}

#[derive(Serialize)]
struct DohResponse {
    #[serde(rename = "AD")]
    ad: bool,
    #[serde(rename = "Answer")]
    answer: Vec<DohRecord>,
    #[serde(rename = "Authority")]
    authority: Vec<DohRecord>,
    #[serde(rename = "CD")]
    cd: bool,
    #[serde(rename = "Question")]
    question: Vec<DohQuestion>,
    #[serde(rename = "RA")]
    ra: bool,
    #[serde(rename = "RD")]
    rd: bool,
    #[serde(rename = "Status")]
    status: u16,
    #[serde(rename = "TC")]
    tc: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    edns_client_subnet: Option<String>,
}

#[derive(Serialize)]
struct DohRecord {
    #[serde(rename = "TTL")]
    ttl: u32,
    data: String,
    name: String,
    #[serde(rename = "type")]
    rtype: u16,
}

#[derive(Serialize)]
struct DohQuestion {
    name: String,
    #[serde(rename = "type")]
    rtype: u16,
}

/// RFC 8484 section 5.1: the freshness lifetime is the smallest TTL in the answer (for a
/// negative answer, the SOA's), so HTTP caches never outlive the DNS data.
pub(super) fn cache_control(response: &mut Response<Body>, message: &Message) {
    let ttl = message
        .answers
        .iter()
        .chain(&message.authorities)
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| r.ttl)
        .min();
    if let Some(ttl) = ttl
        && let Ok(value) = HeaderValue::from_str(&format!("max-age={ttl}"))
    {
        response.headers_mut().insert(CACHE_CONTROL, value);
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use serde_json::{Value, json};

    /// The `Value` rendering `doh_json` replaced, as the reference for its bytes.
    fn reference(message: &Message, subnet: Option<ipnet::IpNet>) -> String {
        let records = |records: &[Record]| -> Vec<Value> {
            records
                .iter()
                .filter(|r| r.record_type() != RecordType::OPT)
                .map(|r| {
                    json!({
                        "name": r.name.to_utf8(),
                        "type": u16::from(r.record_type()),
                        "TTL": r.ttl,
                        "data": r.data.to_string(),
                    })
                })
                .collect()
        };
        let meta = &message.metadata;
        let mut value = json!({
            "Status": u16::from(meta.response_code),
            "TC": meta.truncation,
            "RD": meta.recursion_desired,
            "RA": meta.recursion_available,
            "AD": meta.authentic_data,
            "CD": meta.checking_disabled,
            "Question": message.queries.iter().map(|q| json!({
                "name": q.name().to_utf8(),
                "type": u16::from(q.query_type()),
            })).collect::<Vec<_>>(),
            "Answer": records(&message.answers),
            "Authority": records(&message.authorities),
        });
        if let Some(subnet) = subnet {
            value["edns_client_subnet"] = json!(subnet.to_string());
        }
        value.to_string()
    }

    #[test]
    fn doh_json_bytes_match_the_value_rendering() {
        let name = Name::from_ascii("www.Example.test.").unwrap();
        // A label with a quote: JSON escaping must match too.
        let labels: [&[u8]; 3] = [b"edge\"q", b"example", b"test"];
        let target = Name::from_labels(labels).unwrap();
        let mut message = Message::response(7, hickory_proto::op::OpCode::Query);
        message.metadata.recursion_desired = true;
        message.metadata.recursion_available = true;
        message.add_query(Query::query(name.clone(), RecordType::A));
        message.add_answer(Record::from_rdata(
            name.clone(),
            60,
            RData::CNAME(CNAME(target.clone())),
        ));
        message.add_answer(Record::from_rdata(
            target,
            30,
            RData::A(A::new(10, 0, 0, 1)),
        ));
        let subnet = Some("192.0.2.0/24".parse().unwrap());
        for subnet in [None, subnet] {
            let rendered = super::doh_json(&message, subnet);
            assert_eq!(
                String::from_utf8(rendered).unwrap(),
                reference(&message, subnet)
            );
        }
        let mut negative = Message::response(8, hickory_proto::op::OpCode::Query);
        negative.metadata.response_code = ResponseCode::NXDomain;
        negative.metadata.authentic_data = true;
        negative.metadata.truncation = true;
        negative.add_query(Query::query(name, RecordType::AAAA));
        let soa = SOA::new(name_of("ns.test."), name_of("h.test."), 1, 2, 3, 4, 5);
        negative.add_authority(Record::from_rdata(name_of("test."), 5, RData::SOA(soa)));
        let rendered = super::doh_json(&negative, None);
        assert_eq!(
            String::from_utf8(rendered).unwrap(),
            reference(&negative, None)
        );
    }

    fn name_of(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }
}
