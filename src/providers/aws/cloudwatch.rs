//! CloudWatch metric alarms (`monitoring.alarms`) and billing alarms (`billing.alerts`: an
//! `AWS/Billing EstimatedCharges` alarm in us-east-1, where AWS publishes billing metrics).
//! Alarms are named `<env>-<name>` and read with one DescribeAlarms by that prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::tagging::{self, Tags};
use super::{Aws, sdk_error};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::{AlarmSpec, BillingAlertSpec};

/// CloudWatch alarms are read in lists; writes are single PutMetricAlarm calls.
const LANE: Lane = Lane { service: "cloudwatch", limit: 16 };

/// Billing metrics exist only in us-east-1.
pub const BILLING_REGION: &str = "us-east-1";

/// The environment's alarms of a region, each with its tags from the tagging index (`None`:
/// not indexed, or the index could not be read).
type Listed = Arc<Vec<(MetricAlarm, Option<Tags>)>>;

/// The environment's alarms with their tags, read once per run and region, for both kinds
/// (billing alarms share the environment's prefix): one DescribeAlarms listing, not two.
#[derive(Default)]
pub struct AlarmLists(std::sync::Mutex<BTreeMap<String, Arc<OnceCell<Listed>>>>);

pub struct AlarmProvider {
    aws: Arc<Aws>,
    kind: Kind,
    listed: Arc<AlarmLists>,
    /// Alarms' own tags, read once per run.
    direct: std::sync::Mutex<BTreeMap<String, Arc<OnceCell<Tags>>>>,
}

impl AlarmProvider {
    pub fn new(aws: Arc<Aws>, kind: Kind, listed: Arc<AlarmLists>) -> Self {
        AlarmProvider { aws, kind, listed, direct: Default::default() }
    }

    /// The region of a desired or live alarm: where its metric is published.
    fn region_of(&self, attrs: &Value) -> String {
        attrs.get("region").and_then(|r| r.as_str()).map(String::from).unwrap_or_else(|| self.aws.region.clone())
    }

    /// The regions this kind's alarms of the spec live in (and the environment's own).
    fn regions(&self, loaded: &LoadedSpec) -> std::collections::BTreeSet<String> {
        if self.kind == Kind::BillingAlarm {
            return [BILLING_REGION.to_string()].into();
        }
        let mut out: std::collections::BTreeSet<String> =
            loaded.spec.monitoring.iter().flat_map(|m| m.alarms.iter()).map(|a| loaded.spec.alarm_region(a)).collect();
        out.insert(self.aws.region.clone());
        out
    }

    fn prefix(&self, env: &str) -> String {
        if self.kind == Kind::BillingAlarm { format!("{env}-billing-") } else { format!("{env}-") }
    }
}

pub fn alarm_name(env: &str, name: &str) -> String {
    format!("{env}-{name}")
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn statistic_attrs(stat: &str) -> (Value, Value) {
    if ["SampleCount", "Average", "Sum", "Minimum", "Maximum"].contains(&stat) {
        (json!(stat), Value::Null)
    } else {
        (Value::Null, json!(stat))
    }
}

pub fn desired_alarm(loaded: &LoadedSpec, a: &AlarmSpec) -> Desired {
    let address = Address::new(Kind::Alarm, &a.name);
    let (statistic, extended) = statistic_attrs(&a.statistic);
    let (threshold, comparison) = match (a.above, a.below) {
        (Some(v), _) => (v, "GreaterThanThreshold"),
        (None, Some(v)) => (v, "LessThanThreshold"),
        _ => (0.0, "GreaterThanThreshold"),
    };
    let attrs = json!({
        "name": alarm_name(&loaded.env, &a.name),
        "region": loaded.spec.alarm_region(a),
        "namespace": a.metric.namespace,
        "metric": a.metric.name,
        "dimensions": a.metric.dimensions,
        "statistic": statistic,
        "extended_statistic": extended,
        "period": a.period.seconds,
        "threshold": threshold,
        "comparison": comparison,
        "evaluation_periods": a.evaluation_periods,
        "datapoints": a.datapoints.unwrap_or(a.evaluation_periods),
        "treat_missing_data": a.treat_missing_data,
        "description": a.description.clone().unwrap_or_default(),
        "alarm_actions": sorted(&a.notify),
        "ok_actions": sorted(&a.ok_notify),
        "actions_enabled": true,
        "tags": all_tags(loaded, &Default::default(), &address),
    });
    Desired::new(address, attrs)
}

pub fn desired_billing(loaded: &LoadedSpec, b: &BillingAlertSpec) -> Desired {
    let short = crate::spec::billing_alarm_name(b.above_usd);
    let address = Address::new(Kind::BillingAlarm, &short);
    let attrs = json!({
        "name": alarm_name(&loaded.env, &format!("billing-{short}")),
        "region": BILLING_REGION,
        "namespace": "AWS/Billing",
        "metric": "EstimatedCharges",
        "dimensions": {"Currency": "USD"},
        "statistic": "Maximum",
        "extended_statistic": null,
        "period": 21_600,
        "threshold": b.above_usd,
        "comparison": "GreaterThanThreshold",
        "evaluation_periods": 1,
        "datapoints": 1,
        "treat_missing_data": "notBreaching",
        "description": format!("poactl {}: estimated AWS charges above {} USD this month", loaded.env, b.above_usd),
        "alarm_actions": sorted(&b.notify),
        "ok_actions": [],
        "actions_enabled": true,
        "tags": all_tags(loaded, &Default::default(), &address),
    });
    Desired::new(address, attrs)
}

fn normalize(a: &MetricAlarm, tags: &BTreeMap<String, String>, region: &str) -> Value {
    let dims: BTreeMap<String, String> =
        a.dimensions().iter().map(|d| (d.name().unwrap_or("").to_string(), d.value().unwrap_or("").to_string())).collect();
    json!({
        "name": a.alarm_name(),
        "region": region,
        "namespace": a.namespace(),
        "metric": a.metric_name(),
        "dimensions": dims,
        "statistic": a.statistic().map(|s| s.as_str()),
        "extended_statistic": a.extended_statistic(),
        "period": a.period(),
        "threshold": a.threshold(),
        "comparison": a.comparison_operator().map(|c| c.as_str()),
        "evaluation_periods": a.evaluation_periods(),
        "datapoints": a.datapoints_to_alarm().or(a.evaluation_periods()),
        "treat_missing_data": a.treat_missing_data().unwrap_or("missing"),
        "description": a.alarm_description().unwrap_or(""),
        "alarm_actions": sorted(a.alarm_actions()),
        "ok_actions": sorted(a.ok_actions()),
        "actions_enabled": a.actions_enabled().unwrap_or(true),
        "tags": tags,
    })
}

impl AlarmProvider {
    /// The environment's alarms in a region (DescribeAlarms by the env prefix: the truth about
    /// what exists), each with its tags from the tagging index when it is there. Read once per
    /// run and region; the index is read beside the alarms.
    async fn listed(&self, ctx: &Ctx<'_>, region: &str) -> Result<Listed> {
        let env = ctx.env;
        let cell = self.listed.0.lock().unwrap_or_else(|e| e.into_inner()).entry(region.to_string()).or_default().clone();
        let read = || async {
            let cw = self.aws.cloudwatch(region).await;
            let describe = async {
                let mut alarms = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let out = cw
                        .describe_alarms()
                        .alarm_name_prefix(format!("{env}-"))
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| sdk_error("DescribeAlarms", e))?;
                    alarms.extend(out.metric_alarms().iter().cloned());
                    match out.next_token() {
                        Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.to_string()),
                        _ => break,
                    }
                }
                Ok::<_, ProviderError>(alarms)
            };
            let (alarms, index) = tokio::join!(describe, self.aws.tag_index(region, "cloudwatch:alarm", env, ctx.progress));
            let with_tags: Vec<(MetricAlarm, Option<Tags>)> = alarms?
                .into_iter()
                .map(|a| {
                    let indexed = index.as_ref().and_then(|i| i.get(a.alarm_arn().unwrap_or(""))).cloned();
                    (a, indexed)
                })
                .collect();
            Ok::<Listed, ProviderError>(Arc::new(with_tags))
        };
        cell.get_or_try_init(read).await.cloned()
    }

    /// Billing alarms share the env prefix: each kind keeps to its own.
    fn mine(&self, env: &str, a: &MetricAlarm) -> bool {
        (self.kind == Kind::BillingAlarm) == a.alarm_name().unwrap_or("").starts_with(&format!("{env}-billing-"))
    }

    /// An alarm's own tags (ListTagsForResource), once per run.
    async fn direct_tags(&self, region: &str, arn: &str) -> Result<Tags> {
        let cell = self.direct.lock().unwrap_or_else(|e| e.into_inner()).entry(arn.to_string()).or_default().clone();
        cell.get_or_try_init(|| async {
            let cw = self.aws.cloudwatch(region).await;
            let tags = cw
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("ListTagsForResource {arn}"), e))?;
            Ok::<_, ProviderError>(
                tags.tags().iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect(),
            )
        })
        .await
        .cloned()
    }

    /// The tags to plan from: the index's when they are what `wanted` says (nothing to change),
    /// else the alarm's own, so drift is always confirmed at the source.
    async fn tags_of(&self, ctx: &Ctx<'_>, region: &str, a: &MetricAlarm, indexed: &Option<Tags>, wanted: Option<&Value>) -> Result<Tags> {
        if let (Some(tags), Some(wanted)) = (indexed, wanted)
            && tagging::settles(tags, wanted, |k| !crate::providers::foreign_tag(k, ctx.loaded))
        {
            return Ok(tags.clone());
        }
        self.direct_tags(region, a.alarm_arn().unwrap_or("")).await
    }

    fn observed(&self, env: &str, address: &Address, a: &MetricAlarm, tags: &BTreeMap<String, String>, region: &str) -> Observed {
        let name = a.alarm_name().unwrap_or("").to_string();
        let ownership = ownership_from_tags(tags, env, address);
        Observed {
            id: name.clone(),
            attrs: normalize(a, tags, region),
            outputs: Outputs::from([
                ("arn".to_string(), a.alarm_arn().unwrap_or("").to_string()),
                ("name".to_string(), name.clone()),
                ("description".to_string(), format!("alarm {name}")),
            ]),
            ownership,
            handle: Value::Null,
        }
    }

    async fn put(&self, d: &Desired, tags_on_create: bool) -> Result<()> {
        let a = &d.attrs;
        let cw = self.aws.cloudwatch(&self.region_of(a)).await;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().map(|x| x.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
        };
        let dims: Vec<Dimension> = a["dimensions"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| Dimension::builder().name(k).value(v.as_str().unwrap_or("")).build()).collect())
            .unwrap_or_default();
        let mut req = cw
            .put_metric_alarm()
            .alarm_name(a["name"].as_str().unwrap_or_default())
            .alarm_description(a["description"].as_str().unwrap_or_default())
            .namespace(a["namespace"].as_str().unwrap_or_default())
            .metric_name(a["metric"].as_str().unwrap_or_default())
            .set_dimensions(Some(dims))
            .period(a["period"].as_i64().unwrap_or(300) as i32)
            .threshold(a["threshold"].as_f64().unwrap_or(0.0))
            .comparison_operator(ComparisonOperator::from(a["comparison"].as_str().unwrap_or("GreaterThanThreshold")))
            .evaluation_periods(a["evaluation_periods"].as_i64().unwrap_or(1) as i32)
            .datapoints_to_alarm(a["datapoints"].as_i64().unwrap_or(1) as i32)
            .treat_missing_data(a["treat_missing_data"].as_str().unwrap_or("missing"))
            .actions_enabled(a["actions_enabled"].as_bool().unwrap_or(true))
            .set_alarm_actions(Some(strings(&a["alarm_actions"])))
            .set_ok_actions(Some(strings(&a["ok_actions"])));
        req = match (a["statistic"].as_str(), a["extended_statistic"].as_str()) {
            (Some(s), _) => req.statistic(Statistic::from(s)),
            (None, Some(e)) => req.extended_statistic(e),
            _ => req.statistic(Statistic::Average),
        };
        if tags_on_create {
            let tags: Vec<Tag> = a["tags"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| Tag::builder().key(k).value(v.as_str().unwrap_or("")).build()).collect())
                .unwrap_or_default();
            req = req.set_tags(Some(tags));
        }
        req.send().await.map_err(|e| sdk_error(&format!("PutMetricAlarm {}", a["name"].as_str().unwrap_or_default()), e))?;
        Ok(())
    }

    async fn arn_of(&self, name: &str, region: &str) -> Result<String> {
        let cw = self.aws.cloudwatch(region).await;
        let out = cw.describe_alarms().alarm_names(name).send().await.map_err(|e| sdk_error("DescribeAlarms", e))?;
        Ok(out.metric_alarms().first().and_then(|a| a.alarm_arn()).unwrap_or("").to_string())
    }
}

#[async_trait]
impl Provider for AlarmProvider {
    fn kind(&self) -> Kind {
        self.kind
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// An alarm cannot move between regions: it is made anew where its metric lives.
    fn replace_paths(&self) -> &'static [&'static str] {
        &["region"]
    }

    /// Tags and dimensions are whole maps: one removed from the spec is removed live.
    fn closed_maps(&self) -> &'static [&'static str] {
        &["tags", "dimensions"]
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let name = d.attrs["name"].as_str().unwrap_or_default();
        let region = self.region_of(&d.attrs);
        let listed = self.listed(ctx, &region).await?;
        let Some((a, indexed)) = listed.iter().find(|(a, _)| a.alarm_name() == Some(name) && self.mine(ctx.env, a)) else {
            return Ok(None);
        };
        let tags = self.tags_of(ctx, &region, a, indexed, Some(&d.attrs["tags"])).await?;
        Ok(Some(self.observed(ctx.env, &d.address, a, &tags, &region)))
    }

    /// The environment's alarms in every region the spec's alarms use.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let prefix = self.prefix(ctx.env);
        let mut out = Vec::new();
        // Declared alarms are the observe step's; the others are read at the source (an index
        // entry may be stale, and they are what --prune would delete).
        let declared: std::collections::BTreeSet<String> = match self.kind {
            Kind::BillingAlarm => ctx
                .loaded
                .spec
                .billing
                .iter()
                .flat_map(|b| b.alerts.iter())
                .map(|b| alarm_name(ctx.env, &format!("billing-{}", crate::spec::billing_alarm_name(b.above_usd))))
                .collect(),
            _ => ctx.loaded.spec.monitoring.iter().flat_map(|m| m.alarms.iter()).map(|a| alarm_name(ctx.env, &a.name)).collect(),
        };
        for region in self.regions(ctx.loaded) {
            let listed = self.listed(ctx, &region).await?;
            let undeclared = listed.iter().filter(|(a, _)| self.mine(ctx.env, a) && !declared.contains(a.alarm_name().unwrap_or("")));
            let region = &region;
            let read = futures::future::try_join_all(undeclared.map(|(a, _)| async move {
                let tags = self.direct_tags(region, a.alarm_arn().unwrap_or("")).await?;
                Ok::<_, ProviderError>((a, tags))
            }))
            .await?;
            for (a, tags) in read.iter().filter(|(_, tags)| crate::providers::ownership_tag(tags, "env") == Some(ctx.env)) {
                let name = a.alarm_name().unwrap_or("");
                let short = name.strip_prefix(&prefix).unwrap_or(name);
                let address = Address::new(self.kind, short);
                out.push((address.clone(), self.observed(ctx.env, &address, a, tags, region)));
            }
        }
        Ok(out)
    }

    async fn create(&self, _ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        self.put(d, true).await?;
        let name = d.attrs["name"].as_str().unwrap_or_default().to_string();
        Ok(Outputs::from([("arn".to_string(), self.arn_of(&name, &self.region_of(&d.attrs)).await?), ("name".to_string(), name)]))
    }

    async fn update(&self, _ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        if changes.iter().any(|c| !c.path.starts_with("tags")) {
            self.put(d, false).await?;
        }
        if changes.iter().any(|c| c.path.starts_with("tags")) {
            let cw = self.aws.cloudwatch(&self.region_of(&o.attrs)).await;
            let arn = o.outputs.get("arn").cloned().unwrap_or_default();
            let want: BTreeMap<String, String> = crate::providers::string_map(&d.attrs["tags"]);
            let have: BTreeMap<String, String> = crate::providers::string_map(&o.attrs["tags"]);
            let stale: Vec<String> = have.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
            if !stale.is_empty() {
                cw.untag_resource().resource_arn(&arn).set_tag_keys(Some(stale)).send().await.map_err(|e| sdk_error("UntagResource", e))?;
            }
            let tags: Vec<Tag> = want.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
            cw.tag_resource().resource_arn(&arn).set_tags(Some(tags)).send().await.map_err(|e| sdk_error("TagResource", e))?;
        }
        Ok(o.outputs.clone())
    }

    async fn delete(&self, _ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        let cw = self.aws.cloudwatch(&self.region_of(&o.attrs)).await;
        cw.delete_alarms().alarm_names(&o.id).send().await.map_err(|e| sdk_error(&format!("DeleteAlarms {}", o.id), e))?;
        Ok(())
    }
}
