//! `migrate data`'s comparison of a copied collection with its source: both sides'
//! fingerprints (`super::hash`), and on a mismatch a search for one `_id` that differs, in
//! bounded memory whatever the collection's size: each further read of both sides keeps 256
//! sums and counts for the documents whose `_id` hash starts with the path chosen so far, and
//! the path grows by the first differing one until at most `MEMBERS` documents are left,
//! which the last read keeps whole. A collection that differs everywhere costs a few more
//! reads (one per 256-fold narrowing), never memory for every `_id`.

use std::collections::HashMap;

use futures::TryStreamExt;
use mongodb::bson::{RawDocumentBuf, doc};

use super::data::{BATCH_DOCS, Source};
use super::hash::{self, Fingerprint, Hashed};
use super::raw::display;
use super::{CollectionInfo, MigrateError};

/// The documents (both sides together) the last read keeps to name the differing `_id`.
const MEMBERS: u64 = 2000;

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Verification {
    pub collection: String,
    pub source_count: u64,
    pub target_count: u64,
    pub source_hash: String,
    pub target_hash: String,
    pub matches: bool,
    /// An `_id` whose document differs or is missing on the target, else one found only on
    /// the target.
    pub first_difference: Option<String>,
}

/// What one read of a side keeps.
enum Keep<'p> {
    /// The whole fingerprint.
    All,
    /// Sums and counts by the next byte of the `_id` hash, for hashes starting with the path.
    Narrow(&'p [u8]),
    /// The documents whose `_id` hash starts with the path: `_id` and digest.
    Members(&'p [u8]),
}

#[derive(Default)]
struct Read {
    fp: Fingerprint,
    sums: Vec<(u128, u64)>,
    members: Vec<(Vec<u8>, u128)>,
}

impl Read {
    fn add(&mut self, keep: &Keep<'_>, h: &Hashed, len: usize) {
        match keep {
            Keep::All => self.fp.add(h, len),
            Keep::Narrow(path) if h.key.starts_with(path) => {
                if self.sums.is_empty() {
                    self.sums = vec![(0, 0); 256];
                }
                let s = &mut self.sums[h.key[path.len()] as usize];
                s.0 = s.0.wrapping_add(h.digest);
                s.1 += 1;
            }
            Keep::Members(path) if h.key.starts_with(path) => self.members.push((h.id.clone(), h.digest)),
            _ => {}
        }
    }
}

/// Both sides' fingerprints; on a mismatch, the narrowing search for a differing `_id`.
pub(crate) async fn verify(source: &Source, info: &CollectionInfo, target: &super::Target) -> Result<Verification, MigrateError> {
    let coll = (target, target.db.collection::<RawDocumentBuf>(&info.name));
    let (s, t) = read_both(source, info, &coll, &Keep::All).await?;
    let mut v = Verification {
        collection: info.name.clone(),
        source_count: s.fp.count,
        target_count: t.fp.count,
        source_hash: s.fp.hex(),
        target_hash: t.fp.hex(),
        matches: s.fp == t.fp,
        first_difference: None,
    };
    let Some(first) = s.fp.differing(&t.fp).first().copied() else { return Ok(v) };
    let mut path = vec![first as u8];
    loop {
        let (s, t) = read_both(source, info, &coll, &Keep::Narrow(&path)).await?;
        let (ss, ts) = (padded(s.sums), padded(t.sums));
        let Some(b) = (0..256).find(|b| ss[*b] != ts[*b]) else { break };
        path.push(b as u8);
        if ss[b].1 + ts[b].1 <= MEMBERS || path.len() >= 32 {
            break;
        }
    }
    let (s, t) = read_both(source, info, &coll, &Keep::Members(&path)).await?;
    let target_docs: HashMap<&Vec<u8>, u128> = t.members.iter().map(|(id, d)| (id, *d)).collect();
    let source_docs: HashMap<&Vec<u8>, u128> = s.members.iter().map(|(id, d)| (id, *d)).collect();
    let differing = s
        .members
        .iter()
        .find(|(id, d)| target_docs.get(id) != Some(d))
        .map(|(id, _)| id)
        .or_else(|| t.members.iter().map(|(id, _)| id).find(|id| !source_docs.contains_key(id)));
    v.first_difference = differing.map(|id| id_display(id));
    Ok(v)
}

async fn read_both(
    source: &Source,
    info: &CollectionInfo,
    coll: &(&super::Target, mongodb::Collection<RawDocumentBuf>),
    keep: &Keep<'_>,
) -> Result<(Read, Read), MigrateError> {
    tokio::try_join!(read_source(source, info, keep), read_target(coll, &info.name, keep))
}

fn padded(mut sums: Vec<(u128, u64)>) -> Vec<(u128, u64)> {
    sums.resize(256, (0, 0));
    sums
}

fn id_display(id: &[u8]) -> String {
    RawDocumentBuf::from_bytes(id.to_vec())
        .ok()
        .and_then(|d| d.get("").ok().flatten().map(|v| display(&v.to_raw_bson())))
        .unwrap_or_else(|| "(unreadable _id)".into())
}

fn add(read: &mut Read, keep: &Keep<'_>, d: &RawDocumentBuf, what: &str) -> Result<(), MigrateError> {
    let Some(h) = hash::hash(d) else {
        return Err(MigrateError::Verify {
            collection: what.to_string(),
            why: "a document has no _id, so it cannot be matched across the copy".into(),
        });
    };
    read.add(keep, &h, d.as_bytes().len());
    Ok(())
}

async fn read_source(source: &Source, info: &CollectionInfo, keep: &Keep<'_>) -> Result<Read, MigrateError> {
    let mut read = Read::default();
    let mut rx = source.stream(info);
    while let Some(batch) = rx.recv().await {
        for d in &batch?.docs {
            add(&mut read, keep, d, &info.name)?;
        }
    }
    Ok(read)
}

/// Each batch of the cursor is one bounded request: a target that stops answering midway
/// ends the comparison with TIMED OUT, not a hang.
async fn read_target(
    (target, coll): &(&super::Target, mongodb::Collection<RawDocumentBuf>),
    name: &str,
    keep: &Keep<'_>,
) -> Result<Read, MigrateError> {
    let fail = |e: mongodb::error::Error| MigrateError::TargetWrite { collection: name.to_string(), source: e };
    let mut read = Read::default();
    let operation = format!("find {name} (to compare)");
    let mut cursor = target.step(&operation, coll.find(doc! {}).batch_size(BATCH_DOCS as u32)).await?.map_err(fail)?;
    while let Some(d) = target.step(&operation, cursor.try_next()).await?.map_err(fail)? {
        add(&mut read, keep, &d, name)?;
    }
    Ok(read)
}
