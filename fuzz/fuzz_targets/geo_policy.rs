#![no_main]
//! See `edgenode_fuzz::geo_policy`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgenode_fuzz::geo_policy::run(data));
