//! Single byte ranges served from a full stored body (RFC 9110 14, 13.1.5).

use hyper::http::header::RANGE;
use hyper::http::{HeaderMap, Method};

use super::conditional::if_range_allows;
use super::{split_list, trim_ows};

/// An inclusive byte range `first..=last` within a representation, as in `Content-Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    /// Number of bytes in the range (never zero).
    pub fn byte_count(&self) -> u64 {
        self.last - self.first + 1
    }

    /// `Content-Range` of the 206 (RFC 9110 14.4): `bytes first-last/complete_length`.
    pub fn content_range(&self, complete_length: u64) -> String {
        format!("bytes {}-{}/{}", self.first, self.last, complete_length)
    }
}

/// A `Range` this cache recognized but cannot satisfy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// Answer 416 with [`RangeError::content_range`] (RFC 9110 15.5.17).
    #[error("range not satisfiable")]
    Unsatisfiable,
}

impl RangeError {
    /// `Content-Range` of the 416: `bytes */complete_length` (RFC 9110 14.4).
    pub fn content_range(&self, complete_length: u64) -> String {
        format!("bytes */{complete_length}")
    }
}

/// The byte range a request asks of a stored response whose body is `full_len` bytes:
/// `Ok(Some(range))` for a 206, `Ok(None)` to send the full 200, `Err` for a 416.
///
/// - Only GET has ranges (RFC 9110 14.2); the caller applies this to 200 responses only.
/// - `If-Range` that does not match the stored validators means the full response (13.1.5).
/// - Ignored, so `Ok(None)`: no `Range`, more than one `Range` line, a unit other than `bytes`,
///   a malformed set or a range with `first > last` (14.1.1: invalid, which a server MAY
///   ignore), and more than one range: serving them would need `multipart/byteranges`, and a
///   server MAY ignore Range (14.2).
/// - `first-` runs to the end; a `last` past the end is clamped (14.1.2); a suffix `-n` is the
///   last `n` bytes, the whole body if `n >= full_len`.
/// - Unsatisfiable (14.1.1): `first >= full_len`, or a suffix of length 0. A suffix range of an
///   empty body is satisfiable but has no bytes to name, so it gets the full (empty) 200.
pub fn byte_range(
    method: &Method,
    req_headers: &HeaderMap,
    stored_resp_headers: &HeaderMap,
    full_len: u64,
) -> Result<Option<ByteRange>, RangeError> {
    if method != Method::GET {
        return Ok(None);
    }
    let mut lines = req_headers.get_all(RANGE).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return Ok(None);
    };
    if !if_range_allows(req_headers, stored_resp_headers) {
        return Ok(None);
    }
    let Some(spec) = single_bytes_spec(line.as_bytes()) else {
        return Ok(None);
    };
    match spec {
        Spec::Suffix(0) => Err(RangeError::Unsatisfiable),
        Spec::Suffix(_) if full_len == 0 => Ok(None),
        Spec::Suffix(n) => Ok(Some(ByteRange {
            first: full_len.saturating_sub(n),
            last: full_len - 1,
        })),
        Spec::From { first, .. } if first >= full_len => Err(RangeError::Unsatisfiable),
        Spec::From { first, last } => Ok(Some(ByteRange {
            first,
            last: last.unwrap_or(u64::MAX).min(full_len - 1),
        })),
    }
}

/// Where a request's one byte range starts, when it names a start (`bytes=first-` or
/// `bytes=first-last`): what a cache that fetches in slices needs before it knows the length.
pub fn range_start(req_headers: &HeaderMap) -> Option<u64> {
    let mut lines = req_headers.get_all(RANGE).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return None;
    };
    match single_bytes_spec(line.as_bytes())? {
        Spec::From { first, .. } => Some(first),
        Spec::Suffix(_) => None,
    }
}

/// `Content-Range: bytes first-last/complete` of a 206 (RFC 9110 14.4), or None.
pub fn content_range(value: &[u8]) -> Option<(ByteRange, u64)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let rest = text.strip_prefix("bytes ")?;
    let (range, complete) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let range = ByteRange {
        first: digits(first.trim().as_bytes())?,
        last: digits(last.trim().as_bytes())?,
    };
    let complete = digits(complete.trim().as_bytes())?;
    (range.first <= range.last && range.last < complete).then_some((range, complete))
}

/// One parsed range-spec.
enum Spec {
    /// `first-` or `first-last`.
    From { first: u64, last: Option<u64> },
    /// `-length`.
    Suffix(u64),
}

/// The range-spec of `bytes=<one spec>`, or `None` when the header is to be ignored.
fn single_bytes_spec(value: &[u8]) -> Option<Spec> {
    let value = trim_ows(value);
    let eq = value.iter().position(|&b| b == b'=')?;
    if !trim_ows(&value[..eq]).eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let mut specs = split_list(&value[eq + 1..]);
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return None;
    };
    let dash = spec.iter().position(|&b| b == b'-')?;
    let (first, last) = (trim_ows(&spec[..dash]), trim_ows(&spec[dash + 1..]));
    if first.is_empty() {
        return digits(last).map(Spec::Suffix);
    }
    let first = digits(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(digits(last)?)
    };
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(Spec::From { first, last })
}

/// A non-empty run of digits; values past `u64::MAX` saturate, which keeps their meaning here
/// (past any end, so clamped or unsatisfiable).
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}
