//! The sandbox's project settings: the maintenance window and database auditing.
//!
//! Each rule cites its source: `openapi-v2.yaml` is ../shared/atlas/openapi-v2.yaml. Error
//! codes the spec does not record are marked as such.

use serde_json::{Value, json};

use super::state::{Project, State};
use super::{Answer, ApiErr, Req, is_dedicated_size, project};

/// A project's window before anyone sets one: not recorded from real Atlas (a sandbox
/// choice), in the spec's shape (GroupMaintenanceWindow).
fn default_window() -> Value {
    json!({"autoDeferOnceEnabled": false, "dayOfWeek": 7, "hourOfDay": 2, "numberOfDeferrals": 0, "startASAP": false, "timeZoneId": "UTC"})
}

/// Auditing before anyone turns it on (AuditLog: `enabled` and `auditAuthorizationSuccess`
/// default false; `configurationType` NONE).
fn default_audit() -> Value {
    json!({"enabled": false, "auditAuthorizationSuccess": false, "auditFilter": "{}", "configurationType": "NONE"})
}

fn window(p: &Project) -> Value {
    p.maintenance_window.clone().unwrap_or_else(default_window)
}

fn audit(p: &Project) -> Value {
    p.audit_log.clone().unwrap_or_else(default_audit)
}

/// The settings routes, `path` relative to `/api/atlas/v2/groups`.
pub(super) fn route(st: &mut State, method: &str, path: &str, req: &Req) -> Option<Answer> {
    let group = req.param("groupId").to_string();
    let answer = match (method, path) {
        ("GET", "/{groupId}/maintenanceWindow") => project(st, &group).map(|p| (200, Some(window(p)))),
        ("PATCH", "/{groupId}/maintenanceWindow") => patch_window(st, req, &group),
        // DELETE resets the window (openapi-v2.yaml resetGroupMaintenanceWindow: 204).
        ("DELETE", "/{groupId}/maintenanceWindow") => project(st, &group).map(|p| {
            p.maintenance_window = None;
            (204, None)
        }),
        ("GET", "/{groupId}/auditLog") => project(st, &group).map(|p| (200, Some(audit(p)))),
        ("PATCH", "/{groupId}/auditLog") => patch_audit(st, req, &group),
        _ => return None,
    };
    Some(answer)
}

fn patch_window(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    // dayOfWeek is required, 1-7; hourOfDay 0-23 (GroupMaintenanceWindow). Codes not recorded.
    let day = b.get("dayOfWeek").and_then(Value::as_u64);
    if !day.is_some_and(|d| (1..=7).contains(&d)) {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute dayOfWeek specified.").params(&["dayOfWeek"]));
    }
    if let Some(h) = b.get("hourOfDay")
        && h.as_u64().is_none_or(|h| h > 23)
    {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute hourOfDay specified.").params(&["hourOfDay"]));
    }
    let p = project(st, group)?;
    let mut doc = window(p);
    for k in ["dayOfWeek", "hourOfDay", "autoDeferOnceEnabled", "startASAP"] {
        if let Some(v) = b.get(k) {
            doc[k] = v.clone();
        }
    }
    p.maintenance_window = Some(doc);
    // 200 with no body: the spec's answer has no schema (updateGroupMaintenanceWindow).
    Ok((200, None))
}

fn patch_audit(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    // auditFilter is a JSON document in a string (AuditLog.auditFilter). Code not recorded.
    if let Some(f) = b.get("auditFilter") {
        let text = f.as_str().unwrap_or_default();
        if !text.trim().is_empty() && serde_json::from_str::<Value>(text).is_err() {
            return Err(ApiErr::new(400, "INVALID_AUDIT_FILTER", "The audit filter is not a valid JSON document.").params(&["auditFilter"]));
        }
    }
    let p = project(st, group)?;
    let enabling = b.get("enabled").and_then(Value::as_bool) == Some(true);
    // "This feature isn't available for M0, M2, M5, or serverless clusters" (AuditLog). Code
    // not recorded.
    let shared = p.clusters.values().any(|c| {
        c.doc
            .pointer("/replicationSpecs/0/regionConfigs/0/electableSpecs/instanceSize")
            .and_then(Value::as_str)
            .is_none_or(|s| !is_dedicated_size(s))
    });
    if enabling && shared {
        return Err(ApiErr::new(400, "AUDIT_LOG_NOT_SUPPORTED", "Database auditing is not available for M0, Flex or serverless clusters.")
            .params(&["enabled"]));
    }
    let mut doc = audit(p);
    for k in ["enabled", "auditFilter", "auditAuthorizationSuccess"] {
        if let Some(v) = b.get(k) {
            doc[k] = v.clone();
        }
    }
    doc["configurationType"] =
        json!(if doc["auditFilter"].as_str().is_some_and(|f| f.trim() != "{}" && !f.trim().is_empty()) { "FILTER_JSON" } else { "NONE" });
    p.audit_log = Some(doc.clone());
    Ok((200, Some(doc)))
}
