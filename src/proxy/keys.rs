//! Cache keys of the proxy's objects, and purges by URL, prefix or tag.
//!
//! The primary key is host + path with query; a `Vary` variant other than the first is stored
//! beside it (`primary \0 vary values`), and so are the slices of a large object
//! (`primary \0slice:N`): a purge of the URL takes them all.

use crate::cache::{CacheKey, Namespace, PurgeMode};

use super::Proxy;

impl Proxy {
    /// Purges by URL (`http://host/path?query` or `host/path`), URL prefix, or tag.
    pub async fn purge(&self, target: PurgeTarget<'_>, mode: PurgeMode) -> usize {
        match target {
            PurgeTarget::Url(url) => {
                // The URL's own entry and every variant stored beside it.
                let key = url_key(url);
                let mut variants = key.key.to_vec();
                variants.push(0);
                let beside = self
                    .cache
                    .purge_prefix(Namespace::Http, &variants, mode)
                    .await;
                self.cache.purge_key(&key, mode).await + beside
            }
            PurgeTarget::Prefix(prefix) => {
                let key = url_key(prefix);
                self.cache
                    .purge_prefix(Namespace::Http, &key.key, mode)
                    .await
            }
            PurgeTarget::Tag(tag) => self.cache.purge_tag(tag, mode).await,
        }
    }
}

/// What a purge names.
#[derive(Clone, Copy, Debug)]
pub enum PurgeTarget<'a> {
    Url(&'a str),
    Prefix(&'a str),
    Tag(&'a str),
}

/// The cache key of a URL as an operator writes it: the scheme is dropped, the host lowercased.
fn url_key(url: &str) -> CacheKey {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (host, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    cache_key(&host.to_ascii_lowercase(), path)
}

/// Where the variant of a URL for one set of `Vary` values is stored, when it is not the one
/// under the URL's own key (the first variant stored).
pub(super) fn variant_key(primary: &CacheKey, vary_key: &str) -> CacheKey {
    let mut key = primary.key.to_vec();
    key.push(0);
    key.extend_from_slice(vary_key.as_bytes());
    CacheKey::new(Namespace::Http, key)
}

/// The primary cache key: host and path with query (purge by URL and prefix work on it).
pub fn cache_key(host: &str, path_and_query: &str) -> CacheKey {
    // Not `format!`: this runs on every request, and the formatting machinery costs more than
    // the two copies.
    let mut key = Vec::with_capacity(host.len() + path_and_query.len());
    key.extend_from_slice(host.as_bytes());
    key.extend_from_slice(path_and_query.as_bytes());
    CacheKey::new(Namespace::Http, key)
}
