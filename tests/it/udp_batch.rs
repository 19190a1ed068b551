//! UDP under bursts: many queries from several sources arrive together, so the server takes
//! them in batches (recvmmsg/sendmmsg on Linux, `dns.udp_batch`); every answer must still go
//! to the source that asked, with its ID and question. The same holds with batching off, and
//! on an IPv6 listener.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::BinEncodable;
use tokio::net::UdpSocket;

use crate::support::{Node, query, write_file};

/// A node serving `zones/` with `dns.udp_batch` as given, DNS on `listen`.
fn node(udp_batch: bool, listen: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\nudp_batch = {udp_batch}\n",
        crate::support::repo_root().join("zones").display()
    );
    let config = write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::start(&[
        "--config",
        config.to_str().unwrap(),
        "--dns-listen",
        listen,
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    std::mem::forget(dir); // as in rrl.rs: the config outlives this function
    node
}

/// The `n`th query of a burst: (name, type, expected rcode), names unique per query so an
/// answer mixed up with another's shows in its question. Every 16th is a response, which
/// the server drops (`None`).
fn nth_query(n: u16) -> (String, RecordType, Option<ResponseCode>) {
    match n % 16 {
        15 => (format!("dropped{n}.example.test."), RecordType::A, None),
        k if k % 4 == 0 => (
            format!("Q{n}.Nothing.example.test."),
            RecordType::A,
            Some(ResponseCode::NXDomain),
        ),
        k if k % 4 == 1 => (
            format!("x{n}.IMG.example.test."),
            RecordType::A,
            Some(ResponseCode::NoError),
        ),
        k if k % 4 == 2 => (
            "WWW.example.test.".into(),
            RecordType::A,
            Some(ResponseCode::NoError),
        ),
        _ => (
            format!("n{n}.outside.invalid."),
            RecordType::A,
            Some(ResponseCode::Refused),
        ),
    }
}

/// Sends `per_source` queries from each of `sources` (bound to port 0), interleaved and
/// without waiting, then checks that each source gets exactly the answers to its own queries.
async fn burst(server: SocketAddr, sources: &[&str], per_source: u16) {
    let mut sockets = Vec::new();
    for source in sources {
        sockets.push(UdpSocket::bind((*source, 0)).await.unwrap());
    }
    // Per socket: ID -> (name, type, rcode) still expected.
    let mut expected: Vec<HashMap<u16, (String, RecordType, ResponseCode)>> =
        vec![HashMap::new(); sockets.len()];
    for i in 0..per_source {
        for (s, socket) in sockets.iter().enumerate() {
            let id = s as u16 * per_source + i;
            let (name, rtype, rcode) = nth_query(id);
            let mut message = query(&name, rtype, Some(1232));
            message.metadata.id = id;
            if rcode.is_none() {
                message.metadata.message_type = hickory_proto::op::MessageType::Response;
            }
            let bytes = message.to_bytes().unwrap();
            socket.send_to(&bytes, server).await.unwrap();
            if let Some(rcode) = rcode {
                expected[s].insert(id, (name, rtype, rcode));
            }
        }
    }
    let total: usize = expected.iter().map(HashMap::len).sum();
    let mut answered = 0;
    for (s, socket) in sockets.iter().enumerate() {
        let mut buffer = vec![0u8; 4096];
        while !expected[s].is_empty() {
            let len = match tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buffer))
                .await
            {
                Ok(received) => received.unwrap(),
                Err(_) => panic!(
                    "source {}: {} answers missing after {answered} of {total}",
                    sources[s],
                    expected[s].len()
                ),
            };
            let response = Message::from_vec(&buffer[..len]).unwrap();
            let id = response.metadata.id;
            let Some((name, rtype, rcode)) = expected[s].remove(&id) else {
                panic!(
                    "source {}: unexpected or repeated answer, ID {id}",
                    sources[s]
                );
            };
            assert_eq!(response.queries.len(), 1, "ID {id}");
            assert_eq!(response.queries[0].name().to_ascii(), name, "ID {id}");
            assert_eq!(response.queries[0].query_type(), rtype, "ID {id}");
            assert_eq!(response.metadata.response_code, rcode, "ID {id} {name}");
            assert!(!response.metadata.truncation, "ID {id}");
            answered += 1;
        }
    }
    assert_eq!(answered, total);
    // Nothing more arrives: dropped queries stay unanswered, none is answered twice.
    for socket in &sockets {
        let mut buffer = vec![0u8; 4096];
        let extra = tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buffer));
        assert!(extra.await.is_err(), "an extra datagram arrived");
    }
}

const SOURCES: [&str; 8] = [
    "127.0.0.1",
    "127.0.0.1",
    "127.0.4.1",
    "127.0.4.2",
    "127.0.4.3",
    "127.0.5.1",
    "127.0.6.1",
    "127.0.7.1",
];

#[tokio::test]
async fn a_burst_from_many_sources_gets_every_answer_to_its_sender() {
    let node = node(true, "127.0.0.1:0");
    burst(node.dns(), &SOURCES, 64).await;
}

#[tokio::test]
async fn a_burst_is_answered_alike_with_batching_off() {
    let node = node(false, "127.0.0.1:0");
    burst(node.dns(), &SOURCES, 64).await;
}

#[tokio::test]
async fn ipv6_listener_answers_bursts() {
    let node = node(true, "[::1]:0");
    assert!(node.dns().is_ipv6());
    burst(node.dns(), &["::1", "::1", "::1"], 100).await;
}
