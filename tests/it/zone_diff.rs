//! Differential test of the zone-file reader: NSD, Knot and edgenode serve the same zone files
//! (`tests/data/zones/good/<case>/`, see `tests/data/zones/README.md`) and every query of the
//! case's `queries.txt` must get the same response from edgenode as from the case's reference
//! server, over UDP with EDNS, over UDP without EDNS and over TCP. The comparison is
//! `nsd_diff`'s (RCODE, AA, TC, question, OPT present, the three sections as sorted records).
//!
//! A case's `queries.txt` holds `NAME TYPE` lines (TYPE a mnemonic or `TYPEnnn`; `#` at the
//! start of a line or after a blank starts a comment, so names may hold `#`) and directives:
//!
//! - `#! servers: nsd knot` — the reference servers that read the case (default both; a case
//!   of forms only one of them reads names that one);
//! - `#! reference: nsd` — the server edgenode must answer like (default the first of
//!   `servers`); where NSD and Knot differ, their differences are printed, not failed on;
//! - `#! reference-zones: DIR` — the reference servers load `<case>/DIR/*.zone` instead of the
//!   case's zone files (for forms neither reads, e.g. `$GENERATE`: DIR holds BIND's expansion);
//! - `#! check: warning` — `edgenode check` must print a warning for the case (no `$TTL`, no NS
//!   at the apex).
//!
//! Queries go out over plain sockets and responses are read record by record (`ask_all`), not
//! with hickory's client: its decoder refuses some of what these zones hold (empty rdata, a SIG
//! in the answer section). Names in the rdata of types hickory does not know are decompressed
//! before comparing (NSD and Knot compress MINFO and its kin, edgenode need not).
//!
//! Besides the queries: `edgenode check --zones DIR` must exit 0 on every good case and exit 1 on
//! every file of `tests/data/zones/bad/`, naming the file and the line (`file:line:`); and both
//! nsd-checkzone and kzonecheck must reject every bad file, so that the corpus stays honest.

use std::path::{Path, PathBuf};
use std::process::Command;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::nsd_diff::knot::Knot;
use crate::nsd_diff::nsd::Nsd;
use crate::nsd_diff::{
    CorpusQuery, Endpoint, GIVE_UP_AFTER, Mismatch, NSD_SETTINGS, Outcome, QUERY_TIMEOUT, Response,
    Transport, compare, record_text, request,
};
use crate::support::{self, Node};

/// One test per case directory of `tests/data/zones/good/`; `every_case_has_a_test` fails when
/// a directory is missing here.
macro_rules! cases {
    ($($test:ident => $dir:literal,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                diff_case($dir).await;
            }
        )*
        const CASES: &[&str] = &[$($dir),*];
    };
}

cases! {
    types => "types",
    generic => "generic",
    escapes => "escapes",
    names => "names",
    syntax => "syntax",
    include => "include",
    include_nested => "include-nested",
    no_ttl => "no-ttl",
    no_apex_ns => "no-apex-ns",
    dname => "dname",
    dnssec => "dnssec",
    ttl_edge => "ttl-edge",
    generate => "generate",
    nsd_only => "nsd-only",
    knot_only => "knot-only",
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Nsd,
    Knot,
}

impl Server {
    fn label(self) -> &'static str {
        match self {
            Server::Nsd => "NSD",
            Server::Knot => "Knot",
        }
    }

    /// The program whose presence decides whether the server can run here.
    fn program(self) -> &'static str {
        match self {
            Server::Nsd => "nsd",
            Server::Knot => "knotd",
        }
    }

    fn parse(word: &str) -> Option<Server> {
        match word.to_ascii_lowercase().as_str() {
            "nsd" => Some(Server::Nsd),
            "knot" | "knotd" => Some(Server::Knot),
            _ => None,
        }
    }
}

/// A reference server started for a case.
enum Running {
    Nsd(Nsd),
    Knot(Knot),
}

impl Running {
    fn start(server: Server, zones: &Path) -> Running {
        match server {
            Server::Nsd => {
                // NSD reads a relative `$INCLUDE` from its working directory, `zonesdir`
                // (Knot from the including file's directory): the zones directory, so that the
                // top-level includes of a case mean the same to both. NSD takes the last
                // `zonesdir:` of its config.
                let zonesdir = format!("zonesdir: \"{}\"", zones.display());
                let mut settings: Vec<&str> = NSD_SETTINGS.to_vec();
                settings.push(&zonesdir);
                Running::Nsd(Nsd::start(zones, &settings))
            }
            Server::Knot => Running::Knot(Knot::start(zones)),
        }
    }

    fn endpoint(&self) -> Endpoint {
        let addr = match self {
            Running::Nsd(nsd) => nsd.addr(),
            Running::Knot(knot) => knot.addr(),
        };
        Endpoint {
            udp: addr,
            tcp: addr,
        }
    }
}

fn zones_root() -> PathBuf {
    support::repo_root().join("tests/data/zones")
}

/// A case directory and its `queries.txt`.
struct Case {
    name: String,
    dir: PathBuf,
    servers: Vec<Server>,
    reference: Server,
    /// What the reference servers load: `dir` or its `reference-zones` subdirectory.
    reference_zones: PathBuf,
    check_warning: bool,
    queries: Vec<CorpusQuery>,
    /// Each query as written (with the type's mnemonic, which hickory may not know).
    labels: Vec<String>,
}

impl Case {
    fn load(name: &str) -> Case {
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

/// The differences of one comparison, each difference once with every transport it showed on.
#[derive(Default)]
struct Differences(Vec<Mismatch>);

impl Differences {
    fn add(&mut self, label: &str, found: Vec<Mismatch>) {
        for mut found in found {
            found.query = label.to_owned();
            match self.0.iter_mut().find(|m| m.same_difference(&found)) {
                Some(seen) => seen.transports.push(found.transports[0]),
                None => self.0.push(found),
            }
        }
    }

    /// The list, `left` and `right` naming the two servers compared.
    fn render(&self, left: &str, right: &str) -> String {
        let width = left.len().max(right.len()) + 6;
        let mut text = String::new();
        for m in &self.0 {
            let transports: Vec<&str> = m.transports.iter().map(|t| t.as_str()).collect();
            text.push_str(&format!(
                "- {} [{}] {}:\n",
                m.query,
                transports.join(", "),
                m.field
            ));
            let (l, r) = if m.section {
                (format!("only {left}:"), format!("only {right}:"))
            } else {
                (format!("{left}:"), format!("{right}:"))
            };
            // A section's records come one per line (indented for nsd_diff's labels).
            let indent = format!("\n{}", " ".repeat(width + 5));
            let lines = |value: &str| {
                value
                    .lines()
                    .map(str::trim_start)
                    .collect::<Vec<_>>()
                    .join(&indent)
            };
            text.push_str(&format!("    {l:width$} {}\n", lines(&m.nsd)));
            text.push_str(&format!("    {r:width$} {}\n", lines(&m.edgenode)));
        }
        text
    }
}

/// Runs one case: its reference servers and edgenode answer every query over every transport.
async fn diff_case(name: &str) {
    let case = Case::load(name);
    let mut available = Vec::new();
    for &server in &case.servers {
        if support::have_tool(server.program()) {
            available.push(server);
        }
    }
    if !available.contains(&case.reference) {
        eprintln!(
            "skipping zone_diff case {}: its reference, {}, is not installed",
            case.name,
            case.reference.label()
        );
        return;
    }
    // The zone files must load before there is anything to ask: report the reader's errors as
    // they are, file by file, rather than "edgenode did not start".
    let check = run_check(&case.dir);
    let servers: Vec<(Server, Running)> = available
        .iter()
        .map(|&server| (server, Running::start(server, &case.reference_zones)))
        .collect();
    let reference = servers
        .iter()
        .find(|(server, _)| *server == case.reference)
        .map(|(_, running)| running.endpoint())
        .expect("the reference runs");
    let other = servers
        .iter()
        .find(|(server, _)| *server != case.reference)
        .map(|(server, running)| (*server, running.endpoint()));
    let mut failures = Vec::new();
    if let Some(knot) = servers.iter().find_map(|(_, r)| match r {
        Running::Knot(knot) => Some(knot),
        Running::Nsd(_) => None,
    }) {
        failures.extend(uncovered(&case, knot));
    }

    let node = if check.code == Some(0) {
        Some(Node::with_zones(case.dir.to_str().expect("utf-8 path")))
    } else {
        failures.push(format!(
            "edgenode check --zones {} exits {:?}: it rejects the case:\n{}",
            case.dir.display(),
            check.code,
            indent(&check.output())
        ));
        None
    };

    let mut references_differ = Differences::default();
    let mut edgenode_differs = Differences::default();
    for transport in [Transport::UdpEdns, Transport::Udp, Transport::Tcp] {
        let expected = ask_all(reference, transport, &case.queries).await;
        assert_answered(&case, case.reference.label(), transport, &expected);
        if let Some((server, endpoint)) = other {
            let theirs = ask_all(endpoint, transport, &case.queries).await;
            assert_answered(&case, server.label(), transport, &theirs);
            diff_into(&mut references_differ, &case, transport, &expected, &theirs);
        }
        if let Some(node) = &node {
            let edgenode = Endpoint {
                udp: node.dns_udp[0],
                tcp: node.dns_tcp[0],
            };
            let actual = ask_all(edgenode, transport, &case.queries).await;
            diff_into(&mut edgenode_differs, &case, transport, &expected, &actual);
        }
    }
    drop(node);
    drop(servers);

    let reference_label = format!("{} (reference)", case.reference.label());
    if let Some((server, _)) = other
        && !references_differ.0.is_empty()
    {
        println!(
            "info: zone_diff case {}: {} differences between {} and {} (not failed on; \
             edgenode is compared with {}):\n{}",
            case.name,
            references_differ.0.len(),
            case.reference.label(),
            server.label(),
            case.reference.label(),
            references_differ.render(&reference_label, server.label())
        );
    }
    if !edgenode_differs.0.is_empty() {
        failures.push(format!(
            "{} differences between {} and edgenode ({} queries, each over udp+edns, udp and \
             tcp):\n{}",
            edgenode_differs.0.len(),
            reference_label,
            case.queries.len(),
            edgenode_differs.render(&reference_label, "edgenode")
        ));
    }
    if !failures.is_empty() {
        panic!(
            "zone_diff case {} ({}):\n{}",
            case.name,
            case.dir.display(),
            failures.join("\n")
        );
    }
}

fn diff_into(
    into: &mut Differences,
    case: &Case,
    transport: Transport,
    expected: &[Outcome],
    actual: &[Outcome],
) {
    for ((query, label), (expected, actual)) in case
        .queries
        .iter()
        .zip(&case.labels)
        .zip(expected.iter().zip(actual))
    {
        into.add(label, compare(query, transport, expected, actual));
    }
}

/// `nsd_diff::ask_all` over plain sockets, with a decoder that takes every response a server may
/// send for these zones: hickory's message decoder refuses a record with empty rdata (`\# 0`) or
/// a SIG outside the additional section, and its TCP client then waits until the timeout. Here a
/// response that hickory cannot decode whole is read record by record (`lenient_response`).
async fn ask_all(server: Endpoint, transport: Transport, corpus: &[CorpusQuery]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(corpus.len());
    let mut tcp: Option<tokio::net::TcpStream> = None;
    let mut unanswered = 0;
    for (n, query) in corpus.iter().enumerate() {
        if unanswered >= GIVE_UP_AFTER {
            outcomes.push(Err(format!(
                "not sent: {GIVE_UP_AFTER} queries in a row went unanswered"
            )));
            continue;
        }
        let (mut message, _) = request(query, transport.edns()).into_parts();
        let id = (std::process::id() as u16)
            .wrapping_mul(31)
            .wrapping_add(n as u16);
        message.metadata.id = id;
        let bytes = message.to_vec().expect("encode a query");
        let exchange = async {
            match transport {
                Transport::UdpEdns | Transport::Udp => udp_exchange(server, &bytes, id).await,
                Transport::Tcp => tcp_exchange(server, &mut tcp, &bytes).await,
            }
        };
        let outcome = match tokio::time::timeout(QUERY_TIMEOUT, exchange).await {
            Ok(Ok(wire)) => decode_response(&wire),
            Ok(Err(e)) => Err(format!("no response: {e}")),
            Err(_) => Err("no response: request timed out".to_owned()),
        };
        if outcome.is_err() {
            tcp = None; // a fresh connection for the next query
        }
        unanswered = if outcome.is_ok() { 0 } else { unanswered + 1 };
        outcomes.push(outcome);
    }
    outcomes
}

async fn udp_exchange(server: Endpoint, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(server.udp).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let len = socket.recv(&mut buf).await?;
        if len >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            buf.truncate(len);
            return Ok(buf);
        }
    }
}

/// One query on the transport's TCP connection (opened on first use, RFC 7766 pipelining not
/// needed: one query at a time).
async fn tcp_exchange(
    server: Endpoint,
    connection: &mut Option<tokio::net::TcpStream>,
    query: &[u8],
) -> std::io::Result<Vec<u8>> {
    if connection.is_none() {
        *connection = Some(tokio::net::TcpStream::connect(server.tcp).await?);
    }
    let stream = connection.as_mut().expect("connected");
    let mut framed = u16::try_from(query.len())
        .expect("a short query")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

fn decode_response(wire: &[u8]) -> Outcome {
    lenient_response(wire).map_err(|e| format!("undecodable response: {e}"))
}

/// A response read record by record, rendered as `nsd_diff`'s `Response::new` does: each
/// record's rdata decoded by hickory where it can, and where it cannot kept as bytes (shown as
/// `\# LEN HEX`), with the names of the types of `names_in_rdata` decompressed and lowercased
/// first (a server may compress them, and does it its own way).
fn lenient_response(wire: &[u8]) -> Result<Response, String> {
    let mut decoder = BinDecoder::new(wire);
    let u16_at = |d: &mut BinDecoder<'_>| -> Result<u16, String> {
        d.read_u16()
            .map(|v| v.unverified())
            .map_err(|e| e.to_string())
    };
    let _id = u16_at(&mut decoder)?;
    let flags = u16_at(&mut decoder)?;
    let counts = [
        u16_at(&mut decoder)?,
        u16_at(&mut decoder)?,
        u16_at(&mut decoder)?,
        u16_at(&mut decoder)?,
    ];
    let mut question = Vec::new();
    for _ in 0..counts[0] {
        let name = Name::read(&mut decoder).map_err(|e| e.to_string())?;
        let qtype = RecordType::from(u16_at(&mut decoder)?);
        let _qclass = u16_at(&mut decoder)?;
        question.push(format!("{name} {qtype}"));
    }
    let mut sections: [Vec<String>; 3] = Default::default();
    let mut edns = false;
    let mut rcode_high = 0u8;
    for (section, &count) in counts[1..].iter().enumerate() {
        for _ in 0..count {
            let name = Name::read(&mut decoder).map_err(|e| e.to_string())?;
            let code = u16_at(&mut decoder)?;
            let class = u16_at(&mut decoder)?;
            let ttl = decoder
                .read_u32()
                .map(|v| v.unverified())
                .map_err(|e| e.to_string())?;
            let length = u16_at(&mut decoder)?;
            let start = decoder.index();
            let end = start + usize::from(length);
            let raw = wire.get(start..end).ok_or("rdata past the end")?;
            if code == u16::from(RecordType::OPT) {
                edns = true;
                rcode_high = (ttl >> 24) as u8;
                decoder
                    .read_slice(usize::from(length))
                    .map_err(|e| e.to_string())?;
                continue;
            }
            let rtype = RecordType::from(code);
            // A decoder of its own at the rdata (names in it may point anywhere before).
            let mut attempt = BinDecoder::new(wire);
            let decoded = attempt
                .read_slice(start)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    RData::read(&mut attempt, rtype, Restrict::new(length))
                        .map_err(|e| e.to_string())
                });
            let data = match decoded {
                Ok(RData::Unknown { .. }) | Err(_) => RData::Unknown {
                    code: rtype,
                    rdata: null(uncompressed_rdata(wire, start, end, code).unwrap_or(raw.to_vec())),
                },
                Ok(data) if attempt.index() == end => data,
                Ok(_) => RData::Unknown {
                    code: rtype,
                    rdata: null(raw.to_vec()),
                },
            };
            decoder
                .read_slice(usize::from(length))
                .map_err(|e| e.to_string())?;
            let mut record = Record::from_rdata(name, ttl, data);
            record.dns_class = DNSClass::from(class);
            sections[section].push(record_text(&record));
        }
    }
    for section in &mut sections {
        section.sort();
    }
    let [answer, authority, additional] = sections;
    Ok(Response {
        rcode: ResponseCode::from(rcode_high, (flags & 0x000f) as u8),
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        question,
        edns,
        answer,
        authority,
        additional,
    })
}

/// Opaque rdata (`NULL::with` refuses empty data).
fn null(bytes: Vec<u8>) -> NULL {
    if bytes.is_empty() {
        NULL::new()
    } else {
        NULL::with(bytes)
    }
}

/// Where the names are in the rdata of types hickory does not decode, which a server may
/// compress (the RFC 1035 types, RFC 3597 section 4) or which old servers did (RFC 3597 section
/// 4 names RP, AFSDB, RT, SIG, PX, NXT and NAPTR): the fields before, between and after the names.
enum Field {
    Name,
    Bytes(usize),
    Rest,
}

fn names_in_rdata(code: u16) -> Option<&'static [Field]> {
    use Field::{Bytes, Name, Rest};
    Some(match code {
        3 | 4 | 7 | 8 | 9 => &[Name],      // MD, MF, MB, MG, MR
        14 | 17 => &[Name, Name],          // MINFO, RP
        18 | 21 | 36 => &[Bytes(2), Name], // AFSDB, RT, KX
        26 => &[Bytes(2), Name, Name],     // PX
        24 => &[Bytes(18), Name, Rest],    // SIG
        30 => &[Name, Rest],               // NXT
        39 => &[Name],                     // DNAME (never compressed; lowercased all the same)
        _ => return None,
    })
}

/// The rdata at `wire[start..end]` with the names of `names_in_rdata` written out whole and in
/// lower case; None for other types or rdata that does not parse.
fn uncompressed_rdata(wire: &[u8], start: usize, end: usize, code: u16) -> Option<Vec<u8>> {
    let fields = names_in_rdata(code)?;
    let mut decoder = BinDecoder::new(wire);
    decoder.read_slice(start).ok()?;
    let mut out = Vec::new();
    for field in fields {
        match field {
            Field::Name => {
                let name = Name::read(&mut decoder).ok()?.to_lowercase();
                for label in name.iter() {
                    out.push(u8::try_from(label.len()).ok()?);
                    out.extend_from_slice(label);
                }
                out.push(0);
            }
            Field::Bytes(n) => out.extend_from_slice(decoder.read_slice(*n).ok()?.unverified()),
            Field::Rest => {
                let rest = end.checked_sub(decoder.index())?;
                out.extend_from_slice(decoder.read_slice(rest).ok()?.unverified());
            }
        }
    }
    (decoder.index() == end).then_some(out)
}

/// A reference server that answered nothing is down or misconfigured: one line says so.
fn assert_answered(case: &Case, server: &str, transport: Transport, outcomes: &[Outcome]) {
    if let Some(Err(first)) = outcomes.first()
        && outcomes.iter().all(Result::is_err)
    {
        panic!(
            "zone_diff case {}: {server} answered no query over {}: {first}",
            case.name,
            transport.as_str()
        );
    }
}

/// The `(owner, type)` pairs of Knot's AXFR of every zone of the case that no query asks for:
/// the corpus must ask for everything it holds. Empty without kdig.
fn uncovered(case: &Case, knot: &Knot) -> Vec<String> {
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

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}\n"))
        .collect::<String>()
}

/// What `edgenode check --zones DIR` did.
struct CheckRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl CheckRun {
    fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn run_check(zones: &Path) -> CheckRun {
    let out = Command::new(env!("CARGO_BIN_EXE_edgenode"))
        .arg("check")
        .arg("--zones")
        .arg(zones)
        .current_dir(support::repo_root())
        .output()
        .expect("run edgenode check");
    CheckRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn every_case_has_a_test() {
    let mut dirs: Vec<String> = std::fs::read_dir(zones_root().join("good"))
        .expect("read tests/data/zones/good")
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_type()
                .ok()?
                .is_dir()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    dirs.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| (*c).to_owned()).collect();
    listed.sort();
    assert_eq!(
        dirs, listed,
        "tests/data/zones/good/ and the cases! list of zone_diff.rs differ"
    );
}

/// `edgenode check` accepts every good case, with a warning where the case says so.
#[test]
fn check_accepts_the_good_corpus() {
    let mut failures = Vec::new();
    for name in CASES {
        let case = Case::load(name);
        let run = run_check(&case.dir);
        if run.code != Some(0) {
            failures.push(format!(
                "{}: exit {:?}, want 0:\n{}",
                case.dir.display(),
                run.code,
                indent(&run.output())
            ));
        } else if case.check_warning && !run.output().to_ascii_lowercase().contains("warning") {
            failures.push(format!(
                "{}: no warning (the case has `#! check: warning`):\n{}",
                case.dir.display(),
                indent(&run.output())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "edgenode check on the good zone corpus, {} of {} cases fail:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// A file of `tests/data/zones/bad/` and where its error is.
struct BadFile {
    path: PathBuf,
    place: Place,
    what: String,
}

/// Where `edgenode check` must say a bad file's error is.
enum Place {
    /// The line whose comment says `; <- error`: `file:LINE:`.
    Line(usize),
    /// Some line (an unterminated string or parenthesis runs on to the end of the file, and
    /// readers report it at its start or at the end): `file:DIGITS:`.
    AnyLine,
    /// The file as a whole (it has no SOA); the file says `NO-LINE`: the file name.
    File,
}

fn bad_files() -> Vec<BadFile> {
    let dir = zones_root().join("bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read tests/data/zones/bad")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "zone"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.zone in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a bad zone file");
            let place = match text.lines().position(|l| l.contains("; <- error")) {
                Some(i) => Place::Line(i + 1),
                None if text.contains("NO-LINE") => Place::File,
                None => Place::AnyLine,
            };
            let what = text
                .lines()
                .find_map(|l| l.strip_prefix("; BAD:"))
                .unwrap_or_else(|| panic!("{}: no `; BAD:` comment", path.display()))
                .trim()
                .to_owned();
            BadFile { path, place, what }
        })
        .collect()
}

/// `edgenode check` rejects every bad file (exit 1) and says where: `file:line:`.
#[test]
fn check_rejects_each_bad_file() {
    let mut failures = Vec::new();
    let files = bad_files();
    for bad in &files {
        // Alone in a directory, so that its errors are the only ones.
        let dir = tempfile::tempdir().expect("tempdir");
        let file_name = bad.path.file_name().expect("file name").to_owned();
        std::fs::copy(&bad.path, dir.path().join(&file_name)).expect("copy the bad file");
        let run = run_check(dir.path());
        let output = run.output();
        let file_name = file_name.to_string_lossy();
        let (placed, want) = match bad.place {
            Place::Line(line) => {
                let want = format!("{file_name}:{line}:");
                (output.contains(&want), want)
            }
            Place::AnyLine => (
                has_file_and_line(&output, &file_name),
                format!("{file_name}:LINE:"),
            ),
            Place::File => (output.contains(&*file_name), file_name.to_string()),
        };
        if run.code != Some(1) || !placed {
            failures.push(format!(
                "{file_name} ({}): exit {:?}, want 1 and `{want}` in the output:\n{}",
                bad.what,
                run.code,
                indent(&output)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "edgenode check on tests/data/zones/bad/, {} of {} files not rejected as they should \
         be:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// True when `output` holds `FILE:DIGITS:`.
fn has_file_and_line(output: &str, file_name: &str) -> bool {
    output
        .match_indices(&format!("{file_name}:"))
        .any(|(at, m)| {
            let rest = &output[at + m.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && rest[digits..].starts_with(':')
        })
}

/// The corpus itself: nsd-checkzone and kzonecheck both reject every bad file.
#[test]
fn reference_tools_reject_each_bad_file() {
    let have_nsd = support::have_tool("nsd-checkzone");
    let have_knot = support::have_tool("kzonecheck");
    let mut failures = Vec::new();
    for bad in bad_files() {
        let file_name = bad.path.file_name().expect("file name").to_string_lossy();
        let origin = file_name.strip_suffix(".zone").expect("a .zone file");
        let dir = bad.path.parent().expect("parent");
        let mut tools = Vec::new();
        if have_nsd {
            tools.push(("nsd-checkzone", vec![origin, &file_name]));
        }
        if have_knot {
            tools.push(("kzonecheck", vec!["-o", origin, &file_name]));
        }
        for (tool, args) in tools {
            let out = Command::new(tool)
                .args(&args)
                .current_dir(dir)
                .output()
                .unwrap_or_else(|e| panic!("run {tool}: {e}"));
            if out.status.success() {
                failures.push(format!(
                    "{tool} accepts bad/{file_name} ({}):\n{}",
                    bad.what,
                    indent(&format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ))
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "tests/data/zones/bad/ holds files a reference tool accepts (each must be rejected by \
         both):\n{}",
        failures.join("\n")
    );
}
