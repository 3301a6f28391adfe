//! IAM-style policy documents (role trust and permission policies, topic policies, key
//! policies) as the services hand them back, and compared by what they mean.
//!
//! What the services do to a document they store (IAM User Guide, "IAM JSON policy
//! reference" and the GetRolePolicy API reference: "The policy document returned in this
//! structure is URL-encoded compliant with RFC 3986"; terraform-provider-aws compares them
//! with `verify.PolicyStringsEquivalent` / awspolicyequivalence for the same reason):
//! - IAM returns documents URL-encoded; SNS and KMS return them as JSON text;
//! - whitespace and key order are not kept;
//! - a single `Statement`, `Action`, `Resource` or principal may come back as a one-element
//!   list or a string, and lists in any order.

use serde_json::{Map, Value};

/// A document as a service returned it: JSON, or URL-encoded JSON (IAM).
pub fn document(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        let decoded: String = form_urlencoded::parse(format!("d={}", text.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        serde_json::from_str(&decoded).unwrap_or(Value::Null)
    })
}

/// A string or a list of strings, as a list.
pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

/// The statements of a document (one or a list).
pub fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![&doc["Statement"]],
        _ => Vec::new(),
    }
}

/// The document in one canonical shape, so that two documents meaning the same compare
/// equal: every string-or-list field a sorted list, statements sorted, `Version` kept.
pub fn normalize(doc: &Value) -> Value {
    let mut stmts: Vec<Value> = statements(doc).into_iter().map(normalize_statement).collect();
    stmts.sort_by_key(|s| s.to_string());
    let mut out = Map::new();
    if let Some(v) = doc.get("Version") {
        out.insert("Version".into(), v.clone());
    }
    out.insert("Statement".into(), Value::Array(stmts));
    Value::Object(out)
}

fn normalize_statement(s: &Value) -> Value {
    let Some(map) = s.as_object() else { return s.clone() };
    let mut out = Map::new();
    for (k, v) in map {
        let v = match k.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => sorted(v),
            "Principal" | "NotPrincipal" => match v {
                Value::Object(p) => Value::Object(p.iter().map(|(k, v)| (k.clone(), sorted(v))).collect()),
                other => other.clone(),
            },
            "Condition" => match v {
                Value::Object(ops) => Value::Object(
                    ops.iter()
                        .map(|(op, keys)| {
                            let keys = match keys {
                                Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), sorted(v))).collect()),
                                other => other.clone(),
                            };
                            (op.clone(), keys)
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::String(_) | Value::Array(_) => {
            let mut items: Vec<Value> = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            items.sort_by_key(|x| x.to_string());
            items.dedup();
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// The document with the statements whose `Sid` starts with `prefix` replaced by `ours`,
/// every other statement kept as it is (someone else's grants stay).
pub fn overlay(doc: &Value, prefix: &str, ours: Vec<Value>) -> Value {
    let mut kept: Vec<Value> =
        statements(doc).into_iter().filter(|s| !s["Sid"].as_str().is_some_and(|sid| sid.starts_with(prefix))).cloned().collect();
    kept.extend(ours);
    let mut out = doc.as_object().cloned().unwrap_or_default();
    out.entry("Version").or_insert_with(|| Value::String("2012-10-17".into()));
    out.insert("Statement".into(), Value::Array(kept));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_meaning_the_same_compare_equal() {
        let written = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "B", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "A", "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        // As IAM may return it: URL-encoded, reordered, single items as lists.
        let returned = json!({"Statement": [
            {"Action": ["sts:AssumeRole"], "Principal": {"Service": ["ecs-tasks.amazonaws.com"]}, "Effect": "Allow", "Sid": "A"},
            {"Resource": ["arn:aws:s3:::b/*"], "Action": ["s3:GetObject", "s3:PutObject"], "Effect": "Allow", "Sid": "B"}],
            "Version": "2012-10-17"});
        let encoded: String = form_urlencoded::byte_serialize(returned.to_string().as_bytes()).collect();
        assert_eq!(normalize(&document(&encoded)), normalize(&written));
        let narrowed = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "B", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "A", "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        assert_ne!(normalize(&narrowed), normalize(&written));
    }

    #[test]
    fn an_overlay_keeps_the_statements_of_others() {
        let live = json!({"Version": "2008-10-17", "Statement": [{"Sid": "__default_statement_ID", "Effect": "Allow"}, {"Sid": "poactl-old", "Effect": "Allow"}]});
        let out = overlay(&live, "poactl-", vec![json!({"Sid": "poactl-new"})]);
        let sids: Vec<&str> = statements(&out).iter().filter_map(|s| s["Sid"].as_str()).collect();
        assert_eq!(sids, ["__default_statement_ID", "poactl-new"]);
        assert_eq!(out["Version"], "2008-10-17");
    }
}
