//! Each topic an alarm notifies exists and has someone at the other end: the spec's own
//! topics from the live read, and foreign topics (given by ARN) read here and never changed.
//!
//! SNS `GetTopicAttributes` answers `SubscriptionsConfirmed` and `SubscriptionsPending` for
//! any topic the caller may read (SNS API reference, GetTopicAttributes: "Attributes"), and
//! `NotFound` for one that does not exist; a topic of another account whose policy does not
//! let this one read it answers `AuthorizationError`.

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::Value;

use super::{Outcome, Status, outcome};
use crate::engine::Observation;
use crate::providers;
use crate::providers::aws::ec2::{Params, refusal_code};
use crate::resource::Kind;
use crate::spec::LoadedSpec;

const G: &str = "notifications";

/// What a topic with nobody confirmed means here: a production alarm that reaches nobody is
/// a failed go-live; elsewhere the check is skipped, saying why.
fn nobody(production: bool, detail: String) -> (Status, String) {
    if production { (Status::Fail, detail) } else { (Status::Skip, format!("{detail} (a production topic fails here)")) }
}

pub(super) async fn notifications(loaded: &LoadedSpec, obs: &Observation, aws: Option<&providers::aws::Aws>) -> Vec<Outcome> {
    let production = loaded.is_production();
    let mut out = Vec::new();
    let mut own_arns = BTreeSet::new();
    for d in obs.desired.iter().filter(|d| d.address.kind == Kind::Topic) {
        let t = Instant::now();
        let name = format!("{} has a confirmed subscriber", d.address);
        let Some(Some(o)) = obs.observed.get(&d.address) else {
            out.push(outcome(G, name, Status::Fail, t, "it does not exist: run `poactl apply`"));
            continue;
        };
        if let Some(arn) = o.outputs.get("arn") {
            own_arns.insert(arn.clone());
        }
        let confirmed: u64 = o.outputs.get("confirmed").and_then(|c| c.parse().ok()).unwrap_or(0);
        let pending: Vec<&str> = o.handle["pending"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let pending_text = if pending.is_empty() { String::new() } else { format!("; pending confirmation: {}", pending.join(", ")) };
        let (status, detail) = if confirmed > 0 {
            (Status::Pass, format!("{confirmed} confirmed{pending_text}"))
        } else if pending.is_empty() {
            nobody(production, "no subscriber at all: alarms on this topic reach nobody; add an email or https subscriber".to_string())
        } else {
            nobody(
                production,
                format!(
                    "no subscriber has confirmed{pending_text}: each owner must follow the link SNS sent (it expires after 3 days; `poactl apply` then sends a new one)"
                ),
            )
        };
        out.push(outcome(G, name, status, t, detail));
    }
    let Some(aws) = aws else { return out };
    for arn in foreign_topics(obs, &own_arns) {
        let t = Instant::now();
        let name = format!("topic {arn} exists and has a confirmed subscriber");
        let region = arn.split(':').nth(3).unwrap_or_default();
        let (status, detail) = match aws.sns(region).call("GetTopicAttributes", Params::new().set("TopicArn", &arn), true).await {
            Ok(answer) => {
                let attrs = providers::aws::sns::attributes(&answer, "GetTopicAttributesResult");
                let count = |k: &str| attrs.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                let (confirmed, pending) = (count("SubscriptionsConfirmed"), count("SubscriptionsPending"));
                if confirmed > 0 {
                    (Status::Pass, format!("{confirmed} confirmed, {pending} pending (not managed by poactl)"))
                } else {
                    nobody(
                        production,
                        format!(
                            "no confirmed subscriber ({pending} pending): alarms on it reach nobody; the topic is not poactl's, so subscribe someone where it is managed"
                        ),
                    )
                }
            }
            Err(e) if refusal_code(&e) == Some("NotFound") => (
                Status::Fail,
                "the topic does not exist: alarms on it reach nobody; create it, or use a topic of notifications.topics".to_string(),
            ),
            Err(e) if refusal_code(&e) == Some("AuthorizationError") => {
                (Status::Skip, format!("cannot be read with these credentials (another account's topic?): {e}"))
            }
            Err(e) => (Status::Fail, format!("GetTopicAttributes: {e}")),
        };
        out.push(outcome(G, name, status, t, detail));
    }
    out
}

/// The SNS topics alarms notify by ARN that are not the spec's own.
fn foreign_topics(obs: &Observation, own: &BTreeSet<String>) -> BTreeSet<String> {
    obs.desired
        .iter()
        .filter(|d| matches!(d.address.kind, Kind::Alarm | Kind::BillingAlarm))
        .flat_map(|d| ["alarm_actions", "ok_actions"].map(|k| d.attrs.get(k).cloned().unwrap_or(Value::Null)))
        .flat_map(|list| list.as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(String::from))
        .filter(|a| a.starts_with("arn:") && a.split(':').nth(2) == Some("sns") && !own.contains(a))
        .collect()
}
