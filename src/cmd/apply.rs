//! `poactl plan`, `apply` and `destroy`: the plan shown, confirmed, carried out and reported.

use super::{Session, color, confirm, format, take_lock};
use crate::cli::{ApplyArgs, DestroyArgs, Global, OutputFormat, PlanArgs};
use crate::engine::Observation;
use crate::plan::{self, Action, Plan, PlanOptions};
use crate::providers::RunOptions;
use crate::resource::Address;
use crate::view;
use crate::{exit, secrets};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::io::IsTerminal;

pub(super) fn print_plan(g: &Global, plan: &Plan, verb: &str) -> Result<()> {
    match format(g) {
        OutputFormat::Json => println!("{}", view::plan_json(plan)),
        OutputFormat::Markdown => print!("{}", view::plan_markdown(plan)?),
        OutputFormat::Text => print!("{}", view::plan_text(plan, view::Style { color: color(g) }, verb)),
    }
    Ok(())
}

/// One sentence per kind of conflict: not owned, not changeable now, not readable.
pub(super) fn conflict_error(plan: &Plan) -> String {
    use crate::plan::Reason;
    let reason_of = |a: &crate::resource::Address| plan.resources.iter().find(|r| &r.address == a).map(|r| r.reason);
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for c in &plan.conflicts {
        let what = match reason_of(&c.address) {
            Some(Reason::Blocked) => "cannot be changed in their current state and were left untouched",
            Some(Reason::Deferred) => "could not be read and were left untouched",
            _ => "exist but are not owned by poactl and were left untouched",
        };
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, list)) => list.push(c.address.to_string()),
            None => groups.push((what, vec![c.address.to_string()])),
        }
    }
    groups.into_iter().map(|(what, list)| format!("{} resource(s) {what}: {}", list.len(), list.join(", "))).collect::<Vec<_>>().join("; ")
}

/// `--delete` takes an address as the plan's unmanaged list prints it: anything else is refused
/// before anything is read.
fn check_delete_addresses(names: &[String]) -> Result<()> {
    if let Some(bad) = names.iter().find(|n| Address::parse(n).is_none()) {
        bail!(
            "--delete {bad}: not a resource address; use one from the plan's unmanaged list (KIND.NAME, such as atlas.access_list.203.0.113.0/24)"
        );
    }
    Ok(())
}

pub(super) async fn plan_cmd(g: &Global, a: PlanArgs) -> Result<u8> {
    check_delete_addresses(&a.delete)?;
    let s = Session::open(g, &a.connect).await?;
    let obs = match s.observe(a.prune || !a.delete.is_empty()).await {
        Ok(o) => o,
        Err(e) => return super::session::interrupted(e),
    };
    let plan = s.plan(
        &obs,
        PlanOptions {
            prune: a.prune,
            rotate_passwords: a.rotate_passwords,
            destroy: false,
            adopt: a.adopt,
            targets: a.connect.targets.clone(),
            delete: a.delete.clone(),
        },
    );
    if let Some(path) = &a.out {
        std::fs::write(path, view::plan_json(&plan)).with_context(|| format!("cannot write the plan to {}", path.display()))?;
    }
    print_plan(g, &plan, "would perform")?;
    if let Some(path) = &a.out
        && format(g) == OutputFormat::Text
        && !g.quiet
    {
        println!(
            "\nSaved the plan to {}. Apply exactly it with: poactl apply -e {} --plan {}",
            path.display(),
            plan.environment,
            path.display()
        );
    }
    if !plan.conflicts.is_empty() {
        eprintln!("error: {}", conflict_error(&plan));
        return Ok(exit::ERROR);
    }
    Ok(if a.detailed_exitcode && plan.has_changes() { exit::CHANGES } else { exit::OK })
}

/// Resources whose deletion needs `--allow-destroy`: anything holding data, and anything at
/// all in a protected environment.
pub(super) fn needs_allow_destroy(plan: &Plan, protect: bool) -> Vec<&plan::ResourceChange> {
    plan.destructive().filter(|r| protect || r.address.kind.holds_data()).collect()
}

pub(super) async fn apply_cmd(g: &Global, mut a: ApplyArgs) -> Result<u8> {
    let saved = match &a.plan {
        Some(path) => Some(read_saved_plan(path)?),
        None => None,
    };
    // A saved plan is applied with the options (and targets) it was made with.
    if let Some(p) = &saved {
        a.connect.targets = p.options.targets.clone();
    }
    // A saved plan is applied with its own options, `--delete` included.
    check_delete_addresses(saved.as_ref().map_or(&a.delete, |p| &p.options.delete))?;
    let s = Session::open(g, &a.connect).await?;
    let options = PlanOptions {
        prune: a.prune,
        rotate_passwords: a.rotate_passwords,
        destroy: false,
        adopt: a.adopt,
        targets: a.connect.targets.clone(),
        delete: a.delete.clone(),
    };
    let options = saved.as_ref().map(|p| p.options.clone()).unwrap_or(options);
    let lock = take_lock(g, &s, "apply").await?;
    let result = apply_locked(g, &s, &a, saved.as_ref(), options).await;
    lock.release().await;
    result
}

pub(super) async fn apply_locked(g: &Global, s: &Session, a: &ApplyArgs, saved: Option<&Plan>, options: PlanOptions) -> Result<u8> {
    let obs = s.observe(options.prune || !options.delete.is_empty()).await?;
    let plan = s.plan(&obs, options);
    if let Some(saved) = saved {
        crate::engine::check_saved_plan(saved, &plan)?;
    }
    run_apply(
        g,
        s,
        plan,
        &obs,
        ApplyFlags {
            auto_approve: a.auto_approve || saved.is_some(),
            allow_destroy: a.allow_destroy,
            run: RunOptions {
                wait: !a.no_wait,
                timeout: std::time::Duration::from_secs(a.timeout),
                rotate_passwords: a.rotate_passwords || saved.is_some_and(|p| p.options.rotate_passwords),
                allow_rebuild: a.allow_rebuild,
                drop_immediately: a.drop_immediately,
            },
            verb: "will perform",
        },
    )
    .await
}

pub(super) struct ApplyFlags {
    pub(super) auto_approve: bool,
    pub(super) allow_destroy: bool,
    pub(super) run: RunOptions,
    pub(super) verb: &'static str,
}

pub(super) async fn run_apply(g: &Global, s: &Session, plan: Plan, obs: &Observation, flags: ApplyFlags) -> Result<u8> {
    let json_out = format(g) == OutputFormat::Json;
    if !plan.has_changes() {
        if json_out {
            println!(
                "{}",
                json!({"plan": serde_json::from_str::<serde_json::Value>(&view::plan_json(&plan))?, "apply": {"ok": plan.conflicts.is_empty(), "done": [], "failed": [], "skipped": []}})
            );
        } else {
            print_plan(g, &plan, flags.verb)?;
        }
        if !plan.conflicts.is_empty() {
            eprintln!("error: {}", conflict_error(&plan));
            return Ok(exit::ERROR);
        }
        return Ok(exit::OK);
    }
    if !json_out && !g.quiet {
        print_plan(g, &plan, flags.verb)?;
    }
    let guarded = needs_allow_destroy(&plan, s.loaded.spec.protect);
    if !guarded.is_empty() && !flags.allow_destroy {
        let list: Vec<String> = guarded.iter().map(|r| format!("{} ({:?})", r.address, r.action).to_lowercase()).collect();
        let why = if s.loaded.spec.protect { "the environment has `protect: true`" } else { "they hold data" };
        bail!(
            "refusing to delete or replace {} because {why}: {}. Nothing was changed. Rerun with --allow-destroy if that is intended.",
            if guarded.len() == 1 { "a resource" } else { "resources" },
            list.join(", ")
        );
    }
    let rebuilds: Vec<String> = plan
        .resources
        .iter()
        .filter(|r| r.action == Action::Replace && r.address.kind.rebuilt_on_replace())
        .map(|r| r.address.to_string())
        .collect();
    if !rebuilds.is_empty() && !flags.run.allow_rebuild {
        bail!(
            "refusing to rebuild {} (dropped and created again: slow on big collections, and queries lose the index meanwhile): {}. Nothing was changed. Rerun with --allow-rebuild if that is intended.",
            if rebuilds.len() == 1 { "an index" } else { "indexes" },
            rebuilds.join(", ")
        );
    }
    if !flags.auto_approve {
        if !std::io::stdin().is_terminal() {
            bail!(
                "apply needs confirmation: rerun with --auto-approve (stdin is not a terminal), or apply a reviewed plan with --plan FILE"
            );
        }
        if !confirm(&format!("\nDo you want to apply these changes to \"{}\"?", plan.environment))? {
            eprintln!("Apply cancelled; nothing was changed.");
            return Ok(exit::ERROR);
        }
    }
    let engine = s.engine(flags.run);
    let report = engine.apply(&plan, obs).await;
    if json_out {
        println!(
            "{}",
            secrets::redact(
                &json!({"plan": serde_json::from_str::<serde_json::Value>(&view::plan_json(&plan))?, "apply": view::report_json(&report)})
                    .to_string()
            )
        );
    } else if !g.quiet || !report.ok() {
        print!("\n{}", view::report_text(&report));
    }
    if crate::interrupt::requested() {
        eprintln!("error: interrupted: what is listed as done is done; run apply again to finish the rest");
        return Ok(crate::interrupt::EXIT);
    }
    if !plan.conflicts.is_empty() {
        eprintln!("error: {}", conflict_error(&plan));
        return Ok(exit::ERROR);
    }
    Ok(if report.ok() { exit::OK } else { exit::ERROR })
}

pub(super) fn read_saved_plan(path: &std::path::Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the saved plan {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a plan file (invalid JSON)", path.display()))?;
    let version = value.get("format_version").and_then(|v| v.as_str()).unwrap_or("");
    let major = |v: &str| v.split('.').next().unwrap_or("").to_string();
    if major(version) != major(plan::FORMAT_VERSION) {
        bail!(
            "{} has plan format {version:?}; this poactl reads {}. Make the plan again with this version.",
            path.display(),
            plan::FORMAT_VERSION
        );
    }
    serde_json::from_value(value).with_context(|| format!("{} is not a valid poactl plan", path.display()))
}

pub(super) async fn destroy_cmd(g: &Global, a: DestroyArgs) -> Result<u8> {
    let s = Session::open(g, &a.connect).await?;
    if s.loaded.spec.protect {
        bail!(
            "environment \"{}\" has `protect: true`; destroy refuses protected environments. Remove `protect` from the spec first if you really mean it.",
            s.loaded.env
        );
    }
    if !a.allow_destroy {
        bail!("destroy deletes every resource environment \"{}\" owns, data included; rerun with --allow-destroy", s.loaded.env);
    }
    let lock = take_lock(g, &s, "destroy").await?;
    let result = destroy_locked(g, &s, &a).await;
    lock.release().await;
    result
}

pub(super) async fn destroy_locked(g: &Global, s: &Session, a: &DestroyArgs) -> Result<u8> {
    let obs = s.observe(true).await?;
    let mut plan = s.plan(&obs, PlanOptions { destroy: true, ..PlanOptions::default() });
    plan.resources.retain(|r| r.action == Action::Delete && !r.address.kind.kept_on_destroy());
    run_apply(
        g,
        s,
        plan,
        &obs,
        ApplyFlags {
            auto_approve: a.auto_approve,
            allow_destroy: true,
            run: RunOptions { wait: !a.no_wait, timeout: std::time::Duration::from_secs(a.timeout), ..RunOptions::default() },
            verb: "will perform",
        },
    )
    .await
}
