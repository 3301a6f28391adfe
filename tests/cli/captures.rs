//! Real Atlas responses (`tests/fixtures/atlas/captures/`, recorded by MongoDB's own CLI
//! tests): every one is read, and a spec describing the captured resources plans `No changes`
//! against a replay of them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::{Poactl, repo, spec_file};

/// A `.snaphost` file: status line, headers, blank line, body.
fn read_capture(path: &Path) -> (u16, Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let status: u16 =
        text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{}: no status line", path.display()));
    let body = text.split_once("\r\n\r\n").or_else(|| text.split_once("\n\n")).map(|(_, b)| b.trim()).unwrap_or("");
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", path.display()))
    };
    (status, value)
}

fn captures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "snaphost") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("tests/fixtures/atlas/captures"), &mut out);
    out.sort();
    out
}

fn capture(rel: &str) -> Value {
    read_capture(&repo().join("tests/fixtures/atlas/captures").join(rel)).1
}

#[test]
fn every_capture_reads_as_poactl_expects() {
    let files = captures();
    assert!(files.len() >= 40, "{} captures", files.len());
    let mut clusters = 0;
    for f in &files {
        let (status, body) = read_capture(f);
        let name = f.to_string_lossy();
        if status >= 400 {
            // ApiError: an int status and a code; parameters hold strings in real traffic.
            assert_eq!(body["error"].as_u64(), Some(u64::from(status)), "{name}");
            assert!(body["errorCode"].is_string(), "{name}");
            continue;
        }
        // Cluster documents (both APIs) normalize to a tier, provider and region.
        let docs: Vec<&Value> = match body.get("results").and_then(|r| r.as_array()) {
            Some(items) => items.iter().collect(),
            None => vec![&body],
        };
        for doc in docs {
            let is_cluster = doc.get("replicationSpecs").is_some() || doc.pointer("/providerSettings/providerName") == Some(&json!("FLEX"));
            if !is_cluster {
                continue;
            }
            let api = if doc.get("replicationSpecs").is_some() { "clusters" } else { "flexClusters" };
            let addr = poactl::resource::Address::new(poactl::resource::Kind::AtlasCluster, doc["name"].as_str().unwrap_or("x"));
            let o = poactl::providers::atlas::cluster::normalize("replay", &addr, doc, api);
            for k in ["tier", "provider", "region"] {
                assert!(o.attrs[k].as_str().is_some_and(|s| !s.is_empty()), "{name}: {k} from {}", o.attrs);
            }
            clusters += 1;
        }
    }
    assert!(clusters >= 8, "{clusters} cluster documents read");
}

/// Tags as poactl would have set them, in place of the captured ones.
fn owned(doc: &mut Value, env: &str, address: &str) {
    doc["tags"] = json!([
        {"key": "poactl-env", "value": env},
        {"key": "poactl-id", "value": address},
        {"key": "poactl-managed", "value": "true"},
    ]);
}

fn envelope(items: Vec<Value>) -> Value {
    let n = items.len();
    json!({"links": [], "results": items, "totalCount": n})
}

#[tokio::test]
async fn a_spec_of_the_captured_resources_plans_no_changes() {
    let mut project = capture("TestAtlasProjects/Describe/GET_api_atlas_v2_groups_6a793feb2c88faeba59bd8f6_1.snaphost");
    owned(&mut project, "replay", "atlas.project.e2e-proj-939");
    // The IDLE M0 cluster as the 2024-08-05 API returns it (the version poactl reads).
    let mut m0 = capture("TestClustersM0Flags/Watch/GET_api_atlas_v2_groups_6a793f6bc0eb9e7a17715892_clusters_cluster-251_3.snaphost");
    assert_eq!(m0["stateName"], "IDLE");
    owned(&mut m0, "replay", "atlas.clusters.cluster-251");
    let mut flex = capture("TestFlexCluster/List_flex_cluster/GET_api_atlas_v2_groups_b0123456789abcdef012345b_flexClusters_1.snaphost");
    for c in flex["results"].as_array_mut().unwrap() {
        let name = c["name"].as_str().unwrap().to_string();
        owned(c, "replay", &format!("atlas.clusters.{name}"));
    }
    let access = capture("TestAccessList/List/GET_api_atlas_v2_groups_6a793f62c0eb9e7a1771502a_accessList_1.snaphost");
    let users = capture("TestDBUserWithFlags/List/GET_api_atlas_v2_groups_b0123456789abcdef012345b_databaseUsers_1.snaphost");
    let alerts = capture("TestAlertConfig/List/GET_api_atlas_v2_groups_b0123456789abcdef012345b_alertConfigs_1.snaphost");

    let writes = Arc::new(Mutex::new(Vec::<String>::new()));
    let world = Arc::new(json!({
        "project": project,
        "clusters": envelope(vec![m0]),
        "flex": flex,
        "access": access,
        "users": users,
        "alerts": envelope(alerts["results"].as_array().unwrap().clone()),
    }));
    let w = writes.clone();
    let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
        let world = world.clone();
        let writes = w.clone();
        async move {
            let path = uri.path().to_string();
            if path == "/api/oauth/token" {
                return axum::Json(json!({"access_token": "replay", "token_type": "Bearer", "expires_in": 3600})).into_response_parts();
            }
            // Revoking the run's own token at exit changes nothing in the environment.
            if method != axum::http::Method::GET && path != "/api/oauth/revoke" {
                writes.lock().unwrap().push(format!("{method} {path}"));
            }
            let body = if path.starts_with("/api/atlas/v2/orgs/") && path.ends_with("/groups") {
                Some(envelope(vec![world["project"].clone()]))
            } else if path.ends_with("/flexClusters") {
                Some(world["flex"].clone())
            } else if path.ends_with("/clusters") {
                Some(world["clusters"].clone())
            } else if path.ends_with("/accessList") {
                Some(world["access"].clone())
            } else if path.ends_with("/databaseUsers") {
                Some(world["users"].clone())
            } else if path.ends_with("/alertConfigs") {
                Some(world["alerts"].clone())
            } else {
                None
            };
            match body {
                Some(b) => axum::Json(b).into_response_parts(),
                None => (
                    axum::http::StatusCode::NOT_FOUND,
                    axum::Json(
                        json!({"error": 404, "errorCode": "RESOURCE_NOT_FOUND", "detail": path, "parameters": [], "reason": "Not Found"}),
                    ),
                )
                    .into_response_parts(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (_dir, spec) = spec_file(
        "replay",
        r#"environment: replay
atlas:
  org_id: a0123456789abcdef012345a
  project: e2e-proj-939
  clusters:
    - { name: cluster-251, tier: M0, region: US_EAST_1 }
    - { name: cluster-83, tier: FLEX, region: US_EAST_1 }
  access_list:
    - { ip: 192.168.0.243, comment: test }
  database_users:
    - { username: Cluster48141, password: "${env:REPLAY_PW}", roles: [{ role: atlasAdmin, database: admin }] }
  alerts:
    - { event: OUTSIDE_METRIC_THRESHOLD, metric: CONNECTIONS_PERCENT, above: 80, notify: { roles: [GROUP_OWNER] } }
    - { event: REPLICATION_OPLOG_WINDOW_RUNNING_OUT, below: 1, units: HOURS, notify: { roles: [GROUP_OWNER] } }
"#,
    );
    let run = tokio::task::spawn_blocking(move || {
        Poactl::new(&["plan", "-e", &spec, "--detailed-exitcode"])
            .env("MONGODB_ATLAS_BASE_URL", &url)
            .env("MONGODB_ATLAS_CLIENT_ID", "c")
            .env("MONGODB_ATLAS_CLIENT_SECRET", "s")
            .env("REPLAY_PW", "replay-password-1")
            .run()
    })
    .await
    .unwrap();
    run.expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    // The other captured users, entries and alerts are unmanaged, never changes.
    assert!(run.stdout.contains("atlas.database_users: 32"), "{}", run.stdout);
    assert!(writes.lock().unwrap().is_empty(), "plan is read-only: {:?}", writes.lock().unwrap());
}

trait IntoParts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl<T: axum::response::IntoResponse> IntoParts for T {
    fn into_response_parts(self) -> axum::response::Response {
        self.into_response()
    }
}
