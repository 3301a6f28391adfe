//! `migrate data`'s copy of one collection into the target: the collection made with the
//! dump's options (or the target's compared with them), the documents inserted unordered in
//! batches, resumably by `_id`, and the validator put back after the load.
//!
//! How the real server behaves, and where that was read:
//! - `create` takes the options listed in its docs ("create" command). Anything else a dump's
//!   `options` holds (`autoIndexId`, the `flags` of 3.x dumps) is left out and named: the
//!   Node.js driver never sends `autoIndexId` either (node-mongodb-native
//!   `src/operations/create_collection.ts`, `ILLEGAL_COMMAND_FIELDS`).
//! - An unordered `insert` goes on past a refused document and reports each as a write error
//!   (`index`, `code`, `errmsg`); a duplicate `_id` is code 11000 with `index: _id_` in its
//!   message (docs "insert" command; server `src/mongo/db/storage/duplicate_key_error_info.cpp`).
//! - On insert the server replaces every top-level `Timestamp(0, 0)` with the current time
//!   (`src/mongo/db/ops/insert.cpp`, `fixDocumentForInsert`: "we replace Timestamp(0,0) at the
//!   top level"), unless the insert says `bypassEmptyTsReplacement: true` (5.0 and later:
//!   jstests/core/write/empty_ts/bypass_empty_ts_replacement.js). An older server refuses the
//!   field as unknown (40415, which mongo-tools `common/db/empty_timestamp.go` probes for);
//!   there the documents go in without it and each empty timestamp is put back with `$set`,
//!   which keeps it (jstests/core/write/empty_ts/empty_ts.js: "empty timestamp values ... will
//!   be preserved as-is" for update-operator updates). The Rust driver has no option for the
//!   field, so poactl sends the `insert` command itself.
//! - A validator refuses documents written before it (DocumentValidationFailure, 121, docs
//!   "Schema Validation"). A collection poactl creates gets its validator after the load,
//!   with its level and action, through `collMod` (docs "collMod": validator,
//!   validationLevel, validationAction), when the user may run collMod (dbAdmin; not an app's
//!   readWrite); else at once, as mongorestore does. `bypassDocumentValidation` (the action of
//!   the same name, in the dbAdmin and restore roles) is the other way, for a target that has
//!   one.
//! - A document over 16 MiB (BSONObjMaxUserSize) is refused as BSONObjectTooLarge (10) by
//!   `fixDocumentForInsert`; poactl refuses it itself, since the command carrying it could
//!   not be sent.

use std::collections::HashSet;
use std::time::Instant;

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, RawArrayBuf, RawDocument, RawDocumentBuf, doc};

use super::data::{BATCH_DOCS, Source};
use super::{CollectionInfo, MigrateError, Target};
use super::{hash, raw};
use crate::providers::mongo_index::error_code as code;
use crate::providers::mongo_index::normalize::normalize_number;

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

/// The options `collMod` puts back after the load.
const VALIDATION: &[&str] = &["validator", "validationLevel", "validationAction"];

/// The largest document a client stores (BSONObjMaxUserSize, src/mongo/bson/bsonobj.h).
const MAX_USER_DOCUMENT: usize = 16 * 1024 * 1024;

/// How many refused documents a report names (all are counted).
const REFUSALS_NAMED: usize = 20;

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

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CopyOptions {
    /// Send `bypassDocumentValidation` (for a target whose collection has a validator the
    /// older documents fail).
    pub bypass_document_validation: bool,
}

/// A document the target refused.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Refusal {
    pub id: String,
    pub code: i32,
    pub why: String,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct CopyReport {
    pub collection: String,
    /// Whether poactl created the collection (with the source's options).
    pub created: bool,
    pub inserted: u64,
    /// Documents whose `_id` the target already had (a rerun, or a copy cut short).
    pub already_there: u64,
    /// Documents without `_id` in the source, given one derived from their bytes.
    pub derived_ids: u64,
    /// Documents with an empty top-level `Timestamp(0, 0)`, sent so that it stays.
    pub empty_timestamps: u64,
    /// Documents holding a key or string that is not UTF-8, copied byte for byte, and the
    /// first one's `_id` and field.
    pub not_utf8: u64,
    pub first_not_utf8: Option<String>,
    /// Documents the target refused (the first `REFUSALS_NAMED` are named).
    pub refused: u64,
    pub refusals: Vec<Refusal>,
    /// Whether the validator was put back with `collMod` after the load.
    pub validator_restored: bool,
    pub bytes: u64,
    pub seconds: f64,
}

/// What the copy reports as it goes: documents and bytes sent or found there.
pub(crate) trait Tally: Send + Sync {
    fn advance(&self, docs: u64, bytes: u64);
}

/// Copies one collection: creates it with the source's options (its validator held back)
/// when the target lacks it, else compares the target's options with the source's; then
/// inserts every batch unordered. When the target already holds documents, each batch first
/// asks which `_id`s are there and sends only the others; a duplicate `_id` met anyway (a
/// concurrent writer) counts as already there. A document the target refuses is counted and
/// named, and the rest go on. Last, the validator is put back.
pub(crate) async fn copy(
    source: &Source,
    info: &CollectionInfo,
    target: &Target,
    opts: CopyOptions,
    tally: &dyn Tally,
) -> Result<CopyReport, MigrateError> {
    let started = Instant::now();
    let name = &info.name;
    let write = |e: mongodb::error::Error| MigrateError::TargetWrite { collection: name.clone(), source: e };
    let mut report = CopyReport { collection: name.clone(), ..Default::default() };
    let (wanted, _) = create_options(&info.options);
    let held_back: Document =
        wanted.iter().filter(|(k, _)| VALIDATION.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let db = &target.db;
    let mut existing = target.read(&format!("listCollections {name}"), || listed_options(db, name)).await?.map_err(write)?;
    // Holding the validator back needs the collMod right (dbAdmin), which an app's readWrite
    // user lacks: asked first (`may_coll_mod`), on the name that does not exist yet. Without it the collection gets its validator at once, as mongorestore does, and older
    // documents are refused and named with the fix.
    let hold_back = !held_back.is_empty() && existing.is_none() && may_coll_mod(target, name).await?;
    if existing.is_none() {
        let mut cmd = doc! {"create": name};
        cmd.extend(wanted.iter().filter(|(k, _)| !(hold_back && VALIDATION.contains(&k.as_str()))).map(|(k, v)| (k.clone(), v.clone())));
        match target.write(&format!("create {name}"), db.run_command(cmd)).await? {
            Ok(_) => report.created = true,
            // Another run created it meanwhile (NamespaceExists, server create_collection.cpp).
            Err(e) if code(&e) == Some(48) => {
                existing = target.read(&format!("listCollections {name}"), || listed_options(db, name)).await?.map_err(write)?
            }
            Err(e) => return Err(write(e)),
        }
    }
    let coll = db.collection::<RawDocumentBuf>(name);
    let count = format!("count {name}");
    // A collection without the source's validator is one poactl made and has not finished
    // loading (the validator comes last), or one made without options: either way the
    // validator is put back after the load. One with another validator is someone else's.
    let mut restore_validator = report.created && hold_back;
    let holds_documents = !report.created && target.read(&count, || coll.estimated_document_count()).await?.map_err(write)? > 0;
    if let Some(have) = &existing {
        let lacks_validator = !have.contains_key("validator") && held_back.contains_key("validator");
        // Only collMod adds the validator to a collection that exists: without that right the
        // load would leave the collection without it, silently.
        if lacks_validator && !may_coll_mod(target, name).await? {
            return Err(MigrateError::Options {
                collection: name.clone(),
                differences: "validator: the source has one, the target none".into(),
                fix: "only collMod adds a validator to an existing collection, and this user may not run it: migrate as a user with dbAdmin on the database (--mongodb-uri), as `database.user` needs for `poactl apply` too".into(),
            });
        }
        let differences = option_differences(&wanted, have, lacks_validator);
        if !differences.is_empty() {
            let empty = target.read(&count, || coll.estimated_document_count()).await?.map_err(write)? == 0;
            return Err(MigrateError::Options {
                collection: name.clone(),
                differences: differences.join("; "),
                fix: options_fix(name, empty),
            });
        }
        restore_validator = lacks_validator;
    }
    let mut rx = source.stream(info);
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        report.derived_ids += batch.derived_ids as u64;
        report.not_utf8 += batch.not_utf8 as u64;
        if report.first_not_utf8.is_none() {
            report.first_not_utf8 = batch.first_not_utf8.clone();
        }
        let mut docs = batch.docs;
        let total = docs.len() as u64;
        if holds_documents {
            // An `_id` the bson crate cannot read (not UTF-8) is not asked for: its insert
            // then meets the duplicate-key error, counted as already there.
            let ids: Vec<Bson> =
                docs.iter().filter_map(|d| raw::parsed(&raw::find(d.as_bytes(), "_id")?)).filter_map(|v| Bson::try_from(v).ok()).collect();
            let ask = || async {
                coll.find(doc! {"_id": {"$in": ids.clone()}})
                    .projection(doc! {"_id": 1})
                    .batch_size(BATCH_DOCS as u32)
                    .await?
                    .try_collect()
                    .await
            };
            let there: Vec<RawDocumentBuf> = target.read(&format!("find {name} (the _ids already there)"), ask).await?.map_err(write)?;
            let there: HashSet<Vec<u8>> = there.iter().filter_map(|d| hash::id_bytes(d)).collect();
            docs.retain(|d| hash::id_bytes(d).is_none_or(|id| !there.contains(&id)));
        }
        report.already_there += total - docs.len() as u64;
        insert(target, name, &docs, opts, &mut report).await?;
        report.bytes += batch.bytes as u64;
        tally.advance(total, batch.bytes as u64);
    }
    if restore_validator {
        let mut cmd = doc! {"collMod": name};
        cmd.extend(held_back);
        target.write(&format!("collMod {name} (its validator)"), db.run_command(cmd)).await?.map_err(write)?;
        report.validator_restored = true;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The target's options of a collection, or `None` when it has no such collection.
async fn listed_options(target: &mongodb::Database, name: &str) -> mongodb::error::Result<Option<Document>> {
    let listed: Vec<Document> =
        target.run_cursor_command(doc! {"listCollections": 1, "filter": {"name": name}}).await?.try_collect().await?;
    Ok(listed.first().map(|c| c.get_document("options").cloned().unwrap_or_default()))
}

fn options_fix(name: &str, empty: bool) -> String {
    if empty {
        format!(
            "the target's {name} is empty (`poactl apply` builds indexes on a collection it creates without options): drop it with `db.getCollection(\"{name}\").drop()` and run migrate again; it creates the collection with the dump's options, loads it, then builds the spec's indexes"
        )
    } else {
        format!(
            "the target's {name} holds documents: options such as collation, capped, clustered and time series are set only when a collection is created, so poactl leaves it alone; compare the two and decide"
        )
    }
}

/// The options a target collection differs in from the source's, as `option: source X,
/// target Y`. Values are compared as the server reports them: numbers of any width alike, a
/// collation in the fields the source gives less its ICU `version`, a clustered index by key
/// and uniqueness, a capped size as the server rounds it (docs "create": a size of at most
/// 4096 is 4096, others are raised to a multiple of 256), the defaults (validation level
/// strict, action error, no pre- and post-images) as if written. `storageEngine` and
/// `indexOptionDefaults` are storage details, not compared; with `skip_validation` the
/// validator trio neither (it comes after the load).
pub(crate) fn option_differences(source: &Document, target: &Document, skip_validation: bool) -> Vec<String> {
    let norm = |d: &Document, k: &str| -> serde_json::Value {
        let v = d.get(k).cloned().map(|b| normalize_number(&b.into_relaxed_extjson())).unwrap_or(serde_json::Value::Null);
        match (k, v) {
            ("capped", serde_json::Value::Null) => serde_json::json!(false),
            ("validationLevel", serde_json::Value::Null) if d.contains_key("validator") => serde_json::json!("strict"),
            ("validationAction", serde_json::Value::Null) if d.contains_key("validator") => serde_json::json!("error"),
            ("changeStreamPreAndPostImages", serde_json::Value::Null) => serde_json::json!({"enabled": false}),
            ("collation", serde_json::Value::Object(mut m)) => {
                m.remove("version");
                serde_json::Value::Object(m)
            }
            ("clusteredIndex", serde_json::Value::Object(m)) => {
                serde_json::json!({"key": m.get("key"), "unique": m.get("unique")})
            }
            (_, v) => v,
        }
    };
    let mut out = Vec::new();
    let keys = [
        "collation",
        "validator",
        "validationLevel",
        "validationAction",
        "capped",
        "size",
        "max",
        "clusteredIndex",
        "timeseries",
        "expireAfterSeconds",
        "changeStreamPreAndPostImages",
    ];
    for k in keys {
        if skip_validation && VALIDATION.contains(&k) {
            continue;
        }
        if (k == "size" || k == "max") && norm(source, "capped") != serde_json::json!(true) {
            continue;
        }
        let (want, mut have) = (norm(source, k), norm(target, k));
        if k == "collation"
            && let (serde_json::Value::Object(w), serde_json::Value::Object(h)) = (&want, &mut have)
        {
            h.retain(|f, _| w.contains_key(f));
        }
        if k == "size"
            && let (Some(w), Some(h)) = (want.as_u64(), have.as_u64())
            && (h == w || h == if w <= 4096 { 4096 } else { w.div_ceil(256) * 256 })
        {
            continue;
        }
        if want != have {
            let show = |v: &serde_json::Value| if v.is_null() { "none".to_string() } else { v.to_string() };
            out.push(format!("{k}: source {}, target {}", show(&want), show(&have)));
        }
    }
    out
}

/// The top-level fields holding `Timestamp(0, 0)`, which an insert would replace.
/// The walk is byte-level, so a string that is not UTF-8 before them does not hide them.
fn empty_timestamps(d: &RawDocument) -> Vec<Vec<u8>> {
    raw::elements(d.as_bytes())
        .map_while(Result::ok)
        .filter(|e| e.kind == raw::TIMESTAMP && e.value == [0u8; 8])
        .map(|e| e.key.to_vec())
        .collect()
}

fn refuse(report: &mut CopyReport, id: String, code: i32, why: String) {
    report.refused += 1;
    if report.refusals.len() < REFUSALS_NAMED {
        report.refusals.push(Refusal { id, code, why });
    }
}

/// Inserts one batch as one unordered `insert` command.
async fn insert(
    target: &Target,
    name: &str,
    docs: &[RawDocumentBuf],
    opts: CopyOptions,
    report: &mut CopyReport,
) -> Result<(), MigrateError> {
    let write = |e: mongodb::error::Error| MigrateError::TargetWrite { collection: name.to_string(), source: e };
    let mut sent = Vec::new();
    for d in docs {
        if d.as_bytes().len() > MAX_USER_DOCUMENT {
            refuse(
                report,
                raw::id_of(d),
                10,
                format!("BSONObjectTooLarge: the document is {} bytes, over the 16 MiB a server stores", d.as_bytes().len()),
            );
        } else {
            sent.push(d);
        }
    }
    if sent.is_empty() {
        return Ok(());
    }
    let fix_ups: Vec<(usize, Vec<Vec<u8>>)> =
        sent.iter().enumerate().map(|(i, d)| (i, empty_timestamps(d))).filter(|(_, f)| !f.is_empty()).collect();
    report.empty_timestamps += fix_ups.len() as u64;
    let command = |bypass_ts: bool| {
        let mut array = RawArrayBuf::new();
        for d in &sent {
            array.push((*d).clone());
        }
        let mut cmd = RawDocumentBuf::new();
        cmd.append("insert", name);
        cmd.append("documents", array);
        cmd.append("ordered", false);
        if opts.bypass_document_validation {
            cmd.append("bypassDocumentValidation", true);
        }
        if bypass_ts {
            cmd.append("bypassEmptyTsReplacement", true);
        }
        cmd
    };
    let mut put_back = false;
    let operation = format!("insert {name} ({} documents)", sent.len());
    let bytes: u64 = sent.iter().map(|d| d.as_bytes().len() as u64).sum();
    let reply = match target.write_sized(&operation, bytes, target.db.run_raw_command(command(!fix_ups.is_empty()))).await? {
        Err(e) if code(&e) == Some(40415) => {
            put_back = true;
            target.write_sized(&operation, bytes, target.db.run_raw_command(command(false))).await?.map_err(write)?
        }
        other => other.map_err(write)?,
    };
    if let Ok(wce) = reply.get_document("writeConcernError") {
        return Err(MigrateError::Usage(format!(
            "collection {name}: the target did not confirm the write ({}): run again to resume",
            wce.get_str("errmsg").unwrap_or("write concern error")
        )));
    }
    let mut failed = HashSet::new();
    for w in reply.get_array("writeErrors").map(|a| a.iter().filter_map(Bson::as_document).collect::<Vec<_>>()).unwrap_or_default() {
        let index = w.get("index").and_then(|v| v.as_i32().or(v.as_i64().map(|n| n as i32))).unwrap_or(-1);
        let code = w.get_i32("code").unwrap_or(0);
        let message = w.get_str("errmsg").unwrap_or("").to_string();
        failed.insert(index);
        if code == 11000 && message.contains("index: _id_ ") {
            report.already_there += 1;
        } else {
            let id = usize::try_from(index).ok().and_then(|i| sent.get(i)).map(|d| raw::id_of(d)).unwrap_or_default();
            let code_name = w.get_str("codeName").unwrap_or("");
            refuse(report, id, code, if code_name.is_empty() { message } else { format!("{code_name}: {message}") });
        }
    }
    report.inserted += (sent.len() - failed.len()) as u64;
    if put_back {
        // An older server replaced the empty timestamps: put each back with $set. The
        // update is built from the document's own bytes, so an `_id` or a field name that is
        // not UTF-8 is matched as it is.
        let updates: Vec<RawDocumentBuf> = fix_ups
            .iter()
            .filter(|(i, _)| !failed.contains(&(*i as i32)))
            .filter_map(|(i, fields)| {
                let id = raw::find(sent[*i].as_bytes(), "_id")?;
                let stamps: Vec<Vec<u8>> = fields.iter().map(|f| raw::element(raw::TIMESTAMP, f, &[0; 8])).collect();
                let set = raw::document(stamps.iter().map(Vec::as_slice));
                let q = raw::element(raw::DOCUMENT, b"q", &raw::document([id.whole]));
                let u = raw::element(raw::DOCUMENT, b"u", &raw::document([raw::element(raw::DOCUMENT, b"$set", &set).as_slice()]));
                RawDocumentBuf::from_bytes(raw::document([q.as_slice(), u.as_slice()])).ok()
            })
            .collect();
        for chunk in updates.chunks(BATCH_DOCS) {
            let mut list = RawArrayBuf::new();
            for u in chunk {
                list.push(u.clone());
            }
            let mut cmd = RawDocumentBuf::new();
            cmd.append("update", name);
            cmd.append("updates", list);
            cmd.append("ordered", false);
            target.write(&format!("update {name} (empty timestamps put back)"), target.db.run_raw_command(cmd)).await?.map_err(write)?;
        }
    }
    Ok(())
}

/// What the dry run finds in a collection's documents that the copy treats specially.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Survey {
    /// Documents with an empty top-level `Timestamp(0, 0)` (sent so that the server keeps it).
    pub empty_timestamps: u64,
    /// Documents without `_id` (given a derived one).
    pub without_id: u64,
    /// Documents over 16 MiB, which no server stores.
    pub too_large: u64,
    /// Documents holding a key or string that is not UTF-8 (copied byte for byte).
    pub not_utf8: u64,
    pub first_not_utf8: Option<String>,
}

/// Reads the collection once, as the copy would, and counts what it treats specially.
pub(crate) async fn survey(source: &Source, info: &CollectionInfo) -> Result<Survey, MigrateError> {
    let mut out = Survey::default();
    let mut rx = source.stream(info);
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        out.without_id += batch.derived_ids as u64;
        out.not_utf8 += batch.not_utf8 as u64;
        if out.first_not_utf8.is_none() {
            out.first_not_utf8 = batch.first_not_utf8.clone();
        }
        for d in &batch.docs {
            out.empty_timestamps += u64::from(!empty_timestamps(d).is_empty());
            out.too_large += u64::from(d.as_bytes().len() > MAX_USER_DOCUMENT);
        }
    }
    Ok(out)
}

/// Whether the user may run collMod on the collection: the server checks a command's rights
/// before its namespace, so a bare collMod answers Unauthorized (13) without the right, and
/// otherwise succeeds or finds no such collection (26), changing nothing either way.
async fn may_coll_mod(target: &Target, name: &str) -> Result<bool, MigrateError> {
    let answer = target.write(&format!("collMod {name} (may this user run it?)"), target.db.run_command(doc! {"collMod": name})).await?;
    Ok(!matches!(answer, Err(e) if code(&e) == Some(13)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_options_are_compared_as_the_server_reports_them() {
        let cases: Vec<(&str, Document, Document, bool, &[&str])> = vec![
            (
                "the same",
                doc! {"collation": {"locale": "fr"}},
                doc! {"collation": {"locale": "fr", "strength": 3, "version": "57.1"}},
                false,
                &[],
            ),
            ("a collation the target lacks", doc! {"collation": {"locale": "fr", "version": "1"}}, doc! {}, false, &["collation"]),
            (
                "capped size as the server rounds it",
                doc! {"capped": true, "size": 1000},
                doc! {"capped": true, "size": 4096i64},
                false,
                &[],
            ),
            ("capped size raised to 256", doc! {"capped": true, "size": 5000}, doc! {"capped": true, "size": 5120.0}, false, &[]),
            ("not capped on the target", doc! {"capped": true, "size": 5000}, doc! {}, false, &["capped", "size"]),
            (
                "default validation level",
                doc! {"validator": {"a": 1}},
                doc! {"validator": {"a": 1i64}, "validationLevel": "strict", "validationAction": "error"},
                false,
                &[],
            ),
            ("another validator", doc! {"validator": {"a": 1}}, doc! {"validator": {"b": 1}}, false, &["validator"]),
            ("validator held back", doc! {"validator": {"a": 1}, "validationAction": "warn"}, doc! {}, true, &[]),
            (
                "clustered",
                doc! {"clusteredIndex": {"key": {"_id": 1}, "unique": true}},
                doc! {"clusteredIndex": {"key": {"_id": 1}, "unique": true, "name": "_id_", "v": 2}},
                false,
                &[],
            ),
            (
                "TTL differs",
                doc! {"expireAfterSeconds": 60, "clusteredIndex": {"key": {"_id": 1}, "unique": true}},
                doc! {"clusteredIndex": {"key": {"_id": 1}, "unique": true}},
                false,
                &["expireAfterSeconds"],
            ),
            ("pre-images", doc! {"changeStreamPreAndPostImages": {"enabled": true}}, doc! {}, false, &["changeStreamPreAndPostImages"]),
            ("storage details are not compared", doc! {"storageEngine": {"wiredTiger": {}}}, doc! {}, false, &[]),
        ];
        for (what, source, target, skip, want) in cases {
            let got = option_differences(&source, &target, skip);
            let names: Vec<&str> = got.iter().map(|d| d.split(':').next().unwrap_or("")).collect();
            assert_eq!(names, want, "{what}: {got:?}");
        }
    }

    #[test]
    fn only_top_level_empty_timestamps_are_found() {
        use mongodb::bson::Timestamp;
        let zero = Timestamp { time: 0, increment: 0 };
        let d = mongodb::bson::rawdoc! {"_id": 1, "a": zero, "b": {"c": zero}, "d": Timestamp { time: 1, increment: 0 }, "e": zero};
        assert_eq!(empty_timestamps(&d), vec![b"a".to_vec(), b"e".to_vec()]);
    }
}
