//! What `apply` did, as text and as the `apply` part of `--output json`.

use serde_json::{Value, json};

use crate::plan::{Action, ApplyReport, Failure, FailureClass};
use crate::resource::Address;
use crate::secrets;

fn heading(class: FailureClass) -> &'static str {
    match class {
        FailureClass::TimedOut => "TIMED OUT, still in progress on the service",
        FailureClass::Refused => "REFUSED",
        FailureClass::Failed => "FAILED",
    }
}

fn past_tense(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "deleted",
        Action::NoOp => "unchanged",
    }
}

pub fn report_text<E: Failure>(report: &ApplyReport<E>) -> String {
    let mut out = String::new();
    let mut done: Vec<_> = report.done.iter().collect();
    done.sort_by(|a, b| a.0.cmp(&b.0));
    for (addr, action, secs) in done {
        out.push_str(&format!("  {} {addr}: {} ({secs:.1}s)\n", action.symbol(), past_tense(*action)));
    }
    for (addr, _, err) in &report.failed {
        out.push_str(&format!("  ! {addr}: {}: {}\n", heading(err.class()), secrets::redact(&err.to_string())));
    }
    for (addr, _, why) in &report.skipped {
        out.push_str(&format!("  ! {addr}: not applied: {}\n", secrets::redact(why)));
    }
    let count = |a: &[Action]| report.done.iter().filter(|d| a.contains(&d.1)).count();
    let added = count(&[Action::Create, Action::Replace]);
    let changed = count(&[Action::Update]);
    let destroyed = count(&[Action::Delete, Action::Replace]);
    if report.ok() {
        out.push_str(&format!(
            "\nApply complete! Resources: {added} added, {changed} changed, {destroyed} destroyed ({:.1}s).\n",
            report.seconds
        ));
    } else {
        out.push_str(&format!(
            "\nApply incomplete: {} done ({added} added, {changed} changed, {destroyed} destroyed), {} failed, {} not applied. Fix the errors and run apply again: it picks up where this left off.\n",
            report.done.len(),
            report.failed.len(),
            report.skipped.len()
        ));
    }
    out
}

pub fn report_json<E: Failure>(report: &ApplyReport<E>) -> Value {
    let item = |a: &Address, act: &Action| json!({"address": a.to_string(), "action": act});
    json!({
        "ok": report.ok(),
        "seconds": report.seconds,
        "done": report.done.iter().map(|(a, act, s)| { let mut v = item(a, act); v["seconds"] = json!(s); v }).collect::<Vec<_>>(),
        "failed": report.failed.iter().map(|(a, act, e)| { let mut v = item(a, act); v["error"] = json!(secrets::redact(&e.to_string())); v["class"] = json!(e.class()); v }).collect::<Vec<_>>(),
        "skipped": report.skipped.iter().map(|(a, act, e)| { let mut v = item(a, act); v["reason"] = json!(secrets::redact(e)); v }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Kind;

    /// A failure of a given class: the view needs nothing else of the engine's error.
    struct Fake(FailureClass, &'static str);

    impl std::fmt::Display for Fake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.1)
        }
    }

    impl Failure for Fake {
        fn class(&self) -> FailureClass {
            self.0
        }
    }

    fn alarm(name: &str) -> Address {
        Address::new(Kind::Alarm, name)
    }

    #[test]
    fn each_class_has_its_heading_in_text_and_json() {
        // (resource, class, its JSON name, the text line)
        let cases = [
            ("broken", FailureClass::Failed, "failed", "monitoring.alarms.broken: FAILED: broken is broken"),
            ("refused", FailureClass::Refused, "refused", "monitoring.alarms.refused: REFUSED: refused is not allowed"),
            ("slow", FailureClass::TimedOut, "timed_out", "monitoring.alarms.slow: TIMED OUT, still in progress on the service: slow"),
        ];
        let report = ApplyReport {
            failed: cases.iter().map(|(n, class, _, _)| (alarm(n), Action::Create, Fake(*class, n_message(n)))).collect(),
            ..ApplyReport::default()
        };
        let text = report_text(&report);
        let json = report_json(&report);
        assert!(text.contains("Apply incomplete: 0 done (0 added, 0 changed, 0 destroyed), 3 failed, 0 not applied."), "{text}");
        for (name, class, json_name, line) in cases {
            assert!(text.contains(line), "{name}: {text}");
            let item = json["failed"].as_array().unwrap().iter().find(|f| f["address"] == alarm(name).to_string()).unwrap();
            assert_eq!(item["class"], json_name, "{item}");
            assert_eq!(class.as_str(), json_name);
        }
        assert_eq!(json["ok"], false);
    }

    fn n_message(name: &str) -> &'static str {
        match name {
            "broken" => "broken is broken",
            "refused" => "refused is not allowed",
            _ => "slow",
        }
    }

    #[test]
    fn a_complete_run_counts_a_replacement_as_added_and_destroyed() {
        let report: ApplyReport<Fake> = ApplyReport {
            done: vec![(alarm("b"), Action::Replace, 1.0), (alarm("a"), Action::Create, 0.5), (alarm("c"), Action::Delete, 0.3)],
            seconds: 2.0,
            ..ApplyReport::default()
        };
        let text = report_text(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "  + monitoring.alarms.a: created (0.5s)",
                "  -/+ monitoring.alarms.b: replaced (1.0s)",
                "  - monitoring.alarms.c: deleted (0.3s)"
            ]
        );
        assert!(text.contains("Apply complete! Resources: 2 added, 0 changed, 2 destroyed (2.0s)."), "{text}");
        assert_eq!(report_json(&report)["done"].as_array().unwrap().len(), 3);
    }
}
