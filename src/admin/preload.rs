//! Push preload: `POST /admin/preload` takes a list of URLs (a JSON array, a JSON object
//! `{"urls": [...], "all": true}`, or text with one URL per line) and warms each on the node
//! that owns it, or with `?all=1` on every node, a bounded number at a time over all jobs;
//! `GET /admin/preload/{id}` shows how far a job got and what came of each URL.
//!
//! A warm-up is a GET through a node's proxy (`Proxy::warm`, `Proxy::warm_on`): on another
//! node it goes to that node's proxy listener, so peers need no admin token for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{QueryParams, json};
use crate::cluster::{Cluster, Member};
use crate::http_server::Body;
use crate::proxy::{Proxy, Warmed, cache_key};
use crate::tasks::Kind;

/// Jobs kept for `GET /admin/preload/{id}`; older ones are forgotten (one still running
/// keeps running).
const KEPT_JOBS: usize = 100;
/// URLs in one job at most, and the largest request body: with `KEPT_JOBS` they bound the
/// memory the kept results take.
const MAX_URLS: usize = 10_000;
const MAX_BODY: usize = 4 << 20;

/// What came of one URL on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// Not warmed yet.
    Pending,
    /// Fetched (or revalidated) and stored.
    Stored,
    /// Already fresh in the cache: nothing was fetched.
    Fresh,
    Failed,
}

/// One URL's result on one node, as `GET /admin/preload/{id}` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UrlResult {
    pub url: String,
    /// The node that warmed it (or was to); none for a URL that could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub result: Outcome,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum JobState {
    Running,
    Finished,
    /// The node shut down before the job finished.
    Cancelled,
}

/// A job as `GET /admin/preload/{id}` shows it (and `edgenode preload` reads it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobView {
    pub id: u64,
    pub state: JobState,
    /// Warmed on every node rather than on each URL's owner.
    pub all: bool,
    /// URLs given.
    pub urls: usize,
    /// Results to come: one per URL, or per URL and node with `all` (one for a bad URL).
    pub total: usize,
    pub done: usize,
    pub stored: usize,
    pub fresh: usize,
    pub failed: usize,
    /// In the order given; left out of the job list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<UrlResult>,
}

/// The answer to `POST /admin/preload`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Started {
    pub id: u64,
    pub urls: usize,
    pub total: usize,
}

/// Runs preload jobs and keeps the latest ones; shared by every admin connection.
pub struct Preloader {
    proxy: Arc<Proxy>,
    cluster: Arc<Cluster>,
    /// Warm-ups in flight over all jobs (`proxy.preload_concurrency`).
    permits: Arc<Semaphore>,
    /// The latest jobs, oldest first, at most `KEPT_JOBS`.
    jobs: Mutex<VecDeque<Arc<PreloadJob>>>,
    next_id: AtomicU64,
    /// The node's shutdown: running jobs stop (cancelled) rather than hold it up.
    shutdown: CancellationToken,
}

/// One preload job: its results, filled in as warm-ups end.
struct PreloadJob {
    id: u64,
    all: bool,
    urls: usize,
    progress: Mutex<Progress>,
}

struct Progress {
    state: JobState,
    results: Vec<UrlResult>,
    done: usize,
}

/// Why a preload job was not started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `tasks.preload_jobs` jobs are running already (the task bound's own words).
    #[error("{0}")]
    Busy(String),
}

/// Why a URL of a job cannot be warmed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadUrl {
    #[error("bad URL: {0}")]
    Unparsable(String),
    #[error("bad URL: {0}: only http:// and https://")]
    Scheme(String),
    #[error("bad URL: not absolute (http://host/path)")]
    NotAbsolute,
    #[error("bad URL: no host")]
    NoHost,
}

/// One warm-up of a job: a URL on a node.
struct Warmup {
    /// Its place in the job's results.
    index: usize,
    host: String,
    path: String,
    node: Target,
}

enum Target {
    /// Whichever healthy node owns the URL when the warm-up runs.
    Owner,
    Node(Arc<Member>),
}

impl Preloader {
    pub fn new(
        proxy: Arc<Proxy>,
        cluster: Arc<Cluster>,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> Arc<Preloader> {
        Arc::new(Preloader {
            proxy,
            cluster,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            jobs: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
            shutdown,
        })
    }

    /// Starts a job warming `urls` (on every node when `all`) and returns at once; refused
    /// when `tasks.preload_jobs` jobs are running already.
    pub fn start(self: &Arc<Self>, urls: Vec<String>, all: bool) -> Result<Started, StartError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (results, warmups, done) = self.plan(&urls, all);
        let started = Started {
            id,
            urls: urls.len(),
            total: results.len(),
        };
        let job = Arc::new(PreloadJob {
            id,
            all,
            urls: urls.len(),
            progress: Mutex::new(Progress {
                state: JobState::Running,
                results,
                done,
            }),
        });
        let run = Arc::clone(self).run(Arc::clone(&job), warmups);
        if let Err(refused) = self.proxy.tasks().spawn(Kind::Preload, run) {
            return Err(StartError::Busy(refused.to_string()));
        }
        {
            let mut jobs = self.lock_jobs();
            jobs.push_back(Arc::clone(&job));
            while jobs.len() > KEPT_JOBS {
                jobs.pop_front();
            }
        }
        tracing::info!(job = id, urls = started.urls, all, "preload started");
        Ok(started)
    }

    /// A job's results as they start (a URL that cannot be parsed has failed already), the
    /// warm-ups to run (one per URL, or one per URL and node when `all`), and how many
    /// results are final.
    fn plan(&self, urls: &[String], all: bool) -> (Vec<UrlResult>, Vec<Warmup>, usize) {
        let nodes: Vec<Arc<Member>> = match all {
            true => std::iter::once(Arc::clone(self.cluster.me()))
                .chain(self.cluster.peers())
                .collect(),
            false => Vec::new(),
        };
        let result = |url: &String, result, reason| UrlResult {
            url: url.clone(),
            node: None,
            result,
            reason,
        };
        let (mut results, mut warmups, mut done) = (Vec::new(), Vec::new(), 0);
        for url in urls {
            let (host, path) = match parse_url(url) {
                Ok(parsed) => parsed,
                Err(error) => {
                    results.push(result(url, Outcome::Failed, Some(error.to_string())));
                    done += 1;
                    continue;
                }
            };
            let targets: Vec<Target> = match all {
                true => nodes.iter().map(|n| Target::Node(Arc::clone(n))).collect(),
                false => vec![Target::Owner],
            };
            for node in targets {
                warmups.push(Warmup {
                    index: results.len(),
                    host: host.clone(),
                    path: path.clone(),
                    node,
                });
                results.push(result(url, Outcome::Pending, None));
            }
        }
        (results, warmups, done)
    }

    /// A kept job with every result.
    pub fn job(&self, id: u64) -> Option<JobView> {
        let job = self.lock_jobs().iter().find(|j| j.id == id).cloned()?;
        Some(job.view(true))
    }

    /// Every kept job, oldest first, without results.
    pub fn jobs(&self) -> Vec<JobView> {
        let jobs: Vec<Arc<PreloadJob>> = self.lock_jobs().iter().cloned().collect();
        jobs.iter().map(|j| j.view(false)).collect()
    }

    fn lock_jobs(&self) -> MutexGuard<'_, VecDeque<Arc<PreloadJob>>> {
        // Held for plain list updates only, never across an await.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a job's warm-ups, each once a permit is free; a failing one only records why.
    async fn run(self: Arc<Self>, job: Arc<PreloadJob>, warmups: Vec<Warmup>) {
        let mut running = JoinSet::new();
        let all_ran = async {
            for warmup in warmups {
                let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
                    return;
                };
                let (preloader, job) = (Arc::clone(&self), Arc::clone(&job));
                running.spawn(async move {
                    let (node, warmed) = preloader.warm(&warmup).await;
                    drop(permit);
                    job.record(warmup.index, node, warmed);
                });
                // Reap finished warm-ups as we go, so a long job holds only those running.
                while running.try_join_next().is_some() {}
            }
            while running.join_next().await.is_some() {}
        };
        let state = tokio::select! {
            () = all_ran => JobState::Finished,
            () = self.shutdown.cancelled() => JobState::Cancelled,
        };
        let view = job.finish(state);
        tracing::info!(
            job = job.id,
            stored = view.stored,
            fresh = view.fresh,
            failed = view.failed,
            state = ?view.state,
            "preload ended"
        );
    }

    /// Warms one URL on its node: here through this node's cache, elsewhere through that
    /// node's proxy listener. Returns the node's id and what came of it.
    async fn warm(&self, warmup: &Warmup) -> (Arc<str>, Warmed) {
        let me = self.cluster.me();
        let (member, as_owner) = match &warmup.node {
            Target::Owner => {
                let key = cache_key(&warmup.host, &warmup.path);
                let owner = self.cluster.owner(&key.key);
                (owner.unwrap_or_else(|| Arc::clone(me)), true)
            }
            Target::Node(member) => (Arc::clone(member), false),
        };
        let (host, path) = (&warmup.host, &warmup.path);
        let warmed = if member.id == me.id {
            self.proxy.warm(host, path, as_owner).await
        } else {
            self.proxy.warm_on(&member, host, path, as_owner).await
        };
        (Arc::clone(&member.id), warmed)
    }
}

impl PreloadJob {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        // Held for plain updates only, never across an await.
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, index: usize, node: Arc<str>, warmed: Warmed) {
        let mut progress = self.lock();
        let Some(result) = progress.results.get_mut(index) else {
            return;
        };
        result.node = Some(node.to_string());
        (result.result, result.reason) = match warmed {
            Warmed::Stored => (Outcome::Stored, None),
            Warmed::Fresh => (Outcome::Fresh, None),
            Warmed::Failed(reason) => (Outcome::Failed, Some(reason)),
        };
        progress.done += 1;
    }

    fn finish(&self, state: JobState) -> JobView {
        self.lock().state = state;
        self.view(false)
    }

    fn view(&self, with_results: bool) -> JobView {
        let progress = self.lock();
        let count = |outcome| {
            progress
                .results
                .iter()
                .filter(|r| r.result == outcome)
                .count()
        };
        JobView {
            id: self.id,
            state: progress.state,
            all: self.all,
            urls: self.urls,
            total: progress.results.len(),
            done: progress.done,
            stored: count(Outcome::Stored),
            fresh: count(Outcome::Fresh),
            failed: count(Outcome::Failed),
            results: match with_results {
                true => progress.results.clone(),
                false => Vec::new(),
            },
        }
    }
}

/// An absolute `http://` or `https://` URL as the cache keys it: the host lowercased without
/// its port (it picks the origin as a client's Host would), and the path with the query.
fn parse_url(text: &str) -> Result<(String, String), BadUrl> {
    let uri: Uri = text
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| BadUrl::Unparsable(e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(BadUrl::Scheme(other.to_string())),
        None => return Err(BadUrl::NotAbsolute),
    }
    let host = uri.host().filter(|h| !h.is_empty()).ok_or(BadUrl::NoHost)?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let path = match path.starts_with('/') {
        true => path.to_string(),
        false => format!("/{path}"),
    };
    Ok((host.to_ascii_lowercase(), path))
}

/// `POST /admin/preload[?all=1]`: 202 `{"id", "urls", "total"}` with the job's Location.
pub(super) async fn post(
    preloader: &Arc<Preloader>,
    req: Request<Incoming>,
    query: &str,
) -> Response<Body> {
    let bad = |status, error: String| json(status, serde_json::json!({ "error": error }));
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            let error = format!("the list is larger than {MAX_BODY} bytes");
            return bad(StatusCode::PAYLOAD_TOO_LARGE, error);
        }
        Err(e) => return bad(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let (urls, all_in_body) = match parse_list(content_type.as_deref(), &body) {
        Ok(list) => list,
        Err(error) => return bad(StatusCode::BAD_REQUEST, error),
    };
    if urls.is_empty() {
        return bad(StatusCode::BAD_REQUEST, "no URLs given".into());
    }
    if urls.len() > MAX_URLS {
        let error = format!("{} URLs; at most {MAX_URLS} per job", urls.len());
        return bad(StatusCode::PAYLOAD_TOO_LARGE, error);
    }
    let all = all_in_body || matches!(QueryParams::parse(query).get("all"), Some("1" | "true"));
    let started = match preloader.start(urls, all) {
        Ok(started) => started,
        Err(error) => {
            let mut response = bad(StatusCode::SERVICE_UNAVAILABLE, error.to_string());
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
    };
    let mut response = json(StatusCode::ACCEPTED, &started);
    if let Ok(location) = HeaderValue::from_str(&format!("/admin/preload/{}", started.id)) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// `GET /admin/preload/{id}`.
pub(super) fn get(preloader: &Preloader, id: &str) -> Response<Body> {
    match id.parse().ok().and_then(|id| preloader.job(id)) {
        Some(view) => json(StatusCode::OK, &view),
        None => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": format!("no preload job {id:?} (the last {KEPT_JOBS} are kept)") }),
        ),
    }
}

/// A JSON preload request: an array of URLs, or an object with options.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonList {
    Urls(Vec<String>),
    Job(JobRequest),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobRequest {
    urls: Vec<String>,
    /// Warm on every node (as `?all=1`).
    #[serde(default)]
    all: bool,
}

/// JSON when the Content-Type says so (or, without one that decides, when the body starts
/// with `[` or `{`); else text, one URL per line, blank lines and `#` comments skipped.
fn parse_list(content_type: Option<&str>, body: &[u8]) -> Result<(Vec<String>, bool), String> {
    let media = content_type.map(|t| t.split(';').next().unwrap_or("").trim());
    let is_json = match media {
        Some(m) if m == "application/json" || m.ends_with("+json") => true,
        Some("text/plain") => false,
        _ => matches!(body.trim_ascii_start().first(), Some(b'[' | b'{')),
    };
    if is_json {
        return match serde_json::from_slice::<JsonList>(body) {
            Ok(JsonList::Urls(urls)) => Ok((urls, false)),
            Ok(JsonList::Job(JobRequest { urls, all })) => Ok((urls, all)),
            Err(e) => Err(format!(
                "expected a JSON array of URLs or {{\"urls\": [...], \"all\": true}}: {e}"
            )),
        };
    }
    let text = std::str::from_utf8(body).map_err(|e| format!("the list is not UTF-8: {e}"))?;
    Ok((url_lines(text), false))
}

/// The URLs of a text list: one per line, blank lines and `#` comments skipped.
pub fn url_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_keyed_like_client_requests() {
        let parsed = |t: &str| parse_url(t);
        assert_eq!(
            parsed("http://Example.TEST:8080/a/b?x=1").unwrap(),
            ("example.test".into(), "/a/b?x=1".into())
        );
        assert_eq!(
            parsed("https://example.test").unwrap(),
            ("example.test".into(), "/".into())
        );
        assert_eq!(
            parsed("http://example.test?q").unwrap(),
            ("example.test".into(), "/?q".into())
        );
        let error = |t: &str| parsed(t).unwrap_err().to_string();
        assert!(error("not a url").starts_with("bad URL"));
        assert!(error("/relative").contains("not absolute"));
        assert!(error("ftp://example.test/x").contains("ftp"));
    }

    #[test]
    fn lists_are_json_or_lines_by_content_type_or_first_byte() {
        let urls = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let json = br#"["http://a/1", "http://a/2"]"#;
        assert_eq!(
            parse_list(Some("application/json"), json).unwrap(),
            (urls(&["http://a/1", "http://a/2"]), false)
        );
        assert_eq!(parse_list(None, json).unwrap().0.len(), 2);
        let object = br#" {"urls": ["http://a/1"], "all": true}"#;
        assert_eq!(
            parse_list(None, object).unwrap(),
            (urls(&["http://a/1"]), true)
        );
        let text = b"# warm these\nhttp://a/1\n\n  http://a/2  \n";
        assert_eq!(
            parse_list(Some("text/plain; charset=utf-8"), text).unwrap(),
            (urls(&["http://a/1", "http://a/2"]), false)
        );
        assert_eq!(parse_list(None, text).unwrap().0.len(), 2);
        assert!(parse_list(Some("application/json"), b"http://a/1").is_err());
        assert!(parse_list(None, br#"{"list": []}"#).is_err());
        assert!(parse_list(None, br#"{"urls": [], "al": true}"#).is_err());
    }
}
