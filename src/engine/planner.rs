//! The pure planning step: an observation in, a plan out; and what makes a saved plan stale.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Engine, Observation};
use crate::plan::{self, Action, Conflict, FieldChange, Plan, PlanOptions, Reason, ResourceChange, Unhealthy, Unmanaged, Unused};
use crate::progress::Progress;
use crate::providers::{self, Ctx, Desired, Ownership, RunOptions};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;

impl Engine<'_> {
    /// The plan: pure, from an observation.
    pub(crate) fn plan(&self, obs: &Observation, options: PlanOptions) -> Plan {
        make_plan(&self.loaded.env, obs, options, |kind| self.registry.get(kind).cloned(), self.loaded)
    }
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
    let mut unused = Vec::new();
    let progress = Progress::hidden();
    let run_options = RunOptions { rotate_passwords: options.rotate_passwords, ..RunOptions::default() };
    // Creates the service would refuse, and, transitively, what depends on them: nothing of
    // them is created, so nothing is half made.
    let mut cannot_create: BTreeMap<Address, String> = BTreeMap::new();
    if !options.destroy {
        for d in &obs.desired {
            let missing = obs.observed.get(&d.address).is_some_and(|o| o.is_none());
            if let (true, Some(p)) = (missing, provider(d.address.kind))
                && let Some(why) = p.create_blocked(d)
            {
                cannot_create.insert(d.address.clone(), why);
            }
        }
        loop {
            let more: Vec<(Address, String)> = obs
                .desired
                .iter()
                .filter(|d| !cannot_create.contains_key(&d.address))
                .filter_map(|d| {
                    let on = d.parent.iter().chain(d.depends_on.iter()).find(|a| cannot_create.contains_key(*a))?;
                    Some((d.address.clone(), format!("it needs {on}, which cannot be created: see its conflict")))
                })
                .collect();
            if more.is_empty() {
                break;
            }
            cannot_create.extend(more);
        }
    }
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
            (None, Some(_)) if cannot_create.contains_key(&d.address) => {
                conflicts.push(Conflict { address: d.address.clone(), message: cannot_create[&d.address].clone() });
                (Action::NoOp, Reason::Blocked, Vec::new(), None)
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
                    if let Some(why) = p.unused(o) {
                        unused.push(Unused { address: d.address.clone(), message: why });
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
            // The commands refuse a name that is not an address before planning.
            let address = Address::parse(name).unwrap_or_else(|| Address::new(Kind::AtlasAlert, name.clone()));
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
        if let Some(why) = provider(addr.kind).and_then(|p| p.forbidden(o, loaded)).filter(|_| prunable) {
            resources.push(ResourceChange {
                address: addr.clone(),
                action: Action::Delete,
                reason: if options.destroy { Reason::Destroy } else { Reason::Drifted },
                id: Some(o.id.clone()),
                changes: Vec::new(),
                depends_on: Vec::new(),
                notes: vec![why],
            });
            continue;
        }
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
        unused,
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
