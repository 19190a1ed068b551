//! DNS abuse. Response rate limiting: a flood from one source (as a spoofed amplification attack
//! looks to the node) is answered only up to its budget, some of the rest truncated so a real
//! client would retry over TCP; another source and TCP are served all along. TCP: connections
//! beyond `dns.tcp_max_connections` are closed at once, idle ones after `dns.tcp_idle_timeout`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::BinEncodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::support::{Node, ask, dns_client, query, write_file};

fn rrl_node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[dns.rrl]\nresponses_per_second = 20\nwindow = 1\nslip = 2\nexempt = []\n",
        crate::support::repo_root().join("zones").display()
    );
    let config = write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    std::mem::forget(dir);
    node
}

/// Sends `count` queries for www.example.test from `source` as fast as it can and counts
/// (answers, truncated answers) that come back within a short wait.
async fn flood(server: SocketAddr, source: &str, count: u16) -> (usize, usize) {
    let socket = UdpSocket::bind((source, 0)).await.unwrap();
    let mut message = query("www.example.test.", RecordType::A, Some(1232));
    for id in 0..count {
        message.metadata.id = id;
        socket
            .send_to(&message.to_bytes().unwrap(), server)
            .await
            .unwrap();
    }
    let (mut answers, mut truncated) = (0, 0);
    let mut buffer = vec![0u8; 4096];
    while let Ok(Ok(len)) =
        tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buffer)).await
    {
        let response = Message::from_vec(&buffer[..len]).unwrap();
        if response.metadata.truncation {
            assert!(response.answers.is_empty());
            truncated += 1;
        } else {
            answers += 1;
        }
    }
    (answers, truncated)
}

#[tokio::test]
async fn a_flooding_source_is_limited_and_others_are_still_served() {
    let node = rrl_node();
    let (answers, truncated) = flood(node.dns(), "127.0.0.5", 400).await;
    // 20 per second with a one-second burst: the flood lasts well under two seconds.
    assert!((20..=60).contains(&answers), "{answers} full answers");
    // Every second limited response slips out truncated (some may be lost in the kernel).
    assert!((100..=200).contains(&truncated), "{truncated} truncated");

    // Another network was never limited.
    let (others, _) = flood(node.dns(), "127.0.1.5", 10).await;
    assert_eq!(others, 10);
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
