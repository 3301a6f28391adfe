//! Atlas as real Atlas behaves (issue 10): each test drives the real CLI against the sandbox,
//! whose rules cite their sources in `src/sandbox/mod.rs`, and checks every request and answer
//! against MongoDB's OpenAPI spec.

use serde_json::{Value, json};

use crate::openapi;
use crate::support::{Poactl, Run, SPEC_ENV, Sandbox, spec_file};

fn poactl(sbx: &Sandbox, args: &[&str]) -> Run {
    Poactl::new(args).envs(SPEC_ENV).envs_owned(&sbx.env()).run()
}

const ORG: &str = "0123456789abcdef01234567";

fn spec(project: &str, clusters: &str, extra: &str) -> String {
    format!("environment: t\natlas:\n  org_id: {ORG}\n  project: {project}\n  clusters:\n{clusters}{extra}")
}

/// The requests after `from` in the sandbox log, as `METHOD operation`.
fn calls(log: &[Value], from: usize) -> Vec<String> {
    log[from..].iter().map(|e| format!("{} {}", e["method"].as_str().unwrap(), e["operation"].as_str().unwrap())).collect()
}

fn assert_spec_conformance(log: &[Value]) {
    let violations = openapi::violations(log);
    assert!(violations.is_empty(), "{} schema violations:\n{}", violations.len(), violations.join("\n"));
}

/// A new project plans through the org-scoped lookup (byName answers 401 NOT_IN_GROUP for it),
/// gets tag keys Atlas accepts, and the run's token is revoked when the process ends.
#[tokio::test]
async fn a_new_environment_plans_applies_and_leaves_no_token_behind() {
    let sbx = Sandbox::start(0.1);
    let (s, body) = sbx.api("GET", "/api/atlas/v2/groups/byName/fresh-project", "2023-01-01", None).await;
    assert_eq!((s, body["errorCode"].as_str()), (401, Some("NOT_IN_GROUP")), "{body}");
    let (s, body) = sbx
        .api(
            "POST",
            "/api/atlas/v2/groups",
            "2023-01-01",
            Some(json!({"name": "x", "orgId": ORG, "tags": [{"key": "poactl:env", "value": "t"}]})),
        )
        .await;
    assert_eq!(s, 400, "Atlas refuses `:` in tag keys: {body}");

    let start = sbx.log().await.len();
    let (_dir, path) = spec_file("t", &spec("fresh-project", "    - { name: main, tier: M0, region: US_EAST_1 }\n", ""));
    let plan = poactl(&sbx, &["plan", "-e", &path, "--detailed-exitcode"]);
    plan.expect_code(2);
    assert!(plan.stdout.contains("+ atlas.project.fresh-project"), "{}", plan.stdout);
    let before = sbx.log().await.len();
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);
    let log = sbx.log().await;
    assert!(!calls(&log, start).iter().any(|c| c.contains("byName")), "the lookup is org-scoped: {:?}", calls(&log, start));
    let g = sbx.group_id("fresh-project").await;
    let (_, project) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}"), "2023-01-01", None).await;
    let keys: Vec<&str> = project["tags"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys.iter().filter(|k| k.starts_with("poactl-")).count(), 3, "{keys:?}");
    poactl(&sbx, &["plan", "-e", &path, "--detailed-exitcode"]).expect_code(0);
    assert!(log.len() > before);
    // Every token the CLI runs minted was revoked at exit; the test's own is the one left.
    let tokens = sbx.tokens().await;
    assert_eq!(tokens.get("test-client").and_then(|v| v.as_u64()).unwrap_or(0), 0, "tokens left active: {tokens}");
    assert_spec_conformance(&sbx.log().await);
}

/// A paused cluster: a change plans as a conflict (nothing is sent); a resume goes alone; a
/// pause right after a resume is refused by Atlas with a clear message.
#[tokio::test]
async fn paused_clusters_are_never_resumed_to_change_them() {
    let sbx = Sandbox::start(0.1);
    let cluster = |extra: &str| format!("    - {{ name: main, tier: M10, region: US_EAST_1{extra} }}\n");
    let (_dir, path) = spec_file("t", &spec("paused", &cluster(", paused: true"), ""));
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);

    std::fs::write(&path, spec("paused", &cluster(", paused: true, termination_protection: true"), "")).unwrap();
    let before = sbx.log().await.len();
    let plan = poactl(&sbx, &["plan", "-e", &path]);
    plan.expect_code(1);
    assert!(plan.stdout.contains("the cluster is paused") && plan.stdout.contains("paused: false"), "{}", plan.stdout);
    let run = poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]);
    run.expect_code(1);
    let log = sbx.log().await;
    assert!(calls(&log, before).iter().all(|c| c.starts_with("GET")), "nothing is sent to a paused cluster: {:?}", calls(&log, before));

    std::fs::write(&path, spec("paused", &cluster(", paused: false, termination_protection: true"), "")).unwrap();
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);
    let log = sbx.log().await;
    let patches: Vec<Value> = log[before..].iter().filter(|e| e["method"] == "PATCH").map(|e| e["request"].clone()).collect();
    assert_eq!(patches, vec![json!({"paused": false}), json!({"terminationProtectionEnabled": true})]);

    std::fs::write(&path, spec("paused", &cluster(", paused: true, termination_protection: true"), "")).unwrap();
    let run = poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]);
    run.expect_code(1);
    assert!(run.stdout.contains("does not pause a cluster within about 60 minutes of resuming it"), "{}", run.stdout);
    assert_spec_conformance(&sbx.log().await);
}

/// M0 -> Flex is an in-place upgrade (the data stays): no delete, the cluster moves to the Flex
/// API with a new id, and the next plan is clean.
#[tokio::test]
async fn m0_to_flex_upgrades_in_place() {
    let sbx = Sandbox::start(0.1);
    let (_dir, path) = spec_file("t", &spec("upgrade", "    - { name: main, tier: M0, region: US_EAST_1 }\n", ""));
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);
    let g = sbx.group_id("upgrade").await;
    let (_, m0) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/clusters/main"), "2024-08-05", None).await;

    std::fs::write(&path, spec("upgrade", "    - { name: main, tier: FLEX, region: US_EAST_1 }\n", "")).unwrap();
    let plan = poactl(&sbx, &["plan", "-e", &path]);
    plan.expect_code(0);
    assert!(plan.stdout.contains("~ atlas.clusters.main") && !plan.stdout.contains("-/+"), "{}", plan.stdout);
    let before = sbx.log().await.len();
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);
    let log = sbx.log().await;
    let writes: Vec<String> = calls(&log, before).into_iter().filter(|c| !c.starts_with("GET")).collect();
    assert_eq!(writes[0], "POST /api/atlas/v2/groups/{groupId}/clusters/tenantUpgrade", "{writes:?}");
    assert!(!writes.iter().any(|c| c.starts_with("DELETE")), "{writes:?}");
    let (s, flex) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/flexClusters/main"), "2024-11-13", None).await;
    assert_eq!(s, 200, "{flex}");
    assert_ne!(flex["id"], m0["id"], "Atlas gives an upgraded cluster a new id");
    poactl(&sbx, &["plan", "-e", &path, "--detailed-exitcode"]).expect_code(0);
    assert_spec_conformance(&sbx.log().await);
}

/// Turning backup on plans (the schedule is not read while backup is off) and converges in one
/// apply; a retention change sends the live item ids back, so Atlas changes the items in place.
/// A disk that autoscaling grew is not drift.
#[tokio::test]
async fn backup_schedules_follow_the_cluster_and_keep_their_item_ids() {
    let sbx = Sandbox::start(0.1);
    let schedule = |daily: &str| {
        format!(
            ", disk_size_gb: 10, autoscaling: {{ disk: true }}, backup: {{ enabled: true, schedule: [{{ every: hourly, interval: 6, keep: 2d }}, {{ every: daily, keep: {daily} }}] }}"
        )
    };
    let (_dir, path) = spec_file("t", &spec("backups", "    - { name: main, tier: M10, region: US_EAST_1 }\n", ""));
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);

    std::fs::write(&path, spec("backups", &format!("    - {{ name: main, tier: M10, region: US_EAST_1{} }}\n", schedule("7d")), ""))
        .unwrap();
    let plan = poactl(&sbx, &["plan", "-e", &path]);
    plan.expect_code(0);
    assert!(plan.stdout.contains("+ atlas.backup_schedules.main"), "{}", plan.stdout);
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);
    poactl(&sbx, &["plan", "-e", &path, "--detailed-exitcode"]).expect_code(0);
    let g = sbx.group_id("backups").await;
    let items = |s: &Value| -> Vec<(String, String)> {
        s.pointer("/policies/0/policyItems")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["frequencyType"].as_str().unwrap().to_string(), i["id"].as_str().unwrap().to_string()))
            .collect()
    };
    let path_s = format!("/api/atlas/v2/groups/{g}/clusters/main/backup/schedule");
    let (_, first) = sbx.api("GET", &path_s, "2024-08-05", None).await;

    std::fs::write(&path, spec("backups", &format!("    - {{ name: main, tier: M10, region: US_EAST_1{} }}\n", schedule("14d")), ""))
        .unwrap();
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);
    let (_, second) = sbx.api("GET", &path_s, "2024-08-05", None).await;
    assert_eq!(items(&first), items(&second), "the items keep their ids");
    assert_eq!(second.pointer("/policies/0/policyItems/1/retentionValue"), Some(&json!(14)));

    // Disk autoscaling grows the disk past the spec's 10 GB: not drift, and not shrunk back.
    let (s, body) = sbx
        .api(
            "PATCH",
            &format!("/api/atlas/v2/groups/{g}/clusters/main"),
            "2024-10-23",
            Some(json!({"replicationSpecs": [{"zoneName": "Zone 1", "regionConfigs": [{"providerName": "AWS", "regionName": "US_EAST_1", "priority": 7, "electableSpecs": {"instanceSize": "M10", "nodeCount": 3, "diskSizeGB": 40.0}, "autoScaling": {"compute": {"enabled": false}, "diskGB": {"enabled": true}}}]}]})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    poactl(&sbx, &["plan", "-e", &path, "--detailed-exitcode"]).expect_code(0);
    assert_spec_conformance(&sbx.log().await);
}

/// Users are (database, username); `$external` users carry their auth type; a user change is
/// waited out on the cluster status; alerts keep settings poactl does not model; `--prune`
/// never deletes Atlas' defaults or untaggable entries unless named; destroy retries the
/// project delete Atlas refuses while it closes the clusters.
#[tokio::test]
async fn users_alerts_prune_and_destroy_behave_as_on_atlas() {
    let sbx = Sandbox::start(0.1);
    sbx.control("config", json!({"user_delay_secs": 1.0, "close_delay_secs": 2.0})).await;
    let users = "  database_users:\n    - { username: app, password: \"${env:POAFIX_DB_PASSWORD}\", roles: [{ role: readWrite, database: shop }] }\n    - { username: \"CN=app,OU=svc\", auth_database: $external, auth: { x509: CUSTOMER }, roles: [{ role: read, database: shop }] }\n";
    let alerts =
        "  alerts:\n    - { event: OUTSIDE_METRIC_THRESHOLD, metric: CONNECTIONS, above: 400, notify: { email: ops@example.com } }\n";
    let text = spec("people", "    - { name: main, tier: M10, region: US_EAST_1 }\n", &format!("{users}{alerts}"));
    // The cluster first: a user change reaches the clusters that are running.
    let (_dir, path) = spec_file("t", &spec("people", "    - { name: main, tier: M10, region: US_EAST_1 }\n", ""));
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);
    std::fs::write(&path, &text).unwrap();
    let before = sbx.log().await.len();
    let run = poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]);
    run.expect_code(0);
    let log = sbx.log().await;
    let statuses: Vec<&Value> = log[before..]
        .iter()
        .filter(|e| e["operation"] == "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/status")
        .map(|e| &e["response"]["changeStatus"])
        .collect();
    assert!(statuses.contains(&&json!("PENDING")) && statuses.last() == Some(&&json!("APPLIED")), "waited for APPLIED: {statuses:?}");
    let g = sbx.group_id("people").await;
    let (s, x509) =
        sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/databaseUsers/%24external/CN%3Dapp%2COU%3Dsvc"), "2023-01-01", None).await;
    assert_eq!((s, x509["x509Type"].as_str()), (200, Some("CUSTOMER")), "{x509}");
    poactl(&sbx, &["plan", "-e", &path, "--detailed-exitcode"]).expect_code(0);

    // Someone sets a severity and changes the threshold: the apply fixes the threshold only.
    let (_, all) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/alertConfigs"), "2023-01-01", None).await;
    let mut alert = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a.pointer("/metricThreshold/metricName") == Some(&json!("CONNECTIONS")))
        .unwrap()
        .clone();
    let id = alert["id"].as_str().unwrap().to_string();
    for k in ["id", "groupId", "created", "updated", "links"] {
        alert.as_object_mut().unwrap().remove(k);
    }
    alert["severityOverride"] = json!("CRITICAL");
    alert["metricThreshold"]["threshold"] = json!(900.0);
    let (s, body) = sbx.api("PUT", &format!("/api/atlas/v2/groups/{g}/alertConfigs/{id}"), "2023-01-01", Some(alert)).await;
    assert_eq!(s, 200, "{body}");
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve"]).expect_code(0);
    let (_, fixed) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/alertConfigs/{id}"), "2023-01-01", None).await;
    assert_eq!((fixed["metricThreshold"]["threshold"].as_f64(), fixed["severityOverride"].as_str()), (Some(400.0), Some("CRITICAL")));

    // A hand-made access-list entry and Atlas' default alerts survive --prune; --delete names one.
    let (s, _) = sbx
        .api(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/accessList"),
            "2023-01-01",
            Some(json!([{"cidrBlock": "203.0.113.0/24", "comment": "vpn"}])),
        )
        .await;
    assert_eq!(s, 201);
    let (_, defaults) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/alertConfigs"), "2023-01-01", None).await;
    let alert_count = defaults["totalCount"].as_u64().unwrap();
    let plan = poactl(&sbx, &["plan", "-e", &path, "--prune"]);
    plan.expect_code(0);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    poactl(&sbx, &["apply", "-e", &path, "--auto-approve", "--prune"]).expect_code(0);
    let (_, after) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/alertConfigs"), "2023-01-01", None).await;
    assert_eq!(after["totalCount"].as_u64().unwrap(), alert_count, "--prune deletes no alert");
    let run = poactl(&sbx, &["apply", "-e", &path, "--auto-approve", "--prune", "--delete", "atlas.access_list.203.0.113.0/24"]);
    run.expect_code(0);
    assert!(run.stdout.contains("- atlas.access_list.203.0.113.0/24"), "{}", run.stdout);
    let (s, _) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/accessList/203.0.113.0%2F24"), "2023-01-01", None).await;
    assert_eq!(s, 404);
    let run = poactl(&sbx, &["plan", "-e", &path, "--delete", "atlas.access_list.198.51.100.0/24"]);
    run.expect_code(1);
    assert!(run.stdout.contains("names no unmanaged live resource"), "{}", run.stdout);
    // A name that is not an address is refused before anything is read.
    let before = sbx.log().await.len();
    let run = poactl(&sbx, &["apply", "-e", &path, "--auto-approve", "--delete", "203.0.113.0/24"]);
    run.expect_code(1);
    assert!(run.stderr.contains("--delete 203.0.113.0/24: not a resource address"), "{}", run.stderr);
    assert_eq!(sbx.log().await.len(), before, "no request for a malformed --delete");

    // Destroy: Atlas refuses to close the project for a while after its last cluster is gone.
    let before = sbx.log().await.len();
    let run = poactl(&sbx, &["destroy", "-e", &path, "--allow-destroy", "--auto-approve"]);
    run.expect_code(0);
    let log = sbx.log().await;
    let refused = log[before..]
        .iter()
        .filter(|e| e["method"] == "DELETE" && e["operation"] == "/api/atlas/v2/groups/{groupId}" && e["status"] == 409)
        .count();
    assert!(refused >= 1, "the project delete was refused at least once, then retried");
    let (s, _) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}"), "2023-01-01", None).await;
    assert_eq!(s, 404);
    assert_spec_conformance(&sbx.log().await);
}
