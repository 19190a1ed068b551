//! The fuzz targets' seed corpora, replayed under plain `cargo test`: every file in
//! `fuzz/corpus/<target>/` goes through the same function its libFuzzer binary calls (the fuzz
//! crate's `src/lib.rs`, included here by path), so a regression in any parser of untrusted
//! bytes fails the test suite even where libFuzzer cannot run. The MaxMind DB files in
//! `../shared/geoip` (the broken ones and MaxMind's test databases) seed the `mmdb` target
//! too; they are read from there, never copied, and skipped when `../shared` is absent.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
mod fuzz_targets;

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// Every file of `dir` through `target`, naming the file whose input panicked.
fn replay_dir(name: &str, target: fn(&[u8]), dir: &Path) -> usize {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    for file in &files {
        let data = match std::fs::read(file) {
            Ok(data) => data,
            // A fuzzer running beside the test may have replaced it with a smaller input.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", file.display()),
        };
        let outcome = std::panic::catch_unwind(|| target(&data));
        if let Err(panic) = outcome {
            eprintln!("fuzz target {name} panicked on {}", file.display());
            std::panic::resume_unwind(panic);
        }
    }
    files.len()
}

fn replay(name: &str) -> usize {
    let (_, target) = fuzz_targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    let count = replay_dir(name, *target, &corpus_root().join(name));
    assert!(count > 0, "fuzz/corpus/{name} has no seeds");
    count
}

#[test]
fn every_fuzz_target_has_a_seed_corpus() {
    let mut dirs: Vec<String> = std::fs::read_dir(corpus_root())
        .expect("fuzz/corpus")
        .map(|entry| entry.expect("a directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let targets: Vec<&str> = fuzz_targets::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(dirs, targets);
}

#[test]
fn cache_headers_corpus() {
    replay("cache_headers");
}

#[test]
fn dns_message_corpus() {
    replay("dns_message");
}

#[test]
fn geo_policy_corpus() {
    replay("geo_policy");
}

#[test]
fn httpdns_query_corpus() {
    replay("httpdns_query");
}

#[test]
fn zone_file_corpus() {
    replay("zone_file");
}

#[test]
fn mmdb_corpus() {
    replay("mmdb");
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/geoip");
    if !shared.is_dir() {
        eprintln!(
            "skipping the shared MMDB seeds: {} is absent",
            shared.display()
        );
        return;
    }
    // real/ holds a full-size database: too slow for a replay of every seed, and not a seed.
    for dir in ["maxmind-bad", "maxmind-test"] {
        replay_dir("mmdb", fuzz_targets::mmdb::run, &shared.join(dir));
    }
}
