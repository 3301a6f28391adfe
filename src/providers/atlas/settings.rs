//! Project settings that production teams set once and expect to stay: the maintenance window
//! and database auditing. Each is one resource named after the project; Atlas always has a
//! value for both, so they are never created, only set, and "deleting" one puts Atlas'
//! default back.
//!
//! What the real service does:
//! - maintenance window: `GET/PATCH/DELETE /groups/{groupId}/maintenanceWindow`
//!   (openapi-v2.yaml GroupMaintenanceWindow: `dayOfWeek` 1 = Sunday … 7 = Saturday, required
//!   on PATCH; `hourOfDay` 0-23; `timeZoneId` read-only, "can only be updated via the Project
//!   Settings UI"; DELETE resets the window);
//! - auditing: `GET/PATCH /groups/{groupId}/auditLog` (AuditLog), both needing Project Owner;
//!   `auditFilter` is a JSON *string*, compared as parsed JSON with `""` equal to `{}` (the
//!   Atlas operator's `internal/translation/audit/conversion.go`; Terraform's diff suppressor,
//!   #3302); Terraform "deletes" it by PATCHing `{enabled: false}`
//!   (`resource_auditing.go:143-154`), and so does poactl.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::client::version::V2023_01_01;
use super::{Atlas, LANE, group_id, group_of};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Ownership, Provider, ProviderError, Result};
use crate::resource::{Address, Kind};
use crate::spec::model::{AuditingSpec, MaintenanceWindowSpec};

pub struct MaintenanceWindowProvider(pub Arc<Atlas>);
pub struct AuditingProvider(pub Arc<Atlas>);

pub fn desired_window(w: &MaintenanceWindowSpec, address: Address) -> Desired {
    Desired::new(address, json!({"day_of_week": w.day_of_week().unwrap_or(0), "hour_of_day": w.hour_utc, "auto_defer": w.auto_defer}))
}

pub fn desired_auditing(a: &AuditingSpec, address: Address) -> Desired {
    let filter = a.filter_document().map(|f| canonical(&f)).unwrap_or_default();
    Desired::new(address, json!({"enabled": a.enabled, "filter": filter, "authorization_success": a.authorization_success}))
}

/// A JSON document as text with its keys sorted at every level: the same filter written with
/// another key order or spacing reads the same.
pub fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect::<Map<String, Value>>())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// Atlas' `auditFilter` as poactl compares it (`""` and absent are `{}`; text that is not JSON
/// is kept as it is, so that it shows as drift).
fn live_filter(doc: &Value) -> String {
    match doc.get("auditFilter").and_then(Value::as_str).map(str::trim) {
        None | Some("") => canonical(&json!({})),
        Some(text) => serde_json::from_str::<Value>(text).map(|v| canonical(&v)).unwrap_or_else(|_| text.to_string()),
    }
}

fn window_path(group: &str) -> String {
    format!("/api/atlas/v2/groups/{group}/maintenanceWindow")
}

fn audit_path(group: &str) -> String {
    format!("/api/atlas/v2/groups/{group}/auditLog")
}

fn settled(doc: Value, attrs: Value, outputs: Outputs, group: &str) -> Observed {
    let mut handle = doc;
    handle["groupId"] = json!(group);
    Observed { id: group.to_string(), attrs, outputs, ownership: Ownership::NaturalKey, handle }
}

#[async_trait]
impl Provider for MaintenanceWindowProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasMaintenanceWindow
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// Atlas reads `hourOfDay` in the project's time zone, which only the Project Settings
    /// page can change: say so when it is not UTC.
    fn notes(&self, _d: &Desired, o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        match o.handle.get("timeZoneId").and_then(Value::as_str) {
            Some(tz) if !matches!(tz, "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT") => vec![format!(
                "the project's maintenance time zone is {tz}: Atlas reads the hour in it, not in UTC (change it to UTC in Atlas' Project Settings; the API cannot)"
            )],
            _ => Vec::new(),
        }
    }

    async fn observe(&self, ctx: &Ctx<'_>, _d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let doc = self.0.client.get(&window_path(&group), V2023_01_01).await?;
        let num = |k: &str| doc.get(k).and_then(Value::as_u64).unwrap_or(0);
        let attrs = json!({
            "day_of_week": num("dayOfWeek"),
            "hour_of_day": num("hourOfDay"),
            "auto_defer": doc.get("autoDeferOnceEnabled").and_then(Value::as_bool).unwrap_or(false),
        });
        let outputs = Outputs::from([
            ("day_of_week".to_string(), num("dayOfWeek").to_string()),
            ("hour_of_day".to_string(), num("hourOfDay").to_string()),
            ("description".to_string(), format!("maintenance window, day {} at {}:00", num("dayOfWeek"), num("hourOfDay"))),
        ]);
        Ok(Some(settled(doc, attrs, outputs, &group)))
    }

    async fn discover(&self, _ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        Ok(Vec::new())
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        self.write(ctx, d).await
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, _o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        self.write(ctx, d).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        let group = group_of(o, ctx)?;
        self.0.client.delete_if_exists(&window_path(&group), V2023_01_01).await?;
        Ok(())
    }
}

impl MaintenanceWindowProvider {
    async fn write(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let body = json!({"dayOfWeek": d.attrs["day_of_week"], "hourOfDay": d.attrs["hour_of_day"], "autoDeferOnceEnabled": d.attrs["auto_defer"]});
        // A PATCH sets fields to values: repeated after a lost answer, it leaves the same.
        self.0.client.patch(&window_path(&group), V2023_01_01, body).await?;
        Ok(Outputs::from([
            ("day_of_week".to_string(), d.attrs["day_of_week"].to_string()),
            ("hour_of_day".to_string(), d.attrs["hour_of_day"].to_string()),
        ]))
    }
}

#[async_trait]
impl Provider for AuditingProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasAuditing
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// Credentials without Project Owner cannot read it (openapi-v2.yaml, getGroupAuditLog
    /// x-rolesRequirements): that stays with this resource, and the rest is planned.
    fn read_failure_is_local(&self) -> bool {
        true
    }

    async fn observe(&self, ctx: &Ctx<'_>, _d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let doc = match self.0.client.get(&audit_path(&group), V2023_01_01).await {
            Ok(doc) => doc,
            // Both GET and PATCH need Project Owner (openapi-v2.yaml x-rolesRequirements).
            Err(e) if matches!(e.status(), Some(401 | 403)) || matches!(e, super::client::AtlasError::Auth(_)) => {
                return Err(ProviderError::Refused(format!(
                    "reading the auditing setting needs the Project Owner role, which these Atlas credentials lack ({e}); grant it to the API key or service account, or leave `atlas.auditing` to someone who has it"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let enabled = doc.get("enabled").and_then(Value::as_bool).unwrap_or(false);
        let attrs = json!({
            "enabled": enabled,
            "filter": live_filter(&doc),
            "authorization_success": doc.get("auditAuthorizationSuccess").and_then(Value::as_bool).unwrap_or(false),
        });
        let outputs = Outputs::from([
            ("enabled".to_string(), enabled.to_string()),
            ("description".to_string(), format!("database auditing {}", if enabled { "on" } else { "off" })),
        ]);
        Ok(Some(settled(doc, attrs, outputs, &group)))
    }

    async fn discover(&self, _ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        Ok(Vec::new())
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        self.write(ctx, d).await
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, _o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        self.write(ctx, d).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        let group = group_of(o, ctx)?;
        self.0.client.patch(&audit_path(&group), V2023_01_01, json!({"enabled": false})).await?;
        Ok(())
    }
}

impl AuditingProvider {
    async fn write(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let body = json!({
            "enabled": d.attrs["enabled"],
            "auditFilter": d.attrs["filter"],
            "auditAuthorizationSuccess": d.attrs["authorization_success"],
        });
        self.0.client.patch(&audit_path(&group), V2023_01_01, body).await?;
        Ok(Outputs::from([("enabled".to_string(), d.attrs["enabled"].to_string())]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compare_as_json() {
        let cases = [
            (
                json!({"auditFilter": "{\"atype\": \"authenticate\", \"param\": {\"db\": \"admin\"}}"}),
                r#"{"param":{"db":"admin"},"atype":"authenticate"}"#,
                true,
            ),
            (json!({"auditFilter": ""}), "{}", true),
            (json!({}), "{}", true),
            (json!({"auditFilter": "{ }"}), "{}", true),
            (json!({"auditFilter": "{\"atype\": \"authCheck\"}"}), r#"{"atype":"authenticate"}"#, false),
            (json!({"auditFilter": "not json"}), "{}", false),
        ];
        for (live, spec, same) in cases {
            let spec: Value = serde_json::from_str(spec).unwrap();
            assert_eq!(live_filter(&live) == canonical(&spec), same, "{live} vs {spec}");
        }
    }
}
