//! The cloud backup schedule of a dedicated cluster. It always exists once backup is on
//! (Atlas makes a default one), so "create" and "update" are the same PATCH.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::client::{
    seg,
    version::{V2023_01_01, V2024_08_05},
};
use super::{Atlas, LANE, group_id};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Ownership, Provider, Result};
use crate::resource::{Address, Kind};
use crate::spec::model::ClusterSpec;

pub struct BackupScheduleProvider(pub Arc<Atlas>);

/// How often a schedule's policy takes a snapshot, in hours: its most frequent item.
pub fn snapshot_every_hours(policy: &Value) -> Option<f64> {
    policy
        .as_array()?
        .iter()
        .filter_map(|i| {
            let n = i.get("interval").and_then(|v| v.as_f64()).unwrap_or(1.0);
            match i.get("every").and_then(|v| v.as_str())? {
                "hourly" => Some(n),
                "daily" => Some(24.0),
                "weekly" => Some(24.0 * 7.0),
                "monthly" => Some(24.0 * 31.0),
                "yearly" => Some(24.0 * 366.0),
                _ => None,
            }
        })
        .reduce(f64::min)
}

/// A live schedule's latest completed snapshot against what its policy promises.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotAge {
    /// Taken within the schedule's interval and a half.
    Recent { at: String, hours: f64 },
    /// Older than the interval and a half: the schedule is not being kept.
    Stale { at: String, hours: f64, every: f64 },
    /// No completed snapshot. `due` once the cluster is older than the interval and a half
    /// (or its age is unknown).
    None { due: bool },
}

impl SnapshotAge {
    /// What is wrong, for a person: `None` while the schedule is kept.
    pub fn problem(&self) -> Option<String> {
        match self {
            SnapshotAge::Recent { .. } | SnapshotAge::None { due: false } => None,
            SnapshotAge::Stale { at, hours, every } => Some(format!(
                "the latest completed snapshot is from {at}, {hours:.1} h ago; the schedule takes one every {every} h: see the cluster's backup page in Atlas"
            )),
            SnapshotAge::None { due: true } => {
                Some("no completed snapshot, and the schedule's first one is overdue: see the cluster's backup page in Atlas".to_string())
            }
        }
    }
}

fn hours_since(at: &str, now_ms: i64) -> Option<f64> {
    mongodb::bson::DateTime::parse_rfc3339_str(at).ok().map(|t| (now_ms - t.timestamp_millis()) as f64 / 3_600_000.0)
}

/// Half an interval of grace: Atlas starts a scheduled snapshot at its slot, and a large one
/// takes a while to complete ("Cloud Backups", snapshot scheduling).
pub fn snapshot_age(o: &Observed, now_ms: i64) -> SnapshotAge {
    let every = snapshot_every_hours(&o.attrs["policy"]);
    let late = |hours: f64| every.is_some_and(|e| hours > e * 1.5);
    match o.outputs.get("latest_snapshot_at").and_then(|at| hours_since(at, now_ms).map(|h| (at.clone(), h))) {
        Some((at, hours)) if late(hours) => SnapshotAge::Stale { at, hours, every: every.unwrap_or_default() },
        Some((at, hours)) => SnapshotAge::Recent { at, hours },
        None => SnapshotAge::None { due: o.outputs.get("cluster_created_at").and_then(|at| hours_since(at, now_ms)).is_none_or(late) },
    }
}

fn frequency_rank(f: &str) -> u8 {
    match f {
        "hourly" => 0,
        "daily" => 1,
        "weekly" => 2,
        "monthly" => 3,
        "yearly" => 4,
        _ => 5,
    }
}

fn sort_items(items: &mut [Value]) {
    items.sort_by_key(|i| (frequency_rank(i["every"].as_str().unwrap_or("")), i["interval"].as_i64().unwrap_or(0), i["keep"].to_string()));
}

pub fn desired(c: &ClusterSpec, address: Address) -> Desired {
    let backup = c.backup.clone().unwrap_or_default();
    let mut a = Map::new();
    if !backup.schedule.is_empty() {
        let mut items: Vec<Value> = backup
            .schedule
            .iter()
            .map(|p| json!({"every": p.every, "interval": p.interval, "keep": {"value": p.keep.value, "unit": p.keep.unit}}))
            .collect();
        sort_items(&mut items);
        a.insert("policy".into(), Value::Array(items));
    }
    if let Some(w) = backup.restore_window.as_ref().and_then(|w| w.whole_days()) {
        a.insert("restore_window_days".into(), json!(w));
    }
    Desired::new(address, Value::Object(a))
}

fn normalize(doc: &Value) -> Value {
    let mut items: Vec<Value> = doc
        .pointer("/policies/0/policyItems")
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .map(|i| json!({"every": i["frequencyType"], "interval": i["frequencyInterval"], "keep": {"value": i["retentionValue"], "unit": i["retentionUnit"]}}))
                .collect()
        })
        .unwrap_or_default();
    sort_items(&mut items);
    json!({"policy": items, "restore_window_days": doc.get("restoreWindowDays").cloned().unwrap_or(Value::Null)})
}

/// For each desired item, the id of the live item it stands for: the same frequency and
/// interval first, then the same frequency; each live item is used once.
fn match_item_ids(desired: &[Value], live: &[Value]) -> Vec<Option<Value>> {
    let mut used = vec![false; live.len()];
    let mut ids = vec![None; desired.len()];
    type Same = fn(&Value, &Value) -> bool;
    let passes: [Same; 2] =
        [|d, l| l["frequencyType"] == d["every"] && l["frequencyInterval"] == d["interval"], |d, l| l["frequencyType"] == d["every"]];
    for same in passes {
        for (k, d) in desired.iter().enumerate() {
            if ids[k].is_some() {
                continue;
            }
            if let Some(j) = (0..live.len()).find(|&j| !used[j] && same(d, &live[j]) && live[j].get("id").is_some()) {
                used[j] = true;
                ids[k] = live[j].get("id").cloned();
            }
        }
    }
    ids
}

fn path(group: &str, cluster: &str) -> String {
    format!("/api/atlas/v2/groups/{group}/clusters/{}/backup/schedule", seg(cluster))
}

impl BackupScheduleProvider {
    async fn write(&self, ctx: &Ctx<'_>, d: &Desired, live: Option<&Value>) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let mut body = Map::new();
        if let Some(items) = d.attrs.get("policy").and_then(|p| p.as_array()) {
            // Each item goes back with the id of the live item it changes: without the ids, Atlas
            // replaces the items and the snapshots already taken keep the old retention
            // (terraform-provider-mongodbatlas PR #1357).
            let live_items: Vec<Value> =
                live.and_then(|l| l.pointer("/policies/0/policyItems")).and_then(|v| v.as_array()).cloned().unwrap_or_default();
            let ids = match_item_ids(items, &live_items);
            let policy_items: Vec<Value> = items
                .iter()
                .zip(ids)
                .map(|(i, id)| {
                    let mut item = json!({"frequencyType": i["every"], "frequencyInterval": i["interval"], "retentionUnit": i["keep"]["unit"], "retentionValue": i["keep"]["value"]});
                    if let Some(id) = id {
                        item["id"] = id;
                    }
                    item
                })
                .collect();
            // The policy id comes from the live schedule; MongoDB's clients echo it back.
            let policy_id = live.and_then(|l| l.pointer("/policies/0/id")).cloned();
            let mut policy = json!({"policyItems": policy_items});
            if let Some(id) = policy_id {
                policy["id"] = id;
            }
            body.insert("policies".into(), json!([policy]));
        }
        if let Some(w) = d.attrs.get("restore_window_days") {
            body.insert("restoreWindowDays".into(), w.clone());
        }
        let doc = self.0.client.patch(&path(&group, &d.address.name), V2024_08_05, Value::Object(body)).await?;
        Ok(Outputs::from([("cluster".to_string(), doc.get("clusterName").and_then(|v| v.as_str()).unwrap_or(&d.address.name).to_string())]))
    }
}

#[async_trait]
impl Provider for BackupScheduleProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasBackupSchedule
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// A schedule exists only on a dedicated cluster with backup on: Atlas answers 400 for any
    /// other, so it is read only then, and is "to be created" (after the cluster turns backup
    /// on) otherwise.
    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let cluster = ctx.parent;
        let backup_on = cluster.and_then(|o| o.get("backup")).map(String::as_str) == Some("true");
        let dedicated = cluster.and_then(|o| o.get("tier")).is_some_and(|t| t != "M0" && t != "FLEX" && t != "TENANT");
        if !(backup_on && dedicated) {
            return Ok(None);
        }
        let doc = self.0.client.get_opt(&path(&group, &d.address.name), V2024_08_05).await?;
        let Some(doc) = doc else { return Ok(None) };
        // The latest completed snapshot, for `poactl check` (never diffed). The list's order is
        // not documented (openapi-subset.yaml listGroupClusterBackupSnapshots), so the newest
        // is found by `createdAt`; ISO 8601 UTC strings of one form sort as times.
        let snapshots = self
            .0
            .client
            .list(&format!("/api/atlas/v2/groups/{group}/clusters/{}/backup/snapshots", seg(&d.address.name)), V2023_01_01)
            .await?;
        let latest = snapshots
            .iter()
            .filter(|s| s.get("status").and_then(|v| v.as_str()) == Some("completed"))
            .filter_map(|s| s.get("createdAt").and_then(|v| v.as_str()))
            .max()
            .map(str::to_string);
        let mut outputs = Outputs::from([("cluster".to_string(), d.address.name.clone())]);
        if let Some(at) = latest {
            outputs.insert("latest_snapshot_at".to_string(), at);
        }
        if let Some(at) = cluster.and_then(|o| o.get("created_at")) {
            outputs.insert("cluster_created_at".to_string(), at.clone());
        }
        Ok(Some(doc).map(|doc| Observed {
            id: d.address.name.clone(),
            attrs: normalize(&doc),
            outputs,
            ownership: Ownership::NaturalKey,
            handle: doc,
        }))
    }

    /// Snapshots not taken as the schedule says: no apply mends that (Atlas takes them), but
    /// a drift check in CI must say so.
    fn unhealthy(&self, _d: &Desired, o: &Observed) -> Option<String> {
        snapshot_age(o, mongodb::bson::DateTime::now().timestamp_millis()).problem()
    }

    async fn discover(&self, _ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        // A schedule belongs to its cluster; clusters are what is discovered.
        Ok(Vec::new())
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let live = self.0.client.get_opt(&path(&group, &d.address.name), V2024_08_05).await?;
        self.write(ctx, d, live.as_ref()).await
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        self.write(ctx, d, Some(&o.handle)).await
    }

    async fn delete(&self, _ctx: &Ctx<'_>, _address: &Address, _o: &Observed) -> Result<()> {
        // Leaving the spec means "stop managing it": Atlas keeps the cluster's schedule.
        Ok(())
    }
}
