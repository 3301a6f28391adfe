//! `poactl audit`: reads the live state (unless `--offline`), runs `crate::audit`'s rules,
//! prints the findings and the app's IAM policy, and exits 2 at `--fail-on`.

use anyhow::Result;
use serde_json::json;

use super::{format, load_env, observe_declared};
use crate::audit::{self, Resource, Severity, Source};
use crate::cli::{AuditArgs, Global, OutputFormat};
use crate::progress::Progress;
use crate::providers::{self, Connections};
use crate::resource::Kind;
use crate::{exit, secrets};

/// `poactl audit`.
pub(super) async fn run(g: &Global, a: AuditArgs) -> Result<u8> {
    let loaded = load_env(g)?;
    let desired: Vec<_> = providers::desired(&loaded).into_iter().filter(|d| !d.address.kind.in_database()).collect();
    let mut resources: Vec<Resource> = Vec::new();
    if a.offline {
        resources.extend(desired.iter().map(|d| Resource { address: d.address.clone(), attrs: d.attrs.clone(), source: Source::Spec }));
    } else {
        // Entries and users added by hand are what an audit is for: they are listed whenever
        // the spec has an Atlas project, even if it declares none of them.
        let mut listed = std::collections::BTreeSet::new();
        if loaded.spec.atlas.is_some() {
            listed.extend([Kind::AtlasAccessList, Kind::AtlasUser]);
        }
        let progress = Progress::for_terminal(g.quiet || format(g) != OutputFormat::Text);
        let obs = observe_declared(g, &loaded, &Connections::default(), desired.clone(), listed, &progress).await?;
        for d in &desired {
            match obs.observed.get(&d.address).and_then(|o| o.as_ref()) {
                Some(o) => resources.push(Resource { address: d.address.clone(), attrs: o.attrs.clone(), source: Source::Live }),
                None => resources.push(Resource { address: d.address.clone(), attrs: d.attrs.clone(), source: Source::Spec }),
            }
        }
        resources.extend(obs.unmanaged.iter().map(|(addr, o)| Resource {
            address: addr.clone(),
            attrs: o.attrs.clone(),
            source: Source::Unmanaged,
        }));
    }
    let catalog = crate::cost::Catalog::builtin();
    let estimate = crate::cost::estimate(&loaded.spec, &crate::cost::Usage::base(loaded.spec.usage.as_ref()), &catalog, "base");
    let input = audit::Input { loaded: &loaded, resources, estimate_usd: estimate.total_monthly_usd };
    let findings = audit::run(&input);
    let policy = audit::app_policy(&loaded);
    let threshold = a.fail_on.map(|f| match f {
        crate::cli::SeverityArg::Low => Severity::Low,
        crate::cli::SeverityArg::Medium => Severity::Medium,
        crate::cli::SeverityArg::High => Severity::High,
    });
    let failing = threshold.is_some_and(|t| findings.iter().any(|f| f.severity >= t));
    match format(g) {
        OutputFormat::Json => println!(
            "{}",
            secrets::redact(&serde_json::to_string_pretty(
                &json!({"environment": loaded.env, "live": !a.offline, "findings": findings, "app_iam_policy": policy, "fail_on": threshold, "failed": failing})
            )?)
        ),
        _ => {
            let scope = if a.offline { "the spec (offline)" } else { "the spec and the live state" };
            if findings.is_empty() {
                println!("Audit of \"{}\" ({scope}): no findings ({} rules).", loaded.env, audit::RULES.len());
            } else {
                println!("Audit of \"{}\" ({scope}): {} finding(s) over {} rules.", loaded.env, findings.len(), audit::RULES.len());
                for f in &findings {
                    let src = match f.source {
                        Some(Source::Live) => " (live)",
                        Some(Source::Unmanaged) => " (live, not in the spec)",
                        Some(Source::Spec) => " (spec)",
                        None => "",
                    };
                    println!("\n  [{}] {}: {}{src}: {}", f.severity.as_str().to_uppercase(), f.rule, f.address, f.detail);
                    println!("      why: {}", f.why);
                    println!("      fix: {}", f.fix);
                }
            }
            println!("\nThe app's AWS keys need no more than this IAM policy (attach it to the app's own user or role, never admin keys):");
            println!("{}", serde_json::to_string_pretty(&policy)?);
        }
    }
    Ok(if failing { exit::CHANGES } else { exit::OK })
}
