//! The bad corpus (`tests/data/zones/bad/`): `edgenode check` must reject each file and say where
//! its error is, and nsd-checkzone and kzonecheck must reject each file too.

use std::path::PathBuf;
use std::process::Command;

use super::corpus::zones_root;
use super::{indent, run_check};
use crate::support;

/// A file of `tests/data/zones/bad/` and where its error is.
struct BadFile {
    path: PathBuf,
    place: Place,
    what: String,
}

/// Where `edgenode check` must say a bad file's error is.
enum Place {
    /// The line whose comment says `; <- error`: `file:LINE:`.
    Line(usize),
    /// Some line (an unterminated string or parenthesis runs on to the end of the file, and
    /// readers report it at its start or at the end): `file:DIGITS:`.
    AnyLine,
    /// The file as a whole (it has no SOA); the file says `NO-LINE`: the file name.
    File,
}

fn bad_files() -> Vec<BadFile> {
    let dir = zones_root().join("bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read tests/data/zones/bad")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "zone"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.zone in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a bad zone file");
            let place = match text.lines().position(|l| l.contains("; <- error")) {
                Some(i) => Place::Line(i + 1),
                None if text.contains("NO-LINE") => Place::File,
                None => Place::AnyLine,
            };
            let what = text
                .lines()
                .find_map(|l| l.strip_prefix("; BAD:"))
                .unwrap_or_else(|| panic!("{}: no `; BAD:` comment", path.display()))
                .trim()
                .to_owned();
            BadFile { path, place, what }
        })
        .collect()
}

/// `edgenode check` rejects every bad file (exit 1) and says where: `file:line:`.
#[test]
fn check_rejects_each_bad_file() {
    let mut failures = Vec::new();
    let files = bad_files();
    for bad in &files {
        // Alone in a directory, so that its errors are the only ones.
        let dir = tempfile::tempdir().expect("tempdir");
        let file_name = bad.path.file_name().expect("file name").to_owned();
        std::fs::copy(&bad.path, dir.path().join(&file_name)).expect("copy the bad file");
        let run = run_check(dir.path());
        let output = run.output();
        let file_name = file_name.to_string_lossy();
        let (placed, want) = match bad.place {
            Place::Line(line) => {
                let want = format!("{file_name}:{line}:");
                (output.contains(&want), want)
            }
            Place::AnyLine => (
                has_file_and_line(&output, &file_name),
                format!("{file_name}:LINE:"),
            ),
            Place::File => (output.contains(&*file_name), file_name.to_string()),
        };
        if run.code != Some(1) || !placed {
            failures.push(format!(
                "{file_name} ({}): exit {:?}, want 1 and `{want}` in the output:\n{}",
                bad.what,
                run.code,
                indent(&output)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "edgenode check on tests/data/zones/bad/, {} of {} files not rejected as they should \
         be:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// True when `output` holds `FILE:DIGITS:`.
fn has_file_and_line(output: &str, file_name: &str) -> bool {
    output
        .match_indices(&format!("{file_name}:"))
        .any(|(at, m)| {
            let rest = &output[at + m.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && rest[digits..].starts_with(':')
        })
}

/// The corpus itself: nsd-checkzone and kzonecheck both reject every bad file.
#[test]
fn reference_tools_reject_each_bad_file() {
    let have_nsd = support::have_tool("nsd-checkzone");
    let have_knot = support::have_tool("kzonecheck");
    let mut failures = Vec::new();
    for bad in bad_files() {
        let file_name = bad.path.file_name().expect("file name").to_string_lossy();
        let origin = file_name.strip_suffix(".zone").expect("a .zone file");
        let dir = bad.path.parent().expect("parent");
        let mut tools = Vec::new();
        if have_nsd {
            tools.push(("nsd-checkzone", vec![origin, &file_name]));
        }
        if have_knot {
            tools.push(("kzonecheck", vec!["-o", origin, &file_name]));
        }
        for (tool, args) in tools {
            let out = Command::new(tool)
                .args(&args)
                .current_dir(dir)
                .output()
                .unwrap_or_else(|e| panic!("run {tool}: {e}"));
            if out.status.success() {
                failures.push(format!(
                    "{tool} accepts bad/{file_name} ({}):\n{}",
                    bad.what,
                    indent(&format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ))
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "tests/data/zones/bad/ holds files a reference tool accepts (each must be rejected by \
         both):\n{}",
        failures.join("\n")
    );
}
