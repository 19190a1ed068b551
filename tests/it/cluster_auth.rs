//! Issue 18, finding 2: traffic between nodes is signed with the cluster's secret. A forged
//! heartbeat, a forged sibling answer, and a client posing as a node are refused and change
//! nothing; a request with a client's credentials never goes to another node. The fakes
//! here are plain hyper servers: a peer's admin listener that answers heartbeats (signed
//! with a given secret as a given node, or not at all) and a proxy listener that forges.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use edgenode::cluster::auth::{AUTH_HEADER, Keys, Nonce, Target};
use http_body_util::Full;
use hyper::{HeaderMap, Method, StatusCode};

use crate::cluster::peers_up;
use crate::origin::{Origin, cache_status};
use crate::support::{
    CLUSTER_SECRET, Node, http_request, metric, metrics_text, repo_root, write_file,
};

/// How a fake peer's admin listener answers heartbeats: as `id`, claiming `weight`, signed
/// with `secret` (unsigned when None).
pub(crate) struct Heartbeat {
    pub id: &'static str,
    pub weight: u64,
    pub secret: Option<&'static str>,
}

impl Heartbeat {
    /// An honest member of the test cluster.
    pub(crate) fn member(id: &'static str) -> Heartbeat {
        Heartbeat {
            id,
            weight: 100,
            secret: Some(CLUSTER_SECRET),
        }
    }
}

/// A fake peer's admin listener on 127.0.0.1.
pub(crate) async fn fake_admin(heartbeat: Heartbeat) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = format!(
        r#"{{"id":"{}","country":null,"continent":null,"addresses":["127.0.0.99"],"weight":{}}}"#,
        heartbeat.id, heartbeat.weight
    );
    let keys = heartbeat.secret.map(|s| Keys::new(s.as_bytes()));
    let id = heartbeat.id;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (body, keys) = (body.clone(), keys.clone());
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let mut response =
                    hyper::Response::new(Full::new(bytes::Bytes::from(body.clone())));
                let nonce = Nonce::of_request(req.headers());
                if let (Some(keys), Some(nonce)) = (&keys, nonce) {
                    let field = keys.sign_answer(id, &nonce, StatusCode::OK, Some(body.as_bytes()));
                    response.headers_mut().insert(AUTH_HEADER, field);
                }
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    addr
}

/// A proxy listener that answers every request with a cacheable forged body, unsigned, and
/// keeps the requests' fields.
pub(crate) struct Forger {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<HeaderMap>>>,
}

pub(crate) async fn forger() -> Forger {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                seen.lock().unwrap().push(req.headers().clone());
                let response = hyper::Response::builder()
                    .header("cache-control", "max-age=3600")
                    .body(Full::new(bytes::Bytes::from_static(b"forged")))
                    .unwrap();
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    Forger { addr, requests }
}

/// A node "node1" in front of `origin` whose peers are `(id, proxy, admin)`.
fn node_with_peers(origin: &Origin, peers: &[(&str, SocketAddr, SocketAddr)]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\n\
         [cluster]\nid = \"node1\"\nsecret = \"{CLUSTER_SECRET}\"\nheartbeat_ms = 100\n\
         heartbeat_timeout_ms = 100\ndown_after = 1\n",
        repo_root().join("zones").display(),
        origin.url(),
    );
    for (id, proxy, admin) in peers {
        text += &format!(
            "[[cluster.peers]]\nid = \"{id}\"\nproxy = \"{proxy}\"\nadmin = \"{admin}\"\n"
        );
    }
    let config = write_file(dir.path(), "node1.toml", &text);
    let node = Node::with_config(&config);
    // The config file may go once the node has read it.
    drop(dir);
    node
}

fn wait_for_peers_up(admin: SocketAddr, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while peers_up(admin) != count {
        assert!(Instant::now() < deadline, "peers never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A path `/cached?{tag}N` on `host` that `peer` owns rather than node1 (both weight 100).
fn owned_by(peer: &str, host: &str, tag: &str) -> String {
    (0..1000)
        .map(|i| format!("/cached?{tag}{i}"))
        .find(|path| {
            let key = format!("{host}{path}");
            let score = |id| edgenode::cluster::score(id, 100, key.as_bytes());
            score(peer) > score("node1")
        })
        .expect("some path is the peer's")
}

/// Heartbeat answers that are unsigned, signed with another secret, or signed by the peer
/// but describing another node are refused: the peers stay down, with the configured
/// weights, and the honest peer beside them comes up.
#[test]
fn forged_heartbeats_change_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let fakes = runtime.block_on(async {
        [
            fake_admin(Heartbeat {
                id: "unsigned",
                weight: u64::from(u32::MAX),
                secret: None,
            })
            .await,
            fake_admin(Heartbeat {
                id: "other-secret",
                weight: u64::from(u32::MAX),
                secret: Some("a secret that is not the cluster's"),
            })
            .await,
            fake_admin(Heartbeat {
                weight: u64::from(u32::MAX),
                ..Heartbeat::member("someone-else")
            })
            .await,
            fake_admin(Heartbeat::member("honest")).await,
        ]
    });
    let ids = ["unsigned", "other-secret", "impostor", "honest"];
    let peers: Vec<_> = ids
        .iter()
        .zip(fakes)
        .map(|(id, admin)| (*id, unused, admin))
        .collect();
    let node = node_with_peers(&origin, &peers);
    let admin = node.admin.unwrap();
    wait_for_peers_up(admin, 1);
    // A few more rounds: the forgers never come up.
    std::thread::sleep(Duration::from_millis(500));
    let (_, _, body) = runtime.block_on(http_request(admin, "GET", "/admin/cluster", &[], vec![]));
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    for peer in status["peers"].as_array().unwrap() {
        let up = peer["up"] == true;
        assert_eq!(up, peer["id"] == "honest", "{peer}");
        assert_eq!(peer["weight"], 100, "{peer}");
        assert_eq!(peer["addresses"], serde_json::json!([]), "{peer}");
    }
    let text = runtime.block_on(metrics_text(admin));
    assert!(
        metric(&text, "edgenode_cluster_heartbeats_refused_total") >= 9.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "edgenode_cluster_auth_refused_total{what=\"answer\"}"
        ) >= 6.0
    );
}

/// The owner's proxy address answers with a forged object, unsigned: node1 refuses it,
/// fetches from the origin, and stores the origin's object, not the forgery.
#[test]
fn a_forged_sibling_answer_is_refused_and_not_stored() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let (admin_b, forger) =
        runtime.block_on(async { (fake_admin(Heartbeat::member("b")).await, forger().await) });
    let node = node_with_peers(&origin, &[("b", forger.addr, admin_b)]);
    let admin = node.admin.unwrap();
    wait_for_peers_up(admin, 1);
    let host = "shop.example.test";
    let path = owned_by("b", host, "a");
    for round in 0..2 {
        let (status, headers, body) = runtime.block_on(http_request(
            node.http.unwrap(),
            "GET",
            &path,
            &[("host", host)],
            Vec::new(),
        ));
        assert_eq!(
            (status, &body[..]),
            (200, &b"hello from /cached"[..]),
            "round {round}"
        );
        assert_eq!(
            cache_status(&headers).contains("hit"),
            round == 1,
            "round {round}"
        );
    }
    assert_eq!(origin.count("/cached"), 1);
    let asked = forger.requests.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    let field = asked[0][AUTH_HEADER].to_str().unwrap();
    assert!(field.starts_with("id=node1;t="), "{field}");
    let text = runtime.block_on(metrics_text(admin));
    assert_eq!(
        metric(
            &text,
            "edgenode_cluster_auth_refused_total{what=\"answer\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "edgenode_proxy_fetches_total{source=\"sibling-failed\"}"
        ),
        1.0
    );
}

/// A request with a client's cookie or credentials goes to the origin, never to the owner.
#[test]
fn credentials_never_go_to_another_node() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let (admin_b, forger) =
        runtime.block_on(async { (fake_admin(Heartbeat::member("b")).await, forger().await) });
    let node = node_with_peers(&origin, &[("b", forger.addr, admin_b)]);
    wait_for_peers_up(node.admin.unwrap(), 1);
    let host = "shop.example.test";
    let credentials = [
        ("cookie", "session=s3cret"),
        ("authorization", "Bearer s3cret"),
    ];
    for (i, (name, value)) in credentials.iter().enumerate() {
        let path = owned_by("b", host, &format!("c{i}-"));
        let (status, _, _) = runtime.block_on(http_request(
            node.http.unwrap(),
            "GET",
            &path,
            &[("host", host), (name, value)],
            Vec::new(),
        ));
        assert_eq!(status, 200);
    }
    assert!(forger.requests.lock().unwrap().is_empty());
    assert_eq!(origin.total(), 2);
    // Without them, the owner is asked (and, forging, refused).
    let path = owned_by("b", host, "plain");
    runtime.block_on(http_request(
        node.http.unwrap(),
        "GET",
        &path,
        &[("host", host)],
        vec![],
    ));
    assert_eq!(forger.requests.lock().unwrap().len(), 1);
}

/// A client that sends the sibling field (made up, or signed with another secret), or this
/// node's id in `Via`, is an ordinary client: the directives for the cache
/// (`CDN-Cache-Control`) are not shown to it and nothing is signed for it. A request signed
/// with the cluster's secret gets both.
#[test]
fn a_client_cannot_pose_as_a_node() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let admin_b = runtime.block_on(fake_admin(Heartbeat::member("b")));
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let node = node_with_peers(&origin, &[("b", unused, admin_b)]);
    let http = node.http.unwrap();
    let host = "shop.example.test";
    let sign = |secret: &str, path: &str| {
        let target = Target {
            method: &Method::GET,
            host,
            path,
        };
        Keys::new(secret.as_bytes()).sign_request("b", target, SystemTime::now())
    };
    let (other, _) = sign("a secret that is not the cluster's", "/cdn?1");
    let posing: [(&str, &str); 3] = [
        (AUTH_HEADER, "id=b;t=1;n=abc;s=AAAA"),
        (AUTH_HEADER, other.to_str().unwrap()),
        ("via", "1.1 node1"),
    ];
    for (i, (name, value)) in posing.iter().enumerate() {
        let path = format!("/cdn?{}", i + 1);
        let request = [("host", host), (name, value)];
        let (status, headers, _) =
            runtime.block_on(http_request(http, "GET", &path, &request, vec![]));
        assert_eq!(status, 200);
        assert!(
            !headers.contains_key("cdn-cache-control"),
            "{name}: {value}"
        );
        assert!(!headers.contains_key(AUTH_HEADER), "{name}: {value}");
    }
    let (field, nonce) = sign(CLUSTER_SECRET, "/cdn?9");
    let request = [("host", host), (AUTH_HEADER, field.to_str().unwrap())];
    let (status, headers, _) =
        runtime.block_on(http_request(http, "GET", "/cdn?9", &request, vec![]));
    assert_eq!(headers["cdn-cache-control"], "max-age=60");
    let keys = Keys::new(CLUSTER_SECRET.as_bytes());
    let answer = keys.verify_answer(
        &headers,
        Some("node1"),
        &nonce,
        StatusCode::from_u16(status).unwrap(),
        None,
    );
    assert_eq!(answer.as_deref(), Ok("node1"));

    let text = runtime.block_on(metrics_text(node.admin.unwrap()));
    assert_eq!(
        metric(
            &text,
            "edgenode_cluster_auth_refused_total{what=\"request\"}"
        ),
        2.0
    );
}

/// The admin listener's endpoints for nodes answer only signed requests.
#[test]
fn cluster_endpoints_need_the_secret() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let admin_b = runtime.block_on(fake_admin(Heartbeat::member("b")));
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let node = node_with_peers(&origin, &[("b", unused, admin_b)]);
    let admin = node.admin.unwrap();
    let host = admin.to_string();
    for (method, path) in [
        ("GET", "/cluster/heartbeat"),
        ("POST", "/cluster/purge?tag=red"),
    ] {
        let (status, _, _) = runtime.block_on(http_request(admin, method, path, &[], vec![]));
        assert_eq!(status, 401, "{method} {path} unsigned");
        let method_ = Method::from_bytes(method.as_bytes()).unwrap();
        let target = Target {
            method: &method_,
            host: &host,
            path,
        };
        let now = SystemTime::now();
        let (wrong, _) =
            Keys::new(b"a secret that is not the cluster's").sign_request("b", target, now);
        let request = [(AUTH_HEADER, wrong.to_str().unwrap())];
        let (status, _, _) = runtime.block_on(http_request(admin, method, path, &request, vec![]));
        assert_eq!(status, 401, "{method} {path} with another secret");
        let (right, nonce) = Keys::new(CLUSTER_SECRET.as_bytes()).sign_request("b", target, now);
        let request = [(AUTH_HEADER, right.to_str().unwrap())];
        let (status, headers, body) =
            runtime.block_on(http_request(admin, method, path, &request, vec![]));
        assert_eq!(status, 200, "{method} {path} signed");
        let keys = Keys::new(CLUSTER_SECRET.as_bytes());
        let answer =
            keys.verify_answer(&headers, Some("node1"), &nonce, StatusCode::OK, Some(&body));
        assert_eq!(answer.as_deref(), Ok("node1"), "{method} {path}");
    }
}
