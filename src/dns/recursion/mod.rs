//! Recursive resolution for names outside the served zones, for allowed clients only: by
//! forwarding or iteratively, with answers in the shared cache core (TTLs that age, RFC 2308
//! negative caching, RFC 8767 serve-stale, one upstream query per question in flight).

mod forward;
mod iterative;
pub mod recursor_metrics;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use ipnet::IpNet;
use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

use super::lookup::Answer;
use crate::cache::{Cache, CacheKey, CacheOutcome, EntryMeta, Filled, Namespace, PurgeMode};
use crate::config::RecursionConfig;
use crate::metrics::{DnsMetrics, OutcomeLabels};
use forward::Forwarder;
use iterative::Iterative;

/// Why the upstreams gave no usable answer (the query then gets SERVFAIL, or a stale answer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecursionError {
    #[error("{0}: timed out")]
    Timeout(SocketAddr),
    #[error("{0}: {1}")]
    Exchange(SocketAddr, String),
    #[error("{0}: answered {1}")]
    Rcode(SocketAddr, ResponseCode),
    #[error("{0}")]
    Unreachable(String),
    #[error("iterative resolution failed: {0}")]
    Iterative(String),
}

/// Where answers come from.
enum Upstream {
    Forward(Forwarder),
    /// Boxed: the recursor is large and there is one per node.
    Iterative(Box<Iterative>),
}

/// A recursive answer as the cache keeps it, minimal: the answer section, the authority
/// section of a negative answer, and the AD flag.
struct CachedResponse {
    /// How long the entry is fresh (its `EntryMeta::fresh_for`).
    fresh_for: Duration,
    rcode: ResponseCode,
    answers: Vec<Record>,
    authority: Vec<Record>,
    authentic_data: bool,
}

/// Why recursion cannot start (read at start-up and on reload).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecursionSetupError {
    /// The root hints file (`recursion.root_hints`) cannot be read or parsed.
    #[error("{}: {message}", path.display())]
    RootHints { path: PathBuf, message: String },
    #[error("{}: no A or AAAA records of root servers", path.display())]
    NoRootServers { path: PathBuf },
    #[error("cannot start the iterative resolver: {0}")]
    Start(String),
}

/// What `Recursion::resolve` gives the handler.
pub struct Resolved {
    pub answer: Answer<'static>,
    pub authentic_data: bool,
    /// Set when the answer came from a fresh cache entry: until when the wire response built
    /// from it may be served again with aged TTLs (None: stale, not to be kept).
    pub fresh: Option<FreshWindow>,
}

/// Where a fresh answer stands in its cache entry's life, for the answer cache's copy.
#[derive(Clone, Copy, Debug)]
pub struct FreshWindow {
    /// The instant the entry's age counts from.
    pub stored_at: Instant,
    /// When the entry stops being fresh (the slow path must then decide: refill or stale).
    pub fresh_until: Instant,
    /// The whole seconds subtracted from the TTLs of this answer.
    pub age_secs: u32,
    /// `RecursiveHits::generation` read before the cache lookup.
    pub generation: u64,
}

/// What a recursive answer served from the answer cache's wire copy checks and counts, so that
/// a hit there behaves as a hit of `Recursion::resolve`: flushes invalidate it, and the
/// recursion and cache metrics count it.
pub struct RecursiveHits {
    /// Bumped by every flush; a wire copy built before it is not served.
    generation: AtomicU64,
    /// `edgenode_dns_recursion_total{outcome="hit"}`.
    hits: Counter,
    /// The cache core, whose DNS namespace counts the hit.
    cache: Cache,
}

impl RecursiveHits {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Counts a hit served from a wire copy.
    pub fn count(&self) {
        self.hits.inc();
        self.cache.count(Namespace::Dns, CacheOutcome::Hit);
    }
}

/// TTL rules of cached answers (config `recursion.*_ttl`, `stale_*`).
#[derive(Clone, Copy)]
struct TtlPolicy {
    min: u32,
    max: u32,
    max_negative: u32,
    stale_window: u32,
    stale_ttl: u32,
}

pub struct Recursion {
    /// Shared with the cache fills, which outlive a caller that gives up.
    upstream: Arc<Upstream>,
    cache: Cache,
    /// Clients that may recurse (source address, never the ECS address).
    allow: Vec<IpNet>,
    ttl: TtlPolicy,
    metrics: DnsMetrics,
    /// Shared with the answer cache's wire copies of our answers.
    hits: Arc<RecursiveHits>,
}

impl Recursion {
    /// None when recursion is off. Must run inside the tokio runtime.
    pub fn new(
        config: &RecursionConfig,
        cache: Cache,
        metrics: DnsMetrics,
    ) -> Result<Option<Recursion>, RecursionSetupError> {
        let upstream = if config.iterative {
            Upstream::Iterative(Box::new(Iterative::new(config)?))
        } else if !config.forwarders.is_empty() {
            let timeout = Duration::from_millis(config.timeout_ms);
            Upstream::Forward(Forwarder::new(
                &config.forwarders,
                timeout,
                config.attempts,
                cache.tasks().clone(),
            ))
        } else {
            return Ok(None);
        };
        let hits = Arc::new(RecursiveHits {
            generation: AtomicU64::new(0),
            hits: metrics
                .recursion
                .get_or_create(&OutcomeLabels {
                    outcome: CacheOutcome::Hit.as_str(),
                })
                .clone(),
            cache: cache.clone(),
        });
        Ok(Some(Recursion {
            upstream: Arc::new(upstream),
            hits,
            cache,
            allow: config.allow.clone(),
            ttl: TtlPolicy {
                min: config.min_ttl,
                max: config.max_ttl,
                max_negative: config.max_negative_ttl,
                stale_window: config.stale_window,
                stale_ttl: config.stale_ttl,
            },
            metrics,
        }))
    }

    /// For the start-up log line.
    pub fn describe(&self) -> String {
        match &*self.upstream {
            Upstream::Forward(f) => format!("forwarding to {}", f.describe()),
            Upstream::Iterative(_) => "iterative from the root hints".to_string(),
        }
    }

    pub fn allows(&self, client: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&client))
    }

    /// What wire copies of our answers check and count on a hit.
    pub fn hits(&self) -> &Arc<RecursiveHits> {
        &self.hits
    }

    /// Answers from the cache or the upstreams; None means SERVFAIL (upstreams failed and no
    /// stale answer is left).
    pub async fn resolve(
        &self,
        query: &Query,
        checking_disabled: bool,
        dnssec_ok: bool,
    ) -> Option<Resolved> {
        // Read before the lookup: a flush after it invalidates what this lookup returns.
        let generation = self.hits.generation();
        let key = cache_key(query, checking_disabled, dnssec_ok);
        let upstream = Arc::clone(&self.upstream);
        let (owned_query, ttl) = (query.clone(), self.ttl);
        let filled = self
            .cache
            .get_or_fill(key, true, move || async move {
                let message = match &*upstream {
                    Upstream::Forward(f) => {
                        f.resolve(&owned_query, checking_disabled, dnssec_ok)
                            .await?
                    }
                    Upstream::Iterative(i) => i.resolve(&owned_query, dnssec_ok).await?,
                };
                Ok::<_, RecursionError>(CachedResponse::from_message(message, ttl))
            })
            .await;
        let filled = match filled {
            Ok(filled) => filled,
            Err(error) => {
                tracing::debug!(%error, query = %query.name(), "recursion failed");
                self.count("failed");
                return None;
            }
        };
        self.count(filled.outcome.as_str());
        if filled.outcome == CacheOutcome::Stale {
            self.metrics.stale_answers.inc();
        }
        Some(self.resolved(&filled, generation))
    }

    /// The handler's answer from a cache entry: TTLs clamped and aged (or the stale TTL), and
    /// the fresh window the answer cache may keep its wire copy for.
    fn resolved(&self, filled: &Filled<CachedResponse>, generation: u64) -> Resolved {
        let age = filled.age.as_secs().min(u64::from(u32::MAX)) as u32;
        let fresh = match filled.outcome {
            CacheOutcome::Stale => None,
            _ => Instant::now()
                .checked_sub(filled.age)
                .map(|stored_at| FreshWindow {
                    stored_at,
                    fresh_until: stored_at + filled.value.fresh_for,
                    age_secs: age,
                    generation,
                }),
        };
        let ttl_of = |record: &Record| match filled.outcome {
            CacheOutcome::Stale => self.ttl.stale_ttl,
            _ => record
                .ttl
                .clamp(self.ttl.min, self.ttl.max)
                .saturating_sub(age),
        };
        let aged = |records: &[Record]| -> Vec<Cow<'static, Record>> {
            records
                .iter()
                .map(|r| {
                    let mut record = r.clone();
                    record.ttl = ttl_of(r);
                    Cow::Owned(record)
                })
                .collect()
        };
        let cached = &filled.value;
        Resolved {
            answer: Answer {
                rcode: cached.rcode,
                authoritative: false,
                answers: aged(&cached.answers),
                authority: aged(&cached.authority),
                additional: Vec::new(),
                wildcard: None,
            },
            authentic_data: cached.authentic_data,
            fresh,
        }
    }

    /// Drops (or, soft, marks stale) every cached answer for `name`, all types and flags, like
    /// `unbound-control flush`. Returns how many entries were affected.
    pub async fn flush(&self, name: &Name, mode: PurgeMode) -> usize {
        let flushed = self
            .cache
            .purge_prefix(Namespace::Dns, &name_prefix(name), mode)
            .await;
        // After the purge: a lookup that read the old generation may have seen the old entry.
        // Every wire copy goes, not only this name's (flushes are rare; hits refill them).
        self.hits.generation.fetch_add(1, Ordering::AcqRel);
        flushed
    }

    fn count(&self, outcome: &'static str) {
        self.metrics
            .recursion
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}

impl CachedResponse {
    /// The cache entry for an upstream answer and how long it stays fresh: the smallest answer
    /// TTL, or for a negative answer the SOA's negative TTL (RFC 2308 section 5), within bounds.
    fn from_message(message: Message, ttl: TtlPolicy) -> (Arc<CachedResponse>, EntryMeta) {
        // Minimal responses, as for authoritative answers: the answer section for a positive
        // answer, the SOA for a negative one; the upstream's NS and glue stay behind (RRSIGs
        // and denial proofs stay when DO asked for them).
        let positive = !message.answers.is_empty();
        let keep_authority = |r: &Record| match r.record_type() {
            RecordType::SOA | RecordType::NSEC | RecordType::NSEC3 | RecordType::RRSIG => !positive,
            _ => false,
        };
        let mut cached = CachedResponse {
            fresh_for: Duration::ZERO,
            rcode: message.metadata.response_code,
            authentic_data: message.metadata.authentic_data,
            answers: message.answers,
            authority: message
                .authorities
                .into_iter()
                .filter(keep_authority)
                .collect(),
        };
        let fresh = if cached.rcode == ResponseCode::NoError && !cached.answers.is_empty() {
            cached.answers.iter().map(|r| r.ttl).min().unwrap_or(0)
        } else {
            let soa = cached.authority.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            });
            soa.unwrap_or(0).min(ttl.max_negative)
        };
        let fresh = fresh.clamp(ttl.min, ttl.max);
        cached.fresh_for = Duration::from_secs(u64::from(fresh));
        let meta = EntryMeta {
            fresh_for: cached.fresh_for,
            stale_for: Duration::from_secs(u64::from(ttl.stale_window)),
            weight: cached.wire_size(),
            tags: Vec::new(),
        };
        (Arc::new(cached), meta)
    }

    /// Encoded size of the records, the weight the cache budget counts.
    fn wire_size(&self) -> u32 {
        let mut buffer = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut buffer);
        for record in self.answers.iter().chain(&self.authority) {
            // A record that cannot be encoded weighs nothing here; it fails when sent instead.
            let _ = record.emit(&mut encoder);
        }
        u32::try_from(buffer.len()).unwrap_or(u32::MAX)
    }
}

/// The question as the cache keys it: lowercased name, type, class, and the flags that change
/// the answer (CD, DO).
fn cache_key(query: &Query, checking_disabled: bool, dnssec_ok: bool) -> CacheKey {
    let mut key = name_prefix(query.name());
    key.extend_from_slice(&u16::from(query.query_type()).to_be_bytes());
    key.extend_from_slice(&u16::from(query.query_class()).to_be_bytes());
    key.push(u8::from(checking_disabled) << 1 | u8::from(dnssec_ok));
    CacheKey::new(Namespace::Dns, key)
}

/// The start of every cache key for `name`: the lowercased name and a NUL.
fn name_prefix(name: &Name) -> Vec<u8> {
    let mut prefix = name.to_lowercase().to_ascii().into_bytes();
    if !prefix.ends_with(b".") {
        prefix.push(b'.');
    }
    prefix.push(0);
    prefix
}
