//! No two modules import each other: a change in one file should not force a change in
//! another that depends on it in turn. Reads every `src/**/*.rs` (comments and string literals
//! removed), collects the paths it names (`crate::a::...`, `use crate::{a::X, b}`, and
//! `super::...` resolved against the file's module and the inline `mod` blocks around it),
//! and builds two graphs: between the top-level modules (`crate::X`), and between the
//! submodules of `dns` (`dns::X`). Test modules (`tests`, `*_tests`, files or inline) are left
//! out: a test may use what it tests from either side. Any cycle fails the test with the edges
//! that make it and where each one comes from. `.ci/run` runs it with the rest of `cargo test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles tolerated, each as the modules it spans; a cycle passes when all its modules are in
/// one entry. None: a new cycle fails the test (issue 20 removed the last ones).
const ALLOWED_CYCLES: &[&[&str]] = &[];

/// The module whose submodules get a graph of their own.
const INNER_GRAPH: &str = "dns";

#[test]
fn modules_do_not_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let tops = child_modules(&src);
    let inner = child_modules(&src.join(INNER_GRAPH));
    let mut graph = Graph::default();
    for file in rust_files(&src) {
        let Some(module) = module_path(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let shown = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (context, path) in named_paths(&module, &strip_comments_and_strings(&text)) {
            if context
                .iter()
                .any(|m| m == "tests" || m.ends_with("_tests"))
            {
                continue;
            }
            let from = nodes(&tops, &inner, &context);
            let to = nodes(&tops, &inner, &path);
            for (from, to) in from.into_iter().zip(to) {
                if let (Some(from), Some(to)) = (from, to)
                    && from != to
                {
                    let evidence = format!("src/{shown}: {}", path.join("::"));
                    graph.edges.entry((from, to)).or_insert(evidence);
                }
            }
        }
    }
    let mut report = Vec::new();
    for cycle in graph.cycles() {
        let allowed = ALLOWED_CYCLES
            .iter()
            .any(|allowed| cycle.iter().all(|m| allowed.contains(&m.as_str())));
        if allowed {
            continue;
        }
        report.push(format!("cycle between {}:", cycle.join(", ")));
        for ((from, to), evidence) in &graph.edges {
            if cycle.contains(from) && cycle.contains(to) {
                report.push(format!("  {from} -> {to}  ({evidence})"));
            }
        }
    }
    assert!(
        report.is_empty(),
        "modules import each other:\n{}",
        report.join("\n")
    );
}

/// Dependencies between modules, each with the first place that makes it.
#[derive(Default)]
struct Graph {
    edges: BTreeMap<(String, String), String>,
}

impl Graph {
    /// The strongly connected groups of more than one module, each sorted.
    fn cycles(&self) -> BTreeSet<Vec<String>> {
        let nodes: BTreeSet<&String> = self.edges.keys().flat_map(|(a, b)| [a, b]).collect();
        let reach = |start: &String| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![start.clone()];
            while let Some(node) = todo.pop() {
                for (from, to) in self.edges.keys() {
                    if *from == node && seen.insert(to.clone()) {
                        todo.push(to.clone());
                    }
                }
            }
            seen
        };
        let reachable: BTreeMap<&String, BTreeSet<String>> =
            nodes.iter().map(|n| (*n, reach(n))).collect();
        let mut cycles = BTreeSet::new();
        for (node, from_node) in &reachable {
            let group: Vec<String> = from_node
                .iter()
                .filter(|other| reachable[other].contains(*node))
                .cloned()
                .collect();
            if group.len() > 1 {
                cycles.insert(group);
            }
        }
        cycles
    }
}

/// The graph nodes a module path belongs to: its top-level module, and, inside
/// `INNER_GRAPH`, its submodule (`dns::handler`); one per graph, in that order.
fn nodes(
    tops: &BTreeSet<String>,
    inner: &BTreeSet<String>,
    path: &[String],
) -> [Option<String>; 2] {
    let Some(top) = path.first().filter(|t| tops.contains(*t)) else {
        return [None, None];
    };
    let sub = path
        .get(1)
        .filter(|sub| top == INNER_GRAPH && inner.contains(*sub))
        .map(|sub| format!("{top}::{sub}"));
    [Some(top.clone()), sub]
}

/// The modules directly under `dir` (`x.rs`, or `x/mod.rs`).
fn child_modules(dir: &Path) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let module = match path.extension() {
            Some(ext) if ext == "rs" => !matches!(stem, "lib" | "main" | "mod"),
            _ => path.join("mod.rs").is_file(),
        };
        if module {
            modules.insert(stem.to_string());
        }
    }
    modules
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The module a file is (`src/dns/zone/build.rs`: dns::zone::build); None for the binary.
fn module_path(src: &Path, file: &Path) -> Option<Vec<String>> {
    let relative = file.strip_prefix(src).ok()?;
    if relative == Path::new("main.rs") {
        return None;
    }
    let mut path: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
        path.pop();
    }
    Some(path)
}

/// The text with comments, string and character literals blanked out (newlines kept), so
/// that only code is read and braces balance.
fn strip_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let rest = &chars[i..];
        let end = if rest.starts_with(&['/', '/']) {
            rest.iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |n| i + n)
        } else if rest.starts_with(&['/', '*']) {
            let mut depth = 0;
            let mut j = i;
            loop {
                if chars[j..].starts_with(&['/', '*']) {
                    depth += 1;
                    j += 2;
                } else if chars[j..].starts_with(&['*', '/']) {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break j;
                    }
                } else if j + 1 >= chars.len() {
                    break chars.len();
                } else {
                    j += 1;
                }
            }
        } else if let Some(end) = raw_string_end(&chars, i) {
            end
        } else if rest[0] == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            (j + 1).min(chars.len())
        } else if rest[0] == '\'' && rest.get(1) == Some(&'\\') {
            let close = chars
                .get(i + 3..)
                .and_then(|r| r.iter().position(|c| *c == '\''));
            close.map_or(chars.len(), |n| i + 3 + n + 1)
        } else if rest[0] == '\'' && rest.get(2) == Some(&'\'') {
            i + 3
        } else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        out.extend(chars[i..end].iter().map(|c| blank(*c)));
        i = end;
    }
    out
}

/// Where a raw string (`r"..."`, `r#"..."#`, `br"..."`) starting at `i` ends, if one does.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    if chars[i] != 'r' || (i > 0 && (chars[i - 1].is_alphanumeric() && chars[i - 1] != 'b')) {
        return None;
    }
    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
    if chars.get(i + 1 + hashes) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let start = i + 2 + hashes;
    (start..chars.len())
        .find(|&j| chars[j..].starts_with(&close))
        .map(|j| j + close.len())
}

/// Every `crate::` and `super::` path in `code`, resolved to an absolute module path, with the
/// module it is written in (`file_module` and the inline `mod name {}` blocks around it).
fn named_paths(file_module: &[String], code: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let chars: Vec<char> = code.chars().collect();
    let inline = inline_modules(&chars);
    let mut found = Vec::new();
    for i in 0..chars.len() {
        let keyword = ["crate", "super"]
            .into_iter()
            .find(|k| chars[i..].starts_with(&k.chars().collect::<Vec<_>>()));
        let Some(keyword) = keyword else {
            continue;
        };
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + keyword.len());
        let part_of_word = |c: &char| c.is_alphanumeric() || *c == '_';
        if before.is_some_and(|c| part_of_word(&c) || c == ':') || after.is_some_and(part_of_word) {
            continue;
        }
        let mut context = file_module.to_vec();
        context.extend(
            inline
                .iter()
                .filter(|(_, start, end)| (*start..*end).contains(&i))
                .map(|(name, _, _)| name.clone()),
        );
        for segments in use_tree(&chars, &mut i.clone()) {
            if segments.len() < 2 {
                continue;
            }
            let path = if keyword == "crate" {
                segments[1..].to_vec()
            } else {
                let supers = segments.iter().take_while(|s| *s == "super").count();
                let mut base = context.clone();
                base.truncate(base.len().saturating_sub(supers));
                base.extend(segments[supers..].iter().cloned());
                base
            };
            found.push((context.clone(), path));
        }
    }
    found
}

/// Inline `mod name { ... }` blocks: name, and where the block starts and ends.
fn inline_modules(chars: &[char]) -> Vec<(String, usize, usize)> {
    let mut modules = Vec::new();
    for i in 0..chars.len() {
        let word_start = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if !word_start || !chars[i..].starts_with(&['m', 'o', 'd', ' ']) {
            continue;
        }
        let mut j = i + 4;
        let name = ident(chars, &mut j);
        skip_space(chars, &mut j);
        if name.is_empty() || chars.get(j) != Some(&'{') {
            continue;
        }
        let mut depth = 0;
        let end = (j..chars.len())
            .find(|&k| {
                match chars[k] {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .unwrap_or(chars.len());
        modules.push((name, j, end));
    }
    modules
}

/// The paths of a use tree starting at `i` (`crate::a::{b::C, d}`: crate::a::b::C and
/// crate::a::d), each as its segments; a glob or a name ends a path.
fn use_tree(chars: &[char], i: &mut usize) -> Vec<Vec<String>> {
    skip_space(chars, i);
    let first = ident(chars, i);
    if first.is_empty() {
        return Vec::new();
    }
    skip_space(chars, i);
    if !chars[*i..].starts_with(&[':', ':']) {
        return vec![vec![first]];
    }
    *i += 2;
    skip_space(chars, i);
    let tails = match chars.get(*i) {
        Some('{') => {
            *i += 1;
            let mut tails = Vec::new();
            loop {
                tails.extend(use_tree(chars, i));
                skip_space(chars, i);
                match chars.get(*i) {
                    Some(',') => *i += 1,
                    Some('}') => {
                        *i += 1;
                        break;
                    }
                    // `*`, or something this reader does not follow: stop here.
                    _ => break,
                }
            }
            tails
        }
        _ => use_tree(chars, i),
    };
    if tails.is_empty() {
        return vec![vec![first]];
    }
    tails
        .into_iter()
        .map(|tail| std::iter::once(first.clone()).chain(tail).collect())
        .collect()
}

fn ident(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
        *i += 1;
    }
    chars[start..*i].iter().collect()
}

fn skip_space(chars: &[char], i: &mut usize) {
    while *i < chars.len() && chars[*i].is_whitespace() {
        *i += 1;
    }
}
