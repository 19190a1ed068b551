//! Unit tests of the cache policy, one file per area, table-driven where the rule is a table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::http::{HeaderMap, HeaderName, HeaderValue};

mod cache_control;
mod conditional;
mod freshness;
mod headers;
mod http_date;
mod range;
mod reuse;
mod robustness;
mod storable;
mod targeted;
mod vary;

/// A header map from (name, value) lines, repeated names appended in order.
fn headers(lines: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test header name");
        let value = HeaderValue::from_str(value).expect("test header value");
        map.append(name, value);
    }
    map
}

/// `secs` seconds after the epoch.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// 1994-11-06T08:49:37Z, the RFC's example date, in seconds since the epoch.
const EXAMPLE: u64 = 784_111_777;
const EXAMPLE_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
