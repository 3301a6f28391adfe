//! `notifications`, `monitoring.log_groups` and `app.iam`, checked offline, and what an
//! alarm may notify. The rules and their sources:
//! - SNS topic names are 1 to 256 letters, digits, `-` and `_` (SNS API reference,
//!   CreateTopic, Name); email and HTTPS are the protocols a person or a webhook confirms
//!   (Subscribe, Protocol);
//! - CloudWatch cannot use the AWS managed key `alias/aws/sns`: its policy cannot be changed
//!   to let CloudWatch use it (SNS Developer Guide, "Enable compatibility between event
//!   sources from AWS services and encrypted topics");
//! - an alarm's SNS topic must be in the alarm's region (CloudWatch User Guide, "Using Amazon
//!   CloudWatch alarms"); billing and uptime alarms live in us-east-1;
//! - log group names are 1 to 512 of `a-z A-Z 0-9 _ - / . #`, and `aws/` is reserved
//!   (CloudWatch Logs API reference, CreateLogGroup); `retentionInDays` takes the values of
//!   PutRetentionPolicy; a metric filter's name has no `:` or `*` (PutMetricFilter), its
//!   pattern at most 1024 characters, and a group at most 100 filters (Logs quotas); the key is
//!   a KMS key ARN (CreateLogGroup, kmsKeyId);
//! - IAM role names are 1 to 64 of `\w+=,.@-` (IAM API reference, CreateRole, RoleName); a
//!   web-identity principal is an `oidc-provider` ARN (IAM User Guide, "Creating a role for web
//!   identity or OIDC federation").

use super::{AWS_REGIONS, Checker};
use crate::resource::{Kind, whole_reference};
use crate::spec::model::{APP_TRUSTED_SERVICES, AppSpec, MonitoringSpec, NotificationsSpec, TrustSpec};
use crate::spec::yaml::PathSeg;

/// The retention periods CloudWatch Logs offers, in days (PutRetentionPolicy).
pub(super) const LOG_RETENTION_DAYS: &[i32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// What an alarm action names: a topic of the spec (`${notifications.topics.NAME.arn}`) or an
/// ARN. An SNS topic must be in `region`, where the alarm lives.
pub(super) fn check_notify_target(c: &mut Checker, path: Vec<PathSeg>, value: &str, region: &str) {
    if value.starts_with("${") {
        let Some(r) = whole_reference(value) else {
            c.err(path, format!("`{value}` is not a reference to a topic"), "e.g. ${notifications.topics.ops.arn}");
            return;
        };
        if r.target.kind != Kind::Topic || r.field != "arn" {
            c.err(
                path,
                format!("`{value}` is not an SNS topic: an alarm notifies a topic"),
                "name one of notifications.topics as ${notifications.topics.NAME.arn}, or a topic's full ARN",
            );
            return;
        }
        // An undeclared topic is reported by the reference check.
        let spec = &c.loaded.spec;
        let Some(t) = spec.notifications.as_ref().and_then(|n| n.topics.get(&r.target.name)) else { return };
        let topic_region = t.region.clone().unwrap_or_else(|| spec.aws_region());
        if topic_region != region {
            c.err(
                path,
                format!("notifications.topics.{} is in {topic_region}, but the alarm lives in {region}", r.target.name),
                format!("give the alarm a topic in {region} (e.g. a topic with `region: {region}`)"),
            );
        }
        return;
    }
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[2].is_empty() {
        c.err(
            path,
            format!("`{value}` is neither a topic of this spec nor an ARN"),
            "name a topic as ${notifications.topics.NAME.arn}, or give its full ARN, e.g. arn:aws:sns:us-east-1:123456789012:ops",
        );
        return;
    }
    if parts[2] == "sns" {
        if parts[4].len() != 12 || !parts[4].chars().all(|ch| ch.is_ascii_digit()) || parts[5].is_empty() {
            c.err(path, format!("`{value}` is not an SNS topic ARN"), "arn:aws:sns:REGION:ACCOUNT(12 digits):NAME");
        } else if parts[3] != region {
            c.err(path, format!("the SNS topic is in {}, but the alarm lives in {region}", parts[3]), format!("use a topic in {region}"));
        }
    }
}

pub(super) fn check_topics(c: &mut Checker, n: &NotificationsSpec, env: &str) {
    for (name, t) in &n.topics {
        let at = |f: &str| path!("notifications", "topics", name, f);
        let full = NotificationsSpec::topic_name(env, name);
        if name.is_empty() || full.len() > 256 || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
            c.err(
                path!("notifications", "topics", name),
                format!("`{name}` cannot name an SNS topic (it becomes `{full}`)"),
                "letters, digits, - and _, at most 256 characters with the environment's name",
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (j, e) in t.email.iter().enumerate() {
            let valid = e.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.') && !host.starts_with('.'));
            if !valid || e.contains(char::is_whitespace) {
                c.err(
                    path!("notifications", "topics", name, "email", j),
                    format!("`{e}` is not an email address"),
                    "e.g. ops@poafix.example",
                );
            }
            if !seen.insert(e.to_ascii_lowercase()) {
                c.err(path!("notifications", "topics", name, "email", j), format!("`{e}` is listed twice"), "remove one");
            }
        }
        for (j, u) in t.https.iter().enumerate() {
            let host = u.strip_prefix("https://").map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
            if !host.is_some_and(|h| h.contains('.') || h.starts_with("localhost")) {
                c.err(
                    path!("notifications", "topics", name, "https", j),
                    format!("`{u}` is not an HTTPS URL"),
                    "SNS delivers to https:// endpoints, e.g. https://hooks.poafix.example/alerts",
                );
            }
            if !seen.insert(u.clone()) {
                c.err(path!("notifications", "topics", name, "https", j), format!("`{u}` is listed twice"), "remove one");
            }
        }
        if let Some(r) = &t.region {
            c.one_of(at("region"), "AWS region", r, AWS_REGIONS);
        }
        if let Some(k) = &t.kms_key {
            if k == "alias/aws/sns" || k.ends_with(":alias/aws/sns") {
                c.err(
                    at("kms_key"),
                    "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key alias/aws/sns: its policy cannot let CloudWatch use it",
                    "use a customer managed key (its ARN, id or alias); poactl grants CloudWatch the use of it",
                );
            } else if k.is_empty() || k.contains(char::is_whitespace) {
                c.err(at("kms_key"), format!("`{k}` is not a KMS key"), "a key ARN, a key id or alias/NAME");
            }
        }
    }
}

pub(super) fn check_log_groups(c: &mut Checker, m: &MonitoringSpec) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, g) in m.log_groups.iter().enumerate() {
        let at = |f: &str| path!("monitoring", "log_groups", i, f);
        let allowed = |ch: char| ch.is_ascii_alphanumeric() || "_-/.#".contains(ch);
        if g.name.is_empty() || g.name.len() > 512 || !g.name.chars().all(allowed) {
            c.err(
                at("name"),
                format!("`{}` is not a log group name", g.name),
                "1-512 of letters, digits, _ - / . #, e.g. /poafix/prod/api",
            );
        } else if g.name.starts_with("aws/") {
            c.err(at("name"), "log group names starting with aws/ are AWS's own", "e.g. /poafix/prod/api");
        }
        if !seen.insert(g.name.clone()) {
            c.err(at("name"), format!("duplicate log group `{}`", g.name), "each log group is listed once");
        }
        if let Some(r) = &g.retention {
            match r.whole_days() {
                Some(d) if LOG_RETENTION_DAYS.contains(&d) => {}
                _ => c.err(
                    at("retention"),
                    format!("CloudWatch Logs cannot keep events for {r}"),
                    format!(
                        "use one of {} days (e.g. retention: 30d)",
                        LOG_RETENTION_DAYS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }
        if let Some(k) = &g.kms_key
            && !(k.starts_with("arn:aws:kms:") && k.contains(":key/"))
        {
            c.err(
                at("kms_key"),
                format!("`{k}` is not a KMS key ARN"),
                "CloudWatch Logs takes the key's full ARN, e.g. arn:aws:kms:us-east-1:123456789012:key/...",
            );
        }
        if let Some(r) = &g.region {
            c.one_of(at("region"), "AWS region", r, AWS_REGIONS);
        }
        if g.metric_filters.len() > 100 {
            c.err(at("metric_filters"), "a log group has at most 100 metric filters", "merge some filters");
        }
        let mut names = std::collections::BTreeSet::new();
        for (j, f) in g.metric_filters.iter().enumerate() {
            let fat = |x: &str| path!("monitoring", "log_groups", i, "metric_filters", j, x);
            if f.name.is_empty() || f.name.len() > 512 || f.name.contains([':', '*']) {
                c.err(fat("name"), format!("`{}` is not a metric filter name", f.name), "1-512 characters, no : or *");
            }
            if !names.insert(f.name.clone()) {
                c.err(fat("name"), format!("duplicate metric filter `{}`", f.name), "each filter of a group has its own name");
            }
            if f.pattern.len() > 1024 {
                c.err(fat("pattern"), "a filter pattern has at most 1024 characters", "shorten the pattern");
            }
            match f.metric_parts() {
                Some((ns, _)) if ns.starts_with("AWS/") => {
                    c.err(fat("metric"), "namespaces starting with AWS/ are AWS's own", "e.g. metric: Poafix/ApiErrors")
                }
                Some(_) => {}
                None => c.err(fat("metric"), format!("`{}` is not NAMESPACE/NAME", f.metric), "e.g. metric: Poafix/ApiErrors"),
            }
            if let Some(v) = &f.value
                && v.parse::<f64>().is_err()
                && !(v.starts_with("$.") && v.len() > 2)
            {
                c.err(fat("value"), format!("`{v}` is neither a number nor a field of the event"), "e.g. value: 1, or value: $.latency");
            }
        }
    }
}

pub(super) fn check_app(c: &mut Checker, app: &AppSpec) {
    let Some(iam) = &app.iam else { return };
    let at = |f: &str| path!("app", "iam", f);
    let allowed = |ch: char| ch.is_ascii_alphanumeric() || "_+=,.@-".contains(ch);
    if iam.role.is_empty() || iam.role.len() > 64 || !iam.role.chars().all(allowed) {
        c.err(at("role"), format!("`{}` is not an IAM role name", iam.role), "1-64 of letters, digits and _+=,.@-, e.g. poafix-prod-app");
    }
    if iam.trusted_by.is_empty() {
        c.err(at("trusted_by"), "nobody could assume the role", "e.g. trusted_by: [ecs-tasks.amazonaws.com]");
    }
    for (j, t) in iam.trusted_by.iter().enumerate() {
        match t {
            TrustSpec::Service(s) => c.one_of(path!("app", "iam", "trusted_by", j), "service principal", s, APP_TRUSTED_SERVICES),
            TrustSpec::Oidc(o) => {
                let valid =
                    o.oidc.strip_prefix("arn:aws:iam::").and_then(|r| r.split_once(":oidc-provider/")).is_some_and(|(account, host)| {
                        account.len() == 12 && account.chars().all(|ch| ch.is_ascii_digit()) && !host.is_empty()
                    });
                if !valid {
                    c.err(
                        path!("app", "iam", "trusted_by", j, "oidc"),
                        format!("`{}` is not an OIDC provider ARN", o.oidc),
                        "arn:aws:iam::ACCOUNT:oidc-provider/HOST, e.g. ...:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC",
                    );
                }
                if o.subject.trim().is_empty() || o.subject.trim() == "*" {
                    c.err(
                        path!("app", "iam", "trusted_by", j, "subject"),
                        "any token of the provider could assume the role",
                        "name the subject, e.g. system:serviceaccount:poafix:api",
                    );
                }
            }
        }
    }
    let buckets = c.loaded.spec.storage.iter().flat_map(|s| s.buckets.iter()).filter(|b| b.app_access).count();
    if buckets == 0 {
        c.err(
            path!("app", "iam"),
            "the app's role grants the environment's buckets, but no bucket gives the app access",
            "declare the uploads bucket under storage.buckets (app_access is on by default)",
        );
    }
}
