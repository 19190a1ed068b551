#![no_main]
//! See `edgenode_fuzz::httpdns_query`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgenode_fuzz::httpdns_query::run(data));
