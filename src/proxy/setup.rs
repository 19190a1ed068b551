//! Why the proxy could not be built from its configuration: each error names the key it
//! concerns (`proxy.hosts[1].hsts`, `proxy.origin`) and the value, as the operator wrote them.

/// A `[proxy]` setting the proxy cannot run with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// `proxy.origin_ca` could not be read.
    #[error("{0}")]
    OriginCa(String),
    /// An origin URL (`key` is `proxy.origin` or `proxy.hosts[i].origins`).
    #[error("{key}: {url:?}: {problem}")]
    Origin {
        key: String,
        url: String,
        problem: String,
    },
    /// An HSTS value `config::hsts_problem` finds fault with.
    #[error("{key}: {value:?} {problem}")]
    Hsts {
        key: String,
        value: String,
        problem: String,
    },
    /// An HSTS value that is not a valid field value.
    #[error("{key}: {value:?} is not a valid field value")]
    HstsField { key: String, value: String },
    /// `cluster.id` cannot be this node's `Via` entry.
    #[error("cluster.id: not a valid Via entry")]
    Via,
}
