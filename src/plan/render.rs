//! Human and machine views of a plan. The plan is computed once; these only format it.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Action, FieldChange, Plan};
use crate::secrets::{self, REDACTED};

pub const UNKNOWN: &str = "(known after apply)";

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

fn action_color(a: Action) -> &'static str {
    match a {
        Action::Create => "32",
        Action::Update => "33",
        Action::Replace => "35",
        Action::Delete => "31",
        Action::NoOp => "0",
    }
}

/// A field value as shown to people: secrets and unknowns never appear as values.
pub fn show_value(change: &FieldChange, v: Option<&Value>, is_after: bool) -> String {
    if change.sensitive {
        return REDACTED.to_string();
    }
    if is_after && change.unknown {
        return UNKNOWN.to_string();
    }
    match v {
        None => "(absent)".to_string(),
        Some(v) => secrets::redact(&compact(v)),
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// The Terraform-style text plan.
pub fn text(plan: &Plan, style: Style, verb: &str) -> String {
    let mut out = String::new();
    let changes: Vec<_> = plan.resources.iter().filter(|r| r.action != Action::NoOp).collect();
    let in_progress = plan.resources.iter().filter(|r| r.reason == super::Reason::InProgress).count();
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
                        super::Reason::Pruned => "not in the spec (--prune)",
                        super::Reason::Destroy => "destroy",
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
pub fn unhealthy_lines(plan: &Plan, style: Style) -> String {
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
pub fn json(plan: &Plan) -> String {
    let mut value = serde_json::to_value(plan).unwrap_or(Value::Null);
    redact_json(&mut value);
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Replaces sensitive and secret-bearing values in a JSON document.
pub fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("sensitive") == Some(&Value::Bool(true)) {
                for key in ["before", "after"] {
                    if map.contains_key(key) {
                        map.insert(key.to_string(), Value::String(REDACTED.to_string()));
                    }
                }
            }
            for (_, child) in map.iter_mut() {
                redact_json(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::String(s) => {
            let r = secrets::redact(s);
            if r != *s {
                *s = r;
            }
        }
        _ => {}
    }
}

/// Unmanaged resources grouped by kind, at most `per_kind` listed per kind.
pub fn unmanaged_lines(unmanaged: &[super::Unmanaged], per_kind: usize) -> String {
    let mut by_kind: std::collections::BTreeMap<crate::resource::Kind, Vec<&super::Unmanaged>> = Default::default();
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
