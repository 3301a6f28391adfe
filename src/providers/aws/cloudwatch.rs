//! CloudWatch metric alarms (`monitoring.alarms`) and billing alarms (`billing.alerts`: an
//! `AWS/Billing EstimatedCharges` alarm in us-east-1, where AWS publishes billing metrics).
//! Alarms are named `<env>-<name>` and read with one DescribeAlarms by that prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::operation::put_metric_alarm::builders::PutMetricAlarmFluentBuilder;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// An alarm's settings: one typed shape for what the spec asks (`from_spec`, `billing`), what
/// CloudWatch reports (`from_api`) and what PutMetricAlarm is sent (`request`). The engine
/// diffs it as JSON (`Desired.attrs`, `Observed.attrs`), so the field names are the plan's
/// attribute paths; each default is stated once, where its side is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AlarmAttrs {
    name: String,
    region: String,
    namespace: String,
    metric: String,
    dimensions: BTreeMap<String, String>,
    /// One of the five simple statistics, or else `extended_statistic` (a percentile such as
    /// `p99`): PutMetricAlarm takes exactly one of the two.
    statistic: Option<String>,
    extended_statistic: Option<String>,
    period: i64,
    threshold: f64,
    comparison: String,
    evaluation_periods: i64,
    datapoints: i64,
    treat_missing_data: String,
    description: String,
    alarm_actions: Vec<String>,
    ok_actions: Vec<String>,
    actions_enabled: bool,
    tags: BTreeMap<String, String>,
}

/// The statistics PutMetricAlarm takes as `Statistic`; anything else is an `ExtendedStatistic`
/// (CloudWatch API reference, PutMetricAlarm).
const SIMPLE_STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

impl AlarmAttrs {
    fn from_spec(loaded: &LoadedSpec, a: &AlarmSpec) -> AlarmAttrs {
        let address = Address::new(Kind::Alarm, &a.name);
        let simple = SIMPLE_STATISTICS.contains(&a.statistic.as_str());
        let (threshold, comparison) = match (a.above, a.below) {
            (None, Some(v)) => (v, "LessThanThreshold"),
            // Validation asks for exactly one of `above` and `below`.
            (v, _) => (v.unwrap_or(0.0), "GreaterThanThreshold"),
        };
        AlarmAttrs {
            name: alarm_name(&loaded.env, &a.name),
            region: loaded.spec.alarm_region(a),
            namespace: a.metric.namespace.clone(),
            metric: a.metric.name.clone(),
            dimensions: a.metric.dimensions.clone(),
            statistic: simple.then(|| a.statistic.clone()),
            extended_statistic: (!simple).then(|| a.statistic.clone()),
            period: a.period.seconds as i64,
            threshold,
            comparison: comparison.to_string(),
            evaluation_periods: a.evaluation_periods.into(),
            datapoints: a.datapoints.unwrap_or(a.evaluation_periods).into(),
            treat_missing_data: a.treat_missing_data.clone(),
            description: a.description.clone().unwrap_or_default(),
            alarm_actions: sorted(&a.notify),
            ok_actions: sorted(&a.ok_notify),
            actions_enabled: true,
            tags: all_tags(loaded, &Default::default(), &address),
        }
    }

    /// A billing alert: the maximum of `AWS/Billing EstimatedCharges` (USD) over 6 hours, the
    /// metric AWS publishes a few times a day in us-east-1 (CloudWatch User Guide, "Create a
    /// billing alarm").
    fn billing(loaded: &LoadedSpec, b: &BillingAlertSpec, address: &Address) -> AlarmAttrs {
        AlarmAttrs {
            name: alarm_name(&loaded.env, &format!("billing-{}", address.name)),
            region: BILLING_REGION.to_string(),
            namespace: "AWS/Billing".to_string(),
            metric: "EstimatedCharges".to_string(),
            dimensions: BTreeMap::from([("Currency".to_string(), "USD".to_string())]),
            statistic: Some("Maximum".to_string()),
            extended_statistic: None,
            period: 21_600,
            threshold: b.above_usd,
            comparison: "GreaterThanThreshold".to_string(),
            evaluation_periods: 1,
            datapoints: 1,
            treat_missing_data: "notBreaching".to_string(),
            description: format!("poactl {}: estimated AWS charges above {} USD this month", loaded.env, b.above_usd),
            alarm_actions: sorted(&b.notify),
            ok_actions: Vec::new(),
            actions_enabled: true,
            tags: all_tags(loaded, &Default::default(), address),
        }
    }

    /// What CloudWatch reports, with its defaults for what it leaves out (PutMetricAlarm:
    /// DatapointsToAlarm defaults to EvaluationPeriods, TreatMissingData to `missing`,
    /// ActionsEnabled to true). A metric-math alarm has no namespace or metric of its own:
    /// those read as empty, so an alarm of that shape under one of our names shows as drift.
    fn from_api(a: &MetricAlarm, tags: &BTreeMap<String, String>, region: &str) -> AlarmAttrs {
        AlarmAttrs {
            name: a.alarm_name().unwrap_or_default().to_string(),
            region: region.to_string(),
            namespace: a.namespace().unwrap_or_default().to_string(),
            metric: a.metric_name().unwrap_or_default().to_string(),
            dimensions: a.dimensions().iter().map(|d| (d.name().unwrap_or("").to_string(), d.value().unwrap_or("").to_string())).collect(),
            statistic: a.statistic().map(|s| s.as_str().to_string()),
            extended_statistic: a.extended_statistic().map(String::from),
            period: a.period().unwrap_or_default().into(),
            threshold: a.threshold().unwrap_or_default(),
            comparison: a.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
            evaluation_periods: a.evaluation_periods().unwrap_or_default().into(),
            datapoints: a.datapoints_to_alarm().or(a.evaluation_periods()).unwrap_or_default().into(),
            treat_missing_data: a.treat_missing_data().unwrap_or("missing").to_string(),
            description: a.alarm_description().unwrap_or_default().to_string(),
            alarm_actions: sorted(a.alarm_actions()),
            ok_actions: sorted(a.ok_actions()),
            actions_enabled: a.actions_enabled().unwrap_or(true),
            tags: tags.clone(),
        }
    }

    /// The desired alarm, from its `Desired.attrs` once the engine has resolved its references.
    fn of(d: &Desired) -> Result<AlarmAttrs> {
        serde_json::from_value(d.attrs.clone())
            .map_err(|e| ProviderError::Config(format!("{}: the alarm's settings do not read back ({e}); this is a poactl bug", d.address)))
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// PutMetricAlarm replaces the whole alarm: every setting is sent. Tags are sent only on
    /// create; an existing alarm's tags change through TagResource/UntagResource.
    fn request(&self, req: PutMetricAlarmFluentBuilder, with_tags: bool) -> Result<PutMetricAlarmFluentBuilder> {
        let int = |field: &str, v: i64| {
            i32::try_from(v).map_err(|_| ProviderError::Refused(format!("alarm {}: {field} {v} is out of CloudWatch's range", self.name)))
        };
        let mut req = req
            .alarm_name(&self.name)
            .alarm_description(&self.description)
            .namespace(&self.namespace)
            .metric_name(&self.metric)
            .set_dimensions(Some(self.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect()))
            .period(int("period", self.period)?)
            .threshold(self.threshold)
            .comparison_operator(ComparisonOperator::from(self.comparison.as_str()))
            .evaluation_periods(int("evaluation_periods", self.evaluation_periods)?)
            .datapoints_to_alarm(int("datapoints", self.datapoints)?)
            .treat_missing_data(&self.treat_missing_data)
            .actions_enabled(self.actions_enabled)
            .set_alarm_actions(Some(self.alarm_actions.clone()))
            .set_ok_actions(Some(self.ok_actions.clone()));
        req = match (&self.statistic, &self.extended_statistic) {
            (Some(s), _) => req.statistic(Statistic::from(s.as_str())),
            (None, Some(e)) => req.extended_statistic(e),
            (None, None) => req,
        };
        if with_tags {
            req = req.set_tags(Some(self.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()));
        }
        Ok(req)
    }
}

pub fn desired_alarm(loaded: &LoadedSpec, a: &AlarmSpec, address: Address) -> Desired {
    Desired::new(address, AlarmAttrs::from_spec(loaded, a).to_value())
}

/// The alarm on an uptime check: Route 53's `HealthCheckStatus` (1 healthy, 0 not) is below 1
/// for a minute, in us-east-1, the only region Route 53 publishes it in (Route 53 Developer
/// Guide, "Monitoring health checks using CloudWatch"). No data is a failure: Route 53
/// publishes every minute while the check runs.
pub fn uptime_alarm(u: &crate::spec::model::UptimeSpec) -> AlarmSpec {
    AlarmSpec {
        name: u.alarm_name(),
        metric: crate::spec::model::MetricSpec {
            namespace: "AWS/Route53".into(),
            name: "HealthCheckStatus".into(),
            dimensions: BTreeMap::from([("HealthCheckId".to_string(), format!("${{monitoring.uptime.{}.id}}", u.name))]),
        },
        statistic: "Minimum".into(),
        period: crate::spec::model::Duration { seconds: 60, text: "1m".into() },
        above: None,
        below: Some(1.0),
        evaluation_periods: 1,
        datapoints: None,
        treat_missing_data: "breaching".into(),
        description: Some(format!("poactl uptime check {}: {}", u.name, u.url)),
        notify: u.notify.clone(),
        ok_notify: u.notify.clone(),
        region: Some(BILLING_REGION.to_string()),
    }
}

pub fn desired_billing(loaded: &LoadedSpec, b: &BillingAlertSpec, address: Address) -> Desired {
    let attrs = AlarmAttrs::billing(loaded, b, &address).to_value();
    Desired::new(address, attrs)
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
            attrs: AlarmAttrs::from_api(a, tags, region).to_value(),
            outputs: Outputs::from([
                ("arn".to_string(), a.alarm_arn().unwrap_or("").to_string()),
                ("name".to_string(), name.clone()),
                ("description".to_string(), format!("alarm {name}")),
            ]),
            ownership,
            handle: Value::Null,
        }
    }

    async fn put(&self, alarm: &AlarmAttrs, tags_on_create: bool) -> Result<()> {
        let cw = self.aws.cloudwatch(&alarm.region).await;
        let req = alarm.request(cw.put_metric_alarm(), tags_on_create)?;
        req.send().await.map_err(|e| sdk_error(&format!("PutMetricAlarm {}", alarm.name), e))?;
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
        let AlarmAttrs { name, region, .. } = AlarmAttrs::of(d)?;
        let listed = self.listed(ctx, &region).await?;
        let Some((a, indexed)) = listed.iter().find(|(a, _)| a.alarm_name() == Some(name.as_str()) && self.mine(ctx.env, a)) else {
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
        let alarm = AlarmAttrs::of(d)?;
        self.put(&alarm, true).await?;
        Ok(Outputs::from([("arn".to_string(), self.arn_of(&alarm.name, &alarm.region).await?), ("name".to_string(), alarm.name)]))
    }

    async fn update(&self, _ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let alarm = AlarmAttrs::of(d)?;
        if changes.iter().any(|c| !c.path.starts_with("tags")) {
            self.put(&alarm, false).await?;
        }
        if changes.iter().any(|c| c.path.starts_with("tags")) {
            let cw = self.aws.cloudwatch(&self.region_of(&o.attrs)).await;
            let arn = o.outputs.get("arn").cloned().unwrap_or_default();
            let want = &alarm.tags;
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

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::operation::put_metric_alarm::builders::PutMetricAlarmInputBuilder;
    use aws_sdk_cloudwatch::types::MetricAlarm;

    use super::*;

    /// A check on the request a spec produces.
    type RequestSays = fn(&PutMetricAlarmInputBuilder) -> bool;

    fn loaded(yaml: &str) -> LoadedSpec {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test.yaml"), yaml).unwrap();
        crate::spec::load(dir.path(), "test", &|_| None).unwrap()
    }

    /// What CloudWatch stores from a PutMetricAlarm and DescribeAlarms then reports: the
    /// request's fields as they were sent (CloudWatch API reference, MetricAlarm). Fields the
    /// request leaves out stay out, so `from_api` must supply CloudWatch's defaults.
    fn stored(req: &PutMetricAlarmFluentBuilder) -> MetricAlarm {
        let i = req.as_input();
        MetricAlarm::builder()
            .set_alarm_name(i.get_alarm_name().clone())
            .set_alarm_description(i.get_alarm_description().clone())
            .set_namespace(i.get_namespace().clone())
            .set_metric_name(i.get_metric_name().clone())
            .set_dimensions(i.get_dimensions().clone())
            .set_statistic(i.get_statistic().clone())
            .set_extended_statistic(i.get_extended_statistic().clone())
            .set_period(*i.get_period())
            .set_threshold(*i.get_threshold())
            .set_comparison_operator(i.get_comparison_operator().clone())
            .set_evaluation_periods(*i.get_evaluation_periods())
            .set_datapoints_to_alarm(*i.get_datapoints_to_alarm())
            .set_treat_missing_data(i.get_treat_missing_data().clone())
            .set_actions_enabled(*i.get_actions_enabled())
            .set_alarm_actions(i.get_alarm_actions().clone())
            .set_ok_actions(i.get_ok_actions().clone())
            .build()
    }

    fn client() -> aws_sdk_cloudwatch::Client {
        let conf = aws_sdk_cloudwatch::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_cloudwatch::config::Region::new("eu-west-1"))
            .build();
        aws_sdk_cloudwatch::Client::from_conf(conf)
    }

    /// The spec's alarm, sent as PutMetricAlarm and read back, is the spec's alarm: the three
    /// conversions agree, so a second plan finds nothing to change.
    #[test]
    fn an_alarm_reads_back_as_it_was_asked() {
        // (alarm YAML, what the request must say)
        let table: [(&str, RequestSays); 4] = [
            ("{ name: cpu, metric: { namespace: AWS/EC2, name: CPUUtilization }, above: 80 }", |i| {
                i.get_statistic() == &Some(Statistic::Average)
                    && i.get_period() == &Some(300)
                    && i.get_treat_missing_data().as_deref() == Some("missing")
            }),
            (
                "{ name: p99, metric: { namespace: AWS/ApiGateway, name: Latency, dimensions: { ApiName: a } }, statistic: p99, below: 1.5, for: 5, datapoints: 3 }",
                |i| {
                    i.get_statistic().is_none()
                        && i.get_extended_statistic().as_deref() == Some("p99")
                        && i.get_comparison_operator() == &Some(ComparisonOperator::LessThanThreshold)
                        && i.get_datapoints_to_alarm() == &Some(3)
                        && i.get_evaluation_periods() == &Some(5)
                },
            ),
            (
                "{ name: big, metric: { namespace: AWS/S3, name: BucketSizeBytes }, period: 1d, above: 5e11, treat_missing_data: notBreaching, notify: [arn:aws:sns:eu-west-1:123456789012:b, arn:aws:sns:eu-west-1:123456789012:a], ok_notify: [arn:aws:sns:eu-west-1:123456789012:c] }",
                |i| {
                    i.get_period() == &Some(86_400)
                        && i.get_threshold() == &Some(5e11)
                        && i.get_alarm_actions()
                            == &Some(vec![
                                "arn:aws:sns:eu-west-1:123456789012:a".to_string(),
                                "arn:aws:sns:eu-west-1:123456789012:b".to_string(),
                            ])
                        && i.get_ok_actions() == &Some(vec!["arn:aws:sns:eu-west-1:123456789012:c".to_string()])
                },
            ),
            ("{ name: doc, metric: { namespace: X, name: Y }, above: 1, description: \"what to do\" }", |i| {
                i.get_alarm_description().as_deref() == Some("what to do")
                    && i.get_tags().as_ref().is_some_and(|t| t.iter().any(|t| t.key() == Some("poactl-env")))
            }),
        ];
        for (alarm, request_says) in table {
            let loaded = loaded(&format!("environment: test\naws: {{ region: eu-west-1 }}\nmonitoring:\n  alarms:\n    - {alarm}\n"));
            let desired = crate::providers::desired(&loaded).remove(0);
            let asked = AlarmAttrs::of(&desired).unwrap();
            let req = asked.request(client().put_metric_alarm(), true).unwrap();
            assert!(request_says(req.as_input()), "{alarm}: {:?}", req.as_input());
            let read = AlarmAttrs::from_api(&stored(&req), &asked.tags, &asked.region);
            assert_eq!(read, asked, "{alarm}");
        }
    }

    #[test]
    fn a_billing_alert_reads_back_as_it_was_asked() {
        let loaded =
            loaded("environment: test\nbilling:\n  alerts:\n    - { above_usd: 100, notify: [arn:aws:sns:us-east-1:123456789012:b] }\n");
        let desired = crate::providers::desired(&loaded).remove(0);
        let asked = AlarmAttrs::of(&desired).unwrap();
        assert_eq!((asked.region.as_str(), asked.namespace.as_str(), asked.period), (BILLING_REGION, "AWS/Billing", 21_600));
        let req = asked.request(client().put_metric_alarm(), false).unwrap();
        assert!(req.as_input().get_tags().is_none(), "tags go through TagResource on an update");
        assert_eq!(AlarmAttrs::from_api(&stored(&req), &asked.tags, &asked.region), asked);
    }

    #[test]
    fn cloudwatch_defaults_fill_what_it_leaves_out() {
        let bare = MetricAlarm::builder().alarm_name("test-x").evaluation_periods(4).build();
        let read = AlarmAttrs::from_api(&bare, &BTreeMap::new(), "eu-west-1");
        assert_eq!((read.datapoints, read.treat_missing_data.as_str(), read.actions_enabled), (4, "missing", true));
    }
}
