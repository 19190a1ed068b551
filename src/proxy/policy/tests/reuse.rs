use hyper::http::StatusCode;

use super::super::{CacheControl, Reuse, StoredMeta, reuse, serve_stale_on_error};
use super::{EXAMPLE, at, headers, secs};

/// A stored response with `lifetime` and `age` (seconds) and response directives `resp_cc`.
fn stored(lifetime: u64, age: u64, resp_cc: &str) -> StoredMeta {
    StoredMeta {
        lifetime: secs(lifetime),
        age: secs(age),
        cache_control: CacheControl::parse(&headers(&[("cache-control", resp_cc)])),
    }
}

fn req(cc: &str) -> CacheControl {
    CacheControl::parse(&headers(&[("cache-control", cc)]))
}

use Reuse::{Fresh, MustValidate, OnlyIfCachedMiss, StaleAccepted, StaleWhileRevalidate};

#[test]
fn decision_table() {
    // (lifetime, age, response directives, request directives, decision)
    let table: &[(u64, u64, &str, &str, Reuse)] = &[
        (60, 10, "", "", Fresh),
        // Fresh means lifetime > age: at exactly the lifetime it is stale.
        (60, 60, "", "", MustValidate),
        (60, 61, "", "", MustValidate),
        (0, 0, "", "", MustValidate),
        // Response no-cache: validate even when fresh.
        (60, 10, "no-cache", "", MustValidate),
        (60, 10, "no-cache, immutable", "", MustValidate),
        // Qualified no-cache only strips fields at store time.
        (60, 10, "no-cache=\"set-cookie\"", "", Fresh),
        // Request no-cache, max-age, min-fresh.
        (60, 10, "", "no-cache", MustValidate),
        (60, 10, "", "max-age=0", MustValidate),
        (60, 10, "", "max-age=10", Fresh),
        (60, 10, "", "max-age=9", MustValidate),
        (60, 10, "", "min-fresh=50", Fresh),
        (60, 10, "", "min-fresh=51", MustValidate),
        (60, 70, "", "min-fresh=0", MustValidate),
        // Immutable and fresh: a reload's no-cache / max-age=0 is not worth a round trip.
        (60, 10, "immutable", "no-cache", Fresh),
        (60, 10, "immutable", "max-age=0", Fresh),
        (60, 10, "immutable", "min-fresh=100", Fresh),
        // ... but stale immutable is just stale.
        (60, 70, "immutable", "", MustValidate),
        // max-stale.
        (60, 70, "", "max-stale", StaleAccepted),
        (60, 70, "", "max-stale=10", StaleAccepted),
        (60, 70, "", "max-stale=9", MustValidate),
        (60, 70, "must-revalidate", "max-stale", MustValidate),
        (60, 70, "proxy-revalidate", "max-stale", MustValidate),
        // s-maxage implies proxy-revalidate for a shared cache.
        (60, 70, "s-maxage=60", "max-stale", MustValidate),
        // The request's max-age still bounds max-stale.
        (60, 70, "", "max-stale, max-age=65", MustValidate),
        // stale-while-revalidate.
        (
            60,
            70,
            "stale-while-revalidate=10",
            "",
            StaleWhileRevalidate,
        ),
        (60, 71, "stale-while-revalidate=10", "", MustValidate),
        (
            60,
            70,
            "stale-while-revalidate=30, must-revalidate",
            "",
            MustValidate,
        ),
        (
            60,
            70,
            "stale-while-revalidate=30, proxy-revalidate",
            "",
            MustValidate,
        ),
        (
            60,
            70,
            "s-maxage=60, stale-while-revalidate=30",
            "",
            StaleWhileRevalidate,
        ),
        (
            60,
            70,
            "stale-while-revalidate=30",
            "no-cache",
            MustValidate,
        ),
        (
            60,
            70,
            "stale-while-revalidate=30",
            "max-age=0",
            MustValidate,
        ),
        // A client's max-stale beats the origin's background refresh label.
        (
            60,
            70,
            "stale-while-revalidate=30",
            "max-stale=20",
            StaleAccepted,
        ),
        // stale-if-error alone does not allow serving stale before an error.
        (60, 70, "stale-if-error=600", "", MustValidate),
        // only-if-cached.
        (60, 10, "", "only-if-cached", Fresh),
        (60, 70, "", "only-if-cached", OnlyIfCachedMiss),
        (60, 10, "no-cache", "only-if-cached", OnlyIfCachedMiss),
        (
            60,
            70,
            "stale-while-revalidate=30",
            "only-if-cached",
            StaleWhileRevalidate,
        ),
        (60, 70, "", "only-if-cached, max-stale", StaleAccepted),
    ];
    for &(lifetime, age, resp_cc, req_cc, want) in table {
        let got = reuse(&stored(lifetime, age, resp_cc), &req(req_cc));
        assert_eq!(
            got, want,
            "lifetime={lifetime} age={age} resp=[{resp_cc}] req=[{req_cc}]"
        );
    }
}

#[test]
fn stale_on_error_table() {
    // (lifetime, age, response directives, request directives, may serve on error)
    let table: &[(u64, u64, &str, &str, bool)] = &[
        // Stale without permission: no.
        (60, 70, "", "", false),
        (60, 70, "stale-if-error=10", "", true),
        (60, 71, "stale-if-error=10", "", false),
        // The request may grant it too (RFC 5861 4); the larger window counts.
        (60, 70, "", "stale-if-error=10", true),
        (60, 90, "stale-if-error=10", "stale-if-error=30", true),
        // must-revalidate / proxy-revalidate: an error, never stale.
        (60, 70, "stale-if-error=600, must-revalidate", "", false),
        (
            60,
            70,
            "stale-if-error=600, proxy-revalidate",
            "stale-if-error=600",
            false,
        ),
        // no-cache either side: validation must succeed.
        (60, 10, "no-cache, stale-if-error=600", "", false),
        (60, 10, "stale-if-error=600", "no-cache", false),
        // Still fresh (validation asked only by max-age / min-fresh): serve it.
        (60, 10, "", "max-age=0", true),
        (60, 10, "must-revalidate", "min-fresh=100", true),
        // Explicit stale-if-error beats the proxy-revalidate implied by s-maxage.
        (60, 70, "s-maxage=60, stale-if-error=60", "", true),
        // stale-while-revalidate is not stale-if-error.
        (60, 70, "stale-while-revalidate=600", "", false),
    ];
    for &(lifetime, age, resp_cc, req_cc, want) in table {
        let got = serve_stale_on_error(&stored(lifetime, age, resp_cc), &req(req_cc));
        assert_eq!(
            got, want,
            "lifetime={lifetime} age={age} resp=[{resp_cc}] req=[{req_cc}]"
        );
    }
}

#[test]
fn stored_meta_from_headers() {
    let resp = headers(&[
        ("cache-control", "max-age=100, stale-while-revalidate=5"),
        ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("age", "20"),
    ]);
    let t = EXAMPLE;
    let meta = StoredMeta::new(
        &resp,
        StatusCode::OK,
        at(t),
        at(t),
        at(t + 30),
        secs(86_400),
    );
    assert_eq!(meta.lifetime, secs(100));
    assert_eq!(meta.age, secs(50));
    assert!(meta.is_fresh());
    assert_eq!(meta.staleness(), secs(0));
    assert_eq!(meta.cache_control.stale_while_revalidate, Some(5));
    let later = StoredMeta::new(
        &resp,
        StatusCode::OK,
        at(t),
        at(t),
        at(t + 83),
        secs(86_400),
    );
    assert_eq!(later.staleness(), secs(3));
    assert_eq!(
        reuse(&later, &CacheControl::default()),
        StaleWhileRevalidate
    );
}

#[test]
fn no_freshness_information_means_zero_lifetime() {
    let meta = StoredMeta::new(
        &headers(&[("etag", "\"x\"")]),
        StatusCode::OK,
        at(1),
        at(1),
        at(1),
        secs(60),
    );
    assert_eq!(meta.lifetime, secs(0));
    assert_eq!(reuse(&meta, &CacheControl::default()), MustValidate);
}

#[test]
fn labels() {
    let labels = [
        (Fresh, "fresh"),
        (StaleWhileRevalidate, "stale-while-revalidate"),
        (StaleAccepted, "stale-accepted"),
        (MustValidate, "must-validate"),
        (OnlyIfCachedMiss, "only-if-cached-miss"),
    ];
    for (decision, label) in labels {
        assert_eq!(decision.as_str(), label);
    }
}
