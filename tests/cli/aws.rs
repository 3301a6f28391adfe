//! AWS end to end: the real CLI against moto, through a recording proxy that counts the calls.
//! Settings are read back with the AWS SDK directly, not with poactl's own observe.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{Moto, Poactl, Recorder, Run, SPEC_ENV, aws_config, aws_env, spec_file};

const AWS_TARGETS: &[&str] = &[
    "--target",
    "storage",
    "--target",
    "cdn",
    "--target",
    "monitoring",
    "--target",
    "billing",
    "--target",
    "notifications",
    "--target",
    "app",
];

async fn poactl(endpoint: &str, args: &[&str]) -> Run {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if args.contains(&"prod") {
        all.extend(AWS_TARGETS.iter().map(|s| s.to_string()));
    }
    let env = aws_env(endpoint);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
        Poactl::new(&args).envs(SPEC_ENV).envs_owned(&env).run()
    })
    .await
    .unwrap()
}

fn drifted_fields(run: &Run) -> Vec<(String, String)> {
    let report = run.json();
    let mut out: Vec<(String, String)> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let addr = r["address"].as_str().unwrap().to_string();
            let fields: Vec<String> = r["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap().to_string()).collect();
            if fields.is_empty() {
                vec![(addr, r["status"].as_str().unwrap().to_string())]
            } else {
                fields.into_iter().map(|f| (addr.clone(), f)).collect()
            }
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_storage_cdn_alarms_converge_and_drift_is_detected() {
    let moto = Moto::start();
    let proxy = Recorder::start(&moto.url).await;
    let conf = aws_config(&moto.url).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let r53 = aws_sdk_route53::Client::new(&conf);
    let acm = aws_sdk_acm::Client::new(&conf);
    let zone = r53.create_hosted_zone().name("poafix.example").caller_reference("t").send().await.unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();

    let run = poactl(&proxy.url, &["apply", "-e", "prod", "--auto-approve"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("Apply complete! Resources: 18 added"), "{}", run.stdout);

    // Buckets, read back with the SDK.
    let uploads = "poafix-prod-uploads";
    let v = s3.get_bucket_versioning().bucket(uploads).send().await.unwrap();
    assert_eq!(v.status().map(|s| s.as_str()), Some("Enabled"));
    let enc = s3.get_bucket_encryption().bucket(uploads).send().await.unwrap();
    let rule = enc.server_side_encryption_configuration().unwrap().rules()[0]
        .apply_server_side_encryption_by_default()
        .unwrap()
        .sse_algorithm()
        .as_str()
        .to_string();
    assert_eq!(rule, "AES256");
    let pab = s3.get_public_access_block().bucket(uploads).send().await.unwrap();
    let c = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (c.block_public_acls(), c.ignore_public_acls(), c.block_public_policy(), c.restrict_public_buckets()),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let lc = s3.get_bucket_lifecycle_configuration().bucket(uploads).send().await.unwrap();
    let mut ids: Vec<&str> = lc.rules().iter().filter_map(|r| r.id()).collect();
    ids.sort();
    assert_eq!(ids, vec!["abort-multipart", "old-versions", "prefix-documents", "prefix-tmp"]);
    let tmp = lc.rules().iter().find(|r| r.id() == Some("prefix-tmp")).unwrap();
    assert_eq!(tmp.expiration().and_then(|e| e.days()), Some(7));
    let cors = s3.get_bucket_cors().bucket(uploads).send().await.unwrap();
    assert_eq!(cors.cors_rules()[0].allowed_origins().len(), 2);
    let tags: BTreeMap<String, String> = s3
        .get_bucket_tagging()
        .bucket(uploads)
        .send()
        .await
        .unwrap()
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(tags.get("poactl-managed").map(String::as_str), Some("true"));
    assert_eq!(tags.get("poactl-env").map(String::as_str), Some("prod"));
    assert_eq!(tags.get("poactl-id").map(String::as_str), Some("storage.buckets.poafix-prod-uploads"));

    // The distribution: OAC, behaviours, tags; the bucket policy lets only it read.
    let list = cf.list_distributions().send().await.unwrap();
    let summary = &list.distribution_list().unwrap().items()[0];
    let (dist_id, dist_arn) = (summary.id().to_string(), summary.arn().to_string());
    let cfg = cf.get_distribution_config().id(&dist_id).send().await.unwrap();
    let dc = cfg.distribution_config().unwrap();
    let origin = dc.origins().unwrap().items().iter().find(|o| o.id() == "uploads").unwrap();
    assert_eq!(origin.domain_name(), "poafix-prod-uploads.s3.us-east-1.amazonaws.com");
    let api = dc.origins().unwrap().items().iter().find(|o| o.id() == "api").unwrap();
    assert_eq!(api.domain_name(), "api.poafix.example");
    let oac = cf.get_origin_access_control().id(origin.origin_access_control_id().unwrap()).send().await.unwrap();
    assert_eq!(oac.origin_access_control().unwrap().origin_access_control_config().unwrap().name(), "poactl-prod-assets");
    #[allow(deprecated)]
    let ttls: Vec<(String, Option<i64>)> = dc
        .cache_behaviors()
        .unwrap()
        .items()
        .iter()
        .filter(|b| b.cache_policy_id().is_none_or(str::is_empty))
        .map(|b| (b.path_pattern().to_string(), b.default_ttl()))
        .collect();
    assert_eq!(ttls, vec![("images/*".into(), Some(31_536_000)), ("documents/*".into(), Some(15_552_000))]);
    let api_b = dc.cache_behaviors().unwrap().items().iter().find(|b| b.path_pattern() == "api/*").unwrap();
    assert_eq!((api_b.target_origin_id(), api_b.cache_policy_id()), ("api", Some("4135ea2d-6df8-44a3-9df3-4b5a84be39ad")));
    assert_eq!(dc.price_class().map(|p| p.as_str()), Some("PriceClass_100"));

    // The custom domain: an issued certificate for it in us-east-1, attached; its validation
    // CNAME and the alias A/AAAA records in the zone.
    let certs = acm.list_certificates().send().await.unwrap();
    let cert_arn = certs.certificate_summary_list()[0].certificate_arn().unwrap().to_string();
    let cert = acm.describe_certificate().certificate_arn(&cert_arn).send().await.unwrap();
    let cert = cert.certificate().unwrap();
    assert_eq!((cert.domain_name(), cert.status().map(|s| s.as_str())), (Some("cdn.poafix.example"), Some("ISSUED")));
    assert!(cert_arn.starts_with("arn:aws:acm:us-east-1:"), "{cert_arn}");
    let cert_tags = acm.list_tags_for_certificate().certificate_arn(&cert_arn).send().await.unwrap();
    assert!(cert_tags.tags().iter().any(|t| t.key() == "poactl-id" && t.value() == Some("cdn.certificates.assets")));
    let viewer = dc.viewer_certificate().unwrap();
    assert_eq!(
        (
            viewer.acm_certificate_arn(),
            viewer.ssl_support_method().map(|m| m.as_str()),
            viewer.minimum_protocol_version().map(|m| m.as_str())
        ),
        (Some(cert_arn.as_str()), Some("sni-only"), Some("TLSv1.2_2021"))
    );
    assert_eq!(dc.aliases().unwrap().items(), ["cdn.poafix.example"]);
    let records = r53.list_resource_record_sets().hosted_zone_id(&zone_id).send().await.unwrap();
    let records: Vec<(String, String, String)> = records
        .resource_record_sets()
        .iter()
        .map(|r| {
            let value = match r.alias_target() {
                Some(a) => format!("alias {} {}", a.hosted_zone_id(), a.dns_name().trim_end_matches('.')),
                None => r.resource_records().iter().map(|v| v.value().to_string()).collect::<Vec<_>>().join(" "),
            };
            (r.name().to_string(), r.r#type().as_str().to_string(), value)
        })
        .filter(|(_, t, _)| t != "NS" && t != "SOA")
        .collect();
    let dist_domain = summary.domain_name().to_string();
    let validation = cert.domain_validation_options()[0].resource_record().unwrap();
    for want in [
        ("cdn.poafix.example.".to_string(), "A".to_string(), format!("alias Z2FDTNDATAQYW2 {dist_domain}")),
        ("cdn.poafix.example.".to_string(), "AAAA".to_string(), format!("alias Z2FDTNDATAQYW2 {dist_domain}")),
        (validation.name().to_string(), "CNAME".to_string(), validation.value().to_string()),
    ] {
        assert!(records.contains(&want), "{want:?} not in {records:?}");
    }
    let owner = records.iter().find(|(n, t, _)| n == "_poactl.cdn.poafix.example." && t == "TXT").expect("owner record");
    assert!(owner.2.contains("poactl-env=prod") && owner.2.contains("poactl-id=cdn.dns_records.cdn.poafix.example"), "{owner:?}");
    let policy = s3.get_bucket_policy().bucket(uploads).send().await.unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "cloudfront.amazonaws.com");
    assert_eq!(statement["Condition"]["StringEquals"]["AWS:SourceArn"], dist_arn.as_str());

    // Alarms, with the distribution id resolved into the dimension; billing in us-east-1.
    let alarms = cw.describe_alarms().alarm_name_prefix("prod-").send().await.unwrap();
    let names: Vec<&str> = alarms.metric_alarms().iter().filter_map(|a| a.alarm_name()).collect();
    for want in ["prod-cdn-5xx", "prod-cdn-4xx", "prod-uploads-size", "prod-billing-above-100usd", "prod-billing-above-150usd"] {
        assert!(names.contains(&want), "{want} missing in {names:?}");
    }
    let five = alarms.metric_alarms().iter().find(|a| a.alarm_name() == Some("prod-cdn-5xx")).unwrap();
    assert!(five.dimensions().iter().any(|d| d.name() == Some("DistributionId") && d.value() == Some(dist_id.as_str())));
    let billing = alarms.metric_alarms().iter().find(|a| a.alarm_name() == Some("prod-billing-above-100usd")).unwrap();
    assert_eq!(
        (billing.namespace(), billing.metric_name(), billing.threshold()),
        (Some("AWS/Billing"), Some("EstimatedCharges"), Some(100.0))
    );

    // A second apply changes nothing, with zero mutating calls.
    proxy.seen.lock().unwrap().clear();
    let run = poactl(&proxy.url, &["apply", "-e", "prod", "--auto-approve"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    poactl(&proxy.url, &["plan", "-e", "prod", "--detailed-exitcode"]).await.expect_code(0);
    assert!(proxy.mutating().is_empty(), "mutating calls on a converged environment: {:?}", proxy.mutating());
    assert!(!proxy.seen.lock().unwrap().is_empty());

    // Out-of-band changes: suspend versioning, delete an alarm, change a TTL, remove a tag.
    s3.put_bucket_versioning()
        .bucket(uploads)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Suspended).build(),
        )
        .send()
        .await
        .unwrap();
    cw.delete_alarms().alarm_names("prod-cdn-4xx").send().await.unwrap();
    let mut new_cfg = dc.clone();
    let mut behaviors = new_cfg.cache_behaviors.clone().unwrap();
    #[allow(deprecated)]
    {
        behaviors.items.as_mut().unwrap()[0].default_ttl = Some(3600);
    }
    new_cfg.cache_behaviors = Some(behaviors);
    cf.update_distribution().id(&dist_id).if_match(cfg.e_tag().unwrap()).distribution_config(new_cfg).send().await.unwrap();
    let backups_tags: Vec<aws_sdk_s3::types::Tag> = s3
        .get_bucket_tagging()
        .bucket("poafix-prod-backups")
        .send()
        .await
        .unwrap()
        .tag_set()
        .iter()
        .filter(|t| t.key() != "team")
        .cloned()
        .collect();
    s3.put_bucket_tagging()
        .bucket("poafix-prod-backups")
        .tagging(aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(backups_tags)).build().unwrap())
        .send()
        .await
        .unwrap();

    // And in DNS: the AAAA alias and the validation CNAME (ACM renews only while it resolves).
    let by_hand = |action: aws_sdk_route53::types::ChangeAction, set: aws_sdk_route53::types::ResourceRecordSet| {
        aws_sdk_route53::types::Change::builder().action(action).resource_record_set(set).build().unwrap()
    };
    let aaaa = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name("cdn.poafix.example.")
        .r#type(aws_sdk_route53::types::RrType::Aaaa)
        .alias_target(
            aws_sdk_route53::types::AliasTarget::builder()
                .hosted_zone_id("Z2FDTNDATAQYW2")
                .dns_name(&dist_domain)
                .evaluate_target_health(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let cname = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name(validation.name())
        .r#type(aws_sdk_route53::types::RrType::Cname)
        .ttl(300)
        .resource_records(aws_sdk_route53::types::ResourceRecord::builder().value(validation.value()).build().unwrap())
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(by_hand(aws_sdk_route53::types::ChangeAction::Delete, aaaa))
                .changes(by_hand(aws_sdk_route53::types::ChangeAction::Delete, cname))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let drift = poactl(&proxy.url, &["drift", "-e", "prod", "-o", "json"]).await;
    drift.expect_code(2);
    assert_eq!(
        drifted_fields(&drift),
        vec![
            ("cdn.certificates.assets".to_string(), "validation_records".to_string()),
            ("cdn.distributions.assets".to_string(), "behaviors[images/*].default_ttl".to_string()),
            ("cdn.dns_records.cdn.poafix.example".to_string(), "types".to_string()),
            ("monitoring.alarms.cdn-4xx".to_string(), "missing".to_string()),
            ("storage.buckets.poafix-prod-backups".to_string(), "tags.team".to_string()),
            ("storage.buckets.poafix-prod-uploads".to_string(), "versioning".to_string()),
        ]
    );
    let text = poactl(&proxy.url, &["drift", "-e", "prod"]).await;
    assert!(text.stdout.contains("versioning: live false, spec true"), "{}", text.stdout);
    assert!(text.stdout.contains("behaviors[images/*].default_ttl: live 3600, spec 31536000"), "{}", text.stdout);

    poactl(&proxy.url, &["apply", "-e", "prod", "--auto-approve"]).await.expect_code(0);
    poactl(&proxy.url, &["drift", "-e", "prod"]).await.expect_code(0);
    let v = s3.get_bucket_versioning().bucket(uploads).send().await.unwrap();
    assert_eq!(v.status().map(|s| s.as_str()), Some("Enabled"));
    let records = r53.list_resource_record_sets().hosted_zone_id(&zone_id).send().await.unwrap();
    let types: Vec<&str> = records.resource_record_sets().iter().map(|r| r.r#type().as_str()).collect();
    assert_eq!(types.iter().filter(|t| **t == "AAAA" || **t == "CNAME").count(), 2, "{types:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unowned_bucket_is_reported_and_left_untouched() {
    let moto = Moto::start();
    let conf = aws_config(&moto.url).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    s3.create_bucket().bucket("poafix-legacy-uploads").send().await.unwrap();

    let (_dir, spec) = spec_file(
        "legacy",
        "environment: legacy\nstorage:\n  buckets:\n    - { name: poafix-legacy-uploads, versioning: true }\n    - { name: poafix-legacy-new }\n",
    );
    let plan = poactl(&moto.url, &["plan", "-e", &spec]).await;
    plan.expect_code(1);
    assert!(
        plan.stdout.contains("storage.buckets.poafix-legacy-uploads") && plan.stdout.contains("no poactl ownership tags"),
        "{}",
        plan.stdout
    );
    assert!(plan.stderr.contains("not owned by poactl"), "{}", plan.stderr);

    let apply = poactl(&moto.url, &["apply", "-e", &spec, "--auto-approve"]).await;
    apply.expect_code(1);
    assert!(apply.stdout.contains("+ storage.buckets.poafix-legacy-new: created"), "the rest is applied: {}", apply.stdout);
    // Untouched: no tags added, versioning not enabled.
    assert!(s3.get_bucket_tagging().bucket("poafix-legacy-uploads").send().await.is_err());
    let v = s3.get_bucket_versioning().bucket("poafix-legacy-uploads").send().await.unwrap();
    assert_ne!(v.status().map(|s| s.as_str()), Some("Enabled"));
    poactl(&moto.url, &["drift", "-e", &spec]).await.expect_code(2);

    // Taking it over is explicit: --adopt writes poactl's tags and converges the settings.
    assert!(plan.stdout.contains("--adopt"), "{}", plan.stdout);
    poactl(&moto.url, &["apply", "-e", &spec, "--auto-approve", "--adopt"]).await.expect_code(0);
    let tags: Vec<String> = s3
        .get_bucket_tagging()
        .bucket("poafix-legacy-uploads")
        .send()
        .await
        .unwrap()
        .tag_set()
        .iter()
        .map(|t| format!("{}={}", t.key(), t.value()))
        .collect();
    assert!(tags.contains(&"poactl-id=storage.buckets.poafix-legacy-uploads".to_string()), "{tags:?}");
    let v = s3.get_bucket_versioning().bucket("poafix-legacy-uploads").send().await.unwrap();
    assert_eq!(v.status().map(|s| s.as_str()), Some("Enabled"));
    poactl(&moto.url, &["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);
}
