//! Response encoding with RFC 2181 section 9 truncation: whole RRsets only, TC=1 when required
//! data does not fit, optional additional data dropped quietly.
//!
//! hickory-server's encoder writes the question from the raw request bytes, so answer owners
//! cannot be compressed against it, and cuts RRsets in half at the size limit; NSD, Knot and
//! BIND do neither. This encoder uses hickory-proto's `BinEncoder` (name compression included)
//! and rolls back to an RRset boundary when the next RRset does not fit.

use std::borrow::Cow;

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, Query};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::lookup::Answer;

/// Fixed part of an OPT record: root name, type, class, TTL, rdata length.
const OPT_FIXED_LEN: usize = 11;
/// An EDNS option's code and length fields.
const OPTION_HEADER_LEN: usize = 4;

/// Encodes a response into `out` (cleared first), no longer than `limit` bytes.
/// Returns the header that went out (counts and TC as sent).
pub fn encode(
    out: &mut Vec<u8>,
    mut metadata: Metadata,
    query: Option<&Query>,
    answer: &Answer<'_>,
    edns: Option<&Edns>,
    limit: usize,
) -> Result<Header, ProtoError> {
    out.clear();
    let mut encoder = BinEncoder::new(out);
    let place = encoder.place::<Header>()?;
    let mut counts = HeaderCounts::default();
    if let Some(query) = query {
        query.emit(&mut encoder)?;
        counts.queries = 1;
    }
    // Room for our OPT record is kept back from the start: it must go out even when truncated.
    let budget = limit.saturating_sub(edns.map_or(0, opt_len));

    let (answers, complete) = emit_rrsets(&mut encoder, &answer.answers, budget)?;
    counts.answers = answers;
    let mut truncated = !complete;
    if complete {
        let (authorities, complete) = emit_rrsets(&mut encoder, &answer.authority, budget)?;
        counts.authorities = authorities;
        truncated = !complete;
        if complete {
            let (additionals, complete) = emit_rrsets(&mut encoder, &answer.additional, budget)?;
            counts.additionals = additionals;
            // Glue is required in a referral (RFC 9471); other additional data is optional.
            truncated = !complete && is_referral(answer);
        }
    }
    if let Some(edns) = edns {
        let mut edns = edns.clone();
        edns.set_rcode_high(metadata.response_code.high());
        Record::from(&edns).emit(&mut encoder)?;
        counts.additionals += 1;
    }
    metadata.truncation = truncated;
    let header = Header { metadata, counts };
    encoder.emit_at(place, header)?;
    Ok(header)
}

/// Emits whole RRsets (runs of records with one owner and type) while they fit in `budget`.
/// Returns how many records went out and whether all of them did.
fn emit_rrsets(
    encoder: &mut BinEncoder<'_>,
    records: &[Cow<'_, Record>],
    budget: usize,
) -> Result<(u16, bool), ProtoError> {
    let mut count = 0u16;
    let mut start = 0;
    while start < records.len() {
        let first = &records[start];
        let end = records[start..]
            .iter()
            .position(|r| r.record_type() != first.record_type() || r.name != first.name)
            .map_or(records.len(), |n| start + n);
        let mark = encoder.offset();
        for record in &records[start..end] {
            record.emit(encoder)?;
        }
        if encoder.offset() > budget {
            encoder.set_offset(mark);
            encoder.trim();
            return Ok((count, false));
        }
        count += (end - start) as u16;
        start = end;
    }
    Ok((count, true))
}

fn is_referral(answer: &Answer<'_>) -> bool {
    !answer.authoritative
        && answer.answers.is_empty()
        && answer
            .authority
            .first()
            .is_some_and(|r| r.record_type() == RecordType::NS)
}

/// Wire length of our OPT record with its options.
fn opt_len(edns: &Edns) -> usize {
    let options: usize = edns
        .options()
        .as_ref()
        .iter()
        .map(|(_, option)| OPTION_HEADER_LEN + usize::from(option.len()))
        .sum();
    OPT_FIXED_LEN + options
}
