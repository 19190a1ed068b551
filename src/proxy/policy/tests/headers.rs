use hyper::http::HeaderMap;

use super::super::{merge_304, strip_hop_by_hop, strip_unshared_fields};
use super::headers;

/// All (name, value) lines, sorted, for order-independent comparison.
fn lines(map: &HeaderMap) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = map
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    all.sort();
    all
}

#[test]
fn hop_by_hop_fields_are_removed() {
    let mut map = headers(&[
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("trailer", "x-checksum"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("proxy-authorization", "Basic eA=="),
        ("proxy-authenticate", "Basic"),
        ("content-type", "text/plain"),
        ("cache-control", "max-age=1"),
    ]);
    strip_hop_by_hop(&mut map);
    assert_eq!(
        lines(&map),
        owned(&[
            ("content-type", "text/plain"),
            ("cache-control", "max-age=1")
        ])
    );
}

#[test]
fn fields_named_by_connection_are_removed() {
    let mut map = headers(&[
        ("connection", "close, X-Hop-One"),
        ("Connection", " x-hop-two ,,"),
        ("x-hop-one", "1"),
        ("x-hop-two", "2"),
        ("x-hop-two", "2b"),
        ("x-end-to-end", "3"),
    ]);
    strip_hop_by_hop(&mut map);
    assert_eq!(lines(&map), owned(&[("x-end-to-end", "3")]));
}

#[test]
fn nothing_to_strip_is_a_no_op() {
    let mut map = headers(&[("etag", "\"a\""), ("vary", "accept")]);
    let before = map.clone();
    strip_hop_by_hop(&mut map);
    assert_eq!(map, before);
    // An invalid name in Connection is skipped, not a panic.
    let mut map = headers(&[("connection", "bad name, \"quoted\""), ("etag", "\"a\"")]);
    strip_hop_by_hop(&mut map);
    assert_eq!(lines(&map), owned(&[("etag", "\"a\"")]));
}

#[test]
fn unshared_fields_are_stripped_before_storing() {
    let mut map = headers(&[
        (
            "cache-control",
            "max-age=60, private=\"X-User\", no-cache=\"set-cookie\"",
        ),
        ("x-user", "alice"),
        ("set-cookie", "id=1"),
        ("set-cookie", "theme=dark"),
        ("content-type", "text/html"),
    ]);
    let removed = strip_unshared_fields(&mut map);
    assert_eq!(
        lines(&map),
        owned(&[
            (
                "cache-control",
                "max-age=60, private=\"X-User\", no-cache=\"set-cookie\""
            ),
            ("content-type", "text/html"),
        ])
    );
    assert_eq!(
        lines(&removed),
        owned(&[
            ("x-user", "alice"),
            ("set-cookie", "id=1"),
            ("set-cookie", "theme=dark"),
        ])
    );
}

/// A cookie is shared only when the response says it is (`public`, `s-maxage`, also in
/// `CDN-Cache-Control`); otherwise it is the fetching client's alone.
#[test]
fn a_cookie_is_stored_only_when_the_response_is_shared() {
    let table = [
        (("cache-control", "max-age=60"), false),
        (("cache-control", "max-age=60, private=\"x-other\""), false),
        (("cache-control", "max-age=60, public"), true),
        (("cache-control", "s-maxage=60"), true),
        (("cdn-cache-control", "s-maxage=60"), true),
    ];
    for (field, kept) in table {
        let mut map = headers(&[field, ("set-cookie", "id=1")]);
        let removed = strip_unshared_fields(&mut map);
        assert_eq!(map.contains_key("set-cookie"), kept, "{field:?}");
        assert_eq!(removed.contains_key("set-cookie"), !kept, "{field:?}");
    }
}

#[test]
fn merge_304_replaces_fields() {
    let mut stored = headers(&[
        ("cache-control", "max-age=60"),
        ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("etag", "\"v1\""),
        ("content-type", "text/html"),
        ("content-length", "1234"),
        ("content-encoding", "gzip"),
        ("x-multi", "a"),
        ("x-multi", "b"),
        ("x-kept", "k"),
    ]);
    let fresh = headers(&[
        ("cache-control", "max-age=600"),
        ("date", "Sun, 06 Nov 1994 09:00:00 GMT"),
        ("etag", "\"v1\""),
        ("content-length", "0"),
        ("content-encoding", "br"),
        ("x-multi", "c"),
        ("x-new", "n"),
        ("connection", "x-conn-only"),
        ("x-conn-only", "hop"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
    ]);
    merge_304(&mut stored, &fresh);
    assert_eq!(
        lines(&stored),
        owned(&[
            ("cache-control", "max-age=600"),
            ("date", "Sun, 06 Nov 1994 09:00:00 GMT"),
            ("etag", "\"v1\""),
            ("content-type", "text/html"),
            ("content-length", "1234"),
            ("content-encoding", "gzip"),
            ("x-multi", "c"),
            ("x-kept", "k"),
            ("x-new", "n"),
        ])
    );
}

#[test]
fn merge_304_set_cookie_only_when_shareable() {
    let mut stored = headers(&[("cache-control", "max-age=60")]);
    merge_304(&mut stored, &headers(&[("set-cookie", "id=7")]));
    assert!(!stored.contains_key("set-cookie"));

    let mut stored = headers(&[
        ("cache-control", "max-age=60, public"),
        ("set-cookie", "v=1"),
    ]);
    merge_304(&mut stored, &headers(&[("set-cookie", "v=2")]));
    assert_eq!(
        lines(&stored),
        owned(&[
            ("cache-control", "max-age=60, public"),
            ("set-cookie", "v=2")
        ])
    );
}

#[test]
fn merge_304_applies_new_field_restrictions() {
    let mut stored = headers(&[("cache-control", "max-age=60"), ("x-user", "alice")]);
    merge_304(
        &mut stored,
        &headers(&[("cache-control", "max-age=60, private=\"x-user\"")]),
    );
    assert!(!stored.contains_key("x-user"));
}
