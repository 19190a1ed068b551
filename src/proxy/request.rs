//! What a client's request names, and what of it reaches the origin: the one host that both the
//! cache key and the origin request use, and the fields a client must not pass to the origin.
//!
//! The cache key is host + path + query. Anything else the origin reads from the request and
//! reflects in a response is unkeyed: one client could make the origin build a page for
//! `X-Forwarded-Host: evil.test` that the cache then serves everyone. So the origin gets exactly
//! the keyed host, and none of the fields origins and frameworks take as overrides of the host,
//! URL, scheme or method (as Varnish setups `unset` them, and as nginx's `proxy_set_header
//! Host $host` does for the host).

use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Request, Response, Version};

use super::forwarded::FORWARDING_FIELDS;
use super::policy;
use crate::cluster::SIBLING_HEADER;
use crate::http_server::Body;

/// Request fields that name another host, URL, scheme, port or method than the request's own.
/// Only a proxy in front of the origin may set them, and this node is the first one that sets
/// them: a client sending them is never forwarded. (`forwarded::FORWARDING_FIELDS` are kept
/// from trusted proxies.)
const OVERRIDE_FIELDS: [&str; 11] = [
    "x-forwarded-server",
    "x-forwarded-port",
    "x-forwarded-scheme",
    "x-forwarded-prefix",
    "x-original-host",
    "x-host",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The host the request is for, normalised as the cache key and the origin request use it:
/// lowercased, without a port or a trailing dot. From the request target's authority when it
/// has one (absolute-form, RFC 9112 3.2.2; HTTP/2 `:authority`), else from `Host`. Empty for an
/// HTTP/1.0 request that names none (the default origin serves it).
///
/// Errors (answer 400, RFC 9112 3.2): more than one `Host` line, no host in an HTTP/1.1 or
/// HTTP/2 request, or a host that is not a DNS name or IP literal (which could otherwise make
/// a key such as `example.test/private` + `/x` collide with `example.test` + `/private/x`).
pub(super) fn host<B>(req: &Request<B>) -> Result<String, &'static str> {
    let mut host_lines = req.headers().get_all(header::HOST).iter();
    let host_line = host_lines.next();
    if host_lines.next().is_some() {
        return Err("more than one Host header field");
    }
    let raw = match (req.uri().authority(), host_line) {
        (Some(authority), _) => authority.as_str(),
        (None, Some(line)) => line
            .to_str()
            .map_err(|_| "a Host that is not a host name")?,
        (None, None) if req.version() <= Version::HTTP_10 => return Ok(String::new()),
        (None, None) => return Err("no Host header field"),
    };
    normalise(raw).ok_or("a Host that is not a host name")
}

/// `raw` as `host[:port]`: the host lowercased, a trailing dot removed, the port dropped; None
/// unless the host is a DNS name (letters, digits, `-`, `_`, dots between labels) or an IP
/// literal and the port is numeric. Userinfo (`user@host`) is refused too.
fn normalise(raw: &str) -> Option<String> {
    let (host, port) = match raw.strip_prefix('[') {
        Some(rest) => {
            let (literal, after) = rest.split_once(']')?;
            let ipv6 = literal.parse::<std::net::Ipv6Addr>().ok()?;
            let port = if after.is_empty() {
                None
            } else {
                Some(after.strip_prefix(':')?)
            };
            (format!("[{ipv6}]"), port)
        }
        None => {
            let (name, port) = raw
                .split_once(':')
                .map_or((raw, None), |(h, p)| (h, Some(p)));
            let name = name.strip_suffix('.').unwrap_or(name);
            if !is_dns_name(name.as_bytes()) {
                return None;
            }
            (name.to_ascii_lowercase(), port)
        }
    };
    // An empty port is allowed (RFC 3986 3.2.3); anything else must be a port number.
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        port.parse::<u16>().ok()?;
    }
    Some(host)
}

/// Whether `name` is labels of letters, digits, `-` and `_`, one dot between each two: no
/// label is empty. One pass over the bytes (this runs on every request).
fn is_dns_name(name: &[u8]) -> bool {
    let mut label_len = 0usize;
    for &b in name {
        if b == b'.' {
            if label_len == 0 {
                return false;
            }
            label_len = 0;
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            label_len += 1;
        } else {
            return false;
        }
    }
    label_len > 0
}

/// Whether `headers` has a field the request filter removes or reads: a hop-by-hop one
/// (`policy::strip_hop_by_hop`), an override field, `Content-Length`, `Expect`, or a mark of
/// another node (the sibling header, `Via`). Most requests have none, and then this one look at
/// their names spares the filter's lookups (each hashes a name; one by `&str` parses it first).
pub(super) fn has_filtered_field(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| is_filtered(name.as_str()))
}

/// The names [`has_filtered_field`] looks for (a test checks them against the lists).
fn is_filtered(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "proxy-authentication-info"
            | "forwarded"
            | "x-forwarded-for"
            | "x-real-ip"
            | "x-forwarded-host"
            | "x-forwarded-server"
            | "x-forwarded-port"
            | "x-forwarded-proto"
            | "x-forwarded-scheme"
            | "x-forwarded-prefix"
            | "x-original-host"
            | "x-host"
            | "x-original-url"
            | "x-rewrite-url"
            | "x-http-method-override"
            | "x-http-method"
            | "x-method-override"
            | "content-length"
            | "expect"
            | SIBLING_HEADER
            | "via"
    )
}

/// Removes what the origin must not get of `headers` (already without hop-by-hop fields): the
/// override fields, the forwarding fields unless the client is a `trusted` proxy, and
/// `Content-Length` and `Expect`: the node reads any body itself and frames what it forwards
/// anew (a GET's body is never forwarded, so its length must not be either).
pub(super) fn remove_client_fields(headers: &mut HeaderMap, trusted: bool) {
    policy::remove_named(headers, &OVERRIDE_FIELDS);
    if !trusted {
        policy::remove_named(headers, &FORWARDING_FIELDS);
    }
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::EXPECT);
}

/// Sets `Host` to the normalised host (the request target's, in absolute-form); none for an
/// HTTP/1.0 request that named none.
pub(super) fn set_host(headers: &mut HeaderMap, host: &str) {
    match HeaderValue::from_str(host) {
        Ok(value) if !host.is_empty() => {
            headers.insert(header::HOST, value);
        }
        _ => {
            headers.remove(header::HOST);
        }
    }
}

/// `response` with `Connection: close`: for answers given before the request body was read
/// whole, whose rest would otherwise be parsed as the next request (HTTP/1.1; HTTP/2 drops it).
pub(super) fn closing(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, hosts: &[&str]) -> Request<()> {
        let mut builder = Request::builder().uri(target);
        for host in hosts {
            builder = builder.header(header::HOST, *host);
        }
        builder.body(()).expect("test request")
    }

    #[test]
    fn hosts_are_lowercased_without_port_or_trailing_dot() {
        for (raw, normal) in [
            ("Example.TEST", "example.test"),
            ("example.test:80", "example.test"),
            ("EXAMPLE.test:8080", "example.test"),
            ("example.test.", "example.test"),
            ("example.test:", "example.test"),
            ("127.0.0.1:8080", "127.0.0.1"),
            ("[::1]:443", "[::1]"),
            ("[2001:DB8::1]", "[2001:db8::1]"),
            ("_srv.example-1.test", "_srv.example-1.test"),
        ] {
            assert_eq!(normalise(raw).as_deref(), Some(normal), "{raw}");
        }
    }

    #[test]
    fn hosts_that_could_mix_up_keys_are_refused() {
        for raw in [
            "",
            "example.test/private",
            "example.test:80/x",
            "example..test",
            ".example.test",
            "user@example.test",
            "example.test:http",
            "example.test:99999",
            "exa mple.test",
            "example.test%2f",
            "[::1",
            "[not-ipv6]",
            "[::1]x",
            "a:b:c",
        ] {
            assert_eq!(normalise(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn the_target_authority_wins_over_host() {
        let req = request("http://A.test:8080/x", &["b.test"]);
        assert_eq!(host(&req), Ok("a.test".to_string()));
        let req = request("/x", &["B.test:80"]);
        assert_eq!(host(&req), Ok("b.test".to_string()));
    }

    #[test]
    fn host_lines_must_be_exactly_one_in_http_1_1() {
        assert!(host(&request("/x", &["a.test", "a.test"])).is_err());
        assert!(host(&request("/x", &[])).is_err());
        let mut old = request("/x", &[]);
        *old.version_mut() = Version::HTTP_10;
        assert_eq!(host(&old), Ok(String::new()));
    }

    #[test]
    fn forwarded_fields_name_only_the_keyed_host() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "EVIL.test:8080"),
            ("x-forwarded-host", "evil.test"),
            ("x-original-url", "/admin"),
            ("forwarded", "host=evil.test"),
            ("content-length", "5"),
            ("accept-language", "en"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        assert!(has_filtered_field(&headers));
        remove_client_fields(&mut headers, false);
        set_host(&mut headers, "example.test");
        let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept-language", "host"]);
        assert_eq!(headers[header::HOST], "example.test");
        assert!(!has_filtered_field(&headers));
        set_host(&mut headers, "");
        assert!(!headers.contains_key(header::HOST));
    }

    #[test]
    fn every_field_the_filter_acts_on_is_looked_for() {
        let acted_on = policy::HOP_BY_HOP
            .iter()
            .chain(&OVERRIDE_FIELDS)
            .chain(&FORWARDING_FIELDS)
            .chain(&["content-length", "expect", SIBLING_HEADER, "via"]);
        for name in acted_on {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
            headers.insert(*name, HeaderValue::from_static("x"));
            assert!(has_filtered_field(&headers), "{name}");
        }
        for name in ["host", "accept", "user-agent", "cookie", "x-request-id"] {
            assert!(!is_filtered(name), "{name}");
        }
    }
}
