//! Reading a pool entry of `<zone>.geo.toml` (syntax and behaviour in [`crate::dns::steering`]).

use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};

use super::{RrsetProblem, RrsetSpec};
use crate::dns::client::Family;
use crate::dns::policy::RrsetPolicy;
use crate::dns::steering::PoolRrset;
use crate::dns::zone::{Found, Zone};

/// The pools a policy may name: the cluster this node belongs to (this node alone when the
/// cluster is off).
const POOLS: [&str; 1] = ["cluster"];
/// Nodes per answer unless the entry says `count`.
const DEFAULT_COUNT: u32 = 2;
/// A short TTL, so that resolvers follow health changes within seconds.
const DEFAULT_TTL: u32 = 20;

/// Builds the pool entry `spec` and attaches it to its RRset, creating the RRset when the zone
/// file has none (the answer is then NODATA while no node qualifies).
pub(super) fn attach_pool(
    zone: &mut Zone,
    origin: &Name,
    spec: &RrsetSpec,
) -> Result<(), Vec<RrsetProblem>> {
    let mut problems = Vec::new();
    let pool = spec.pool.as_deref().unwrap_or_default();
    if !POOLS.contains(&pool) {
        problems.push(RrsetProblem::UnknownPool {
            pool: pool.to_string(),
            known: POOLS.join(", "),
        });
    }
    let rtype = RecordType::from_str(&spec.rtype.to_ascii_uppercase()).ok();
    let family = match rtype {
        Some(RecordType::A) => Some(Family::V4),
        Some(RecordType::AAAA) => Some(Family::V6),
        _ => {
            problems.push(RrsetProblem::PoolType(spec.rtype.clone()));
            None
        }
    };
    let count = spec.count.unwrap_or(DEFAULT_COUNT);
    if count == 0 {
        problems.push(RrsetProblem::ZeroCount);
    }
    if spec.has_selectors() {
        problems.push(RrsetProblem::PoolSelectors);
    }
    let owner =
        Name::parse(&spec.name, Some(origin)).map_err(|e| RrsetProblem::Name(e.to_string()));
    let owner = owner.and_then(|owner| placeable(zone, owner));
    let (owner, family, rtype) = match (owner, family, rtype) {
        (Ok(owner), Some(family), Some(rtype)) if problems.is_empty() => (owner, family, rtype),
        (owner, ..) => {
            problems.extend(owner.err());
            return Err(problems);
        }
    };
    let ttl = spec.ttl.unwrap_or(DEFAULT_TTL);
    let set = zone.rrset_or_insert(&LowerName::new(&owner), rtype);
    let fallback = set
        .records(&owner)
        .into_iter()
        .map(|mut r| {
            r.ttl = r.ttl.min(ttl);
            r
        })
        .collect();
    set.policy = Some(Box::new(RrsetPolicy::Pool(PoolRrset {
        label: Arc::from(format!("pool:{pool}")),
        family,
        count: count as usize,
        ttl,
        owner,
        fallback,
    })));
    Ok(())
}

/// `owner` if a pool may answer there: inside the zone, not at or below a delegation, not
/// beside a CNAME.
fn placeable(zone: &Zone, owner: Name) -> Result<Name, RrsetProblem> {
    let lower = LowerName::new(&owner);
    if !zone.origin.zone_of(&lower) {
        return Err(RrsetProblem::OutsideZone {
            owner: owner.to_string(),
            zone: zone.origin.to_string(),
        });
    }
    match zone.find(&lower, false) {
        Found::Delegation(..) => Err(RrsetProblem::BelowDelegation(owner.to_string())),
        Found::Exact(node) if node.get(RecordType::CNAME).is_some() => {
            Err(RrsetProblem::BesideCname(owner.to_string()))
        }
        _ => Ok(owner),
    }
}
