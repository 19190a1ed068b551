//! Criterion benchmark of `Geo::lookup`, the per-query GeoIP decision of the geo policies: on a
//! small database built by `edgenode geoip build` (always) and on the real full-size country
//! database in `../shared/geoip/real` (when it is there; skipped with a message otherwise),
//! for IPv4, IPv6 and IPv4-mapped IPv6 addresses spread over the whole address space.
//!
//! `cargo bench --bench geo` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgenode::geo::{Geo, build_mmdb_from_csv_str};

/// Addresses looked up in turn: a fixed pseudo-random spread (xorshift), so runs compare.
fn addresses(count: usize) -> Vec<(&'static str, Vec<IpAddr>)> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let v4: Vec<IpAddr> = (0..count)
        .map(|_| IpAddr::V4(Ipv4Addr::from(next() as u32)))
        .collect();
    // Global unicast IPv6 (2000::/3), where the registries' data is.
    let v6: Vec<IpAddr> = (0..count)
        .map(|_| {
            let high = (u128::from(next()) << 64 | u128::from(next())) >> 3;
            IpAddr::V6(Ipv6Addr::from(high | 1u128 << 125))
        })
        .collect();
    let mapped: Vec<IpAddr> = (0..count)
        .map(|_| IpAddr::V6(Ipv4Addr::from(next() as u32).to_ipv6_mapped()))
        .collect();
    vec![("ipv4", v4), ("ipv6", v6), ("ipv4_mapped", mapped)]
}

/// A database of 256 /16 networks across the continents, built as `geoip build` builds one.
fn small_database(dir: &Path) -> PathBuf {
    let continents = [("CN", "AS"), ("US", "NA"), ("DE", "EU"), ("BR", "SA")];
    let mut csv = String::from("network,country,continent,asn\n");
    for i in 0..256u32 {
        let (country, continent) = continents[i as usize % continents.len()];
        csv.push_str(&format!(
            "{i}.{}.0.0/16,{country},{continent},{}\n",
            i % 7,
            64_512 + i
        ));
    }
    let bytes = build_mmdb_from_csv_str("bench.csv", &csv).expect("the bench CSV builds");
    let path = dir.join("small.mmdb");
    std::fs::write(&path, bytes).expect("write the bench database");
    path
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut databases = vec![("small", small_database(dir.path()))];
    let real = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/geoip/real/geo-whois-asn-country.mmdb");
    if real.exists() {
        databases.push(("real_country", real));
    } else {
        println!("skipping the real database: {} is absent", real.display());
    }
    let sets = addresses(4096);
    let mut group = c.benchmark_group("geo_lookup");
    group.throughput(Throughput::Elements(1));
    for (db_name, path) in &databases {
        let geo = Geo::load(std::slice::from_ref(path), &[]).expect("the database loads");
        for (family, ips) in &sets {
            let mut i = 0;
            group.bench_function(format!("{db_name}/{family}"), |b| {
                b.iter(|| {
                    i = (i + 1) % ips.len();
                    black_box(geo.lookup(black_box(ips[i])))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
