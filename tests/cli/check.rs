//! `poactl check` through the CLI: the probe object against moto, the alarms' state, and the
//! database logins against the wire mock with access control (the mock's users stand for the
//! ones Atlas puts on the cluster).

use crate::support::{Moto, Poactl, SPEC_ENV, Sandbox, aws_env, spec_file};
use poactl::sandbox::mongo::{MockUser, MongoMock};

fn statuses(v: &serde_json::Value) -> Vec<String> {
    v["checks"].as_array().unwrap().iter().map(|c| format!("{} {}", c["status"].as_str().unwrap(), c["name"].as_str().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_buckets_take_a_probe_and_alarms_report_until_one_is_gone() {
    let moto = Moto::start();
    let env = aws_env(&moto.url);
    let (_dir, spec) = spec_file(
        "ck",
        "environment: ck\nstorage:\n  buckets:\n    - { name: ck-uploads, versioning: true }\nmonitoring:\n  alarms:\n    - { name: errors, metric: { namespace: App, name: Errors }, above: 1 }\nnotifications:\n  topics:\n    b: { email: [billing@poafix.example], region: us-east-1 }\nbilling:\n  alerts:\n    - { above_usd: 10, notify: [\"${notifications.topics.b.arn}\"] }\n",
    );
    let run = |args: &[&str]| Poactl::new(args).envs_owned(&env).run();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    let ok = run(&["check", "-e", &spec, "-o", "json"]);
    ok.expect_code(0);
    let got = statuses(&ok.json());
    for want in [
        "pass write, read and delete a probe in storage.buckets.ck-uploads",
        "pass monitoring.alarms.errors exists and reports",
        "pass billing.alarms.above-10usd exists and reports",
        // Not production: a topic nobody confirmed yet is said, not failed.
        "skip notifications.topics.b has a confirmed subscriber",
    ] {
        assert!(got.iter().any(|g| g == want), "missing {want:?} in {got:?}");
    }
    // Nothing of the probe is left: in a versioned bucket a plain DELETE only adds a delete
    // marker and keeps the version (S3 User Guide, "Deleting object versions"), which a later
    // `destroy` would find; the probe is deleted by its version id.
    let conf = crate::support::aws_config(&moto.url).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    let listed = s3.list_object_versions().bucket("ck-uploads").send().await.unwrap();
    assert!(
        listed.versions().is_empty() && listed.delete_markers().is_empty(),
        "no version and no delete marker left: {:?} {:?}",
        listed.versions(),
        listed.delete_markers()
    );

    // Someone deletes the alarm: the check fails and says what to do.
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let names = cw.describe_alarms().send().await.unwrap().metric_alarms.unwrap_or_default();
    let errors = names.iter().filter_map(|a| a.alarm_name.clone()).find(|n| n.contains("errors")).unwrap();
    cw.delete_alarms().alarm_names(errors).send().await.unwrap();
    let failed = run(&["check", "-e", &spec, "--only", "alarms"]);
    failed.expect_code(1);
    assert!(
        failed.stdout.contains("FAIL  alarms   monitoring.alarms.errors exists and reports")
            && failed.stdout.contains("run `poactl apply`"),
        "{}",
        failed.stdout
    );
    assert!(failed.stdout.contains("1 failed"), "{}", failed.stdout);
    run(&["check", "-e", &spec, "--only", "nonsense"]).expect_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_each_user_logs_in_uses_its_roles_and_is_refused_outside_them() {
    let sbx = Sandbox::start(0.1);
    let mock = MongoMock::start().await;
    let spec_text = format!(
        "environment: ck\natlas:\n  org_id: 0123456789abcdef01234567\n  project: check\n  database_users:\n    - {{ username: app, password: \"${{env:POAFIX_DB_PASSWORD}}\", roles: [{{ role: readWrite, database: shop }}] }}\n    - {{ username: admin-ish, password: \"${{env:POAFIX_DB_PASSWORD}}\", roles: [{{ role: readWriteAnyDatabase, database: admin }}] }}\ndatabase:\n  name: shop\n  uri: \"{}\"\n",
        mock.uri
    );
    let (_dir, spec) = spec_file("ck", &spec_text);
    let env = sbx.env();
    let run = |args: &[&str]| Poactl::new(args).envs(SPEC_ENV).envs_owned(&env).run();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    let password = SPEC_ENV.iter().find(|(k, _)| *k == "POAFIX_DB_PASSWORD").unwrap().1;
    mock.set_users(vec![
        MockUser::new("admin", "app", password, &[("readWrite", "shop")]),
        MockUser::new("admin", "admin-ish", password, &[("readWriteAnyDatabase", "admin")]),
    ]);
    let ok = tokio::task::spawn_blocking({
        let spec = spec.clone();
        let env = env.clone();
        move || Poactl::new(&["check", "-e", &spec, "--only", "database", "-o", "json"]).envs(SPEC_ENV).envs_owned(&env).run()
    })
    .await
    .unwrap();
    ok.expect_code(0);
    let got = statuses(&ok.json());
    for want in [
        "pass log in as app",
        "pass app may use its readWrite role on shop",
        "pass app is refused outside its roles",
        "pass log in as admin-ish",
        "skip admin-ish is refused outside its roles",
    ] {
        assert!(got.iter().any(|g| g == want), "missing {want:?} in {got:?}");
    }
    assert!(!ok.stdout.contains(password), "the password is never printed");

    // The cluster has another password for app: the login fails. Then app has a role the spec
    // does not give it: the probe outside its roles passes, and the check fails.
    mock.set_users(vec![MockUser::new("admin", "app", "another-password", &[("readWrite", "shop")])]);
    let refused = tokio::task::spawn_blocking({
        let spec = spec.clone();
        let env = env.clone();
        move || Poactl::new(&["check", "-e", &spec, "--only", "database"]).envs(SPEC_ENV).envs_owned(&env).run()
    })
    .await
    .unwrap();
    refused.expect_code(1);
    assert!(
        refused.stdout.contains("FAIL  database log in as app") && refused.stdout.contains("AuthenticationFailed, 18"),
        "{}",
        refused.stdout
    );
    mock.set_users(vec![MockUser::new("admin", "app", password, &[("readWrite", "shop"), ("readAnyDatabase", "admin")])]);
    let open = tokio::task::spawn_blocking(move || {
        Poactl::new(&["check", "-e", &spec, "--only", "database"]).envs(SPEC_ENV).envs_owned(&env).run()
    })
    .await
    .unwrap();
    open.expect_code(1);
    assert!(
        open.stdout.contains("FAIL  database app is refused outside its roles")
            && open.stdout.contains("it read a database none of its roles in the spec names"),
        "{}",
        open.stdout
    );
}

/// Backups: the latest completed snapshot is younger than the schedule allows, and
/// point-in-time is on (the sandbox serves `backup/snapshots`, in no documented order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_backups_need_a_recent_snapshot_and_point_in_time() {
    let sbx = Sandbox::start(0.1);
    let (_dir, spec) = spec_file(
        "ck",
        "environment: ck\natlas:\n  org_id: 0123456789abcdef01234567\n  project: backups\n  clusters:\n    - name: main\n      tier: M10\n      region: US_EAST_1\n      backup:\n        enabled: true\n        point_in_time: true\n        schedule:\n          - { every: hourly, interval: 6, keep: 2d }\n          - { every: daily, keep: 7d }\n",
    );
    let env = sbx.env();
    let run = |args: &[&str]| Poactl::new(args).envs(SPEC_ENV).envs_owned(&env).run();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).expect_code(0);
    let ok = run(&["check", "-e", &spec, "--only", "backups", "-o", "json"]);
    ok.expect_code(0);
    let got = statuses(&ok.json());
    assert_eq!(got, vec!["pass atlas.clusters.main has a recent snapshot", "pass atlas.clusters.main has point-in-time restore on"]);

    run(&["drift", "-e", &spec]).expect_code(0);

    // A new cluster without a snapshot yet: its first is not due, so nothing fails.
    let g = sbx.group_id("backups").await;
    sbx.control(&format!("snapshots/{g}/main"), serde_json::json!({"clear": true})).await;
    let fresh = run(&["check", "-e", &spec, "--only", "backups", "-o", "json"]);
    fresh.expect_code(0);
    assert_eq!(statuses(&fresh.json())[0], "skip atlas.clusters.main has a recent snapshot", "{}", fresh.stdout);
    run(&["drift", "-e", &spec]).expect_code(0);

    // Snapshots stopped 30 hours ago, with a newer failed one listed after an older one.
    sbx.control(&format!("snapshots/{g}/main"), serde_json::json!({"clear": true, "age_hours": 30})).await;
    sbx.control(&format!("snapshots/{g}/main"), serde_json::json!({"age_hours": 40})).await;
    sbx.control(&format!("snapshots/{g}/main"), serde_json::json!({"age_hours": 1, "status": "failed"})).await;
    let stale = run(&["check", "-e", &spec, "--only", "backups"]);
    stale.expect_code(1);
    assert!(
        stale.stdout.contains("FAIL  backups  atlas.clusters.main has a recent snapshot")
            && stale.stdout.contains("30.0 h ago; the schedule takes one every 6 h"),
        "{}",
        stale.stdout
    );

    // The same finding is drift (CI fails on it), and a warning in the plan, which has
    // nothing to change: no apply takes snapshots.
    let drift = run(&["drift", "-e", &spec]);
    drift.expect_code(2);
    assert!(drift.stdout.contains("! atlas.backup_schedules.main: not working: the latest completed snapshot is from"), "{}", drift.stdout);
    let json = run(&["drift", "-e", &spec, "-o", "json"]);
    json.expect_code(2);
    let unhealthy = json.json()["unhealthy"].clone();
    assert_eq!(unhealthy.as_array().map(Vec::len), Some(1), "{unhealthy}");
    assert!(unhealthy[0]["message"].as_str().unwrap().contains("30.0 h ago"), "{unhealthy}");
    let plan = run(&["plan", "-e", &spec, "--detailed-exitcode"]);
    plan.expect_code(0);
    assert!(plan.stdout.contains("Not working as the spec asks") && plan.stdout.contains("30.0 h ago"), "{}", plan.stdout);
}

/// The CDN: a probe in the origin bucket arrives through the distribution's OAC (a fake of the
/// edge in front of moto), a direct anonymous GET of it is refused, and each cache behavior
/// caches it as the spec's TTL says. Then what goes wrong: a TTL changed by hand, a bucket
/// made public, an OAC taken off the origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_the_cdn_serves_through_oac_refuses_direct_reads_and_caches_as_the_spec_says() {
    let moto = Moto::start();
    let edge = crate::edge::Edge::start(&moto.url).await;
    let mut env = aws_env(&moto.url);
    env.push(("POACTL_CDN_EDGE_URL", edge.url.clone()));
    let (_dir, spec) = spec_file(
        "cd",
        "environment: cd\nstorage:\n  buckets:\n    - { name: cd-uploads }\ncdn:\n  distributions:\n    - name: assets\n      origin: { bucket: cd-uploads }\n      domain: cdn.cd.example\n      cache:\n        - { path: \"images/*\", ttl: 365d }\n        - { path: \"api/*\", ttl: 0 }\n",
    );
    let envs = env.clone();
    let run = move |args: Vec<String>| {
        let envs = envs.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Poactl::new(&args).envs_owned(&envs).run()
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    run(args(&["apply", "-e", &spec, "--auto-approve", "-q"])).await.unwrap().expect_code(0);
    let ok = run(args(&["check", "-e", &spec, "--only", "cdn", "-o", "json"])).await.unwrap();
    let got = statuses(&ok.json());
    assert_eq!(
        got,
        vec![
            "pass cdn.distributions.assets serves a probe over HTTPS through its OAC",
            "pass cdn.distributions.assets serves the probe as https://cdn.cd.example",
            "pass storage.buckets.cd-uploads refuses a direct GET of the probe",
            "pass cdn.distributions.assets caches `images/*` as its TTL says (31536000 s)",
            "pass cdn.distributions.assets caches `api/*` as its TTL says (0 s)",
            "pass cdn.distributions.assets caches the default behavior as its TTL says (86400 s)",
        ],
        "{}",
        ok.stdout
    );
    ok.expect_code(0);
    let conf = crate::support::aws_config(&moto.url).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    let listed = s3.list_objects_v2().bucket("cd-uploads").send().await.unwrap();
    assert!(listed.contents.unwrap_or_default().is_empty(), "the probes are deleted");

    // A wrong TTL: someone caches api/* for a day in the console.
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let id = cf.list_distributions().send().await.unwrap().distribution_list.unwrap().items.unwrap()[0].id.clone();
    let got_cfg = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut cfg = got_cfg.distribution_config.unwrap();
    let mut behaviors = cfg.cache_behaviors.clone().unwrap();
    let items = behaviors.items.as_mut().unwrap();
    let api = items.iter().position(|b| b.path_pattern.contains("api")).unwrap();
    #[allow(deprecated)]
    {
        let mut b = items[api].clone();
        b.default_ttl = Some(86_400);
        b.max_ttl = Some(86_400);
        items[api] = b;
    }
    cfg.cache_behaviors = Some(behaviors);
    cf.update_distribution().id(&id).if_match(got_cfg.e_tag.unwrap()).distribution_config(cfg).send().await.unwrap();
    let ttl = run(args(&["check", "-e", &spec, "--only", "cdn"])).await.unwrap();
    ttl.expect_code(1);
    assert!(
        ttl.stdout.contains("FAIL  cdn      cdn.distributions.assets caches `api/*` as its TTL says (0 s)")
            && ttl.stdout.contains("came from the cache (Hit from cloudfront) though the spec says TTL 0"),
        "{}",
        ttl.stdout
    );
    run(args(&["apply", "-e", &spec, "--auto-approve", "-q"])).await.unwrap().expect_code(0);

    // The alias taken off the distribution by hand: the edge no longer serves the domain.
    let got_cfg = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut cfg = got_cfg.distribution_config.unwrap();
    cfg.aliases = Some(aws_sdk_cloudfront::types::Aliases::builder().quantity(0).build().unwrap());
    cf.update_distribution().id(&id).if_match(got_cfg.e_tag.unwrap()).distribution_config(cfg).send().await.unwrap();
    let alias = run(args(&["check", "-e", &spec, "--only", "cdn"])).await.unwrap();
    alias.expect_code(1);
    assert!(
        alias.stdout.contains("FAIL  cdn      cdn.distributions.assets serves the probe as https://cdn.cd.example")
            && alias.stdout.contains("answered 403 Forbidden: is cdn.cd.example an alias of this distribution"),
        "{}",
        alias.stdout
    );
    run(args(&["apply", "-e", &spec, "--auto-approve", "-q"])).await.unwrap().expect_code(0);

    // A public bucket: anyone may read it past the CDN.
    s3.delete_public_access_block().bucket("cd-uploads").send().await.unwrap();
    let policy = s3.get_bucket_policy().bucket("cd-uploads").send().await.unwrap().policy.unwrap();
    let mut p: serde_json::Value = serde_json::from_str(&policy).unwrap();
    p["Statement"].as_array_mut().unwrap().push(serde_json::json!({"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::cd-uploads/*"}));
    s3.put_bucket_policy().bucket("cd-uploads").policy(p.to_string()).send().await.unwrap();
    let public = run(args(&["check", "-e", &spec, "--only", "cdn"])).await.unwrap();
    public.expect_code(1);
    assert!(
        public.stdout.contains("FAIL  cdn      storage.buckets.cd-uploads refuses a direct GET of the probe")
            && public.stdout.contains("anyone can read it without the CDN"),
        "{}",
        public.stdout
    );

    // The bucket policy loses the distribution: the edge is refused, and check says why.
    s3.delete_bucket_policy().bucket("cd-uploads").send().await.unwrap();
    let refused = run(args(&["check", "-e", &spec, "--only", "cdn"])).await.unwrap();
    refused.expect_code(1);
    assert!(refused.stdout.contains("answered 403: the bucket refuses CloudFront"), "{}", refused.stdout);
}

/// Calls moto's KMS as any client would (it checks no signature), for the test's own setup.
async fn kms(moto: &str, action: &str, body: serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(moto)
        .header("x-amz-target", format!("TrentService.{action}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A 403 through the CDN says which refusal it is: S3 unable to decrypt for CloudFront (the
/// bucket's KMS key policy lets no CloudFront in; the test edge copies S3's KMS AccessDenied),
/// then, the key policy mended, a pass; then a disabled distribution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_a_403_through_the_cdn_names_the_kms_key_policy_or_the_disabled_distribution() {
    let moto = Moto::start();
    let edge = crate::edge::Edge::start(&moto.url).await;
    let key = kms(&moto.url, "CreateKey", serde_json::json!({"Description": "uploads"})).await;
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    let mut env = aws_env(&moto.url);
    env.push(("POACTL_CDN_EDGE_URL", edge.url.clone()));
    let spec_text = |enabled: bool| {
        format!(
            "environment: kd\nstorage:\n  buckets:\n    - {{ name: kd-uploads, encryption: aws:kms, kms_key: {key_arn} }}\ncdn:\n  distributions:\n    - name: assets\n      origin: {{ bucket: kd-uploads }}\n      enabled: {enabled}\n"
        )
    };
    let (dir, spec) = spec_file("kd", &spec_text(true));
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let envs = env.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Poactl::new(&args).envs_owned(&envs).run()
        })
    };
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await.unwrap().expect_code(0);
    let served = "cdn.distributions.assets serves a probe over HTTPS through its OAC";

    let refused = run(&["check", "-e", &spec, "--only", "cdn"]).await.unwrap();
    refused.expect_code(1);
    assert!(
        refused.stdout.contains(&format!("FAIL  cdn      {served}"))
            && refused.stdout.contains("S3 could not decrypt the object for CloudFront")
            && refused.stdout.contains("KMS key policy must allow kms:Decrypt"),
        "{}",
        refused.stdout
    );

    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "CloudFront", "Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": ["kms:Decrypt"], "Resource": "*"}
    ]});
    kms(&moto.url, "PutKeyPolicy", serde_json::json!({"KeyId": key_arn, "PolicyName": "default", "Policy": policy.to_string()})).await;
    let mended = run(&["check", "-e", &spec, "--only", "cdn"]).await.unwrap();
    assert!(mended.stdout.contains(&format!("pass  cdn      {served}")), "{}", mended.stdout);

    std::fs::write(dir.path().join("kd.yaml"), spec_text(false)).unwrap();
    run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await.unwrap().expect_code(0);
    let disabled = run(&["check", "-e", &spec, "--only", "cdn"]).await.unwrap();
    disabled.expect_code(1);
    assert!(
        disabled.stdout.contains(&format!("FAIL  cdn      {served}")) && disabled.stdout.contains("the distribution is disabled"),
        "{}",
        disabled.stdout
    );
}

/// The API behind the CDN (issue 32, item 5): its health path is fetched through the
/// distribution (routed to the API origin, with the secret header CloudFront adds, and not
/// cached) and directly; a behaviour someone set to cache the API fails the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_the_api_health_path_is_reached_through_the_cdn_uncached_and_directly() {
    const SECRET: &str = "check-origin-secret-5Rt";
    // The API: healthy for requests that carry the secret header, 403 for the rest.
    let api = axum::Router::new().fallback(|headers: axum::http::HeaderMap, uri: axum::http::Uri| async move {
        let verified = headers.get("x-origin-verify").and_then(|v| v.to_str().ok()) == Some(SECRET);
        match (uri.path(), verified) {
            ("/api/health", true) => (axum::http::StatusCode::OK, "ok"),
            (_, false) => (axum::http::StatusCode::FORBIDDEN, "no"),
            _ => (axum::http::StatusCode::NOT_FOUND, "?"),
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    let moto = Moto::start();
    let edge =
        crate::edge::Edge::start_with_origins(&moto.url, vec![("api.check.example".into(), format!("http://127.0.0.1:{port}"))]).await;
    let mut env = aws_env(&moto.url);
    env.push(("POACTL_CDN_EDGE_URL", edge.url.clone()));
    env.push(("POACTL_RESOLVE", "api.check.example=127.0.0.1".into()));
    env.push(("ORIGIN_SECRET", SECRET.into()));
    let yaml = format!(
        "environment: ca\nstorage:\n  buckets:\n    - {{ name: ca-static }}\ncdn:\n  distributions:\n    - name: site\n      origins:\n        static: {{ bucket: ca-static }}\n        api: {{ domain: api.check.example, protocol: http-only, http_port: {port}, headers: {{ X-Origin-Verify: \"${{env:ORIGIN_SECRET}}\" }}, health: /api/health }}\n      default_origin: static\n      cache:\n        - {{ path: \"api/*\", origin: api, cache: disabled, methods: all, forward: all-viewer-except-host }}\n"
    );
    let (_dir, spec) = spec_file("ca", &yaml);
    let run = |args: Vec<String>, env: Vec<(&'static str, String)>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Poactl::new(&args).envs_owned(&env).run()
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    run(args(&["apply", "-e", &spec, "--auto-approve", "-q"]), env.clone()).await.unwrap().expect_code(0);
    let ok = run(args(&["check", "-e", &spec, "--only", "cdn", "-o", "json"]), env.clone()).await.unwrap();
    let got = statuses(&ok.json());
    for want in [
        "pass cdn.distributions.site serves a probe over HTTPS through its OAC",
        "pass cdn.distributions.site reaches origin `api` for /api/health",
        "pass cdn.distributions.site does not cache /api/health",
        "pass origin `api` answers /api/health directly",
    ] {
        assert!(got.contains(&want.to_string()), "{want}: {got:#?}");
    }
    assert!(!got.iter().any(|g| g.contains("api/*") && g.contains("caches")), "no bucket probe for the API's path: {got:#?}");
    assert!(!ok.all().contains(SECRET), "{}", ok.all());
    ok.expect_code(0);

    // Someone caches the API in the console: the check fails on it.
    let conf = crate::support::aws_config(&moto.url).await;
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let id = cf.list_distributions().send().await.unwrap().distribution_list.unwrap().items.unwrap()[0].id.clone();
    let current = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut cfg = current.distribution_config.clone().unwrap();
    for b in cfg.cache_behaviors.as_mut().unwrap().items.as_mut().unwrap().iter_mut() {
        b.cache_policy_id = Some("658327ea-f89d-4fab-a63d-7e88639e58f6".into());
    }
    cf.update_distribution().id(&id).if_match(current.e_tag.unwrap()).distribution_config(cfg).send().await.unwrap();
    let bad = run(args(&["check", "-e", &spec, "--only", "cdn", "-o", "json"]), env.clone()).await.unwrap();
    bad.expect_code(1);
    assert!(statuses(&bad.json()).contains(&"fail cdn.distributions.site does not cache /api/health".to_string()), "{}", bad.stdout);
}
