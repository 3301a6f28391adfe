//! `poactl cost`: the estimate from the dated catalog, and the budget gate.

use super::{format, load_env};
use crate::cli::{CostArgs, Global, OutputFormat};
use anyhow::{Result, bail};
use serde_json::json;

/// `poactl cost`.
pub(super) fn cost_cmd(g: &Global, a: CostArgs) -> Result<u8> {
    let loaded = load_env(g)?;
    let catalog = match &a.catalog {
        Some(p) => crate::cost::Catalog::load(p)?,
        None => crate::cost::Catalog::builtin(),
    };
    let spec = &loaded.spec;
    let mut estimates = vec![crate::cost::estimate(spec, &crate::cost::Usage::base(spec.usage.as_ref()), &catalog, "base")];
    let names: Vec<String> = if a.scenario.iter().any(|s| s == "all") {
        spec.usage.iter().flat_map(|u| u.scenarios.iter().map(|s| s.name.clone())).collect()
    } else {
        a.scenario.clone()
    };
    for name in &names {
        let usage = spec.usage.as_ref().and_then(|u| crate::cost::Usage::scenario(u, name));
        let Some(usage) = usage else {
            let known: Vec<String> = spec.usage.iter().flat_map(|u| u.scenarios.iter().map(|s| s.name.clone())).collect();
            bail!(
                "no scenario `{name}` in usage.scenarios of environment \"{}\" (scenarios: {})",
                loaded.env,
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            );
        };
        estimates.push(crate::cost::estimate(spec, &usage, &catalog, name));
    }
    let budget = a.budget.or_else(|| spec.billing.as_ref().and_then(|b| b.budget_usd));
    let over: Vec<&crate::cost::Estimate> =
        budget.map(|b| estimates.iter().filter(|e| e.total_monthly_usd > b + 1e-9).collect()).unwrap_or_default();

    match format(g) {
        OutputFormat::Json => {
            let base = &estimates[0];
            let v = json!({
                "environment": loaded.env,
                "currency": catalog.currency,
                "catalog_as_of": catalog.as_of(),
                "hours_per_month": catalog.hours_per_month,
                "total_monthly_usd": base.total_monthly_usd,
                "resources": base.lines,
                "not_in_catalog": base.not_in_catalog,
                "scenarios": estimates[1..].iter().map(|e| json!({"name": e.scenario, "total_monthly_usd": e.total_monthly_usd, "resources": e.lines})).collect::<Vec<_>>(),
                "budget_usd": budget,
                "over_budget": !over.is_empty(),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        OutputFormat::Markdown => print!("{}", crate::view::cost_markdown(&loaded.env, &catalog, &estimates, budget)?),
        OutputFormat::Text => print!("{}", crate::cost::cost_text(&loaded.env, &catalog, &estimates, budget)),
    }
    if let Some(b) = budget
        && !over.is_empty()
    {
        let names: Vec<String> = over.iter().map(|e| format!("{} ${:.2}", e.scenario, e.total_monthly_usd)).collect();
        eprintln!("over budget: {} > ${b:.2} a month", names.join(", "));
        return Ok(crate::exit::CHANGES);
    }
    Ok(crate::exit::OK)
}
