//! `atlas.maintenance_window` and `atlas.auditing`, checked offline:
//! - the window's day is a weekday name and its hour 0-23 (openapi-v2.yaml
//!   GroupMaintenanceWindow: `dayOfWeek` 1-7, `hourOfDay` 0-23);
//! - the audit filter is a JSON document (AuditLog.auditFilter: "JSON document that specifies
//!   which events to record");
//! - auditing "isn't available for `M0`, `M2`, `M5`, or serverless clusters" (openapi-v2.yaml
//!   AuditLog, via ../shared/atlas/PRIVATE-NETWORKING.md §3), nor Flex.

use super::{Checker, is_dedicated};
use crate::spec::model::{AtlasSpec, WEEKDAYS};
use crate::spec::yaml::PathSeg;

pub(super) fn check_settings(c: &mut Checker, atlas: &AtlasSpec) {
    if let Some(w) = &atlas.maintenance_window {
        if w.day_of_week().is_none() {
            c.err(
                path!("atlas", "maintenance_window", "day"),
                format!("`{}` is not a day of the week", w.day),
                format!("one of {}", WEEKDAYS.join(", ")),
            );
        }
        if w.hour_utc > 23 {
            c.err(
                path!("atlas", "maintenance_window", "hour_utc"),
                format!("{} is not an hour of the day", w.hour_utc),
                "0 (midnight) to 23, in UTC",
            );
        }
    }
    let Some(a) = &atlas.auditing else { return };
    if let Err(why) = a.filter_document() {
        c.err(
            path!("atlas", "auditing", "filter"),
            format!("the audit filter is {why}"),
            "a mapping, e.g. { atype: authenticate }, or its JSON text",
        );
    }
    if a.enabled {
        for (i, cl) in atlas.clusters.iter().enumerate().filter(|(_, cl)| !is_dedicated(&cl.tier)) {
            c.err(
                path!("atlas", "clusters", i, "tier"),
                format!("cluster `{}` is {}, and Atlas audits dedicated clusters only (M10 or larger)", cl.name, cl.tier),
                "use tier M10 or larger, or turn `atlas.auditing` off",
            );
        }
    }
}
