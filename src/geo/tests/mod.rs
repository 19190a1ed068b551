//! Unit tests for `geo`: fixtures are built in the test (CSV -> MMDB, or mmdb-writer directly);
//! `shared_data` runs against ../shared/geoip when it is present.

mod build_csv;
mod codes;
mod lookup;
mod shared_data;

use std::path::{Path, PathBuf};

use super::{CidrOverride, Geo};

/// A database file in a temporary directory; the directory lives as long as the value.
pub(super) struct TempDb {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub(super) fn temp_db(bytes: &[u8]) -> TempDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("test.mmdb");
    std::fs::write(&path, bytes).expect("write fixture");
    TempDb { _dir: dir, path }
}

pub(super) fn csv_db(csv: &str) -> TempDb {
    let bytes = super::build_mmdb_from_csv_str("fixture.csv", csv)
        .unwrap_or_else(|errors| panic!("fixture CSV rejected: {errors:#?}"));
    temp_db(&bytes)
}

pub(super) fn load(paths: &[&Path], overrides: &[CidrOverride]) -> Geo {
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    Geo::load(&paths, overrides).unwrap_or_else(|errors| panic!("load failed: {errors:#?}"))
}

pub(super) fn messages<E: std::fmt::Display>(errors: &[E]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}
