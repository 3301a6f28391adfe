//! `migrate uploads` as one run: each file's checksum and manifest entry computed before
//! anything is sent (they decide what is skipped), the files uploaded a few at a time, every
//! key read back, and the manifest built from what the bucket holds. The command prints it.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures::StreamExt;

use super::MigrateError;
use super::scan::LocalFile;
use super::uploads::{self, CdnRules, Entry, FileStatus, InBucket, Manifest, Outcome, Verification};
use crate::progress::Progress;
use crate::spec::LoadedSpec;

impl uploads::Tally for crate::progress::Task {
    fn advance(&self, bytes: u64) {
        self.inc(bytes);
    }
}

/// A file ready to go: where it is, its manifest entry, and its parts' SHA-256 (multipart).
pub(crate) struct Prepared {
    pub file: LocalFile,
    pub entry: Entry,
    pub parts: Vec<String>,
}

/// Checksums and entries of the files, with a progress bar over their bytes.
pub(crate) async fn prepare(
    files: Vec<LocalFile>,
    prefix: &str,
    rules: &CdnRules,
    progress: &Progress,
) -> Result<Vec<Prepared>, MigrateError> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let hashing = progress.bytes(total, "checksums");
    let mut out = Vec::new();
    for file in files {
        let (sum, parts) = {
            let (p, size) = (file.path.clone(), file.size);
            tokio::task::spawn_blocking(move || uploads::checksum(&p, size))
                .await
                .map_err(|e| MigrateError::File { path: "(checksum task)".into(), why: e.to_string() })??
        };
        hashing.inc(file.size);
        let key = format!("{prefix}{}", file.rel);
        let entry = Entry {
            path: file.rel.clone(),
            url: rules.url(&key),
            size: file.size,
            sha256: sum,
            content_type: uploads::content_type(&file.rel).to_string(),
            cache_control: rules.cache_control(&key),
            key,
            status: FileStatus::Unverified,
            reason: None,
        };
        out.push(Prepared { file, entry, parts });
    }
    hashing.finish();
    Ok(out)
}

/// What an upload run did.
pub(crate) struct UploadRun {
    pub uploaded: usize,
    pub resumed: usize,
    pub already_there: usize,
    pub bytes_uploaded: u64,
    pub seconds: f64,
    /// `key: why` for each file whose upload failed.
    pub errors: Vec<String>,
    pub verification: Verification,
    /// Every file with the status the read-back gave it.
    pub files: Vec<Entry>,
}

/// Uploads what the bucket lacks (`lanes` files at a time), then reads every key back.
pub(crate) async fn upload_all(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    prepared: &[Prepared],
    lanes: usize,
    progress: &Progress,
) -> Result<UploadRun, MigrateError> {
    let keys: HashSet<String> = prepared.iter().map(|p| p.entry.key.clone()).collect();
    let unfinished = uploads::unfinished(client, bucket, prefix, &keys).await?;
    let listed = uploads::listed_sizes(client, bucket, prefix).await?;
    let started = Instant::now();
    let total: u64 = prepared.iter().map(|p| p.file.size).sum();
    let bar = progress.bytes(total, format!("uploading to s3://{bucket}"));
    let outcomes: Vec<(String, Result<Outcome, MigrateError>)> = futures::stream::iter(prepared.iter().map(|p| {
        let there =
            InBucket { size: listed.get(&p.entry.key).copied(), unfinished: unfinished.get(&p.entry.key).cloned().unwrap_or_default() };
        let bar = &bar;
        async move { (p.entry.key.clone(), uploads::put(client, bucket, &p.file, &p.entry, &p.parts, &there, bar).await) }
    }))
    .buffer_unordered(lanes.max(1))
    .collect()
    .await;
    let seconds = started.elapsed().as_secs_f64();
    bar.finish();
    let sent = |o: &Result<Outcome, _>| matches!(o, Ok(Outcome::Uploaded | Outcome::Resumed { .. }));
    let sizes: HashMap<&String, u64> = prepared.iter().map(|p| (&p.entry.key, p.entry.size)).collect();
    let failed: HashSet<&String> = outcomes.iter().filter(|(_, o)| o.is_err()).map(|(k, _)| k).collect();
    let mut files: Vec<Entry> = prepared.iter().map(|p| p.entry.clone()).collect();
    for e in files.iter_mut().filter(|e| failed.contains(&e.key)) {
        e.status = FileStatus::Failed;
        e.reason = Some("the upload failed".into());
    }
    // Read back before the manifest is written: it records what the bucket really holds.
    let verification = uploads::verify(client, bucket, &mut files, lanes).await?;
    Ok(UploadRun {
        uploaded: outcomes.iter().filter(|(_, o)| sent(o)).count(),
        resumed: outcomes.iter().filter(|(_, o)| matches!(o, Ok(Outcome::Resumed { .. }))).count(),
        already_there: outcomes.iter().filter(|(_, o)| matches!(o, Ok(Outcome::AlreadyThere))).count(),
        bytes_uploaded: outcomes.iter().filter(|(_, o)| sent(o)).filter_map(|(k, _)| sizes.get(k)).sum(),
        seconds,
        errors: outcomes.iter().filter_map(|(k, o)| o.as_ref().err().map(|e| format!("{k}: {}", crate::secrets::error_chain(e)))).collect(),
        verification,
        files,
    })
}

impl UploadRun {
    /// The manifest of this run.
    pub(crate) fn manifest(&self, environment: &str, bucket: &str, prefix: &str, cdn_base_url: Option<String>) -> Manifest {
        Manifest {
            format_version: uploads::MANIFEST_VERSION,
            environment: environment.to_string(),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            cdn_base_url,
            files: self.files.clone(),
        }
    }
}

/// The bucket uploads go to, and how the CDN serves it.
pub(crate) fn pick_bucket<'s>(loaded: &'s LoadedSpec, wanted: Option<&str>) -> Result<&'s crate::spec::model::BucketSpec, MigrateError> {
    let buckets: Vec<_> = loaded.spec.storage.iter().flat_map(|s| s.buckets.iter()).collect();
    match wanted {
        Some(name) => buckets.into_iter().find(|b| b.name == name).ok_or_else(|| {
            MigrateError::Usage(format!("--bucket {name} is not a bucket of environment \"{}\" (storage.buckets)", loaded.env))
        }),
        None => match buckets.as_slice() {
            [one] => Ok(one),
            [] => Err(MigrateError::Usage(format!("environment \"{}\" declares no bucket (storage.buckets)", loaded.env))),
            many => {
                let served: Vec<_> = many
                    .iter()
                    .filter(|b| loaded.spec.cdn.iter().flat_map(|c| c.distributions.iter()).any(|d| d.buckets().contains(&b.name.as_str())))
                    .collect();
                match served.as_slice() {
                    [one] => Ok(one),
                    _ => Err(MigrateError::Usage(format!(
                        "environment \"{}\" has several buckets ({}): name one with --bucket",
                        loaded.env,
                        many.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ")
                    ))),
                }
            }
        },
    }
}
