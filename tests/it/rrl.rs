//! DNS abuse. Response rate limiting: a flood from one source (as a spoofed amplification attack
//! looks to the node) is answered only up to its budget, some of the rest truncated so a real
//! client would retry over TCP; another source and TCP are served all along. Random names
//! under a wildcard, or random names that do not exist, are limited like one name, and only
//! under their wildcard or zone. TCP: connections beyond `dns.tcp_max_connections` are closed
//! at once, idle ones after `dns.tcp_idle_timeout`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::BinEncodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::support::{Node, ask, dns_client, query, write_file};

/// A node serving the zones in `zones`, limited to 20 responses a second per network and
/// class, with a one-second burst.
fn rrl_node(zones: &Path) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[dns.rrl]\nresponses_per_second = 20\nwindow = 1\nslip = 2\nexempt = []\n",
        zones.display()
    );
    let config = write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    std::mem::forget(dir);
    node
}

/// The repository's zones (example.test has the wildcard `*.img`), and other.test with the
/// wildcard `*.w`.
fn two_zones() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let example = crate::support::repo_root().join("zones/example.test.zone");
    std::fs::copy(example, dir.path().join("example.test.zone")).unwrap();
    let other = "$ORIGIN other.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 60\n@ NS ns\n\
                 ns A 127.0.0.1\n*.w A 127.0.20.1\n";
    write_file(dir.path(), "other.test.zone", other);
    dir
}

/// What came back for a flood: full responses (and how many of them were NXDOMAIN), and
/// truncated ones (TC=1, no records).
#[derive(Debug, Default)]
struct Tally {
    full: usize,
    nxdomain: usize,
    truncated: usize,
}

/// Sends an A query for each of `names` from `source`, as fast as it can, and tallies the
/// responses that come back within a short wait by name (the query's ID is its index).
async fn flood(server: SocketAddr, source: &str, names: &[String]) -> Vec<(String, Tally)> {
    let socket = UdpSocket::bind((source, 0)).await.unwrap();
    for (id, name) in names.iter().enumerate() {
        let mut message = query(name, RecordType::A, Some(1232));
        message.metadata.id = u16::try_from(id).unwrap();
        socket
            .send_to(&message.to_bytes().unwrap(), server)
            .await
            .unwrap();
    }
    let mut tallies: Vec<(String, Tally)> = Vec::new();
    let mut buffer = vec![0u8; 4096];
    while let Ok(Ok(len)) =
        tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buffer)).await
    {
        let response = Message::from_vec(&buffer[..len]).unwrap();
        let name = &names[usize::from(response.metadata.id)];
        let at = match tallies.iter().position(|(n, _)| n == name) {
            Some(at) => at,
            None => {
                tallies.push((name.clone(), Tally::default()));
                tallies.len() - 1
            }
        };
        let tally = &mut tallies[at].1;
        if response.metadata.truncation {
            assert!(response.answers.is_empty());
            tally.truncated += 1;
        } else {
            tally.full += 1;
            if response.metadata.response_code == ResponseCode::NXDomain {
                tally.nxdomain += 1;
            }
        }
    }
    tallies
}

/// The tallies of the names `pick` accepts, summed.
fn total(tallies: &[(String, Tally)], pick: impl Fn(&str) -> bool) -> Tally {
    let mut sum = Tally::default();
    for (_, tally) in tallies.iter().filter(|(name, _)| pick(name)) {
        sum.full += tally.full;
        sum.nxdomain += tally.nxdomain;
        sum.truncated += tally.truncated;
    }
    sum
}

/// 20 per second with a one-second burst: a flood of 400 that lasts well under two seconds
/// gets 20 to 60 full answers, and every second limited response slips out truncated (some
/// may be lost in the kernel).
fn assert_limited(tally: &Tally) {
    assert!((20..=60).contains(&tally.full), "{tally:?}");
    assert!((100..=200).contains(&tally.truncated), "{tally:?}");
}

#[tokio::test]
async fn a_flooding_source_is_limited_and_others_are_still_served() {
    let node = rrl_node(&crate::support::repo_root().join("zones"));
    let www = vec!["www.example.test.".to_string(); 400];
    assert_limited(&total(&flood(node.dns(), "127.0.0.5", &www).await, |_| {
        true
    }));

    // Another network was never limited.
    let others = total(&flood(node.dns(), "127.0.1.5", &www[..10]).await, |_| true);
    assert_eq!(others.full, 10);
    // The flooded network itself still gets answers over TCP.
    let tcp_server: SocketAddr = node.dns();
    let client = dns_client(tcp_server, true).await;
    let response = ask(&client, query("www.example.test.", RecordType::A, None)).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(!response.answers.is_empty());

    let metrics =
        crate::support::http_request(node.admin.unwrap(), "GET", "/metrics", &[], Vec::new())
            .await
            .2;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("edgenode_dns_rrl_total{action=\"dropped\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("edgenode_dns_rrl_total{action=\"slipped\"}"));
}

/// Spoofed queries for random names under a wildcard each used to get a budget of their own;
/// they are counted under the wildcard's owner now, as by NSD and BIND, so a flood of them is
/// limited like a flood of one name. Each name is asked twice, so half the flood is answered
/// from the answer cache, which must count as the slow path does. Names under another
/// wildcard, asked amid the flood from the same network, are answered in full.
#[tokio::test]
async fn random_names_under_a_wildcard_are_limited_like_one_name() {
    let zones = two_zones();
    let node = rrl_node(zones.path());
    let mut names = Vec::new();
    for i in 0..400 {
        names.push(format!("r{}.img.example.test.", i % 200));
        if i % 40 == 0 {
            names.push(format!("o{i}.w.other.test."));
        }
    }
    let tallies = flood(node.dns(), "127.0.0.7", &names).await;
    assert_limited(&total(&tallies, |n| n.ends_with(".img.example.test.")));
    let other = total(&tallies, |n| n.ends_with(".w.other.test."));
    assert_eq!((other.full, other.nxdomain), (10, 0), "{other:?}");
}

/// NXDOMAIN answers are counted per zone, as by NSD and BIND: a flood of random names that do
/// not exist in one zone is limited, while names that do not exist in another zone, asked
/// amid it from the same network, are answered in full (they used to share one budget).
#[tokio::test]
async fn random_nxdomain_names_spend_only_their_zones_budget() {
    let zones = two_zones();
    let node = rrl_node(zones.path());
    let mut names = Vec::new();
    for i in 0..400 {
        names.push(format!("nx{i}.other.test."));
        if i % 40 == 0 {
            names.push(format!("nx{i}.example.test."));
        }
    }
    let tallies = flood(node.dns(), "127.0.0.8", &names).await;
    assert_limited(&total(&tallies, |n| n.ends_with(".other.test.")));
    let example = total(&tallies, |n| n.ends_with(".example.test."));
    assert_eq!((example.full, example.nxdomain), (10, 10), "{example:?}");
}

/// One query over `stream` (RFC 1035 4.2.2 framing) and its answer's RCODE.
async fn tcp_ask(stream: &mut TcpStream, id: u16) -> ResponseCode {
    let mut message = query("www.example.test.", RecordType::A, None);
    message.metadata.id = id;
    let bytes = message.to_bytes().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend(bytes);
    stream.write_all(&framed).await.unwrap();
    let len = stream.read_u16().await.expect("an answer");
    let mut answer = vec![0u8; usize::from(len)];
    stream.read_exact(&mut answer).await.unwrap();
    let answer = Message::from_vec(&answer).unwrap();
    assert_eq!(answer.metadata.id, id);
    answer.metadata.response_code
}

/// Whether the server closes `stream` within `limit` (end of stream or a reset).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(limit, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn tcp_connections_are_limited_and_idle_ones_closed() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\ntcp_max_connections = 2\ntcp_idle_timeout = 1\n",
        crate::support::repo_root().join("zones").display()
    );
    let node = Node::with_config(&write_file(dir.path(), "edgenode.toml", &text));
    let mut busy = TcpStream::connect(node.dns()).await.unwrap();
    let mut idle = TcpStream::connect(node.dns()).await.unwrap();
    assert_eq!(tcp_ask(&mut busy, 1).await, ResponseCode::NoError);
    assert_eq!(tcp_ask(&mut idle, 2).await, ResponseCode::NoError);
    // Both places are taken: a third connection is closed at once, unanswered.
    let mut third = TcpStream::connect(node.dns()).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(1)).await);

    // A query every 400 ms keeps a connection open past the idle timeout; the silent one is
    // closed after it.
    let idle_from = Instant::now();
    for id in 3..9 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(tcp_ask(&mut busy, id).await, ResponseCode::NoError);
    }
    assert!(closed_within(&mut idle, Duration::from_millis(100)).await);
    assert!(idle_from.elapsed() >= Duration::from_secs(1));

    // Its place is free again; the busy one, once silent, goes the same way.
    let mut fresh = TcpStream::connect(node.dns()).await.unwrap();
    assert_eq!(tcp_ask(&mut fresh, 10).await, ResponseCode::NoError);
    assert!(closed_within(&mut busy, Duration::from_secs(3)).await);
}
