//! Rdata from wire form back to presentation text, the inverse of [`super::rdata::parse`]:
//! what the reader reads back to the same wire bytes (the round-trip tests hold it to that),
//! with RFC 3597's `\# length hex` for anything it has no better form for.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;

use super::name::{push_escaped, to_text as name_text, wire_len};
use super::types::{self, Field, Shape};

/// The presentation of the rdata `wire` of type `code`.
pub fn rdata_to_text(code: u16, wire: &[u8]) -> String {
    let shape = types::by_code(code).map(|t| t.shape);
    let printed = match shape {
        Some(Shape::Fields(list)) => fields(list, wire),
        // SVCB's rules (sorted unique keys, mandatory keys present, AliasMode alone) are the
        // reader's to check: what it would refuse is printed in generic form.
        Some(Shape::Svcb) => svcb(wire).filter(|text| reads_back(code, text, wire)),
        Some(Shape::Apl) => apl(wire),
        Some(Shape::Nsap) if !wire.is_empty() => Some(format!("0x{}", hex(wire))),
        _ => None,
    };
    printed.unwrap_or_else(|| generic(wire))
}

/// Whether `text` reads back to `wire` as rdata of type `code`.
fn reads_back(code: u16, text: &str, wire: &[u8]) -> bool {
    let mut lexer = super::lexer::Lexer::new(text.as_bytes());
    let mut tokens = Vec::new();
    if !matches!(lexer.next_entry(&mut tokens), Ok(true)) {
        return false;
    }
    let mut fields = super::rdata::Fields::new(&tokens, b"\0");
    let mut out = Vec::with_capacity(wire.len());
    super::rdata::parse(code, &mut fields, &mut out).is_ok() && out == wire
}

/// `\# length hex`.
pub fn generic(wire: &[u8]) -> String {
    if wire.is_empty() {
        "\\# 0".to_string()
    } else {
        format!("\\# {} {}", wire.len(), hex(wire))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A character-string, quoted, with `"` and `\` escaped and non-printables as `\DDD`.
fn text(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &byte in bytes {
        if byte == b' ' {
            out.push(' ');
        } else {
            push_escaped(&mut out, byte, b"\"\\");
        }
    }
    out.push('"');
    out
}

fn fields(list: &[Field], wire: &[u8]) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut pos = 0;
    for &field in list {
        let rest = wire.get(pos..)?;
        if rest.is_empty() && field == Field::OptionalText {
            continue;
        }
        let (part, used) = field_text(field, rest)?;
        parts.push(part);
        pos += used;
    }
    (pos == wire.len()).then(|| parts.join(" "))
}

/// The text of the field at the start of `rest` and the octets it used; None when the wire
/// form is not one the reader writes.
fn field_text(field: Field, rest: &[u8]) -> Option<(String, usize)> {
    Some(match field {
        Field::Name => {
            let len = wire_len(rest)?;
            (name_text(&rest[..len]), len)
        }
        Field::U8 | Field::Algorithm => (rest.first()?.to_string(), 1),
        Field::U16 | Field::CertType => (u16_at(rest)?.to_string(), 2),
        Field::Type => (types::type_name(u16_at(rest)?), 2),
        Field::U32 | Field::Period | Field::Time => {
            let bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
            (u32::from_be_bytes(bytes).to_string(), 4)
        }
        Field::Ipv4 => {
            let bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
            (Ipv4Addr::from(bytes).to_string(), 4)
        }
        Field::Ipv6 => {
            let bytes: [u8; 16] = rest.get(..16)?.try_into().ok()?;
            (Ipv6Addr::from(bytes).to_string(), 16)
        }
        Field::Text | Field::OptionalText => {
            let len = usize::from(*rest.first()?);
            (text(rest.get(1..1 + len)?), 1 + len)
        }
        Field::Texts => (texts(rest)?, rest.len()),
        Field::HexRest if !rest.is_empty() => (hex(rest), rest.len()),
        Field::HexRest => return None,
        Field::Base64Rest if !rest.is_empty() => (base64(rest), rest.len()),
        Field::Base64Rest => ("-".to_string(), 0),
        Field::Salt => salt(rest)?,
        Field::Base32Next => {
            let len = usize::from(*rest.first()?);
            let hash = rest.get(1..1 + len).filter(|h| !h.is_empty())?;
            (base32hex(hash), 1 + len)
        }
        Field::TypeBitmap => (bitmap(rest)?, rest.len()),
        Field::NxtBitmap => (nxt_bitmap(rest)?, rest.len()),
        Field::Eui48 => (eui(rest.get(..6)?), 6),
        Field::Eui64 => (eui(rest.get(..8)?), 8),
        Field::Ilnp64 => (ilnp64(rest.get(..8)?), 8),
        Field::RawText => (text(rest), rest.len()),
        Field::CaaTag => caa_tag(rest)?,
    })
}

fn u16_at(rest: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]))
}

/// Character-strings filling all of `rest`, at least one.
fn texts(rest: &[u8]) -> Option<String> {
    let mut strings = Vec::new();
    let mut at = 0;
    while at < rest.len() {
        let len = usize::from(rest[at]);
        strings.push(text(rest.get(at + 1..at + 1 + len)?));
        at += 1 + len;
    }
    (!strings.is_empty()).then(|| strings.join(" "))
}

fn salt(rest: &[u8]) -> Option<(String, usize)> {
    let len = usize::from(*rest.first()?);
    let salt = rest.get(1..1 + len)?;
    let text = if salt.is_empty() {
        "-".to_string()
    } else {
        hex(salt)
    };
    Some((text, 1 + len))
}

fn nxt_bitmap(rest: &[u8]) -> Option<String> {
    // Only the form the reader writes: no trailing zero octets, types below 128.
    if rest.last() == Some(&0) || rest.len() > 16 {
        return None;
    }
    let mut names = Vec::new();
    for (i, &byte) in rest.iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                let name = types::type_name((i * 8 + bit) as u16);
                // A meta type (OPT) cannot be written in the bitmap's text: the
                // generic form carries it.
                types::parse_type(name.as_bytes())?.ok()?;
                names.push(name);
            }
        }
    }
    Some(names.join(" "))
}

fn eui(octets: &[u8]) -> String {
    octets
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join("-")
}

fn ilnp64(octets: &[u8]) -> String {
    let groups: Vec<String> = octets
        .chunks(2)
        .map(|c| format!("{:02x}{:02x}", c[0], c[1]))
        .collect();
    groups.join(":")
}

fn caa_tag(rest: &[u8]) -> Option<(String, usize)> {
    let len = usize::from(*rest.first()?);
    let tag = rest.get(1..1 + len)?;
    let plain = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    if tag.is_empty() || !tag.iter().all(plain) {
        return None;
    }
    Some((String::from_utf8_lossy(tag).into_owned(), 1 + len))
}

fn base32hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &byte in bytes {
        buffer = buffer << 8 | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(DIGITS[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(DIGITS[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Type names of window blocks in the form RFC 4034 section 4.1.2 prescribes (windows in
/// increasing order, 1 to 32 octets each, no trailing zero octet); None for any other form.
fn bitmap(wire: &[u8]) -> Option<String> {
    let mut names = Vec::new();
    let mut pos = 0;
    let mut last_window = None;
    while pos < wire.len() {
        let window = u16::from(*wire.get(pos)?);
        let len = usize::from(*wire.get(pos + 1)?);
        let bits = wire.get(pos + 2..pos + 2 + len)?;
        if len == 0 || len > 32 || bits.last() == Some(&0) || last_window >= Some(window) {
            return None;
        }
        last_window = Some(window);
        for (i, &byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    names.push(types::type_name(window << 8 | (i * 8 + bit) as u16));
                }
            }
        }
        pos += 2 + len;
    }
    Some(names.join(" "))
}

fn apl(wire: &[u8]) -> Option<String> {
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < wire.len() {
        let family = u16::from_be_bytes([*wire.get(pos)?, *wire.get(pos + 1)?]);
        let prefix = *wire.get(pos + 2)?;
        let flags = *wire.get(pos + 3)?;
        let len = usize::from(flags & 0x7f);
        let part = wire.get(pos + 4..pos + 4 + len)?;
        // The reader writes addresses without trailing zero octets, prefixes within them.
        let max_prefix = if family == 1 { 32 } else { 128 };
        if part.last() == Some(&0) || prefix > max_prefix {
            return None;
        }
        let address = match family {
            1 if len <= 4 => {
                let mut octets = [0u8; 4];
                octets[..len].copy_from_slice(part);
                Ipv4Addr::from(octets).to_string()
            }
            2 if len <= 16 => {
                let mut octets = [0u8; 16];
                octets[..len].copy_from_slice(part);
                Ipv6Addr::from(octets).to_string()
            }
            _ => return None,
        };
        let negated = if flags & 0x80 != 0 { "!" } else { "" };
        items.push(format!("{negated}{family}:{address}/{prefix}"));
        pos += 4 + len;
    }
    Some(items.join(" "))
}

fn svcb(wire: &[u8]) -> Option<String> {
    let priority = u16::from_be_bytes([*wire.first()?, *wire.get(1)?]);
    let target_len = wire_len(wire.get(2..)?)?;
    let mut out = format!("{priority} {}", name_text(&wire[2..2 + target_len]));
    let mut pos = 2 + target_len;
    while pos < wire.len() {
        let key = u16::from_be_bytes([*wire.get(pos)?, *wire.get(pos + 1)?]);
        let len = usize::from(u16::from_be_bytes([
            *wire.get(pos + 2)?,
            *wire.get(pos + 3)?,
        ]));
        let value = wire.get(pos + 4..pos + 4 + len)?;
        out.push(' ');
        out.push_str(&svc_param(key, value)?);
        pos += 4 + len;
    }
    Some(out)
}

/// One SvcParam in the form a reader of RFC 9460 reads back to the same octets.
fn svc_param(key: u16, value: &[u8]) -> Option<String> {
    let two = |c: &[u8]| u16::from_be_bytes([c[0], c[1]]);
    Some(match key {
        0 if value.len().is_multiple_of(2) && !value.is_empty() => {
            let keys: Vec<String> = value.chunks(2).map(|c| svc_key_name(two(c))).collect();
            format!("mandatory={}", keys.join(","))
        }
        1 if !value.is_empty() => {
            let mut ids = Vec::new();
            let mut pos = 0;
            while pos < value.len() {
                let len = usize::from(value[pos]);
                let id = value.get(pos + 1..pos + 1 + len)?;
                // Value-list escaping (`\,`, `\\`) under character-string escaping.
                let mut item = String::new();
                for &byte in id {
                    match byte {
                        b',' => item.push_str("\\\\,"),
                        b'\\' => item.push_str("\\\\\\\\"),
                        _ => push_escaped(&mut item, byte, b"\""),
                    }
                }
                ids.push(item);
                pos += 1 + len;
            }
            format!("alpn=\"{}\"", ids.join(","))
        }
        2 if value.is_empty() => "no-default-alpn".to_string(),
        3 if value.len() == 2 => format!("port={}", two(value)),
        4 if value.len().is_multiple_of(4) && !value.is_empty() => {
            let addrs: Vec<String> = value
                .chunks(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string())
                .collect();
            format!("ipv4hint={}", addrs.join(","))
        }
        5 if !value.is_empty() => format!("ech={}", base64(value)),
        6 if value.len().is_multiple_of(16) && !value.is_empty() => {
            let addrs: Vec<String> = value
                .chunks(16)
                .map(|c| {
                    let octets: [u8; 16] = c.try_into().unwrap_or([0; 16]);
                    Ipv6Addr::from(octets).to_string()
                })
                .collect();
            format!("ipv6hint={}", addrs.join(","))
        }
        8 if value.is_empty() => "ohttp".to_string(),
        0..=8 if key != 7 => return None,
        _ if value.is_empty() => format!("key{key}"),
        _ => {
            let mut escaped = String::new();
            for &byte in value {
                let _ = write!(escaped, "\\{byte:03}");
            }
            format!("key{key}=\"{escaped}\"")
        }
    })
}

fn svc_key_name(key: u16) -> String {
    super::svcb::KEYS
        .get(usize::from(key))
        .map_or_else(|| format!("key{key}"), |n| n.to_string())
}
