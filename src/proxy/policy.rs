//! RFC 9111 (HTTP caching) decisions for a shared cache, as pure functions: no I/O, and times
//! are parameters (the one clock read resolves RFC 850 two-digit years in [`parse_http_date`]).
//! The proxy asks; this module answers. Header data is never trusted: malformed values are
//! tolerated or ignored as the RFCs say, never unwrapped.
//!
//! - [`CacheControl`]: parsed `Cache-Control` (request or response).
//! - [`storable`]: may a response be stored at all (RFC 9111 section 3)?
//! - [`freshness_lifetime`], [`current_age`], [`StoredMeta`]: how long it is fresh, how old it is
//!   (RFC 9111 4.2).
//! - [`reuse`], [`serve_stale_on_error`]: what to do with a stored response for a new request
//!   (RFC 9111 4, 5.2; RFC 5861 stale-while-revalidate / stale-if-error).
//! - [`vary_key`], [`vary_matches`]: the secondary cache key (RFC 9111 4.1).
//! - [`not_modified`], [`validation_headers`], [`validated_by`], [`merge_304`]: conditional
//!   requests in both directions (RFC 9110 13, RFC 9111 4.3).
//! - [`strip_hop_by_hop`], [`strip_unshared_fields`]: fields never forwarded or never stored.
//! - [`invalidates`]: unsafe methods invalidate (RFC 9111 4.4).
//! - [`byte_range`]: single `bytes=` ranges served from a full stored body (RFC 9110 14).
//! - [`parse_http_date`], [`format_http_date`]: HTTP-date (RFC 9110 5.6.7), all three formats.

mod cache_control;
mod conditional;
mod freshness;
mod headers;
mod http_date;
mod range;
mod vary;

#[cfg(test)]
mod tests;

use hyper::http::header::AUTHORIZATION;
use hyper::http::{HeaderMap, Method, StatusCode};

pub use cache_control::{CDN_CACHE_CONTROL, CacheControl};
pub use conditional::{not_modified, validated_by, validation_headers};
pub use freshness::{
    Reuse, StoredMeta, current_age, freshness_lifetime, initial_age, reuse, serve_stale_on_error,
};
#[cfg(test)]
pub(crate) use headers::HOP_BY_HOP;
pub use headers::{merge_304, remove_named, strip_hop_by_hop, strip_unshared_fields};
pub use http_date::{format_http_date, parse_http_date, parse_http_date_at};
pub use range::{ByteRange, RangeError, byte_range, content_range, range_start};
pub use vary::{vary_key, vary_matches};

/// Why a response is not stored. `as_str()` feeds the log line, the metric label and the
/// `Cache-Status` `detail` alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotStorable {
    /// The request method is not one this cache stores (RFC 9111 3: "understood by the cache").
    #[error("request method is not cacheable")]
    Method,
    /// Not a final status code this cache understands, or a 206/304 (RFC 9111 3).
    #[error("response status is not cacheable")]
    Status,
    /// `no-store` in the request or the response (RFC 9111 5.2.1.5, 5.2.2.5).
    #[error("no-store")]
    NoStore,
    /// Unqualified `private` (RFC 9111 5.2.2.7): only a private cache may store it.
    #[error("private")]
    Private,
    /// The request carried `Authorization` and the response did not opt in (RFC 9111 3.5).
    #[error("request had Authorization")]
    Authorization,
    /// `Set-Cookie` on a host whose rules say never to store such responses
    /// (`never_store_set_cookie`). Otherwise a response setting a cookie is stored without it
    /// unless it says it is shared ([`strip_unshared_fields`]).
    #[error("response sets a cookie")]
    SetCookie,
    /// `Vary: *` never matches a later request (RFC 9111 4.1), so storing it only wastes memory.
    #[error("Vary: *")]
    VaryStar,
    /// Neither explicit freshness nor a validator: it could never be reused (product rule), or
    /// RFC 9111 3 gives no permission to store it.
    #[error("no freshness information and no validator")]
    NoFreshness,
    /// A status the operator keeps out of the cache (`proxy.never_store_statuses`): by default
    /// those only the client's own request can cause (400, 413, 414, 431), so that one odd
    /// request cannot make the error everyone's answer (cache-poisoned denial of service).
    #[error("status kept out of the cache by configuration")]
    NeverStore,
}

impl NotStorable {
    pub const ALL: [NotStorable; 9] = [
        NotStorable::Method,
        NotStorable::Status,
        NotStorable::NoStore,
        NotStorable::Private,
        NotStorable::Authorization,
        NotStorable::SetCookie,
        NotStorable::VaryStar,
        NotStorable::NoFreshness,
        NotStorable::NeverStore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotStorable::Method => "method",
            NotStorable::Status => "status",
            NotStorable::NoStore => "no-store",
            NotStorable::Private => "private",
            NotStorable::Authorization => "authorization",
            NotStorable::SetCookie => "set-cookie",
            NotStorable::VaryStar => "vary-star",
            NotStorable::NoFreshness => "no-freshness",
            NotStorable::NeverStore => "never-store-status",
        }
    }
}

/// GET and HEAD: the methods whose responses this cache stores (RFC 9111 2: "caches typically
/// only store GET"; HEAD responses may update or be served like GET metadata). A HEAD response
/// has no body, so the proxy keys HEAD and GET apart or fetches GET for both.
pub fn is_cacheable_method(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// Status codes that are cacheable by default, i.e. a heuristic freshness lifetime may be
/// assigned (RFC 9110 15.1).
pub fn is_heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Final status codes whose semantics this cache understands well enough to store (RFC 9111 3,
/// and `must-understand`, 5.2.2.3). 206 is left out because the proxy stores full bodies only
/// and cuts ranges itself; 304 updates a stored response and is never stored on its own.
fn status_understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203
            | 204
            | 300
            | 301
            | 302
            | 303
            | 307
            | 308
            | 400
            | 403
            | 404
            | 405
            | 410
            | 414
            | 451
            | 500
            | 501
            | 502
            | 503
            | 504
    )
}

/// Whether a shared cache may store this response (RFC 9111 section 3).
///
/// On top of the RFC, the product rule: a response with neither explicit freshness (`max-age`,
/// `s-maxage`, `Expires`) nor a validator (`ETag`, `Last-Modified`) could never be reused, so it
/// is not stored. Heuristic freshness needs `Last-Modified`, which is a validator, so it is
/// covered. Before storing, the proxy also calls [`strip_hop_by_hop`] and
/// [`strip_unshared_fields`] on the headers it keeps.
pub fn storable(
    req_method: &Method,
    req_headers: &HeaderMap,
    status: StatusCode,
    resp_headers: &HeaderMap,
) -> Result<(), NotStorable> {
    if !is_cacheable_method(req_method) {
        return Err(NotStorable::Method);
    }
    let req_cc = CacheControl::parse(req_headers);
    let (cc, targeted) = CacheControl::for_response(resp_headers);
    // RFC 9111 3: any final status may be stored; understanding it is required only of 206 and
    // 304 (never stored on their own here) and under must-understand.
    let final_status = status.as_u16() >= 200 && !matches!(status.as_u16(), 206 | 304);
    if !final_status || (cc.must_understand && !status_understood(status)) {
        return Err(NotStorable::Status);
    }
    // must-understand (5.2.2.3) lets a cache that understands the status code ignore the
    // response's no-store; the request's no-store still holds (5.2.1.5).
    if req_cc.no_store || (cc.no_store && !cc.must_understand) {
        return Err(NotStorable::NoStore);
    }
    // Unqualified private wins over public when both appear: the most restrictive directive
    // is honoured (RFC 9111 4.2.1). Qualified private only strips the named fields.
    if cc.private {
        return Err(NotStorable::Private);
    }
    // 3.5: these three directives are the ones that allow a shared cache to store a response
    // to an authenticated request.
    if req_headers.contains_key(AUTHORIZATION)
        && !(cc.must_revalidate || cc.public || cc.s_maxage.is_some())
    {
        return Err(NotStorable::Authorization);
    }
    if vary::vary_is_star(resp_headers) {
        return Err(NotStorable::VaryStar);
    }
    let explicit = freshness::has_explicit_freshness(&cc, targeted, resp_headers);
    // 3: one of these must grant permission to store.
    let permitted = explicit || cc.public || is_heuristically_cacheable(status);
    // Product rule: something must make the response reusable, freshness or a validator.
    let reusable = explicit || conditional::has_validator(resp_headers);
    if permitted && reusable {
        Ok(())
    } else {
        Err(NotStorable::NoFreshness)
    }
}

/// A `Set-Cookie` may be stored and served to everyone only when the origin said the response
/// is shared (`public`, `s-maxage`), or when the cookie is excluded from storage by a qualified
/// `private="set-cookie"` / `no-cache="set-cookie"` (RFC 9111 5.2.2.4, 5.2.2.7).
fn set_cookie_shareable(cc: &CacheControl) -> bool {
    cc.public
        || cc.s_maxage.is_some()
        || cc.private_fields.iter().any(|f| f == "set-cookie")
        || cc.no_cache_fields.iter().any(|f| f == "set-cookie")
}

/// Whether a response to `method` invalidates the stored responses for the target URI (RFC 9111
/// 4.4): any method not known to be safe (RFC 9110 9.2.1), including unknown ones, when the
/// status is a non-error one (2xx or 3xx). The RFC also allows invalidating the `Location` and
/// `Content-Location` URIs on the same host; that is the proxy's call.
pub fn invalidates(method: &Method, status: StatusCode) -> bool {
    let safe = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    !safe && (status.is_success() || status.is_redirection())
}

/// Elements of a comma-separated list field value (RFC 9110 5.6.1): commas inside quoted strings
/// do not split, optional whitespace around elements is trimmed, empty elements are skipped.
pub(crate) fn split_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = value;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let end = list_element_end(rest);
            let element = trim_ows(&rest[..end]);
            rest = rest.get(end + 1..).unwrap_or_default();
            if !element.is_empty() {
                return Some(element);
            }
        }
    })
}

/// Index of the first comma outside a quoted string, or `value.len()`.
fn list_element_end(value: &[u8]) -> usize {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if in_quotes && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == b',' && !in_quotes {
            return i;
        }
    }
    value.len()
}

/// Trim optional whitespace (SP, HTAB; RFC 9110 5.6.3).
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// Delta-seconds (RFC 9111 1.2.2): one or more digits. Values past 2^31 are taken as 2^31, as
/// the RFC allows, which also keeps every later time calculation far from overflow.
pub(crate) fn delta_seconds(value: &[u8]) -> Option<u64> {
    const CAP: u64 = 1 << 31;
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in value {
        n = n * 10 + u64::from(d - b'0');
        if n > CAP {
            return Some(CAP);
        }
    }
    Some(n)
}
