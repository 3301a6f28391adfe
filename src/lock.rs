//! One `apply` or `destroy` at a time per environment.
//!
//! With `lock: { bucket, key }` the lock is an S3 object written with a conditional put
//! (`If-None-Match: *`): S3 answers 412 PreconditionFailed when it exists, so exactly one of
//! two racing runs gets it, on any machine. This is how Terraform's S3 backend `use_lockfile`
//! locks state (hashicorp/terraform `internal/backend/remote-state/s3`, lockfile). Without a
//! `lock:` section, a lock file on this machine (created exclusively) protects against runs on
//! the same machine only, and the run says so.
//!
//! The lock names its holder (who, where, since when, which operation) so that a refused run
//! can say whom it waits for, and `poactl unlock -e ENV --force` breaks a lock whose holder is
//! gone.

use std::path::PathBuf;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use crate::spec::LoadedSpec;

/// Who holds a lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Holder {
    pub environment: String,
    pub operation: String,
    pub who: String,
    #[serde(rename = "where")]
    pub place: String,
    pub since: String,
    pub pid: u32,
    /// Tells this run's lock from a later holder's when releasing.
    pub token: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} by {} on {} since {} (pid {})", self.operation, self.who, self.place, self.since, self.pid)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error(
        "environment \"{env}\" is locked: {holder}. Wait for that run to finish; if it is gone (a killed job), break the lock with `poactl unlock -e {env} --force`"
    )]
    Held { env: String, holder: Box<Holder> },
    #[error("cannot take the lock {place}: {reason}")]
    Unavailable { place: String, reason: String },
}

/// Where the lock lives.
enum Place {
    S3 { client: aws_sdk_s3::Client, bucket: String, key: String },
    Local { path: PathBuf },
}

impl Place {
    fn describe(&self) -> String {
        match self {
            Place::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
            Place::Local { path } => path.display().to_string(),
        }
    }
}

/// A lock this run holds; released by [`Lock::release`].
pub(crate) struct Lock {
    place: Place,
    holder: Holder,
}

async fn place_of(loaded: &LoadedSpec) -> Place {
    match &loaded.spec.lock {
        Some(l) => {
            let region = l.region.clone().unwrap_or_else(|| loaded.spec.aws_region());
            let base = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region)).load().await;
            let path_style = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"].iter().any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()));
            let client = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&base).force_path_style(path_style).build());
            let key = l.key.clone().unwrap_or_else(|| format!("poactl/locks/{}.json", loaded.env));
            Place::S3 { client, bucket: l.bucket.clone(), key }
        }
        None => {
            // One file per environment file and the services it talks to (an emulator on
            // another port is another world), wherever the run starts from.
            let file = loaded.files.first().map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())).unwrap_or_default();
            let mut scope = file.to_string_lossy().to_string();
            for var in ["MONGODB_ATLAS_BASE_URL", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"] {
                scope.push('\n');
                scope.push_str(&std::env::var(var).unwrap_or_default());
            }
            let digest = sha2::Sha256::digest(scope.as_bytes());
            let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            Place::Local { path: std::env::temp_dir().join("poactl-locks").join(format!("{}-{short}.json", loaded.env)) }
        }
    }
}

use sha2::Digest;

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "unknown host".to_string())
}

/// Where this run is: the CI job's address when there is one, else host and directory.
fn place_of_run() -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(server), Some(repo), Some(run)) = (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY"), var("GITHUB_RUN_ID")) {
        return format!("{server}/{repo}/actions/runs/{run}");
    }
    if let Some(url) = var("CI_JOB_URL").or_else(|| var("BUILD_URL")) {
        return url;
    }
    let dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    format!("{}:{dir}", hostname())
}

fn holder(loaded: &LoadedSpec, operation: &str) -> Holder {
    let user = std::env::var("USER").or_else(|_| std::env::var("GITHUB_ACTOR")).unwrap_or_else(|_| "someone".to_string());
    Holder {
        environment: loaded.env.clone(),
        operation: operation.to_string(),
        who: format!("{user}@{}", hostname()),
        place: place_of_run(),
        since: crate::clock::now_iso(),
        pid: std::process::id(),
        token: format!("{:016x}", fastrand::u64(..)),
    }
}

/// Whether a process of this machine is still alive (a lock file of a killed run is stale).
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists() || !std::path::Path::new("/proc/self").exists()
}

/// Takes the environment's lock for `operation` (`apply`, `destroy`), or says who holds it.
pub(crate) async fn acquire(loaded: &LoadedSpec, operation: &str) -> Result<Lock, LockError> {
    let place = place_of(loaded).await;
    let me = holder(loaded, operation);
    let body = serde_json::to_vec_pretty(&me).unwrap_or_default();
    let unavailable = |reason: String| LockError::Unavailable { place: place.describe(), reason };
    match &place {
        Place::S3 { client, bucket, key } => {
            let put = client
                .put_object()
                .bucket(bucket)
                .key(key)
                .if_none_match("*")
                .content_type("application/json")
                .body(body.into())
                .send()
                .await;
            match put {
                Ok(_) => {}
                Err(e) if matches!(e.code(), Some("PreconditionFailed" | "ConditionalRequestConflict")) => {
                    return Err(LockError::Held {
                        env: loaded.env.clone(),
                        holder: Box::new(read_s3(client, bucket, key).await.unwrap_or(unknown(loaded))),
                    });
                }
                Err(e) if e.code() == Some("NoSuchBucket") => {
                    return Err(unavailable(format!(
                        "the lock bucket {bucket} does not exist: create it first (it cannot be a bucket this spec creates)"
                    )));
                }
                Err(e) => return Err(unavailable(aws_sdk_s3::error::DisplayErrorContext(&e).to_string())),
            }
        }
        Place::Local { path } => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| unavailable(e.to_string()))?;
            }
            // Written whole to a file of its own, then linked into place: the link fails if
            // the lock exists, and a reader never sees a half-written holder.
            let staged = path.with_extension(format!("{}.tmp", me.token));
            std::fs::write(&staged, &body).map_err(|e| unavailable(e.to_string()))?;
            let taken = (|| {
                for _ in 0..2 {
                    match std::fs::hard_link(&staged, path) {
                        Ok(()) => return Ok(true),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            let other = std::fs::read(path).ok().and_then(|b| serde_json::from_slice::<Holder>(&b).ok());
                            match other {
                                // Left by a run of this machine that died: take it over.
                                Some(h) if h.who.ends_with(&format!("@{}", hostname())) && !alive(h.pid) => {
                                    let _ = std::fs::remove_file(path);
                                }
                                Some(h) => return Err(LockError::Held { env: loaded.env.clone(), holder: Box::new(h) }),
                                // Not a lock file poactl wrote: leave it, and say so.
                                None => {
                                    return Err(unavailable(
                                        "the lock file holds no holder; remove it if no poactl run is going on".to_string(),
                                    ));
                                }
                            }
                        }
                        Err(e) => return Err(unavailable(e.to_string())),
                    }
                }
                Ok(false)
            })();
            let _ = std::fs::remove_file(&staged);
            return match taken? {
                true => Ok(Lock { place, holder: me }),
                false => Err(unavailable("another run keeps taking it".to_string())),
            };
        }
    }
    Ok(Lock { place, holder: me })
}

fn unknown(loaded: &LoadedSpec) -> Holder {
    Holder {
        environment: loaded.env.clone(),
        operation: "a run".into(),
        who: "an unknown holder".into(),
        place: "an unknown place".into(),
        since: "an unknown time".into(),
        pid: 0,
        token: String::new(),
    }
}

async fn read_s3(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Holder> {
    let out = client.get_object().bucket(bucket).key(key).send().await.ok()?;
    let bytes = out.body.collect().await.ok()?.into_bytes();
    serde_json::from_slice(&bytes).ok()
}

impl Lock {
    /// Whether the lock lives on this machine only (no `lock:` in the spec).
    pub(crate) fn is_local(&self) -> bool {
        matches!(self.place, Place::Local { .. })
    }

    /// Releases the lock if this run still holds it (a `--force` unlock may have given it to
    /// another run meanwhile).
    pub(crate) async fn release(self) {
        match &self.place {
            Place::S3 { client, bucket, key } => {
                if read_s3(client, bucket, key).await.is_some_and(|h| h.token == self.holder.token) {
                    let _ = client.delete_object().bucket(bucket).key(key).send().await;
                }
            }
            Place::Local { path } => {
                let ours = std::fs::read(path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
                    .is_some_and(|h| h.token == self.holder.token);
                if ours {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// Who holds the environment's lock, if anyone.
pub(crate) async fn current(loaded: &LoadedSpec) -> Result<Option<Holder>, LockError> {
    let place = place_of(loaded).await;
    Ok(match &place {
        Place::S3 { client, bucket, key } => match client.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Some(read_s3(client, bucket, key).await.unwrap_or(unknown(loaded))),
            Err(_) => None,
        },
        Place::Local { path } => std::fs::read(path).ok().map(|b| serde_json::from_slice::<Holder>(&b).unwrap_or_else(|_| unknown(loaded))),
    })
}

/// Breaks the environment's lock, whoever holds it.
pub(crate) async fn force_unlock(loaded: &LoadedSpec) -> Result<(), LockError> {
    let place = place_of(loaded).await;
    match &place {
        Place::S3 { client, bucket, key } => client.delete_object().bucket(bucket).key(key).send().await.map(|_| ()).map_err(|e| {
            LockError::Unavailable { place: place.describe(), reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string() }
        }),
        Place::Local { path } => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LockError::Unavailable { place: place.describe(), reason: e.to_string() }),
        },
    }
}

#[cfg(test)]
mod tests {
    /// Many runs racing for one local lock: exactly one gets it, every other one reads a whole
    /// holder and is refused; once released, the next run gets it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn exactly_one_racer_takes_a_local_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("race.yaml"), "environment: race\n").unwrap();
        let loaded = std::sync::Arc::new(crate::spec::load(dir.path(), "race", &|_| None).unwrap());
        let racers = (0..16).map(|_| {
            let loaded = loaded.clone();
            tokio::spawn(async move { super::acquire(&loaded, "apply").await })
        });
        let results = futures::future::join_all(racers).await;
        let mut locks = Vec::new();
        for r in results {
            match r.unwrap() {
                Ok(lock) => locks.push(lock),
                Err(super::LockError::Held { holder, .. }) => assert_eq!(holder.operation, "apply"),
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        assert_eq!(locks.len(), 1, "exactly one holder");
        for l in locks {
            l.release().await;
        }
        let again = super::acquire(&loaded, "destroy").await.expect("free after release");
        again.release().await;
    }
}
