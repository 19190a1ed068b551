//! The DNSPod / Tencent Cloud iOS SDK (`DNSPod/httpdns-sdk-ios`) where it differs from the
//! Android one: its request (`/d?dn=%@&clientip=1&ttl=1&query=1&id=%d&sdk=2_VERSION;SESSION`,
//! then `&type=`, `&alg=`/`&token=`, `&ip=`), the names encrypted with `;EXPIRY` appended (now +
//! 10 minutes), and its parser (the host before the first ':' on every line).

use super::dnspod_sdk::{aes_decrypt, aes_encrypt, des_decrypt, des_encrypt, sdk_exchange, start};

/// One family's addresses and TTL, as the iOS SDK keeps them.
type Family = (Vec<String>, String);

/// What the iOS SDK (`DNSPod/httpdns-sdk-ios`, `HttpsDnsResolver parseResultString`) makes of
/// an answer: per line, the host before the first ':' (its final '.' dropped), then exactly
/// `IPS|CIP`, for `addrs` exactly `V4-V6`, each exactly `IPS,TTL`. (host, [(addresses, ttl)]).
fn ios_parse(text: &str, dual: bool) -> Vec<(String, Vec<Family>)> {
    let mut hosts = Vec::new();
    for line in text.split('\n') {
        let Some((host, rest)) = line.split_once(':') else {
            continue;
        };
        let host = host.strip_suffix('.').unwrap_or(host).to_string();
        let [ips, _client]: [&str; 2] = match rest.split('|').collect::<Vec<_>>().try_into() {
            Ok(parts) => parts,
            Err(_) => continue,
        };
        let families: Vec<&str> = if dual {
            ips.split('-').collect()
        } else {
            vec![ips]
        };
        let parsed = families
            .iter()
            .filter_map(
                |family| match family.split(',').collect::<Vec<_>>().as_slice() {
                    [ips, ttl] => Some((
                        ips.split(';').map(str::to_string).collect(),
                        ttl.to_string(),
                    )),
                    _ => None,
                },
            )
            .collect();
        hosts.push((host, parsed));
    }
    hosts
}

#[tokio::test]
async fn ios_sdk_names_every_line_and_sends_an_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let addr = node.httpdns.unwrap();
    let expiry = super::now() + 600;
    let sdk = "&sdk=2_1.12.0;AbCdEfGhIjKl";

    // DES, one name, IPv4: `query=1` names the host even for one.
    let dn = des_encrypt(&format!("www.example.test;{expiry}"));
    let path = format!("/d?dn={dn}&clientip=1&ttl=1&query=1&id=20001{sdk}&alg=des&ip=127.0.1.5");
    let (status, body) = sdk_exchange(addr, &path).await;
    assert_eq!(status, 200);
    let plain = des_decrypt(&body);
    assert_eq!(plain, "www.example.test.:127.0.1.10,60|127.0.1.5");
    assert_eq!(
        ios_parse(&plain, false),
        [(
            "www.example.test".to_string(),
            vec![(vec!["127.0.1.10".to_string()], "60".to_string())]
        )]
    );

    // AES, two names, both families.
    let dn = aes_encrypt(&format!("www.example.test,api.example.test;{expiry}"));
    let path = format!("/d?dn={dn}&clientip=1&ttl=1&query=1&id=20002{sdk}&type=addrs&alg=aes");
    let plain = aes_decrypt(&sdk_exchange(addr, &path).await.1);
    let hosts = ios_parse(&plain, true);
    assert_eq!(hosts.len(), 2, "{plain}");
    assert_eq!(hosts[0].1[1], (vec!["::1".to_string()], "60".to_string()));
    assert_eq!(
        hosts[1].1[0],
        (vec!["127.0.10.2".to_string()], "300".to_string())
    );

    // An expired request is refused.
    let dn = des_encrypt(&format!("www.example.test;{}", expiry - 3600));
    let path = format!("/d?dn={dn}&clientip=1&ttl=1&query=1&id=20001{sdk}&alg=des");
    assert_eq!(sdk_exchange(addr, &path).await, (401, String::new()));
}
