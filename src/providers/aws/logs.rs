//! CloudWatch Logs groups: retention, an optional KMS key, metric filters whose metrics alarms
//! can watch, and the ownership tags.
//!
//! What the real service does that this relies on (CloudWatch Logs API reference):
//! - `CreateLogGroup` takes `tags` and `kmsKeyId`, so a group is never untagged; it answers
//!   ResourceAlreadyExistsException for a name in use, which is how a create whose answer was
//!   lost is recognised (the group is read again);
//! - a new group keeps its events forever ("By default, log data is stored in CloudWatch Logs
//!   indefinitely", PutRetentionPolicy); `retentionInDays` takes 1, 3, 5, 7, 14, 30, 60, 90,
//!   120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653, which
//!   `validate` checks; `DeleteRetentionPolicy` goes back to forever;
//! - a metric filter is named within its group and `PutMetricFilter` replaces one of the same
//!   name whole; a group has at most 100 of them (the quota page);
//! - `DescribeLogGroups` gives each group's `arn` with a trailing `:*` and `logGroupArn`
//!   without it; the tagging actions (`ListTagsForResource`, `TagResource`) take the latter;
//! - `AssociateKmsKey` / `DisassociateKmsKey` change the key of an existing group.
//!
//! What moto does not copy: it has no AssociateKmsKey (a key change is not exercised against
//! it) and never ingests events; the tests assert the requests and the stored settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::Aws;
use super::kms::{Json, refusal_code};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::LogGroupSpec;

/// CloudWatch Logs' control plane allows a few requests a second per action.
const LANE: Lane = Lane { service: "logs", limit: 4 };

pub struct LogGroupProvider(pub Arc<Aws>);

pub fn region_of(loaded: &LoadedSpec, g: &LogGroupSpec) -> String {
    g.region.clone().unwrap_or_else(|| loaded.spec.aws_region())
}

pub fn desired(loaded: &LoadedSpec, g: &LogGroupSpec, address: Address) -> Desired {
    let filters: serde_json::Map<String, Value> = g
        .metric_filters
        .iter()
        .map(|f| {
            let (namespace, metric) = f.metric_parts().unwrap_or(("", ""));
            (f.name.clone(), json!({"pattern": f.pattern, "namespace": namespace, "metric": metric, "value": f.value.clone().unwrap_or_else(|| "1".into())}))
        })
        .collect();
    let attrs = json!({
        "name": g.name,
        "region": region_of(loaded, g),
        "retention_days": g.retention.as_ref().and_then(|r| r.whole_days()),
        "kms_key": g.kms_key,
        "metric_filters": filters,
        "tags": all_tags(loaded, &BTreeMap::new(), &address),
    });
    Desired::new(address, attrs)
}

impl LogGroupProvider {
    fn client(&self, region: &str) -> Json {
        self.0.logs(region)
    }

    /// The group of exactly this name, as DescribeLogGroups lists it.
    async fn describe(logs: &Json, name: &str) -> Result<Option<Value>> {
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"logGroupNamePrefix": name});
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let page = logs.call("DescribeLogGroups", &body).await?;
            if let Some(g) = page["logGroups"].as_array().into_iter().flatten().find(|g| g["logGroupName"] == name) {
                return Ok(Some(g.clone()));
            }
            match page["nextToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }

    async fn read(&self, ctx: &Ctx<'_>, address: &Address, region: &str, g: &Value) -> Result<Observed> {
        let logs = self.client(region);
        let name = g["logGroupName"].as_str().unwrap_or_default().to_string();
        let arn = group_arn(g);
        let (tags_ask, filters_ask) = (json!({"resourceArn": arn}), json!({"logGroupName": name}));
        let (tags, filters) =
            tokio::try_join!(logs.call("ListTagsForResource", &tags_ask), logs.call("DescribeMetricFilters", &filters_ask))?;
        let tags: BTreeMap<String, String> = crate::providers::string_map(&tags["tags"]);
        let filters: serde_json::Map<String, Value> = filters["metricFilters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let t = &f["metricTransformations"][0];
                (
                    f["filterName"].as_str().unwrap_or_default().to_string(),
                    json!({"pattern": f["filterPattern"], "namespace": t["metricNamespace"], "metric": t["metricName"], "value": t["metricValue"]}),
                )
            })
            .collect();
        let mut attrs = json!({
            "name": name,
            "region": region,
            "retention_days": g.get("retentionInDays").filter(|v| !v.is_null()),
            "kms_key": g.get("kmsKeyId").filter(|v| v.as_str().is_some_and(|s| !s.is_empty())),
            "metric_filters": filters,
            "tags": tags,
        });
        crate::providers::keep_owned_tags(&mut attrs, ctx.loaded);
        let stored = g["storedBytes"].as_u64().unwrap_or(0);
        Ok(Observed {
            id: name.clone(),
            attrs,
            outputs: Outputs::from([
                ("arn".to_string(), arn.clone()),
                ("name".to_string(), name.clone()),
                ("description".to_string(), format!("log group {name} ({stored} bytes stored)")),
            ]),
            ownership: ownership_from_tags(&tags, ctx.env, address),
            handle: json!({"arn": arn}),
        })
    }

    async fn put_filter(logs: &Json, group: &str, name: &str, f: &Value) -> Result<()> {
        let mut transformation = json!({"metricName": f["metric"], "metricNamespace": f["namespace"], "metricValue": f["value"]});
        // A count filter reports 0 when nothing matches, so its alarm sees data, not a gap
        // (MetricTransformation.defaultValue). A value taken from the event (`$.field`) has
        // no such default.
        if f["value"].as_str().is_some_and(|v| !v.starts_with('$')) {
            transformation["defaultValue"] = json!(0.0);
        }
        logs.call(
            "PutMetricFilter",
            &json!({"logGroupName": group, "filterName": name, "filterPattern": f["pattern"], "metricTransformations": [transformation]}),
        )
        .await?;
        Ok(())
    }

    async fn set_filters(logs: &Json, group: &str, want: &Value, have: &Value) -> Result<()> {
        let empty = serde_json::Map::new();
        let want = want.as_object().unwrap_or(&empty);
        let have = have.as_object().unwrap_or(&empty);
        for (name, f) in want.iter().filter(|(n, f)| have.get(*n) != Some(*f)) {
            Self::put_filter(logs, group, name, f).await?;
        }
        for name in have.keys().filter(|n| !want.contains_key(*n)) {
            match logs.call("DeleteMetricFilter", &json!({"logGroupName": group, "filterName": name})).await {
                Ok(_) => {}
                Err(e) if refusal_code(&e) == Some("ResourceNotFoundException") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn set_retention(logs: &Json, group: &str, days: &Value) -> Result<()> {
        match days.as_i64() {
            Some(d) => logs.call("PutRetentionPolicy", &json!({"logGroupName": group, "retentionInDays": d})).await?,
            None => logs.call("DeleteRetentionPolicy", &json!({"logGroupName": group})).await?,
        };
        Ok(())
    }
}

/// The group's ARN without the `:*` DescribeLogGroups puts after it.
fn group_arn(g: &Value) -> String {
    g["logGroupArn"].as_str().map(String::from).unwrap_or_else(|| g["arn"].as_str().unwrap_or_default().trim_end_matches(":*").to_string())
}

#[async_trait]
impl Provider for LogGroupProvider {
    fn kind(&self) -> Kind {
        Kind::LogGroup
    }

    fn lane(&self) -> Lane {
        LANE
    }

    fn replace_paths(&self) -> &'static [&'static str] {
        &["name", "region"]
    }

    fn closed_maps(&self) -> &'static [&'static str] {
        &["tags", "metric_filters"]
    }

    /// Finding the environment's groups reads every group's tags: only `--prune` and
    /// `destroy` do it.
    fn discover_on_demand(&self) -> bool {
        true
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let region = d.attrs["region"].as_str().unwrap_or_default();
        let logs = self.client(region);
        match Self::describe(&logs, d.attrs["name"].as_str().unwrap_or_default()).await? {
            Some(g) => Ok(Some(self.read(ctx, &d.address, region, &g).await?)),
            None => Ok(None),
        }
    }

    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let spec = &ctx.loaded.spec;
        let groups: Vec<&LogGroupSpec> = spec.monitoring.iter().flat_map(|m| m.log_groups.iter()).collect();
        let mut regions: Vec<String> = groups.iter().map(|g| region_of(ctx.loaded, g)).collect();
        regions.push(spec.aws_region());
        regions.sort();
        regions.dedup();
        let mut out = Vec::new();
        for region in regions {
            let logs = self.client(&region);
            let mut token: Option<String> = None;
            loop {
                let body = match &token {
                    Some(t) => json!({"nextToken": t}),
                    None => json!({}),
                };
                let page = logs.call("DescribeLogGroups", &body).await?;
                for g in page["logGroups"].as_array().into_iter().flatten() {
                    let name = g["logGroupName"].as_str().unwrap_or_default();
                    if groups.iter().any(|x| x.name == name) {
                        continue;
                    }
                    let tags = crate::providers::string_map(
                        &logs.call("ListTagsForResource", &json!({"resourceArn": group_arn(g)})).await?["tags"],
                    );
                    if crate::providers::managed_in_env(&tags, ctx.env) {
                        let address = Address::new(Kind::LogGroup, name);
                        let o = self.read(ctx, &address, &region, g).await?;
                        out.push((address, o));
                    }
                }
                match page["nextToken"].as_str() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let a = &d.attrs;
        let region = a["region"].as_str().unwrap_or_default();
        let name = a["name"].as_str().unwrap_or_default();
        let logs = self.client(region);
        let mut body = json!({"logGroupName": name, "tags": a["tags"]});
        if let Some(k) = a["kms_key"].as_str() {
            body["kmsKeyId"] = json!(k);
        }
        match logs.call("CreateLogGroup", &body).await {
            Ok(_) => {}
            // Either a create sent again after a lost answer (the group is ours: the
            // settings below are written whatever they are), or someone made it meanwhile.
            Err(e) if refusal_code(&e) == Some("ResourceAlreadyExistsException") => {
                let live = match Self::describe(&logs, name).await? {
                    Some(g) => Some(self.read(ctx, &d.address, region, &g).await?),
                    None => None,
                };
                if !live.is_some_and(|o| o.ownership == crate::providers::Ownership::Owned) {
                    return Err(ProviderError::Refused(format!(
                        "a log group named {name} already exists without this environment's tags: adopt it with `apply --adopt`, or pick another name"
                    )));
                }
            }
            Err(e) => return Err(e),
        }
        if !a["retention_days"].is_null() {
            Self::set_retention(&logs, name, &a["retention_days"]).await?;
        }
        Self::set_filters(&logs, name, &a["metric_filters"], &json!({})).await?;
        let g =
            Self::describe(&logs, name).await?.ok_or_else(|| ProviderError::Propagating(format!("log group {name} is not listed yet")))?;
        Ok(self.read(ctx, &d.address, region, &g).await?.outputs)
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let a = &d.attrs;
        let region = a["region"].as_str().unwrap_or_default();
        let name = o.id.as_str();
        let logs = self.client(region);
        let touched = |attr: &str| crate::plan::touches(changes, attr);
        let arn = o.handle["arn"].as_str().unwrap_or_default();
        if touched("tags") {
            let (add, remove) = crate::providers::tag_changes(&a["tags"], &o.attrs["tags"]);
            if !add.is_empty() {
                logs.call("TagResource", &json!({"resourceArn": arn, "tags": add})).await?;
            }
            if !remove.is_empty() {
                logs.call("UntagResource", &json!({"resourceArn": arn, "tagKeys": remove})).await?;
            }
        }
        if touched("retention_days") {
            Self::set_retention(&logs, name, &a["retention_days"]).await?;
        }
        if touched("kms_key") {
            match a["kms_key"].as_str() {
                Some(k) => logs.call("AssociateKmsKey", &json!({"logGroupName": name, "kmsKeyId": k})).await?,
                None => logs.call("DisassociateKmsKey", &json!({"logGroupName": name})).await?,
            };
        }
        if touched("metric_filters") {
            Self::set_filters(&logs, name, &a["metric_filters"], &o.attrs["metric_filters"]).await?;
        }
        let g = Self::describe(&logs, name).await?.ok_or_else(|| ProviderError::Api(format!("log group {name} is gone")))?;
        Ok(self.read(ctx, &d.address, region, &g).await?.outputs)
    }

    async fn delete(&self, _ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        let region = o.attrs["region"].as_str().unwrap_or_default();
        match self.client(region).call("DeleteLogGroup", &json!({"logGroupName": o.id})).await {
            Ok(_) => Ok(()),
            Err(e) if refusal_code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(e),
        }
    }
}
