#![no_main]
//! See `edgenode_fuzz::mmdb`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgenode_fuzz::mmdb::run(data));
