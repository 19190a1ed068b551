//! A stored response's header fields, packed: every value (and every name that is not a
//! well-known one) back to back in one buffer, and per field 8 bytes saying where its value
//! ends and which name it has. A `HeaderMap` of 8 fields holds at least 16 slots of 104 bytes,
//! an index and one allocation per value (about 2 KiB); this form holds the fields' text plus 8
//! bytes per field. The proxy rebuilds a `HeaderMap` to answer (values are slices of the
//! buffer: no copy), about what cloning a stored `HeaderMap` cost.

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::header::{self, HeaderName, HeaderValue};

/// Names stored as their index here rather than as text: the response fields origins commonly
/// send (any other name is kept as text, and costs its length).
static KNOWN: [HeaderName; 43] = [
    header::ACCEPT_RANGES,
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
    header::AGE,
    header::ALLOW,
    header::ALT_SVC,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LENGTH,
    header::CONTENT_LOCATION,
    header::CONTENT_RANGE,
    header::CONTENT_SECURITY_POLICY,
    header::CONTENT_SECURITY_POLICY_REPORT_ONLY,
    header::CONTENT_TYPE,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::LAST_MODIFIED,
    header::LINK,
    header::LOCATION,
    header::PRAGMA,
    header::REFERRER_POLICY,
    header::REFRESH,
    header::RETRY_AFTER,
    header::SERVER,
    header::SET_COOKIE,
    header::STRICT_TRANSPORT_SECURITY,
    header::CDN_CACHE_CONTROL,
    header::TRAILER,
    header::VARY,
    header::VIA,
    header::WARNING,
    header::WWW_AUTHENTICATE,
    header::X_CONTENT_TYPE_OPTIONS,
    header::X_FRAME_OPTIONS,
    header::X_XSS_PROTECTION,
    header::CACHE_STATUS,
];

/// Header fields in one buffer; see the module's comment.
#[derive(Clone, Debug, Default)]
pub struct CompactHead {
    /// Per field in order: its name when it is not in `KNOWN`, then its value.
    text: Bytes,
    fields: Box<[Field]>,
}

/// One field of a [`CompactHead`].
#[derive(Clone, Copy, Debug)]
struct Field {
    /// Where the value ends in `text`; the field starts where the previous one ends.
    end: u32,
    /// Length of the name's text before the value; 0 for a name in `KNOWN` (a name is never
    /// empty, and never longer than `u16::MAX`: the http crate refuses longer ones).
    name_len: u16,
    /// The name's index in `KNOWN`, when `name_len` is 0.
    known: u8,
    /// The value's HPACK never-index flag.
    sensitive: bool,
}

impl CompactHead {
    /// The fields of `headers`, in their order, in allocations of their own sized to fit (a
    /// value hyper parsed is a slice of the connection's read buffer: keeping it would keep
    /// that whole buffer alive, several KiB per object).
    pub fn new(headers: &HeaderMap) -> CompactHead {
        let known_of = |name: &HeaderName| KNOWN.iter().position(|k| k == name);
        let size: usize = headers
            .iter()
            .map(|(name, value)| {
                let name_len = known_of(name).map_or(name.as_str().len(), |_| 0);
                name_len + value.len()
            })
            .sum();
        let mut text = Vec::with_capacity(size);
        let mut fields = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let (known, name_len) = match known_of(name) {
                Some(index) => (u8::try_from(index).unwrap_or(u8::MAX), 0),
                None => {
                    text.extend_from_slice(name.as_str().as_bytes());
                    (0, u16::try_from(name.as_str().len()).unwrap_or(u16::MAX))
                }
            };
            text.extend_from_slice(value.as_bytes());
            fields.push(Field {
                // Heads are bounded by hyper's limits (16 MiB at most, for HTTP/2), far below.
                end: u32::try_from(text.len()).unwrap_or(u32::MAX),
                name_len,
                known,
                sensitive: value.is_sensitive(),
            });
        }
        CompactHead {
            text: Bytes::from(text),
            fields: fields.into_boxed_slice(),
        }
    }

    /// The fields as a `HeaderMap` with room for `spare` more without growing.
    pub fn to_header_map(&self, spare: usize) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.fields.len() + spare);
        for (name, value) in self.iter() {
            map.append(name, value);
        }
        map
    }

    /// Only the fields named `name`, as a `HeaderMap`.
    pub fn only(&self, name: &HeaderName) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, value) in self.iter().filter(|(n, _)| n == name) {
            map.append(n, value);
        }
        map
    }

    /// Bytes this head holds on the heap: its text and its field table.
    pub fn heap_bytes(&self) -> usize {
        self.text.len() + std::mem::size_of_val(&*self.fields)
    }

    /// The fields in order. Values share the buffer (no copy); a name in `KNOWN` is a copy of a
    /// constant, any other name is allocated.
    pub fn iter(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
        let mut start = 0usize;
        self.fields.iter().filter_map(move |field| {
            let (from, end) = (start, field.end as usize);
            start = end;
            let value_start = from + usize::from(field.name_len);
            if value_start > end || end > self.text.len() {
                return None;
            }
            let name = match field.name_len {
                0 => KNOWN.get(usize::from(field.known))?.clone(),
                _ => HeaderName::from_bytes(&self.text[from..value_start]).ok()?,
            };
            let mut value =
                HeaderValue::from_maybe_shared(self.text.slice(value_start..end)).ok()?;
            value.set_sensitive(field.sensitive);
            Some((name, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_comes_back_as_it_went_in() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.append("x-custom", HeaderValue::from_static("one"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
        headers.append("x-custom", HeaderValue::from_static(""));
        let mut secret = HeaderValue::from_static("s3cr3t");
        secret.set_sensitive(true);
        headers.insert("x-token", secret);
        let head = CompactHead::new(&headers);
        assert_eq!(head.iter().count(), 6);
        let back = head.to_header_map(4);
        assert_eq!(back, headers);
        assert!(back.capacity() >= 10);
        assert!(back["x-token"].is_sensitive());
        let custom: Vec<_> = back.get_all("x-custom").iter().collect();
        assert_eq!(custom, ["one", ""]);
        assert_eq!(head.only(&header::SET_COOKIE).len(), 2);
        let text = "text/plain".len() + "x-custom".len() * 2 + 3 + 3 + 3 + "x-token".len() + 6;
        assert_eq!(head.heap_bytes(), text + 6 * 8);
    }

    #[test]
    fn every_known_name_is_distinct_and_indexable() {
        for (i, name) in KNOWN.iter().enumerate() {
            assert_eq!(KNOWN.iter().position(|k| k == name), Some(i), "{name}");
        }
        assert!(KNOWN.len() <= usize::from(u8::MAX));
    }
}
