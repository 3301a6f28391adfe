//! The API behind the CDN (issue 32, items 1-3) through the CLI, against moto: a distribution
//! with a bucket origin and a custom origin, behaviours on managed policies, a secret origin
//! header that is never printed, changes in place, and what someone attached by hand kept.
//! moto has no managed policies and checks no policy id, so the tests assert the ids poactl
//! sent (their values are AWS', from the CloudFront Developer Guide).

use crate::support::{Moto, Recorder, aws_config, poactl_aws_env, spec_file};

const SECRET: &str = "origin-verify-7Hq2Lw9Xz";

fn spec(api_rule: &str, images_ttl: &str) -> String {
    format!(
        "environment: edge\nstorage:\n  buckets:\n    - {{ name: edge-static }}\ncdn:\n  distributions:\n    - name: site\n      origins:\n        static: {{ bucket: edge-static }}\n        api: {{ domain: api.poafix.example, headers: {{ X-Origin-Verify: \"${{env:ORIGIN_SECRET}}\" }}, read_timeout: 20s }}\n      default_origin: static\n      security_headers: true\n      cache:\n        - {api_rule}\n        - {{ path: \"images/*\", ttl: {images_ttl} }}\n"
    )
}

const API: &str = "{ path: \"api/*\", origin: api, cache: disabled, methods: all, forward: all-viewer-except-host }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)]
async fn an_api_origin_behind_the_cdn_is_made_read_back_changed_in_place_and_keeps_what_was_added_by_hand() {
    let moto = Moto::start();
    let proxy = Recorder::start(&moto.url).await;
    let conf = aws_config(&moto.url).await;
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let env = [("ORIGIN_SECRET", SECRET)];
    let (_dir, path) = spec_file("edge", &spec(API, "365d"));
    let plan = poactl_aws_env(&proxy.url, &["plan", "-e", &path], &env).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("X-Origin-Verify") && !plan.all().contains(SECRET), "the secret is never printed:\n{}", plan.all());
    let run = poactl_aws_env(&proxy.url, &["apply", "-e", &path, "--auto-approve"], &env).await;
    run.expect_code(0);
    assert!(!run.all().contains(SECRET), "{}", run.all());
    // What poactl sent for api/*: a cache policy and no legacy settings (moto fills in
    // defaults of its own on read, so the request is what counts).
    let sent = proxy.all().into_iter().find(|s| s.body.contains("<DistributionConfigWithTags")).expect("the create").body;
    let api_sent = sent.split("<CacheBehavior>").find(|b| b.contains("<PathPattern>api/*</PathPattern>")).unwrap();
    let api_sent = api_sent.split("</CacheBehavior>").next().unwrap();
    assert!(!api_sent.contains("<ForwardedValues>") && !api_sent.contains("<DefaultTTL>"), "{api_sent}");

    let list = cf.list_distributions().send().await.unwrap();
    let id = list.distribution_list().unwrap().items()[0].id().to_string();
    let got = cf.get_distribution_config().id(&id).send().await.unwrap();
    let cfg = got.distribution_config().unwrap();
    let origins = cfg.origins().unwrap().items();
    assert_eq!(origins.len(), 2);
    let api = origins.iter().find(|o| o.id() == "api").unwrap();
    let custom = api.custom_origin_config().expect("a custom origin");
    assert_eq!(custom.origin_protocol_policy().as_str(), "https-only");
    assert_eq!(custom.origin_read_timeout(), Some(20));
    assert_eq!(api.custom_headers().unwrap().items()[0].header_value(), SECRET);
    let static_origin = origins.iter().find(|o| o.id() == "static").unwrap();
    assert!(static_origin.origin_access_control_id().is_some_and(|id| !id.is_empty()), "the bucket is read through the OAC");
    let db = cfg.default_cache_behavior().unwrap();
    assert_eq!(db.target_origin_id(), "static");
    assert_eq!(db.response_headers_policy_id(), Some("67f7725c-6f97-4210-82d7-5512b31e9d03"), "SecurityHeadersPolicy");
    let behaviors = cfg.cache_behaviors().unwrap().items();
    let api_b = behaviors.iter().find(|b| b.path_pattern() == "api/*").unwrap();
    assert_eq!(api_b.target_origin_id(), "api");
    assert_eq!(api_b.cache_policy_id(), Some("4135ea2d-6df8-44a3-9df3-4b5a84be39ad"), "CachingDisabled");
    assert_eq!(api_b.origin_request_policy_id(), Some("b689b0a8-53d0-40ab-baf2-68738e2966ac"), "AllViewerExceptHostHeader");
    let methods: Vec<&str> = api_b.allowed_methods().unwrap().items().iter().map(|m| m.as_str()).collect();
    assert_eq!(methods, ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]);
    let cached: Vec<&str> = api_b.allowed_methods().unwrap().cached_methods().unwrap().items().iter().map(|m| m.as_str()).collect();
    assert_eq!(cached, ["GET", "HEAD"]);
    let images = behaviors.iter().find(|b| b.path_pattern() == "images/*").unwrap();
    assert_eq!(images.default_ttl(), Some(365 * 86_400));
    poactl_aws_env(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"], &env).await.expect_code(0);

    // Someone attaches a CloudFront Function to images/* by hand.
    let current = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut cfg = current.distribution_config().unwrap().clone();
    let function = "arn:aws:cloudfront::123456789012:function/rewrite-images";
    for b in cfg.cache_behaviors.as_mut().unwrap().items.as_mut().unwrap().iter_mut().filter(|b| b.path_pattern == "images/*") {
        b.function_associations = Some(
            aws_sdk_cloudfront::types::FunctionAssociations::builder()
                .quantity(1)
                .items(
                    aws_sdk_cloudfront::types::FunctionAssociation::builder()
                        .function_arn(function)
                        .event_type(aws_sdk_cloudfront::types::EventType::ViewerRequest)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
    }
    cf.update_distribution().id(&id).if_match(current.e_tag().unwrap()).distribution_config(cfg).send().await.unwrap();

    // The API path cached after all, with OPTIONS only; images kept 30 days: in place.
    let api_cached = "{ path: \"api/*\", origin: api, cache: optimized, methods: read-options }";
    std::fs::write(&path, spec(api_cached, "30d")).unwrap();
    let plan = poactl_aws_env(&moto.url, &["plan", "-e", &path], &env).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("~ cdn.distributions.site") && !plan.stdout.contains("replace"), "{}", plan.stdout);
    poactl_aws_env(&moto.url, &["apply", "-e", &path, "--auto-approve"], &env).await.expect_code(0);
    let list = cf.list_distributions().send().await.unwrap();
    assert_eq!(list.distribution_list().unwrap().items().len(), 1, "the same distribution");
    let got = cf.get_distribution_config().id(&id).send().await.unwrap();
    let behaviors = got.distribution_config().unwrap().cache_behaviors().unwrap().items();
    let api_b = behaviors.iter().find(|b| b.path_pattern() == "api/*").unwrap();
    assert_eq!(api_b.cache_policy_id(), Some("658327ea-f89d-4fab-a63d-7e88639e58f6"), "CachingOptimized");
    assert_eq!(api_b.allowed_methods().unwrap().items().len(), 3);
    assert_eq!(api_b.origin_request_policy_id(), Some("b689b0a8-53d0-40ab-baf2-68738e2966ac"), "a policy the spec no longer names stays");
    let images = behaviors.iter().find(|b| b.path_pattern() == "images/*").unwrap();
    assert_eq!(images.default_ttl(), Some(30 * 86_400));
    let kept = images.function_associations().map(|f| f.items().iter().map(|a| a.function_arn().to_string()).collect::<Vec<_>>());
    assert_eq!(kept, Some(vec![function.to_string()]), "the function someone attached is kept");
    poactl_aws_env(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"], &env).await.expect_code(0);
}
