//! SVCB and HTTPS rdata (RFC 9460): `priority target key[=value]...`, values unescaped as
//! character-strings first, then read as the key says (value-lists with `\,` per appendix
//! A.1); parameters go out sorted by key, each key at most once.

use base64::Engine as _;

use super::encoding::{parse_ipv4, parse_ipv6, unescape_text};
use super::lexer::Token;
use super::name::parse_name;
use super::rdata::{FieldError, Fields, number};
use super::types::{lossy, parse_decimal};

/// The SvcParamKeys with names (RFC 9460 section 14.3.2), by number.
pub(super) const KEYS: &[&str] = &[
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
    "dohpath",
    "ohttp",
];

pub fn parse(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let priority = number(fields, "SvcPriority", u64::from(u16::MAX))?;
    out.extend_from_slice(&(priority as u16).to_be_bytes());
    let target = fields.take("TargetName")?;
    parse_name(target.text, fields.origin, out).map_err(|m| fields.error(m))?;
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    while let Some(token) = fields.peek() {
        fields.take("SvcParam")?;
        let (key_text, value) = split_param(fields, token)?;
        let key = key_number(key_text)
            .ok_or_else(|| fields.error(format!("unknown SvcParamKey {}", lossy(key_text))))?;
        if params.iter().any(|(k, _)| *k == key) {
            return Err(fields.error(format!("SvcParamKey {} given twice", lossy(key_text))));
        }
        let mut decoded = Vec::new();
        if let Some(value) = value {
            unescape_text(value, &mut decoded).map_err(|m| fields.error(m))?;
        }
        let wire = param_value(key, value.is_some(), &decoded)
            .map_err(|m| fields.error(format!("{}: {m}", lossy(key_text))))?;
        params.push((key, wire));
    }
    if priority == 0 && !params.is_empty() {
        return Err(fields.error("AliasMode (SvcPriority 0) takes no SvcParams"));
    }
    // Every key that mandatory lists must be there (RFC 9460 section 8).
    if let Some((_, mandatory)) = params.iter().find(|(key, _)| *key == 0) {
        for key in mandatory
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
        {
            if !params.iter().any(|(k, _)| *k == key) {
                return Err(fields.error(format!("mandatory lists key{key}, which is not given")));
            }
        }
    }
    params.sort_unstable_by_key(|(key, _)| *key);
    for (key, value) in params {
        let Ok(len) = u16::try_from(value.len()) else {
            return Err(fields.error("SvcParamValue longer than 65535 octets"));
        };
        out.extend_from_slice(&key.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&value);
    }
    Ok(())
}

/// `key`, `key=value`, `key="value"`, or `key=` followed by a quoted token.
fn split_param<'a>(
    fields: &mut Fields<'_, 'a>,
    token: Token<'a>,
) -> Result<(&'a [u8], Option<&'a [u8]>), FieldError> {
    if token.quoted {
        return Err(fields.error(format!(
            "expected key=value, found \"{}\"",
            lossy(token.text)
        )));
    }
    let Some(eq) = token.text.iter().position(|&b| b == b'=') else {
        return Ok((token.text, None));
    };
    let key = &token.text[..eq];
    let mut value = &token.text[eq + 1..];
    if value.is_empty() {
        if let Some(next) = fields.peek().filter(|t| t.quoted) {
            fields.take("SvcParamValue")?;
            value = next.text;
        }
    } else if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
        value = &value[1..value.len() - 1];
    }
    Ok((key, Some(value)))
}

fn key_number(text: &[u8]) -> Option<u16> {
    if let Some(index) = KEYS.iter().position(|k| k.as_bytes() == text) {
        return u16::try_from(index).ok();
    }
    let digits = text.strip_prefix(b"key")?;
    // No leading zeros (RFC 9460 section 2.1). key65535 is reserved, but NSD and Knot read it.
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    parse_decimal(digits).and_then(|n| u16::try_from(n).ok())
}

/// The wire value of one parameter from its decoded presentation value.
fn param_value(key: u16, has_value: bool, value: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if matches!(key, 2 | 8) {
        // no-default-alpn and ohttp are flags.
        return if has_value {
            Err("takes no value".into())
        } else {
            Ok(out)
        };
    }
    // The other keys up to dohpath (7) need a value; unknown keys may have an empty one.
    if key <= 7 && (!has_value || value.is_empty()) {
        return Err("needs a value".to_string());
    }
    match key {
        0 => mandatory(value, &mut out)?,
        1 => alpn(value, &mut out)?,
        3 => {
            let port = parse_decimal(value)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or("bad port")?;
            out.extend_from_slice(&port.to_be_bytes());
        }
        4 => {
            for item in value.split(|&b| b == b',') {
                let addr =
                    parse_ipv4(item).ok_or_else(|| format!("bad IPv4 address {}", lossy(item)))?;
                out.extend_from_slice(&addr.octets());
            }
        }
        5 => {
            base64::engine::general_purpose::STANDARD
                .decode_vec(value, &mut out)
                .map_err(|e| format!("bad base64: {e}"))?;
        }
        6 => {
            for item in value.split(|&b| b == b',') {
                let addr =
                    parse_ipv6(item).ok_or_else(|| format!("bad IPv6 address {}", lossy(item)))?;
                out.extend_from_slice(&addr.octets());
            }
        }
        7 => {
            std::str::from_utf8(value).map_err(|_| "dohpath must be UTF-8".to_string())?;
            out.extend_from_slice(value);
        }
        _ => out.extend_from_slice(value),
    }
    Ok(out)
}

/// `mandatory`: the keys, sorted, each once, not itself.
fn mandatory(value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut keys = Vec::new();
    for item in value.split(|&b| b == b',') {
        let key =
            key_number(item).ok_or_else(|| format!("unknown key {} in mandatory", lossy(item)))?;
        if key == 0 {
            return Err("mandatory may not list itself".into());
        }
        if keys.contains(&key) {
            return Err(format!("{} listed twice", lossy(item)));
        }
        keys.push(key);
    }
    keys.sort_unstable();
    for key in keys {
        out.extend_from_slice(&key.to_be_bytes());
    }
    Ok(())
}

/// `alpn`: length-prefixed protocol ids.
fn alpn(value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    for item in value_list(value)? {
        let len = u8::try_from(item.len()).map_err(|_| "ALPN id over 255 octets".to_string())?;
        if len == 0 {
            return Err("empty ALPN id".into());
        }
        out.push(len);
        out.extend_from_slice(&item);
    }
    Ok(())
}

/// Items of a comma-separated value-list, `\,` and `\\` unescaped (RFC 9460 appendix A.1).
fn value_list(value: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut items = vec![Vec::new()];
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\\' => {
                let &next = value
                    .get(i + 1)
                    .ok_or("a backslash at the end of a value-list")?;
                if let Some(item) = items.last_mut() {
                    item.push(next);
                }
                i += 2;
            }
            b',' => {
                items.push(Vec::new());
                i += 1;
            }
            byte => {
                if let Some(item) = items.last_mut() {
                    item.push(byte);
                }
                i += 1;
            }
        }
    }
    Ok(items)
}
