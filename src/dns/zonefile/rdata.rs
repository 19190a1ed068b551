//! Rdata from presentation tokens to wire bytes, field by field (see [`super::types`]), and the
//! RFC 3597 generic form `\# length hex` for any type.

use super::encoding::{
    ALGORITHMS, CERT_TYPES, decode_base32hex, decode_base64, decode_hex, hex_value, mnemonic,
    parse_ipv4, parse_ipv6, parse_time, parse_ttl, push_bitmap, push_text, push_texts,
    unescape_text,
};
use super::lexer::Token;
use super::name::{parse_name, wire_len};
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
        let token = self
            .tokens
            .get(self.next)
            .copied()
            .ok_or_else(|| FieldError {
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
    pub fn error(&self, message: impl ToString) -> FieldError {
        FieldError {
            at: self.next.saturating_sub(1),
            message: message.to_string(),
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
        && fields
            .tokens
            .get(1)
            .is_some_and(|t| parse_decimal(t.text).is_some());
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
                message: format!(
                    "{} rdata is written as \\# length hex (RFC 3597)",
                    info.name
                ),
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
        decode_hex(token.text, out).map_err(|e| FieldError {
            at: fields.tokens.len() - rest.len(),
            message: e.to_string(),
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
            if pos == wire.len() {
                Ok(())
            } else {
                Err(bad())
            }
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

/// Reads one field of a record's rdata; one small function per kind of field, below.
fn parse_field(
    field: Field,
    fields: &mut Fields<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), FieldError> {
    match field {
        Field::Name => name(fields, out),
        Field::U8 => number(fields, "8-bit number", u64::from(u8::MAX)).map(|n| out.push(n as u8)),
        Field::U16 => number(fields, "16-bit number", u64::from(u16::MAX))
            .map(|n| out.extend_from_slice(&(n as u16).to_be_bytes())),
        Field::U32 => number(fields, "32-bit number", u64::from(u32::MAX))
            .map(|n| out.extend_from_slice(&(n as u32).to_be_bytes())),
        Field::Period => period(fields, out),
        Field::Ipv4 => ipv4(fields, out),
        Field::Ipv6 => ipv6(fields, out),
        Field::Text => text(fields, out),
        Field::OptionalText => match fields.peek() {
            Some(_) => text(fields, out),
            None => Ok(()),
        },
        Field::Texts => texts(fields, out),
        Field::NxtBitmap => nxt_bitmap(fields, out),
        Field::HexRest => hex_rest(fields, out),
        Field::Base64Rest => base64_rest(fields, out),
        Field::Salt => salt(fields, out),
        Field::Base32Next => base32_next(fields, out),
        Field::TypeBitmap => type_bitmap(fields, out),
        Field::Type => type_covered(fields, out),
        Field::Time => time(fields, out),
        Field::Algorithm => algorithm(fields, out),
        Field::CertType => cert_type(fields, out),
        Field::Eui48 => eui(fields, 6, out),
        Field::Eui64 => eui(fields, 8, out),
        Field::Ilnp64 => ilnp64(fields, out),
        Field::RawText => {
            let token = fields.take("text")?;
            unescape_text(token.text, out).map_err(|m| fields.error(m))
        }
        Field::CaaTag => caa_tag(fields, out),
    }
}

// Numbers, addresses and names.

fn name(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("domain name")?;
    parse_name(token.text, fields.origin, out).map_err(|m| fields.error(m))
}

fn period(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("time value")?;
    let value = parse_ttl(token.text).map_err(|m| fields.error(m))?;
    out.extend_from_slice(&value.to_be_bytes());
    Ok(())
}

fn ipv4(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("IPv4 address")?;
    let addr = parse_ipv4(token.text)
        .ok_or_else(|| fields.error(format!("bad IPv4 address {}", lossy(token.text))))?;
    out.extend_from_slice(&addr.octets());
    Ok(())
}

fn ipv6(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("IPv6 address")?;
    let addr = parse_ipv6(token.text)
        .ok_or_else(|| fields.error(format!("bad IPv6 address {}", lossy(token.text))))?;
    out.extend_from_slice(&addr.octets());
    Ok(())
}

fn time(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
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

fn algorithm(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("algorithm")?;
    let value = mnemonic(token.text, ALGORITHMS, u64::from(u8::MAX))
        .ok_or_else(|| fields.error(format!("bad algorithm {}", lossy(token.text))))?;
    out.push(value as u8);
    Ok(())
}

fn cert_type(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("certificate type")?;
    let value = mnemonic(token.text, CERT_TYPES, u64::from(u16::MAX))
        .ok_or_else(|| fields.error(format!("bad certificate type {}", lossy(token.text))))?;
    out.extend_from_slice(&(value as u16).to_be_bytes());
    Ok(())
}

fn ilnp64(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("locator")?;
    let groups: Vec<&[u8]> = token.text.split(|&b| b == b':').collect();
    let valid = groups.len() == 4
        && groups
            .iter()
            .all(|g| (1..=4).contains(&g.len()) && g.iter().all(u8::is_ascii_hexdigit));
    if !valid {
        return Err(fields.error(format!(
            "bad locator {}: want xxxx:xxxx:xxxx:xxxx",
            lossy(token.text)
        )));
    }
    for group in groups {
        let value = group
            .iter()
            .fold(0u16, |v, &d| v << 4 | u16::from(hex_value(d).unwrap_or(0)));
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(())
}

// Character-strings.

fn text(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("character-string")?;
    push_text(token.text, out).map_err(|m| fields.error(m))
}

fn texts(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    fields.take("character-string")?;
    fields.next -= 1;
    while let Some(token) = fields.peek() {
        fields.take("character-string")?;
        push_texts(token.text, out).map_err(|m| fields.error(m))?;
    }
    Ok(())
}

fn caa_tag(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("property tag")?;
    // RFC 8659 says letters and digits; Knot takes any word, and so do we.
    if token.text.is_empty() || token.text.len() > 255 || token.quoted {
        return Err(fields.error(format!("bad CAA tag {}", lossy(token.text))));
    }
    out.push(token.text.len() as u8);
    out.extend_from_slice(token.text);
    Ok(())
}

// Binary data: hex, base64, base32.

fn hex_rest(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let first = fields.next;
    let rest = fields.rest();
    if rest.is_empty() {
        return Err(fields.missing("hexadecimal data"));
    }
    // Blanks may split it anywhere, even inside an octet (NSD joins the pieces).
    let joined: Vec<u8> = rest.iter().flat_map(|t| t.text.iter().copied()).collect();
    decode_hex(&joined, out).map_err(|e| FieldError {
        at: first,
        message: e.to_string(),
    })
}

fn base64_rest(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let first = fields.next;
    let rest = fields.rest();
    if rest.is_empty() {
        return Err(fields.missing("base64 data"));
    }
    decode_base64(rest, out).map_err(|e| FieldError {
        at: first,
        message: e.to_string(),
    })
}

fn salt(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
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

fn base32_next(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("next hashed owner name")?;
    let at = out.len();
    out.push(0);
    decode_base32hex(token.text, out).map_err(|m| fields.error(m))?;
    let len = u8::try_from(out.len() - at - 1)
        .map_err(|_| fields.error("hashed owner name longer than 255 octets"))?;
    out[at] = len;
    Ok(())
}

// Types: one covered, or a bitmap of them.

fn type_covered(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("type covered")?;
    let code = match types::parse_type(token.text) {
        Some(Ok(code)) => code,
        Some(Err(_)) => meta_code(token.text),
        None => return Err(fields.error(format!("unknown type {}", lossy(token.text)))),
    };
    out.extend_from_slice(&code.to_be_bytes());
    Ok(())
}

fn type_bitmap(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
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

fn nxt_bitmap(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
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
    let valid = parts.len() == octets
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.iter().all(u8::is_ascii_hexdigit));
    if !valid {
        return Err(fields.error(format!(
            "bad EUI-{} address {}",
            octets * 8,
            lossy(token.text)
        )));
    }
    for part in parts {
        decode_hex(part, out).map_err(|m| fields.error(m))?;
    }
    Ok(())
}
