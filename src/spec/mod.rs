//! The environment spec: model, loading (with `extends:` and interpolation) and checks.

pub mod app_policy;
pub mod ci_policy;
pub mod cidr;
pub mod error;
pub mod load;
pub mod model;
pub mod names;
pub mod validate;
pub mod yaml;

pub use error::{SpecError, SpecErrors};
pub use load::{LoadedSpec, load};
pub use model::Spec;

use crate::resource::{Address, Kind};

/// One resource the spec declares: its address, the part of the spec it comes from, and the
/// resource the spec nests it under (an Atlas cluster under its project, a backup schedule
/// under its cluster).
#[derive(Debug, Clone)]
pub struct Declared<'s> {
    pub address: Address,
    pub item: Item<'s>,
    pub parent: Option<Address>,
}

/// The part of the spec a declared resource is built from.
#[derive(Debug, Clone)]
pub enum Item<'s> {
    AtlasProject(&'s model::AtlasSpec),
    AtlasCluster(&'s model::ClusterSpec),
    AtlasBackupSchedule(&'s model::ClusterSpec),
    AtlasAccessList(&'s model::AccessListSpec),
    /// A PrivateLink endpoint: Atlas' endpoint service in a region, the AWS interface
    /// endpoint with its security group, and the registration joining them.
    AtlasPrivateEndpoint(&'s model::AtlasSpec, &'s model::PrivateEndpointSpec),
    /// A VPC peering: Atlas' container in a region, the peering connection, its acceptance
    /// and routes on the AWS side, and the access-list entry for the VPC.
    AtlasPeering(&'s model::PeeringSpec),
    AtlasMaintenanceWindow(&'s model::MaintenanceWindowSpec),
    AtlasAuditing(&'s model::AuditingSpec),
    /// Customer key management: the key (made when asked), Atlas' access role, the IAM role
    /// it assumes and its grant on the key, the authorization, and the project setting.
    AtlasEncryption(&'s model::EncryptionSpec),
    AtlasUser(&'s model::DatabaseUserSpec),
    AtlasAlert(&'s model::AtlasAlertSpec),
    /// A `billing.alerts` entry as Atlas's invoice alert.
    AtlasBillingAlert(&'s model::BillingAlertSpec),
    Bucket(&'s model::BucketSpec),
    /// The policy letting the bucket's distributions read it (through Origin Access Control).
    BucketPolicy(&'s model::BucketSpec, Vec<&'s model::DistributionSpec>),
    Certificate(&'s model::CdnSpec, &'s model::DistributionSpec),
    Distribution(&'s model::CdnSpec, &'s model::DistributionSpec),
    /// One of a distribution's names, in its hosted zone.
    DnsRecord {
        distribution: &'s model::DistributionSpec,
        zone: &'s str,
    },
    Alarm(&'s model::AlarmSpec),
    /// An uptime check as a Route 53 health check.
    HealthCheck(&'s model::UptimeSpec),
    /// The CloudWatch alarm on an uptime check's `AWS/Route53 HealthCheckStatus`.
    UptimeAlarm(&'s model::UptimeSpec),
    /// A `billing.alerts` entry as a CloudWatch billing alarm.
    BillingAlarm(&'s model::BillingAlertSpec),
    /// An SNS topic with its subscriptions and its policy.
    Topic(&'s str, &'s model::TopicSpec),
    /// A CloudWatch Logs group with its retention and metric filters.
    LogGroup(&'s model::LogGroupSpec),
    /// The app's IAM role with its generated policy.
    AppRole(&'s model::AppIamSpec),
    /// GitHub's OIDC provider in the account: made when missing, shared by every environment.
    OidcProvider(&'s model::GithubCiSpec),
    /// One of the two CI roles with its generated policy.
    CiRole(&'s model::GithubCiSpec, model::CiRole),
    Index {
        collection: &'s str,
        index: &'s model::IndexSpec,
    },
}

/// Every resource a spec declares, in spec order: the one list of them. The providers build
/// their desired resources from it, and the reference checks and `validate` read its
/// addresses, so they cannot disagree on what a spec declares or on its addresses.
pub fn declared<'s>(spec: &'s Spec) -> Vec<Declared<'s>> {
    let mut out = Vec::new();
    let mut push =
        |address: Address, item: Item<'s>, parent: Option<&Address>| out.push(Declared { address, item, parent: parent.cloned() });
    if let Some(atlas) = &spec.atlas {
        let project = Address::new(Kind::AtlasProject, &atlas.project);
        push(project.clone(), Item::AtlasProject(atlas), None);
        for c in &atlas.clusters {
            let cluster = Address::new(Kind::AtlasCluster, &c.name);
            push(cluster.clone(), Item::AtlasCluster(c), Some(&project));
            if has_backup_schedule(c) {
                push(Address::new(Kind::AtlasBackupSchedule, &c.name), Item::AtlasBackupSchedule(c), Some(&cluster));
            }
        }
        for e in &atlas.access_list {
            push(Address::new(Kind::AtlasAccessList, e.key()), Item::AtlasAccessList(e), Some(&project));
        }
        for e in atlas.private_endpoints() {
            push(Address::new(Kind::AtlasPrivateEndpoint, &e.region), Item::AtlasPrivateEndpoint(atlas, e), Some(&project));
        }
        for p in atlas.peerings() {
            push(Address::new(Kind::AtlasPeering, &p.region), Item::AtlasPeering(p), Some(&project));
        }
        if let Some(w) = &atlas.maintenance_window {
            push(Address::new(Kind::AtlasMaintenanceWindow, &atlas.project), Item::AtlasMaintenanceWindow(w), Some(&project));
        }
        if let Some(a) = &atlas.auditing {
            push(Address::new(Kind::AtlasAuditing, &atlas.project), Item::AtlasAuditing(a), Some(&project));
        }
        if let Some(e) = &atlas.encryption {
            push(Address::new(Kind::AtlasEncryption, &atlas.project), Item::AtlasEncryption(e), Some(&project));
        }
        for u in &atlas.database_users {
            push(Address::new(Kind::AtlasUser, u.key()), Item::AtlasUser(u), Some(&project));
        }
        for a in &atlas.alerts {
            push(Address::new(Kind::AtlasAlert, validate::alert_identity(a)), Item::AtlasAlert(a), Some(&project));
        }
        for b in spec.billing.iter().flat_map(|b| b.alerts.iter()) {
            push(Address::new(Kind::AtlasAlert, billing_alert_identity(b.above_usd)), Item::AtlasBillingAlert(b), Some(&project));
        }
    }
    for b in spec.storage.iter().flat_map(|s| s.buckets.iter()) {
        let bucket = Address::new(Kind::Bucket, &b.name);
        push(bucket.clone(), Item::Bucket(b), None);
        let readers = distributions_of(spec, &b.name);
        if !readers.is_empty() {
            push(Address::new(Kind::BucketPolicy, &b.name), Item::BucketPolicy(b, readers), Some(&bucket));
        }
    }
    if let Some(c) = &spec.cdn {
        for d in &c.distributions {
            if d.manages_certificate() {
                push(Address::new(Kind::Certificate, &d.name), Item::Certificate(c, d), None);
            }
            push(Address::new(Kind::Distribution, &d.name), Item::Distribution(c, d), None);
            if let Some(zone) = d.zone(c) {
                for name in d.domain_names() {
                    push(Address::new(Kind::DnsRecord, &name), Item::DnsRecord { distribution: d, zone }, None);
                }
            }
        }
    }
    for (name, t) in spec.notifications.iter().flat_map(|n| n.topics.iter()) {
        push(Address::new(Kind::Topic, name), Item::Topic(name, t), None);
    }
    for g in spec.monitoring.iter().flat_map(|m| m.log_groups.iter()) {
        push(Address::new(Kind::LogGroup, &g.name), Item::LogGroup(g), None);
    }
    for a in spec.monitoring.iter().flat_map(|m| m.alarms.iter()) {
        push(Address::new(Kind::Alarm, &a.name), Item::Alarm(a), None);
    }
    for u in spec.monitoring.iter().flat_map(|m| m.uptime.iter()) {
        push(Address::new(Kind::HealthCheck, &u.name), Item::HealthCheck(u), None);
        push(Address::new(Kind::Alarm, u.alarm_name()), Item::UptimeAlarm(u), None);
    }
    for b in spec.billing.iter().flat_map(|b| b.alerts.iter()) {
        push(Address::new(Kind::BillingAlarm, billing_alarm_name(b.above_usd)), Item::BillingAlarm(b), None);
    }
    if let Some(iam) = spec.app.as_ref().and_then(|a| a.iam.as_ref()) {
        push(Address::new(Kind::AppRole, APP_ROLE), Item::AppRole(iam), None);
    }
    if let Some(gh) = spec.ci.as_ref().and_then(|c| c.github.as_ref()) {
        let provider = Address::new(Kind::OidcProvider, GITHUB_OIDC);
        push(provider.clone(), Item::OidcProvider(gh), None);
        for role in model::CiRole::ALL {
            push(Address::new(Kind::CiRole, role.as_str()), Item::CiRole(gh, role), None);
        }
    }
    if let Some(db) = &spec.database {
        for (collection, c) in &db.collections.0 {
            for index in &c.indexes {
                let address = Address::new(Kind::Index, format!("{collection}.{}", validate::index_name(index)));
                push(address, Item::Index { collection, index }, None);
            }
        }
    }
    out
}

/// The one app role's address name: `${app.iam.role.arn}`.
pub const APP_ROLE: &str = "role";

/// GitHub's OIDC provider's address name: `${ci.oidc_providers.github.arn}`.
pub const GITHUB_OIDC: &str = "github";

/// Every resource address a spec declares, in spec order.
pub fn addresses(spec: &Spec) -> Vec<Address> {
    declared(spec).into_iter().map(|d| d.address).collect()
}

/// The distributions of the spec that read a bucket (through Origin Access Control).
pub fn distributions_of<'s>(spec: &'s Spec, bucket: &str) -> Vec<&'s model::DistributionSpec> {
    spec.cdn.iter().flat_map(|c| c.distributions.iter()).filter(|d| d.buckets().contains(&bucket)).collect()
}

/// A dedicated cluster with backup on and a schedule or restore window to manage.
pub fn has_backup_schedule(c: &model::ClusterSpec) -> bool {
    validate::is_dedicated(&c.tier)
        && c.backup.as_ref().is_some_and(|b| b.enabled && (!b.schedule.is_empty() || b.restore_window.is_some()))
}

pub fn billing_alert_identity(above_usd: f64) -> String {
    validate::alert_key("PENDING_INVOICE_OVER_THRESHOLD", None, Some(true), Some(above_usd), &[])
}

pub fn billing_alarm_name(above_usd: f64) -> String {
    format!("above-{}usd", fmt_usd(above_usd))
}

fn fmt_usd(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v}") }
}

impl Spec {
    /// The region for AWS resources without their own: `aws.region`, else the caller's
    /// `AWS_REGION`, else us-east-1.
    /// The region an alarm must live in: the one its metric is published in. CloudFront
    /// publishes its metrics in us-east-1 only ("CloudFront metrics ... are available only in the
    /// US East (N. Virginia) Region", CloudFront Developer Guide, monitoring with CloudWatch);
    /// S3 publishes a bucket's metrics in the bucket's region; anything else defaults to the
    /// environment's region. An explicit `region:` wins.
    pub fn alarm_region(&self, alarm: &model::AlarmSpec) -> String {
        if let Some(r) = &alarm.region {
            return r.clone();
        }
        match alarm.metric.namespace.as_str() {
            "AWS/CloudFront" => "us-east-1".to_string(),
            "AWS/S3" => alarm
                .metric
                .dimensions
                .get("BucketName")
                // The bucket by name, or by a reference to one of this spec's buckets.
                .map(|b| match crate::resource::whole_reference(b) {
                    Some(r) if r.target.kind == crate::resource::Kind::Bucket => r.target.name,
                    _ => b.clone(),
                })
                .and_then(|b| self.storage.as_ref()?.buckets.iter().find(|x| x.name == b))
                .and_then(|b| b.region.clone())
                .unwrap_or_else(|| self.aws_region()),
            _ => self.aws_region(),
        }
    }

    pub fn aws_region(&self) -> String {
        self.aws
            .as_ref()
            .and_then(|a| a.region.clone())
            .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty()))
            .unwrap_or_else(|| "us-east-1".to_string())
    }

    pub fn has_aws(&self) -> bool {
        self.storage.as_ref().is_some_and(|s| !s.buckets.is_empty())
            || self.cdn.as_ref().is_some_and(|c| !c.distributions.is_empty())
            || self.monitoring.as_ref().is_some_and(|m| !m.alarms.is_empty() || !m.uptime.is_empty() || !m.log_groups.is_empty())
            || self.notifications.as_ref().is_some_and(|n| !n.topics.is_empty())
            || self.app.as_ref().is_some_and(|a| a.iam.is_some())
            || self.billing.as_ref().is_some_and(|b| !b.alerts.is_empty())
            || self.atlas.as_ref().is_some_and(|a| !a.private_endpoints().is_empty() || !a.peerings().is_empty() || a.encryption.is_some())
    }

    /// A one-line summary of what the environment holds, for `validate`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        if let Some(a) = &self.atlas {
            let tiers: Vec<String> = a
                .clusters
                .iter()
                .map(|c| match c.regions.len() {
                    0 | 1 => format!("{} {}", c.name, c.tier),
                    n => format!("{} {} in {n} regions", c.name, c.tier),
                })
                .collect();
            parts.push(format!(
                "Atlas project {} ({}{})",
                a.project,
                plural(a.clusters.len(), "cluster", "clusters"),
                if tiers.is_empty() { String::new() } else { format!(": {}", tiers.join(", ")) }
            ));
            parts.push(plural(a.database_users.len(), "database user", "database users"));
            if a.public_access() {
                parts.push(plural(a.access_list.len(), "access-list entry", "access-list entries"));
            } else {
                parts.push("VPC-only".to_string());
            }
            if !a.private_endpoints().is_empty() {
                parts.push(plural(a.private_endpoints().len(), "private endpoint", "private endpoints"));
            }
            if !a.peerings().is_empty() {
                parts.push(plural(a.peerings().len(), "VPC peering", "VPC peerings"));
            }
            if !a.alerts.is_empty() {
                parts.push(plural(a.alerts.len(), "Atlas alert", "Atlas alerts"));
            }
        }
        if let Some(s) = &self.storage {
            parts.push(plural(s.buckets.len(), "bucket", "buckets"));
        }
        if let Some(c) = &self.cdn {
            parts.push(plural(c.distributions.len(), "distribution", "distributions"));
        }
        if let Some(m) = &self.monitoring {
            parts.push(plural(m.alarms.len(), "alarm", "alarms"));
            if !m.uptime.is_empty() {
                parts.push(plural(m.uptime.len(), "uptime check", "uptime checks"));
            }
            if !m.log_groups.is_empty() {
                parts.push(plural(m.log_groups.len(), "log group", "log groups"));
            }
        }
        if let Some(n) = self.notifications.as_ref().filter(|n| !n.topics.is_empty()) {
            parts.push(plural(n.topics.len(), "SNS topic", "SNS topics"));
        }
        if self.app.as_ref().is_some_and(|a| a.iam.is_some()) {
            parts.push("the app's IAM role".to_string());
        }
        if let Some(gh) = self.ci.as_ref().and_then(|c| c.github.as_ref()) {
            parts.push(format!("CI roles for {}", gh.repository));
        }
        if let Some(b) = &self.billing {
            parts.push(plural(b.alerts.len(), "billing alert", "billing alerts"));
        }
        if let Some(d) = &self.database {
            let n: usize = d.collections.0.iter().map(|(_, c)| c.indexes.len()).sum();
            parts.push(format!("{} on {}", plural(n, "index", "indexes"), plural(d.collections.0.len(), "collection", "collections")));
        }
        if parts.is_empty() { "nothing yet".to_string() } else { parts.join(", ") }
    }
}

#[cfg(test)]
mod alarm_region_tests {
    #[test]
    fn alarms_live_where_their_metric_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "environment: t\naws: { region: eu-central-1 }\nstorage:\n  buckets:\n    - { name: media-eu, region: eu-west-1 }\nmonitoring:\n  alarms:\n    - { name: cdn, metric: { namespace: AWS/CloudFront, name: Requests }, above: 1 }\n    - { name: s3, metric: { namespace: AWS/S3, name: BucketSizeBytes, dimensions: { BucketName: media-eu } }, above: 1 }\n    - { name: s3-ref, metric: { namespace: AWS/S3, name: BucketSizeBytes, dimensions: { BucketName: \"${storage.buckets.media-eu.name}\" } }, above: 1 }\n    - { name: s3-other, metric: { namespace: AWS/S3, name: BucketSizeBytes, dimensions: { BucketName: elsewhere } }, above: 1 }\n    - { name: app, metric: { namespace: App, name: Errors }, above: 1 }\n    - { name: pinned, metric: { namespace: App, name: Errors }, above: 1, region: ap-south-1 }\n";
        std::fs::write(dir.path().join("t.yaml"), yaml).unwrap();
        let loaded = super::load(dir.path(), "t", &|_| None).unwrap();
        let regions: Vec<(String, String)> =
            loaded.spec.monitoring.iter().flat_map(|m| m.alarms.iter()).map(|a| (a.name.clone(), loaded.spec.alarm_region(a))).collect();
        let want = [
            ("cdn", "us-east-1"),
            ("s3", "eu-west-1"),
            ("s3-ref", "eu-west-1"),
            ("s3-other", "eu-central-1"),
            ("app", "eu-central-1"),
            ("pinned", "ap-south-1"),
        ];
        assert_eq!(regions, want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>());
    }
}
