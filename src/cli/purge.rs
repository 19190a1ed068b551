//! `edgenode purge --admin URL [--token T] (--url U | --prefix P | --tag T) [--soft]
//! [--cluster]`: purges on one node, or on it and every peer its `GET /admin/cluster` lists
//! (through each peer's admin address, with the same token), and reports each node's result.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{AdminClient, CliError};

/// What to purge.
#[derive(Clone, Debug)]
pub enum PurgeWhat {
    Url(String),
    Prefix(String),
    Tag(String),
}

/// One node's answer to `POST /admin/purge`.
#[derive(Deserialize)]
struct Purged {
    purged: usize,
    mode: String,
}

/// What this command reads of `GET /admin/cluster`.
#[derive(Deserialize)]
struct ClusterView {
    id: String,
    #[serde(default)]
    peers: Vec<PeerView>,
}

#[derive(Deserialize)]
struct PeerView {
    id: String,
    admin: Option<SocketAddr>,
    #[serde(default)]
    up: bool,
}

/// One node's result, as printed.
struct NodeResult {
    /// The node's id (or its admin address when the cluster was not asked).
    node: String,
    outcome: Result<String, String>,
}

/// Purges on the node (and with `cluster` on every peer it knows, up or down), prints one
/// line per node, and returns Ok(true) when every node purged.
pub async fn run(
    client: &AdminClient,
    what: &PurgeWhat,
    soft: bool,
    cluster: bool,
) -> Result<bool, CliError> {
    let query = query(what, soft);
    let mut targets: Vec<(String, Result<AdminClient, String>)> = Vec::new();
    if cluster {
        let view: ClusterView = client.get("/admin/cluster").await?;
        targets.push((view.id, Ok(client.clone())));
        for peer in view.peers {
            let node = match peer.up {
                true => peer.id,
                false => format!("{} (down)", peer.id),
            };
            let target = peer
                .admin
                .map(|admin| client.for_node(admin))
                .ok_or_else(|| "no admin address known".to_string());
            targets.push((node, target));
        }
    } else {
        targets.push((client.base().to_string(), Ok(client.clone())));
    }
    let purges = targets.into_iter().map(|(node, target)| {
        let query = query.clone();
        async move {
            let outcome = match target {
                Ok(target) => target
                    .post::<Purged>(&format!("/admin/purge?{query}"), None)
                    .await
                    .map(|p| format!("purged {} ({})", p.purged, p.mode))
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error),
            };
            NodeResult { node, outcome }
        }
    });
    let results = futures_util::future::join_all(purges).await;
    let width = results.iter().map(|r| r.node.len()).max().unwrap_or(0);
    for result in &results {
        match &result.outcome {
            Ok(text) => println!("{:width$}  {text}", result.node),
            Err(error) => println!("{:width$}  failed: {error}", result.node),
        }
    }
    Ok(results.iter().all(|r| r.outcome.is_ok()))
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
