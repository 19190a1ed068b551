//! What the origin is told about the client and the path its request took: `Forwarded`
//! (RFC 7239), `X-Forwarded-For`, `-Proto` and `-Host` (the de facto fields most origins and
//! frameworks read), and `Via` (RFC 9110 7.6.3) naming this node.
//!
//! A client's own forwarding fields are believed only when it connects from one of
//! `proxy.trusted_proxies` (a load balancer or TLS terminator in front of the node, another
//! node): then the node appends to them, as nginx's `$proxy_add_x_forwarded_for` does, and keeps
//! the scheme and host that proxy reports. From anyone else they are removed before anything
//! reads them, so a client cannot pass itself off as another address, or make the origin build
//! links for a host the cache key does not hold (`request::remove_client_fields`).

use std::fmt::Write as _;
use std::net::IpAddr;

use hyper::HeaderMap;
use hyper::header::{self, HeaderName, HeaderValue};

/// The request fields that say who the client is and how it connected (`X-Real-IP` as nginx's
/// realip setups read it; the node does not add it).
pub(super) const FORWARDING_FIELDS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// How the client reached the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The client of a request, as the node saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The peer's address (an IPv4-mapped IPv6 address as IPv4).
    pub addr: IpAddr,
    pub scheme: Scheme,
    /// The peer is a trusted proxy: its forwarding fields were kept and are appended to.
    pub trusted: bool,
    /// The address per-client limits count against: the peer, or behind a trusted proxy the
    /// client it names last in `X-Forwarded-For` (None when it names none).
    pub limit_key: Option<IpAddr>,
}

impl Client {
    /// The client of a request from `peer` with `headers` (before they are filtered).
    pub fn new(peer: IpAddr, scheme: Scheme, trusted: bool, headers: &HeaderMap) -> Client {
        let addr = peer.to_canonical();
        let limit_key = match trusted {
            false => Some(addr),
            true => headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
                .next_back()
                .map(|hop| hop.to_canonical()),
        };
        Client {
            addr,
            scheme,
            trusted,
            limit_key,
        }
    }
}

/// Adds this hop to the forwarding fields of a request going to the origin or to another
/// node: `client`'s address appended to `X-Forwarded-For` and as a `Forwarded` element (with
/// the scheme and `host` the client asked for), `X-Forwarded-Proto` and `X-Forwarded-Host` set
/// unless a trusted proxy gave them, and `via` (this node's `Via` entry) appended.
pub(super) fn add_hop(headers: &mut HeaderMap, client: &Client, host: &str, via: &HeaderValue) {
    let addr = client.addr;
    append_list(headers, X_FORWARDED_FOR, &addr.to_string());
    let mut element = String::with_capacity(64);
    match addr {
        IpAddr::V4(v4) => {
            let _ = write!(element, "for={v4}");
        }
        // RFC 7239 6: an IPv6 address is bracketed and quoted.
        IpAddr::V6(v6) => {
            let _ = write!(element, "for=\"[{v6}]\"");
        }
    }
    if !host.is_empty() {
        element.push_str(";host=");
        push_value(&mut element, host);
    }
    let _ = write!(element, ";proto={}", client.scheme.as_str());
    append_list(headers, header::FORWARDED, &element);
    let keep_given = client.trusted;
    if !(keep_given && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(
            X_FORWARDED_PROTO,
            HeaderValue::from_static(client.scheme.as_str()),
        );
    }
    if !(keep_given && headers.contains_key(&X_FORWARDED_HOST)) {
        match HeaderValue::from_str(host) {
            Ok(value) if !host.is_empty() => {
                headers.insert(X_FORWARDED_HOST, value);
            }
            _ => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
    match via.to_str() {
        Ok(via) => append_list(headers, header::VIA, via),
        Err(_) => {
            headers.append(header::VIA, via.clone());
        }
    }
}

/// `value` appended to the list field `name`: its field lines joined into one, as proxies
/// before this one may have sent several and some origins read only the first.
fn append_list(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    let mut joined = String::new();
    for line in headers.get_all(&name) {
        if let Ok(text) = line.to_str()
            && !text.trim().is_empty()
        {
            joined.push_str(text.trim());
            joined.push_str(", ");
        }
    }
    joined.push_str(value);
    match HeaderValue::from_str(&joined) {
        Ok(line) => {
            headers.insert(name, line);
        }
        // A line that could not be joined (not visible ASCII) is replaced by this hop alone.
        Err(_) => {
            if let Ok(line) = HeaderValue::from_str(value) {
                headers.insert(name, line);
            }
        }
    }
}

/// A `Forwarded` parameter value: a token as it is, anything else quoted (RFC 7239 4).
fn push_value(out: &mut String, value: &str) {
    let token = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        out.push_str(value);
    } else {
        out.push('"');
        for c in value.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via() -> HeaderValue {
        HeaderValue::from_static("1.1 node-a")
    }

    #[test]
    fn an_untrusted_client_is_the_first_hop() {
        let mut headers = HeaderMap::new();
        let client = Client::new(
            "::ffff:192.0.2.7".parse().expect("address"),
            Scheme::Https,
            false,
            &headers,
        );
        assert_eq!(client.limit_key, Some("192.0.2.7".parse().expect("v4")));
        add_hop(&mut headers, &client, "www.example.test", &via());
        assert_eq!(headers["x-forwarded-for"], "192.0.2.7");
        assert_eq!(
            headers["forwarded"],
            "for=192.0.2.7;host=www.example.test;proto=https"
        );
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "www.example.test");
        assert_eq!(headers["via"], "1.1 node-a");
    }

    #[test]
    fn a_trusted_proxy_chain_is_appended_to() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        headers.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        headers.insert("forwarded", HeaderValue::from_static("for=198.51.100.1"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert("via", HeaderValue::from_static("1.1 lb"));
        let client = Client::new(
            "2001:db8::5".parse().expect("address"),
            Scheme::Http,
            true,
            &headers,
        );
        assert_eq!(client.limit_key, Some("198.51.100.2".parse().expect("v4")));
        add_hop(&mut headers, &client, "[2001:db8::1]", &via());
        assert_eq!(
            headers["x-forwarded-for"],
            "198.51.100.1, 198.51.100.2, 2001:db8::5"
        );
        assert_eq!(
            headers["forwarded"],
            "for=198.51.100.1, for=\"[2001:db8::5]\";host=\"[2001:db8::1]\";proto=http"
        );
        // What the proxy in front saw wins: the client spoke TLS to it.
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "[2001:db8::1]");
        assert_eq!(headers["via"], "1.1 lb, 1.1 node-a");
    }
}
