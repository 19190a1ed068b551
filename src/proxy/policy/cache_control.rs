//! `Cache-Control` (RFC 9111 5.2): one parser for request and response directives.

use std::borrow::Cow;

use hyper::http::HeaderMap;
use hyper::http::header::CACHE_CONTROL;

use super::{delta_seconds, split_list, trim_ows};

/// Parsed `Cache-Control`, from a request or a response; each side reads the directives that
/// apply to it.
///
/// Tolerance (RFC 9111 4.2.1, 5.2): all field lines are read, names are case-insensitive,
/// arguments may be tokens or quoted strings either way, unknown directives are ignored. When a
/// directive repeats, the most restrictive value is kept (never less restrictive than the first
/// occurrence, which the RFC also allows): the smallest `max-age`, `s-maxage`, `max-stale`,
/// `stale-while-revalidate`, `stale-if-error`, the largest `min-fresh`. An invalid or missing
/// `max-age` / `s-maxage` argument reads as 0, i.e. stale (RFC 9111 4.2.1 encourages that); other
/// directives with an invalid argument are ignored, which is the restrictive reading for each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// Response: freshness lifetime; request: the oldest response the client accepts.
    pub max_age: Option<u64>,
    /// Response: freshness lifetime for shared caches, overriding `max-age` and `Expires`.
    pub s_maxage: Option<u64>,
    pub no_store: bool,
    /// Unqualified `no-cache` (or `no-cache=""`): never reuse without validation.
    pub no_cache: bool,
    /// Lowercased field names of a qualified `no-cache="..."`: those fields are stripped before
    /// storing (RFC 9111 5.2.2.4 allows reuse "if the listed header fields are excluded").
    pub no_cache_fields: Vec<String>,
    /// Unqualified `private` (or `private=""`): a shared cache must not store the response.
    pub private: bool,
    /// Lowercased field names of a qualified `private="..."`: stripped before storing (5.2.2.7).
    pub private_fields: Vec<String>,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    /// RFC 8246: the response will not change while fresh, so reload requests need not validate.
    pub immutable: bool,
    /// Request: `Some(None)` is `max-stale` without a value (any staleness).
    pub max_stale: Option<Option<u64>>,
    pub min_fresh: Option<u64>,
    pub only_if_cached: bool,
    /// RFC 5861 section 3 (response).
    pub stale_while_revalidate: Option<u64>,
    /// RFC 5861 section 4 (request or response).
    pub stale_if_error: Option<u64>,
    pub no_transform: bool,
    /// RFC 9111 5.2.2.3: store only if the status code is understood; then `no-store` is ignored.
    pub must_understand: bool,
}

impl CacheControl {
    /// Parse every `Cache-Control` field line of `headers`.
    pub fn parse(headers: &HeaderMap) -> CacheControl {
        let mut cc = CacheControl::default();
        let mut name_buf = [0u8; LONGEST_NAME];
        for line in headers.get_all(CACHE_CONTROL) {
            for element in split_list(line.as_bytes()) {
                let (name, argument) = directive(element, &mut name_buf);
                cc.apply(name, argument.as_deref());
            }
        }
        cc
    }

    fn apply(&mut self, name: &[u8], argument: Option<&[u8]>) {
        let seconds = argument.and_then(delta_seconds);
        match name {
            // Invalid means stale (4.2.1): 0 is the restrictive reading.
            b"max-age" => self.max_age = min(self.max_age, seconds.unwrap_or(0)),
            b"s-maxage" => self.s_maxage = min(self.s_maxage, seconds.unwrap_or(0)),
            b"no-store" => self.no_store = true,
            b"no-cache" => qualified(argument, &mut self.no_cache, &mut self.no_cache_fields),
            b"private" => qualified(argument, &mut self.private, &mut self.private_fields),
            b"public" => self.public = true,
            b"must-revalidate" => self.must_revalidate = true,
            b"proxy-revalidate" => self.proxy_revalidate = true,
            b"immutable" => self.immutable = true,
            b"only-if-cached" => self.only_if_cached = true,
            b"no-transform" => self.no_transform = true,
            b"must-understand" => self.must_understand = true,
            b"max-stale" => match (argument, seconds) {
                // Without a value: any staleness, unless a bound was already given.
                (None, _) => {
                    if self.max_stale.is_none() {
                        self.max_stale = Some(None);
                    }
                }
                (Some(_), Some(n)) => {
                    let bound = match self.max_stale {
                        Some(Some(old)) => old.min(n),
                        _ => n,
                    };
                    self.max_stale = Some(Some(bound));
                }
                (Some(_), None) => {}
            },
            b"min-fresh" => {
                if let Some(n) = seconds {
                    self.min_fresh = Some(self.min_fresh.map_or(n, |old| old.max(n)));
                }
            }
            b"stale-while-revalidate" => {
                if let Some(n) = seconds {
                    self.stale_while_revalidate = min(self.stale_while_revalidate, n);
                }
            }
            b"stale-if-error" => {
                if let Some(n) = seconds {
                    self.stale_if_error = min(self.stale_if_error, n);
                }
            }
            _ => {}
        }
    }
}

fn min(old: Option<u64>, new: u64) -> Option<u64> {
    Some(old.map_or(new, |old| old.min(new)))
}

/// `no-cache` and `private`: without an argument (or with an empty field list, read
/// restrictively) the directive is unqualified; with field names it applies to those fields.
fn qualified(argument: Option<&[u8]>, unqualified: &mut bool, fields: &mut Vec<String>) {
    let mut named = false;
    for field in argument.map(split_list).into_iter().flatten() {
        // Field names are tokens (RFC 9110 5.1); anything else cannot name a field.
        if !field.iter().all(|&b| is_tchar(b)) {
            continue;
        }
        named = true;
        let field = String::from_utf8_lossy(field).to_ascii_lowercase();
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    if !named {
        *unqualified = true;
    }
}

/// The longest directive name [`CacheControl::apply`] knows (`stale-while-revalidate`): a
/// longer name is an unknown directive, and is not lowercased.
const LONGEST_NAME: usize = 22;

/// Split one list element into a lowercased directive name (in `name_buf`, so that parsing a
/// field allocates nothing; empty for a name too long to be known) and its unquoted argument.
fn directive<'e, 'b>(
    element: &'e [u8],
    name_buf: &'b mut [u8; LONGEST_NAME],
) -> (&'b [u8], Option<Cow<'e, [u8]>>) {
    let (name, argument) = match element.iter().position(|&b| b == b'=') {
        Some(i) => (&element[..i], Some(trim_ows(&element[i + 1..]))),
        None => (element, None),
    };
    let name = trim_ows(name);
    let lowered = match name_buf.get_mut(..name.len()) {
        Some(lowered) => {
            lowered.copy_from_slice(name);
            lowered.make_ascii_lowercase();
            &*lowered
        }
        None => &[],
    };
    (lowered, argument.map(unquote))
}

/// The content of a quoted string (RFC 9110 5.6.4), quoted-pairs resolved; a token is returned
/// as is. An unterminated quoted string is taken up to its end.
fn unquote(value: &[u8]) -> Cow<'_, [u8]> {
    let Some(inner) = value.strip_prefix(b"\"") else {
        return Cow::Borrowed(value);
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut escaped = false;
    for &b in inner {
        if escaped {
            out.push(b);
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            break;
        } else {
            out.push(b);
        }
    }
    Cow::Owned(out)
}

/// RFC 9110 5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
