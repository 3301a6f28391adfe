//! The operations side of an environment: the SNS topics alarms notify, the CloudWatch Logs
//! groups the app writes to, and the app's own AWS identity.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Duration;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NotificationsSpec {
    /// SNS topics by name; alarms, uptime checks and billing alarms name one as
    /// `${notifications.topics.NAME.arn}`.
    #[serde(default)]
    pub topics: BTreeMap<String, TopicSpec>,
}

/// An SNS topic and who is subscribed to it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Email addresses: each gets a confirmation email, and receives nothing until someone
    /// clicks its link.
    #[serde(default)]
    pub email: Vec<String>,
    /// HTTPS endpoints (a chat webhook, a pager): each must confirm, as an email does.
    #[serde(default)]
    pub https: Vec<String>,
    /// Where the topic lives; the environment's region by default. An alarm can only notify a
    /// topic in its own region.
    #[serde(default)]
    pub region: Option<String>,
    /// A customer KMS key (ARN, id or `alias/NAME`) the topic's messages are encrypted with.
    #[serde(default)]
    pub kms_key: Option<String>,
}

impl NotificationsSpec {
    /// The topic's name on AWS: the environment's name first, so that environments sharing an
    /// account never share a topic.
    pub fn topic_name(env: &str, name: &str) -> String {
        format!("{env}-{name}")
    }
}

/// A CloudWatch Logs group.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogGroupSpec {
    /// The group's full name, e.g. `/poafix/prod/api`.
    pub name: String,
    /// How long events are kept (`30d`, `1y`...): one of the periods CloudWatch Logs offers.
    /// Kept forever when absent, which `validate` warns about.
    #[serde(default)]
    pub retention: Option<Duration>,
    /// A KMS key ARN the group's events are encrypted with.
    #[serde(default)]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub metric_filters: Vec<MetricFilterSpec>,
    /// Where the group lives; the environment's region by default.
    #[serde(default)]
    pub region: Option<String>,
}

/// A metric filter: each matching event adds `value` to `metric` (NAMESPACE/NAME), which an
/// alarm can watch.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricFilterSpec {
    pub name: String,
    /// A CloudWatch Logs filter pattern, e.g. `"ERROR"` or `{ $.level = "error" }`.
    pub pattern: String,
    /// `NAMESPACE/NAME`, e.g. `Poafix/ApiErrors`.
    pub metric: String,
    /// What a matching event adds (a number, or `$.field`); 1 by default.
    #[serde(default)]
    pub value: Option<String>,
}

impl MetricFilterSpec {
    /// The metric's namespace and name.
    pub fn metric_parts(&self) -> Option<(&str, &str)> {
        let (ns, name) = self.metric.rsplit_once('/')?;
        (!ns.is_empty() && !name.is_empty()).then_some((ns, name))
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// The app's own IAM role (no access keys).
    #[serde(default)]
    pub iam: Option<AppIamSpec>,
}

/// The IAM role the app runs as, with the least-privilege policy poactl generates from the
/// spec (the one `audit` prints).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppIamSpec {
    /// The role's name, e.g. `poafix-prod-app`.
    pub role: String,
    /// Who may assume it: `ecs-tasks.amazonaws.com`, `ec2.amazonaws.com`,
    /// `lambda.amazonaws.com`, or an OIDC provider.
    pub trusted_by: Vec<TrustSpec>,
}

/// One principal that may assume the app's role.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum TrustSpec {
    /// An AWS service principal.
    Service(String),
    /// A web-identity (OIDC) provider and the subject its tokens must carry.
    Oidc(OidcTrustSpec),
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcTrustSpec {
    /// The provider's ARN, `arn:aws:iam::ACCOUNT:oidc-provider/HOST`.
    pub oidc: String,
    /// The `sub` claim the token must match (`*` allowed), e.g. `system:serviceaccount:app:api`.
    pub subject: String,
    /// The `aud` claim; `sts.amazonaws.com` by default.
    #[serde(default)]
    pub audience: Option<String>,
}

/// A service principal poactl accepts in `trusted_by`.
pub const APP_TRUSTED_SERVICES: &[&str] = &["ecs-tasks.amazonaws.com", "ec2.amazonaws.com", "lambda.amazonaws.com"];
