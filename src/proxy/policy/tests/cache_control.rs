use super::super::CacheControl;
use super::headers;

fn cc(lines: &[&str]) -> CacheControl {
    let lines: Vec<(&str, &str)> = lines.iter().map(|l| ("cache-control", *l)).collect();
    CacheControl::parse(&headers(&lines))
}

#[test]
fn absent_is_default() {
    assert_eq!(CacheControl::parse(&headers(&[])), CacheControl::default());
}

#[test]
fn each_boolean_directive() {
    type Get = fn(&CacheControl) -> bool;
    let table: [(&str, Get); 11] = [
        ("no-store", |c| c.no_store),
        ("no-cache", |c| c.no_cache),
        ("private", |c| c.private),
        ("public", |c| c.public),
        ("must-revalidate", |c| c.must_revalidate),
        ("proxy-revalidate", |c| c.proxy_revalidate),
        ("immutable", |c| c.immutable),
        ("only-if-cached", |c| c.only_if_cached),
        ("no-transform", |c| c.no_transform),
        ("must-understand", |c| c.must_understand),
        ("NO-STORE", |c| c.no_store),
    ];
    for (line, get) in table {
        let parsed = cc(&[line]);
        assert!(get(&parsed), "{line}");
        assert!(!get(&CacheControl::default()), "{line}");
    }
}

#[test]
fn each_seconds_directive() {
    type Get = fn(&CacheControl) -> Option<u64>;
    let table: [(&str, Get, Option<u64>); 10] = [
        ("max-age=60", |c| c.max_age, Some(60)),
        ("s-maxage=30", |c| c.s_maxage, Some(30)),
        ("min-fresh=5", |c| c.min_fresh, Some(5)),
        (
            "stale-while-revalidate=10",
            |c| c.stale_while_revalidate,
            Some(10),
        ),
        ("stale-if-error=86400", |c| c.stale_if_error, Some(86_400)),
        // Quoted arguments are accepted too (RFC 9111 5.2).
        ("max-age=\"60\"", |c| c.max_age, Some(60)),
        ("Max-Age=7", |c| c.max_age, Some(7)),
        // Whitespace around "=" is not in the grammar but harmless to accept.
        ("max-age = 8", |c| c.max_age, Some(8)),
        // Overflow is 2^31 (RFC 9111 1.2.2).
        (
            "max-age=99999999999999999999999",
            |c| c.max_age,
            Some(1 << 31),
        ),
        ("max-age=0", |c| c.max_age, Some(0)),
    ];
    for (line, get, want) in table {
        assert_eq!(get(&cc(&[line])), want, "{line}");
    }
}

#[test]
fn invalid_max_age_is_stale() {
    for line in [
        "max-age=abc",
        "max-age=-1",
        "max-age=",
        "max-age",
        "max-age=1.5",
    ] {
        assert_eq!(cc(&[line]).max_age, Some(0), "{line}");
    }
    assert_eq!(cc(&["s-maxage=x"]).s_maxage, Some(0));
}

#[test]
fn invalid_other_values_are_ignored() {
    let parsed = cc(&["stale-while-revalidate=x, stale-if-error=, min-fresh=-3, max-stale=y"]);
    assert_eq!(parsed, CacheControl::default());
}

#[test]
fn max_stale_with_and_without_value() {
    assert_eq!(cc(&["max-stale"]).max_stale, Some(None));
    assert_eq!(cc(&["max-stale=120"]).max_stale, Some(Some(120)));
    // A bound is more restrictive than "any", in either order.
    assert_eq!(cc(&["max-stale, max-stale=5"]).max_stale, Some(Some(5)));
    assert_eq!(cc(&["max-stale=5, max-stale"]).max_stale, Some(Some(5)));
    assert_eq!(cc(&["max-stale=9, max-stale=5"]).max_stale, Some(Some(5)));
}

#[test]
fn duplicates_keep_the_most_restrictive() {
    let parsed = cc(&[
        "max-age=100, max-age=10",
        "s-maxage=5",
        "s-maxage=50",
        "min-fresh=1, min-fresh=9",
        "stale-while-revalidate=30, stale-while-revalidate=3",
        "stale-if-error=7, stale-if-error=70",
    ]);
    assert_eq!(parsed.max_age, Some(10));
    assert_eq!(parsed.s_maxage, Some(5));
    assert_eq!(parsed.min_fresh, Some(9));
    assert_eq!(parsed.stale_while_revalidate, Some(3));
    assert_eq!(parsed.stale_if_error, Some(7));
}

#[test]
fn all_field_lines_and_list_forms() {
    let parsed = cc(&[
        "public,max-age=60",
        " , must-revalidate ,, ",
        "no-transform",
    ]);
    assert!(parsed.public && parsed.must_revalidate && parsed.no_transform);
    assert_eq!(parsed.max_age, Some(60));
}

#[test]
fn unknown_directives_are_ignored() {
    let parsed = cc(&["foo, bar=\"baz, max-age=1\", max-age=5, community=\"UCI\""]);
    // The max-age inside the quoted string is not a directive.
    assert_eq!(parsed.max_age, Some(5));
    assert_eq!(
        parsed,
        CacheControl {
            max_age: Some(5),
            ..CacheControl::default()
        }
    );
}

#[test]
fn names_of_every_length_and_case_are_read_or_ignored() {
    // The longest known name, in any case; a longer one that starts like it is unknown.
    let parsed = cc(&["Stale-While-REVALIDATE=9, stale-while-revalidate-later=1"]);
    assert_eq!(parsed.stale_while_revalidate, Some(9));
    let parsed = cc(&["stale-while-revalidatex=1, a-very-long-unknown-directive-name"]);
    assert_eq!(parsed, CacheControl::default());
}

#[test]
fn qualified_no_cache_and_private() {
    let parsed = cc(&["no-cache=\"Set-Cookie, X-Foo\", private=\"Authorization-Info\""]);
    assert!(!parsed.no_cache && !parsed.private);
    assert_eq!(parsed.no_cache_fields, ["set-cookie", "x-foo"]);
    assert_eq!(parsed.private_fields, ["authorization-info"]);
    // Token form, duplicates merged.
    let parsed = cc(&["private=x-a, private=\"X-A\""]);
    assert_eq!(parsed.private_fields, ["x-a"]);
}

#[test]
fn qualified_and_unqualified_together() {
    let parsed = cc(&["no-cache=\"x-a\", no-cache"]);
    assert!(parsed.no_cache);
    assert_eq!(parsed.no_cache_fields, ["x-a"]);
}

#[test]
fn empty_field_list_is_unqualified() {
    assert!(cc(&["no-cache=\"\""]).no_cache);
    assert!(cc(&["private=\"  \""]).private);
    // A list of nothing but invalid names names nothing.
    assert!(cc(&["private=\"a b\""]).private);
}

#[test]
fn unterminated_quote_and_escapes_are_tolerated() {
    let parsed = cc(&["max-age=3, no-cache=\"x-\\a"]);
    assert_eq!(parsed.max_age, Some(3));
    assert_eq!(parsed.no_cache_fields, ["x-a"]);
}

#[test]
fn non_utf8_bytes_do_not_panic() {
    let mut map = hyper::http::HeaderMap::new();
    let value = hyper::http::HeaderValue::from_bytes(b"max-age=4, \xffweird, private=\"\xfe\"")
        .expect("obs-text is a valid header value");
    map.insert(hyper::http::header::CACHE_CONTROL, value);
    let parsed = CacheControl::parse(&map);
    assert_eq!(parsed.max_age, Some(4));
    assert!(parsed.private);
}
