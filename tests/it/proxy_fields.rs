//! What the proxy tells the origin and what it reads from it, beyond RFC 9111: the forwarding
//! fields (`Forwarded`, `X-Forwarded-*`, `Via`), targeted cache directives (its own field,
//! `CDN-Cache-Control`, `Surrogate-Control`), per-host storage rules, and HSTS.

use std::time::SystemTime;

use crate::origin::{Origin, cache_status, get, node_for, reflected};

/// An untrusted client's forwarding fields never reach the origin: the node says who the
/// client is, how it connected and which host it asked for, and names itself in `Via`.
#[tokio::test]
async fn the_origin_learns_the_client_from_the_node_not_from_the_client() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let lies = [
        ("host", "shop.test"),
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9;proto=https"),
        ("x-forwarded-proto", "https"),
        ("x-real-ip", "203.0.113.9"),
        ("surrogate-capability", "abc=\"ESI/1.0\""),
    ];
    let (status, headers, body) = get(&node, "/reflect?untrusted", &lies).await;
    assert_eq!(
        (status, body.as_str()),
        (200, reflected("shop.test").as_str())
    );
    assert_eq!(headers["via"], "1.1 edgenode");
}

/// From a trusted proxy (a load balancer in front), the chain is kept and appended to, and
/// the scheme it reports wins; the node's `cluster.id` names it in `Via` both ways.
#[tokio::test]
async fn a_trusted_proxy_chain_is_appended_to() {
    let origin = Origin::start().await;
    let node = node_for(
        &origin,
        "trusted_proxies = [\"127.0.0.0/8\"]\n[cluster]\nid = \"edge-7\"\n",
    );
    let chain = [
        ("host", "shop.test"),
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9;proto=https"),
        ("x-forwarded-proto", "https"),
        ("via", "1.1 lb"),
    ];
    let (status, headers, body) = get(&node, "/reflect?trusted", &chain).await;
    assert_eq!(status, 200);
    for seen in [
        "x-forwarded-for=203.0.113.9, 127.0.0.1 ",
        "forwarded=for=203.0.113.9;proto=https, for=127.0.0.1;host=shop.test;proto=http ",
        "x-forwarded-proto=https ",
        "x-forwarded-host=shop.test ",
        "via=1.1 lb, 1.1 edge-7 ",
        "surrogate-capability=edge-7=\"Surrogate/1.0\"",
    ] {
        assert!(body.contains(seen), "{seen:?} not in {body}");
    }
    assert_eq!(headers["via"], "1.1 edge-7");
}

/// `Surrogate-Control` is for surrogates: followed over `Cache-Control`, never passed on.
#[tokio::test]
async fn surrogate_control_is_followed_and_not_passed_on() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    for expected in ["stored", "hit"] {
        let (status, headers, body) = get(&node, "/surrogate", &[]).await;
        assert_eq!((status, body.as_str()), (200, "for surrogates"));
        assert!(cache_status(&headers).contains(expected), "{headers:?}");
        assert!(!headers.contains_key("surrogate-control"), "{headers:?}");
        assert!(!headers.contains_key("cdn-cache-control"), "{headers:?}");
        assert_eq!(headers["cache-control"], "no-store");
    }
    assert_eq!(origin.count("/surrogate"), 1);

    // Switched off, it is neither read nor removed.
    let node = node_for(&origin, "surrogate_control = false\n");
    for _ in 0..2 {
        let (_, headers, _) = get(&node, "/surrogate", &[]).await;
        assert!(cache_status(&headers).contains("fwd=miss"), "{headers:?}");
        assert!(headers.contains_key("surrogate-control"), "{headers:?}");
    }
    assert_eq!(origin.count("/surrogate"), 3);
}

/// The node's own targeted field (RFC 9213 2.1) wins over `CDN-Cache-Control`, and goes no
/// further; without it configured, `CDN-Cache-Control: no-store` holds.
#[tokio::test]
async fn the_nodes_own_field_wins_over_cdn_cache_control() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "targeted_cache_control = \"Edge-Cache-Control\"\n");
    for expected in ["stored", "hit"] {
        let (_, headers, body) = get(&node, "/own-field", &[]).await;
        assert_eq!(body, "for this node");
        assert!(cache_status(&headers).contains(expected), "{headers:?}");
        assert!(!headers.contains_key("edge-cache-control"), "{headers:?}");
        assert!(!headers.contains_key("cdn-cache-control"), "{headers:?}");
    }
    assert_eq!(origin.count("/own-field"), 1);
    let node = node_for(&origin, "");
    for _ in 0..2 {
        let (_, headers, _) = get(&node, "/own-field", &[]).await;
        assert!(cache_status(&headers).contains("fwd=miss"), "{headers:?}");
    }
    assert_eq!(origin.count("/own-field"), 3);
}

/// Another node of the cluster asking (a request signed with the cluster's secret) gets the
/// directives meant for caches, so that it stores the object as this node did; a client
/// does not, even one that names this node in `Via`.
#[tokio::test]
async fn another_node_gets_the_targeted_directives() {
    use edgenode::cluster::auth::{AUTH_HEADER, Keys, Target};
    let origin = Origin::start().await;
    let secret = crate::support::CLUSTER_SECRET;
    let node = node_for(&origin, &format!("[cluster]\nsecret = \"{secret}\"\n"));
    // The host as the node normalises it: without the port.
    let target = Target {
        method: &hyper::Method::GET,
        host: "127.0.0.1",
        path: "/cdn",
    };
    let (field, _) = Keys::new(secret.as_bytes()).sign_request("peer", target, SystemTime::now());
    let (_, headers, _) = get(&node, "/cdn", &[(AUTH_HEADER, field.to_str().unwrap())]).await;
    assert_eq!(headers["cdn-cache-control"], "max-age=60");
    for posing in [&[][..], &[("via", "1.1 edgenode")][..]] {
        let (_, headers, _) = get(&node, "/cdn", posing).await;
        assert!(!headers.contains_key("cdn-cache-control"), "{headers:?}");
    }
}

/// A response that sets a cookie is stored when the origin marks it shared, unless its host
/// (or `[proxy]`) says never to store such responses.
#[tokio::test]
async fn set_cookie_responses_can_be_kept_out_per_host() {
    let origin = Origin::start().await;
    let node = node_for(
        &origin,
        "[[proxy.hosts]]\nhost = \"shop.test\"\norigins = [\"ORIGIN\"]\nnever_store_set_cookie = true\n"
            .replace("ORIGIN", &origin.url())
            .as_str(),
    );
    for expected in ["stored", "hit"] {
        let (_, headers, _) = get(&node, "/cookie", &[("host", "www.test")]).await;
        assert!(cache_status(&headers).contains(expected), "{headers:?}");
    }
    for _ in 0..2 {
        let (_, headers, body) = get(&node, "/cookie", &[("host", "shop.test")]).await;
        assert_eq!(body, "with a cookie");
        assert_eq!(headers["set-cookie"], "visitor=1; Path=/");
        assert!(
            cache_status(&headers).contains("detail=\"set-cookie\""),
            "{headers:?}"
        );
    }
    assert_eq!(origin.count("/cookie"), 3);
}

/// A fresh response that sets a cookie, not marked shared, is stored without its cookie (as
/// Traffic Server and Squid do): the client whose request fetched it gets the cookie, the
/// clients that shared that fetch and every later hit do not.
#[tokio::test]
async fn a_cookie_goes_to_the_fetching_client_alone() {
    let origin = Origin::start().await;
    let node = node_for(&origin, "");
    let one = || get(&node, "/session", &[]);
    let answers = [one(), one(), one(), one()];
    let answers = futures_util::future::join_all(answers).await;
    assert_eq!(origin.count("/session"), 1);
    let cookies: Vec<_> = answers
        .iter()
        .filter_map(|(_, headers, _)| headers.get("set-cookie"))
        .collect();
    assert_eq!(cookies, ["session=1"], "{answers:?}");
    for (status, _, body) in &answers {
        assert_eq!((*status, body.as_str()), (200, "hello from /session"));
    }
    let (_, headers, body) = get(&node, "/session", &[]).await;
    assert!(cache_status(&headers).contains("hit"), "{headers:?}");
    assert!(!headers.contains_key("set-cookie"), "{headers:?}");
    assert_eq!(body, "hello from /session");
    assert_eq!(origin.count("/session"), 1);
}

/// HSTS goes on HTTPS answers only, with the host's own value where it has one.
#[test]
fn hsts_is_sent_over_https_only() {
    if !crate::support::have_tool("curl") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let extra = format!(
        "hsts = \"max-age=31536000; includeSubDomains\"\n\
         [[proxy.hosts]]\nhost = \"localhost\"\norigins = [\"{}\"]\nhsts = \"max-age=60\"\n",
        origin.url()
    );
    let node = node_for(&origin, &extra);
    let cert = node.certificate.clone().expect("self-signed certificate");
    let hsts = |url: String, host: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
            .arg(&cert)
            .args(["-H", &format!("host: {host}"), &url])
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(head.starts_with("http/"), "{url}: {head}");
        head.lines()
            .find_map(|l| l.strip_prefix("strict-transport-security: "))
            .map(|v| v.trim().to_string())
    };
    let https = format!("https://localhost:{}/cached", node.https.unwrap().port());
    let http = format!("http://localhost:{}/cached", node.http.unwrap().port());
    assert_eq!(
        hsts(https.clone(), "localhost").as_deref(),
        Some("max-age=60")
    );
    assert_eq!(
        hsts(https, "www.test").as_deref(),
        Some("max-age=31536000; includesubdomains")
    );
    assert_eq!(hsts(http, "localhost"), None);
}
