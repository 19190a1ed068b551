//! Where DNS meets the cluster: the cluster is the pool DNS steering answers with
//! ([`NodePool`], the one door between the two; `dns` does not know the cluster).

use std::net::IpAddr;

use crate::cluster::Cluster;
use crate::dns::steering::{Family, NodePool};
use crate::geo::Code;

impl NodePool for Cluster {
    fn epoch(&self) -> u64 {
        Cluster::epoch(self)
    }

    fn nearest(
        &self,
        country: Option<Code>,
        continent: Option<Code>,
        key: &[u8],
        family: Family,
        count: usize,
    ) -> Vec<IpAddr> {
        // Every healthy node ranked (a handful), so that nodes without an address of this
        // family do not take the places of those with one.
        Cluster::nearest(self, country, continent, key, usize::MAX)
            .iter()
            .filter(|m| m.addresses.iter().any(|a| family.contains(a)))
            .take(count)
            .flat_map(|m| m.addresses.iter().filter(|a| family.contains(a)).copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::config::ClusterConfig;

    #[test]
    fn the_cluster_answers_with_its_healthy_nodes_of_the_family() {
        let alone = Cluster::new(&ClusterConfig::default());
        assert!(NodePool::nearest(&*alone, None, None, b"k", Family::V4, 2).is_empty());

        let config = ClusterConfig {
            addresses: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            ..ClusterConfig::default()
        };
        let me = Cluster::new(&config);
        let v4 = NodePool::nearest(&*me, None, None, b"k", Family::V4, 2);
        let v6 = NodePool::nearest(&*me, None, None, b"k", Family::V6, 2);
        assert_eq!(v4, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(v6, ["2001:db8::1".parse::<IpAddr>().unwrap()]);
    }
}
