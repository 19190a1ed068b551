//! Which header fields are forwarded, stored and updated (RFC 9110 7.6.1; RFC 9111 3.1, 3.2).

use hyper::http::header::Entry;
use hyper::http::header::{
    CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, SET_COOKIE,
};
use hyper::http::{HeaderMap, HeaderName};

use super::{CacheControl, set_cookie_shareable, split_list};

/// Hop-by-hop fields that are not named by `Connection` but never cross a proxy (RFC 9110
/// 7.6.1, 7.8 for Upgrade, 11.7 for the Proxy-* fields, which this proxy consumes or produces).
pub(crate) const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-authentication-info",
];

/// Remove hop-by-hop fields (RFC 9110 7.6.1): every field named in `Connection`, then
/// `Connection` itself, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`,
/// `Upgrade`, `Proxy-Authorization`, `Proxy-Authenticate`, `Proxy-Authentication-Info`.
///
/// A client may name any field in `Connection`, including ones the proxy adds (`Via`,
/// `X-Forwarded-For`): strip first, then add.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = connection_options(headers);
    for name in named {
        headers.remove(&name);
    }
    remove_named(headers, &HOP_BY_HOP);
}

/// Removes every field whose name is in `names` (lowercase). Looks at the fields present
/// rather than looking up each name: most messages carry none of them, and a lookup by `&str`
/// parses and hashes the name each time.
pub fn remove_named(headers: &mut HeaderMap, names: &[&str]) {
    let present: Vec<HeaderName> = headers
        .keys()
        .filter(|name| names.contains(&name.as_str()))
        .cloned()
        .collect();
    for name in present {
        headers.remove(name);
    }
}

/// Field names listed in `Connection` (all lines); `close` and `keep-alive` included, harmlessly.
fn connection_options(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|line| split_list(line.as_bytes()))
        .filter_map(|option| HeaderName::from_bytes(option).ok())
        .collect()
}

/// Remove the fields a shared cache must not store or must not reuse unvalidated: those named
/// by a qualified `private="..."` (RFC 9111 5.2.2.7: "MUST NOT store the listed header fields")
/// and a qualified `no-cache="..."` (5.2.2.4: reusable "if the listed header fields are
/// excluded"), and `Set-Cookie` unless the response says it is shared (`public`, `s-maxage`):
/// a cookie set for one client must not reach the others, though the response itself may be
/// stored and reused (as Traffic Server and Squid do). Call it on the headers about to be
/// stored; the removed lines are returned, for the one client whose request fetched them.
pub fn strip_unshared_fields(headers: &mut HeaderMap) -> HeaderMap {
    let cc = CacheControl::parse(headers);
    let mut names: Vec<HeaderName> = cc
        .private_fields
        .iter()
        .chain(&cc.no_cache_fields)
        .filter_map(|field| HeaderName::from_bytes(field.as_bytes()).ok())
        .collect();
    if headers.contains_key(SET_COOKIE)
        && !set_cookie_shareable(&CacheControl::for_response(headers).0)
    {
        names.push(SET_COOKIE);
    }
    let mut removed = HeaderMap::new();
    for name in names {
        if let Entry::Occupied(entry) = headers.entry(name) {
            let (name, values) = entry.remove_entry_mult();
            for value in values {
                removed.append(name.clone(), value);
            }
        }
    }
    removed
}

/// Update stored response headers with those of a 304 (RFC 9111 3.2, 4.3.4): each field in the
/// 304 replaces all stored lines of that name, except:
///
/// - hop-by-hop fields, including those the 304's `Connection` names (3.1);
/// - `Content-Length` (3.2), and `Content-Encoding` / `Content-Range`, which describe the stored
///   body as it was received: fields "that the cache's stored response depends upon" (3.2);
/// - `Set-Cookie`, unless the merged response is shareable (`public` / `s-maxage`), by the same
///   rule as [`storable`](super::storable): a revalidation's cookie belongs to one client.
///
/// Afterwards, fields named by a (possibly new) qualified `private` / `no-cache` are removed.
/// The caller then resets the stored request/response times to the revalidation's, since the
/// 304's `Date` and `Age` now stand in the stored headers, and recomputes the `Vary` key if the
/// 304 changed `Vary`. Call it only when [`validated_by`](super::validated_by) holds.
pub fn merge_304(stored: &mut HeaderMap, fresh: &HeaderMap) {
    let mut excluded = connection_options(fresh);
    excluded.extend([CONTENT_LENGTH, CONTENT_ENCODING, CONTENT_RANGE]);
    let skip = |name: &HeaderName| {
        excluded.contains(name) || HOP_BY_HOP.contains(&name.as_str()) || name == SET_COOKIE
    };
    for name in fresh.keys() {
        if skip(name) {
            continue;
        }
        replace(stored, fresh, name);
    }
    if fresh.contains_key(SET_COOKIE) && set_cookie_shareable(&CacheControl::parse(stored)) {
        replace(stored, fresh, &SET_COOKIE);
    }
    strip_unshared_fields(stored);
}

/// Replace every stored line of `name` with the lines `fresh` has.
fn replace(stored: &mut HeaderMap, fresh: &HeaderMap, name: &HeaderName) {
    stored.remove(name);
    for value in fresh.get_all(name) {
        stored.append(name.clone(), value.clone());
    }
}
