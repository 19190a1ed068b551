//! The DNSPod / Tencent Cloud Android SDK (4.10) as it talks to a node: its exact request lines
//! (`dn=%s&ip=%s&clientip=1&ttl=1&id=%s[&token=%s][&type=aaaa|addrs]` then `&alg=des|aes` and
//! `&sdk=1_4.10.1a`), its DES (ECB, PKCS#5, hex) and AES (CBC, PKCS#7, random IV as a hex
//! prefix, key padded with "0") ciphers, its hand-written HTTP/1.1 exchange (`HttpHelper`:
//! `Connection: keep-alive`, read until Content-Length, the body after the blank line only if
//! the status line says OK), and its `ResponseParser` regular expressions, matched greedily as
//! `java.util.regex` matches them.

use std::net::SocketAddr;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::alibaba_sdk::https_get;
use crate::support::Node;

const SDK: &str = "&sdk=1_4.10.1a";
const DES_KEY: &str = "dnspodk1";
const AES_KEY: &str = "aes-key-20002";

const CONFIG: &str = r#"
[httpdns]
client_rate = 0

[[httpdns.dnspod_keys]]
id = "20001"
key = "dnspodk1"
token = "tok-123"

[[httpdns.dnspod_keys]]
id = "20002"
key = "aes-key-20002"

[[geoip.overrides]]
cidr = "127.0.1.0/24"
continent = "AS"
"#;

pub(super) fn start(dir: &std::path::Path) -> Node {
    Node::with_zones_and(dir, CONFIG)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2 * 2)
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `DesCipherSuite.encrypt`: DES/ECB/PKCS5Padding under the key's bytes, hex.
pub(super) fn des_encrypt(text: &str) -> String {
    let cipher = ecb::Encryptor::<des::Des>::new_from_slice(&DES_KEY.as_bytes()[..8]).unwrap();
    hex(&cipher.encrypt_padded_vec_mut::<Pkcs7>(text.as_bytes()))
}

pub(super) fn des_decrypt(text: &str) -> String {
    let cipher = ecb::Decryptor::<des::Des>::new_from_slice(&DES_KEY.as_bytes()[..8]).unwrap();
    String::from_utf8(
        cipher
            .decrypt_padded_vec_mut::<Pkcs7>(&unhex(text))
            .unwrap(),
    )
    .unwrap()
}

/// `AesCipherSuite.toMakeKey`: shorter keys are padded with "0" to 16 bytes.
fn aes_key() -> Vec<u8> {
    let mut key = AES_KEY.as_bytes().to_vec();
    key.resize(16, b'0');
    key
}

/// `AesCipherSuite.encrypt`: a random IV, AES/CBC/PKCS7Padding, hex(IV || ciphertext).
pub(super) fn aes_encrypt(text: &str) -> String {
    let mut iv = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut iv);
    let cipher = cbc::Encryptor::<aes::Aes128>::new_from_slices(&aes_key(), &iv).unwrap();
    let mut out = iv.to_vec();
    out.extend(cipher.encrypt_padded_vec_mut::<Pkcs7>(text.as_bytes()));
    hex(&out)
}

pub(super) fn aes_decrypt(text: &str) -> String {
    let bytes = unhex(text);
    let (iv, data) = bytes.split_at(16);
    let cipher = cbc::Decryptor::<aes::Aes128>::new_from_slices(&aes_key(), iv).unwrap();
    String::from_utf8(cipher.decrypt_padded_vec_mut::<Pkcs7>(data).unwrap()).unwrap()
}

/// The SDK's non-blocking session: `HttpHelper.getRequest`, reads until the body is as long as
/// Content-Length (`checkHttpRspFinished`), then (status, `responseBody`).
pub(super) async fn sdk_exchange(addr: SocketAddr, file: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {file} HTTP/1.1\r\nConnection: keep-alive\r\nHost: {}\r\n\r\n",
        addr.ip()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the body was complete");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length = text[..end]
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .map(|(_, value)| value.trim().parse::<usize>().unwrap());
        if length == Some(text.len() - end - 4) {
            break;
        }
    }
    let text = String::from_utf8(raw).unwrap();
    let status = text[9..12].parse().unwrap();
    // `rawRsp.split(CRLF + CRLF)`: two parts (trailing empty strings dropped), the first
    // saying OK.
    let mut parts: Vec<&str> = text.split("\r\n\r\n").collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    let body = match parts.as_slice() {
        [head, body] if head.contains("OK") => body.to_string(),
        _ => String::new(),
    };
    (status, body)
}

/// What `AbsHttpDns.lookup` (the blocking path, which HTTPS always takes) makes of a body: each
/// `readLine()` plus "\n", then the last two characters cut ("the final \n"), which takes the
/// last character of the client IP with it; addresses and TTLs stay whole.
fn blocking_read(body: &str) -> String {
    let mut raw: String = body.lines().map(|line| format!("{line}\n")).collect();
    let keep = raw.len().saturating_sub(2);
    raw.truncate(keep);
    raw
}

/// `Matcher.matches()` of `(.*)S1(.*)S2...(.*)`, greedy as java.util.regex is (`.` never
/// matches a newline): the groups, or None.
fn groups<'a>(text: &'a str, separators: &[&str]) -> Option<Vec<&'a str>> {
    let Some((first, rest)) = separators.split_first() else {
        return (!text.contains('\n')).then(|| vec![text]);
    };
    for pos in (0..=text.len()).rev() {
        if !text.is_char_boundary(pos) || !text[pos..].starts_with(first) {
            continue;
        }
        if text[..pos].contains('\n') {
            continue;
        }
        if let Some(mut tail) = groups(&text[pos + first.len()..], rest) {
            tail.insert(0, &text[..pos]);
            return Some(tail);
        }
    }
    None
}

/// `Response.fixIps`: what is not an address of the family ("0" for none) is dropped.
fn fix_ips(ips: &str, v6: bool) -> Vec<String> {
    ips.split(';')
        .filter(|ip| match ip.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_ipv6() == v6,
            Err(_) => false,
        })
        .map(str::to_string)
        .collect()
}

/// What `ResponseParser.parseResponse` returns: (client ip, IPv4 (or the family's) addresses,
/// IPv6 addresses, TTL per host), None for `Response.EMPTY`.
type Parsed = (String, Vec<String>, Vec<String>, Vec<(String, u32)>);

fn parse(raw: &str, family: &str) -> Option<Parsed> {
    if raw.is_empty() {
        return None;
    }
    let lines: Vec<&str> = raw.split('\n').collect();
    let v6 = family == "aaaa";
    let mut client = String::new();
    let (mut four, mut six, mut ttls) = (Vec::new(), Vec::new(), Vec::new());
    if family == "addrs" {
        if lines.len() > 1 {
            for line in lines {
                let Some(g) = groups(line, &[".:", ",", "-", ",", "|"]) else {
                    continue;
                };
                client = format!("{},", g[5]);
                let ttl = g[2].parse::<u32>().ok()?.min(g[4].parse().ok()?);
                ttls.push((g[0].to_string(), ttl));
                four.extend(
                    fix_ips(g[1], false)
                        .into_iter()
                        .map(|ip| format!("{}:{ip}", g[0])),
                );
                six.extend(
                    fix_ips(g[3], true)
                        .into_iter()
                        .map(|ip| format!("{}:{ip}", g[0])),
                );
            }
            return Some((client, four, six, ttls));
        }
        let g = groups(lines[0], &[",", "-", ",", "|"])?;
        let ttl = g[1].parse::<u32>().ok()?.min(g[3].parse().ok()?);
        return Some((
            g[4].to_string(),
            fix_ips(g[0], false),
            fix_ips(g[2], true),
            vec![("onehost".into(), ttl)],
        ));
    }
    if lines.len() > 1 {
        for line in lines {
            let Some(g) = groups(line, &[".:", ",", "|"]) else {
                continue;
            };
            client = format!("{},", g[3]);
            four.extend(g[1].split(';').map(|ip| format!("{}:{ip}", g[0])));
            ttls.push((g[0].to_string(), g[2].parse().ok()?));
        }
        return (!four.is_empty()).then_some((client, four, six, ttls));
    }
    let g = groups(raw, &[",", "|"])?;
    Some((
        g[2].to_string(),
        fix_ips(g[0], v6),
        Vec::new(),
        vec![("onehost".into(), g[1].parse().ok()?)],
    ))
}

#[test]
fn greedy_groups_match_java_regex() {
    assert_eq!(
        groups("1.1.1.1;2.2.2.2,60|9.9.9.9", &[",", "|"]),
        Some(vec!["1.1.1.1;2.2.2.2", "60", "9.9.9.9"])
    );
    assert_eq!(
        groups("a.test.:1.1.1.1,60|9.9.9.9", &[".:", ",", "|"]),
        Some(vec!["a.test", "1.1.1.1", "60", "9.9.9.9"])
    );
    assert_eq!(
        groups("1.1.1.1,60-::1,30|9.9.9.9", &[",", "-", ",", "|"]),
        Some(vec!["1.1.1.1", "60", "::1", "30", "9.9.9.9"])
    );
    assert_eq!(
        groups("1.1.1.1,60", &[",", "|"]),
        None,
        "no |CLIENT_IP: nothing parses"
    );
}

#[tokio::test]
async fn android_sdk_des_single_and_batch() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let addr = node.httpdns.unwrap();

    // A, one host: IPS,TTL|CLIENT_IP.
    let dn = des_encrypt("www.example.test");
    let file = format!("/d?dn={dn}&ip=&clientip=1&ttl=1&id=20001&alg=des{SDK}");
    let (status, body) = sdk_exchange(addr, &file).await;
    assert_eq!(status, 200);
    let plain = des_decrypt(&body);
    assert_eq!(plain, "127.0.10.1,60|127.0.0.1");
    assert_eq!(
        parse(&plain, "a"),
        Some((
            "127.0.0.1".into(),
            vec!["127.0.10.1".into()],
            vec![],
            vec![("onehost".into(), 60)]
        ))
    );

    // The route ip steers the answer.
    let file = format!("/d?dn={dn}&ip=127.0.1.5&clientip=1&ttl=1&id=20001&alg=des{SDK}");
    assert_eq!(
        des_decrypt(&sdk_exchange(addr, &file).await.1),
        "127.0.1.10,60|127.0.1.5"
    );

    // Batch: one `host.:IPS,TTL|CIP` line per host.
    let dn = des_encrypt("www.example.test,api.example.test");
    let file = format!("/d?dn={dn}&ip=&clientip=1&ttl=1&id=20001&alg=des{SDK}");
    let plain = des_decrypt(&sdk_exchange(addr, &file).await.1);
    assert_eq!(
        plain,
        "www.example.test.:127.0.10.1,60|127.0.0.1\napi.example.test.:127.0.10.2,300|127.0.0.1"
    );
    let (client, ips, _, ttls) = parse(&plain, "a").unwrap();
    assert_eq!(client, "127.0.0.1,");
    assert_eq!(
        ips,
        ["www.example.test:127.0.10.1", "api.example.test:127.0.10.2"]
    );
    assert_eq!(
        ttls,
        [
            ("www.example.test".to_string(), 60),
            ("api.example.test".to_string(), 300)
        ]
    );

    // AAAA without a record: "0", which the SDK drops (no record, not a parse failure).
    let dn = des_encrypt("api.example.test");
    let file = format!("/d?dn={dn}&ip=&clientip=1&ttl=1&id=20001&type=aaaa&alg=des{SDK}");
    let plain = des_decrypt(&sdk_exchange(addr, &file).await.1);
    assert_eq!(plain, "0,0|127.0.0.1");
    assert_eq!(parse(&plain, "aaaa").map(|p| p.1), Some(vec![]));
}

#[tokio::test]
async fn android_sdk_aes_both_families() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let addr = node.httpdns.unwrap();

    let dn = aes_encrypt("www.example.test");
    let file = format!("/d?dn={dn}&ip=&clientip=1&ttl=1&id=20002&type=addrs&alg=aes{SDK}");
    let (status, body) = sdk_exchange(addr, &file).await;
    assert_eq!(status, 200);
    let plain = aes_decrypt(&body);
    assert_eq!(plain, "127.0.10.1,60-::1,60|127.0.0.1");
    assert_eq!(
        parse(&plain, "addrs"),
        Some((
            "127.0.0.1".into(),
            vec!["127.0.10.1".into()],
            vec!["::1".into()],
            vec![("onehost".into(), 60)]
        ))
    );
    assert_ne!(
        aes_decrypt(&body),
        "",
        "a fresh IV per answer still decrypts"
    );

    let dn = aes_encrypt("www.example.test,api.example.test");
    let file = format!("/d?dn={dn}&ip=&clientip=1&ttl=1&id=20002&type=addrs&alg=aes{SDK}");
    let plain = aes_decrypt(&sdk_exchange(addr, &file).await.1);
    assert_eq!(
        plain,
        "www.example.test.:127.0.10.1,60-::1,60|127.0.0.1\napi.example.test.:127.0.10.2,300-0,0|127.0.0.1"
    );
    let (_, four, six, ttls) = parse(&plain, "addrs").unwrap();
    assert_eq!(
        four,
        ["www.example.test:127.0.10.1", "api.example.test:127.0.10.2"]
    );
    assert_eq!(six, ["www.example.test:::1"]);
    assert_eq!(
        ttls,
        [
            ("www.example.test".to_string(), 60),
            ("api.example.test".to_string(), 0)
        ]
    );
}

#[tokio::test]
async fn android_sdk_https_token_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let (addr, tls) = (node.httpdns.unwrap(), node.httpdns_tls.unwrap());

    // HTTPS: the name in the clear, the id's token.
    let path = format!(
        "/d?dn=www.example.test&ip=&clientip=1&ttl=1&id=20001&token=tok-123&type=aaaa{SDK}"
    );
    let (status, body) = https_get(tls, &path).await;
    assert_eq!((status, body.as_str()), (200, "::1,60|127.0.0.1"));
    let (_, ips, _, ttls) = parse(&blocking_read(&body), "aaaa").unwrap();
    assert_eq!(
        (ips, ttls),
        (vec!["::1".to_string()], vec![("onehost".to_string(), 60)])
    );
    let dn = "www.example.test,api.example.test";
    let path = format!("/d?dn={dn}&ip=&clientip=1&ttl=1&id=20001&token=tok-123{SDK}");
    let (_, ips, _, _) = parse(&blocking_read(&https_get(tls, &path).await.1), "a").unwrap();
    assert_eq!(
        ips,
        ["www.example.test:127.0.10.1", "api.example.test:127.0.10.2"]
    );
    let path = format!("/d?dn=www.example.test&ip=&clientip=1&ttl=1&id=20001&token=guess{SDK}");
    assert_eq!(https_get(tls, &path).await, (401, String::new()));

    // Errors: an empty body and the status, which the SDK reads as a failed lookup.
    let cases = [
        (
            format!("/d?dn=zz&ip=&clientip=1&ttl=1&id=20001&alg=des{SDK}"),
            400,
        ),
        (
            format!(
                "/d?dn={}&ip=&clientip=1&ttl=1&id=20002&alg=aes{SDK}",
                des_encrypt("www.example.test")
            ),
            400,
        ),
        (
            format!("/d?dn=abcd&ip=&clientip=1&ttl=1&id=99999&alg=des{SDK}"),
            401,
        ),
        (
            format!("/d?ip=&clientip=1&ttl=1&id=20001&alg=des{SDK}"),
            400,
        ),
    ];
    for (file, expected) in cases {
        let (status, body) = sdk_exchange(addr, &file).await;
        assert_eq!((status, body.as_str()), (expected, ""), "{file}");
    }

    // Without `clientip=1` the answer has no `|CLIENT_IP`, as before.
    let (status, body) = sdk_exchange(addr, "/d?dn=www.example.test&ttl=1").await;
    assert_eq!((status, body.as_str()), (200, "127.0.10.1,60"));
}
