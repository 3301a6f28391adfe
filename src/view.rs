//! Tera rendering: Markdown reports (plan, drift, cost) and `poactl output` (the app's `.env`).
//!
//! The templates in `templates/` are built into the binary; `--template FILE` renders another.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tera::Tera;

use crate::cost::{Catalog, Estimate};
use crate::plan::{Action, Plan, ResourceChange, render};
use crate::resource::Kind;
use crate::secrets;

pub const PLAN_MD: &str = include_str!("../templates/plan.md.tera");
pub const DRIFT_MD: &str = include_str!("../templates/drift.md.tera");
pub const COST_MD: &str = include_str!("../templates/cost.md.tera");
pub const APP_ENV: &str = include_str!("../templates/app.env.tera");

pub fn render_one(name: &str, template: &str, context: &Value) -> Result<String> {
    let mut tera = Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_template(name, template).map_err(|e| anyhow::anyhow!("template {name}: {}", tera_error(&e)))?;
    let ctx = tera::Context::from_value(context.clone()).context("template context")?;
    tera.render(name, &ctx).map_err(|e| anyhow::anyhow!("cannot render {name}: {}", tera_error(&e)))
}

/// Tera's errors nest the useful part in their sources.
fn tera_error(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// The one projection of a resource change every format shares: address, kind, action and
/// its symbol, the drift status, the live id, notes, and each field with its raw live and
/// desired values (`live`/`desired`: redacted when sensitive, `(known after apply)` when
/// unknown) and the same values as shown to people (`before`/`after`).
pub fn change_json(r: &ResourceChange) -> Value {
    json!({
        "address": r.address.to_string(),
        "kind": r.address.kind,
        "action": r.action,
        "symbol": r.action.symbol(),
        "status": r.action.drift_status(),
        "id": r.id,
        "notes": r.notes,
        "fields": r.changes.iter().map(|c| json!({
            "path": c.path,
            "live": if c.sensitive { json!(secrets::REDACTED) } else { c.before.clone().unwrap_or(Value::Null) },
            "desired": if c.sensitive { json!(secrets::REDACTED) } else if c.unknown { json!(render::UNKNOWN) } else { c.after.clone().unwrap_or(Value::Null) },
            "before": render::show_value(c, c.before.as_ref(), false),
            "after": render::show_value(c, c.after.as_ref(), true),
            "forces_replace": c.forces_replace,
        })).collect::<Vec<_>>(),
    })
}

fn plan_context(plan: &Plan) -> Value {
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

pub fn plan_markdown(plan: &Plan) -> Result<String> {
    Ok(secrets::redact(&render_one("plan.md", PLAN_MD, &plan_context(plan))?))
}

pub fn drift_markdown(plan: &Plan, drifted: bool) -> Result<String> {
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
        "in_progress": plan.resources.iter().filter(|r| r.reason == crate::plan::Reason::InProgress).map(|r| json!({"address": r.address.to_string(), "notes": r.notes})).collect::<Vec<_>>(),
        "checked": plan.resources.len(),
        "resources": resources,
        "conflicts": plan.conflicts,
        // Live resources not doing what the spec asks (snapshots not on schedule): drift.
        "unhealthy": plan.unhealthy,
        "unmanaged": plan.unmanaged,
    })
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
                        render::show_value(c, c.before.as_ref(), false),
                        render::show_value(c, c.after.as_ref(), true)
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
    for r in plan.resources.iter().filter(|r| r.reason == crate::plan::Reason::InProgress) {
        let _ = writeln!(out, "\n  still in progress (not drift): {}: {}", r.address, r.notes.join("; "));
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
        out.push_str(&render::unmanaged_lines(&plan.unmanaged, 3));
    }
    secrets::redact(&out)
}

pub fn cost_markdown(env: &str, catalog: &Catalog, estimates: &[Estimate], budget: Option<f64>) -> Result<String> {
    let base = &estimates[0];
    let rows: Vec<Value> = base
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "resource": l.resource,
                "item": l.item,
                "quantity": format!("{}{}", trim_num(l.quantity), if l.unit.is_empty() { String::new() } else { format!(" {}", l.unit) }),
                "free": l.free.map(trim_num),
                "monthly": l.monthly_usd.map(|v| format!("{v:.2}")).unwrap_or_else(|| "not in catalog".into()),
                "scenarios": estimates[1..].iter().map(|e| e.lines.get(i).and_then(|l| l.monthly_usd).map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into())).collect::<Vec<_>>(),
                "notes": l.notes,
            })
        })
        .collect();
    let ctx = json!({
        "environment": env,
        "currency": catalog.currency,
        "as_of": catalog.as_of(),
        "rows": rows,
        "total": format!("{:.2}", base.total_monthly_usd),
        "scenarios": estimates[1..].iter().map(|e| json!({"name": e.scenario, "total": format!("{:.2}", e.total_monthly_usd), "over": budget.is_some_and(|b| e.total_monthly_usd > b)})).collect::<Vec<_>>(),
        "budget": budget.map(|b| format!("{b:.2}")),
        "over_budget": budget.is_some_and(|b| base.total_monthly_usd > b),
        "not_in_catalog": base.not_in_catalog,
        "sources": base.lines.iter().filter_map(|l| l.source.clone()).collect::<std::collections::BTreeSet<_>>(),
    });
    render_one("cost.md", COST_MD, &ctx)
}

fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 { format!("{}", v as i64) } else { format!("{v:.2}") }
}

/// `poactl output`: renders a template from live outputs (read-only).
pub fn redacted(mut v: Value) -> Value {
    crate::plan::render::redact_json(&mut v);
    v
}

/// What templates see: the environment, every resource's live outputs by address and by kind,
/// and (only with `--show-secrets`) the database users' passwords.
pub fn output_context(
    loaded: &crate::spec::LoadedSpec,
    outputs: &BTreeMap<crate::resource::Address, BTreeMap<String, String>>,
    show_secrets: bool,
) -> Value {
    let spec = &loaded.spec;
    let by_kind = |kind: Kind| -> Value {
        Value::Object(outputs.iter().filter(|(a, _)| a.kind == kind).map(|(a, o)| (a.name.clone(), json!(o))).collect())
    };
    let users: Vec<Value> = spec
        .atlas
        .iter()
        .flat_map(|a| a.database_users.iter())
        .map(|u| json!({"username": u.username, "password": if show_secrets { json!(u.password) } else { json!(secrets::REDACTED) }, "roles": u.roles}))
        .collect();
    json!({
        "environment": loaded.env,
        "aws_region": spec.aws_region(),
        "database": spec.database.as_ref().map(|d| json!({"name": d.name})),
        "outputs": outputs.iter().map(|(a, o)| (a.to_string(), json!(o))).collect::<serde_json::Map<_, _>>(),
        "project": spec.atlas.as_ref().and_then(|a| outputs.get(&crate::resource::Address::new(Kind::AtlasProject, &a.project))),
        "clusters": by_kind(Kind::AtlasCluster),
        "buckets": by_kind(Kind::Bucket),
        "distributions": by_kind(Kind::Distribution),
        "alarms": by_kind(Kind::Alarm),
        "users": users,
        "show_secrets": show_secrets,
    })
}
