//! `poactl graph` (issue 35, item 6): the resources of a shipped environment and the order
//! apply takes, as Mermaid, DOT and JSON, offline.

use crate::support::{Poactl, SPEC_ENV};

fn graph(args: &[&str]) -> crate::support::Run {
    let mut all = vec!["graph"];
    all.extend_from_slice(args);
    Poactl::new(&all).envs(SPEC_ENV).run()
}

#[test]
fn the_dependency_graph_shows_what_apply_does_first() {
    let json = graph(&["-e", "prod", "-o", "json"]);
    json.expect_code(0);
    let v = json.json();
    let edge = |from: &str, to: &str| v["edges"].as_array().unwrap().iter().any(|e| e["from"] == from && e["to"] == to);
    for (from, to) in [
        ("atlas.project.poafix-prod", "atlas.clusters.main"),
        ("atlas.private_endpoints.US_EAST_1", "atlas.clusters.main"),
        ("atlas.encryption.poafix-prod", "atlas.clusters.main"),
        ("storage.buckets.poafix-prod-uploads", "cdn.distributions.assets"),
        ("monitoring.uptime.api", "monitoring.alarms.uptime-api"),
    ] {
        assert!(edge(from, to), "{from} -> {to} missing: {v}");
    }
    assert!(!edge("cdn.distributions.assets", "storage.buckets.poafix-prod-uploads"), "edges point one way");

    let mermaid = graph(&["-e", "prod"]);
    mermaid.expect_code(0);
    assert!(mermaid.stdout.starts_with("graph TD\n") && mermaid.stdout.contains("[\"cdn.distributions.assets\"]"), "{}", mermaid.stdout);
    let dot = graph(&["-e", "prod", "--format", "dot"]);
    dot.expect_code(0);
    assert!(dot.stdout.contains("\"storage.buckets.poafix-prod-uploads\" -> \"cdn.distributions.assets\";"), "{}", dot.stdout);

    let bad = graph(&["-e", "prod", "--format", "svg"]);
    bad.expect_code(1);
    assert!(bad.stderr.contains("possible values: mermaid, dot, json"), "{}", bad.stderr);
}
