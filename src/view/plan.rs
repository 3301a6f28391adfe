//! A plan as text (Terraform's layout), JSON (the document `--out` writes) and Markdown.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Style, TemplateError, action_color, change_json, redact_json, render_one, show_value};
use crate::plan::{Action, Plan, Reason, Unmanaged};
use crate::secrets;

pub(super) const PLAN_MD: &str = include_str!("../../templates/plan.md.tera");

/// The Terraform-style text plan.
pub fn plan_text(plan: &Plan, style: Style, verb: &str) -> String {
    let mut out = String::new();
    let changes: Vec<_> = plan.resources.iter().filter(|r| r.action != Action::NoOp).collect();
    let in_progress = plan.resources.iter().filter(|r| r.reason == Reason::InProgress).count();
    if changes.is_empty() && plan.conflicts.is_empty() && in_progress > 0 {
        let _ = writeln!(
            out,
            "Nothing to change, but not finished: environment \"{}\" matches its spec once {in_progress} resource(s) the service is still working on finish ({} resources checked).",
            plan.environment,
            plan.resources.len()
        );
    } else if changes.is_empty() && plan.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "No changes. Environment \"{}\" matches its spec ({} resources checked).",
            plan.environment,
            plan.resources.len()
        );
    } else if !changes.is_empty() {
        let _ = writeln!(out, "poactl {verb} the following actions in environment \"{}\":\n", plan.environment);
        for r in &changes {
            let sym = style.paint(action_color(r.action), r.action.symbol());
            let mut head = format!("  {sym} {}", r.address);
            if let Some(id) = &r.id {
                let _ = write!(head, " ({id})");
            }
            if r.action == Action::Replace {
                let forced: Vec<&str> = r.changes.iter().filter(|c| c.forces_replace).map(|c| c.path.as_str()).collect();
                let _ = write!(head, "  # forces replacement: {}", forced.join(", "));
            }
            if r.action == Action::Delete {
                let _ = write!(
                    head,
                    "  # {}",
                    match r.reason {
                        Reason::Pruned => "not in the spec (--prune)",
                        Reason::Destroy => "destroy",
                        _ => "delete",
                    }
                );
            }
            let _ = writeln!(out, "{head}");
            for c in &r.changes {
                let line = match r.action {
                    Action::Create => format!("      + {} = {}", c.path, show_value(c, c.after.as_ref(), true)),
                    _ => {
                        let mark = if c.forces_replace { "  # forces replacement" } else { "" };
                        format!(
                            "      ~ {}: {} -> {}{mark}",
                            c.path,
                            show_value(c, c.before.as_ref(), false),
                            show_value(c, c.after.as_ref(), true)
                        )
                    }
                };
                let _ = writeln!(out, "{line}");
            }
            for n in &r.notes {
                let _ = writeln!(out, "      # {}", secrets::redact(n));
            }
        }
        out.push('\n');
    }
    let notes: Vec<_> = plan.resources.iter().filter(|r| r.action == Action::NoOp && !r.notes.is_empty()).collect();
    for r in notes {
        for n in &r.notes {
            let _ = writeln!(out, "  note: {}: {}", r.address, secrets::redact(n));
        }
    }
    for u in &plan.unused {
        let _ = writeln!(out, "  note: {}: unused: {}", u.address, secrets::redact(&u.message));
    }
    if !plan.conflicts.is_empty() {
        let _ = writeln!(out, "{}", style.paint("31", "Conflicts (poactl will not touch these):"));
        for c in &plan.conflicts {
            let _ = writeln!(out, "  ! {}: {}", c.address, secrets::redact(&c.message));
        }
        out.push('\n');
    }
    out.push_str(&unhealthy_lines(plan, style));
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(out, "Unmanaged: {} live resource(s) not in the spec (kept; `--prune` deletes them):", plan.unmanaged.len());
        out.push_str(&unmanaged_lines(&plan.unmanaged, 5));
        out.push('\n');
    }
    if let Some(cost) = &plan.cost
        && cost.delta_usd.abs() >= 0.005
    {
        let _ = writeln!(
            out,
            "Monthly cost: ${:.2} -> ${:.2} ({}{:.2} USD)\n",
            cost.before_usd.max(0.0) + 0.0,
            cost.after_usd.max(0.0) + 0.0,
            if cost.delta_usd >= 0.0 { "+" } else { "-" },
            cost.delta_usd.abs()
        );
    }
    let s = plan.summary();
    if !changes.is_empty() {
        let _ = writeln!(out, "Plan: {} to add, {} to change, {} to destroy.", s.add, s.change, s.destroy);
    }
    out
}

/// Live resources not doing what the spec asks (no apply mends them), as a block of lines.
fn unhealthy_lines(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if !plan.unhealthy.is_empty() {
        let _ = writeln!(out, "{}", style.paint("31", "Not working as the spec asks (no apply mends these):"));
        for u in &plan.unhealthy {
            let _ = writeln!(out, "  ! {}: {}", u.address, secrets::redact(&u.message));
        }
        out.push('\n');
    }
    out
}

/// The plan as JSON (the same document `--out` writes). Secrets are redacted.
pub fn plan_json(plan: &Plan) -> String {
    let mut value = serde_json::to_value(plan).unwrap_or(Value::Null);
    redact_json(&mut value);
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Unmanaged resources grouped by kind, at most `per_kind` listed per kind.
pub(super) fn unmanaged_lines(unmanaged: &[Unmanaged], per_kind: usize) -> String {
    let mut by_kind: std::collections::BTreeMap<crate::resource::Kind, Vec<&Unmanaged>> = Default::default();
    for u in unmanaged {
        by_kind.entry(u.address.kind).or_default().push(u);
    }
    let mut out = String::new();
    for (kind, items) in by_kind {
        let _ = writeln!(out, "  {kind}: {}", items.len());
        for u in items.iter().take(per_kind) {
            let owned = if u.owned { " [owned by this environment]" } else { "" };
            let _ = writeln!(out, "    ? {} ({}){owned}", u.address.name, secrets::redact(&u.description));
        }
        if items.len() > per_kind {
            let _ = writeln!(out, "    ... and {} more (see --output json)", items.len() - per_kind);
        }
    }
    out
}

pub(super) fn plan_context(plan: &Plan) -> Value {
    let changes: Vec<Value> = plan.resources.iter().filter(|r| r.action != Action::NoOp).map(change_json).collect();
    let s = plan.summary();
    json!({
        "environment": plan.environment,
        "changes": changes,
        "summary": {"add": s.add, "change": s.change, "destroy": s.destroy},
        "checked": plan.resources.len(),
        "conflicts": plan.conflicts.iter().map(|c| json!({"address": c.address.to_string(), "message": c.message})).collect::<Vec<_>>(),
        "unhealthy": plan.unhealthy.iter().map(|u| json!({"address": u.address.to_string(), "message": u.message})).collect::<Vec<_>>(),
        "unmanaged": plan.unmanaged.iter().map(|u| json!({"address": u.address.to_string(), "description": u.description, "owned": u.owned})).collect::<Vec<_>>(),
        "cost": plan.cost.as_ref().filter(|c| c.delta_usd.abs() >= 0.005).map(|c| json!({
            "before": format!("{:.2}", c.before_usd.max(0.0) + 0.0),
            "after": format!("{:.2}", c.after_usd.max(0.0) + 0.0),
            "delta": format!("{}{:.2}", if c.delta_usd >= 0.0 { "+" } else { "-" }, c.delta_usd.abs()),
        })),
    })
}

pub fn plan_markdown(plan: &Plan) -> Result<String, TemplateError> {
    Ok(secrets::redact(&render_one("plan.md", PLAN_MD, &plan_context(plan))?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::{FieldChange, PlanOptions, ResourceChange};
    use crate::resource::{Address, Kind};

    fn field(path: &str, before: Option<Value>, after: Option<Value>) -> FieldChange {
        FieldChange { path: path.into(), before, after, forces_replace: false, sensitive: false, unknown: false }
    }

    fn change(name: &str, action: Action, reason: Reason, changes: Vec<FieldChange>) -> ResourceChange {
        ResourceChange { address: Address::new(Kind::Alarm, name), action, reason, id: None, changes, depends_on: vec![], notes: vec![] }
    }

    fn plan(resources: Vec<ResourceChange>) -> Plan {
        Plan {
            format_version: crate::plan::FORMAT_VERSION.into(),
            poactl_version: "test".into(),
            environment: "dev".into(),
            options: PlanOptions::default(),
            resources,
            unmanaged: vec![],
            conflicts: vec![],
            unhealthy: vec![],
            unused: vec![],
            spec_fingerprint: String::new(),
            state_fingerprint: String::new(),
            cost: None,
        }
    }

    #[test]
    fn each_action_has_its_lines() {
        let secret = FieldChange { sensitive: true, ..field("password", Some(json!("old")), Some(json!("new"))) };
        let later = FieldChange { unknown: true, ..field("topic", None, Some(json!("${x}"))) };
        // (the change, lines the text must hold)
        let table: Vec<(ResourceChange, Vec<&str>)> = vec![
            (
                change("same", Action::NoOp, Reason::Drifted, vec![]),
                vec!["No changes. Environment \"dev\" matches its spec (1 resources checked)."],
            ),
            (
                change("a", Action::Update, Reason::Drifted, vec![field("v", Some(json!(1)), Some(json!(2)))]),
                vec!["  ~ monitoring.alarms.a", "      ~ v: 1 -> 2", "Plan: 0 to add, 1 to change, 0 to destroy."],
            ),
            (
                change("b", Action::Create, Reason::Missing, vec![field("name", None, Some(json!("b"))), later]),
                vec!["  + monitoring.alarms.b", "      + name = \"b\"", "      + topic = (known after apply)", "Plan: 1 to add"],
            ),
            (
                change("c", Action::Delete, Reason::Pruned, vec![]),
                vec!["  - monitoring.alarms.c  # not in the spec (--prune)", "1 to destroy."],
            ),
            (change("d", Action::Update, Reason::Drifted, vec![secret]), vec!["      ~ password: (sensitive) -> (sensitive)"]),
        ];
        for (resource, lines) in table {
            let text = plan_text(&plan(vec![resource]), Style { color: false }, "would perform");
            for line in lines {
                assert!(text.contains(line), "{line:?} not in:\n{text}");
            }
            assert!(!text.contains("old") && !text.contains("\"new\""), "a sensitive value is never shown:\n{text}");
        }
    }
}
