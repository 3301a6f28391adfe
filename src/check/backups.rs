//! Each backed-up cluster has a recent snapshot, and point-in-time where asked.

use std::time::Instant;

use serde_json::json;

use super::{Outcome, Status, outcome};
use crate::engine::Observation;
use crate::resource::Kind;
use crate::spec::LoadedSpec;

/// Each cluster with `backup.enabled`: its latest completed snapshot is younger than its
/// schedule allows (half an interval of grace), and point-in-time is on where the spec asks.
pub(super) fn backups(loaded: &LoadedSpec, obs: &Observation) -> Vec<Outcome> {
    const G: &str = "backups";
    let mut out = Vec::new();
    let clusters = loaded.spec.atlas.iter().flat_map(|a| a.clusters.iter());
    for c in clusters.filter(|c| c.backup.as_ref().is_some_and(|b| b.enabled)) {
        let t = Instant::now();
        let cluster = crate::resource::Address::new(Kind::AtlasCluster, &c.name);
        let name = format!("{cluster} has a recent snapshot");
        let Some(Some(live)) = obs.observed.get(&cluster) else {
            out.push(outcome(G, name, Status::Fail, t, "the cluster does not exist: run `poactl apply`"));
            continue;
        };
        let schedule = obs.observed.get(&crate::resource::Address::new(Kind::AtlasBackupSchedule, &c.name)).and_then(|o| o.as_ref());
        match schedule {
            None => out.push(outcome(G, name, Status::Skip, t, "no cloud backup schedule to read on this tier")),
            Some(s) => {
                use crate::providers::atlas::backup::{SnapshotAge, snapshot_age};
                let age = snapshot_age(s, mongodb::bson::DateTime::now().timestamp_millis());
                let (status, detail) = match (&age, age.problem()) {
                    (_, Some(problem)) => (Status::Fail, problem),
                    (SnapshotAge::Recent { at, hours }, None) => (Status::Pass, format!("latest {at} ({hours:.1} h ago)")),
                    _ => (Status::Skip, "no completed snapshot yet; the first is not due".to_string()),
                };
                out.push(outcome(G, name, status, t, detail));
            }
        }
        if c.backup.as_ref().is_some_and(|b| b.point_in_time) {
            let t = Instant::now();
            let on = live.attrs.get("point_in_time") == Some(&json!(true));
            out.push(outcome(
                G,
                format!("{cluster} has point-in-time restore on"),
                if on { Status::Pass } else { Status::Fail },
                t,
                if on { "" } else { "the spec asks for point_in_time, and the cluster has it off: run `poactl apply`" },
            ));
        }
    }
    out
}
