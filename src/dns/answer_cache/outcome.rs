//! What the answer cache did with each query, counted in `edgenode_dns_answer_cache_total`.

use prometheus_client::metrics::counter::Counter;

use super::AnswerCache;
use crate::metrics::{DnsMetrics, ResultLabels};

/// What the answer cache did with one query: the `edgenode_dns_answer_cache_total` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerCacheOutcome {
    /// Answered from a stored response.
    Hit,
    /// Answered by the slow path, then stored.
    Miss,
    /// Answered (or dropped) by the slow path and not storable: recursion, errors, too large.
    Uncacheable,
}

impl AnswerCacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerCacheOutcome::Hit => "hit",
            AnswerCacheOutcome::Miss => "miss",
            AnswerCacheOutcome::Uncacheable => "uncacheable",
        }
    }
}

/// The answer cache counters, looked up once.
#[derive(Clone)]
pub(crate) struct CacheCounters([Counter; 3]);

impl CacheCounters {
    pub(crate) fn new(metrics: &DnsMetrics) -> CacheCounters {
        let counter = |outcome: AnswerCacheOutcome| {
            let labels = ResultLabels {
                result: outcome.as_str(),
            };
            metrics.answer_cache.get_or_create(&labels).clone()
        };
        CacheCounters([
            counter(AnswerCacheOutcome::Hit),
            counter(AnswerCacheOutcome::Miss),
            counter(AnswerCacheOutcome::Uncacheable),
        ])
    }

    /// Counts `outcome` here and, for an answer cache over the core, in the core's
    /// `dns-answers` statistics (a hit as a hit; a miss, stored or not, as a miss).
    pub(crate) fn count(&self, answers: &AnswerCache, outcome: AnswerCacheOutcome) {
        self.0[outcome as usize].inc();
        answers.count(outcome);
    }
}
