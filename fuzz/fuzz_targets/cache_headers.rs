#![no_main]
//! See `edgenode_fuzz::cache_headers`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgenode_fuzz::cache_headers::run(data));
