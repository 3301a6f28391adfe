//! The plan as data: what will change, why, and how; and what apply did (`report`). The
//! views (`crate::view`) render both.

pub mod diff;
mod report;

pub use report::{ApplyReport, Failure, FailureClass};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resource::Address;

/// Version of the plan JSON. Bump the major part on incompatible changes.
pub const FORMAT_VERSION: &str = "1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    /// The action read as drift: what `poactl drift` says of the resource.
    pub fn drift_status(self) -> &'static str {
        match self {
            Action::Create => "missing",
            Action::Update => "changed",
            Action::Replace => "changed (needs replacement)",
            Action::Delete => "not in spec",
            Action::NoOp => "in sync",
        }
    }

    pub fn is_destructive(self) -> bool {
        matches!(self, Action::Replace | Action::Delete)
    }
}

/// Why an action was chosen; kept apart from the action itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Live state matches the spec.
    InSync,
    /// The resource does not exist.
    Missing,
    /// Live settings differ from the spec.
    Drifted,
    /// A setting that cannot be changed in place differs.
    ReplaceRequired,
    /// Not in the spec; deleted because of `--prune`.
    Pruned,
    /// Exists, but poactl does not own it; it will not be touched.
    NotOwned,
    /// Differs, but the service would refuse the change in the resource's current state (a
    /// paused Atlas cluster); listed as a conflict with what to do.
    Blocked,
    /// `destroy`: everything the environment owns goes.
    Destroy,
    /// Matches the spec, but the service is still working on it (an index build in
    /// progress): it is usable once that finishes.
    InProgress,
    /// Not read: what it needs is not ready (a paused cluster, a database user this apply
    /// creates). With `update`, apply reads it after what it depends on and changes only what
    /// differs; with `no_op`, a later run does.
    Deferred,
}

/// One attribute that differs. `before`/`after` absent means the attribute is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub forces_replace: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub sensitive: bool,
    /// The new value is known only after apply (it refers to a resource not yet created).
    #[serde(default, skip_serializing_if = "is_false")]
    pub unknown: bool,
}

/// Whether any change touches the attribute `attr` (itself, a field of it, or an item of it).
pub fn touches(changes: &[FieldChange], attr: &str) -> bool {
    changes.iter().any(|c| c.path == attr || c.path.strip_prefix(attr).is_some_and(|rest| rest.starts_with(['.', '[', ' '])))
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: Address,
    pub action: Action,
    pub reason: Reason,
    /// The live resource's id, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// Things the reader should know (a write-only field, an autoscaled size kept as is...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A live resource the spec does not declare. Information only, unless `--prune`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub address: Address,
    pub id: String,
    pub description: String,
    /// Carries this environment's ownership tags (it was managed, then left the spec).
    pub owned: bool,
}

/// A resource poactl will not act on, and why (it would need a human decision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub address: Address,
    pub message: String,
}

/// A live resource that does not do what its spec asks, and no apply can mend (snapshots
/// not taken on schedule): drift, with what to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unhealthy {
    pub address: Address,
    pub message: String,
}

/// A live resource nothing uses (an index no operation has used): information, never drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unused {
    pub address: Address,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    pub poactl_version: String,
    pub environment: String,
    /// Options the plan was made with; a saved plan is applied with the same ones.
    pub options: PlanOptions,
    pub resources: Vec<ResourceChange>,
    #[serde(default)]
    pub unmanaged: Vec<Unmanaged>,
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unhealthy: Vec<Unhealthy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unused: Vec<Unused>,
    /// Hash of the resolved spec: a saved plan is stale when it changes.
    pub spec_fingerprint: String,
    /// Hash of the observed live state: a saved plan is stale when it changes.
    pub state_fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostDelta>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    #[serde(default)]
    pub prune: bool,
    #[serde(default)]
    pub rotate_passwords: bool,
    #[serde(default)]
    pub destroy: bool,
    /// Take over live resources with the spec's names that carry no poactl tags.
    #[serde(default)]
    pub adopt: bool,
    /// `--target` prefixes the plan was limited to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Unmanaged resources named for deletion (`--delete ADDRESS`): the kinds `--prune` alone
    /// never deletes, because nothing on them proves poactl made them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for r in &self.resources {
            match r.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|r| r.action != Action::NoOp)
    }

    /// Drift: anything that does not match the spec, including resources poactl cannot act on
    /// and live resources not doing what the spec asks.
    pub fn has_drift(&self) -> bool {
        self.has_changes() || !self.conflicts.is_empty() || !self.unhealthy.is_empty()
    }

    pub fn destructive(&self) -> impl Iterator<Item = &ResourceChange> {
        self.resources.iter().filter(|r| r.action.is_destructive())
    }
}

/// The monthly cost change a plan makes (computed by `cost`, carried by the plan).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostDelta {
    pub before_usd: f64,
    pub after_usd: f64,
    pub delta_usd: f64,
}
