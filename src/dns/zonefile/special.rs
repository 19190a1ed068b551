//! Rdata types whose presentation is not a plain list of fields: LOC (RFC 1876), WKS
//! (RFC 1035 3.4.2), APL (RFC 3123), IPSECKEY (RFC 4025) and NSAP (RFC 1706).

use super::encoding::{decode_base64, decode_hex, parse_ipv4, parse_ipv6};
use super::name::parse_name;
use super::rdata::{FieldError, Fields, number};
use super::types::{lossy, parse_decimal};

/// `d1 [m1 [s1]] N|S d2 [m2 [s2]] E|W alt[m] [size[m] [hp[m] [vp[m]]]]`.
pub fn loc(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let latitude = coordinate(fields, 90, [b'N', b'S'])?;
    let longitude = coordinate(fields, 180, [b'E', b'W'])?;
    let altitude = fields.take("altitude")?;
    let altitude = centimetres(altitude.text, true)
        .filter(|&cm| (-10_000_000..=4_284_967_295).contains(&cm))
        .ok_or_else(|| fields.error(format!("bad altitude {}", lossy(altitude.text))))?;
    // Defaults: size 1 m, horizontal precision 10 km, vertical precision 10 m.
    let mut precision = [100i64, 1_000_000, 1_000];
    for (slot, what) in
        precision
            .iter_mut()
            .zip(["size", "horizontal precision", "vertical precision"])
    {
        let Some(token) = fields.peek() else { break };
        fields.take(what)?;
        *slot = centimetres(token.text, false)
            .filter(|&cm| cm <= 9_000_000_000)
            .ok_or_else(|| fields.error(format!("bad {what} {}", lossy(token.text))))?;
    }
    out.push(0); // version
    for value in precision {
        out.push(precision_byte(value as u64));
    }
    out.extend_from_slice(&latitude.to_be_bytes());
    out.extend_from_slice(&longitude.to_be_bytes());
    out.extend_from_slice(&((altitude + 10_000_000) as u32).to_be_bytes());
    Ok(())
}

/// Degrees, optional minutes and seconds, then the hemisphere: thousandths of a second of arc
/// offset by 2^31.
fn coordinate(
    fields: &mut Fields<'_, '_>,
    max_degrees: u64,
    hemispheres: [u8; 2],
) -> Result<u32, FieldError> {
    let degrees = number(fields, "degrees", max_degrees)?;
    let mut parts = [degrees * 3_600_000, 0, 0];
    let mut index = 1;
    loop {
        let token = fields.take("hemisphere")?;
        if let [letter] = token.text {
            let letter = letter.to_ascii_uppercase();
            if let Some(which) = hemispheres.iter().position(|&h| h == letter) {
                let total = parts.iter().sum::<u64>();
                if total > max_degrees * 3_600_000 {
                    return Err(fields.error("coordinate out of range"));
                }
                let base = 1u64 << 31;
                let value = if which == 0 {
                    base + total
                } else {
                    base - total
                };
                return Ok(value as u32);
            }
        }
        match index {
            1 => {
                parts[1] = parse_decimal(token.text)
                    .filter(|&m| m < 60)
                    .ok_or_else(|| fields.error(format!("bad minutes {}", lossy(token.text))))?
                    * 60_000;
            }
            2 => {
                parts[2] = thousandths(token.text)
                    .filter(|&s| s < 60_000)
                    .ok_or_else(|| fields.error(format!("bad seconds {}", lossy(token.text))))?;
            }
            _ => {
                let want = String::from_utf8_lossy(&hemispheres).into_owned();
                return Err(
                    fields.error(format!("want one of {want}, found {}", lossy(token.text)))
                );
            }
        }
        index += 1;
    }
}

/// `12.345` in thousandths (at most three decimals).
fn thousandths(text: &[u8]) -> Option<u64> {
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    if fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value = parse_decimal(whole)? * 1000;
    for (i, d) in fraction.iter().enumerate() {
        value += u64::from(d - b'0') * [100, 10, 1][i];
    }
    Some(value)
}

/// Metres with up to two decimals and an optional `m`, in centimetres.
fn centimetres(text: &[u8], signed: bool) -> Option<i64> {
    let text = text
        .strip_suffix(b"m")
        .or_else(|| text.strip_suffix(b"M"))
        .unwrap_or(text);
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(rest) if signed => (true, rest),
        _ => (false, text),
    };
    let (whole, fraction) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &b""[..]),
    };
    if fraction.len() > 2 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut cm = parse_decimal(whole)?.checked_mul(100)?;
    for (i, d) in fraction.iter().enumerate() {
        cm += u64::from(d - b'0') * [10, 1][i];
    }
    let cm = i64::try_from(cm).ok()?;
    Some(if negative { -cm } else { cm })
}

/// RFC 1876's mantissa-exponent byte for centimetres (BIND's `precsize_aton`: the largest
/// power of ten not above the value, the mantissa truncated).
fn precision_byte(cm: u64) -> u8 {
    let mut exponent = 0;
    while exponent < 9 && cm >= 10u64.pow(exponent + 1) {
        exponent += 1;
    }
    let mantissa = (cm / 10u64.pow(exponent)).min(9);
    (mantissa as u8) << 4 | exponent as u8
}

/// `address protocol service...`: services by number or by a few common names.
pub fn wks(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let address = fields.take("IPv4 address")?;
    let address = parse_ipv4(address.text)
        .ok_or_else(|| fields.error(format!("bad IPv4 address {}", lossy(address.text))))?;
    out.extend_from_slice(&address.octets());
    let protocol = fields.take("protocol")?;
    let protocol = match protocol.text.to_ascii_lowercase().as_slice() {
        b"tcp" => 6,
        b"udp" => 17,
        other => parse_decimal(other)
            .filter(|&n| n <= 255)
            .ok_or_else(|| fields.error(format!("bad protocol {}", lossy(protocol.text))))?,
    };
    out.push(protocol as u8);
    let mut bitmap = Vec::new();
    while let Some(token) = fields.peek() {
        fields.take("service")?;
        let port = service_port(token.text)
            .ok_or_else(|| fields.error(format!("unknown service {}", lossy(token.text))))?;
        let index = usize::from(port / 8);
        if bitmap.len() <= index {
            bitmap.resize(index + 1, 0);
        }
        bitmap[index] |= 0x80 >> (port % 8);
    }
    out.extend_from_slice(&bitmap);
    Ok(())
}

fn service_port(text: &[u8]) -> Option<u16> {
    if let Some(n) = parse_decimal(text) {
        return u16::try_from(n).ok();
    }
    const SERVICES: &[(&str, u16)] = &[
        ("ftp-data", 20),
        ("ftp", 21),
        ("ssh", 22),
        ("telnet", 23),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("pop3", 110),
        ("ntp", 123),
        ("imap", 143),
        ("snmp", 161),
        ("ldap", 389),
        ("https", 443),
    ];
    SERVICES
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(text))
        .map(|(_, port)| *port)
}

/// Items `[!]afi:address/prefix`, address trailing zero octets dropped (RFC 3123 section 4).
pub fn apl(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    while let Some(token) = fields.peek() {
        fields.take("APL item")?;
        let bad = || fields.error(format!("bad APL item {}", lossy(token.text)));
        let (negated, item) = match token.text.strip_prefix(b"!") {
            Some(rest) => (true, rest),
            None => (false, token.text),
        };
        let colon = item.iter().position(|&b| b == b':').ok_or_else(bad)?;
        let slash = item.iter().rposition(|&b| b == b'/').ok_or_else(bad)?;
        if slash < colon {
            return Err(bad());
        }
        let family = parse_decimal(&item[..colon]).ok_or_else(bad)?;
        let prefix = parse_decimal(&item[slash + 1..]).ok_or_else(bad)?;
        let address = &item[colon + 1..slash];
        let octets: Vec<u8> = match family {
            1 if prefix <= 32 => parse_ipv4(address).ok_or_else(bad)?.octets().to_vec(),
            2 if prefix <= 128 => parse_ipv6(address).ok_or_else(bad)?.octets().to_vec(),
            _ => return Err(bad()),
        };
        let used = octets.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        out.extend_from_slice(&(family as u16).to_be_bytes());
        out.push(prefix as u8);
        out.push(if negated { 0x80 } else { 0 } | used as u8);
        out.extend_from_slice(&octets[..used]);
    }
    Ok(())
}

/// Precedence, gateway type, algorithm, gateway (by type), then an optional base64 key.
pub fn ipseckey(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    out.push(number(fields, "precedence", 255)? as u8);
    let gateway_type = number(fields, "gateway type", 3)? as u8;
    out.push(gateway_type);
    out.push(number(fields, "algorithm", 255)? as u8);
    gateway(fields, gateway_type, out)?;
    let first = fields.peek().is_some();
    if first {
        let rest = fields.rest();
        decode_base64(rest, out).map_err(|m| fields.error(m))?;
    }
    Ok(())
}

/// A relay or gateway by type: 0 none (`.`), 1 IPv4, 2 IPv6, 3 a domain name.
fn gateway(fields: &mut Fields<'_, '_>, kind: u8, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("gateway")?;
    let ok = match kind {
        0 => token.text == b".",
        1 => parse_ipv4(token.text)
            .map(|a| out.extend_from_slice(&a.octets()))
            .is_some(),
        2 => parse_ipv6(token.text)
            .map(|a| out.extend_from_slice(&a.octets()))
            .is_some(),
        _ => parse_name(token.text, fields.origin, out).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(fields.error(format!(
            "bad gateway {} for gateway type {kind}",
            lossy(token.text)
        )))
    }
}

/// `0x` then hexadecimal, dots allowed anywhere for readability.
pub fn nsap(fields: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let token = fields.take("NSAP address")?;
    let hex = token
        .text
        .strip_prefix(b"0x")
        .or_else(|| token.text.strip_prefix(b"0X"))
        .ok_or_else(|| {
            fields.error(format!(
                "NSAP address {} must start with 0x",
                lossy(token.text)
            ))
        })?;
    let digits: Vec<u8> = hex.iter().copied().filter(|&b| b != b'.').collect();
    decode_hex(&digits, out).map_err(|m| fields.error(m))
}
