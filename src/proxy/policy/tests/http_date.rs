use std::time::{Duration, UNIX_EPOCH};

use super::super::{format_http_date, parse_http_date, parse_http_date_at};
use super::{EXAMPLE, EXAMPLE_DATE, at};

#[test]
fn the_three_formats_of_rfc_9110() {
    for value in [
        EXAMPLE_DATE,
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        // Lenient: case (GMT too), long day names in IMF, a one-digit day, blanks around.
        "sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 gMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
        "Sun, 6 Nov 1994 08:49:37 GMT",
    ] {
        assert_eq!(
            parse_http_date(value.as_bytes()),
            Some(at(EXAMPLE)),
            "{value:?}"
        );
    }
}

#[test]
fn invalid_dates() {
    for value in [
        "",
        "0",
        "-1",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT extra",
        "Sun 06 Nov 1994 08:49:37 GMT",
        // One space between fields; RFC 850 dates after a long day name only.
        "Sun,  06 Nov  1994 08:49:37 GMT",
        "Sun, 06-Nov-1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nox 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94-1 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
    ] {
        assert_eq!(parse_http_date(value.as_bytes()), None, "{value:?}");
    }
    assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 \xffGMT"), None);
}

#[test]
fn edges() {
    assert_eq!(
        parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT"),
        Some(UNIX_EPOCH)
    );
    assert_eq!(
        parse_http_date(b"Wed, 31 Dec 1969 23:59:59 GMT"),
        UNIX_EPOCH.checked_sub(Duration::from_secs(1))
    );
    assert_eq!(
        parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT"),
        Some(at(951_782_400))
    );
    assert_eq!(
        parse_http_date(b"Fri, 31 Dec 9999 23:59:59 GMT"),
        Some(at(253_402_300_799))
    );
    // A leap second reads as the next second.
    assert_eq!(
        parse_http_date(b"Sat, 31 Dec 2016 23:59:60 GMT"),
        Some(at(1_483_228_800))
    );
}

#[test]
fn rfc_850_two_digit_years_are_at_most_50_years_ahead() {
    let in_2026 = at(1_767_225_600); // 2026-01-01
    let table = [
        ("Sunday, 06-Nov-94 08:49:37 GMT", 1994),
        ("Friday, 01-Jan-76 00:00:00 GMT", 2076),
        ("Thursday, 01-Jan-77 00:00:00 GMT", 1977),
        ("Thursday, 01-Jan-26 00:00:00 GMT", 2026),
    ];
    for (value, year) in table {
        let parsed = parse_http_date_at(value.as_bytes(), in_2026).expect(value);
        let formatted = format_http_date(parsed);
        assert!(
            formatted.contains(&year.to_string()),
            "{value} -> {formatted}"
        );
    }
}

#[test]
fn format_is_imf_fixdate() {
    assert_eq!(format_http_date(at(EXAMPLE)), EXAMPLE_DATE);
    assert_eq!(
        format_http_date(UNIX_EPOCH),
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
    assert_eq!(
        format_http_date(at(951_782_400)),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
    // Before the epoch: clamped.
    let before = UNIX_EPOCH
        .checked_sub(Duration::from_secs(10))
        .expect("representable");
    assert_eq!(format_http_date(before), "Thu, 01 Jan 1970 00:00:00 GMT");
}

#[test]
fn format_then_parse_round_trips() {
    for secs in [
        0,
        1,
        59,
        86_399,
        86_400,
        EXAMPLE,
        1_700_000_000,
        4_102_444_800,
        253_402_300_799,
    ] {
        let formatted = format_http_date(at(secs));
        assert_eq!(
            parse_http_date(formatted.as_bytes()),
            Some(at(secs)),
            "{formatted}"
        );
    }
}
