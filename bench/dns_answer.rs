//! Criterion benchmark of `DnsHandler::respond` for one UDP query: answered from the answer
//! cache (hit) against the full path (the cache off: hickory parse, lookup, encode), on the
//! repository's `zones/` with a GeoIP database that locates the client.
//!
//! `cargo bench --bench dns_answer` (add `-- --quick` for a short run).
//!
//! For instruction counts that machine load does not move, run the bench binary with
//! `DNS_ANSWER_LOOP=<case> DNS_ANSWER_ITERS=<n>` under `valgrind --tool=callgrind`: it answers
//! the case's query n times in a plain loop (after one warm-up query) and exits; the
//! difference between two runs with different n, divided by the difference in n, is the cost
//! of one query without the setup. Cases: the benchmark names below, e.g. `hit/static`.
//!
//! The answer cache stands alone (`AnswerCache::new`) unless `DNS_ANSWER_CORE=1`: then it is
//! the node's, over a cache core of 64 MiB (`AnswerCache::with_core`, its task on a runtime
//! of one worker), so the hit path pays for reporting hits to the core.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group};
use edgenode::cache::Cache;
use edgenode::cluster::Cluster;
use edgenode::config::ClusterConfig;
use edgenode::dns::answer_cache::AnswerCache;
use edgenode::dns::handler::{DnsHandler, Reply, Transport};
use edgenode::dns::steering::NodePool;
use edgenode::dns::{DnsState, ZoneSet};
use edgenode::geo::{Geo, build_mmdb_from_csv_str};
use edgenode::metrics::DnsMetrics;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// (benchmark name, query name, type, EDNS): a plain answer, the geo policy's name, NXDOMAIN.
const CASES: [(&str, &str, RecordType); 3] = [
    ("static", "mail.example.test.", RecordType::A),
    ("geo", "www.example.test.", RecordType::A),
    ("nxdomain", "nothing.example.test.", RecordType::A),
];

/// A source address the GeoIP database puts in Asia (the policy's `continent.AS`).
const SOURCE: ([u8; 4], u16) = ([127, 0, 1, 7], 40000);

fn handler(cache_entries: usize) -> (DnsHandler, tempfile::TempDir) {
    let zones = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    let dir = tempfile::tempdir().expect("temp dir");
    let mmdb = build_mmdb_from_csv_str("bench.csv", "127.0.1.0/24,CN,AS,\n127.0.3.0/24,DE,EU,\n")
        .expect("mmdb");
    let mmdb_path = dir.path().join("bench.mmdb");
    std::fs::write(&mmdb_path, mmdb).expect("write mmdb");
    let state = DnsState::with_answers(
        ZoneSet::load_dir(&zones).expect("zones/ loads"),
        Geo::load(&[mmdb_path], &[]).expect("mmdb loads"),
        answers(cache_entries),
    );
    let nodes = Cluster::new(&ClusterConfig::default()) as Arc<dyn NodePool>;
    let handler = DnsHandler::new(
        Arc::new(ArcSwap::from_pointee(state)),
        None,
        nodes,
        DnsMetrics::default(),
        1232,
        false,
    );
    (handler, dir)
}

/// A standalone answer cache of `entries`, or with `DNS_ANSWER_CORE` set one over a core.
fn answers(entries: usize) -> AnswerCache {
    if entries == 0 || std::env::var("DNS_ANSWER_CORE").as_deref() != Ok("1") {
        return AnswerCache::new(entries);
    }
    // Leaked: the core's task must outlive every handler the bench builds.
    let runtime = Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime"),
    ));
    let _entered = runtime.enter();
    AnswerCache::with_core(&Cache::new(64 << 20))
}

fn query(name: &str, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = 0x4242;
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.set_edns(edns);
    message.to_vec().expect("query encodes")
}

fn respond(handler: &DnsHandler, query: &[u8], out: &mut Vec<u8>) {
    let src = SocketAddr::from(SOURCE);
    let reply = handler.respond(black_box(query), src, Transport::Udp, out);
    assert!(matches!(reply, Reply::Send(_)));
}

/// The cases as (name, handler with the cache on or off).
fn setups() -> Vec<(String, bool, &'static str, RecordType)> {
    let mut setups = Vec::new();
    for (path, cached) in [("hit", true), ("slow", false)] {
        for (case, name, rtype) in CASES {
            setups.push((format!("{path}/{case}"), cached, name, rtype));
        }
    }
    setups
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("dns_respond");
    for (label, cached, name, rtype) in setups() {
        let (handler, _dir) = handler(if cached { 65_536 } else { 0 });
        let query = query(name, rtype);
        let mut out = Vec::with_capacity(4096);
        respond(&handler, &query, &mut out); // the miss that fills the cache
        group.bench_function(&label, |b| b.iter(|| respond(&handler, &query, &mut out)));
    }
    group.finish();
}

/// The plain loop for callgrind (see the module documentation).
fn instruction_loop(case: &str, iterations: u64) {
    let Some((_, cached, name, rtype)) = setups().into_iter().find(|s| s.0 == case) else {
        panic!("unknown case {case:?}");
    };
    let (handler, _dir) = handler(if cached { 65_536 } else { 0 });
    let query = query(name, rtype);
    let mut out = Vec::with_capacity(4096);
    respond(&handler, &query, &mut out);
    for _ in 0..iterations {
        respond(&handler, &query, &mut out);
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(case) = std::env::var("DNS_ANSWER_LOOP") {
        let iterations = std::env::var("DNS_ANSWER_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        instruction_loop(&case, iterations);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
