//! Response rate limiting for UDP (RRL, as BIND, NSD and Knot do it): a spoofed source cannot
//! turn the node into an amplifier, because each client network gets at most
//! `responses_per_second` of each class of response; beyond that responses are dropped, and
//! every `slip`-th one is sent truncated instead (TC=1, no records), so that a real client
//! behind that network retries over TCP, which cannot be spoofed.
//!
//! **Classes.** Each class has its own budget per network, and is keyed by a name chosen, as
//! NSD and BIND choose it, so that random query names cannot buy fresh budgets:
//! - answers: per name and type; the name is the query name, or the wildcard's owner
//!   (`*.w.example.`) when the query name was synthesised from a wildcard, so a flood of random
//!   names under a wildcard spends one budget, as a flood of one name does;
//! - NXDOMAIN, and NODATA: per zone, the owner of the SOA the answer carries (the zone's apex;
//!   for a recursive answer the zone its upstream named); a wildcard's NODATA per wildcard;
//! - referrals: per delegation point (the owner of the NS RRset);
//! - errors (REFUSED, FORMERR, SERVFAIL...): one budget per network.
//!
//! The class is decided where the answer is built, from the lookup's `Answer`
//! ([`ResponseClass::of`]): only the lookup knows that a name was synthesised from a wildcard,
//! and its records name the zone and the delegation point without any parsing. The answer
//! cache keeps the class with its copy of the response, so a hit spends the budget the fresh
//! answer did, and the check itself reads nothing of the response.
//!
//! The budgets live in a table of fixed size (`SLOTS` slots of 8 bytes, as BIND's RRL uses a
//! bounded table): a key's slot is its hash, and two keys that land in one slot share its
//! budget, which can only limit sooner, never later. Spoofed floods from millions of random
//! sources cost no memory, where a map of keys would grow with each of them.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;

use super::lookup::Answer;
use crate::config::RrlConfig;

/// What to do with one UDP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send a truncated copy (`truncate`) instead.
    Slip,
    Drop,
}

/// The budget a response spends, per client network (see the module documentation). Each
/// name is a hash of its lowercase labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    /// Records: the name they are counted under and the type asked, hashed together.
    Answer(u64),
    /// NOERROR and no records: the zone, or the wildcard that synthesised the name.
    NoData(u64),
    /// The zone that has no such name.
    NxDomain(u64),
    /// The delegation point.
    Referral(u64),
    Error,
}

/// The name of a negative answer that names no zone (a recursive answer without SOA): such
/// answers share one budget per network and class.
const NO_ZONE: u64 = 0;

impl ResponseClass {
    /// The class of `answer`, the response to `qname` and `qtype`.
    pub fn of(answer: &Answer<'_>, qname: &Name, qtype: RecordType) -> ResponseClass {
        let owner_of = |rtype| {
            let record = answer.authority.iter().find(|r| r.record_type() == rtype);
            record.map(|r| name_hash(r.name.iter()))
        };
        match answer.rcode {
            ResponseCode::NXDomain => {
                ResponseClass::NxDomain(owner_of(RecordType::SOA).unwrap_or(NO_ZONE))
            }
            ResponseCode::NoError if !answer.answers.is_empty() => {
                let mut hasher = DefaultHasher::new();
                write_name(&mut hasher, subject(qname, answer.wildcard));
                hasher.write_u16(u16::from(qtype));
                ResponseClass::Answer(hasher.finish())
            }
            ResponseCode::NoError if answer.wildcard.is_some() => {
                ResponseClass::NoData(name_hash(subject(qname, answer.wildcard)))
            }
            ResponseCode::NoError => match (owner_of(RecordType::SOA), owner_of(RecordType::NS)) {
                (Some(zone), _) => ResponseClass::NoData(zone),
                (None, Some(cut)) => ResponseClass::Referral(cut),
                (None, None) => ResponseClass::NoData(NO_ZONE),
            },
            _ => ResponseClass::Error,
        }
    }
}

/// The labels a response to `qname` is counted under: the wildcard's (`*` and the last
/// `wildcard` labels, its closest encloser) when `qname` was synthesised from one, else its own.
fn subject(qname: &Name, wildcard: Option<usize>) -> impl Iterator<Item = &[u8]> {
    let skip = wildcard.map_or(0, |encloser| qname.iter().count().saturating_sub(encloser));
    let star = wildcard.map(|_| &b"*"[..]);
    star.into_iter().chain(qname.iter().skip(skip))
}

fn name_hash<'a>(labels: impl Iterator<Item = &'a [u8]>) -> u64 {
    let mut hasher = DefaultHasher::new();
    write_name(&mut hasher, labels);
    hasher.finish()
}

/// Feeds `labels` to `hasher` as a lowercase wire name (without its root label), without
/// allocating.
fn write_name<'a>(hasher: &mut impl Hasher, labels: impl Iterator<Item = &'a [u8]>) {
    let mut wire = [0u8; 64];
    for label in labels {
        let len = label.len().min(63);
        wire[0] = len as u8;
        for (to, from) in wire[1..=len].iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        hasher.write(&wire[..=len]);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    /// The client's network: the source address masked to the configured prefix.
    network: [u8; 16],
    class: ResponseClass,
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

    /// Whether a response of `class` may go to `client` now (and spends its budget if so).
    pub fn check(&self, client: IpAddr, class: ResponseClass) -> Verdict {
        // On a dual-stack socket every IPv4 client is `::ffff:a.b.c.d`: it is its IPv4 address
        // here, for the exempt list and for its own network's budget.
        let client = client.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&client)) {
            return Verdict::Send;
        }
        let key = Key {
            network: self.network(client),
            class,
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
        let mut hasher = DefaultHasher::new();
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
    use std::path::Path;

    use super::*;
    use crate::dns::client::Client;
    use crate::dns::lookup::resolve;
    use crate::dns::{DnsState, ZoneSet};
    use crate::geo::Geo;

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

    /// Two wildcards and a delegation in one zone, and a second zone.
    const ZONES: [(&str, &str); 2] = [
        (
            "a.test",
            "@ SOA ns h 1 2 3 4 60\n@ NS ns\nns A 127.0.0.1\nwww A 10.0.0.1\n\
             *.w A 10.0.0.2\n*.v A 10.0.0.3\nsub NS ns.sub\nns.sub A 10.0.0.53\n",
        ),
        (
            "b.test",
            "@ SOA ns h 1 2 3 4 60\n@ NS ns\nns A 127.0.0.1\nwww A 10.0.0.1\n",
        ),
    ];

    fn zones(dir: &Path) -> DnsState {
        for (origin, text) in ZONES {
            let text = format!("$ORIGIN {origin}.\n$TTL 300\n{text}");
            std::fs::write(dir.join(format!("{origin}.zone")), text).unwrap();
        }
        DnsState::new(
            ZoneSet::load_dir(dir).unwrap(),
            Geo::load(&[], &[]).unwrap(),
            0,
        )
    }

    /// The class of the answer to `name` and `rtype`, as the handler decides it.
    fn class(state: &DnsState, name: &str, rtype: RecordType) -> ResponseClass {
        let mut client = Client::new("192.0.2.1".parse().unwrap(), &state.geo);
        let name = Name::from_ascii(name).unwrap();
        let answer = resolve(&state.zones, &name, rtype, &mut client);
        ResponseClass::of(&answer, &name, rtype)
    }

    #[test]
    fn names_synthesised_from_a_wildcard_are_counted_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = zones(dir.path());
        let a = |name| class(&state, name, RecordType::A);
        let wildcard = a("r1.w.a.test.");
        assert!(matches!(wildcard, ResponseClass::Answer(_)));
        // Any name, any depth, any case under `*.w`: one class, the wildcard's own.
        for name in ["r2.w.a.test.", "X.y.W.a.Test.", "*.w.a.test."] {
            assert_eq!(a(name), wildcard, "{name}");
        }
        // Another wildcard, a name that exists, and another type are counted apart.
        assert_ne!(a("r1.v.a.test."), wildcard);
        assert_ne!(a("w.a.test."), wildcard);
        assert_ne!(a("www.a.test."), wildcard);
        assert_ne!(class(&state, "r1.w.a.test.", RecordType::ANY), wildcard);
        // A wildcard's NODATA is counted under the wildcard too (as in NSD and BIND).
        let nodata = class(&state, "r1.w.a.test.", RecordType::TXT);
        assert!(matches!(nodata, ResponseClass::NoData(_)));
        assert_eq!(class(&state, "r2.w.a.test.", RecordType::MX), nodata);
        assert_ne!(class(&state, "www.a.test.", RecordType::TXT), nodata);
    }

    #[test]
    fn negative_answers_are_counted_per_zone_and_referrals_per_delegation() {
        let dir = tempfile::tempdir().unwrap();
        let state = zones(dir.path());
        let a = |name| class(&state, name, RecordType::A);
        let txt = |name| class(&state, name, RecordType::TXT);
        let nxdomain = a("nx1.a.test.");
        assert!(matches!(nxdomain, ResponseClass::NxDomain(_)));
        assert_eq!(a("nx2.deeper.A.test."), nxdomain);
        assert_eq!(txt("nx3.a.test."), nxdomain);
        assert_ne!(a("nx1.b.test."), nxdomain);
        let nodata = txt("www.a.test.");
        assert!(matches!(nodata, ResponseClass::NoData(_)));
        assert_eq!(txt("ns.a.test."), nodata);
        assert_ne!(txt("www.b.test."), nodata);
        let referral = a("x.sub.a.test.");
        assert!(matches!(referral, ResponseClass::Referral(_)));
        assert_eq!(a("y.z.sub.a.test."), referral);
        assert_eq!(class(&state, "sub.a.test.", RecordType::NS), referral);
        // Names outside the served zones are refused: errors, one class.
        assert_eq!(a("www.c.test."), ResponseClass::Error);
        assert_eq!(a("other.example."), ResponseClass::Error);
    }

    #[test]
    fn a_network_gets_its_budget_per_class_then_slips_and_drops() {
        let rrl = Rrl::new(&config(5, 2)).unwrap();
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let www = ResponseClass::Answer(1);
        let verdicts: Vec<Verdict> = (0..9).map(|_| rrl.check(client, www)).collect();
        assert_eq!(&verdicts[..5], &[Verdict::Send; 5]);
        assert_eq!(
            &verdicts[5..],
            &[Verdict::Slip, Verdict::Drop, Verdict::Slip, Verdict::Drop]
        );
        // Another class, and another network, have budgets of their own; the same /24 does not.
        assert_eq!(rrl.check(client, ResponseClass::Answer(2)), Verdict::Send);
        assert_eq!(rrl.check(client, ResponseClass::NoData(1)), Verdict::Send);
        assert_eq!(rrl.check("192.0.3.7".parse().unwrap(), www), Verdict::Send);
        assert_ne!(
            rrl.check("192.0.2.200".parse().unwrap(), www),
            Verdict::Send
        );
        // Exempt networks are never limited.
        let exempt: IpAddr = "10.9.1.1".parse().unwrap();
        assert!((0..20).all(|_| rrl.check(exempt, www) == Verdict::Send));
    }

    /// A spoofed flood from a million random IPv6 networks costs no memory: the table is as
    /// large before as after, and a real network still gets its budget (at 100 a second: the
    /// ~15 spoofed responses that share each slot leave its budget open, however fast they
    /// come).
    #[test]
    fn random_sources_cost_no_memory() {
        let rrl = Rrl::new(&config(100, 0)).unwrap();
        let before = rrl.table_bytes();
        let www = ResponseClass::Answer(1);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..1_000_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let source = std::net::Ipv6Addr::from(u128::from(seed) << 64 | u128::from(seed));
            rrl.check(IpAddr::V6(source), www);
        }
        assert_eq!(rrl.table_bytes(), before);
        assert_eq!(before, SLOTS * 8);
        let real: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(rrl.check(real, www), Verdict::Send);
    }

    /// Random names in one zone spend that zone's NXDOMAIN budget, and only that.
    #[test]
    fn random_negative_names_share_their_zones_budget() {
        let dir = tempfile::tempdir().unwrap();
        let state = zones(dir.path());
        let rrl = Rrl::new(&config(3, 0)).unwrap();
        let client: IpAddr = "2001:db8::1".parse().unwrap();
        let verdicts: Vec<Verdict> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| {
                rrl.check(
                    client,
                    class(&state, &format!("{n}.a.test."), RecordType::A),
                )
            })
            .collect();
        assert_eq!(
            verdicts,
            [Verdict::Send, Verdict::Send, Verdict::Send, Verdict::Drop]
        );
        let other_zone = class(&state, "a.b.test.", RecordType::A);
        assert_eq!(rrl.check(client, other_zone), Verdict::Send);
    }

    /// A response with the question `name` (wire labels) type A and one answer.
    fn response(name: &[u8]) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        message.extend_from_slice(name);
        message.extend_from_slice(&[0, 1, 0, 1]);
        message.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        message
    }

    #[test]
    fn a_slipped_response_is_the_question_with_tc() {
        const WWW: &[u8] = b"\x03www\x07example\x04test\x00";
        let mut out = Vec::new();
        assert!(truncate(&response(WWW), &mut out));
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
