//! Checks a typed spec the way the services would, before any network call: names, tiers,
//! regions, durations, index rules, references. Every problem is reported, not just the first.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::error::SpecError;
use super::load::LoadedSpec;
use super::model::*;
use super::names::{atlas_tag_problem, aws_tag_problem, bucket_name_problem};
use super::yaml::{PathSeg, did_you_mean};
use crate::resource::Address;

pub const AWS_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
];

/// Atlas region names per provider (from the Admin API's `regionName` enums).
pub const ATLAS_AWS_REGIONS: &[&str] = &[
    "US_GOV_WEST_1",
    "US_GOV_EAST_1",
    "US_EAST_1",
    "US_EAST_2",
    "US_WEST_1",
    "US_WEST_2",
    "CA_CENTRAL_1",
    "EU_NORTH_1",
    "EU_WEST_1",
    "EU_WEST_2",
    "EU_WEST_3",
    "EU_CENTRAL_1",
    "EU_CENTRAL_2",
    "AP_EAST_1",
    "AP_EAST_2",
    "AP_NORTHEAST_1",
    "AP_NORTHEAST_2",
    "AP_NORTHEAST_3",
    "AP_SOUTHEAST_1",
    "AP_SOUTHEAST_2",
    "AP_SOUTHEAST_3",
    "AP_SOUTHEAST_4",
    "AP_SOUTHEAST_5",
    "AP_SOUTHEAST_6",
    "AP_SOUTHEAST_7",
    "AP_SOUTH_1",
    "AP_SOUTH_2",
    "SA_EAST_1",
    "CN_NORTH_1",
    "CN_NORTHWEST_1",
    "ME_SOUTH_1",
    "ME_CENTRAL_1",
    "AF_SOUTH_1",
    "EU_SOUTH_1",
    "EU_SOUTH_2",
    "IL_CENTRAL_1",
    "CA_WEST_1",
    "MX_CENTRAL_1",
];
pub const ATLAS_AZURE_REGIONS: &[&str] = &[
    "US_CENTRAL",
    "US_EAST",
    "US_EAST_2",
    "US_NORTH_CENTRAL",
    "US_WEST",
    "US_SOUTH_CENTRAL",
    "EUROPE_NORTH",
    "EUROPE_WEST",
    "US_WEST_CENTRAL",
    "US_WEST_2",
    "US_WEST_3",
    "CANADA_EAST",
    "CANADA_CENTRAL",
    "BRAZIL_SOUTH",
    "BRAZIL_SOUTHEAST",
    "AUSTRALIA_CENTRAL",
    "AUSTRALIA_CENTRAL_2",
    "AUSTRALIA_EAST",
    "AUSTRALIA_SOUTH_EAST",
    "GERMANY_WEST_CENTRAL",
    "GERMANY_NORTH",
    "SWEDEN_CENTRAL",
    "SWEDEN_SOUTH",
    "SWITZERLAND_NORTH",
    "SWITZERLAND_WEST",
    "UK_SOUTH",
    "UK_WEST",
    "NORWAY_EAST",
    "NORWAY_WEST",
    "INDIA_CENTRAL",
    "INDIA_SOUTH",
    "INDIA_WEST",
    "CHINA_EAST",
    "CHINA_NORTH",
    "ASIA_EAST",
    "JAPAN_EAST",
    "JAPAN_WEST",
    "ASIA_SOUTH_EAST",
    "KOREA_CENTRAL",
    "KOREA_SOUTH",
    "FRANCE_CENTRAL",
    "FRANCE_SOUTH",
    "SOUTH_AFRICA_NORTH",
    "SOUTH_AFRICA_WEST",
    "UAE_CENTRAL",
    "UAE_NORTH",
    "QATAR_CENTRAL",
    "POLAND_CENTRAL",
    "ISRAEL_CENTRAL",
    "ITALY_NORTH",
    "SPAIN_CENTRAL",
    "MEXICO_CENTRAL",
    "NEW_ZEALAND_NORTH",
    "US_GOV_VIRGINIA",
    "US_GOV_ARIZONA",
    "US_GOV_TEXAS",
];
pub const ATLAS_GCP_REGIONS: &[&str] = &[
    "EASTERN_US",
    "EASTERN_US_AW",
    "US_EAST_4",
    "US_EAST_4_AW",
    "US_EAST_5",
    "US_EAST_5_AW",
    "US_WEST_2",
    "US_WEST_2_AW",
    "US_WEST_3",
    "US_WEST_3_AW",
    "US_WEST_4",
    "US_WEST_4_AW",
    "US_SOUTH_1",
    "US_SOUTH_1_AW",
    "CENTRAL_US",
    "CENTRAL_US_AW",
    "WESTERN_US",
    "WESTERN_US_AW",
    "NORTH_AMERICA_NORTHEAST_1",
    "NORTH_AMERICA_NORTHEAST_2",
    "NORTH_AMERICA_SOUTH_1",
    "SOUTH_AMERICA_EAST_1",
    "SOUTH_AMERICA_WEST_1",
    "WESTERN_EUROPE",
    "EUROPE_NORTH_1",
    "EUROPE_WEST_2",
    "EUROPE_WEST_3",
    "EUROPE_WEST_4",
    "EUROPE_WEST_6",
    "EUROPE_WEST_8",
    "EUROPE_WEST_9",
    "EUROPE_WEST_10",
    "EUROPE_WEST_12",
    "EUROPE_SOUTHWEST_1",
    "EUROPE_CENTRAL_2",
    "MIDDLE_EAST_CENTRAL_1",
    "MIDDLE_EAST_CENTRAL_2",
    "MIDDLE_EAST_WEST_1",
    "AUSTRALIA_SOUTHEAST_1",
    "AUSTRALIA_SOUTHEAST_2",
    "AFRICA_SOUTH_1",
    "EASTERN_ASIA_PACIFIC",
    "NORTHEASTERN_ASIA_PACIFIC",
    "SOUTHEASTERN_ASIA_PACIFIC",
    "ASIA_EAST_2",
    "ASIA_NORTHEAST_2",
    "ASIA_NORTHEAST_3",
    "ASIA_SOUTH_1",
    "ASIA_SOUTH_2",
    "ASIA_SOUTHEAST_2",
];

/// Dedicated tiers, in size order (the order autoscaling bounds are compared in).
pub const DEDICATED_TIERS: &[&str] = &[
    "M10",
    "M20",
    "M30",
    "M40",
    "R40",
    "M50",
    "R50",
    "M60",
    "R60",
    "M80",
    "R80",
    "M100",
    "M140",
    "M200",
    "R200",
    "M300",
    "R300",
    "R400",
    "R700",
    "M40_NVME",
    "M50_NVME",
    "M60_NVME",
    "M80_NVME",
    "M200_NVME",
    "M400_NVME",
    "M30_GEN_2",
    "M40_GEN_2",
    "M50_GEN_2",
    "M60_GEN_2",
    "M80_GEN_2",
    "M140_GEN_2",
    "M200_GEN_2",
    "M300_GEN_2",
    "R40_GEN_2",
    "R50_GEN_2",
    "R60_GEN_2",
    "R80_GEN_2",
    "R200_GEN_2",
    "R300_GEN_2",
    "R400_GEN_2",
    "R700_GEN_2",
];

/// A tier's size in GB of RAM-ish order; only used to compare autoscaling bounds.
pub fn tier_rank(tier: &str) -> Option<u32> {
    let digits: String = tier.chars().skip(1).take_while(|c| c.is_ascii_digit()).collect();
    match tier {
        "M0" => Some(0),
        "FLEX" => Some(1),
        _ if DEDICATED_TIERS.contains(&tier) => digits.parse().ok(),
        _ => None,
    }
}

pub fn is_dedicated(tier: &str) -> bool {
    DEDICATED_TIERS.contains(&tier)
}

struct Checker<'a> {
    loaded: &'a LoadedSpec,
    errors: Vec<SpecError>,
}

macro_rules! path {
    ($($seg:expr),* $(,)?) => { vec![$(PathSeg::from($seg)),*] };
}

// After `path!`, which it uses.
mod ci;
mod network;
mod ops;
mod origins;
mod regions;
mod settings;
mod uptime;

impl From<&str> for PathSeg {
    fn from(s: &str) -> Self {
        PathSeg::Key(s.to_string())
    }
}
impl From<usize> for PathSeg {
    fn from(i: usize) -> Self {
        PathSeg::Index(i)
    }
}
impl From<&String> for PathSeg {
    fn from(s: &String) -> Self {
        PathSeg::Key(s.clone())
    }
}

impl Checker<'_> {
    fn err(&mut self, path: Vec<PathSeg>, message: impl Into<String>, hint: impl Into<String>) {
        let e = self.loaded.error_at(&path, message).hint(hint);
        self.errors.push(e);
    }

    fn one_of(&mut self, path: Vec<PathSeg>, what: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            let hint = match did_you_mean(value, allowed) {
                Some(best) => format!("did you mean `{best}`?"),
                None if allowed.len() <= 12 => format!("use one of: {}", allowed.join(", ")),
                None => format!("use one of: {}, ...", allowed[..12].join(", ")),
            };
            self.err(path, format!("unknown {what} `{value}`"), hint);
        }
    }

    fn unique<S: AsRef<str>>(&mut self, items: impl Iterator<Item = (Vec<PathSeg>, S)>, what: &str) {
        let mut seen = BTreeSet::new();
        for (path, name) in items {
            let name = name.as_ref();
            if !seen.insert(name.to_string()) {
                self.err(path, format!("duplicate {what} `{name}`"), format!("each {what} must be unique within the environment"));
            }
        }
    }
}

/// All the problems in a loaded spec.
pub fn check(loaded: &LoadedSpec) -> Vec<SpecError> {
    let mut c = Checker { loaded, errors: Vec::new() };
    let spec = &loaded.spec;
    check_env(&mut c, spec);
    if let Some(atlas) = &spec.atlas {
        check_atlas(&mut c, atlas);
    }
    if let Some(storage) = &spec.storage {
        check_storage(&mut c, storage);
    }
    if let Some(cdn) = &spec.cdn {
        check_cdn(&mut c, cdn, spec);
    }
    if let Some(m) = &spec.monitoring {
        check_alarms(&mut c, m);
        uptime::check_uptime(&mut c, m);
        ops::check_log_groups(&mut c, m);
    }
    if let Some(n) = &spec.notifications {
        ops::check_topics(&mut c, n, &loaded.env);
    }
    if let Some(a) = &spec.app {
        ops::check_app(&mut c, a);
    }
    if let Some(ci) = &spec.ci {
        ci::check_ci(&mut c, ci);
    }
    if let Some(b) = &spec.billing {
        check_billing(&mut c, b);
    }
    if let Some(db) = &spec.database {
        check_database(&mut c, db, spec);
    }
    if let Some(u) = &spec.usage {
        check_usage(&mut c, u, spec);
    }
    check_references(&mut c);
    c.errors
}

fn check_env(c: &mut Checker, spec: &Spec) {
    if let Some(env) = &spec.environment
        && (env.is_empty() || env.len() > 64 || !env.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'))
    {
        c.err(
            path!("environment"),
            format!("`{env}` is not a valid environment name"),
            "use 1-64 letters, digits, `-` or `_` (it becomes a tag value)",
        );
    }
    if let Some(region) = spec.aws.as_ref().and_then(|a| a.region.as_deref()) {
        c.one_of(path!("aws", "region"), "AWS region", region, AWS_REGIONS);
        if let Some(p) = other_partition(region) {
            c.err(path!("aws", "region"), format!("{region} is in the {p} partition, which poactl does not support yet"), PARTITION_HINT);
        }
    }
    let mut services = Vec::new();
    if spec.atlas.is_some() {
        services.push(TagService::Atlas);
    }
    if spec.has_aws() {
        services.push(TagService::Aws);
    }
    check_tags(c, &spec.tags, path!("tags"), &services);
}

/// The partition of a region outside `aws`: its ARNs and endpoints differ (`arn:aws-cn:`,
/// `arn:aws-us-gov:`), and CloudFront and billing metrics live elsewhere there; poactl writes
/// `aws` ARNs, so such regions are refused rather than half-supported.
pub fn other_partition(region: &str) -> Option<&'static str> {
    if region.starts_with("cn-") {
        Some("aws-cn")
    } else if region.starts_with("us-gov-") {
        Some("aws-us-gov")
    } else {
        None
    }
}

const PARTITION_HINT: &str = "use a region of the standard aws partition";

/// The services a set of tags is written to; each has its own character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagService {
    Atlas,
    Aws,
}

fn check_tags(c: &mut Checker, tags: &BTreeMap<String, String>, base: Vec<PathSeg>, services: &[TagService]) {
    for (k, v) in tags {
        let mut p = base.clone();
        p.push(PathSeg::Key(k.clone()));
        if crate::resource::is_ownership_key(k) || k.starts_with("aws:") {
            c.err(
                p.clone(),
                format!("tag key `{k}` is reserved"),
                "poactl sets the poactl-* ownership tags itself and AWS owns aws:*; choose another key",
            );
            continue;
        }
        for service in services {
            let problem = match service {
                TagService::Atlas => atlas_tag_problem(k).map(|m| (m, "key")).or_else(|| atlas_tag_problem(v).map(|m| (m, "value"))),
                TagService::Aws => aws_tag_problem(k, true).map(|m| (m, "key")).or_else(|| aws_tag_problem(v, false).map(|m| (m, "value"))),
            };
            if let Some((message, part)) = problem {
                c.err(p.clone(), format!("tag {part} refused: {message}"), format!("change the tag's {part}"));
                break;
            }
        }
    }
}

fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn check_atlas(c: &mut Checker, atlas: &AtlasSpec) {
    if !is_object_id(&atlas.org_id) {
        c.err(
            path!("atlas", "org_id"),
            "org_id must be a 24-character hexadecimal Atlas organization id",
            "copy it from Atlas > Organization Settings (or set MONGODB_ATLAS_ORG_ID)",
        );
    }
    let p = &atlas.project;
    let ok = !p.is_empty() && p.chars().count() <= 64 && p.chars().all(|ch| ch.is_alphanumeric() || "-_.(),:&@+'".contains(ch));
    if !ok {
        c.err(
            path!("atlas", "project"),
            format!("`{p}` is not a valid Atlas project name"),
            "use 1-64 letters, digits and - _ . ( ) , : & @ + '",
        );
    } else if let Some(problem) = atlas_tag_problem(&format!("atlas.project.{p}")) {
        // The name is the value of the project's poactl-id tag.
        c.err(
            path!("atlas", "project"),
            format!("the project name `{p}` cannot be written in the project's {} tag: {problem}", crate::resource::TAG_ID),
            "use letters, digits and - _ . @ + in the project name",
        );
    }

    c.unique(atlas.clusters.iter().enumerate().map(|(i, cl)| (path!("atlas", "clusters", i, "name"), cl.name.as_str())), "cluster name");
    let mut free = 0;
    for (i, cl) in atlas.clusters.iter().enumerate() {
        check_cluster(c, i, cl);
        if cl.tier == "M0" {
            free += 1;
            if free > 1 {
                c.err(
                    path!("atlas", "clusters", i, "tier"),
                    "a project can have only one M0 (free) cluster",
                    "use FLEX or a dedicated tier for the second cluster",
                );
            }
        }
    }

    network::check_network(c, atlas);
    settings::check_settings(c, atlas);
    settings::check_encryption(c, atlas);
    c.unique(atlas.access_list.iter().enumerate().map(|(i, e)| (path!("atlas", "access_list", i), e.key())), "access-list entry");
    for (i, e) in atlas.access_list.iter().enumerate() {
        let set = [e.cidr.is_some(), e.ip.is_some(), e.security_group.is_some()].iter().filter(|b| **b).count();
        if set != 1 {
            c.err(
                path!("atlas", "access_list", i),
                "an access-list entry needs exactly one of `cidr`, `ip` or `security_group`",
                "e.g. `{ cidr: 10.0.0.0/16, comment: app VPC }`",
            );
        }
        if let Some(cidr) = &e.cidr
            && let Err(why) = parse_cidr(cidr)
        {
            c.err(
                path!("atlas", "access_list", i, "cidr"),
                format!("`{cidr}` is not a CIDR block: {why}"),
                "write an address and a prefix length, e.g. 10.0.0.0/16 or 203.0.113.7/32",
            );
        }
        if let Some(ip) = &e.ip
            && ip.parse::<IpAddr>().is_err()
        {
            c.err(
                path!("atlas", "access_list", i, "ip"),
                format!("`{ip}` is not an IP address"),
                "e.g. 203.0.113.7 (use `cidr` for a range)",
            );
        }
        if let Some(sg) = &e.security_group
            && !sg.starts_with("sg-")
        {
            c.err(
                path!("atlas", "access_list", i, "security_group"),
                format!("`{sg}` is not a security group id"),
                "security group ids start with sg-",
            );
        } else if e.security_group.is_some() && atlas.peerings().is_empty() {
            // openapi-v2.yaml NetworkPermissionEntry.awsSecurityGroup: "You must configure
            // Virtual Private Connection (VPC) peering for your project before you can add an
            // AWS security group to an IP access list."
            c.err(
                path!("atlas", "access_list", i, "security_group"),
                "a security group in the access list needs a VPC peering: Atlas refuses it without one",
                "add `network.peering` for the VPC of this group, or list its CIDR block instead",
            );
        }
        if e.comment.as_ref().is_some_and(|cm| cm.chars().count() > 80) {
            c.err(
                path!("atlas", "access_list", i, "comment"),
                "the comment is longer than 80 characters",
                "Atlas keeps at most 80 characters; shorten it",
            );
        }
    }

    c.unique(
        atlas.database_users.iter().enumerate().map(|(i, u)| (path!("atlas", "database_users", i, "username"), u.key())),
        "database user",
    );
    for (i, u) in atlas.database_users.iter().enumerate() {
        if u.username.is_empty() || u.username.len() > 1024 {
            c.err(path!("atlas", "database_users", i, "username"), "usernames must be 1-1024 characters", "set a username");
        }
        c.one_of(
            path!("atlas", "database_users", i, "auth_database"),
            "authentication database",
            &u.auth_database,
            &["admin", "$external"],
        );
        let methods: Vec<&str> = u.auth.iter().flat_map(|a| a.fields()).filter_map(|(field, value, _)| value.map(|_| field)).collect();
        if let Some(a) = &u.auth {
            for ((field, value, allowed), key) in a.fields().into_iter().zip(["x509", "aws_iam", "ldap", "oidc"]) {
                if let Some(v) = value {
                    c.one_of(path!("atlas", "database_users", i, "auth", key), field, v, allowed);
                }
            }
        }
        if u.auth_database == "$external" && methods.len() != 1 {
            c.err(
                path!("atlas", "database_users", i, "auth"),
                "a $external user needs exactly one authentication method",
                "e.g. `auth: { x509: MANAGED }`, `auth: { aws_iam: ROLE }`, `auth: { ldap: GROUP }` or `auth: { oidc: IDP_GROUP }`",
            );
        }
        if u.auth_database == "admin" && !methods.is_empty() {
            c.err(
                path!("atlas", "database_users", i, "auth"),
                "X.509, AWS IAM, LDAP and OIDC users authenticate in $external",
                "set `auth_database: $external` (and no password), or remove `auth` for a SCRAM user",
            );
        }
        if u.auth_database == "$external" && u.password.is_some() {
            c.err(path!("atlas", "database_users", i, "password"), "$external users have no password", "remove `password`");
        }
        if u.auth_database == "admin" {
            match &u.password {
                None => c.err(
                    path!("atlas", "database_users", i),
                    "a SCRAM user (auth_database admin) needs a `password`",
                    "add `password: ${env:SOME_SECRET}` (never write the password itself in the spec)",
                ),
                Some(pw) if pw.chars().count() < 8 => c.err(
                    path!("atlas", "database_users", i, "password"),
                    "the password is shorter than 8 characters (Atlas' minimum)",
                    "use a longer secret",
                ),
                Some(_) => {
                    let node = c.loaded.root.get("atlas").and_then(|a| a.get("database_users")).and_then(|l| match &l.value {
                        super::yaml::Value::Seq(items) => items.get(i),
                        _ => None,
                    });
                    if node.and_then(|n| n.get("password")).is_some_and(|p| !p.interpolated) {
                        c.err(
                            path!("atlas", "database_users", i, "password"),
                            "the password is written in the spec",
                            "read it from the environment: `password: ${env:POAFIX_DB_PASSWORD}`",
                        );
                    }
                }
            }
        }
        if u.roles.is_empty() {
            c.err(
                path!("atlas", "database_users", i, "roles"),
                "a database user needs at least one role",
                "e.g. `roles: [{ role: readWrite, database: home_service_db }]`",
            );
        }
        for (j, r) in u.roles.iter().enumerate() {
            if r.role.is_empty() || r.database.is_empty() {
                c.err(
                    path!("atlas", "database_users", i, "roles", j),
                    "a role needs `role` and `database`",
                    "e.g. `{ role: readWrite, database: home_service_db }`",
                );
            }
        }
        for (j, s) in u.scopes.iter().enumerate() {
            c.one_of(path!("atlas", "database_users", i, "scopes", j, "type"), "scope type", &s.kind, &["CLUSTER", "DATA_LAKE", "STREAM"]);
        }
        if u.description.as_ref().is_some_and(|d| d.chars().count() > 100) {
            c.err(path!("atlas", "database_users", i, "description"), "the description is longer than 100 characters", "shorten it");
        }
    }

    let mut identities = BTreeSet::new();
    for (i, a) in atlas.alerts.iter().enumerate() {
        check_alert(c, i, a);
        let id = alert_identity(a);
        if !identities.insert(id.clone()) {
            c.err(
                path!("atlas", "alerts", i),
                format!("another alert has the same event, metric, direction and matchers ({id})"),
                "Atlas cannot tell them apart: merge them or add a matcher",
            );
        }
    }
}

/// Atlas event types whose threshold is an amount of money.
pub const BILLING_EVENTS: &[&str] = &[
    "PENDING_INVOICE_OVER_THRESHOLD",
    "DAILY_BILL_OVER_THRESHOLD",
    "DAILY_BILLING_CHANGE_OVER_THRESHOLD",
    "WEEKLY_BILLING_CHANGE_OVER_THRESHOLD",
    "MONTHLY_BILLING_CHANGE_OVER_THRESHOLD",
];

/// The natural key of an Atlas alert configuration as poactl manages it: event type, metric,
/// direction and matchers (billing alerts: event type and amount). The live side computes the
/// same key from an alert configuration, so both must go through here.
pub fn alert_key(
    event: &str,
    metric: Option<&str>,
    above: Option<bool>,
    threshold: Option<f64>,
    matchers: &[(String, String, String)],
) -> String {
    let mut id = event.to_string();
    if BILLING_EVENTS.contains(&event) {
        if let Some(t) = threshold {
            id.push_str(&format!(".{}usd", if t.fract() == 0.0 { format!("{t:.0}") } else { t.to_string() }));
        }
        return id;
    }
    if let Some(m) = metric {
        id.push('.');
        id.push_str(m);
    }
    match above {
        Some(true) => id.push_str(".above"),
        Some(false) => id.push_str(".below"),
        None => {}
    }
    let mut matchers = matchers.to_vec();
    matchers.sort();
    for (field, op, value) in matchers {
        id.push_str(&format!(".{field}{}{value}", op_symbol(&op)));
    }
    id
}

/// The key of an alert of the spec.
pub fn alert_identity(a: &AtlasAlertSpec) -> String {
    let above = if a.above.is_some() {
        Some(true)
    } else if a.below.is_some() {
        Some(false)
    } else {
        None
    };
    let matchers: Vec<(String, String, String)> =
        a.matchers.iter().map(|m| (m.field.clone(), m.operator.clone(), m.value.clone())).collect();
    alert_key(&a.event, a.metric.as_deref(), above, a.above.or(a.below), &matchers)
}

fn op_symbol(op: &str) -> &str {
    match op {
        "EQUALS" => "=",
        "NOT_EQUALS" => "!=",
        "CONTAINS" => "~",
        "NOT_CONTAINS" => "!~",
        "STARTS_WITH" => "^=",
        "ENDS_WITH" => "$=",
        "REGEX" => "=~",
        other => other,
    }
}

fn check_cluster(c: &mut Checker, i: usize, cl: &ClusterSpec) {
    let base = |f: &str| path!("atlas", "clusters", i, f);
    let name_ok = !cl.name.is_empty()
        && cl.name.len() <= 64
        && cl.name.chars().next().is_some_and(|ch| ch.is_ascii_alphanumeric())
        && cl.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-');
    if !name_ok {
        c.err(
            base("name"),
            format!("`{}` is not a valid cluster name", cl.name),
            "cluster names match ^[a-zA-Z0-9][a-zA-Z0-9-]*$ (at most 64 characters)",
        );
    }
    let tier = cl.tier.as_str();
    if tier == "M2" || tier == "M5" {
        c.err(base("tier"), format!("{tier} clusters are retired (Atlas migrates them to Flex)"), "use `tier: FLEX`");
    } else if tier != "M0" && tier != "FLEX" && !is_dedicated(tier) {
        let mut all = vec!["M0", "FLEX"];
        all.extend_from_slice(DEDICATED_TIERS);
        c.one_of(base("tier"), "cluster tier", tier, &all);
    }
    c.one_of(base("provider"), "cloud provider", &cl.provider, &["AWS", "GCP", "AZURE"]);
    regions::check_regions(c, i, cl);
    if let Some(v) = &cl.mongodb_version {
        let ok = v.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.chars().all(|ch| ch.is_ascii_digit()) && b.chars().all(|ch| ch.is_ascii_digit())
        });
        if !ok {
            c.err(
                base("mongodb_version"),
                format!("`{v}` is not a MongoDB major version"),
                "write it quoted, e.g. mongodb_version: \"8.0\"",
            );
        }
    }
    let shared = tier == "M0" || tier == "FLEX";
    if shared {
        if cl.autoscaling.is_some() {
            c.err(base("autoscaling"), format!("{tier} clusters do not autoscale"), "remove `autoscaling` or use a dedicated tier (M10+)");
        }
        if cl.disk_size_gb.is_some() || cl.node_count.is_some() {
            c.err(
                base("tier"),
                format!("{tier} clusters have a fixed disk and node count"),
                "remove `disk_size_gb`/`node_count` or use a dedicated tier",
            );
        }
        if cl.paused.is_some() {
            c.err(base("paused"), format!("{tier} clusters cannot be paused"), "remove `paused`");
        }
        if let Some(b) = &cl.backup {
            if tier == "M0" && (b.enabled || b.point_in_time) {
                c.err(
                    base("backup"),
                    "M0 clusters have no cloud backup",
                    "remove `backup` or use FLEX (daily snapshots) or a dedicated tier",
                );
            }
            if tier == "FLEX" && b.point_in_time {
                c.err(
                    base("backup"),
                    "Flex clusters have no point-in-time restore",
                    "use a dedicated tier (M10+) for point-in-time restore",
                );
            }
            if !b.schedule.is_empty() || b.restore_window.is_some() {
                c.err(
                    base("backup"),
                    "backup schedules exist only on dedicated clusters",
                    "remove `schedule`/`restore_window` or use M10+",
                );
            }
        }
    }
    if let Some(b) = &cl.backup {
        if b.point_in_time && !b.enabled {
            c.err(
                path!("atlas", "clusters", i, "backup", "point_in_time"),
                "point-in-time restore needs cloud backup",
                "set `backup: { enabled: true, point_in_time: true }`",
            );
        }
        if let Some(w) = &b.restore_window
            && (!b.point_in_time || w.whole_days().is_none_or(|d| !(1..=7).contains(&d)))
        {
            c.err(
                path!("atlas", "clusters", i, "backup", "restore_window"),
                "the restore window is 1 to 7 whole days and needs point_in_time",
                "e.g. `restore_window: 2d` with `point_in_time: true`",
            );
        }
        for (j, p) in b.schedule.iter().enumerate() {
            c.one_of(
                path!("atlas", "clusters", i, "backup", "schedule", j, "every"),
                "snapshot frequency",
                &p.every,
                &["hourly", "daily", "weekly", "monthly", "yearly"],
            );
            let allowed: &[i64] = match p.every.as_str() {
                "hourly" => &[1, 2, 4, 6, 8, 12],
                "daily" => &[1],
                "weekly" => &[1, 2, 3, 4, 5, 6, 7],
                "monthly" => &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 40],
                "yearly" => &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                _ => &[],
            };
            if !allowed.is_empty() && !allowed.contains(&p.interval) {
                let what = match p.every.as_str() {
                    "hourly" => "every 1, 2, 4, 6, 8 or 12 hours",
                    "daily" => "1 (once a day)",
                    "weekly" => "a day of the week, 1 (Monday) to 7 (Sunday)",
                    "monthly" => "a day of the month, 1 to 28, or 40 for the last day",
                    _ => "a month, 1 to 12",
                };
                c.err(
                    path!("atlas", "clusters", i, "backup", "schedule", j, "interval"),
                    format!("`{}` is not a valid interval for {} snapshots", p.interval, p.every),
                    format!("use {what}"),
                );
            }
            if p.keep.value < 1 {
                c.err(
                    path!("atlas", "clusters", i, "backup", "schedule", j, "keep"),
                    "snapshots must be kept at least 1 unit",
                    "e.g. keep: 7d",
                );
            }
        }
        if !b.schedule.is_empty() && !b.enabled {
            c.err(path!("atlas", "clusters", i, "backup", "schedule"), "a snapshot schedule needs cloud backup", "set `enabled: true`");
        }
        check_schedule_rules(c, i, cl, b);
    }
    if let Some(a) = &cl.autoscaling
        && let Some(comp) = &a.compute
    {
        for (f, t) in [("min", &comp.min), ("max", &comp.max)] {
            if !is_dedicated(t) {
                c.err(
                    path!("atlas", "clusters", i, "autoscaling", "compute", f),
                    format!("`{t}` is not a dedicated tier"),
                    "autoscaling bounds are dedicated tiers, e.g. min: M10, max: M30",
                );
            }
        }
        if let (Some(lo), Some(hi), Some(cur)) = (tier_rank(&comp.min), tier_rank(&comp.max), tier_rank(tier)) {
            if lo > hi {
                c.err(path!("atlas", "clusters", i, "autoscaling", "compute"), "`min` is larger than `max`", "swap them");
            } else if cur < lo || cur > hi {
                c.err(
                    path!("atlas", "clusters", i, "tier"),
                    format!("the tier {tier} is outside the autoscaling range {}..{}", comp.min, comp.max),
                    "set the tier within the range",
                );
            }
        }
    }
    if let Some(n) = cl.node_count
        && ![3, 5, 7].contains(&n)
    {
        c.err(base("node_count"), "a replica set has 3, 5 or 7 electable nodes", "use 3, 5 or 7");
    }
    if let Some(d) = cl.disk_size_gb
        && !(10.0..=4096.0).contains(&d)
    {
        // Atlas' smallest dedicated disk is 10 GB (the M10 default); a smaller request is
        // raised by Atlas and would show as drift forever.
        c.err(base("disk_size_gb"), "Atlas disks are between 10 and 4096 GB", "e.g. disk_size_gb: 40");
    }
    if (tier == "M0" || tier == "FLEX") && cl.mongodb_version.is_some() {
        c.err(
            base("mongodb_version"),
            format!("Atlas picks the MongoDB version of {tier} clusters; it cannot be set"),
            "remove mongodb_version (it applies to dedicated tiers only)",
        );
    }
    if let Some(v) = &cl.min_tls {
        if tier == "M0" || tier == "FLEX" {
            // processArgs and advancedConfiguration are not offered on M0 and Flex
            // (openapi-v2.yaml getGroupClusterProcessArgs: "This feature isn't available for
            // M0 free clusters ... flex clusters"); Atlas runs them on TLS 1.2.
            c.err(
                base("min_tls"),
                format!("Atlas sets the TLS versions of {tier} clusters; it cannot be changed"),
                "remove min_tls (it applies to dedicated tiers only)",
            );
        } else if !MIN_TLS.contains(&v.as_str()) {
            c.err(
                base("min_tls"),
                format!("`{v}` is not a TLS version Atlas offers"),
                "write one of \"1.0\", \"1.1\", \"1.2\", \"1.3\" (quoted); 1.2 or later is what audit expects",
            );
        }
    }
    if (tier == "M0" || tier == "FLEX") && cl.disk_size_gb.is_some() {
        c.err(base("disk_size_gb"), format!("{tier} clusters have a fixed disk size"), "remove disk_size_gb");
    }
    check_tags(c, &cl.tags, base("tags"), &[TagService::Atlas]);
}

/// The TLS versions `minimumEnabledTlsProtocol` takes (openapi-v2.yaml
/// ApiAtlasClusterAdvancedConfigurationView: TLS1_0 TLS1_1 TLS1_2 TLS1_3), as the spec writes them.
pub const MIN_TLS: &[&str] = &["1.0", "1.1", "1.2", "1.3"];
/// Retention in days, to compare items of different units.
fn retention_days(r: &Retention) -> i64 {
    r.value
        * match r.unit.as_str() {
            "weeks" => 7,
            "months" => 30,
            "years" => 365,
            _ => 1,
        }
}

/// What Atlas enforces on a schedule beyond each item's own range (issue 10 item 5; the NVMe
/// rule is in openapi-v2.yaml, DiskBackupApiPolicyItem.frequencyInterval): point-in-time needs
/// an hourly item; at most one hourly and one daily item; retention never shrinks from a more
/// frequent to a less frequent item; NVMe tiers take hourly interval 12 only.
fn check_schedule_rules(c: &mut Checker, i: usize, cl: &ClusterSpec, b: &BackupSpec) {
    let at = |j: usize, f: &str| path!("atlas", "clusters", i, "backup", "schedule", j, f);
    if b.schedule.is_empty() {
        return;
    }
    if b.point_in_time && !b.schedule.iter().any(|p| p.every == "hourly") {
        c.err(
            path!("atlas", "clusters", i, "backup", "point_in_time"),
            "point-in-time restore needs an hourly snapshot in the schedule",
            "add `{ every: hourly, interval: 6, keep: 2d }` to `schedule`",
        );
    }
    for kind in ["hourly", "daily"] {
        if let Some(j) = b.schedule.iter().enumerate().filter(|(_, p)| p.every == kind).map(|(j, _)| j).nth(1) {
            c.err(at(j, "every"), format!("Atlas allows one {kind} item in a schedule"), "merge the two items into one");
        }
    }
    let rank = |e: &str| ["hourly", "daily", "weekly", "monthly", "yearly"].iter().position(|x| *x == e);
    for (j, p) in b.schedule.iter().enumerate() {
        let Some(rp) = rank(&p.every) else { continue };
        if let Some((_, q)) = b
            .schedule
            .iter()
            .enumerate()
            .filter(|(_, q)| rank(&q.every).is_some_and(|rq| rq < rp))
            .max_by_key(|(_, q)| retention_days(&q.keep))
            .filter(|(_, q)| retention_days(&q.keep) > retention_days(&p.keep))
        {
            c.err(
                at(j, "keep"),
                format!(
                    "{} snapshots are kept shorter than {} ones ({} {} < {} {})",
                    p.every, q.every, p.keep.value, p.keep.unit, q.keep.value, q.keep.unit
                ),
                "Atlas keeps less frequent snapshots at least as long as more frequent ones: raise this `keep`",
            );
        }
        if p.every == "hourly" && cl.tier.ends_with("_NVME") && p.interval != 12 {
            c.err(
                at(j, "interval"),
                format!("{} (NVMe) clusters take hourly snapshots every 12 hours only", cl.tier),
                "use `interval: 12`",
            );
        }
    }
}

fn check_alert(c: &mut Checker, i: usize, a: &AtlasAlertSpec) {
    let base = |f: &str| path!("atlas", "alerts", i, f);
    if a.event.is_empty() || !a.event.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_') {
        c.err(
            base("event"),
            format!("`{}` is not an Atlas event type", a.event),
            "event types look like OUTSIDE_METRIC_THRESHOLD, HOST_DOWN, CLUSTER_MONGOS_IS_MISSING",
        );
    }
    if a.above.is_some() && a.below.is_some() {
        c.err(path!("atlas", "alerts", i), "set either `above` or `below`, not both", "make two alerts if you need both bounds");
    }
    let metric_event = a.event == "OUTSIDE_METRIC_THRESHOLD"
        || a.event == "OUTSIDE_SERVERLESS_METRIC_THRESHOLD"
        || a.event == "OUTSIDE_FLEX_METRIC_THRESHOLD";
    if metric_event {
        if a.metric.is_none() {
            c.err(path!("atlas", "alerts", i), format!("{} alerts need a `metric`", a.event), "e.g. `metric: CONNECTIONS, above: 400`");
        }
        if a.above.is_none() && a.below.is_none() {
            c.err(path!("atlas", "alerts", i), "a metric alert needs `above` or `below`", "e.g. `above: 400`");
        }
    } else if a.metric.is_some() {
        c.err(
            base("metric"),
            format!("`metric` applies only to OUTSIDE_METRIC_THRESHOLD alerts, not {}", a.event),
            "remove `metric`, or use event OUTSIDE_METRIC_THRESHOLD",
        );
    }
    if let Some(u) = &a.units {
        c.one_of(
            base("units"),
            "threshold unit",
            u,
            &[
                "RAW",
                "BITS",
                "BYTES",
                "KILOBITS",
                "KILOBYTES",
                "MEGABITS",
                "MEGABYTES",
                "GIGABITS",
                "GIGABYTES",
                "TERABYTES",
                "PETABYTES",
                "MILLISECONDS",
                "SECONDS",
                "MINUTES",
                "HOURS",
                "DAYS",
            ],
        );
    }
    for (j, m) in a.matchers.iter().enumerate() {
        c.one_of(
            path!("atlas", "alerts", i, "matchers", j, "operator"),
            "matcher operator",
            &m.operator,
            &["EQUALS", "NOT_EQUALS", "CONTAINS", "NOT_CONTAINS", "STARTS_WITH", "ENDS_WITH", "REGEX"],
        );
    }
    check_notify(c, &a.notify.0, path!("atlas", "alerts", i, "notify"));
}

fn check_notify(c: &mut Checker, notify: &[NotifySpec], base: Vec<PathSeg>) {
    if notify.is_empty() {
        c.err(base.clone(), "an alert needs at least one notification", "e.g. `notify: { email: ops@example.com }`");
    }
    for (j, n) in notify.iter().enumerate() {
        let mut p = base.clone();
        if notify.len() > 1 {
            p.push(PathSeg::Index(j));
        }
        let set = [n.email.is_some(), n.sms.is_some(), !n.roles.is_empty(), n.user.is_some()].iter().filter(|b| **b).count();
        if set != 1 {
            c.err(
                p.clone(),
                "a notification needs exactly one of `email`, `sms`, `roles` or `user`",
                "e.g. `{ email: ops@example.com }` or `{ roles: [GROUP_OWNER] }`",
            );
        }
        if let Some(e) = &n.email
            && (!e.contains('@') || e.starts_with('@') || e.ends_with('@'))
        {
            let mut q = p.clone();
            q.push(PathSeg::Key("email".into()));
            c.err(q, format!("`{e}` is not an email address"), "e.g. ops@example.com");
        }
        for r in &n.roles {
            let mut q = p.clone();
            q.push(PathSeg::Key("roles".into()));
            c.one_of(
                q,
                "project role",
                r,
                &[
                    "GROUP_OWNER",
                    "GROUP_CLUSTER_MANAGER",
                    "GROUP_DATA_ACCESS_ADMIN",
                    "GROUP_DATA_ACCESS_READ_WRITE",
                    "GROUP_DATA_ACCESS_READ_ONLY",
                    "GROUP_READ_ONLY",
                    "GROUP_SEARCH_INDEX_EDITOR",
                    "GROUP_STREAM_PROCESSING_OWNER",
                    "GROUP_BACKUP_MANAGER",
                    "GROUP_OBSERVABILITY_VIEWER",
                    "GROUP_DATABASE_ACCESS_ADMIN",
                ],
            );
        }
        if let Some(iv) = &n.interval
            && iv.seconds < 300
        {
            let mut q = p.clone();
            q.push(PathSeg::Key("interval".into()));
            c.err(q, "Atlas re-notifies at most every 5 minutes", "use interval: 5m or more");
        }
    }
}

fn check_storage(c: &mut Checker, storage: &StorageSpec) {
    c.unique(storage.buckets.iter().enumerate().map(|(i, b)| (path!("storage", "buckets", i, "name"), b.name.as_str())), "bucket name");
    for (i, b) in storage.buckets.iter().enumerate() {
        let base = |f: &str| path!("storage", "buckets", i, f);
        if let Some(problem) = bucket_name_problem(&b.name) {
            c.err(
                base("name"),
                format!("`{}` is not a valid S3 bucket name: {problem}", b.name),
                "see https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html",
            );
        } else if b.name.contains('.') {
            c.err(
                base("name"),
                "bucket names with dots break HTTPS virtual-host addressing and CloudFront origins",
                "use `-` instead of `.`",
            );
        }
        if let Some(r) = &b.region {
            c.one_of(base("region"), "AWS region", r, AWS_REGIONS);
            if let Some(p) = other_partition(r) {
                c.err(base("region"), format!("{r} is in the {p} partition, which poactl does not support yet"), PARTITION_HINT);
            }
        }
        c.one_of(base("encryption"), "encryption", &b.encryption, &["AES256", "aws:kms", "aws:kms:dsse"]);
        if b.encryption.starts_with("aws:kms") && b.kms_key.is_none() {
            c.err(
                base("kms_key"),
                "aws:kms encryption needs `kms_key` (a key id, alias or ARN)",
                "add `kms_key: alias/...`, or use encryption: AES256",
            );
        }
        if !b.encryption.starts_with("aws:kms") && b.kms_key.is_some() {
            c.err(base("kms_key"), "`kms_key` is only used with aws:kms encryption", "set `encryption: aws:kms` or remove `kms_key`");
        }
        c.one_of(base("public_access"), "public access setting", &b.public_access, &["blocked", "allowed"]);
        c.one_of(
            base("object_ownership"),
            "object ownership",
            &b.object_ownership,
            &["BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"],
        );
        let mut ids = BTreeSet::new();
        for (j, r) in b.lifecycle.iter().enumerate() {
            let rp = |f: &str| path!("storage", "buckets", i, "lifecycle", j, f);
            if r.expire_after.is_none()
                && r.transition_after.is_none()
                && r.noncurrent_expire_after.is_none()
                && r.abort_incomplete_multipart_after.is_none()
                && !r.expire_delete_markers
            {
                c.err(
                    path!("storage", "buckets", i, "lifecycle", j),
                    "a lifecycle rule needs an action",
                    "add expire_after, transition_after, noncurrent_expire_after, abort_incomplete_multipart_after or expire_delete_markers",
                );
            }
            if r.expire_delete_markers && r.expire_after.is_some() {
                // One Expiration holds either Days or ExpiredObjectDeleteMarker (S3 API
                // reference, LifecycleExpiration).
                c.err(
                    rp("expire_delete_markers"),
                    "S3 cannot expire objects after a number of days and clean up delete markers in one rule",
                    "put expire_delete_markers in a rule of its own",
                );
            }
            if lifecycle_rule_id(r).chars().count() > 255 {
                c.err(rp("id"), "S3 lifecycle rule ids have at most 255 characters", "shorten the id (or the prefix it is made from)");
            }
            for (f, d) in [
                ("expire_after", &r.expire_after),
                ("transition_after", &r.transition_after),
                ("noncurrent_expire_after", &r.noncurrent_expire_after),
                ("abort_incomplete_multipart_after", &r.abort_incomplete_multipart_after),
            ] {
                if let Some(d) = d
                    && d.whole_days().is_none_or(|n| n < 1)
                {
                    c.err(rp(f), format!("`{d}` is not a whole number of days (S3 lifecycle works in days)"), "use e.g. 7d or 90d");
                }
            }
            match (&r.transition_after, &r.storage_class) {
                (Some(_), None) => c.err(rp("storage_class"), "a transition needs a `storage_class`", "e.g. storage_class: STANDARD_IA"),
                (None, Some(_)) => c.err(rp("transition_after"), "`storage_class` needs `transition_after`", "e.g. transition_after: 90d"),
                (Some(t), Some(sc)) => {
                    c.one_of(
                        rp("storage_class"),
                        "storage class",
                        sc,
                        &["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"],
                    );
                    if (sc == "STANDARD_IA" || sc == "ONEZONE_IA") && t.seconds < 30 * 86_400 {
                        c.err(
                            rp("transition_after"),
                            format!("S3 moves objects to {sc} only after 30 days or more"),
                            "use transition_after: 30d or more",
                        );
                    }
                    if let Some(e) = &r.expire_after
                        && e.seconds <= t.seconds
                    {
                        c.err(
                            rp("expire_after"),
                            "objects would expire before (or when) they transition",
                            "make expire_after longer than transition_after",
                        );
                    }
                }
                (None, None) => {}
            }
            let id = lifecycle_rule_id(r);
            if !ids.insert(id.clone()) {
                c.err(
                    path!("storage", "buckets", i, "lifecycle", j),
                    format!("two lifecycle rules have the id `{id}`"),
                    "give one of them an explicit `id`, or merge them",
                );
            }
        }
        for (j, r) in b.cors.iter().enumerate() {
            if r.allowed_origins.is_empty() {
                c.err(
                    path!("storage", "buckets", i, "cors", j, "allowed_origins"),
                    "a CORS rule needs at least one origin",
                    "e.g. allowed_origins: [\"https://app.example.com\"]",
                );
            }
            for (k, m) in r.allowed_methods.iter().enumerate() {
                c.one_of(
                    path!("storage", "buckets", i, "cors", j, "allowed_methods", k),
                    "CORS method",
                    m,
                    &["GET", "PUT", "POST", "DELETE", "HEAD"],
                );
            }
        }
        check_tags(c, &b.tags, base("tags"), &[TagService::Aws]);
        if b.tags.len() > 47 {
            c.err(base("tags"), "S3 allows 50 tags and poactl needs 3 for ownership", "use at most 47 tags");
        }
    }
}

/// Things a spec may mean but probably does not: shown by `validate`, never fatal.
pub fn warnings(loaded: &LoadedSpec) -> Vec<SpecError> {
    let mut c = Checker { loaded, errors: Vec::new() };
    for (i, b) in loaded.spec.storage.iter().flat_map(|s| s.buckets.iter()).enumerate() {
        if !b.versioning {
            continue;
        }
        let reclaims = b.lifecycle.iter().any(|r| r.noncurrent_expire_after.is_some() && r.enabled);
        for (j, r) in b.lifecycle.iter().enumerate() {
            if r.expire_after.is_some() && !reclaims {
                // On a versioned bucket an expiration only adds a delete marker: the object
                // stays as a noncurrent version, and its storage is never reclaimed (S3 User
                // Guide, "Lifecycle and versioning").
                c.err(
                    path!("storage", "buckets", i, "lifecycle", j, "expire_after"),
                    "on a versioned bucket, expired objects stay as noncurrent versions and keep costing storage",
                    "add `noncurrent_expire_after` (e.g. 1d) to this rule, or a rule that expires noncurrent versions",
                );
            }
        }
    }
    c.errors
}

/// The id of a lifecycle rule: explicit, or derived from the prefix.
pub fn lifecycle_rule_id(r: &LifecycleRuleSpec) -> String {
    r.id.clone().unwrap_or_else(|| {
        if r.prefix.is_empty() { "all-objects".to_string() } else { format!("prefix-{}", r.prefix.trim_end_matches('/')) }
    })
}

fn check_cdn(c: &mut Checker, cdn: &CdnSpec, spec: &Spec) {
    c.unique(
        cdn.distributions.iter().enumerate().map(|(i, d)| (path!("cdn", "distributions", i, "name"), d.name.as_str())),
        "distribution name",
    );
    let buckets: Vec<&str> = spec.storage.iter().flat_map(|s| s.buckets.iter().map(|b| b.name.as_str())).collect();
    if let Some(zone) = &cdn.hosted_zone {
        check_zone(c, path!("cdn", "hosted_zone"), zone);
    }
    let mut seen_names: BTreeMap<String, String> = BTreeMap::new();
    for (i, d) in cdn.distributions.iter().enumerate() {
        let base = |f: &str| path!("cdn", "distributions", i, f);
        if d.name.is_empty() || d.name.len() > 64 || !d.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
            c.err(base("name"), format!("`{}` is not a valid distribution name", d.name), "use 1-64 letters, digits, `-` or `_`");
        }
        origins::check_origins(c, i, d, &buckets);
        c.one_of(base("price_class"), "price class", &d.price_class, &["PriceClass_100", "PriceClass_200", "PriceClass_All"]);
        if !d.aliases.is_empty() && d.certificate_arn.is_none() && d.domain.is_none() {
            c.err(
                base("aliases"),
                "custom domain names need a certificate",
                "set `domain:` (poactl requests an ACM certificate for it and the aliases), or `certificate_arn: arn:aws:acm:us-east-1:...`",
            );
        }
        check_domains(c, cdn, i, d, &mut seen_names);
        if let Some(arn) = &d.certificate_arn
            && !arn.starts_with("arn:aws:acm:us-east-1:")
        {
            c.err(
                base("certificate_arn"),
                "CloudFront uses ACM certificates from us-east-1 only",
                "request or import the certificate in us-east-1",
            );
        }
        let mut paths = BTreeSet::new();
        for (j, rule) in d.cache.iter().enumerate() {
            if rule.path.is_empty() || rule.path == "*" || rule.path == "/*" {
                c.err(
                    path!("cdn", "distributions", i, "cache", j, "path"),
                    "the default behaviour is set with `default_ttl`, not a `*` path",
                    "use a pattern such as images/*",
                );
            }
            if !paths.insert(rule.path.trim_start_matches('/').to_string()) {
                c.err(
                    path!("cdn", "distributions", i, "cache", j, "path"),
                    format!("duplicate cache path `{}`", rule.path),
                    "each path pattern appears once",
                );
            }
            if rule.ttl.as_ref().is_some_and(|t| t.seconds > 10 * 365 * 86_400) {
                c.err(path!("cdn", "distributions", i, "cache", j, "ttl"), "TTLs longer than 10 years make no sense", "use at most 365d");
            }
        }
        if d.cache.len() > 25 {
            c.err(base("cache"), "CloudFront allows 25 cache behaviours per distribution", "merge some paths");
        }
        check_tags(c, &d.tags, base("tags"), &[TagService::Aws]);
    }
}

fn check_zone(c: &mut Checker, at: Vec<PathSeg>, zone: &str) {
    if !super::names::is_zone_id(zone)
        && let Some(problem) = super::names::dns_name_problem(zone)
    {
        c.err(at, format!("`{zone}` is neither a hosted zone name nor a hosted zone id: {problem}"), "e.g. hosted_zone: poafix.example");
    }
}

/// ACM's default quota of names on one certificate.
const ACM_NAMES_PER_CERTIFICATE: usize = 10;

/// A distribution's domain, aliases and hosted zone: names CloudFront and Route 53 accept,
/// each used once across the environment (CloudFront refuses an alias another distribution
/// has, CNAMEAlreadyExists), inside the zone that holds their records.
fn check_domains(c: &mut Checker, cdn: &CdnSpec, i: usize, d: &DistributionSpec, seen: &mut BTreeMap<String, String>) {
    let names: Vec<(Vec<PathSeg>, &str)> = d
        .domain
        .iter()
        .map(|n| (path!("cdn", "distributions", i, "domain"), n.as_str()))
        .chain(d.aliases.iter().enumerate().map(|(j, n)| (path!("cdn", "distributions", i, "aliases", j), n.as_str())))
        .collect();
    if let Some(zone) = &d.hosted_zone {
        check_zone(c, path!("cdn", "distributions", i, "hosted_zone"), zone);
    }
    let zone = d.zone(cdn).filter(|z| !super::names::is_zone_id(z));
    for (at, name) in names {
        if let Some(problem) = super::names::dns_name_problem(name) {
            c.err(at, format!("`{name}` is not a usable domain name: {problem}"), "e.g. cdn.poafix.example");
            continue;
        }
        if let Some(other) = seen.insert(name.to_string(), d.name.clone()) {
            let what = if other == d.name { "twice in this distribution".to_string() } else { format!("also in distribution `{other}`") };
            c.err(at, format!("`{name}` is listed {what}"), "CloudFront serves each domain name from one distribution: keep one");
            continue;
        }
        // Each name in a hosted zone gets an owner TXT record beside it (`_poactl.NAME`,
        // providers/aws/route53.rs), and a DNS name is at most 253 characters (RFC 1035 2.3.4,
        // as Route 53 counts it without the final dot).
        let owner = match name.strip_prefix("*.") {
            Some(rest) => format!("_poactl-wildcard.{rest}"),
            None => format!("_poactl.{name}"),
        };
        if zone.is_some() && owner.len() > 253 {
            c.err(
                at.clone(),
                format!("`{name}` leaves no room for its owner record `{owner}` ({} characters; DNS allows 253)", owner.len()),
                "use a shorter name",
            );
            continue;
        }
        if let Some(zone) = zone
            && !super::names::in_zone(name, zone)
        {
            c.err(
                at,
                format!("`{name}` is not in the hosted zone `{zone}`, so poactl cannot create its record there"),
                "use a name under the zone, or name this distribution's own `hosted_zone`",
            );
        }
    }
    if let Some(policy) = &d.min_tls {
        if !super::names::CLOUDFRONT_TLS_POLICIES.contains(&policy.as_str()) {
            c.err(
                path!("cdn", "distributions", i, "min_tls"),
                format!("`{policy}` is not a CloudFront security policy"),
                format!("one of {}", super::names::CLOUDFRONT_TLS_POLICIES[4..].join(", ")),
            );
        } else if d.certificate_arn.is_none() && d.domain.is_none() {
            c.err(
                path!("cdn", "distributions", i, "min_tls"),
                "with CloudFront's default certificate (*.cloudfront.net) the policy is fixed at TLSv1 whatever is asked",
                "give the distribution a `domain:` or a `certificate_arn`, or remove min_tls",
            );
        }
    }
    // One certificate holds the domain and every alias; ACM's default quota is 10 names per
    // certificate (ACM User Guide, "Quotas": "Domain names per ACM certificate: 10",
    // adjustable). Past it RequestCertificate fails with LimitExceededException, after the
    // plan looked fine.
    let mut all: Vec<&str> = d.domain.iter().map(String::as_str).chain(d.aliases.iter().map(String::as_str)).collect();
    all.sort();
    all.dedup();
    if d.manages_certificate() && all.len() > ACM_NAMES_PER_CERTIFICATE {
        c.err(
            path!("cdn", "distributions", i, "aliases"),
            format!(
                "the certificate would hold {} names (the domain and its aliases); ACM allows {ACM_NAMES_PER_CERTIFICATE} per certificate unless AWS raised this account's quota",
                all.len()
            ),
            "drop aliases (a wildcard such as `*.poafix.example` covers many), or bring a certificate of your own with `certificate_arn`",
        );
    }
    // ACM puts the first name in the certificate's subject: "The first domain name you enter
    // cannot exceed 64 octets, including periods" (ACM API reference, RequestCertificate).
    if d.manages_certificate()
        && let Some(domain) = &d.domain
        && domain.len() > 64
    {
        c.err(
            path!("cdn", "distributions", i, "domain"),
            format!("`{domain}` is {} characters long; ACM allows 64 for a certificate's first name", domain.len()),
            "use a shorter `domain` and list this name under `aliases`",
        );
    }
}

fn valid_statistic(s: &str) -> bool {
    if ["SampleCount", "Average", "Sum", "Minimum", "Maximum"].contains(&s) {
        return true;
    }
    // Extended statistics: p90, p99.9, tm99 ...
    let rest = s
        .strip_prefix("p")
        .or_else(|| s.strip_prefix("tm"))
        .or_else(|| s.strip_prefix("wm"))
        .or_else(|| s.strip_prefix("tc"))
        .or_else(|| s.strip_prefix("ts"));
    rest.is_some_and(|r| r.parse::<f64>().is_ok_and(|v| (0.0..=100.0).contains(&v)))
}

fn check_alarms(c: &mut Checker, m: &MonitoringSpec) {
    c.unique(m.alarms.iter().enumerate().map(|(i, a)| (path!("monitoring", "alarms", i, "name"), a.name.as_str())), "alarm name");
    for (i, a) in m.alarms.iter().enumerate() {
        let base = |f: &str| path!("monitoring", "alarms", i, f);
        if a.name.is_empty() || a.name.len() > 200 || a.name.chars().any(|ch| ch.is_control()) {
            c.err(base("name"), "alarm names are 1-200 printable characters", "shorten the name");
        }
        if a.metric.namespace.is_empty() || a.metric.name.is_empty() {
            c.err(base("metric"), "a metric needs `namespace` and `name`", "e.g. { namespace: AWS/CloudFront, name: 5xxErrorRate }");
        }
        if a.metric.dimensions.len() > 30 {
            c.err(path!("monitoring", "alarms", i, "metric", "dimensions"), "CloudWatch allows 30 dimensions", "remove some");
        }
        if !valid_statistic(&a.statistic) {
            c.err(
                base("statistic"),
                format!("unknown statistic `{}`", a.statistic),
                "use SampleCount, Average, Sum, Minimum, Maximum or a percentile such as p99",
            );
        }
        let p = a.period.seconds;
        if !(p == 10 || p == 20 || p == 30 || (p >= 60 && p % 60 == 0)) {
            c.err(
                base("period"),
                format!("`{}` is not a CloudWatch alarm period", a.period),
                "use 10s, 20s, 30s or a whole number of minutes (1m, 5m, 1h)",
            );
        }
        match (a.above, a.below) {
            (None, None) => c.err(path!("monitoring", "alarms", i), "an alarm needs `above` or `below`", "e.g. above: 5"),
            (Some(_), Some(_)) => c.err(path!("monitoring", "alarms", i), "set either `above` or `below`, not both", "make two alarms"),
            _ => {}
        }
        if a.evaluation_periods == 0 {
            c.err(base("for"), "`for` (evaluation periods) must be at least 1", "e.g. for: 3");
        }
        if let Some(dp) = a.datapoints
            && (dp == 0 || dp > a.evaluation_periods)
        {
            c.err(base("datapoints"), "datapoints must be between 1 and `for`", "e.g. for: 5, datapoints: 3");
        }
        let total = p.saturating_mul(u64::from(a.evaluation_periods));
        let limit = if p < 60 { 86_400 } else { 7 * 86_400 };
        if total > limit {
            c.err(
                base("for"),
                "period x evaluation periods is longer than CloudWatch allows",
                if p < 60 { "high-resolution alarms evaluate at most one day" } else { "alarms evaluate at most 7 days" },
            );
        }
        c.one_of(
            base("treat_missing_data"),
            "missing-data treatment",
            &a.treat_missing_data,
            &["missing", "notBreaching", "breaching", "ignore"],
        );
        if a.name.starts_with("billing-") {
            c.err(
                base("name"),
                format!("alarm names starting with `billing-` are poactl's billing alarms (`{}`)", a.name),
                "rename the alarm, or declare it under billing.alerts",
            );
        }
        let region = c.loaded.spec.alarm_region(a);
        if let Some(r) = &a.region {
            c.one_of(base("region"), "AWS region", r, AWS_REGIONS);
        }
        for (f, list) in [("notify", &a.notify), ("ok_notify", &a.ok_notify)] {
            for (j, target) in list.iter().enumerate() {
                ops::check_notify_target(c, path!("monitoring", "alarms", i, f, j), target, &region);
            }
        }
    }
}

fn check_billing(c: &mut Checker, b: &BillingSpec) {
    let mut seen = BTreeSet::new();
    for (i, a) in b.alerts.iter().enumerate() {
        if !(a.above_usd > 0.0 && a.above_usd.is_finite()) {
            c.err(path!("billing", "alerts", i, "above_usd"), "the threshold must be a positive amount of USD", "e.g. above_usd: 50");
        } else if a.above_usd.fract() != 0.0 || a.above_usd > f64::from(i32::MAX) {
            c.err(
                path!("billing", "alerts", i, "above_usd"),
                "Atlas billing alerts take whole dollars",
                "round the threshold, e.g. above_usd: 50",
            );
        }
        if !seen.insert(a.above_usd.to_bits()) {
            c.err(path!("billing", "alerts", i, "above_usd"), "two billing alerts have the same threshold", "remove one");
        }
        // Billing metrics are published in us-east-1 only, where the billing alarm lives
        // (CloudWatch User Guide, "Create a billing alarm").
        for (j, target) in a.notify.iter().enumerate() {
            ops::check_notify_target(c, path!("billing", "alerts", i, "notify", j), target, "us-east-1");
        }
        if let Some(n) = &a.atlas_notify {
            check_notify(c, &n.0, path!("billing", "alerts", i, "atlas_notify"));
        }
    }
    if let Some(budget) = b.budget_usd
        && !(budget >= 0.0 && budget.is_finite())
    {
        c.err(path!("billing", "budget_usd"), "the budget must be zero or a positive amount of USD", "e.g. budget_usd: 150");
    }
}

fn check_database(c: &mut Checker, db: &DatabaseSpec, spec: &Spec) {
    if let Some(user) = &db.user {
        let users: Vec<&str> = spec.atlas.iter().flat_map(|a| a.database_users.iter().map(|u| u.username.as_str())).collect();
        if !users.contains(&user.as_str()) {
            let hint = match did_you_mean(user, &users) {
                Some(b) => format!("did you mean `{b}`?"),
                None => "name a user from atlas.database_users, or put the credentials in the URI".to_string(),
            };
            c.err(path!("database", "user"), format!("`{user}` is not a database user of this environment"), hint);
        }
    }
    if db.name.is_empty() || db.name.len() > 63 || db.name.chars().any(|ch| "/\\. \"$*<>:|?".contains(ch)) {
        c.err(
            path!("database", "name"),
            format!("`{}` is not a valid MongoDB database name", db.name),
            "use 1-63 characters without / \\ . space \" $ * < > : | ?",
        );
    }
    if let Some(uri) = &db.uri
        && !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") || uri.starts_with("${"))
    {
        c.err(path!("database", "uri"), "the URI must start with mongodb:// or mongodb+srv://", "e.g. uri: ${atlas.clusters.main.srv}");
    }
    for (coll, spec) in &db.collections.0 {
        if coll.is_empty() || coll.contains('$') || coll.starts_with("system.") || coll.contains('\0') {
            c.err(
                path!("database", "collections", coll),
                format!("`{coll}` is not a valid collection name"),
                "collection names cannot be empty, contain `$` or start with `system.`",
            );
        }
        let mut names = BTreeMap::new();
        let mut text_indexes = 0;
        for (i, ix) in spec.indexes.iter().enumerate() {
            let p = |f: &str| path!("database", "collections", coll, "indexes", i, f);
            let keys = &ix.keys.0;
            let name = index_name(ix);
            if let Some(prev) = names.insert(name.clone(), i) {
                c.err(
                    path!("database", "collections", coll, "indexes", i),
                    format!("two indexes are named `{name}` (also index {prev})"),
                    "give one an explicit `name`, or remove the duplicate",
                );
            }
            if keys.len() == 1 && keys[0].0 == "_id" {
                c.err(p("keys"), "the `_id` index always exists and cannot be managed", "remove this index");
            }
            if keys.len() > 32 {
                c.err(p("keys"), "a compound index has at most 32 fields", "remove some keys");
            }
            let count = |k: IndexKey| keys.iter().filter(|(_, v)| *v == k).count();
            let text = count(IndexKey::Text);
            let hashed = count(IndexKey::Hashed);
            let geo2d = count(IndexKey::Geo2d);
            let sphere = count(IndexKey::Geo2dSphere);
            if text > 0 {
                text_indexes += 1;
                if text_indexes > 1 {
                    c.err(p("keys"), "a collection can have only one text index", "put all text fields in one index (with `weights`)");
                }
                if hashed + geo2d + sphere > 0 {
                    c.err(p("keys"), "a text index cannot also hold 2dsphere, 2d or hashed keys", "split it into separate indexes");
                }
                if ix.collation.is_some() {
                    c.err(p("collation"), "text indexes support only simple binary comparison, not a collation", "remove `collation`");
                }
            } else if ix.weights.is_some() || ix.default_language.is_some() || ix.language_override.is_some() {
                c.err(
                    path!("database", "collections", coll, "indexes", i),
                    "`weights`, `default_language` and `language_override` apply to text indexes only",
                    "add a `text` key or remove them",
                );
            }
            if hashed > 1 {
                c.err(p("keys"), "an index can hold only one hashed field", "remove the other hashed keys");
            }
            if hashed > 0 && ix.unique {
                c.err(p("unique"), "hashed indexes cannot be unique", "remove `unique: true` or use an ascending key");
            }
            if geo2d > 1 {
                c.err(p("keys"), "an index can hold only one 2d field", "use 2dsphere for several location fields");
            }
            if geo2d == 1 && keys[0].1 != IndexKey::Geo2d {
                c.err(p("keys"), "a 2d key must be the first key of a compound index", "move the 2d key first");
            }
            if ix.expire_after.is_some()
                && (keys.len() != 1 || keys[0].0 == "_id" || keys[0].1 != IndexKey::Asc && keys[0].1 != IndexKey::Desc)
            {
                c.err(
                    p("expire_after"),
                    "a TTL index has exactly one ascending or descending field (not _id)",
                    "use a single date field, e.g. { keys: { createdAt: 1 }, expire_after: 30d }",
                );
            }
            // expireAfterSeconds is a 32-bit value on the server: 2147483647 is the largest it
            // keeps (mongodb/mongo jstests: core ttl_index_options.js refuses larger values with
            // CannotCreateIndex; the noPassthrough TTL tests treat 2147483647 as the ceiling).
            if let Some(e) = &ix.expire_after
                && e.seconds > 2_147_483_647
            {
                c.err(
                    p("expire_after"),
                    format!("expire_after {} is {} seconds; MongoDB allows at most 2147483647 (about 68 years)", e.text, e.seconds),
                    "use a shorter duration",
                );
            }
            if ix.sparse && ix.partial_filter.is_some() {
                c.err(
                    path!("database", "collections", coll, "indexes", i),
                    "`sparse` and `partial_filter` cannot be combined",
                    "a partial filter with `{ field: { $exists: true } }` does what sparse does",
                );
            }
            if let Some(pf) = &ix.partial_filter
                && !pf.is_object()
            {
                c.err(
                    p("partial_filter"),
                    "a partial filter is a query document (a map)",
                    "e.g. partial_filter: { status: { $eq: active } }",
                );
            }
            if let Some(coll_doc) = &ix.collation
                && !coll_doc.get("locale").is_some_and(|l| l.is_string())
            {
                c.err(p("collation"), "a collation needs a `locale`", "e.g. collation: { locale: en, strength: 2 }");
            }
        }
    }
}

/// The name MongoDB gives an index: explicit, or `field_dir` parts joined with `_`.
pub fn index_name(ix: &IndexSpec) -> String {
    ix.name.clone().unwrap_or_else(|| ix.keys.0.iter().map(|(f, k)| format!("{f}_{}", k.name_part())).collect::<Vec<_>>().join("_"))
}

fn check_usage(c: &mut Checker, u: &UsageSpec, spec: &Spec) {
    for (f, v) in [
        ("storage_gb", u.storage_gb),
        ("cdn_transfer_gb", u.cdn_transfer_gb),
        ("cdn_requests", u.cdn_requests),
        ("s3_put_requests", u.s3_put_requests),
        ("s3_get_requests", u.s3_get_requests),
        ("private_endpoint_gb", u.private_endpoint_gb),
        ("log_ingest_gb", u.log_ingest_gb),
    ] {
        if !(v >= 0.0 && v.is_finite()) {
            c.err(path!("usage", f), "usage must be zero or positive", "per month, e.g. storage_gb: 50");
        }
    }
    c.unique(u.scenarios.iter().enumerate().map(|(i, s)| (path!("usage", "scenarios", i, "name"), s.name.as_str())), "scenario");
    let clusters: Vec<&str> = spec.atlas.iter().flat_map(|a| a.clusters.iter().map(|c| c.name.as_str())).collect();
    for (i, s) in u.scenarios.iter().enumerate() {
        let all = [
            Some(s.multiplier),
            s.storage_gb,
            s.cdn_transfer_gb,
            s.cdn_requests,
            s.s3_put_requests,
            s.s3_get_requests,
            s.private_endpoint_gb,
            s.log_ingest_gb,
        ];
        if all.iter().flatten().any(|m| !(*m > 0.0 && m.is_finite())) {
            c.err(path!("usage", "scenarios", i), "scenario multipliers must be positive", "e.g. multiplier: 10");
        }
        for (cl, tier) in &s.cluster_tiers {
            if !clusters.contains(&cl.as_str()) {
                c.err(
                    path!("usage", "scenarios", i, "cluster_tiers", cl),
                    format!("`{cl}` is not a cluster of this environment"),
                    "use a name from atlas.clusters",
                );
            }
            if tier != "M0" && tier != "FLEX" && !is_dedicated(tier) {
                c.err(path!("usage", "scenarios", i, "cluster_tiers", cl), format!("unknown cluster tier `{tier}`"), "e.g. M30");
            }
        }
    }
}

fn check_references(c: &mut Checker) {
    let addresses: BTreeSet<Address> = super::addresses(&c.loaded.spec).into_iter().collect();
    let known: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
    let known_refs: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
    let uses = c.loaded.references.clone();
    for u in uses {
        let r = &u.reference;
        let mut err = if !addresses.contains(&r.target) {
            let hint = match did_you_mean(&r.target.to_string(), &known_refs) {
                Some(b) => format!("did you mean `{b}`?"),
                None if known.is_empty() => "this environment declares no resources to refer to".to_string(),
                None => format!("resources here: {}", known.iter().take(8).cloned().collect::<Vec<_>>().join(", ")),
            };
            SpecError::new(format!("`${{{r}}}` refers to `{}`, which this environment does not declare", r.target)).hint(hint)
        } else if !r.target.kind.outputs().contains(&r.field.as_str()) {
            SpecError::new(format!("`${{{r}}}`: {} has no output `{}`", r.target.kind, r.field)).hint(format!(
                "outputs of {}: {}",
                r.target.kind,
                r.target.kind.outputs().join(", ")
            ))
        } else {
            continue;
        };
        err.snippet = c.loaded.snippet(&u.loc);
        err.loc = Some(u.loc.clone());
        err.path = u.path.clone();
        c.errors.push(err);
    }
}

fn parse_cidr(s: &str) -> Result<(), String> {
    crate::spec::cidr::Cidr::parse(s).map(|_| ())
}
