//! Arbitrary header bytes never panic any policy function: a cheap, deterministic stand-in for
//! the fuzz target these parsers deserve (STYLE 13).

use std::time::Duration;

use hyper::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use super::super::{
    CacheControl, StoredMeta, byte_range, current_age, freshness_lifetime, merge_304, not_modified,
    parse_http_date, reuse, serve_stale_on_error, storable, strip_hop_by_hop,
    strip_unshared_fields, validated_by, validation_headers, vary_key, vary_matches,
};
use super::{EXAMPLE, at};

/// Pieces that exercise the parsers' edge cases: separators, quotes, escapes, digits, huge
/// numbers, directive and unit names, dates, obs-text.
const PIECES: &[&[u8]] = &[
    b",",
    b"\"",
    b"\\",
    b"=",
    b"-",
    b" ",
    b"\t",
    b"*",
    b"W/",
    b"w/",
    b";",
    b"0",
    b"1",
    b"60",
    b"99999999999999999999999",
    b"max-age",
    b"s-maxage",
    b"no-cache",
    b"private",
    b"max-stale",
    b"min-fresh",
    b"stale-if-error",
    b"stale-while-revalidate",
    b"bytes",
    b"bytes=",
    b"GMT",
    b"Sun, 06 Nov 1994 08:49:37 GMT",
    b"Sunday, 06-Nov-94 08:49:37 GMT",
    b"Nov",
    b":",
    b"x-a",
    b"\xff",
    b"\x80",
    b"set-cookie",
    b"accept",
];

const FIELDS: &[&str] = &[
    "cache-control",
    "expires",
    "date",
    "last-modified",
    "age",
    "etag",
    "vary",
    "connection",
    "if-none-match",
    "if-modified-since",
    "if-range",
    "range",
    "authorization",
    "set-cookie",
    "accept",
    "x-a",
];

/// xorshift64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

fn random_headers(rng: &mut Rng) -> HeaderMap {
    let mut map = HeaderMap::new();
    for _ in 0..rng.next(12) {
        let mut value = Vec::new();
        for _ in 0..rng.next(8) {
            value.extend_from_slice(PIECES[rng.next(PIECES.len())]);
        }
        let name = HeaderName::from_static(FIELDS[rng.next(FIELDS.len())]);
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            map.append(name, value);
        }
    }
    map
}

#[test]
fn random_headers_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..10_000 {
        let req = random_headers(&mut rng);
        let mut resp = random_headers(&mut rng);
        let status = StatusCode::OK;
        let _ = storable(&Method::GET, &req, status, &resp);
        let _ = freshness_lifetime(&resp, status, at(EXAMPLE), Duration::from_secs(86_400));
        let _ = current_age(&resp, at(EXAMPLE), at(EXAMPLE + 1), at(EXAMPLE + 2));
        let meta = StoredMeta::new(&resp, status, at(0), at(1), at(EXAMPLE), Duration::MAX);
        let req_cc = CacheControl::parse(&req);
        let _ = reuse(&meta, &req_cc);
        let _ = serve_stale_on_error(&meta, &req_cc);
        if let Some(key) = vary_key(&resp, &req) {
            assert!(vary_matches(&key, &resp, &req));
        }
        let _ = not_modified(&req, &resp);
        let _ = validation_headers(&resp);
        let _ = validated_by(&resp, &req);
        for len in [0, 1, 10, u64::MAX] {
            if let Ok(Some(range)) = byte_range(&Method::GET, &req, &resp, len) {
                assert!(range.first <= range.last && range.last < len);
                let _ = range.byte_count();
            }
        }
        for value in resp.values() {
            let _ = parse_http_date(value.as_bytes());
        }
        let fresh = random_headers(&mut rng);
        merge_304(&mut resp, &fresh);
        strip_unshared_fields(&mut resp);
        strip_hop_by_hop(&mut resp);
    }
}
