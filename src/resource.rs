//! Resource kinds and addresses: the names the plan, the references and the tags use.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The ownership tag keys. One set that is legal on every service: Atlas allows only letters,
/// digits, spaces and `; @ _ - . +` in tag keys and values (Atlas' Resource Tags page; the Atlas
/// Kubernetes operator's `TagSpec` pattern; terraform-provider-mongodbatlas#1668 and #4124 show a
/// `:` or `/` refused with 400), and AWS allows letters, digits, spaces and `_ . : / = + - @`.
pub const TAG_MANAGED: &str = "poactl-managed";
pub const TAG_ENV: &str = "poactl-env";
pub const TAG_ID: &str = "poactl-id";
/// The keys releases before 0.2 wrote on AWS (`:` is legal there, not on Atlas). Resources that
/// carry them are still this environment's; the next apply rewrites them to the new keys.
pub const LEGACY_TAG_PREFIX: &str = "poactl:";
/// What the comment of every `--temporary-access` entry starts with: the access-list drift
/// and `audit` know a runner's temporary entries by it.
pub const TEMPORARY_ACCESS_COMMENT: &str = "poactl temporary access";

/// Whether a key is one of poactl's ownership keys (current or legacy).
pub fn is_ownership_key(key: &str) -> bool {
    key.starts_with("poactl-") || key.starts_with(LEGACY_TAG_PREFIX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "atlas.project")]
    AtlasProject,
    #[serde(rename = "atlas.clusters")]
    AtlasCluster,
    #[serde(rename = "atlas.backup_schedules")]
    AtlasBackupSchedule,
    #[serde(rename = "atlas.access_list")]
    AtlasAccessList,
    #[serde(rename = "atlas.private_endpoints")]
    AtlasPrivateEndpoint,
    #[serde(rename = "atlas.peering")]
    AtlasPeering,
    #[serde(rename = "atlas.maintenance_window")]
    AtlasMaintenanceWindow,
    #[serde(rename = "atlas.auditing")]
    AtlasAuditing,
    #[serde(rename = "atlas.encryption")]
    AtlasEncryption,
    #[serde(rename = "atlas.database_users")]
    AtlasUser,
    #[serde(rename = "atlas.alerts")]
    AtlasAlert,
    #[serde(rename = "storage.buckets")]
    Bucket,
    #[serde(rename = "storage.bucket_policies")]
    BucketPolicy,
    #[serde(rename = "cdn.certificates")]
    Certificate,
    #[serde(rename = "cdn.distributions")]
    Distribution,
    #[serde(rename = "cdn.dns_records")]
    DnsRecord,
    #[serde(rename = "monitoring.alarms")]
    Alarm,
    #[serde(rename = "billing.alarms")]
    BillingAlarm,
    #[serde(rename = "database.indexes")]
    Index,
    #[serde(rename = "monitoring.uptime")]
    HealthCheck,
    #[serde(rename = "notifications.topics")]
    Topic,
    #[serde(rename = "monitoring.log_groups")]
    LogGroup,
    #[serde(rename = "app.iam")]
    AppRole,
    #[serde(rename = "ci.oidc_providers")]
    OidcProvider,
    #[serde(rename = "ci.roles")]
    CiRole,
}

impl Kind {
    pub const ALL: [Kind; 25] = [
        Kind::AtlasProject,
        Kind::AtlasCluster,
        Kind::AtlasBackupSchedule,
        Kind::AtlasAccessList,
        Kind::AtlasPrivateEndpoint,
        Kind::AtlasPeering,
        Kind::AtlasMaintenanceWindow,
        Kind::AtlasAuditing,
        Kind::AtlasEncryption,
        Kind::AtlasUser,
        Kind::AtlasAlert,
        Kind::Bucket,
        Kind::BucketPolicy,
        Kind::Certificate,
        Kind::Distribution,
        Kind::DnsRecord,
        Kind::Alarm,
        Kind::BillingAlarm,
        Kind::Index,
        Kind::HealthCheck,
        Kind::Topic,
        Kind::LogGroup,
        Kind::AppRole,
        Kind::OidcProvider,
        Kind::CiRole,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AtlasProject => "atlas.project",
            Kind::AtlasCluster => "atlas.clusters",
            Kind::AtlasBackupSchedule => "atlas.backup_schedules",
            Kind::AtlasAccessList => "atlas.access_list",
            Kind::AtlasPrivateEndpoint => "atlas.private_endpoints",
            Kind::AtlasPeering => "atlas.peering",
            Kind::AtlasMaintenanceWindow => "atlas.maintenance_window",
            Kind::AtlasAuditing => "atlas.auditing",
            Kind::AtlasEncryption => "atlas.encryption",
            Kind::AtlasUser => "atlas.database_users",
            Kind::AtlasAlert => "atlas.alerts",
            Kind::Bucket => "storage.buckets",
            Kind::BucketPolicy => "storage.bucket_policies",
            Kind::Certificate => "cdn.certificates",
            Kind::Distribution => "cdn.distributions",
            Kind::DnsRecord => "cdn.dns_records",
            Kind::Alarm => "monitoring.alarms",
            Kind::BillingAlarm => "billing.alarms",
            Kind::Index => "database.indexes",
            Kind::HealthCheck => "monitoring.uptime",
            Kind::Topic => "notifications.topics",
            Kind::LogGroup => "monitoring.log_groups",
            Kind::AppRole => "app.iam",
            Kind::OidcProvider => "ci.oidc_providers",
            Kind::CiRole => "ci.roles",
        }
    }

    /// The outputs a resource of this kind offers to `${kind.name.field}` references and
    /// templates. Providers must fill exactly these.
    pub fn outputs(self) -> &'static [&'static str] {
        match self {
            Kind::AtlasProject => &["id", "name", "created"],
            Kind::AtlasCluster => &["id", "srv", "standard", "private_srv", "state", "mongodb_version", "name", "tier", "backup"],
            Kind::AtlasBackupSchedule => &["cluster"],
            Kind::AtlasAccessList => &["cidr"],
            Kind::AtlasPrivateEndpoint => &["endpoint_id", "service_id", "service_name", "security_group", "status"],
            Kind::AtlasPeering => &["container_id", "peer_id", "connection_id", "atlas_cidr", "status"],
            Kind::AtlasMaintenanceWindow => &["day_of_week", "hour_of_day"],
            Kind::AtlasAuditing => &["enabled"],
            Kind::AtlasEncryption => &["key_arn", "role_arn", "role_id", "valid"],
            Kind::AtlasUser => &["username"],
            Kind::AtlasAlert => &["id"],
            Kind::Bucket => &["name", "arn", "region", "domain"],
            Kind::BucketPolicy => &["bucket"],
            Kind::Certificate => &["arn", "status", "domain", "not_after"],
            Kind::Distribution => &["id", "arn", "domain", "url"],
            Kind::DnsRecord => &["name", "zone_id"],
            Kind::Alarm | Kind::BillingAlarm => &["arn", "name"],
            Kind::Index => &["name"],
            Kind::HealthCheck => &["id", "name"],
            Kind::Topic => &["arn", "name", "confirmed", "pending"],
            Kind::LogGroup => &["arn", "name"],
            Kind::AppRole | Kind::CiRole => &["arn", "name"],
            Kind::OidcProvider => &["arn", "url"],
        }
    }

    /// Kinds whose deletion loses data: deleting or replacing one always needs `--allow-destroy`.
    /// Customer key management is one: turning it off may schedule the deletion of a key the
    /// snapshots taken under it need. A log group is one too: its events go with it.
    pub fn holds_data(self) -> bool {
        matches!(self, Kind::AtlasProject | Kind::AtlasCluster | Kind::Bucket | Kind::AtlasEncryption | Kind::LogGroup)
    }

    /// Kinds whose replacement is a rebuild the resource is missing during (an index dropped
    /// and built again: slow on big collections, and queries lose it meanwhile): replacing one
    /// needs `--allow-rebuild`.
    pub fn rebuilt_on_replace(self) -> bool {
        matches!(self, Kind::Index)
    }

    /// Kinds that live in the database, read and written through a MongoDB connection rather
    /// than a cloud API: the commands that read the cloud only (output, check, audit) leave
    /// them out, and `destroy` leaves them with the data they index.
    pub fn in_database(self) -> bool {
        matches!(self, Kind::Index)
    }

    /// Kinds `destroy` leaves in place: what lives in the database (with the data it indexes),
    /// and what the whole account shares (IAM allows one OIDC provider per URL, which every
    /// environment's CI roles trust, so one environment's destroy must not cut off the others).
    pub fn kept_on_destroy(self) -> bool {
        self.in_database() || matches!(self, Kind::OidcProvider)
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `storage.buckets.poafix-prod-uploads`: a kind and the resource's name within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Address { kind, name: name.into() }
    }

    /// `atlas.access_list.203.0.113.0/24` as the plan prints it. Names may contain dots, so the
    /// kind is matched as a prefix (no kind is another's prefix).
    pub fn parse(text: &str) -> Option<Address> {
        Kind::ALL.into_iter().find_map(|kind| {
            let name = text.strip_prefix(kind.as_str())?.strip_prefix('.')?;
            (!name.is_empty()).then(|| Address::new(kind, name))
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.name)
    }
}

/// A `${...}` reference to another resource's output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    pub target: Address,
    pub field: String,
}

impl Reference {
    /// Splits `atlas.clusters.main.srv` (or the short `cdn.assets.id`) into address and field.
    /// Names may contain dots (bucket names can), so the kind is matched as a prefix and the
    /// field is the last segment.
    pub fn parse(text: &str) -> Option<Reference> {
        let (path, field) = text.rsplit_once('.')?;
        for kind in Kind::ALL {
            if let Some(name) = path.strip_prefix(kind.as_str()).and_then(|r| r.strip_prefix('.')) {
                if name.is_empty() {
                    return None;
                }
                return Some(Reference { target: Address::new(kind, name), field: field.to_string() });
            }
        }
        // Short forms: `cdn.NAME`, `bucket.NAME`, `cluster.NAME`, `alarm.NAME`.
        let (short, name) = path.split_once('.')?;
        let kind = match short {
            "cdn" | "distribution" => Kind::Distribution,
            "bucket" | "storage" => Kind::Bucket,
            "cluster" => Kind::AtlasCluster,
            "alarm" => Kind::Alarm,
            "project" => Kind::AtlasProject,
            _ => return None,
        };
        if name.is_empty() {
            return None;
        }
        Some(Reference { target: Address::new(kind, name), field: field.to_string() })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.target, self.field)
    }
}

/// A piece of a string in the `${...}` grammar of references between resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// What is between `${` and `}`, trimmed.
    Reference(&'a str),
    /// A `${` never closed: the rest of the string, as written.
    Unclosed(&'a str),
}

/// A string cut into text and `${...}` pieces: the one scanner of that grammar.
pub fn pieces(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push(Piece::Unclosed(&rest[start..]));
            return out;
        };
        out.push(Piece::Reference(after[..end].trim()));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// The reference a string is, when it is exactly one `${...}` (a field naming a resource).
pub fn whole_reference(s: &str) -> Option<Reference> {
    match pieces(s).as_slice() {
        [Piece::Reference(inner)] => Reference::parse(inner),
        _ => None,
    }
}

/// `--target` prefixes: one reading of them for addresses and for kinds. A target selects an
/// address that is the target or lies under it (`atlas` selects `atlas.clusters.main`;
/// `storage.buckets.a` does not select `storage.buckets.ab`), and a kind that lies under it or
/// holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets(Vec<String>);

impl Targets {
    pub fn new(targets: &[String]) -> Targets {
        Targets(targets.iter().map(|t| t.trim_end_matches('.').to_string()).filter(|t| !t.is_empty()).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn under(path: &str, prefix: &str) -> bool {
        path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'))
    }

    /// Whether an address is selected (every one is without targets).
    pub fn selects(&self, address: &Address) -> bool {
        let a = address.to_string();
        self.0.is_empty() || self.0.iter().any(|t| Self::under(&a, t))
    }

    /// The kinds the targets reach (`None`: no targets, every kind).
    pub fn kinds(&self) -> Option<std::collections::BTreeSet<Kind>> {
        (!self.0.is_empty()).then(|| {
            Kind::ALL.into_iter().filter(|k| self.0.iter().any(|t| Self::under(k.as_str(), t) || Self::under(t, k.as_str()))).collect()
        })
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_the_plan_prints_them() {
        let table = [
            ("atlas.access_list.203.0.113.0/24", Some((Kind::AtlasAccessList, "203.0.113.0/24"))),
            ("storage.buckets.poafix.uploads", Some((Kind::Bucket, "poafix.uploads"))),
            ("storage.bucket_policies.b", Some((Kind::BucketPolicy, "b"))),
            ("database.indexes.jobs.status_1", Some((Kind::Index, "jobs.status_1"))),
            ("atlas.project.", None),
            ("atlas.projects.x", None),
            ("203.0.113.0/24", None),
            ("cdn.assets", None),
        ];
        for (text, expected) in table {
            let want = expected.map(|(k, n)| Address::new(k, n));
            assert_eq!(Address::parse(text), want, "{text}");
            if let Some(a) = want {
                assert_eq!(a.to_string(), text, "round trip");
            }
        }
    }

    #[test]
    fn strings_cut_into_text_and_references() {
        use Piece::*;
        let cases: [(&str, Vec<Piece<'_>>); 6] = [
            ("plain", vec![Text("plain")]),
            ("${ cdn.assets.domain }", vec![Reference("cdn.assets.domain")]),
            ("https://${cdn.assets.domain}/x", vec![Text("https://"), Reference("cdn.assets.domain"), Text("/x")]),
            ("${a}${b}", vec![Reference("a"), Reference("b")]),
            ("left ${open", vec![Text("left "), Unclosed("${open")]),
            ("", vec![]),
        ];
        for (text, want) in cases {
            assert_eq!(pieces(text), want, "{text:?}");
        }
        assert_eq!(whole_reference("${storage.buckets.b.arn}").map(|r| r.target.name), Some("b".to_string()));
        assert!(whole_reference("x${storage.buckets.b.arn}").is_none());
    }

    #[test]
    fn targets_select_addresses_and_kinds_the_same_way() {
        let main = Address::new(Kind::AtlasCluster, "main");
        let ab = Address::new(Kind::Bucket, "ab");
        let index = Address::new(Kind::Index, "users.email_1");
        /// (targets, address, selected, a kind it reaches, a kind it does not)
        type Case<'a> = (&'a [&'a str], &'a Address, bool, Option<Kind>, Option<Kind>);
        let cases: [Case<'_>; 7] = [
            (&[], &main, true, None, None),
            (&["atlas"], &main, true, Some(Kind::AtlasUser), Some(Kind::Bucket)),
            (&["atlas."], &main, true, Some(Kind::AtlasProject), Some(Kind::Index)),
            (&["atlas.clusters.main"], &main, true, Some(Kind::AtlasCluster), Some(Kind::AtlasUser)),
            (&["storage.buckets.a"], &ab, false, Some(Kind::Bucket), Some(Kind::BucketPolicy)),
            (&["storage.bucket"], &ab, false, None, Some(Kind::Bucket)),
            (&["database.indexes.users"], &index, true, Some(Kind::Index), Some(Kind::AtlasCluster)),
        ];
        for (targets, address, selected, reaches, not) in cases {
            let t = Targets::new(&targets.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(t.selects(address), selected, "{targets:?} on {address}");
            let kinds = t.kinds();
            if let Some(k) = reaches {
                assert!(kinds.as_ref().is_some_and(|ks| ks.contains(&k)), "{targets:?} reaches {k}");
            }
            if let Some(k) = not {
                assert!(!kinds.as_ref().is_some_and(|ks| ks.contains(&k)), "{targets:?} does not reach {k}");
            }
        }
    }

    #[test]
    fn references_parse_long_and_short_forms() {
        let cases = [
            ("atlas.clusters.main.srv", Some((Kind::AtlasCluster, "main", "srv"))),
            ("cdn.assets.id", Some((Kind::Distribution, "assets", "id"))),
            ("cdn.distributions.assets.domain", Some((Kind::Distribution, "assets", "domain"))),
            ("storage.buckets.my.dotted.bucket.arn", Some((Kind::Bucket, "my.dotted.bucket", "arn"))),
            ("atlas.project.poafix.id", Some((Kind::AtlasProject, "poafix", "id"))),
            ("nothing", None),
            ("unknown.thing.id", None),
            ("atlas.clusters.srv", None),
        ];
        for (text, want) in cases {
            let got = Reference::parse(text).map(|r| (r.target.kind, r.target.name, r.field));
            let want = want.map(|(k, n, f)| (k, n.to_string(), f.to_string()));
            assert_eq!(got, want, "parsing {text}");
        }
    }
}
