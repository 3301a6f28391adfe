//! Multi-region clusters (issue 31, item 3) through the CLI, against the Atlas sandbox: the
//! region configs poactl sends, regions matched by name however Atlas orders them, changes in
//! place, the highest-priority region never removed in the change that demotes it, drift on
//! a region changed by hand, and each region's nodes priced.

use serde_json::{Value, json};

use crate::support::{Sandbox, poactl_with as run, spec_file};

/// A 2+2+1 layout over three regions, a read-only and an analytics region. The two regions of
/// priority 0 are listed A before E; Atlas returns equal priorities by name descending.
fn spec(regions: &str) -> String {
    format!(
        "environment: mr\natlas:\n  org_id: \"0123456789abcdef01234567\"\n  project: mr-project\n  clusters:\n    - name: main\n      tier: M30\n      regions:\n{regions}"
    )
}

const LAYOUT: &str = "        - { region: US_EAST_1, electable: 2, priority: 7 }
        - { region: US_EAST_2, electable: 2, priority: 6 }
        - { region: US_WEST_2, electable: 1, priority: 5 }
        - { region: AP_SOUTHEAST_2, analytics: 1 }
        - { region: EU_WEST_1, read_only: 1 }
";

fn cluster_writes(log: &[Value], from: usize) -> Vec<(String, Value)> {
    log[from..]
        .iter()
        .filter(|e| {
            e["method"] != "GET"
                && e["operation"].as_str().is_some_and(|o| o.ends_with("/clusters") || o.ends_with("/clusters/{clusterName}"))
        })
        .map(|e| (e["method"].as_str().unwrap_or_default().to_string(), e["request"].clone()))
        .collect()
}

/// (region, electable, read-only, analytics, priority) of each region config, in order.
fn layout(body: &Value) -> Vec<(String, u64, u64, u64, u64)> {
    let n = |rc: &Value, k: &str| rc.pointer(&format!("/{k}/nodeCount")).and_then(Value::as_u64).unwrap_or(0);
    body.pointer("/replicationSpecs/0/regionConfigs")
        .and_then(Value::as_array)
        .expect("region configs")
        .iter()
        .map(|rc| {
            let region = rc["regionName"].as_str().unwrap_or_default().to_string();
            (region, n(rc, "electableSpecs"), n(rc, "readOnlySpecs"), n(rc, "analyticsSpecs"), rc["priority"].as_u64().unwrap_or(99))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_region_cluster_is_made_matched_by_region_and_changed_in_place() {
    let sbx = Sandbox::start(0.1);
    let env = sbx.env();
    let (_dir, path) = spec_file("mr", &spec(LAYOUT));
    run(&["apply", "-e", &path, "--auto-approve", "-q"], &env).await.expect_code(0);
    let log = sbx.log().await;
    let writes = cluster_writes(&log, 0);
    assert_eq!(writes.len(), 1, "{writes:?}");
    let (method, body) = &writes[0];
    assert_eq!(method, "POST");
    let s = |r: &str| r.to_string();
    assert_eq!(
        layout(body),
        vec![
            (s("US_EAST_1"), 2, 0, 0, 7),
            (s("US_EAST_2"), 2, 0, 0, 6),
            (s("US_WEST_2"), 1, 0, 0, 5),
            (s("EU_WEST_1"), 0, 1, 0, 0),
            (s("AP_SOUTHEAST_2"), 0, 0, 1, 0),
        ],
        "highest priority first; every role at the cluster's size"
    );
    for rc in body.pointer("/replicationSpecs/0/regionConfigs").and_then(Value::as_array).unwrap() {
        for spec in ["electableSpecs", "readOnlySpecs", "analyticsSpecs"] {
            if let Some(size) = rc.pointer(&format!("/{spec}/instanceSize")) {
                assert_eq!(size, "M30", "{rc}");
            }
        }
    }
    let violations = crate::openapi::violations(&log);
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    // The two priority-0 regions come back in Atlas' order (EU before AP), not the spec's:
    // matched by name, that is no drift.
    let group = sbx.group_id("mr-project").await;
    let cluster_path = format!("/api/atlas/v2/groups/{group}/clusters/main");
    let (_, live) = sbx.api("GET", &cluster_path, "2024-08-05", None).await;
    let order: Vec<String> = layout(&live).into_iter().map(|r| r.0).collect();
    assert_eq!(order[3..], [s("EU_WEST_1"), s("AP_SOUTHEAST_2")]);
    run(&["plan", "-e", &path, "--detailed-exitcode"], &env).await.expect_code(0);

    // Nodes move between regions and a read-only node is added: one PATCH, in place.
    let moved = "        - { region: US_EAST_1, electable: 2, priority: 7 }
        - { region: US_EAST_2, electable: 1, priority: 6 }
        - { region: US_WEST_2, electable: 2, priority: 5 }
        - { region: AP_SOUTHEAST_2, analytics: 1 }
        - { region: EU_WEST_1, read_only: 2 }
";
    std::fs::write(&path, spec(moved)).unwrap();
    let plan = run(&["plan", "-e", &path], &env).await;
    plan.expect_code(0);
    for want in ["regions.US_EAST_2.electable", "regions.EU_WEST_1.read_only"] {
        assert!(plan.stdout.contains(want), "{want}: {}", plan.stdout);
    }
    assert!(!plan.stdout.contains("replace"), "rolling changes, in place: {}", plan.stdout);
    let before = sbx.log().await.len();
    run(&["apply", "-e", &path, "--auto-approve", "-q"], &env).await.expect_code(0);
    let writes = cluster_writes(&sbx.log().await, before);
    assert_eq!(writes.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(), ["PATCH"], "{writes:?}");
    assert_eq!(layout(&writes[0].1)[3], (s("EU_WEST_1"), 0, 2, 0, 0));
    run(&["plan", "-e", &path, "--detailed-exitcode"], &env).await.expect_code(0);

    // Changed by hand (the read-only region dropped): drift names the region.
    let (_, live) = sbx.api("GET", &cluster_path, "2024-08-05", None).await;
    let mut configs = live.pointer("/replicationSpecs/0/regionConfigs").cloned().unwrap();
    configs.as_array_mut().unwrap().retain(|rc| rc["regionName"] != "EU_WEST_1");
    let body = json!({"replicationSpecs": [{"zoneName": "Zone 1", "regionConfigs": configs}]});
    let (status, answer) = sbx.api("PATCH", &cluster_path, "2024-10-23", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let drift = run(&["drift", "-e", &path], &env).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("regions.EU_WEST_1"), "{}", drift.stdout);
}

/// Atlas refuses to remove the highest-priority region in the change that demotes it: the
/// plan says so and sends nothing; the two steps it names both apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_highest_priority_region_is_demoted_before_it_is_removed() {
    let sbx = Sandbox::start(0.1);
    let env = sbx.env();
    let three = "        - { region: US_EAST_1, electable: 2, priority: 7 }
        - { region: US_EAST_2, electable: 2, priority: 6 }
        - { region: US_WEST_2, electable: 1, priority: 5 }
";
    let (_dir, path) = spec_file("mr", &spec(three));
    run(&["apply", "-e", &path, "--auto-approve", "-q"], &env).await.expect_code(0);

    let without_first = "        - { region: US_EAST_2, electable: 3, priority: 7 }
        - { region: US_WEST_2, electable: 2, priority: 6 }
";
    std::fs::write(&path, spec(without_first)).unwrap();
    let before = sbx.log().await.len();
    let plan = run(&["plan", "-e", &path], &env).await;
    plan.expect_code(1);
    assert!(plan.stdout.contains("cannot remove US_EAST_1 while it is the highest-priority region"), "{}", plan.stdout);
    run(&["apply", "-e", &path, "--auto-approve", "-q"], &env).await.expect_code(1);
    assert!(cluster_writes(&sbx.log().await, before).is_empty(), "nothing is sent");

    // Step one: US_EAST_1 kept as a read-only region while US_EAST_2 takes priority 7.
    let demoted = "        - { region: US_EAST_2, electable: 3, priority: 7 }
        - { region: US_WEST_2, electable: 2, priority: 6 }
        - { region: US_EAST_1, read_only: 1 }
";
    std::fs::write(&path, spec(demoted)).unwrap();
    run(&["apply", "-e", &path, "--auto-approve", "-q"], &env).await.expect_code(0);
    std::fs::write(&path, spec(without_first)).unwrap();
    run(&["apply", "-e", &path, "--auto-approve", "-q"], &env).await.expect_code(0);
    run(&["plan", "-e", &path, "--detailed-exitcode"], &env).await.expect_code(0);
    let violations = crate::openapi::violations(&sbx.log().await);
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// `cost` prices each region's nodes at its own region's price, and says which it cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_prices_each_regions_nodes() {
    let env = vec![("MONGODB_ATLAS_ORG_ID", "0123456789abcdef01234567".to_string())];
    let (_dir, path) = spec_file("mr", &spec(LAYOUT));
    let out = run(&["cost", "-e", &path, "-o", "json"], &env).await;
    out.expect_code(0);
    let v = out.json();
    let lines: Vec<&Value> = v["resources"].as_array().unwrap().iter().filter(|r| r["resource"] == "atlas.clusters.main").collect();
    assert_eq!(lines.len(), 5, "one line per region: {lines:?}");
    let east = lines.iter().find(|l| l["item"].as_str().unwrap().contains("US_EAST_1")).unwrap();
    // M30 in us-east-1 is $0.54 an hour for 3 nodes: 2 nodes for 730 hours.
    assert_eq!(east["monthly_usd"], json!(262.8));
    assert_eq!(east["source"], "https://www.mongodb.com/pricing");
    let west = lines.iter().find(|l| l["item"].as_str().unwrap().contains("US_WEST_2")).unwrap();
    assert!(west["monthly_usd"].is_null() && west.to_string().contains("not in catalog"), "{west}");
}
