//! The malformed-spec corpus (`tests/specs/invalid/`): every file fails validation with exit 1,
//! an error naming the file and line, and the expected message; none panics.
//!
//! Each file starts with `# expect: TEXT` and, where the position is known, `# line: N`.

use crate::support::{Poactl, SPEC_ENV, repo};

#[test]
fn every_malformed_spec_fails_cleanly() {
    let dir = repo().join("tests/specs/invalid");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus has {} specs", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expect = text.lines().find_map(|l| l.strip_prefix("# expect: ")).expect("# expect: line").to_string();
        let line = text.lines().find_map(|l| l.strip_prefix("# line: ")).map(|l| l.trim().to_string());
        let rel = file.strip_prefix(repo()).unwrap().to_string_lossy().to_string();
        let run = Poactl::new(&["validate", "-e", &rel]).envs(SPEC_ENV).run();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut problems = Vec::new();
        if run.code != 1 {
            problems.push(format!("exit {}", run.code));
        }
        if run.stderr.contains("panicked") || run.stderr.contains("RUST_BACKTRACE") {
            problems.push("panicked".to_string());
        }
        if !run.stderr.contains(&expect) {
            problems.push(format!("no {expect:?}"));
        }
        if !run.stderr.contains(&name) {
            problems.push("file not named".to_string());
        }
        match &line {
            Some(l) if !run.stderr.contains(&format!("{name}:{l}:")) => problems.push(format!("not at line {l}")),
            // An `extends` problem may sit in the other file of the chain.
            None if !has_file_line(&run.stderr) => problems.push("no file:line:column".to_string()),
            _ => {}
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}\n{}", problems.join(", "), run.stderr));
        }
    }
    assert!(failures.is_empty(), "{} of {} specs misbehave:\n{}", failures.len(), files.len(), failures.join("\n"));
}

/// Whether a text holds `something.yaml:LINE:COLUMN`.
fn has_file_line(text: &str) -> bool {
    text.match_indices(".yaml:").any(|(i, m)| {
        let rest = &text[i + m.len()..];
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let col = parts.next().unwrap_or("");
        !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) && !col.is_empty() && col.chars().all(|c| c.is_ascii_digit())
    })
}
