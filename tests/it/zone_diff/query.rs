//! Queries for `zone_diff` over raw UDP and TCP sockets, and the lenient decoder that reads each
//! response record by record (hickory's refuses some of what the zones hold).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::nsd_diff::{
    CorpusQuery, Endpoint, GIVE_UP_AFTER, Outcome, QUERY_TIMEOUT, Response, Transport, record_text,
    request,
};

/// `nsd_diff::ask_all` over plain sockets, with a decoder that takes every response a server may
/// send for these zones: hickory's message decoder refuses a record with empty rdata (`\# 0`) or
/// a SIG outside the additional section, and its TCP client then waits until the timeout. Here a
/// response that hickory cannot decode whole is read record by record (`lenient_response`).
pub(super) async fn ask_all(
    server: Endpoint,
    transport: Transport,
    corpus: &[CorpusQuery],
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(corpus.len());
    let mut tcp: Option<tokio::net::TcpStream> = None;
    let mut unanswered = 0;
    for (n, query) in corpus.iter().enumerate() {
        if unanswered >= GIVE_UP_AFTER {
            outcomes.push(Err(format!(
                "not sent: {GIVE_UP_AFTER} queries in a row went unanswered"
            )));
            continue;
        }
        let (mut message, _) = request(query, transport.edns()).into_parts();
        let id = (std::process::id() as u16)
            .wrapping_mul(31)
            .wrapping_add(n as u16);
        message.metadata.id = id;
        let bytes = message.to_vec().expect("encode a query");
        let exchange = async {
            match transport {
                Transport::UdpEdns | Transport::Udp => udp_exchange(server, &bytes, id).await,
                Transport::Tcp => tcp_exchange(server, &mut tcp, &bytes).await,
            }
        };
        let outcome = match tokio::time::timeout(QUERY_TIMEOUT, exchange).await {
            Ok(Ok(wire)) => decode_response(&wire),
            Ok(Err(e)) => Err(format!("no response: {e}")),
            Err(_) => Err("no response: request timed out".to_owned()),
        };
        if outcome.is_err() {
            tcp = None; // a fresh connection for the next query
        }
        unanswered = if outcome.is_ok() { 0 } else { unanswered + 1 };
        outcomes.push(outcome);
    }
    outcomes
}

async fn udp_exchange(server: Endpoint, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(server.udp).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let len = socket.recv(&mut buf).await?;
        if len >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            buf.truncate(len);
            return Ok(buf);
        }
    }
}

/// One query on the transport's TCP connection (opened on first use, RFC 7766 pipelining not
/// needed: one query at a time).
async fn tcp_exchange(
    server: Endpoint,
    connection: &mut Option<tokio::net::TcpStream>,
    query: &[u8],
) -> std::io::Result<Vec<u8>> {
    if connection.is_none() {
        *connection = Some(tokio::net::TcpStream::connect(server.tcp).await?);
    }
    let stream = connection.as_mut().expect("connected");
    let mut framed = u16::try_from(query.len())
        .expect("a short query")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

fn decode_response(wire: &[u8]) -> Outcome {
    lenient_response(wire).map_err(|e| format!("undecodable response: {e}"))
}

/// A response read record by record, rendered as `nsd_diff`'s `Response::new` does: each
/// record's rdata decoded by hickory where it can, and where it cannot kept as bytes (shown as
/// `\# LEN HEX`), with the names of the types of `names_in_rdata` decompressed and lowercased
/// first (a server may compress them, and does it its own way).
fn lenient_response(wire: &[u8]) -> Result<Response, String> {
    let mut decoder = BinDecoder::new(wire);
    let u16_at = |d: &mut BinDecoder<'_>| -> Result<u16, String> {
        d.read_u16()
            .map(|v| v.unverified())
            .map_err(|e| e.to_string())
    };
    let _id = u16_at(&mut decoder)?;
    let flags = u16_at(&mut decoder)?;
    let counts = [
        u16_at(&mut decoder)?,
        u16_at(&mut decoder)?,
        u16_at(&mut decoder)?,
        u16_at(&mut decoder)?,
    ];
    let mut question = Vec::new();
    for _ in 0..counts[0] {
        let name = Name::read(&mut decoder).map_err(|e| e.to_string())?;
        let qtype = RecordType::from(u16_at(&mut decoder)?);
        let _qclass = u16_at(&mut decoder)?;
        question.push(format!("{name} {qtype}"));
    }
    let mut sections: [Vec<String>; 3] = Default::default();
    let mut edns = false;
    let mut rcode_high = 0u8;
    for (section, &count) in counts[1..].iter().enumerate() {
        for _ in 0..count {
            let name = Name::read(&mut decoder).map_err(|e| e.to_string())?;
            let code = u16_at(&mut decoder)?;
            let class = u16_at(&mut decoder)?;
            let ttl = decoder
                .read_u32()
                .map(|v| v.unverified())
                .map_err(|e| e.to_string())?;
            let length = u16_at(&mut decoder)?;
            let start = decoder.index();
            let end = start + usize::from(length);
            let raw = wire.get(start..end).ok_or("rdata past the end")?;
            if code == u16::from(RecordType::OPT) {
                edns = true;
                rcode_high = (ttl >> 24) as u8;
                decoder
                    .read_slice(usize::from(length))
                    .map_err(|e| e.to_string())?;
                continue;
            }
            let rtype = RecordType::from(code);
            // A decoder of its own at the rdata (names in it may point anywhere before).
            let mut attempt = BinDecoder::new(wire);
            let decoded = attempt
                .read_slice(start)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    RData::read(&mut attempt, rtype, Restrict::new(length))
                        .map_err(|e| e.to_string())
                });
            let data = match decoded {
                Ok(RData::Unknown { .. }) | Err(_) => RData::Unknown {
                    code: rtype,
                    rdata: null(uncompressed_rdata(wire, start, end, code).unwrap_or(raw.to_vec())),
                },
                Ok(data) if attempt.index() == end => data,
                Ok(_) => RData::Unknown {
                    code: rtype,
                    rdata: null(raw.to_vec()),
                },
            };
            decoder
                .read_slice(usize::from(length))
                .map_err(|e| e.to_string())?;
            let mut record = Record::from_rdata(name, ttl, data);
            record.dns_class = DNSClass::from(class);
            sections[section].push(record_text(&record));
        }
    }
    for section in &mut sections {
        section.sort();
    }
    let [answer, authority, additional] = sections;
    Ok(Response {
        rcode: ResponseCode::from(rcode_high, (flags & 0x000f) as u8),
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        question,
        edns,
        answer,
        authority,
        additional,
    })
}

/// Opaque rdata (`NULL::with` refuses empty data).
fn null(bytes: Vec<u8>) -> NULL {
    if bytes.is_empty() {
        NULL::new()
    } else {
        NULL::with(bytes)
    }
}

/// Where the names are in the rdata of types hickory does not decode, which a server may
/// compress (the RFC 1035 types, RFC 3597 section 4) or which old servers did (RFC 3597 section
/// 4 names RP, AFSDB, RT, SIG, PX, NXT and NAPTR): the fields before, between and after the names.
enum Field {
    Name,
    Bytes(usize),
    Rest,
}

fn names_in_rdata(code: u16) -> Option<&'static [Field]> {
    use Field::{Bytes, Name, Rest};
    Some(match code {
        3 | 4 | 7 | 8 | 9 => &[Name],      // MD, MF, MB, MG, MR
        14 | 17 => &[Name, Name],          // MINFO, RP
        18 | 21 | 36 => &[Bytes(2), Name], // AFSDB, RT, KX
        26 => &[Bytes(2), Name, Name],     // PX
        24 => &[Bytes(18), Name, Rest],    // SIG
        30 => &[Name, Rest],               // NXT
        39 => &[Name],                     // DNAME (never compressed; lowercased all the same)
        _ => return None,
    })
}

/// The rdata at `wire[start..end]` with the names of `names_in_rdata` written out whole and in
/// lower case; None for other types or rdata that does not parse.
fn uncompressed_rdata(wire: &[u8], start: usize, end: usize, code: u16) -> Option<Vec<u8>> {
    let fields = names_in_rdata(code)?;
    let mut decoder = BinDecoder::new(wire);
    decoder.read_slice(start).ok()?;
    let mut out = Vec::new();
    for field in fields {
        match field {
            Field::Name => {
                let name = Name::read(&mut decoder).ok()?.to_lowercase();
                for label in name.iter() {
                    out.push(u8::try_from(label.len()).ok()?);
                    out.extend_from_slice(label);
                }
                out.push(0);
            }
            Field::Bytes(n) => out.extend_from_slice(decoder.read_slice(*n).ok()?.unverified()),
            Field::Rest => {
                let rest = end.checked_sub(decoder.index())?;
                out.extend_from_slice(decoder.read_slice(rest).ok()?.unverified());
            }
        }
    }
    (decoder.index() == end).then_some(out)
}
