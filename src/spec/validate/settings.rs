//! `atlas.maintenance_window` and `atlas.auditing`, checked offline:
//! - the window's day is a weekday name and its hour 0-23 (openapi-v2.yaml
//!   GroupMaintenanceWindow: `dayOfWeek` 1-7, `hourOfDay` 0-23);
//! - the audit filter is a JSON document (AuditLog.auditFilter: "JSON document that specifies
//!   which events to record");
//! - auditing "isn't available for `M0`, `M2`, `M5`, or serverless clusters" (openapi-v2.yaml
//!   AuditLog, via ../shared/atlas/PRIVATE-NETWORKING.md §3), nor Flex.

use super::{AWS_REGIONS, Checker, is_dedicated};
use crate::spec::model::{AtlasSpec, KmsKeySpec, WEEKDAYS, aws_region_name, same_region};
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

/// `atlas.encryption`, offline (the key's kind is KMS' to say: plan checks it):
/// - customer key management "is available only for M10+ clusters" and cannot be set on
///   shared tiers (openapi-v2.yaml ClusterDescription20240805.encryptionAtRestProvider;
///   ../shared/atlas/PRIVATE-NETWORKING.md §2.1 step 7);
/// - the key is a key id, a key or alias ARN, or an alias name (AWS KMS API reference,
///   DescribeKey `KeyId`: "key ID, key ARN, alias name, or alias ARN");
/// - its region is an AWS region, in either form, and the ARN's when the key is an ARN.
pub(super) fn check_encryption(c: &mut Checker, atlas: &AtlasSpec) {
    let Some(e) = &atlas.encryption else { return };
    let at = |f: &str| path!("atlas", "encryption", f);
    for (i, cl) in atlas.clusters.iter().enumerate() {
        if !is_dedicated(&cl.tier) {
            c.err(
                path!("atlas", "clusters", i, "tier"),
                format!("cluster `{}` is {}, and encryption with your own key needs M10 or larger", cl.name, cl.tier),
                "use tier M10 or larger, or remove `atlas.encryption`",
            );
        }
    }
    match &e.kms_key {
        KmsKeySpec::Create { create: false } => {
            c.err(at("kms_key"), "`create: false` names no key", "name an existing key (ARN, id or alias/NAME), or write `create: true`")
        }
        KmsKeySpec::Create { .. } => {}
        KmsKeySpec::Existing(k) => {
            if !is_key_reference(k) {
                c.err(
                    at("kms_key"),
                    format!("`{k}` is not a KMS key reference"),
                    "a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), a key id, alias/NAME, or `{ create: true }`",
                );
            }
            if let (Some(arn_region), Some(r)) = (k.strip_prefix("arn:").and_then(|a| a.split(':').nth(2)), &e.region)
                && !same_region(arn_region, r)
            {
                c.err(
                    at("region"),
                    format!("the key's ARN is in {arn_region}, not {r}"),
                    format!("write `region: {arn_region}`, or remove it"),
                );
            }
        }
    }
    match (&e.region, e.key_region()) {
        (Some(r), _) if !AWS_REGIONS.contains(&aws_region_name(r).as_str()) => {
            c.err(at("region"), format!("`{r}` is not an AWS region"), "e.g. us-east-1 (or US_EAST_1, as Atlas writes it)")
        }
        (None, None) => {
            c.err(at("kms_key"), "the key's region is not known", "add `region: us-east-1` (the key's region), or name the key by ARN")
        }
        _ => {}
    }
    if let Some(role) = &e.role
        && !(1..=64).contains(&role.len())
    {
        c.err(at("role"), "an IAM role name has 1 to 64 characters", "e.g. poafix-atlas-kms");
    }
}

fn is_key_reference(k: &str) -> bool {
    let name_ok = |n: &str| !n.is_empty() && n.chars().all(|ch| ch.is_ascii_alphanumeric() || "/_-".contains(ch));
    if let Some(arn) = k.strip_prefix("arn:") {
        let parts: Vec<&str> = arn.splitn(5, ':').collect();
        return parts.len() == 5
            && parts[0].starts_with("aws")
            && parts[1] == "kms"
            && parts[3].len() == 12
            && parts[3].chars().all(|ch| ch.is_ascii_digit())
            && (parts[4].strip_prefix("key/").is_some_and(name_ok) || parts[4].strip_prefix("alias/").is_some_and(name_ok));
    }
    if let Some(alias) = k.strip_prefix("alias/") {
        return name_ok(alias) && !alias.starts_with("aws/");
    }
    name_ok(k) && !k.contains('/')
}
