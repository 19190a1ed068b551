//! The Google / Cloudflare JSON schema, written straight from the wire-format response: no
//! `Message`, no `Value` tree, no string per field for the common records. Keys come in the
//! order `serde_json`'s `json!` emitted them (sorted), so the bytes are those of the earlier
//! rendering through hickory's `Message`; records this module does not render itself (other
//! types, names needing escapes or IDNA) are decoded by hickory-proto as before.

use std::iter::Peekable;
use std::net::Ipv6Addr;

use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use ipnet::IpNet;

use super::render;
use crate::dns::reader::{self, HEADER_LEN, RecordAt, Records, Section, read_u16, read_u32, rtype};

/// The JSON body for a response; None when the response is malformed.
pub(super) fn render(wire: &[u8], subnet: Option<IpNet>) -> Option<Vec<u8>> {
    let flags = read_u16(wire, 2)?;
    let flag = |bit: u16| if flags & bit != 0 { "true" } else { "false" };
    let mut out = Vec::with_capacity(wire.len() * 3 + 128);
    let mut text = String::with_capacity(64);
    out.extend_from_slice(b"{\"AD\":");
    out.extend_from_slice(flag(0x0020).as_bytes());
    let mut records = Records::new(wire)?.peekable();
    out.extend_from_slice(b",\"Answer\":");
    section(&mut records, Section::Answer, wire, &mut out, &mut text)?;
    out.extend_from_slice(b",\"Authority\":");
    section(&mut records, Section::Authority, wire, &mut out, &mut text)?;
    // The extended rcode's upper 8 bits are in the OPT record's TTL field (RFC 6891).
    let mut rcode_high = 0;
    for record in records {
        let record = record?;
        if record.rtype == rtype::OPT {
            rcode_high = (record.ttl >> 24) as u16;
        }
    }
    out.extend_from_slice(b",\"CD\":");
    out.extend_from_slice(flag(0x0010).as_bytes());
    out.extend_from_slice(b",\"Question\":[");
    let mut at = HEADER_LEN;
    for index in 0..read_u16(wire, 4)? {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        text.clear();
        name_text(wire, at, &mut text)?;
        string(&mut out, &text);
        at = reader::skip_name(wire, at)?;
        out.extend_from_slice(b",\"type\":");
        number(&mut out, read_u16(wire, at)?);
        out.push(b'}');
        at += 4;
    }
    out.extend_from_slice(b"],\"RA\":");
    out.extend_from_slice(flag(0x0080).as_bytes());
    out.extend_from_slice(b",\"RD\":");
    out.extend_from_slice(flag(0x0100).as_bytes());
    out.extend_from_slice(b",\"Status\":");
    number(&mut out, (rcode_high << 4) | (flags & 0x000F));
    out.extend_from_slice(b",\"TC\":");
    out.extend_from_slice(flag(0x0200).as_bytes());
    if let Some(subnet) = subnet {
        out.extend_from_slice(b",\"edns_client_subnet\":");
        string(&mut out, &subnet.to_string());
    }
    out.push(b'}');
    Some(out)
}

/// `[{"TTL":..,"data":..,"name":..,"type":..}, ...]` for the records of `section` next in
/// `records`, OPT left out.
fn section(
    records: &mut Peekable<Records<'_>>,
    section: Section,
    wire: &[u8],
    out: &mut Vec<u8>,
    text: &mut String,
) -> Option<()> {
    out.push(b'[');
    let mut first = true;
    while let Some(next) = records.next_if(|r| r.as_ref().is_none_or(|r| r.section == section)) {
        let record = next?;
        if record.rtype == rtype::OPT {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        text.clear();
        let fast = data_text(wire, &record, text).and_then(|()| {
            let data_end = text.len();
            plain_name(wire, record.owner, text).map(|()| data_end)
        });
        if let Some(data_end) = fast {
            record_json(out, record.ttl, text.split_at(data_end), record.rtype);
        } else {
            // Other types, names needing escapes or IDNA: hickory renders them.
            let mut decoder = BinDecoder::new(wire).clone(u16::try_from(record.owner).ok()?);
            let decoded = Record::read(&mut decoder).ok()?;
            let (data, name) = (decoded.data.to_string(), decoded.name.to_utf8());
            let rtype = u16::from(decoded.record_type());
            record_json(out, decoded.ttl, (&data, &name), rtype);
        }
    }
    out.push(b']');
    Some(())
}

fn record_json(out: &mut Vec<u8>, ttl: u32, (data, name): (&str, &str), rtype: u16) {
    out.extend_from_slice(b"{\"TTL\":");
    number(out, ttl);
    out.extend_from_slice(b",\"data\":");
    string(out, data);
    out.extend_from_slice(b",\"name\":");
    string(out, name);
    out.extend_from_slice(b",\"type\":");
    number(out, rtype);
    out.push(b'}');
}

/// The presentation form of the rdata of A, AAAA, NS, CNAME, PTR and SOA records with plain
/// names; None for anything else.
fn data_text(wire: &[u8], record: &RecordAt, text: &mut String) -> Option<()> {
    let rdata = wire.get(record.rdata.clone())?;
    let start = record.rdata.start;
    match record.rtype {
        rtype::A => {
            render::write_ipv4(text, rdata.try_into().ok()?);
        }
        rtype::AAAA => {
            let octets: [u8; 16] = rdata.try_into().ok()?;
            write_display(text, Ipv6Addr::from(octets));
        }
        rtype::NS | rtype::CNAME | rtype::PTR => {
            if reader::skip_name(wire, start)? != record.rdata.end {
                return None;
            }
            plain_name(wire, start, text)?;
        }
        rtype::SOA => {
            let rname = reader::skip_name(wire, start)?;
            let numbers = reader::skip_name(wire, rname)?;
            if numbers + 20 != record.rdata.end {
                return None;
            }
            plain_name(wire, start, text)?;
            text.push(' ');
            plain_name(wire, rname, text)?;
            // Serial and minimum are unsigned, refresh, retry and expire signed (RFC 1035).
            let field = |i: usize| read_u32(wire, numbers + 4 * i);
            let (serial, minimum) = (field(0)?, field(4)?);
            let signed = |i: usize| field(i).map(|v| i32::from_be_bytes(v.to_be_bytes()));
            let (refresh, retry, expire) = (signed(1)?, signed(2)?, signed(3)?);
            write_display(
                text,
                format_args!(" {serial} {refresh} {retry} {expire} {minimum}"),
            );
        }
        _ => return None,
    }
    Some(())
}

fn plain_name(wire: &[u8], at: usize, text: &mut String) -> Option<()> {
    reader::write_plain_name(wire, at, text).then_some(())
}

/// A question's name: plain, or as hickory displays it.
fn name_text(wire: &[u8], at: usize, text: &mut String) -> Option<()> {
    if reader::write_plain_name(wire, at, text) {
        return Some(());
    }
    let mut decoder = BinDecoder::new(wire).clone(u16::try_from(at).ok()?);
    text.push_str(&Name::read(&mut decoder).ok()?.to_utf8());
    Some(())
}

fn write_display(text: &mut String, value: impl std::fmt::Display) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(text, "{value}");
}

/// A JSON string: as is when nothing needs escaping, else through serde_json.
fn string(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

fn number(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, TXT};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use serde_json::{Value, json};

    /// The `Value` rendering of the decoded `Message` this module replaced: the reference for
    /// its bytes.
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

    fn check(message: &Message) -> String {
        let wire = message.to_vec().unwrap();
        let decoded = Message::from_vec(&wire).unwrap();
        let subnet = Some("192.0.2.0/24".parse().unwrap());
        for subnet in [None, subnet] {
            let rendered = String::from_utf8(super::render(&wire, subnet).unwrap()).unwrap();
            assert_eq!(rendered, reference(&decoded, subnet));
        }
        reference(&decoded, None)
    }

    fn name(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    fn record(owner: &Name, ttl: u32, data: RData) -> Record {
        Record::from_rdata(owner.clone(), ttl, data)
    }

    #[test]
    fn positive_answers_match_the_message_rendering() {
        let owner = name("www.Example.test.");
        // A label with a quote: JSON escaping must match too.
        let labels: [&[u8]; 3] = [b"edge\"q", b"example", b"test"];
        let quoted = Name::from_labels(labels).unwrap();
        let mut message = Message::response(7, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.metadata.recursion_available = true;
        message.add_query(Query::query(owner.clone(), RecordType::A));
        let cname = |target: &Name| RData::CNAME(CNAME(target.clone()));
        message.add_answer(record(&owner, 60, cname(&quoted)));
        message.add_answer(record(&quoted, 30, RData::A(A::new(10, 0, 0, 1))));
        let idn = name("xn--bcher-kva.example.");
        message.add_answer(record(&idn, 5, RData::A(A::new(10, 0, 0, 2))));
        message.add_answer(record(&owner, 6, cname(&idn)));
        let v6 = RData::AAAA(AAAA::from_str("2001:db8::1").unwrap());
        message.add_answer(record(&owner, 7, v6));
        let mx = RData::MX(MX::new(10, name("mail.example.test.")));
        message.add_answer(record(&owner, 8, mx));
        let txt = RData::TXT(TXT::new(vec![
            "a \"quoted\" \\ string".into(),
            "two".into(),
        ]));
        message.add_answer(record(&owner, 9, txt));
        let ptr = RData::PTR(PTR(name("_srv._tcp.example.test.")));
        message.add_answer(record(&name("1.2.0.192.in-addr.arpa."), 10, ptr));
        let ns = RData::NS(NS(name("ns-1.example.test.")));
        message.add_authority(record(&name("example.test."), 11, ns));
        let rendered = check(&message);
        assert!(rendered.contains(r#""data":"10.0.0.1","name":"edge\\\"q.example.test.""#));
        assert!(rendered.contains("bücher"), "{rendered}");
    }

    #[test]
    fn negative_answers_and_extended_codes_match_the_message_rendering() {
        let mut negative = Message::response(8, OpCode::Query);
        negative.metadata.response_code = ResponseCode::NXDomain;
        negative.metadata.authentic_data = true;
        negative.metadata.truncation = true;
        negative.metadata.checking_disabled = true;
        negative.add_query(Query::query(name("nope.Example.test."), RecordType::AAAA));
        let soa = SOA::new(name("ns.test."), name("h.test."), 1, 2, 3, 4, 5);
        negative.add_authority(record(&name("test."), 5, RData::SOA(soa)));
        // Refresh, retry and expire are signed in hickory: one past i32::MAX.
        let soa = SOA::new(name("."), name("a-b.test."), u32::MAX, -5, 0, i32::MIN, 7);
        negative.add_authority(record(&Name::root(), 6, RData::SOA(soa)));
        assert!(check(&negative).contains(r#""Status":3"#));

        let mut badvers = Message::response(9, OpCode::Query);
        badvers.metadata.response_code = ResponseCode::BADVERS;
        badvers.add_query(Query::query(name("x.test."), RecordType::MX));
        badvers.set_edns(Edns::new());
        assert!(check(&badvers).contains(r#""Status":16"#));
    }

    #[test]
    fn malformed_responses_are_none() {
        let mut message = Message::response(7, OpCode::Query);
        message.add_query(Query::query(name("www.example.test."), RecordType::A));
        message.add_answer(record(
            &name("www.example.test."),
            60,
            RData::A(A::new(1, 2, 3, 4)),
        ));
        let wire = message.to_vec().unwrap();
        for cut in 0..wire.len() {
            assert!(super::render(&wire[..cut], None).is_none(), "cut at {cut}");
        }
    }
}
