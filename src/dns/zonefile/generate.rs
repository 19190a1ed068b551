//! BIND's `$GENERATE start-stop[/step] lhs [ttl] [class] type rhs` (also read by Knot): each
//! `$` in lhs and rhs becomes the iterator, `${offset[,width[,base]]}` formats it (base d, o,
//! x, X), `\$` is a literal dollar.

use super::lexer::Token;
use super::types::{lossy, parse_decimal};

/// Lines one `$GENERATE` may produce at most: a typo in the range must not fill the memory.
const MAX_LINES: u64 = 65_536;

/// What is wrong with a `$GENERATE` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    #[error("$GENERATE needs a range")]
    NoRange,
    #[error("$GENERATE needs a range, an owner, a type and rdata")]
    TooFewFields,
    /// The range as written.
    #[error("bad $GENERATE range {0}: want start-stop[/step]")]
    BadRange(String),
    #[error("$GENERATE range makes more than {MAX_LINES} records")]
    TooManyLines,
    /// The field as written.
    #[error("unclosed ${{ in {0}")]
    UnclosedModifier(String),
    /// The modifier's text between the braces.
    #[error("bad modifier ${{{0}}}")]
    BadModifier(String),
}

/// The entries a `$GENERATE` stands for, as text lines; on error the index of the token at
/// fault and what is wrong.
pub fn expand(tokens: &[Token<'_>]) -> Result<Vec<Vec<u8>>, (usize, GenerateError)> {
    let range = tokens.get(1).ok_or((0, GenerateError::NoRange))?;
    if tokens.len() < 5 {
        return Err((0, GenerateError::TooFewFields));
    }
    let (start, stop, step) = parse_range(range.text)
        .ok_or_else(|| (1, GenerateError::BadRange(lossy(range.text).into_owned())))?;
    if (stop - start) / step + 1 > MAX_LINES {
        return Err((1, GenerateError::TooManyLines));
    }
    let mut lines = Vec::new();
    let mut value = start;
    while value <= stop {
        let mut line = Vec::new();
        let last = tokens.len() - 3;
        for (i, token) in tokens[2..].iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            // A quoted last field is BIND's way to give rdata of several words: it is read
            // again as the words, not as one string.
            let quote = token.quoted && i != last;
            if quote {
                line.push(b'"');
            }
            substitute(token.text, value, &mut line).map_err(|m| (i + 2, m))?;
            if quote {
                line.push(b'"');
            }
        }
        lines.push(line);
        value += step;
    }
    Ok(lines)
}

fn parse_range(text: &[u8]) -> Option<(u64, u64, u64)> {
    let (range, step) = match text.iter().position(|&b| b == b'/') {
        Some(slash) => (&text[..slash], parse_decimal(&text[slash + 1..])?),
        None => (text, 1),
    };
    let dash = range.iter().position(|&b| b == b'-')?;
    let start = parse_decimal(&range[..dash])?;
    let stop = parse_decimal(&range[dash + 1..])?;
    (start <= stop && step > 0 && stop <= u64::from(u32::MAX)).then_some((start, stop, step))
}

fn substitute(text: &[u8], value: u64, out: &mut Vec<u8>) -> Result<(), GenerateError> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' if text.get(i + 1) == Some(&b'$') => {
                out.push(b'$');
                i += 2;
            }
            b'\\' => {
                out.push(b'\\');
                if let Some(&next) = text.get(i + 1) {
                    out.push(next);
                }
                i += 2;
            }
            b'$' if text.get(i + 1) == Some(&b'{') => {
                let close = text[i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or_else(|| GenerateError::UnclosedModifier(lossy(text).into_owned()))?;
                let spec = &text[i + 2..i + close];
                format_modifier(spec, value, out)
                    .ok_or_else(|| GenerateError::BadModifier(lossy(spec).into_owned()))?;
                i += close + 1;
            }
            b'$' => {
                out.extend_from_slice(value.to_string().as_bytes());
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Ok(())
}

/// `offset[,width[,base]]`.
fn format_modifier(spec: &[u8], value: u64, out: &mut Vec<u8>) -> Option<()> {
    let mut parts = spec.split(|&b| b == b',');
    let offset = parts
        .next()
        .filter(|p| !p.is_empty())
        .map_or(Some(0i64), |p| {
            let (negative, digits) = match p.strip_prefix(b"-") {
                Some(d) => (true, d),
                None => (false, p.strip_prefix(b"+").unwrap_or(p)),
            };
            let n = i64::try_from(parse_decimal(digits)?).ok()?;
            Some(if negative { -n } else { n })
        })?;
    let width = parts
        .next()
        .map_or(Some(0), |p| parse_decimal(p).map(|w| w.min(255) as usize))?;
    let base = parts.next().unwrap_or(b"d");
    if parts.next().is_some() {
        return None;
    }
    let shifted = u64::try_from(i64::try_from(value).ok()?.checked_add(offset)?).ok()?;
    let text = match base {
        b"d" => format!("{shifted:0width$}"),
        b"o" => format!("{shifted:0width$o}"),
        b"x" => format!("{shifted:0width$x}"),
        b"X" => format!("{shifted:0width$X}"),
        _ => return None,
    };
    out.extend_from_slice(text.as_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::GenerateError;

    #[test]
    fn messages_read_as_written_out() {
        let text = |e: GenerateError| e.to_string();
        assert_eq!(
            text(GenerateError::TooManyLines),
            "$GENERATE range makes more than 65536 records"
        );
        assert_eq!(
            text(GenerateError::BadModifier("1,x".into())),
            "bad modifier ${1,x}"
        );
        assert_eq!(
            text(GenerateError::UnclosedModifier("a${1".into())),
            "unclosed ${ in a${1"
        );
    }
}
