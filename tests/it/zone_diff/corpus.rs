//! The good corpus of `zone_diff`: a case's `queries.txt` with its `#!` directives, names and
//! types in zone-file form, and the check that the queries cover Knot's AXFR of the case's zones.

use std::path::PathBuf;
use std::process::Command;

use hickory_proto::rr::{Name, RecordType};

use super::{Server, indent};
use crate::nsd_diff::CorpusQuery;
use crate::nsd_diff::knot::Knot;
use crate::support;

pub(super) fn zones_root() -> PathBuf {
    support::repo_root().join("tests/data/zones")
}

/// A case directory and its `queries.txt`.
pub(super) struct Case {
    pub(super) name: String,
    pub(super) dir: PathBuf,
    pub(super) servers: Vec<Server>,
    pub(super) reference: Server,
    /// What the reference servers load: `dir` or its `reference-zones` subdirectory.
    pub(super) reference_zones: PathBuf,
    pub(super) check_warning: bool,
    pub(super) queries: Vec<CorpusQuery>,
    /// Each query as written (with the type's mnemonic, which hickory may not know).
    pub(super) labels: Vec<String>,
}

impl Case {
    pub(super) fn load(name: &str) -> Case {
        let dir = zones_root().join("good").join(name);
        let path = dir.join("queries.txt");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut case = Case {
            name: name.to_owned(),
            reference_zones: dir.clone(),
            dir,
            servers: vec![Server::Nsd, Server::Knot],
            reference: Server::Nsd,
            check_warning: false,
            queries: Vec::new(),
            labels: Vec::new(),
        };
        let mut reference = None;
        for (number, line) in text.lines().enumerate() {
            let at = || format!("{}:{}", path.display(), number + 1);
            if let Some(directive) = line.strip_prefix("#!") {
                let (key, value) = directive
                    .split_once(':')
                    .unwrap_or_else(|| panic!("{}: want `#! key: value`", at()));
                let value = value.trim();
                match key.trim() {
                    "servers" => {
                        case.servers = value
                            .split_whitespace()
                            .map(|w| {
                                Server::parse(w)
                                    .unwrap_or_else(|| panic!("{}: unknown server {w:?}", at()))
                            })
                            .collect();
                    }
                    "reference" => {
                        reference = Some(
                            Server::parse(value)
                                .unwrap_or_else(|| panic!("{}: unknown server {value:?}", at())),
                        );
                    }
                    "reference-zones" => case.reference_zones = case.dir.join(value),
                    "check" => case.check_warning = value == "warning",
                    other => panic!("{}: unknown directive {other:?}", at()),
                }
                continue;
            }
            let line = strip_comment(line);
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, rtype] = fields[..] else {
                panic!("{}: want `NAME TYPE`, got {line:?}", at());
            };
            let code = type_code(rtype).unwrap_or_else(|| panic!("{}: unknown type", at()));
            case.queries.push(CorpusQuery {
                name: presentation_name(name)
                    .unwrap_or_else(|e| panic!("{}: bad name {name:?}: {e}", at())),
                rtype: RecordType::from(code),
            });
            case.labels.push(format!("{name} {}", type_name(code)));
        }
        case.reference = reference.unwrap_or(case.servers[0]);
        assert!(
            case.servers.contains(&case.reference),
            "{}: the reference is not among the servers",
            path.display()
        );
        assert!(
            !case.queries.is_empty(),
            "{} holds no query",
            path.display()
        );
        case
    }
}

/// The line without its comment: `#` at the start or after a blank (a `#` inside a name such
/// as `a#b` or `\#` is part of it).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let end = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .unwrap_or(bytes.len());
    line[..end].trim()
}

/// An absolute name in zone-file form (RFC 1035 section 5.1: `\DDD` and `\X` escapes, any
/// other byte as it is), the final dot optional. Unlike `Name::from_ascii`, every label a zone
/// file may hold is taken: `q?`, `a#b`, `-lead`, `128/26`.
fn presentation_name(text: &str) -> Result<Name, String> {
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut bytes = text.bytes().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                let digits: Vec<u8> = std::iter::from_fn(|| bytes.next_if(u8::is_ascii_digit))
                    .take(3)
                    .collect();
                if digits.is_empty() {
                    label.push(bytes.next().ok_or("a final backslash")?);
                } else {
                    let value: u32 = std::str::from_utf8(&digits)
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .filter(|_| digits.len() == 3)
                        .ok_or("\\DDD takes three digits")?;
                    label.push(u8::try_from(value).map_err(|_| "\\DDD over 255")?);
                }
            }
            b'.' => labels.push(std::mem::take(&mut label)),
            _ => label.push(b),
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    Name::from_labels(labels).map_err(|e| e.to_string())
}

/// Type mnemonics of the IANA registry (with the ones hickory does not know).
const TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("MD", 3),
    ("MF", 4),
    ("CNAME", 5),
    ("SOA", 6),
    ("MB", 7),
    ("MG", 8),
    ("MR", 9),
    ("NULL", 10),
    ("WKS", 11),
    ("PTR", 12),
    ("HINFO", 13),
    ("MINFO", 14),
    ("MX", 15),
    ("TXT", 16),
    ("RP", 17),
    ("AFSDB", 18),
    ("X25", 19),
    ("ISDN", 20),
    ("RT", 21),
    ("NSAP", 22),
    ("NSAP-PTR", 23),
    ("SIG", 24),
    ("KEY", 25),
    ("PX", 26),
    ("GPOS", 27),
    ("AAAA", 28),
    ("LOC", 29),
    ("NXT", 30),
    ("EID", 31),
    ("NIMLOC", 32),
    ("SRV", 33),
    ("ATMA", 34),
    ("NAPTR", 35),
    ("KX", 36),
    ("CERT", 37),
    ("A6", 38),
    ("DNAME", 39),
    ("SINK", 40),
    ("OPT", 41),
    ("APL", 42),
    ("DS", 43),
    ("SSHFP", 44),
    ("IPSECKEY", 45),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("DNSKEY", 48),
    ("DHCID", 49),
    ("NSEC3", 50),
    ("NSEC3PARAM", 51),
    ("TLSA", 52),
    ("SMIMEA", 53),
    ("HIP", 55),
    ("NINFO", 56),
    ("RKEY", 57),
    ("TALINK", 58),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("OPENPGPKEY", 61),
    ("CSYNC", 62),
    ("ZONEMD", 63),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("SPF", 99),
    ("UINFO", 100),
    ("UID", 101),
    ("GID", 102),
    ("UNSPEC", 103),
    ("NID", 104),
    ("L32", 105),
    ("L64", 106),
    ("LP", 107),
    ("EUI48", 108),
    ("EUI64", 109),
    ("TKEY", 249),
    ("TSIG", 250),
    ("URI", 256),
    ("CAA", 257),
    ("AVC", 258),
    ("DOA", 259),
    ("AMTRELAY", 260),
    ("TA", 32768),
    ("DLV", 32769),
];

/// The number of a type mnemonic or of `TYPEnnn` (RFC 3597), case-insensitively.
fn type_code(word: &str) -> Option<u16> {
    let upper = word.to_ascii_uppercase();
    if let Some(number) = upper.strip_prefix("TYPE")
        && let Ok(code) = number.parse()
    {
        return Some(code);
    }
    TYPES
        .iter()
        .find(|(name, _)| *name == upper)
        .map(|&(_, code)| code)
}

fn type_name(code: u16) -> String {
    TYPES
        .iter()
        .find(|&&(_, c)| c == code)
        .map(|(name, _)| (*name).to_owned())
        .unwrap_or_else(|| format!("TYPE{code}"))
}

/// The `(owner, type)` pairs of Knot's AXFR of every zone of the case that no query asks for:
/// the corpus must ask for everything it holds. Empty without kdig.
pub(super) fn uncovered(case: &Case, knot: &Knot) -> Vec<String> {
    if !support::have_tool("kdig") {
        return Vec::new();
    }
    let mut missing = Vec::new();
    let zone_files = crate::nsd_diff::nsd::zone_files(&case.reference_zones);
    for (origin, _) in &zone_files {
        let addr = knot.addr();
        let out = Command::new("kdig")
            .arg(format!("@{}", addr.ip()))
            .args(["-p", &addr.port().to_string()])
            .args([
                origin.as_str(),
                "AXFR",
                "+noall",
                "+answer",
                "+noidn",
                "+time=5",
            ])
            .output()
            .expect("run kdig");
        let text = String::from_utf8_lossy(&out.stdout);
        let errors = String::from_utf8_lossy(&out.stderr);
        if errors.contains(";; ERROR") {
            // Knot 3.2 sends an AXFR that kdig and dig cannot parse when the zone holds an
            // empty NULL record (`TYPE10 \# 0`); the queries still ask for it.
            println!(
                "info: zone_diff case {}: kdig cannot read Knot's AXFR of {origin}, so the \
                 queries' coverage of it is not checked:\n{}",
                case.name,
                indent(&errors)
            );
            continue;
        }
        let mut records = 0;
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 4 || line.starts_with(';') {
                continue;
            }
            records += 1;
            let (Ok(owner), Some(code)) = (presentation_name(fields[0]), type_code(fields[3]))
            else {
                missing.push(format!("unreadable AXFR line of {origin}: {line}"));
                continue;
            };
            // Name's == ignores case.
            let asked = case
                .queries
                .iter()
                .any(|q| q.name == owner && u16::from(q.rtype) == code);
            let entry = format!("{} {}", fields[0].trim_end_matches('.'), type_name(code));
            if !asked && !missing.contains(&entry) {
                missing.push(entry);
            }
        }
        if records == 0 {
            missing.push(format!(
                "kdig {origin} AXFR from Knot gave no record:\n{text}{errors}"
            ));
        }
    }
    if missing.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{}/queries.txt asks for none of these records that Knot serves (add the queries):\n{}",
        case.dir.display(),
        indent(&missing.join("\n"))
    )]
}
