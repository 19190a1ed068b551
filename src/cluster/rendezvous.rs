//! Weighted rendezvous (highest random weight) hashing: each key belongs to the member with
//! the highest score for it, so adding or removing a member moves only that member's keys.
//!
//! Scores follow "Weighted distributed hash tables" (Schindelhauer, Schomaker 2005), the form
//! used by Tail-at-scale style load balancers: `-weight / ln(u)` with `u` in (0, 1) from a hash
//! of the member id and the key. The hash is XXH3 (stable across builds and platforms, so
//! nodes running different releases agree on owners).

use xxhash_rust::xxh3::Xxh3;

/// The score of `member_id` with `weight` for `key`; the highest score owns the key.
pub fn score(member_id: &str, weight: u32, key: &[u8]) -> f64 {
    let mut hasher = Xxh3::new();
    hasher.update(member_id.as_bytes());
    // A separator, so that ("ab", "c") and ("a", "bc") hash apart.
    hasher.update(&[0xff]);
    hasher.update(key);
    let hash = hasher.digest();
    // (hash + 1) / (2^64 + 1): strictly between 0 and 1, so ln(u) < 0.
    let unit = (hash as f64 + 1.0) / (u64::MAX as f64 + 2.0);
    -f64::from(weight) / unit.ln()
}

/// The index of the owner of `key` among `members` (id, weight); None when there are none.
/// Ties (practically impossible) go to the smaller id, so every node picks the same one.
pub fn owner<'a>(members: impl IntoIterator<Item = (&'a str, u32)>, key: &[u8]) -> Option<usize> {
    let mut best: Option<(usize, f64, &str)> = None;
    for (index, (id, weight)) in members.into_iter().enumerate() {
        let s = score(id, weight, key);
        let better = match best {
            None => true,
            Some((_, top, top_id)) => s > top || (s == top && id < top_id),
        };
        if better {
            best = Some((index, s, id));
        }
    }
    best.map(|(index, _, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(members: &[(&str, u32)], keys: usize) -> Vec<String> {
        (0..keys)
            .map(|k| {
                let key = format!("example.test/object/{k}");
                let index = owner(members.iter().copied(), key.as_bytes()).unwrap();
                members[index].0.to_string()
            })
            .collect()
    }

    #[test]
    fn keys_spread_evenly_over_equal_members() {
        let members = [("a", 100), ("b", 100), ("c", 100)];
        let owned = owners(&members, 30_000);
        for (id, _) in members {
            let share = owned.iter().filter(|o| *o == id).count();
            assert!((9_000..11_000).contains(&share), "{id}: {share}");
        }
    }

    #[test]
    fn weights_set_the_shares() {
        let members = [("a", 100), ("b", 300)];
        let owned = owners(&members, 40_000);
        let b = owned.iter().filter(|o| *o == "b").count();
        assert!((29_000..31_000).contains(&b), "b owns {b} of 40000");
    }

    #[test]
    fn removing_a_member_moves_only_its_keys() {
        let before = owners(&[("a", 100), ("b", 100), ("c", 100)], 10_000);
        let after = owners(&[("a", 100), ("c", 100)], 10_000);
        for (was, now) in before.iter().zip(&after) {
            if was != "b" {
                assert_eq!(was, now, "a key of a surviving member moved");
            }
        }
    }

    #[test]
    fn the_order_of_members_does_not_matter() {
        let key = b"example.test/x";
        let one = [("a", 100), ("b", 100), ("c", 100)];
        let two = [("c", 100), ("a", 100), ("b", 100)];
        let first = one[owner(one.iter().copied(), key).unwrap()].0;
        let second = two[owner(two.iter().copied(), key).unwrap()].0;
        assert_eq!(first, second);
        assert_eq!(owner(std::iter::empty(), key), None);
    }
}
