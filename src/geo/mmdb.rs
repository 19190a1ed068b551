//! One loaded MaxMind DB file and the few fields edgenode reads from it, whatever the schema:
//! GeoIP2/GeoLite2 Country, City and ASN, and flat files with top-level `country_code`.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::Reader;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::code::Code;
use super::continents::continent_of;
use super::error::GeoError;
use super::verify::{self, Verified};

/// A verified database, held in memory for the life of one `Geo`.
pub(super) struct Database {
    /// Names the file in `describe()` and in lookup-error logs.
    path: PathBuf,
    /// Owns the file's bytes; verified at load, so lookups only meet per-record oddities.
    reader: Reader<Vec<u8>>,
    /// Whether empty metadata fields were given a placeholder to pass verification; said in
    /// `describe()` so operators know the shown description is not the file's.
    verified: Verified,
}

/// What one database says about one address.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileAnswer {
    pub country: Option<Code>,
    pub continent: Option<Code>,
    pub asn: Option<u32>,
    /// Prefix of the database network holding the address (with or without data), in the
    /// address's own family: the answer holds for every address in that network.
    pub prefix_len: u8,
}

impl Database {
    /// Read, parse and fully verify `path`; every failure names the file.
    pub fn load(path: &Path) -> Result<Database, GeoError> {
        let mut bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => GeoError::Missing { path: path.into() },
            _ => GeoError::Read {
                path: path.into(),
                source,
            },
        })?;
        let corrupt = |source| GeoError::Corrupt {
            path: path.into(),
            source,
        };
        // Reader::from_source only reads the metadata; verification walks the whole tree and
        // every record it points to, so a broken file is refused here rather than at the first
        // unlucky query.
        let verified = verify::verify(&mut bytes).map_err(corrupt)?;
        let reader = Reader::from_source(bytes).map_err(corrupt)?;
        Ok(Database {
            path: path.into(),
            reader,
            verified,
        })
    }

    pub fn describe(&self) -> String {
        let m = self.reader.metadata();
        let note = match self.verified {
            Verified::AsIs => "",
            Verified::WithPlaceholderMetadata => ", metadata lacks description or type",
        };
        format!(
            "{}: {}, IPv{} tree, {} nodes, built {} ({}){note}",
            self.path.display(),
            m.database_type,
            m.ip_version,
            m.node_count,
            m.build_epoch,
            utc_date(m.build_epoch),
        )
    }

    /// Never fails: a record this reader cannot decode gives no data, and is logged at debug
    /// level (per query, so not louder).
    pub fn lookup(&self, ip: IpAddr) -> FileAnswer {
        let full_len = match ip {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            // An IPv4-only file says nothing about any IPv6 address: no data, no scope.
            return FileAnswer::default();
        }
        let result = match self.reader.lookup(ip) {
            Ok(result) => result,
            Err(error) => {
                tracing::debug!(path = %self.path.display(), %ip, %error, "GeoIP lookup failed");
                // Without a network we cannot say how far the failure extends: scope it to
                // this address alone.
                return FileAnswer {
                    prefix_len: full_len,
                    ..FileAnswer::default()
                };
            }
        };
        let prefix_len = match result.network() {
            // An IPv6 network for an IPv4 address: the match lies above the IPv4 subtree of an
            // IPv6 tree, so the record covers all of IPv4.
            Ok(net) if ip.is_ipv4() && net.is_ipv6() => net.prefix().saturating_sub(96),
            Ok(net) => net.prefix(),
            Err(_) => full_len,
        };
        let mut answer = FileAnswer {
            prefix_len,
            ..FileAnswer::default()
        };
        match result.decode::<Record>() {
            Ok(Some(record)) => {
                answer.country = record.country.or(record.registered_country);
                answer.continent = record
                    .continent
                    .filter(|c| c.is_continent())
                    .or_else(|| answer.country.and_then(continent_of));
                answer.asn = record.asn;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(path = %self.path.display(), %ip, %error, "GeoIP record not decodable");
            }
        }
        answer
    }
}

/// The fields read from a record. Decoded field by field with `deserialize_any`, so a field of
/// an unexpected type (a string ASN, a numeric country) is ignored instead of voiding the
/// record, and every other key is skipped without being expanded.
#[derive(Default)]
struct Record {
    /// `country.iso_code`, or a flat `country_code` (DB-IP, ip-location-db), or `country` as a
    /// bare string.
    country: Option<Code>,
    /// `registered_country.iso_code`: where the network is registered, the fallback when the
    /// database has no country of use for the address (e.g. anycast, satellite).
    registered_country: Option<Code>,
    /// `continent.code`, flat `continent_code`, or `continent` as a bare string.
    continent: Option<Code>,
    /// `autonomous_system_number` (GeoLite2-ASN and most flat ASN files).
    asn: Option<u32>,
}

impl<'de> serde::Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Record, D::Error> {
        deserializer.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let mut record = Record::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "country" => record.country = map.next_value_seed(CodeIn("iso_code"))?,
                "registered_country" => {
                    record.registered_country = map.next_value_seed(CodeIn("iso_code"))?;
                }
                "continent" => record.continent = map.next_value_seed(CodeIn("code"))?,
                // GeoIP2 records never carry both the nested and the flat form; if a file
                // does, the nested one (MaxMind's) wins whatever the key order.
                "country_code" => {
                    let flat = map.next_value_seed(CodeIn("iso_code"))?;
                    record.country = record.country.or(flat);
                }
                "continent_code" => {
                    let flat = map.next_value_seed(CodeIn("code"))?;
                    record.continent = record.continent.or(flat);
                }
                "autonomous_system_number" => record.asn = map.next_value::<Asn>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(record)
    }
}

/// Decodes a code given either as a bare string or as the string under the named key of a
/// map (`{"iso_code": "JP", "names": {...}}`); anything else decodes to `None`. The string is
/// borrowed from the database buffer and parsed in place, so nothing is allocated.
#[derive(Clone, Copy)]
struct CodeIn(&'static str);

impl<'de> DeserializeSeed<'de> for CodeIn {
    type Value = Option<Code>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Code>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CodeIn {
    type Value = Option<Code>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a code string or a map with {:?}", self.0)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Option<Code>, E> {
        Ok(Code::parse(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Code>, A::Error> {
        let mut code = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            if key == self.0 {
                code = map.next_value_seed(self)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(code)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Code>, A::Error> {
        skip_seq(seq).map(|()| None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<Code>, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<Code>, E> {
        Ok(None)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Option<Code>, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<Code>, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<Code>, E> {
        Ok(None)
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Option<Code>, E> {
        Ok(None)
    }
}

/// An ASN stored as any MMDB unsigned (or non-negative int32) type; other types give `None`.
struct Asn(Option<u32>);

impl<'de> serde::Deserialize<'de> for Asn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Asn, D::Error> {
        deserializer.deserialize_any(AsnVisitor)
    }
}

struct AsnVisitor;

impl<'de> Visitor<'de> for AsnVisitor {
    type Value = Asn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an unsigned integer")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Asn, E> {
        Ok(Asn(u32::try_from(n).ok()))
    }

    fn visit_u128<E: de::Error>(self, n: u128) -> Result<Asn, E> {
        Ok(Asn(u32::try_from(n).ok()))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Asn, E> {
        Ok(Asn(u32::try_from(n).ok()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Asn, E> {
        Ok(Asn(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Asn, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Asn(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Asn, A::Error> {
        skip_seq(seq).map(|()| Asn(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Asn, E> {
        Ok(Asn(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Asn, E> {
        Ok(Asn(None))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Asn, E> {
        Ok(Asn(None))
    }
}

/// Consumes an unwanted array so the decoder stays positioned on the next key.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// `YYYY-MM-DD` (UTC) for a Unix time, for the startup log; no date crate for one line.
pub(super) fn utc_date(epoch: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm, valid for any u64 epoch's day count.
    let days = i128::from(epoch / 86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
