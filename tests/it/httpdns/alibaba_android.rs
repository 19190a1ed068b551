//! Alibaba Cloud's Android SDK (2.6.x), and the iOS SDK's plain request, against `/v2/d`, byte for byte as its `ResolveHostHelper`
//! builds the request and its `ResolveHostResponseParser` / `AESEncryptService` read the answer:
//! the query `id=&m=&dn=&q=&v=1.0&exp=&s=&sdk=android_2.6.5&sid=` (plain), or
//! `id=&m=1|2&enc=&v=1.0&exp=&s=&sdk=..&sid=` with the parameters as JSON in `enc` (AES-CBC or
//! AES-GCM, hex of IV then ciphertext). The signature (its `SignService`) covers `id m dn cip q
//! enc exp tags v` and `sdns-*`, not `sdk` or `sid`. An encrypted answer's `data` is base64 of IV
//! then ciphertext, decrypted as the SDK does.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use serde_json::Value;

use super::now;
use crate::support::{Node, http_request};

const SECRET: &str = "8e5f3a4b1c2d3e4f5a6b7c8d9e0f1a2b";
const AES_KEY: &str = "00112233445566778899aabbccddeeff";

const CONFIG: &str = r#"
[httpdns]
client_rate = 0

[[httpdns.accounts]]
id = "100001"
secret = "8e5f3a4b1c2d3e4f5a6b7c8d9e0f1a2b"
aes_key = "00112233445566778899aabbccddeeff"

[[httpdns.accounts]]
id = "100002"
secret = "8e5f3a4b1c2d3e4f5a6b7c8d9e0f1a2b"
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `SignService.sign`: HMAC-SHA256 over the sorted `k=v` pairs it includes.
fn sign(pairs: &[(&str, &str)]) -> String {
    use hmac::{Hmac, Mac};
    let mut sorted: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    sorted.sort();
    let text: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&unhex(SECRET)).unwrap();
    mac.update(text.join("&").as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// `AESEncryptService.encrypt` with mode 1 (CBC) or 2 (GCM): hex of IV then ciphertext.
fn encrypt(mode: &str, plain: &str) -> String {
    let key = unhex(AES_KEY);
    let iv: Vec<u8> = (0..if mode == "2" { 12 } else { 16 })
        .map(|i| i as u8 * 7)
        .collect();
    let sealed = match mode {
        "1" => cbc::Encryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(plain.as_bytes()),
        _ => aes_gcm::Aes128Gcm::new_from_slice(&key)
            .unwrap()
            .encrypt(aes_gcm::Nonce::from_slice(&iv), plain.as_bytes())
            .unwrap(),
    };
    hex(&[iv, sealed].concat())
}

/// `AESEncryptService.decrypt` of an answer's `data`: base64 of IV then ciphertext.
fn decrypt(mode: &str, data: &str) -> Value {
    let key = unhex(AES_KEY);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let plain = match mode {
        "1" => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &bytes[..16])
            .unwrap()
            .decrypt_padded_vec_mut::<Pkcs7>(&bytes[16..])
            .unwrap(),
        _ => aes_gcm::Aes128Gcm::new_from_slice(&key)
            .unwrap()
            .decrypt(aes_gcm::Nonce::from_slice(&bytes[..12]), &bytes[12..])
            .unwrap(),
    };
    serde_json::from_slice(&plain).unwrap()
}

async fn get(node: &Node, path: &str) -> (u16, Value) {
    let (status, _, body) = http_request(node.httpdns.unwrap(), "GET", path, &[], vec![]).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn v4_of(data: &Value) -> Value {
    data["answers"][0]["v4"]["ips"].clone()
}

#[tokio::test]
async fn the_android_sdk_resolves_plain_and_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::with_zones_and(dir.path(), CONFIG);
    let exp = (now() + 600).to_string();
    let tail = "&sdk=android_2.6.5&sid=a1b2c3d4";

    // Its scheduling request (`UpdateRegionServerTask`): bare addresses, and the ports apart,
    // since it writes `ip:port` itself.
    let (status, body) = get(
        &node,
        "/100001/ss?platform=android&sdk_version=2.6.5&region=global&sid=a1b2",
    )
    .await;
    let port = node.httpdns.unwrap().port();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["service_ip"],
        serde_json::json!(["127.0.0.1"]),
        "{body}"
    );
    assert_eq!(body["service_ip_port"], serde_json::json!([port]), "{body}");

    // Plain, signed: sdk and sid are sent but not signed.
    let dn = "www.example.test";
    let s = sign(&[
        ("id", "100001"),
        ("m", "0"),
        ("dn", dn),
        ("q", "4,6"),
        ("v", "1.0"),
        ("exp", &exp),
    ]);
    let path = format!("/v2/d?id=100001&m=0&dn={dn}&q=4,6&v=1.0&exp={exp}&s={s}{tail}");
    let (status, body) = get(&node, &path).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (200, Some("success")),
        "{body}"
    );
    assert_eq!(v4_of(&body["data"]), serde_json::json!(["127.0.10.1"]));

    // The iOS SDK 3.2 (`HttpdnsRemoteResolver`): its own order, values percent-encoded in the
    // URL but signed as they are, and `sid`, `net`, `sdk` unsigned.
    let s = sign(&[
        ("id", "100001"),
        ("m", "0"),
        ("exp", &exp),
        ("v", "1.0"),
        ("dn", dn),
        ("q", "4,6"),
    ]);
    let path = format!(
        "/v2/d?id=100001&m=0&exp={exp}&v=1.0&dn={dn}&q=4%2C6&s={s}&sid=f00d&net=wifi&sdk=ios_3.2.1"
    );
    let (status, body) = get(&node, &path).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (200, Some("success")),
        "{body}"
    );
    assert_eq!(v4_of(&body["data"]), serde_json::json!(["127.0.10.1"]));

    for mode in ["1", "2"] {
        let enc = encrypt(mode, r#"{"dn":"www.example.test","q":"4,6"}"#);
        let s = sign(&[
            ("enc", &enc),
            ("exp", &exp),
            ("id", "100001"),
            ("m", mode),
            ("v", "1.0"),
        ]);
        let path = format!("/v2/d?id=100001&m={mode}&enc={enc}&v=1.0&exp={exp}&s={s}{tail}");
        let (status, body) = get(&node, &path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (200, Some("success")),
            "m={mode}: {body}"
        );
        // The parser reads `mode` with getString, so a number does.
        assert_eq!(body["mode"].to_string(), mode);
        let data = decrypt(
            mode,
            body["data"].as_str().expect("data sealed, as a string"),
        );
        assert_eq!(v4_of(&data), serde_json::json!(["127.0.10.1"]), "m={mode}");
        assert_eq!(data["answers"][0]["v6"]["ips"], serde_json::json!(["::1"]));

        // A forged signature, an enc under another key, an account without a key.
        let forged = path.replace(&format!("s={s}"), &format!("s={}", "0".repeat(64)));
        assert_eq!(get(&node, &forged).await.0, 403);
        let other = encrypt(mode, "{}").replace(&enc[..4], "ffff");
        let s = sign(&[
            ("enc", &other),
            ("exp", &exp),
            ("id", "100001"),
            ("m", mode),
            ("v", "1.0"),
        ]);
        let path = format!("/v2/d?id=100001&m={mode}&enc={other}&v=1.0&exp={exp}&s={s}");
        let (status, body) = get(&node, &path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("InvalidArgument")),
            "{body}"
        );
        let s = sign(&[
            ("enc", &enc),
            ("exp", &exp),
            ("id", "100002"),
            ("m", mode),
            ("v", "1.0"),
        ]);
        let path = format!("/v2/d?id=100002&m={mode}&enc={enc}&v=1.0&exp={exp}&s={s}");
        let (status, body) = get(&node, &path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("UnsupportedMode")),
            "{body}"
        );
    }
    let (status, body) = get(&node, "/v2/d?id=100001&m=3&dn=www.example.test").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("UnsupportedMode"))
    );
}
