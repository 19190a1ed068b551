use std::time::Duration;

use hyper::http::StatusCode;

use super::super::{current_age, format_http_date, freshness_lifetime};
use super::{EXAMPLE, at, headers, secs};

/// Response header lines.
type Lines<'a> = Vec<(&'a str, &'a str)>;

/// (Date offset, Age header, request time, response time, now, expected age)
type AgeCase<'a> = (i64, Option<&'a str>, u64, u64, u64, u64);

const DAY: Duration = Duration::from_secs(86_400);

fn date(offset: i64) -> String {
    format_http_date(at(EXAMPLE.checked_add_signed(offset).expect("in range")))
}

fn lifetime(resp: &[(&str, &str)]) -> Option<Duration> {
    freshness_lifetime(&headers(resp), StatusCode::OK, at(EXAMPLE), DAY)
}

#[test]
fn precedence_s_maxage_max_age_expires() {
    let now = date(0);
    let later = date(300);
    let table: [(Lines, Option<u64>); 5] = [
        (
            vec![
                ("cache-control", "max-age=60, s-maxage=30"),
                ("expires", &later),
                ("date", &now),
            ],
            Some(30),
        ),
        (
            vec![
                ("cache-control", "max-age=60"),
                ("expires", &later),
                ("date", &now),
            ],
            Some(60),
        ),
        (vec![("expires", &later), ("date", &now)], Some(300)),
        // max-age wins even over an invalid Expires.
        (
            vec![("cache-control", "max-age=60"), ("expires", "0")],
            Some(60),
        ),
        // An invalid max-age is stale, and still beats Expires.
        (
            vec![
                ("cache-control", "max-age=soon"),
                ("expires", &later),
                ("date", &now),
            ],
            Some(0),
        ),
    ];
    for (resp, want) in table {
        assert_eq!(lifetime(&resp), want.map(secs), "{resp:?}");
    }
}

#[test]
fn expires_minus_date() {
    let table = [
        (date(3600), Some(date(0)), 3600),
        // Expires before Date: already stale.
        (date(-10), Some(date(0)), 0),
        // No Date: the response time (EXAMPLE) stands in.
        (date(120), None, 120),
        // An invalid Date, too.
        (date(120), Some("not a date".to_string()), 120),
    ];
    for (expires, date, want) in table {
        let mut resp = vec![("expires", expires.as_str())];
        if let Some(date) = &date {
            resp.push(("date", date.as_str()));
        }
        assert_eq!(lifetime(&resp), Some(secs(want)), "{resp:?}");
    }
}

#[test]
fn invalid_or_conflicting_expires_is_stale() {
    let now = date(0);
    let later = date(60);
    let other = date(90);
    for resp in [
        vec![("expires", "0"), ("date", now.as_str())],
        vec![("expires", "-1")],
        vec![("expires", "")],
        vec![("expires", later.as_str()), ("expires", other.as_str())],
    ] {
        assert_eq!(lifetime(&resp), Some(Duration::ZERO), "{resp:?}");
    }
    // The same value twice is not a conflict.
    let twice = [
        ("expires", later.as_str()),
        ("expires", later.as_str()),
        ("date", now.as_str()),
    ];
    assert_eq!(lifetime(&twice), Some(secs(60)));
}

#[test]
fn heuristic_is_ten_percent_of_last_modified_age() {
    let now = date(0);
    let ten_hours_ago = date(-36_000);
    let resp = [
        ("date", now.as_str()),
        ("last-modified", ten_hours_ago.as_str()),
    ];
    assert_eq!(lifetime(&resp), Some(secs(3600)));
}

#[test]
fn heuristic_is_capped() {
    let now = date(0);
    let long_ago = date(-400 * 86_400);
    let resp = headers(&[("date", now.as_str()), ("last-modified", long_ago.as_str())]);
    assert_eq!(
        freshness_lifetime(&resp, StatusCode::OK, at(EXAMPLE), DAY),
        Some(DAY)
    );
    assert_eq!(
        freshness_lifetime(&resp, StatusCode::OK, at(EXAMPLE), secs(60)),
        Some(secs(60))
    );
}

#[test]
fn heuristic_needs_last_modified_and_a_cacheable_status_or_public() {
    let now = date(0);
    let hour_ago = date(-3600);
    let with_lm = [("date", now.as_str()), ("last-modified", hour_ago.as_str())];
    let get = |status: u16, resp: &[(&str, &str)]| {
        let status = StatusCode::from_u16(status).expect("valid code");
        freshness_lifetime(&headers(resp), status, at(EXAMPLE), DAY)
    };
    for code in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
        assert_eq!(get(code, &with_lm), Some(secs(360)), "{code}");
    }
    for code in [302, 303, 307, 403, 500, 503] {
        assert_eq!(get(code, &with_lm), None, "{code}");
    }
    let public = [
        ("date", now.as_str()),
        ("last-modified", hour_ago.as_str()),
        ("cache-control", "public"),
    ];
    assert_eq!(get(302, &public), Some(secs(360)));
    // No Last-Modified, or an invalid one: no heuristic.
    assert_eq!(get(200, &[("date", now.as_str())]), None);
    assert_eq!(get(200, &[("last-modified", "last tuesday")]), None);
    // Last-Modified after Date: zero.
    let future = date(3600);
    assert_eq!(
        get(
            200,
            &[("date", now.as_str()), ("last-modified", future.as_str())]
        ),
        Some(Duration::ZERO)
    );
}

#[test]
fn no_heuristic_when_explicit() {
    let now = date(0);
    let hour_ago = date(-3600);
    let resp = [
        ("cache-control", "max-age=5"),
        ("date", now.as_str()),
        ("last-modified", hour_ago.as_str()),
    ];
    assert_eq!(lifetime(&resp), Some(secs(5)));
}

#[test]
fn age_from_date_age_header_and_residence() {
    let t = EXAMPLE;
    let table: [AgeCase; 8] = [
        // Fresh off the origin.
        (0, None, t, t, t, 0),
        // Apparent age: the response was generated 10 s before we received it.
        (-10, None, t, t, t, 10),
        // Age header plus the upstream round trip (response_delay).
        (0, Some("30"), t - 2, t, t, 32),
        // The larger of apparent age and corrected Age wins.
        (-50, Some("30"), t - 2, t, t, 50),
        // Residence time in this cache adds on.
        (0, Some("30"), t, t, t + 100, 130),
        // A Date in the future (clock skew) is no negative age.
        (40, None, t, t, t + 5, 5),
        // An invalid Age is ignored; the first of a list counts.
        (0, Some("abc"), t, t, t, 0),
        (0, Some("7, 900"), t, t, t, 7),
    ];
    for (offset, age, request, response, now, want) in table {
        let date = date(offset);
        let mut resp = vec![("date", date.as_str())];
        if let Some(age) = age {
            resp.push(("age", age));
        }
        let got = current_age(&headers(&resp), at(request), at(response), at(now));
        assert_eq!(
            got,
            secs(want),
            "{resp:?} req={request} resp={response} now={now}"
        );
    }
}

#[test]
fn age_without_date_uses_the_response_time() {
    let got = current_age(
        &headers(&[("age", "3")]),
        at(EXAMPLE - 1),
        at(EXAMPLE),
        at(EXAMPLE + 4),
    );
    assert_eq!(got, secs(3 + 1 + 4));
}

#[test]
fn huge_age_saturates_instead_of_overflowing() {
    let got = current_age(
        &headers(&[("age", "999999999999999999999")]),
        at(0),
        at(0),
        at(1),
    );
    assert_eq!(got, secs((1 << 31) + 1));
}
