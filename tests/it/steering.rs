//! DNS steering: a three-node cluster on loopback answers each client with the nodes nearest
//! it, the same over UDP, TCP, HTTPDNS and DoH; a node that stops leaves the answers within a
//! second and comes back when it is up again.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, RecordType};

use crate::dns::http;
use crate::support::{Node, ask, dig, dns_client, edgenode, have_tool, http_request, write_file};

const ZONE: &str = "$ORIGIN steer.test.\n$TTL 300\n\
@    IN SOA ns1 hostmaster 1 3600 600 1209600 60\n\
@    IN NS  ns1\n\
ns1  IN A   127.0.0.1\n\
cdn  IN AAAA ::1\n";

/// `cdn` A: two nodes; `one` A: the nearest node; `cdn` AAAA: no node has IPv6, so the zone
/// file's ::1 answers.
const POLICY: &str = r#"
[[rrset]]
name = "cdn"
type = "A"
pool = "cluster"
count = 2
ttl = 20

[[rrset]]
name = "one"
type = "A"
pool = "cluster"
count = 1

[[rrset]]
name = "cdn"
type = "AAAA"
pool = "cluster"
"#;

/// The regions of the embedded configuration's loopback overrides.
const OVERRIDES: &str = r#"
[[geoip.overrides]]
cidr = "127.0.1.0/24"
country = "CN"
continent = "AS"

[[geoip.overrides]]
cidr = "127.0.2.0/24"
country = "US"
continent = "NA"

[[geoip.overrides]]
cidr = "127.0.3.0/24"
country = "DE"
continent = "EU"
"#;

/// One member of the test cluster: (id, country, continent, steering address).
const MEMBERS: [(&str, &str, &str, &str); 3] = [
    ("asia", "CN", "AS", "127.0.0.21"),
    ("america", "US", "NA", "127.0.0.22"),
    ("europe", "DE", "EU", "127.0.0.23"),
];

/// Client subnets and the node nearest each.
const CLIENTS: [(&str, &str); 3] = [
    ("127.0.1.0", "127.0.0.21"),
    ("127.0.2.0", "127.0.0.22"),
    ("127.0.3.0", "127.0.0.23"),
];

const HEARTBEAT_MS: u64 = 200;
const DOWN_AFTER: u64 = 2;

/// Host `n` of the /24 `subnet` ("127.0.1.0", 9 -> "127.0.1.9").
fn host(subnet: &str, n: u8) -> String {
    let (net, _) = subnet.rsplit_once('.').unwrap();
    format!("{net}.{n}")
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn zones(dir: &Path, policy: &str) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    write_file(&zones, "steer.test.zone", ZONE);
    write_file(&zones, "steer.test.geo.toml", policy);
    zones
}

/// The three nodes' configs, each listing the other two as peers; and their (admin, proxy)
/// addresses, reserved before any node starts so that every config can name them.
fn cluster_configs(dir: &Path) -> Vec<(PathBuf, SocketAddr, SocketAddr)> {
    let zones = zones(dir, POLICY);
    let listen: Vec<(SocketAddr, SocketAddr)> =
        MEMBERS.iter().map(|_| (free_port(), free_port())).collect();
    let mut configs = Vec::new();
    for (i, (id, country, continent, address)) in MEMBERS.iter().enumerate() {
        let mut text = format!(
            "[dns]\nzones = \"{}\"\n\n[httpdns]\nclient_rate = 0\n{OVERRIDES}\n\
             [cluster]\nid = \"{id}\"\nsecret = \"{secret}\"\ncountry = \"{country}\"\ncontinent = \"{continent}\"\n\
             addresses = [\"{address}\"]\nheartbeat_ms = {HEARTBEAT_MS}\n\
             heartbeat_timeout_ms = 150\ndown_after = {DOWN_AFTER}\n",
            zones.display(),
            secret = crate::support::CLUSTER_SECRET,
        );
        for (j, (id, country, continent, address)) in MEMBERS.iter().enumerate() {
            if i != j {
                let (admin, proxy) = listen[j];
                text.push_str(&format!(
                    "\n[[cluster.peers]]\nid = \"{id}\"\ncountry = \"{country}\"\n\
                     continent = \"{continent}\"\naddresses = [\"{address}\"]\n\
                     admin = \"{admin}\"\nproxy = \"{proxy}\"\n"
                ));
            }
        }
        let config = write_file(dir, &format!("{id}.toml"), &text);
        configs.push((config, listen[i].0, listen[i].1));
    }
    configs
}

fn start(config: &(PathBuf, SocketAddr, SocketAddr)) -> Node {
    let (path, admin, proxy) = config;
    Node::start(&[
        "--config",
        path.to_str().unwrap(),
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        &admin.to_string(),
        "--http-listen",
        &proxy.to_string(),
    ])
}

type DnsClient = Client<TokioRuntimeProvider>;

/// A query for `name` from a client in `subnet`/24 (ECS), and the response.
async fn ask_from(client: &DnsClient, name: &str, rtype: RecordType, subnet: &str) -> Message {
    ask(client, from_subnet(name, rtype, subnet)).await
}

fn from_subnet(name: &str, rtype: RecordType, subnet: &str) -> Message {
    crate::support::query_from_subnet(name, rtype, subnet, 24)
}

fn addresses(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

fn scope(message: &Message) -> Option<u8> {
    match message.edns.as_ref()?.option(EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(subnet)) => Some(subnet.scope_prefix()),
        _ => None,
    }
}

/// Calls `check` every 25 ms until it passes; panics with its last complaint after `limit`.
/// Returns how long it took.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        let outcome = check().await;
        match outcome {
            Ok(()) => return start.elapsed(),
            Err(why) if start.elapsed() > limit => {
                panic!("{what}: not within {limit:?}: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

/// Every node answers every client with its nearest node first and `count` = 2 nodes.
async fn all_nearest_first(clients: &[DnsClient]) -> Result<(), String> {
    for (n, client) in clients.iter().enumerate() {
        for (subnet, nearest) in CLIENTS {
            let got = addresses(&ask_from(client, "cdn.steer.test.", RecordType::A, subnet).await);
            if got.len() != 2 || got[0] != nearest {
                return Err(format!("node {n} answers {subnet}/24 with {got:?}"));
            }
        }
    }
    Ok(())
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, hyper::HeaderMap, bytes::Bytes) {
    http_request(addr, "GET", path, &[], Vec::new()).await
}

#[tokio::test]
async fn clients_get_their_nearest_healthy_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let configs = cluster_configs(dir.path());
    let mut nodes: Vec<Option<Node>> = configs.iter().map(|c| Some(start(c))).collect();
    let live = |nodes: &[Option<Node>]| -> Vec<SocketAddr> {
        nodes.iter().flatten().map(|n| n.dns()).collect()
    };
    let mut clients = Vec::new();
    for addr in live(&nodes) {
        clients.push(dns_client(addr, false).await);
    }
    // Peers start down and come up with their first answered heartbeat.
    wait_for(
        "every node sees the cluster",
        Duration::from_secs(10),
        || all_nearest_first(&clients),
    )
    .await;

    // Scope /24 (the override that located the client), TTL 20, and the same two nodes on
    // every node of the cluster.
    for (subnet, _) in CLIENTS {
        let mut answers = Vec::new();
        for client in &clients {
            let response = ask_from(client, "cdn.steer.test.", RecordType::A, subnet).await;
            assert_eq!(scope(&response), Some(24), "{response:?}");
            assert!(response.answers.iter().all(|r| r.ttl == 20), "{response:?}");
            answers.push(addresses(&response));
        }
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
        let one = ask_from(&clients[0], "one.steer.test.", RecordType::A, subnet).await;
        assert_eq!(addresses(&one), answers[0][..1], "count = 1: the nearest");
        // No node has IPv6: the zone file's AAAA, its TTL capped at the pool's.
        let v6 = ask_from(&clients[0], "cdn.steer.test.", RecordType::AAAA, subnet).await;
        assert_eq!(addresses(&v6), ["::1"]);
        assert_eq!((v6.answers[0].ttl, scope(&v6)), (20, Some(0)));
    }

    // A client's source address locates it as well as ECS does.
    if have_tool("dig") {
        let node = nodes[0].as_ref().unwrap();
        for (subnet, nearest) in CLIENTS {
            let source = host(subnet, 1);
            let short = dig(
                node.dns(),
                &["-b", &source, "+short", "cdn.steer.test", "A"],
            );
            assert_eq!(
                short.lines().next(),
                Some(nearest),
                "dig -b {source}: {short}"
            );
        }
    }

    same_answer_everywhere(nodes[0].as_ref().unwrap()).await;

    // Europe stops: within a few heartbeats it leaves the survivors' answers.
    drop(nodes[2].take());
    let survivors = &clients[..2];
    // A few heartbeats, and a margin for a loaded machine.
    let bound = Duration::from_millis(HEARTBEAT_MS * (DOWN_AFTER + 1));
    let limit = bound + Duration::from_millis(1400);
    let gone = wait_for("europe leaves the answers", limit, move || async move {
        for client in survivors {
            for (subnet, _) in CLIENTS {
                let got =
                    addresses(&ask_from(client, "cdn.steer.test.", RecordType::A, subnet).await);
                if got.len() != 2 || got.contains(&"127.0.0.23".to_string()) {
                    return Err(format!("{subnet}/24 gets {got:?}"));
                }
            }
        }
        Ok(())
    })
    .await;
    eprintln!("europe left the answers {gone:?} after it stopped (expected about {bound:?})");
    // Europeans now get the nearest of the rest, still two nodes.
    let european = ask_from(&survivors[0], "cdn.steer.test.", RecordType::A, "127.0.3.0").await;
    assert_eq!(addresses(&european).len(), 2);

    // Europe starts again on the same addresses: it is back within a heartbeat or two.
    nodes[2] = Some(start(&configs[2]));
    clients[2] = dns_client(nodes[2].as_ref().unwrap().dns(), false).await;
    let back = wait_for("europe is back", Duration::from_secs(10), || {
        all_nearest_first(&clients)
    })
    .await;
    eprintln!("europe was back in every answer {back:?} after it started");
}

/// UDP, TCP, DNSPod HTTPDNS, JSON DoH and RFC 8484 DoH give one client subnet the same nodes.
async fn same_answer_everywhere(node: &Node) {
    let udp = dns_client(node.dns(), false).await;
    let tcp = dns_client(node.dns_tcp[0], true).await;
    let httpdns = node.httpdns.unwrap();
    for (subnet, _) in CLIENTS {
        let over_udp = addresses(&ask_from(&udp, "cdn.steer.test.", RecordType::A, subnet).await);
        let over_tcp = addresses(&ask_from(&tcp, "cdn.steer.test.", RecordType::A, subnet).await);

        let client_ip = host(subnet, 9);
        let path = format!("/d?dn=cdn.steer.test&ip={client_ip}&ttl=1");
        let (status, _, body) = http_get(httpdns, &path).await;
        assert_eq!(status, 200);
        let body = String::from_utf8_lossy(&body).into_owned();
        let (ips, ttl) = body.split_once(',').unwrap_or((&body, ""));
        let dnspod: Vec<String> = ips.split(';').map(String::from).collect();
        assert_eq!(ttl, "20", "{body}");

        let path = format!("/resolve?name=cdn.steer.test&type=A&edns_client_subnet={subnet}/24");
        let (status, _, body) = http_get(httpdns, &path).await;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let doh_json: Vec<String> = json["Answer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["data"].as_str().unwrap().to_string())
            .collect();

        let wire = from_subnet("cdn.steer.test.", RecordType::A, subnet)
            .to_vec()
            .unwrap();
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&wire);
        let (status, headers, body) = http_get(httpdns, &format!("/dns-query?dns={encoded}")).await;
        assert_eq!(status, 200);
        assert_eq!(headers["cache-control"], "max-age=20");
        let rfc8484 = addresses(&Message::from_vec(&body).unwrap());

        assert_eq!(over_udp.len(), 2);
        for (how, got) in [
            ("tcp", &over_tcp),
            ("/d", &dnspod),
            ("/resolve", &doh_json),
            ("/dns-query", &rfc8484),
        ] {
            assert_eq!(got, &over_udp, "{how} for {subnet}/24");
        }
    }
}

/// A node on its own answers with its own address; a broken pool entry fails `check` and a
/// reload with its file and line, and the old policy keeps answering.
#[tokio::test]
async fn a_lone_node_steers_to_itself_and_bad_pools_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let zones = zones(dir.path(), POLICY);
    let text = format!(
        "[dns]\nzones = \"{}\"\n{OVERRIDES}\n[cluster]\naddresses = [\"127.0.0.9\"]\n",
        zones.display()
    );
    let config = write_file(dir.path(), "lone.toml", &text);
    let node = Node::with_config(&config);
    let udp = dns_client(node.dns(), false).await;
    let cdn = || ask_from(&udp, "cdn.steer.test.", RecordType::A, "127.0.2.0");
    assert_eq!(addresses(&cdn().await), ["127.0.0.9"]);
    let metrics = http(node.admin.unwrap(), "GET", "/metrics", None).await.1;
    assert!(
        metrics.contains("edgenode_dns_geo_decisions_total{region=\"pool:cluster\"} 1"),
        "{metrics}"
    );

    let broken = "[[rrset]]\nname = \"cdn\"\ntype = \"A\"\npool = \"cluster\"\n\n\
                  [[rrset]]\nname = \"one\"\ntype = \"TXT\"\npool = \"edge\"\ncount = 0\n";
    write_file(&zones, "steer.test.geo.toml", broken);
    let (status, body) = http(node.admin.unwrap(), "POST", "/admin/reload", None).await;
    assert_eq!(status, 422, "{body}");
    for expected in [
        "steer.test.geo.toml:6: rrset one TXT: pool: unknown pool \\\"edge\\\"",
        "steer.test.geo.toml:6: rrset one TXT: type: a pool answers A or AAAA, not TXT",
        "steer.test.geo.toml:6: rrset one TXT: count: must be at least 1",
    ] {
        assert!(body.contains(expected), "{expected} not in {body}");
    }
    // The old policy still answers `one`.
    let one = ask_from(&udp, "one.steer.test.", RecordType::A, "127.0.2.0").await;
    assert_eq!(addresses(&one), ["127.0.0.9"]);

    let (ok, _, stderr) = edgenode(&["check", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("steer.test.geo.toml:6: rrset one TXT: pool: unknown pool \"edge\""),
        "{stderr}"
    );

    // Without any node address (and no records in the zone file): NODATA.
    let text = format!("[dns]\nzones = \"{}\"\n", zones.display());
    write_file(&zones, "steer.test.geo.toml", POLICY);
    let bare = write_file(dir.path(), "bare.toml", &text);
    drop(node);
    let node = Node::with_config(&bare);
    let udp = dns_client(node.dns(), false).await;
    let response = ask_from(&udp, "cdn.steer.test.", RecordType::A, "127.0.2.0").await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty(), "{response:?}");
    assert_eq!(response.authorities.len(), 1, "the SOA of a NODATA answer");
}
