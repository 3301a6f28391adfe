//! AWS as real S3, CloudFront and CloudWatch behave (issue 11): the real CLI against moto,
//! through a proxy that records every call and, where moto cannot show a real behaviour,
//! injects the answer the real service gives (each injection cites its source).

use std::sync::Arc;

use crate::support::{Fault, Injected, Moto, Poactl, Recorder, Seen, aws_config, spec_file};

use crate::support::poactl_aws as poactl;

fn s3_client(conf: &aws_config::SdkConfig, region: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf).region(aws_config::Region::new(region.to_string())).force_path_style(true).build(),
    )
}

fn cw_client(conf: &aws_config::SdkConfig, region: &str) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(conf).region(aws_config::Region::new(region.to_string())).build(),
    )
}

async fn bucket_tags(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut tags: Vec<String> = s3
        .get_bucket_tagging()
        .bucket(bucket)
        .send()
        .await
        .map(|t| t.tag_set().iter().map(|t| format!("{}={}", t.key(), t.value())).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

/// Buckets and alarms in a second region; each alarm where its metric lives; removed tags and
/// dimensions show and go; keys the spec ignores survive; a deleted public access block is
/// drift; a new unversioned bucket is never marked Suspended; its tags come with CreateBucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_maps_and_bucket_settings_behave_as_on_aws() {
    let moto = Moto::start();
    let proxy = Recorder::start(&moto.url).await;
    let conf = aws_config(&moto.url).await;
    let s3 = s3_client(&conf, "eu-west-1");
    let spec = |tags: &str, dims: &str| {
        format!(
            "environment: eu\naws: {{ region: eu-west-1 }}\nignore_tags: [cost-*]\nstorage:\n  buckets:\n    - {{ name: eu-media, region: eu-west-1, versioning: false, tags: {{ {tags} }} }}\nmonitoring:\n  alarms:\n    - {{ name: media-size, metric: {{ namespace: AWS/S3, name: BucketSizeBytes, dimensions: {{ BucketName: eu-media, StorageType: StandardStorage }} }}, period: 1d, above: 1000000000, notify: [arn:aws:sns:eu-west-1:123456789012:ops] }}\n    - {{ name: cdn-5xx, metric: {{ namespace: AWS/CloudFront, name: 5xxErrorRate, dimensions: {{ {dims} }} }}, above: 5, notify: [arn:aws:sns:us-east-1:123456789012:ops] }}\n"
        )
    };
    let (_dir, path) = spec_file("eu", &spec("team: media, owner: ana", "DistributionId: E2EXAMPLE, Region: Global"));
    poactl(&proxy.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);

    // The ownership tags came with CreateBucket; no PutBucketVersioning for an unversioned bucket.
    let calls = proxy.all();
    let create =
        calls.iter().find(|c| c.method == "PUT" && c.path.trim_end_matches('/') == "/eu-media" && c.query.is_empty()).unwrap_or_else(
            || panic!("CreateBucket: {:?}", calls.iter().map(|c| format!("{} {}?{}", c.method, c.path, c.query)).collect::<Vec<_>>()),
        );
    assert!(create.body.contains("<Tags>") && create.body.contains("poactl-managed"), "{}", create.body);
    assert!(!calls.iter().any(|c| c.method == "PUT" && c.query.contains("versioning")), "no versioning write for versioning: false");

    // Each alarm lives where its metric is published: S3 in the bucket's region, CloudFront in us-east-1.
    let names = |cw: aws_sdk_cloudwatch::Client| async move {
        let out = cw.describe_alarms().send().await.unwrap();
        out.metric_alarms().iter().map(|a| a.alarm_name().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(names(cw_client(&conf, "eu-west-1")).await, vec!["eu-media-size"]);
    assert_eq!(names(cw_client(&conf, "us-east-1")).await, vec!["eu-cdn-5xx"]);
    poactl(&proxy.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    // A tag someone else manages (ignore_tags: cost-*) is neither drift nor removed.
    let mut tags: Vec<aws_sdk_s3::types::Tag> = s3.get_bucket_tagging().bucket("eu-media").send().await.unwrap().tag_set().to_vec();
    tags.push(aws_sdk_s3::types::Tag::builder().key("cost-center").value("42").build().unwrap());
    s3.put_bucket_tagging()
        .bucket("eu-media")
        .tagging(aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(tags)).build().unwrap())
        .send()
        .await
        .unwrap();
    // Someone deletes the public access block: on real S3 the bucket is then not blocked.
    s3.delete_public_access_block().bucket("eu-media").send().await.unwrap();
    let drift = poactl(&proxy.url, &["drift", "-e", &path]).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("public_access_block.block_public_acls: live false, spec true"), "{}", drift.stdout);
    assert!(!drift.stdout.contains("cost-center"), "{}", drift.stdout);

    // A tag and a dimension leave the spec: both show as removals, and both go.
    std::fs::write(&path, spec("team: media", "DistributionId: E2EXAMPLE")).unwrap();
    let plan = poactl(&proxy.url, &["plan", "-e", &path]).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("~ tags.owner: \"ana\" -> (absent)"), "{}", plan.stdout);
    assert!(plan.stdout.contains("~ dimensions.Region: \"Global\" -> (absent)"), "{}", plan.stdout);
    poactl(&proxy.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let tags = bucket_tags(&s3, "eu-media").await;
    assert!(tags.contains(&"cost-center=42".to_string()) && !tags.iter().any(|t| t.starts_with("owner=")), "{tags:?}");
    let cdn = cw_client(&conf, "us-east-1").describe_alarms().alarm_names("eu-cdn-5xx").send().await.unwrap();
    let dims: Vec<&str> = cdn.metric_alarms()[0].dimensions().iter().map(|d| d.name().unwrap()).collect();
    assert_eq!(dims, vec!["DistributionId"]);
    poactl(&proxy.url, &["drift", "-e", &path]).await.expect_code(0);

    // The bucket leaves the spec: found in its region by discovery, deleted by --prune.
    std::fs::write(&path, "environment: eu\naws: { region: us-east-1 }\nstorage:\n  buckets:\n    - { name: eu-other }\n").unwrap();
    let plan = poactl(&proxy.url, &["plan", "-e", &path, "--prune"]).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("- storage.buckets.eu-media"), "{}", plan.stdout);
}

/// A CloudFront update keeps what someone else set (a default root object, a WAF web ACL),
/// and a delete interrupted after the disable resumes: no distribution and no OAC left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_updates_keep_foreign_settings_and_deletes_resume() {
    let moto = Moto::start();
    let conf = aws_config(&moto.url).await;
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let spec = |ttl: &str| {
        format!(
            "environment: cdn\nstorage:\n  buckets:\n    - {{ name: cdn-origin }}\ncdn:\n  distributions:\n    - {{ name: assets, origin: {{ bucket: cdn-origin }}, cache: [{{ path: \"images/*\", ttl: {ttl} }}] }}\n"
        )
    };
    let (_dir, path) = spec_file("cdn", &spec("30d"));
    poactl(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let list = cf.list_distributions().send().await.unwrap();
    let id = list.distribution_list().unwrap().items()[0].id().to_string();
    let current = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut cfg = current.distribution_config().unwrap().clone();
    cfg.default_root_object = Some("index.html".into());
    cfg.web_acl_id = Some("arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/0000".into());
    cf.update_distribution().id(&id).if_match(current.e_tag().unwrap()).distribution_config(cfg).send().await.unwrap();

    std::fs::write(&path, spec("7d")).unwrap();
    poactl(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let after = cf.get_distribution_config().id(&id).send().await.unwrap();
    let cfg = after.distribution_config().unwrap();
    assert_eq!(cfg.default_root_object(), Some("index.html"), "a TTL change keeps the default root object");
    assert_eq!(cfg.web_acl_id(), Some("arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/0000"));
    #[allow(deprecated)]
    let ttl = cfg.cache_behaviors().unwrap().items()[0].default_ttl();
    assert_eq!(ttl, Some(7 * 86_400));

    // A run stopped between DeleteDistribution and DeleteOriginAccessControl (a SIGKILL, a
    // lost runner): the distribution is gone, its OAC is not. The next run finds the OAC by its
    // poactl name and deletes it.
    let c = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut disabled = c.distribution_config().unwrap().clone();
    disabled.enabled = false;
    let out = cf.update_distribution().id(&id).if_match(c.e_tag().unwrap()).distribution_config(disabled).send().await.unwrap();
    cf.delete_distribution().id(&id).if_match(out.e_tag().unwrap()).send().await.unwrap();
    std::fs::write(&path, "environment: cdn\nstorage:\n  buckets:\n    - { name: cdn-origin }\n").unwrap();
    let plan = poactl(&moto.url, &["plan", "-e", &path, "--prune"]).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("- cdn.distributions.assets (origin access control)"), "{}", plan.stdout);
    let run = poactl(&moto.url, &["destroy", "-e", &path, "--allow-destroy", "--auto-approve"]).await;
    run.expect_code(0);
    let oacs = cf.list_origin_access_controls().send().await.unwrap();
    assert!(oacs.origin_access_control_list().is_none_or(|l| l.items().is_empty()), "no OAC is left behind: {oacs:?}\n{}", run.stdout);
}

/// Where moto cannot show S3's behaviour, the fault layer copies it: right after CreateBucket
/// the bucket's settings calls answer NoSuchBucket for a while (S3 is eventually consistent;
/// terraform-provider-aws retries them for two minutes, `internal/service/s3/bucket.go`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_bucket_converges_through_s3_propagation_delays() {
    let moto = Moto::start();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = refused.clone();
    let inject = Arc::new(move |s: &Seen, count: usize| {
        // The first three settings writes to the new bucket: 404 NoSuchBucket, as S3 answers
        // while CreateBucket propagates (S3 API reference, error codes: NoSuchBucket).
        // The name was just deleted elsewhere: CreateBucket answers 409 OperationAborted ("A
        // conflicting conditional operation is currently in progress against this resource",
        // S3 API reference, error codes) until the deletion settles.
        let create = s.method == "PUT" && s.path.trim_end_matches('/') == "/fresh-bucket" && s.query.is_empty();
        if create && count < 2 {
            return Some(Fault::Answer(Injected {
                status: 409,
                content_type: "application/xml",
                body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>OperationAborted</Code><Message>A conflicting conditional operation is currently in progress against this resource. Please try again.</Message></Error>".into(),
            }));
        }
        let settings = s.method == "PUT" && s.path.trim_end_matches('/') == "/fresh-bucket" && !s.query.is_empty();
        (settings && counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3).then(|| Fault::Answer(Injected {
            status: 404,
            content_type: "application/xml",
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>fresh-bucket</BucketName></Error>".into(),
        }))
    });
    let proxy = Recorder::start_with(&moto.url, inject).await;
    let (_dir, path) = spec_file("p", "environment: p\nstorage:\n  buckets:\n    - { name: fresh-bucket, versioning: true }\n");
    poactl(&proxy.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    assert!(refused.load(std::sync::atomic::Ordering::SeqCst) >= 3, "the fault layer answered");
    poactl(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);
}

/// A bucket-only spec reads S3 only; without credentials, one clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_in_scope_and_missing_credentials_are_one_error() {
    let moto = Moto::start();
    let proxy = Recorder::start(&moto.url).await;
    let (_dir, path) = spec_file("s", "environment: s\nstorage:\n  buckets:\n    - { name: only-a-bucket }\n");
    poactl(&proxy.url, &["plan", "-e", &path]).await.expect_code(0);
    let foreign: Vec<String> = proxy
        .all()
        .iter()
        .filter(|c| c.path.starts_with("/2020-05-31") || c.action.as_deref().is_some_and(|a| a.starts_with("Describe")))
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert!(foreign.is_empty(), "a bucket-only spec calls neither CloudFront nor CloudWatch: {foreign:?}");

    let run = Poactl::new(&["plan", "-e", &path])
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .run();
    run.expect_code(1);
    assert!(run.stderr.contains("AWS: no credentials were found"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "{}", run.stderr);
}

/// A bucket name another account holds, used as a CDN origin: the plan shows the bucket, its
/// policy and the distribution as conflicts, instead of stopping at the first read it cannot
/// make. The fault layer answers HeadBucket with 403, as S3 does for a bucket of another
/// account (S3 API reference, HeadBucket: "403 Forbidden" when the bucket exists but the caller
/// has no access).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_origin_bucket_is_a_conflict_in_the_plan() {
    let moto = Moto::start();
    let inject = Arc::new(|s: &Seen, _: usize| {
        (s.method == "HEAD" && s.path.trim_end_matches('/') == "/someone-elses")
            .then(|| Fault::Answer(Injected { status: 403, content_type: "application/xml", body: String::new() }))
    });
    let proxy = Recorder::start_with(&moto.url, inject).await;
    let (_dir, path) = spec_file(
        "t",
        "environment: t\nstorage:\n  buckets:\n    - { name: someone-elses }\ncdn:\n  distributions:\n    - { name: assets, origin: { bucket: someone-elses } }\n",
    );
    let plan = poactl(&proxy.url, &["plan", "-e", &path]).await;
    plan.expect_code(1);
    assert!(plan.stdout.contains("belongs to another AWS account"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("cdn.distributions.assets") && plan.stdout.contains("it uses storage.buckets.someone-elses"),
        "{}",
        plan.stdout
    );
    assert!(plan.stderr.contains("not owned by poactl") && !plan.stderr.contains("cannot"), "{}", plan.stderr);
    assert!(proxy.mutating().is_empty(), "a plan writes nothing: {:?}", proxy.mutating());
}

/// Settings someone changes by hand that poactl used to miss: a lifecycle rule switched off or
/// given a transition, alarm actions disabled. AWS' own `aws:` tags are never written: an alarm
/// keeps them, and a bucket carrying them gets a clear refusal instead of S3's InvalidTag.
/// SSE-KMS buckets get an S3 Bucket Key, and a note that CloudFront needs the key policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_made_changes_are_seen_and_system_tags_kept() {
    let moto = Moto::start();
    let conf = aws_config(&moto.url).await;
    let s3 = s3_client(&conf, "us-east-1");
    let cw = cw_client(&conf, "us-east-1");
    // S3 (and moto) refuse to let a requester write aws: tags, so the bucket CloudFormation made
    // is copied by the fault layer: its GetBucketTagging answer carries the stack's system tag,
    // as a CloudFormation-made bucket's does (CloudFormation User Guide, resource tags).
    let stack_made = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stack_made.clone();
    let inject = Arc::new(move |s: &Seen, _: usize| {
        let tagging = s.method == "GET" && s.path.trim_end_matches('/') == "/hm-stack" && s.query.starts_with("tagging");
        (tagging && flag.load(std::sync::atomic::Ordering::SeqCst)).then(|| {
            let tags: String = [
                ("aws:cloudformation:stack-name", "legacy"),
                ("poactl-env", "hm"),
                ("poactl-id", "storage.buckets.hm-stack"),
                ("poactl-managed", "true"),
                ("stage", "one"),
            ]
            .iter()
            .map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>"))
            .collect();
            Fault::Answer(Injected {
                status: 200,
                content_type: "application/xml",
                body: format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>{tags}</TagSet></Tagging>"),
            })
        })
    });
    let proxy = Recorder::start_with(&moto.url, inject).await;
    let moto_url = proxy.url.clone();
    let spec = |stage: &str| {
        format!(
            "environment: hm\ntags: {{ stage: {stage} }}\nstorage:\n  buckets:\n    - {{ name: hm-data, encryption: aws:kms, kms_key: alias/hm-data, lifecycle: [{{ prefix: logs/, expire_after: 30d }}] }}\n    - {{ name: hm-stack }}\ncdn:\n  distributions:\n    - {{ name: files, origin: {{ bucket: hm-data }} }}\nmonitoring:\n  alarms:\n    - {{ name: errors, metric: {{ namespace: App, name: Errors }}, above: 1 }}\n"
        )
    };
    let (_dir, path) = spec_file("hm", &spec("one"));
    let plan = poactl(&moto_url, &["plan", "-e", &path]).await;
    assert!(plan.stdout.contains("uses SSE-KMS: its key policy must allow kms:Decrypt"), "{}", plan.stdout);
    poactl(&moto_url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let enc = s3.get_bucket_encryption().bucket("hm-data").send().await.unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(rule.bucket_key_enabled(), Some(true));

    // By hand: the rule is switched off and gets a transition; the alarm's actions are disabled.
    let rule = aws_sdk_s3::types::LifecycleRule::builder()
        .id("prefix-logs")
        .status(aws_sdk_s3::types::ExpirationStatus::Disabled)
        .filter(aws_sdk_s3::types::LifecycleRuleFilter::builder().prefix("logs/").build())
        .expiration(aws_sdk_s3::types::LifecycleExpiration::builder().days(30).build())
        .transitions(
            aws_sdk_s3::types::Transition::builder().days(10).storage_class(aws_sdk_s3::types::TransitionStorageClass::Glacier).build(),
        )
        .build()
        .unwrap();
    s3.put_bucket_lifecycle_configuration()
        .bucket("hm-data")
        .lifecycle_configuration(aws_sdk_s3::types::BucketLifecycleConfiguration::builder().rules(rule).build().unwrap())
        .send()
        .await
        .unwrap();
    cw.disable_alarm_actions().alarm_names("hm-errors").send().await.unwrap();
    let drift = poactl(&moto_url, &["drift", "-e", &path]).await;
    drift.expect_code(2);
    for want in [
        "lifecycle[prefix-logs].status: live \"Disabled\", spec \"Enabled\"",
        "lifecycle[prefix-logs].transitions",
        "actions_enabled: live false, spec true",
    ] {
        assert!(drift.stdout.contains(want), "{want}:\n{}", drift.stdout);
    }
    poactl(&moto_url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    poactl(&moto_url, &["drift", "-e", &path]).await.expect_code(0);

    // AWS system tags (what CloudFormation puts on what it makes).
    let arn = cw.describe_alarms().alarm_names("hm-errors").send().await.unwrap().metric_alarms()[0].alarm_arn().unwrap().to_string();
    let system = aws_sdk_cloudwatch::types::Tag::builder().key("aws:cloudformation:stack-name").value("legacy").build();
    cw.tag_resource().resource_arn(&arn).tags(system).send().await.unwrap();
    stack_made.store(true, std::sync::atomic::Ordering::SeqCst);
    poactl(&moto_url, &["drift", "-e", &path]).await.expect_code(0);
    std::fs::write(&path, spec("two")).unwrap();
    let run = poactl(&moto_url, &["apply", "-e", &path, "--auto-approve"]).await;
    run.expect_code(1);
    assert!(
        run.stdout.contains("hm-stack") && run.stdout.contains("carries AWS system tags (aws:cloudformation:stack-name)"),
        "{}",
        run.stdout
    );
    let alarm_tags = cw.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    let keys: Vec<String> = alarm_tags.tags().iter().map(|t| format!("{}={}", t.key().unwrap(), t.value().unwrap())).collect();
    assert!(keys.contains(&"aws:cloudformation:stack-name=legacy".to_string()) && keys.contains(&"stage=two".to_string()), "{keys:?}");
}

/// The tagging index (issue 14) is an index, not the truth. A converged plan takes tags from it
/// and reads no bucket's or alarm's tags one by one, and no HeadBucket; an index that lags
/// (a drifted value for a bucket that is in sync, an entry for a bucket that is gone) or is
/// refused never changes the plan; real drift, which the index shows, is confirmed at the
/// source and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tagging_index_speeds_plans_up_and_never_decides_them() {
    use std::sync::atomic::{AtomicU8, Ordering};
    let moto = Moto::start();
    // 0: forward; 1: a lagging index (aws/aws-cli#4173: entries of deleted resources for
    // twenty minutes; tags of an earlier write); 2: tag:GetResources refused (a permission of
    // its own: Resource Groups Tagging API reference, GetResources, "tag:GetResources"; the
    // error is the API's AccessDeniedException).
    let mode = Arc::new(AtomicU8::new(0));
    let m = mode.clone();
    let inject: crate::support::Inject = Arc::new(move |s: &Seen, _| {
        if s.action.as_deref() != Some("GetResources") {
            return None;
        }
        match m.load(Ordering::SeqCst) {
            1 if s.body.contains("s3:bucket") && s.body.contains("poactl-env") => {
                let tags = |id: &str, team: &str| {
                    format!(
                        r#"[{{"Key":"poactl-managed","Value":"true"}},{{"Key":"poactl-env","Value":"ix"}},{{"Key":"poactl-id","Value":"{id}"}},{{"Key":"team","Value":"{team}"}}]"#
                    )
                };
                let body = format!(
                    r#"{{"PaginationToken":"","ResourceTagMappingList":[{{"ResourceARN":"arn:aws:s3:::ix-data","Tags":{}}},{{"ResourceARN":"arn:aws:s3:::ix-deleted-long-ago","Tags":{}}}]}}"#,
                    tags("storage.buckets.ix-data", "old-team"),
                    tags("storage.buckets.ix-deleted-long-ago", "web")
                );
                Some(Fault::Answer(Injected { status: 200, content_type: "application/x-amz-json-1.1", body }))
            }
            2 => Some(Fault::Answer(Injected {
                status: 400,
                content_type: "application/x-amz-json-1.1",
                body: r#"{"__type":"AccessDeniedException","Message":"User is not authorized to perform: tag:GetResources"}"#.into(),
            })),
            _ => None,
        }
    });
    let proxy = Recorder::start_with(&moto.url, inject).await;
    let (_dir, path) = spec_file(
        "ix",
        "environment: ix\ntags: { team: web }\nstorage:\n  buckets:\n    - { name: ix-data }\n    - { name: ix-logs }\nmonitoring:\n  alarms:\n    - { name: errors, metric: { namespace: App, name: Errors }, above: 1 }\nbilling:\n  alerts:\n    - { above_usd: 50 }\n",
    );
    poactl(&proxy.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);

    let plan_calls = |expect: i32| {
        let proxy = &proxy;
        let path = path.clone();
        async move {
            proxy.seen.lock().unwrap().clear();
            let run = poactl(&proxy.url, &["plan", "-e", &path, "--detailed-exitcode"]).await;
            run.expect_code(expect);
            (run, proxy.all())
        }
    };
    let count = |calls: &[Seen], f: &dyn Fn(&Seen) -> bool| calls.iter().filter(|c| f(c)).count();
    let tag_reads = |calls: &[Seen]| {
        count(calls, &|c| c.method == "GET" && c.query.starts_with("tagging"))
            + count(calls, &|c| c.action.as_deref() == Some("ListTagsForResource"))
    };

    // Converged: tags from the index, regions from the bucket list.
    let (_, calls) = plan_calls(0).await;
    assert!(count(&calls, &|c| c.action.as_deref() == Some("GetResources")) >= 2, "the index is read");
    assert_eq!(tag_reads(&calls), 0, "no tag read per resource when the index settles them");
    assert_eq!(count(&calls, &|c| c.method == "HEAD"), 0, "no HeadBucket for the account's own buckets");

    // A lagging index: the drifted value is checked at the bucket, which is in sync; the
    // deleted bucket's entry is nobody's business.
    mode.store(1, Ordering::SeqCst);
    let (run, calls) = plan_calls(0).await;
    assert!(!run.stdout.contains("ix-deleted-long-ago"), "{}", run.stdout);
    assert_eq!(count(&calls, &|c| c.method == "GET" && c.query.starts_with("tagging") && c.path.contains("ix-data")), 1);

    // Refused: every resource's tags are read, the plan is the same.
    mode.store(2, Ordering::SeqCst);
    let (_, calls) = plan_calls(0).await;
    assert!(tag_reads(&calls) >= 4, "two buckets and two alarms read one by one: {}", tag_reads(&calls));

    // Real drift, in the index and at the source: reported.
    mode.store(0, Ordering::SeqCst);
    let conf = aws_config(&moto.url).await;
    let s3 = s3_client(&conf, "us-east-1");
    let mut tags: Vec<aws_sdk_s3::types::Tag> = s3.get_bucket_tagging().bucket("ix-logs").send().await.unwrap().tag_set().to_vec();
    for t in &mut tags {
        if t.key() == "team" {
            *t = aws_sdk_s3::types::Tag::builder().key("team").value("ops").build().unwrap();
        }
    }
    s3.put_bucket_tagging()
        .bucket("ix-logs")
        .tagging(aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(tags)).build().unwrap())
        .send()
        .await
        .unwrap();
    let (run, _) = plan_calls(2).await;
    assert!(run.stdout.contains("storage.buckets.ix-logs") && run.stdout.contains("ops"), "{}", run.stdout);
}
