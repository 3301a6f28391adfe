//! Atlas end to end: the real CLI against `poactl sandbox`, every request and response checked
//! against MongoDB's OpenAPI spec.

use serde_json::{Value, json};

use crate::openapi;
use crate::support::{Poactl, Run, SPEC_ENV, Sandbox, spec_file};

fn poactl(sbx: &Sandbox, args: &[&str]) -> Run {
    Poactl::new(args).envs(SPEC_ENV).envs_owned(&sbx.env()).run()
}

fn mutating(log: &[Value]) -> usize {
    log.iter().filter(|e| e["method"] != "GET").count()
}

fn assert_no_secrets(run: &Run) {
    for (_, secret) in SPEC_ENV.iter().skip(1) {
        assert!(!run.all().contains(secret), "a secret was printed:\n{}", run.all());
    }
}

#[tokio::test]
async fn dev_and_prod_apply_converge_and_detect_drift() {
    let sbx = Sandbox::start(0.3);

    // dev: an M0 cluster, two users, an access-list entry.
    let run = poactl(&sbx, &["apply", "-e", "dev", "--target", "atlas", "--auto-approve"]);
    run.expect_code(0);
    assert_no_secrets(&run);
    let g = sbx.group_id("poafix-dev").await;
    let (_, cluster) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/clusters/main"), "2024-08-05", None).await;
    assert_eq!(cluster["stateName"], "IDLE");
    assert_eq!(cluster.pointer("/replicationSpecs/0/regionConfigs/0/providerName"), Some(&json!("TENANT")));
    assert_eq!(cluster.pointer("/replicationSpecs/0/regionConfigs/0/backingProviderName"), Some(&json!("AWS")));
    let tags: Vec<String> = cluster["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}={}", t["key"].as_str().unwrap(), t["value"].as_str().unwrap()))
        .collect();
    for want in ["poactl-managed=true", "poactl-env=dev", "poactl-id=atlas.clusters.main", "app=poafix", "stage=dev"] {
        assert!(tags.contains(&want.to_string()), "{want} missing in {tags:?}");
    }
    let (_, users) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/databaseUsers"), "2023-01-01", None).await;
    let mut names: Vec<&str> = users["results"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec!["poafix-api", "poafix-migrations"]);

    let before = mutating(&sbx.log().await);
    let run = poactl(&sbx, &["apply", "-e", "dev", "--target", "atlas", "--auto-approve"]);
    run.expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    poactl(&sbx, &["plan", "-e", "dev", "--target", "atlas", "--detailed-exitcode"]).expect_code(0);
    assert_eq!(mutating(&sbx.log().await), before, "a second apply makes no mutating call");

    // prod: M10 with backup, PIT, autoscaling, termination protection, alerts, schedule,
    // VPC-only through a PrivateLink endpoint in a VPC made in moto.
    let moto = crate::support::Moto::start();
    let (_prod_dir, prod) = crate::support::prod_in(&moto.url).await;
    let aws = crate::support::aws_env(&moto.url);
    let prod_run = |args: &[&str]| {
        let args: Vec<&str> = args.iter().map(|a| if *a == "prod" { prod.as_str() } else { a }).collect();
        Poactl::new(&args).envs(SPEC_ENV).envs_owned(&sbx.env()).envs_owned(&aws).run()
    };
    let run = prod_run(&["apply", "-e", "prod", "--target", "atlas", "--auto-approve"]);
    run.expect_code(0);
    assert_no_secrets(&run);
    let g = sbx.group_id("poafix-prod").await;
    let (_, c) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/clusters/main"), "2024-08-05", None).await;
    let rc = c.pointer("/replicationSpecs/0/regionConfigs/0").unwrap();
    assert_eq!(rc["electableSpecs"]["instanceSize"], "M10");
    assert_eq!(
        rc["autoScaling"]["compute"],
        json!({"enabled": true, "scaleDownEnabled": true, "minInstanceSize": "M10", "maxInstanceSize": "M30"})
    );
    assert_eq!(rc["autoScaling"]["diskGB"]["enabled"], true);
    assert_eq!(
        (c["backupEnabled"].clone(), c["pitEnabled"].clone(), c["terminationProtectionEnabled"].clone()),
        (json!(true), json!(true), json!(true))
    );
    assert_eq!(c["mongoDBMajorVersion"], "8.0");
    let (_, schedule) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/clusters/main/backup/schedule"), "2024-08-05", None).await;
    assert_eq!(schedule["restoreWindowDays"], 7);
    let items: Vec<(String, i64)> = schedule
        .pointer("/policies/0/policyItems")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["frequencyType"].as_str().unwrap().to_string(), i["retentionValue"].as_i64().unwrap()))
        .collect();
    assert_eq!(items, vec![("hourly".into(), 2), ("daily".into(), 7), ("weekly".into(), 4), ("monthly".into(), 12)]);
    let (_, alerts) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/alertConfigs"), "2023-01-01", None).await;
    let alerts = alerts["results"].as_array().unwrap().clone();
    let connections =
        alerts.iter().find(|a| a.pointer("/metricThreshold/metricName") == Some(&json!("CONNECTIONS"))).expect("CONNECTIONS alert");
    assert_eq!(connections["metricThreshold"]["threshold"], json!(400.0));
    assert_eq!(connections["notifications"][0]["emailAddress"], "ops@poafix.example");
    for amount in [100, 150] {
        assert!(
            alerts.iter().any(|a| a["eventTypeName"] == "PENDING_INVOICE_OVER_THRESHOLD" && a["threshold"]["threshold"] == json!(amount)),
            "billing alert {amount}"
        );
    }
    let (_, access) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/accessList"), "2023-01-01", None).await;
    assert_eq!(access["results"], json!([]), "VPC-only: no public entry");
    let (_, services) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/privateEndpoint/AWS/endpointService"), "2023-01-01", None).await;
    assert_eq!(services[0]["interfaceEndpoints"].as_array().map(Vec::len), Some(1), "{services}");
    let (_, c) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/clusters/main"), "2024-08-05", None).await;
    assert!(c.pointer("/connectionStrings/privateEndpoint/0/srvConnectionString").is_some(), "{c}");

    let before = mutating(&sbx.log().await);
    let run = prod_run(&["apply", "-e", "prod", "--target", "atlas", "--auto-approve"]);
    run.expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    assert!(run.stdout.contains("atlas.alerts: "), "Atlas' default alerts are listed as unmanaged: {}", run.stdout);
    prod_run(&["drift", "-e", "prod", "--target", "atlas"]).expect_code(0);
    assert_eq!(mutating(&sbx.log().await), before, "a second apply makes no mutating call");

    // Out-of-band changes through the Atlas API.
    let (s, _) =
        sbx.api("PATCH", &format!("/api/atlas/v2/groups/{g}/clusters/main"), "2024-10-23", Some(json!({"pitEnabled": false}))).await;
    assert_eq!(s, 200);
    let mut changed = connections.clone();
    changed["metricThreshold"]["threshold"] = json!(900.0);
    for k in ["id", "groupId", "created", "updated", "links"] {
        changed.as_object_mut().unwrap().remove(k);
    }
    let (s, body) = sbx
        .api("PUT", &format!("/api/atlas/v2/groups/{g}/alertConfigs/{}", connections["id"].as_str().unwrap()), "2023-01-01", Some(changed))
        .await;
    assert_eq!(s, 200, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let drift = prod_run(&["drift", "-e", "prod", "--target", "atlas", "-o", "json"]);
    drift.expect_code(2);
    let report = drift.json();
    let fields: Vec<(String, String)> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |f| (r["address"].as_str().unwrap().to_string(), f["path"].as_str().unwrap().to_string()))
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            ("atlas.clusters.main".to_string(), "point_in_time".to_string()),
            ("atlas.alerts.OUTSIDE_METRIC_THRESHOLD.CONNECTIONS.above".to_string(), "metric.threshold".to_string())
        ]
    );
    let text = prod_run(&["drift", "-e", "prod", "--target", "atlas"]);
    text.expect_code(2);
    assert!(text.stdout.contains("point_in_time: live false, spec true"), "{}", text.stdout);

    prod_run(&["apply", "-e", "prod", "--target", "atlas", "--auto-approve"]).expect_code(0);
    prod_run(&["drift", "-e", "prod", "--target", "atlas"]).expect_code(0);
    let (_, c) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/clusters/main"), "2024-08-05", None).await;
    assert_eq!(c["pitEnabled"], true);

    // Everything poactl sent, and everything the sandbox answered, follows MongoDB's spec.
    let log = sbx.log().await;
    assert!(log.len() > 50, "the log holds {} calls", log.len());
    let violations = openapi::violations(&log);
    assert!(violations.is_empty(), "{} schema violations:\n{}", violations.len(), violations.join("\n"));
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_stuck_clusters_time_out() {
    let sbx = Sandbox::start(0.2);
    let (_dir, spec) = spec_file(
        "t",
        "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: retry-test\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1 }\n",
    );
    sbx.control("faults", json!({"status": 429, "count": 2, "retry_after": 1})).await;
    let started = std::time::Instant::now();
    poactl(&sbx, &["apply", "-e", &spec, "--auto-approve"]).expect_code(0);
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "two Retry-After: 1 waits");

    // A cluster stuck in UPDATING past the timeout: a clear error and exit 1.
    let g = sbx.group_id("retry-test").await;
    sbx.control(&format!("clusters/{g}/main/stuck"), json!({"state": "UPDATING"})).await;
    std::fs::write(&spec, "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: retry-test\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1, termination_protection: true }\n").unwrap();
    let run = poactl(&sbx, &["apply", "-e", &spec, "--auto-approve", "--timeout", "2"]);
    run.expect_code(1);
    assert!(run.stdout.contains("did not become ready within 2s (last state: UPDATING)"), "{}", run.stdout);

    // Atlas changes a cluster only when it is IDLE: the change waited, and never went out.
    let patches = sbx.log().await.iter().filter(|e| e["method"] == "PATCH").count();
    assert_eq!(patches, 0, "no PATCH while the cluster is UPDATING");

    // Deleting a protected cluster fails clearly.
    sbx.control(&format!("clusters/{g}/main/stuck"), json!({})).await;
    poactl(&sbx, &["apply", "-e", &spec, "--auto-approve"]).expect_code(0);
    std::fs::write(&spec, "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: retry-test\n").unwrap();
    let run = poactl(&sbx, &["apply", "-e", &spec, "--auto-approve", "--prune"]);
    run.expect_code(1);
    assert!(run.stderr.contains("refusing to delete") && run.stderr.contains("--allow-destroy"), "{}", run.stderr);
    let run = poactl(&sbx, &["apply", "-e", &spec, "--auto-approve", "--prune", "--allow-destroy"]);
    run.expect_code(1);
    assert!(run.stdout.contains("termination protection on"), "{}", run.stdout);
}

#[test]
fn missing_credentials_are_a_clear_error() {
    let run = Poactl::new(&["plan", "-e", "dev", "--target", "atlas"]).envs(SPEC_ENV).run();
    run.expect_code(1);
    assert!(run.stderr.contains("no Atlas credentials") && run.stderr.contains("MONGODB_ATLAS_CLIENT_ID"), "{}", run.stderr);
}

#[test]
fn api_keys_authenticate_with_http_digest() {
    let sbx = Sandbox::start(0.1);
    let (_dir, spec) = spec_file("t", "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: digest-test\n");
    let run = Poactl::new(&["apply", "-e", &spec, "--auto-approve"])
        .env("MONGODB_ATLAS_BASE_URL", &sbx.url)
        .env("MONGODB_ATLAS_PUBLIC_KEY", "public-key")
        .env("MONGODB_ATLAS_PRIVATE_KEY", "private-key-value")
        .run();
    run.expect_code(0);
    assert!(run.stdout.contains("+ atlas.project.digest-test: created"), "{}", run.stdout);
    assert!(!run.all().contains("private-key-value"));
}

#[test]
fn outputs_render_the_app_env_and_secrets_only_on_request() {
    let sbx = Sandbox::start(0.1);
    let yaml = "environment: out\natlas:\n  org_id: 0123456789abcdef01234567\n  project: output-test\n  clusters:\n    - { name: main, tier: M0, region: US_EAST_1 }\n  database_users:\n    - { username: app, password: \"${env:POAFIX_DB_PASSWORD}\", roles: [{ role: readWrite, database: shop }] }\ndatabase:\n  name: shop\n";
    let (dir, spec) = spec_file("out", yaml);
    poactl(&sbx, &["apply", "-e", &spec, "--auto-approve"]).expect_code(0);
    let run = poactl(&sbx, &["output", "-e", &spec]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("MONGODB_ATLAS_URI=mongodb+srv://main.") && run.stdout.contains("/shop?retryWrites=true"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("MONGODB_USER=app") && run.stdout.contains("MONGODB_DB_NAME=shop"), "{}", run.stdout);
    assert_no_secrets(&run);
    let run = poactl(&sbx, &["output", "-e", &spec, "--show-secrets"]);
    run.expect_code(0);
    assert!(run.stdout.contains("mongodb+srv://app:api-secret-Vq3xT9@main."), "{}", run.stdout);

    // A template of one's own, and an environment without users.
    let template = dir.path().join("t.tera");
    std::fs::write(&template, "{% for name, c in clusters %}{{ name }}={{ c.state }}{% endfor %} {{ environment }}\n").unwrap();
    let run = poactl(&sbx, &["output", "-e", &spec, "--template", template.to_str().unwrap()]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), "main=IDLE out");
    let (_d2, bare) = spec_file("bare", "environment: bare\natlas:\n  org_id: 0123456789abcdef01234567\n  project: output-test\n");
    let run = poactl(&sbx, &["output", "-e", &bare]);
    run.expect_code(0);
    assert!(run.stdout.contains("AWS_REGION=") && !run.stdout.contains("MONGODB_USER"), "{}", run.stdout);
}

#[tokio::test]
async fn saved_plans_apply_exactly_or_are_refused_when_stale() {
    let sbx = Sandbox::start(0.1);
    let (dir, spec) = spec_file(
        "t",
        "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: saved-plan\n  access_list:\n    - { cidr: 10.0.0.0/16, comment: vpc }\n",
    );
    let plan_file = dir.path().join("plan.json");
    let plan_path = plan_file.to_str().unwrap();
    poactl(&sbx, &["plan", "-e", &spec, "--out", plan_path]).expect_code(0);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["format_version"], "1.0");
    let run = poactl(&sbx, &["apply", "-e", &spec, "--plan", plan_path]);
    run.expect_code(0);
    assert!(run.stdout.contains("Apply complete! Resources: 2 added"), "{}", run.stdout);

    // A plan made, then the live state changes under it: refused, nothing applied.
    std::fs::write(&spec, "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: saved-plan\n  access_list:\n    - { cidr: 10.0.0.0/16, comment: app vpc }\n").unwrap();
    poactl(&sbx, &["plan", "-e", &spec, "--out", plan_path]).expect_code(0);
    let g = sbx.group_id("saved-plan").await;
    let (s, _) = sbx
        .api(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/accessList"),
            "2023-01-01",
            Some(json!([{"cidrBlock": "10.0.0.0/16", "comment": "changed by hand"}])),
        )
        .await;
    assert_eq!(s, 201);
    let before = mutating(&sbx.log().await);
    let run = poactl(&sbx, &["apply", "-e", &spec, "--plan", plan_path]);
    run.expect_code(1);
    assert!(run.stderr.contains("the saved plan is stale: the live state changed"), "{}", run.stderr);
    // A changed spec: refused too.
    poactl(&sbx, &["plan", "-e", &spec, "--out", plan_path]).expect_code(0);
    std::fs::write(&spec, "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: saved-plan\n  access_list:\n    - { cidr: 10.0.0.0/16, comment: other }\n").unwrap();
    let run = poactl(&sbx, &["apply", "-e", &spec, "--plan", plan_path]);
    run.expect_code(1);
    assert!(run.stderr.contains("the saved plan is stale: the spec changed"), "{}", run.stderr);
    assert_eq!(mutating(&sbx.log().await), before, "a refused plan changes nothing");
}

#[tokio::test]
async fn tier_moves_use_the_upgrade_endpoints_and_pauses_go_alone() {
    let sbx = Sandbox::start(0.2);
    let spec_with = |main: &str, side: &str| {
        format!(
            "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: tiers\n  clusters:\n    - {{ name: main, region: US_EAST_1, {main} }}\n    - {{ name: side, region: US_EAST_1, {side} }}\n"
        )
    };
    let (_dir, spec) = spec_file("t", &spec_with("tier: M0", "tier: FLEX"));
    poactl(&sbx, &["apply", "-e", &spec, "--auto-approve"]).expect_code(0);
    let g = sbx.group_id("tiers").await;

    // M0 -> M10 through clusters/tenantUpgrade, Flex -> M10 through flexClusters:tenantUpgrade.
    std::fs::write(&spec, spec_with("tier: M10", "tier: M10")).unwrap();
    let plan = poactl(&sbx, &["plan", "-e", &spec]);
    plan.expect_code(0);
    assert!(plan.stdout.contains("~ tier: \"M0\" -> \"M10\"") && plan.stdout.contains("~ tier: \"FLEX\" -> \"M10\""), "{}", plan.stdout);
    assert!(plan.stdout.contains("Monthly cost: $8.03 -> $116.80 (+108.77 USD)"), "{}", plan.stdout);
    poactl(&sbx, &["apply", "-e", &spec, "--auto-approve"]).expect_code(0);
    let log = sbx.log().await;
    let ops: Vec<String> = log
        .iter()
        .filter(|e| e["method"] != "GET")
        .map(|e| format!("{} {}", e["method"].as_str().unwrap(), e["operation"].as_str().unwrap()))
        .collect();
    assert!(ops.contains(&"POST /api/atlas/v2/groups/{groupId}/clusters/tenantUpgrade".to_string()), "{ops:?}");
    assert!(ops.contains(&"POST /api/atlas/v2/groups/{groupId}/flexClusters:tenantUpgrade".to_string()), "{ops:?}");
    for name in ["main", "side"] {
        let (_, c) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/clusters/{name}"), "2024-08-05", None).await;
        assert_eq!(c.pointer("/replicationSpecs/0/regionConfigs/0/electableSpecs/instanceSize"), Some(&json!("M10")), "{name}: {c}");
        assert_eq!(c.pointer("/replicationSpecs/0/regionConfigs/0/providerName"), Some(&json!("AWS")));
    }
    poactl(&sbx, &["plan", "-e", &spec, "--detailed-exitcode"]).expect_code(0);

    // Pausing goes alone, after other changes; resuming goes alone, before them.
    std::fs::write(&spec, spec_with("tier: M10, paused: true, backup: { enabled: true }", "tier: M10")).unwrap();
    let before = sbx.log().await.len();
    poactl(&sbx, &["apply", "-e", &spec, "--auto-approve"]).expect_code(0);
    let patches = |from: usize, log: &[Value]| -> Vec<Value> {
        log[from..]
            .iter()
            .filter(|e| e["method"] == "PATCH" && e["path"].as_str().unwrap().ends_with("/clusters/main"))
            .map(|e| e["request"].clone())
            .collect()
    };
    let log = sbx.log().await;
    assert_eq!(patches(before, &log), vec![json!({"backupEnabled": true}), json!({"paused": true})]);
    std::fs::write(&spec, spec_with("tier: M10, paused: false, backup: { enabled: true, point_in_time: true }", "tier: M10")).unwrap();
    let before = log.len();
    poactl(&sbx, &["apply", "-e", &spec, "--auto-approve"]).expect_code(0);
    let log = sbx.log().await;
    assert_eq!(patches(before, &log), vec![json!({"paused": false}), json!({"pitEnabled": true})]);

    // Down to a shared tier is a replacement, which needs --allow-destroy.
    std::fs::write(&spec, spec_with("tier: FLEX", "tier: M10")).unwrap();
    let plan = poactl(&sbx, &["plan", "-e", &spec]);
    assert!(plan.stdout.contains("-/+ atlas.clusters.main") && plan.stdout.contains("forces replacement: tier"), "{}", plan.stdout);
    let run = poactl(&sbx, &["apply", "-e", &spec, "--auto-approve"]);
    run.expect_code(1);
    assert!(run.stderr.contains("--allow-destroy"), "{}", run.stderr);

    let violations = openapi::violations(&sbx.log().await);
    assert!(violations.is_empty(), "{} schema violations:\n{}", violations.len(), violations.join("\n"));
}

/// The sandbox on its own, called as any Atlas client would: every answer follows the spec,
/// with Atlas' status codes, error codes and version negotiation.
#[tokio::test]
async fn the_sandbox_answers_like_atlas() {
    let sbx = Sandbox::start(0.1);
    let (s, g) = sbx
        .api("POST", "/api/atlas/v2/groups", "2023-01-01", Some(json!({"name": "conformance", "orgId": "0123456789abcdef01234567"})))
        .await;
    assert_eq!(s, 201, "{g}");
    let g = g["id"].as_str().unwrap().to_string();
    let base = format!("/api/atlas/v2/groups/{g}");
    let calls: Vec<(&str, String, &str, Option<Value>, u16)> = vec![
        ("GET", "/api/atlas/v2/groups".into(), "2023-01-01", None, 200),
        ("GET", base.clone(), "2023-01-01", None, 200),
        ("PATCH", base.clone(), "2023-01-01", Some(json!({"tags": [{"key": "a", "value": "b"}]})), 200),
        (
            "POST",
            format!("{base}/clusters"),
            "2024-10-23",
            Some(
                json!({"name": "c1", "clusterType": "REPLICASET", "replicationSpecs": [{"zoneName": "Zone 1", "regionConfigs": [{"providerName": "GCP", "regionName": "CENTRAL_US", "priority": 7, "electableSpecs": {"instanceSize": "M10", "nodeCount": 3}}]}]}),
            ),
            201,
        ),
        (
            "POST",
            format!("{base}/clusters"),
            "2024-10-23",
            Some(
                json!({"name": "c1", "clusterType": "REPLICASET", "replicationSpecs": [{"regionConfigs": [{"providerName": "AWS", "regionName": "US_EAST_1", "priority": 7, "electableSpecs": {"instanceSize": "M10"}}]}]}),
            ),
            400,
        ),
        ("GET", format!("{base}/clusters/nope"), "2024-08-05", None, 404),
        ("GET", format!("{base}/clusters/c1"), "2024-08-05", None, 200),
        ("GET", format!("{base}/clusters/c1"), "2023-01-01", None, 406),
        ("GET", format!("{base}/clusters/c1"), "2099-01-01", None, 406),
        (
            "POST",
            format!("{base}/flexClusters"),
            "2024-11-13",
            Some(json!({"name": "f1", "providerSettings": {"backingProviderName": "AWS", "regionName": "US_EAST_1"}})),
            201,
        ),
        ("GET", format!("{base}/clusters/f1"), "2024-08-05", None, 400),
        ("GET", format!("{base}/flexClusters/c1"), "2024-11-13", None, 400),
        ("GET", format!("{base}/flexClusters?itemsPerPage=1&pageNum=1"), "2024-11-13", None, 200),
        ("POST", format!("{base}/accessList"), "2023-01-01", Some(json!([{"ipAddress": "198.51.100.7", "comment": "one"}])), 201),
        ("GET", format!("{base}/accessList/198.51.100.7%2F32"), "2023-01-01", None, 200),
        ("GET", format!("{base}/accessList/203.0.113.1"), "2023-01-01", None, 404),
        (
            "POST",
            format!("{base}/databaseUsers"),
            "2023-01-01",
            Some(
                json!({"databaseName": "admin", "groupId": g, "username": "u1", "password": "long-enough-1", "roles": [{"roleName": "read", "databaseName": "db"}]}),
            ),
            201,
        ),
        (
            "POST",
            format!("{base}/databaseUsers"),
            "2023-01-01",
            Some(
                json!({"databaseName": "admin", "groupId": g, "username": "u1", "password": "long-enough-1", "roles": [{"roleName": "read", "databaseName": "db"}]}),
            ),
            409,
        ),
        ("GET", format!("{base}/databaseUsers/admin/u1"), "2023-01-01", None, 200),
        (
            "PATCH",
            format!("{base}/databaseUsers/admin/u1"),
            "2023-01-01",
            Some(
                json!({"databaseName": "admin", "groupId": g, "username": "u1", "roles": [{"roleName": "readWrite", "databaseName": "db"}]}),
            ),
            200,
        ),
        ("DELETE", format!("{base}/databaseUsers/admin/nobody"), "2023-01-01", None, 404),
        ("GET", format!("{base}/alertConfigs?itemsPerPage=500"), "2023-01-01", None, 200),
        ("GET", format!("{base}/alertConfigs?itemsPerPage=501"), "2023-01-01", None, 400),
        ("DELETE", format!("{base}/accessList/198.51.100.7"), "2023-01-01", None, 204),
        ("DELETE", format!("{base}/flexClusters/f1"), "2024-11-13", None, 204),
        ("DELETE", base.clone(), "2023-01-01", None, 409),
    ];
    for (method, path, version, body, want) in calls {
        let (status, answer) = sbx.api(method, &path, version, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        if status >= 400 {
            assert!(answer["errorCode"].is_string() && answer["error"] == json!(status), "{method} {path}: {answer}");
        }
    }
    // Alerts: a new project has Atlas' defaults; one can be read by id.
    let (_, alerts) = sbx.api("GET", &format!("{base}/alertConfigs"), "2023-01-01", None).await;
    assert!(alerts["totalCount"].as_u64().unwrap() >= 25);
    let id = alerts["results"][0]["id"].as_str().unwrap();
    let (s, _) = sbx.api("GET", &format!("{base}/alertConfigs/{id}"), "2023-01-01", None).await;
    assert_eq!(s, 200);
    let (s, _) = sbx.api("DELETE", &format!("{base}/clusters/c1"), "2023-02-01", None).await;
    assert_eq!(s, 202);

    // Without a token: 401 with a Digest challenge.
    let resp = reqwest::Client::new()
        .get(format!("{}{base}", sbx.url))
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Digest realm=\"MMS Public API\""));

    let violations = openapi::violations(&sbx.log().await);
    assert!(violations.is_empty(), "{} schema violations:\n{}", violations.len(), violations.join("\n"));
}

/// Atlas never returns passwords: `--rotate-passwords` is a change poactl asserts for each
/// user with one, shown redacted, and sent as a PATCH of that user only; without the flag
/// nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_passwords_sends_each_password_again_and_only_then() {
    let sbx = Sandbox::start(0.1);
    let yaml = "environment: rot\natlas:\n  org_id: 0123456789abcdef01234567\n  project: rotate\n  database_users:\n    - { username: app, password: \"${env:POAFIX_DB_PASSWORD}\", roles: [{ role: readWrite, database: shop }] }\n";
    let (_dir, spec) = spec_file("rot", yaml);
    let env = sbx.env();
    let run = move |args: Vec<&'static str>, spec: String| {
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            let mut a: Vec<&str> = args.clone();
            a.insert(2, &spec);
            Poactl::new(&a).envs(SPEC_ENV).envs_owned(&env).run()
        })
    };
    run(vec!["apply", "-e", "--auto-approve", "-q"], spec.clone()).await.unwrap().expect_code(0);
    run(vec!["plan", "-e", "--detailed-exitcode"], spec.clone()).await.unwrap().expect_code(0);
    let plan = run(vec!["plan", "-e", "--rotate-passwords", "--detailed-exitcode"], spec.clone()).await.unwrap();
    plan.expect_code(2);
    assert!(
        plan.stdout.contains("~ atlas.database_users.app (admin/app)") && plan.stdout.contains("~ password: (sensitive) -> (sensitive)"),
        "{}",
        plan.stdout
    );
    assert!(!plan.all().contains("api-secret-Vq3xT9"), "{}", plan.all());
    let before = sbx.log().await.len();
    run(vec!["apply", "-e", "--rotate-passwords", "--auto-approve", "-q"], spec.clone()).await.unwrap().expect_code(0);
    let sent: Vec<String> = sbx
        .log()
        .await
        .into_iter()
        .skip(before)
        .filter(|e| e["method"] != "GET")
        .map(|e| format!("{} {}", e["method"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("PATCH ") && sent[0].ends_with("/databaseUsers/admin/app"), "{sent:?}");
    run(vec!["plan", "-e", "--detailed-exitcode"], spec.clone()).await.unwrap().expect_code(0);
}
