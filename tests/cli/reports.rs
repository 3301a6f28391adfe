//! `poactl cost` and the Markdown reports: known answers, budget exit codes, and snapshots
//! of the rendered Markdown (`SNAPSHOTS=overwrite make test` refreshes them; review the diff).

use poactl::plan::{Action, Conflict, FieldChange, Plan, PlanOptions, Reason, ResourceChange, Unhealthy, Unmanaged};
use poactl::resource::{Address, Kind};
use serde_json::json;

use crate::support::{Poactl, SPEC_ENV, repo, spec_file};

/// Compares with `tests/snapshots/NAME`; `SNAPSHOTS=overwrite` writes it instead.
fn assert_snapshot(name: &str, actual: &str) {
    let path = repo().join("tests/snapshots").join(name);
    if std::env::var("SNAPSHOTS").as_deref() == Ok("overwrite") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no snapshot {}: run with SNAPSHOTS=overwrite and review it", path.display()));
    assert_eq!(actual, expected, "snapshot {name} differs (SNAPSHOTS=overwrite refreshes it)");
}

fn cost(args: &[&str]) -> crate::support::Run {
    let mut all = vec!["cost"];
    all.extend_from_slice(args);
    Poactl::new(&all).envs(SPEC_ENV).run()
}

#[test]
fn cost_known_answers_budgets_and_scenarios() {
    let json = cost(&["-e", "prod", "-o", "json"]);
    json.expect_code(0);
    let v = json.json();
    // M10 58.40, S3 2.95, PrivateLink 2 AZ x 730 h x $0.01 + 100 GB x $0.01 = 15.60, the API's
    // uptime check 0.75 + 2 optional features (HTTPS, string matching) x $2.00 = 4.75, the
    // API's log group (10 GB, 5 of them free) x $0.50 + 30 days of it kept x $0.03 = 2.80.
    assert_eq!(v["total_monthly_usd"], json!(84.5));
    assert_eq!(v["budget_usd"], json!(150.0));
    let m10 = v["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "atlas.clusters.main").unwrap();
    assert_eq!(m10["monthly_usd"], json!(58.4));
    assert_eq!(m10["source"], "https://www.mongodb.com/pricing");

    // Over budget: exit 2; a scenario over budget too.
    let over = cost(&["-e", "prod", "--budget", "50"]);
    over.expect_code(2);
    assert!(over.stderr.contains("over budget"), "{}", over.stderr);
    cost(&["-e", "prod", "--scenario", "growth"]).expect_code(2);
    cost(&["-e", "prod", "--scenario", "startup"]).expect_code(0);
    let s = cost(&["-e", "prod", "--scenario", "growth", "--budget", "10000", "-o", "json"]).json();
    assert_eq!(s["scenarios"][0]["name"], "growth");
    assert_eq!(s["scenarios"][0]["total_monthly_usd"], json!(336.6));
    let bad = cost(&["-e", "prod", "--scenario", "viral"]);
    bad.expect_code(1);
    assert!(bad.stderr.contains("no scenario `viral`") && bad.stderr.contains("startup, growth, scale"), "{}", bad.stderr);

    // A catalog of one's own; a broken one says where.
    let (dir, _) = spec_file("unused", "environment: x\n");
    let catalog = dir.path().join("catalog.yaml");
    let builtin = std::fs::read_to_string(repo().join("src/cost/catalog.yaml")).unwrap();
    std::fs::write(&catalog, builtin.replace("{ usd: 0.08, per: hour", "{ usd: 0.10, per: hour")).unwrap();
    let v = cost(&["-e", "prod", "-o", "json", "--catalog", catalog.to_str().unwrap()]).json();
    assert_eq!(v["total_monthly_usd"], json!(99.1));
    std::fs::write(&catalog, "currency: USD\nprices: [\n").unwrap();
    let broken = cost(&["-e", "prod", "--catalog", catalog.to_str().unwrap()]);
    broken.expect_code(1);
    assert!(broken.stderr.contains("catalog.yaml:") && broken.stderr.contains("invalid price catalog"), "{}", broken.stderr);

    // Not in the catalog: said, not guessed.
    let (_d, spec) = spec_file(
        "eu",
        "environment: eu\natlas:\n  org_id: 0123456789abcdef01234567\n  project: p\n  clusters:\n    - { name: main, tier: M10, region: EU_WEST_1 }\n",
    );
    let eu = cost(&["-e", &spec]);
    eu.expect_code(0);
    assert!(eu.stdout.contains("n/a") && eu.stdout.contains("Not in catalog"), "{}", eu.stdout);
}

#[test]
fn cost_markdown_snapshot() {
    let run = cost(&["-e", "prod", "-o", "markdown", "--scenario", "all", "--budget", "10000"]);
    run.expect_code(0);
    assert_snapshot("cost-prod.md", &run.stdout);
}

fn sample_plan() -> Plan {
    let change = |path: &str, before: serde_json::Value, after: serde_json::Value, replace: bool| FieldChange {
        path: path.into(),
        before: Some(before),
        after: Some(after),
        forces_replace: replace,
        sensitive: false,
        unknown: false,
    };
    Plan {
        format_version: poactl::plan::FORMAT_VERSION.into(),
        poactl_version: "test".into(),
        environment: "prod".into(),
        options: PlanOptions::default(),
        resources: vec![
            ResourceChange {
                address: Address::new(Kind::AtlasCluster, "main"),
                action: Action::Update,
                reason: Reason::Drifted,
                id: Some("c1".into()),
                changes: vec![change("tier", json!("M10"), json!("M30"), false)],
                depends_on: vec![],
                notes: vec![],
            },
            ResourceChange {
                address: Address::new(Kind::Bucket, "poafix-prod-uploads"),
                action: Action::Update,
                reason: Reason::Drifted,
                id: None,
                changes: vec![change("versioning", json!(false), json!(true), false)],
                depends_on: vec![],
                notes: vec![],
            },
            ResourceChange {
                address: Address::new(Kind::Alarm, "cdn-5xx"),
                action: Action::Create,
                reason: Reason::Missing,
                id: None,
                changes: vec![FieldChange {
                    path: "dimensions.DistributionId".into(),
                    before: None,
                    after: Some(json!("${cdn.assets.id}")),
                    forces_replace: false,
                    sensitive: false,
                    unknown: true,
                }],
                depends_on: vec![],
                notes: vec![],
            },
            ResourceChange {
                address: Address::new(Kind::Index, "users.status_1"),
                action: Action::Replace,
                reason: Reason::ReplaceRequired,
                id: None,
                changes: vec![change("sparse", json!(true), json!(false), true)],
                depends_on: vec![],
                notes: vec![],
            },
            ResourceChange {
                address: Address::new(Kind::AtlasBackupSchedule, "main"),
                action: Action::NoOp,
                reason: Reason::InSync,
                id: Some("main".into()),
                changes: vec![],
                depends_on: vec![],
                notes: vec![],
            },
            ResourceChange {
                address: Address::new(Kind::AtlasUser, "api"),
                action: Action::NoOp,
                reason: Reason::InSync,
                id: None,
                changes: vec![],
                depends_on: vec![],
                notes: vec![],
            },
        ],
        unmanaged: vec![Unmanaged {
            address: Address::new(Kind::AtlasAlert, "NO_PRIMARY"),
            id: "a1".into(),
            description: "alert NO_PRIMARY".into(),
            owned: false,
        }],
        conflicts: vec![Conflict { address: Address::new(Kind::Bucket, "legacy"), message: "it exists but poactl does not own it".into() }],
        unhealthy: vec![Unhealthy {
            address: Address::new(Kind::AtlasBackupSchedule, "main"),
            message: "the latest completed snapshot is 30.0 h old; the schedule takes one every 6 h".into(),
        }],
        unused: vec![],
        spec_fingerprint: "s".into(),
        state_fingerprint: "t".into(),
        cost: Some(poactl::plan::CostDelta { before_usd: 58.4, after_usd: 394.2, delta_usd: 335.8 }),
    }
}

#[test]
fn plan_and_drift_markdown_snapshots() {
    let plan = sample_plan();
    assert_snapshot("plan.md", &poactl::view::plan_markdown(&plan).unwrap());
    assert_snapshot("drift.md", &poactl::view::drift_markdown(&plan, true).unwrap());
    let clean = Plan { resources: vec![], conflicts: vec![], unmanaged: vec![], unhealthy: vec![], cost: None, ..sample_plan() };
    assert_snapshot("drift-clean.md", &poactl::view::drift_markdown(&clean, false).unwrap());
}
