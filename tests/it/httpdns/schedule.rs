//! Scheduling (`/{account}/ss`) in a two-node cluster: each client is sent to the healthy nodes
//! nearest it, nearest first, as DNS steering would answer it; a node that stops leaves the
//! list. And the per-client budget: an IPv6 /64 is one client, an IPv4-mapped address is the
//! IPv4 address.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Node, http_request, repo_root, write_file};

/// (id, country, continent, steering address).
const MEMBERS: [(&str, &str, &str, &str); 2] = [
    ("asia", "CN", "AS", "127.0.0.21"),
    ("america", "US", "NA", "127.0.0.22"),
];

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn config(dir: &std::path::Path, me: usize, listen: &[(SocketAddr, SocketAddr)]) -> String {
    let (id, country, continent, address) = MEMBERS[me];
    let mut text = format!(
        "[dns]\nzones = \"{}\"\n\n[httpdns]\nclient_rate = 0\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
         [[httpdns.accounts]]\nid = \"139450\"\n\n\
         [[geoip.overrides]]\ncidr = \"127.0.1.0/24\"\ncountry = \"CN\"\ncontinent = \"AS\"\n\
         [[geoip.overrides]]\ncidr = \"127.0.2.0/24\"\ncountry = \"US\"\ncontinent = \"NA\"\n\n\
         [cluster]\nid = \"{id}\"\nsecret = \"{secret}\"\ncountry = \"{country}\"\ncontinent = \"{continent}\"\n\
         addresses = [\"{address}\"]\nheartbeat_ms = 200\nheartbeat_timeout_ms = 150\ndown_after = 2\n",
        repo_root().join("zones").display(),
        secret = crate::support::CLUSTER_SECRET,
    );
    for (j, (id, country, continent, address)) in MEMBERS.iter().enumerate() {
        if j != me {
            let (admin, proxy) = listen[j];
            text.push_str(&format!(
                "\n[[cluster.peers]]\nid = \"{id}\"\ncountry = \"{country}\"\n\
                 continent = \"{continent}\"\naddresses = [\"{address}\"]\n\
                 admin = \"{admin}\"\nproxy = \"{proxy}\"\n"
            ));
        }
    }
    write_file(dir, &format!("{id}.toml"), &text);
    dir.join(format!("{id}.toml")).display().to_string()
}

/// The scheduled servers' addresses (without the port) for a client at `client`.
async fn scheduled(addr: SocketAddr, client: &str) -> (Vec<String>, Value) {
    let forwarded = [("x-forwarded-for", client)];
    let path = "/139450/ss?region=global&platform=linux&sdk_version=alibabacloud-httpdns-c-sdk-2.2.5&sid=ab12";
    let (status, _, body) = http_request(addr, "GET", path, &forwarded, Vec::new()).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).unwrap();
    let hosts = body["service_ip"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().rsplit_once(':').unwrap().0.to_string())
        .collect();
    (hosts, body)
}

async fn wait_for_servers(addr: SocketAddr, client: &str, expected: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        let (hosts, body) = scheduled(addr, client).await;
        if hosts == expected {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{client}: {hosts:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn each_client_is_scheduled_to_its_nearest_healthy_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let listen: Vec<_> = MEMBERS.iter().map(|_| (free_port(), free_port())).collect();
    let start = |me: usize| {
        let path = config(dir.path(), me, &listen);
        let (admin, proxy) = (listen[me].0.to_string(), listen[me].1.to_string());
        Node::start(&[
            "--config",
            &path,
            "--dns-listen",
            "127.0.0.1:0",
            "--admin-listen",
            &admin,
            "--http-listen",
            &proxy,
        ])
    };
    let asia = start(0);
    let america = start(1);
    let addr = asia.httpdns.unwrap();
    let body = wait_for_servers(addr, "127.0.2.5", &["127.0.0.22", "127.0.0.21"]).await;
    // Each entry carries this node's HTTPDNS port (cluster nodes listen alike).
    assert_eq!(
        body["service_ip"][0],
        format!("127.0.0.22:{}", addr.port()).as_str()
    );
    assert_eq!(body["service_ipv6"], serde_json::json!([]));
    wait_for_servers(addr, "127.0.1.5", &["127.0.0.21", "127.0.0.22"]).await;
    // An IPv4-mapped client is the IPv4 client.
    wait_for_servers(addr, "::ffff:127.0.2.5", &["127.0.0.22", "127.0.0.21"]).await;

    drop(america);
    wait_for_servers(addr, "127.0.2.5", &["127.0.0.21"]).await;
}

#[tokio::test]
async fn an_ipv6_prefix_is_one_client_and_mapped_addresses_are_ipv4() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[httpdns]\nclient_rate = 1\nclient_burst = 1\n\
         trusted_proxies = [\"127.0.0.1/32\"]\n",
        repo_root().join("zones").display()
    );
    let node = Node::with_config(&write_file(dir.path(), "limited.toml", &text));
    let addr = node.httpdns.unwrap();
    let status = |client: &'static str| async move {
        let forwarded = [("x-forwarded-for", client)];
        http_request(
            addr,
            "GET",
            "/d?dn=www.example.test",
            &forwarded,
            Vec::new(),
        )
        .await
        .0
    };
    assert_eq!(status("2001:db8:1:2::1").await, 200);
    assert_eq!(status("2001:db8:1:2:ffff::9").await, 429, "same /64");
    assert_eq!(status("2001:db8:1:3::1").await, 200, "another /64");
    assert_eq!(status("192.0.2.5").await, 200);
    assert_eq!(
        status("::ffff:192.0.2.5").await,
        429,
        "the same IPv4 client"
    );
}
