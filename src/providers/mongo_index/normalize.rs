//! Index documents, desired and live, in one comparable shape.
//!
//! MongoDB reports indexes in its own way (see `listIndexes`): key directions as int32, int64
//! or double, text indexes as `{_fts: "text", _ftsx: 1}` plus `weights`, collations with every
//! field the locale implies, `hidden`/`unique`/`sparse` only when true, `2dsphereIndexVersion` and
//! `textIndexVersion` added. Both sides are brought to the same form here, so a spec that
//! matches the live indexes plans no change.

use serde_json::{Map, Value, json};

use crate::spec::model::{IndexKey, IndexSpec};

/// A collation in comparable form (`version` dropped, numbers normalized); `None` for the
/// simple binary collation. The spec's side keeps only the fields it sets: the server fills
/// the others from the locale (`fr_CA` means `backwards: true`, collator_factory_icu.cpp), so
/// only the spec's fields are sent and compared (see `IndexProvider::diff`).
pub fn collation(c: &Map<String, Value>) -> Option<Value> {
    if c.get("locale").and_then(|l| l.as_str()) == Some("simple") {
        return None;
    }
    let out: std::collections::BTreeMap<String, Value> =
        c.iter().filter(|(k, _)| *k != "version").map(|(k, v)| (k.clone(), normalize_number(v))).collect();
    Some(Value::Object(out.into_iter().collect()))
}

/// int32 / int64 / double that hold a whole number compare as integers.
pub fn normalize_number(v: &Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(normalize_number).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), normalize_number(v))).collect()),
        other => other.clone(),
    }
}

pub fn key_value(k: IndexKey) -> Value {
    match k {
        IndexKey::Asc => json!(1),
        IndexKey::Desc => json!(-1),
        other => json!(other.name_part()),
    }
}

/// The desired index in comparable form.
pub fn desired_attrs(collection: &str, name: &str, ix: &IndexSpec) -> Value {
    let is_text = ix.keys.0.iter().any(|(_, k)| *k == IndexKey::Text);
    let mut keys: Vec<Value> = Vec::new();
    let mut weights = Map::new();
    let mut text_placed = false;
    for (field, k) in &ix.keys.0 {
        if *k == IndexKey::Text {
            // MongoDB stores the text fields as one `_fts`/`_ftsx` pair where the first was.
            if !text_placed {
                keys.push(json!(["_fts", "text"]));
                keys.push(json!(["_ftsx", 1]));
                text_placed = true;
            }
            weights.insert(field.clone(), json!(1));
        } else {
            keys.push(json!([field, key_value(*k)]));
        }
    }
    if let Some(w) = &ix.weights {
        for (f, v) in w {
            weights.insert(f.clone(), json!(v));
        }
    }
    json!({
        "collection": collection,
        "name": name,
        "keys": keys,
        "unique": ix.unique,
        "sparse": ix.sparse,
        "hidden": ix.hidden,
        "expire_after_seconds": ix.expire_after.as_ref().map(|d| d.seconds),
        "partial_filter": ix.partial_filter.as_ref().map(normalize_number),
        "collation": ix.collation.as_ref().and_then(collation),
        "weights": if is_text { Value::Object(sorted(weights)) } else { Value::Null },
        "default_language": if is_text { json!(ix.default_language.clone().unwrap_or_else(|| "english".into())) } else { Value::Null },
        "language_override": if is_text { json!(ix.language_override.clone().unwrap_or_else(|| "language".into())) } else { Value::Null },
    })
}

fn sorted(m: Map<String, Value>) -> Map<String, Value> {
    let b: std::collections::BTreeMap<String, Value> = m.into_iter().collect();
    b.into_iter().collect()
}

/// A `listIndexes` entry (as extended JSON from the driver) in comparable form.
pub fn live_attrs(collection: &str, doc: &Value) -> Value {
    let keys: Vec<Value> = doc
        .get("key")
        .and_then(|k| k.as_object())
        .map(|m| m.iter().map(|(f, v)| json!([f, normalize_number(v)])).collect())
        .unwrap_or_default();
    let is_text = keys.iter().any(|k| k[0] == "_fts");
    let flag = |k: &str| doc.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    json!({
        "collection": collection,
        "name": doc.get("name").cloned().unwrap_or(Value::Null),
        "keys": keys,
        "unique": flag("unique"),
        "sparse": flag("sparse"),
        "hidden": flag("hidden"),
        "expire_after_seconds": doc.get("expireAfterSeconds").map(normalize_number).unwrap_or(Value::Null),
        "partial_filter": doc.get("partialFilterExpression").map(normalize_number).unwrap_or(Value::Null),
        "collation": doc.get("collation").and_then(|c| c.as_object()).and_then(collation).unwrap_or(Value::Null),
        "weights": if is_text { doc.get("weights").and_then(|w| w.as_object()).map(|w| Value::Object(sorted(w.iter().map(|(k, v)| (k.clone(), normalize_number(v))).collect()))).unwrap_or(json!({})) } else { Value::Null },
        "default_language": if is_text { doc.get("default_language").cloned().unwrap_or(json!("english")) } else { Value::Null },
        "language_override": if is_text { doc.get("language_override").cloned().unwrap_or(json!("language")) } else { Value::Null },
    })
}

/// The `createIndexes` entry for desired attributes (keys in order, only set options).
pub fn create_spec(attrs: &Value, ix_keys: &[(String, IndexKey)]) -> Value {
    let mut key = Map::new();
    for (field, k) in ix_keys {
        key.insert(field.clone(), key_value(*k));
    }
    let mut spec = Map::new();
    spec.insert("key".into(), Value::Object(key));
    spec.insert("name".into(), attrs["name"].clone());
    for (attr, field) in [("unique", "unique"), ("sparse", "sparse"), ("hidden", "hidden")] {
        if attrs[attr] == json!(true) {
            spec.insert(field.into(), json!(true));
        }
    }
    for (attr, field) in [
        ("expire_after_seconds", "expireAfterSeconds"),
        ("partial_filter", "partialFilterExpression"),
        ("collation", "collation"),
        ("weights", "weights"),
        ("default_language", "default_language"),
        ("language_override", "language_override"),
    ] {
        if !attrs[attr].is_null() {
            spec.insert(field.into(), attrs[attr].clone());
        }
    }
    Value::Object(spec)
}

/// Whether the desired index can be built while the live one still stands (both under their
/// own names): indexes with one key pattern coexist when their signature differs, that is the
/// collation, the partial filter, `unique` or `sparse` (jstests/core/index_signature.js;
/// unique and sparse since 4.9, SERVER-47657). Anything else (a TTL, text weights) does not
/// tell them apart, and a collection holds one text index only (index_catalog_impl.cpp:
/// "only one text index per collection allowed").
pub fn coexists(live: &Value, desired: &Value, version: Option<(i64, i64)>) -> bool {
    let text = |a: &Value| a["keys"].as_array().is_some_and(|k| k.iter().any(|k| k[1] == "text"));
    if text(live) || text(desired) {
        return false;
    }
    if live["keys"] != desired["keys"] {
        return true;
    }
    // The collation as the spec sets it: the server fills the other fields from the locale.
    let collation_differs = match (desired["collation"].as_object(), live["collation"].as_object()) {
        (Some(want), Some(have)) => want.iter().any(|(k, v)| have.get(k) != Some(v)),
        (None, None) => false,
        _ => true,
    };
    let flags_differ = ["unique", "sparse"].iter().any(|f| live[*f] != desired[*f]);
    collation_differs || live["partial_filter"] != desired["partial_filter"] || (flags_differ && version.is_none_or(|v| v >= (4, 9)))
}
