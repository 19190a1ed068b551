//! Reading a DNS message where it lies: the header's fields, the question, and each record's
//! place (owner, type, TTL, rdata) without decoding the message into hickory types. The answer
//! cache ages TTLs in place with it, and HTTPDNS renders answers from it; anything unusual is
//! for hickory-proto's decoder, which callers fall back to.

use std::ops::Range;

/// The fixed DNS header.
pub const HEADER_LEN: usize = 12;

/// Record type numbers (RFC 1035, 3596, 6891) for matching `RecordAt::rtype`.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const AAAA: u16 = 28;
    pub const OPT: u16 = 41;
}

/// Where a record is in the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordAt {
    pub section: Section,
    /// Offset of the owner name.
    pub owner: usize,
    pub rtype: u16,
    /// Offset of the TTL field.
    pub ttl_at: usize,
    pub ttl: u32,
    pub rdata: Range<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

/// The records of a message, section by section; an item is None when the message is cut
/// short or malformed there (and iteration ends after it).
pub struct Records<'w> {
    wire: &'w [u8],
    at: usize,
    /// Records left in the answer, authority and additional sections.
    left: [u16; 3],
    broken: bool,
}

impl<'w> Records<'w> {
    /// The records after the question section; None when the header or the questions are cut
    /// short.
    pub fn new(wire: &'w [u8]) -> Option<Records<'w>> {
        let mut at = HEADER_LEN;
        for _ in 0..read_u16(wire, 4)? {
            at = skip_name(wire, at)? + 4;
        }
        if at > wire.len() {
            return None;
        }
        Some(Records {
            wire,
            at,
            left: [read_u16(wire, 6)?, read_u16(wire, 8)?, read_u16(wire, 10)?],
            broken: false,
        })
    }

    fn read(&mut self, section: Section) -> Option<RecordAt> {
        let owner = self.at;
        let fields = skip_name(self.wire, owner)?;
        let rtype = read_u16(self.wire, fields)?;
        let ttl_at = fields + 4;
        let ttl = read_u32(self.wire, ttl_at)?;
        let start = ttl_at + 6;
        let end = start + usize::from(read_u16(self.wire, ttl_at + 4)?);
        if end > self.wire.len() {
            return None;
        }
        self.at = end;
        Some(RecordAt {
            section,
            owner,
            rtype,
            ttl_at,
            ttl,
            rdata: start..end,
        })
    }
}

impl Iterator for Records<'_> {
    type Item = Option<RecordAt>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.broken {
            return None;
        }
        let index = self.left.iter().position(|&left| left > 0)?;
        self.left[index] -= 1;
        let section = [Section::Answer, Section::Authority, Section::Additional][index];
        let record = self.read(section);
        self.broken = record.is_none();
        Some(record)
    }
}

/// The first question's name offset and type; None without one.
pub fn question(wire: &[u8]) -> Option<(usize, u16)> {
    if read_u16(wire, 4)? == 0 {
        return None;
    }
    let end = skip_name(wire, HEADER_LEN)?;
    Some((HEADER_LEN, read_u16(wire, end)?))
}

/// The offset after the (possibly compressed) name at `at`.
pub fn skip_name(wire: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *wire.get(at)?;
        match len {
            0 => return Some(at + 1),
            // A compression pointer ends the name.
            _ if len & 0xC0 == 0xC0 => return wire.get(at + 1).map(|_| at + 2),
            _ if len & 0xC0 != 0 => return None,
            _ => at += 1 + usize::from(len),
        }
    }
}

/// Appends the presentation form of the name at `at` (`www.example.test.`, `.` for the root)
/// when every label is made of letters, digits, `-` (not first), `_` and `*` (first), and none
/// is punycode: exactly what hickory's `Name` display writes for such a name. Returns false,
/// with `out` as it was, for any other name or a malformed one; the caller decodes those.
pub fn write_plain_name(wire: &[u8], mut at: usize, out: &mut String) -> bool {
    let start = out.len();
    let mut hops = 0;
    let mut written = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            if written == 0 {
                out.push('.');
            }
            return true;
        }
        if len & 0xC0 == 0xC0 {
            let Some(&low) = wire.get(at + 1) else { break };
            let target = usize::from(u16::from_be_bytes([len & 0x3F, low]));
            // Pointers go backwards only, so a loop cannot form.
            hops += 1;
            if target >= at || hops > 64 {
                break;
            }
            at = target;
            continue;
        }
        if len & 0xC0 != 0 {
            break;
        }
        let Some(label) = wire.get(at + 1..at + 1 + usize::from(len)) else {
            break;
        };
        if !plain_label(label) {
            break;
        }
        written += label.len() + 1;
        if written > 255 {
            break;
        }
        // Plain labels are ASCII.
        let Ok(label) = std::str::from_utf8(label) else {
            break;
        };
        out.push_str(label);
        out.push('.');
        at += 1 + label.len();
    }
    out.truncate(start);
    false
}

fn plain_label(label: &[u8]) -> bool {
    !label.starts_with(b"xn--")
        && label.iter().enumerate().all(|(i, &b)| match b {
            b'-' => i > 0,
            b'*' => i == 0,
            b'_' => true,
            b => b.is_ascii_alphanumeric(),
        })
}

pub fn read_u16(wire: &[u8], at: usize) -> Option<u16> {
    let bytes = wire.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

pub fn read_u32(wire: &[u8], at: usize) -> Option<u32> {
    let bytes = wire.get(at..at + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}
