use super::*;

fn spec(yaml: &str) -> Spec {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.yaml"), yaml).unwrap();
    crate::spec::load(dir.path(), "t", &|_| Some("0123456789abcdef01234567".to_string())).unwrap_or_else(|e| panic!("{e}")).spec
}

fn total(yaml: &str) -> Estimate {
    let s = spec(yaml);
    estimate(&s, &Usage::base(s.usage.as_ref()), &Catalog::builtin(), "base")
}

const ALARM: &str = "    - { name: NAME, metric: { namespace: AWS/S3, name: X }, above: 1 }\n";

fn alarms(n: usize) -> String {
    let mut s = String::from("monitoring:\n  alarms:\n");
    for i in 0..n {
        s.push_str(&ALARM.replace("NAME", &format!("a{i}")));
    }
    s
}

#[test]
fn builtin_catalog_parses_and_names_sources() {
    let c = Catalog::builtin();
    assert_eq!(c.hours_per_month, 730.0);
    assert!(c.prices.values().all(|p| p.source.starts_with("https://") && !p.as_of.is_empty()));
}

#[test]
fn known_answer_m10_s3_cdn_alarms() {
    // M10 + 50 GB S3 + 500 GB CDN (inside the free tier) + 12 alarms = 58.40 + 1.15 + 0 + 0.20
    let yaml = format!(
        "atlas:\n  org_id: ${{env:ORG}}\n  project: p\n  clusters:\n    - {{ name: main, tier: M10, region: US_EAST_1 }}\nstorage:\n  buckets:\n    - {{ name: b-uploads, region: us-east-1 }}\ncdn:\n  distributions:\n    - {{ name: assets, origin: {{ bucket: b-uploads }} }}\n{}usage:\n  storage_gb: 50\n  cdn_transfer_gb: 500\n  cdn_requests: 2000000\n",
        alarms(12)
    );
    let e = total(&yaml);
    let by_item = |item: &str| e.lines.iter().find(|l| l.item.contains(item)).and_then(|l| l.monthly_usd).unwrap();
    assert_eq!(by_item("M10"), 58.40);
    assert_eq!(by_item("S3 Standard"), 1.15);
    assert_eq!(by_item("transfer"), 0.0);
    assert_eq!(by_item("HTTPS requests"), 0.0);
    assert_eq!(by_item("alarms"), 0.20);
    assert_eq!(e.total_monthly_usd, 59.75);
    assert!(e.not_in_catalog.is_empty());
}

#[test]
fn cases() {
    struct Case {
        reason: &'static str,
        yaml: String,
        want_total: f64,
        want_missing: usize,
    }
    let cluster = |tier: &str, region: &str| {
        format!("atlas:\n  org_id: ${{env:ORG}}\n  project: p\n  clusters:\n    - {{ name: main, tier: {tier}, region: {region} }}\n")
    };
    let cases = vec![
        Case { reason: "M0 is free", yaml: cluster("M0", "US_EAST_1"), want_total: 0.0, want_missing: 0 },
        Case { reason: "Flex base price", yaml: cluster("FLEX", "US_EAST_1"), want_total: 8.03, want_missing: 0 },
        Case { reason: "M30", yaml: cluster("M30", "US_EAST_1"), want_total: 394.20, want_missing: 0 },
        Case { reason: "unknown tier price is not guessed", yaml: cluster("M60", "US_EAST_1"), want_total: 0.0, want_missing: 1 },
        Case { reason: "unknown region price is not guessed", yaml: cluster("M10", "EU_WEST_1"), want_total: 0.0, want_missing: 1 },
        Case { reason: "10 alarms are free", yaml: alarms(10), want_total: 0.0, want_missing: 0 },
        Case { reason: "11 alarms", yaml: alarms(11), want_total: 0.10, want_missing: 0 },
        Case {
            reason: "CDN above the free tier",
            yaml: "storage:\n  buckets:\n    - { name: b-uploads }\ncdn:\n  distributions:\n    - { name: a, origin: { bucket: b-uploads } }\nusage:\n  cdn_transfer_gb: 1500\n  cdn_requests: 20000000\n".into(),
            // 500 GB x 0.085 + 10M requests x 0.01/10k
            want_total: 42.50 + 10.0,
            want_missing: 0,
        },
    ];
    for c in cases {
        let e = total(&c.yaml);
        assert!((e.total_monthly_usd - c.want_total).abs() < 0.005, "{}: total {} != {}", c.reason, e.total_monthly_usd, c.want_total);
        assert_eq!(e.not_in_catalog.len(), c.want_missing, "{}: {:?}", c.reason, e.not_in_catalog);
    }
}

#[test]
fn flex_is_capped() {
    let s = spec("atlas:\n  org_id: ${env:ORG}\n  project: p\n  clusters:\n    - { name: main, tier: FLEX, region: US_EAST_1 }\n");
    let mut catalog = Catalog::builtin();
    catalog.prices.get_mut("atlas/AWS/US_EAST_1/FLEX").unwrap().usd = 0.05; // 36.50 a month before the cap
    let e = estimate(&s, &Usage::base(None), &catalog, "base");
    assert_eq!(e.total_monthly_usd, 30.0);
    assert!(e.lines[0].notes.iter().any(|n| n.contains("capped")));
}

#[test]
fn scenarios_multiply_usage_and_change_tiers() {
    let s = spec(
        "atlas:\n  org_id: ${env:ORG}\n  project: p\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1 }\nstorage:\n  buckets:\n    - { name: b-uploads }\nusage:\n  storage_gb: 100\n  scenarios:\n    - { name: growth, multiplier: 10, cluster_tiers: { main: M30 } }\n    - { name: double-storage, storage_gb: 2 }\n",
    );
    let u = s.usage.as_ref().unwrap();
    let growth = estimate(&s, &Usage::scenario(u, "growth").unwrap(), &Catalog::builtin(), "growth");
    assert_eq!(growth.total_monthly_usd, 394.20 + 23.0);
    let double = estimate(&s, &Usage::scenario(u, "double-storage").unwrap(), &Catalog::builtin(), "double-storage");
    assert_eq!(double.total_monthly_usd, 58.40 + 4.60);
    assert!(Usage::scenario(u, "nope").is_none());
}

#[test]
fn a_catalog_that_cannot_be_used_says_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let price = "prices:\n  x: { usd: 1, per: hour, source: https://example.com, as_of: 2026-01-01 }\n";
    let cases: [(&str, Option<String>, &str); 4] = [
        ("missing file", None, "cannot read the price catalog"),
        ("not YAML", Some("currency: USD\nprices: [\n".into()), "invalid price catalog"),
        ("no hours", Some(format!("currency: USD\nhours_per_month: 0\n{price}")), "hours_per_month must be positive"),
        (
            "negative price",
            Some(format!("currency: USD\nhours_per_month: 730\n{}", price.replace("usd: 1", "usd: -1"))),
            "price x: usd must be >= 0",
        ),
    ];
    for (name, text, says) in cases {
        let path = dir.path().join(format!("{}.yaml", name.replace(' ', "-")));
        if let Some(text) = &text {
            std::fs::write(&path, text).unwrap();
        }
        let err = Catalog::load(&path).expect_err(name);
        let chain: Vec<String> =
            std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source()).map(|e| e.to_string()).collect();
        let chain = chain.join(": ");
        assert!(chain.contains(says) && chain.contains(&path.display().to_string()), "{name}: {chain}");
    }
}

#[test]
fn over_budget_is_strictly_above_it() {
    let at = |usd: f64| Estimate { scenario: "base".into(), lines: vec![], total_monthly_usd: usd, not_in_catalog: vec![] };
    for (total, budget, over) in [(50.0, 50.0, false), (50.0 + 1e-12, 50.0, false), (50.01, 50.0, true), (0.0, 0.0, false)] {
        assert_eq!(at(total).over_budget(budget), over, "{total} against {budget}");
    }
}

#[test]
fn private_endpoints_are_priced_per_az_hour_and_gb_on_aws_and_listed_on_atlas() {
    let yaml = "atlas:\n  org_id: ${env:ORG}\n  project: p\n  network:\n    public_access: false\n    private_endpoints:\n      - { region: US_EAST_1, vpc: vpc-0123456789abcdef0, subnets: [subnet-0aaaaaaaaaaaaaaaa, subnet-0bbbbbbbbbbbbbbbb], allow_from: [10.0.0.0/16] }\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1 }\nusage:\n  private_endpoint_gb: 300\n";
    let e = total(yaml);
    let line = |item: &str| e.lines.iter().find(|l| l.item.contains(item)).unwrap_or_else(|| panic!("{item}: {:?}", e.lines));
    // Two subnets, two interfaces: 2 x 730 h x $0.01; 300 GB x $0.01.
    assert_eq!(line("AWS interface endpoint").monthly_usd, Some(14.60));
    assert_eq!(line("AWS interface endpoint").quantity, 1460.0);
    assert_eq!(line("AWS PrivateLink data processed").monthly_usd, Some(3.0));
    assert!(line("AWS interface endpoint").as_of.is_some(), "dated in the catalog");
    // Atlas' side is not guessed: listed, not counted.
    assert_eq!(line("Atlas private endpoint in").monthly_usd, None);
    assert_eq!(line("Atlas private endpoint capacity").monthly_usd, None);
    assert_eq!(e.not_in_catalog.len(), 2, "{:?}", e.not_in_catalog);
    assert_eq!(e.total_monthly_usd, 58.40 + 14.60 + 3.0);
    // Without traffic, only the hourly lines.
    let idle = total(&yaml.replace("usage:\n  private_endpoint_gb: 300\n", ""));
    assert!(!idle.lines.iter().any(|l| l.unit == "GB"));
}

#[test]
fn log_groups_are_priced_for_their_share_of_ingestion_and_what_their_retention_keeps() {
    // (retention, stored GB-month for a 20 GB/month share): 30 days hold a month, a year
    // 365/30 months, and a group that never expires is priced after 12 months.
    for (retention, stored) in [("retention: 30d, ", 20.0), ("retention: 365d, ", 20.0 * 365.0 / 30.0), ("", 240.0)] {
        let e = total(&format!(
            "aws: {{ region: us-east-1 }}\nmonitoring:\n  log_groups:\n    - {{ name: /t/a, {retention}}}\n    - {{ name: /t/b, retention: 7d }}\nusage:\n  log_ingest_gb: 40\n"
        ));
        let line = |resource: &str, item: &str| {
            e.lines.iter().find(|l| l.resource == resource && l.item == item).unwrap_or_else(|| panic!("{item}: {:?}", e.lines))
        };
        // One ingestion line: the account's free 5 GB counts once.
        let ingest = line("monitoring.log_groups (2 groups in us-east-1)", "CloudWatch Logs ingestion");
        assert_eq!((ingest.quantity, ingest.free, ingest.monthly_usd), (40.0, Some(5.0), Some(17.5)), "{retention}");
        let store = line("monitoring.log_groups./t/a", "CloudWatch Logs storage");
        assert!((store.quantity - stored).abs() < 1e-9, "{retention}: {}", store.quantity);
        assert_eq!(store.monthly_usd, Some(round2(stored * 0.03)), "{retention}");
        assert_eq!(store.source.as_deref(), Some("https://aws.amazon.com/cloudwatch/pricing/"));
    }
}
