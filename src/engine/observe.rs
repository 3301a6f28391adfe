//! Reading the live state: every desired resource, parents first, and the listings of the
//! unmanaged, in one graph.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::{Cycle, Engine, Outcome, run_dag_in_lanes, scoped};
use crate::providers::{self, Desired, Observed, Outputs, Ownership, ProviderError};
use crate::resource::{Address, Kind};

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

/// Why one read (a resource, or a kind's listing) failed, kept typed from the provider.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("no provider for {0}")]
    NoProvider(Kind),
    /// A read panicked while holding the shared state; what it held cannot be trusted.
    #[error("an earlier read failed while holding the run's state")]
    Poisoned,
    #[error(transparent)]
    Cycle(#[from] Cycle),
    #[error("interrupted while reading the live state; nothing was changed")]
    Interrupted,
}

fn poisoned<T>(_: T) -> ReadError {
    ReadError::Poisoned
}

#[derive(Debug, thiserror::Error)]
#[error("could not read the live state of {} resource(s):\n{}", .0.len(), group_errors(&self.0))]
pub(crate) struct ObserveError(pub Vec<(String, ReadError)>);

/// One line per distinct error; resources that failed the same way are listed together.
fn group_errors(errors: &[(String, ReadError)]) -> String {
    let mut by_message: Vec<(String, Vec<&str>)> = Vec::new();
    for (address, error) in errors {
        let message = crate::secrets::redact(&error.to_string());
        match by_message.iter_mut().find(|(m, _)| *m == message) {
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

impl Engine<'_> {
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
                        let provider = self.registry.get(kind).ok_or(ReadError::NoProvider(kind))?;
                        let snapshot = outputs.lock().map_err(poisoned)?.clone();
                        let listed = provider.discover(&self.ctx(None, &snapshot)).await?;
                        found.lock().map_err(poisoned)?.extend(listed);
                        return Ok(());
                    }
                };
                let d = by_addr[&addr];
                let parent_outputs = match &d.parent {
                    Some(p) => {
                        let parent = observed.lock().map_err(poisoned)?.get(p).cloned().flatten();
                        let parent_exists = parent.is_some();
                        // Another owner's resource (another account's bucket): its children are
                        // not readable and not poactl's; the plan reports the conflict.
                        let foreign = parent.as_ref().is_some_and(|o| matches!(o.ownership, Ownership::Foreign(_)));
                        if (!parent_exists && by_addr.contains_key(p)) || foreign {
                            // The parent will be created, so this cannot exist yet.
                            observed.lock().map_err(poisoned)?.insert(addr.clone(), None);
                            bar.inc(1);
                            return Ok(());
                        }
                        outputs.lock().map_err(poisoned)?.get(p).cloned()
                    }
                    None => None,
                };
                let provider = self.registry.get(addr.kind).ok_or(ReadError::NoProvider(addr.kind))?;
                let snapshot = scoped(&*outputs.lock().map_err(poisoned)?, d);
                let ctx = self.ctx(parent_outputs.as_ref(), &snapshot);
                // Only kinds whose reads wait for their references can be put off: their needs
                // are all read by now (no copies for the others).
                let needs: Vec<(&Desired, Option<Observed>)> = if !provider.reads_after_references() {
                    Vec::new()
                } else {
                    let seen = observed.lock().map_err(poisoned)?;
                    d.parent
                        .iter()
                        .chain(d.depends_on.iter())
                        .filter_map(|a| Some((*by_addr.get(a)?, seen.get(a).cloned().flatten())))
                        .collect()
                };
                let needs: Vec<(&Desired, Option<&Observed>)> = needs.iter().map(|(d, o)| (*d, o.as_ref())).collect();
                if let Some(why) = provider.reads_after_references().then(|| provider.defer_read(d, &needs, &ctx)).flatten() {
                    deferred.lock().map_err(poisoned)?.insert(addr.clone(), why);
                    bar.inc(1);
                    return Ok(());
                }
                // Ctrl-C ends a read at once: nothing is planned from what was not read.
                let read = tokio::select! {
                    r = provider.observe(&ctx, d) => r,
                    () = crate::interrupt::wait() => return Err(ReadError::Interrupted),
                };
                let mut o = match read {
                    Ok(o) => o,
                    // A read that went unanswered within its deadline stays with its
                    // resource too: the rest of the plan stands.
                    Err(e) if provider.read_failure_is_local() || e.timed_out() => {
                        unreadable.lock().map_err(poisoned)?.insert(addr.clone(), crate::secrets::redact(&e.to_string()));
                        bar.inc(1);
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                };
                if let Some(o) = o.as_mut() {
                    providers::keep_owned_tags(&mut o.attrs, self.loaded);
                }
                if let Some(o) = &o {
                    outputs.lock().map_err(poisoned)?.insert(addr.clone(), o.outputs.clone());
                }
                observed.lock().map_err(poisoned)?.insert(addr.clone(), o);
                bar.inc(1);
                Ok(())
            }
        })
        .await;
        bar.finish();
        let mut errors: Vec<(String, ReadError)> = results
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
            errors.push(("the run".to_string(), ReadError::Interrupted));
        }
        if !errors.is_empty() {
            errors.sort_by(|a, b| a.0.cmp(&b.0));
            return Err(ObserveError(errors));
        }
        let deferred = deferred.into_inner().unwrap_or_default();
        let mut unreadable = unreadable.into_inner().unwrap_or_default();
        let mut observed = observed;
        unread_dependents(&desired, &mut observed, &mut unreadable);
        Ok(Observation { desired, observed, outputs, unmanaged, deferred, unreadable })
    }
}

/// What is built on a resource whose live state could not be read is not read either: a
/// child read as "absent" because its parent's read failed would be planned as a create, and
/// a resource that references it would be planned against outputs nobody saw. Each is left
/// untouched with the reason, transitively.
fn unread_dependents(desired: &[Desired], observed: &mut BTreeMap<Address, Option<Observed>>, unreadable: &mut BTreeMap<Address, String>) {
    loop {
        let mut changed = false;
        for d in desired {
            if unreadable.contains_key(&d.address) {
                continue;
            }
            if let Some(on) = d.parent.iter().chain(d.depends_on.iter()).find(|a| unreadable.contains_key(*a)) {
                observed.remove(&d.address);
                unreadable.insert(d.address.clone(), format!("it depends on {on}, whose live state could not be read"));
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}
