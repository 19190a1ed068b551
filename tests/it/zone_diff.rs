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

mod bad;
mod corpus;
mod query;

use std::path::Path;
use std::process::Command;

use crate::nsd_diff::knot::Knot;
use crate::nsd_diff::nsd::Nsd;
use crate::nsd_diff::{Endpoint, Mismatch, NSD_SETTINGS, Outcome, Transport, compare};
use crate::support::{self, Node};
use corpus::{Case, uncovered, zones_root};
use query::ask_all;

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
