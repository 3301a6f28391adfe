//! What `migrate data` copies: the source's collections sorted into the ones copied, the ones
//! left alone (with the reason) and the ones that stop the run before anything is written;
//! and the notes on the source's indexes that the spec does not declare as they are.

use mongodb::bson::{Bson, Document};
use serde_json::Value;

use super::{CollectionInfo, CollectionKind, MigrateError};
use crate::providers::mongo_index::normalize;
use crate::spec::model::{DatabaseSpec, IndexSpec};

#[derive(Debug, Default)]
pub(crate) struct Selection {
    pub chosen: Vec<CollectionInfo>,
    pub notes: Vec<String>,
    /// Why the run must stop before it writes anything (a time-series collection among the
    /// chosen ones: copying the rest would leave it behind unnoticed).
    pub refused: Vec<String>,
}

/// Sorts the source's collections (`wanted`: `--collections`, empty for all).
pub(crate) fn select(all: Vec<CollectionInfo>, wanted: &[String], db: &DatabaseSpec, source: &str) -> Result<Selection, MigrateError> {
    for want in wanted {
        match all.iter().find(|c| &c.name == want) {
            None => {
                return Err(MigrateError::Usage(format!(
                    "--collections names {want}, which {source} does not have (it has: {})",
                    all.iter().filter(|c| c.kind == CollectionKind::Collection).map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            Some(c) if c.kind != CollectionKind::Collection => {
                return Err(MigrateError::Usage(format!(
                    "--collections names {want}, which {}{}",
                    c.reason.as_deref().unwrap_or("is not a collection"),
                    if c.kind == CollectionKind::TimeSeries { TIME_SERIES_FIX } else { "" }
                )));
            }
            Some(_) => {}
        }
    }
    let mut out = Selection::default();
    for c in all.into_iter().filter(|c| wanted.is_empty() || wanted.contains(&c.name)) {
        let why = c.reason.clone().unwrap_or_default();
        match c.kind {
            CollectionKind::Collection => out.chosen.push(c),
            CollectionKind::TimeSeries => out.refused.push(format!("{} {why}{TIME_SERIES_FIX}", c.name)),
            CollectionKind::View | CollectionKind::Skipped => out.notes.push(format!("{} {why}", c.name)),
        }
    }
    for c in &out.chosen {
        let (_, dropped) = super::copy::create_options(&c.options);
        if !dropped.is_empty() {
            out.notes.push(format!("{}: options not sent to the target: {}", c.name, dropped.join(", ")));
        }
        let declared: Vec<&IndexSpec> =
            db.collections.0.iter().filter(|(name, _)| *name == c.name).flat_map(|(_, s)| s.indexes.iter()).collect();
        out.notes.extend(index_notes(&c.name, &c.indexes, &declared));
    }
    Ok(out)
}

const TIME_SERIES_FIX: &str = ": copy it with `mongorestore --nsInclude DB.NAME`, or leave it out with --collections (nothing was written)";

/// The source's indexes as the spec's index provider compares them: each one either matches a
/// declared index on the same keys in every option that changes what it enforces (unique,
/// sparse, partial filter, TTL, collation, text weights and languages), or is named with what
/// the spec lacks. Names and `hidden` are left out: poactl names and shows indexes itself.
pub(crate) fn index_notes(collection: &str, source: &[Document], declared: &[&IndexSpec]) -> Vec<String> {
    const IGNORED: &[&str] = &["name", "hidden", "collection"];
    let mut notes = Vec::new();
    for ix in source {
        let name = ix.get_str("name").unwrap_or("");
        if name == "_id_" {
            continue;
        }
        let live = normalize::live_attrs(collection, &Bson::Document(ix.clone()).into_relaxed_extjson());
        let fields: Vec<String> = ix.get_document("key").map(|k| k.keys().cloned().collect()).unwrap_or_default();
        let same_keys: Vec<Value> =
            declared.iter().map(|d| normalize::desired_attrs(collection, "", d)).filter(|d| d["keys"] == live["keys"]).collect();
        if same_keys.is_empty() {
            notes.push(format!(
                "{collection}: the source has index {name} on ({}), which the spec does not declare: add it to database.collections.{collection}.indexes to keep it",
                fields.join(", ")
            ));
            continue;
        }
        let differences = |want: &Value| -> Vec<String> {
            let mut have = live.clone();
            // The server fills a collation's other fields from its locale: compare the ones
            // the spec sets (as the index provider does).
            if let (Some(w), Some(Value::Object(h))) = (want.get("collation").and_then(Value::as_object), have.get_mut("collation")) {
                h.retain(|k, _| w.contains_key(k));
            }
            let (Some(have), Some(want)) = (have.as_object(), want.as_object()) else { return Vec::new() };
            have.iter()
                .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
                .filter(|(k, v)| want.get(*k).unwrap_or(&Value::Null) != *v)
                .map(|(k, v)| format!("{k}: {}", if v.is_null() { "none".to_string() } else { v.to_string() }))
                .collect()
        };
        if same_keys.iter().any(|d| differences(d).is_empty()) {
            continue;
        }
        let diffs = differences(&same_keys[0]);
        notes.push(format!(
            "{collection}: the source's index {name} on ({}) has {}, which the spec's index on the same keys does not: declare the same options in database.collections.{collection}.indexes, or the target's index will not enforce what the source's did",
            fields.join(", "),
            diffs.join(", ")
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    fn spec(yaml: &str) -> IndexSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn source_indexes_are_compared_whole_with_the_declared_ones() {
        let email_unique = doc! {"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true};
        let ttl = doc! {"v": 2, "key": {"at": 1.0}, "name": "at_1", "expireAfterSeconds": 3600};
        let fr = doc! {"v": 2, "key": {"name": 1i64}, "name": "name_1", "collation": {"locale": "fr", "strength": 3, "caseLevel": false, "version": "57.1"}};
        let cases: Vec<(&str, Document, Vec<&str>, Option<&str>)> = vec![
            ("the same index, declared", email_unique.clone(), vec!["{keys: {email: 1}, unique: true}"], None),
            ("declared without its uniqueness", email_unique.clone(), vec!["{keys: {email: 1}}"], Some("has unique: true")),
            ("not declared at all", email_unique.clone(), vec![], Some("which the spec does not declare")),
            ("other keys only", email_unique.clone(), vec!["{keys: {email: -1}, unique: true}"], Some("does not declare")),
            ("a TTL declared without its expiry", ttl.clone(), vec!["{keys: {at: 1}}"], Some("expire_after_seconds: 3600")),
            ("a TTL declared with it (double key in the dump)", ttl, vec!["{keys: {at: 1}, expire_after: 1h}"], None),
            (
                "a collation: the locale's filled-in fields do not count",
                fr.clone(),
                vec!["{keys: {name: 1}, collation: {locale: fr}}"],
                None,
            ),
            ("a collation the spec lacks", fr, vec!["{keys: {name: 1}}"], Some("collation")),
            (
                "one of two declared indexes on the keys matches",
                email_unique,
                vec!["{keys: {email: 1}, sparse: true}", "{keys: {email: 1}, unique: true}"],
                None,
            ),
        ];
        for (what, source, declared, want) in cases {
            let declared: Vec<IndexSpec> = declared.iter().map(|y| spec(y)).collect();
            let refs: Vec<&IndexSpec> = declared.iter().collect();
            let notes = index_notes("users", &[doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}, source], &refs);
            match want {
                None => assert!(notes.is_empty(), "{what}: {notes:?}"),
                Some(w) => assert!(notes.len() == 1 && notes[0].contains(w), "{what}: {notes:?}"),
            }
        }
    }
}
