//! Response rate limiting for UDP (RRL, as BIND, NSD and Knot do it): a spoofed source cannot
//! turn the node into an amplifier, because each client network gets at most
//! `responses_per_second` of each kind of response; beyond that responses are dropped, and
//! every `slip`-th one is sent truncated instead (TC=1, no records), so that a real client
//! behind that network retries over TCP, which cannot be spoofed.
//!
//! Kinds of response, each with its own budget per network: answers, per query name and type
//! (a flood of one name does not silence others); negative answers and referrals (NXDOMAIN,
//! NODATA: one budget, so random names cannot escape the limit); errors.
//!
//! The budgets live in a table of fixed size (`SLOTS` slots of 8 bytes, as BIND's RRL uses a
//! bounded table): a key's slot is its hash, and two keys that land in one slot share its
//! budget, which can only limit sooner, never later. Spoofed floods from millions of random
//! sources cost no memory, where a map of keys would grow with each of them.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use ipnet::IpNet;

use crate::config::RrlConfig;

/// What to do with one UDP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send a truncated copy (`truncate`) instead.
    Slip,
    Drop,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    /// The client's network: the source address masked to the configured prefix.
    network: [u8; 16],
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// A hash of the lowercased query name and type.
    Answer(u64),
    Negative,
    Error,
}

/// Slots of the budget table: 512 KiB, whatever the traffic.
const SLOTS: usize = 1 << 16;

pub struct Rrl {
    /// Per slot, the GCRA's theoretical arrival time of the next response, in nanoseconds
    /// since `start` (0: never used).
    slots: Box<[AtomicU64]>,
    start: Instant,
    /// Nanoseconds one response uses of a budget (1 s / responses_per_second).
    interval: u64,
    /// How far ahead of now a slot's time may run: the burst (`window` seconds of budget).
    tolerance: u64,
    slip: u32,
    dropped: AtomicU32,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
    exempt: Vec<IpNet>,
}

impl Rrl {
    /// None when `responses_per_second` is 0 (off).
    pub fn new(config: &RrlConfig) -> Option<Rrl> {
        if config.responses_per_second == 0 {
            return None;
        }
        let interval = 1_000_000_000 / u64::from(config.responses_per_second);
        let burst = u64::from(
            config
                .responses_per_second
                .saturating_mul(config.window)
                .max(1),
        );
        Some(Rrl {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            start: Instant::now(),
            interval: interval.max(1),
            tolerance: interval.max(1) * burst,
            slip: config.slip,
            dropped: AtomicU32::new(0),
            ipv4_prefix: config.ipv4_prefix.min(32),
            ipv6_prefix: config.ipv6_prefix.min(128),
            exempt: config.exempt.clone(),
        })
    }

    pub fn check(&self, client: IpAddr, response: &[u8]) -> Verdict {
        // On a dual-stack socket every IPv4 client is `::ffff:a.b.c.d`: it is its IPv4 address
        // here, for the exempt list and for its own network's budget.
        let client = client.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&client)) {
            return Verdict::Send;
        }
        let key = Key {
            network: self.network(client),
            kind: kind(response),
        };
        if self.admit(&key) {
            return Verdict::Send;
        }
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed);
        if self.slip > 0 && dropped.is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// GCRA on `key`'s slot: true (and the budget spent) when a response is within it.
    fn admit(&self, key: &Key) -> bool {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let slot = &self.slots[(hasher.finish() as usize) % SLOTS];
        // +1: 0 marks a slot never used.
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX) + 1;
        let mut tat = slot.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now) + self.interval;
            if next - now > self.tolerance {
                return false;
            }
            match slot.compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(current) => tat = current,
            }
        }
    }

    /// Bytes the budgets take, whatever the traffic.
    pub fn table_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<AtomicU64>()
    }

    fn network(&self, client: IpAddr) -> [u8; 16] {
        let masked = match client {
            IpAddr::V4(v4) => IpNet::new(IpAddr::V4(v4), self.ipv4_prefix),
            IpAddr::V6(v6) => IpNet::new(IpAddr::V6(v6), self.ipv6_prefix),
        };
        let network = masked.map_or(client, |n| n.network());
        match network {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        }
    }
}

/// The kind of a response, from its header and question.
fn kind(response: &[u8]) -> Kind {
    let Some(header) = response.get(..12) else {
        return Kind::Error;
    };
    let rcode = header[3] & 0x0f;
    let answers = u16::from_be_bytes([header[6], header[7]]);
    match rcode {
        0 if answers > 0 => {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            match question(response) {
                Some((name, qtype)) => {
                    name.iter()
                        .for_each(|b| hasher.write_u8(b.to_ascii_lowercase()));
                    qtype.hash(&mut hasher);
                }
                None => return Kind::Error,
            }
            Kind::Answer(hasher.finish())
        }
        0 | 3 => Kind::Negative,
        _ => Kind::Error,
    }
}

/// The question's name (wire form, up to its root label) and type, when there is one.
fn question(message: &[u8]) -> Option<(&[u8], [u8; 2])> {
    let start = 12;
    let mut at = start;
    loop {
        let len = usize::from(*message.get(at)?);
        if len == 0 {
            break;
        }
        // Compression pointers do not occur in a first question; refuse them.
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
    }
    let name = message.get(start..=at)?;
    let qtype = message.get(at + 1..at + 3)?;
    Some((name, [qtype[0], qtype[1]]))
}

/// A truncated copy of `response` for a slipped answer: the header with TC set and only the
/// question, so the client retries over TCP. None when the response has no readable question.
pub fn truncate(response: &[u8], out: &mut Vec<u8>) -> bool {
    let Some((name, _)) = question(response) else {
        return false;
    };
    let end = 12 + name.len() + 4;
    let Some(kept) = response.get(..end) else {
        return false;
    };
    out.clear();
    out.extend_from_slice(kept);
    out[2] |= 0x02; // TC
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..12].fill(0);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: u32, slip: u32) -> RrlConfig {
        RrlConfig {
            responses_per_second: rate,
            window: 1,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec!["10.9.0.0/16".parse().unwrap()],
        }
    }

    /// A response with the question `name` (wire labels) type A, `answers` answers, `rcode`.
    fn response(name: &[u8], answers: u16, rcode: u8) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x84, rcode, 0, 1];
        message.extend_from_slice(&answers.to_be_bytes());
        message.extend_from_slice(&[0, 0, 0, 0]);
        message.extend_from_slice(name);
        message.extend_from_slice(&[0, 1, 0, 1]);
        message.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        message
    }

    const WWW: &[u8] = b"\x03www\x07example\x04test\x00";
    const MAIL: &[u8] = b"\x04mail\x07example\x04test\x00";

    #[test]
    fn a_network_gets_its_budget_per_name_then_slips_and_drops() {
        let rrl = Rrl::new(&config(5, 2)).unwrap();
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let www = response(WWW, 1, 0);
        let verdicts: Vec<Verdict> = (0..9).map(|_| rrl.check(client, &www)).collect();
        assert_eq!(&verdicts[..5], &[Verdict::Send; 5]);
        assert_eq!(
            &verdicts[5..],
            &[Verdict::Slip, Verdict::Drop, Verdict::Slip, Verdict::Drop]
        );
        // Another name, and another network, have budgets of their own; the same /24 does not.
        assert_eq!(rrl.check(client, &response(MAIL, 1, 0)), Verdict::Send);
        assert_eq!(rrl.check("192.0.3.7".parse().unwrap(), &www), Verdict::Send);
        assert_ne!(
            rrl.check("192.0.2.200".parse().unwrap(), &www),
            Verdict::Send
        );
        // Exempt networks are never limited.
        let exempt: IpAddr = "10.9.1.1".parse().unwrap();
        assert!((0..20).all(|_| rrl.check(exempt, &www) == Verdict::Send));
    }

    /// A spoofed flood from a million random IPv6 networks costs no memory: the table is as
    /// large before as after, and a real network still gets its budget.
    #[test]
    fn random_sources_cost_no_memory() {
        let rrl = Rrl::new(&config(5, 0)).unwrap();
        let before = rrl.table_bytes();
        let www = response(WWW, 1, 0);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..1_000_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let source = std::net::Ipv6Addr::from(u128::from(seed) << 64 | u128::from(seed));
            rrl.check(IpAddr::V6(source), &www);
        }
        assert_eq!(rrl.table_bytes(), before);
        assert_eq!(before, SLOTS * 8);
        let real: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(rrl.check(real, &www), Verdict::Send);
    }

    #[test]
    fn negative_answers_share_one_budget_whatever_the_name() {
        let rrl = Rrl::new(&config(3, 0)).unwrap();
        let client: IpAddr = "2001:db8::1".parse().unwrap();
        let names: [&[u8]; 4] = [
            b"\x01a\x04test\x00",
            b"\x01b\x04test\x00",
            b"\x01c\x04test\x00",
            b"\x01d\x04test\x00",
        ];
        let verdicts: Vec<Verdict> = names
            .iter()
            .map(|n| rrl.check(client, &response(n, 0, 3)))
            .collect();
        assert_eq!(
            verdicts,
            [Verdict::Send, Verdict::Send, Verdict::Send, Verdict::Drop]
        );
    }

    #[test]
    fn a_slipped_response_is_the_question_with_tc() {
        let mut out = Vec::new();
        assert!(truncate(&response(WWW, 1, 0), &mut out));
        assert_eq!(out.len(), 12 + WWW.len() + 4);
        assert_eq!(out[2] & 0x02, 0x02);
        assert_eq!(&out[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert!(!truncate(&[0u8; 5], &mut out));
    }

    #[test]
    fn off_when_the_rate_is_zero() {
        assert!(Rrl::new(&config(0, 2)).is_none());
    }
}
