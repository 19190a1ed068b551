//! Bytes as `example.test.geo.toml` beside the repository's `example.test.zone`, through the
//! real loader (`ZoneSet::load_dir`: TOML, selectors, pools, validation against the zone). A
//! policy that loads is then asked the sample queries, plain and with client subnets on three
//! continents, through the request handler.

use edgenode::dns::ZoneSet;

use super::dns_message::{exchange, handler_for, sample_queries};

const ZONE: &str = include_str!("../../zones/example.test.zone");

pub fn run(data: &[u8]) {
    let dir = super::scratch_dir();
    std::fs::write(dir.path().join("example.test.zone"), ZONE).expect("write zone");
    std::fs::write(dir.path().join("example.test.geo.toml"), data).expect("write policy");
    let Ok(zones) = ZoneSet::load_dir(dir.path()) else {
        return;
    };
    let handler = handler_for(zones);
    for query in sample_queries() {
        exchange(&handler, query);
    }
}
