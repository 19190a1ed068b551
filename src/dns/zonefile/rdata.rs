//! Rdata from presentation tokens to wire bytes, field by field (see [`super::types`]), and the
//! RFC 3597 generic form `\# length hex` for any type.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;

use super::lexer::Token;
use super::name::{parse_name, unescape, wire_len};
use super::special;
use super::types::{self, Field, Shape, lossy, parse_decimal};

/// A problem with one field: the token it is in (`at`, an index into the rdata tokens; the
/// number of tokens when one is missing) and what was wrong.
#[derive(Debug)]
pub struct FieldError {
    pub at: usize,
    pub message: String,
}

/// The rdata tokens of one record and how far they are read.
pub struct Fields<'t, 'a> {
    tokens: &'t [Token<'a>],
    next: usize,
    pub origin: &'t [u8],
}

impl<'t, 'a> Fields<'t, 'a> {
    pub fn new(tokens: &'t [Token<'a>], origin: &'t [u8]) -> Self {
        Self {
            tokens,
            next: 0,
            origin,
        }
    }

    /// The next token; `what` names the field for the error when there is none.
    pub fn take(&mut self, what: &str) -> Result<Token<'a>, FieldError> {
        let token = self.tokens.get(self.next).copied().ok_or_else(|| FieldError {
            at: self.next,
            message: format!("missing {what}"),
        })?;
        self.next += 1;
        Ok(token)
    }

    pub fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.next).copied()
    }

    pub fn is_done(&self) -> bool {
        self.next >= self.tokens.len()
    }

    /// Every token left.
    pub fn rest(&mut self) -> &'t [Token<'a>] {
        let rest = &self.tokens[self.next.min(self.tokens.len())..];
        self.next = self.tokens.len();
        rest
    }

    /// An error about the token just taken.
    pub fn error(&self, message: impl Into<String>) -> FieldError {
        FieldError {
            at: self.next.saturating_sub(1),
            message: message.into(),
        }
    }

    /// An error for a field that is missing after the last token.
    pub fn missing(&self, what: &str) -> FieldError {
        FieldError {
            at: self.tokens.len(),
            message: format!("missing {what}"),
        }
    }
}

/// Reads the rdata of type `code` from `fields` into `out` (wire form, appended).
pub fn parse(code: u16, fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let generic_form = fields.peek().is_some_and(|t| !t.quoted && t.text == b"\\#")
        && fields.tokens.get(1).is_some_and(|t| parse_decimal(t.text).is_some());
    if generic_form {
        fields.take("\\#")?;
        return generic(code, fields, out);
    }
    let Some(info) = types::by_code(code) else {
        return Err(FieldError {
            at: 0,
            message: format!(
                "TYPE{code} has no presentation format here: write it as \\# length hex (RFC 3597)"
            ),
        });
    };
    match info.shape {
        Shape::Fields(list) => {
            for &field in list {
                parse_field(field, fields, out)?;
            }
        }
        Shape::GenericOnly => {
            return Err(FieldError {
                at: 0,
                message: format!("{} rdata is written as \\# length hex (RFC 3597)", info.name),
            });
        }
        Shape::Loc => special::loc(fields, out)?,
        Shape::Wks => special::wks(fields, out)?,
        Shape::Apl => special::apl(fields, out)?,
        Shape::Ipseckey => special::ipseckey(fields, out)?,
        Shape::Nsap => special::nsap(fields, out)?,
        Shape::Svcb => super::svcb::parse(fields, out)?,
    }
    match fields.peek() {
        None => Ok(()),
        Some(token) => Err(FieldError {
            at: fields.tokens.len() - fields.rest().len(),
            message: format!("unexpected {} after the rdata", describe(&token)),
        }),
    }
}

fn describe(token: &Token<'_>) -> String {
    if token.quoted {
        format!("\"{}\"", lossy(token.text))
    } else {
        format!("'{}'", lossy(token.text))
    }
}

/// `\# length hex...` (RFC 3597 section 5): the wire form as is, checked against the type's
/// own shape when the type is known.
fn generic(code: u16, fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let length = fields.take("rdata length after \\#")?;
    let length = parse_decimal(length.text)
        .filter(|&n| n <= 65535)
        .ok_or_else(|| fields.error(format!("bad rdata length {}", lossy(length.text))))?;
    let start = out.len();
    let rest = fields.rest();
    for token in rest {
        decode_hex(token.text, out).map_err(|message| FieldError {
            at: fields.tokens.len() - rest.len(),
            message,
        })?;
    }
    let found = out.len() - start;
    if found as u64 != length {
        return Err(FieldError {
            at: fields.tokens.len(),
            message: format!("\\# says {length} octets of rdata, the hex has {found}"),
        });
    }
    check_wire(code, &out[start..]).map_err(|message| FieldError {
        at: fields.tokens.len().saturating_sub(1),
        message,
    })
}

/// Whether `wire` is a well-formed rdata of a known type (names uncompressed, fixed fields
/// complete); unknown and free-form types accept anything.
pub fn check_wire(code: u16, wire: &[u8]) -> Result<(), String> {
    let Some(info) = types::by_code(code) else {
        return Ok(());
    };
    let bad = || format!("the \\# rdata is not a valid {} rdata", info.name);
    match info.shape {
        Shape::Fields(list) => {
            let mut pos = 0;
            for field in list {
                let rest = wire.get(pos..).ok_or_else(bad)?;
                let used = match field {
                    Field::Name => wire_len(rest),
                    Field::U8 | Field::Algorithm => Some(1),
                    Field::U16 | Field::CertType | Field::Type => Some(2),
                    Field::U32 | Field::Period | Field::Time | Field::Ipv4 => Some(4),
                    Field::Ipv6 => Some(16),
                    Field::Eui48 => Some(6),
                    Field::Eui64 | Field::Ilnp64 => Some(8),
                    Field::Text | Field::Salt | Field::Base32Next | Field::CaaTag => {
                        rest.first().map(|&n| 1 + usize::from(n))
                    }
                    Field::OptionalText => Some(rest.first().map_or(0, |&n| 1 + usize::from(n))),
                    Field::Texts => texts_len(rest),
                    _ => Some(rest.len()), // to the end
                };
                match used {
                    Some(used) if used <= rest.len() => pos += used,
                    _ => return Err(bad()),
                }
            }
            if pos == wire.len() { Ok(()) } else { Err(bad()) }
        }
        Shape::Loc if wire.len() != 16 => Err(bad()),
        _ => Ok(()),
    }
}

/// Character-strings filling all of `wire`, at least one.
fn texts_len(wire: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while pos < wire.len() {
        pos += 1 + usize::from(wire[pos]);
    }
    (pos == wire.len() && pos > 0).then_some(pos)
}

fn parse_field(field: Field, fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    match field {
        Field::Name => {
            let token = fields.take("domain name")?;
            parse_name(token.text, fields.origin, out).map_err(|m| fields.error(m))
        }
        Field::U8 => number(fields, "8-bit number", u64::from(u8::MAX))
            .map(|n| out.push(n as u8)),
        Field::U16 => number(fields, "16-bit number", u64::from(u16::MAX))
            .map(|n| out.extend_from_slice(&(n as u16).to_be_bytes())),
        Field::U32 => number(fields, "32-bit number", u64::from(u32::MAX))
            .map(|n| out.extend_from_slice(&(n as u32).to_be_bytes())),
        Field::Period => {
            let token = fields.take("time value")?;
            let value = parse_ttl(token.text).map_err(|m| fields.error(m))?;
            out.extend_from_slice(&value.to_be_bytes());
            Ok(())
        }
        Field::Ipv4 => {
            let token = fields.take("IPv4 address")?;
            let addr = parse_ipv4(token.text).ok_or_else(|| {
                fields.error(format!("bad IPv4 address {}", lossy(token.text)))
            })?;
            out.extend_from_slice(&addr.octets());
            Ok(())
        }
        Field::Ipv6 => {
            let token = fields.take("IPv6 address")?;
            let addr = parse_ipv6(token.text).ok_or_else(|| {
                fields.error(format!("bad IPv6 address {}", lossy(token.text)))
            })?;
            out.extend_from_slice(&addr.octets());
            Ok(())
        }
        Field::Text => {
            let token = fields.take("character-string")?;
            push_text(token.text, out).map_err(|m| fields.error(m))
        }
        Field::OptionalText => match fields.peek() {
            Some(token) => {
                fields.take("character-string")?;
                push_text(token.text, out).map_err(|m| fields.error(m))
            }
            None => Ok(()),
        },
        Field::Texts => {
            fields.take("character-string")?;
            fields.next -= 1;
            while let Some(token) = fields.peek() {
                fields.take("character-string")?;
                push_texts(token.text, out).map_err(|m| fields.error(m))?;
            }
            Ok(())
        }
        Field::NxtBitmap => {
            let first = fields.next;
            let rest = fields.rest();
            let mut bits = [0u8; 16];
            let mut used = 0;
            for (i, token) in rest.iter().enumerate() {
                let code = match types::parse_type(token.text) {
                    Some(Ok(code)) if code < 128 => usize::from(code),
                    _ => {
                        return Err(FieldError {
                            at: first + i,
                            message: format!("bad NXT type {}: types 1 to 127 only", lossy(token.text)),
                        });
                    }
                };
                bits[code / 8] |= 0x80 >> (code % 8);
                used = used.max(code / 8 + 1);
            }
            out.extend_from_slice(&bits[..used]);
            Ok(())
        }
        Field::HexRest => {
            let first = fields.next;
            let rest = fields.rest();
            if rest.is_empty() {
                return Err(fields.missing("hexadecimal data"));
            }
            // Blanks may split it anywhere, even inside an octet (NSD joins the pieces).
            let joined: Vec<u8> = rest.iter().flat_map(|t| t.text.iter().copied()).collect();
            decode_hex(&joined, out).map_err(|message| FieldError { at: first, message })
        }
        Field::Base64Rest => {
            let first = fields.next;
            let rest = fields.rest();
            if rest.is_empty() {
                return Err(fields.missing("base64 data"));
            }
            decode_base64(rest, out).map_err(|message| FieldError { at: first, message })
        }
        Field::Salt => {
            let token = fields.take("salt")?;
            if token.text == b"-" {
                out.push(0);
                return Ok(());
            }
            let at = out.len();
            out.push(0);
            decode_hex(token.text, out).map_err(|m| fields.error(m))?;
            let len = u8::try_from(out.len() - at - 1)
                .map_err(|_| fields.error("salt longer than 255 octets"))?;
            out[at] = len;
            Ok(())
        }
        Field::Base32Next => {
            let token = fields.take("next hashed owner name")?;
            let at = out.len();
            out.push(0);
            decode_base32hex(token.text, out).map_err(|m| fields.error(m))?;
            let len = u8::try_from(out.len() - at - 1)
                .map_err(|_| fields.error("hashed owner name longer than 255 octets"))?;
            out[at] = len;
            Ok(())
        }
        Field::TypeBitmap => {
            let first = fields.next;
            let rest = fields.rest();
            let mut codes = Vec::with_capacity(rest.len());
            for (i, token) in rest.iter().enumerate() {
                match types::parse_type(token.text) {
                    Some(Ok(code)) => codes.push(code),
                    // Meta types may not be in a bitmap either, but NSD and Knot take their
                    // numbers; an unknown word is an error.
                    Some(Err(_)) => codes.push(meta_code(token.text)),
                    None => {
                        return Err(FieldError {
                            at: first + i,
                            message: format!("unknown type {} in the type bitmap", lossy(token.text)),
                        });
                    }
                }
            }
            push_bitmap(&mut codes, out);
            Ok(())
        }
        Field::Type => {
            let token = fields.take("type covered")?;
            let code = match types::parse_type(token.text) {
                Some(Ok(code)) => code,
                Some(Err(_)) => meta_code(token.text),
                None => return Err(fields.error(format!("unknown type {}", lossy(token.text)))),
            };
            out.extend_from_slice(&code.to_be_bytes());
            Ok(())
        }
        Field::Time => {
            let token = fields.take("signature time")?;
            let time = parse_time(token.text).ok_or_else(|| {
                fields.error(format!(
                    "bad time {}: YYYYMMDDHHmmSS or seconds since 1970",
                    lossy(token.text)
                ))
            })?;
            out.extend_from_slice(&time.to_be_bytes());
            Ok(())
        }
        Field::Algorithm => {
            let token = fields.take("algorithm")?;
            let value = mnemonic(token.text, ALGORITHMS, u64::from(u8::MAX))
                .ok_or_else(|| fields.error(format!("bad algorithm {}", lossy(token.text))))?;
            out.push(value as u8);
            Ok(())
        }
        Field::CertType => {
            let token = fields.take("certificate type")?;
            let value = mnemonic(token.text, CERT_TYPES, u64::from(u16::MAX)).ok_or_else(|| {
                fields.error(format!("bad certificate type {}", lossy(token.text)))
            })?;
            out.extend_from_slice(&(value as u16).to_be_bytes());
            Ok(())
        }
        Field::Eui48 => eui(fields, 6, out),
        Field::Eui64 => eui(fields, 8, out),
        Field::Ilnp64 => {
            let token = fields.take("locator")?;
            let groups: Vec<&[u8]> = token.text.split(|&b| b == b':').collect();
            let valid = groups.len() == 4
                && groups.iter().all(|g| (1..=4).contains(&g.len()) && g.iter().all(u8::is_ascii_hexdigit));
            if !valid {
                return Err(fields.error(format!("bad locator {}: want xxxx:xxxx:xxxx:xxxx", lossy(token.text))));
            }
            for group in groups {
                let value = group.iter().fold(0u16, |v, &d| v << 4 | u16::from(hex_value(d).unwrap_or(0)));
                out.extend_from_slice(&value.to_be_bytes());
            }
            Ok(())
        }
        Field::RawText => {
            let token = fields.take("text")?;
            unescape_text(token.text, out).map_err(|m| fields.error(m))
        }
        Field::CaaTag => {
            let token = fields.take("property tag")?;
            // RFC 8659 says letters and digits; Knot takes any word, and so do we.
            if token.text.is_empty() || token.text.len() > 255 || token.quoted {
                return Err(fields.error(format!("bad CAA tag {}", lossy(token.text))));
            }
            out.push(token.text.len() as u8);
            out.extend_from_slice(token.text);
            Ok(())
        }
    }
}

/// The number of a meta type's mnemonic (they are valid in bitmaps and RRSIG type covered).
fn meta_code(text: &[u8]) -> u16 {
    types::META_TYPES
        .iter()
        .find(|(_, name)| name.as_bytes().eq_ignore_ascii_case(text))
        .map_or(0, |(code, _)| *code)
}

pub fn number(fields: &mut Fields<'_, '_>, what: &str, max: u64) -> Result<u64, FieldError> {
    let token = fields.take(what)?;
    parse_decimal(token.text)
        .filter(|&n| n <= max)
        .ok_or_else(|| fields.error(format!("bad {what}: {}", lossy(token.text))))
}

fn eui(fields: &mut Fields<'_, '_>, octets: usize, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("EUI address")?;
    let parts: Vec<&[u8]> = token.text.split(|&b| b == b'-').collect();
    let valid = parts.len() == octets && parts.iter().all(|p| p.len() == 2 && p.iter().all(u8::is_ascii_hexdigit));
    if !valid {
        return Err(fields.error(format!("bad EUI-{} address {}", octets * 8, lossy(token.text))));
    }
    for part in parts {
        decode_hex(part, out).map_err(|m| fields.error(m))?;
    }
    Ok(())
}

/// A TTL: seconds, or numbers with units s, m, h, d, w (`1h30m`), at most 2^32 - 1.
pub fn parse_ttl(text: &[u8]) -> Result<u32, String> {
    let bad = || format!("bad TTL {}", lossy(text));
    if text.is_empty() || !text[0].is_ascii_digit() {
        return Err(bad());
    }
    if let Some(plain) = parse_decimal(text) {
        return u32::try_from(plain).map_err(|_| format!("TTL {plain} is over 2^32 - 1"));
    }
    let mut total: u64 = 0;
    let mut value: Option<u64> = None;
    for &byte in text {
        if byte.is_ascii_digit() {
            let v = value.unwrap_or(0) * 10 + u64::from(byte - b'0');
            if v > u64::from(u32::MAX) {
                return Err(bad());
            }
            value = Some(v);
            continue;
        }
        let unit = match byte.to_ascii_lowercase() {
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'd' => 86400,
            b'w' => 604_800,
            _ => return Err(bad()),
        };
        total += value.take().ok_or_else(bad)? * unit;
    }
    // A trailing number without a unit counts as seconds (BIND, Knot).
    total += value.unwrap_or(0);
    u32::try_from(total).map_err(|_| format!("TTL {} is over 2^32 - 1", lossy(text)))
}

/// Dotted quad only (`1.2.3.4`), as `inet_pton` takes it.
pub fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

pub fn parse_ipv6(text: &[u8]) -> Option<Ipv6Addr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A `<character-string>`: escapes decoded, at most 255 octets, with its length octet.
pub fn push_text(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let at = out.len();
    out.push(0);
    unescape_text(text, out)?;
    let len = out.len() - at - 1;
    if len > 255 {
        out.truncate(at);
        return Err(format!("character-string of {len} octets: at most 255"));
    }
    out[at] = len as u8;
    Ok(())
}

/// `<character-string>`s from one token: longer than 255 octets, it is cut into strings of
/// 255 (TXT and SPF only; Knot reads such tokens so, NSD refuses them).
fn push_texts(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut decoded = Vec::new();
    unescape_text(text, &mut decoded)?;
    if decoded.is_empty() {
        out.push(0);
    }
    for chunk in decoded.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    Ok(())
}

/// Appends `text` with its `\X` and `\DDD` escapes decoded.
pub fn unescape_text(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\' {
            let (byte, used) = unescape(&text[i..])?;
            out.push(byte);
            i += used;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    Ok(())
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Appends the octets of an even-length hexadecimal string.
pub fn decode_hex(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    if text.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in {}", lossy(text)));
    }
    for pair in text.chunks_exact(2) {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(high), Some(low)) => out.push(high << 4 | low),
            _ => return Err(format!("bad hex digits in {}", lossy(text))),
        }
    }
    Ok(())
}

/// Base64 over one or more tokens (a key split across lines).
pub fn decode_base64(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), String> {
    let mut joined = Vec::new();
    for token in tokens {
        joined.extend_from_slice(token.text);
    }
    if joined == b"-" {
        return Ok(()); // an empty field, as written by Knot and ldns
    }
    base64::engine::general_purpose::STANDARD
        .decode_vec(&joined, out)
        .map_err(|e| format!("bad base64: {e}"))
}

/// Base32 with the extended hex alphabet (RFC 4648 section 7), no padding, any case.
fn decode_base32hex(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &c in text {
        let value = match c.to_ascii_uppercase() {
            d @ b'0'..=b'9' => d - b'0',
            l @ b'A'..=b'V' => l - b'A' + 10,
            _ => return Err(format!("bad base32hex digit in {}", lossy(text))),
        };
        buffer = buffer << 5 | u64::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    if bits >= 5 || buffer & ((1 << bits) - 1) != 0 {
        return Err(format!("bad base32hex length or padding in {}", lossy(text)));
    }
    Ok(())
}

/// The window blocks of a type bitmap (RFC 4034 section 4.1.2) for `codes`.
pub fn push_bitmap(codes: &mut [u16], out: &mut Vec<u8>) {
    codes.sort_unstable();
    let mut i = 0;
    while i < codes.len() {
        let window = codes[i] >> 8;
        let mut bits = [0u8; 32];
        let mut used = 0;
        while i < codes.len() && codes[i] >> 8 == window {
            let low = usize::from(codes[i] & 0xff);
            bits[low / 8] |= 0x80 >> (low % 8);
            used = used.max(low / 8 + 1);
            i += 1;
        }
        out.push(window as u8);
        out.push(used as u8);
        out.extend_from_slice(&bits[..used]);
    }
}

const ALGORITHMS: &[(&str, u64)] = &[
    ("RSAMD5", 1),
    ("DH", 2),
    ("DSA", 3),
    ("RSASHA1", 5),
    ("DSA-NSEC3-SHA1", 6),
    ("RSASHA1-NSEC3-SHA1", 7),
    ("RSASHA256", 8),
    ("RSASHA512", 10),
    ("ECC-GOST", 12),
    ("ECDSAP256SHA256", 13),
    ("ECDSAP384SHA384", 14),
    ("ED25519", 15),
    ("ED448", 16),
    ("INDIRECT", 252),
    ("PRIVATEDNS", 253),
    ("PRIVATEOID", 254),
];

const CERT_TYPES: &[(&str, u64)] = &[
    ("PKIX", 1),
    ("SPKI", 2),
    ("PGP", 3),
    ("IPKIX", 4),
    ("ISPKI", 5),
    ("IPGP", 6),
    ("ACPKIX", 7),
    ("IACPKIX", 8),
    ("URI", 253),
    ("OID", 254),
];

/// A number up to `max` or one of the table's mnemonics (any case).
fn mnemonic(text: &[u8], table: &[(&str, u64)], max: u64) -> Option<u64> {
    if let Some(n) = parse_decimal(text) {
        return (n <= max).then_some(n);
    }
    table
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(text))
        .map(|(_, n)| *n)
}

/// RRSIG times (RFC 4034 section 3.2): 14 digits are a UTC date, fewer are seconds; dates
/// past 2106 wrap (serial number arithmetic).
fn parse_time(text: &[u8]) -> Option<u32> {
    if text.len() != 14 {
        return parse_decimal(text).and_then(|n| u32::try_from(n).ok());
    }
    let digits = |range: std::ops::Range<usize>| parse_decimal(&text[range]);
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(8..10)?, digits(10..12)?, digits(12..14)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let seconds = days * 86400 + (hour * 3600 + minute * 60 + second) as i64;
    Some(seconds as u64 as u32)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
