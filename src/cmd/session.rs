//! One run against an environment: its spec, providers and engine, and its apply lock.

use super::{connections, format, load_env};
use crate::cli::{ConnectArgs, Global, OutputFormat};
use crate::engine::{Engine, Observation};
use crate::exit;
use crate::plan::{Plan, PlanOptions};
use crate::progress::Progress;
use crate::providers::{self, Registry, RunOptions};
use crate::resource::{Kind, Targets};
use crate::spec::LoadedSpec;
use anyhow::{Result, bail};
use serde_json::json;

/// Everything a command that reads live state needs.
pub(super) struct Session {
    pub(super) loaded: LoadedSpec,
    pub(super) registry: Registry,
    pub(super) progress: Progress,
    pub(super) parallelism: Option<usize>,
    pub(super) targets: Targets,
}

impl Session {
    pub(super) async fn open(g: &Global, connect: &ConnectArgs) -> Result<Session> {
        let loaded = load_env(g)?;
        let targets = Targets::new(&connect.targets);
        let registry = Registry::for_spec(&loaded, &connections(connect), targets.kinds().as_ref()).await?;
        let progress = Progress::for_terminal(g.quiet || format(g) != OutputFormat::Text);
        Ok(Session { loaded, registry, progress, parallelism: g.parallelism.map(usize::from), targets })
    }

    pub(super) fn engine(&self, options: RunOptions) -> Engine<'_> {
        let mut engine = Engine::new(&self.loaded, &self.registry, &self.progress, self.parallelism);
        engine.options = options;
        engine.discover_kinds = self.targets.kinds();
        engine
    }

    /// Whether `--target` selects an address (all do without `--target`).
    pub(super) fn targeted(&self, address: &crate::resource::Address) -> bool {
        self.targets.selects(address)
    }

    /// Reads the live state. Unmanaged resources are listed only for the kinds the spec uses,
    /// unless `every_kind` (`--prune`, `destroy`): a bucket-only spec then needs an S3-only role,
    /// not CloudFront and CloudWatch read rights. Kinds whose listing reads the whole account
    /// one resource at a time are listed only for `every_kind` too.
    pub(super) async fn observe(&self, every_kind: bool) -> Result<Observation> {
        // Ctrl-C from here on ends the reads at once, with the report (`interrupt`).
        crate::interrupt::install();
        let all = providers::desired(&self.loaded);
        if !self.targets.is_empty() && !all.iter().any(|d| self.targeted(&d.address)) {
            bail!("--target {} matches no resource of environment \"{}\"", self.targets, self.loaded.env);
        }
        let used: std::collections::BTreeSet<Kind> = all.iter().map(|d| d.address.kind).collect();
        let desired = all.into_iter().filter(|d| self.targeted(&d.address)).collect();
        let mut engine = self.engine(RunOptions::default());
        if !every_kind {
            let scope = engine.discover_kinds.take().unwrap_or_else(|| Kind::ALL.into_iter().collect());
            let on_demand = |k: &Kind| self.registry.get(*k).is_some_and(|p| p.discover_on_demand());
            let policed = |k: &Kind| self.registry.get(*k).is_some_and(|p| p.polices(&self.loaded));
            engine.discover_kinds = Some(scope.iter().filter(|k| (used.contains(k) || policed(k)) && !on_demand(k)).copied().collect());
        }
        let mut obs = engine.observe(desired).await?;
        obs.unmanaged.retain(|(a, _)| self.targeted(a));
        Ok(obs)
    }

    pub(super) fn plan(&self, obs: &Observation, options: PlanOptions) -> Plan {
        let mut plan = self.engine(RunOptions::default()).plan(obs, options);
        plan.cost = crate::cost::plan_delta(&self.loaded, &plan);
        plan
    }
}

/// Takes the environment's lock for `apply`/`destroy` (and starts listening for Ctrl-C, which
/// from now on stops the run cleanly). A lock on this machine only is said out loud.
pub(super) async fn take_lock(g: &Global, s: &Session, operation: &str) -> Result<crate::lock::Lock> {
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

pub(super) async fn unlock_cmd(g: &Global, a: crate::cli::UnlockArgs) -> Result<u8> {
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

/// A read cut short by Ctrl-C exits 130 with its error; any other error goes up.
pub(super) fn interrupted(e: anyhow::Error) -> Result<u8> {
    if crate::interrupt::requested() {
        eprintln!("error: {}", crate::secrets::redact(&format!("{e:#}")));
        return Ok(crate::interrupt::EXIT);
    }
    Err(e)
}
