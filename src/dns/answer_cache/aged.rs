//! Recursive answers in the answer cache: the wire response the slow path built from a fresh
//! cache entry, served again with every TTL of the answer and authority sections set to what
//! the slow path would write now (the record's TTL at age 0 minus the entry's age in whole
//! seconds, RFC 1035 section 3.2.1 / RFC 2181 section 8), until the entry stops being fresh.
//! After that the slow path decides again (refill, or serve-stale), and a flush invalidates
//! every copy through `RecursiveHits::generation`.
//!
//! The OPT record's TTL field holds the extended rcode and flags: the additional section is
//! never rewritten (recursive answers carry nothing else there).

use std::sync::Arc;

use tokio::time::Instant;

use super::{Query, WireAnswer, send};
use crate::dns::reader::{Records, read_u16, read_u32};
use crate::dns::recursion::{FreshWindow, RecursiveHits};
use crate::dns::rrl::ResponseClass;

/// A recursive response and what rewriting its TTLs needs.
pub struct Aged {
    stored: WireAnswer,
    /// Offset of each rewritten TTL field in `stored.wire`, with the TTL at age 0.
    ttls: Box<[(u16, u32)]>,
    /// The instant the cache entry's age counts from.
    stored_at: Instant,
    fresh_until: Instant,
    /// Checked and counted on every hit.
    hits: Arc<RecursiveHits>,
    /// `hits.generation()` when the answer was looked up.
    generation: u64,
}

impl Aged {
    /// The copy of `stored`, a response built from an entry at `fresh`; None when its TTLs
    /// cannot be found (a message this module does not walk) or one has already reached 0.
    pub fn new(stored: WireAnswer, fresh: FreshWindow, hits: Arc<RecursiveHits>) -> Option<Aged> {
        let offsets = ttl_offsets(&stored.wire)?;
        let mut ttls = Vec::with_capacity(offsets.len());
        for offset in offsets {
            let sent = read_u32(&stored.wire, offset)?;
            if sent == 0 {
                return None;
            }
            ttls.push((
                u16::try_from(offset).ok()?,
                sent.saturating_add(fresh.age_secs),
            ));
        }
        Some(Aged {
            stored,
            ttls: ttls.into(),
            stored_at: fresh.stored_at,
            fresh_until: fresh.fresh_until,
            hits,
            generation: fresh.generation,
        })
    }

    /// Writes the response to `query` into `out` if the entry is still fresh and unflushed,
    /// and returns its class.
    pub(super) fn serve(&self, query: &Query<'_>, out: &mut Vec<u8>) -> Option<ResponseClass> {
        let now = Instant::now();
        if now >= self.fresh_until || self.hits.generation() != self.generation {
            return None;
        }
        let age = now.saturating_duration_since(self.stored_at).as_secs();
        let age = u32::try_from(age).unwrap_or(u32::MAX);
        let class = send(&self.stored, query, out);
        for &(offset, ttl) in self.ttls.iter() {
            let offset = usize::from(offset);
            if let Some(field) = out.get_mut(offset..offset + 4) {
                field.copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
            }
        }
        self.hits.count();
        Some(class)
    }

    pub(super) fn len(&self) -> usize {
        self.stored.wire.len()
    }
}

/// Offsets of the TTL fields of the answer and authority records in a DNS message; None when
/// the message is cut short or malformed.
pub fn ttl_offsets(wire: &[u8]) -> Option<Vec<usize>> {
    let records = usize::from(read_u16(wire, 6)?) + usize::from(read_u16(wire, 8)?);
    let mut offsets = Vec::with_capacity(records);
    // The additional section is not read: a record there cannot make this fail.
    for record in Records::new(wire)?.take(records) {
        offsets.push(record?.ttl_at);
    }
    Some(offsets)
}
