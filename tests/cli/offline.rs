//! `cost`, `validate` and `graph` need no secrets (issue 35, item 5): a cost job in CI runs
//! without the org id or any password. An unset `${env:...}` is a note in `validate` ("set it
//! before plan"); `plan` still refuses it, naming the variable and where it is.

use crate::support::Poactl;

#[test]
fn cost_validate_and_graph_run_without_secrets_and_plan_refuses() {
    let cost = Poactl::new(&["cost", "-e", "prod", "-o", "json"]).run();
    cost.expect_code(0);
    assert_eq!(cost.json()["total_monthly_usd"], serde_json::json!(84.5), "the same estimate as with the secrets");

    let validate = Poactl::new(&["validate", "-e", "prod"]).run();
    validate.expect_code(0);
    for var in ["MONGODB_ATLAS_ORG_ID", "POAFIX_DB_PASSWORD", "POAFIX_MIGRATIONS_PASSWORD", "POAFIX_ORIGIN_SECRET"] {
        assert!(validate.stderr.contains(&format!("${{env:{var}}} is not set: set it before plan")), "{var}: {}", validate.stderr);
    }
    assert!(validate.stderr.contains("environments/prod.yaml:") && validate.stderr.contains("atlas.org_id"), "{}", validate.stderr);
    let json = Poactl::new(&["validate", "-e", "prod", "-o", "json"]).run();
    json.expect_code(0);
    assert_eq!(json.json()["notes"].as_array().map(Vec::len), Some(4), "{}", json.stdout);

    Poactl::new(&["graph", "-e", "prod"]).run().expect_code(0);

    // A problem in another field is still an error, secrets or not.
    let (_dir, path) = crate::support::spec_file(
        "x",
        "environment: x\natlas:\n  org_id: ${env:SOME_ORG}\n  project: p\n  clusters:\n    - { name: main, tier: M7, region: US_EAST_1 }\n",
    );
    let bad = Poactl::new(&["validate", "-e", &path]).run();
    bad.expect_code(1);
    assert!(bad.stderr.contains("unknown cluster tier `M7`") && !bad.stderr.contains("SOME_ORG is not set"), "{}", bad.stderr);

    // plan sends the values: it refuses, at the field.
    let plan = Poactl::new(&["plan", "-e", "prod"]).run();
    plan.expect_code(1);
    assert!(plan.stderr.contains("environment variable MONGODB_ATLAS_ORG_ID is not set"), "{}", plan.stderr);
}
