use hyper::http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH};

use super::super::{format_http_date, not_modified, validated_by, validation_headers};
use super::{EXAMPLE, at, headers};

fn date(offset: i64) -> String {
    format_http_date(at(EXAMPLE.checked_add_signed(offset).expect("in range")))
}

#[test]
fn if_none_match_uses_weak_comparison() {
    // (stored ETag, If-None-Match, 304?)
    let table = [
        ("\"abc\"", "\"abc\"", true),
        ("\"abc\"", "W/\"abc\"", true),
        ("W/\"abc\"", "\"abc\"", true),
        ("W/\"abc\"", "W/\"abc\"", true),
        ("\"abc\"", "\"abd\"", false),
        ("\"abc\"", "\"x\", \"y\",W/\"abc\"", true),
        ("\"abc\"", "\"x\", \"y\"", false),
        // Commas inside an entity tag do not split it.
        ("\"a,b\"", "\"a,b\"", true),
        ("\"a,b\"", "\"a\", \"b\"", false),
        // `*` matches any stored representation.
        ("\"abc\"", "*", true),
        // Tags are case-sensitive.
        ("\"abc\"", "\"ABC\"", false),
        // Tolerated: unquoted tags from sloppy origins.
        ("abc", "abc", true),
        // Garbage never matches.
        ("\"abc\"", "", false),
    ];
    for (etag, inm, want) in table {
        let stored = headers(&[("etag", etag)]);
        let req = headers(&[("if-none-match", inm)]);
        assert_eq!(
            not_modified(&req, &stored),
            want,
            "ETag {etag} If-None-Match {inm}"
        );
    }
}

#[test]
fn if_none_match_across_lines_and_without_stored_etag() {
    let stored = headers(&[("etag", "\"v2\"")]);
    let req = headers(&[("if-none-match", "\"v1\""), ("if-none-match", "\"v2\"")]);
    assert!(not_modified(&req, &stored));
    let no_etag = headers(&[("last-modified", &date(-60))]);
    assert!(!not_modified(
        &headers(&[("if-none-match", "\"v2\"")]),
        &no_etag
    ));
    assert!(not_modified(&headers(&[("if-none-match", "*")]), &no_etag));
}

#[test]
fn if_modified_since() {
    // (stored Last-Modified offset, If-Modified-Since offset, 304?)
    let table = [(-60, 0, true), (0, 0, true), (10, 0, false)];
    for (lm, ims, want) in table {
        let stored = headers(&[("last-modified", &date(lm))]);
        let req = headers(&[("if-modified-since", &date(ims))]);
        assert_eq!(not_modified(&req, &stored), want, "lm={lm} ims={ims}");
    }
}

#[test]
fn if_modified_since_falls_back_to_date() {
    let stored = headers(&[("date", &date(-5))]);
    assert!(not_modified(
        &headers(&[("if-modified-since", &date(0))]),
        &stored
    ));
    assert!(!not_modified(
        &headers(&[("if-modified-since", &date(-6))]),
        &stored
    ));
    // No Last-Modified, no Date: nothing to compare.
    assert!(!not_modified(
        &headers(&[("if-modified-since", &date(0))]),
        &headers(&[])
    ));
}

#[test]
fn if_modified_since_ignored_when_invalid_or_repeated() {
    let stored = headers(&[("last-modified", &date(-60))]);
    assert!(!not_modified(
        &headers(&[("if-modified-since", "yesterday")]),
        &stored
    ));
    let twice = headers(&[
        ("if-modified-since", &date(0)),
        ("if-modified-since", &date(0)),
    ]);
    assert!(!not_modified(&twice, &stored));
    // The obsolete formats are valid HTTP-dates.
    let asctime = headers(&[("if-modified-since", "Sun Nov  6 08:49:37 1994")]);
    assert!(not_modified(&asctime, &stored));
}

#[test]
fn if_none_match_takes_precedence() {
    let stored = headers(&[("etag", "\"v2\""), ("last-modified", &date(-60))]);
    // The dates alone would say "not modified", the tag says "modified": the tag wins.
    let req = headers(&[("if-none-match", "\"v1\""), ("if-modified-since", &date(0))]);
    assert!(!not_modified(&req, &stored));
    let req = headers(&[
        ("if-none-match", "\"v2\""),
        ("if-modified-since", &date(-3600)),
    ]);
    assert!(not_modified(&req, &stored));
}

#[test]
fn no_conditionals_no_304() {
    let stored = headers(&[("etag", "\"v\""), ("last-modified", &date(-60))]);
    assert!(!not_modified(&headers(&[]), &stored));
    // If-Match is the origin's business.
    assert!(!not_modified(&headers(&[("if-match", "\"v\"")]), &stored));
}

#[test]
fn validation_headers_from_validators() {
    let lm = date(-60);
    let stored = headers(&[
        ("etag", "W/\"v1\""),
        ("last-modified", &lm),
        ("content-type", "text/plain"),
    ]);
    let sent = validation_headers(&stored);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent.get(IF_NONE_MATCH).map(|v| v.as_bytes()),
        Some(&b"W/\"v1\""[..])
    );
    assert_eq!(
        sent.get(IF_MODIFIED_SINCE).map(|v| v.as_bytes()),
        Some(lm.as_bytes())
    );
    assert!(
        validation_headers(&headers(&[("etag", "\"v1\"")]))
            .get(IF_MODIFIED_SINCE)
            .is_none()
    );
    assert!(
        validation_headers(&headers(&[("last-modified", &lm)]))
            .get(IF_NONE_MATCH)
            .is_none()
    );
    // Unusable validators are not sent.
    assert!(validation_headers(&headers(&[("etag", ""), ("last-modified", "soon")])).is_empty());
    assert!(validation_headers(&headers(&[])).is_empty());
}

#[test]
fn which_304_validates_the_stored_response() {
    let lm = date(-60);
    let other = date(-30);
    let stored = headers(&[("etag", "\"v1\""), ("last-modified", &lm)]);
    let table = [
        (vec![("etag", "\"v1\"")], true),
        (vec![("etag", "W/\"v1\"")], true),
        (vec![("etag", "\"v2\"")], false),
        (vec![("last-modified", lm.as_str())], true),
        (vec![("last-modified", other.as_str())], false),
        // The ETag decides when both are present.
        (
            vec![("etag", "\"v1\""), ("last-modified", other.as_str())],
            true,
        ),
        (vec![("cache-control", "max-age=60")], true),
    ];
    for (resp_304, want) in table {
        assert_eq!(
            validated_by(&stored, &headers(&resp_304)),
            want,
            "{resp_304:?}"
        );
    }
    assert!(!validated_by(
        &headers(&[]),
        &headers(&[("etag", "\"v1\"")])
    ));
}
