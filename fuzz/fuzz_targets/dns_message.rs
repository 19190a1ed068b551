#![no_main]
//! See `edgenode_fuzz::dns_message`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgenode_fuzz::dns_message::run(data));
