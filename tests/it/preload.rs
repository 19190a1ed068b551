//! Push preload and purge fan-out: `POST /admin/preload` jobs on one node and in a cluster
//! (each URL warmed on its owner, or on every node), and the `edgenode preload` and
//! `edgenode purge --cluster` commands run as a user would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::origin::{Origin, cache_status};
use crate::support::{Node, http_request, repo_root, write_file};

const TOKEN: &str = "preload-test-secret";

/// An admin request: (status, JSON body or Null).
async fn admin(
    node: &Node,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(content_type) = content_type {
        headers.push(("content-type", content_type));
    }
    let admin = node.admin.unwrap();
    let (status, _, body) = http_request(admin, method, path, &headers, body.into()).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Starts a job and waits until it is no longer running; returns the job.
async fn preload(node: &Node, path: &str, content_type: Option<&str>, body: &str) -> Value {
    let (status, started) = admin(node, "POST", path, content_type, body).await;
    assert_eq!(status, 202, "{started}");
    finished(node, started["id"].as_u64().unwrap()).await
}

/// Waits until job `id` is no longer running; returns it.
async fn finished(node: &Node, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, job) = admin(node, "GET", &format!("/admin/preload/{id}"), None, "").await;
        assert_eq!(status, 200, "{job}");
        if job["state"] != "running" {
            assert_eq!(job["state"], "finished", "{job}");
            assert_eq!(job["done"], job["total"], "{job}");
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} still running: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The results of a job for `url`, in order.
fn results_for<'a>(job: &'a Value, url: &str) -> Vec<&'a Value> {
    let results = job["results"].as_array().unwrap();
    results.iter().filter(|r| r["url"] == url).collect()
}

/// A GET to a node's proxy for `host` + `path`; with `sibling`, marked as a sibling request
/// (so a node answers from its own cache or the origin, never from another node).
async fn get(addr: SocketAddr, host: &str, path: &str, sibling: bool) -> (u16, String) {
    let mut headers = vec![("host", host)];
    // Signed as a node of the cluster would sign it.
    let target = edgenode::cluster::auth::Target {
        method: &hyper::Method::GET,
        host,
        path,
    };
    let keys = edgenode::cluster::auth::Keys::new(crate::support::CLUSTER_SECRET.as_bytes());
    let (field, _) = keys.sign_request("test", target, std::time::SystemTime::now());
    if sibling {
        headers.push((
            edgenode::cluster::auth::AUTH_HEADER,
            field.to_str().unwrap(),
        ));
    }
    let (status, headers, _) = http_request(addr, "GET", path, &headers, Vec::new()).await;
    (status, cache_status(&headers))
}

/// A config file for one node: the repository's zones, `origin`, the test token, `extra`.
fn config(dir: &Path, name: &str, origin: &Origin, extra: &str) -> PathBuf {
    let text = format!(
        "[dns]\nzones = \"{}\"\n[proxy]\norigin = \"{}\"\n[admin]\ntoken = \"{TOKEN}\"\n{extra}",
        repo_root().join("zones").display(),
        origin.url()
    );
    write_file(dir, name, &text)
}

/// Runs `edgenode ARGS...` (stdin from `input`): (exit code, stdout, stderr).
async fn edgenode(args: &[&str], token: Option<&str>, input: &str) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgenode"));
    command
        .args(args)
        .env_remove("EDGENODE_ADMIN_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        command.env("EDGENODE_ADMIN_TOKEN", token);
    }
    let mut child = command.spawn().expect("run edgenode");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("edgenode finished")
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[tokio::test]
async fn a_job_reports_each_url_and_leaves_the_stored_ones_as_hits() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::with_config(&config(dir.path(), "node.toml", &origin, ""));

    let urls = json!([
        "http://example.test/cached",
        "http://Example.TEST:8080/tagged",
        "http://example.test/etag?v=1",
        "http://example.test/missing",
        "http://example.test/broken",
        "http://example.test/nostore",
        "not a url",
    ]);
    let (status, started) = admin(
        &node,
        "POST",
        "/admin/preload",
        Some("application/json"),
        &urls.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(
        (started["urls"].as_u64(), started["total"].as_u64()),
        (Some(7), Some(7))
    );
    let job = finished(&node, started["id"].as_u64().unwrap()).await;
    assert_eq!(
        (&job["stored"], &job["fresh"], &job["failed"]),
        (&json!(3), &json!(0), &json!(4)),
        "{job}"
    );
    let expect = [
        ("http://example.test/cached", "stored", ""),
        ("http://Example.TEST:8080/tagged", "stored", ""),
        ("http://example.test/etag?v=1", "stored", ""),
        (
            "http://example.test/missing",
            "failed",
            "origin answered 404",
        ),
        (
            "http://example.test/broken",
            "failed",
            "origin answered 500",
        ),
        (
            "http://example.test/nostore",
            "failed",
            "not stored: no-store",
        ),
        ("not a url", "failed", "bad URL"),
    ];
    for (url, outcome, reason) in expect {
        let results = results_for(&job, url);
        assert_eq!(results.len(), 1, "{url}: {job}");
        assert_eq!(results[0]["result"], outcome, "{url}: {job}");
        let given = results[0]["reason"].as_str().unwrap_or("");
        assert!(given.starts_with(reason), "{url}: {given:?}");
        if url != "not a url" {
            assert_eq!(results[0]["node"], "edgenode", "{url}: {job}");
        }
    }
    // The stored URLs are hits now (the Host picks the key, port and case aside); nothing more
    // reaches the origin.
    let proxy = node.http.unwrap();
    for path in ["/cached", "/tagged", "/etag?v=1"] {
        let (status, cache) = get(proxy, "example.test", path, false).await;
        assert_eq!((status, cache.as_str()), (200, "edgenode; hit"), "{path}");
    }
    for path in ["/cached", "/tagged", "/etag"] {
        assert_eq!(origin.count(path), 1, "{path}");
    }

    // Again, as text: already fresh, nothing fetched.
    let list = "# the same again\nhttp://example.test/cached\n\n  http://example.test/tagged\n";
    let job = preload(&node, "/admin/preload", Some("text/plain"), list).await;
    assert_eq!(
        (&job["total"], &job["fresh"]),
        (&json!(2), &json!(2)),
        "{job}"
    );
    assert_eq!((origin.count("/cached"), origin.count("/tagged")), (1, 1));

    // A stored copy gone stale is not "fresh": the warm-up revalidates it (a 304 here).
    let list = "http://example.test/validated";
    let job = preload(&node, "/admin/preload", None, list).await;
    assert_eq!(job["stored"], 1, "{job}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let job = preload(&node, "/admin/preload", None, list).await;
    assert_eq!(job["stored"], 1, "{job}");
    assert_eq!(origin.count("/validated"), 2);
    let (_, cache) = get(proxy, "example.test", "/validated", false).await;
    assert_eq!(cache, "edgenode; hit");

    // The job list, and the errors.
    let (status, jobs) = admin(&node, "GET", "/admin/preload", None, "").await;
    assert_eq!(
        (status, jobs.as_array().map(Vec::len)),
        (200, Some(4)),
        "{jobs}"
    );
    let (status, _) = admin(&node, "GET", "/admin/preload/99", None, "").await;
    assert_eq!(status, 404);
    let (status, body) = admin(&node, "POST", "/admin/preload", None, "\n# nothing\n").await;
    assert_eq!(status, 400, "{body}");
    let json_type = Some("application/json");
    let (status, body) = admin(&node, "POST", "/admin/preload", json_type, "{\"url\": 1}").await;
    assert_eq!(status, 400, "{body}");
    let (status, ..) = http_request(
        node.admin.unwrap(),
        "POST",
        "/admin/preload",
        &[],
        b"http://example.test/cached".to_vec(),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_preload_command_shows_a_summary_and_fails_when_a_url_failed() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::with_config(&config(dir.path(), "node.toml", &origin, ""));
    let admin = format!("http://{}", node.admin.unwrap());
    let list = write_file(
        dir.path(),
        "urls.txt",
        "# warm before the launch\nhttp://example.test/cached\n\nhttp://example.test/missing\n",
    );
    let list = list.to_str().unwrap();

    let (code, stdout, stderr) =
        edgenode(&["preload", "--admin", &admin, list], Some(TOKEN), "").await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("2 URLs, 2 results: 1 stored, 0 fresh, 1 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "failed http://example.test/missing on edgenode: origin answered 404 Not Found"
        ),
        "{stdout}"
    );
    // stderr is not a terminal here: plain progress lines instead of a bar.
    assert!(stderr.contains("preload 1: 2/2"), "{stderr}");

    // From stdin, with --token: the stored URL is fresh now, and all is well.
    let args = ["preload", "--admin", &admin, "--token", TOKEN, "-"];
    let (code, stdout, stderr) = edgenode(&args, None, "http://example.test/cached\n").await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("0 stored, 1 fresh, 0 failed"), "{stdout}");
    assert_eq!(origin.count("/cached"), 1);

    // Without the token the node refuses, and the command says so.
    let (code, _, stderr) = edgenode(&["preload", "--admin", &admin, list], None, "").await;
    assert_eq!(code, 1);
    assert!(stderr.contains("401"), "{stderr}");
}

/// Nodes `n0`..`n{count-1}`, each listing the others as peers (fast heartbeats), all up.
/// Ports are reserved by binding port 0 and released just before start; if a node cannot
/// bind one after all, the whole cluster is started again on new ports, once.
async fn cluster(dir: &Path, origin: &Origin, count: usize) -> Vec<Node> {
    for attempt in 0..2 {
        let ports = free_ports(2 * count);
        let (proxies, admins) = ports.split_at(count);
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (0..count)
                .map(|i| {
                    let mut extra = format!(
                        "[cluster]\nid = \"n{i}\"\nsecret = \"{}\"\nheartbeat_ms = 100\nheartbeat_timeout_ms = 100\n",
                        crate::support::CLUSTER_SECRET
                    );
                    for j in (0..count).filter(|&j| j != i) {
                        extra += &format!(
                            "[[cluster.peers]]\nid = \"n{j}\"\nproxy = \"127.0.0.1:{}\"\nadmin = \"127.0.0.1:{}\"\n",
                            proxies[j], admins[j]
                        );
                    }
                    let path = config(dir, &format!("n{i}.toml"), origin, &extra);
                    let (proxy, admin) = (
                        format!("127.0.0.1:{}", proxies[i]),
                        format!("127.0.0.1:{}", admins[i]),
                    );
                    Node::start(&[
                        "--config",
                        path.to_str().unwrap(),
                        "--dns-listen",
                        "127.0.0.1:0",
                        "--http-listen",
                        &proxy,
                        "--admin-listen",
                        &admin,
                    ])
                })
                .collect::<Vec<Node>>()
        }));
        match started {
            Ok(nodes) => {
                wait_until_all_up(&nodes).await;
                return nodes;
            }
            Err(_) if attempt == 0 => eprintln!("a node could not start; new ports, once more"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    unreachable!()
}

fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

async fn wait_until_all_up(nodes: &[Node]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for node in nodes {
        loop {
            let (_, status) = admin(node, "GET", "/admin/cluster", None, "").await;
            let peers = status["peers"].as_array().cloned().unwrap_or_default();
            if peers.len() == nodes.len() - 1 && peers.iter().all(|p| p["up"] == true) {
                break;
            }
            assert!(Instant::now() < deadline, "peers not up: {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The node with cluster id `id`.
fn by_id<'a>(nodes: &'a [Node], id: &Value) -> &'a Node {
    let index: usize = id
        .as_str()
        .unwrap()
        .trim_start_matches('n')
        .parse()
        .unwrap();
    &nodes[index]
}

#[tokio::test]
async fn in_a_cluster_each_url_is_stored_on_its_owner_or_on_every_node() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), &origin, 3).await;

    // Eight hosts, so eight keys spread over the three owners; one origin fetch each.
    let urls: Vec<String> = (0..8)
        .map(|i| format!("http://site{i}.example.test/cached"))
        .collect();
    let job = preload(&nodes[0], "/admin/preload", None, &urls.join("\n")).await;
    assert_eq!(
        (&job["total"], &job["stored"]),
        (&json!(8), &json!(8)),
        "{job}"
    );
    assert_eq!(origin.count("/cached"), 8);
    let mut owners = std::collections::HashSet::new();
    for url in &urls {
        let result = results_for(&job, url)[0];
        let owner = by_id(&nodes, &result["node"]);
        owners.insert(result["node"].as_str().unwrap().to_string());
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches("/cached");
        // Stored on the owner: a hit there, even for a request that may not go to a sibling.
        let (status, cache) = get(owner.http.unwrap(), host, "/cached", true).await;
        assert_eq!((status, cache.as_str()), (200, "edgenode; hit"), "{url}");
    }
    assert!(owners.len() >= 2, "all on {owners:?}");
    assert_eq!(origin.count("/cached"), 8);
    // ... and only there: another node asked the same way has to fetch it.
    let first = results_for(&job, &urls[0])[0]["node"].clone();
    let other = nodes
        .iter()
        .find(|n| !std::ptr::eq(*n, by_id(&nodes, &first)));
    let (_, cache) = get(
        other.unwrap().http.unwrap(),
        "site0.example.test",
        "/cached",
        true,
    )
    .await;
    assert_eq!(cache, "edgenode; fwd=miss; stored");
    assert_eq!(origin.count("/cached"), 9);

    // On every node: one result per node, and still one origin fetch (the others fill from
    // the owner). The owner may report "fresh": a sibling's warm-up can fill it first.
    let body = json!({"urls": ["http://everywhere.example.test/tagged"], "all": true});
    let job = preload(&nodes[1], "/admin/preload", None, &body.to_string()).await;
    assert_eq!(
        (&job["total"], &job["failed"]),
        (&json!(3), &json!(0)),
        "{job}"
    );
    assert!(job["stored"].as_u64() >= Some(2), "{job}");
    let mut warmed: Vec<&str> = job["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_str().unwrap())
        .collect();
    warmed.sort();
    assert_eq!(warmed, ["n0", "n1", "n2"]);
    assert_eq!(origin.count("/tagged"), 1);
    for node in &nodes {
        let (_, cache) = get(
            node.http.unwrap(),
            "everywhere.example.test",
            "/tagged",
            true,
        )
        .await;
        assert_eq!(cache, "edgenode; hit");
    }
    // ?all=1 does the same for a text list; everything is fresh by now.
    let list = "http://everywhere.example.test/tagged\n";
    let job = preload(&nodes[2], "/admin/preload?all=1", None, list).await;
    assert_eq!(
        (&job["total"], &job["fresh"]),
        (&json!(3), &json!(3)),
        "{job}"
    );
}

#[tokio::test]
async fn purge_with_cluster_purges_on_every_node_and_reports_each() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), &origin, 3).await;
    for node in &nodes {
        get(node.http.unwrap(), "example.test", "/cached", true).await;
        let (_, cache) = get(node.http.unwrap(), "example.test", "/cached", true).await;
        assert_eq!(cache, "edgenode; hit");
    }
    assert_eq!(origin.count("/cached"), 3);

    let admin = format!("http://{}", nodes[0].admin.unwrap());
    let args = [
        "purge",
        "--admin",
        &admin,
        "--url",
        "http://example.test/cached",
        "--cluster",
    ];
    let (code, stdout, stderr) = edgenode(&args, Some(TOKEN), "").await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for id in ["n0", "n1", "n2"] {
        let line = stdout.lines().find(|l| l.starts_with(id));
        assert_eq!(
            line.map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")),
            Some("purged 1 (hard)".to_string()),
            "{stdout}"
        );
    }
    for node in &nodes {
        let (_, cache) = get(node.http.unwrap(), "example.test", "/cached", true).await;
        assert_eq!(cache, "edgenode; fwd=miss; stored");
    }

    // Without --cluster only the node asked purges.
    let args = [
        "purge",
        "--admin",
        &admin,
        "--prefix",
        "example.test/",
        "--soft",
    ];
    let (code, stdout, _) = edgenode(&args, Some(TOKEN), "").await;
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("purged 1 (soft)"), "{stdout}");

    // A node that is gone: the others still purge, its failure is reported, exit 1.
    drop(nodes.pop());
    let args = ["purge", "--admin", &admin, "--tag", "red", "--cluster"];
    let (code, stdout, _) = edgenode(&args, Some(TOKEN), "").await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("n1") && l.contains("purged 0")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("n2") && l.contains("failed:")),
        "{stdout}"
    );
}
