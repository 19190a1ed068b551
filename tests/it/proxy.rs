//! The caching proxy against a test origin on 127.0.0.1:0 that counts what it is asked.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::dns::http;
use crate::origin::{Origin, cache_status, get};
use crate::support::{Node, http_request, metric, metrics_text};

fn start(origin: &Origin) -> Node {
    Node::start(&[
        "--origin",
        &origin.url(),
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ])
}

#[tokio::test]
async fn stores_serves_and_answers_conditionals_and_ranges() {
    let origin = Origin::start().await;
    let node = start(&origin);

    let (status, headers, body) = get(&node, "/cached", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /cached"));
    assert_eq!(cache_status(&headers), "edgenode; fwd=miss; stored");
    assert!(headers["via"].to_str().unwrap().contains("edgenode"));
    let (status, headers, body) = get(&node, "/cached", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /cached"));
    assert_eq!(cache_status(&headers), "edgenode; hit");
    assert!(headers.contains_key("age"));
    assert_eq!(origin.count("/cached"), 1);

    // Not stored: private and no-store go to the origin every time, saying why.
    for path in ["/private", "/nostore"] {
        get(&node, path, &[]).await;
        let (_, headers, _) = get(&node, path, &[]).await;
        assert!(
            cache_status(&headers).contains("fwd=miss; detail="),
            "{path}: {headers:?}"
        );
        assert_eq!(origin.count(path), 2, "{path}");
    }

    // Conditional requests and ranges from the stored object.
    get(&node, "/etag", &[]).await;
    let (status, _, body) = get(&node, "/etag", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((status, body.as_str()), (304, ""));
    let (status, headers, body) = get(&node, "/cached", &[("range", "bytes=0-4")]).await;
    assert_eq!((status, body.as_str()), (206, "hello"));
    assert_eq!(headers["content-range"], "bytes 0-4/18");
    let (status, headers, _) = get(&node, "/cached", &[("range", "bytes=100-")]).await;
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], "bytes */18");
    let (status, headers, body) =
        http_request(node.http.unwrap(), "HEAD", "/cached", &[], Vec::new()).await;
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(headers["content-length"], "18", "the GET response's length");

    // Vary: each Accept-Language gets its own answer.
    let (_, _, en) = get(&node, "/vary", &[("accept-language", "en")]).await;
    let (_, _, fr) = get(&node, "/vary", &[("accept-language", "fr")]).await;
    assert_eq!((en.as_str(), fr.as_str()), ("en", "fr"));
    // Both variants stay stored side by side.
    for language in ["en", "fr", "en"] {
        let (_, headers, body) = get(&node, "/vary", &[("accept-language", language)]).await;
        assert_eq!(
            (body.as_str(), cache_status(&headers).as_str()),
            (language, "edgenode; hit")
        );
    }
    assert_eq!(origin.count("/vary"), 2);
    assert_eq!(origin.count("/cached"), 1);
}

#[tokio::test]
async fn concurrent_misses_make_one_origin_request() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let mut requests = Vec::new();
    for _ in 0..200 {
        let addr = node.http.unwrap();
        requests.push(tokio::spawn(async move {
            http_request(addr, "GET", "/slow", &[], Vec::new()).await
        }));
    }
    let mut collapsed = 0;
    for request in requests {
        let (status, headers, body) = request.await.unwrap();
        assert_eq!((status, &body[..]), (200, &b"hello from /slow"[..]));
        collapsed += usize::from(cache_status(&headers).contains("collapsed"));
    }
    assert_eq!(origin.count("/slow"), 1);
    assert!(
        collapsed >= 1,
        "some requests waited on the first one's fetch"
    );
}

#[tokio::test]
async fn stale_if_error_purge_and_invalidation() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let admin = node.admin.unwrap();

    // stale-if-error: expired, origin failing: the stored copy is served; must-revalidate: 502.
    get(&node, "/short", &[]).await;
    get(&node, "/strict", &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    origin.failing.store(true, Ordering::SeqCst);
    let (status, headers, body) = get(&node, "/short", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /short"));
    assert!(
        cache_status(&headers).contains("stale-if-error"),
        "{headers:?}"
    );
    // must-revalidate: never stale; the origin's own error goes through.
    let (status, _, body) = get(&node, "/strict", &[]).await;
    assert_eq!((status, body.as_str()), (500, "down"));
    origin.failing.store(false, Ordering::SeqCst);

    // Purge by URL, tag and prefix: the next request goes to the origin again.
    get(&node, "/cached", &[]).await;
    get(&node, "/tagged", &[]).await;
    let host = node.http.unwrap();
    let (status, body) = http(
        admin,
        "POST",
        &format!("/admin/purge?url=http://{host}/cached"),
        None,
    )
    .await;
    assert_eq!(
        (status, body.contains("\"purged\":1")),
        (200, true),
        "{body}"
    );
    get(&node, "/cached", &[]).await;
    assert_eq!(origin.count("/cached"), 2);
    let (_, body) = http(admin, "POST", "/admin/purge?tag=blue", None).await;
    assert!(body.contains("\"purged\":1"), "{body}");
    get(&node, "/tagged", &[]).await;
    assert_eq!(origin.count("/tagged"), 2);
    let (_, body) = http(
        admin,
        "POST",
        &format!("/admin/purge?prefix={host}/ca"),
        None,
    )
    .await;
    assert!(body.contains("\"purged\":1"), "{body}");
    assert_eq!(http(admin, "POST", "/admin/purge", None).await.0, 400);

    // The origin's own answers pass through when they are not errors to hide.
    let (status, _, _) = get(&node, "/never-seen", &[]).await;
    assert_eq!(status, 404, "the origin's own 404 passes through");

    // A successful POST invalidates the stored URL (RFC 9111 4.4).
    get(&node, "/etag", &[]).await;
    let (status, _, _) =
        http_request(node.http.unwrap(), "POST", "/etag", &[], b"x".to_vec()).await;
    assert_eq!(status, 200);
    get(&node, "/etag", &[]).await;
    assert_eq!(origin.count("/etag"), 2);
}

/// No origin listening: 502; an origin slower than the first-byte timeout: 504.
#[tokio::test]
async fn unreachable_and_slow_origins() {
    let down = Node::start(&[
        "--origin",
        "http://127.0.0.1:9",
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let (status, headers, _) = get(&down, "/anything", &[]).await;
    assert_eq!(status, 502);
    assert!(headers.contains_key("cache-status"));

    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\nfirst_byte_timeout_ms = 50\nretries = 0\n",
        crate::support::repo_root().join("zones").display(),
        origin.url()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    let (status, _, body) = get(&node, "/slow", &[]).await;
    assert_eq!(status, 504, "{body}");
}

/// stale-while-revalidate: the stale copy is served at once and refreshed once in the background.
#[tokio::test]
async fn stale_while_revalidate_refreshes_in_the_background() {
    let origin = Origin::start().await;
    let node = start(&origin);
    assert_eq!(get(&node, "/swr", &[]).await.2, "version 1");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, headers, body) = get(&node, "/swr", &[]).await;
    assert_eq!((status, body.as_str()), (200, "version 1"));
    assert!(
        cache_status(&headers).contains("stale-while-revalidate"),
        "{headers:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // Under load the refreshed copy may itself go stale and refresh again before the loop
    // sees it: any later version shows the refresh landed.
    while get(&node, "/swr", &[]).await.2 == "version 1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the background refresh never landed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(origin.count("/swr") >= 2);
}

/// curl over TLS 1.3 and HTTP/2 to the proxy: the second request is a hit.
#[test]
fn curl_over_tls_and_http2() {
    if !crate::support::have_tool("curl") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(Origin::start());
    let node = start(&origin);
    let cert = node.certificate.clone().expect("self-signed certificate");
    let url = format!("https://localhost:{}/cached", node.https.unwrap().port());
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let out = std::process::Command::new("curl")
            .args(["-sv", "--http2", "--cacert", cert.to_str().unwrap(), &url])
            .output()
            .unwrap();
        let verbose = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            verbose.contains("TLSv1.3") && verbose.contains("HTTP/2 200"),
            "{verbose}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from /cached");
        let status = verbose
            .lines()
            .find(|l| l.starts_with("< cache-status:"))
            .unwrap_or_default()
            .to_string();
        statuses.push(status);
    }
    assert_eq!(statuses[1], "< cache-status: edgenode; hit", "{statuses:?}");
    assert_eq!(origin.count("/cached"), 1);
}

/// A stale object with a validator is revalidated: the origin's 304 refreshes the stored copy,
/// and clients' own conditionals never reach the origin on a cache fill.
#[tokio::test]
async fn stale_objects_are_revalidated_with_their_validators() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let (_, _, body) = get(
        &node,
        "/validated",
        &[("if-none-match", "\"something-else\"")],
    )
    .await;
    assert_eq!(
        body, "hello from /validated",
        "the client's If-None-Match is not forwarded"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, headers, body) = get(&node, "/validated", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello from /validated"),
        "the 304 refreshed the stored body"
    );
    assert_eq!(
        cache_status(&headers),
        "edgenode; fwd=stale; fwd-status=304; stored",
        "RFC 9211: forwarded to validate a stale copy, which the 304 refreshed"
    );
    let (_, headers, _) = get(&node, "/validated", &[]).await;
    assert_eq!(
        cache_status(&headers),
        "edgenode; hit",
        "fresh again after revalidation"
    );
    assert_eq!(origin.count("/validated"), 2);
}

/// Objects over `proxy.max_object_size` stream through whole and are not stored.
#[tokio::test]
async fn large_objects_stream_through_uncached() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\nmax_object_size = \"64KiB\"\n",
        crate::support::repo_root().join("zones").display(),
        origin.url()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    for _ in 0..2 {
        let (status, headers, body) = get(&node, "/big", &[]).await;
        assert_eq!((status, body.len()), (200, 200 << 10));
        assert!(cache_status(&headers).contains("too-large"), "{headers:?}");
    }
    assert_eq!(
        origin.count("/big"),
        2,
        "one origin request each: the fill streams what it cannot store"
    );
    assert_eq!(
        get(&node, "/cached", &[]).await.0,
        200,
        "small objects are still stored"
    );
}

/// The cache key ignores the host's case and port: one object, stored once.
#[tokio::test]
async fn cache_keys_are_normalised() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let (_, headers, _) = get(&node, "/cached", &[("host", "Shop.Example.TEST:8080")]).await;
    assert_eq!(cache_status(&headers), "edgenode; fwd=miss; stored");
    let (_, headers, _) = get(&node, "/cached", &[("host", "shop.example.test")]).await;
    assert_eq!(cache_status(&headers), "edgenode; hit");
    let (_, headers, _) = get(&node, "/cached", &[("host", "other.example.test")]).await;
    assert_eq!(
        cache_status(&headers),
        "edgenode; fwd=miss; stored",
        "another host is another object"
    );
    assert_eq!(origin.count("/cached"), 2);
}

/// An origin that keeps failing opens its circuit: requests are refused at once instead of
/// waiting on it, until the open period ends.
#[tokio::test]
async fn failing_origins_open_their_circuit() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"http://127.0.0.1:9\"\nretries = 0\n\
         breaker_failures = 2\nbreaker_open_secs = 60\n",
        crate::support::repo_root().join("zones").display()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    for _ in 0..2 {
        let (status, _, body) = get(&node, "/x", &[]).await;
        assert_eq!(status, 502);
        assert!(!body.contains("circuit"), "{body}");
    }
    let (status, headers, body) = get(&node, "/x", &[]).await;
    assert_eq!(status, 503, "unavailable for a while");
    assert!(body.contains("circuit is open"), "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

/// A 5xx is the origin's answer for that URL: passed on once (no retry), and no reason to
/// cut the origin off for every other URL (anyone could otherwise take an origin off the air
/// by asking for a URL that answers 500).
#[tokio::test]
async fn a_url_that_answers_500_is_an_answer_not_an_outage() {
    let origin = Origin::start().await;
    let node = start(&origin);
    for _ in 0..20 {
        let (status, _, body) = get(&node, "/broken", &[]).await;
        assert_eq!((status, body.as_str()), (500, "broken"));
    }
    assert_eq!(
        origin.count("/broken"),
        20,
        "one origin request per client request"
    );
    let (status, _, body) = get(&node, "/cached", &[]).await;
    assert_eq!((status, body.as_str()), (200, "hello from /cached"));
}

/// `CDN-Cache-Control` speaks to this cache alone: it is followed over `Cache-Control` and not
/// passed on to the client, who sees the origin's `Cache-Control` as it was.
#[tokio::test]
async fn cdn_cache_control_is_followed_and_not_passed_on() {
    let origin = Origin::start().await;
    let node = start(&origin);
    for expected in ["stored", "hit"] {
        let (status, headers, body) = get(&node, "/cdn", &[]).await;
        assert_eq!((status, body.as_str()), (200, "for the cdn"));
        assert!(cache_status(&headers).contains(expected), "{headers:?}");
        assert!(!headers.contains_key("cdn-cache-control"), "{headers:?}");
        assert_eq!(headers["cache-control"], "no-store");
    }
    assert_eq!(origin.count("/cdn"), 1);
}

/// A stale `must-revalidate` response is revalidated with its validator (a 304 refreshes it),
/// not fetched again whole: it is kept past its freshness for that.
#[tokio::test]
async fn a_stale_must_revalidate_response_is_revalidated_conditionally() {
    let origin = Origin::start().await;
    let node = start(&origin);
    get(&node, "/validated-strict", &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, headers, body) = get(&node, "/validated-strict", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello from /validated-strict")
    );
    assert_eq!(
        cache_status(&headers),
        "edgenode; fwd=stale; fwd-status=304; stored"
    );
    assert_eq!(origin.count("/validated-strict"), 2);
}

/// `s-maxage` implies `proxy-revalidate` (RFC 9111 5.2.2.10): without its own stale-if-error
/// a stale copy is not served when the origin fails, whatever the operator's grace.
#[tokio::test]
async fn s_maxage_keeps_a_stale_copy_from_being_served_on_error() {
    let (addr, server) = crate::origin::fixed_origin(
        "HTTP/1.1 200 OK\r\ncache-control: s-maxage=1\r\ncontent-length: 5\r\n\
         connection: close\r\n\r\nhello",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"http://{addr}\"\nretries = 0\n",
        crate::support::repo_root().join("zones").display()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    assert_eq!(get(&node, "/s", &[]).await.0, 200);
    server.abort();
    let _ = server.await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _, body) = get(&node, "/s", &[]).await;
    assert_eq!(status, 502, "{body}");
}

/// A status only the client's request can cause (400, 413, 414, 431) is not stored by
/// default, whatever its freshness: one odd request must not become everyone's answer
/// (cache-poisoned denial of service). `never_store_statuses = []` stores it as RFC 9111 allows.
#[tokio::test]
async fn client_error_pages_are_not_stored_unless_configured() {
    let origin = Origin::start().await;
    let node = start(&origin);
    for _ in 0..2 {
        let (status, headers, body) = get(&node, "/bad-request", &[]).await;
        assert_eq!((status, body.as_str()), (400, "bad request"));
        assert!(
            cache_status(&headers).contains("never-store-status"),
            "{headers:?}"
        );
    }
    assert_eq!(origin.count("/bad-request"), 2);

    let node = crate::origin::node_for(&origin, "never_store_statuses = []\n");
    for expected in ["stored", "hit"] {
        let (status, headers, _) = get(&node, "/bad-request", &[]).await;
        assert_eq!(status, 400);
        assert!(cache_status(&headers).contains(expected), "{headers:?}");
    }
}

/// A 5xx with its own freshness is stored like any response (RFC 9111 3): the origin said how
/// long the answer holds.
#[tokio::test]
async fn an_explicitly_fresh_error_is_stored() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let (status, headers, body) = get(&node, "/fresh-error", &[]).await;
    assert_eq!((status, body.as_str()), (503, "down for maintenance"));
    assert!(cache_status(&headers).contains("stored"), "{headers:?}");
    let (status, headers, _) = get(&node, "/fresh-error", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(cache_status(&headers), "edgenode; hit");
    assert_eq!(origin.count("/fresh-error"), 1);
}

/// An origin that refuses connections opens its circuit (failures over half of the
/// window's outcomes); while it is open, stored content is served stale and the rest gets
/// 503 with Retry-After.
#[tokio::test]
async fn a_refusing_origin_opens_its_circuit_and_stale_content_is_served() {
    let (addr, server) = crate::origin::fixed_origin(
        "HTTP/1.1 200 OK\r\ncache-control: max-age=1, stale-if-error=60\r\n\
         content-length: 5\r\nconnection: close\r\n\r\nhello",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"http://{addr}\"\nretries = 0\n\
         breaker_failures = 2\nbreaker_open_secs = 60\n",
        crate::support::repo_root().join("zones").display()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    for path in ["/a", "/b"] {
        let (status, headers, body) = get(&node, path, &[]).await;
        assert_eq!((status, body.as_str()), (200, "hello"));
        assert!(cache_status(&headers).contains("stored"), "{headers:?}");
    }
    server.abort();
    let _ = server.await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for path in ["/c", "/d"] {
        let (status, _, body) = get(&node, path, &[]).await;
        assert_eq!(status, 502, "{body}");
        assert!(!body.contains("circuit"), "{body}");
    }
    let (status, headers, body) = get(&node, "/e", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("circuit is open"), "{body}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    let (status, headers, body) = get(&node, "/a", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello"),
        "stale while the circuit is open"
    );
    assert!(cache_status(&headers).contains("hit"), "{headers:?}");
}

/// After the open period one request probes the origin while the circuit stays open to the
/// rest; the probe's success closes it, its failure opens it again. (The origin's 500s count
/// as failures here because `breaker_statuses` opts them in.)
#[tokio::test]
async fn a_half_open_circuit_lets_one_probe_through() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\nretries = 0\n\
         breaker_failures = 2\nbreaker_open_secs = 1\nbreaker_statuses = [500]\n",
        crate::support::repo_root().join("zones").display(),
        origin.url()
    );
    let config = crate::support::write_file(dir.path(), "edgenode.toml", &text);
    let node = Node::with_config(&config);
    let addr = node.http.unwrap();
    // Distinct URLs, so that the cache's coalescing plays no part.
    let burst = |from: usize| async move {
        let requests = (from..from + 10).map(|i| async move {
            let path = format!("/cached?{i}");
            http_request(addr, "GET", &path, &[], Vec::new()).await.0
        });
        futures_util::future::join_all(requests).await
    };
    origin.failing.store(true, Ordering::SeqCst);
    for i in 0..2 {
        assert_eq!(get(&node, &format!("/cached?f{i}"), &[]).await.0, 500);
    }
    assert_eq!(origin.count("/cached"), 2);
    let (_, _, body) = get(&node, "/cached?open", &[]).await;
    assert!(body.contains("circuit is open"), "{body}");
    assert_eq!(origin.count("/cached"), 2, "an open circuit sends nothing");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    burst(0).await;
    assert_eq!(origin.count("/cached"), 3, "one probe, and it failed");

    origin.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&node, "/cached?probe", &[]).await.0, 200);
    let statuses = burst(100).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        origin.count("/cached"),
        14,
        "closed again: everything goes through"
    );
}

/// The cache's statistics count requests, not lookups: a miss (however many entries the node
/// looks at to fill it) moves the http misses by one, and the hit after it the hits by one.
#[tokio::test]
async fn one_request_counts_once_in_the_cache_statistics() {
    let origin = Origin::start().await;
    let node = start(&origin);
    let admin = node.admin.unwrap();
    let counted = |text: &str, counter: &str| {
        let line = format!("edgenode_cache_{counter}_total{{namespace=\"http\"}}");
        metric(text, &line)
    };
    let before = metrics_text(admin).await;
    let (_, headers, _) = get(&node, "/cached", &[]).await;
    assert_eq!(cache_status(&headers), "edgenode; fwd=miss; stored");
    let after_miss = metrics_text(admin).await;
    assert_eq!(
        counted(&after_miss, "misses") - counted(&before, "misses"),
        1.0
    );
    assert_eq!(counted(&after_miss, "hits"), counted(&before, "hits"));
    let (_, headers, _) = get(&node, "/cached", &[]).await;
    assert_eq!(cache_status(&headers), "edgenode; hit");
    let after_hit = metrics_text(admin).await;
    assert_eq!(
        counted(&after_hit, "hits") - counted(&after_miss, "hits"),
        1.0
    );
    assert_eq!(
        counted(&after_hit, "misses"),
        counted(&after_miss, "misses")
    );

    // Concurrent misses: each counts once, as the miss that fetched or as coalesced on it.
    let addr = node.http.unwrap();
    let requests: Vec<_> = (0..20)
        .map(|_| tokio::spawn(http_request(addr, "GET", "/slow", &[], Vec::new())))
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().0, 200);
    }
    let after_slow = metrics_text(admin).await;
    let answered = |text: &str| counted(text, "misses") + counted(text, "coalesced");
    assert_eq!(answered(&after_slow) - answered(&after_hit), 20.0);
    assert_eq!(origin.count("/slow"), 1);
}
