//! The typed spec: one environment's desired state, exactly the fields `docs/spec.md` lists.
//!
//! Every struct denies unknown fields, so a typo is an error with a "did you mean" and a
//! position, never a silently ignored setting.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

mod cdn;
mod ci;
mod ops;
mod schema;
pub use cdn::*;
pub use ci::*;
pub use ops::*;
pub use schema::spec_schema;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Defaults to the file's name (`prod.yaml` is env `prod`).
    #[serde(default)]
    pub environment: Option<String>,
    /// Consumed by the loader; kept so it is a known field.
    #[serde(default)]
    pub extends: Option<String>,
    #[serde(default)]
    pub protect: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Tag keys someone else manages (a cost-allocation tool, an org policy): never shown as
    /// drift, never removed. A trailing `*` makes a prefix (`cost-*`).
    #[serde(default)]
    pub ignore_tags: Vec<String>,
    /// Where `apply` and `destroy` hold the environment's lock (an S3 object every runner can
    /// see); without it, a lock file on this machine only.
    #[serde(default)]
    pub lock: Option<LockSpec>,
    #[serde(default)]
    pub aws: Option<AwsSpec>,
    #[serde(default)]
    pub atlas: Option<AtlasSpec>,
    #[serde(default)]
    pub storage: Option<StorageSpec>,
    #[serde(default)]
    pub cdn: Option<CdnSpec>,
    #[serde(default)]
    pub monitoring: Option<MonitoringSpec>,
    #[serde(default)]
    pub billing: Option<BillingSpec>,
    /// The SNS topics alarms notify.
    #[serde(default)]
    pub notifications: Option<NotificationsSpec>,
    /// The app's own side of AWS: the role it runs as.
    #[serde(default)]
    pub app: Option<AppSpec>,
    /// The roles CI runs poactl as (GitHub Actions through OIDC).
    #[serde(default)]
    pub ci: Option<CiSpec>,
    #[serde(default)]
    pub database: Option<DatabaseSpec>,
    #[serde(default)]
    pub usage: Option<UsageSpec>,
}

/// Where the AWS resources without a region of their own (alarms, distributions' control
/// plane) are managed. Not in the original design: without it the region would come only from
/// the caller's environment, and a spec would mean different things on different machines.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AwsSpec {
    #[serde(default)]
    pub region: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Atlas

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AtlasSpec {
    pub org_id: String,
    pub project: String,
    #[serde(default)]
    pub clusters: Vec<ClusterSpec>,
    #[serde(default)]
    pub access_list: Vec<AccessListSpec>,
    #[serde(default)]
    pub database_users: Vec<DatabaseUserSpec>,
    #[serde(default)]
    pub alerts: Vec<AtlasAlertSpec>,
    /// How the clusters are reached: the public access list, or private endpoints.
    #[serde(default)]
    pub network: Option<NetworkSpec>,
    /// When Atlas may restart the project's nodes for maintenance.
    #[serde(default)]
    pub maintenance_window: Option<MaintenanceWindowSpec>,
    /// Database auditing, project-wide (dedicated clusters only).
    #[serde(default)]
    pub auditing: Option<AuditingSpec>,
    /// Encryption at rest with the team's own AWS KMS key (dedicated clusters only).
    #[serde(default)]
    pub encryption: Option<EncryptionSpec>,
}

/// Customer key management: Atlas encrypts the project's dedicated clusters' disks with a KMS
/// key of the team's, through an IAM role Atlas assumes.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionSpec {
    /// An existing key (ARN, key id, alias name or alias ARN), or `{ create: true }`.
    pub kms_key: KmsKeySpec,
    /// The key's AWS region (`us-east-1`); read from the ARN when the key is one.
    #[serde(default)]
    pub region: Option<String>,
    /// The IAM role Atlas assumes; `poactl-ENV-atlas-kms` when absent.
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum KmsKeySpec {
    Existing(String),
    Create { create: bool },
}

impl EncryptionSpec {
    /// The key's region, in AWS' form: the spec's, else the ARN's.
    pub fn key_region(&self) -> Option<String> {
        if let Some(r) = &self.region {
            return Some(aws_region_name(r));
        }
        match &self.kms_key {
            KmsKeySpec::Existing(k) if k.starts_with("arn:") => k.split(':').nth(3).filter(|r| !r.is_empty()).map(String::from),
            _ => None,
        }
    }

    pub fn role_name(&self, env: &str) -> String {
        self.role.clone().unwrap_or_else(|| format!("poactl-{env}-atlas-kms"))
    }

    /// The alias of the key poactl makes, by which it finds the key again.
    pub fn created_alias(env: &str) -> String {
        format!("alias/poactl-{env}-atlas")
    }

    pub fn creates_key(&self) -> bool {
        matches!(self.kms_key, KmsKeySpec::Create { create: true })
    }
}

/// The project's maintenance window (openapi-v2.yaml GroupMaintenanceWindow).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindowSpec {
    /// `sunday` … `saturday`.
    pub day: String,
    /// The hour it starts, 0-23, UTC.
    pub hour_utc: u8,
    /// Defer every maintenance by a week once it is scheduled (`autoDeferOnceEnabled`).
    #[serde(default)]
    pub auto_defer: bool,
}

/// The days as Atlas numbers them: 1 is Sunday (GroupMaintenanceWindow.dayOfWeek).
pub const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

impl MaintenanceWindowSpec {
    /// Atlas' `dayOfWeek`, or `None` for a day that is not one.
    pub fn day_of_week(&self) -> Option<u8> {
        WEEKDAYS.iter().position(|d| d.eq_ignore_ascii_case(&self.day)).map(|i| i as u8 + 1)
    }
}

/// Database auditing (openapi-v2.yaml AuditLog).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditingSpec {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Which events to record: a mapping, or the JSON text Atlas keeps. None or empty: all.
    #[serde(default)]
    pub filter: Option<serde_json::Value>,
    /// Also record successful authorizations (`auditAuthorizationSuccess`; Atlas: "degrades
    /// cluster performance").
    #[serde(default)]
    pub authorization_success: bool,
}

impl AuditingSpec {
    /// The filter as a JSON document: a string is parsed, an empty one is `{}`.
    pub fn filter_document(&self) -> Result<serde_json::Value, String> {
        match &self.filter {
            None | Some(serde_json::Value::Null) => Ok(serde_json::json!({})),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(serde_json::json!({})),
            Some(serde_json::Value::String(s)) => serde_json::from_str(s).map_err(|e| format!("not JSON: {e}")),
            Some(v @ serde_json::Value::Object(_)) => Ok(v.clone()),
            Some(_) => Err("a mapping or a JSON document is expected".into()),
        }
    }
}

impl AtlasSpec {
    /// Whether the clusters accept connections from the public internet (through the access
    /// list). `network.public_access: false` makes the environment VPC-only.
    pub fn public_access(&self) -> bool {
        self.network.as_ref().is_none_or(|n| n.public_access)
    }

    pub fn private_endpoints(&self) -> &[PrivateEndpointSpec] {
        self.network.as_ref().map(|n| n.private_endpoints.as_slice()).unwrap_or_default()
    }

    pub fn peerings(&self) -> &[PeeringSpec] {
        self.network.as_ref().map(|n| n.peering.as_slice()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// `false`: VPC-only. No access-list entries; live ones are removed.
    #[serde(default = "default_true")]
    pub public_access: bool,
    #[serde(default)]
    pub private_endpoints: Vec<PrivateEndpointSpec>,
    /// VPC peering, the alternative for teams that want routes rather than endpoints.
    #[serde(default)]
    pub peering: Vec<PeeringSpec>,
}

/// A VPC peering connection between Atlas' network in one region and the app's VPC.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeeringSpec {
    /// The Atlas region (`US_EAST_1`) of the network container the clusters there live in.
    pub region: String,
    /// Atlas' own block in that region (RFC 1918, /21 to /24); locked once a dedicated
    /// cluster or a peering exists.
    pub atlas_cidr: String,
    /// The app's VPC (`vpc-...`); poactl never creates VPCs.
    pub vpc: String,
    /// The VPC's block: Atlas routes it back, and the access list lets it in.
    pub vpc_cidr: String,
    /// The app's route tables that get a route to `atlas_cidr` through the peering.
    pub route_tables: Vec<String>,
    /// The VPC's region, when it is not the Atlas region's (cross-region peering).
    #[serde(default)]
    pub vpc_region: Option<String>,
}

impl PeeringSpec {
    /// The AWS region the VPC is in, where the peering is accepted and routed.
    pub fn vpc_region(&self) -> String {
        self.vpc_region.clone().unwrap_or_else(|| aws_region_name(&self.region))
    }
}

/// An AWS PrivateLink endpoint to the project's clusters in one Atlas region.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivateEndpointSpec {
    /// The Atlas region (`US_EAST_1`) whose cluster nodes the endpoint reaches.
    pub region: String,
    /// The app's VPC (`vpc-...`), in the same AWS region; poactl never creates VPCs.
    pub vpc: String,
    /// The subnets the endpoint's interfaces go in, one per availability zone.
    pub subnets: Vec<String>,
    /// Who may connect: security groups (`sg-...`) and CIDR blocks, the ingress of the
    /// endpoint's security group.
    pub allow_from: Vec<String>,
}

impl PrivateEndpointSpec {
    /// The AWS name of the Atlas region: Atlas writes AWS regions upper-case with
    /// underscores (`US_EAST_1` for us-east-1; openapi-v2.yaml, AWSRegionConfig20240805
    /// regionName).
    pub fn aws_region(&self) -> String {
        aws_region_name(&self.region)
    }
}

/// `us-east-1` for Atlas' `US_EAST_1` (and for `us-east-1` itself).
pub fn aws_region_name(atlas_region: &str) -> String {
    atlas_region.to_ascii_lowercase().replace('_', "-")
}

/// One AWS region in either form (`US_EAST_1`, `us-east-1`): Atlas writes both.
pub fn same_region(a: &str, b: &str) -> bool {
    aws_region_name(a) == aws_region_name(b)
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: String,
    /// M0 | FLEX | M10 | M20 | M30 ...
    pub tier: String,
    #[serde(default = "default_provider")]
    pub provider: String,
    /// The one region of a single-region cluster; a multi-region cluster lists `regions`.
    #[serde(default)]
    pub region: Option<String>,
    /// A multi-region cluster's regions, each with its nodes and election priority.
    #[serde(default)]
    pub regions: Vec<RegionNodesSpec>,
    #[serde(default)]
    pub mongodb_version: Option<String>,
    #[serde(default)]
    pub backup: Option<BackupSpec>,
    #[serde(default)]
    pub autoscaling: Option<AutoscalingSpec>,
    #[serde(default)]
    pub termination_protection: bool,
    /// The oldest TLS version the cluster accepts (`"1.2"`); dedicated tiers only, 1.2 when
    /// absent.
    #[serde(default)]
    pub min_tls: Option<String>,
    #[serde(default)]
    pub disk_size_gb: Option<f64>,
    #[serde(default)]
    pub node_count: Option<u32>,
    #[serde(default)]
    pub paused: Option<bool>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_provider() -> String {
    "AWS".to_string()
}

/// One region of a multi-region cluster: how many nodes of each role it holds, and its place
/// in primary elections (7 the preferred region, then 6, 5...; 0 for a region without
/// electable nodes).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionNodesSpec {
    pub region: String,
    #[serde(default)]
    pub electable: u32,
    #[serde(default)]
    pub read_only: u32,
    #[serde(default)]
    pub analytics: u32,
    #[serde(default)]
    pub priority: Option<u32>,
}

/// Where a cluster's nodes are, one region at a time: the spec's `regions`, or its single
/// `region` with `node_count` electable nodes at priority 7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub region: String,
    pub electable: u32,
    pub read_only: u32,
    pub analytics: u32,
    pub priority: u32,
}

impl Placement {
    pub fn nodes(&self) -> u32 {
        self.electable + self.read_only + self.analytics
    }
}

impl ClusterSpec {
    /// The cluster's regions, highest priority first (ties by name, as Atlas sorts them).
    pub fn placements(&self) -> Vec<Placement> {
        let mut out: Vec<Placement> = if self.regions.is_empty() {
            let region = self.region.clone().unwrap_or_default();
            vec![Placement { region, electable: self.node_count.unwrap_or(3), read_only: 0, analytics: 0, priority: 7 }]
        } else {
            self.regions
                .iter()
                .map(|r| Placement {
                    region: r.region.clone(),
                    electable: r.electable,
                    read_only: r.read_only,
                    analytics: r.analytics,
                    priority: r.priority.unwrap_or(0),
                })
                .collect()
        };
        sort_placements(&mut out);
        out
    }

    /// The region the primary prefers: the single region, or the highest-priority one.
    pub fn primary_region(&self) -> String {
        self.placements().into_iter().next().map(|p| p.region).unwrap_or_default()
    }

    /// Every region that holds nodes of this cluster.
    pub fn node_regions(&self) -> Vec<String> {
        self.placements().into_iter().filter(|p| p.nodes() > 0).map(|p| p.region).collect()
    }
}

/// Highest priority first; equal priorities by region name, descending, which is how Atlas
/// returns them (terraform-provider-mongodbatlas #4585 and #4625).
pub fn sort_placements(p: &mut [Placement]) {
    p.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| b.region.cmp(&a.region)));
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupSpec {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub point_in_time: bool,
    /// Point-in-time restore window (`7d`); Atlas default when absent.
    #[serde(default)]
    pub restore_window: Option<Duration>,
    #[serde(default)]
    pub schedule: Vec<BackupPolicySpec>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupPolicySpec {
    /// hourly | daily | weekly | monthly | yearly
    pub every: String,
    /// Hours for hourly, day of week (1-7) for weekly, day of month (1-28, 40 = last) for monthly.
    #[serde(default = "one")]
    pub interval: i64,
    /// How long snapshots are kept, e.g. `7d`, `4w`, `12mo`? Written as a count and unit.
    pub keep: Retention,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AutoscalingSpec {
    #[serde(default)]
    pub compute: Option<ComputeScalingSpec>,
    #[serde(default)]
    pub disk: bool,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComputeScalingSpec {
    pub min: String,
    pub max: String,
    #[serde(default = "yes")]
    pub scale_down: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AccessListSpec {
    #[serde(default)]
    pub cidr: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub security_group: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

impl AccessListSpec {
    /// The entry as Atlas keys it: a single IP is stored as `/32`.
    pub fn key(&self) -> String {
        if let Some(c) = &self.cidr {
            c.clone()
        } else if let Some(ip) = &self.ip {
            if ip.contains(':') { format!("{ip}/128") } else { format!("{ip}/32") }
        } else {
            self.security_group.clone().unwrap_or_default()
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockSpec {
    /// An existing bucket (not one this spec creates: the lock is taken before anything is).
    pub bucket: String,
    /// Default `poactl/locks/ENV.json`.
    #[serde(default)]
    pub key: Option<String>,
    /// The bucket's region; default `aws.region`.
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseUserSpec {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    /// `admin` for SCRAM users (the default), `$external` for X.509/LDAP/IAM.
    #[serde(default = "default_auth_db")]
    pub auth_database: String,
    pub roles: Vec<RoleSpec>,
    #[serde(default)]
    pub scopes: Vec<ScopeSpec>,
    #[serde(default)]
    pub description: Option<String>,
    /// How a `$external` user authenticates: exactly one of these (Atlas' `x509Type`,
    /// `awsIAMType`, `ldapAuthType`, `oidcAuthType`).
    #[serde(default)]
    pub auth: Option<ExternalAuthSpec>,
}

impl DatabaseUserSpec {
    /// The user's identity, as its address names it: Atlas keys users by (database, username),
    /// so a `$external` user is `$external/NAME` and a SCRAM user is just its name.
    pub fn key(&self) -> String {
        if self.auth_database == "admin" { self.username.clone() } else { format!("{}/{}", self.auth_database, self.username) }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExternalAuthSpec {
    /// MANAGED (Atlas-managed certificates) or CUSTOMER (self-managed X.509).
    #[serde(default)]
    pub x509: Option<String>,
    /// USER or ROLE (an IAM user or role ARN as the username).
    #[serde(default)]
    pub aws_iam: Option<String>,
    /// USER or GROUP.
    #[serde(default)]
    pub ldap: Option<String>,
    /// IDP_GROUP or USER.
    #[serde(default)]
    pub oidc: Option<String>,
}

impl ExternalAuthSpec {
    /// (Atlas field, value, allowed values) for each method.
    pub fn fields(&self) -> [(&'static str, Option<&str>, &'static [&'static str]); 4] {
        [
            ("x509Type", self.x509.as_deref(), &["MANAGED", "CUSTOMER"]),
            ("awsIAMType", self.aws_iam.as_deref(), &["USER", "ROLE"]),
            ("ldapAuthType", self.ldap.as_deref(), &["USER", "GROUP"]),
            ("oidcAuthType", self.oidc.as_deref(), &["IDP_GROUP", "USER"]),
        ]
    }
}

fn default_auth_db() -> String {
    "admin".to_string()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub role: String,
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    /// Cluster (or data lake) name.
    pub name: String,
    #[serde(rename = "type", default = "default_scope_type")]
    pub kind: String,
}

fn default_scope_type() -> String {
    "CLUSTER".to_string()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AtlasAlertSpec {
    /// Atlas event type, e.g. OUTSIDE_METRIC_THRESHOLD, HOST_DOWN, REPLICATION_OPLOG_WINDOW_RUNNING_OUT.
    pub event: String,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default)]
    pub above: Option<f64>,
    #[serde(default)]
    pub below: Option<f64>,
    /// Units of the metric threshold (RAW, BYTES, MEGABYTES, SECONDS, ...); RAW by default.
    #[serde(default)]
    pub units: Option<String>,
    #[serde(default)]
    pub matchers: Vec<MatcherSpec>,
    pub notify: OneOrMany<NotifySpec>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct MatcherSpec {
    pub field: String,
    #[serde(default = "default_matcher_op")]
    pub operator: String,
    pub value: String,
}

fn default_matcher_op() -> String {
    "EQUALS".to_string()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub sms: Option<String>,
    /// Project roles to notify by email (GROUP notification), e.g. [GROUP_OWNER].
    #[serde(default)]
    pub roles: Vec<String>,
    /// An Atlas user (by username) to notify.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub delay: Option<Duration>,
}

/// Either one item or a list of them (`notify: {email: x}` or `notify: [{email: x}, ...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map or a list of maps")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                Ok(OneOrMany(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| OneOrMany(vec![t]))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

// ---------------------------------------------------------------------------------------------
// Storage, CDN, monitoring, billing

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    #[serde(default)]
    pub buckets: Vec<BucketSpec>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketSpec {
    pub name: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub versioning: bool,
    /// AES256 (SSE-S3, the AWS default) or aws:kms (with `kms_key`).
    #[serde(default = "default_encryption")]
    pub encryption: String,
    #[serde(default)]
    pub kms_key: Option<String>,
    /// `blocked` (all four public-access-block flags on, the AWS default) or `allowed`.
    #[serde(default = "default_public_access")]
    pub public_access: String,
    /// BucketOwnerEnforced (the AWS default, ACLs off) | BucketOwnerPreferred | ObjectWriter.
    #[serde(default = "default_ownership")]
    pub object_ownership: String,
    #[serde(default)]
    pub lifecycle: Vec<LifecycleRuleSpec>,
    #[serde(default)]
    pub cors: Vec<CorsRuleSpec>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Whether the app's IAM policy (`poactl audit`) reaches this bucket: `false` for one
    /// the app never touches (backups, logs), so its keys cannot read or delete it.
    #[serde(default = "default_true")]
    pub app_access: bool,
}

fn default_true() -> bool {
    true
}

fn default_encryption() -> String {
    "AES256".to_string()
}
fn default_public_access() -> String {
    "blocked".to_string()
}
fn default_ownership() -> String {
    "BucketOwnerEnforced".to_string()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRuleSpec {
    /// Rule id; derived from the prefix when absent.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub expire_after: Option<Duration>,
    #[serde(default)]
    pub transition_after: Option<Duration>,
    #[serde(default)]
    pub storage_class: Option<String>,
    #[serde(default)]
    pub noncurrent_expire_after: Option<Duration>,
    #[serde(default)]
    pub abort_incomplete_multipart_after: Option<Duration>,
    /// Remove delete markers that no longer hide any version (versioned buckets).
    #[serde(default)]
    pub expire_delete_markers: bool,
    /// `false` keeps the rule but switches it off (S3 `Status: Disabled`).
    #[serde(default = "yes")]
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CorsRuleSpec {
    pub allowed_origins: Vec<String>,
    #[serde(default = "default_cors_methods")]
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub max_age: Option<Duration>,
}

fn default_cors_methods() -> Vec<String> {
    vec!["GET".to_string()]
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSpec {
    #[serde(default)]
    pub alarms: Vec<AlarmSpec>,
    /// Route 53 health checks of public URLs, each with a CloudWatch alarm that notifies.
    #[serde(default)]
    pub uptime: Vec<UptimeSpec>,
    /// CloudWatch Logs groups with their retention and metric filters.
    #[serde(default)]
    pub log_groups: Vec<LogGroupSpec>,
}

/// An uptime check: Route 53 asks `url` from its checkers around the world every `interval`;
/// `failure_threshold` failures in a row make it unhealthy, and its alarm notifies.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UptimeSpec {
    pub name: String,
    /// `https://host[:port]/path` (or `http://`).
    pub url: String,
    /// 30s (standard) or 10s (fast, priced as an optional feature).
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    /// A string the first 5,120 bytes of the answer must contain.
    #[serde(default)]
    pub search: Option<String>,
    /// Route 53 checker regions (at least 3); Route 53's default set when absent.
    #[serde(default)]
    pub regions: Vec<String>,
    /// SNS topics (ARNs) the alarm notifies.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Whether the endpoint runs on AWS (priced lower by Route 53); default false.
    #[serde(default)]
    pub on_aws: bool,
}

/// A URL split the way a Route 53 health check takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl UptimeSpec {
    pub fn parsed_url(&self) -> Option<CheckedUrl> {
        let (https, rest) = match self.url.split_once("://")? {
            ("https", r) => (true, r),
            ("http", r) => (false, r),
            _ => return None,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, if https { 443 } else { 80 }),
        };
        (!host.is_empty()).then(|| CheckedUrl { https, host: host.to_ascii_lowercase(), port, path })
    }

    /// The name of the CloudWatch alarm on the check (`monitoring.alarms.uptime-NAME`).
    pub fn alarm_name(&self) -> String {
        format!("uptime-{}", self.name)
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmSpec {
    pub name: String,
    pub metric: MetricSpec,
    #[serde(default = "default_statistic")]
    pub statistic: String,
    #[serde(default = "default_period")]
    pub period: Duration,
    #[serde(default)]
    pub above: Option<f64>,
    #[serde(default)]
    pub below: Option<f64>,
    /// Evaluation periods.
    #[serde(default = "one_u32", rename = "for")]
    pub evaluation_periods: u32,
    /// Datapoints within `for` that must breach (default: all of them).
    #[serde(default)]
    pub datapoints: Option<u32>,
    /// missing | notBreaching | breaching | ignore
    #[serde(default = "default_missing")]
    pub treat_missing_data: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    #[serde(default)]
    pub ok_notify: Vec<String>,
    /// Where the alarm lives; by default where its metric is published (see
    /// `Spec::alarm_region`).
    #[serde(default)]
    pub region: Option<String>,
}

fn default_statistic() -> String {
    "Average".to_string()
}
fn default_period() -> Duration {
    Duration { seconds: 300, text: "5m".to_string() }
}
fn one_u32() -> u32 {
    1
}
fn default_missing() -> String {
    "missing".to_string()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct BillingSpec {
    #[serde(default)]
    pub alerts: Vec<BillingAlertSpec>,
    #[serde(default)]
    pub budget_usd: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingAlertSpec {
    pub above_usd: f64,
    /// SNS topic ARNs for the CloudWatch alarm.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Who Atlas emails for its half (PENDING_INVOICE_OVER_THRESHOLD); project owners by default.
    #[serde(default)]
    pub atlas_notify: Option<OneOrMany<NotifySpec>>,
}

// ---------------------------------------------------------------------------------------------
// MongoDB indexes

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    #[serde(default)]
    pub uri: Option<String>,
    /// A user of `atlas.database_users` whose credentials are added to `uri` (it needs
    /// createIndex, dropIndex and collMod: readWrite plus dbAdmin on the database).
    #[serde(default)]
    pub user: Option<String>,
    pub name: String,
    #[serde(default)]
    pub collections: IndexMapSpec,
}

/// Collections in the order the spec lists them.
#[derive(Debug, Clone, Default)]
pub struct IndexMapSpec(pub Vec<(String, CollectionSpec)>);

impl<'de> Deserialize<'de> for IndexMapSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IndexMapSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of collection name to its indexes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, CollectionSpec>()? {
                    out.push((k, v));
                }
                Ok(IndexMapSpec(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(IndexMapSpec::default())
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    #[serde(default)]
    pub indexes: Vec<IndexSpec>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    pub keys: IndexKeys,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub sparse: bool,
    /// TTL: documents expire this long after the indexed date.
    #[serde(default)]
    pub expire_after: Option<Duration>,
    #[serde(default)]
    pub partial_filter: Option<serde_json::Value>,
    #[serde(default)]
    pub collation: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub hidden: bool,
    /// Text indexes: field weights.
    #[serde(default)]
    pub weights: Option<BTreeMap<String, i64>>,
    #[serde(default)]
    pub default_language: Option<String>,
    #[serde(default)]
    pub language_override: Option<String>,
}

/// Index keys in the order written (a compound index is defined by its order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexKeys(pub Vec<(String, IndexKey)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IndexKey {
    Asc,
    Desc,
    Geo2dSphere,
    Geo2d,
    Text,
    Hashed,
}

impl IndexKey {
    pub fn name_part(self) -> &'static str {
        match self {
            IndexKey::Asc => "1",
            IndexKey::Desc => "-1",
            IndexKey::Geo2dSphere => "2dsphere",
            IndexKey::Geo2d => "2d",
            IndexKey::Text => "text",
            IndexKey::Hashed => "hashed",
        }
    }
}

impl<'de> Deserialize<'de> for IndexKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IndexKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("1, -1, \"2dsphere\", \"2d\", \"text\" or \"hashed\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IndexKey, E> {
                match v {
                    1 => Ok(IndexKey::Asc),
                    -1 => Ok(IndexKey::Desc),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IndexKey, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IndexKey, E> {
                if v == 1.0 {
                    Ok(IndexKey::Asc)
                } else if v == -1.0 {
                    Ok(IndexKey::Desc)
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IndexKey, E> {
                match v {
                    "1" => Ok(IndexKey::Asc),
                    "-1" => Ok(IndexKey::Desc),
                    "2dsphere" => Ok(IndexKey::Geo2dSphere),
                    "2d" => Ok(IndexKey::Geo2d),
                    "text" => Ok(IndexKey::Text),
                    "hashed" => Ok(IndexKey::Hashed),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for IndexKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IndexKeys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of field to direction, e.g. { serviceType: 1, isAvailable: 1 }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IndexKeys, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, IndexKey>()? {
                    out.push((k, v));
                }
                if out.is_empty() {
                    return Err(de::Error::custom("an index needs at least one key"));
                }
                Ok(IndexKeys(out))
            }
        }
        d.deserialize_map(V)
    }
}

// ---------------------------------------------------------------------------------------------
// Usage (inputs of the cost model)

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UsageSpec {
    #[serde(default)]
    pub storage_gb: f64,
    #[serde(default)]
    pub cdn_transfer_gb: f64,
    #[serde(default)]
    pub cdn_requests: f64,
    #[serde(default)]
    pub s3_put_requests: f64,
    #[serde(default)]
    pub s3_get_requests: f64,
    /// Traffic between the app and Atlas through the private endpoints (GB), both ways.
    #[serde(default)]
    pub private_endpoint_gb: f64,
    /// Log events written to the environment's log groups (GB a month, all groups together).
    #[serde(default)]
    pub log_ingest_gb: f64,
    /// Growth scenarios: named multipliers over the usage above.
    #[serde(default)]
    pub scenarios: Vec<ScenarioSpec>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Multiplies every usage input (default 1).
    #[serde(default = "one_f64")]
    pub multiplier: f64,
    /// Per-input multipliers, applied on top of `multiplier`.
    #[serde(default)]
    pub storage_gb: Option<f64>,
    #[serde(default)]
    pub cdn_transfer_gb: Option<f64>,
    #[serde(default)]
    pub cdn_requests: Option<f64>,
    #[serde(default)]
    pub s3_put_requests: Option<f64>,
    #[serde(default)]
    pub s3_get_requests: Option<f64>,
    #[serde(default)]
    pub private_endpoint_gb: Option<f64>,
    #[serde(default)]
    pub log_ingest_gb: Option<f64>,
    /// Cluster tiers this scenario needs (cluster name → tier), e.g. `{ main: M30 }`.
    #[serde(default)]
    pub cluster_tiers: BTreeMap<String, String>,
}

fn one_f64() -> f64 {
    1.0
}

// ---------------------------------------------------------------------------------------------
// Durations

/// A duration written as `30s`, `5m`, `12h`, `7d`, `2w` (or a bare number of seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duration {
    pub seconds: u64,
    #[serde(skip)]
    pub text: String,
}

impl Duration {
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("a duration cannot be empty".into());
        }
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!("`{s}` is not a duration: write a number and a unit, e.g. 30s, 5m, 12h, 7d, 2w"));
        }
        let n: u64 = num.parse().map_err(|_| format!("`{s}`: the number is too large"))?;
        let mult: u64 = match unit {
            "" | "s" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => {
                return Err(format!("`{s}` has an unknown unit `{unit}`: use s, m, h, d or w (e.g. 7d, 5m, 365d)"));
            }
        };
        let seconds = n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too long"))?;
        Ok(Duration { seconds, text: t.to_string() })
    }

    pub fn whole_days(&self) -> Option<i32> {
        self.seconds.is_multiple_of(86_400).then(|| i32::try_from(self.seconds / 86_400).ok()).flatten()
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 5m, 12h, 7d or 2w")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                let seconds = u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
                Ok(Duration { seconds, text: format!("{seconds}s") })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration { seconds: v, text: format!("{v}s") })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Snapshot retention: `7d`, `4w`, `12mo`, `1y` (Atlas keeps days, weeks, months or years).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub value: i64,
    pub unit: String,
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let value: i64 = num.parse().map_err(|_| de::Error::custom(format!("`{s}`: write a count and a unit, e.g. 7d, 4w, 12mo, 1y")))?;
        let unit = match unit {
            "d" => "days",
            "w" => "weeks",
            "mo" => "months",
            "y" => "years",
            _ => return Err(de::Error::custom(format!("`{s}`: the unit must be d, w, mo or y"))),
        };
        Ok(Retention { value, unit: unit.to_string() })
    }
}
