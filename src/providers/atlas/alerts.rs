//! Alert configurations, identified by event type + metric + direction + matchers (billing
//! alerts by event type + amount). A new project comes with Atlas' default alerts: they are
//! unmanaged unless the spec declares one with the same identity, which then adopts it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::client::version::V2023_01_01;
use super::{Atlas, LANE, group_id, group_of, project_output, scope_group_id};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Ownership, Provider, Result};
use crate::resource::{Address, Kind};
use crate::spec::model::{AtlasAlertSpec, BillingAlertSpec, NotifySpec};
use crate::spec::validate::{BILLING_EVENTS, alert_key};

pub struct AlertProvider(pub Arc<Atlas>);

/// Events whose threshold is a time, and their default unit.
fn default_units(event: &str) -> &'static str {
    match event {
        "REPLICATION_OPLOG_WINDOW_RUNNING_OUT" | "CPS_SNAPSHOT_BEHIND" | "CPS_PREV_SNAPSHOT_OLD" | "CPS_OPLOG_BEHIND" => "HOURS",
        _ => "RAW",
    }
}

fn is_metric_event(event: &str) -> bool {
    event.ends_with("METRIC_THRESHOLD")
}

fn notification(n: &NotifySpec) -> Value {
    let interval = n.interval.as_ref().map_or(60, |d| d.seconds / 60);
    let delay = n.delay.as_ref().map_or(0, |d| d.seconds / 60);
    let mut v = if let Some(e) = &n.email {
        json!({"type": "EMAIL", "email": e})
    } else if let Some(s) = &n.sms {
        json!({"type": "SMS", "sms": s})
    } else if let Some(u) = &n.user {
        json!({"type": "USER", "username": u})
    } else {
        let mut roles = n.roles.clone();
        roles.sort();
        json!({"type": "GROUP", "roles": roles})
    };
    v["interval_min"] = json!(interval);
    v["delay_min"] = json!(delay);
    v
}

fn sorted(mut v: Vec<Value>) -> Value {
    v.sort_by_key(|x| x.to_string());
    Value::Array(v)
}

fn threshold_number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 { json!(v as i64) } else { json!(v) }
}

/// Desired attributes of an alert (shared by `atlas.alerts` and the Atlas half of billing alerts).
#[allow(clippy::too_many_arguments)]
fn attrs(
    event: &str,
    metric: Option<&str>,
    above: Option<f64>,
    below: Option<f64>,
    units: Option<&str>,
    matchers: Value,
    notify: &[NotifySpec],
    enabled: bool,
) -> Value {
    let mut a = Map::new();
    a.insert("event".into(), json!(event));
    a.insert("enabled".into(), json!(enabled));
    a.insert("matchers".into(), matchers);
    a.insert("notifications".into(), sorted(notify.iter().map(notification).collect()));
    let (operator, value) = match (above, below) {
        (Some(v), _) => (Some("GREATER_THAN"), Some(v)),
        (None, Some(v)) => (Some("LESS_THAN"), Some(v)),
        _ => (None, None),
    };
    let units = units.unwrap_or(default_units(event));
    match (metric, operator, value) {
        (Some(m), Some(op), Some(v)) => {
            a.insert("metric".into(), json!({"name": m, "operator": op, "threshold": v, "units": units}));
        }
        (None, Some(op), Some(v)) => {
            a.insert("threshold".into(), json!({"operator": op, "threshold": v, "units": units}));
        }
        _ => {}
    }
    Value::Object(a)
}

pub fn desired_alert(a: &AtlasAlertSpec, address: Address) -> Desired {
    let matchers = sorted(a.matchers.iter().map(|m| json!({"field": m.field, "operator": m.operator, "value": m.value})).collect());
    Desired::new(address, attrs(&a.event, a.metric.as_deref(), a.above, a.below, a.units.as_deref(), matchers, &a.notify.0, a.enabled))
}

pub fn desired_billing(b: &BillingAlertSpec, address: Address) -> Desired {
    let owners = [NotifySpec { roles: vec!["GROUP_OWNER".into()], ..Default::default() }];
    let notify: &[NotifySpec] = b.atlas_notify.as_ref().map_or(&owners, |n| &n.0);
    Desired::new(address, attrs("PENDING_INVOICE_OVER_THRESHOLD", None, Some(b.above_usd), None, Some("RAW"), json!([]), notify, true))
}

/// A live alert configuration in the shape of the desired attributes.
fn normalize(doc: &Value) -> Value {
    let event = doc.get("eventTypeName").and_then(|v| v.as_str()).unwrap_or("");
    let mut a = Map::new();
    a.insert("event".into(), json!(event));
    a.insert("enabled".into(), json!(doc.get("enabled").and_then(|v| v.as_bool()).unwrap_or(false)));
    let matchers: Vec<Value> = doc
        .get("matchers")
        .and_then(|m| m.as_array())
        .map(|m| m.iter().map(|x| json!({"field": x["fieldName"], "operator": x["operator"], "value": x["value"]})).collect())
        .unwrap_or_default();
    a.insert("matchers".into(), sorted(matchers));
    let notifications: Vec<Value> = doc
        .get("notifications")
        .and_then(|n| n.as_array())
        .map(|ns| {
            ns.iter()
                .map(|n| {
                    let kind = n.get("typeName").and_then(|v| v.as_str()).unwrap_or("");
                    let mut v = match kind {
                        "EMAIL" => json!({"type": "EMAIL", "email": n.get("emailAddress")}),
                        "SMS" => json!({"type": "SMS", "sms": n.get("mobileNumber")}),
                        "USER" => json!({"type": "USER", "username": n.get("username")}),
                        "GROUP" => {
                            let mut roles: Vec<String> = n
                                .get("roles")
                                .and_then(|r| r.as_array())
                                .map(|r| r.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                                .unwrap_or_default();
                            roles.sort();
                            json!({"type": "GROUP", "roles": roles})
                        }
                        other => json!({"type": other}),
                    };
                    v["interval_min"] = n.get("intervalMin").cloned().unwrap_or(json!(60));
                    v["delay_min"] = n.get("delayMin").cloned().unwrap_or(json!(0));
                    v
                })
                .collect()
        })
        .unwrap_or_default();
    a.insert("notifications".into(), sorted(notifications));
    if let Some(m) = doc.get("metricThreshold") {
        a.insert("metric".into(), json!({"name": m.get("metricName"), "operator": m.get("operator"), "threshold": m.get("threshold"), "units": m.get("units").cloned().unwrap_or(json!("RAW"))}));
    }
    if let Some(t) = doc.get("threshold") {
        a.insert("threshold".into(), json!({"operator": t.get("operator"), "threshold": t.get("threshold"), "units": t.get("units").cloned().unwrap_or(json!("RAW"))}));
    }
    Value::Object(a)
}

/// The identity of a live alert configuration (see [`alert_key`]).
fn identity(doc: &Value) -> String {
    let event = doc.get("eventTypeName").and_then(|v| v.as_str()).unwrap_or("UNKNOWN_EVENT");
    let metric = doc.pointer("/metricThreshold/metricName").and_then(|v| v.as_str());
    let op = doc.pointer("/metricThreshold/operator").or_else(|| doc.pointer("/threshold/operator")).and_then(|v| v.as_str());
    let above = op.map(|o| o == "GREATER_THAN");
    let threshold = doc.pointer("/threshold/threshold").or_else(|| doc.pointer("/metricThreshold/threshold")).and_then(|v| v.as_f64());
    let matchers: Vec<(String, String, String)> = doc
        .get("matchers")
        .and_then(|m| m.as_array())
        .map(|m| {
            m.iter()
                .map(|x| {
                    let s = |k: &str| x.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                    (s("fieldName"), s("operator"), s("value"))
                })
                .collect()
        })
        .unwrap_or_default();
    alert_key(event, metric, above, threshold, &matchers)
}

fn observed(doc: &Value) -> Observed {
    let id = doc.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let event = doc.get("eventTypeName").and_then(|v| v.as_str()).unwrap_or("(no event type)");
    Observed {
        id: id.clone(),
        attrs: normalize(doc),
        outputs: Outputs::from([("id".to_string(), id), ("description".to_string(), format!("alert {event}"))]),
        ownership: Ownership::NaturalKey,
        handle: doc.clone(),
    }
}

/// The request body (`GroupAlertsConfig`) for desired attributes.
fn body(d: &Desired) -> Value {
    let a = &d.attrs;
    let event = a["event"].as_str().unwrap_or_default();
    let notifications: Vec<Value> = a["notifications"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .map(|n| {
                    let mut v = match n["type"].as_str().unwrap_or("") {
                        "EMAIL" => json!({"typeName": "EMAIL", "emailAddress": n["email"]}),
                        "SMS" => json!({"typeName": "SMS", "mobileNumber": n["sms"]}),
                        "USER" => json!({"typeName": "USER", "username": n["username"], "emailEnabled": true, "smsEnabled": false}),
                        _ => json!({"typeName": "GROUP", "roles": n["roles"], "emailEnabled": true, "smsEnabled": false}),
                    };
                    v["intervalMin"] = n["interval_min"].clone();
                    v["delayMin"] = n["delay_min"].clone();
                    v
                })
                .collect()
        })
        .unwrap_or_default();
    let matchers: Vec<Value> = a["matchers"]
        .as_array()
        .map(|m| m.iter().map(|x| json!({"fieldName": x["field"], "operator": x["operator"], "value": x["value"]})).collect())
        .unwrap_or_default();
    let mut b = json!({"eventTypeName": event, "enabled": a["enabled"], "notifications": notifications, "matchers": matchers});
    if let Some(m) = a.get("metric") {
        b["metricThreshold"] = json!({"metricName": m["name"], "operator": m["operator"], "threshold": m["threshold"], "units": m["units"], "mode": "AVERAGE"});
    }
    if let Some(t) = a.get("threshold") {
        let value = t["threshold"].as_f64().map(threshold_number).unwrap_or(Value::Null);
        b["threshold"] = json!({"operator": t["operator"], "threshold": value, "units": t["units"]});
    }
    if BILLING_EVENTS.contains(&event) || is_metric_event(event) {
        b.as_object_mut()
            .map(|o| o.remove("matchers").filter(|m| m.as_array().is_some_and(|a| !a.is_empty())).map(|m| o.insert("matchers".into(), m)));
    }
    b
}

/// Whether an alert configuration was created with its project (within a minute of it): the
/// defaults Atlas adds when `withDefaultAlertsSettings` is on, which no one asked poactl for.
fn made_with_project(doc: &Value, project_created: Option<&str>) -> bool {
    let (Some(alert), Some(project)) =
        (doc.get("created").and_then(|v| v.as_str()).and_then(iso_seconds), project_created.and_then(iso_seconds))
    else {
        return false;
    };
    (alert - project).abs() <= 60
}

/// Seconds since the epoch of an ISO 8601 UTC date (`2026-11-25T12:00:00Z`, fractions allowed).
fn iso_seconds(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['+', '.']).next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + (153 * m + 2) / 5 + day - 1;
    Some((era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// The live configuration, read-only fields removed, with the spec's value for each field that
/// differs.
fn merged_body(d: &Desired, live: &Value, changes: &[FieldChange]) -> Value {
    let want = body(d);
    let mut out = live.clone();
    if let Some(o) = out.as_object_mut() {
        for k in ["id", "groupId", "created", "updated", "links"] {
            o.remove(k);
        }
    }
    for (attr, field) in [
        ("enabled", "enabled"),
        ("matchers", "matchers"),
        ("notifications", "notifications"),
        ("metric", "metricThreshold"),
        ("threshold", "threshold"),
    ] {
        if crate::plan::touches(changes, attr) {
            match want.get(field) {
                Some(v) => out[field] = v.clone(),
                None => {
                    out.as_object_mut().map(|o| o.remove(field));
                }
            }
        }
    }
    out["eventTypeName"] = want["eventTypeName"].clone();
    out
}

impl AlertProvider {
    pub(super) fn list_path(group: &str) -> String {
        format!("/api/atlas/v2/groups/{group}/alertConfigs")
    }
}

#[async_trait]
impl Provider for AlertProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasAlert
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// Its list is the project's.
    fn discover_after(&self) -> &'static [Kind] {
        &[Kind::AtlasProject]
    }

    /// Alert configurations carry no tags. Atlas gives every new project its default ones
    /// (about 30 in a new project, over 100 in an old one: ENDPOINTS.md, projects,
    /// `withDefaultAlertsSettings`), created with the project; `--prune` keeps them all.
    fn prune_guard(&self, o: &Observed) -> Option<String> {
        if o.handle.get("_atlas_default") == Some(&json!(true)) {
            return Some("it is one of the default alert configurations Atlas made with the project".to_string());
        }
        Some("Atlas keeps no ownership mark on alert configurations, so poactl cannot prove it made this one".to_string())
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let all = self.0.cached_list(&Self::list_path(&group), V2023_01_01).await?;
        let mut matches: Vec<&Value> = all.iter().filter(|c| identity(c) == d.address.name).collect();
        // Several live configs with one identity (Atlas' defaults repeat): prefer one that
        // already matches the spec, then the oldest id, so the choice is stable.
        matches.sort_by_key(|c| {
            (crate::plan::diff::diff(&d.attrs, &normalize(c), &[]).len(), c.get("id").and_then(|v| v.as_str()).unwrap_or("").to_string())
        });
        Ok(matches.first().map(|c| observed(c)))
    }

    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let Some(group) = scope_group_id(ctx) else { return Ok(Vec::new()) };
        let project_created = project_output(ctx, "created");
        let all = self.0.cached_list(&Self::list_path(&group), V2023_01_01).await?;
        // The engine drops the configs declared alerts claimed (by id); configs sharing an
        // identity get their id in the address to stay apart.
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        let mut out = Vec::new();
        let mut items: Vec<&Value> = all.iter().collect();
        items.sort_by_key(|c| c.get("id").and_then(|v| v.as_str()).unwrap_or("").to_string());
        for c in items {
            let key = identity(c);
            let n = seen.entry(key.clone()).or_default();
            *n += 1;
            let name = if *n == 1 { key } else { format!("{key}#{}", c.get("id").and_then(|v| v.as_str()).unwrap_or("")) };
            let mut o = observed(c);
            if made_with_project(c, project_created.as_deref()) {
                o.handle["_atlas_default"] = json!(true);
                o.outputs.insert(
                    "description".into(),
                    format!("Atlas default alert {}", c.get("eventTypeName").and_then(|v| v.as_str()).unwrap_or("")),
                );
            }
            out.push((Address::new(Kind::AtlasAlert, name), o));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        // A config with this identity that appeared since the plan saw none is ours.
        let path = Self::list_path(&group);
        let lookup = || async {
            let all = self.0.client.list(&path, V2023_01_01).await?;
            Ok(all.into_iter().find(|c| identity(c) == d.address.name))
        };
        let doc = self.0.client.create(&path, V2023_01_01, body(d), lookup).await?;
        self.0.forget(&Self::list_path(&group));
        Ok(Outputs::from([("id".to_string(), doc.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string())]))
    }

    /// PUT replaces the whole configuration, so the body is the live one with only the fields
    /// that differ taken from the spec: settings poactl does not model (`severityOverride`,
    /// a notification's `notifierId`, ...) survive an update.
    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let group = group_id(ctx)?;
        self.0.client.put(&format!("{}/{}", Self::list_path(&group), o.id), V2023_01_01, merged_body(d, &o.handle, changes)).await?;
        self.0.forget(&Self::list_path(&group));
        Ok(Outputs::from([("id".to_string(), o.id.clone())]))
    }

    async fn delete(&self, ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        let group = group_of(o, ctx)?;
        self.0.client.delete_if_exists(&format!("{}/{}", Self::list_path(&group), o.id), V2023_01_01).await?;
        self.0.forget(&Self::list_path(&group));
        Ok(())
    }
}
