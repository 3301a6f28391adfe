//! `poactl check`: an end-to-end smoke test of the live environment. Read-only, except for one
//! probe object per bucket that it deletes again. Each check passes, fails or is skipped (with
//! why), with its timing. `cmd::check` reads the live state, calls `run` and prints.

mod alarms;
mod backups;
mod cdn;
mod database;
mod notifications;
mod storage;

use std::time::Instant;

use crate::engine::Observation;
use crate::progress::Progress;
use crate::providers::{self, Desired};
use crate::secrets;
use crate::spec::LoadedSpec;

/// The groups of checks, for `--only`.
pub(crate) const GROUPS: &[&str] = &["database", "storage", "cdn", "alarms", "notifications", "backups"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct Outcome {
    pub group: &'static str,
    pub name: String,
    pub status: Status,
    pub ms: u64,
    pub detail: String,
}

fn outcome(group: &'static str, name: impl Into<String>, status: Status, started: Instant, detail: impl Into<String>) -> Outcome {
    Outcome { group, name: name.into(), status, ms: started.elapsed().as_millis() as u64, detail: secrets::redact(&detail.into()) }
}

/// Runs the groups `want` accepts, in order, each behind a spinner.
pub(crate) async fn run(
    loaded: &LoadedSpec,
    obs: &Observation,
    aws: Option<&providers::aws::Aws>,
    want: &dyn Fn(&str) -> bool,
    progress: &Progress,
) -> Vec<Outcome> {
    let mut results = Vec::new();
    if want("database") {
        let task = progress.spinner("checking the database logins".to_string());
        results.extend(database::database(loaded, obs).await);
        task.finish();
    }
    if want("storage")
        && let Some(aws) = aws
    {
        let task = progress.spinner("checking the buckets".to_string());
        results.extend(storage::storage(loaded, obs, aws).await);
        task.finish();
    }
    if want("cdn")
        && let Some(aws) = aws
    {
        let task = progress.spinner("checking the distributions".to_string());
        results.extend(cdn::cdn(loaded, obs, aws).await);
        task.finish();
    }
    if want("alarms") {
        results.extend(alarms::alarms(obs, aws).await);
    }
    if want("notifications") {
        results.extend(notifications::notifications(loaded, obs, aws).await);
    }
    if want("backups") {
        results.extend(backups::backups(loaded, obs));
    }
    results
}

/// A name no other probe (of this run or another) shares: the environment and the time.
pub(super) fn probe_token(env: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{env}-{nanos}")
}

/// A declared bucket's region: its own, else the environment's.
pub(super) fn bucket_region(loaded: &LoadedSpec, bucket: &Desired) -> String {
    bucket.attrs.get("region").and_then(|r| r.as_str()).map(String::from).unwrap_or_else(|| loaded.spec.aws_region())
}

/// Removes a probe object and leaves nothing of it behind. In a versioned bucket a plain
/// DELETE only adds a delete marker and keeps the version (S3 User Guide, "Deleting object
/// versions from a versioning-enabled bucket": a permanent delete names the version id), so
/// the probe is deleted by the version PutObject returned, and any version or delete marker
/// still under its key (a suspended bucket's `null` version, an earlier run's marker) goes
/// too: `destroy` later finds the bucket empty.
async fn remove_probe(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, version: Option<&str>) -> Result<(), String> {
    let mut delete = s3.delete_object().bucket(bucket).key(key);
    if let Some(v) = version {
        delete = delete.version_id(v);
    }
    delete.send().await.map_err(|e| aws_sdk_s3::error::DisplayErrorContext(&e).to_string())?;
    if version.is_none() {
        return Ok(());
    }
    let listed = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(&e).to_string())?;
    let left = listed
        .versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .filter_map(|v| v.version_id())
        .chain(listed.delete_markers().iter().filter(|m| m.key() == Some(key)).filter_map(|m| m.version_id()));
    for v in left.map(String::from).collect::<Vec<_>>() {
        s3.delete_object()
            .bucket(bucket)
            .key(key)
            .version_id(&v)
            .send()
            .await
            .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(&e).to_string())?;
    }
    Ok(())
}
