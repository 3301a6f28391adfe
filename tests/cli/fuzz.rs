//! A mutation fuzzer over the spec loader: the shipped environments and the malformed corpus,
//! mutated at random (byte edits, YAML tokens, splices), must never make the loader panic.
//! `make test` runs it for a few seconds; `make fuzz` for 5 minutes (POACTL_FUZZ_SECONDS).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::support::repo;

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\n    - ",
    "\t",
    "\"",
    "'",
    "${env:",
    "${",
    "}",
    "${env:POACTL_FUZZ_X}",
    "${cdn.assets.id}",
    "${atlas.clusters.main.srv}",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "~",
    "null",
    "0x",
    "1e999",
    "-1",
    "99999999999999999999",
    ".inf",
    "extends: ",
    "base.yaml",
    "name: ",
    "tier: M10",
    "tier: ",
    "keys: ",
    "2dsphere",
    "text",
    "hashed",
    "ttl: ",
    "7d",
    "0s",
    "expire_after: ",
    "? ",
    "|\n  ",
    ">-\n  ",
    "#",
    "---\n",
    "...\n",
    "\u{feff}",
    "é",
    "\0",
    "%YAML 1.2\n",
];

fn seeds() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["environments", "tests/specs/invalid"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                out.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    out
}

fn mutate(rng: &mut fastrand::Rng, input: &str, seeds: &[String]) -> String {
    let mut bytes = input.as_bytes().to_vec();
    for _ in 0..rng.usize(1..6) {
        let len = bytes.len();
        match rng.u8(0..7) {
            0 if len > 0 => {
                let i = rng.usize(0..len);
                bytes[i] = rng.u8(..);
            }
            1 if len > 0 => {
                let start = rng.usize(0..len);
                let end = (start + rng.usize(0..32)).min(len);
                bytes.drain(start..end);
            }
            2 => {
                let i = rng.usize(0..=len);
                let tok = TOKENS[rng.usize(0..TOKENS.len())].as_bytes();
                bytes.splice(i..i, tok.iter().copied());
            }
            3 if len > 0 => {
                let start = rng.usize(0..len);
                let end = (start + rng.usize(0..64)).min(len);
                let chunk = bytes[start..end].to_vec();
                let at = rng.usize(0..=len);
                bytes.splice(at..at, chunk);
            }
            4 => {
                let other = seeds[rng.usize(0..seeds.len())].as_bytes();
                if !other.is_empty() {
                    let start = rng.usize(0..other.len());
                    let end = (start + rng.usize(0..200)).min(other.len());
                    let at = rng.usize(0..=len);
                    bytes.splice(at..at, other[start..end].iter().copied());
                }
            }
            5 if len > 0 => bytes.truncate(rng.usize(0..len)),
            _ => {
                let i = rng.usize(0..=len);
                let junk: Vec<u8> = (0..rng.usize(1..8)).map(|_| rng.u8(0x20..0x7f)).collect();
                bytes.splice(i..i, junk);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn fuzz_loader_never_panics() {
    let seconds: u64 = std::env::var("POACTL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let seed: u64 = std::env::var("POACTL_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let seeds = seeds();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("environments/base.yaml"), dir.path().join("base.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut valid) = (0u64, 0u64);
    // Panics are caught and reported with the input, not printed by the default hook.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    while Instant::now() < deadline {
        let base = &seeds[rng.usize(0..seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        std::fs::write(dir.path().join("fuzz.yaml"), &input).unwrap();
        let with_env = rng.bool();
        let lookup = move |name: &str| with_env.then(|| format!("value-of-{name}"));
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| poactl::spec::load(dir.path(), "fuzz", &lookup)));
        runs += 1;
        // Not a benchmark: a hang detector. Every input is bounded (aliases, depth, size), so
        // even the alias-bomb seeds load in well under a second.
        if started.elapsed() > Duration::from_secs(10) {
            failure = Some(format!("one load took {:?} (seed {seed})\n--- input ---\n{input}", started.elapsed()));
            break;
        }
        match result {
            Ok(Ok(_)) => valid += 1,
            Ok(Err(errors)) => {
                // Every error must say where it is, or at least which file.
                let text = errors.to_string();
                if !text.contains("fuzz.yaml") && !text.contains("base.yaml") {
                    failure = Some(format!("an error without a file name: {text}\n--- input ---\n{input}"));
                    break;
                }
            }
            Err(_) => {
                failure = Some(format!("the loader panicked (seed {seed})\n--- input ---\n{input}"));
                break;
            }
        }
    }
    std::panic::set_hook(hook);
    println!("fuzz: {runs} inputs in {seconds}s ({valid} valid), seed {seed}, no panic");
    if let Some(f) = failure {
        panic!("{f}");
    }
    assert!(runs > 0);
}
