//! Full verification of a MaxMind DB, tolerant of one harmless metadata gap.
//!
//! `Reader::verify` checks the metadata first and stops there when `description` (or
//! `database_type`) is empty, a check its docs call stricter than the MaxMind DB spec. Real
//! files have that gap (ip-location-db's `geo-whois-asn-country.mmdb` has `description: {}`),
//! and skipping `verify` for them would also skip the search-tree and data-section checks that
//! matter. So for such a file the metadata, which is the last section, is re-encoded with a
//! placeholder and the whole verification runs again on the result.

use maxminddb::{MaxMindDbError, Metadata, Reader};

const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

/// Stands in for an empty `description` or `database_type`; shown by `Geo::describe`.
pub(super) const PLACEHOLDER: &str = "(none in file)";

/// Whether the metadata had to be re-encoded before the file verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verified {
    AsIs,
    WithPlaceholderMetadata,
}

/// Parses and verifies `bytes`, re-encoding empty metadata fields in place when that is the
/// verifier's only possible objection.
pub(super) fn verify(bytes: &mut Vec<u8>) -> Result<Verified, MaxMindDbError> {
    let error = match check(bytes) {
        Ok(()) => return Ok(Verified::AsIs),
        Err(error) => error,
    };
    let metadata = Reader::from_source(bytes.as_slice())?.metadata().clone();
    if !metadata.description.is_empty() && !metadata.database_type.is_empty() {
        return Err(error);
    }
    let Some(start) = bytes
        .windows(METADATA_MARKER.len())
        .rposition(|window| window == METADATA_MARKER)
    else {
        return Err(error);
    };
    bytes.truncate(start + METADATA_MARKER.len());
    encode_metadata(&metadata, bytes);
    check(bytes)?;
    Ok(Verified::WithPlaceholderMetadata)
}

fn check(bytes: &[u8]) -> Result<(), MaxMindDbError> {
    Reader::from_source(bytes)?.verify()
}

// MMDB data-section type numbers (https://maxmind.github.io/MaxMind-DB/).
const STRING: u8 = 2;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const UINT64: u8 = 9;
const ARRAY: u8 = 11;

/// Appends `m` as an MMDB map, empty strings and maps replaced by the placeholder.
fn encode_metadata(m: &Metadata, out: &mut Vec<u8>) {
    let or_placeholder = |text: &str| if text.is_empty() { PLACEHOLDER } else { text }.to_string();
    header(out, MAP, 9);
    string(out, "binary_format_major_version");
    uint(out, UINT16, m.binary_format_major_version.into());
    string(out, "binary_format_minor_version");
    uint(out, UINT16, m.binary_format_minor_version.into());
    string(out, "build_epoch");
    uint(out, UINT64, m.build_epoch);
    string(out, "database_type");
    string(out, &or_placeholder(&m.database_type));
    string(out, "description");
    if m.description.is_empty() {
        header(out, MAP, 1);
        string(out, "en");
        string(out, PLACEHOLDER);
    } else {
        header(out, MAP, m.description.len());
        for (language, text) in &m.description {
            string(out, language);
            string(out, text);
        }
    }
    string(out, "ip_version");
    uint(out, UINT16, m.ip_version.into());
    string(out, "languages");
    header(out, ARRAY, m.languages.len());
    for language in &m.languages {
        string(out, language);
    }
    string(out, "node_count");
    uint(out, UINT32, m.node_count.into());
    string(out, "record_size");
    uint(out, UINT16, m.record_size.into());
}

/// Control byte (type and size), the extended-type byte for types above 7, then size bytes.
fn header(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (type_bits, extended) = if kind <= 7 {
        (kind << 5, None)
    } else {
        (0, Some(kind - 7))
    };
    // The sizes here are metadata strings and maps, far below the 3-byte size form's ceiling.
    let (size_bits, extra): (u8, Vec<u8>) = match size {
        0..29 => (size as u8, vec![]),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
    };
    out.push(type_bits | size_bits);
    out.extend(extended);
    out.extend(extra);
}

fn string(out: &mut Vec<u8>, text: &str) {
    header(out, STRING, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Unsigned integers are big-endian with leading zero bytes dropped; the size is the byte count.
fn uint(out: &mut Vec<u8>, kind: u8, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    header(out, kind, bytes.len() - skip);
    out.extend_from_slice(&bytes[skip..]);
}
