//! Three nodes on 127.0.0.21-23 in one cluster: heartbeats, the owner of each object fetching
//! it from the origin once for the whole cluster, and the origin used directly when the owner
//! is gone.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::cluster_auth::Heartbeat;
use crate::origin::{Origin, cache_status};
use crate::support::{Node, http_request, write_file};

/// One node of a test cluster and where it listens.
pub(crate) struct Member {
    pub node: Node,
    pub id: String,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
}

/// A free port on `ip` (bound, read, released: another process could take it in between,
/// which on a test machine is rare enough).
fn free_port(ip: &str) -> u16 {
    let listener = std::net::TcpListener::bind((ip, 0)).expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Starts `count` nodes (ids node1.., addresses 127.0.0.21..) that list each other as peers,
/// in front of `origin`, with `extra` appended to each `[cluster]` section, and waits until
/// every node sees every peer up.
pub(crate) fn start_cluster(count: usize, origin: &str, extra: &str) -> Vec<Member> {
    start_cluster_with(count, origin, "", extra)
}

/// `start_cluster` with `proxy` appended to each node's `[proxy]` section as well.
pub(crate) fn start_cluster_with(
    count: usize,
    origin: &str,
    proxy: &str,
    extra: &str,
) -> Vec<Member> {
    let dir = tempfile::tempdir().expect("tempdir");
    let ips: Vec<String> = (0..count).map(|i| format!("127.0.0.{}", 21 + i)).collect();
    let proxies: Vec<SocketAddr> = ips
        .iter()
        .map(|ip| format!("{ip}:{}", free_port(ip)).parse().unwrap())
        .collect();
    let admins: Vec<SocketAddr> = ips
        .iter()
        .map(|ip| format!("{ip}:{}", free_port(ip)).parse().unwrap())
        .collect();
    let regions = [("CN", "AS"), ("US", "NA"), ("DE", "EU")];
    let mut members = Vec::new();
    for i in 0..count {
        let (country, continent) = regions[i % regions.len()];
        let mut text = format!(
            "[dns]\nzones = \"{zones}\"\n[proxy]\norigin = \"{origin}\"\n{proxy}\
             [cluster]\nid = \"node{n}\"\nsecret = \"{secret}\"\ncountry = \"{country}\"\ncontinent = \"{continent}\"\n\
             addresses = [\"{ip}\"]\nheartbeat_ms = 200\nheartbeat_timeout_ms = 150\n\
             down_after = 2\n{extra}\n",
            zones = crate::support::repo_root().join("zones").display(),
            n = i + 1,
            ip = ips[i],
            secret = crate::support::CLUSTER_SECRET,
        );
        for j in (0..count).filter(|&j| j != i) {
            let (country, continent) = regions[j % regions.len()];
            text += &format!(
                "[[cluster.peers]]\nid = \"node{n}\"\ncountry = \"{country}\"\n\
                 continent = \"{continent}\"\naddresses = [\"{ip}\"]\n\
                 proxy = \"{proxy}\"\nadmin = \"{admin}\"\n",
                n = j + 1,
                ip = ips[j],
                proxy = proxies[j],
                admin = admins[j],
            );
        }
        let config = write_file(dir.path(), &format!("node{}.toml", i + 1), &text);
        let (proxy, admin) = (proxies[i].to_string(), admins[i].to_string());
        let dns = format!("{}:0", ips[i]);
        let node = Node::start(&[
            "--config",
            config.to_str().unwrap(),
            "--dns-listen",
            &dns,
            "--admin-listen",
            &admin,
            "--http-listen",
            &proxy,
        ]);
        members.push(Member {
            node,
            id: format!("node{}", i + 1),
            proxy: proxies[i],
            admin: admins[i],
        });
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for member in &members {
        while peers_up(member.admin) != count - 1 {
            assert!(
                Instant::now() < deadline,
                "{} never saw its peers up",
                member.id
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    members
}

/// How many peers a node's `GET /admin/cluster` shows up.
pub(crate) fn peers_up(admin: SocketAddr) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, _, body) = runtime.block_on(http_request(
        admin,
        "GET",
        "/admin/cluster",
        &[],
        Vec::new(),
    ));
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let peers = status["peers"].as_array().unwrap();
    peers.iter().filter(|p| p["up"] == true).count()
}

/// The id of the node that owns the object `host` + `path` (as the nodes compute it).
fn owner(members: &[Member], key: &str) -> usize {
    let score = |m: &Member| edgenode::cluster::score(&m.id, 100, key.as_bytes());
    (0..members.len())
        .max_by(|&a, &b| score(&members[a]).total_cmp(&score(&members[b])))
        .unwrap()
}

fn metric(admin: SocketAddr, line_start: &str) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_, _, body) = runtime.block_on(http_request(admin, "GET", "/metrics", &[], Vec::new()));
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A burst of concurrent requests for one object, spread over all three nodes, causes exactly
/// one origin fetch: the owner's; the others fetch it from the owner.
#[test]
fn one_origin_fetch_per_object_for_the_whole_cluster() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let members = start_cluster(3, &origin.url(), "");
    let host = "shop.example.test";
    let proxies: Vec<SocketAddr> = members.iter().map(|m| m.proxy).collect();
    let statuses = runtime.block_on(async {
        let requests = (0..90).map(|i| {
            let proxy = proxies[i % proxies.len()];
            async move {
                let (status, headers, body) =
                    http_request(proxy, "GET", "/slow", &[("host", host)], Vec::new()).await;
                (status, cache_status(&headers), body)
            }
        });
        futures_util::future::join_all(requests).await
    });
    for (status, cache_status, body) in &statuses {
        assert_eq!(*status, 200, "{cache_status}");
        assert_eq!(&body[..], b"hello from /slow");
    }
    assert_eq!(origin.count("/slow"), 1, "one origin fetch for the cluster");

    let owner = owner(&members, &format!("{host}/slow"));
    for (i, member) in members.iter().enumerate() {
        let fetches = |source: &str| {
            metric(
                member.admin,
                &format!("edgenode_proxy_fetches_total{{source=\"{source}\"}}"),
            )
        };
        if i == owner {
            assert_eq!(
                (fetches("origin"), fetches("sibling")),
                (1.0, 0.0),
                "{}",
                member.id
            );
        } else {
            assert_eq!(
                (fetches("origin"), fetches("sibling")),
                (0.0, 1.0),
                "{}",
                member.id
            );
        }
    }
    // Every node now has it: a hit everywhere, still one origin fetch.
    runtime.block_on(async {
        for proxy in &proxies {
            let (_, headers, _) =
                http_request(*proxy, "GET", "/slow", &[("host", host)], Vec::new()).await;
            assert_eq!(cache_status(&headers), "edgenode; hit");
        }
    });
    assert_eq!(origin.count("/slow"), 1);
}

/// When the owner is gone, the others go to the origin at once (the owner refuses
/// connections), and once heartbeats mark it down they own its objects themselves.
#[test]
fn a_dead_owner_sends_fills_to_the_origin() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let mut members = start_cluster(3, &origin.url(), "");
    let host = "shop.example.test";
    let owner = owner(&members, &format!("{host}/cached"));
    let dead = members.remove(owner);
    drop(dead.node);
    let survivor = members[0].proxy;
    let started = Instant::now();
    let (status, _, body) = runtime.block_on(http_request(
        survivor,
        "GET",
        "/cached",
        &[("host", host)],
        Vec::new(),
    ));
    assert_eq!((status, &body[..]), (200, &b"hello from /cached"[..]));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(origin.count("/cached"), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while peers_up(members[0].admin) != 1 {
        assert!(
            Instant::now() < deadline,
            "the dead node was never marked down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A peer that answers heartbeats (so it stays up) but never answers on its proxy port.
async fn hanging_peer() -> (SocketAddr, SocketAddr) {
    let admin_addr = crate::cluster_auth::fake_admin(Heartbeat::member("hanging")).await;
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = proxy.accept().await {
            held.push(stream);
        }
    });
    (admin_addr, proxy_addr)
}

/// An owner that is up but hangs: the fill goes to the origin once `sibling_timeout_ms` is
/// over, and counts as `sibling-failed`.
#[test]
fn a_hanging_owner_is_given_up_after_the_sibling_timeout() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let (admin, proxy) = runtime.block_on(hanging_peer());
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\n\
         [cluster]\nid = \"node1\"\nsecret = \"{secret}\"\nheartbeat_ms = 200\nheartbeat_timeout_ms = 150\n\
         sibling_timeout_ms = 300\n\
         [[cluster.peers]]\nid = \"hanging\"\nproxy = \"{proxy}\"\nadmin = \"{admin}\"\n",
        crate::support::repo_root().join("zones").display(),
        origin.url(),
        secret = crate::support::CLUSTER_SECRET,
    );
    let config = write_file(dir.path(), "node1.toml", &text);
    let node = Node::with_config(&config);
    let node_admin = node.admin.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while peers_up(node_admin) != 1 {
        assert!(Instant::now() < deadline, "the hanging peer never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let host = "shop.example.test";
    // A URL the hanging peer owns.
    let path = (0..1000)
        .map(|i| format!("/cached?{i}"))
        .find(|path| {
            let key = format!("{host}{path}");
            let score = |id| edgenode::cluster::score(id, 100, key.as_bytes());
            score("hanging") > score("node1")
        })
        .unwrap();
    let started = Instant::now();
    let (status, _, body) = runtime.block_on(http_request(
        node.http.unwrap(),
        "GET",
        &path,
        &[("host", host)],
        Vec::new(),
    ));
    let took = started.elapsed();
    assert_eq!((status, &body[..]), (200, &b"hello from /cached"[..]));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert_eq!(origin.count("/cached"), 1);
    let failed = metric(
        node_admin,
        "edgenode_proxy_fetches_total{source=\"sibling-failed\"}",
    );
    assert_eq!(failed, 1.0);
}
