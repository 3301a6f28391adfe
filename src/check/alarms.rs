//! Each alarm and alert exists and reports.

use std::time::Instant;

use super::{Outcome, Status, outcome};
use crate::engine::Observation;
use crate::providers;
use crate::resource::Kind;

/// A day without data: longer than any period poactl allows, and than the billing metric's
/// interval (AWS publishes EstimatedCharges about every 6 hours).
const NO_DATA_FOR_LONG: i64 = 24 * 3600;

/// Each alarm and alert exists; an alarm still without data after a day is a fail: its metric
/// or dimensions are wrong, or, for billing, "Receive Billing Alerts" is off in the account.
pub(super) async fn alarms(obs: &Observation, aws: Option<&providers::aws::Aws>) -> Vec<Outcome> {
    const G: &str = "alarms";
    let mut out = Vec::new();
    for d in obs.desired.iter().filter(|d| matches!(d.address.kind, Kind::Alarm | Kind::BillingAlarm | Kind::AtlasAlert)) {
        let t = Instant::now();
        let name = format!("{} exists and reports", d.address);
        let Some(Some(o)) = obs.observed.get(&d.address) else {
            out.push(outcome(G, name, Status::Fail, t, "it does not exist: run `poactl apply`"));
            continue;
        };
        if d.address.kind == Kind::AtlasAlert {
            let enabled = o.attrs.get("enabled").and_then(|e| e.as_bool()).unwrap_or(true);
            out.push(outcome(
                G,
                name,
                if enabled { Status::Pass } else { Status::Fail },
                t,
                if enabled { "" } else { "the alert is disabled in Atlas" },
            ));
            continue;
        }
        let Some(aws) = aws else { continue };
        let region = if d.address.kind == Kind::BillingAlarm {
            providers::aws::cloudwatch::BILLING_REGION.to_string()
        } else {
            d.attrs.get("region").and_then(|r| r.as_str()).map(String::from).unwrap_or_else(|| aws.region.clone())
        };
        let cw = aws.cloudwatch(&region).await;
        let alarm = match cw.describe_alarms().alarm_names(&o.id).send().await {
            Ok(r) => r.metric_alarms.unwrap_or_default().into_iter().next(),
            Err(e) => {
                out.push(outcome(
                    G,
                    name,
                    Status::Fail,
                    t,
                    format!("DescribeAlarms: {}", aws_sdk_cloudwatch::error::DisplayErrorContext(&e)),
                ));
                continue;
            }
        };
        let Some(alarm) = alarm else {
            out.push(outcome(G, name, Status::Fail, t, "it does not exist: run `poactl apply`"));
            continue;
        };
        let state = alarm.state_value.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default();
        let since = alarm.state_updated_timestamp.map(|ts| ts.secs());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let long = since.is_some_and(|s| now - s > NO_DATA_FOR_LONG);
        let (status, detail) = match (state.as_str(), long, d.address.kind) {
            ("INSUFFICIENT_DATA", true, Kind::BillingAlarm) => (
                Status::Fail,
                "no billing data for over a day: turn on \"Receive Billing Alerts\" in the account's Billing preferences (billing metrics are published to us-east-1 only once it is on)".to_string(),
            ),
            ("INSUFFICIENT_DATA", true, _) => {
                (Status::Fail, "no data for over a day: check the metric's namespace, name and dimensions".to_string())
            }
            ("INSUFFICIENT_DATA", false, _) => (Status::Pass, "INSUFFICIENT_DATA (new; data arrives within the metric's period)".to_string()),
            (s, _, _) => (Status::Pass, s.to_string()),
        };
        out.push(outcome(G, name, status, t, detail));
    }
    out
}
