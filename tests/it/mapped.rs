//! IPv4 clients of a dual-stack `[::]` listener arrive as `::ffff:a.b.c.d`; they must be their
//! IPv4 addresses for every rule (issue 18 finding 4): here RRL's exempt list, which names
//! 127.0.0.0/8 and would otherwise not match, so a local client would be rate limited.

use std::time::Duration;

use crate::support::{Node, repo_root, write_file};

/// A UDP query for example.test SOA with id `id`.
fn query(id: u16) -> Vec<u8> {
    let mut message = id.to_be_bytes().to_vec();
    message.extend_from_slice(&[0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["example", "test"] {
        message.push(label.len() as u8);
        message.extend_from_slice(label.as_bytes());
    }
    message.extend_from_slice(&[0, 0, 6, 0, 1]);
    message
}

#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_is_its_ipv4_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "edgenode.toml",
        &format!(
            "[dns]\nzones = \"{}\"\n[dns.rrl]\nresponses_per_second = 2\nwindow = 1\nslip = 0\n\
             exempt = [\"127.0.0.0/8\"]\n",
            repo_root().join("zones").display()
        ),
    );
    let config = config.to_str().unwrap().to_string();
    let node = Node::start(&[
        "--config",
        &config,
        "--dns-listen",
        "[::]:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let port = node.dns_udp[0].port();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(("127.0.0.1", port)).await.unwrap();
    for id in 0..30u16 {
        socket.send(&query(id)).await.unwrap();
    }
    let mut answered = 0;
    let mut buffer = [0u8; 2048];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buffer)).await
    {
        answered += 1;
    }
    assert_eq!(
        answered, 30,
        "an exempt IPv4 client is not rate limited on [::]"
    );
}
