//! The RR types the reader knows: mnemonic, number, and the shape of the rdata, as a table
//! (NSD's `rrtype_descriptors` and Knot's `knot_rdata_descriptors` do the same). The
//! mnemonics are those NSD 4.6 or Knot 3.2 read (tests/data/zones/README.md lists which);
//! any other type, HIP or AMTRELAY say, is read in RFC 3597 generic form only
//! (`TYPE55 \# 2 abcd`), as both of them do.

/// One field of an rdata, as presentation text and as wire bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A domain name, uncompressed on the wire here (compression is the encoder's business).
    Name,
    U8,
    U16,
    U32,
    /// A 32-bit count of seconds that may be written with units (`1h30m`): SOA timers.
    Period,
    Ipv4,
    Ipv6,
    /// One `<character-string>`: a length octet and up to 255 octets.
    Text,
    /// An optional last `<character-string>` (ISDN's subaddress).
    OptionalText,
    /// One or more `<character-string>`s to the end of the rdata (TXT).
    Texts,
    /// Hexadecimal to the end, possibly split by spaces (DS digest, TLSA data).
    HexRest,
    /// Base64 to the end, possibly split by spaces (DNSKEY key, RRSIG signature).
    Base64Rest,
    /// A length octet and hexadecimal octets, `-` for none (NSEC3 salt).
    Salt,
    /// A length octet and base32hex octets without padding (NSEC3 next hashed owner).
    Base32Next,
    /// RR type mnemonics to the end, as window blocks (RFC 4034 section 4.1.2).
    TypeBitmap,
    /// RR type mnemonics to the end, as NXT's one bitmap of types 0-127 (RFC 2535 5.2).
    NxtBitmap,
    /// One RR type (RRSIG's type covered).
    Type,
    /// YYYYMMDDHHmmSS or seconds since the epoch (RRSIG expiration and inception).
    Time,
    /// A DNSSEC algorithm number or mnemonic (RFC 4034 appendix A.1).
    Algorithm,
    /// A CERT type number or mnemonic (RFC 4398 section 2.1).
    CertType,
    /// `xx-xx-xx-xx-xx-xx`.
    Eui48,
    /// `xx-xx-xx-xx-xx-xx-xx-xx`.
    Eui64,
    /// Four groups of up to four hex digits, `:` between (RFC 6742 NID and L64).
    Ilnp64,
    /// A string without a length octet, to the end of the rdata (URI target, CAA value).
    RawText,
    /// A CAA property tag: a length octet and letters and digits.
    CaaTag,
}

/// How an rdata is read: a list of fields, or a rule of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Fields(&'static [Field]),
    Loc,
    Wks,
    Apl,
    Ipseckey,
    Svcb,
    /// `0x` and hexadecimal with optional dots (RFC 1706).
    Nsap,
    /// Only the generic `\#` form has a presentation (NULL).
    GenericOnly,
}

/// One known type.
#[derive(Debug)]
pub struct TypeInfo {
    pub code: u16,
    pub name: &'static str,
    pub shape: Shape,
}

use Field::*;

const fn t(code: u16, name: &'static str, fields: &'static [Field]) -> TypeInfo {
    TypeInfo {
        code,
        name,
        shape: Shape::Fields(fields),
    }
}

const fn s(code: u16, name: &'static str, shape: Shape) -> TypeInfo {
    TypeInfo { code, name, shape }
}

const DS: &[Field] = &[U16, Algorithm, U8, HexRest];
const DNSKEY: &[Field] = &[U16, U8, Algorithm, Base64Rest];
const RRSIG: &[Field] = &[Type, Algorithm, U8, U32, Time, Time, U16, Name, Base64Rest];
const TLSA: &[Field] = &[U8, U8, U8, HexRest];
const NAME: &[Field] = &[Name];
const PREF_NAME: &[Field] = &[U16, Name];
const TEXTS: &[Field] = &[Texts];

/// Most used first: a type mnemonic is looked up by a scan from the top, once per record.
pub static TYPES: &[TypeInfo] = &[
    t(1, "A", &[Ipv4]),
    t(28, "AAAA", &[Ipv6]),
    t(5, "CNAME", NAME),
    t(16, "TXT", TEXTS),
    t(15, "MX", PREF_NAME),
    t(2, "NS", NAME),
    t(33, "SRV", &[U16, U16, U16, Name]),
    t(257, "CAA", &[U8, CaaTag, RawText]),
    t(12, "PTR", NAME),
    t(6, "SOA", &[Name, Name, U32, Period, Period, Period, Period]),
    s(65, "HTTPS", Shape::Svcb),
    s(64, "SVCB", Shape::Svcb),
    t(46, "RRSIG", RRSIG),
    t(47, "NSEC", &[Name, TypeBitmap]),
    t(50, "NSEC3", &[U8, U8, U16, Salt, Base32Next, TypeBitmap]),
    t(48, "DNSKEY", DNSKEY),
    t(43, "DS", DS),
    t(51, "NSEC3PARAM", &[U8, U8, U16, Salt]),
    t(52, "TLSA", TLSA),
    t(44, "SSHFP", &[U8, U8, HexRest]),
    t(35, "NAPTR", &[U16, U16, Text, Text, Text, Name]),
    t(39, "DNAME", NAME),
    t(99, "SPF", TEXTS),
    t(256, "URI", &[U16, U16, RawText]),
    t(13, "HINFO", &[Text, Text]),
    t(17, "RP", &[Name, Name]),
    t(18, "AFSDB", PREF_NAME),
    s(29, "LOC", Shape::Loc),
    s(11, "WKS", Shape::Wks),
    s(45, "IPSECKEY", Shape::Ipseckey),
    t(49, "DHCID", &[Base64Rest]),
    t(63, "ZONEMD", &[U32, U8, U8, HexRest]),
    t(37, "CERT", &[CertType, U16, Algorithm, Base64Rest]),
    t(61, "OPENPGPKEY", &[Base64Rest]),
    t(53, "SMIMEA", TLSA),
    t(59, "CDS", DS),
    t(60, "CDNSKEY", DNSKEY),
    t(62, "CSYNC", &[U32, U16, TypeBitmap]),
    s(42, "APL", Shape::Apl),
    t(36, "KX", PREF_NAME),
    t(3, "MD", NAME),
    t(4, "MF", NAME),
    t(7, "MB", NAME),
    t(8, "MG", NAME),
    t(9, "MR", NAME),
    s(10, "NULL", Shape::GenericOnly),
    t(14, "MINFO", &[Name, Name]),
    t(19, "X25", &[Text]),
    t(20, "ISDN", &[Text, OptionalText]),
    t(21, "RT", PREF_NAME),
    s(22, "NSAP", Shape::Nsap),
    t(24, "SIG", RRSIG),
    t(25, "KEY", DNSKEY),
    t(26, "PX", &[U16, Name, Name]),
    t(104, "NID", &[U16, Ilnp64]),
    t(105, "L32", &[U16, Ipv4]),
    t(106, "L64", &[U16, Ilnp64]),
    t(107, "LP", PREF_NAME),
    t(108, "EUI48", &[Eui48]),
    t(109, "EUI64", &[Eui64]),
    t(258, "AVC", TEXTS),
    t(30, "NXT", &[Name, NxtBitmap]),
    t(32769, "DLV", DS),
];

/// Types that only exist in messages (RFC 6895 meta types and QTYPEs): never zone data.
pub const META_TYPES: &[(u16, &str)] = &[
    (41, "OPT"),
    (249, "TKEY"),
    (250, "TSIG"),
    (251, "IXFR"),
    (252, "AXFR"),
    (253, "MAILB"),
    (254, "MAILA"),
    (255, "ANY"),
];

/// The types whose rdata names a server compresses (RFC 3597 section 4: those of RFC 1035
/// only; later types are sent as stored).
pub fn compresses_names(code: u16) -> bool {
    matches!(code, 2..=9 | 12 | 14 | 15)
}

pub fn by_code(code: u16) -> Option<&'static TypeInfo> {
    TYPES.iter().find(|t| t.code == code)
}

/// What is wrong with a type or class field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    #[error("bad type number {0}")]
    BadTypeNumber(String),
    #[error("{0} is a meta type, not zone data")]
    MetaType(&'static str),
    #[error("bad class number {0}")]
    BadClassNumber(String),
}

/// A type mnemonic (any case) or `TYPEnnn`; Err for meta types, None for an unknown word.
pub fn parse_type(text: &[u8]) -> Option<Result<u16, TypeError>> {
    let code = if let Some(info) = TYPES
        .iter()
        .find(|t| t.name.as_bytes().eq_ignore_ascii_case(text))
    {
        info.code
    } else if let Some(&(code, _)) = META_TYPES
        .iter()
        .find(|(_, name)| name.as_bytes().eq_ignore_ascii_case(text))
    {
        code
    } else {
        let digits = strip_prefix_ignore_case(text, b"TYPE")?;
        match parse_decimal(digits).and_then(|n| u16::try_from(n).ok()) {
            Some(code) => code,
            None => return Some(Err(TypeError::BadTypeNumber(lossy(text).into_owned()))),
        }
    };
    if let Some((_, name)) = META_TYPES.iter().find(|(c, _)| *c == code) {
        return Some(Err(TypeError::MetaType(name)));
    }
    Some(Ok(code))
}

/// The mnemonic of `code`, or `TYPEnnn`.
pub fn type_name(code: u16) -> String {
    match by_code(code) {
        Some(info) => info.name.to_string(),
        None => match META_TYPES.iter().find(|(c, _)| *c == code) {
            Some((_, name)) => name.to_string(),
            None => format!("TYPE{code}"),
        },
    }
}

/// A class mnemonic or `CLASSnnn`; None for a word that is not a class.
pub fn parse_class(text: &[u8]) -> Option<Result<u16, TypeError>> {
    for (code, name) in [(1u16, "IN"), (3, "CH"), (4, "HS"), (2, "CS")] {
        if name.as_bytes().eq_ignore_ascii_case(text) {
            return Some(Ok(code));
        }
    }
    let digits = strip_prefix_ignore_case(text, b"CLASS")?;
    Some(
        parse_decimal(digits)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| TypeError::BadClassNumber(lossy(text).into_owned())),
    )
}

fn strip_prefix_ignore_case<'a>(text: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
        .filter(|rest| !rest.is_empty())
}

/// Digits only, no sign, at most a u64 (no overflow).
pub fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0')))
}

pub fn lossy(text: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(text)
}
