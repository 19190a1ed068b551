//! What the cache phase of one proxied request came to (pingora's `CachePhase`): one enum
//! whose methods give the `Cache-Status` field the client sees (RFC 9211), the cache core's
//! counter the request counts in (`edgenode_cache_*_total{namespace="http"}`), and what a
//! preload learns from it. Every `Cache-Status` this node sends is one of these, so a preload
//! reads another node's answer back with [`ProxyOutcome::from_cache_status`].

use hyper::header::HeaderValue;

use super::policy::NotStorable;
use super::preload::Warmed;
use crate::cache::CacheOutcome;

/// The cache phase a response came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyOutcome {
    /// A fresh stored copy.
    Hit,
    /// A stale copy served while one refresh runs in the background (RFC 5861 3).
    StaleWhileRevalidate,
    /// A stale copy the request accepted (`max-stale`).
    MaxStale,
    /// A stale copy served because the origin failed (RFC 5861 4, or the operator's grace).
    StaleIfError,
    /// The stored copy was revalidated by the origin (a 304) and refreshed. `collapsed`: this
    /// client joined another one's fill.
    Revalidated { collapsed: bool },
    /// Fetched and being stored.
    Stored { collapsed: bool },
    /// Fetched, streamed through, too large to store whole.
    TooLarge { collapsed: bool },
    /// Fetched, and RFC 9111 or the operator's rules forbid storing it.
    NotStorable(NotStorable),
    /// The origin answered 5xx and no stale copy could be served: its answer is passed on.
    OriginError,
    /// Went forward with nothing more to say: the node's own errors (no origin, timeouts,
    /// overload), and answers about a sliced object that are not its bytes.
    Forwarded,
    /// A method the cache does not keep (POST, PUT, ...), passed to the origin.
    Bypass,
    /// Bytes of an object kept in slices; `hit`: its first slice was in the cache.
    Slice { hit: bool },
}

impl ProxyOutcome {
    /// Every outcome, for reading a `Cache-Status` back.
    fn all() -> impl Iterator<Item = ProxyOutcome> {
        let fixed = [
            ProxyOutcome::Hit,
            ProxyOutcome::StaleWhileRevalidate,
            ProxyOutcome::MaxStale,
            ProxyOutcome::StaleIfError,
            ProxyOutcome::OriginError,
            ProxyOutcome::Forwarded,
            ProxyOutcome::Bypass,
        ];
        let joined = [false, true].into_iter().flat_map(|collapsed| {
            [
                ProxyOutcome::Revalidated { collapsed },
                ProxyOutcome::Stored { collapsed },
                ProxyOutcome::TooLarge { collapsed },
            ]
        });
        let slices = [false, true].map(|hit| ProxyOutcome::Slice { hit });
        fixed
            .into_iter()
            .chain(joined)
            .chain(slices)
            .chain(NotStorable::ALL.map(ProxyOutcome::NotStorable))
    }

    /// The `Cache-Status` field's value (RFC 9211).
    pub fn cache_status(self) -> HeaderValue {
        let status = match self {
            ProxyOutcome::Hit => "edgenode; hit",
            ProxyOutcome::StaleWhileRevalidate => {
                "edgenode; hit; fwd=stale; detail=\"stale-while-revalidate\""
            }
            ProxyOutcome::MaxStale => "edgenode; hit; detail=\"max-stale\"",
            ProxyOutcome::StaleIfError => "edgenode; hit; detail=\"stale-if-error\"",
            ProxyOutcome::Revalidated { collapsed: false } => {
                "edgenode; fwd=stale; fwd-status=304; stored"
            }
            ProxyOutcome::Revalidated { collapsed: true } => {
                "edgenode; fwd=stale; fwd-status=304; stored; collapsed"
            }
            ProxyOutcome::Stored { collapsed: false } => "edgenode; fwd=miss; stored",
            ProxyOutcome::Stored { collapsed: true } => "edgenode; fwd=miss; stored; collapsed",
            ProxyOutcome::TooLarge { collapsed: false } => {
                "edgenode; fwd=miss; detail=\"too-large\""
            }
            ProxyOutcome::TooLarge { collapsed: true } => {
                "edgenode; fwd=miss; detail=\"too-large\"; collapsed"
            }
            ProxyOutcome::NotStorable(reason) => {
                let value = format!("edgenode; fwd=miss; detail=\"{}\"", reason.as_str());
                return HeaderValue::from_str(&value)
                    .unwrap_or_else(|_| HeaderValue::from_static("edgenode; fwd=miss"));
            }
            ProxyOutcome::OriginError => "edgenode; fwd=miss; detail=\"origin-error\"",
            ProxyOutcome::Forwarded => "edgenode; fwd=miss",
            ProxyOutcome::Bypass => "edgenode; fwd=bypass",
            ProxyOutcome::Slice { hit: true } => "edgenode; hit; detail=\"slice\"",
            ProxyOutcome::Slice { hit: false } => "edgenode; fwd=miss; detail=\"slice\"",
        };
        HeaderValue::from_static(status)
    }

    /// The outcome whose `Cache-Status` is `value` (another node's answer to a preload);
    /// None for a field this node would not send.
    pub fn from_cache_status(value: &HeaderValue) -> Option<ProxyOutcome> {
        ProxyOutcome::all().find(|outcome| outcome.cache_status() == value)
    }

    /// The cache core's counter a request answered so counts in (`hit`, `stale` or `miss`).
    pub fn counted_as(self) -> CacheOutcome {
        match self {
            ProxyOutcome::Hit | ProxyOutcome::Slice { hit: true } => CacheOutcome::Hit,
            ProxyOutcome::StaleWhileRevalidate
            | ProxyOutcome::MaxStale
            | ProxyOutcome::StaleIfError => CacheOutcome::Stale,
            _ => CacheOutcome::Miss,
        }
    }

    /// Whether a stored copy answered (`hit` in `Cache-Status`).
    pub fn is_hit(self) -> bool {
        matches!(
            self,
            ProxyOutcome::Hit
                | ProxyOutcome::StaleWhileRevalidate
                | ProxyOutcome::MaxStale
                | ProxyOutcome::StaleIfError
                | ProxyOutcome::Slice { hit: true }
        )
    }

    /// Whether the response is (being) stored (`stored` in `Cache-Status`).
    pub fn is_stored(self) -> bool {
        matches!(
            self,
            ProxyOutcome::Revalidated { .. } | ProxyOutcome::Stored { .. }
        )
    }

    /// What a preload whose response had a success status learns from it.
    pub fn warmed(self) -> Warmed {
        if self == ProxyOutcome::Hit {
            return Warmed::Fresh;
        }
        if self.is_stored() {
            return Warmed::Stored;
        }
        let detail = self.detail().unwrap_or("no reason given");
        match self.is_hit() {
            true => Warmed::Failed(format!(
                "the origin failed; a stale copy is kept ({detail})"
            )),
            false => Warmed::Failed(format!("not stored: {detail}")),
        }
    }

    /// The `detail` of `Cache-Status`, when it has one.
    pub fn detail(self) -> Option<&'static str> {
        match self {
            ProxyOutcome::StaleWhileRevalidate => Some("stale-while-revalidate"),
            ProxyOutcome::MaxStale => Some("max-stale"),
            ProxyOutcome::StaleIfError => Some("stale-if-error"),
            ProxyOutcome::TooLarge { .. } => Some("too-large"),
            ProxyOutcome::NotStorable(reason) => Some(reason.as_str()),
            ProxyOutcome::OriginError => Some("origin-error"),
            ProxyOutcome::Slice { .. } => Some("slice"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cache_status_reads_back_as_its_outcome() {
        let all: Vec<_> = ProxyOutcome::all().collect();
        assert_eq!(all.len(), 7 + 6 + 2 + NotStorable::ALL.len());
        for outcome in all {
            let value = outcome.cache_status();
            assert_eq!(ProxyOutcome::from_cache_status(&value), Some(outcome));
        }
        let foreign = HeaderValue::from_static("other; hit");
        assert_eq!(ProxyOutcome::from_cache_status(&foreign), None);
    }

    #[test]
    fn the_values_are_the_ones_clients_have_always_seen() {
        let value = |outcome: ProxyOutcome| outcome.cache_status();
        assert_eq!(value(ProxyOutcome::Hit), "edgenode; hit");
        assert_eq!(
            value(ProxyOutcome::NotStorable(NotStorable::Private)),
            "edgenode; fwd=miss; detail=\"private\""
        );
        assert_eq!(
            value(ProxyOutcome::Stored { collapsed: true }),
            "edgenode; fwd=miss; stored; collapsed"
        );
        assert_eq!(
            value(ProxyOutcome::TooLarge { collapsed: true }),
            "edgenode; fwd=miss; detail=\"too-large\"; collapsed"
        );
    }
}
