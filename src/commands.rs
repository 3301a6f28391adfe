//! The commands: each loads the spec, talks to the engine, and prints its result.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::cli::{ApplyArgs, Cli, Command, ConnectArgs, CostArgs, DestroyArgs, DriftArgs, Global, OutputArgs, OutputFormat, PlanArgs};
use crate::engine::{Engine, Observation};
use crate::plan::{self, Action, Plan, PlanOptions, render};
use crate::progress::Progress;
use crate::providers::{self, Connections, Registry, RunOptions};
use crate::resource::{Kind, Targets};
use crate::spec::{self, LoadedSpec};
use crate::{exit, secrets};

mod audit;
mod check;
mod migrate;

pub(crate) async fn run(cli: Cli) -> Result<u8> {
    let result = run_command(cli).await;
    providers::atlas::client::revoke_issued_tokens().await;
    result
}

async fn run_command(cli: Cli) -> Result<u8> {
    let g = cli.global;
    match cli.command {
        Command::Validate => validate(&g),
        Command::Plan(a) => plan_cmd(&g, a).await,
        Command::Apply(a) => apply_cmd(&g, a).await,
        Command::Drift(a) => drift_cmd(&g, a).await,
        Command::Destroy(a) => destroy_cmd(&g, a).await,
        Command::Cost(a) => cost_cmd(&g, a),
        Command::Output(a) => output_cmd(&g, a).await,
        Command::Unlock(a) => unlock_cmd(&g, a).await,
        Command::Migrate(m) => migrate::run(&g, m).await,
        Command::Audit(a) => audit::run(&g, a).await,
        Command::Check(a) => check::run(&g, a).await,
        Command::Sandbox(a) => {
            let settings = crate::sandbox::Settings {
                listen: a.listen,
                cluster_delay: a.cluster_delay,
                rate_limit: a.rate_limit,
                url_file: a.url_file,
                mongo_listen: a.mongo_listen,
                mongo_url_file: a.mongo_url_file,
            };
            crate::sandbox::command(settings).await.map(|()| crate::exit::OK)
        }
    }
}

pub(crate) fn color(g: &Global) -> bool {
    !g.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

pub(crate) fn format(g: &Global) -> OutputFormat {
    g.output.unwrap_or(OutputFormat::Text)
}

/// Loads and checks the environment `-e` names; registers its secrets for redaction.
/// Reads the live state of `desired` (declared resources), and lists the live resources the
/// spec does not declare for the `discover` kinds only: the read `output`, `audit`, `check`
/// and `migrate` share.
pub(crate) async fn observe_declared(
    g: &Global,
    loaded: &LoadedSpec,
    conn: &Connections,
    desired: Vec<providers::Desired>,
    discover: std::collections::BTreeSet<Kind>,
    progress: &Progress,
) -> Result<Observation> {
    let mut kinds: std::collections::BTreeSet<Kind> = desired.iter().map(|d| d.address.kind).collect();
    kinds.extend(discover.iter().copied());
    let registry = Registry::for_spec(loaded, conn, Some(&kinds)).await?;
    let mut engine = Engine::new(loaded, &registry, progress, g.parallelism.map(usize::from));
    engine.discover_kinds = Some(discover);
    Ok(engine.observe(desired).await?)
}

pub(crate) fn load_env(g: &Global) -> Result<LoadedSpec> {
    let Some(env) = &g.env else {
        bail!("no environment given: pass -e NAME (a file in {}/) or set POACTL_ENV", g.environments_dir.display());
    };
    let lookup = |name: &str| std::env::var(name).ok();
    let loaded = spec::load(&g.environments_dir, env, &lookup)?;
    secrets::register(&loaded.secrets);
    Ok(loaded)
}

fn validate(g: &Global) -> Result<u8> {
    let file = g.env.as_deref().map(|e| spec::load::env_file(&g.environments_dir, e));
    match load_env(g) {
        Ok(loaded) => {
            let summary = loaded.spec.summary();
            let warnings = spec::validate::warnings(&loaded);
            if format(g) != OutputFormat::Json {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
            }
            match format(g) {
                OutputFormat::Json => println!(
                    "{}",
                    json!({"valid": true, "environment": loaded.env, "files": loaded.files, "summary": summary, "resources": spec::addresses(&loaded.spec).iter().map(|a| a.to_string()).collect::<Vec<_>>(), "warnings": warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>()})
                ),
                _ => println!("{}: environment \"{}\" is valid: {summary}", loaded.files[0].display(), loaded.env),
            }
            Ok(exit::OK)
        }
        Err(e) if format(g) == OutputFormat::Json => {
            let errors = match e.downcast_ref::<spec::SpecErrors>() {
                Some(errs) => errs
                    .0
                    .iter()
                    .map(|e| json!({"file": e.loc.as_ref().map(|l| l.file.to_string()), "line": e.loc.as_ref().map(|l| l.line), "column": e.loc.as_ref().map(|l| l.col), "path": e.path, "message": e.message, "hint": e.hint}))
                    .collect(),
                None => vec![json!({"file": file, "message": e.to_string()})],
            };
            println!("{}", secrets::redact(&json!({"valid": false, "errors": errors}).to_string()));
            Ok(exit::ERROR)
        }
        Err(e) => Err(e),
    }
}

fn connections(c: &ConnectArgs) -> Connections {
    Connections { mongodb_uri: c.mongodb_uri.clone() }
}

/// Everything a command that reads live state needs.
struct Session {
    loaded: LoadedSpec,
    registry: Registry,
    progress: Progress,
    parallelism: Option<usize>,
    targets: Targets,
}

impl Session {
    async fn open(g: &Global, connect: &ConnectArgs) -> Result<Session> {
        let loaded = load_env(g)?;
        let targets = Targets::new(&connect.targets);
        let registry = Registry::for_spec(&loaded, &connections(connect), targets.kinds().as_ref()).await?;
        let progress = Progress::for_terminal(g.quiet || format(g) != OutputFormat::Text);
        Ok(Session { loaded, registry, progress, parallelism: g.parallelism.map(usize::from), targets })
    }

    fn engine(&self, options: RunOptions) -> Engine<'_> {
        let mut engine = Engine::new(&self.loaded, &self.registry, &self.progress, self.parallelism);
        engine.options = options;
        engine.discover_kinds = self.targets.kinds();
        engine
    }

    /// Whether `--target` selects an address (all do without `--target`).
    fn targeted(&self, address: &crate::resource::Address) -> bool {
        self.targets.selects(address)
    }

    /// Reads the live state. Unmanaged resources are listed only for the kinds the spec uses,
    /// unless `every_kind` (`--prune`, `destroy`): a bucket-only spec then needs an S3-only role,
    /// not CloudFront and CloudWatch read rights.
    async fn observe(&self, every_kind: bool) -> Result<Observation> {
        let all = providers::desired(&self.loaded);
        if !self.targets.is_empty() && !all.iter().any(|d| self.targeted(&d.address)) {
            bail!("--target {} matches no resource of environment \"{}\"", self.targets, self.loaded.env);
        }
        let used: std::collections::BTreeSet<Kind> = all.iter().map(|d| d.address.kind).collect();
        let desired = all.into_iter().filter(|d| self.targeted(&d.address)).collect();
        let mut engine = self.engine(RunOptions::default());
        if !every_kind {
            let scope = engine.discover_kinds.take().unwrap_or_else(|| Kind::ALL.into_iter().collect());
            engine.discover_kinds = Some(scope.intersection(&used).copied().collect());
        }
        let mut obs = engine.observe(desired).await?;
        obs.unmanaged.retain(|(a, _)| self.targeted(a));
        Ok(obs)
    }

    fn plan(&self, obs: &Observation, options: PlanOptions) -> Plan {
        let mut plan = self.engine(RunOptions::default()).plan(obs, options);
        plan.cost = crate::cost::plan_delta(&self.loaded, &plan);
        plan
    }
}

fn print_plan(g: &Global, plan: &Plan, verb: &str) -> Result<()> {
    match format(g) {
        OutputFormat::Json => println!("{}", render::json(plan)),
        OutputFormat::Markdown => print!("{}", crate::view::plan_markdown(plan)?),
        OutputFormat::Text => print!("{}", render::text(plan, render::Style { color: color(g) }, verb)),
    }
    Ok(())
}

/// One sentence per kind of conflict: not owned, not changeable now, not readable.
fn conflict_error(plan: &Plan) -> String {
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

async fn plan_cmd(g: &Global, a: PlanArgs) -> Result<u8> {
    let s = Session::open(g, &a.connect).await?;
    let obs = s.observe(a.prune || !a.delete.is_empty()).await?;
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
        std::fs::write(path, render::json(&plan)).with_context(|| format!("cannot write the plan to {}", path.display()))?;
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

/// Takes the environment's lock for `apply`/`destroy` (and starts listening for Ctrl-C, which
/// from now on stops the run cleanly). A lock on this machine only is said out loud.
async fn take_lock(g: &Global, s: &Session, operation: &str) -> Result<crate::lock::Lock> {
    crate::interrupt::install();
    let lock = crate::lock::acquire(&s.loaded, operation).await?;
    if lock.is_local() && !g.quiet {
        eprintln!(
            "warning: environment \"{}\" has no `lock:` section: this {operation} is locked against runs on this machine only, not against concurrent CI runs (see docs/spec.md, lock)",
            s.loaded.env
        );
    }
    Ok(lock)
}

/// Resources whose deletion needs `--allow-destroy`: anything holding data, and anything at
/// all in a protected environment.
fn needs_allow_destroy(plan: &Plan, protect: bool) -> Vec<&plan::ResourceChange> {
    plan.destructive().filter(|r| protect || r.address.kind.holds_data()).collect()
}

fn confirm(prompt: &str) -> Result<bool> {
    eprint!("{prompt} Only 'yes' will be accepted: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("cannot read the confirmation")?;
    Ok(answer.trim() == "yes")
}

async fn apply_cmd(g: &Global, mut a: ApplyArgs) -> Result<u8> {
    let saved = match &a.plan {
        Some(path) => Some(read_saved_plan(path)?),
        None => None,
    };
    // A saved plan is applied with the options (and targets) it was made with.
    if let Some(p) = &saved {
        a.connect.targets = p.options.targets.clone();
    }
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

async fn apply_locked(g: &Global, s: &Session, a: &ApplyArgs, saved: Option<&Plan>, options: PlanOptions) -> Result<u8> {
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

struct ApplyFlags {
    auto_approve: bool,
    allow_destroy: bool,
    run: RunOptions,
    verb: &'static str,
}

async fn run_apply(g: &Global, s: &Session, plan: Plan, obs: &Observation, flags: ApplyFlags) -> Result<u8> {
    let json_out = format(g) == OutputFormat::Json;
    if !plan.has_changes() {
        if json_out {
            println!(
                "{}",
                json!({"plan": serde_json::from_str::<serde_json::Value>(&render::json(&plan))?, "apply": {"ok": plan.conflicts.is_empty(), "done": [], "failed": [], "skipped": []}})
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
        .filter(|r| r.action == Action::Replace && r.address.kind == Kind::Index)
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
                &json!({"plan": serde_json::from_str::<serde_json::Value>(&render::json(&plan))?, "apply": report.json()}).to_string()
            )
        );
    } else if !g.quiet || !report.ok() {
        print!("\n{}", report.text());
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

async fn unlock_cmd(g: &Global, a: crate::cli::UnlockArgs) -> Result<u8> {
    let loaded = load_env(g)?;
    let holder = crate::lock::current(&loaded).await?;
    let broken = a.force && holder.is_some();
    if broken {
        crate::lock::force_unlock(&loaded).await?;
    }
    if format(g) == OutputFormat::Json {
        println!("{}", json!({"environment": loaded.env, "locked": holder.is_some() && !broken, "broken": broken, "holder": holder}));
    } else {
        match &holder {
            None => println!("environment \"{}\" is not locked", loaded.env),
            Some(h) if broken => println!("broke the lock of environment \"{}\": {h}", loaded.env),
            Some(h) => {
                println!("environment \"{}\" is locked: {h}", loaded.env);
                println!("if that run is gone, break the lock with: poactl unlock -e {} --force", loaded.env);
            }
        }
    }
    Ok(if holder.is_some() && !broken { exit::CHANGES } else { exit::OK })
}

fn read_saved_plan(path: &std::path::Path) -> Result<Plan> {
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

async fn drift_cmd(g: &Global, a: DriftArgs) -> Result<u8> {
    let s = Session::open(g, &a.connect).await?;
    let obs = s.observe(false).await?;
    let plan = s.plan(&obs, PlanOptions::default());
    let drifted = plan.has_drift() || (a.strict && !plan.unmanaged.is_empty());
    match format(g) {
        OutputFormat::Json => println!("{}", secrets::redact(&serde_json::to_string_pretty(&crate::view::drift_json(&plan, drifted))?)),
        OutputFormat::Markdown => print!("{}", crate::view::drift_markdown(&plan, drifted)?),
        OutputFormat::Text => print!("{}", crate::view::drift_text(&plan, drifted)),
    }
    Ok(if drifted { exit::CHANGES } else { exit::OK })
}

async fn destroy_cmd(g: &Global, a: DestroyArgs) -> Result<u8> {
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

async fn destroy_locked(g: &Global, s: &Session, a: &DestroyArgs) -> Result<u8> {
    let obs = s.observe(true).await?;
    let mut plan = s.plan(&obs, PlanOptions { destroy: true, ..PlanOptions::default() });
    // Indexes go with their collections' data only by choice: destroy leaves MongoDB alone
    // unless it is the only thing in the spec.
    plan.resources.retain(|r| r.action == Action::Delete && r.address.kind != Kind::Index);
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

/// `poactl cost`.
fn cost_cmd(g: &Global, a: CostArgs) -> Result<u8> {
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

/// `poactl output`: live outputs through a Tera template.
async fn output_cmd(g: &Global, a: OutputArgs) -> Result<u8> {
    if a.show_secrets && std::io::stdout().is_terminal() {
        bail!("--show-secrets writes passwords; it is refused on a terminal. Redirect stdout to a file (e.g. > .env) instead");
    }
    let (name, template) = match &a.template {
        Some(path) => {
            (path.display().to_string(), std::fs::read_to_string(path).with_context(|| format!("cannot read template {}", path.display()))?)
        }
        None => ("app.env.tera".to_string(), crate::view::APP_ENV.to_string()),
    };
    let loaded = load_env(g)?;
    let progress = crate::progress::Progress::for_terminal(g.quiet);
    // Outputs need the declared resources only: no listing of unmanaged ones.
    let desired: Vec<_> = crate::providers::desired(&loaded).into_iter().filter(|d| d.address.kind != Kind::Index).collect();
    let conn = Connections { mongodb_uri: a.connect.mongodb_uri.clone() };
    let obs = observe_declared(g, &loaded, &conn, desired, Default::default(), &progress).await?;
    let ctx = crate::view::output_context(&loaded, &obs.outputs, a.show_secrets);
    let text = crate::view::render_one(&name, &template, &ctx)?;
    let text = if a.show_secrets { text } else { crate::secrets::redact(&text) };
    match format(g) {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&if a.show_secrets { ctx } else { crate::view::redacted(ctx) })?),
        _ => print!("{text}"),
    }
    Ok(crate::exit::OK)
}
