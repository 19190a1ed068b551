//! Validators and conditional requests (RFC 9110 8.8, 13; RFC 9111 4.3).

use std::time::Duration;

use hyper::http::header::{DATE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED};
use hyper::http::{HeaderMap, HeaderValue};

use super::http_date::{header_date, parse_http_date};
use super::trim_ows;

/// An entity tag (RFC 9110 8.8.3): the opaque part without its quotes, and the weakness flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a [u8],
}

impl EntityTag<'_> {
    /// Weak comparison (RFC 9110 8.8.3.2): opaque tags match, weakness ignored.
    fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }

    /// Strong comparison: both strong and the opaque tags match.
    fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }
}

/// A parsed `If-None-Match` / `ETag`-like list: `*`, or entity tags.
struct TagList<'a> {
    star: bool,
    tags: Vec<EntityTag<'a>>,
}

/// Parse a list of entity tags. Commas may appear inside an opaque tag, so this does not use
/// the generic list splitter. Tolerated: a lowercase `w/`, and unquoted tags (some origins send
/// them), which run to the next comma.
fn tag_list(value: &[u8]) -> TagList<'_> {
    let mut list = TagList {
        star: false,
        tags: Vec::new(),
    };
    let mut rest = value;
    loop {
        rest = skip_separators(rest);
        let Some(&first) = rest.first() else {
            return list;
        };
        if first == b'*' {
            list.star = true;
            rest = &rest[1..];
            continue;
        }
        let weak = rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"W/");
        if weak {
            rest = &rest[2..];
        }
        if let Some(quoted) = rest.strip_prefix(b"\"") {
            let end = quoted
                .iter()
                .position(|&b| b == b'"')
                .unwrap_or(quoted.len());
            list.tags.push(EntityTag {
                weak,
                opaque: &quoted[..end],
            });
            rest = quoted.get(end + 1..).unwrap_or_default();
        } else {
            let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
            let opaque = trim_ows(&rest[..end]);
            if !opaque.is_empty() {
                list.tags.push(EntityTag { weak, opaque });
            }
            rest = &rest[end..];
        }
    }
}

fn skip_separators(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b','))
        .unwrap_or(value.len());
    &value[start..]
}

/// The stored response's entity tag: the first tag of its first `ETag` line.
fn stored_etag(headers: &HeaderMap) -> Option<EntityTag<'_>> {
    let value = headers.get(ETAG)?;
    tag_list(value.as_bytes()).tags.first().copied()
}

pub(super) fn has_validator(headers: &HeaderMap) -> bool {
    stored_etag(headers).is_some() || header_date(headers, &LAST_MODIFIED).is_some()
}

/// Whether a client's conditional GET or HEAD, answered from the stored response, gets a 304
/// (RFC 9110 13.1.2, 13.1.3, 13.2.2; RFC 9111 4.3.2).
///
/// Only `If-None-Match` and `If-Modified-Since` are evaluated: `If-Match` and
/// `If-Unmodified-Since` are for the origin (RFC 9111 4.3.2). Call it only for GET and HEAD,
/// with a response the cache may serve (fresh or just validated).
///
/// - `If-None-Match` takes precedence: when present, `If-Modified-Since` is ignored. `*` matches
///   any stored response; otherwise any listed tag weakly equal to the stored `ETag`.
/// - `If-Modified-Since`: ignored unless it is exactly one valid HTTP-date. Compared with the
///   stored `Last-Modified`, or, lacking that, its `Date` (RFC 9111 4.3.2).
pub fn not_modified(req_headers: &HeaderMap, stored_resp_headers: &HeaderMap) -> bool {
    let mut if_none_match = req_headers.get_all(IF_NONE_MATCH).iter().peekable();
    if if_none_match.peek().is_some() {
        let stored = stored_etag(stored_resp_headers);
        for line in if_none_match {
            let list = tag_list(line.as_bytes());
            if list.star {
                return true;
            }
            if let Some(stored) = &stored
                && list.tags.iter().any(|tag| tag.weak_eq(stored))
            {
                return true;
            }
        }
        return false;
    }
    let mut lines = req_headers.get_all(IF_MODIFIED_SINCE).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return false;
    };
    let Some(since) = parse_http_date(line.as_bytes()) else {
        return false;
    };
    let modified = header_date(stored_resp_headers, &LAST_MODIFIED)
        .or_else(|| header_date(stored_resp_headers, &DATE));
    modified.is_some_and(|modified| modified <= since)
}

/// Headers that turn the upstream request into a revalidation of the stored response (RFC 9111
/// 4.3.1): `If-None-Match` with its entity tag (MUST), `If-Modified-Since` with its
/// `Last-Modified` (SHOULD). Values are copied as received; an unparseable `Last-Modified` is
/// not sent. The proxy replaces any conditionals of the client's own with these.
pub fn validation_headers(stored_resp_headers: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(etag) = stored_resp_headers.get(ETAG)
        && stored_etag(stored_resp_headers).is_some()
    {
        headers.insert(IF_NONE_MATCH, etag.clone());
    }
    if let Some(modified) = stored_resp_headers.get(LAST_MODIFIED)
        && parse_http_date(modified.as_bytes()).is_some()
    {
        headers.insert(IF_MODIFIED_SINCE, modified.clone());
    }
    headers
}

/// Whether a 304 received for a revalidation applies to the stored response (RFC 9111 4.3.4):
/// if the 304 carries an entity tag it must match the stored one (weakly, as the revalidation
/// used `If-None-Match`); else if it carries `Last-Modified`, that must equal the stored one;
/// with no validator it refers to the one response validated.
pub fn validated_by(stored_resp_headers: &HeaderMap, not_modified_headers: &HeaderMap) -> bool {
    if let Some(new) = stored_etag(not_modified_headers) {
        return stored_etag(stored_resp_headers).is_some_and(|old| old.weak_eq(&new));
    }
    if let Some(new) = header_date(not_modified_headers, &LAST_MODIFIED) {
        return header_date(stored_resp_headers, &LAST_MODIFIED) == Some(new);
    }
    true
}

/// `If-Range` (RFC 9110 13.1.5): whether the Range may be honoured against the stored response.
/// No `If-Range` means yes. An entity tag must match the stored `ETag` strongly; a date must
/// equal the stored `Last-Modified` exactly, and that must be a strong validator (at least one
/// second before the stored `Date`, RFC 9110 8.8.2.2). Anything else: serve the full response.
pub(super) fn if_range_allows(req_headers: &HeaderMap, stored_resp_headers: &HeaderMap) -> bool {
    let mut lines = req_headers.get_all(IF_RANGE).iter();
    match (lines.next(), lines.next()) {
        (None, _) => true,
        (Some(line), None) => if_range_value_allows(line, stored_resp_headers),
        // Two validators cannot both be "the" validator: not a match, so the full response.
        (Some(_), Some(_)) => false,
    }
}

fn if_range_value_allows(value: &HeaderValue, stored: &HeaderMap) -> bool {
    let bytes = trim_ows(value.as_bytes());
    if bytes.starts_with(b"\"") || bytes.starts_with(b"W/") {
        let list = tag_list(bytes);
        let (Some(tag), Some(stored)) = (list.tags.first(), stored_etag(stored)) else {
            return false;
        };
        return list.tags.len() == 1 && tag.strong_eq(&stored);
    }
    let (Some(date), Some(modified)) =
        (parse_http_date(bytes), header_date(stored, &LAST_MODIFIED))
    else {
        return false;
    };
    let strong = header_date(stored, &DATE)
        .and_then(|d| d.duration_since(modified).ok())
        .is_some_and(|gap| gap >= Duration::from_secs(1));
    date == modified && strong
}
