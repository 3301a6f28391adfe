//! What `apply` did, as data: the view renders it (`view::report`). The failures stay the
//! engine's own typed errors (generic here, as kube-rs keeps a reconciler's error), so a caller
//! can still match or downcast them; the report only asks each one for its class.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::Serialize;

use super::Action;
use crate::resource::Address;

/// How a failed change is named: still going on the service's side, refused by it, or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The wait ran out; the service may still finish it. Rerun apply to pick it up.
    TimedOut,
    /// The service said no to the request itself: rerunning as is will not help.
    Refused,
    /// Anything else (a transport error, a 5xx, an unmakeable step).
    Failed,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::TimedOut => "timed_out",
            FailureClass::Refused => "refused",
            FailureClass::Failed => "failed",
        }
    }
}

/// A failure the report can class.
pub trait Failure: Display {
    fn class(&self) -> FailureClass;
}

/// What `apply` did to each resource it touched.
#[derive(Debug)]
pub struct ApplyReport<E> {
    /// Done, with the action taken and its seconds.
    pub done: Vec<(Address, Action, f64)>,
    pub failed: Vec<(Address, Action, E)>,
    /// Not attempted, and why (what it depends on failed).
    pub skipped: Vec<(Address, Action, String)>,
    /// Every resource's outputs after the run.
    pub outputs: BTreeMap<Address, BTreeMap<String, String>>,
    pub seconds: f64,
}

impl<E> Default for ApplyReport<E> {
    fn default() -> Self {
        ApplyReport { done: Vec::new(), failed: Vec::new(), skipped: Vec::new(), outputs: BTreeMap::new(), seconds: 0.0 }
    }
}

impl<E> ApplyReport<E> {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}
