//! `GeoError`: every message starts with where the problem is (a file, `file:line`, or a config
//! key path), so a list of them reads like compiler output.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoError {
    /// A database or CSV file does not exist (the most common deployment mistake, so it
    /// gets its own words rather than an OS error string).
    #[error("{}: file not found", path.display())]
    Missing { path: PathBuf },

    /// A database or CSV file exists but could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not a usable MaxMind DB (metadata, search tree or data section).
    #[error("{}: corrupt MaxMind DB: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: maxminddb::MaxMindDbError,
    },

    /// One field of one `[[geoip.overrides]]` entry.
    #[error("geoip.overrides[{index}].{field}: {message}")]
    Override {
        index: usize,
        field: &'static str,
        message: String,
    },

    /// One line of a CSV given to `geoip build`.
    #[error("{label}:{line}: {message}")]
    CsvRow {
        label: String,
        line: usize,
        message: String,
    },

    /// A CSV with no network rows: an empty database would serve no one and readers refuse it.
    #[error("{label}: no network rows (expected network,country,continent[,asn])")]
    CsvEmpty { label: String },

    /// The MaxMind DB writer refused the validated rows.
    #[error("{label}: cannot write MaxMind DB: {source}")]
    Write {
        label: String,
        #[source]
        source: mmdb_writer::Error,
    },
}
