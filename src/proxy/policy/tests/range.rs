use hyper::http::{HeaderMap, Method};

use super::super::{ByteRange, RangeError, byte_range, content_range, range_start};
use super::headers;

/// (first, last) of a 206, or `None` for a full 200.
type Span = Option<(u64, u64)>;

fn range(value: &str, len: u64) -> Result<Span, RangeError> {
    let req = headers(&[("range", value)]);
    byte_range(&Method::GET, &req, &HeaderMap::new(), len).map(|r| r.map(|r| (r.first, r.last)))
}

#[test]
fn single_ranges() {
    let table: &[(&str, u64, Span)] = &[
        ("bytes=0-499", 1000, Some((0, 499))),
        ("bytes=500-999", 1000, Some((500, 999))),
        ("bytes=0-0", 1000, Some((0, 0))),
        // Open-ended.
        ("bytes=100-", 1000, Some((100, 999))),
        // Past the end is clamped.
        ("bytes=900-5000", 1000, Some((900, 999))),
        ("bytes=0-99999999999999999999999", 1000, Some((0, 999))),
        // Suffix ranges.
        ("bytes=-500", 1000, Some((500, 999))),
        ("bytes=-1", 1000, Some((999, 999))),
        ("bytes=-5000", 1000, Some((0, 999))),
        // Unit is case-insensitive; OWS around the spec is tolerated.
        ("Bytes=1-2", 10, Some((1, 2))),
        ("bytes= 1-2 ", 10, Some((1, 2))),
        // Empty list elements do not make it a multi-range.
        ("bytes=1-2,", 10, Some((1, 2))),
    ];
    for &(value, len, want) in table {
        assert_eq!(range(value, len), Ok(want), "{value} of {len}");
    }
}

#[test]
fn ignored_ranges_mean_the_full_response() {
    for value in [
        // Multiple ranges would need multipart/byteranges.
        "bytes=0-1,5-6",
        "bytes=-1, 0-0",
        // Other units.
        "items=0-5",
        "none",
        // Malformed.
        "bytes=",
        "bytes=abc",
        "bytes=5",
        "bytes=1-x",
        "bytes=--5",
        "bytes=+1-2",
        // first > last is invalid.
        "bytes=10-5",
    ] {
        assert_eq!(range(value, 1000), Ok(None), "{value}");
    }
}

#[test]
fn unsatisfiable() {
    for (value, len) in [
        ("bytes=1000-", 1000),
        ("bytes=1000-2000", 1000),
        ("bytes=99999999999999999999999-", 1000),
        ("bytes=-0", 1000),
        ("bytes=0-", 0),
    ] {
        assert_eq!(
            range(value, len),
            Err(RangeError::Unsatisfiable),
            "{value} of {len}"
        );
    }
    assert_eq!(
        RangeError::Unsatisfiable.content_range(1000),
        "bytes */1000"
    );
}

#[test]
fn suffix_of_an_empty_body_is_the_full_response() {
    assert_eq!(range("bytes=-5", 0), Ok(None));
}

#[test]
fn no_range_only_get_one_line() {
    let none = byte_range(&Method::GET, &HeaderMap::new(), &HeaderMap::new(), 10);
    assert_eq!(none, Ok(None));
    let req = headers(&[("range", "bytes=0-1")]);
    assert_eq!(
        byte_range(&Method::HEAD, &req, &HeaderMap::new(), 10),
        Ok(None)
    );
    let two = headers(&[("range", "bytes=0-1"), ("range", "bytes=2-3")]);
    assert_eq!(
        byte_range(&Method::GET, &two, &HeaderMap::new(), 10),
        Ok(None)
    );
}

#[test]
fn if_range() {
    let stored = headers(&[
        ("etag", "\"v1\""),
        ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("date", "Sun, 06 Nov 1994 09:00:00 GMT"),
    ]);
    let table = [
        ("\"v1\"", true),
        ("\"v2\"", false),
        // Weak tags never match strongly.
        ("W/\"v1\"", false),
        ("Sun, 06 Nov 1994 08:49:37 GMT", true),
        ("Sun, 06 Nov 1994 08:49:38 GMT", false),
        ("garbage", false),
    ];
    for (if_range, honoured) in table {
        let req = headers(&[("range", "bytes=0-1"), ("if-range", if_range)]);
        let got = byte_range(&Method::GET, &req, &stored, 10);
        let want = honoured.then_some(ByteRange { first: 0, last: 1 });
        assert_eq!(got, Ok(want), "If-Range {if_range}");
    }
    // A failed If-Range sends the full response even if the range is unsatisfiable.
    let req = headers(&[("range", "bytes=50-"), ("if-range", "\"v2\"")]);
    assert_eq!(byte_range(&Method::GET, &req, &stored, 10), Ok(None));
}

#[test]
fn if_range_date_needs_a_strong_last_modified() {
    // Last-Modified equal to Date is weak (RFC 9110 8.8.2.2).
    let stored = headers(&[
        ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]);
    let req = headers(&[
        ("range", "bytes=0-1"),
        ("if-range", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]);
    assert_eq!(byte_range(&Method::GET, &req, &stored, 10), Ok(None));
}

#[test]
fn content_range_and_count() {
    let r = ByteRange {
        first: 500,
        last: 999,
    };
    assert_eq!(r.byte_count(), 500);
    assert_eq!(r.content_range(1000), "bytes 500-999/1000");
}

#[test]
fn where_a_range_starts_and_what_a_206_covers() {
    let start = |value: &str| range_start(&headers(&[("range", value)]));
    assert_eq!(start("bytes=3000000000-3100000000"), Some(3_000_000_000));
    assert_eq!(start("bytes=5-"), Some(5));
    assert_eq!(start("bytes=-100"), None);
    assert_eq!(start("bytes=1-2, 5-6"), None);
    assert_eq!(range_start(&HeaderMap::new()), None);
    assert_eq!(
        content_range(b"bytes 1048576-2097151/67108864"),
        Some((
            ByteRange {
                first: 1_048_576,
                last: 2_097_151
            },
            67_108_864
        ))
    );
    for bad in [
        "bytes */100",
        "bytes 5-4/100",
        "bytes 0-100/100",
        "items 0-1/2",
        "bytes 0-1/*",
    ] {
        assert_eq!(content_range(bad.as_bytes()), None, "{bad}");
    }
}
