//! Observe, plan and apply: graph order, bounded concurrency, failure isolation.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::plan::{self, Action, Conflict, FieldChange, Plan, PlanOptions, Reason, ResourceChange, Unhealthy, Unmanaged};
use crate::progress::Progress;
use crate::providers::{self, Ctx, Desired, Lane, Observed, Outputs, Ownership, ProviderError, Registry, RunOptions};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;

/// How a node of the graph ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome<T, E = String> {
    Done(T),
    /// The work's own error, kept as its type (never made text in the runner).
    Failed(E),
    /// Not run because a dependency failed or was skipped.
    Skipped(String),
}

/// The runner's own failure: nodes that wait on each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle")]
pub struct Cycle;

impl From<Cycle> for String {
    fn from(c: Cycle) -> String {
        c.to_string()
    }
}

/// Runs `work` on every node once all its dependencies are done, at most `parallelism` at a
/// time. A failure skips the nodes that depend on it and nothing else. Dependencies outside
/// the node set count as done. A cycle fails the nodes on it.
#[cfg(test)]
pub(crate) async fn run_dag<K, T, E, F, Fut>(nodes: Vec<(K, Vec<K>)>, parallelism: usize, work: F) -> BTreeMap<K, Outcome<T, E>>
where
    K: Ord + Clone + std::fmt::Display,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<Cycle>,
{
    run_dag_in_lanes(nodes, |_: &K| Lane { service: "all", limit: parallelism }, work).await
}

/// [`run_dag`] with a bound per lane (per service) instead of one for all: sixteen slow S3
/// reads do not hold up the Atlas reads, and CloudFront's low request rate is not S3's.
pub(crate) async fn run_dag_in_lanes<K, T, E, F, Fut, L>(nodes: Vec<(K, Vec<K>)>, lane: L, work: F) -> BTreeMap<K, Outcome<T, E>>
where
    K: Ord + Clone + std::fmt::Display,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<Cycle>,
    L: Fn(&K) -> Lane,
{
    let keys: BTreeSet<K> = nodes.iter().map(|(k, _)| k.clone()).collect();
    let mut pending: Vec<(K, Vec<K>)> =
        nodes.into_iter().map(|(k, deps)| (k, deps.into_iter().filter(|d| keys.contains(d)).collect())).collect();
    let mut results: BTreeMap<K, Outcome<T, E>> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    let mut busy: BTreeMap<&'static str, usize> = BTreeMap::new();

    loop {
        // Skip what can no longer run, start what can.
        let mut i = 0;
        while i < pending.len() {
            let (key, deps) = &pending[i];
            let blocked_by = deps.iter().find(|d| matches!(results.get(*d), Some(Outcome::Failed(_) | Outcome::Skipped(_))));
            if let Some(dep) = blocked_by {
                let reason = format!("depends on {dep}, which did not complete");
                let key = key.clone();
                pending.remove(i);
                results.insert(key, Outcome::Skipped(reason));
                continue;
            }
            let ready = deps.iter().all(|d| matches!(results.get(d), Some(Outcome::Done(_))));
            if ready && crate::interrupt::requested() {
                let (key, _) = pending.remove(i);
                results.insert(key, Outcome::Skipped("interrupted before it started".to_string()));
                continue;
            }
            let Lane { service, limit } = lane(key);
            if ready && busy.get(service).copied().unwrap_or(0) < limit.max(1) {
                let (key, _) = pending.remove(i);
                *busy.entry(service).or_default() += 1;
                let fut = work(key.clone());
                running.push(async move { (key, service, fut.await) });
                continue;
            }
            i += 1;
        }
        match running.next().await {
            Some((key, service, result)) => {
                if let Some(n) = busy.get_mut(service) {
                    *n -= 1;
                }
                results.insert(
                    key,
                    match result {
                        Ok(v) => Outcome::Done(v),
                        Err(e) => Outcome::Failed(e),
                    },
                );
            }
            None => {
                // Nothing running and nothing startable: what is left waits on itself.
                for (key, _) in pending.drain(..) {
                    results.insert(key, Outcome::Failed(E::from(Cycle)));
                }
                break;
            }
        }
    }
    results
}

/// Live state of an environment, as read by `observe`.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    pub desired: Vec<Desired>,
    pub observed: BTreeMap<Address, Option<Observed>>,
    pub outputs: BTreeMap<Address, Outputs>,
    pub unmanaged: Vec<(Address, Observed)>,
    /// Reads put off until what they need is ready (not in `observed`).
    pub deferred: BTreeMap<Address, providers::Deferral>,
    /// Reads that failed where the failure stays with the resource (not in `observed`).
    pub unreadable: BTreeMap<Address, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("could not read the live state of {} resource(s):\n{}", .0.len(), group_errors(&self.0))]
pub(crate) struct ObserveError(pub Vec<(String, String)>);

/// One line per distinct error; resources that failed the same way are listed together.
fn group_errors(errors: &[(String, String)]) -> String {
    let mut by_message: Vec<(&str, Vec<&str>)> = Vec::new();
    for (address, message) in errors {
        match by_message.iter_mut().find(|(m, _)| m == message) {
            Some((_, addrs)) => addrs.push(address),
            None => by_message.push((message, vec![address])),
        }
    }
    by_message
        .into_iter()
        .map(|(m, addrs)| {
            if addrs.len() <= 2 {
                format!("  {}: {m}", addrs.join(", "))
            } else {
                format!("  {} and {} more: {m}", addrs[0], addrs.len() - 1)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A node of the observe graph: one resource's read, or one kind's listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ReadNode {
    Read(Address),
    List(Kind),
}

impl std::fmt::Display for ReadNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadNode::Read(a) => write!(f, "{a}"),
            ReadNode::List(k) => write!(f, "{k} (listing)"),
        }
    }
}

pub(crate) struct Engine<'a> {
    pub loaded: &'a LoadedSpec,
    pub registry: &'a Registry,
    pub progress: &'a Progress,
    /// `--parallelism`: the bound for every service; each provider's own bound when `None`.
    pub parallelism: Option<usize>,
    pub options: RunOptions,
    /// Kinds whose live resources are listed for unmanaged ones (all when `None`).
    pub discover_kinds: Option<BTreeSet<Kind>>,
}

impl<'a> Engine<'a> {
    /// An engine for the declared resources alone: default run options, and no listing of
    /// unmanaged resources (callers that want them set `discover_kinds`).
    pub(crate) fn new(loaded: &'a LoadedSpec, registry: &'a Registry, progress: &'a Progress, parallelism: Option<usize>) -> Engine<'a> {
        Engine { loaded, registry, progress, parallelism, options: RunOptions::default(), discover_kinds: Some(BTreeSet::new()) }
    }
}

impl Engine<'_> {
    fn ctx<'b>(&'b self, parent: Option<&'b Outputs>, outputs: &'b BTreeMap<Address, Outputs>) -> Ctx<'b> {
        Ctx { env: &self.loaded.env, loaded: self.loaded, parent, outputs, progress: self.progress, options: &self.options }
    }

    /// The bound for work on a resource of `kind`: its provider's lane, every lane set to
    /// `--parallelism` when it was given.
    fn lane(&self, kind: Kind) -> Lane {
        let lane = self.registry.get(kind).map(|p| p.lane()).unwrap_or(Lane { service: "other", limit: 16 });
        Lane { limit: self.parallelism.unwrap_or(lane.limit), ..lane }
    }

    /// Reads every desired resource (parents first, siblings concurrently) and the live
    /// resources of the environment's scope that the spec does not declare. Read-only.
    ///
    /// One graph holds both: each kind's listing starts as soon as what it needs is read (the
    /// Atlas project), beside the other reads, and shares their cached answers.
    pub(crate) async fn observe(&self, desired: Vec<Desired>) -> Result<Observation, ObserveError> {
        let bar = self.progress.bar(desired.len() as u64, "reading live state");
        let by_addr: BTreeMap<Address, &Desired> = desired.iter().map(|d| (d.address.clone(), d)).collect();
        let observed: Mutex<BTreeMap<Address, Option<Observed>>> = Mutex::new(BTreeMap::new());
        let outputs: Mutex<BTreeMap<Address, Outputs>> = Mutex::new(BTreeMap::new());
        let found: Mutex<Vec<(Address, Observed)>> = Mutex::new(Vec::new());
        let deferred: Mutex<BTreeMap<Address, providers::Deferral>> = Mutex::new(BTreeMap::new());
        let unreadable: Mutex<BTreeMap<Address, String>> = Mutex::new(BTreeMap::new());
        // Observation needs only parents first (references are resolved when diffing), and
        // references too for kinds whose reads depend on them.
        let mut nodes: Vec<(ReadNode, Vec<ReadNode>)> = desired
            .iter()
            .map(|d| {
                let with_refs = self.registry.get(d.address.kind).is_some_and(|p| p.reads_after_references());
                let deps = d.parent.iter().chain(d.depends_on.iter().filter(|_| with_refs)).cloned().map(ReadNode::Read).collect();
                (ReadNode::Read(d.address.clone()), deps)
            })
            .collect();
        let kinds: Vec<Kind> = self.registry.kinds().filter(|k| self.discover_kinds.as_ref().is_none_or(|only| only.contains(k))).collect();
        for kind in &kinds {
            let after = self.registry.get(*kind).map(|p| p.discover_after()).unwrap_or(&[]);
            let deps = desired.iter().filter(|d| after.contains(&d.address.kind)).map(|d| ReadNode::Read(d.address.clone())).collect();
            nodes.push((ReadNode::List(*kind), deps));
        }
        let by_addr = &by_addr;
        let lane = |node: &ReadNode| match node {
            ReadNode::Read(a) => self.lane(a.kind),
            ReadNode::List(k) => self.lane(*k),
        };
        let results = run_dag_in_lanes(nodes, lane, |node: ReadNode| {
            let observed = &observed;
            let outputs = &outputs;
            let found = &found;
            let deferred = &deferred;
            let unreadable = &unreadable;
            let bar = &bar;
            async move {
                let addr = match node {
                    ReadNode::Read(addr) => addr,
                    ReadNode::List(kind) => {
                        let provider = self.registry.get(kind).ok_or_else(|| format!("no provider for {kind}"))?;
                        let snapshot = outputs.lock().map_err(|e| e.to_string())?.clone();
                        let listed = provider.discover(&self.ctx(None, &snapshot)).await.map_err(|e| e.to_string())?;
                        found.lock().map_err(|e| e.to_string())?.extend(listed);
                        return Ok(());
                    }
                };
                let d = by_addr[&addr];
                let parent_outputs = match &d.parent {
                    Some(p) => {
                        let parent = observed.lock().map_err(|e| e.to_string())?.get(p).cloned().flatten();
                        let parent_exists = parent.is_some();
                        // Another owner's resource (another account's bucket): its children are
                        // not readable and not poactl's; the plan reports the conflict.
                        let foreign = parent.as_ref().is_some_and(|o| matches!(o.ownership, Ownership::Foreign(_)));
                        if (!parent_exists && by_addr.contains_key(p)) || foreign {
                            // The parent will be created, so this cannot exist yet.
                            observed.lock().map_err(|e| e.to_string())?.insert(addr.clone(), None);
                            bar.inc(1);
                            return Ok(());
                        }
                        outputs.lock().map_err(|e| e.to_string())?.get(p).cloned()
                    }
                    None => None,
                };
                let provider = self.registry.get(addr.kind).ok_or_else(|| format!("no provider for {}", addr.kind))?;
                let snapshot = scoped(&*outputs.lock().map_err(|e| e.to_string())?, d);
                let ctx = self.ctx(parent_outputs.as_ref(), &snapshot);
                // Only kinds whose reads wait for their references can be put off: their needs
                // are all read by now (no copies for the others).
                let needs: Vec<(&Desired, Option<Observed>)> = if !provider.reads_after_references() {
                    Vec::new()
                } else {
                    let seen = observed.lock().map_err(|e| e.to_string())?;
                    d.parent
                        .iter()
                        .chain(d.depends_on.iter())
                        .filter_map(|a| Some((*by_addr.get(a)?, seen.get(a).cloned().flatten())))
                        .collect()
                };
                let needs: Vec<(&Desired, Option<&Observed>)> = needs.iter().map(|(d, o)| (*d, o.as_ref())).collect();
                if let Some(why) = provider.reads_after_references().then(|| provider.defer_read(d, &needs, &ctx)).flatten() {
                    deferred.lock().map_err(|e| e.to_string())?.insert(addr.clone(), why);
                    bar.inc(1);
                    return Ok(());
                }
                let mut o = match provider.observe(&ctx, d).await {
                    Ok(o) => o,
                    Err(e) if provider.read_failure_is_local() => {
                        unreadable.lock().map_err(|e| e.to_string())?.insert(addr.clone(), crate::secrets::redact(&e.to_string()));
                        bar.inc(1);
                        return Ok(());
                    }
                    Err(e) => return Err(e.to_string()),
                };
                if let Some(o) = o.as_mut() {
                    providers::keep_owned_tags(&mut o.attrs, self.loaded);
                }
                if let Some(o) = &o {
                    outputs.lock().map_err(|e| e.to_string())?.insert(addr.clone(), o.outputs.clone());
                }
                observed.lock().map_err(|e| e.to_string())?.insert(addr.clone(), o);
                bar.inc(1);
                Ok(())
            }
        })
        .await;
        bar.finish();
        let mut errors: Vec<(String, String)> = results
            .into_iter()
            .filter_map(|(node, o)| match o {
                Outcome::Failed(e) => Some((node.to_string(), e)),
                // A listing whose project could not be read is not an error of its own.
                Outcome::Skipped(_) => None,
                Outcome::Done(()) => None,
            })
            .collect();
        let observed = observed.into_inner().unwrap_or_default();
        let outputs = outputs.into_inner().unwrap_or_default();

        // Unmanaged: what each provider found in the environment's scope, minus the spec.
        // A live resource is declared when a declared resource observed it (same kind and id).
        let declared: BTreeSet<(Kind, &str)> = observed.iter().filter_map(|(a, o)| o.as_ref().map(|o| (a.kind, o.id.as_str()))).collect();
        let mut unmanaged: Vec<(Address, Observed)> =
            found.into_inner().unwrap_or_default().into_iter().filter(|(a, o)| !declared.contains(&(a.kind, o.id.as_str()))).collect();
        unmanaged.sort_by(|a, b| a.0.cmp(&b.0));
        // Reads skipped by an interruption would look like missing resources: no plan from them.
        if crate::interrupt::requested() {
            errors.push(("the run".to_string(), "interrupted while reading the live state; nothing was changed".to_string()));
        }
        if !errors.is_empty() {
            errors.sort();
            return Err(ObserveError(errors));
        }
        let deferred = deferred.into_inner().unwrap_or_default();
        let unreadable = unreadable.into_inner().unwrap_or_default();
        Ok(Observation { desired, observed, outputs, unmanaged, deferred, unreadable })
    }

    /// The plan: pure, from an observation.
    pub(crate) fn plan(&self, obs: &Observation, options: PlanOptions) -> Plan {
        make_plan(&self.loaded.env, obs, options, |kind| self.registry.get(kind).cloned(), self.loaded)
    }

    /// Carries out a plan. Deletions first (dependents before what they depend on), then
    /// creates and updates in dependency order. Returns what happened to each resource.
    pub(crate) async fn apply(&self, plan: &Plan, obs: &Observation) -> ApplyReport {
        let started = Instant::now();
        let desired: BTreeMap<&Address, &Desired> = obs.desired.iter().map(|d| (&d.address, d)).collect();
        let changes: BTreeMap<&Address, &ResourceChange> = plan.resources.iter().map(|r| (&r.address, r)).collect();
        let unmanaged: BTreeMap<&Address, &Observed> = obs.unmanaged.iter().map(|(a, o)| (a, o)).collect();
        let outputs = Mutex::new(obs.outputs.clone());
        let mut report = ApplyReport::default();
        let desired = &desired;
        let unmanaged = &unmanaged;
        let changes = &changes;

        // Phase 1: deletions, reversed edges (a resource goes after those that need it). The
        // kinds whose providers ask for it are deleted last, in phase 3: a live resource that
        // stays may use them until its own update (a distribution moving off a certificate).
        let deleted_last = |a: &Address| self.registry.get(a.kind).is_some_and(|p| p.delete_last());
        let deletions: Vec<&ResourceChange> = plan.resources.iter().filter(|r| r.action == Action::Delete).collect();
        let del_set: BTreeSet<&Address> = deletions.iter().map(|r| &r.address).collect();
        let del_nodes = |last: bool| -> Vec<(Address, Vec<Address>)> {
            deletions
                .iter()
                .filter(|r| deleted_last(&r.address) == last)
                .map(|r| {
                    let dependents: Vec<Address> = plan
                        .resources
                        .iter()
                        .filter(|o| del_set.contains(&o.address) && o.depends_on.contains(&r.address))
                        .map(|o| o.address.clone())
                        .collect();
                    (r.address.clone(), dependents)
                })
                .collect()
        };
        let delete_one = |addr: Address| {
            let observed = obs.observed.get(&addr).cloned().flatten().or_else(|| unmanaged.get(&addr).map(|o| (*o).clone()));
            let outputs = &outputs;
            async move {
                let observed = observed.ok_or_else(|| ApplyError::Unmakeable("nothing live to delete".to_string()))?;
                let provider =
                    self.registry.get(addr.kind).ok_or_else(|| ApplyError::Unmakeable(format!("no provider for {}", addr.kind)))?;
                let parent = desired.get(&addr).and_then(|d| d.parent.clone());
                let snapshot = match desired.get(&addr) {
                    Some(d) => scoped(&*outputs.lock().map_err(|e| ApplyError::Unmakeable(e.to_string()))?, d),
                    None => BTreeMap::new(),
                };
                let parent_outputs = parent.as_ref().and_then(|p| outputs.lock().ok()?.get(p).cloned());
                let ctx = self.ctx(parent_outputs.as_ref(), &snapshot);
                let t = Instant::now();
                provider.delete(&ctx, &addr, &observed).await?;
                self.progress.println(format!("- {addr}: deleted ({:.1}s)", t.elapsed().as_secs_f64()));
                Ok(Some((t.elapsed(), Action::Delete)))
            }
        };
        let del_results = run_dag_in_lanes(del_nodes(false), |a: &Address| self.lane(a.kind), delete_one).await;

        // Phase 2: everything else in dependency order (no-ops complete at once, giving their
        // outputs to the resources that refer to them).
        let rest: Vec<&ResourceChange> = plan.resources.iter().filter(|r| r.action != Action::Delete).collect();
        let nodes: Vec<(Address, Vec<Address>)> = rest.iter().map(|r| (r.address.clone(), r.depends_on.clone())).collect();
        let results = run_dag_in_lanes(
            nodes,
            |a: &Address| self.lane(a.kind),
            |addr: Address| {
                let change = changes[&addr];
                let d = desired.get(&addr).copied();
                let outputs = &outputs;
                async move {
                    let t = Instant::now();
                    if change.action == Action::NoOp {
                        return Ok(None);
                    }
                    let d = d.ok_or_else(|| ApplyError::Unmakeable("not in the spec".to_string()))?;
                    let provider = self.registry.get(addr.kind).ok_or_else(|| ApplyError::Unmakeable(format!("no provider for {}", addr.kind)))?;
                    let snapshot = scoped(&*outputs.lock().map_err(|e| ApplyError::Unmakeable(e.to_string()))?, d);
                    let resolved = Desired {
                        attrs: providers::resolve_refs(&d.attrs, &snapshot),
                        write_only: providers::resolve_refs(&d.write_only, &snapshot),
                        ..d.clone()
                    };
                    if plan::diff::is_unresolved(&resolved.attrs) || plan::diff::is_unresolved(&resolved.write_only) {
                        return Err(ApplyError::Unmakeable("a reference it uses has no value (its resource was not created)".to_string()));
                    }
                    let parent_outputs = d.parent.as_ref().and_then(|p| snapshot.get(p)).cloned();
                    let ctx = self.ctx(parent_outputs.as_ref(), &snapshot);
                    let mut observed = obs.observed.get(&addr).cloned().flatten();
                    if change.reason == Reason::Deferred {
                        // What it needed is done now: read it, and change only what differs.
                        observed = provider.observe(&ctx, &resolved).await?;
                        if let Some(o) = &observed {
                            let changes = provider.diff(&resolved, o);
                            if changes.is_empty() {
                                // Read at last and found as the spec says: nothing was done.
                                self.progress.println(format!("  {addr}: read, in sync"));
                                return Ok(None);
                            }
                            if let Some(c) = changes.iter().find(|c| c.forces_replace) {
                                return Err(ApplyError::Unmakeable(format!(
                                    "read after what it depends on, it differs in {}, which needs a rebuild: run `poactl plan` again to review it",
                                    c.path
                                )));
                            }
                        }
                    }
                    // What is done: a resource found missing only now (a read put off) is created.
                    let done = if change.action == Action::Update && observed.is_none() { Action::Create } else { change.action };
                    let new_outputs = match (change.action, observed) {
                        (Action::Create, _) | (Action::Update, None) => provider.create(&ctx, &resolved).await,
                        (Action::Replace, Some(o)) => provider.replace(&ctx, &resolved, &o).await,
                        (Action::Replace, None) => provider.create(&ctx, &resolved).await,
                        (Action::Update, Some(o)) => {
                            let fresh = provider.diff(&resolved, &o);
                            provider.update(&ctx, &resolved, &o, &fresh).await
                        }
                        (Action::NoOp | Action::Delete, _) => return Ok(None),
                    }?;
                    let mut all = outputs.lock().map_err(|e| ApplyError::Unmakeable(e.to_string()))?;
                    let entry = all.entry(addr.clone()).or_default();
                    entry.extend(new_outputs);
                    drop(all);
                    let verb = match done {
                        Action::Create => "created",
                        Action::Update => "updated",
                        Action::Replace => "replaced",
                        _ => "done",
                    };
                    self.progress.println(format!("{} {addr}: {verb} ({:.1}s)", done.symbol(), t.elapsed().as_secs_f64()));
                    Ok(Some((t.elapsed(), done)))
                }
            },
        )
        .await;

        // Phase 3: the deletions that wait for the rest.
        let late_results = run_dag_in_lanes(del_nodes(true), |a: &Address| self.lane(a.kind), delete_one).await;

        for (addr, outcome) in del_results.into_iter().chain(results).chain(late_results) {
            let action = changes.get(&addr).map(|c| c.action).unwrap_or(Action::Delete);
            match outcome {
                Outcome::Done(Some((elapsed, done))) if action != Action::NoOp => report.done.push((addr, done, elapsed.as_secs_f64())),
                Outcome::Done(_) => {}
                Outcome::Failed(e) => report.failed.push((addr, action, e)),
                Outcome::Skipped(why) => report.skipped.push((addr, action, why)),
            }
        }
        report.outputs = outputs.into_inner().unwrap_or_default();
        report.seconds = started.elapsed().as_secs_f64();
        report
    }
}

/// Why one resource's change did not complete, kept typed from the provider to the report.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// The service answered, or did not in time: its own error, whole.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The change could not be made from what the plan and the earlier steps left (a reference
    /// without a value, a rebuild found only now).
    #[error("{0}")]
    Unmakeable(String),
    #[error(transparent)]
    Cycle(#[from] Cycle),
}

impl ApplyError {
    /// How the report names it: still going on the service's side, refused by it, or failed.
    pub(crate) fn class(&self) -> &'static str {
        match self {
            ApplyError::Provider(ProviderError::Timeout { .. }) => "timed_out",
            ApplyError::Provider(ProviderError::Refused(_) | ProviderError::Config(_)) => "refused",
            _ => "failed",
        }
    }

    fn heading(&self) -> &'static str {
        match self.class() {
            "timed_out" => "TIMED OUT, still in progress on the service",
            "refused" => "REFUSED",
            _ => "FAILED",
        }
    }
}

/// What `apply` did.
#[derive(Debug, Default)]
pub(crate) struct ApplyReport {
    pub done: Vec<(Address, Action, f64)>,
    pub failed: Vec<(Address, Action, ApplyError)>,
    pub skipped: Vec<(Address, Action, String)>,
    pub outputs: BTreeMap<Address, Outputs>,
    pub seconds: f64,
}

impl ApplyReport {
    pub(crate) fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let mut done = self.done.clone();
        done.sort_by(|a, b| a.0.cmp(&b.0));
        for (addr, action, secs) in &done {
            let verb = match action {
                Action::Create => "created",
                Action::Update => "updated",
                Action::Replace => "replaced",
                Action::Delete => "deleted",
                Action::NoOp => "unchanged",
            };
            out.push_str(&format!("  {} {addr}: {verb} ({secs:.1}s)\n", action.symbol()));
        }
        for (addr, _, err) in &self.failed {
            out.push_str(&format!("  ! {addr}: {}: {}\n", err.heading(), crate::secrets::redact(&err.to_string())));
        }
        for (addr, _, why) in &self.skipped {
            out.push_str(&format!("  ! {addr}: not applied: {why}\n"));
        }
        let count = |a: &[Action]| self.done.iter().filter(|d| a.contains(&d.1)).count();
        let added = count(&[Action::Create, Action::Replace]);
        let changed = count(&[Action::Update]);
        let destroyed = count(&[Action::Delete, Action::Replace]);
        if self.ok() {
            out.push_str(&format!(
                "\nApply complete! Resources: {added} added, {changed} changed, {destroyed} destroyed ({:.1}s).\n",
                self.seconds
            ));
        } else {
            out.push_str(&format!(
                "\nApply incomplete: {} done ({added} added, {changed} changed, {destroyed} destroyed), {} failed, {} not applied. Fix the errors and run apply again: it picks up where this left off.\n",
                self.done.len(),
                self.failed.len(),
                self.skipped.len()
            ));
        }
        out
    }

    pub(crate) fn json(&self) -> Value {
        let item = |a: &Address, act: &Action| serde_json::json!({"address": a.to_string(), "action": act});
        serde_json::json!({
            "ok": self.ok(),
            "seconds": self.seconds,
            "done": self.done.iter().map(|(a, act, s)| { let mut v = item(a, act); v["seconds"] = serde_json::json!(s); v }).collect::<Vec<_>>(),
            "failed": self.failed.iter().map(|(a, act, e)| { let mut v = item(a, act); v["error"] = serde_json::json!(crate::secrets::redact(&e.to_string())); v["class"] = serde_json::json!(e.class()); v }).collect::<Vec<_>>(),
            "skipped": self.skipped.iter().map(|(a, act, e)| { let mut v = item(a, act); v["reason"] = serde_json::json!(e); v }).collect::<Vec<_>>(),
        })
    }
}

/// The outputs a resource's work may use: its parent's and those of what it refers to (its
/// `depends_on`). A copy of these few per resource, not of every resource's: copying them all
/// made a 2,000-resource plan quadratic.
fn scoped(outputs: &BTreeMap<Address, Outputs>, d: &Desired) -> BTreeMap<Address, Outputs> {
    d.parent.iter().chain(d.depends_on.iter()).filter_map(|a| Some((a.clone(), outputs.get(a)?.clone()))).collect()
}

/// The pure planning step: observation in, plan out.
pub(crate) fn make_plan(
    env: &str,
    obs: &Observation,
    options: PlanOptions,
    provider: impl Fn(Kind) -> Option<std::sync::Arc<dyn providers::Provider>>,
    loaded: &LoadedSpec,
) -> Plan {
    let mut resources = Vec::new();
    let mut conflicts = Vec::new();
    let mut unhealthy = Vec::new();
    let progress = Progress::hidden();
    let run_options = RunOptions { rotate_passwords: options.rotate_passwords, ..RunOptions::default() };
    for d in &obs.desired {
        let resolved = Desired { attrs: providers::resolve_refs(&d.attrs, &obs.outputs), ..d.clone() };
        let observed = obs.observed.get(&d.address).cloned().flatten();
        let p = provider(d.address.kind);
        let mut notes = d.notes.clone();
        // Not read: a failed read that stays with its resource, or one put off.
        let unread = |action: Action, notes: Vec<String>| ResourceChange {
            address: d.address.clone(),
            action,
            reason: Reason::Deferred,
            id: None,
            changes: Vec::new(),
            depends_on: d.depends_on.clone(),
            notes,
        };
        if let Some(why) = obs.unreadable.get(&d.address) {
            conflicts.push(Conflict {
                address: d.address.clone(),
                message: format!("its live state could not be read: {why}. Nothing is planned for it; the rest of the plan stands."),
            });
            resources.push(unread(Action::NoOp, notes));
            continue;
        }
        if let Some(deferral) = obs.deferred.get(&d.address) {
            let later = deferral.during_apply && !options.destroy;
            notes.push(if later {
                format!("not read yet: {}; apply reads it after what it depends on and changes only what differs", deferral.reason)
            } else {
                format!("not read: {}", deferral.reason)
            });
            resources.push(unread(if later { Action::Update } else { Action::NoOp }, notes));
            continue;
        }
        // What poactl may not touch: marked for someone else, or untagged (unless adopted).
        let refused = |own: &Ownership| match own {
            Ownership::Foreign(why) => Some(why.clone()),
            Ownership::Unowned(why) if !options.adopt => Some(why.clone()),
            _ => None,
        };
        // A resource whose parent or whose reference target poactl may not touch cannot be
        // applied either (a distribution whose origin bucket is another account's): a conflict
        // in the plan, not a failure in the middle of apply.
        let blocked_by = d
            .parent
            .iter()
            .chain(d.depends_on.iter())
            .find(|a| obs.observed.get(*a).and_then(|o| o.as_ref()).and_then(|o| refused(&o.ownership)).is_some());
        let (action, reason, changes, id) = match (&observed, &p) {
            (_, None) => (Action::NoOp, Reason::InSync, Vec::new(), None),
            _ if blocked_by.is_some() && !options.destroy => {
                let on = blocked_by.map(|a| a.to_string()).unwrap_or_default();
                let relation = if d.parent.as_ref() == blocked_by { "it lives in" } else { "it uses" };
                conflicts.push(Conflict {
                    address: d.address.clone(),
                    message: format!("{relation} {on}, which poactl does not own; it is left untouched"),
                });
                (Action::NoOp, Reason::NotOwned, Vec::new(), observed.as_ref().map(|o| o.id.clone()))
            }
            (None, Some(_)) => {
                let changes = plan::diff::diff(&resolved.attrs, &Value::Object(Default::default()), &[]);
                let action = if options.destroy { Action::NoOp } else { Action::Create };
                (action, Reason::Missing, changes, None)
            }
            (Some(o), Some(p)) => {
                if let Some(why) = refused(&o.ownership) {
                    let how = if matches!(o.ownership, Ownership::Unowned(_)) {
                        "rename it in the spec, or take it over with --adopt (poactl then writes its tags)"
                    } else {
                        "rename it in the spec"
                    };
                    conflicts.push(Conflict {
                        address: d.address.clone(),
                        message: format!(
                            "{} `{}` exists but poactl does not own it: {why}. It is left untouched; {how}.",
                            d.address.kind, o.id
                        ),
                    });
                    (Action::NoOp, Reason::NotOwned, Vec::new(), Some(o.id.clone()))
                } else if options.destroy {
                    (Action::Delete, Reason::Destroy, Vec::new(), Some(o.id.clone()))
                } else {
                    let mut changes = p.diff(&resolved, o);
                    changes.extend(p.asserted_changes(&resolved, o, &options));
                    let outputs = BTreeMap::new();
                    let ctx = Ctx { env, loaded, parent: None, outputs: &outputs, progress: &progress, options: &run_options };
                    notes.extend(p.notes(&resolved, o, &ctx));
                    let blocked = (!changes.is_empty()).then(|| p.blocked(&resolved, o, &changes)).flatten();
                    if let Some(why) = &blocked {
                        conflicts.push(Conflict { address: d.address.clone(), message: why.clone() });
                    }
                    if let Some(why) = p.unhealthy(&resolved, o) {
                        unhealthy.push(Unhealthy { address: d.address.clone(), message: why });
                    }
                    let (action, reason) = if blocked.is_some() {
                        (Action::NoOp, Reason::Blocked)
                    } else if changes.is_empty() {
                        match p.in_progress(o) {
                            Some(what) => {
                                notes.push(what);
                                (Action::NoOp, Reason::InProgress)
                            }
                            None => (Action::NoOp, Reason::InSync),
                        }
                    } else if changes.iter().any(|c| c.forces_replace) {
                        (Action::Replace, Reason::ReplaceRequired)
                    } else {
                        (Action::Update, Reason::Drifted)
                    };
                    (action, reason, changes, Some(o.id.clone()))
                }
            }
        };
        resources.push(ResourceChange {
            address: d.address.clone(),
            action,
            reason,
            id,
            changes: mark_sensitive(changes, loaded),
            depends_on: d.depends_on.clone(),
            notes,
        });
    }
    let mut unmanaged = Vec::new();
    for name in &options.delete {
        if !obs.unmanaged.iter().any(|(a, _)| a.to_string() == *name) {
            let address = crate::resource::Reference::parse(&format!("{name}.x"))
                .map(|r| r.target)
                .unwrap_or_else(|| Address::new(Kind::AtlasAlert, name.clone()));
            conflicts.push(Conflict {
                address,
                message: format!("--delete {name} names no unmanaged live resource; see the plan's unmanaged list for addresses"),
            });
        }
    }
    for (addr, o) in &obs.unmanaged {
        let owned = o.ownership == Ownership::Owned;
        let prunable = matches!(o.ownership, Ownership::Owned | Ownership::NaturalKey);
        let mut description = o.outputs.get("description").cloned().unwrap_or_else(|| o.id.clone());
        let named = options.delete.iter().any(|n| *n == addr.to_string());
        let guard = provider(addr.kind).and_then(|p| p.prune_guard(o));
        let pruned = options.prune && guard.is_none();
        if options.prune
            && !named
            && let Some(why) = &guard
        {
            description = format!("{description}; kept by --prune: {why} (delete it with --delete {addr})");
        }
        if (pruned || named || (options.destroy && owned)) && prunable {
            let reason = if options.destroy { Reason::Destroy } else { Reason::Pruned };
            let notes = provider(addr.kind).map(|p| p.delete_notes(o)).unwrap_or_default();
            resources.push(ResourceChange {
                address: addr.clone(),
                action: Action::Delete,
                reason,
                id: Some(o.id.clone()),
                changes: Vec::new(),
                depends_on: Vec::new(),
                notes,
            });
        } else {
            unmanaged.push(Unmanaged { address: addr.clone(), id: o.id.clone(), description, owned });
        }
    }
    Plan {
        format_version: plan::FORMAT_VERSION.to_string(),
        poactl_version: env!("CARGO_PKG_VERSION").to_string(),
        environment: env.to_string(),
        options,
        resources,
        unmanaged,
        conflicts,
        unhealthy,
        spec_fingerprint: spec_fingerprint(&obs.desired),
        state_fingerprint: state_fingerprint(obs),
        cost: None,
    }
}

/// Why a saved plan cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StalePlan {
    #[error("the saved plan is for environment \"{saved}\", not \"{current}\"")]
    OtherEnvironment { saved: String, current: String },
    #[error("the saved plan is stale: the spec changed since it was made. Run `poactl plan -e {0} --out FILE` again and review it.")]
    SpecChanged(String),
    #[error(
        "the saved plan is stale: the live state changed since it was made (someone applied, or changed a resource by hand). Run `poactl plan -e {0} --out FILE` again and review it."
    )]
    StateChanged(String),
}

/// A saved plan applies only to the spec and live state it was made from.
pub(crate) fn check_saved_plan(saved: &Plan, fresh: &Plan) -> Result<(), StalePlan> {
    if saved.environment != fresh.environment {
        return Err(StalePlan::OtherEnvironment { saved: saved.environment.clone(), current: fresh.environment.clone() });
    }
    if saved.spec_fingerprint != fresh.spec_fingerprint {
        return Err(StalePlan::SpecChanged(fresh.environment.clone()));
    }
    if saved.state_fingerprint != fresh.state_fingerprint || saved.resources != fresh.resources {
        return Err(StalePlan::StateChanged(fresh.environment.clone()));
    }
    Ok(())
}

fn mark_sensitive(mut changes: Vec<FieldChange>, loaded: &LoadedSpec) -> Vec<FieldChange> {
    for c in &mut changes {
        let touches = |v: &Option<Value>| {
            v.as_ref().is_some_and(|v| loaded.secrets.touches(&v.to_string()) || v.as_str().is_some_and(|s| loaded.secrets.touches(s)))
        };
        if touches(&c.before) || touches(&c.after) {
            c.sensitive = true;
        }
    }
    changes
}

fn hash_json(v: &Value) -> String {
    let mut h = Sha256::new();
    h.update(v.to_string().as_bytes());
    let digest = h.finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The desired state without write-only values (a plan file never carries a secret, not
/// even hashed).
pub(crate) fn spec_fingerprint(desired: &[Desired]) -> String {
    let v: Vec<Value> = desired.iter().map(|d| serde_json::json!([d.address.to_string(), d.attrs, d.depends_on])).collect();
    hash_json(&Value::Array(v))
}

pub(crate) fn state_fingerprint(obs: &Observation) -> String {
    let mut v: Vec<Value> =
        obs.observed.iter().map(|(a, o)| serde_json::json!([a.to_string(), o.as_ref().map(|o| (&o.id, &o.attrs))])).collect();
    v.extend(obs.unmanaged.iter().map(|(a, o)| serde_json::json!([a.to_string(), o.id])));
    v.extend(obs.deferred.iter().map(|(a, why)| serde_json::json!([a.to_string(), "deferred", why.reason])));
    v.extend(obs.unreadable.keys().map(|a| serde_json::json!([a.to_string(), "unreadable"])));
    hash_json(&Value::Array(v))
}

#[cfg(test)]
mod tests;
