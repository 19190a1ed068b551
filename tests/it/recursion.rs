//! Recursive resolution: forwarding to a local upstream (an authoritative edgenode), the cache
//! (aging TTLs, coalescing, serve-stale), the allow list, and iterative resolution through a
//! private root, TLD and leaf on 127.0.0.x:53.

use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::dns::http_get;
use crate::support::{Node, ask, dig, dns_client, have_tool, query, write_file};

const UPSTREAM_ZONE: &str = "$ORIGIN upstream.test.\n$TTL 300\n\
    @ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n\
    www A 127.0.20.1\nshort 1 A 127.0.20.2\nalias CNAME www\n";

/// 100 A records: 1.6 kB, more than a 1232-byte UDP answer holds.
fn many_records() -> String {
    (1..=100)
        .map(|i| format!("many A 127.0.21.{i}\n"))
        .collect()
}

/// A recursive query as a stub resolver sends it: RD set.
fn recursive(name: &str, rtype: RecordType) -> Message {
    let mut message = query(name, rtype, Some(1232));
    message.metadata.recursion_desired = true;
    message
}

fn first_a(message: &Message) -> Option<(String, u32)> {
    message.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some((a.0.to_string(), r.ttl)),
        _ => None,
    })
}

/// The resolver's config: short timeouts so failure tests run fast.
fn resolver_config(dir: &Path, extra: &str) -> String {
    let zones = crate::support::repo_root().join("zones");
    let text = format!(
        "[dns]\nzones = \"{}\"\n[recursion]\ntimeout_ms = 300\nattempts = 2\n{extra}",
        zones.display()
    );
    write_file(dir, "resolver.toml", &text)
        .display()
        .to_string()
}

/// Sends `count` copies of one recursive query at once from one socket (distinct IDs) and
/// returns the responses.
async fn burst(
    server: std::net::SocketAddr,
    name: &str,
    rtype: RecordType,
    count: u16,
) -> Vec<Message> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for id in 0..count {
        let mut message = recursive(name, rtype);
        message.metadata.id = id;
        socket
            .send_to(&message.to_vec().unwrap(), server)
            .await
            .unwrap();
    }
    let mut buffer = [0u8; 1500];
    let mut responses = Vec::new();
    for _ in 0..count {
        let wait = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buffer));
        let len = wait.await.expect("a response in time").expect("recv");
        responses.push(Message::from_vec(&buffer[..len]).unwrap());
    }
    responses
}

/// The value of one metric line (name with labels), 0 when absent.
fn metric(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// The resolver under test: `config` plus the recursion flags in `extra`, listeners on port 0.
fn start_resolver(config: &str, extra: &[&str]) -> Node {
    let mut args = vec![
        "--config",
        config,
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Node::start(&args)
}

/// The upstream's count of answered A queries, from its /metrics.
async fn upstream_a_queries(upstream: &Node) -> u64 {
    let metrics = http_get(upstream.admin.unwrap(), "/metrics").await;
    metrics
        .lines()
        .filter(|l| l.starts_with("edgenode_dns_queries_total{") && l.contains("qtype=\"A\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn forwarding_caches_coalesces_and_serves_stale() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("upstream");
    std::fs::create_dir(&zones).unwrap();
    write_file(&zones, "upstream.test.zone", UPSTREAM_ZONE);
    let upstream = Node::with_zones(zones.to_str().unwrap());
    let config = resolver_config(dir.path(), "");
    let upstream_addr = upstream.dns().to_string();
    let resolver = start_resolver(&config, &["--forwarder", &upstream_addr]);
    let udp = dns_client(resolver.dns(), false).await;

    // A recursive answer: RA set, AA clear, the upstream's data.
    let r = ask(&udp, recursive("www.upstream.test.", RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.metadata.recursion_available && !r.metadata.authoritative);
    assert_eq!(first_a(&r).unwrap(), ("127.0.20.1".to_string(), 300));
    // The served zones still answer authoritatively on the same port.
    let r = ask(&udp, recursive("www.example.test.", RecordType::A)).await;
    assert!(r.metadata.authoritative && r.metadata.recursion_available);
    // CNAMEs come through whole; negative answers carry the SOA.
    let r = ask(&udp, recursive("alias.upstream.test.", RecordType::A)).await;
    assert_eq!(r.answers.len(), 2);
    let r = ask(&udp, recursive("nothing.upstream.test.", RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);

    // Cached: the TTL ages and the upstream is not asked again.
    let before = upstream_a_queries(&upstream).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = ask(&udp, recursive("www.upstream.test.", RecordType::A)).await;
    let (_, ttl) = first_a(&r).unwrap();
    assert!((290..300).contains(&ttl), "ttl {ttl}");
    assert_eq!(upstream_a_queries(&upstream).await, before);

    // Flushing the name from the admin API sends the next query upstream again.
    let admin = resolver.admin.unwrap();
    let (status, body) = crate::dns::http(
        admin,
        "POST",
        "/admin/dns/flush?name=WWW.upstream.test",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"flushed\":1"), "{body}");
    ask(&udp, recursive("www.upstream.test.", RecordType::A)).await;
    assert_eq!(upstream_a_queries(&upstream).await, before + 1);
    let (status, _) = crate::dns::http(admin, "POST", "/admin/dns/flush", None).await;
    assert_eq!(status, 400);

    // 50 queries for one new name in one burst: one upstream query, coalesced.
    for response in burst(resolver.dns(), "www.UPSTREAM.test.", RecordType::AAAA, 50).await {
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    }
    let metrics = http_get(upstream.admin.unwrap(), "/metrics").await;
    assert!(
        metrics.contains("qtype=\"AAAA\",rcode=\"NOERROR\"} 1\n"),
        "{metrics}"
    );

    // Prime a 1-second name, let it expire, stop the upstream: the stale answer is served with
    // a 30 s TTL; a name never cached gets SERVFAIL within the timeout.
    assert!(first_a(&ask(&udp, recursive("short.upstream.test.", RecordType::A)).await).is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(upstream);
    let r = ask(&udp, recursive("short.upstream.test.", RecordType::A)).await;
    assert_eq!(first_a(&r), Some(("127.0.20.2".to_string(), 30)));
    let started = Instant::now();
    let r = ask(&udp, recursive("uncached.upstream.test.", RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let metrics = http_get(resolver.admin.unwrap(), "/metrics").await;
    // (hickory's client may resend a query it waits on; each copy is answered stale.)
    assert!(
        metric(&metrics, "edgenode_dns_stale_answers_total") >= 1,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "edgenode_dns_recursion_total{outcome=\"stale\"}") >= 1,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "edgenode_dns_recursion_total{outcome=\"failed\"}") >= 1,
        "{metrics}"
    );
}

#[tokio::test]
async fn only_allowed_clients_recurse() {
    if !have_tool("dig") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("upstream");
    std::fs::create_dir(&zones).unwrap();
    let zone = UPSTREAM_ZONE.to_string() + &many_records();
    write_file(&zones, "upstream.test.zone", &zone);
    let upstream = Node::with_zones(zones.to_str().unwrap());
    let config = resolver_config(dir.path(), "");
    let upstream_addr = upstream.dns().to_string();
    // The first forwarder is dead (nothing listens on port 9 here): failover to the second.
    let resolver = start_resolver(
        &config,
        &[
            "--forwarder",
            "127.0.0.1:9",
            "--forwarder",
            &upstream_addr,
            "--recursion-allow",
            "127.0.0.1/32",
        ],
    );
    let allowed = dig(resolver.dns(), &["-b", "127.0.0.1", "www.upstream.test"]);
    assert!(
        allowed.contains("status: NOERROR") && allowed.contains("127.0.20.1"),
        "{allowed}"
    );
    assert!(allowed.contains(" ra"), "{allowed}");
    let outsider = dig(resolver.dns(), &["-b", "127.0.0.2", "www.upstream.test"]);
    assert!(outsider.contains("status: REFUSED"), "{outsider}");
    // A truncated upstream answer is fetched again over TCP: all 100 records come back.
    let tcp = dig(
        resolver.dns(),
        &["-b", "127.0.0.1", "+tcp", "many.upstream.test"],
    );
    assert!(tcp.contains("ANSWER: 100,"), "{tcp}");
    // Outsiders still get the authoritative zones, without RA.
    let outsider = dig(resolver.dns(), &["-b", "127.0.0.2", "www.example.test"]);
    assert!(
        outsider.contains("status: NOERROR") && !outsider.contains(" ra"),
        "{outsider}"
    );
}

/// Whether this process may bind port 53 (root: the recursor asks port 53 only); prints why a
/// test is skipped when not.
fn may_bind_port_53(addresses: &str) -> bool {
    let uid = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let root = String::from_utf8_lossy(&uid).trim() == "0";
    if !root {
        eprintln!("skipping: binding {addresses}:53 needs root");
    }
    root
}

/// The private hierarchy needs port 53 on 127.0.0.11-13 (the recursor asks port 53 only).
#[tokio::test]
async fn iterative_resolution_through_a_private_root() {
    if !may_bind_port_53("127.0.0.x") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let zone_dir = |name: &str, file: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        write_file(&path, file, text);
        path.display().to_string()
    };
    let root = zone_dir(
        "root",
        "root.zone",
        "$ORIGIN .\n$TTL 300\n\
        @ SOA a.root-servers.test. hostmaster.test. 1 3600 600 86400 60\n\
        @ NS a.root-servers.test.\na.root-servers.test. A 127.0.0.11\n\
        test. NS ns1.test.\nns1.test. A 127.0.0.12\n",
    );
    let tld = zone_dir(
        "tld",
        "test.zone",
        "$ORIGIN test.\n$TTL 300\n\
        @ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.12\n\
        a.root-servers A 127.0.0.11\n\
        leaf NS ns1.leaf\nns1.leaf A 127.0.0.13\n",
    );
    let leaf = zone_dir(
        "leaf",
        "leaf.test.zone",
        "$ORIGIN leaf.test.\n$TTL 300\n\
        @ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.13\n\
        www A 127.0.30.1\nalias CNAME www\n",
    );
    let _servers: Vec<Node> = [
        (root, "127.0.0.11:53"),
        (tld, "127.0.0.12:53"),
        (leaf, "127.0.0.13:53"),
    ]
    .iter()
    .map(|(zones, addr)| {
        Node::start(&[
            "--zones",
            zones,
            "--dns-listen",
            addr,
            "--admin-listen",
            "127.0.0.1:0",
        ])
    })
    .collect();
    let hints = write_file(
        dir.path(),
        "hints.zone",
        ". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.11\n",
    );
    let config = resolver_config(dir.path(), "allow_servers = [\"127.0.0.0/8\"]\n");
    let resolver = start_resolver(
        &config,
        &["--recursion", "--root-hints", hints.to_str().unwrap()],
    );
    let udp = dns_client(resolver.dns(), false).await;
    let r = ask(&udp, recursive("www.leaf.test.", RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{r:?}");
    assert_eq!(first_a(&r).map(|(a, _)| a).as_deref(), Some("127.0.30.1"));
    let r = ask(&udp, recursive("alias.leaf.test.", RecordType::A)).await;
    assert_eq!(
        first_a(&r).map(|(a, _)| a).as_deref(),
        Some("127.0.30.1"),
        "{r:?}"
    );
    let r = ask(&udp, recursive("missing.leaf.test.", RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "{r:?}");
    let r = ask(&udp, recursive("www.leaf.test.", RecordType::MX)).await;
    assert_eq!(
        (r.metadata.response_code, r.answers.len()),
        (ResponseCode::NoError, 0),
        "{r:?}"
    );
    // The recursor's own caches are bounded and reported (issue 18, finding 8).
    let metrics = http_get(resolver.admin.unwrap(), "/metrics").await;
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(-1.0)
    };
    let capacity = "edgenode_dns_recursor_cache_capacity";
    assert_eq!(
        value(&format!("{capacity}{{cache=\"responses\"}}")),
        16384.0,
        "{metrics}"
    );
    assert_eq!(
        value(&format!("{capacity}{{cache=\"name_servers\"}}")),
        1024.0
    );
    // As hickory last counted them (its response count lags its inserts by a query or so).
    let entries = value("edgenode_dns_recursor_cache_entries{cache=\"responses\"}");
    assert!((0.0..=16384.0).contains(&entries), "{metrics}");
    let servers = value("edgenode_dns_recursor_cache_entries{cache=\"name_servers\"}");
    assert!((1.0..=1024.0).contains(&servers), "{metrics}");
    assert!(
        value("edgenode_dns_recursor_outgoing_queries_total") >= 3.0,
        "{metrics}"
    );
}

/// The iterative resolver asks in random letter case (0x20, issue 18 finding 8): a root
/// server that records what it is asked sees upper and lower case in one name. Needs port 53
/// on 127.0.0.14, as the private root above.
#[tokio::test]
async fn iterative_queries_randomise_the_case_of_names() {
    if !may_bind_port_53("127.0.0.14") {
        return;
    }
    let root = tokio::net::UdpSocket::bind("127.0.0.14:53").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hints = write_file(
        dir.path(),
        "hints.zone",
        ". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.14\n",
    );
    let config = resolver_config(dir.path(), "allow_servers = [\"127.0.0.0/8\"]\n");
    let resolver = start_resolver(
        &config,
        &["--recursion", "--root-hints", hints.to_str().unwrap()],
    );
    let udp = dns_client(resolver.dns(), false).await;
    let asking = tokio::spawn(async move {
        let _ = ask(&udp, recursive("www.abcdefghijklmnopqrst.", RecordType::A)).await;
    });
    // The root never answers; what it was asked is enough.
    let mut packet = [0u8; 512];
    let (len, _) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        root.recv_from(&mut packet),
    )
    .await
    .expect("the resolver asks the root")
    .unwrap();
    let asked = String::from_utf8_lossy(&packet[12..len]).to_string();
    let letters: String = asked.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    assert!(
        letters
            .to_ascii_lowercase()
            .contains("abcdefghijklmnopqrst"),
        "{asked:?}"
    );
    assert!(
        letters.chars().any(|c| c.is_ascii_uppercase())
            && letters.chars().any(|c| c.is_ascii_lowercase()),
        "the name is asked in one case only: {asked:?}"
    );
    asking.abort();
}

/// An upstream that answers every A query after 150 ms (within the resolver's 300 ms timeout) and counts what it gets.
async fn slow_upstream() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let socket = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        let mut buffer = [0u8; 1500];
        while let Ok((len, src)) = socket.recv_from(&mut buffer).await {
            let Ok(request) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let socket = socket.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let mut response = request.clone();
                response.metadata.message_type = hickory_proto::op::MessageType::Response;
                response.metadata.recursion_available = true;
                let name = request.queries[0].name().clone();
                let a = hickory_proto::rr::rdata::A::new(127, 0, 40, 1);
                response.add_answer(hickory_proto::rr::Record::from_rdata(name, 60, RData::A(a)));
                let _ = socket.send_to(&response.to_vec().unwrap(), src).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn identical_questions_in_flight_go_upstream_once() {
    let (upstream, seen) = slow_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let config = resolver_config(dir.path(), "");
    let upstream = upstream.to_string();
    let resolver = start_resolver(&config, &["--forwarder", &upstream]);
    for response in burst(resolver.dns(), "slow.example.net.", RecordType::A, 50).await {
        assert_eq!(
            first_a(&response).map(|(a, _)| a).as_deref(),
            Some("127.0.40.1")
        );
    }
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    let metrics = http_get(resolver.admin.unwrap(), "/metrics").await;
    // Those that arrived while the fetch was in flight waited on it; any later ones were hits.
    let coalesced = metric(
        &metrics,
        "edgenode_dns_recursion_total{outcome=\"coalesced\"}",
    );
    assert!(coalesced >= 1, "{metrics}");
}
