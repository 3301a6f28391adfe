//! The project settings of issue 31 (items 2 and 4) through the CLI, against the Atlas
//! sandbox: the maintenance window and database auditing are set by apply, compared as Atlas
//! keeps them (the audit filter as JSON, not as text), mended when changed by hand, and put
//! back to Atlas' defaults by destroy.

use serde_json::{Value, json};

use crate::support::{Sandbox, poactl_with as run, spec_file};

const SPEC: &str = "environment: st\natlas:\n  org_id: \"0123456789abcdef01234567\"\n  project: st-project\n  clusters:\n    - { name: main, tier: M10, provider: AWS, region: US_EAST_1 }\n  maintenance_window: { day: sunday, hour_utc: 3, auto_defer: true }\n  auditing:\n    enabled: true\n    filter: { atype: authenticate, param: { db: admin } }\n";

fn last_request(log: &[Value], method: &str, suffix: &str) -> Value {
    log.iter()
        .rev()
        .find(|e| e["method"] == method && e["operation"].as_str().is_some_and(|o| o.ends_with(suffix)))
        .map(|e| e["request"].clone())
        .unwrap_or_else(|| panic!("no {method} …{suffix}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_and_auditing_are_set_compared_as_atlas_keeps_them_and_reset_by_destroy() {
    let sbx = Sandbox::start(0.2);
    let env = sbx.env();
    let (_dir, spec) = spec_file("st", SPEC);
    run(&["apply", "-e", &spec, "--auto-approve", "-q"], &env).await.expect_code(0);
    let group = sbx.group_id("st-project").await;
    let log = sbx.log().await;
    assert_eq!(last_request(&log, "PATCH", "/maintenanceWindow"), json!({"dayOfWeek": 1, "hourOfDay": 3, "autoDeferOnceEnabled": true}));
    let audit = last_request(&log, "PATCH", "/auditLog");
    assert_eq!(audit["enabled"], true);
    let sent: Value = serde_json::from_str(audit["auditFilter"].as_str().expect("a JSON string, as Atlas keeps it")).unwrap();
    assert_eq!(sent, json!({"atype": "authenticate", "param": {"db": "admin"}}));
    let violations = crate::openapi::violations(&log);
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    run(&["plan", "-e", &spec, "--detailed-exitcode"], &env).await.expect_code(0);

    // The same filter with other key order and spacing is the same filter.
    let audit_path = format!("/api/atlas/v2/groups/{group}/auditLog");
    let same = json!({"auditFilter": "{ \"param\" : {\"db\":\"admin\"},\n  \"atype\": \"authenticate\" }"});
    assert_eq!(sbx.api("PATCH", &audit_path, "2023-01-01", Some(same)).await.0, 200);
    run(&["plan", "-e", &spec, "--detailed-exitcode"], &env).await.expect_code(0);

    // Changed by hand: drift, and apply puts the spec back.
    sbx.api("PATCH", &audit_path, "2023-01-01", Some(json!({"auditFilter": "{\"atype\": \"authCheck\"}"}))).await;
    let window_path = format!("/api/atlas/v2/groups/{group}/maintenanceWindow");
    sbx.api("PATCH", &window_path, "2023-01-01", Some(json!({"dayOfWeek": 4, "hourOfDay": 14}))).await;
    let drift = run(&["drift", "-e", &spec], &env).await;
    drift.expect_code(2);
    for want in ["atlas.auditing.st-project", "filter", "atlas.maintenance_window.st-project", "day_of_week", "hour_of_day"] {
        assert!(drift.stdout.contains(want), "{want}: {}", drift.stdout);
    }
    run(&["apply", "-e", &spec, "--auto-approve", "-q"], &env).await.expect_code(0);
    run(&["plan", "-e", &spec, "--detailed-exitcode"], &env).await.expect_code(0);

    // Destroy puts Atlas' defaults back: auditing off, the window reset.
    run(&["destroy", "-e", &spec, "--auto-approve", "--allow-destroy", "-q"], &env).await.expect_code(0);
    let log = sbx.log().await;
    assert_eq!(last_request(&log, "PATCH", "/auditLog"), json!({"enabled": false}));
    assert!(log.iter().any(|e| e["method"] == "DELETE" && e["operation"] == "/api/atlas/v2/groups/{groupId}/maintenanceWindow"));
}

/// Credentials without Project Owner cannot read auditing: the plan names the resource and
/// the role, and plans the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditing_without_project_owner_is_one_located_conflict() {
    let sbx = Sandbox::start(0.2);
    let env = sbx.env();
    let (_dir, spec) = spec_file("st", SPEC);
    sbx.control(
        "config",
        json!({"deny": ["GET /api/atlas/v2/groups/{groupId}/auditLog", "PATCH /api/atlas/v2/groups/{groupId}/auditLog"]}),
    )
    .await;
    run(&["apply", "-e", &spec, "--auto-approve", "-q", "--target", "atlas.project", "--target", "atlas.clusters"], &env)
        .await
        .expect_code(0);
    let plan = run(&["plan", "-e", &spec], &env).await;
    plan.expect_code(1);
    let text = plan.all();
    assert!(text.contains("atlas.auditing.st-project") && text.contains("needs the Project Owner role"), "{text}");
    assert!(text.contains("atlas.maintenance_window.st-project"), "the rest is planned: {text}");
}
