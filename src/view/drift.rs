//! `poactl drift`: text, JSON and Markdown.

use serde_json::{Value, json};

use super::plan::{plan_context, unmanaged_lines};
use super::{TemplateError, change_json, render_one, show_value};
use crate::plan::{Action, Plan, Reason};
use crate::secrets;

pub(super) const DRIFT_MD: &str = include_str!("../../templates/drift.md.tera");

pub fn drift_markdown(plan: &Plan, drifted: bool) -> Result<String, TemplateError> {
    let mut ctx = plan_context(plan);
    ctx["drifted"] = json!(drifted);
    Ok(secrets::redact(&render_one("drift.md", DRIFT_MD, &ctx)?))
}

/// `poactl drift -o json`.
pub fn drift_json(plan: &Plan, drifted: bool) -> Value {
    // A missing resource is missing as a whole: its fields are what apply creates.
    let resources: Vec<Value> = plan
        .resources
        .iter()
        .filter(|r| r.action != Action::NoOp)
        .map(|r| {
            let mut c = change_json(r);
            if r.action == Action::Create {
                c["fields"] = json!([]);
            }
            c
        })
        .collect();
    json!({
        "format_version": crate::plan::FORMAT_VERSION,
        "environment": plan.environment,
        "drifted": drifted,
        "unused_indexes": unused_indexes(plan).iter().map(|(a, n)| json!({"address": a, "note": n})).collect::<Vec<_>>(),
        // Not drift: matches the spec once the service finishes (an index build).
        "in_progress": plan.resources.iter().filter(|r| r.reason == Reason::InProgress).map(|r| json!({"address": r.address.to_string(), "notes": r.notes})).collect::<Vec<_>>(),
        "notes": noted(plan).map(|r| json!({"address": r.address.to_string(), "notes": r.notes})).collect::<Vec<_>>(),
        "checked": plan.resources.len(),
        "resources": resources,
        "conflicts": plan.conflicts,
        // Live resources not doing what the spec asks (snapshots not on schedule): drift.
        "unhealthy": plan.unhealthy,
        "unmanaged": plan.unmanaged,
    })
}

/// Resources that match the spec and carry a provider's note (a subscription pending
/// confirmation): information, never drift. In-progress ones are listed as such.
fn noted(plan: &Plan) -> impl Iterator<Item = &crate::plan::ResourceChange> {
    plan.resources.iter().filter(|r| r.action == Action::NoOp && r.reason != Reason::InProgress && !r.notes.is_empty())
}

/// What the providers report as unused (indexes, from `$indexStats`): information, never drift.
fn unused_indexes(plan: &Plan) -> Vec<(String, String)> {
    plan.unused.iter().map(|u| (u.address.to_string(), format!("unused: {}", u.message))).collect()
}

/// `poactl drift` as text.
pub fn drift_text(plan: &Plan, drifted: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let changed: Vec<_> = plan.resources.iter().filter(|r| r.action != Action::NoOp).collect();
    if !drifted {
        let _ =
            writeln!(out, "No drift: environment \"{}\" matches its spec ({} resources checked).", plan.environment, plan.resources.len());
    } else {
        let _ = writeln!(
            out,
            "Drift in environment \"{}\": {} of {} resources differ from the spec.",
            plan.environment,
            changed.len() + plan.conflicts.len() + plan.unhealthy.len(),
            plan.resources.len()
        );
        for r in &changed {
            let _ = writeln!(out, "\n  {} {}: {}", r.action.symbol(), r.address, r.action.drift_status());
            if r.action != Action::Create {
                for c in &r.changes {
                    let _ = writeln!(
                        out,
                        "      {}: live {}, spec {}",
                        c.path,
                        show_value(c, c.before.as_ref(), false),
                        show_value(c, c.after.as_ref(), true)
                    );
                }
            }
        }
        for c in &plan.conflicts {
            let _ = writeln!(out, "\n  ! {}: {}", c.address, c.message);
        }
        for u in &plan.unhealthy {
            let _ = writeln!(out, "\n  ! {}: not working: {}", u.address, u.message);
        }
    }
    for r in plan.resources.iter().filter(|r| r.reason == Reason::InProgress) {
        let _ = writeln!(out, "\n  still in progress (not drift): {}: {}", r.address, r.notes.join("; "));
    }
    let noted: Vec<_> = noted(plan).collect();
    if !noted.is_empty() {
        let _ = writeln!(out, "\nNotes (information; not drift):");
        for r in noted {
            for n in &r.notes {
                let _ = writeln!(out, "  {}: {n}", r.address);
            }
        }
    }
    let unused = unused_indexes(plan);
    if !unused.is_empty() {
        let _ = writeln!(out, "\nUnused indexes (information; not drift):");
        for (a, n) in &unused {
            let _ = writeln!(out, "  {a}: {n}");
        }
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(out, "\nUnmanaged (information; not drift): {} live resource(s) not in the spec.", plan.unmanaged.len());
        out.push_str(&unmanaged_lines(&plan.unmanaged, 3));
    }
    secrets::redact(&out)
}
