//! `poactl cost`: the estimate from the dated catalog, and the budget gate.

use super::{format, load_env_offline};
use crate::cli::{CostArgs, Global, OutputFormat};
use crate::view::CostView;
use anyhow::{Result, bail};

/// `poactl cost`.
pub(super) fn cost_cmd(g: &Global, a: CostArgs) -> Result<u8> {
    let loaded = load_env_offline(g)?;
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
    let (base, scenarios) = estimates.split_first().ok_or_else(|| anyhow::anyhow!("no estimate was made"))?;
    let view = CostView { env: &loaded.env, catalog: &catalog, base, scenarios, budget };
    match format(g) {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&crate::view::cost_json(&view))?),
        OutputFormat::Markdown => print!("{}", crate::view::cost_markdown(&view)?),
        OutputFormat::Text => print!("{}", crate::view::cost_text(&view)),
    }
    if let Some(b) = budget {
        let over: Vec<String> =
            estimates.iter().filter(|e| e.over_budget(b)).map(|e| format!("{} ${:.2}", e.scenario, e.total_monthly_usd)).collect();
        if !over.is_empty() {
            eprintln!("over budget: {} > ${b:.2} a month", over.join(", "));
            return Ok(crate::exit::CHANGES);
        }
    }
    Ok(crate::exit::OK)
}
