//! poactl outside the VPC (issue 30, item 6): a VPC-only environment's index reads fail with
//! a located conflict that names the ways in; `--temporary-access` opens an Atlas temporary
//! entry for the runner's address, connects through the public string, and removes the entry
//! when the command ends, also on Ctrl-C; `audit` reports one left behind. Peers: the Atlas
//! sandbox (temporary entries, their status), moto for the PrivateLink chain, the MongoDB wire
//! MOCK for a read that is held while Ctrl-C comes.

use std::time::{Duration, Instant};

use poactl::sandbox::mongo::MongoMock;
use serde_json::{Value, json};

use crate::support::{Moto, Poactl, SPEC_ENV, Sandbox, app_network, aws_env, poactl_with as run, spec_file};

const ORG: &str = "0123456789abcdef01234567";

fn spec_text(vpc: &str, subnets: &[String], app: &str) -> String {
    format!(
        "environment: ta\naws: {{ region: us-east-1 }}\natlas:\n  org_id: \"{ORG}\"\n  project: ta-project\n  clusters:\n    - {{ name: main, tier: M10, provider: AWS, region: US_EAST_1 }}\n  database_users:\n    - {{ username: poafix-api, password: \"${{env:POAFIX_DB_PASSWORD}}\", roles: [{{ role: readWrite, database: app }}] }}\n  network:\n    public_access: false\n    private_endpoints:\n      - {{ region: US_EAST_1, vpc: {vpc}, subnets: [{}], allow_from: [{app}] }}\ndatabase:\n  name: app\n  uri: ${{atlas.clusters.main.private_srv}}\n  collections:\n    users:\n      indexes:\n        - {{ keys: {{ email: 1 }}, unique: true }}\n",
        subnets.join(", ")
    )
}

/// The project's access list, as Atlas lists it.
async fn access_list(sbx: &Sandbox, group: &str) -> Vec<Value> {
    let (status, v) = sbx.api("GET", &format!("/api/atlas/v2/groups/{group}/accessList"), "2023-01-01", None).await;
    assert_eq!(status, 200, "{v}");
    v["results"].as_array().cloned().unwrap_or_default()
}

fn calls<'a>(log: &'a [Value], method: &str, operation: &str) -> Vec<&'a Value> {
    log.iter().filter(|e| e["method"] == method && e["operation"] == operation).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_vpc_the_reads_name_the_way_in_and_temporary_access_opens_and_closes_it() {
    let sbx = Sandbox::start(0.2);
    let moto = Moto::start();
    let ((vpc, subnets), app) = app_network(&moto.url).await;
    let (_dir, spec) = spec_file("ta", &spec_text(&vpc, &subnets, &app));
    let mut env = aws_env(&moto.url);
    env.extend(sbx.env());
    // The clusters' names do not resolve here: fail at once instead of waiting for DNS.
    env.push(("POACTL_MONGO_DNS_WAIT_SECS", "0".into()));
    run(&["apply", "-e", &spec, "--auto-approve", "-q", "--target", "atlas"], &env).await.expect_code(0);
    let group = sbx.group_id("ta-project").await;

    // Without it: the index is a located conflict naming both ways in; the rest stands.
    let outside = run(&["plan", "-e", &spec], &env).await;
    outside.expect_code(1);
    let text = outside.all();
    assert!(text.contains("database.indexes.users.email_1: its live state could not be read"), "{text}");
    assert!(text.contains("main-pl-0."), "the private string is what the app and poactl use: {text}");
    assert!(text.contains("the environment is VPC-only") && text.contains("--temporary-access"), "{text}");
    assert!(text.contains("Running poactl in production"), "{text}");
    // `check` and `migrate data` say the same.
    let check = run(&["check", "-e", &spec, "--only", "database"], &env).await;
    check.expect_code(1);
    assert!(check.stdout.contains("FAIL  database log in as poafix-api") && check.stdout.contains("--temporary-access"), "{}", check.all());
    let dump = tempfile::tempdir().unwrap();
    std::fs::create_dir(dump.path().join("app")).unwrap();
    let mut bytes = Vec::new();
    mongodb::bson::doc! {"_id": 1, "email": "a@x"}.to_writer(&mut bytes).unwrap();
    std::fs::write(dump.path().join("app/users.bson"), bytes).unwrap();
    std::fs::write(dump.path().join("app/users.metadata.json"), r#"{"options":{},"indexes":[]}"#).unwrap();
    let from = dump.path().to_string_lossy().to_string();
    let migrate = run(&["migrate", "data", "-e", &spec, "--from", &from], &env).await;
    migrate.expect_code(1);
    assert!(
        migrate.stderr.contains("cannot reach the target database app") && migrate.stderr.contains("the environment is VPC-only"),
        "{}",
        migrate.all()
    );
    assert!(calls(&sbx.log().await, "POST", "/api/atlas/v2/groups/{groupId}/accessList").is_empty(), "nothing is opened unasked");

    // With it: the runner's entry, temporary, ACTIVE before connecting, gone afterwards.
    let with = run(&["plan", "-e", &spec, "--temporary-access", "203.0.113.7"], &env).await;
    let text = with.all();
    assert!(text.contains("temporary access: 203.0.113.7/32 may reach project ta-project's clusters"), "{text}");
    assert!(text.contains("temporary access: removed 203.0.113.7/32"), "{text}");
    assert!(!text.contains("main-pl-0.") && text.contains("main."), "poactl connects through the public string: {text}");
    assert!(!text.contains("the environment is VPC-only"), "{text}");
    assert!(!text.contains("atlas.access_list"), "the run's own entry is not drift: {text}");
    let log = sbx.log().await;
    let posted = calls(&log, "POST", "/api/atlas/v2/groups/{groupId}/accessList");
    assert_eq!(posted.len(), 1, "{posted:?}");
    let entry = &posted[0]["request"][0];
    assert_eq!(entry["ipAddress"], "203.0.113.7", "{entry}");
    assert!(entry["comment"].as_str().is_some_and(|c| c.starts_with("poactl temporary access") && c.len() <= 80), "{entry}");
    assert!(entry["deleteAfterDate"].as_str().is_some_and(|d| d.ends_with('Z')), "{entry}");
    assert_eq!(posted[0]["status"], 201, "the sandbox took it: {:?}", posted[0]);
    let status = log.iter().position(|e| e["operation"] == "/api/atlas/v2/groups/{groupId}/accessList/{entryValue}/status");
    let deleted =
        log.iter().position(|e| e["method"] == "DELETE" && e["operation"] == "/api/atlas/v2/groups/{groupId}/accessList/{entryValue}");
    let list_read = log.iter().rposition(|e| e["method"] == "GET" && e["operation"] == "/api/atlas/v2/groups/{groupId}/accessList");
    assert!(status.is_some() && deleted.is_some() && status < deleted, "waited for ACTIVE, then removed: {log:?}");
    assert!(list_read < deleted, "removed after the run's reads");
    assert!(access_list(&sbx, &group).await.is_empty(), "nothing is left behind");

    // An address the list already holds is someone's decision: used, never removed.
    let (code, _) = sbx
        .api(
            "POST",
            &format!("/api/atlas/v2/groups/{group}/accessList"),
            "2023-01-01",
            Some(json!([{"ipAddress": "203.0.113.9", "comment": "office"}])),
        )
        .await;
    assert_eq!(code, 201);
    let kept = run(&["plan", "-e", &spec, "--temporary-access", "203.0.113.9"], &env).await;
    assert!(kept.stderr.contains("203.0.113.9/32 is already in project ta-project's access list"), "{}", kept.stderr);
    let left = access_list(&sbx, &group).await;
    assert!(left.len() == 1 && left[0]["comment"] == "office" && left[0].get("deleteAfterDate").is_none(), "{left:?}");
    sbx.api("DELETE", &format!("/api/atlas/v2/groups/{group}/accessList/203.0.113.9%2F32"), "2023-01-01", None).await;

    // A run killed outright leaves its entry: audit names it; plan lists it, kept, to expire.
    let far = a_day_from_now();
    let (code, v) = sbx
        .api(
            "POST",
            &format!("/api/atlas/v2/groups/{group}/accessList"),
            "2023-01-01",
            Some(json!([{"ipAddress": "198.51.100.4", "comment": "poactl temporary access: ta run", "deleteAfterDate": far}])),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let audit = run(&["audit", "-e", &spec, "-o", "json"], &env).await;
    let report: Value = serde_json::from_str(&audit.stdout).unwrap_or_else(|e| panic!("{e}: {}", audit.all()));
    let found: Vec<&Value> = report["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == "temporary-access-left-over").collect();
    assert_eq!(found.len(), 1, "{report}");
    assert_eq!(found[0]["address"], "atlas.access_list.198.51.100.4/32", "{report}");
    let plan = run(&["plan", "-e", &spec, "--target", "atlas", "--detailed-exitcode"], &env).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("? 198.51.100.4/32"), "listed, kept, not drift: {}", plan.all());

    // The flag is refused where nothing connects to the database.
    let refused = run(&["audit", "-e", &spec, "--temporary-access", "203.0.113.7"], &env).await;
    refused.expect_code(1);
    assert!(refused.stderr.contains("--temporary-access is for the commands that connect to the database"), "{}", refused.stderr);
    let private = run(&["plan", "-e", &spec, "--temporary-access", "10.0.0.5"], &env).await;
    private.expect_code(1);
    assert!(private.stderr.contains("a private or local address"), "{}", private.stderr);
}

/// An ISO 8601 time within the week Atlas allows, a day from now.
fn a_day_from_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 86_400;
    mongodb::bson::DateTime::from_millis((secs * 1000) as i64).try_to_rfc3339_string().unwrap()
}

/// Ctrl-C while a read is held: the run ends with 130 and its entry is removed all the same,
/// by a clean-up call that the interruption does not cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_the_run_still_removes_the_entry() {
    let sbx = Sandbox::start(0.0);
    let spec = format!(
        "environment: tc\natlas:\n  org_id: \"{ORG}\"\n  project: tc-project\n  clusters:\n    - {{ name: main, tier: M0, region: US_EAST_1 }}\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - {{ keys: {{ email: 1 }} }}\n"
    );
    let (_dir, path) = spec_file("tc", &spec);
    let env = sbx.env();
    run(&["apply", "-e", &path, "--auto-approve", "-q", "--target", "atlas"], &env).await.expect_code(0);
    let group = sbx.group_id("tc-project").await;
    let mock = MongoMock::start().await;
    mock.hold("listIndexes");
    let child = Poactl::new(&["plan", "-e", &path, "--temporary-access", "203.0.113.8", "--mongodb-uri", &mock.uri])
        .envs(SPEC_ENV)
        .envs_owned(&env)
        .spawn_piped();
    let deadline = Instant::now() + Duration::from_secs(30);
    while access_list(&sbx, &group).await.is_empty() {
        assert!(Instant::now() < deadline, "the entry was never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the run reach the held read.
    tokio::time::sleep(Duration::from_millis(700)).await;
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("temporary access: removed 203.0.113.8/32"), "{stderr}");
    assert!(access_list(&sbx, &group).await.is_empty(), "the entry is gone after Ctrl-C");
}
