//! Issue 33 through the CLI, against moto: notification topics (pending email subscriptions
//! in plan, drift and `check`, confirmed through the moto launcher's outbox as the mailbox's
//! owner would), alarms on a topic the spec makes or a foreign one it only reads, log groups
//! (retention and filters, drift on each, `--adopt`, `--allow-destroy`), and the app's role
//! (no false drift on a policy IAM reformatted, no access key, the `.env` without keys).
//! moto confirms nothing and enforces no policy by itself: the tests assert the documents
//! poactl wrote, and moto fix 8 (tests/support/moto_server.py) keeps email subscriptions
//! pending as SNS does.

use serde_json::{Value, json};

use crate::support::{Moto, all_of, iam_document, moto_json, moto_query, poactl_aws, spec_file};

const SNS: (&str, &str) = ("sns", "2010-03-31");
const IAM: (&str, &str) = ("iam", "2010-05-08");

async fn sns(moto: &str, params: &[(&str, &str)]) -> String {
    moto_query(moto, SNS.0, SNS.1, params).await
}

async fn logs(moto: &str, action: &str, body: Value) -> Value {
    moto_json(moto, "logs", &format!("Logs_20140328.{action}"), body).await
}

/// A protected (production) environment with one topic and an alarm on it.
fn topic_spec(emails: &[&str]) -> String {
    let emails = emails.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "environment: nt\nprotect: true\naws: {{ region: us-east-1 }}\nnotifications:\n  topics:\n    ops: {{ email: [{emails}] }}\nmonitoring:\n  alarms:\n    - {{ name: errors, metric: {{ namespace: Poafix/Api, name: Errors }}, above: 5, notify: [\"${{notifications.topics.ops.arn}}\"] }}\n"
    )
}

/// The subscription messages SNS would have sent, from the moto launcher's outbox.
fn outbox(dir: &std::path::Path) -> Vec<Value> {
    let mut out: Vec<Value> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    out.sort_by_key(|m| m["Endpoint"].as_str().unwrap_or_default().to_string());
    out
}

/// A policy element that may be one string or a list of them (IAM grammar: both are valid).
fn one_or_many(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

/// One attribute of a GetTopicAttributes answer.
fn topic_attribute(xml: &str, key: &str) -> String {
    let value =
        xml.split(&format!("<key>{key}</key>")).nth(1).and_then(|r| r.split("<value>").nth(1)).and_then(|r| r.split("</value>").next());
    value.unwrap_or_default().replace("&quot;", "\"")
}

fn check_of(run: &crate::support::Run) -> Vec<Value> {
    run.json()["checks"].as_array().cloned().unwrap_or_else(|| panic!("{}", run.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_a_pending_email_subscriber_shows_in_plan_drift_and_check_until_it_is_confirmed() {
    let mailbox = tempfile::tempdir().unwrap();
    let moto = Moto::start_with(&[("MOTO_SNS_OUTBOX", mailbox.path().to_str().unwrap())]);
    let (_dir, path) = spec_file("nt", &topic_spec(&["ops@poafix.example"]));
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);

    let arns = all_of(&sns(&moto.url, &[("Action", "ListTopics")]).await, "TopicArn");
    assert_eq!(arns, ["arn:aws:sns:us-east-1:123456789012:nt-ops"], "the topic is named after the environment");
    let arn = arns[0].as_str();
    let tags = sns(&moto.url, &[("Action", "ListTagsForResource"), ("ResourceArn", arn)]).await;
    assert!(tags.contains("notifications.topics.ops"), "ownership tags: {tags}");
    // The policy lets CloudWatch publish, for this account only.
    let attrs = sns(&moto.url, &[("Action", "GetTopicAttributes"), ("TopicArn", arn)]).await;
    let policy: Value = serde_json::from_str(&topic_attribute(&attrs, "Policy")).unwrap();
    let ours = policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "poactl-publishers").cloned().unwrap();
    assert_eq!(one_or_many(&ours["Principal"]["Service"]), ["cloudwatch.amazonaws.com"], "{ours}");
    assert_eq!(ours["Condition"]["StringEquals"]["aws:SourceAccount"], json!("123456789012"), "{ours}");
    // The alarm notifies the topic the spec made.
    let alarms =
        moto_query(&moto.url, "monitoring", "2010-08-01", &[("Action", "DescribeAlarms"), ("AlarmNames.member.1", "nt-errors")]).await;
    assert_eq!(all_of(&alarms, "member").iter().filter(|m| m.as_str() == arn).count(), 1, "{alarms}");

    // Pending: plan and drift say so (it is no drift), and check fails a production topic.
    let subs = sns(&moto.url, &[("Action", "ListSubscriptionsByTopic"), ("TopicArn", arn)]).await;
    assert_eq!(all_of(&subs, "SubscriptionArn"), ["PendingConfirmation"], "{subs}");
    let plan = poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("email:ops@poafix.example is pending confirmation"), "{}", plan.stdout);
    assert!(plan.stdout.contains("no subscriber has confirmed"), "{}", plan.stdout);
    let drift = poactl_aws(&moto.url, &["drift", "-e", &path]).await;
    drift.expect_code(0);
    assert!(drift.all().contains("pending confirmation"), "{}", drift.all());
    let check = poactl_aws(&moto.url, &["check", "-e", &path, "--only", "notifications", "-o", "json"]).await;
    check.expect_code(1);
    let checks = check_of(&check);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0]["status"], "fail");
    assert!(checks[0]["detail"].as_str().unwrap().contains("pending confirmation: email:ops@poafix.example"), "{checks:?}");

    // The owner follows the link.
    let message = outbox(mailbox.path()).pop().expect("SNS sent a confirmation");
    assert_eq!(message["Endpoint"], "ops@poafix.example");
    let token = message["Token"].as_str().unwrap();
    sns(&moto.url, &[("Action", "ConfirmSubscription"), ("TopicArn", arn), ("Token", token)]).await;
    let check = poactl_aws(&moto.url, &["check", "-e", &path, "--only", "notifications", "-o", "json"]).await;
    check.expect_code(0);
    assert_eq!(check_of(&check)[0]["detail"], "1 confirmed");
    let plan = poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await;
    plan.expect_code(0);
    assert!(!plan.stdout.contains("pending"), "{}", plan.stdout);

    // A second address is subscribed, then dropped before anyone confirms: SNS cannot remove
    // a pending subscription, so it is left to expire, and the plan says so.
    std::fs::write(&path, topic_spec(&["ops@poafix.example", "oncall@poafix.example"])).unwrap();
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    std::fs::write(&path, topic_spec(&["ops@poafix.example"])).unwrap();
    let plan = poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("email:oncall@poafix.example is pending confirmation and no longer in the spec"), "{}", plan.stdout);
    // A confirmed one the spec drops is unsubscribed.
    std::fs::write(&path, topic_spec(&[])).unwrap();
    let plan = poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await;
    plan.expect_code(2);
    assert!(plan.stdout.contains("email:ops@poafix.example"), "{}", plan.stdout);
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let subs = sns(&moto.url, &[("Action", "ListSubscriptionsByTopic"), ("TopicArn", arn)]).await;
    assert_eq!(all_of(&subs, "Endpoint"), ["oncall@poafix.example"], "only the pending one is left: {subs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_topic_named_by_arn_is_read_and_never_changed() {
    let moto = Moto::start();
    let created = sns(&moto.url, &[("Action", "CreateTopic"), ("Name", "shared-ops")]).await;
    let foreign = all_of(&created, "TopicArn").pop().unwrap();
    let before = sns(&moto.url, &[("Action", "GetTopicAttributes"), ("TopicArn", &foreign)]).await;
    let missing = "arn:aws:sns:us-east-1:123456789012:nobody-made-this";
    let (_dir, path) = spec_file(
        "nt",
        &format!(
            "environment: nt\nprotect: true\naws: {{ region: us-east-1 }}\nmonitoring:\n  alarms:\n    - {{ name: errors, metric: {{ namespace: Poafix/Api, name: Errors }}, above: 5, notify: [\"{foreign}\"], ok_notify: [\"{missing}\"] }}\n"
        ),
    );
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let check = poactl_aws(&moto.url, &["check", "-e", &path, "--only", "notifications", "-o", "json"]).await;
    check.expect_code(1);
    let checks = check_of(&check);
    let of = |arn: &str| checks.iter().find(|c| c["name"].as_str().unwrap().contains(arn)).cloned().unwrap_or_else(|| panic!("{checks:?}"));
    assert_eq!(of(&foreign)["status"], "fail", "nobody is subscribed to it");
    assert!(of(&foreign)["detail"].as_str().unwrap().contains("no confirmed subscriber"), "{checks:?}");
    assert_eq!(of(missing)["status"], "fail");
    assert!(of(missing)["detail"].as_str().unwrap().contains("does not exist"), "{checks:?}");
    // Read, never changed: same attributes, no tags, and still the only topics.
    let after = sns(&moto.url, &[("Action", "GetTopicAttributes"), ("TopicArn", &foreign)]).await;
    for key in ["Policy", "DisplayName", "DeliveryPolicy", "KmsMasterKeyId"] {
        assert_eq!(topic_attribute(&after, key), topic_attribute(&before, key), "{key}");
    }
    assert!(all_of(&sns(&moto.url, &[("Action", "ListTagsForResource"), ("ResourceArn", &foreign)]).await, "Key").is_empty());
    assert_eq!(all_of(&sns(&moto.url, &[("Action", "ListTopics")]).await, "TopicArn"), std::slice::from_ref(&foreign));

    // Someone subscribes a confirmed endpoint (moto confirms SQS at once): it passes.
    sns(
        &moto.url,
        &[("Action", "Subscribe"), ("TopicArn", &foreign), ("Protocol", "sqs"), ("Endpoint", "arn:aws:sqs:us-east-1:123456789012:q")],
    )
    .await;
    let check = poactl_aws(&moto.url, &["check", "-e", &path, "--only", "notifications", "-o", "json"]).await;
    let checks = check_of(&check);
    let of = |arn: &str| checks.iter().find(|c| c["name"].as_str().unwrap().contains(arn)).cloned().unwrap();
    assert_eq!(of(&foreign)["status"], "pass", "{checks:?}");
}

#[test]
fn validate_refuses_an_alarm_on_a_topic_that_is_neither_the_specs_nor_an_arn() {
    for (notify, want) in [
        ("${notifications.topics.nope.arn}", "notifications.topics.nope"),
        ("poafix-ops", "neither a topic of this spec nor an ARN"),
        ("arn:aws:sns:eu-west-1:123456789012:ops", "the SNS topic is in eu-west-1, but the alarm lives in us-east-1"),
        ("${storage.buckets.nt-uploads.arn}", "is not an SNS topic"),
    ] {
        let (_dir, path) = spec_file(
            "nt",
            &format!(
                "environment: nt\naws: {{ region: us-east-1 }}\nstorage:\n  buckets:\n    - {{ name: nt-uploads }}\nnotifications:\n  topics:\n    ops: {{ email: [ops@poafix.example] }}\nmonitoring:\n  alarms:\n    - {{ name: errors, metric: {{ namespace: Poafix/Api, name: Errors }}, above: 5, notify: [\"{notify}\"] }}\n"
            ),
        );
        let run = crate::support::Poactl::new(&["validate", "-e", &path]).run();
        run.expect_code(1);
        assert!(run.stderr.contains("monitoring.alarms[0].notify[0]") && run.stderr.contains(want), "{notify}: {}", run.stderr);
    }
}

fn log_spec(retention: &str, pattern: &str) -> String {
    format!(
        "environment: nt\naws: {{ region: us-east-1 }}\nmonitoring:\n  log_groups:\n    - name: /poafix/nt/api\n      retention: {retention}\n      metric_filters:\n        - {{ name: api-errors, pattern: '{pattern}', metric: Poafix/ApiErrors }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_group_keeps_its_retention_and_filter_drifts_on_each_and_is_deleted_only_when_allowed() {
    let moto = Moto::start();
    // A group of the same name made by someone else is a conflict until --adopt.
    logs(&moto.url, "CreateLogGroup", json!({"logGroupName": "/poafix/nt/api"})).await;
    let (_dir, path) = spec_file("nt", &log_spec("30d", "ERROR"));
    let apply = poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await;
    apply.expect_code(1);
    assert!(apply.all().contains("--adopt"), "{}", apply.all());
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve", "--adopt"]).await.expect_code(0);

    let group = &logs(&moto.url, "DescribeLogGroups", json!({"logGroupNamePrefix": "/poafix/nt/api"})).await["logGroups"][0];
    assert_eq!(group["retentionInDays"], 30);
    let tags = logs(&moto.url, "ListTagsLogGroup", json!({"logGroupName": "/poafix/nt/api"})).await;
    assert_eq!(tags["tags"]["poactl-id"], "monitoring.log_groups./poafix/nt/api", "{tags}");
    let filters = logs(&moto.url, "DescribeMetricFilters", json!({"logGroupName": "/poafix/nt/api"})).await;
    let filter = &filters["metricFilters"][0];
    assert_eq!((filter["filterName"].as_str(), filter["filterPattern"].as_str()), (Some("api-errors"), Some("ERROR")));
    let t = &filter["metricTransformations"][0];
    assert_eq!(
        (t["metricNamespace"].as_str(), t["metricName"].as_str(), t["metricValue"].as_str()),
        (Some("Poafix"), Some("ApiErrors"), Some("1"))
    );
    poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    // By hand: a shorter retention, then the filter gone. Each is drift, and apply restores it.
    logs(&moto.url, "PutRetentionPolicy", json!({"logGroupName": "/poafix/nt/api", "retentionInDays": 7})).await;
    let drift = poactl_aws(&moto.url, &["drift", "-e", &path]).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("retention"), "{}", drift.stdout);
    logs(&moto.url, "DeleteMetricFilter", json!({"logGroupName": "/poafix/nt/api", "filterName": "api-errors"})).await;
    let drift = poactl_aws(&moto.url, &["drift", "-e", &path]).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("api-errors"), "{}", drift.stdout);
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    poactl_aws(&moto.url, &["drift", "-e", &path]).await.expect_code(0);
    let group = &logs(&moto.url, "DescribeLogGroups", json!({"logGroupNamePrefix": "/poafix/nt/api"})).await["logGroups"][0];
    assert_eq!(group["retentionInDays"], 30);

    // A changed spec is changed in place.
    std::fs::write(&path, log_spec("90d", "{ $.level = \"error\" }")).unwrap();
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let filters = logs(&moto.url, "DescribeMetricFilters", json!({"logGroupName": "/poafix/nt/api"})).await;
    assert_eq!(filters["metricFilters"][0]["filterPattern"], "{ $.level = \"error\" }");
    poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    // It holds the logs: destroy keeps it without --allow-destroy.
    let destroy = poactl_aws(&moto.url, &["destroy", "-e", &path, "--auto-approve"]).await;
    assert_ne!(destroy.code, 0);
    assert!(destroy.all().contains("--allow-destroy"), "{}", destroy.all());
    assert_eq!(logs(&moto.url, "DescribeLogGroups", json!({})).await["logGroups"].as_array().unwrap().len(), 1);
    poactl_aws(&moto.url, &["destroy", "-e", &path, "--auto-approve", "--allow-destroy"]).await.expect_code(0);
    assert!(logs(&moto.url, "DescribeLogGroups", json!({})).await["logGroups"].as_array().unwrap().is_empty());
}

fn role_spec(trust: &str) -> String {
    format!(
        "environment: nt\naws: {{ region: us-east-1 }}\nstorage:\n  buckets:\n    - {{ name: nt-uploads }}\n    - {{ name: nt-backups, app_access: false }}\napp:\n  iam: {{ role: nt-app, trusted_by: [{trust}] }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_role_is_made_without_keys_and_a_policy_iam_reformatted_is_no_drift() {
    let moto = Moto::start();
    let iam = |params: Vec<(&'static str, String)>| {
        let url = moto.url.clone();
        async move {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            moto_query(&url, IAM.0, IAM.1, &p).await
        }
    };
    let (_dir, path) = spec_file("nt", &role_spec("ecs-tasks.amazonaws.com"));
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);

    let role = iam(vec![("Action", "GetRole".into()), ("RoleName", "nt-app".into())]).await;
    assert_eq!(all_of(&role, "Path"), ["/poactl/"], "{role}");
    let trust = iam_document(&all_of(&role, "AssumeRolePolicyDocument")[0]);
    assert_eq!(one_or_many(&trust["Statement"][0]["Principal"]["Service"]), ["ecs-tasks.amazonaws.com"], "{trust}");
    assert_eq!(one_or_many(&trust["Statement"][0]["Action"]), ["sts:AssumeRole"], "{trust}");
    let inline = iam(vec![("Action", "GetRolePolicy".into()), ("RoleName", "nt-app".into()), ("PolicyName", "poactl-app".into())]).await;
    let policy = iam_document(&all_of(&inline, "PolicyDocument")[0]);
    let text = policy.to_string();
    assert!(text.contains("arn:aws:s3:::nt-uploads/*") && !text.contains("nt-backups"), "the app's buckets only: {text}");
    // No access key, and no user to hold one.
    let users = iam(vec![("Action", "ListUsers".into())]).await;
    assert!(all_of(&users, "UserName").is_empty(), "{users}");
    poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    // The same policy as IAM may hand it back: other key order, single-item lists as
    // strings, other whitespace. No drift.
    let mut reformatted = serde_json::Map::new();
    let statements: Vec<Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut s = s.as_object().unwrap().clone();
            for (_, v) in s.iter_mut() {
                if let Some([one]) = v.as_array().map(Vec::as_slice) {
                    *v = one.clone();
                }
            }
            let mut rev: Vec<(String, Value)> = s.into_iter().collect();
            rev.reverse();
            Value::Object(rev.into_iter().collect())
        })
        .collect();
    reformatted.insert("Statement".into(), Value::Array(statements));
    reformatted.insert("Version".into(), policy["Version"].clone());
    let text = serde_json::to_string_pretty(&Value::Object(reformatted)).unwrap();
    iam(vec![
        ("Action", "PutRolePolicy".into()),
        ("RoleName", "nt-app".into()),
        ("PolicyName", "poactl-app".into()),
        ("PolicyDocument", text),
    ])
    .await;
    poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    // A real change is drift: the delete right taken away.
    let narrowed = policy.to_string().replace("\"s3:DeleteObject\",", "");
    assert_ne!(narrowed, policy.to_string(), "the policy grants s3:DeleteObject");
    iam(vec![
        ("Action", "PutRolePolicy".into()),
        ("RoleName", "nt-app".into()),
        ("PolicyName", "poactl-app".into()),
        ("PolicyDocument", narrowed),
    ])
    .await;
    poactl_aws(&moto.url, &["drift", "-e", &path]).await.expect_code(2);
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    poactl_aws(&moto.url, &["drift", "-e", &path]).await.expect_code(0);

    // The .env has no key variables, says why, and names the role to attach.
    let env = poactl_aws(&moto.url, &["output", "-e", &path]).await;
    env.expect_code(0);
    assert!(!env.stdout.contains("AWS_ACCESS_KEY_ID=") && !env.stdout.contains("AWS_SECRET_ACCESS_KEY="), "{}", env.stdout);
    assert!(env.stdout.contains("runs as the IAM role nt-app"), "{}", env.stdout);
    assert!(env.stdout.contains("arn:aws:iam::123456789012:role/poactl/nt-app"), "{}", env.stdout);

    // Trusted by an OIDC provider: the subject condition, and AWS_ROLE_ARN in the .env.
    std::fs::write(
        &path,
        role_spec(
            "{ oidc: \"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com\", subject: \"repo:poafix/api:ref:refs/heads/main\", audience: sts.amazonaws.com }",
        ),
    )
    .unwrap();
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let role = iam(vec![("Action", "GetRole".into()), ("RoleName", "nt-app".into())]).await;
    let trust = iam_document(&all_of(&role, "AssumeRolePolicyDocument")[0]);
    let statement = &trust["Statement"][0];
    assert_eq!(one_or_many(&statement["Action"]), ["sts:AssumeRoleWithWebIdentity"], "{trust}");
    let condition = statement["Condition"].to_string();
    assert!(
        condition.contains("token.actions.githubusercontent.com:sub") && condition.contains("repo:poafix/api:ref:refs/heads/main"),
        "{trust}"
    );
    poactl_aws(&moto.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);
    let env = poactl_aws(&moto.url, &["output", "-e", &path]).await;
    assert!(env.stdout.contains("AWS_ROLE_ARN=arn:aws:iam::123456789012:role/poactl/nt-app"), "{}", env.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_role_the_env_has_empty_key_variables_and_audit_flags_production() {
    let moto = Moto::start();
    let (_dir, path) =
        spec_file("prod", "environment: prod\naws: { region: us-east-1 }\nstorage:\n  buckets:\n    - { name: prod-uploads }\n");
    let audit = crate::support::Poactl::new(&["audit", "-e", &path, "--offline", "--fail-on", "high", "-o", "json"]).run();
    audit.expect_code(2);
    assert!(audit.stdout.contains("app-static-keys-production") && audit.stdout.contains("no app.iam"), "{}", audit.all());
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let env = poactl_aws(&moto.url, &["output", "-e", &path]).await;
    env.expect_code(0);
    assert!(env.stdout.contains("\nAWS_ACCESS_KEY_ID=\nAWS_SECRET_ACCESS_KEY=\n"), "{}", env.stdout);
    assert!(env.stdout.contains("Declare app.iam"), "{}", env.stdout);
}
