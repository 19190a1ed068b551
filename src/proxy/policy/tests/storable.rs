use hyper::http::{Method, StatusCode};

use super::super::{NotStorable, invalidates, is_cacheable_method, storable};
use super::{EXAMPLE_DATE, headers};

const OK: StatusCode = StatusCode::OK;

fn check(resp: &[(&str, &str)]) -> Result<(), NotStorable> {
    storable(&Method::GET, &headers(&[]), OK, &headers(resp))
}

#[test]
fn cacheable_methods() {
    assert!(is_cacheable_method(&Method::GET));
    assert!(is_cacheable_method(&Method::HEAD));
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        assert!(!is_cacheable_method(&method), "{method}");
        let result = storable(
            &method,
            &headers(&[]),
            OK,
            &headers(&[("cache-control", "max-age=60")]),
        );
        assert_eq!(result, Err(NotStorable::Method), "{method}");
    }
}

#[test]
fn explicit_freshness_or_validator_is_storable() {
    let table: &[&[(&str, &str)]] = &[
        &[("cache-control", "max-age=60")],
        &[("cache-control", "s-maxage=60")],
        &[("expires", EXAMPLE_DATE)],
        // Invalid Expires is explicit (stale) freshness: storable, validated on use.
        &[("expires", "0"), ("etag", "\"a\"")],
        &[("etag", "\"a\"")],
        &[("last-modified", EXAMPLE_DATE)],
        &[("cache-control", "no-cache"), ("etag", "\"a\"")],
    ];
    for resp in table {
        assert_eq!(check(resp), Ok(()), "{resp:?}");
    }
}

#[test]
fn neither_freshness_nor_validator_is_not_stored() {
    for resp in [
        &[][..],
        &[("cache-control", "public")][..],
        &[("cache-control", "no-cache")][..],
        &[("last-modified", "yesterday")][..],
        &[("etag", "")][..],
    ] {
        assert_eq!(check(resp), Err(NotStorable::NoFreshness), "{resp:?}");
    }
}

#[test]
fn validator_alone_needs_a_heuristically_cacheable_status_or_public() {
    let etag = headers(&[("etag", "\"a\"")]);
    let get =
        |status, resp: &hyper::http::HeaderMap| storable(&Method::GET, &headers(&[]), status, resp);
    assert_eq!(get(StatusCode::NOT_FOUND, &etag), Ok(()));
    assert_eq!(get(StatusCode::FOUND, &etag), Err(NotStorable::NoFreshness));
    let public = headers(&[("etag", "\"a\""), ("cache-control", "public")]);
    assert_eq!(get(StatusCode::FOUND, &public), Ok(()));
    let explicit = headers(&[("cache-control", "max-age=5")]);
    assert_eq!(get(StatusCode::FOUND, &explicit), Ok(()));
    assert_eq!(get(StatusCode::SERVICE_UNAVAILABLE, &explicit), Ok(()));
}

#[test]
fn statuses() {
    // RFC 9111 3: any final status with explicit freshness, understood or not; 206 and 304
    // never on their own (this cache stores whole bodies, and a 304 only updates).
    let resp = headers(&[("cache-control", "max-age=60")]);
    for code in [100, 101, 206, 304] {
        let status = StatusCode::from_u16(code).expect("valid code");
        let result = storable(&Method::GET, &headers(&[]), status, &resp);
        assert_eq!(result, Err(NotStorable::Status), "{code}");
    }
    // Under must-understand, only the statuses this cache understands (5.2.2.3).
    let must = headers(&[("cache-control", "max-age=60, must-understand, no-store")]);
    for code in [201, 299, 418, 599] {
        let status = StatusCode::from_u16(code).expect("valid code");
        let result = storable(&Method::GET, &headers(&[]), status, &must);
        assert_eq!(
            result,
            Err(NotStorable::Status),
            "{code} with must-understand"
        );
    }
    assert_eq!(
        storable(&Method::GET, &headers(&[]), StatusCode::OK, &must),
        Ok(())
    );
    for code in [
        200, 201, 203, 204, 299, 300, 301, 302, 303, 307, 308, 401, 404, 410, 418, 451, 499, 500,
        501, 502, 503, 504, 599,
    ] {
        let status = StatusCode::from_u16(code).expect("valid code");
        assert_eq!(
            storable(&Method::GET, &headers(&[]), status, &resp),
            Ok(()),
            "{code}"
        );
    }
}

#[test]
fn no_store_in_request_or_response() {
    let fresh = [("cache-control", "max-age=60")];
    let req = headers(&[("cache-control", "no-store")]);
    assert_eq!(
        storable(&Method::GET, &req, OK, &headers(&fresh)),
        Err(NotStorable::NoStore)
    );
    assert_eq!(
        check(&[("cache-control", "max-age=60, no-store")]),
        Err(NotStorable::NoStore)
    );
    // must-understand with an understood status overrides the response's no-store ...
    assert_eq!(
        check(&[("cache-control", "max-age=60, no-store, must-understand")]),
        Ok(())
    );
    // ... but not the request's.
    let resp = headers(&[("cache-control", "max-age=60, no-store, must-understand")]);
    assert_eq!(
        storable(&Method::GET, &req, OK, &resp),
        Err(NotStorable::NoStore)
    );
}

#[test]
fn private() {
    assert_eq!(
        check(&[("cache-control", "private, max-age=60")]),
        Err(NotStorable::Private)
    );
    // Most restrictive wins.
    assert_eq!(
        check(&[("cache-control", "public, private, max-age=60")]),
        Err(NotStorable::Private)
    );
    // Qualified private: the rest of the response is storable.
    assert_eq!(
        check(&[("cache-control", "private=\"x-user\", max-age=60")]),
        Ok(())
    );
}

#[test]
fn authorization_needs_an_opt_in() {
    let req = headers(&[("authorization", "Bearer t")]);
    let table = [
        ("max-age=60", Err(NotStorable::Authorization)),
        ("max-age=60, public", Ok(())),
        ("max-age=60, must-revalidate", Ok(())),
        ("s-maxage=60", Ok(())),
    ];
    for (cc, want) in table {
        let resp = headers(&[("cache-control", cc)]);
        assert_eq!(storable(&Method::GET, &req, OK, &resp), want, "{cc}");
    }
}

/// A cookie does not keep a response out of the cache (RFC 9111 3 lists no such rule); it is
/// kept out of the stored copy instead (`strip_unshared_fields`).
#[test]
fn set_cookie_does_not_prevent_storing() {
    for cc in ["max-age=60", "max-age=60, public", "s-maxage=60"] {
        let resp = [("cache-control", cc), ("set-cookie", "id=1")];
        assert_eq!(check(&resp), Ok(()), "{cc}");
    }
}

#[test]
fn vary_star_is_not_stored() {
    let resp = [
        ("cache-control", "max-age=60"),
        ("vary", "accept-encoding, *"),
    ];
    assert_eq!(check(&resp), Err(NotStorable::VaryStar));
    let resp = [("cache-control", "max-age=60"), ("vary", "accept-encoding")];
    assert_eq!(check(&resp), Ok(()));
}

#[test]
fn reasons_have_stable_labels() {
    let labels = [
        (NotStorable::Method, "method"),
        (NotStorable::Status, "status"),
        (NotStorable::NoStore, "no-store"),
        (NotStorable::Private, "private"),
        (NotStorable::Authorization, "authorization"),
        (NotStorable::SetCookie, "set-cookie"),
        (NotStorable::VaryStar, "vary-star"),
        (NotStorable::NoFreshness, "no-freshness"),
    ];
    for (reason, label) in labels {
        assert_eq!(reason.as_str(), label);
    }
}

#[test]
fn unsafe_methods_invalidate_on_success_and_redirect() {
    let patch = Method::from_bytes(b"PATCH").expect("method");
    let unknown = Method::from_bytes(b"PURGEALL").expect("method");
    for method in [Method::POST, Method::PUT, Method::DELETE, patch, unknown] {
        for code in [200, 201, 204, 301, 303, 307] {
            let status = StatusCode::from_u16(code).expect("valid code");
            assert!(invalidates(&method, status), "{method} {code}");
        }
        for code in [100, 400, 404, 409, 500, 503] {
            let status = StatusCode::from_u16(code).expect("valid code");
            assert!(!invalidates(&method, status), "{method} {code}");
        }
    }
    for method in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
        assert!(!invalidates(&method, OK), "{method}");
    }
}
