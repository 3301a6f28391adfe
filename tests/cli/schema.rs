//! Issue 35, item 3: `poactl schema` (generated from the spec's Rust types with schemars) is
//! the committed `schema/poactl.schema.json`, every valid spec the repository holds passes it,
//! the type errors of the invalid corpus fail it, and every shipped environment names it for
//! editors. `POACTL_UPDATE_DOCS=1` rewrites the committed file.

use serde_json::Value;

use crate::support::{Poactl, repo};

const SCHEMA_LINE: &str = "# yaml-language-server: $schema=../schema/poactl.schema.json";

fn printed() -> Value {
    let run = Poactl::new(&["schema"]).run();
    run.expect_code(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON: {e}: {}", run.stdout))
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options().should_validate_formats(false).build(schema).expect("the schema compiles")
}

fn yaml_file(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_value(yaml).unwrap()
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance).take(5).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

fn yaml_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    out.sort();
    out
}

#[test]
fn the_committed_schema_is_the_one_the_binary_prints() {
    let schema = printed();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "JSON Schema 2020-12");
    let path = repo().join("schema/poactl.schema.json");
    let text = format!("{}\n", serde_json::to_string_pretty(&schema).unwrap());
    if std::env::var_os("POACTL_UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == text, "schema/poactl.schema.json is stale: run `POACTL_UPDATE_DOCS=1 cargo test --test cli schema::`");
}

#[test]
fn every_valid_spec_passes_the_schema_and_names_it() {
    let v = validator(&printed());
    let mut files = yaml_files(&repo().join("environments"));
    files.extend(yaml_files(&repo().join("tests/specs")));
    assert!(files.len() >= 8, "{files:?}");
    for f in &files {
        let wrong = errors(&v, &yaml_file(f));
        assert!(wrong.is_empty(), "{} fails the schema: {wrong:?}", f.display());
        if f.starts_with(repo().join("environments")) {
            let first = std::fs::read_to_string(f).unwrap().lines().next().unwrap_or_default().to_string();
            assert_eq!(first, SCHEMA_LINE, "{} does not start with the schema line", f.display());
        }
    }
}

/// The invalid corpus files whose mistake is one of type or field name: the schema refuses
/// them as `validate` does. The rest of the corpus breaks rules only `validate` knows
/// (references, regions, tiers, limits: docs/spec.md, "Editor schema").
const TYPE_ERRORS: &[&str] = &[
    "duration-bad-unit.yaml",
    "duration-negative.yaml",
    "empty.yaml",
    "extends-not-a-string.yaml",
    "index-bad-direction.yaml",
    "not-a-map.yaml",
    "unknown-bucket-field.yaml",
    "unknown-cluster-field.yaml",
    "unknown-top-field.yaml",
    "wrong-type-bool.yaml",
    "wrong-type-list.yaml",
    "wrong-type-number.yaml",
];

#[test]
fn the_type_errors_of_the_invalid_corpus_fail_the_schema() {
    let v = validator(&printed());
    let dir = repo().join("tests/specs/invalid");
    for name in TYPE_ERRORS {
        let path = dir.join(name);
        assert!(path.exists(), "{name} is not in the corpus");
        assert!(!v.is_valid(&yaml_file(&path)), "{name} passes the schema");
        let run = Poactl::new(&["validate", "-e", path.to_str().unwrap()]).run();
        assert_eq!(run.code, 1, "{name}: validate accepts it: {}", run.all());
    }
}
