//! `poactl check`: parses, reads the live state the checks need, runs `crate::check`, prints
//! each outcome and picks the exit code (0 when none failed, 1 otherwise).

use anyhow::{Result, bail};
use serde_json::json;

use super::{format, load_env, observe_declared};
use crate::check::{self, GROUPS};
use crate::cli::{CheckArgs, Global, OutputFormat};
use crate::exit;
use crate::progress::Progress;
use crate::providers::{self, Connections, Desired};
use crate::resource::Kind;

/// `poactl check`.
pub(super) async fn run(g: &Global, a: CheckArgs) -> Result<u8> {
    if let Some(bad) = a.only.iter().find(|o| !GROUPS.contains(&o.as_str())) {
        bail!("--only {bad}: not a group of checks; use {}", GROUPS.join(", "));
    }
    let want = |group: &str| a.only.is_empty() || a.only.iter().any(|o| o == group);
    let loaded = load_env(g)?;
    let desired: Vec<Desired> = providers::desired(&loaded).into_iter().filter(|d| !d.address.kind.in_database()).collect();
    let kinds: std::collections::BTreeSet<Kind> = desired.iter().map(|d| d.address.kind).collect();
    let progress = Progress::for_terminal(g.quiet || format(g) != OutputFormat::Text);
    let obs = observe_declared(g, &loaded, &Connections::default(), desired, Default::default(), &progress).await?;
    let aws = if kinds.iter().any(|k| matches!(k, Kind::Bucket | Kind::Distribution | Kind::Alarm | Kind::BillingAlarm)) {
        Some(providers::aws::Aws::new(loaded.spec.aws_region()).await)
    } else {
        None
    };
    let results = crate::check::run(&loaded, &obs, aws.as_ref(), &want, &progress).await;
    let failed = results.iter().filter(|r| r.status == check::Status::Fail).count();
    match format(g) {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"environment": loaded.env, "passed": failed == 0, "failed": failed, "checks": results}))?
        ),
        _ => {
            for r in &results {
                let mark = match r.status {
                    check::Status::Pass => "pass",
                    check::Status::Fail => "FAIL",
                    check::Status::Skip => "skip",
                };
                println!(
                    "  {mark}  {:<8} {} ({} ms){}",
                    r.group,
                    r.name,
                    r.ms,
                    if r.detail.is_empty() { String::new() } else { format!(": {}", r.detail) }
                );
            }
            let passed = results.iter().filter(|r| r.status == check::Status::Pass).count();
            let skipped = results.len() - passed - failed;
            println!("\nCheck of \"{}\": {passed} passed, {failed} failed, {skipped} skipped.", loaded.env);
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::ERROR })
}
