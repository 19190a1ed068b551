//! `edgenode preload --admin URL [--token T] [--all] FILE`: posts the URLs of FILE (one per
//! line, `-` for stdin) as a preload job, follows it with a progress bar on stderr (plain
//! lines when stderr is not a terminal), and prints a summary with every failure.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{AdminClient, CliError};
use crate::admin::preload::{JobState, JobView, Outcome, Started, url_lines};

/// How often the job is asked how far it got.
const POLL: Duration = Duration::from_millis(200);
/// Without a terminal, a progress line at most this often.
const PLAIN_EVERY: Duration = Duration::from_secs(1);
/// Failed polls in a row before giving up on the job.
const POLL_ATTEMPTS: u32 = 5;

/// The URLs in `file` (`-`: stdin): one per line, blank lines and `#` comments skipped.
pub fn read_list(file: &Path) -> Result<Vec<String>, CliError> {
    let mut text = String::new();
    let read = match file.as_os_str() == "-" {
        true => std::io::stdin().read_to_string(&mut text).map(|_| ()),
        false => std::fs::read_to_string(file).map(|t| text = t),
    };
    read.map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
    let urls = url_lines(&text);
    if urls.is_empty() {
        return Err(CliError::Input(format!("{}: no URLs", file.display())));
    }
    Ok(urls)
}

/// Runs a job to its end and prints the summary; Ok(true) when every URL was warmed.
pub async fn run(client: &AdminClient, urls: &[String], all: bool) -> Result<bool, CliError> {
    let path = match all {
        true => "/admin/preload?all=1",
        false => "/admin/preload",
    };
    let list = Some(("text/plain; charset=utf-8", urls.join("\n") + "\n"));
    let started: Started = client.post(path, list).await?;
    let mut progress = Progress::new(&started);
    let mut failures = 0;
    let view = loop {
        tokio::time::sleep(POLL).await;
        let view: JobView = match client.get(&format!("/admin/preload/{}", started.id)).await {
            Ok(view) => view,
            Err(error) if failures + 1 < POLL_ATTEMPTS => {
                failures += 1;
                progress.note(&format!("{error}; asking again"));
                continue;
            }
            Err(error) => {
                progress.finish();
                return Err(error);
            }
        };
        failures = 0;
        progress.show(&view);
        if view.state != JobState::Running {
            break view;
        }
    };
    progress.finish();
    print_summary(&view);
    Ok(view.state == JobState::Finished && view.failed == 0)
}

fn print_summary(view: &JobView) {
    let state = match view.state {
        JobState::Finished => "finished",
        JobState::Cancelled => "cancelled (the node shut down)",
        JobState::Running => "running",
    };
    println!(
        "preload {} {state}: {} URLs, {} results: {} stored, {} fresh, {} failed",
        view.id, view.urls, view.total, view.stored, view.fresh, view.failed
    );
    for result in &view.results {
        if result.result != Outcome::Failed {
            continue;
        }
        let node = result
            .node
            .as_deref()
            .map_or(String::new(), |n| format!(" on {n}"));
        let reason = result.reason.as_deref().unwrap_or("no reason given");
        println!("failed {}{node}: {reason}", result.url);
    }
}

/// A progress bar on a terminal; otherwise a plain line now and then.
struct Progress {
    id: u64,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
    last_done: Option<usize>,
}

impl Progress {
    fn new(started: &Started) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(started.total as u64),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                ProgressStyle::with_template("preload {prefix} [{bar:30}] {pos}/{len} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(started.id.to_string());
            bar
        });
        if bar.is_none() {
            eprintln!(
                "preload {}: {} URLs, {} results to come",
                started.id, started.urls, started.total
            );
        }
        Progress {
            id: started.id,
            bar,
            last_line: None,
            last_done: None,
        }
    }

    fn show(&mut self, view: &JobView) {
        let counts = format!(
            "{} stored, {} fresh, {} failed",
            view.stored, view.fresh, view.failed
        );
        if let Some(bar) = &self.bar {
            bar.set_length(view.total as u64);
            bar.set_position(view.done as u64);
            bar.set_message(counts);
            return;
        }
        let changed = self.last_done != Some(view.done);
        let due = self.last_line.is_none_or(|t| t.elapsed() >= PLAIN_EVERY);
        if (changed && due) || view.state != JobState::Running {
            eprintln!(
                "preload {}: {}/{} ({counts})",
                self.id, view.done, view.total
            );
            self.last_line = Some(Instant::now());
            self.last_done = Some(view.done);
        }
    }

    fn note(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    /// Clears the bar: the summary that follows says the same.
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
