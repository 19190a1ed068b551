//! Arbitrary header maps through the RFC 9111 decisions in `proxy::policy`: Cache-Control,
//! storability, freshness and age, reuse, Vary keys, conditionals, ranges and HTTP-dates.
//!
//! Input, as text so that seeds read like HTTP: a first line `STATUS LENGTH` (the response
//! status and the stored body's length; defaults where they do not parse), then request header
//! lines `name: value`, an empty line, and the stored response's header lines. A second empty
//! line starts the header lines of a 304 that revalidates it. Lines that are not valid fields
//! are skipped, as hyper would never deliver them.
//!
//! Asserts: no panic, and the promises the policy makes: a range lies within the body; a
//! request matches the Vary key computed from itself; a stored response satisfies the
//! revalidation built from it and is validated by a 304 carrying its own validators; an
//! HTTP-date that parses formats and parses back to the same second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgenode::proxy::policy::{
    CacheControl, StoredMeta, byte_range, current_age, format_http_date, freshness_lifetime,
    merge_304, not_modified, parse_http_date_at, reuse, serve_stale_on_error, storable,
    strip_hop_by_hop, strip_unshared_fields, validated_by, validation_headers, vary_key,
    vary_matches,
};
use hyper::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// 2026-01-01T00:00:00Z: a fixed "now", so that a run does not depend on the clock.
const NOW_SECS: u64 = 1_767_225_600;
/// The largest time `format_http_date` writes: 9999-12-31T23:59:59Z (four-digit years).
const LAST_FORMATTED_SECS: u64 = 253_402_300_799;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut sections = text.split("\n\n");
    let first = sections.next().unwrap_or_default();
    let (head, req_lines) = first.split_once('\n').unwrap_or((first, ""));
    let (status, full_len) = status_and_length(head);
    let req = header_map(req_lines);
    let resp = header_map(sections.next().unwrap_or_default());
    let revalidation = header_map(sections.next().unwrap_or_default());

    let now = UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    let request_time = now - Duration::from_secs(100);
    let response_time = now - Duration::from_secs(99);
    let cap = Duration::from_secs(86_400);

    let req_cc = CacheControl::parse(&req);
    let _ = storable(&Method::GET, &req, status, &resp);
    let _ = freshness_lifetime(&resp, status, response_time, cap);
    let _ = current_age(&resp, request_time, response_time, now);
    let stored = StoredMeta::new(&resp, status, request_time, response_time, now, cap);
    let _ = (stored.is_fresh(), stored.staleness());
    let _ = reuse(&stored, &req_cc).as_str();
    let _ = serve_stale_on_error(&stored, &req_cc);

    check_vary(&req, &resp);
    check_range(&req, &resp, full_len);
    check_conditionals(&req, &resp);
    for value in req.values().chain(resp.values()) {
        check_date(value.as_bytes(), now);
    }

    let mut forwarded = req.clone();
    strip_hop_by_hop(&mut forwarded);
    let mut kept = resp.clone();
    strip_hop_by_hop(&mut kept);
    strip_unshared_fields(&mut kept);
    if validated_by(&kept, &revalidation) {
        merge_304(&mut kept, &revalidation);
    }
}

fn status_and_length(head: &str) -> (StatusCode, u64) {
    let mut words = head.split_ascii_whitespace();
    let status = words
        .next()
        .and_then(|w| w.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let length = words.next().and_then(|w| w.parse().ok()).unwrap_or(1000);
    (status, length)
}

fn header_map(lines: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in lines.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_bytes(value.trim_start().as_bytes()),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    map
}

fn check_vary(req: &HeaderMap, resp: &HeaderMap) {
    if let Some(key) = vary_key(resp, req) {
        assert!(
            vary_matches(&key, resp, req),
            "a request does not match its own Vary key {key:?}"
        );
    }
}

fn check_range(req: &HeaderMap, resp: &HeaderMap, full_len: u64) {
    let Ok(Some(range)) = byte_range(&Method::GET, req, resp, full_len) else {
        return;
    };
    assert!(
        range.first <= range.last && range.last < full_len,
        "{range:?} is not within a {full_len}-byte body"
    );
    assert!(range.byte_count() >= 1);
    let _ = range.content_range(full_len);
}

fn check_conditionals(req: &HeaderMap, resp: &HeaderMap) {
    let _ = not_modified(req, resp);
    let conditionals = validation_headers(resp);
    if !conditionals.is_empty() {
        assert!(
            not_modified(&conditionals, resp),
            "a stored response does not satisfy its own revalidation {conditionals:?}"
        );
    }
    assert!(
        validated_by(resp, resp),
        "a 304 with the stored response's own validators does not validate it"
    );
}

/// An HTTP-date that parses must format as IMF-fixdate and parse back to the same second.
fn check_date(value: &[u8], now: SystemTime) {
    let Some(time) = parse_http_date_at(value, now) else {
        return;
    };
    let Ok(since_epoch) = time.duration_since(UNIX_EPOCH) else {
        return; // Formatted as the epoch: nothing the proxy sends is older.
    };
    if since_epoch.as_secs() > LAST_FORMATTED_SECS {
        return;
    }
    let formatted = format_http_date(time);
    assert_eq!(
        parse_http_date_at(formatted.as_bytes(), now),
        Some(time),
        "{:?} formats as {formatted:?}, which parses to another time",
        String::from_utf8_lossy(value)
    );
}
