//! The value encodings of presentation fields, token text to octets: TTLs with units,
//! addresses, character-strings and their escapes, hex, base64, base32hex, type bitmaps,
//! RRSIG times and the DNSSEC and CERT mnemonics.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;

use super::lexer::Token;
use super::name::{NameError, unescape};
use super::types::{lossy, parse_decimal};

/// What is wrong with a field's value (the token's text is in the message where it helps).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    #[error("bad TTL {0}")]
    BadTtl(String),
    /// The TTL as written.
    #[error("TTL {0} is over 2^32 - 1")]
    TtlTooLarge(String),
    #[error("character-string of {0} octets: at most 255")]
    TextTooLong(usize),
    #[error(transparent)]
    Escape(#[from] NameError),
    #[error("odd number of hex digits in {0}")]
    OddHex(String),
    #[error("bad hex digits in {0}")]
    BadHex(String),
    #[error("bad base64: {0}")]
    BadBase64(String),
    #[error("bad base32hex digit in {0}")]
    BadBase32hex(String),
    #[error("bad base32hex length or padding in {0}")]
    Base32hexPadding(String),
}

/// A TTL: seconds, or numbers with units s, m, h, d, w (`1h30m`), at most 2^32 - 1.
pub fn parse_ttl(text: &[u8]) -> Result<u32, EncodingError> {
    let bad = || EncodingError::BadTtl(lossy(text).to_string());
    if text.is_empty() || !text[0].is_ascii_digit() {
        return Err(bad());
    }
    if let Some(plain) = parse_decimal(text) {
        return u32::try_from(plain).map_err(|_| EncodingError::TtlTooLarge(plain.to_string()));
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
    u32::try_from(total).map_err(|_| EncodingError::TtlTooLarge(lossy(text).to_string()))
}

/// Dotted quad only (`1.2.3.4`), as `inet_pton` takes it.
pub fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

pub fn parse_ipv6(text: &[u8]) -> Option<Ipv6Addr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A `<character-string>`: escapes decoded, at most 255 octets, with its length octet.
pub fn push_text(text: &[u8], out: &mut Vec<u8>) -> Result<(), EncodingError> {
    let at = out.len();
    out.push(0);
    unescape_text(text, out)?;
    let len = out.len() - at - 1;
    if len > 255 {
        out.truncate(at);
        return Err(EncodingError::TextTooLong(len));
    }
    out[at] = len as u8;
    Ok(())
}

/// `<character-string>`s from one token: longer than 255 octets, it is cut into strings of
/// 255 (TXT and SPF only; Knot reads such tokens so, NSD refuses them).
pub fn push_texts(text: &[u8], out: &mut Vec<u8>) -> Result<(), EncodingError> {
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
pub fn unescape_text(text: &[u8], out: &mut Vec<u8>) -> Result<(), EncodingError> {
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

pub fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Appends the octets of an even-length hexadecimal string.
pub fn decode_hex(text: &[u8], out: &mut Vec<u8>) -> Result<(), EncodingError> {
    if !text.len().is_multiple_of(2) {
        return Err(EncodingError::OddHex(lossy(text).to_string()));
    }
    for pair in text.chunks_exact(2) {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(high), Some(low)) => out.push(high << 4 | low),
            _ => return Err(EncodingError::BadHex(lossy(text).to_string())),
        }
    }
    Ok(())
}

/// Base64 over one or more tokens (a key split across lines).
pub fn decode_base64(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), EncodingError> {
    let mut joined = Vec::new();
    for token in tokens {
        joined.extend_from_slice(token.text);
    }
    if joined == b"-" {
        return Ok(()); // an empty field, as written by Knot and ldns
    }
    base64::engine::general_purpose::STANDARD
        .decode_vec(&joined, out)
        .map_err(|e| EncodingError::BadBase64(e.to_string()))
}

/// Base32 with the extended hex alphabet (RFC 4648 section 7), no padding, any case.
pub fn decode_base32hex(text: &[u8], out: &mut Vec<u8>) -> Result<(), EncodingError> {
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &c in text {
        let value = match c.to_ascii_uppercase() {
            d @ b'0'..=b'9' => d - b'0',
            l @ b'A'..=b'V' => l - b'A' + 10,
            _ => return Err(EncodingError::BadBase32hex(lossy(text).to_string())),
        };
        buffer = buffer << 5 | u64::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    if bits >= 5 || buffer & ((1 << bits) - 1) != 0 {
        return Err(EncodingError::Base32hexPadding(lossy(text).to_string()));
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

pub const ALGORITHMS: &[(&str, u64)] = &[
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

pub const CERT_TYPES: &[(&str, u64)] = &[
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
pub fn mnemonic(text: &[u8], table: &[(&str, u64)], max: u64) -> Option<u64> {
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
pub fn parse_time(text: &[u8]) -> Option<u32> {
    if text.len() != 14 {
        return parse_decimal(text).and_then(|n| u32::try_from(n).ok());
    }
    let digits = |range: std::ops::Range<usize>| parse_decimal(&text[range]);
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(8..10)?, digits(10..12)?, digits(12..14)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
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
