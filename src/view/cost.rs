//! `poactl cost` in its three formats: the table, JSON and Markdown, over one estimate set.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{TemplateError, render_one};
use crate::cost::{Catalog, Estimate, Line};

pub(super) const COST_MD: &str = include_str!("../../templates/cost.md.tera");

/// What every cost view shows: the base estimate, the scenarios asked for, and the budget.
#[derive(Debug, Clone, Copy)]
pub struct CostView<'a> {
    pub env: &'a str,
    pub catalog: &'a Catalog,
    pub base: &'a Estimate,
    pub scenarios: &'a [Estimate],
    pub budget: Option<f64>,
}

impl CostView<'_> {
    /// The base first, then the scenarios.
    fn all(&self) -> impl Iterator<Item = &Estimate> {
        std::iter::once(self.base).chain(self.scenarios)
    }

    fn over(&self, e: &Estimate) -> bool {
        self.budget.is_some_and(|b| e.over_budget(b))
    }

    fn sources(&self) -> BTreeSet<String> {
        self.base.lines.iter().filter_map(|l| l.source.clone()).collect()
    }
}

/// A number as a person writes it: `3`, `2.50`.
fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 { format!("{}", v as i64) } else { format!("{v:.2}") }
}

fn money(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}"))
}

fn quantity(l: &Line) -> String {
    let mut s = format!("{} {}", trim_num(l.quantity), l.unit);
    if let Some(f) = l.free {
        let _ = write!(s, " ({} free)", trim_num(f));
    }
    s
}

pub fn cost_text(v: &CostView<'_>) -> String {
    let mut out = String::new();
    let base = v.base;
    let _ = writeln!(
        out,
        "Monthly cost estimate for environment \"{}\" ({}, catalog as of {}, {} hours a month)\n",
        v.env,
        v.catalog.currency,
        v.catalog.as_of(),
        v.catalog.hours_per_month
    );
    let w_res = base.lines.iter().map(|l| l.resource.len()).max().unwrap_or(8).max(8);
    let w_item = base.lines.iter().map(|l| l.item.len()).max().unwrap_or(4).max(4);
    let w_q = base.lines.iter().map(|l| quantity(l).len()).max().unwrap_or(8).max(8);
    let mut header = format!("{:<w_res$}  {:<w_item$}  {:<w_q$}  {:>10}", "RESOURCE", "ITEM", "QUANTITY", "BASE");
    for e in v.scenarios {
        let _ = write!(header, "  {:>10}", e.scenario.to_uppercase());
    }
    let _ = writeln!(out, "{header}");
    for (i, l) in base.lines.iter().enumerate() {
        let mut row = format!("{:<w_res$}  {:<w_item$}  {:<w_q$}  {:>10}", l.resource, l.item, quantity(l), money(l.monthly_usd));
        for e in v.scenarios {
            let _ = write!(row, "  {:>10}", money(e.lines.get(i).and_then(|l| l.monthly_usd)));
        }
        let _ = writeln!(out, "{row}");
        for n in &l.notes {
            let _ = writeln!(out, "{:<w_res$}    - {n}", "");
        }
    }
    let mut total = format!("{:<w_res$}  {:<w_item$}  {:<w_q$}  {:>10}", "TOTAL", "", "", format!("{:.2}", base.total_monthly_usd));
    for e in v.scenarios {
        let _ = write!(total, "  {:>10}", format!("{:.2}", e.total_monthly_usd));
    }
    let _ = writeln!(out, "{total}");
    if !base.not_in_catalog.is_empty() {
        let _ = writeln!(out, "\nNot in catalog (not counted): {}", base.not_in_catalog.join("; "));
    }
    if let Some(b) = v.budget {
        for e in v.all() {
            let verdict = if v.over(e) { "OVER budget" } else { "within budget" };
            let who = if std::ptr::eq(e, base) { "Estimate" } else { &e.scenario };
            let _ = writeln!(out, "{who}: ${:.2} of ${b:.2} budget: {verdict}", e.total_monthly_usd);
        }
    }
    let sources = v.sources();
    if !sources.is_empty() {
        let _ = writeln!(out, "\nSources: {}", sources.into_iter().collect::<Vec<_>>().join(", "));
    }
    out
}

pub fn cost_json(v: &CostView<'_>) -> Value {
    json!({
        "environment": v.env,
        "currency": v.catalog.currency,
        "catalog_as_of": v.catalog.as_of(),
        "hours_per_month": v.catalog.hours_per_month,
        "total_monthly_usd": v.base.total_monthly_usd,
        "resources": v.base.lines,
        "not_in_catalog": v.base.not_in_catalog,
        "scenarios": v.scenarios.iter().map(|e| json!({"name": e.scenario, "total_monthly_usd": e.total_monthly_usd, "resources": e.lines})).collect::<Vec<_>>(),
        "budget_usd": v.budget,
        "over_budget": v.all().any(|e| v.over(e)),
    })
}

pub fn cost_markdown(v: &CostView<'_>) -> Result<String, TemplateError> {
    let base = v.base;
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
                "scenarios": v.scenarios.iter().map(|e| money(e.lines.get(i).and_then(|l| l.monthly_usd))).collect::<Vec<_>>(),
                "notes": l.notes,
            })
        })
        .collect();
    let ctx = json!({
        "environment": v.env,
        "currency": v.catalog.currency,
        "as_of": v.catalog.as_of(),
        "rows": rows,
        "total": format!("{:.2}", base.total_monthly_usd),
        "scenarios": v.scenarios.iter().map(|e| json!({"name": e.scenario, "total": format!("{:.2}", e.total_monthly_usd), "over": v.over(e)})).collect::<Vec<_>>(),
        "budget": v.budget.map(|b| format!("{b:.2}")),
        "over_budget": v.over(base),
        "not_in_catalog": base.not_in_catalog,
        "sources": v.sources(),
    });
    render_one("cost.md", COST_MD, &ctx)
}
