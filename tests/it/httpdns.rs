//! HTTPDNS and DoH through real clients: hyper for every endpoint and error (curl over
//! HTTP/1.1 and HTTP/2 with TLS 1.3, kdig +https, curl --doh-url in `tls`); the same answer as UDP.

use base64::Engine;
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{RData, RecordType};
use md5::{Digest, Md5};
use serde_json::Value;

use crate::support::{Node, ask, dns_client, http_request, query, repo_root, write_file};

mod alibaba_android;
mod alibaba_sdk;
mod dnspod_ios;
mod dnspod_sdk;
mod schedule;
mod tls;

const CONFIG: &str = r#"
[httpdns]
max_hosts = 3
client_rate = 1000
client_burst = 1000
trusted_proxies = ["127.0.0.9/32"]

[[httpdns.accounts]]
id = "acme"
secret = "s3cret"

[[httpdns.accounts]]
id = "strict"
secret = "hush"
require_signature = true

[[geoip.overrides]]
cidr = "127.0.1.0/24"
continent = "AS"

[[geoip.overrides]]
cidr = "127.0.2.0/24"
continent = "NA"
"#;

fn start(dir: &std::path::Path, extra: &str) -> Node {
    Node::with_zones_and(dir, &format!("{CONFIG}{extra}"))
}

async fn get(node: &Node, path: &str) -> (u16, hyper::HeaderMap, String) {
    let (status, headers, body) =
        http_request(node.httpdns.unwrap(), "GET", path, &[], Vec::new()).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn get_json(node: &Node, path: &str) -> (u16, Value) {
    let (status, _, body) = get(node, path).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}

fn sign(host: &str, secret: &str, t: u64) -> String {
    Md5::digest(format!("{host}-{secret}-{t}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn dnspod_and_alibaba_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "");

    // DNSPod: text, with the TTL on request, the client's ip= steering the geo answer.
    assert_eq!(get(&node, "/d?dn=www.example.test").await.2, "127.0.10.1");
    assert_eq!(
        get(&node, "/d?dn=www.example.test&ttl=1").await.2,
        "127.0.10.1,60"
    );
    assert_eq!(
        get(&node, "/d?dn=www.example.test&ip=127.0.1.7").await.2,
        "127.0.1.10"
    );
    assert_eq!(
        get(&node, "/d?dn=www.example.test&type=AAAA").await.2,
        "::1"
    );
    assert_eq!(get(&node, "/d?dn=nothing.example.test").await.2, "");

    // Alibaba: one host, both families, client_ip; a batch; the batch limit.
    let (status, body) = get_json(
        &node,
        "/acme/d?host=www.example.test&query=4,6&ip=127.0.2.8",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["host"], "www.example.test");
    assert_eq!(body["ips"], serde_json::json!(["127.0.2.10"]));
    assert_eq!(body["ipsv6"], serde_json::json!(["::1"]));
    assert_eq!(
        (body["ttl"].as_u64(), body["client_ip"].as_str()),
        (Some(60), Some("127.0.2.8"))
    );
    let (status, body) = get_json(
        &node,
        "/acme/resolve?host=www.example.test,api.example.test",
    )
    .await;
    assert_eq!(status, 200);
    let hosts: Vec<&str> = body["dns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["www.example.test", "api.example.test"]);
    assert_eq!(body["dns"][1]["ips"], serde_json::json!(["127.0.10.2"]));
    let (status, body) = get_json(
        &node,
        "/acme/resolve?host=a.example.test,b.example.test,c.example.test,d.example.test",
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("TooManyHosts")));

    // Signed requests: valid, expired, wrong; the signing-only account refuses unsigned ones.
    let t = now() + 300;
    let path = format!(
        "/acme/sign_d?host=api.example.test&t={t}&s={}",
        sign("api.example.test", "s3cret", t)
    );
    let (status, body) = get_json(&node, &path).await;
    assert_eq!((status, body["ips"][0].as_str()), (200, Some("127.0.10.2")));
    let old = now() - 10;
    let path = format!(
        "/acme/sign_d?host=api.example.test&t={old}&s={}",
        sign("api.example.test", "s3cret", old)
    );
    assert_eq!(get_json(&node, &path).await.1["code"], "SignatureExpired");
    let path = format!(
        "/acme/sign_d?host=api.example.test&t={t}&s={}",
        sign("api.example.test", "wrong", t)
    );
    assert_eq!(
        get_json(&node, &path).await,
        (
            403,
            serde_json::json!({"code": "InvalidSignature", "error": "s does not match"})
        )
    );
    let hosts = "www.example.test,api.example.test";
    let path = format!(
        "/strict/sign_resolve?host={hosts}&t={t}&s={}",
        sign(hosts, "hush", t)
    );
    assert_eq!(get_json(&node, &path).await.0, 200);
    assert_eq!(
        get_json(&node, "/strict/d?host=www.example.test").await.1["code"],
        "SignatureRequired"
    );
    assert_eq!(
        get_json(&node, "/nobody/d?host=www.example.test").await.1["code"],
        "InvalidAccount"
    );

    // Bad input: precise statuses with JSON bodies.
    assert_eq!(
        get_json(&node, "/acme/d").await,
        (
            400,
            serde_json::json!({"code": "MissingArgument", "error": "host is required"})
        )
    );
    assert_eq!(
        get_json(&node, "/acme/d?host=www.example.test&ip=nope")
            .await
            .1["code"],
        "InvalidIp"
    );
    assert_eq!(
        get_json(&node, "/acme/d?host=bad..name").await.1["code"],
        "InvalidHost"
    );
    let (status, _, _) = http_request(
        node.httpdns.unwrap(),
        "POST",
        "/acme/d?host=x",
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(get(&node, "/nothing-here").await.0, 404);
}

#[tokio::test]
async fn json_and_rfc8484_doh() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "");

    let (status, body) = get_json(
        &node,
        "/resolve?name=www.example.test&type=A&edns_client_subnet=127.0.1.0/24",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["Status"], 0);
    assert_eq!(body["Answer"][0]["data"], "127.0.1.10");
    assert_eq!(body["Answer"][0]["type"], 1);
    assert_eq!(body["Question"][0]["name"], "www.example.test.");
    assert_eq!(body["edns_client_subnet"], "127.0.1.0/24");
    let (status, body) = get_json(&node, "/resolve?name=nothing.example.test&type=28").await;
    assert_eq!((status, body["Status"].as_u64()), (200, Some(3)));
    assert_eq!(body["Authority"][0]["type"], 6);
    let (_, headers, body) = http_request(
        node.httpdns.unwrap(),
        "GET",
        "/dns-query?name=api.example.test&type=A",
        &[("accept", "application/dns-json")],
        Vec::new(),
    )
    .await;
    assert_eq!(headers["content-type"], "application/dns-json");
    assert_eq!(headers["cache-control"], "max-age=300");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["Answer"][0]["data"], "127.0.10.2");
    assert_eq!(
        get_json(&node, "/resolve?name=x.example.test&type=NOPE")
            .await
            .1["code"],
        "InvalidType"
    );
    assert_eq!(
        get_json(&node, "/resolve").await.1["code"],
        "MissingArgument"
    );

    // RFC 8484: GET ?dns= (base64url, no padding) and POST; max-age from the smallest TTL.
    let mut message = query("www.example.test.", RecordType::A, Some(1232));
    message.metadata.id = 0;
    let wire = message.to_vec().unwrap();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&wire);
    let (status, headers, body) = http_request(
        node.httpdns.unwrap(),
        "GET",
        &format!("/dns-query?dns={encoded}"),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/dns-message");
    assert_eq!(headers["cache-control"], "max-age=60");
    let response = Message::from_vec(&body).unwrap();
    assert!(response.metadata.authoritative);
    let dns_message = [("content-type", "application/dns-message")];
    let (status, _, body) = http_request(
        node.httpdns.unwrap(),
        "POST",
        "/dns-query",
        &dns_message,
        wire.clone(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(Message::from_vec(&body).unwrap().answers.len(), 1);

    // Errors: bad base64, wrong media type, oversized body, other methods.
    let get_status = |path: String| async move {
        http_request(node.httpdns.unwrap(), "GET", &path, &[], Vec::new())
            .await
            .0
    };
    assert_eq!(get_status("/dns-query?dns=!!!".into()).await, 400);
    let plain = [("content-type", "text/plain")];
    assert_eq!(
        http_request(
            node.httpdns.unwrap(),
            "POST",
            "/dns-query",
            &plain,
            wire.clone()
        )
        .await
        .0,
        415
    );
    let big = vec![0u8; 5000];
    assert_eq!(
        http_request(
            node.httpdns.unwrap(),
            "POST",
            "/dns-query",
            &dns_message,
            big
        )
        .await
        .0,
        413
    );
    assert_eq!(
        http_request(
            node.httpdns.unwrap(),
            "PUT",
            "/dns-query",
            &dns_message,
            wire
        )
        .await
        .0,
        405
    );

    let metrics = crate::dns::http_get(node.admin.unwrap(), "/metrics").await;
    assert!(
        metrics
            .contains("edgenode_httpdns_requests_total{endpoint=\"dns-message\",status=\"413\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("edgenode_dns_queries_total{proto=\"https\",qtype=\"A\",rcode=\"NOERROR\"}"),
        "{metrics}"
    );
}

/// An RFC 8484 POST body that stalls gets 408 at `http.body_timeout_ms`.
#[tokio::test]
async fn stalled_doh_bodies_get_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "[http]\nbody_timeout_ms = 300\n");
    let mut stream = tokio::net::TcpStream::connect(node.httpdns.unwrap())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    stream
        .write_all(
            b"POST /dns-query HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/dns-message\r\n\
              Content-Length: 40\r\n\r\nonly part",
        )
        .await
        .unwrap();
    // The rest of the body is never read: the answer ends the connection (with a reset, if
    // the node closes with our bytes unread; what arrived before it stays in `answer`).
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    );
    let _ = read.await.expect("an answer within 10 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("RequestTimeout"), "{answer}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
}

/// For one client subnet, HTTPDNS, DoH and UDP DNS give the same answer.
#[tokio::test]
async fn httpdns_and_udp_agree_for_a_client_subnet() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "");
    let udp = dns_client(node.dns(), false).await;
    for (subnet, expected) in [
        ("127.0.1.0", "127.0.1.10"),
        ("127.0.2.0", "127.0.2.10"),
        ("10.9.0.0", "127.0.10.1"),
    ] {
        let mut message = query("www.example.test.", RecordType::A, Some(1232));
        if let Some(edns) = message.edns.as_mut() {
            edns.options_mut()
                .insert(EdnsOption::Subnet(ClientSubnet::new(
                    subnet.parse().unwrap(),
                    24,
                    0,
                )));
        }
        let response = ask(&udp, message).await;
        let udp_answer = match &response.answers[0].data {
            RData::A(a) => a.0.to_string(),
            other => panic!("{other:?}"),
        };
        let (_, json) = get_json(
            &node,
            &format!("/resolve?name=www.example.test&edns_client_subnet={subnet}/24"),
        )
        .await;
        let client_ip = subnet
            .replace(".0.0", ".0.1")
            .replace(".1.0", ".1.1")
            .replace(".2.0", ".2.1");
        let (_, _, dnspod) = get(&node, &format!("/d?dn=www.example.test&ip={client_ip}")).await;
        let doh = json["Answer"][0]["data"].as_str();
        assert_eq!(
            (udp_answer.as_str(), doh, dnspod.as_str()),
            (expected, Some(expected), expected)
        );
    }
}

#[tokio::test]
async fn client_address_rate_limits_and_trusted_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "");
    // X-Forwarded-For counts only from a trusted proxy (127.0.0.9 here; the test connects from
    // 127.0.0.1, so the header is ignored).
    let (_, _, body) = http_request(
        node.httpdns.unwrap(),
        "GET",
        "/d?dn=www.example.test",
        &[("x-forwarded-for", "127.0.1.5")],
        Vec::new(),
    )
    .await;
    assert_eq!(body, "127.0.10.1");

    let strict = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[httpdns]\nclient_rate = 1\nclient_burst = 2\n",
        repo_root().join("zones").display()
    );
    let config = write_file(strict.path(), "limited.toml", &text);
    let node = Node::with_config(&config);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let (status, headers, _) = http_request(
            node.httpdns.unwrap(),
            "GET",
            "/d?dn=www.example.test",
            &[],
            Vec::new(),
        )
        .await;
        statuses.push(status);
        if status == 429 {
            retry_after = headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
    }
    assert_eq!(&statuses[..2], [200, 200]);
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
}

#[tokio::test]
async fn proxies_xff_from_trusted_peers() {
    let dir = tempfile::tempdir().unwrap();
    let zones = repo_root().join("zones");
    let text = format!(
        "[dns]\nzones = \"{}\"\n[httpdns]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
         [[geoip.overrides]]\ncidr = \"127.0.1.0/24\"\ncontinent = \"AS\"\n",
        zones.display()
    );
    let config = write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    let forwarded = [("x-forwarded-for", "198.51.100.7, 127.0.1.5")];
    let (_, _, body) = http_request(
        node.httpdns.unwrap(),
        "GET",
        "/d?dn=www.example.test",
        &forwarded,
        Vec::new(),
    )
    .await;
    assert_eq!(
        body, "127.0.1.10",
        "the last hop before the trusted proxy is the client"
    );
}
