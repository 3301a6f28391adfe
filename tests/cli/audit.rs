//! `poactl audit` through the CLI: rules over the live state of moto (S3) and the Atlas
//! sandbox, including what someone changed or added by hand. One test per rule is in
//! `src/audit/tests.rs` (table-driven); these check that live state reaches the rules.

use serde_json::json;

use crate::support::{Moto, Poactl, SPEC_ENV, Sandbox, aws_env, spec_file};

fn findings(v: &serde_json::Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {}", f["rule"].as_str().unwrap(), f["address"].as_str().unwrap(), f["source"].as_str().unwrap_or("")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_a_bucket_opened_by_hand_fails_the_audit_while_its_spec_passes() {
    let moto = Moto::start();
    let env = aws_env(&moto.url);
    let (_dir, spec) = spec_file(
        "au",
        "environment: au\nstorage:\n  buckets:\n    - { name: au-uploads, versioning: true, lifecycle: [{ prefix: \"\", noncurrent_expire_after: 30d }] }\nbilling:\n  alerts:\n    - { above_usd: 10, notify: [arn:aws:sns:us-east-1:123456789012:b] }\n",
    );
    let run = |args: &[&str]| Poactl::new(args).envs_owned(&env).run();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    let clean = run(&["audit", "-e", &spec, "--fail-on", "low", "-o", "json"]);
    clean.expect_code(0);
    assert_eq!(findings(&clean.json()), Vec::<String>::new());
    let policy = &clean.json()["app_iam_policy"];
    assert_eq!(policy["Statement"][0]["Resource"], json!(["arn:aws:s3:::au-uploads/*"]));

    // Someone removes the public access block and suspends versioning.
    let conf = crate::support::aws_config(&moto.url).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    s3.delete_public_access_block().bucket("au-uploads").send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket("au-uploads")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Suspended).build(),
        )
        .send()
        .await
        .unwrap();
    let opened = run(&["audit", "-e", &spec, "--fail-on", "high", "-o", "json"]);
    opened.expect_code(2);
    let got = findings(&opened.json());
    assert!(got.contains(&"s3-public-access storage.buckets.au-uploads live".to_string()), "{got:?}");
    assert!(got.contains(&"s3-versioning storage.buckets.au-uploads live".to_string()), "{got:?}");
    // Medium findings alone do not fail `--fail-on high`; the spec alone has none.
    run(&["audit", "-e", &spec, "--offline", "--fail-on", "low"]).expect_code(0);
    let text = run(&["audit", "-e", &spec]);
    text.expect_code(0);
    assert!(text.stdout.contains("[HIGH] s3-public-access") && text.stdout.contains("fix: `public_access: blocked`"), "{}", text.stdout);
}

#[tokio::test]
async fn sandbox_an_access_entry_and_an_admin_user_added_by_hand_are_found() {
    let sbx = Sandbox::start(0.1);
    let (_dir, spec) = spec_file(
        "au",
        "environment: au\natlas:\n  org_id: 0123456789abcdef01234567\n  project: audit\n  access_list:\n    - { cidr: 10.0.0.0/16, comment: app vpc }\n",
    );
    let run = |args: &[&str]| Poactl::new(args).envs(SPEC_ENV).envs_owned(&sbx.env()).run();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    let g = sbx.group_id("audit").await;
    let (s, _) = sbx
        .api(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/accessList"),
            "2023-01-01",
            Some(json!([{"cidrBlock": "0.0.0.0/0", "comment": "debugging"}])),
        )
        .await;
    assert_eq!(s, 201);
    let (s, body) = sbx
        .api(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/databaseUsers"),
            "2023-01-01",
            Some(json!({"databaseName": "admin", "username": "root-ish", "password": "a-long-password-1", "roles": [{"roleName": "atlasAdmin", "databaseName": "admin"}], "groupId": g})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let audit = run(&["audit", "-e", &spec, "--fail-on", "high", "-o", "json"]);
    audit.expect_code(2);
    let got = findings(&audit.json());
    assert!(got.iter().any(|f| f.starts_with("atlas-access-open ") && f.ends_with(" unmanaged")), "{got:?}");
    assert!(got.iter().any(|f| f.starts_with("atlas-user-wide-role ") && f.contains("root-ish") && f.ends_with(" unmanaged")), "{got:?}");
    assert!(got.iter().any(|f| f.starts_with("billing-no-alert ")), "{got:?}");
}

#[tokio::test]
async fn sandbox_a_cluster_lowered_to_tls_1_0_by_hand_is_drift_an_audit_finding_and_put_back_by_apply() {
    let sbx = Sandbox::start(0.1);
    let (dir, spec) = spec_file(
        "tls",
        "environment: tls\natlas:\n  org_id: 0123456789abcdef01234567\n  project: tls\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1 }\n",
    );
    let run = |args: &[&str]| Poactl::new(args).envs(SPEC_ENV).envs_owned(&sbx.env()).run();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    let g = sbx.group_id("tls").await;
    let path = format!("/api/atlas/v2/groups/{g}/clusters/main");
    let (_, live) = sbx.api("GET", &path, "2024-08-05", None).await;
    assert_eq!(live.pointer("/advancedConfiguration/minimumEnabledTlsProtocol"), Some(&json!("TLS1_2")), "{live}");
    // Someone lowers it in the Atlas UI; the sandbox checks the enum as the spec states it.
    let (s, body) =
        sbx.api("PATCH", &path, "2024-10-23", Some(json!({"advancedConfiguration": {"minimumEnabledTlsProtocol": "TLS1_5"}}))).await;
    assert_eq!((s, body["errorCode"].as_str()), (400, Some("INVALID_ENUM_VALUE")), "{body}");
    let (s, body) =
        sbx.api("PATCH", &path, "2024-10-23", Some(json!({"advancedConfiguration": {"minimumEnabledTlsProtocol": "TLS1_0"}}))).await;
    assert_eq!(s, 200, "{body}");
    // The change makes the cluster UPDATING for the sandbox's transition time (0.1 s here).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let drift = run(&["drift", "-e", &spec]);
    drift.expect_code(2);
    assert!(drift.stdout.contains("min_tls: live \"1.0\", spec \"1.2\""), "{}", drift.stdout);
    let audit = run(&["audit", "-e", &spec, "--fail-on", "high", "-o", "json"]);
    audit.expect_code(2);
    let got = findings(&audit.json());
    assert!(got.iter().any(|f| f == "atlas-tls-below-1.2 atlas.clusters.main live"), "{got:?}");

    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    let (_, live) = sbx.api("GET", &path, "2024-08-05", None).await;
    assert_eq!(live.pointer("/advancedConfiguration/minimumEnabledTlsProtocol"), Some(&json!("TLS1_2")), "{live}");
    let audit = run(&["audit", "-e", &spec, "-o", "json"]);
    assert!(!findings(&audit.json()).iter().any(|f| f.starts_with("atlas-tls-below-1.2")), "{}", audit.stdout);

    // A spec that asks for 1.3 gets it; one that asks for 1.1 is allowed, and audit says so.
    std::fs::write(
        dir.path().join("tls.yaml"),
        std::fs::read_to_string(&spec).unwrap().replace("region: US_EAST_1", "region: US_EAST_1, min_tls: \"1.3\""),
    )
    .unwrap();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    let (_, live) = sbx.api("GET", &path, "2024-08-05", None).await;
    assert_eq!(live.pointer("/advancedConfiguration/minimumEnabledTlsProtocol"), Some(&json!("TLS1_3")), "{live}");
}

#[tokio::test]
async fn moto_a_distribution_on_its_own_certificate_keeps_tls_1_2_and_one_talked_down_by_hand_is_found() {
    let moto = Moto::start();
    let env = aws_env(&moto.url);
    // A certificate of the team's own, issued in us-east-1 before poactl runs (moto issues it
    // after a second): a wildcard, which covers the alias.
    let conf = crate::support::aws_config(&moto.url).await;
    let arn = crate::support::issued_certificate(&conf, "*.tl.example").await;
    let yaml = |alias: &str| {
        format!(
            "environment: tl\nstorage:\n  buckets:\n    - {{ name: tl-uploads }}\ncdn:\n  distributions:\n    - name: assets\n      origin: {{ bucket: tl-uploads }}\n      aliases: [{alias}]\n      certificate_arn: {arn}\n"
        )
    };
    let (_dir, spec) = spec_file("tl", &yaml("cdn.tl.example"));
    let run = |args: &[&str]| Poactl::new(args).envs_owned(&env).run();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    run(&["plan", "-e", &spec, "--detailed-exitcode"]).expect_code(0);
    let audit = run(&["audit", "-e", &spec, "-o", "json"]);
    let got = findings(&audit.json());
    assert!(!got.iter().any(|f| f.starts_with("cdn-tls-below-1.2") || f.starts_with("cdn-default-certificate-tls")), "{got:?}");

    // Someone picks an older security policy in the console.
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let id = cf.list_distributions().send().await.unwrap().distribution_list.unwrap().items.unwrap()[0].id.clone();
    let got_cfg = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut cfg = got_cfg.distribution_config.unwrap();
    let vc = cfg.viewer_certificate.clone().unwrap();
    cfg.viewer_certificate = Some(
        aws_sdk_cloudfront::types::ViewerCertificate::builder()
            .set_acm_certificate_arn(vc.acm_certificate_arn)
            .set_ssl_support_method(vc.ssl_support_method)
            .minimum_protocol_version(aws_sdk_cloudfront::types::MinimumProtocolVersion::TlSv12016)
            .build(),
    );
    cf.update_distribution().id(&id).if_match(got_cfg.e_tag.unwrap()).distribution_config(cfg).send().await.unwrap();

    let drift = run(&["drift", "-e", &spec]);
    drift.expect_code(2);
    assert!(drift.stdout.contains("min_tls: live \"TLSv1_2016\", spec \"TLSv1.2_2021\""), "{}", drift.stdout);
    let audit = run(&["audit", "-e", &spec, "--fail-on", "high", "-o", "json"]);
    audit.expect_code(2);
    assert!(findings(&audit.json()).iter().any(|f| f == "cdn-tls-below-1.2 cdn.distributions.assets live"), "{}", audit.stdout);
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    run(&["drift", "-e", &spec]).expect_code(0);

    // An alias two labels under the wildcard is not covered. Asked in the spec, it is a
    // conflict in the plan (real CloudFront refuses it), not a failed apply.
    std::fs::write(&spec, yaml("img.cdn.tl.example")).unwrap();
    let refused = run(&["plan", "-e", &spec]);
    refused.expect_code(1);
    assert!(
        refused.stdout.contains("CloudFront would refuse the aliases img.cdn.tl.example: certificate")
            && refused.stdout.contains("covers only *.tl.example"),
        "{}",
        refused.stdout
    );
    // Made by hand (moto takes it, real CloudFront would not), drift says it is not working.
    let got_cfg = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut cfg = got_cfg.distribution_config.unwrap();
    cfg.aliases = Some(aws_sdk_cloudfront::types::Aliases::builder().quantity(1).items("img.cdn.tl.example").build().unwrap());
    cf.update_distribution().id(&id).if_match(got_cfg.e_tag.unwrap()).distribution_config(cfg).send().await.unwrap();
    let drift = run(&["drift", "-e", &spec]);
    drift.expect_code(2);
    assert!(drift.stdout.contains("does not cover img.cdn.tl.example (it holds *.tl.example)"), "{}", drift.stdout);
}

/// The printed app policy is one that works when attached: multipart aborts allowed, KMS keys
/// named as IAM matches them (a key ARN, or an alias through `kms:ResourceAliases`), and only
/// the buckets the app uses (`app_access: false` leaves the backups out).
#[test]
fn the_app_policy_names_keys_as_iam_matches_them_and_only_the_buckets_the_app_uses() {
    let (_dir, spec) = spec_file(
        "au",
        "environment: au\nstorage:\n  buckets:\n    - { name: au-uploads, encryption: aws:kms, kms_key: alias/au-uploads }\n    - { name: au-backups, app_access: false, encryption: aws:kms, kms_key: arn:aws:kms:us-east-1:123456789012:key/bak }\n",
    );
    let run = Poactl::new(&["audit", "-e", &spec, "--offline", "-o", "json"]).envs(SPEC_ENV).run();
    let policy = &run.json()["app_iam_policy"];
    let text = policy.to_string();
    assert!(!text.contains("au-backups") && !text.contains("key/bak"), "{policy}");
    assert!(policy["Statement"][0]["Action"].as_array().unwrap().contains(&json!("s3:AbortMultipartUpload")), "{policy}");
    let by_alias = policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "AppKmsByAlias").expect("a statement for the alias");
    assert_eq!(by_alias["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"], json!(["alias/au-uploads"]));
    assert!(!text.contains("\"Resource\":[\"alias/"), "an alias is never a Resource: {policy}");
}

/// Every cache behaviour counts: a path pattern's behaviour set to serve plain HTTP by hand is
/// drift and a `cdn-https` finding, and apply puts `redirect-to-https` back on it.
#[tokio::test]
async fn moto_a_path_behaviour_talked_down_to_http_is_drift_and_an_audit_finding() {
    let moto = Moto::start();
    let env = aws_env(&moto.url);
    let conf = crate::support::aws_config(&moto.url).await;
    let (_dir, spec) = spec_file(
        "hb",
        "environment: hb\nstorage:\n  buckets:\n    - { name: hb-uploads }\ncdn:\n  distributions:\n    - name: assets\n      origin: { bucket: hb-uploads }\n      cache:\n        - { path: \"api/*\", ttl: 0s }\n",
    );
    let run = |args: &[&str]| Poactl::new(args).envs_owned(&env).run();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    run(&["drift", "-e", &spec]).expect_code(0);

    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let id = cf.list_distributions().send().await.unwrap().distribution_list.unwrap().items.unwrap()[0].id.clone();
    let got = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut cfg = got.distribution_config.unwrap();
    let mut behaviors = cfg.cache_behaviors.clone().unwrap();
    let mut items = behaviors.items.clone().unwrap();
    items[0].viewer_protocol_policy = aws_sdk_cloudfront::types::ViewerProtocolPolicy::AllowAll;
    behaviors.items = Some(items);
    cfg.cache_behaviors = Some(behaviors);
    cf.update_distribution().id(&id).if_match(got.e_tag.unwrap()).distribution_config(cfg).send().await.unwrap();

    let drift = run(&["drift", "-e", &spec]);
    drift.expect_code(2);
    assert!(drift.stdout.contains("viewer_protocol") && drift.stdout.contains("allow-all"), "{}", drift.stdout);
    let audit = run(&["audit", "-e", &spec, "--fail-on", "high", "-o", "json"]);
    audit.expect_code(2);
    let hit = audit.json()["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "cdn-https").cloned().expect("cdn-https");
    assert!(hit.to_string().contains("api/*: allow-all"), "{hit}");
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    run(&["drift", "-e", &spec]).expect_code(0);
}
