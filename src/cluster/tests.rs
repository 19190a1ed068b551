//! Cluster unit tests: owners, nearest nodes, heartbeats and self-preservation, discovery.
use super::*;
use crate::config::PeerConfig;

fn config(peers: &[&str]) -> ClusterConfig {
    ClusterConfig {
        id: "self".into(),
        country: Some("DE".into()),
        continent: Some("EU".into()),
        addresses: vec!["192.0.2.1".parse().unwrap()],
        peers: peers
            .iter()
            .enumerate()
            .map(|(i, id)| PeerConfig {
                id: id.to_string(),
                country: Some(["US", "FR", "JP"][i % 3].into()),
                continent: Some(["NA", "EU", "AS"][i % 3].into()),
                addresses: vec![format!("192.0.2.{}", i + 10).parse().unwrap()],
                // Nothing listens on port 9 of 127.0.0.1: heartbeats fail at once.
                proxy: "127.0.0.1:9".parse().unwrap(),
                admin: format!("127.0.0.1:{}", 9 + i).parse().unwrap(),
                weight: 100,
            })
            .collect(),
        down_after: 1,
        heartbeat_timeout_ms: 200,
        secret: Some(String::from_utf8_lossy(SECRET).into_owned()),
        ..ClusterConfig::default()
    }
}

const SECRET: &[u8] = b"unit-test-cluster-secret-0123456789";

fn mark_up(cluster: &Cluster) {
    let mut peers = cluster.lock();
    peers.iter_mut().for_each(|p| p.up = true);
    cluster.publish(&peers, false);
}

#[test]
fn a_lone_node_owns_everything() {
    let cluster = Cluster::new(&ClusterConfig::default());
    assert!(!cluster.enabled());
    assert!(cluster.owner(b"example.test/a").is_none());
}

#[test]
fn keys_are_owned_by_healthy_nodes_only() {
    let cluster = Cluster::new(&config(&["a", "b"]));
    // Peers start down: every key is this node's.
    assert!((0..100).all(|k| cluster.owner(format!("k{k}").as_bytes()).is_none()));
    mark_up(&cluster);
    let owned_elsewhere = (0..300)
        .filter(|k| cluster.owner(format!("k{k}").as_bytes()).is_some())
        .count();
    assert!((150..250).contains(&owned_elsewhere), "{owned_elsewhere}");
}

#[test]
fn nearest_prefers_country_then_continent() {
    let cluster = Cluster::new(&config(&["us", "fr", "jp"]));
    mark_up(&cluster);
    let ids = |country: &str, continent: &str, count| {
        cluster
            .nearest(
                country.parse().ok(),
                continent.parse().ok(),
                b"198.51.100.0/24",
                count,
            )
            .iter()
            .map(|m| m.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("JP", "AS", 1), ["jp"]);
    assert_eq!(ids("US", "NA", 1), ["us"]);
    // FR is in Europe with this node (DE): both come before the rest.
    let europe = ids("IT", "EU", 2);
    assert!(europe.contains(&"fr".to_string()) && europe.contains(&"self".to_string()));
    assert_eq!(ids("BR", "SA", 9).len(), 4);
}

#[tokio::test]
async fn peers_that_stop_answering_go_down_unless_most_go_at_once() {
    // One of three failing: marked down.
    let cluster = Cluster::new(&config(&["a", "b", "c"]));
    {
        let mut peers = cluster.lock();
        peers.iter_mut().for_each(|p| p.up = true);
        // Only "a" is probed as failing: b and c are made to look answered below.
        peers[1].member = Arc::new(Member {
            admin: None,
            ..(*peers[1].member).clone()
        });
        peers[2].member = Arc::new(Member {
            admin: None,
            ..(*peers[2].member).clone()
        });
    }
    cluster.heartbeat_round().await;
    let status = cluster.status();
    assert_eq!(
        status.peers.iter().map(|p| p.up).collect::<Vec<_>>(),
        [false, true, true]
    );
    assert!(!status.self_preservation);

    // All three failing at once: kept, with self-preservation on.
    let cluster = Cluster::new(&config(&["a", "b", "c"]));
    mark_up(&cluster);
    cluster.heartbeat_round().await;
    let status = cluster.status();
    assert!(status.self_preservation);
    assert!(status.peers.iter().all(|p| p.up && p.missed == 1));
    assert_eq!(cluster.view().healthy.len(), 4);
}

/// A peer answering heartbeats on 127.0.0.1 with its JSON description, signed with
/// `secret` as `signer` (unsigned when None).
async fn heartbeat_server(member: Member, signer: Option<(&[u8], &str)>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = serde_json::to_string(&member).unwrap();
    let signer = signer.map(|(secret, id)| (auth::Keys::new(secret), id.to_string()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (body, signer) = (body.clone(), signer.clone());
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let mut response =
                    hyper::Response::new(http_body_util::Full::new(Bytes::from(body.clone())));
                if let Some((keys, id)) = &signer {
                    let nonce = auth::Nonce::of_request(req.headers()).unwrap();
                    let field =
                        keys.sign_answer(id, &nonce, hyper::StatusCode::OK, Some(body.as_bytes()));
                    response.headers_mut().insert(auth::AUTH_HEADER, field);
                }
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    addr
}

/// A cluster that finds one peer by discovery, at `admin`.
async fn discovering(admin: SocketAddr) -> Arc<Cluster> {
    let config = ClusterConfig {
        id: "self".into(),
        discovery: Some(crate::config::DiscoveryConfig {
            name: "127.0.0.1".into(),
            proxy_port: 8080,
            admin_port: admin.port(),
            interval_secs: 30,
        }),
        secret: Some(String::from_utf8_lossy(SECRET).into_owned()),
        ..ClusterConfig::default()
    };
    let cluster = Cluster::new(&config);
    assert!(cluster.enabled());
    cluster.discover("127.0.0.1", 8080, admin.port()).await;
    assert_eq!(cluster.peers().len(), 1);
    cluster.heartbeat_round().await;
    cluster
}

#[tokio::test]
async fn discovered_peers_are_known_by_what_their_heartbeat_says() {
    let peer = Member {
        id: Arc::from("found"),
        country: "JP".parse().ok(),
        continent: "AS".parse().ok(),
        addresses: vec!["192.0.2.50".parse().unwrap()],
        proxy: None,
        admin: None,
        weight: 50,
    };
    let admin = heartbeat_server(peer, Some((SECRET, "found"))).await;
    let cluster = discovering(admin).await;
    let status = cluster.status();
    let found = &status.peers[0];
    assert!(found.up && found.discovered);
    assert_eq!(&*found.member.id, "found");
    assert_eq!(found.member.weight, 50);
    assert_eq!(found.member.proxy, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(found.member.admin, Some(admin));
    let nearest = cluster.nearest("JP".parse().ok(), None, b"client", 1);
    assert_eq!(&*nearest[0].id, "found");
}

/// What a discovered peer says of itself is taken only signed by the cluster's secret, by
/// the node it describes, and within bounds; anything else leaves it down as it was.
#[tokio::test]
async fn discovered_peers_cannot_claim_what_they_like() {
    let honest = Member {
        id: Arc::from("found"),
        country: None,
        continent: None,
        addresses: vec!["192.0.2.50".parse().unwrap()],
        proxy: None,
        admin: None,
        weight: 100,
    };
    let heavy = Member {
        weight: u32::MAX,
        ..honest.clone()
    };
    let many = Member {
        addresses: (0..17)
            .map(|i| format!("192.0.2.{i}").parse().unwrap())
            .collect(),
        ..honest.clone()
    };
    let multicast = Member {
        addresses: vec!["224.0.0.1".parse().unwrap()],
        ..honest.clone()
    };
    let own_id = Member {
        id: Arc::from("bad id with spaces"),
        ..honest.clone()
    };
    type Signer<'a> = Option<(&'a [u8], &'a str)>;
    let cases: [(&str, Member, Signer); 6] = [
        ("unsigned", honest.clone(), None),
        (
            "another secret",
            honest.clone(),
            Some((b"not-the-cluster-secret-0123456789", "found")),
        ),
        (
            "signed by another node",
            honest.clone(),
            Some((SECRET, "other")),
        ),
        ("weight u32::MAX", heavy, Some((SECRET, "found"))),
        ("17 addresses", many, Some((SECRET, "found"))),
        ("a multicast address", multicast, Some((SECRET, "found"))),
    ];
    for (what, member, signer) in cases {
        let admin = heartbeat_server(member, signer).await;
        let cluster = discovering(admin).await;
        let status = cluster.status();
        let peer = &status.peers[0];
        assert!(!peer.up, "{what}: taken");
        assert_eq!(peer.member.weight, 100, "{what}");
        assert_eq!(&*peer.member.id, admin.to_string(), "{what}");
        assert_eq!(cluster.view().healthy.len(), 1, "{what}");
        assert_eq!(cluster.metrics.heartbeats_refused.get(), 1, "{what}");
    }
    let admin = heartbeat_server(own_id, Some((SECRET, "bad id with spaces"))).await;
    assert!(!discovering(admin).await.status().peers[0].up);
}

/// A configured peer must answer as itself: signed, with its own id.
#[tokio::test]
async fn a_configured_peer_answering_as_another_stays_down() {
    let impostor = Member {
        id: Arc::from("b"),
        country: None,
        continent: None,
        addresses: Vec::new(),
        proxy: None,
        admin: None,
        weight: 100,
    };
    let admin = heartbeat_server(impostor, Some((SECRET, "b"))).await;
    let mut config = config(&["a"]);
    config.peers[0].admin = admin;
    let cluster = Cluster::new(&config);
    cluster.heartbeat_round().await;
    assert!(!cluster.status().peers[0].up);
    assert_eq!(cluster.metrics.heartbeats_refused.get(), 1);
}
