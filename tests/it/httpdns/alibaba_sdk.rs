//! The Alibaba Cloud SDKs' exact requests, byte for byte as each builds them, and their answers
//! read as each SDK's parser reads them:
//!
//! - C SDK 2.2.5: `/{account}/ss?region=&platform=linux&sdk_version=alibabacloud-httpdns-c-sdk-2.2.5&sid=`
//!   (signed: `&s=md5(n-secret-t)&t=NOW&n=NONCE`), then `/{account}/{d,sign_d,resolve,sign_resolve}`
//!   with `host`, `query` (percent-encoded commas), `platform`, `sdk_version`, `sid`, `s`, `t`
//!   (now + 30 min), `ip`; it makes one result per `ips` / `ipsv6` key present and reads a
//!   batch entry's `type` when only `ips` is there.
//! - Go SDK 1.0.1: `/{account}/ss`, then `http://{service_ip[0]}/{account}/d?host=&query=`
//!   (`sign_d?host=&query=&ip=&t=&s=`), batch `resolve?host=a,b` merged by host.
//! - Node.js SDK, earlier (md5) and current 1.0.0 (`https://.../{account}/ss?region=global`,
//!   then `/v2/d?id=&dn=&q=&m=0&exp=&s=` with HMAC-SHA256 keyed by the hex-decoded secret).

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use md5::{Digest, Md5};
use serde_json::Value;

use super::{now, sign};
use crate::support::{AnyCertificate, Node, http_request};

const SDK_VERSION: &str = "alibabacloud-httpdns-c-sdk-2.2.5";
const SID: &str = "3f9a0c1d2e4b";
/// The v2 secret: hex, as the console shows it (the SDK hex-decodes it into the HMAC key).
const V2_SECRET: &str = "8e5f3a4b1c2d3e4f5a6b7c8d9e0f1a2b";

const CONFIG: &str = r#"
[httpdns]
client_rate = 0
max_hosts = 3
trusted_proxies = ["127.0.0.1/32"]

[[httpdns.accounts]]
id = "139450"
secret = "c-sdk-secret"

[[httpdns.accounts]]
id = "139451"
secret = "8e5f3a4b1c2d3e4f5a6b7c8d9e0f1a2b"

[[httpdns.accounts]]
id = "metered"
secret = "metered-secret"
rate = 1
burst = 1

[[httpdns.accounts]]
id = "tls-only"
https_only = true

[[geoip.overrides]]
cidr = "127.0.1.0/24"
continent = "AS"
"#;

fn start(dir: &std::path::Path) -> Node {
    Node::with_zones_and(dir, CONFIG)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, _, body) = http_request(addr, "GET", path, &[], Vec::new()).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, json)
}

/// One GET over TLS 1.3 (HTTP/1.1), the certificate not checked (the SDKs are given the
/// node's address; the test has no CA for the self-signed certificate).
pub(super) async fn https_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header("host", addr.to_string())
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// What the C SDK makes of one resolve answer (`parse_resv_resp_from_json`): (host, type,
/// addresses) per result.
fn c_sdk_results(entry: &Value) -> Vec<(String, u64, Vec<String>)> {
    let host = entry["host"].as_str().unwrap_or_default().to_string();
    let list = |key: &str| -> Vec<String> {
        entry[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|ip| ip.as_str().unwrap().to_string())
            .collect()
    };
    let has = |key: &str| entry.get(key).is_some();
    match (has("ips"), has("ipsv6")) {
        (true, true) => vec![(host.clone(), 1, list("ips")), (host, 28, list("ipsv6"))],
        (true, false) => {
            let rtype = entry.get("type").and_then(Value::as_u64).unwrap_or(1);
            vec![(host, rtype, list("ips"))]
        }
        (false, true) => vec![(host, 28, list("ipsv6"))],
        (false, false) => Vec::new(),
    }
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn c_sdk_schedules_then_resolves_single_batch_and_signed() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let addr = node.httpdns.unwrap();

    // Scheduling, unsigned and signed (t is the signing time, n a 12-digit hex nonce).
    let path =
        format!("/139450/ss?region=global&platform=linux&sdk_version={SDK_VERSION}&sid={SID}");
    let (status, body) = get(addr, &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["service_ip"], serde_json::json!([addr.to_string()]));
    assert_eq!(body["service_ipv6"], serde_json::json!([]));
    let (nonce, t) = ("a1b2c3d4e5f6", now());
    let s = md5_hex(&format!("{nonce}-c-sdk-secret-{t}"));
    let signed = format!("{path}&s={s}&t={t}&n={nonce}");
    assert_eq!(
        get(addr, &signed).await.1["service_ip"][0],
        addr.to_string()
    );
    let forged = format!("{path}&s={}&t={t}&n={nonce}", md5_hex("forged"));
    assert_eq!(
        get(addr, &forged).await,
        (
            403,
            serde_json::json!({"code": "InvalidSignature", "error": "s does not match"})
        )
    );

    // One host, IPv4 only: no `ipsv6` key, so one result, not a second empty one.
    let common = format!("platform=linux&sdk_version={SDK_VERSION}&sid={SID}");
    let (status, body) = get(
        addr,
        &format!("/139450/d?host=www.example.test&query=4&{common}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        c_sdk_results(&body),
        [("www.example.test".into(), 1, vec!["127.0.10.1".into()])]
    );
    let (_, body) = get(
        addr,
        &format!("/139450/d?host=www.example.test&query=6&{common}"),
    )
    .await;
    assert_eq!(
        c_sdk_results(&body),
        [("www.example.test".into(), 28, vec!["::1".into()])]
    );

    // Signed batch of both families, with a client ip: per-family entries, typed.
    let hosts = "www.example.test,api.example.test";
    let t = now() + 30 * 60;
    let s = sign(hosts, "c-sdk-secret", t);
    let path = format!(
        "/139450/sign_resolve?host=www.example.test%2Capi.example.test&query=4%2C6&{common}&s={s}&t={t}&ip=127.0.1.7"
    );
    let (status, body) = get(addr, &path).await;
    assert_eq!(status, 200, "{body}");
    let results: Vec<_> = body["dns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(c_sdk_results)
        .collect();
    assert_eq!(
        results,
        [
            (
                "www.example.test".to_string(),
                1,
                vec!["127.0.1.10".to_string()]
            ),
            ("www.example.test".to_string(), 28, vec!["::1".to_string()]),
            (
                "api.example.test".to_string(),
                1,
                vec!["127.0.10.2".to_string()]
            ),
            ("api.example.test".to_string(), 28, vec![]),
        ]
    );
    assert_eq!(body["dns"][0]["client_ip"], "127.0.1.7");

    // Several client addresses: each family asked with its own.
    let path = format!(
        "/139450/d?host=www.example.test&query=4%2C6&{common}&ip=2001%3Adb8%3A%3A1%2C127.0.1.7"
    );
    let (_, body) = get(addr, &path).await;
    assert_eq!(
        body["ips"],
        serde_json::json!(["127.0.1.10"]),
        "the IPv4 ip= steers A"
    );
    assert_eq!(body["client_ip"], "2001:db8::1");

    // A signature may not be made to last: t at most one day ahead.
    let t = now() + 2 * 86_400;
    let path = format!(
        "/139450/sign_d?host=www.example.test&query=4&{common}&s={}&t={t}",
        sign("www.example.test", "c-sdk-secret", t)
    );
    assert_eq!(get(addr, &path).await.1["code"], "InvalidTimestamp");
}

#[tokio::test]
async fn forged_signatures_do_not_spend_an_accounts_budget() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let addr = node.httpdns.unwrap();
    let t = now() + 600;
    for _ in 0..5 {
        let path = format!(
            "/metered/sign_d?host=www.example.test&t={t}&s={}",
            sign("www.example.test", "guess", t)
        );
        assert_eq!(get(addr, &path).await.0, 403);
    }
    let good = format!(
        "/metered/sign_d?host=www.example.test&t={t}&s={}",
        sign("www.example.test", "metered-secret", t)
    );
    assert_eq!(get(addr, &good).await.0, 200, "the budget is intact");
    assert_eq!(
        get(addr, &good).await.0,
        429,
        "and a real request spends it"
    );
}

#[tokio::test]
async fn https_only_accounts_refuse_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let (status, body) = get(node.httpdns.unwrap(), "/tls-only/d?host=www.example.test").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("HttpsRequired"))
    );
    let tls = node.httpdns_tls.unwrap();
    let (status, body) = https_get(tls, "/tls-only/d?host=www.example.test").await;
    assert_eq!(status, 200, "{body}");
    // Scheduling over TLS names the TLS listener.
    let (status, body) = https_get(tls, "/tls-only/ss?region=global").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &body["service_ip"][0]),
        (200, &Value::from(tls.to_string()))
    );
}

#[tokio::test]
async fn go_sdk_resolves_through_the_servers_it_was_scheduled() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let (status, body) = get(node.httpdns.unwrap(), "/139450/ss").await;
    assert_eq!(status, 200);
    // The Go SDK keeps service_ip and builds http://{entry}/{account}/... from it.
    let server: SocketAddr = body["service_ip"][0].as_str().unwrap().parse().unwrap();
    let (status, body) = get(server, "/139450/d?host=www.example.test&query=4,6").await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["ips"][0].as_str(), body["ipsv6"][0].as_str()),
        (Some("127.0.10.1"), Some("::1"))
    );
    let t = now() + 30;
    let path = format!(
        "/139450/sign_d?host=api.example.test&query=4&ip=127.0.1.9&t={t}&s={}",
        sign("api.example.test", "c-sdk-secret", t)
    );
    let (status, body) = get(server, &path).await;
    assert_eq!(
        (status, body["ips"][0].as_str(), body["client_ip"].as_str()),
        (200, Some("127.0.10.2"), Some("127.0.1.9"))
    );
    // Batch: entries merged by host, `ips` as IPv4 and `ipsv6` as IPv6 (net.ParseIP on each).
    let (_, body) = get(
        server,
        "/139450/resolve?host=www.example.test,api.example.test",
    )
    .await;
    let mut merged: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for entry in body["dns"].as_array().unwrap() {
        let host = entry["host"].as_str().unwrap().to_string();
        let list = |k: &str| -> Vec<String> {
            entry[k]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        match merged.iter_mut().find(|(h, _, _)| *h == host) {
            Some((_, v4, v6)) => {
                v4.extend(list("ips"));
                v6.extend(list("ipsv6"));
            }
            None => merged.push((host, list("ips"), list("ipsv6"))),
        }
    }
    assert_eq!(
        merged,
        [
            (
                "www.example.test".to_string(),
                vec!["127.0.10.1".to_string()],
                vec![]
            ),
            (
                "api.example.test".to_string(),
                vec!["127.0.10.2".to_string()],
                vec![]
            ),
        ]
    );
}

#[tokio::test]
async fn node_sdks_schedule_over_https_and_resolve_with_v1_and_v2() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let (plain, tls) = (node.httpdns.unwrap(), node.httpdns_tls.unwrap());
    // Both Node SDKs schedule with https://{bootstrap}/{account}/ss?region=global.
    let (status, body) = https_get(tls, "/139451/ss?region=global").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &body["service_ip"][0]),
        (200, &Value::from(tls.to_string()))
    );

    // The earlier SDK: encodeURIComponent'd parameters, md5 signature.
    let t = now() + 300;
    let path = format!(
        "/139450/sign_d?host=www.example.test&query=4%2C6&t={t}&s={}",
        sign("www.example.test", "c-sdk-secret", t)
    );
    let (status, body) = get(plain, &path).await;
    assert_eq!((status, body["ipsv6"][0].as_str()), (200, Some("::1")));

    // 1.0.0: /v2/d, parameters in insertion order, unencoded, s over the sorted others.
    let exp = now() + 300;
    let sign_v2 = |pairs: &str| {
        use hmac::{Hmac, Mac};
        let key: Vec<u8> = (0..V2_SECRET.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&V2_SECRET[i..i + 2], 16).unwrap())
            .collect();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(pairs.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let dn = "www.example.test,api.example.test";
    let s = sign_v2(&format!("dn={dn}&exp={exp}&id=139451&m=0&q=4,6"));
    let path = format!("/v2/d?id=139451&dn={dn}&q=4,6&m=0&exp={exp}&s={s}");
    let (status, body) = https_get(tls, &path).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], "success");
    let answers = body["data"]["answers"].as_array().unwrap();
    let read: Vec<_> = answers
        .iter()
        .map(|a| {
            (
                a["dn"].as_str().unwrap(),
                a["v4"]["ips"].clone(),
                a["v6"]["ips"].clone(),
                a["v6"]["no_ip_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            (
                "www.example.test",
                serde_json::json!(["127.0.10.1"]),
                serde_json::json!(["::1"]),
                Value::Null
            ),
            (
                "api.example.test",
                serde_json::json!(["127.0.10.2"]),
                serde_json::json!([]),
                Value::from("RRNotExist")
            ),
        ]
    );
    assert_eq!(answers[0]["v4"]["ttl"], 60);

    // Unsigned v2, one family; a name that does not exist.
    let (status, body) = get(plain, "/v2/d?id=139450&dn=nothing.example.test&q=4&m=0").await;
    assert_eq!(
        (status, &body["data"]["answers"][0]["v4"]["no_ip_code"]),
        (200, &Value::from("DomainNotExist"))
    );
    assert!(body["data"]["answers"][0].get("v6").is_none());

    // Its errors: codes and statuses of the service.
    let wrong = format!(
        "/v2/d?id=139451&dn={dn}&q=4,6&m=0&exp={exp}&s={}",
        sign_v2("forged")
    );
    assert_eq!(get(plain, &wrong).await.0, 403);
    assert_eq!(
        get(plain, "/v2/d?id=nobody&dn=www.example.test&q=4&m=0").await,
        (
            403,
            serde_json::json!({"code": "InvalidAccount", "error": "unknown account \"nobody\""})
        )
    );
    assert_eq!(
        get(plain, "/v2/d?id=139450&q=4&m=0").await.1["code"],
        "MissingArgument"
    );
    assert_eq!(
        get(plain, "/v2/d?id=139450&dn=bad..name&q=4&m=0").await.1["code"],
        "InvalidHost"
    );
    assert_eq!(
        get(
            plain,
            "/v2/d?id=139450&dn=a.test,b.test,c.test,d.test&q=4&m=0"
        )
        .await
        .1["code"],
        "TooManyHosts"
    );
    let late = now() + 3 * 86_400;
    let s = sign_v2(&format!("dn=www.example.test&exp={late}&id=139451&m=0&q=4"));
    assert_eq!(
        get(
            plain,
            &format!("/v2/d?id=139451&dn=www.example.test&q=4&m=0&exp={late}&s={s}")
        )
        .await
        .1["code"],
        "InvalidTimestamp"
    );
    let (status, _, _) = http_request(
        plain,
        "POST",
        "/v2/d?id=139450&dn=www.example.test",
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 405);
}
