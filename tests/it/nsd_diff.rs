//! Differential test against NSD: NSD and edgenode serve the same zones (`tests/data/diff/*.zone`)
//! and every query of `tests/data/diff/queries.txt` must get the same response from both, over UDP
//! with EDNS, over UDP without EDNS and over TCP.
//!
//! Compared per query: RCODE, AA, TC, the question as echoed (case included), whether an OPT
//! record came back, and the answer, authority and additional sections as sorted lists of
//! `owner TTL class type rdata` (owner lowercased; rdata lowercased except TXT and CAA, whose text
//! is data: NSD writes names through compression pointers to the question, so their case follows
//! the query). The OPT record itself (payload size, EDE options) is not compared. Every mismatch
//! is collected and the test fails once with the whole list.

pub(crate) mod knot;
pub(crate) mod nsd;

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::{DnsHandle, FirstAnswer};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::HTTPS;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::support::{self, Node};
use nsd::Nsd;

/// Extra `server:` settings for the reference NSD: the behaviour edgenode matches. By default NSD
/// adds to positive answers the zone's NS RRset (authority) and the addresses of NS, MX and SRV
/// targets (additional), as far as they fit; with `minimal-responses: yes` it adds extra data
/// only where needed: glue in referrals and the addresses of an NS answer. edgenode gives minimal
/// responses (docs/dns.md, "DNS behaviour"), so the reference runs with them too.
pub(crate) const NSD_SETTINGS: &[&str] = &["minimal-responses: yes"];
/// How long one query may take before it counts as unanswered (loopback: answers take < 1 ms).
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// A server that leaves this many queries in a row unanswered is down: stop waiting on it.
pub(crate) const GIVE_UP_AFTER: usize = 3;
/// The EDNS payload size we advertise, the usual 1232 of DNS Flag Day 2020.
const EDNS_PAYLOAD: u16 = 1232;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edgenode_answers_like_nsd() {
    if !support::have_tool("nsd") {
        return;
    }
    let data = support::repo_root().join("tests/data/diff");
    let corpus = read_corpus(&data.join("queries.txt"));
    let nsd = Nsd::start(&data, NSD_SETTINGS);
    let node = Node::with_zones(data.to_str().expect("utf-8 path"));
    let edgenode = Endpoint {
        udp: node.dns_udp[0],
        tcp: node.dns_tcp[0],
    };
    let reference = Endpoint {
        udp: nsd.addr(),
        tcp: nsd.addr(),
    };

    let mut mismatches: Vec<Mismatch> = Vec::new();
    for transport in [Transport::UdpEdns, Transport::Udp, Transport::Tcp] {
        let expected = ask_all(reference, transport, &corpus).await;
        assert_some_answered("NSD", transport, &expected);
        let actual = ask_all(edgenode, transport, &corpus).await;
        assert_some_answered("edgenode", transport, &actual);
        for ((query, nsd), edgenode) in corpus.iter().zip(expected).zip(actual) {
            for found in compare(query, transport, &nsd, &edgenode) {
                // The same difference over several transports is reported once.
                match mismatches.iter_mut().find(|m| m.same_difference(&found)) {
                    Some(seen) => seen.transports.push(transport),
                    None => mismatches.push(found),
                }
            }
        }
    }
    drop(node);
    drop(nsd);

    if !mismatches.is_empty() {
        let mut report = format!(
            "{} differences between NSD and edgenode ({} queries, each over udp+edns, udp and \
             tcp):\n",
            mismatches.len(),
            corpus.len()
        );
        for m in &mismatches {
            report.push_str(&m.to_string());
        }
        panic!("{report}");
    }
}

/// One line of `queries.txt`: the name keeps the case it was written in.
pub(crate) struct CorpusQuery {
    pub(crate) name: Name,
    pub(crate) rtype: RecordType,
}

impl std::fmt::Display for CorpusQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)
    }
}

fn read_corpus(path: &Path) -> Vec<CorpusQuery> {
    let text = std::fs::read_to_string(path).expect("read the query corpus");
    let mut corpus = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, rtype] = fields[..] else {
            panic!(
                "{}:{}: want `NAME TYPE`, got {line:?}",
                path.display(),
                number + 1
            );
        };
        let fqdn = if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        };
        corpus.push(CorpusQuery {
            name: Name::from_ascii(&fqdn).expect("corpus name"),
            rtype: RecordType::from_str(rtype).expect("corpus type"),
        });
    }
    assert!(!corpus.is_empty(), "{} holds no query", path.display());
    corpus
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    UdpEdns,
    Udp,
    Tcp,
}

impl Transport {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::UdpEdns => "udp+edns",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    /// EDNS over TCP too: that is what resolvers send after a truncated UDP answer.
    pub(crate) fn edns(self) -> bool {
        self != Transport::Udp
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Endpoint {
    pub(crate) udp: SocketAddr,
    pub(crate) tcp: SocketAddr,
}

/// What a client sees of one response, in comparable form; `Err` when no response came.
pub(crate) type Outcome = Result<Response, String>;

#[derive(Debug, PartialEq)]
pub(crate) struct Response {
    pub(crate) rcode: ResponseCode,
    pub(crate) aa: bool,
    pub(crate) tc: bool,
    pub(crate) question: Vec<String>,
    pub(crate) edns: bool,
    pub(crate) answer: Vec<String>,
    pub(crate) authority: Vec<String>,
    pub(crate) additional: Vec<String>,
}

impl Response {
    pub(crate) fn new(message: &Message) -> Response {
        let section = |records: &[Record]| {
            let mut lines: Vec<String> = records.iter().map(record_text).collect();
            lines.sort();
            lines
        };
        Response {
            rcode: message.metadata.response_code,
            aa: message.metadata.authoritative,
            tc: message.metadata.truncation,
            question: message
                .queries
                .iter()
                .map(|q| format!("{} {}", q.name(), q.query_type()))
                .collect(),
            edns: message.edns.is_some(),
            answer: section(&message.answers),
            authority: section(&message.authorities),
            additional: section(&message.additionals),
        }
    }
}

pub(crate) fn record_text(record: &Record) -> String {
    let rdata = match &record.data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| character_string(s))
            .collect::<Vec<_>>()
            .join(" "),
        // Names in rdata are lowercased (their case may follow the query, see above), the rest
        // is data: base64 and hex keys, ECH configs, NAPTR regexps.
        RData::MX(_)
        | RData::NS(_)
        | RData::CNAME(_)
        | RData::PTR(_)
        | RData::ANAME(_)
        | RData::SOA(_)
        | RData::SRV(_) => record.data.to_string().to_ascii_lowercase(),
        RData::SVCB(svcb) | RData::HTTPS(HTTPS(svcb)) => {
            let mut svcb = svcb.clone();
            svcb.target_name = svcb.target_name.to_lowercase();
            svcb.to_string()
        }
        RData::NAPTR(naptr) => {
            let mut naptr = naptr.clone();
            naptr.replacement = naptr.replacement.to_lowercase();
            naptr.to_string()
        }
        // A type hickory does not decode (without its DNSSEC features: DNSKEY, RRSIG, NSEC...
        // too) in the RFC 3597 form, so that the bytes themselves are compared.
        RData::Unknown { rdata, .. } | RData::NULL(rdata) => generic_rdata(&rdata.anything),
        other => other.to_string(),
    };
    let rtype = match record.record_type() {
        RecordType::Unknown(code) => format!("TYPE{code}"),
        known => known.to_string(),
    };
    format!(
        "{} {} {} {} {}",
        record.name.to_ascii().to_ascii_lowercase(),
        record.ttl,
        record.dns_class,
        rtype,
        rdata
    )
}

/// A <character-string> in zone-file form: quoted, `"` and `\` escaped, bytes outside printable
/// ASCII as `\DDD` (every byte counts: no lossy UTF-8 decoding).
fn character_string(bytes: &[u8]) -> String {
    let mut text = String::from("\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                text.push('\\');
                text.push(char::from(b));
            }
            0x20..=0x7e => text.push(char::from(b)),
            _ => text.push_str(&format!("\\{b:03}")),
        }
    }
    text.push('"');
    text
}

/// `\# LENGTH HEX` (RFC 3597 section 5).
fn generic_rdata(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("\\# {} {hex}", bytes.len())
}

/// Sends every corpus query to `server` over `transport`, one at a time, in corpus order.
async fn ask_all(server: Endpoint, transport: Transport, corpus: &[CorpusQuery]) -> Vec<Outcome> {
    let client = match transport {
        Transport::UdpEdns | Transport::Udp => {
            let stream = UdpClientStream::builder(server.udp, TokioRuntimeProvider::default())
                .with_timeout(Some(QUERY_TIMEOUT))
                .build();
            let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
            tokio::spawn(background);
            client
        }
        Transport::Tcp => {
            let (connect, handle) = TcpClientStream::new(
                server.tcp,
                None,
                Some(QUERY_TIMEOUT),
                TokioRuntimeProvider::default(),
            );
            let stream = match connect.await {
                Ok(stream) => stream,
                Err(e) => {
                    let error = format!("tcp connect to {}: {e}", server.tcp);
                    return corpus.iter().map(|_| Err(error.clone())).collect();
                }
            };
            let (client, background) = Client::<TokioRuntimeProvider>::new(stream, handle);
            tokio::spawn(background);
            client
        }
    };
    let mut outcomes = Vec::with_capacity(corpus.len());
    let mut unanswered = 0;
    for query in corpus {
        if unanswered >= GIVE_UP_AFTER {
            outcomes.push(Err(format!(
                "not sent: {GIVE_UP_AFTER} queries in a row went unanswered"
            )));
            continue;
        }
        let request = request(query, transport.edns());
        let outcome = match client.send(request).first_answer().await {
            Ok(response) => Ok(Response::new(&response)),
            Err(e) => Err(format!("no response: {e}")),
        };
        unanswered = if outcome.is_ok() { 0 } else { unanswered + 1 };
        outcomes.push(outcome);
    }
    outcomes
}

/// A server that answered nothing is down or misconfigured: one line says so, not 75.
fn assert_some_answered(server: &str, transport: Transport, outcomes: &[Outcome]) {
    if let Some(Err(first)) = outcomes.first()
        && outcomes.iter().all(Result::is_err)
    {
        panic!(
            "{server} answered no query over {}: {first}",
            transport.as_str()
        );
    }
}

/// A query as a resolver sends it to an authoritative server: RD clear, the name's case kept.
pub(crate) fn request(query: &CorpusQuery, edns: bool) -> DnsRequest {
    let mut message = Message::query();
    message.add_query(Query::query(query.name.clone(), query.rtype));
    message.metadata.recursion_desired = false;
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(EDNS_PAYLOAD);
        message.set_edns(opt);
    }
    let mut options = DnsRequestOptions::default();
    options.use_edns = edns;
    options.edns_payload_len = EDNS_PAYLOAD;
    options.recursion_desired = false;
    DnsRequest::new(message, options)
}

/// One field that differs; for a section, `nsd` and `edgenode` hold only the records that the
/// other server did not send.
pub(crate) struct Mismatch {
    pub(crate) query: String,
    pub(crate) transports: Vec<Transport>,
    pub(crate) field: &'static str,
    pub(crate) section: bool,
    pub(crate) nsd: String,
    pub(crate) edgenode: String,
}

impl Mismatch {
    pub(crate) fn same_difference(&self, other: &Mismatch) -> bool {
        (&self.query, self.field, &self.nsd, &self.edgenode)
            == (&other.query, other.field, &other.nsd, &other.edgenode)
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transports: Vec<&str> = self.transports.iter().map(|t| t.as_str()).collect();
        writeln!(
            f,
            "- {} [{}] {}:",
            self.query,
            transports.join(", "),
            self.field
        )?;
        let (nsd, edgenode) = if self.section {
            ("only nsd:     ", "only edgenode:")
        } else {
            ("nsd:         ", "edgenode:    ")
        };
        writeln!(f, "    {nsd} {}", self.nsd)?;
        writeln!(f, "    {edgenode} {}", self.edgenode)
    }
}

pub(crate) fn compare(
    query: &CorpusQuery,
    transport: Transport,
    nsd: &Outcome,
    edgenode: &Outcome,
) -> Vec<Mismatch> {
    let mut found = Vec::new();
    let mut mismatch = |field: &'static str, nsd: String, edgenode: String| {
        found.push(Mismatch {
            query: query.to_string(),
            transports: vec![transport],
            field,
            section: matches!(field, "answer" | "authority" | "additional"),
            nsd,
            edgenode,
        });
    };
    let (nsd, edgenode) = match (nsd, edgenode) {
        (Ok(nsd), Ok(edgenode)) => (nsd, edgenode),
        (nsd, edgenode) => {
            let show = |o: &Outcome| match o {
                Ok(r) => format!("{} response", r.rcode),
                Err(e) => e.clone(),
            };
            mismatch("response", show(nsd), show(edgenode));
            return found;
        }
    };
    if nsd.rcode != edgenode.rcode {
        mismatch("rcode", nsd.rcode.to_string(), edgenode.rcode.to_string());
    }
    if nsd.aa != edgenode.aa {
        mismatch("aa", nsd.aa.to_string(), edgenode.aa.to_string());
    }
    if nsd.tc != edgenode.tc {
        mismatch("tc", nsd.tc.to_string(), edgenode.tc.to_string());
    }
    if nsd.question != edgenode.question {
        mismatch(
            "question",
            nsd.question.join(", "),
            edgenode.question.join(", "),
        );
    }
    if nsd.edns != edgenode.edns {
        mismatch(
            "opt present",
            nsd.edns.to_string(),
            edgenode.edns.to_string(),
        );
    }
    let sections = [
        ("answer", &nsd.answer, &edgenode.answer),
        ("authority", &nsd.authority, &edgenode.authority),
        ("additional", &nsd.additional, &edgenode.additional),
    ];
    for (field, nsd, edgenode) in sections {
        if nsd != edgenode {
            mismatch(field, only_in(nsd, edgenode), only_in(edgenode, nsd));
        }
    }
    found
}

/// The records of `these` missing from `those` (duplicates count), one per line.
fn only_in(these: &[String], those: &[String]) -> String {
    let mut rest: Vec<&String> = those.iter().collect();
    let mut only = Vec::new();
    for record in these {
        match rest.iter().position(|r| *r == record) {
            Some(i) => {
                rest.swap_remove(i);
            }
            None => only.push(record.as_str()),
        }
    }
    if only.is_empty() {
        "-".to_owned()
    } else {
        only.join("\n                   ")
    }
}
