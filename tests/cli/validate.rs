//! `poactl validate` on the shipped environments.

use crate::support::{Poactl, SPEC_ENV};

#[test]
fn shipped_environments_are_valid_and_summarized() {
    let table = [
        ("dev", &["Atlas project poafix-dev", "main M0", "1 bucket", "18 indexes on 7 collections"][..]),
        ("staging", &["Atlas project poafix-staging", "main M10 in 3 regions", "1 distribution"][..]),
        (
            "prod",
            &[
                "Atlas project poafix-prod",
                "main M10",
                "VPC-only, 1 private endpoint",
                "2 buckets",
                "4 alarms",
                "1 log group",
                "2 SNS topics",
                "the app's IAM role",
                "2 billing alerts",
            ][..],
        ),
    ];
    for (env, wants) in table {
        let run = Poactl::new(&["validate", "-e", env]).envs(SPEC_ENV).run();
        run.expect_code(0);
        assert_eq!(run.stdout.lines().count(), 1, "one-line summary: {}", run.stdout);
        for want in wants {
            assert!(run.stdout.contains(want), "{env}: missing {want:?} in {}", run.stdout);
        }
        for (_, secret) in SPEC_ENV {
            assert!(!run.all().contains(secret), "a secret was printed");
        }
    }
}

#[test]
fn validate_json_lists_resources_and_errors() {
    let run = Poactl::new(&["validate", "-e", "prod", "--output", "json"]).envs(SPEC_ENV).run();
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["valid"], true);
    let resources: Vec<String> = v["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    for want in [
        "atlas.clusters.main",
        "storage.buckets.poafix-prod-uploads",
        "cdn.distributions.assets",
        "database.indexes.notifications.recipient_1_read_1_createdAt_-1",
        "billing.alarms.above-100usd",
    ] {
        assert!(resources.iter().any(|r| r == want), "missing {want} in {resources:?}");
    }

    let bad = Poactl::new(&["validate", "-e", "tests/specs/invalid/unknown-bucket-field.yaml", "--output", "json"]).run();
    bad.expect_code(1);
    let v = bad.json();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"][0]["line"], 6);
    assert_eq!(v["errors"][0]["path"], "storage.buckets[0].versoning");
}

#[test]
fn missing_secret_names_the_variable_without_other_secrets() {
    // validate sends nothing: an unset secret is a note (tests/cli/offline.rs); plan refuses.
    let run = Poactl::new(&["validate", "-e", "prod"])
        .env("MONGODB_ATLAS_ORG_ID", "0123456789abcdef01234567")
        .env("POAFIX_DB_PASSWORD", "api-secret-Vq3xT9")
        .run();
    run.expect_code(0);
    assert!(run.stderr.contains("POAFIX_MIGRATIONS_PASSWORD} is not set: set it before plan"), "{}", run.stderr);
    assert!(!run.all().contains("api-secret-Vq3xT9"));
    let run = Poactl::new(&["plan", "-e", "prod"])
        .env("MONGODB_ATLAS_ORG_ID", "0123456789abcdef01234567")
        .env("POAFIX_DB_PASSWORD", "api-secret-Vq3xT9")
        .run();
    run.expect_code(1);
    assert!(run.stderr.contains("POAFIX_MIGRATIONS_PASSWORD is not set"), "{}", run.stderr);
    assert!(run.stderr.contains("environments/prod.yaml:"), "{}", run.stderr);
    assert!(!run.all().contains("api-secret-Vq3xT9"));
}

#[test]
fn layering_overrides_and_merges_named_items() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.yaml"),
        "tags: { team: platform }\nstorage:\n  buckets:\n    - { name: shared-bucket-1, versioning: false }\n    - { name: shared-bucket-2 }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("env.yaml"), "extends: base.yaml\nenvironment: layered\nstorage:\n  buckets:\n    - { name: shared-bucket-1, versioning: true }\n    - { name: own-bucket-3 }\n").unwrap();
    let run = Poactl::new(&["validate", "-e", "env", "--environments-dir", dir.path().to_str().unwrap(), "-o", "json"]).run();
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["environment"], "layered");
    let resources: Vec<&str> = v["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(resources, vec!["storage.buckets.shared-bucket-1", "storage.buckets.shared-bucket-2", "storage.buckets.own-bucket-3"]);

    // An error in the base file points at the base file.
    std::fs::write(dir.path().join("base.yaml"), "storage:\n  buckets:\n    - { name: Bad_Name }\n").unwrap();
    let run = Poactl::new(&["validate", "-e", "env", "--environments-dir", dir.path().to_str().unwrap()]).run();
    run.expect_code(1);
    assert!(run.stderr.contains("base.yaml:3:"), "{}", run.stderr);
}

#[test]
fn missing_environment_file_lists_the_known_ones() {
    let run = Poactl::new(&["validate", "-e", "qa"]).run();
    run.expect_code(1);
    assert!(run.stderr.contains("environments/qa.yaml") && run.stderr.contains("no such file"), "{}", run.stderr);
    assert!(run.stderr.contains("dev, prod, staging") || run.stderr.contains("dev,"), "{}", run.stderr);
    let run = Poactl::new(&["validate"]).run();
    run.expect_code(1);
    assert!(run.stderr.contains("pass -e NAME"), "{}", run.stderr);
}

/// The spec's resource set (what `validate` lists and references are checked against) and the
/// providers' desired resources (what plan and apply work on) are written apart, since the spec
/// layer may not see the providers; this keeps them one set for every shipped environment and
/// every spec of the test corpus that loads.
/// The providers build one desired resource for each resource `spec::declared` lists, under
/// the address it gives (a builder that names its resource itself would break the reference
/// checks and `--target`).
#[test]
fn the_spec_and_the_providers_name_the_same_resources() {
    let vars: std::collections::HashMap<String, String> = SPEC_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let lookup = |k: &str| vars.get(k).cloned();
    let root = crate::support::repo();
    let mut specs: Vec<(std::path::PathBuf, String)> =
        ["dev", "staging", "prod", "local"].iter().map(|e| (root.join("environments"), e.to_string())).collect();
    for dir in ["tests/specs/valid", "tests/specs"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml") {
                specs.push((p.parent().unwrap().to_path_buf(), p.to_string_lossy().to_string()));
            }
        }
    }
    let mut compared = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for (dir, env) in specs {
        let Ok(loaded) = poactl::spec::load(&dir, &env, &lookup) else { continue };
        let from_spec: std::collections::BTreeSet<String> = poactl::spec::addresses(&loaded.spec).iter().map(|a| a.to_string()).collect();
        let from_providers: std::collections::BTreeSet<String> =
            poactl::providers::desired(&loaded).iter().map(|d| d.address.to_string()).collect();
        assert_eq!(from_spec, from_providers, "{env}");
        kinds.extend(poactl::spec::addresses(&loaded.spec).iter().map(|a| a.kind));
        compared += 1;
    }
    assert!(compared >= 4, "{compared} specs compared");
    let missing: Vec<_> = poactl::resource::Kind::ALL.into_iter().filter(|k| !kinds.contains(k)).collect();
    assert!(missing.is_empty(), "no shipped spec declares {missing:?}: the comparison does not cover them");
}
