//! `migrate data`: copies collections from a dump directory or a MongoDB URI into the
//! environment's database, in bounded batches, resumably (by `_id`), then verifies them.
//!
//! How the real server behaves, and where that was read:
//! - An unordered `insert` goes on past a duplicate key and reports each as a write error
//!   with code 11000 and `index: _id_` in its message (server
//!   `src/mongo/db/storage/duplicate_key_error_info.cpp`; driver `InsertManyError`).
//! - The server moves `_id` first on insert (`src/mongo/db/ops/insert.cpp`,
//!   `fixDocumentForInsert`), so the fingerprint hashes documents with `_id` first.
//! - `create` takes the options listed in its docs ("create" command). Anything else a dump's
//!   `options` holds (`autoIndexId`, the `flags` of 3.x dumps) is left out and named: the
//!   Node.js driver never sends `autoIndexId` either (node-mongodb-native
//!   `src/operations/create_collection.ts`, `ILLEGAL_COMMAND_FIELDS`).
//! - A view, or a `system.*` collection, is not data to insert
//!   (mongorestore restores views through `create` with `viewOn`; poactl leaves views to the
//!   operator and says so).
//! - The server also replaces an empty `Timestamp(0, 0)` in a document's first two fields with
//!   the current time on insert (same `fixDocumentForInsert`; mongod skips it only for
//!   `bypassEmptyTsReplacement`, which the Rust driver does not send). Such a document
//!   arrives changed, and the verification names it: nothing differs silently.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, RawDocumentBuf, doc};
use mongodb::error::ErrorKind;
use tokio::sync::mpsc;

use super::dump::{DocReader, DumpDir};
use super::hash::{self, Fingerprint};
use super::{CollectionInfo, CollectionKind, MigrateError};

/// A batch is at most this many documents or bytes (a server message holds 48 MB and 100,000
/// documents; smaller batches keep memory low and progress smooth).
const BATCH_DOCS: usize = 1000;
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// `create` options mongodump writes that a server takes back (docs: "create" command).
const CREATE_OPTIONS: &[&str] = &[
    "capped",
    "size",
    "max",
    "validator",
    "validationLevel",
    "validationAction",
    "collation",
    "timeseries",
    "expireAfterSeconds",
    "clusteredIndex",
    "changeStreamPreAndPostImages",
    "indexOptionDefaults",
    "storageEngine",
];

pub(crate) enum Source {
    Dump(DumpDir),
    Mongo { client: mongodb::Client, db: String, hosts: Vec<String> },
}

#[derive(Default)]
pub(crate) struct Batch {
    pub docs: Vec<RawDocumentBuf>,
    pub bytes: usize,
    /// Documents that came without `_id` and were given a derived one.
    pub derived_ids: usize,
}

impl Batch {
    /// Adds a document; whether the batch is full.
    fn push(&mut self, d: RawDocumentBuf) -> bool {
        self.bytes += d.as_bytes().len();
        self.docs.push(d);
        self.docs.len() >= BATCH_DOCS || self.bytes >= BATCH_BYTES
    }
}

impl Source {
    /// A MongoDB URI (`mongodb://` or `mongodb+srv://`, the database in its path) or a dump
    /// directory.
    pub(crate) async fn open(from: &str, target_db: &str) -> Result<Source, MigrateError> {
        if from.starts_with("mongodb://") || from.starts_with("mongodb+srv://") {
            let bad = |why: String| MigrateError::Source { source_name: crate::secrets::redact(&redact_uri(from)), why };
            let mut opts =
                mongodb::options::ClientOptions::parse(from).await.map_err(|e| bad(format!("is not a usable connection string: {e}")))?;
            let db = opts
                .default_database
                .clone()
                .ok_or_else(|| bad("names no database: put it in the path, e.g. mongodb://127.0.0.1:27017/home_service_db".into()))?;
            opts.app_name = Some("poactl-migrate".into());
            if opts.server_selection_timeout.is_none() {
                opts.server_selection_timeout = Some(Duration::from_secs(15));
            }
            let hosts = opts.hosts.iter().map(|h| h.to_string()).collect();
            let client = mongodb::Client::with_options(opts).map_err(|e| bad(format!("cannot be used: {e}")))?;
            Ok(Source::Mongo { client, db, hosts })
        } else {
            Ok(Source::Dump(DumpDir::open(std::path::Path::new(from), target_db)?))
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Dump(d) => format!("dump {} (database {})", d.dir.display(), d.database()),
            Source::Mongo { db, hosts, .. } => format!("mongodb://{}/{db}", hosts.join(",")),
        }
    }

    pub(crate) fn hosts(&self) -> Option<(&[String], &str)> {
        match self {
            Source::Mongo { hosts, db, .. } => Some((hosts, db)),
            Source::Dump(_) => None,
        }
    }

    pub(crate) async fn collections(&self) -> Result<Vec<CollectionInfo>, MigrateError> {
        match self {
            Source::Dump(d) => {
                let d = d.clone();
                tokio::task::spawn_blocking(move || d.collections())
                    .await
                    .map_err(|e| MigrateError::Source { source_name: "dump".into(), why: e.to_string() })?
            }
            Source::Mongo { client, db, .. } => {
                let source_name = self.describe();
                let read = |e: mongodb::error::Error| MigrateError::SourceRead { source_name: source_name.clone(), source: e };
                let database = client.database(db);
                let specs: Vec<Document> =
                    database.run_cursor_command(doc! {"listCollections": 1}).await.map_err(read)?.try_collect().await.map_err(read)?;
                let mut out = Vec::new();
                for s in specs {
                    let name = s.get_str("name").unwrap_or_default().to_string();
                    let options = s.get_document("options").cloned().unwrap_or_default();
                    let kind = match s.get_str("type") {
                        _ if name.starts_with("system.") => CollectionKind::System,
                        Ok("view") => CollectionKind::View,
                        _ => CollectionKind::Collection,
                    };
                    let (mut indexes, mut count, mut bytes) = (Vec::new(), None, None);
                    if kind == CollectionKind::Collection {
                        indexes = database
                            .run_cursor_command(doc! {"listIndexes": &name})
                            .await
                            .map_err(read)?
                            .try_collect()
                            .await
                            .map_err(read)?;
                        // Sizes are for the dry run and the progress bars only: a server or
                        // role that refuses $collStats (it needs collStats rights) leaves
                        // them unknown, with the count from the collection's metadata.
                        let coll = database.collection::<Document>(&name);
                        let stats: Vec<Document> = match coll.aggregate([doc! {"$collStats": {"storageStats": {}}}]).await {
                            Ok(c) => c.try_collect().await.unwrap_or_default(),
                            Err(_) => Vec::new(),
                        };
                        let st = stats.first().and_then(|s| s.get_document("storageStats").ok());
                        count = st.and_then(|s| s.get("count")).and_then(number).map(|n| n as u64);
                        bytes = st.and_then(|s| s.get("size")).and_then(number).map(|n| n as u64);
                        if count.is_none() {
                            count = coll.estimated_document_count().await.ok();
                        }
                    }
                    out.push(CollectionInfo { name, kind, options, indexes, count, bytes, file: None });
                }
                out.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(out)
            }
        }
    }

    /// The collection's documents in batches, read ahead by at most two batches.
    pub(crate) fn stream(&self, info: &CollectionInfo) -> mpsc::Receiver<Result<Batch, MigrateError>> {
        let (tx, rx) = mpsc::channel(2);
        match self {
            Source::Dump(_) => {
                let file: Option<PathBuf> = info.file.clone();
                let name = info.name.clone();
                tokio::task::spawn_blocking(move || {
                    let Some(file) = file else { return };
                    let mut reader = match DocReader::open(&file) {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    };
                    let mut batch = Batch::default();
                    let mut ordinal = 0u64;
                    loop {
                        ordinal += 1;
                        match reader.next_document() {
                            Ok(Some(d)) => {
                                if d.get("_id").ok().flatten().is_none() {
                                    batch.derived_ids += 1;
                                }
                                let d = with_id(d, &name, ordinal);
                                if batch.push(d) && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                                    return;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                let _ = tx.blocking_send(Err(e));
                                return;
                            }
                        }
                    }
                    if !batch.docs.is_empty() {
                        let _ = tx.blocking_send(Ok(batch));
                    }
                });
            }
            Source::Mongo { client, db, .. } => {
                let coll = client.database(db).collection::<RawDocumentBuf>(&info.name);
                let source_name = self.describe();
                tokio::spawn(async move { pump(coll.find(doc! {}).batch_size(BATCH_DOCS as u32).await, tx, &source_name).await });
            }
        }
        rx
    }
}

/// A dump document without `_id` (from an old capped collection, or written by hand) gets
/// one: the server would add a random ObjectId on insert (src/mongo/db/ops/insert.cpp), which
/// a rerun could not recognise. poactl derives it from the collection, the document's place
/// in the file and its bytes, so the copy stays resumable and verifiable, and two equal
/// documents stay two.
pub(crate) fn with_id(d: RawDocumentBuf, collection: &str, ordinal: u64) -> RawDocumentBuf {
    if d.get("_id").ok().flatten().is_some() {
        return d;
    }
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(collection.as_bytes());
    h.update(ordinal.to_le_bytes());
    h.update(d.as_bytes());
    let digest = h.finalize();
    let mut id = [0u8; 12];
    id.copy_from_slice(&digest[..12]);
    let mut out = RawDocumentBuf::new();
    out.append("_id", mongodb::bson::oid::ObjectId::from_bytes(id));
    for (k, v) in d.iter().flatten() {
        out.append(k, v.to_raw_bson());
    }
    out
}

fn number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(f) => Some(*f),
        _ => None,
    }
}

/// The URI without its password, for messages.
fn redact_uri(uri: &str) -> String {
    match (uri.find("://"), uri.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://(credentials)@{}", &uri[..s], &uri[at + 1..]),
        _ => uri.to_string(),
    }
}

/// Feeds a cursor's documents to the channel in batches.
async fn pump(
    cursor: mongodb::error::Result<mongodb::Cursor<RawDocumentBuf>>,
    tx: mpsc::Sender<Result<Batch, MigrateError>>,
    source_name: &str,
) {
    let read = |e: mongodb::error::Error| MigrateError::SourceRead { source_name: source_name.to_string(), source: e };
    let mut cursor = match cursor {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(Err(read(e))).await;
            return;
        }
    };
    let mut batch = Batch::default();
    loop {
        match cursor.try_next().await {
            Ok(Some(d)) => {
                if batch.push(d) && tx.send(Ok(std::mem::take(&mut batch))).await.is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Err(read(e))).await;
                return;
            }
        }
    }
    if !batch.docs.is_empty() {
        let _ = tx.send(Ok(batch)).await;
    }
}

/// The create options of a source collection that are sent, and the ones left out.
pub(crate) fn create_options(options: &Document) -> (Document, Vec<String>) {
    let mut keep = Document::new();
    let mut dropped = Vec::new();
    for (k, v) in options {
        if CREATE_OPTIONS.contains(&k.as_str()) {
            keep.insert(k.clone(), v.clone());
        } else {
            dropped.push(k.clone());
        }
    }
    (keep, dropped)
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct CopyReport {
    pub collection: String,
    /// Whether poactl created the collection (with the source's options).
    pub created: bool,
    pub inserted: u64,
    /// Documents whose `_id` the target already had (a rerun, or a copy cut short).
    pub already_there: u64,
    /// Documents without `_id` in the source, given one derived from their place and bytes.
    pub derived_ids: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// What the copy reports as it goes: documents and bytes sent or found there.
pub(crate) trait Tally: Send + Sync {
    fn advance(&self, docs: u64, bytes: u64);
}

/// Copies one collection: creates it with the source's options when the target lacks it,
/// then inserts every batch unordered. When the target already holds documents, each batch
/// first asks which `_id`s are there and sends only the others; a duplicate `_id` met anyway
/// (a concurrent writer) counts as already there. Any other write error stops the collection
/// and names the document.
pub(crate) async fn copy(
    source: &Source,
    info: &CollectionInfo,
    target: &mongodb::Database,
    tally: &dyn Tally,
) -> Result<CopyReport, MigrateError> {
    let started = Instant::now();
    let name = &info.name;
    let write = |e: mongodb::error::Error| MigrateError::TargetWrite { collection: name.clone(), source: e };
    let mut report = CopyReport { collection: name.clone(), ..Default::default() };
    let exists: Vec<Document> = target
        .run_cursor_command(doc! {"listCollections": 1, "filter": {"name": name}, "nameOnly": true})
        .await
        .map_err(write)?
        .try_collect()
        .await
        .map_err(write)?;
    if exists.is_empty() {
        let (options, _) = create_options(&info.options);
        let mut cmd = doc! {"create": name};
        cmd.extend(options);
        match target.run_command(cmd).await {
            Ok(_) => report.created = true,
            // Another run created it meanwhile (NamespaceExists, server create_collection.cpp).
            Err(e) if code(&e) == Some(48) => {}
            Err(e) => return Err(write(e)),
        }
    }
    let coll = target.collection::<RawDocumentBuf>(name);
    let resume = !report.created && coll.estimated_document_count().await.map_err(write)? > 0;
    let mut rx = source.stream(info);
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        report.derived_ids += batch.derived_ids as u64;
        let mut docs = batch.docs;
        let total = docs.len() as u64;
        if resume {
            let ids: Vec<Bson> =
                docs.iter().filter_map(|d| d.get("_id").ok().flatten().map(|v| v.to_raw_bson().try_into().unwrap_or(Bson::Null))).collect();
            let there: Vec<RawDocumentBuf> = coll
                .find(doc! {"_id": {"$in": ids}})
                .projection(doc! {"_id": 1})
                .batch_size(BATCH_DOCS as u32)
                .await
                .map_err(write)?
                .try_collect()
                .await
                .map_err(write)?;
            let there: HashSet<Vec<u8>> = there.iter().filter_map(|d| hash::id_bytes(d)).collect();
            docs.retain(|d| hash::id_bytes(d).is_none_or(|id| !there.contains(&id)));
        }
        let skipped = total - docs.len() as u64;
        report.already_there += skipped;
        let sent = docs.len() as u64;
        if !docs.is_empty() {
            match coll.insert_many(&docs).ordered(false).await {
                Ok(_) => report.inserted += sent,
                Err(e) => {
                    let ErrorKind::InsertMany(failure) = e.kind.as_ref() else { return Err(write(e)) };
                    let mut duplicates = 0;
                    for w in failure.write_errors.iter().flatten() {
                        if w.code == 11000 && w.message.contains("index: _id_ ") {
                            duplicates += 1;
                        } else {
                            let id = docs
                                .get(w.index)
                                .and_then(|d| d.get("_id").ok().flatten())
                                .map(|v| display(&v.to_raw_bson()))
                                .unwrap_or_default();
                            return Err(MigrateError::Refused { collection: name.clone(), id, code: w.code, why: w.message.clone() });
                        }
                    }
                    if failure.write_concern_error.is_some() {
                        return Err(write(e));
                    }
                    report.inserted += sent - duplicates;
                    report.already_there += duplicates;
                }
            }
        }
        report.bytes += batch.bytes as u64;
        tally.advance(total, batch.bytes as u64);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

fn display(v: &mongodb::bson::RawBson) -> String {
    Bson::try_from(v.clone()).map(|b| b.to_string()).unwrap_or_else(|_| format!("{v:?}"))
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Verification {
    pub collection: String,
    pub source_count: u64,
    pub target_count: u64,
    pub source_hash: String,
    pub target_hash: String,
    pub matches: bool,
    /// The first `_id` (in source order) whose document differs or is missing on the target,
    /// else the first found only on the target.
    pub first_difference: Option<String>,
}

/// Both sides' fingerprints; on a mismatch, a second read of the differing buckets finds the
/// first differing `_id`.
pub(crate) async fn verify(source: &Source, info: &CollectionInfo, target: &mongodb::Database) -> Result<Verification, MigrateError> {
    let coll = target.collection::<RawDocumentBuf>(&info.name);
    let (s, t) = tokio::try_join!(fingerprint_source(source, info, None), fingerprint_target(&coll, &info.name, None))?;
    let (sf, tf) = (s.0, t.0);
    let mut v = Verification {
        collection: info.name.clone(),
        source_count: sf.count,
        target_count: tf.count,
        source_hash: sf.hex(),
        target_hash: tf.hex(),
        matches: sf == tf,
        first_difference: None,
    };
    if !v.matches {
        let buckets: HashSet<usize> = sf.differing(&tf).into_iter().collect();
        let (s, t) =
            tokio::try_join!(fingerprint_source(source, info, Some(&buckets)), fingerprint_target(&coll, &info.name, Some(&buckets)))?;
        let target_docs: HashMap<&Vec<u8>, u128> = t.1.iter().map(|(id, d)| (id, *d)).collect();
        let source_ids: HashSet<&Vec<u8>> = s.1.iter().map(|(id, _)| id).collect();
        let first =
            s.1.iter()
                .find(|(id, d)| target_docs.get(id) != Some(d))
                .map(|(id, _)| id)
                .or_else(|| t.1.iter().map(|(id, _)| id).find(|id| !source_ids.contains(id)));
        v.first_difference = first.map(|id| id_display(id));
    }
    Ok(v)
}

fn id_display(id: &[u8]) -> String {
    RawDocumentBuf::from_bytes(id.to_vec())
        .ok()
        .and_then(|d| d.get("").ok().flatten().map(|v| display(&v.to_raw_bson())))
        .unwrap_or_else(|| "(unreadable _id)".into())
}

type Members = Vec<(Vec<u8>, u128)>;

fn add(
    fp: &mut Fingerprint,
    members: &mut Members,
    only: Option<&HashSet<usize>>,
    d: &RawDocumentBuf,
    what: &str,
) -> Result<(), MigrateError> {
    let Some(h) = hash::hash(d) else {
        return Err(MigrateError::Verify {
            collection: what.to_string(),
            why: "a document has no _id, so it cannot be matched across the copy".into(),
        });
    };
    match only {
        Some(b) if b.contains(&h.bucket) => members.push((h.id.clone(), h.digest)),
        _ => {}
    }
    fp.add(&h, d.as_bytes().len());
    Ok(())
}

async fn fingerprint_source(
    source: &Source,
    info: &CollectionInfo,
    only: Option<&HashSet<usize>>,
) -> Result<(Fingerprint, Members), MigrateError> {
    let mut fp = Fingerprint::default();
    let mut members = Vec::new();
    let mut rx = source.stream(info);
    while let Some(batch) = rx.recv().await {
        for d in &batch?.docs {
            add(&mut fp, &mut members, only, d, &info.name)?;
        }
    }
    Ok((fp, members))
}

async fn fingerprint_target(
    coll: &mongodb::Collection<RawDocumentBuf>,
    name: &str,
    only: Option<&HashSet<usize>>,
) -> Result<(Fingerprint, Members), MigrateError> {
    let read = |e: mongodb::error::Error| MigrateError::TargetWrite { collection: name.to_string(), source: e };
    let mut fp = Fingerprint::default();
    let mut members = Vec::new();
    let mut cursor = coll.find(doc! {}).batch_size(BATCH_DOCS as u32).await.map_err(read)?;
    while let Some(d) = cursor.try_next().await.map_err(read)? {
        add(&mut fp, &mut members, only, &d, name)?;
    }
    Ok((fp, members))
}
