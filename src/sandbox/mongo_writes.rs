//! The wire mock's rules for what an insert stores (`super::mongo`): namespaces clients may
//! write, empty timestamps, validators and the document size limit, each cited to the server's
//! source or docs. A mock's rules, not a database's: see `super::mongo`.

use mongodb::bson::{Bson, Document};

use super::mongo::{Collection, error, matches};

/// The largest document a client may store (BSONObjMaxUserSize, src/mongo/bson/bsonobj.h).
pub(super) const MAX_USER_SIZE: usize = 16 * 1024 * 1024;

/// A collection name clients cannot write (server src/mongo/db/namespace_string.cpp:
/// `validCollectionName` refuses an empty name, `$` and NUL; `isLegalClientSystemNS` allows
/// only these `system.*` collections outside admin, config and local; both InvalidNamespace).
pub(super) fn invalid_namespace(db: &str, coll: &str) -> Option<Document> {
    if coll.is_empty() || coll.contains('$') || coll.contains('\0') || coll.starts_with('.') {
        return Some(error(73, "InvalidNamespace", &format!("Invalid collection name: {coll}")));
    }
    let legal = ["system.users", "system.js", "system.views"].contains(&coll)
        || coll.strip_prefix("system.buckets.").is_some_and(|rest| !rest.is_empty())
        || (db == "admin" && ["system.roles", "system.version", "system.keys", "system.backup_users"].contains(&coll));
    (coll.starts_with("system.") && !legal).then(|| error(73, "InvalidNamespace", &format!("Invalid system namespace: {db}.{coll}")))
}

/// An insert replaces every top-level `Timestamp(0, 0)` with the current time, nested ones
/// stay (server src/mongo/db/ops/insert.cpp, `fixDocumentForInsert`: "we replace
/// Timestamp(0,0) at the top level"; jstests/core/write/empty_ts/empty_ts.js).
pub(super) fn replace_empty_timestamps(d: &mut Document) {
    let now = mongodb::bson::Timestamp { time: mongodb::bson::DateTime::now().timestamp_millis().max(1000) as u32 / 1000, increment: 1 };
    for (_, v) in d.iter_mut() {
        if matches!(v, Bson::Timestamp(t) if t.time == 0 && t.increment == 0) {
            *v = Bson::Timestamp(now);
        }
    }
}

/// A collection's validator on insert (docs "Schema Validation": `validationAction: warn`
/// accepts and logs; `bypassDocumentValidation` skips it; a refused document is
/// DocumentValidationFailure, 121). The mock evaluates the query subset of `matches` only;
/// any other operator is refused as the mock's limit, never guessed.
pub(super) fn validate(c: &Collection, d: &Document, bypass: bool) -> Result<(), (i32, &'static str, String)> {
    let Ok(validator) = c.options.get_document("validator") else { return Ok(()) };
    if bypass || c.options.get_str("validationAction") == Ok("warn") || c.options.get_str("validationLevel") == Ok("off") {
        return Ok(());
    }
    if let Ok(schema) = validator.get_document("$jsonSchema") {
        return json_schema(d, schema);
    }
    match matches(d, validator) {
        Ok(true) => Ok(()),
        Ok(false) => Err((121, "DocumentValidationFailure", "Document failed validation".into())),
        Err(e) => Err((2, "BadValue", format!("the mock cannot evaluate this validator: {e}"))),
    }
}

/// The `$jsonSchema` keywords the mock evaluates (docs "$jsonSchema": `bsonType: "object"`
/// holds for every document, `required` lists fields that must be present); any other
/// keyword is refused as the mock's limit, never guessed.
fn json_schema(d: &Document, schema: &Document) -> Result<(), (i32, &'static str, String)> {
    for (k, v) in schema {
        match (k.as_str(), v) {
            ("bsonType", Bson::String(t)) if t == "object" => {}
            ("required", Bson::Array(fields)) => {
                if fields.iter().filter_map(Bson::as_str).any(|f| !d.contains_key(f)) {
                    return Err((121, "DocumentValidationFailure", "Document failed validation".into()));
                }
            }
            (other, _) => return Err((2, "BadValue", format!("the mock cannot evaluate $jsonSchema keyword {other}"))),
        }
    }
    Ok(())
}
