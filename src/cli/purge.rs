//! `edgenode purge --admin URL [--token T] (--url U | --prefix P | --tag T) [--soft]
//! [--cluster]`: purges on one node, or (`--cluster`) on it and every peer it knows: the node
//! fans the purge out itself, signed with the cluster's secret, so the admin token goes to
//! that one node only. Reports each node's result.

use serde::Deserialize;

use super::{AdminClient, CliError};

/// What to purge.
#[derive(Clone, Debug)]
pub enum PurgeWhat {
    Url(String),
    Prefix(String),
    Tag(String),
}

/// A node's answer to `POST /admin/purge`.
#[derive(Deserialize)]
struct Purged {
    purged: usize,
    mode: String,
    /// With `cluster=1`: each node's result, this one first.
    #[serde(default)]
    nodes: Vec<NodeResult>,
}

/// One node's result in a fanned-out purge.
#[derive(Deserialize)]
struct NodeResult {
    node: String,
    #[serde(default)]
    purged: Option<usize>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Purges on the node (and with `cluster` on every peer it knows, up or down), prints one
/// line per node, and returns Ok(true) when every node purged.
pub async fn run(
    client: &AdminClient,
    what: &PurgeWhat,
    soft: bool,
    cluster: bool,
) -> Result<bool, CliError> {
    let mut query = query(what, soft);
    if cluster {
        query.push_str("&cluster=1");
    }
    let purged: Purged = client.post(&format!("/admin/purge?{query}"), None).await?;
    if !cluster {
        println!(
            "{}  purged {} ({})",
            client.base(),
            purged.purged,
            purged.mode
        );
        return Ok(true);
    }
    let width = purged.nodes.iter().map(|r| r.node.len()).max().unwrap_or(0);
    let mut all = true;
    for result in &purged.nodes {
        match (&result.error, result.purged) {
            (None, Some(count)) => {
                let mode = result.mode.as_deref().unwrap_or("?");
                println!("{:width$}  purged {count} ({mode})", result.node);
            }
            (error, _) => {
                all = false;
                let error = error.as_deref().unwrap_or("no result");
                println!("{:width$}  failed: {error}", result.node);
            }
        }
    }
    Ok(all)
}

fn query(what: &PurgeWhat, soft: bool) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    match what {
        PurgeWhat::Url(url) => query.append_pair("url", url),
        PurgeWhat::Prefix(prefix) => query.append_pair("prefix", prefix),
        PurgeWhat::Tag(tag) => query.append_pair("tag", tag),
    };
    if soft {
        query.append_pair("soft", "1");
    }
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_escapes_its_value() {
        let url = PurgeWhat::Url("http://example.test/a?b=c&d".into());
        assert_eq!(
            query(&url, true),
            "url=http%3A%2F%2Fexample.test%2Fa%3Fb%3Dc%26d&soft=1"
        );
        assert_eq!(query(&PurgeWhat::Tag("red".into()), false), "tag=red");
    }
}
