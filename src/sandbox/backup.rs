//! The sandbox's cloud backup schedules: the policy rules Atlas enforces on them.

use serde_json::{Value, json};

use super::state::State;
use super::{Answer, ApiErr, Req, cluster, project};

pub(super) fn retention_days(item: &Value) -> f64 {
    let per = match item["retentionUnit"].as_str() {
        Some("weeks") => 7.0,
        Some("months") => 30.0,
        Some("years") => 365.0,
        _ => 1.0,
    };
    item["retentionValue"].as_f64().unwrap_or(0.0) * per
}

pub(super) fn frequency_rank(f: &str) -> u8 {
    ["hourly", "daily", "weekly", "monthly", "yearly"].iter().position(|x| *x == f).map_or(9, |p| p as u8)
}

/// The rules Atlas enforces on a schedule's policy items beyond their schema.
/// - hourly items take interval 1, 2, 4, 6, 8 or 12, and only 12 on NVMe tiers
///   (openapi-v2.yaml, DiskBackupApiPolicyItem.frequencyInterval);
/// - at most one hourly and one daily item, and retention that does not shrink from a more
///   frequent to a less frequent item (Atlas' "Backup Policy" docs, issue 10 item 5);
/// - point-in-time restore needs an hourly item (the same docs, issue 10 item 5).
pub(super) fn check_policy(items: &[Value], nvme: bool, pit: bool) -> Result<(), ApiErr> {
    let bad = |code: &'static str, detail: String| Err(ApiErr::new(400, code, detail).params(&["policyItems"]));
    for kind in ["hourly", "daily"] {
        if items.iter().filter(|i| i["frequencyType"] == json!(kind)).count() > 1 {
            return bad("BACKUP_POLICY_DUPLICATE_FREQUENCY", format!("A backup policy can have only one {kind} policy item."));
        }
    }
    for i in items.iter().filter(|i| i["frequencyType"] == json!("hourly")) {
        let interval = i["frequencyInterval"].as_i64().unwrap_or(0);
        if nvme && interval != 12 {
            return bad("INVALID_BACKUP_FREQUENCY_INTERVAL", "Hourly policy items on NVMe clusters take only frequencyInterval 12.".into());
        }
        if ![1, 2, 4, 6, 8, 12].contains(&interval) {
            return bad(
                "INVALID_BACKUP_FREQUENCY_INTERVAL",
                format!("Hourly policy items take frequencyInterval 1, 2, 4, 6, 8 or 12, not {interval}."),
            );
        }
    }
    let mut sorted: Vec<&Value> = items.iter().collect();
    sorted.sort_by_key(|i| frequency_rank(i["frequencyType"].as_str().unwrap_or("")));
    let mut longest = 0.0f64;
    let mut longest_kind = String::new();
    for i in sorted {
        let kind = i["frequencyType"].as_str().unwrap_or("").to_string();
        let days = retention_days(i);
        if days < longest && kind != longest_kind {
            return bad(
                "BACKUP_POLICY_RETENTION_DECREASING",
                format!(
                    "The {kind} retention ({days} days) is shorter than the {longest_kind} retention ({longest} days): less frequent snapshots must be kept at least as long."
                ),
            );
        }
        if days >= longest {
            longest = days;
            longest_kind = kind;
        }
    }
    if pit && !items.iter().any(|i| i["frequencyType"] == json!("hourly")) {
        return bad("PIT_REQUIRES_HOURLY_POLICY", "Continuous cloud backup (point in time) needs an hourly policy item.".into());
    }
    Ok(())
}

pub(super) fn update_schedule(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let name = req.param("clusterName").to_string();
    let (nvme, pit) = {
        let p = project(st, group)?;
        let c = cluster(p, group, &name, false)?;
        let size = c.doc.pointer("/replicationSpecs/0/regionConfigs/0/electableSpecs/instanceSize").and_then(|v| v.as_str()).unwrap_or("");
        let facts = (size.ends_with("_NVME"), c.doc["pitEnabled"] == json!(true));
        if !p.schedules.contains_key(&name) {
            return Err(ApiErr::new(400, "CLUSTER_DOES_NOT_HAVE_BACKUP", format!("Cloud backup is not enabled on cluster {name}."))
                .params(&[&name]));
        }
        facts
    };
    let existing: Vec<Value> =
        project(st, group)?.schedules[&name].pointer("/policies/0/policyItems").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let mut policies = None;
    if let Some(ps) = b.get("policies").and_then(|v| v.as_array()) {
        let mut out = Vec::new();
        for pol in ps {
            let mut items = Vec::new();
            for item in pol.get("policyItems").and_then(|v| v.as_array()).cloned().unwrap_or_default() {
                let mut item = item.clone();
                for f in ["frequencyType", "frequencyInterval", "retentionUnit", "retentionValue"] {
                    if item.get(f).is_none() {
                        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", format!("Invalid attribute {f} specified.")).params(&[f]));
                    }
                }
                // An item sent with its id is that item, changed in place; one without an id
                // replaces it, and snapshots already taken keep the old item's retention
                // (terraform-provider-mongodbatlas PR #1357, which started echoing the ids).
                let known = item.get("id").is_some_and(|id| existing.iter().any(|e| e.get("id") == Some(id)));
                if !known {
                    item["id"] = json!(st.new_id());
                }
                items.push(item);
            }
            check_policy(&items, nvme, pit)?;
            let id = pol.get("id").cloned().unwrap_or_else(|| json!(st.new_id()));
            out.push(json!({"id": id, "policyItems": items}));
        }
        policies = Some(Value::Array(out));
    }
    let p = project(st, group)?;
    let s = p.schedules.get_mut(&name).ok_or_else(|| ApiErr::new(404, "RESOURCE_NOT_FOUND", "no schedule"))?;
    if let Some(pol) = policies {
        s["policies"] = pol;
    }
    for k in ["restoreWindowDays", "referenceHourOfDay", "referenceMinuteOfHour", "autoExportEnabled"] {
        if let Some(v) = b.get(k) {
            s[k] = v.clone();
        }
    }
    Ok((200, Some(s.clone())))
}
