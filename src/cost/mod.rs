//! Monthly cost estimates from a dated price catalog: pure functions, no network.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::plan::{Action, CostDelta, Plan};
use crate::resource::Kind;
use crate::spec::model::{Spec, UsageSpec};
use crate::spec::validate::is_dedicated;

const BUILTIN_CATALOG: &str = include_str!("catalog.yaml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub currency: String,
    pub hours_per_month: f64,
    pub prices: BTreeMap<String, Price>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub usd: f64,
    pub per: String,
    /// How many units the price is for (1000 for "per 1,000 requests").
    #[serde(default = "one")]
    pub unit: f64,
    #[serde(default)]
    pub monthly_cap_usd: Option<f64>,
    /// Free quantity a month (account-wide free tiers).
    #[serde(default)]
    pub free_per_month: Option<f64>,
    /// The price holds up to this monthly quantity (the first pricing tier).
    #[serde(default)]
    pub tier_limit: Option<f64>,
    /// The storage a cluster tier includes, in GB.
    #[serde(default)]
    pub storage_gb: Option<f64>,
    pub source: String,
    pub as_of: String,
}

fn one() -> f64 {
    1.0
}

impl Catalog {
    pub fn builtin() -> Catalog {
        // The built-in catalog is checked by a unit test; failing here would be a build bug.
        serde_yaml::from_str(BUILTIN_CATALOG).unwrap_or_else(|e| panic!("the built-in price catalog is invalid: {e}"))
    }

    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read { file: file.clone(), source })?;
        let cat: Catalog = serde_yaml::from_str(&text).map_err(|source| CatalogError::Parse {
            at: source.location().map(|l| format!("{file}:{}:{}", l.line(), l.column())).unwrap_or_else(|| file.clone()),
            source,
        })?;
        let invalid = |reason: String| CatalogError::Invalid { file: file.clone(), reason };
        if cat.hours_per_month <= 0.0 {
            return Err(invalid("hours_per_month must be positive".to_string()));
        }
        for (id, p) in &cat.prices {
            if p.usd < 0.0 || p.unit <= 0.0 {
                return Err(invalid(format!("price {id}: usd must be >= 0 and unit > 0")));
            }
        }
        Ok(cat)
    }

    /// The newest `as_of` date of the catalog's prices.
    pub fn as_of(&self) -> String {
        self.prices.values().map(|p| p.as_of.clone()).max().unwrap_or_default()
    }
}

/// A price catalog given with `--catalog` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read the price catalog {file}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: invalid price catalog")]
    Parse {
        at: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

/// One priced line of an estimate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    /// The resource (or group of resources) the line prices.
    pub resource: String,
    pub item: String,
    pub quantity: f64,
    pub unit: String,
    /// Free quantity deducted (free tier), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price_usd: Option<f64>,
    /// `None` when the price is not in the catalog.
    pub monthly_usd: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Estimate {
    pub scenario: String,
    pub lines: Vec<Line>,
    pub total_monthly_usd: f64,
    /// Lines whose price the catalog does not have (not counted in the total).
    pub not_in_catalog: Vec<String>,
}

impl Estimate {
    /// Whether the estimate is above a monthly budget (a cent's float noise is not "over").
    pub fn over_budget(&self, budget: f64) -> bool {
        self.total_monthly_usd > budget + 1e-9
    }
}

/// Usage inputs after a scenario's multipliers.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Usage {
    pub storage_gb: f64,
    pub cdn_transfer_gb: f64,
    pub cdn_requests: f64,
    pub s3_put_requests: f64,
    pub s3_get_requests: f64,
    pub private_endpoint_gb: f64,
    pub log_ingest_gb: f64,
    pub cluster_tiers: BTreeMap<String, String>,
}

impl Usage {
    pub(crate) fn base(u: Option<&UsageSpec>) -> Usage {
        let Some(u) = u else { return Usage::default() };
        Usage {
            storage_gb: u.storage_gb,
            cdn_transfer_gb: u.cdn_transfer_gb,
            cdn_requests: u.cdn_requests,
            s3_put_requests: u.s3_put_requests,
            s3_get_requests: u.s3_get_requests,
            private_endpoint_gb: u.private_endpoint_gb,
            log_ingest_gb: u.log_ingest_gb,
            cluster_tiers: BTreeMap::new(),
        }
    }

    pub(crate) fn scenario(u: &UsageSpec, name: &str) -> Option<Usage> {
        let s = u.scenarios.iter().find(|s| s.name == name)?;
        let m = s.multiplier;
        Some(Usage {
            storage_gb: u.storage_gb * m * s.storage_gb.unwrap_or(1.0),
            cdn_transfer_gb: u.cdn_transfer_gb * m * s.cdn_transfer_gb.unwrap_or(1.0),
            cdn_requests: u.cdn_requests * m * s.cdn_requests.unwrap_or(1.0),
            s3_put_requests: u.s3_put_requests * m * s.s3_put_requests.unwrap_or(1.0),
            s3_get_requests: u.s3_get_requests * m * s.s3_get_requests.unwrap_or(1.0),
            private_endpoint_gb: u.private_endpoint_gb * m * s.private_endpoint_gb.unwrap_or(1.0),
            log_ingest_gb: u.log_ingest_gb * m * s.log_ingest_gb.unwrap_or(1.0),
            cluster_tiers: s.cluster_tiers.clone(),
        })
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

struct Pricer<'a> {
    catalog: &'a Catalog,
    lines: Vec<Line>,
}

impl Pricer<'_> {
    /// Adds a line for `quantity` of price `id`; unknown prices are listed, not guessed.
    fn add(&mut self, resource: &str, item: &str, id: &str, quantity: f64, unit: &str, mut notes: Vec<String>) {
        match self.catalog.prices.get(id) {
            None => {
                notes.push(format!("not in catalog (no price `{id}`)"));
                self.lines.push(Line {
                    resource: resource.into(),
                    item: item.into(),
                    quantity,
                    unit: unit.into(),
                    free: None,
                    unit_price_usd: None,
                    monthly_usd: None,
                    notes,
                    source: None,
                    as_of: None,
                });
            }
            Some(p) => {
                let free = p.free_per_month.map(|f| f.min(quantity));
                let billable = quantity - free.unwrap_or(0.0);
                let mut cost = billable / p.unit * p.usd;
                if let Some(cap) = p.monthly_cap_usd
                    && cost > cap
                {
                    notes.push(format!("capped at ${cap:.2}/month"));
                    cost = cap;
                }
                if let Some(limit) = p.tier_limit.filter(|l| quantity > *l) {
                    notes.push(format!("above {limit} {unit} the catalog's first-tier price is used; AWS charges less per unit there"));
                }
                if free.is_some_and(|f| f > 0.0) {
                    notes.push("free tier is account-wide: shared with your other environments".to_string());
                }
                self.lines.push(Line {
                    resource: resource.into(),
                    item: item.into(),
                    quantity,
                    unit: unit.into(),
                    free: free.filter(|f| *f > 0.0),
                    unit_price_usd: Some(p.usd / p.unit),
                    monthly_usd: Some(round2(cost)),
                    notes,
                    source: Some(p.source.clone()),
                    as_of: Some(p.as_of.clone()),
                });
            }
        }
    }
}

/// CloudWatch Logs: what the groups ingest (`usage.log_ingest_gb`, shared evenly), and what
/// they keep at their retention. A group that keeps events `retention` days holds, once
/// full, `retention / 30` months of ingestion; one that never expires grows every month and is
/// priced at its first year's end. CloudWatch bills storage on compressed bytes (CloudWatch
/// pricing page, "Logs"), so the stored line is an upper bound.
fn log_groups(spec: &Spec, usage: &Usage, p: &mut Pricer<'_>) {
    let groups: Vec<_> = spec.monitoring.iter().flat_map(|m| m.log_groups.iter()).collect();
    if groups.is_empty() {
        return;
    }
    let share = usage.log_ingest_gb / groups.len() as f64;
    let region_of = |g: &&crate::spec::model::LogGroupSpec| g.region.clone().unwrap_or_else(|| spec.aws_region());
    // Ingestion is one line per region: the free tier is the account's, not each group's.
    let mut regions: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for g in &groups {
        regions.entry(region_of(g)).or_default().push(g.name.as_str());
    }
    for (region, names) in &regions {
        let resource = match names.as_slice() {
            [one] => format!("monitoring.log_groups.{one}"),
            many => format!("monitoring.log_groups ({} groups in {region})", many.len()),
        };
        let mut notes = Vec::new();
        if usage.log_ingest_gb == 0.0 {
            notes.push("no usage.log_ingest_gb: set the GB a month the app logs to price it".to_string());
        } else if groups.len() > 1 {
            notes.push(format!("usage.log_ingest_gb shared evenly by the {} groups", groups.len()));
        }
        p.add(&resource, "CloudWatch Logs ingestion", &format!("logs/{region}/ingestion"), share * names.len() as f64, "GB", notes);
    }
    for g in groups {
        let resource = format!("monitoring.log_groups.{}", g.name);
        let region = region_of(&g);
        let (months, note) = match &g.retention {
            Some(r) => (
                r.seconds as f64 / (30.0 * 86400.0),
                format!("kept {} days: about {:.1} months of events", r.seconds / 86400, r.seconds as f64 / (30.0 * 86400.0)),
            ),
            None => (12.0, "never expires: storage grows every month; priced after 12 months (set `retention`)".to_string()),
        };
        let notes = vec![note, "billed on compressed bytes: an upper bound".to_string()];
        p.add(&resource, "CloudWatch Logs storage", &format!("logs/{region}/storage"), share * months, "GB-month", notes);
    }
}

/// How much a cluster stores: its `disk_size_gb`, else what its tier includes.
pub(crate) fn cluster_storage_gb(c: &crate::spec::model::ClusterSpec, catalog: &Catalog) -> Option<f64> {
    c.disk_size_gb.or_else(|| catalog.prices.get(&format!("atlas/{}/{}/{}", c.provider, c.primary_region(), c.tier))?.storage_gb)
}

/// The cheapest tier of the catalog (same provider and region) that includes `gb` of
/// storage, with its monthly price.
pub(crate) fn smallest_tier_for(c: &crate::spec::model::ClusterSpec, gb: f64, catalog: &Catalog) -> Option<(String, f64)> {
    let prefix = format!("atlas/{}/{}/", c.provider, c.primary_region());
    catalog
        .prices
        .iter()
        .filter_map(|(id, p)| Some((id.strip_prefix(&prefix)?.to_string(), p)))
        .filter(|(_, p)| p.storage_gb.is_some_and(|s| s >= gb))
        .map(|(tier, p)| {
            let monthly = p.usd * catalog.hours_per_month;
            (tier, p.monthly_cap_usd.map_or(monthly, |cap| monthly.min(cap)))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// The monthly estimate of an environment for the given usage.
pub(crate) fn estimate(spec: &Spec, usage: &Usage, catalog: &Catalog, scenario: &str) -> Estimate {
    let mut p = Pricer { catalog, lines: Vec::new() };
    let hours = catalog.hours_per_month;
    if let Some(atlas) = &spec.atlas {
        for c in &atlas.clusters {
            let tier = usage.cluster_tiers.get(&c.name).cloned().unwrap_or_else(|| c.tier.clone());
            let mut notes = Vec::new();
            if tier == "FLEX" {
                notes.push("Flex base price; it grows with operations per second up to the monthly cap".to_string());
            }
            if is_dedicated(&tier) {
                if c.backup.as_ref().is_some_and(|b| b.enabled) {
                    notes.push("cloud backup snapshot storage not in catalog".to_string());
                }
                if let Some(max) = c.autoscaling.as_ref().and_then(|a| a.compute.as_ref()).map(|cs| cs.max.clone()) {
                    notes.push(format!("autoscaling may raise the tier up to {max}"));
                }
            }
            let resource = format!("atlas.clusters.{}", c.name);
            let placements = c.placements();
            let plain = placements.len() == 1 && placements[0].nodes() == 3;
            if !is_dedicated(&tier) || plain {
                let region = c.primary_region();
                let id = format!("atlas/{}/{region}/{tier}", c.provider);
                p.add(&resource, &format!("{tier} cluster on {} {region}", c.provider), &id, hours, "hours", notes);
                continue;
            }
            // The catalog prices a 3-node replica set; each node, whatever its role, costs a
            // third of that in its own region (the same instance size serves every role).
            if placements.len() > 1 {
                notes.push("cross-region replication traffic not in catalog".to_string());
            }
            for pl in placements.iter().filter(|pl| pl.nodes() > 0) {
                let id = format!("atlas/{}/{}/{tier}", c.provider, pl.region);
                let roles: Vec<String> = [(pl.electable, "electable"), (pl.read_only, "read-only"), (pl.analytics, "analytics")]
                    .iter()
                    .filter(|(n, _)| *n > 0)
                    .map(|(n, role)| format!("{n} {role}"))
                    .collect();
                let item = format!("{tier} nodes on {} {}: {}", c.provider, pl.region, roles.join(", "));
                p.add(&resource, &item, &id, hours * f64::from(pl.nodes()) / 3.0, "cluster-hours (3 nodes)", notes.clone());
            }
        }
    }
    if let Some(atlas) = &spec.atlas {
        private_endpoints(&mut p, atlas, usage, hours);
    }
    let buckets: Vec<_> = spec.storage.iter().flat_map(|s| s.buckets.iter()).collect();
    if !buckets.is_empty() {
        let region = buckets[0].region.clone().unwrap_or_else(|| spec.aws_region());
        let resource = if buckets.len() == 1 {
            format!("storage.buckets.{}", buckets[0].name)
        } else {
            format!("storage.buckets ({} buckets)", buckets.len())
        };
        p.add(&resource, "S3 Standard storage", &format!("s3/{region}/standard_storage"), usage.storage_gb, "GB-month", vec![]);
        if usage.s3_put_requests > 0.0 {
            p.add(
                &resource,
                "S3 PUT/COPY/POST/LIST requests",
                &format!("s3/{region}/put_requests"),
                usage.s3_put_requests,
                "requests",
                vec![],
            );
        }
        if usage.s3_get_requests > 0.0 {
            p.add(&resource, "S3 GET requests", &format!("s3/{region}/get_requests"), usage.s3_get_requests, "requests", vec![]);
        }
    }
    let dists: Vec<_> = spec.cdn.iter().flat_map(|c| c.distributions.iter()).collect();
    if !dists.is_empty() {
        let resource = if dists.len() == 1 {
            format!("cdn.distributions.{}", dists[0].name)
        } else {
            format!("cdn.distributions ({} distributions)", dists.len())
        };
        let notes = if dists.iter().any(|d| d.price_class != "PriceClass_100") {
            vec!["priced at US/Europe rates; other edge locations cost more".to_string()]
        } else {
            vec![]
        };
        p.add(&resource, "CloudFront data transfer out", "cloudfront/us-eu/transfer_out", usage.cdn_transfer_gb, "GB", notes.clone());
        p.add(&resource, "CloudFront HTTPS requests", "cloudfront/us-eu/https_requests", usage.cdn_requests, "requests", notes);
    }
    for u in spec.monitoring.iter().flat_map(|m| m.uptime.iter()) {
        let side = if u.on_aws { "aws" } else { "non_aws" };
        let resource = format!("monitoring.uptime.{}", u.name);
        let notes = if u.on_aws { vec!["the first 50 checks of AWS endpoints are free, account-wide".to_string()] } else { vec![] };
        p.add(&resource, "Route 53 health check", &format!("route53/health_check_{side}"), 1.0, "check", notes);
        let features: Vec<&str> = [
            (u.url.starts_with("https://"), "HTTPS"),
            (u.search.is_some(), "string matching"),
            (u.interval.as_ref().is_some_and(|d| d.seconds == 10), "fast interval"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
        if !features.is_empty() {
            let item = format!("Route 53 optional features: {}", features.join(", "));
            let unit = if features.len() == 1 { "feature" } else { "features" };
            p.add(&resource, &item, &format!("route53/health_check_feature_{side}"), features.len() as f64, unit, vec![]);
        }
    }
    log_groups(spec, usage, &mut p);
    let alarms =
        spec.monitoring.as_ref().map_or(0, |m| m.alarms.len() + m.uptime.len()) + spec.billing.as_ref().map_or(0, |b| b.alerts.len());
    if alarms > 0 {
        p.add(
            &format!("monitoring ({alarms} alarms)"),
            "CloudWatch standard alarms",
            "cloudwatch/standard_alarm",
            alarms as f64,
            "alarms",
            vec![],
        );
    }
    let total = round2(p.lines.iter().filter_map(|l| l.monthly_usd).sum());
    let not_in_catalog = p.lines.iter().filter(|l| l.monthly_usd.is_none()).map(|l| format!("{}: {}", l.resource, l.item)).collect();
    Estimate { scenario: scenario.to_string(), lines: p.lines, total_monthly_usd: total, not_in_catalog }
}

/// PrivateLink costs on both sides (Atlas docs, "Additional Services" > Private Endpoints):
/// AWS bills each interface endpoint per availability zone (one per subnet) per hour, and
/// the data it processes; Atlas bills each region with a private endpoint per hour, and the
/// traffic in "private endpoint capacity units". Atlas publishes those two prices per region
/// in its price list only, so the built-in catalog leaves them out rather than guess: they are
/// listed as not in catalog until a `--catalog` file gives them.
fn private_endpoints(p: &mut Pricer<'_>, atlas: &crate::spec::model::AtlasSpec, usage: &Usage, hours: f64) {
    let endpoints = atlas.private_endpoints();
    for e in endpoints {
        let resource = format!("atlas.private_endpoints.{}", e.region);
        let region = e.aws_region();
        let azs = e.subnets.len().max(1) as f64;
        p.add(
            &resource,
            &format!("AWS interface endpoint in {region} ({} AZ)", e.subnets.len().max(1)),
            &format!("privatelink/{region}/endpoint_az_hour"),
            hours * azs,
            "endpoint-AZ hours",
            vec![],
        );
        p.add(
            &resource,
            &format!("Atlas private endpoint in {}", e.region),
            &format!("atlas/AWS/{}/private_endpoint", e.region),
            hours,
            "hours",
            vec![],
        );
    }
    // Traffic is one figure for the environment; each endpoint carries its share.
    let share = usage.private_endpoint_gb / endpoints.len().max(1) as f64;
    for e in endpoints.iter().filter(|_| share > 0.0) {
        let resource = format!("atlas.private_endpoints.{}", e.region);
        p.add(&resource, "AWS PrivateLink data processed", &format!("privatelink/{}/data_processed", e.aws_region()), share, "GB", vec![]);
        p.add(
            &resource,
            "Atlas private endpoint capacity units (traffic)",
            &format!("atlas/AWS/{}/private_endpoint_traffic", e.region),
            share,
            "GB",
            vec!["Atlas also counts new and active connections in its capacity units".to_string()],
        );
    }
}

/// Cost of the live state (as the plan saw it) against the cost of the spec.
pub(crate) fn plan_delta(loaded: &crate::spec::LoadedSpec, plan: &Plan) -> Option<CostDelta> {
    let catalog = Catalog::builtin();
    let usage = Usage::base(loaded.spec.usage.as_ref());
    let after = estimate(&loaded.spec, &usage, &catalog, "base").total_monthly_usd;
    let mut live = loaded.spec.clone();
    let creating = |kind: Kind, name: &str| {
        plan.resources.iter().any(|r| r.address.kind == kind && r.address.name == name && r.action == Action::Create)
    };
    if let Some(atlas) = &mut live.atlas {
        atlas.clusters.retain(|c| !creating(Kind::AtlasCluster, &c.name));
        if let Some(n) = &mut atlas.network {
            n.private_endpoints.retain(|e| !creating(Kind::AtlasPrivateEndpoint, &e.region));
        }
        for c in &mut atlas.clusters {
            let change = plan.resources.iter().find(|r| r.address.kind == Kind::AtlasCluster && r.address.name == c.name);
            if let Some(before) =
                change.and_then(|r| r.changes.iter().find(|f| f.path == "tier")).and_then(|f| f.before.as_ref()).and_then(|v| v.as_str())
            {
                c.tier = before.to_string();
            }
        }
    }
    if let Some(s) = &mut live.storage {
        s.buckets.retain(|b| !creating(Kind::Bucket, &b.name));
    }
    if let Some(c) = &mut live.cdn {
        c.distributions.retain(|d| !creating(Kind::Distribution, &d.name));
    }
    if let Some(m) = &mut live.monitoring {
        m.alarms.retain(|a| !creating(Kind::Alarm, &a.name));
    }
    if let Some(b) = &mut live.billing {
        b.alerts.retain(|a| !creating(Kind::BillingAlarm, &crate::spec::billing_alarm_name(a.above_usd)));
    }
    let before = estimate(&live, &usage, &catalog, "live").total_monthly_usd;
    Some(CostDelta { before_usd: before, after_usd: after, delta_usd: round2(after - before) })
}

#[cfg(test)]
mod tests;
