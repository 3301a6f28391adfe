//! `poactl cost -o markdown`.

use serde_json::{Value, json};

use super::{TemplateError, render_one};
use crate::cost::{Catalog, Estimate};

pub(super) const COST_MD: &str = include_str!("../../templates/cost.md.tera");

pub fn cost_markdown(env: &str, catalog: &Catalog, estimates: &[Estimate], budget: Option<f64>) -> Result<String, TemplateError> {
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
