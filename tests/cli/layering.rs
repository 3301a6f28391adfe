//! The module graph follows the flow (issue 17): spec -> desired -> observe -> diff -> plan ->
//! view | apply, with no cycle. This reads `src/` and fails on a `crate::` arrow the table
//! below does not allow, so a shortcut across the layers is caught when it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module and what it may use. `cmd` (the only code that sees the CLI
/// types, prints and picks exit codes) may use everything; `lib` (which declares the modules)
/// only `cmd`, whose `main` the binary calls.
const ALLOWED: &[(&str, &[&str])] = &[
    ("lib", &["cmd"]),
    ("resource", &[]),
    ("secrets", &[]),
    ("clock", &[]),
    ("interrupt", &[]),
    ("deadline", &["interrupt"]),
    ("cli", &[]),
    ("sandbox", &[]),
    ("progress", &["secrets"]),
    ("spec", &["resource", "secrets"]),
    ("plan", &["resource", "secrets"]),
    ("cost", &["plan", "resource", "spec"]),
    ("providers", &["clock", "deadline", "interrupt", "plan", "progress", "resource", "secrets", "spec"]),
    ("engine", &["interrupt", "plan", "progress", "providers", "resource", "secrets", "spec"]),
    ("view", &["cost", "plan", "resource", "secrets", "spec"]),
    ("lock", &["clock", "spec"]),
    ("migrate", &["cost", "deadline", "engine", "progress", "plan", "providers", "resource", "secrets", "spec", "view"]),
    ("audit", &["resource", "spec"]),
    ("check", &["deadline", "engine", "progress", "providers", "resource", "secrets", "spec"]),
    ("init", &["view"]),
    (
        "cmd",
        &[
            "audit",
            "check",
            "cli",
            "clock",
            "cost",
            "deadline",
            "engine",
            "exit",
            "init",
            "interrupt",
            "lock",
            "migrate",
            "plan",
            "progress",
            "providers",
            "resource",
            "sandbox",
            "secrets",
            "spec",
            "view",
        ],
    ),
];

/// The top-level modules a source file names through `crate::` (comments left out).
fn uses(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the first segment of each top-level item.
            let mut depth = 0;
            let mut item = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(item.trim().split("::").next().unwrap_or("").to_string());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(ch);
                }
            }
            out.insert(item.trim().split("::").next().unwrap_or("").to_string());
        } else {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_arrow_between_modules_is_one_the_layers_allow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED.iter().map(|(m, deps)| (*m, deps.iter().copied().collect())).collect();
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "main" {
            // The binary: `poactl::main()`, from outside the crate.
            continue;
        }
        let Some(ok) = allowed.get(top.as_str()) else {
            wrong.push(format!("{}: module `{top}` is not in the layering table", rel.display()));
            continue;
        };
        for used in uses(&std::fs::read_to_string(&file).unwrap()) {
            if used != top && !ok.contains(used.as_str()) {
                wrong.push(format!("{}: `{top}` uses `{used}`", rel.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows outside the layering table (tests/cli/layering.rs):\n{}", wrong.join("\n"));
}

/// `lib.rs` declares the modules and hands the binary `cmd::main`: every `use` in it goes
/// through `crate::cmd` (a bare `use secrets::...` would slip past the `crate::` scan).
#[test]
fn lib_uses_only_cmd() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let wrong: Vec<&str> = lib
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("use ") || l.starts_with("pub use "))
        .filter(|l| !l.trim_start_matches("pub ").starts_with("use crate::cmd::"))
        .collect();
    assert!(wrong.is_empty(), "src/lib.rs uses more than cmd: {wrong:?}");
    assert_eq!(uses(&lib), BTreeSet::from(["cmd".to_string()]));
}

#[test]
fn the_table_itself_has_no_cycle() {
    let graph: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    fn visit<'a>(m: &'a str, graph: &BTreeMap<&'a str, &'a [&'a str]>, path: &mut Vec<&'a str>, done: &mut BTreeSet<&'a str>) {
        if done.contains(m) {
            return;
        }
        assert!(!path.contains(&m), "cycle: {} -> {m}", path.join(" -> "));
        path.push(m);
        for d in graph.get(m).copied().unwrap_or(&[]) {
            visit(d, graph, path, done);
        }
        path.pop();
        done.insert(m);
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn uses_reads_groups_and_paths() {
    let text = "use crate::{exit, plan::{self, Plan}, secrets};\nlet x = crate::spec::load(); // crate::view is a comment\n";
    assert_eq!(uses(text), ["exit", "plan", "secrets", "spec"].iter().map(|s| s.to_string()).collect());
}
