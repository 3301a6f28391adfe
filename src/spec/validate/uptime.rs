//! `monitoring.uptime`, checked offline. The rules and their sources (Route 53 API reference,
//! HealthCheckConfig):
//! - the URL is http(s)://host[:port][/path]: Type HTTP(S), FullyQualifiedDomainName, Port,
//!   ResourcePath;
//! - `RequestInterval` is 10 or 30 seconds, `FailureThreshold` 1 to 10;
//! - `SearchString` is at most 255 characters;
//! - `Regions`: at least three of us-east-1, us-west-1, us-west-2, eu-west-1, ap-southeast-1,
//!   ap-southeast-2, ap-northeast-1, sa-east-1;
//! - the alarm lives in us-east-1, where Route 53 publishes HealthCheckStatus, and an alarm's
//!   SNS topic must be in its region (CloudWatch User Guide, "Using Amazon CloudWatch alarms").

use super::Checker;
use crate::spec::model::MonitoringSpec;
use crate::spec::yaml::PathSeg;

const CHECKER_REGIONS: &[&str] =
    &["us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"];

pub(super) fn check_uptime(c: &mut Checker, m: &MonitoringSpec) {
    let alarms: Vec<&str> = m.alarms.iter().map(|a| a.name.as_str()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for (i, u) in m.uptime.iter().enumerate() {
        let at = |f: &str| path!("monitoring", "uptime", i, f);
        if u.name.is_empty() || !u.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
            c.err(at("name"), format!("`{}` is not an uptime check name", u.name), "letters, digits, - and _");
        }
        if !seen.insert(u.name.clone()) {
            c.err(at("name"), format!("duplicate uptime check `{}`", u.name), "each uptime check has its own name");
        }
        if alarms.contains(&u.alarm_name().as_str()) {
            c.err(
                at("name"),
                format!("the check's alarm would be `{}`, which monitoring.alarms already names", u.alarm_name()),
                "rename one of them",
            );
        }
        match u.parsed_url() {
            None => c.err(at("url"), format!("`{}` is not an http(s) URL", u.url), "e.g. https://api.poafix.example/health"),
            Some(url)
                if !url.host.contains('.') || url.host.contains(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '.' || ch == '-')) =>
            {
                c.err(at("url"), format!("`{}` is not a public host name", url.host), "Route 53 checks public endpoints by name")
            }
            Some(_) => {}
        }
        if let Some(d) = &u.interval
            && d.seconds != 10
            && d.seconds != 30
        {
            c.err(at("interval"), "Route 53 checks every 10 or 30 seconds", "interval: 30s (10s is the fast, dearer interval)");
        }
        if let Some(n) = u.failure_threshold
            && !(1..=10).contains(&n)
        {
            c.err(at("failure_threshold"), "Route 53 takes 1 to 10 failures in a row", "e.g. failure_threshold: 3");
        }
        if u.search.as_ref().is_some_and(|s| s.is_empty() || s.len() > 255) {
            c.err(at("search"), "the string to look for has 1 to 255 characters", "e.g. search: \"ok\"");
        }
        if !u.regions.is_empty() && u.regions.len() < 3 {
            c.err(
                at("regions"),
                "Route 53 checks from at least three regions",
                format!("pick three or more of {}", CHECKER_REGIONS.join(", ")),
            );
        }
        for r in &u.regions {
            c.one_of(at("regions"), "Route 53 checker region", r, CHECKER_REGIONS);
        }
        for (j, target) in u.notify.iter().enumerate() {
            super::ops::check_notify_target(c, path!("monitoring", "uptime", i, "notify", j), target, "us-east-1");
        }
    }
}
