//! Observe, plan and apply: graph order, bounded concurrency, failure isolation.

mod apply;
mod dag;
mod observe;
mod planner;

#[cfg(test)]
pub(crate) use dag::run_dag;
pub(crate) use dag::{Cycle, Outcome, run_dag_in_lanes};
pub(crate) use observe::{Observation, ObserveError};
pub(crate) use planner::check_saved_plan;

use std::collections::{BTreeMap, BTreeSet};

use crate::progress::Progress;
use crate::providers::{Ctx, Desired, Lane, Outputs, Registry, RunOptions};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;

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
    pub(super) fn ctx<'b>(&'b self, parent: Option<&'b Outputs>, outputs: &'b BTreeMap<Address, Outputs>) -> Ctx<'b> {
        Ctx { env: &self.loaded.env, loaded: self.loaded, parent, outputs, progress: self.progress, options: &self.options }
    }

    /// The bound for work on a resource of `kind`: its provider's lane, every lane set to
    /// `--parallelism` when it was given.
    pub(super) fn lane(&self, kind: Kind) -> Lane {
        let lane = self.registry.get(kind).map(|p| p.lane()).unwrap_or(Lane { service: "other", limit: 16 });
        Lane { limit: self.parallelism.unwrap_or(lane.limit), ..lane }
    }
}

/// The outputs a resource's work may use: its parent's and those of what it refers to (its
/// `depends_on`). A copy of these few per resource, not of every resource's: copying them all
/// made a 2,000-resource plan quadratic.
pub(super) fn scoped(outputs: &BTreeMap<Address, Outputs>, d: &Desired) -> BTreeMap<Address, Outputs> {
    d.parent.iter().chain(d.depends_on.iter()).filter_map(|a| Some((a.clone(), outputs.get(a)?.clone()))).collect()
}

#[cfg(test)]
mod tests;
