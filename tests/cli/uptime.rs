//! Uptime checks (issue 32, item 4) through the CLI, against moto: a Route 53 health check
//! with the ownership tags and its CloudWatch alarm in us-east-1 on `HealthCheckStatus`, read
//! back with no drift, drift on a field of each changed by hand, and a change Route 53 cannot
//! make in place planned as a replacement. moto never runs the checks: the tests assert what
//! poactl asked for.

use crate::support::{Moto, aws_config, poactl_aws, spec_file};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops";

fn spec(extra: &str) -> String {
    format!(
        "environment: up\naws: {{ region: eu-west-1 }}\nmonitoring:\n  uptime:\n    - {{ name: api, url: \"https://api.poafix.example/health\", failure_threshold: 3, regions: [us-east-1, eu-west-1, ap-southeast-1], notify: [\"{TOPIC}\"]{extra} }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uptime_check_and_its_alarm_are_made_read_back_and_drift_on_each() {
    let moto = Moto::start();
    let conf = aws_config(&moto.url).await;
    let r53 = aws_sdk_route53::Client::new(&conf);
    let cw = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&conf).region(aws_config::Region::new("us-east-1")).build(),
    );
    let (_dir, path) = spec_file("up", &spec(", search: ok"));
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);

    let checks = r53.list_health_checks().send().await.unwrap();
    assert_eq!(checks.health_checks().len(), 1);
    let check = &checks.health_checks()[0];
    let cfg = check.health_check_config().unwrap();
    assert_eq!(cfg.r#type().as_str(), "HTTPS_STR_MATCH");
    assert_eq!(cfg.fully_qualified_domain_name(), Some("api.poafix.example"));
    assert_eq!((cfg.port(), cfg.resource_path(), cfg.search_string()), (Some(443), Some("/health"), Some("ok")));
    assert_eq!((cfg.request_interval(), cfg.failure_threshold(), cfg.enable_sni()), (Some(30), Some(3), Some(true)));
    let tags = r53
        .list_tags_for_resource()
        .resource_type(aws_sdk_route53::types::TagResourceType::Healthcheck)
        .resource_id(check.id())
        .send()
        .await
        .unwrap();
    let tags: Vec<String> =
        tags.resource_tag_set().unwrap().tags().iter().map(|t| format!("{}={}", t.key().unwrap(), t.value().unwrap())).collect();
    assert!(tags.contains(&"poactl-id=monitoring.uptime.api".to_string()), "{tags:?}");

    let alarms = cw.describe_alarms().alarm_names("up-uptime-api").send().await.unwrap();
    let alarm = &alarms.metric_alarms()[0];
    assert_eq!((alarm.namespace(), alarm.metric_name()), (Some("AWS/Route53"), Some("HealthCheckStatus")));
    assert_eq!(alarm.dimensions()[0].value(), Some(check.id()), "the alarm watches this check");
    assert_eq!(alarm.alarm_actions(), [TOPIC]);
    poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    // Changed by hand: the check's threshold and path, and the alarm's period.
    r53.update_health_check().health_check_id(check.id()).failure_threshold(5).resource_path("/").send().await.unwrap();
    cw.put_metric_alarm()
        .alarm_name("up-uptime-api")
        .namespace("AWS/Route53")
        .metric_name("HealthCheckStatus")
        .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("HealthCheckId").value(check.id()).build())
        .statistic(aws_sdk_cloudwatch::types::Statistic::Minimum)
        .period(300)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
        .alarm_actions(TOPIC)
        .send()
        .await
        .unwrap();
    let drift = poactl_aws(&moto.url, &["drift", "-e", &path]).await;
    drift.expect_code(2);
    for want in ["monitoring.uptime.api", "failure_threshold", "path", "monitoring.alarms.uptime-api", "period"] {
        assert!(drift.stdout.contains(want), "{want}: {}", drift.stdout);
    }
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);
    let cfg = r53.get_health_check().health_check_id(check.id()).send().await.unwrap();
    let cfg = cfg.health_check().unwrap().health_check_config().unwrap();
    assert_eq!((cfg.failure_threshold(), cfg.resource_path()), (Some(3), Some("/health")));

    // Without the string match the check is another Type, which Route 53 cannot change.
    std::fs::write(&path, spec("")).unwrap();
    let plan = poactl_aws(&moto.url, &["plan", "-e", &path]).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("forces replacement: type"), "{}", plan.stdout);

    // The cost of the check: a non-AWS endpoint, HTTPS and string matching.
    std::fs::write(&path, spec(", search: ok")).unwrap();
    let cost = poactl_aws(&moto.url, &["cost", "-e", &path, "-o", "json"]).await;
    cost.expect_code(0);
    let v = cost.json();
    let lines: Vec<&serde_json::Value> =
        v["resources"].as_array().unwrap().iter().filter(|l| l["resource"] == "monitoring.uptime.api").collect();
    let total: f64 = lines.iter().filter_map(|l| l["monthly_usd"].as_f64()).sum();
    assert_eq!(total, 0.75 + 2.0 * 2.0, "{lines:?}");
    assert!(lines.iter().all(|l| l["source"] == "https://aws.amazon.com/route53/pricing/"), "{lines:?}");
}
