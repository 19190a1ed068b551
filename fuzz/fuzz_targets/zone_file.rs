#![no_main]
//! See `edgenode_fuzz::zone_file`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgenode_fuzz::zone_file::run(data));
