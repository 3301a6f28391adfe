use std::collections::BTreeSet;

use super::*;

fn loaded(yaml: &str, env: &[(&str, &str)]) -> LoadedSpec {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.yaml");
    std::fs::write(&p, yaml).unwrap();
    let vars: std::collections::HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    crate::spec::load(dir.path(), p.to_str().unwrap(), &|k: &str| vars.get(k).cloned()).unwrap()
}

fn res(kind: Kind, name: &str, attrs: Value, source: Source) -> Resource {
    Resource { address: Address::new(kind, name), attrs, source }
}

const BASE: &str = "environment: t\n";

#[test]
fn each_rule_finds_what_it_is_about_and_nothing_on_a_sound_environment() {
    let good_bucket = json!({"versioning": true, "encryption": {"algorithm": "AES256"}, "public_access_block": {"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": true, "restrict_public_buckets": true}, "lifecycle": [{"status": "Enabled", "noncurrent_expire_days": 30}]});
    let sound = "environment: prod\nprotect: true\nbilling:\n  alerts:\n    - { above_usd: 50 }\n  budget_usd: 100\n";
    let prod_cluster = json!({"tier": "M10", "backup": true, "point_in_time": true, "termination_protection": true});
    let good_cdn = json!({"default_behavior": {"viewer_protocol": "redirect-to-https"}, "aliases": [], "certificate_arn": null});
    let prod_with_keys = format!("{sound}storage:\n  buckets:\n    - {{ name: p-uploads }}\n");
    let prod_with_role = format!("{prod_with_keys}app:\n  iam: {{ role: p-app, trusted_by: [ecs-tasks.amazonaws.com] }}\n");
    let prod_no_app_bucket = format!("{sound}storage:\n  buckets:\n    - {{ name: p-logs, app_access: false }}\n");
    let mut bad_bucket = good_bucket.clone();
    bad_bucket["public_access_block"]["restrict_public_buckets"] = json!(false);
    // (rule, spec, resources, estimate, expected findings)
    let cases: Vec<(&str, &str, Vec<Resource>, f64, usize)> = vec![
        ("atlas-access-open", BASE, vec![res(Kind::AtlasAccessList, "0.0.0.0/0", json!({}), Source::Unmanaged)], 0.0, 1),
        ("atlas-access-open", BASE, vec![res(Kind::AtlasAccessList, "203.0.113.0/24", json!({}), Source::Live)], 0.0, 0),
        (
            "atlas-user-wide-role",
            BASE,
            vec![res(
                Kind::AtlasUser,
                "admin/app",
                json!({"roles": [{"role": "readWriteAnyDatabase", "database": "admin"}]}),
                Source::Live,
            )],
            0.0,
            1,
        ),
        (
            "atlas-user-wide-role",
            BASE,
            vec![res(Kind::AtlasUser, "admin/reader", json!({"roles": [{"role": "readAnyDatabase", "database": "admin"}]}), Source::Live)],
            0.0,
            1,
        ),
        (
            "atlas-user-wide-role",
            BASE,
            vec![res(Kind::AtlasUser, "admin/app", json!({"roles": [{"role": "readWrite", "database": "app"}]}), Source::Live)],
            0.0,
            0,
        ),
        (
            "atlas-production-backup",
            sound,
            vec![res(Kind::AtlasCluster, "main", json!({"tier": "M10", "backup": true, "point_in_time": false}), Source::Live)],
            0.0,
            1,
        ),
        ("atlas-production-backup", sound, vec![res(Kind::AtlasCluster, "main", json!({"tier": "M0"}), Source::Spec)], 0.0, 1),
        ("atlas-production-backup", sound, vec![res(Kind::AtlasCluster, "main", prod_cluster.clone(), Source::Live)], 0.0, 0),
        ("atlas-production-backup", BASE, vec![res(Kind::AtlasCluster, "main", json!({"tier": "M0"}), Source::Live)], 0.0, 0),
        (
            "atlas-termination-protection",
            sound,
            vec![res(Kind::AtlasCluster, "main", json!({"termination_protection": false}), Source::Live)],
            0.0,
            1,
        ),
        ("atlas-termination-protection", sound, vec![res(Kind::AtlasCluster, "main", prod_cluster.clone(), Source::Live)], 0.0, 0),
        ("s3-public-access", BASE, vec![res(Kind::Bucket, "b", bad_bucket.clone(), Source::Live)], 0.0, 1),
        ("s3-public-access", BASE, vec![res(Kind::Bucket, "b", good_bucket.clone(), Source::Live)], 0.0, 0),
        ("s3-encryption", BASE, vec![res(Kind::Bucket, "b", json!({"encryption": {}}), Source::Live)], 0.0, 1),
        ("s3-versioning", BASE, vec![res(Kind::Bucket, "b", json!({"versioning": false}), Source::Live)], 0.0, 1),
        (
            "s3-versioned-without-lifecycle",
            BASE,
            vec![res(
                Kind::Bucket,
                "b",
                json!({"versioning": true, "lifecycle": [{"status": "Enabled", "noncurrent_expire_days": null}]}),
                Source::Live,
            )],
            0.0,
            1,
        ),
        (
            "s3-versioned-without-lifecycle",
            BASE,
            vec![res(
                Kind::Bucket,
                "b",
                json!({"versioning": true, "lifecycle": [{"status": "Enabled", "prefix": "tmp/", "noncurrent_expire_days": 1}]}),
                Source::Live,
            )],
            0.0,
            1,
        ),
        ("s3-versioned-without-lifecycle", BASE, vec![res(Kind::Bucket, "b", good_bucket.clone(), Source::Live)], 0.0, 0),
        (
            "cdn-https",
            BASE,
            vec![res(Kind::Distribution, "a", json!({"default_behavior": {"viewer_protocol": "allow-all"}}), Source::Live)],
            0.0,
            1,
        ),
        ("cdn-https", BASE, vec![res(Kind::Distribution, "a", good_cdn.clone(), Source::Live)], 0.0, 0),
        (
            "cdn-https",
            BASE,
            vec![res(
                Kind::Distribution,
                "a",
                json!({"default_behavior": {"viewer_protocol": "redirect-to-https"}, "behaviors": [{"path": "images/*", "viewer_protocol": "redirect-to-https"}, {"path": "api/*", "viewer_protocol": "allow-all"}]}),
                Source::Live,
            )],
            0.0,
            1,
        ),
        (
            "cdn-alias-without-certificate",
            BASE,
            vec![res(Kind::Distribution, "a", json!({"aliases": ["cdn.example.com"], "certificate_arn": null}), Source::Spec)],
            0.0,
            1,
        ),
        ("atlas-tls-below-1.2", BASE, vec![res(Kind::AtlasCluster, "main", json!({"min_tls": "1.1"}), Source::Live)], 0.0, 1),
        ("atlas-tls-below-1.2", BASE, vec![res(Kind::AtlasCluster, "main", json!({"min_tls": "1.2"}), Source::Live)], 0.0, 0),
        ("atlas-tls-below-1.2", BASE, vec![res(Kind::AtlasCluster, "main", json!({"tier": "M0"}), Source::Live)], 0.0, 0),
        (
            "cdn-tls-below-1.2",
            BASE,
            vec![res(
                Kind::Distribution,
                "a",
                json!({"certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x", "min_tls": "TLSv1.1_2016"}),
                Source::Live,
            )],
            0.0,
            1,
        ),
        (
            "cdn-tls-below-1.2",
            BASE,
            vec![res(
                Kind::Distribution,
                "a",
                json!({"certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x", "min_tls": "TLSv1.2_2021"}),
                Source::Live,
            )],
            0.0,
            0,
        ),
        ("cdn-tls-below-1.2", BASE, vec![res(Kind::Distribution, "a", good_cdn.clone(), Source::Live)], 0.0, 0),
        ("cdn-default-certificate-tls", BASE, vec![res(Kind::Distribution, "a", good_cdn.clone(), Source::Live)], 0.0, 1),
        (
            "cdn-default-certificate-tls",
            BASE,
            vec![res(Kind::Distribution, "a", json!({"certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x"}), Source::Live)],
            0.0,
            0,
        ),
        ("atlas-public-access-production", sound, vec![res(Kind::AtlasAccessList, "203.0.113.7/32", json!({}), Source::Live)], 0.0, 1),
        (
            "atlas-public-access-production",
            sound,
            vec![res(Kind::AtlasAccessList, "sg-0123456789abcdef0", json!({}), Source::Live)],
            0.0,
            0,
        ),
        ("atlas-auditing-off-production", sound, vec![res(Kind::AtlasCluster, "main", prod_cluster.clone(), Source::Live)], 0.0, 1),
        (
            "atlas-auditing-off-production",
            sound,
            vec![
                res(Kind::AtlasCluster, "main", prod_cluster.clone(), Source::Live),
                res(Kind::AtlasAuditing, "p", json!({"enabled": true}), Source::Live),
            ],
            0.0,
            0,
        ),
        (
            "atlas-auditing-off-production",
            sound,
            vec![
                res(Kind::AtlasCluster, "main", prod_cluster.clone(), Source::Live),
                res(Kind::AtlasAuditing, "p", json!({"enabled": false}), Source::Live),
            ],
            0.0,
            1,
        ),
        ("atlas-auditing-off-production", BASE, vec![res(Kind::AtlasCluster, "main", prod_cluster.clone(), Source::Live)], 0.0, 0),
        (
            "atlas-encryption-own-key-production",
            sound,
            vec![res(Kind::AtlasCluster, "main", json!({"tier": "M10", "encryption_at_rest": "NONE"}), Source::Live)],
            0.0,
            1,
        ),
        (
            "atlas-encryption-own-key-production",
            sound,
            vec![res(Kind::AtlasCluster, "main", json!({"tier": "M10", "encryption_at_rest": "AWS"}), Source::Live)],
            0.0,
            0,
        ),
        ("cdn-no-hsts-production", sound, vec![res(Kind::Distribution, "assets", json!({"default_behavior": {}}), Source::Live)], 0.0, 1),
        (
            "cdn-no-hsts-production",
            sound,
            vec![res(
                Kind::Distribution,
                "assets",
                json!({"default_behavior": {"response_headers_policy": "SecurityHeadersPolicy"}}),
                Source::Live,
            )],
            0.0,
            0,
        ),
        ("cdn-no-hsts-production", BASE, vec![res(Kind::Distribution, "assets", json!({"default_behavior": {}}), Source::Live)], 0.0, 0),
        ("app-static-keys-production", &prod_with_keys, vec![], 0.0, 1),
        ("app-static-keys-production", &prod_with_role, vec![], 0.0, 0),
        ("app-static-keys-production", "environment: t\nstorage:\n  buckets:\n    - { name: t-uploads }\n", vec![], 0.0, 0),
        ("app-static-keys-production", &prod_no_app_bucket, vec![], 0.0, 0),
        ("atlas-encryption-own-key-production", sound, vec![res(Kind::AtlasCluster, "free", json!({"tier": "M0"}), Source::Live)], 0.0, 0),
        (
            "atlas-encryption-own-key-production",
            BASE,
            vec![res(Kind::AtlasCluster, "main", json!({"tier": "M10", "encryption_at_rest": "NONE"}), Source::Live)],
            0.0,
            0,
        ),
        ("atlas-auditing-off-production", sound, vec![res(Kind::AtlasCluster, "free", json!({"tier": "M0"}), Source::Live)], 0.0, 0),
        ("atlas-public-access-production", BASE, vec![res(Kind::AtlasAccessList, "203.0.113.7/32", json!({}), Source::Live)], 0.0, 0),
        ("atlas-public-access-production", sound, vec![res(Kind::AtlasPrivateEndpoint, "US_EAST_1", json!({}), Source::Live)], 0.0, 0),
        (
            "atlas-public-access-production",
            sound,
            vec![res(Kind::AtlasAccessList, "203.0.113.7/32", temporary(), Source::Unmanaged)],
            0.0,
            0,
        ),
        ("temporary-access-left-over", sound, vec![res(Kind::AtlasAccessList, "203.0.113.7/32", temporary(), Source::Unmanaged)], 0.0, 1),
        ("temporary-access-left-over", BASE, vec![res(Kind::AtlasAccessList, "203.0.113.7/32", temporary(), Source::Unmanaged)], 0.0, 1),
        (
            "temporary-access-left-over",
            BASE,
            vec![res(Kind::AtlasAccessList, "203.0.113.7/32", json!({"comment": "poactl temporary access"}), Source::Unmanaged)],
            0.0,
            0,
        ),
        (
            "temporary-access-left-over",
            BASE,
            vec![res(
                Kind::AtlasAccessList,
                "203.0.113.7/32",
                json!({"comment": "office", "delete_after": "2026-12-07T13:00:00Z"}),
                Source::Live,
            )],
            0.0,
            0,
        ),
        (
            "private-endpoint-open",
            BASE,
            vec![res(Kind::AtlasPrivateEndpoint, "US_EAST_1", json!({"allow_from": ["0.0.0.0/0"]}), Source::Spec)],
            0.0,
            1,
        ),
        (
            "private-endpoint-open",
            BASE,
            vec![res(
                Kind::AtlasPrivateEndpoint,
                "US_EAST_1",
                json!({"allow_from": ["sg-0123456789abcdef0"], "other_ingress": ["::/0 tcp 27017-27017"]}),
                Source::Live,
            )],
            0.0,
            1,
        ),
        (
            "private-endpoint-open",
            BASE,
            vec![res(
                Kind::AtlasPrivateEndpoint,
                "US_EAST_1",
                json!({"allow_from": ["sg-0123456789abcdef0", "10.0.0.0/16"]}),
                Source::Live,
            )],
            0.0,
            0,
        ),
        (
            "private-endpoint-wider-than-vpc",
            BASE,
            vec![res(
                Kind::AtlasPrivateEndpoint,
                "US_EAST_1",
                json!({"allow_from": ["10.0.0.0/8", "10.0.3.0/24"], "vpc_cidrs": ["10.0.0.0/16"]}),
                Source::Live,
            )],
            0.0,
            1,
        ),
        (
            "private-endpoint-wider-than-vpc",
            BASE,
            vec![res(
                Kind::AtlasPrivateEndpoint,
                "US_EAST_1",
                json!({"allow_from": ["10.1.0.0/24"], "vpc_cidrs": ["10.0.0.0/16", "10.1.0.0/16"]}),
                Source::Live,
            )],
            0.0,
            0,
        ),
        (
            "private-endpoint-wider-than-vpc",
            BASE,
            vec![res(Kind::AtlasPrivateEndpoint, "US_EAST_1", json!({"allow_from": ["172.16.0.0/12", "10.0.0.0/16"]}), Source::Spec)],
            0.0,
            1,
        ),
        (
            "private-endpoint-wider-than-vpc",
            BASE,
            vec![res(Kind::AtlasPrivateEndpoint, "US_EAST_1", json!({"allow_from": ["0.0.0.0/0", "sg-0123456789abcdef0"]}), Source::Spec)],
            0.0,
            0,
        ),
        ("billing-no-alert", BASE, vec![], 0.0, 1),
        ("billing-no-alert", sound, vec![], 0.0, 0),
        ("billing-budget-below-estimate", sound, vec![], 120.0, 1),
        ("billing-budget-below-estimate", sound, vec![], 80.0, 0),
    ];
    for (rule, spec, resources, estimate, want) in cases {
        let l = loaded(spec, &[]);
        let input = Input { loaded: &l, resources, estimate_usd: estimate };
        let got: Vec<Finding> = run(&input).into_iter().filter(|f| f.rule == rule).collect();
        assert_eq!(got.len(), want, "{rule} on {spec:?}: {got:?}");
    }
    assert!(RULES.iter().all(|r| !r.why.is_empty() && !r.fix.is_empty()));
    let ids: BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), RULES.len(), "rule ids are unique");
}

/// A `--temporary-access` entry as the access-list provider reads it.
fn temporary() -> Value {
    json!({"comment": "poactl temporary access: prod run", "delete_after": "2026-12-07T13:00:00Z"})
}

#[test]
fn the_app_policy_reaches_the_environments_buckets_only() {
    let l = loaded(
        "environment: t\nstorage:\n  buckets:\n    - { name: t-uploads }\n    - { name: t-docs, encryption: aws:kms, kms_key: arn:aws:kms:us-east-1:123456789012:key/abc }\n    - { name: t-backups, app_access: false, encryption: aws:kms, kms_key: arn:aws:kms:us-east-1:123456789012:key/bak }\n    - { name: t-logs, encryption: aws:kms, kms_key: alias/logs }\n    - { name: t-raw, region: eu-west-1, encryption: aws:kms, kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab }\n",
        &[],
    );
    let p = app_policy(&l);
    assert_eq!(
        p["Statement"][0]["Resource"],
        json!(["arn:aws:s3:::t-docs/*", "arn:aws:s3:::t-logs/*", "arn:aws:s3:::t-raw/*", "arn:aws:s3:::t-uploads/*"]),
        "app_access: false leaves the backups out"
    );
    assert!(p["Statement"][0]["Action"].as_array().unwrap().contains(&json!("s3:AbortMultipartUpload")));
    assert_eq!(p["Statement"][1]["Action"], json!(["s3:ListBucket"]));
    assert_eq!(
        p["Statement"][2]["Resource"],
        json!(["arn:aws:kms:eu-west-1:*:key/1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:us-east-1:123456789012:key/abc"]),
        "a bare key id becomes a key ARN in its bucket's region; the backups' key is left out"
    );
    assert_eq!(p["Statement"][3]["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"], json!(["alias/logs"]));
    assert!(!p["Statement"][0].to_string().contains("\"*\""), "no wildcard resource or action for objects");
}

#[test]
fn docs_audit_md_is_generated_from_the_rules_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/audit.md");
    let want = rules_markdown();
    if std::env::var_os("POACTL_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(got == want, "docs/audit.md is out of date: run POACTL_UPDATE_DOCS=1 cargo test --lib audit");
}
