//! Bytes as `example.test.zone`, through the real loader (`ZoneSet::load_dir`, which reads,
//! validates and indexes the zone). A zone that loads is then asked the sample queries through
//! the request handler, whose responses must parse back and fit their limits.
//!
//! Every record the reader takes is also printed in presentation form and read again: the
//! printer and the reader must agree on the wire bytes (the round trip of every type).
//!
//! Inputs with `$INCLUDE` are skipped: it reads another local file named in the input (an
//! operator's choice, not untrusted bytes), and `/dev/zero` would stall the fuzzer. So are
//! inputs with more than one `$GENERATE`: each may stand for 65,536 records, which is BIND's
//! meaning, not a cost of the reader.

use std::path::Path;

use edgenode::dns::ZoneSet;
use edgenode::dns::zonefile::{self, print, types};

use super::dns_message::{exchange, handler_for, sample_queries};

/// `example.test.` in wire form.
const ORIGIN: &[u8] = b"\x07example\x04test\x00";

pub fn run(data: &[u8]) {
    if contains_ignore_case(data, b"$include") || count_ignore_case(data, b"$generate") > 1 {
        return;
    }
    round_trip(data);
    let dir = super::scratch_dir();
    std::fs::write(dir.path().join("example.test.zone"), data).expect("write zone");
    let Ok(zones) = ZoneSet::load_dir(dir.path()) else {
        return;
    };
    let handler = handler_for(zones);
    for query in sample_queries() {
        exchange(&handler, query);
    }
}

/// Reads `data`, prints each record's rdata, reads that back: the same octets.
fn round_trip(data: &[u8]) {
    let mut records: Vec<(u16, Vec<u8>)> = Vec::new();
    zonefile::read_text(data, Path::new("fuzz.zone"), ORIGIN, &mut |record, _| {
        records.push((record.rtype, record.rdata.to_vec()));
        Ok(())
    });
    for (rtype, rdata) in records {
        let text = print::rdata_to_text(rtype, &rdata);
        let line = format!("x 1 IN {} {text}\n", types::type_name(rtype));
        let mut again = None;
        let report = zonefile::read_text(
            line.as_bytes(),
            Path::new("printed"),
            ORIGIN,
            &mut |r, _| {
                again = Some(r.rdata.to_vec());
                Ok(())
            },
        );
        assert!(
            report.errors.is_empty(),
            "{line:?} (printed from {rdata:02x?}) does not read back: {:?}",
            report.errors
        );
        assert_eq!(
            again.as_deref(),
            Some(rdata.as_slice()),
            "{line:?} reads back otherwise"
        );
    }
}

pub(super) fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    count_ignore_case(haystack, needle) > 0
}

fn count_ignore_case(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| w.eq_ignore_ascii_case(needle))
        .count()
}
