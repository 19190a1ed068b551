//! Bytes as `example.test.zone`, through the real loader (`ZoneSet::load_dir`, which parses,
//! validates and indexes the zone). A zone that loads is then asked the sample queries through
//! the request handler, whose responses must parse back and fit their limits.
//!
//! Inputs with `$INCLUDE` are skipped: it reads another local file named in the input (an
//! operator's choice, not untrusted bytes), and `/dev/zero` would stall the fuzzer.

use edgenode::dns::ZoneSet;

use super::dns_message::{exchange, handler_for, sample_queries};

pub fn run(data: &[u8]) {
    if contains_ignore_case(data, b"$include") {
        return;
    }
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

pub(super) fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}
