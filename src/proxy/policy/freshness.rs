//! Freshness lifetime, age, and the reuse decision (RFC 9111 4.2, 4.2.4, 5.2; RFC 5861).

use std::time::{Duration, SystemTime};

use hyper::http::header::{AGE, DATE, EXPIRES, LAST_MODIFIED};
use hyper::http::{HeaderMap, StatusCode};

use super::http_date::{header_date, parse_http_date};
use super::{CacheControl, delta_seconds, is_heuristically_cacheable, split_list};

/// Heuristic freshness is this fraction of the time since `Last-Modified` (RFC 9111 4.2.2
/// suggests "no more than some fraction", "typical setting of this fraction might be 10%").
const HEURISTIC_DIVISOR: u32 = 10;

/// Freshness lifetime of a response as received (RFC 9111 4.2.1, 4.2.2), in this order:
/// `s-maxage` (we are a shared cache), `max-age`, `Expires` minus `Date`, then a heuristic of
/// 10% of `Date` minus `Last-Modified`, capped at `heuristic_cap`.
///
/// `None` means no explicit freshness and no heuristic applies: the response is stale from the
/// start. `Some(ZERO)` is explicit staleness, e.g. `max-age=0`, or an `Expires` that is invalid,
/// in the past, or given twice with different values (RFC 9111 5.3, 4.2.1).
///
/// `response_time` stands in for a missing or invalid `Date` (RFC 9110 6.6.1: the recipient
/// records the time it received the response).
///
/// The heuristic applies only without explicit freshness, with a `Last-Modified`, and for a
/// heuristically cacheable status or a `public` response (RFC 9111 4.2.2).
pub fn freshness_lifetime(
    resp_headers: &HeaderMap,
    status: StatusCode,
    response_time: SystemTime,
    heuristic_cap: Duration,
) -> Option<Duration> {
    let (cc, targeted) = CacheControl::for_response(resp_headers);
    lifetime(
        &cc,
        targeted,
        resp_headers,
        status,
        response_time,
        heuristic_cap,
    )
}

/// `targeted`: the directives came from `CDN-Cache-Control`, which overrides `Expires` too.
pub(super) fn lifetime(
    cc: &CacheControl,
    targeted: bool,
    headers: &HeaderMap,
    status: StatusCode,
    response_time: SystemTime,
    heuristic_cap: Duration,
) -> Option<Duration> {
    if let Some(secs) = cc.s_maxage.or(cc.max_age) {
        return Some(Duration::from_secs(secs));
    }
    let date = header_date(headers, &DATE).unwrap_or(response_time);
    let mut expires = headers.get_all(EXPIRES).iter().filter(|_| !targeted);
    if let Some(first) = expires.next() {
        // Conflicting duplicates read as stale (4.2.1), so does an invalid date such as "0" (5.3).
        if expires.any(|other| other != first) {
            return Some(Duration::ZERO);
        }
        return Some(match parse_http_date(first.as_bytes()) {
            Some(at) => at.duration_since(date).unwrap_or_default(),
            None => Duration::ZERO,
        });
    }
    if !(is_heuristically_cacheable(status) || cc.public) {
        return None;
    }
    let modified = header_date(headers, &LAST_MODIFIED)?;
    let since = date.duration_since(modified).unwrap_or_default();
    Some((since / HEURISTIC_DIVISOR).min(heuristic_cap))
}

/// `max-age`, `s-maxage` or `Expires` is present (valid or not: an invalid one means stale, which
/// is still explicit).
pub(super) fn has_explicit_freshness(
    cc: &CacheControl,
    targeted: bool,
    headers: &HeaderMap,
) -> bool {
    cc.max_age.is_some() || cc.s_maxage.is_some() || (!targeted && headers.contains_key(EXPIRES))
}

/// Current age of a stored response (RFC 9111 4.2.3).
///
/// `resp_headers` are the headers as received from upstream (the `Age` it sent, not the one this
/// cache emits); `request_time` and `response_time` bracket the upstream exchange that produced
/// them (after a 304 merge, the revalidation's times). An `Age` that is not delta-seconds is
/// ignored; only the first value counts.
pub fn current_age(
    resp_headers: &HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
    now: SystemTime,
) -> Duration {
    let resident_time = now.duration_since(response_time).unwrap_or_default();
    initial_age(resp_headers, request_time, response_time).saturating_add(resident_time)
}

/// The `corrected_initial_age` of RFC 9111 4.2.3: the part of [`current_age`] fixed when the
/// response arrives (its `Age`, the request's round trip, and how old its `Date` says it is).
pub fn initial_age(
    resp_headers: &HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Duration {
    let age_value = resp_headers
        .get(AGE)
        .and_then(|v| split_list(v.as_bytes()).next())
        .and_then(delta_seconds)
        .map_or(Duration::ZERO, Duration::from_secs);
    let date_value = header_date(resp_headers, &DATE).unwrap_or(response_time);
    let apparent_age = response_time.duration_since(date_value).unwrap_or_default();
    let response_delay = response_time
        .duration_since(request_time)
        .unwrap_or_default();
    let corrected_age_value = age_value.saturating_add(response_delay);
    apparent_age.max(corrected_age_value)
}

/// What [`reuse`] needs to know about a stored response at the moment of a new request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMeta {
    /// From [`freshness_lifetime`]; `None` there is `ZERO` here.
    pub lifetime: Duration,
    /// From [`current_age`] at the time of the request.
    pub age: Duration,
    /// The stored response's directives, parsed once at store time.
    pub cache_control: CacheControl,
}

impl StoredMeta {
    /// Everything [`reuse`] needs, from the stored headers and the exchange's times.
    pub fn new(
        resp_headers: &HeaderMap,
        status: StatusCode,
        request_time: SystemTime,
        response_time: SystemTime,
        now: SystemTime,
        heuristic_cap: Duration,
    ) -> StoredMeta {
        let age = current_age(resp_headers, request_time, response_time, now);
        StoredMeta::with_age(resp_headers, status, response_time, age, heuristic_cap)
    }

    /// As [`StoredMeta::new`], for a caller that knows the response's current age (a stored
    /// object keeps its [`initial_age`] and adds the time since it arrived).
    pub fn with_age(
        resp_headers: &HeaderMap,
        status: StatusCode,
        response_time: SystemTime,
        age: Duration,
        heuristic_cap: Duration,
    ) -> StoredMeta {
        let (cache_control, targeted) = CacheControl::for_response(resp_headers);
        let lifetime = lifetime(
            &cache_control,
            targeted,
            resp_headers,
            status,
            response_time,
            heuristic_cap,
        );
        StoredMeta {
            lifetime: lifetime.unwrap_or_default(),
            age,
            cache_control,
        }
    }

    /// Fresh while the lifetime exceeds the age (RFC 9111 4.2).
    pub fn is_fresh(&self) -> bool {
        self.lifetime > self.age
    }

    /// How long past its lifetime the response is; zero while fresh.
    pub fn staleness(&self) -> Duration {
        self.age.saturating_sub(self.lifetime)
    }
}

/// What to do with a stored response for a new request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reuse {
    /// Serve it as is.
    Fresh,
    /// Stale, within the response's `stale-while-revalidate` window (RFC 5861 3): serve it now and
    /// refresh it in the background.
    StaleWhileRevalidate,
    /// Stale, but the request's `max-stale` accepts it (RFC 9111 5.2.1.2): serve it. It is still
    /// stale, so a background refresh is a good idea.
    StaleAccepted,
    /// Forward to upstream first, conditionally when the stored response has validators
    /// ([`validation_headers`](super::validation_headers)). If that fails, ask
    /// [`serve_stale_on_error`].
    MustValidate,
    /// The request says `only-if-cached` and the stored response cannot be served without
    /// upstream: answer 504 (RFC 9111 5.2.1.7). (On a plain miss the proxy answers 504 itself.)
    OnlyIfCachedMiss,
}

impl Reuse {
    pub fn as_str(self) -> &'static str {
        match self {
            Reuse::Fresh => "fresh",
            Reuse::StaleWhileRevalidate => "stale-while-revalidate",
            Reuse::StaleAccepted => "stale-accepted",
            Reuse::MustValidate => "must-validate",
            Reuse::OnlyIfCachedMiss => "only-if-cached-miss",
        }
    }
}

/// Decide how a stored response may satisfy a request with directives `req_cc` (RFC 9111 4,
/// 4.2.4, 5.2.1, 5.2.2; RFC 5861; RFC 8246).
///
/// - Response `no-cache` (unqualified): always validate (5.2.2.4).
/// - Response `immutable` while fresh: serve, ignoring the request's `no-cache`, `max-age` and
///   `min-fresh`: those are what a browser reload sends, and RFC 8246 exists to skip them.
/// - Request `no-cache`: validate (5.2.1.4); request `max-age` exceeded: validate (5.2.1.1);
///   request `min-fresh` not met: validate (5.2.1.3).
/// - Stale with `must-revalidate` / `proxy-revalidate`: validate, no stale serving (5.2.2.2,
///   5.2.2.8).
/// - Stale and the request's `max-stale` covers it: serve, unless the response has `s-maxage`,
///   which implies `proxy-revalidate` for shared caches (5.2.2.10).
/// - Stale within `stale-while-revalidate`: serve and refresh. The response's own explicit
///   `stale-while-revalidate` wins over the `proxy-revalidate` implied by its `s-maxage`: the
///   origin wrote both, and CDNs read `s-maxage=60, stale-while-revalidate=30` that way.
/// - Otherwise validate, and with `only-if-cached` that becomes [`Reuse::OnlyIfCachedMiss`].
pub fn reuse(stored: &StoredMeta, req_cc: &CacheControl) -> Reuse {
    let decision = decide(stored, req_cc);
    if decision == Reuse::MustValidate && req_cc.only_if_cached {
        Reuse::OnlyIfCachedMiss
    } else {
        decision
    }
}

fn decide(stored: &StoredMeta, req_cc: &CacheControl) -> Reuse {
    let cc = &stored.cache_control;
    let fresh = stored.is_fresh();
    if cc.no_cache {
        return Reuse::MustValidate;
    }
    if fresh && cc.immutable {
        return Reuse::Fresh;
    }
    if req_cc.no_cache {
        return Reuse::MustValidate;
    }
    if req_cc
        .max_age
        .is_some_and(|max_age| stored.age > Duration::from_secs(max_age))
    {
        return Reuse::MustValidate;
    }
    if let Some(min_fresh) = req_cc.min_fresh {
        // A stale response is never fresh for N more seconds; a fresh one must be.
        let left = stored.lifetime.saturating_sub(stored.age);
        if !fresh || left < Duration::from_secs(min_fresh) {
            return Reuse::MustValidate;
        }
    }
    if fresh {
        return Reuse::Fresh;
    }
    if cc.stale_must_revalidate() {
        return Reuse::MustValidate;
    }
    let staleness = stored.staleness();
    let within = |window: Option<u64>| window.is_none_or(|w| staleness <= Duration::from_secs(w));
    if let Some(max_stale) = req_cc.max_stale
        && cc.s_maxage.is_none()
        && within(max_stale)
    {
        return Reuse::StaleAccepted;
    }
    if cc
        .stale_while_revalidate
        .is_some_and(|w| staleness <= Duration::from_secs(w))
    {
        return Reuse::StaleWhileRevalidate;
    }
    Reuse::MustValidate
}

/// Whether the stored response may be served when validating it failed (upstream unreachable,
/// or a 500, 502, 503 or 504: the errors RFC 5861 4 names). Call it when the error happens, with
/// the age at that moment.
///
/// - Never with response `no-cache` (5.2.2.4) or request `no-cache` (5.2.1.4): both demand a
///   successful validation.
/// - A response that is still fresh (validation was only asked for by request `max-age` or
///   `min-fresh`) may be served: it is not stale, so nothing forbids it.
/// - Stale: never with `must-revalidate` / `proxy-revalidate` ("MUST generate an error", 5.2.2.2);
///   otherwise within the larger of the response's and the request's `stale-if-error` windows
///   (RFC 5861 4). As with `stale-while-revalidate`, an explicit `stale-if-error` wins over the
///   implied `proxy-revalidate` of `s-maxage`.
pub fn serve_stale_on_error(stored: &StoredMeta, req_cc: &CacheControl) -> bool {
    let cc = &stored.cache_control;
    if cc.no_cache || req_cc.no_cache {
        return false;
    }
    if stored.is_fresh() {
        return true;
    }
    if cc.stale_must_revalidate() {
        return false;
    }
    let window = match (cc.stale_if_error, req_cc.stale_if_error) {
        (Some(a), Some(b)) => a.max(b),
        (Some(w), None) | (None, Some(w)) => w,
        (None, None) => return false,
    };
    stored.staleness() <= Duration::from_secs(window)
}
