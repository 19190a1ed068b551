//! A stored response and what the proxy keeps about its exchange.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, StatusCode};

use super::policy::{self, StoredMeta};

/// One stored response: everything to answer from cache and to judge its freshness.
pub struct Stored {
    /// Why RFC 9111 forbids reusing this response, when it does: the entry then lives for no
    /// time and only the callers coalesced on its fill get it (hit-for-pass).
    pub not_storable: Option<policy::NotStorable>,
    pub status: StatusCode,
    /// Hop-by-hop and unshared fields already removed.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the origin request was sent and its response received (RFC 9111 4.2.3).
    pub request_time: SystemTime,
    pub response_time: SystemTime,
    /// The request's values of the response's `Vary` fields; None without `Vary`.
    pub vary_key: Option<String>,
}

impl Stored {
    /// Freshness facts for a request arriving `now`.
    pub fn meta(&self, now: SystemTime, heuristic_cap: Duration) -> StoredMeta {
        StoredMeta::new(
            &self.headers,
            self.status,
            self.request_time,
            self.response_time,
            now,
            heuristic_cap,
        )
    }

    /// Whether this stored variant is the one `request_headers` selects (RFC 9111 4.1).
    pub fn selected_by(&self, request_headers: &HeaderMap) -> bool {
        match &self.vary_key {
            None => true,
            Some(key) => policy::vary_matches(key, &self.headers, request_headers),
        }
    }

    /// Bytes charged against the cache budget: body, header names and values, and the
    /// structures holding them (this struct, and the header map's slots, each a name, a value
    /// and its index and links). Measured: 20,000 stored 1 KiB objects grow the process by
    /// about 2.9 KiB each, against 1.75 KiB charged before the structures were counted.
    pub fn weight(&self) -> u32 {
        let fields: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        let slot = std::mem::size_of::<(HeaderName, HeaderValue)>() + 24;
        let structures = std::mem::size_of::<Stored>() + self.headers.capacity() * slot;
        u32::try_from(self.body.len() + fields + structures).unwrap_or(u32::MAX)
    }

    /// Purge tags from `Cache-Tag` and `Surrogate-Key` (space- or comma-separated).
    pub fn tags(&self) -> Vec<std::sync::Arc<str>> {
        let mut tags: Vec<std::sync::Arc<str>> = ["cache-tag", "surrogate-key"]
            .iter()
            .flat_map(|name| self.headers.get_all(*name))
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([' ', ',']))
            .filter(|t| !t.is_empty())
            .map(std::sync::Arc::from)
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weight_counts_the_structures_as_well_as_the_bytes() {
        let mut headers = HeaderMap::new();
        headers.insert("cache-control", HeaderValue::from_static("max-age=60"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let stored = Stored {
            not_storable: None,
            status: StatusCode::OK,
            headers,
            body: Bytes::from(vec![0u8; 1024]),
            request_time: SystemTime::now(),
            response_time: SystemTime::now(),
            vary_key: None,
        };
        let bytes = 1024 + "cache-control".len() + 10 + "content-type".len() + 10;
        let weight = stored.weight() as usize;
        assert!(weight > bytes + std::mem::size_of::<Stored>(), "{weight}");
        assert!(weight < bytes + 4096, "{weight}");
    }
}
