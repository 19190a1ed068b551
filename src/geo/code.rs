//! `Code`: a two-letter ISO 3166 country code or continent code, stored inline (2 bytes, `Copy`)
//! so that a `GeoScope` and the policy maps keyed by it never allocate.

use std::fmt;
use std::str::FromStr;

/// Two ASCII uppercase letters: an ISO 3166 country code or a continent code (AF AN AS EU NA OC SA).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code([u8; 2]);

/// The seven continent codes MaxMind uses, in alphabetical order.
pub const CONTINENTS: [Code; 7] = [
    Code::lit(b"AF"),
    Code::lit(b"AN"),
    Code::lit(b"AS"),
    Code::lit(b"EU"),
    Code::lit(b"NA"),
    Code::lit(b"OC"),
    Code::lit(b"SA"),
];

impl Code {
    /// For constants only: a malformed literal fails the build, not a request.
    pub(super) const fn lit(code: &[u8; 2]) -> Code {
        assert!(code[0].is_ascii_uppercase() && code[1].is_ascii_uppercase());
        Code(*code)
    }

    /// Case-insensitive; `None` unless `text` is exactly two ASCII letters. Used on database
    /// strings in the lookup path, so it neither allocates nor builds an error.
    pub fn parse(text: &str) -> Option<Code> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Code([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction, so this never takes the fallback.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// True for the seven continent codes (AF AN AS EU NA OC SA).
    pub fn is_continent(self) -> bool {
        CONTINENTS.contains(&self)
    }
}

/// Why a string is not a [`Code`]; the Display text is meant to follow a config key path or a
/// `file:line` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeError {
    /// The offending input, kept for the message.
    input: String,
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a two-letter code", self.input)
    }
}

impl std::error::Error for CodeError {}

impl FromStr for Code {
    type Err = CodeError;

    fn from_str(text: &str) -> Result<Code, CodeError> {
        Code::parse(text).ok_or_else(|| CodeError {
            input: text.to_string(),
        })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Hand-written so logs and assertion failures show `Code("US")` rather than byte values.
impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Code").field(&self.as_str()).finish()
    }
}

// Geo policy files and other config carry codes as strings; this keeps their validation in one place.
impl<'de> serde::Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Code, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
