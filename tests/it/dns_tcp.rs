//! DNS over TCP against clients that do not play along: one network that opens connections
//! and never reads its answers holds at most its share of the connections, and loses them
//! after the idle timeout; a client elsewhere is answered throughout (issue 18, finding 1).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Node, dig, have_tool, write_file};

/// A zone whose TXT answer is about 4 KiB, so that unread answers fill socket buffers fast.
fn big_zone(dir: &std::path::Path) {
    let mut zone = String::from(
        "$ORIGIN big.test.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n",
    );
    for i in 0..20 {
        zone.push_str(&format!("big TXT \"{i:02}{}\"\n", "x".repeat(200)));
    }
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    write_file(&dir.join("zones"), "big.test.zone", &zone);
}

/// A TCP DNS query for big.test TXT, framed (RFC 1035 4.2.2).
fn query(id: u16) -> Vec<u8> {
    let mut message = vec![];
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["big", "big", "test"] {
        message.push(label.len() as u8);
        message.extend_from_slice(label.as_bytes());
    }
    message.extend_from_slice(&[0, 0, 16, 0, 1]);
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&message);
    framed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_cannot_take_tcp_from_everyone() {
    if !have_tool("dig") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    big_zone(dir.path());
    let config = write_file(
        dir.path(),
        "edgenode.toml",
        &format!(
            "[dns]\nzones = \"{}\"\ntcp_max_connections = 40\ntcp_max_connections_per_prefix = 8\n\
             tcp_idle_timeout = 2\n",
            dir.path().join("zones").display()
        ),
    );
    let node = Node::with_config(&config);
    let server = node.dns_tcp[0];
    // 40 connections from 127.0.0.1 (one /24), each with 2,000 pipelined queries and no read.
    let pipelined: Vec<u8> = (0..2000).flat_map(query).collect();
    let mut hogs = Vec::new();
    for _ in 0..40 {
        let Ok(mut stream) = TcpStream::connect(server).await else {
            continue;
        };
        let _ = stream.write_all(&pipelined).await;
        hogs.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another network (127.0.1.1) is still answered over TCP.
    let answer = tokio::task::spawn_blocking(move || {
        dig(server, &["+tcp", "-b", "127.0.1.1", "big.big.test", "TXT"])
    })
    .await
    .unwrap();
    assert!(answer.contains("status: NOERROR"), "{answer}");
    assert!(answer.contains("big.big.test."), "{answer}");
    // The hogs the node took are closed once their answers stay unread past the idle timeout:
    // reading one to its end finds the end within a few seconds.
    let mut closed = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    for mut hog in hogs {
        let mut sink = vec![0u8; 1 << 20];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, hog.read(&mut sink)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(_)) => {}
                Err(_) => break,
            }
        }
    }
    assert_eq!(
        closed, 40,
        "every hog was closed: refused at once, or after the idle timeout"
    );
}
