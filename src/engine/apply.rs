//! Carrying out a plan: deletions (the ones that wait for the rest last), then creates and
//! updates in dependency order, each failure kept typed in the report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use super::{Cycle, Engine, Observation, Outcome, run_dag_in_lanes, scoped};
use crate::plan::{self, Action, FailureClass, Plan, Reason, ResourceChange};
use crate::providers::{self, Desired, Observed, ProviderError};
use crate::resource::Address;

impl Engine<'_> {
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

impl plan::Failure for ApplyError {
    fn class(&self) -> FailureClass {
        match self {
            ApplyError::Provider(ProviderError::Timeout { .. }) => FailureClass::TimedOut,
            ApplyError::Provider(ProviderError::Refused(_) | ProviderError::Config(_)) => FailureClass::Refused,
            // Atlas said no (a 4xx other than throttling): the request itself is the problem.
            ApplyError::Provider(ProviderError::Atlas(e)) if e.status().is_some_and(|s| (400..500).contains(&s) && s != 429) => {
                FailureClass::Refused
            }
            _ => FailureClass::Failed,
        }
    }
}

/// What `apply` did, each failure kept as the engine's typed error.
pub(crate) type ApplyReport = plan::ApplyReport<ApplyError>;
