//! The bodies of edgenode's fuzz targets, one module per parser of untrusted bytes.
//!
//! The libFuzzer binaries in `fuzz_targets/` are one line each around these functions, and the
//! main crate's test suite includes this file by path (`tests/it/fuzz_corpus.rs`) to replay
//! every seed in `fuzz/corpus/<target>/` through the very same functions under plain
//! `cargo test`, so a regression shows even where libFuzzer cannot run.
//!
//! Each function takes any bytes, must not panic, and asserts the invariants its parser
//! promises (a DNS response that parses back and fits its size limit, a byte range inside the
//! body, ...). Paths are relative to this file only, never to `crate::`, since two crates
//! compile it.

pub mod cache_headers;
pub mod dns_message;
pub mod geo_policy;
pub mod httpdns_query;
pub mod mmdb;
pub mod zone_file;

/// A target's body: any bytes in, a panic for a bug.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/corpus/<name>/` and `cargo fuzz run <name>` know it.
pub const TARGETS: &[(&str, Target)] = &[
    ("cache_headers", cache_headers::run),
    ("dns_message", dns_message::run),
    ("geo_policy", geo_policy::run),
    ("httpdns_query", httpdns_query::run),
    ("mmdb", mmdb::run),
    ("zone_file", zone_file::run),
];

/// A fresh private directory for one input to a target that goes through a file loader; it is
/// removed when dropped, so neither fuzzing nor the replay test leaves files behind.
fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory for the fuzz target")
}
