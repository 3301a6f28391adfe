//! `poactl drift`: the live state against the spec, for CI.

use super::{Session, format};
use crate::cli::{DriftArgs, Global, OutputFormat};
use crate::plan::PlanOptions;
use crate::{exit, secrets};
use anyhow::Result;

pub(super) async fn drift_cmd(g: &Global, a: DriftArgs) -> Result<u8> {
    let s = Session::open(g, &a.connect).await?;
    let obs = match s.observe(false).await {
        Ok(o) => o,
        Err(e) => return super::session::interrupted(e),
    };
    let plan = s.plan(&obs, PlanOptions::default());
    let drifted = plan.has_drift() || (a.strict && !plan.unmanaged.is_empty());
    match format(g) {
        OutputFormat::Json => println!("{}", secrets::redact(&serde_json::to_string_pretty(&crate::view::drift_json(&plan, drifted))?)),
        OutputFormat::Markdown => print!("{}", crate::view::drift_markdown(&plan, drifted)?),
        OutputFormat::Text => print!("{}", crate::view::drift_text(&plan, drifted)),
    }
    Ok(if drifted { exit::CHANGES } else { exit::OK })
}
