//! The authoritative answer algorithm (RFC 1034 section 4.3.2, RFC 2308, RFC 4592, RFC 8482).

use std::borrow::Cow;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::ZoneSet;
use super::policy::{Client, RrsetPolicy};
use super::zone::{Found, Node, RrSet, Zone};

/// Longest CNAME chain followed inside the served zones before answering what we have.
const MAX_CNAME_CHAIN: usize = 8;

/// The sections of an authoritative response; records borrow from the zone data unless they had
/// to be synthesized (wildcard expansion).
#[derive(Debug)]
pub struct Answer<'z> {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Cow<'z, Record>>,
    pub authority: Vec<Cow<'z, Record>>,
    pub additional: Vec<Cow<'z, Record>>,
}

impl Answer<'_> {
    fn refused() -> Self {
        Self {
            rcode: ResponseCode::Refused,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }
}

/// Answers `qname`/`qtype` from the served zones for `client`.
pub fn resolve<'z>(
    zones: &'z ZoneSet,
    qname: &Name,
    qtype: RecordType,
    client: &mut Client<'_>,
) -> Answer<'z> {
    let mut answer = Answer::refused();
    let mut owner = qname.clone();
    let mut name = LowerName::new(qname);
    for hop in 0..MAX_CNAME_CHAIN {
        let Some(zone) = zones.find(&name, qtype == RecordType::DS) else {
            return answer; // REFUSED for the question, or a chain that leaves our zones
        };
        if hop == 0 {
            answer.rcode = ResponseCode::NoError;
            answer.authoritative = true;
        }
        let (node, synthesized) = match zone.find(&name, qtype == RecordType::DS) {
            Found::Exact(node) => (node, false),
            Found::Wildcard(node) => (node, true),
            Found::Delegation(cut) => {
                if hop == 0 {
                    answer.authoritative = false;
                }
                referral(zone, cut, client, &mut answer);
                return answer;
            }
            Found::NxDomain => {
                answer.rcode = ResponseCode::NXDomain;
                answer.authority.push(Cow::Borrowed(zone.negative_soa()));
                return answer;
            }
        };
        let rename = synthesized.then_some(&owner);
        let follows_cname = !matches!(qtype, RecordType::CNAME | RecordType::ANY);
        if let Some(cname) = node.get(RecordType::CNAME).filter(|_| follows_cname) {
            let records = select(cname, client);
            let target = match records.first().map(|r| &r.data) {
                Some(RData::CNAME(target)) => Some(target.0.clone()),
                _ => None,
            };
            push_all(&mut answer.answers, records, rename);
            let Some(target) = target else {
                return answer;
            };
            let target_lower = LowerName::new(&target);
            if target_lower == name {
                return answer; // a loop: the client sees the chain and gives up
            }
            owner = target;
            name = target_lower;
            continue;
        }
        let rrset = match qtype {
            // RFC 8482: answer ANY with one RRset instead of everything.
            RecordType::ANY => node.rrsets.first(),
            _ => node.get(qtype),
        };
        // A pool entry with no node to offer and no zone file records is empty: NODATA.
        let records = rrset
            .map(|set| select(set, client))
            .filter(|r| !r.is_empty());
        match records {
            Some(records) => {
                additional_addresses(zones, &records, client, &mut answer.additional);
                push_all(&mut answer.answers, records, rename);
            }
            None => answer.authority.push(Cow::Borrowed(zone.negative_soa())),
        }
        return answer;
    }
    answer
}

/// A referral to the child zone: its NS RRset in authority and the addresses we hold for the
/// name servers (glue) in additional.
fn referral<'z>(zone: &'z Zone, cut: &'z Node, client: &mut Client<'_>, answer: &mut Answer<'z>) {
    let Some(ns) = cut.get(RecordType::NS) else {
        return;
    };
    answer
        .authority
        .extend(ns.records.iter().map(Cow::Borrowed));
    for record in &ns.records {
        if let RData::NS(target) = &record.data {
            let target = LowerName::new(&target.0);
            if let Some(node) = zone.node(&target) {
                push_addresses(node, client, &mut answer.additional);
            }
        }
    }
}

/// Additional section processing, minimal (like NSD's `minimal-responses: yes`, Knot, and BIND's
/// `minimal-responses`): addresses only for the name servers of an NS answer, where a resolver
/// needs them. MX and SRV targets are left for the resolver to ask, which keeps UDP answers small.
fn additional_addresses<'z>(
    zones: &'z ZoneSet,
    records: &[Record],
    client: &mut Client<'_>,
    out: &mut Vec<Cow<'z, Record>>,
) {
    for record in records {
        let target = match &record.data {
            RData::NS(ns) => &ns.0,
            _ => continue,
        };
        let target = LowerName::new(target);
        let Some(zone) = zones.find(&target, false) else {
            continue;
        };
        if let Some(node) = zone.node(&target) {
            push_addresses(node, client, out);
        }
    }
}

fn push_addresses<'z>(node: &'z Node, client: &mut Client<'_>, out: &mut Vec<Cow<'z, Record>>) {
    for rtype in [RecordType::A, RecordType::AAAA] {
        if let Some(set) = node.get(rtype) {
            for_each(select(set, client), |record| {
                if !out.iter().any(|r| r.as_ref() == record.as_ref()) {
                    out.push(record);
                }
            });
        }
    }
}

/// The records of `set` for this client: a geo alternative, a pool's nodes (built for this
/// answer), or the zone file's own.
fn select<'z>(set: &'z RrSet, client: &mut Client<'_>) -> Cow<'z, [Record]> {
    match set.policy.as_deref() {
        None => Cow::Borrowed(&set.records),
        Some(RrsetPolicy::Geo(geo)) => match geo.select(client) {
            Some(selection) => Cow::Borrowed(&selection.records),
            None => Cow::Borrowed(&set.records),
        },
        Some(RrsetPolicy::Pool(pool)) => pool.answer(client),
    }
}

fn push_all<'z>(out: &mut Vec<Cow<'z, Record>>, records: Cow<'z, [Record]>, rename: Option<&Name>) {
    for_each(records, |record| match rename {
        None => out.push(record),
        Some(owner) => {
            let mut synthesized = record.into_owned();
            synthesized.name = owner.clone();
            out.push(Cow::Owned(synthesized));
        }
    });
}

/// Hands out each record, borrowed from the zone or owned, without copying either.
fn for_each<'z>(records: Cow<'z, [Record]>, mut f: impl FnMut(Cow<'z, Record>)) {
    match records {
        Cow::Borrowed(records) => records.iter().for_each(|r| f(Cow::Borrowed(r))),
        Cow::Owned(records) => records.into_iter().for_each(|r| f(Cow::Owned(r))),
    }
}
