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

/// RFC 9213's targeted field for CDNs: when present and valid it replaces `Cache-Control`
/// (and `Expires`) for this cache, and it is not passed on to clients.
pub const CDN_CACHE_CONTROL: &str = "cdn-cache-control";

impl CacheControl {
    /// Whether a stale copy must be revalidated before any reuse (`must-revalidate`, or
    /// `proxy-revalidate` for this shared cache: RFC 9111 5.2.2.2, 5.2.2.8).
    pub fn stale_must_revalidate(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate
    }

    /// The directives this cache follows for a response: `CDN-Cache-Control` when the response
    /// has a valid one (RFC 9213: a Structured Fields dictionary; an invalid field is ignored
    /// whole), else `Cache-Control`. The flag says which: a targeted field also overrides
    /// `Expires`.
    pub fn for_response(headers: &HeaderMap) -> (CacheControl, bool) {
        let mut lines = headers.get_all(CDN_CACHE_CONTROL).iter().peekable();
        if lines.peek().is_some() {
            let mut joined = Vec::new();
            for (i, line) in lines.enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(line.as_bytes());
            }
            if let Some(cc) = parse_targeted(&joined) {
                return (cc, true);
            }
        }
        (CacheControl::parse(headers), false)
    }

    /// A targeted field's directives (its field lines joined with commas), or None when it is
    /// not valid and so ignored whole (RFC 9213 2.1).
    pub fn targeted(field: &[u8]) -> Option<CacheControl> {
        parse_targeted(field)
    }

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

/// A targeted field's directives, or None when it is not a valid Structured Fields dictionary
/// (RFC 8941 3.2) or a directive that takes seconds has a value of another type (RFC 9213 2.1).
fn parse_targeted(field: &[u8]) -> Option<CacheControl> {
    let mut cc = CacheControl::default();
    let text = std::str::from_utf8(field).ok()?;
    for member in split_members(text)? {
        let member = member.trim_matches([' ', '\t']);
        // Parameters (`;key=value`) are allowed and ignored.
        let (item, _parameters) = member.split_once(';').unwrap_or((member, ""));
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (item, None),
        };
        let key_ok = key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b));
        if !key_ok {
            return None;
        }
        let seconds = matches!(
            key,
            "max-age" | "s-maxage" | "stale-while-revalidate" | "stale-if-error"
        );
        match value {
            None => cc.apply(key.as_bytes(), None),
            Some(value) if is_sf_integer(value) => cc.apply(key.as_bytes(), Some(value.as_bytes())),
            Some(_) if seconds => return None,
            Some(value) if is_sf_bare_item(value) => {
                let unquoted = unquote(value.as_bytes());
                cc.apply(key.as_bytes(), Some(&unquoted));
            }
            Some(_) => return None,
        }
    }
    Some(cc)
}

/// Dictionary members split at commas outside strings; None for an unterminated string.
fn split_members(text: &str) -> Option<Vec<&str>> {
    let mut members = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                members.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    members.push(&text[start..]);
    Some(members)
}

/// RFC 8941 3.3.1: an optional minus and 1 to 15 digits.
fn is_sf_integer(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An sf-string, sf-token, sf-boolean, sf-decimal or byte sequence (RFC 8941 3.3).
fn is_sf_bare_item(value: &str) -> bool {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'"') => bytes.len() >= 2 && bytes.last() == Some(&b'"'),
        Some(b'?') => value == "?0" || value == "?1",
        Some(b':') => bytes.len() >= 2 && bytes.last() == Some(&b':'),
        Some(b) if b.is_ascii_alphabetic() || *b == b'*' => {
            bytes.iter().all(|&b| is_tchar(b) || b == b':' || b == b'/')
        }
        Some(_) => {
            let digits = value.strip_prefix('-').unwrap_or(value);
            digits.split_once('.').is_some_and(|(int, frac)| {
                (1..=12).contains(&int.len())
                    && (1..=3).contains(&frac.len())
                    && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
            })
        }
        None => false,
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
