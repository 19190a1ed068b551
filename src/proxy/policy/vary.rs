//! `Vary` and the secondary cache key (RFC 9111 4.1, RFC 9110 12.5.5).

use std::fmt::Write;

use hyper::http::header::VARY;
use hyper::http::{HeaderMap, HeaderName};

use super::{split_list, trim_ows};

/// The secondary key of a response for the request that produced (or now asks for) it: the
/// normalized values of the request fields the response's `Vary` names. `None` for `Vary: *`,
/// which never matches (RFC 9111 4.1). `Some("")` when the response does not vary.
///
/// The key is ASCII, one line per field, names lowercased and sorted (so `Vary` order does not
/// matter): `name:value` when the request has the field, `name` alone when it does not, so a
/// missing field differs from an empty one. Values are normalized as RFC 9111 4.1 allows:
/// multiple field lines combined with commas, optional whitespace around commas and at the ends
/// dropped, other whitespace runs collapsed to one space (quoted strings untouched). Bytes
/// outside visible ASCII, and `%`, are percent-escaped so that distinct values never collide.
/// Names in `Vary` that are not valid field names cannot appear in a request and are skipped.
pub fn vary_key(resp_headers: &HeaderMap, req_headers: &HeaderMap) -> Option<String> {
    let names = vary_names(resp_headers)?;
    let mut key = String::new();
    for name in names {
        if !key.is_empty() {
            key.push('\n');
        }
        key.push_str(name.as_str());
        let mut lines = req_headers.get_all(&name).iter().peekable();
        if lines.peek().is_none() {
            continue;
        }
        key.push(':');
        let fold = folds_case(&name);
        for (i, line) in lines.enumerate() {
            if i > 0 {
                key.push(',');
            }
            push_normalized(&mut key, line.as_bytes(), fold);
        }
    }
    Some(key)
}

/// Whether a new request selects a stored response whose key was `stored_vary_key` (RFC 9111
/// 4.1): the new request's key under the stored response's `Vary` must be the same.
pub fn vary_matches(
    stored_vary_key: &str,
    stored_resp_headers: &HeaderMap,
    new_req_headers: &HeaderMap,
) -> bool {
    vary_key(stored_resp_headers, new_req_headers).as_deref() == Some(stored_vary_key)
}

pub(super) fn vary_is_star(resp_headers: &HeaderMap) -> bool {
    vary_names(resp_headers).is_none()
}

/// Sorted, deduplicated field names of every `Vary` line; `None` if any member is `*`.
fn vary_names(resp_headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for line in resp_headers.get_all(VARY) {
        for member in split_list(line.as_bytes()) {
            if member == b"*" {
                return None;
            }
            // from_bytes lowercases; invalid names are skipped (see vary_key).
            if let Ok(name) = HeaderName::from_bytes(member) {
                names.push(name);
            }
        }
    }
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    Some(names)
}

/// Whether the values of request field `name` are case-insensitive tokens, so that `eN, De`
/// selects what `en, de` stored: language tags (RFC 4647 2), content codings (RFC 9110 8.4.1)
/// and charsets (RFC 9110 8.3.2).
fn folds_case(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "accept-language" | "accept-encoding" | "accept-charset"
    )
}

/// Append one field line's value, normalized and escaped (see [`vary_key`]); lowercased outside
/// quoted strings when `fold`.
fn push_normalized(key: &mut String, value: &[u8], fold: bool) {
    let value = trim_ows(value);
    let mut in_quotes = false;
    let mut escaped = false;
    let mut pending_space = false;
    for &b in value {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
            push_byte(key, b);
            continue;
        }
        match b {
            b' ' | b'\t' => pending_space = true,
            b',' => {
                pending_space = false;
                key.push(',');
            }
            _ => {
                // A space survives only between two non-comma characters.
                let after_comma = key.ends_with(',');
                if pending_space && !after_comma {
                    key.push(' ');
                }
                pending_space = false;
                in_quotes = b == b'"';
                push_byte(key, if fold { b.to_ascii_lowercase() } else { b });
            }
        }
    }
}

fn push_byte(key: &mut String, b: u8) {
    if (b.is_ascii_graphic() && b != b'%') || b == b' ' {
        key.push(char::from(b));
    } else {
        // Writing to a String cannot fail.
        let _ = write!(key, "%{b:02X}");
    }
}
