//! A stored response's header fields, packed into one buffer: every value (and every name that
//! is not a well-known one) back to back, then 8 bytes per field saying where its value ends and
//! which name it has, then the number of fields. A `HeaderMap` of 8 fields holds at least 16
//! slots of 104 bytes, an index and one allocation per value (about 2 KiB); this form holds the
//! fields' text plus 8 bytes per field and 4 in all, in one allocation. The proxy rebuilds a
//! `HeaderMap` to answer (values are slices of the buffer: no copy), about what cloning a
//! stored `HeaderMap` cost.

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
#[derive(Clone, Debug)]
pub struct CompactHead {
    /// The fields' text, their table (`FIELD_BYTES` per field) and their count (`u32` LE).
    packed: Bytes,
}

/// Bytes per field in the table: `Field::encode`.
const FIELD_BYTES: usize = 8;

/// One field of a [`CompactHead`]'s table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    /// Where the value ends in the text; the field starts where the previous one ends.
    end: u32,
    /// Length of the name's text before the value; 0 for a name in `KNOWN` (a name is never
    /// empty, and never longer than `u16::MAX`: the http crate refuses longer ones).
    name_len: u16,
    /// The name's index in `KNOWN`, when `name_len` is 0.
    known: u8,
    /// The value's HPACK never-index flag.
    sensitive: bool,
}

impl Field {
    fn encode(self) -> [u8; FIELD_BYTES] {
        let [e0, e1, e2, e3] = self.end.to_le_bytes();
        let [n0, n1] = self.name_len.to_le_bytes();
        [e0, e1, e2, e3, n0, n1, self.known, u8::from(self.sensitive)]
    }

    fn decode(bytes: [u8; FIELD_BYTES]) -> Field {
        let [e0, e1, e2, e3, n0, n1, known, sensitive] = bytes;
        Field {
            end: u32::from_le_bytes([e0, e1, e2, e3]),
            name_len: u16::from_le_bytes([n0, n1]),
            known,
            sensitive: sensitive != 0,
        }
    }
}

impl CompactHead {
    /// The fields of `headers` whose name `keep` accepts, in their order, in an allocation of
    /// its own sized to fit (a value hyper parsed is a slice of the connection's read buffer:
    /// keeping it would keep that whole buffer alive, several KiB per object).
    pub fn new(headers: &HeaderMap, keep: impl Fn(&HeaderName) -> bool) -> CompactHead {
        let known_of = |name: &HeaderName| KNOWN.iter().position(|k| k == name);
        let fields = || headers.iter().filter(|(name, _)| keep(name));
        let (count, text_len) = fields().fold((0, 0), |(count, len), (name, value)| {
            let name_len = known_of(name).map_or(name.as_str().len(), |_| 0);
            (count + 1, len + name_len + value.len())
        });
        let mut packed = Vec::with_capacity(text_len + count * FIELD_BYTES + 4);
        let mut table = Vec::with_capacity(count);
        for (name, value) in fields() {
            let (known, name_len) = match known_of(name) {
                Some(index) => (u8::try_from(index).unwrap_or(u8::MAX), 0),
                None => {
                    packed.extend_from_slice(name.as_str().as_bytes());
                    (0, u16::try_from(name.as_str().len()).unwrap_or(u16::MAX))
                }
            };
            packed.extend_from_slice(value.as_bytes());
            table.push(Field {
                // Heads are bounded by hyper's limits (16 MiB at most, for HTTP/2), far below.
                end: u32::try_from(packed.len()).unwrap_or(u32::MAX),
                name_len,
                known,
                sensitive: value.is_sensitive(),
            });
        }
        table.iter().for_each(|f| packed.extend(f.encode()));
        let count = u32::try_from(table.len()).unwrap_or(u32::MAX);
        packed.extend(count.to_le_bytes());
        CompactHead {
            packed: Bytes::from(packed),
        }
    }

    /// The fields as a `HeaderMap` with room for `spare` more without growing.
    pub fn to_header_map(&self, spare: usize) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.table().len() / FIELD_BYTES + spare);
        for (name, value) in self.iter() {
            map.append(name, value);
        }
        map
    }

    /// Only the fields named `name`, as a `HeaderMap` (the others are skipped unbuilt).
    pub fn only(&self, name: &HeaderName) -> HeaderMap {
        let mut map = HeaderMap::new();
        let named = |n: &Name<'_>| match n {
            Name::Known(known) => *known == name,
            Name::Text(text) => *text == name.as_str().as_bytes(),
        };
        for (_, value) in self.raw().filter(|(n, _)| named(n)) {
            if let Some(value) = self.value(value) {
                map.append(name, value);
            }
        }
        map
    }

    /// Bytes this head holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.packed.len()
    }

    /// The fields' table (empty if the buffer is not one `new` made).
    fn table(&self) -> &[u8] {
        let len = self.packed.len();
        let count = match self.packed.get(len.saturating_sub(4)..) {
            Some(&[c0, c1, c2, c3]) => u32::from_le_bytes([c0, c1, c2, c3]) as usize,
            _ => return &[],
        };
        let start = count
            .checked_mul(FIELD_BYTES)
            .and_then(|table| (len - 4).checked_sub(table));
        start.map_or(&[], |start| &self.packed[start..len - 4])
    }

    /// The fields in order. Values share the buffer (no copy); a name in `KNOWN` is a copy of a
    /// constant, any other name is allocated.
    pub fn iter(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
        self.raw().filter_map(|(name, value)| {
            let name = match name {
                Name::Known(known) => known.clone(),
                Name::Text(text) => HeaderName::from_bytes(text).ok()?,
            };
            Some((name, self.value(value)?))
        })
    }

    /// The fields in order: each one's name, and where its value is.
    fn raw(&self) -> impl Iterator<Item = (Name<'_>, ValueAt)> + '_ {
        let table = self.table();
        let text_end = self.packed.len().saturating_sub(4 + table.len());
        let mut start = 0usize;
        table.chunks_exact(FIELD_BYTES).filter_map(move |bytes| {
            let field = Field::decode(bytes.try_into().ok()?);
            let (from, end) = (start, field.end as usize);
            start = end;
            let value_start = from + usize::from(field.name_len);
            if value_start > end || end > text_end {
                return None;
            }
            let name = match field.name_len {
                0 => Name::Known(KNOWN.get(usize::from(field.known))?),
                _ => Name::Text(&self.packed[from..value_start]),
            };
            let value = ValueAt {
                range: value_start..end,
                sensitive: field.sensitive,
            };
            Some((name, value))
        })
    }

    /// A value as a slice of the buffer.
    fn value(&self, at: ValueAt) -> Option<HeaderValue> {
        let mut value = HeaderValue::from_maybe_shared(self.packed.slice(at.range)).ok()?;
        value.set_sensitive(at.sensitive);
        Some(value)
    }
}

/// A field's name in a [`CompactHead`], before it is built.
enum Name<'a> {
    Known(&'static HeaderName),
    Text(&'a [u8]),
}

/// Where a field's value is in a [`CompactHead`]'s buffer.
struct ValueAt {
    range: std::ops::Range<usize>,
    sensitive: bool,
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
        let head = CompactHead::new(&headers, |_| true);
        assert_eq!(head.iter().count(), 6);
        let back = head.to_header_map(4);
        assert_eq!(back, headers);
        assert!(back.capacity() >= 10);
        assert!(back["x-token"].is_sensitive());
        let custom: Vec<_> = back.get_all("x-custom").iter().collect();
        assert_eq!(custom, ["one", ""]);
        assert_eq!(head.only(&header::SET_COOKIE).len(), 2);
        let custom = head.only(&HeaderName::from_static("x-custom"));
        assert_eq!(
            custom.get_all("x-custom").iter().collect::<Vec<_>>(),
            ["one", ""]
        );
        let text = "text/plain".len() + "x-custom".len() * 2 + 3 + 3 + 3 + "x-token".len() + 6;
        assert_eq!(head.heap_bytes(), text + 6 * 8 + 4);
    }

    #[test]
    fn an_empty_head_is_four_bytes_and_a_damaged_one_yields_no_fields() {
        let empty = CompactHead::new(&HeaderMap::new(), |_| true);
        assert_eq!(empty.heap_bytes(), 4);
        assert!(empty.to_header_map(0).is_empty());
        for packed in [&b""[..], b"\x01\0\0", b"\xff\xff\xff\xff", b"abc\x01\0\0\0"] {
            let damaged = CompactHead {
                packed: Bytes::from_static(packed),
            };
            assert_eq!(damaged.iter().count(), 0);
        }
        let field = Field {
            end: 70_000,
            name_len: 300,
            known: 7,
            sensitive: true,
        };
        assert_eq!(Field::decode(field.encode()), field);
    }

    #[test]
    fn every_known_name_is_distinct_and_indexable() {
        for (i, name) in KNOWN.iter().enumerate() {
            assert_eq!(KNOWN.iter().position(|k| k == name), Some(i), "{name}");
        }
        assert!(KNOWN.len() <= usize::from(u8::MAX));
    }
}
