//! Criterion benchmark of the cache core (written with the cache module).
fn main() {}
