//! Response rate limiting: a flood from one source (as a spoofed amplification attack looks to
//! the node) is answered only up to its budget, some of the rest truncated so a real client
//! would retry over TCP; another source and TCP are served all along.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::BinEncodable;
use tokio::net::UdpSocket;

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
