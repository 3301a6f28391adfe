//! `poactl init` through the CLI (issue 35, item 7): the directory it writes validates offline
//! with no secret set, refuses to overwrite, answers JSON, and the dev environment it writes
//! applies against the Atlas sandbox and moto and then shows no drift.

use crate::support::{Poactl, TwoClouds};

const SECRETS: &[(&str, &str)] = &[
    ("MONGODB_ATLAS_ORG_ID", "0123456789abcdef01234567"),
    ("SHOP_DB_PASSWORD", "api-secret-Vq3xT9"),
    ("SHOP_MIGRATIONS_PASSWORD", "migrations-secret-P7kw2Z"),
];

fn init(dir: &std::path::Path, extra: &[&str]) -> crate::support::Run {
    let d = dir.to_str().unwrap();
    let mut args = vec!["init", "--environments-dir", d, "--app", "shop"];
    args.extend_from_slice(extra);
    Poactl::new(&args).run()
}

#[test]
fn the_written_environments_validate_offline_before_any_secret_is_set() {
    for extra in [&[][..], &["--empty"][..], &["--region", "eu-west-1"][..]] {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), extra).expect_code(0);
        for env in ["dev", "staging", "prod"] {
            let path = dir.path().join(format!("{env}.yaml"));
            let run = Poactl::new(&["validate", "-e", path.to_str().unwrap()]).run();
            run.expect_code(0);
            assert!(run.stdout.contains(&format!("environment \"{env}\" is valid")), "{extra:?}: {}", run.all());
            // The unset secrets are named, never guessed.
            assert!(run.stderr.contains("${env:SHOP_DB_PASSWORD} is not set"), "{extra:?}: {}", run.all());
        }
        let prod = std::fs::read_to_string(dir.path().join("prod.yaml")).unwrap();
        assert!(prod.contains("protect: true") && prod.contains("termination_protection: true"), "{prod}");
        let base = std::fs::read_to_string(dir.path().join("base.yaml")).unwrap();
        assert_eq!(base.contains("collections:"), extra != ["--empty"], "{extra:?}: {base}");
        if extra == ["--region", "eu-west-1"] {
            // An alarm in eu-west-1 can only notify a topic of its own region.
            assert!(prod.contains("ops-eu-west-1"), "{prod}");
        }
    }
}

#[test]
fn nothing_is_overwritten_without_force_and_bad_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.yaml"), "hand-written\n").unwrap();
    let run = init(dir.path(), &[]);
    run.expect_code(1);
    assert!(run.stderr.contains("dev.yaml") && run.stderr.contains("--force"), "{}", run.all());
    assert_eq!(std::fs::read_to_string(dir.path().join("dev.yaml")).unwrap(), "hand-written\n");
    assert!(!dir.path().join("base.yaml").exists(), "a refused init writes nothing");

    init(dir.path(), &["--force"]).expect_code(0);
    assert_ne!(std::fs::read_to_string(dir.path().join("dev.yaml")).unwrap(), "hand-written\n");

    let other = tempfile::tempdir().unwrap();
    let run = Poactl::new(&["init", "--environments-dir", other.path().to_str().unwrap(), "--app", "Shop App"]).run();
    run.expect_code(1);
    assert!(run.stderr.contains("--app `Shop App`") && run.stderr.contains("e.g. --app"), "{}", run.all());
    assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
}

#[test]
fn json_output_lists_the_files_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = init(dir.path(), &["--output", "json"]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["app"], "shop");
    let files: Vec<String> = v["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
    let names: Vec<String> = files.iter().map(|f| std::path::Path::new(f).file_name().unwrap().to_string_lossy().to_string()).collect();
    assert_eq!(names, ["base.yaml", "dev.yaml", "staging.yaml", "prod.yaml"]);
    assert!(files.iter().all(|f| std::path::Path::new(f).exists()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_environment_applies_against_the_peers_and_then_shows_no_drift() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), &["--empty"]).expect_code(0);
    let dev = dir.path().join("dev.yaml");
    let dev = dev.to_str().unwrap();
    let w = TwoClouds::start().await;
    let env: Vec<(&'static str, String)> = w.env.clone();
    let run = |args: Vec<String>| {
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Poactl::new(&args).envs(SECRETS).envs_owned(&env).run()
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let applied = run(args(&["apply", "-e", dev, "--auto-approve", "--quiet"])).await.unwrap();
    applied.expect_code(0);
    let drift = run(args(&["drift", "-e", dev])).await.unwrap();
    assert_eq!(drift.code, 0, "the environment init wrote converges in one apply: {}", drift.all());
}
