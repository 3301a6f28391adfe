//! JSON Schema for the types whose YAML form is not their Rust shape (hand-written
//! `Deserialize`): what each accepts, as the deserializer does, so `poactl schema` describes
//! exactly what the loader takes. Rules beyond a field's type stay `validate`'s.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{CollectionSpec, Duration, IndexKey, IndexKeys, IndexMapSpec, OneOrMany, Retention};

impl JsonSchema for IndexMapSpec {
    fn schema_name() -> Cow<'static, str> {
        "Collections".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let collection = generator.subschema_for::<CollectionSpec>();
        json_schema!({
            "description": "Collection name to its indexes, in the order written.",
            "type": ["object", "null"],
            "additionalProperties": collection,
        })
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let one = generator.subschema_for::<T>();
        json_schema!({"anyOf": [one, {"type": "array", "items": one}]})
    }
}

impl JsonSchema for IndexKey {
    fn schema_name() -> Cow<'static, str> {
        "IndexKey".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "1 or -1 (ascending, descending), 2dsphere, 2d, text or hashed.",
            "enum": [1, -1, "1", "-1", "2dsphere", "2d", "text", "hashed"],
        })
    }
}

impl JsonSchema for IndexKeys {
    fn schema_name() -> Cow<'static, str> {
        "IndexKeys".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let key = generator.subschema_for::<IndexKey>();
        json_schema!({
            "description": "Field to direction, in index order, e.g. { serviceType: 1, isAvailable: 1 }.",
            "type": "object",
            "minProperties": 1,
            "additionalProperties": key,
        })
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration such as 30s, 5m, 12h, 7d or 2w (units s, m or min, h, d, w); a bare number is seconds.",
            "oneOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^\\s*[0-9]+(s|m|min|h|d|w)?\\s*$"},
            ],
        })
    }
}

impl JsonSchema for Retention {
    fn schema_name() -> Cow<'static, str> {
        "Retention".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Snapshot retention: a count and a unit, e.g. 7d, 4w, 12mo, 1y.",
            "type": "string",
            "pattern": "^[0-9]+(d|w|mo|y)$",
        })
    }
}

/// The spec's schema, JSON Schema 2020-12, as `poactl schema` prints it and
/// `schema/poactl.schema.json` holds it.
///
/// No field is `required` in it: a file that `extends` another may leave any field to its
/// base (prod.yaml sets `database.uri` and takes the database's name from base.yaml), and an
/// editor sees one file, not the layers. Types, enums, patterns and unknown fields are
/// checked; a missing field is `validate`'s, on the layered result.
pub fn spec_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(super::Spec)).unwrap_or_default();
    drop_required(&mut schema);
    if let Some(o) = schema.as_object_mut() {
        o.insert("$id".into(), "https://github.com/poactl/poactl/raw/main/schema/poactl.schema.json".into());
        o.insert("title".into(), "poactl environment spec".into());
        o.insert(
            "description".into(),
            "One environment of poactl (docs/spec.md). Types and field names only: `poactl validate` checks the rest (references, regions, tiers, names, limits).".into(),
        );
    }
    schema
}

fn drop_required(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.remove("required");
            o.values_mut().for_each(drop_required);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(drop_required),
        _ => {}
    }
}
