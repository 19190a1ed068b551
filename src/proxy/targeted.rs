//! Cache directives meant for this node rather than for browsers: a field of the node's own
//! (`proxy.targeted_cache_control`, RFC 9213 2.1), `CDN-Cache-Control` (RFC 9213), and
//! `Surrogate-Control` (the W3C Edge Architecture note, as Fastly and Akamai read it), in that
//! order of precedence, all over `Cache-Control`.
//!
//! They are settled once, as the origin's response arrives: the directives that win are put in
//! `CDN-Cache-Control` (the one field the freshness and storage rules read, `policy`), and the
//! node's own field and `Surrogate-Control` are removed. A stored object then carries its
//! directives in one place, another node of the cluster fetching from this one reads them
//! there, and clients never see any of them (`Proxy::handle` removes `CDN-Cache-Control`).

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

use super::policy::{self, CDN_CACHE_CONTROL, CacheControl};
use crate::config::ProxyConfig;

const SURROGATE_CONTROL: HeaderName = HeaderName::from_static("surrogate-control");
const SURROGATE_CAPABILITY: HeaderName = HeaderName::from_static("surrogate-capability");

/// Which targeted fields this node reads.
#[derive(Debug)]
pub(super) struct Targets {
    /// The node's own field (`proxy.targeted_cache_control`).
    own: Option<HeaderName>,
    /// `Surrogate-Control` is read (`proxy.surrogate_control`), with this node's device token
    /// (its `cluster.id`) for targeted directives.
    surrogate: Option<Box<str>>,
    /// `Surrogate-Capability` sent to the origin: `<id>="Surrogate/1.0"`.
    capability: Option<HeaderValue>,
}

impl Targets {
    /// The config was validated (`config::field_name_problem`); a name that still does not
    /// parse is not read.
    pub fn new(config: &ProxyConfig, id: &str) -> Targets {
        let own = config
            .targeted_cache_control
            .as_deref()
            .and_then(|name| HeaderName::from_bytes(name.as_bytes()).ok());
        let surrogate = config.surrogate_control.then(|| Box::from(id));
        let capability = surrogate
            .as_ref()
            .and_then(|id| HeaderValue::from_str(&format!("{id}=\"Surrogate/1.0\"")).ok());
        Targets {
            own,
            surrogate,
            capability,
        }
    }

    /// Settles the directives of an origin response's `headers`; see the module's comment.
    pub fn settle(&self, headers: &mut HeaderMap) {
        if let Some(own) = &self.own
            && let Some(field) = joined(headers, own)
        {
            headers.remove(own);
            if CacheControl::targeted(&field).is_some()
                && let Ok(value) = HeaderValue::from_bytes(&field)
            {
                headers.insert(CDN_CACHE_CONTROL, value);
                headers.remove(SURROGATE_CONTROL);
                return;
            }
        }
        let Some(id) = &self.surrogate else {
            return;
        };
        let Some(surrogate) = joined(headers, &SURROGATE_CONTROL) else {
            return;
        };
        headers.remove(SURROGATE_CONTROL);
        let cdn_valid = joined(headers, &HeaderName::from_static(CDN_CACHE_CONTROL))
            .is_some_and(|field| CacheControl::targeted(&field).is_some());
        if cdn_valid {
            return;
        }
        if let Some(directives) = surrogate_directives(&surrogate, id)
            && let Ok(value) = HeaderValue::from_str(&directives)
        {
            headers.insert(CDN_CACHE_CONTROL, value);
        }
    }

    /// Announces what this node reads to the origin (`Surrogate-Capability`), replacing what a
    /// client may have sent.
    pub fn announce(&self, headers: &mut HeaderMap) {
        match &self.capability {
            Some(value) => {
                headers.insert(SURROGATE_CAPABILITY, value.clone());
            }
            None => {
                headers.remove(SURROGATE_CAPABILITY);
            }
        }
    }
}

/// The field lines of `name`, joined with commas; None when there are none.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let mut lines = headers.get_all(name).iter().peekable();
    lines.peek()?;
    let mut field = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            field.extend_from_slice(b", ");
        }
        field.extend_from_slice(line.as_bytes());
    }
    Some(field)
}

/// `Surrogate-Control` as `CDN-Cache-Control` directives for the surrogate `id`: the directives
/// targeted at `id` (`max-age=60;edge1`) when there are any, else the untargeted ones.
/// `no-store` and `no-store-remote` (a CDN is a remote surrogate) become `no-store`;
/// `max-age=N+M` becomes `max-age=N` and `stale-if-error=M` (the stale part is how long the
/// object may be served when it cannot be revalidated). None when nothing applies.
fn surrogate_directives(field: &[u8], id: &str) -> Option<String> {
    let text = std::str::from_utf8(field).ok()?;
    let mut mine = Vec::new();
    let mut everyone = Vec::new();
    for element in split_outside_quotes(text) {
        let (directive, target) = match element.rsplit_once(';') {
            // A `;` inside a quoted `content="..."` value is not a target.
            Some((directive, target)) if !target.contains('"') => (directive, Some(target.trim())),
            _ => (element, None),
        };
        let directive = directive.trim();
        match target {
            Some(target) if target.eq_ignore_ascii_case(id) => mine.push(directive),
            Some(_) => {}
            None => everyone.push(directive),
        }
    }
    let chosen = if mine.is_empty() { everyone } else { mine };
    let mut out: Vec<String> = Vec::new();
    for directive in chosen {
        let (name, value) = directive
            .split_once('=')
            .map_or((directive, None), |(n, v)| (n.trim(), Some(v.trim())));
        match name.to_ascii_lowercase().as_str() {
            "no-store" | "no-store-remote" => out.push("no-store".into()),
            "max-age" => {
                let value = value?;
                let (fresh, stale) = value
                    .split_once('+')
                    .map_or((value, None), |(f, s)| (f, Some(s)));
                let fresh = policy::delta_seconds(fresh.trim().as_bytes())?;
                out.push(format!("max-age={fresh}"));
                if let Some(stale) = stale.and_then(|s| policy::delta_seconds(s.trim().as_bytes()))
                {
                    out.push(format!("stale-if-error={stale}"));
                }
            }
            _ => {}
        }
    }
    (!out.is_empty()).then(|| out.join(", "))
}

/// `text` split at commas outside double quotes.
fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(own: Option<&str>, surrogate: bool) -> Targets {
        let config = ProxyConfig {
            targeted_cache_control: own.map(Into::into),
            surrogate_control: surrogate,
            ..ProxyConfig::default()
        };
        Targets::new(&config, "edge1")
    }

    fn settled(targets: &Targets, fields: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        targets.settle(&mut headers);
        let mut out: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
            .collect();
        out.sort();
        out
    }

    fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_nodes_own_field_wins_and_is_removed() {
        let t = targets(Some("Edge-Cache-Control"), true);
        let got = settled(
            &t,
            &[
                ("cache-control", "no-store"),
                ("cdn-cache-control", "max-age=60"),
                ("edge-cache-control", "max-age=600"),
                ("surrogate-control", "max-age=5"),
            ],
        );
        assert_eq!(
            got,
            pairs(&[
                ("cache-control", "no-store"),
                ("cdn-cache-control", "max-age=600")
            ])
        );
        // An invalid own field is ignored whole (RFC 9213 2.1), and still not passed on.
        let got = settled(
            &t,
            &[
                ("cdn-cache-control", "max-age=60"),
                ("edge-cache-control", "max-age=\"x\""),
            ],
        );
        assert_eq!(got, pairs(&[("cdn-cache-control", "max-age=60")]));
    }

    #[test]
    fn surrogate_control_ranks_below_cdn_cache_control() {
        let t = targets(None, true);
        let got = settled(
            &t,
            &[
                ("cdn-cache-control", "max-age=60"),
                ("surrogate-control", "no-store"),
            ],
        );
        assert_eq!(got, pairs(&[("cdn-cache-control", "max-age=60")]));
        let got = settled(
            &t,
            &[
                ("cache-control", "private"),
                ("surrogate-control", "max-age=300+60, content=\"ESI/1.0\""),
            ],
        );
        assert_eq!(
            got,
            pairs(&[
                ("cache-control", "private"),
                ("cdn-cache-control", "max-age=300, stale-if-error=60"),
            ])
        );
    }

    #[test]
    fn surrogate_directives_targeted_at_this_node_win() {
        assert_eq!(
            surrogate_directives(b"max-age=10, max-age=99;edge1, no-store;other", "edge1"),
            Some("max-age=99".into())
        );
        assert_eq!(
            surrogate_directives(b"no-store-remote", "edge1"),
            Some("no-store".into())
        );
        assert_eq!(surrogate_directives(b"max-age=60;other", "edge1"), None);
        assert_eq!(
            surrogate_directives(b"content=\"ESI/1.0;x\"", "edge1"),
            None
        );
        assert_eq!(surrogate_directives(b"max-age=soon", "edge1"), None);
    }

    #[test]
    fn surrogate_control_is_left_alone_when_not_read() {
        let t = targets(None, false);
        let fields = [("surrogate-control", "max-age=60")];
        assert_eq!(settled(&t, &fields), pairs(&fields));
        let mut request = HeaderMap::new();
        request.insert(
            SURROGATE_CAPABILITY,
            HeaderValue::from_static("x=\"ESI/1.0\""),
        );
        t.announce(&mut request);
        assert!(request.is_empty());
        targets(None, true).announce(&mut request);
        assert_eq!(request[SURROGATE_CAPABILITY], "edge1=\"Surrogate/1.0\"");
    }
}
