//! Domain names between presentation form (RFC 1035 section 5.1: `\X` and decimal `\DDD`
//! escapes, `@`, relative names) and uncompressed wire form.

use std::fmt::Write as _;

/// Longest name on the wire, length octets and root included (RFC 1035 section 2.3.4).
pub const MAX_NAME: usize = 255;
/// Longest label.
pub const MAX_LABEL: usize = 63;

/// What is wrong with a domain name or an escape in presentation form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("empty domain name")]
    Empty,
    #[error("domain name {0} is longer than 255 octets")]
    TooLong(String),
    #[error("empty label in domain name {0}")]
    EmptyLabel(String),
    #[error("label longer than 63 octets in domain name {0}")]
    LabelTooLong(String),
    #[error("a backslash at the end of a field")]
    TrailingBackslash,
    /// The escape as written (at most `\DDD`).
    #[error("\\DDD escape needs three decimal digits: {0}")]
    ShortDecimalEscape(String),
    #[error("\\DDD escape over 255: \\{0}")]
    DecimalEscapeOver255(u32),
}

/// Appends the wire form of `text` to `out`: relative names get `origin` (wire form) appended,
/// `@` is the origin itself.
pub fn parse_name(text: &[u8], origin: &[u8], out: &mut Vec<u8>) -> Result<(), NameError> {
    let start = out.len();
    if text == b"@" {
        out.extend_from_slice(origin);
        return Ok(());
    }
    if text == b"." {
        out.push(0);
        return Ok(());
    }
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    let mut label_start = out.len();
    out.push(0);
    let mut i = 0;
    let mut absolute = false;
    while i < text.len() {
        let byte = match text[i] {
            b'.' => {
                close_label(out, label_start, text)?;
                if i + 1 == text.len() {
                    absolute = true;
                    break;
                }
                label_start = out.len();
                out.push(0);
                i += 1;
                continue;
            }
            b'\\' => {
                let (byte, used) = unescape(&text[i..])?;
                i += used;
                byte
            }
            byte => {
                i += 1;
                byte
            }
        };
        out.push(byte);
    }
    if absolute {
        out.push(0);
    } else {
        close_label(out, label_start, text)?;
        out.extend_from_slice(origin);
    }
    if out.len() - start > MAX_NAME {
        out.truncate(start);
        return Err(NameError::TooLong(
            String::from_utf8_lossy(text).into_owned(),
        ));
    }
    Ok(())
}

/// Writes the length octet of the label that starts at `label_start`.
fn close_label(out: &mut [u8], label_start: usize, text: &[u8]) -> Result<(), NameError> {
    let len = out.len() - label_start - 1;
    if len == 0 {
        return Err(NameError::EmptyLabel(
            String::from_utf8_lossy(text).into_owned(),
        ));
    }
    if len > MAX_LABEL {
        return Err(NameError::LabelTooLong(
            String::from_utf8_lossy(text).into_owned(),
        ));
    }
    out[label_start] = len as u8;
    Ok(())
}

/// Decodes the escape at the start of `text` (which begins with `\`): `\DDD` is a decimal octet
/// value (RFC 1035 section 5.1), `\X` is X itself. Returns the octet and the bytes used.
pub fn unescape(text: &[u8]) -> Result<(u8, usize), NameError> {
    match text.get(1) {
        None => Err(NameError::TrailingBackslash),
        Some(d) if d.is_ascii_digit() => {
            let digits = text.get(1..4).filter(|d| d.iter().all(u8::is_ascii_digit));
            let Some(digits) = digits else {
                let written = String::from_utf8_lossy(&text[..text.len().min(4)]);
                return Err(NameError::ShortDecimalEscape(written.into_owned()));
            };
            let value = digits
                .iter()
                .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
            let byte = u8::try_from(value).map_err(|_| NameError::DecimalEscapeOver255(value))?;
            Ok((byte, 4))
        }
        Some(&byte) => Ok((byte, 2)),
    }
}

/// The labels of a wire name (without the root), or None when it is malformed.
pub fn labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let len = usize::from(*wire.get(pos)?);
        if len == 0 {
            return None;
        }
        let label = wire.get(pos + 1..pos + 1 + len)?;
        pos += 1 + len;
        Some(label)
    })
}

/// The length of the wire name at the start of `wire`, if it is well formed (no compression).
pub fn wire_len(wire: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = usize::from(*wire.get(pos)?);
        if len > MAX_LABEL {
            return None;
        }
        pos += 1 + len;
        if pos > MAX_NAME || pos > wire.len() {
            return None;
        }
        if len == 0 {
            return Some(pos);
        }
    }
}

/// `wire` in presentation form, absolute (trailing dot), with escapes where needed.
pub fn to_text(wire: &[u8]) -> String {
    let mut out = String::new();
    for label in labels(wire) {
        for &byte in label {
            push_escaped(&mut out, byte, b".\"();\\@$");
        }
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Appends `byte` as presentation text: printable ASCII as is (escaped with `\` when in
/// `special`), anything else as `\DDD`.
pub fn push_escaped(out: &mut String, byte: u8, special: &[u8]) {
    if special.contains(&byte) {
        out.push('\\');
        out.push(char::from(byte));
    } else if byte.is_ascii_graphic() {
        out.push(char::from(byte));
    } else {
        let _ = write!(out, "\\{byte:03}");
    }
}

/// Lowercases the ASCII letters of a wire name in place (labels' length octets are never
/// letters' range... they are below 64, so only label bytes can change).
pub fn lowercase(wire: &mut [u8]) {
    for byte in wire {
        byte.make_ascii_lowercase();
    }
}
