use hyper::http::header::ACCEPT_ENCODING;
use hyper::http::{HeaderMap, HeaderValue};

use super::super::{vary_key, vary_matches};
use super::headers;

/// Request header lines.
type Lines<'a> = &'a [(&'a str, &'a str)];

fn key(vary: &[&str], req: &[(&str, &str)]) -> Option<String> {
    let vary: Vec<(&str, &str)> = vary.iter().map(|v| ("vary", *v)).collect();
    vary_key(&headers(&vary), &headers(req))
}

#[test]
fn no_vary_is_an_empty_key() {
    assert_eq!(
        key(&[], &[("accept-encoding", "gzip")]).as_deref(),
        Some("")
    );
}

#[test]
fn star_never_matches() {
    assert_eq!(key(&["*"], &[]), None);
    assert_eq!(key(&["accept-encoding, *"], &[]), None);
    assert_eq!(key(&["accept-encoding", "*"], &[]), None);
    let resp = headers(&[("vary", "*")]);
    assert!(!vary_matches("", &resp, &HeaderMap::new()));
}

#[test]
fn key_format() {
    let table: &[(&[&str], Lines, &str)] = &[
        (
            &["Accept-Encoding"],
            &[("accept-encoding", "gzip")],
            "accept-encoding:gzip",
        ),
        // Missing differs from empty.
        (&["Accept-Encoding"], &[], "accept-encoding"),
        (
            &["Accept-Encoding"],
            &[("accept-encoding", "")],
            "accept-encoding:",
        ),
        // Names sorted and deduplicated, across lines.
        (
            &["User-Agent, accept-encoding", "Accept-Encoding"],
            &[("user-agent", "x"), ("accept-encoding", "br")],
            "accept-encoding:br\nuser-agent:x",
        ),
        // Invalid names are skipped.
        (&["accept encoding, x-a"], &[("x-a", "1")], "x-a:1"),
    ];
    for (vary, req, want) in table {
        assert_eq!(key(vary, req).as_deref(), Some(*want), "{vary:?} {req:?}");
    }
}

#[test]
fn values_are_whitespace_normalized() {
    let table = [
        ("gzip, br", "gzip,br"),
        ("  gzip ,br  ", "gzip,br"),
        ("gzip,\tbr", "gzip,br"),
        ("text/html;  q=0.9", "text/html; q=0.9"),
        ("a   b", "a b"),
        // Quoted strings are left alone.
        ("x; p=\"a  ,  b\"", "x; p=\"a  ,  b\""),
    ];
    for (value, normalized) in table {
        let got = key(&["x-v"], &[("x-v", value)]);
        assert_eq!(got, Some(format!("x-v:{normalized}")), "{value:?}");
    }
}

#[test]
fn multiple_lines_combine_like_one_list() {
    let one = key(&["accept"], &[("accept", "a, b")]);
    let two = key(&["accept"], &[("accept", "a"), ("accept", "b")]);
    assert_eq!(one, two);
}

#[test]
fn distinct_raw_bytes_never_collide() {
    let mut a = HeaderMap::new();
    a.insert(
        ACCEPT_ENCODING,
        HeaderValue::from_bytes(b"\xfe").expect("obs-text"),
    );
    let mut b = HeaderMap::new();
    b.insert(
        ACCEPT_ENCODING,
        HeaderValue::from_bytes(b"\xff").expect("obs-text"),
    );
    let resp = headers(&[("vary", "accept-encoding")]);
    let (ka, kb) = (vary_key(&resp, &a), vary_key(&resp, &b));
    assert_ne!(ka, kb);
    assert_eq!(ka.as_deref(), Some("accept-encoding:%FE"));
    // A literal "%FE" is escaped too (and, codings being case-insensitive, lowercased), so it
    // differs from the byte.
    let literal = headers(&[("accept-encoding", "%FE")]);
    assert_eq!(
        vary_key(&resp, &literal).as_deref(),
        Some("accept-encoding:%25fe")
    );
}

#[test]
fn matches() {
    let resp = headers(&[("vary", "accept-encoding, accept-language")]);
    let first = headers(&[("accept-encoding", "gzip"), ("accept-language", "en")]);
    let stored_key = vary_key(&resp, &first).expect("not Vary: *");
    let table: &[(&[(&str, &str)], bool)] = &[
        (
            &[("accept-encoding", "gzip"), ("accept-language", "en")],
            true,
        ),
        (
            &[("Accept-Language", "en"), ("Accept-Encoding", "gzip")],
            true,
        ),
        (
            &[("accept-encoding", " gzip "), ("accept-language", "en")],
            true,
        ),
        (
            &[("accept-encoding", "gzip"), ("accept-language", "de")],
            false,
        ),
        (&[("accept-encoding", "gzip")], false),
        (
            &[
                ("accept-encoding", "gzip"),
                ("accept-language", "en"),
                ("cookie", "x"),
            ],
            true,
        ),
        (&[], false),
    ];
    for (req, want) in table {
        assert_eq!(
            vary_matches(&stored_key, &resp, &headers(req)),
            *want,
            "{req:?}"
        );
    }
}

/// Language tags, codings and charsets are case-insensitive: `eN, De` selects what `en, de`
/// stored (the suite's `vary-normalise-lang-case`); other fields keep their case.
#[test]
fn case_insensitive_fields_match_in_any_case() {
    let lang = &["accept-language"];
    assert_eq!(
        key(lang, &[("accept-language", "eN, De")]),
        key(lang, &[("accept-language", "en, de")])
    );
    assert_eq!(
        key(&["accept-encoding"], &[("accept-encoding", "GZIP")]),
        Some("accept-encoding:gzip".into())
    );
    assert_ne!(
        key(&["x-token"], &[("x-token", "Ab")]),
        key(&["x-token"], &[("x-token", "ab")])
    );
}
