//! `migrate data`'s source: a dump directory or a MongoDB URI, its collections, and their
//! documents in bounded batches. The copy is `copy`, the comparison `verify`.
//!
//! How the real server behaves, and where that was read:
//! - `listCollections` gives each collection's `type` (collection, view, timeseries) and
//!   `options` (docs "listCollections"), sorted by `super::classify`.
//! - The server moves `_id` first on insert (`src/mongo/db/ops/insert.cpp`,
//!   `fixDocumentForInsert`), so the fingerprint hashes documents with `_id` first.

use std::collections::HashMap;
use std::path::PathBuf;

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, RawDocumentBuf, doc};
use tokio::sync::mpsc;

use super::dump::{DocReader, DumpDir};
use super::{CollectionInfo, CollectionKind, MigrateError, raw};

/// A batch is at most this many documents, or this many bytes of documents (one `insert`
/// command is a BSON document of at most 16 MiB + 16 KiB, BSONObjMaxInternalSize in
/// src/mongo/bson/bsonobj.h; smaller batches keep memory low and progress smooth). A
/// document alone may fill a batch up to the largest a client stores.
pub(crate) const BATCH_DOCS: usize = 1000;
const BATCH_BYTES: usize = 8 * 1024 * 1024;

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
    /// Documents holding a key or string that is not UTF-8 (copied as bytes), and the first
    /// one's `_id` and field, for the warning.
    pub not_utf8: usize,
    pub first_not_utf8: Option<String>,
}

impl Batch {
    /// Adds a document; the batches this completes, in order: the one before it when the
    /// document would not fit beside it, and this one when it is full.
    fn push(&mut self, d: RawDocumentBuf, checked: &raw::Checked) -> Vec<Batch> {
        if checked.not_utf8 > 0 {
            self.not_utf8 += 1;
            if self.first_not_utf8.is_none() {
                let field = checked.first_path.as_deref().unwrap_or("");
                self.first_not_utf8 = Some(format!("_id {}, field {field}", raw::id_of(&d)));
            }
        }
        let mut done = Vec::new();
        let len = d.as_bytes().len();
        if !self.docs.is_empty() && self.bytes + len > BATCH_BYTES {
            done.push(std::mem::take(self));
        }
        self.bytes += len;
        self.docs.push(d);
        if self.docs.len() >= BATCH_DOCS || self.bytes >= BATCH_BYTES {
            done.push(std::mem::take(self));
        }
        done
    }
}

/// Derives the `_id` of documents that have none: the same bytes give the same id, the k-th
/// copy of the same bytes the k-th id, whatever order a dump lists them in.
#[derive(Default)]
struct DerivedIds {
    seen: HashMap<[u8; 32], u64>,
}

impl DerivedIds {
    fn apply(&mut self, d: RawDocumentBuf, collection: &str) -> (RawDocumentBuf, bool) {
        if raw::find(d.as_bytes(), "_id").is_some() {
            return (d, false);
        }
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(d.as_bytes()).into();
        let copy = self.seen.entry(digest).or_insert(0);
        *copy += 1;
        (with_id(d, collection, *copy), true)
    }
}

impl Source {
    /// A MongoDB URI (`mongodb://` or `mongodb+srv://`, the database in its path) or a dump
    /// directory.
    pub(crate) async fn open(from: &str, target_db: &str, db: Option<&str>) -> Result<Source, MigrateError> {
        if from.starts_with("mongodb://") || from.starts_with("mongodb+srv://") {
            let bad = |why: String| MigrateError::Source { source_name: crate::secrets::redact(&redact_uri(from)), why };
            let mut opts =
                mongodb::options::ClientOptions::parse(from).await.map_err(|e| bad(format!("is not a usable connection string: {e}")))?;
            let db = opts
                .default_database
                .clone()
                .ok_or_else(|| bad("names no database: put it in the path, e.g. mongodb://127.0.0.1:27017/home_service_db".into()))?;
            opts.app_name = Some("poactl-migrate".into());
            crate::providers::mongo_index::bound_client_options(&mut opts);
            let hosts = opts.hosts.iter().map(|h| h.to_string()).collect();
            let client = mongodb::Client::with_options(opts).map_err(|e| bad(format!("cannot be used: {e}")))?;
            Ok(Source::Mongo { client, db, hosts })
        } else {
            Ok(Source::Dump(DumpDir::open(std::path::Path::new(from), target_db, db)?))
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Dump(d) => format!("dump {} (database {})", d.dir.display(), d.database()),
            Source::Mongo { db, hosts, .. } => format!("mongodb://{}/{db}", hosts.join(",")),
        }
    }

    /// What the run should say about the source beyond its collections (a dump's other
    /// databases, its oplog).
    pub(crate) fn notes(&self) -> &[String] {
        match self {
            Source::Dump(d) => &d.notes,
            Source::Mongo { .. } => &[],
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
                let endpoint = self.hosts().map(|(h, _)| h.join(",")).unwrap_or_default();
                let req = |operation: &'static str| crate::deadline::Request { service: "MongoDB", endpoint: &endpoint, operation };
                // Every read here is idempotent: asked again within the call's deadline.
                let listed =
                    || async { database.run_cursor_command(doc! {"listCollections": 1}).await?.try_collect::<Vec<Document>>().await };
                let specs: Vec<Document> = crate::deadline::read(req("listCollections"), listed).await?.map_err(read)?;
                let mut out = Vec::new();
                for s in specs {
                    let name = s.get_str("name").unwrap_or_default().to_string();
                    let options = s.get_document("options").cloned().unwrap_or_default();
                    let (kind, reason) = super::classify(&name, s.get_str("type").ok(), &options);
                    let (mut indexes, mut count, mut bytes) = (Vec::new(), None, None);
                    if kind == CollectionKind::Collection {
                        let listed = || async {
                            database.run_cursor_command(doc! {"listIndexes": &name}).await?.try_collect::<Vec<Document>>().await
                        };
                        indexes = crate::deadline::read(req("listIndexes"), listed).await?.map_err(read)?;
                        // Sizes are for the dry run and the progress bars only: a server or
                        // role that refuses $collStats (it needs collStats rights) leaves
                        // them unknown, with the count from the collection's metadata.
                        let coll = database.collection::<Document>(&name);
                        let stats_of = || async {
                            coll.aggregate([doc! {"$collStats": {"storageStats": {}}}]).await?.try_collect::<Vec<Document>>().await
                        };
                        let stats: Vec<Document> = crate::deadline::read(req("aggregate $collStats"), stats_of).await?.unwrap_or_default();
                        let st = stats.first().and_then(|s| s.get_document("storageStats").ok());
                        count = st.and_then(|s| s.get("count")).and_then(number).map(|n| n as u64);
                        bytes = st.and_then(|s| s.get("size")).and_then(number).map(|n| n as u64);
                        if count.is_none() {
                            count = crate::deadline::read(req("count"), || coll.estimated_document_count()).await?.ok();
                        }
                    }
                    out.push(CollectionInfo { name, kind, reason, options, indexes, count, bytes, file: None });
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
                    let mut ids = DerivedIds::default();
                    loop {
                        match reader.next_document() {
                            Ok(Some((d, checked))) => {
                                let (d, derived) = ids.apply(d, &name);
                                batch.derived_ids += usize::from(derived);
                                for full in batch.push(d, &checked) {
                                    if tx.blocking_send(Ok(full)).is_err() {
                                        return;
                                    }
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
                let endpoint = self.hosts().map(|(h, _)| h.join(",")).unwrap_or_default();
                tokio::spawn(async move { pump(coll, tx, &source_name, &endpoint).await });
            }
        }
        rx
    }
}

/// A dump document without `_id` (from an old capped collection, or written by hand) gets
/// one: the server would add a random ObjectId on insert (src/mongo/db/ops/insert.cpp), which
/// a rerun could not recognise. poactl derives it from the collection, the document's bytes
/// and which copy of those bytes it is (`copy`, from 1), so the copy stays resumable and
/// verifiable, a fresh dump of the same data gives the same ids in any order, and two equal
/// documents stay two.
pub(crate) fn with_id(d: RawDocumentBuf, collection: &str, copy: u64) -> RawDocumentBuf {
    if raw::find(d.as_bytes(), "_id").is_some() {
        return d;
    }
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(collection.as_bytes());
    h.update(copy.to_le_bytes());
    h.update(d.as_bytes());
    let digest = h.finalize();
    // `_id` (type ObjectId, 0x07) first, then the document's own elements byte for byte:
    // nothing is parsed, so strings that are not UTF-8 stay as they were.
    let mut id = vec![0x07];
    id.extend_from_slice(b"_id\0");
    id.extend_from_slice(&digest[..12]);
    let bytes = d.as_bytes();
    let out = raw::document([&id[..], &bytes[4..bytes.len() - 1]]);
    RawDocumentBuf::from_bytes(out).expect("a well-formed document with one more element is well-formed")
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
/// Reads one collection of a live source into batches. Each request (the find, each next
/// batch) is bounded by one attempt's deadline: a source that stops answering ends the copy
/// of that collection with TIMED OUT, and a rerun resumes it.
async fn pump(coll: mongodb::Collection<RawDocumentBuf>, tx: mpsc::Sender<Result<Batch, MigrateError>>, source_name: &str, endpoint: &str) {
    let read = |e: mongodb::error::Error| MigrateError::SourceRead { source_name: source_name.to_string(), source: e };
    let operation = format!("find {}", coll.name());
    let req = || crate::deadline::Request { service: "MongoDB", endpoint, operation: &operation };
    let mut cursor = match crate::deadline::step(req(), coll.find(doc! {}).batch_size(BATCH_DOCS as u32)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let _ = tx.send(Err(read(e))).await;
            return;
        }
        Err(u) => {
            let _ = tx.send(Err(u.into())).await;
            return;
        }
    };
    let mut batch = Batch::default();
    loop {
        match crate::deadline::step(req(), cursor.try_next()).await {
            Ok(Ok(Some(d))) => {
                // A server's document is well-formed; the walk only counts what is not UTF-8.
                let checked = raw::check(d.as_bytes()).unwrap_or_default();
                for full in batch.push(d, &checked) {
                    if tx.send(Ok(full)).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                let _ = tx.send(Err(read(e))).await;
                return;
            }
            Err(u) => {
                let _ = tx.send(Err(u.into())).await;
                return;
            }
        }
    }
    if !batch.docs.is_empty() {
        let _ = tx.send(Ok(batch)).await;
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::rawdoc;

    use super::*;

    #[test]
    fn derived_ids_follow_the_bytes_not_the_order_and_equal_documents_stay_two() {
        let ids = |docs: &[RawDocumentBuf]| -> Vec<String> {
            let mut derived = DerivedIds::default();
            let mut out: Vec<String> = docs
                .iter()
                .map(|d| derived.apply(d.clone(), "logs").0.get_object_id("_id").map(|o| o.to_hex()).unwrap_or_default())
                .collect();
            out.sort();
            out
        };
        let (a, b) = (rawdoc! {"line": "a"}, rawdoc! {"line": "b"});
        let first = ids(&[a.clone(), b.clone(), a.clone()]);
        assert_eq!(first, ids(&[b.clone(), a.clone(), a.clone()]), "a fresh dump in another order gives the same ids");
        assert_eq!(first.iter().collect::<std::collections::HashSet<_>>().len(), 3, "two equal documents stay two");
        let mut derived = DerivedIds::default();
        let with = rawdoc! {"_id": 7, "line": "a"};
        assert_eq!(derived.apply(with.clone(), "logs"), (with, false), "an _id of its own is kept");
    }
}
