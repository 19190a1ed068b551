//! The authoritative answer algorithm (RFC 1034 section 4.3.2, RFC 2308, RFC 4592, RFC 6672,
//! RFC 8482).

use std::borrow::Cow;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::ZoneSet;
use super::client::Client;
use super::policy::RrsetPolicy;
use super::zone::{Found, NameNode, RrSet, Zone, lower_wire, name_from_wire};

/// Longest CNAME chain followed inside the served zones before answering what we have.
const MAX_CNAME_CHAIN: usize = 8;

/// The sections of an authoritative response; records borrow from the zone data unless they had
/// to be built (stored records, wildcard expansion, DNAME synthesis).
#[derive(Debug)]
pub struct Answer<'z> {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Cow<'z, Record>>,
    pub authority: Vec<Cow<'z, Record>>,
    pub additional: Vec<Cow<'z, Record>>,
    /// When the query name was synthesised from a wildcard (RFC 4592): the label count of its
    /// closest encloser (the wildcard is `*.` and the query name's last that many labels).
    /// Response rate limiting counts such answers under the wildcard (`rrl::ResponseClass`).
    pub wildcard: Option<usize>,
}

impl Answer<'_> {
    /// An empty, non-authoritative answer with `rcode`: REFUSED for names outside our zones,
    /// or the handler's FORMERR, SERVFAIL and the like.
    pub fn error(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            wildcard: None,
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
    let mut answer = Answer::error(ResponseCode::Refused);
    let mut owner = qname.clone();
    for hop in 0..MAX_CNAME_CHAIN {
        let name = LowerName::new(&owner);
        let Some(zone) = zones.find(&name, qtype == RecordType::DS) else {
            return answer; // REFUSED for the question, or a chain that leaves our zones
        };
        if hop == 0 {
            answer.rcode = ResponseCode::NoError;
            answer.authoritative = true;
        }
        match step(zone, &owner, qtype, hop == 0, client, &mut answer) {
            Some(next) => owner = next,
            None => return answer,
        }
    }
    answer
}

/// Answers `owner` from `zone` into `answer`; returns the name a CNAME or DNAME leads on to,
/// None when the answer is complete.
fn step<'z>(
    zone: &'z Zone,
    owner: &Name,
    qtype: RecordType,
    first: bool,
    client: &mut Client<'_>,
    answer: &mut Answer<'z>,
) -> Option<Name> {
    let wire = lower_wire(owner);
    let node = match zone.find_wire(&wire, qtype == RecordType::DS) {
        Found::Exact(node) => node,
        Found::Wildcard(node, encloser) => {
            if first {
                answer.wildcard = Some(encloser);
            }
            node
        }
        Found::Delegation(cut, depth) => {
            if first {
                answer.authoritative = false;
            }
            referral(zone, cut, &owner.trim_to(depth), client, answer);
            return None;
        }
        Found::Dname(node, depth) => {
            let dname_owner = owner.trim_to(depth);
            // A target under the same DNAME would be rewritten again and again: the client
            // gets the one step (as from NSD) and asks on.
            return synthesize(node, owner, depth, client, answer)
                .filter(|target| qtype != RecordType::CNAME && !dname_owner.zone_of(target));
        }
        Found::NxDomain => {
            answer.rcode = ResponseCode::NXDomain;
            answer.authority.push(Cow::Borrowed(zone.negative_soa()));
            return None;
        }
    };
    answer_at(zone, node, owner, &wire, qtype, client, answer)
}

/// Answers from the node of `owner`: its RRset of `qtype`, else its CNAME (returning the
/// target to follow), else NODATA.
fn answer_at<'z>(
    zone: &'z Zone,
    node: &'z NameNode,
    owner: &Name,
    wire: &[u8],
    qtype: RecordType,
    client: &mut Client<'_>,
    answer: &mut Answer<'z>,
) -> Option<Name> {
    let rrset = match qtype {
        // RFC 8482: answer ANY with one RRset instead of everything.
        RecordType::ANY => node.rrsets.first(),
        _ => node.get(qtype),
    };
    if let Some(cname) = node.get(RecordType::CNAME).filter(|_| rrset.is_none()) {
        let records = select(cname, owner, client);
        let target = records.first().and_then(|r| match &r.data {
            RData::CNAME(target) => Some(target.0.clone()),
            _ => None,
        });
        answer.answers.extend(records.into_iter().map(Cow::Owned));
        // A loop ends here too: the client sees the chain and gives up.
        return target.filter(|target| lower_wire(target) != wire);
    }
    // A pool entry with no node to offer and no zone file records is empty: NODATA.
    let records = rrset
        .map(|set| select(set, owner, client))
        .filter(|r| !r.is_empty());
    match records {
        Some(records) => {
            additional_addresses(zone, &records, client, &mut answer.additional);
            answer.answers.extend(records.into_iter().map(Cow::Owned));
        }
        None => answer.authority.push(Cow::Borrowed(zone.negative_soa())),
    }
    None
}

/// RFC 6672 section 3.3: the DNAME RRset, then a CNAME from `qname` to its rewrite with the
/// DNAME's TTL. Returns the new name to go on with; None (and YXDOMAIN) when the rewrite is
/// longer than a name may be.
fn synthesize(
    node: &NameNode,
    qname: &Name,
    depth: usize,
    client: &mut Client<'_>,
    answer: &mut Answer<'_>,
) -> Option<Name> {
    let set = node.get(RecordType::DNAME)?;
    let dname_owner = qname.trim_to(depth);
    let (ttl, target) = set.data.iter().next()?;
    let target = name_from_wire(target)?;
    answer.answers.extend(
        select(set, &dname_owner, client)
            .into_iter()
            .map(Cow::Owned),
    );
    let labels: Vec<&[u8]> = qname.iter().collect();
    let prefix = &labels[..labels.len() - depth];
    let rewritten =
        Name::from_labels(prefix.iter().copied()).and_then(|prefix| prefix.append_domain(&target));
    match rewritten {
        Ok(rewritten) => {
            let cname = RData::CNAME(CNAME(rewritten.clone()));
            answer
                .answers
                .push(Cow::Owned(Record::from_rdata(qname.clone(), ttl, cname)));
            Some(rewritten)
        }
        Err(_) => {
            answer.rcode = ResponseCode::YXDomain;
            None
        }
    }
}

/// A referral to the child zone: its NS RRset in authority and the addresses we hold for the
/// name servers (glue) in additional.
fn referral(
    zone: &Zone,
    cut: &NameNode,
    owner: &Name,
    client: &mut Client<'_>,
    answer: &mut Answer<'_>,
) {
    let Some(ns) = cut.get(RecordType::NS) else {
        return;
    };
    let records = ns.records(owner);
    for record in &records {
        if let RData::NS(target) = &record.data
            && let Some(node) = zone.node_wire(&lower_wire(&target.0))
        {
            push_addresses(node, &target.0, client, &mut answer.additional);
        }
    }
    answer.authority.extend(records.into_iter().map(Cow::Owned));
}

/// Additional section processing, minimal (like NSD's `minimal-responses: yes`, Knot, and BIND's
/// `minimal-responses`): addresses only for the name servers of an NS answer, where a resolver
/// needs them, and only from the answer's own zone, as NSD does. MX and SRV targets are left
/// for the resolver to ask, which keeps UDP answers small.
fn additional_addresses(
    zone: &Zone,
    records: &[Record],
    client: &mut Client<'_>,
    out: &mut Vec<Cow<'_, Record>>,
) {
    for record in records {
        let target = match &record.data {
            RData::NS(ns) => &ns.0,
            _ => continue,
        };
        if let Found::Exact(node) = zone.find_wire(&lower_wire(target), false) {
            push_addresses(node, target, client, out);
        }
    }
}

fn push_addresses(
    node: &NameNode,
    owner: &Name,
    client: &mut Client<'_>,
    out: &mut Vec<Cow<'_, Record>>,
) {
    for rtype in [RecordType::A, RecordType::AAAA] {
        if let Some(set) = node.get(rtype) {
            for record in select(set, owner, client) {
                if !out.iter().any(|r| r.as_ref() == &record) {
                    out.push(Cow::Owned(record));
                }
            }
        }
    }
}

/// The records of `set` for this client, owned by `owner` (the name asked for, so wildcard
/// answers carry it): a geo alternative, a pool's nodes, or the zone file's own.
fn select(set: &RrSet, owner: &Name, client: &mut Client<'_>) -> Vec<Record> {
    let chosen: Cow<'_, [Record]> = match set.policy.as_deref() {
        None => return set.records(owner),
        Some(RrsetPolicy::Geo(geo)) => match geo.select(client) {
            Some(selection) => Cow::Borrowed(&selection.records),
            None => return set.records(owner),
        },
        Some(RrsetPolicy::Pool(pool)) => pool.answer(client),
    };
    chosen
        .iter()
        .map(|record| {
            let mut record = record.clone();
            record.name = owner.clone();
            record
        })
        .collect()
}
