//! `CDN-Cache-Control` (RFC 9213): it replaces `Cache-Control` and `Expires` for this cache
//! when it is a valid Structured Fields dictionary, and is ignored whole when it is not. The
//! cases are those of the public caching test suite's `cdn-*` tests.

use std::time::Duration;

use hyper::http::{Method, StatusCode};

use super::super::{NotStorable, format_http_date, freshness_lifetime, storable};
use super::{EXAMPLE, at, headers, secs};

fn lifetime(resp: &[(&str, &str)]) -> Option<Duration> {
    freshness_lifetime(
        &headers(resp),
        StatusCode::OK,
        at(EXAMPLE),
        Duration::from_secs(86_400),
    )
}

fn store(resp: &[(&str, &str)]) -> Result<(), NotStorable> {
    storable(&Method::GET, &headers(&[]), StatusCode::OK, &headers(resp))
}

#[test]
fn the_targeted_field_wins_over_cache_control_and_expires() {
    let cdn = "cdn-cache-control";
    assert_eq!(
        lifetime(&[(cdn, "max-age=3600"), ("cache-control", "max-age=1")]),
        Some(secs(3600))
    );
    assert_eq!(
        lifetime(&[(cdn, "max-age=1"), ("cache-control", "max-age=3600")]),
        Some(secs(1))
    );
    let future = format_http_date(at(EXAMPLE + 10_000));
    let now = format_http_date(at(EXAMPLE));
    let expires = [
        (cdn, "max-age=0"),
        ("expires", future.as_str()),
        ("date", now.as_str()),
    ];
    assert_eq!(lifetime(&expires), Some(Duration::ZERO));
    assert_eq!(lifetime(&[(cdn, "foobar, max-age=3600")]), Some(secs(3600)));
    // Delta-seconds cap at 2^31 (RFC 9111 1.2.2), as in Cache-Control.
    assert_eq!(
        lifetime(&[(cdn, "max-age=99999999999")]),
        Some(secs(2_147_483_648))
    );

    assert_eq!(
        store(&[(cdn, "private"), ("cache-control", "max-age=10000")]),
        Err(NotStorable::Private)
    );
    assert_eq!(
        store(&[(cdn, "no-store"), ("cache-control", "max-age=10000")]),
        Err(NotStorable::NoStore)
    );
    assert_eq!(
        store(&[(cdn, "max-age=10000"), ("cache-control", "no-store")]),
        Ok(())
    );
}

#[test]
fn an_invalid_targeted_field_is_ignored_whole() {
    let cdn = "cdn-cache-control";
    for invalid in [
        "max-age=10000, &&&&&",
        "max-age=\"10000\"",
        "max-age =100",
        "max-age= 100",
        "MaX-aGe=100",
    ] {
        assert_eq!(
            store(&[(cdn, invalid), ("cache-control", "no-store")]),
            Err(NotStorable::NoStore),
            "{invalid:?}"
        );
        assert_eq!(
            lifetime(&[(cdn, invalid), ("cache-control", "max-age=1")]),
            Some(secs(1)),
            "{invalid:?}"
        );
    }
}
