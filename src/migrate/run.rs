//! `migrate data` as one run: the chosen collections copied a few at a time, each verified,
//! and reported as data (`CollectionRun`) for the command to print.

use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;

use super::copy::{self, CopyOptions, CopyReport, Tally};
use super::data::Source;
use super::verify::{self, Verification};
use super::{CollectionInfo, MigrateError};
use crate::progress::{Progress, Task};

/// One collection's outcome.
#[derive(Debug, serde::Serialize)]
pub(crate) struct CollectionRun {
    pub collection: String,
    #[serde(flatten)]
    pub copy: Option<CopyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CollectionRun {
    /// Copied whole, every document accepted, and the target's copy the same as the source.
    pub(crate) fn ok(&self) -> bool {
        self.error.is_none() && self.copy.as_ref().is_some_and(|c| c.refused == 0) && self.verification.as_ref().is_some_and(|v| v.matches)
    }

    /// What went wrong, one message per problem.
    pub(crate) fn failures(&self) -> Vec<String> {
        let name = &self.collection;
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(if e.starts_with(&format!("collection {name}")) { e.clone() } else { format!("collection {name}: {e}") });
        }
        if let Some(c) = self.copy.as_ref().filter(|c| c.refused > 0) {
            let named: Vec<String> = c.refusals.iter().map(|r| format!("_id {} (code {}: {})", r.id, r.code, r.why)).collect();
            let more = c.refused.saturating_sub(c.refusals.len() as u64);
            out.push(format!(
                "collection {name}: the target refused {} document(s): {}{}{}",
                c.refused,
                named.join("; "),
                if more > 0 { format!("; and {more} more") } else { String::new() },
                if c.refusals.iter().any(|r| r.code == 121) {
                    "; documents older than the collection's validator: run again with --bypass-document-validation (the bypassDocumentValidation right, in dbAdmin and restore) or fix them at the source"
                } else {
                    ""
                }
            ));
        }
        if let Some(v) = self.verification.as_ref().filter(|v| !v.matches) {
            out.push(format!(
                "collection {name} differs after the copy: source {} documents (hash {}), target {} (hash {}); a differing _id: {}",
                v.source_count,
                v.source_hash,
                v.target_count,
                v.target_hash,
                v.first_difference.as_deref().unwrap_or("(none found)")
            ));
        }
        out
    }
}

struct Bar {
    task: Task,
    docs: AtomicU64,
    total: u64,
    name: String,
}

impl Tally for Bar {
    fn advance(&self, docs: u64, bytes: u64) {
        let done = self.docs.fetch_add(docs, Ordering::Relaxed) + docs;
        self.task.inc(bytes);
        self.task.set_message(format!("{} {done}/{} docs", self.name, self.total));
    }
}

/// Copies and verifies the collections, `lanes` at a time, sorted by name.
pub(crate) async fn copy_collections(
    source: &Source,
    chosen: &[CollectionInfo],
    target: &super::Target,
    opts: CopyOptions,
    lanes: usize,
    progress: &Progress,
) -> Vec<CollectionRun> {
    let mut runs: Vec<CollectionRun> = futures::stream::iter(chosen.iter().map(|c| async move {
        let bar = Bar {
            task: progress.bytes(c.bytes.unwrap_or(0), c.name.clone()),
            docs: AtomicU64::new(0),
            total: c.count.unwrap_or(0),
            name: c.name.clone(),
        };
        let copied = copy::copy(source, c, target, opts, &bar).await;
        bar.task.set_message(format!("{} verifying", c.name));
        let run = match copied {
            Ok(report) => match verify::verify(source, c, target).await {
                Ok(v) => CollectionRun { collection: c.name.clone(), copy: Some(report), verification: Some(v), error: None },
                Err(e) => CollectionRun { collection: c.name.clone(), copy: Some(report), verification: None, error: Some(chain(&e)) },
            },
            Err(e) => CollectionRun { collection: c.name.clone(), copy: None, verification: None, error: Some(chain(&e)) },
        };
        bar.task.finish();
        run
    }))
    .buffer_unordered(lanes.max(1))
    .collect()
    .await;
    runs.sort_by(|a, b| a.collection.cmp(&b.collection));
    runs
}

fn chain(e: &MigrateError) -> String {
    crate::secrets::error_chain(e)
}
