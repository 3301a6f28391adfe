//! The pure attribute diff every provider uses.
//!
//! Providers normalize live state into the same shape as the desired attributes; only keys
//! the spec sets are compared, so extra fields a service returns never cause a diff.

use serde_json::Value;

use super::FieldChange;

/// Marks a desired value that refers to a resource output not known yet.
pub fn is_unresolved(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("${"),
        Value::Array(items) => items.iter().any(is_unresolved),
        Value::Object(map) => map.values().any(is_unresolved),
        _ => false,
    }
}

/// Differences between desired and observed attributes.
///
/// - Objects are compared key by key, recursively; keys absent from `desired` are ignored.
/// - Lists and scalars are compared whole (providers sort lists whose order does not matter).
/// - Numbers compare by value (`1` equals `1.0`).
/// - `replace_paths` lists the paths (or their prefixes) that cannot change in place.
pub fn diff(desired: &Value, observed: &Value, replace_paths: &[&str]) -> Vec<FieldChange> {
    diff_closed(desired, observed, replace_paths, &[])
}

/// As [`diff`], and the objects at `closed_paths` are whole maps: a key that is live but not
/// desired is a removal (a tag or an alarm dimension taken out of the spec).
pub fn diff_closed(desired: &Value, observed: &Value, replace_paths: &[&str], closed_paths: &[&str]) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let rules = Rules { replace: replace_paths, closed: closed_paths };
    walk("", desired, Some(observed), &rules, &mut out);
    out
}

struct Rules<'a> {
    replace: &'a [&'a str],
    closed: &'a [&'a str],
}

fn walk(path: &str, desired: &Value, observed: Option<&Value>, rules: &Rules<'_>, out: &mut Vec<FieldChange>) {
    let replace = rules.replace;
    if let (Value::Object(d), Some(Value::Object(o))) = (desired, observed) {
        for (k, dv) in d {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            walk(&p, dv, o.get(k), rules, out);
        }
        if rules.closed.contains(&path) {
            for (k, ov) in o.iter().filter(|(k, _)| !d.contains_key(*k)) {
                out.push(FieldChange {
                    path: format!("{path}.{k}"),
                    before: Some(ov.clone()),
                    after: None,
                    forces_replace: false,
                    sensitive: false,
                    unknown: false,
                });
            }
        }
        return;
    }
    if let (Value::Object(d), None | Some(Value::Null)) = (desired, observed)
        && !d.is_empty()
    {
        // The whole block is missing live: report its leaves, so the plan shows values.
        for (k, dv) in d {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            walk(&p, dv, None, rules, out);
        }
        return;
    }
    let live = observed.cloned().unwrap_or(Value::Null);
    if values_equal(desired, &live) {
        return;
    }
    if let (Value::Array(d), Value::Array(o)) = (desired, &live)
        && let Some(key) = list_key(d, o)
    {
        // Lists of named items (cache behaviours by path, rules by id): report the item
        // and field that differ, not the whole list.
        let name = |v: &Value| v.get(key).map(|k| k.as_str().map(String::from).unwrap_or_else(|| k.to_string())).unwrap_or_default();
        for dv in d {
            let item = format!("{path}[{}]", name(dv));
            match o.iter().find(|ov| ov.get(key) == dv.get(key)) {
                Some(ov) => walk(&item, dv, Some(ov), rules, out),
                None => out.push(FieldChange {
                    path: item,
                    before: None,
                    after: Some(dv.clone()),
                    forces_replace: false,
                    sensitive: false,
                    unknown: is_unresolved(dv),
                }),
            }
        }
        for ov in o.iter().filter(|ov| !d.iter().any(|dv| dv.get(key) == ov.get(key))) {
            out.push(FieldChange {
                path: format!("{path}[{}]", name(ov)),
                before: Some(ov.clone()),
                after: None,
                forces_replace: false,
                sensitive: false,
                unknown: false,
            });
        }
        let order = |l: &[Value]| l.iter().filter_map(|v| v.get(key).cloned()).collect::<Vec<_>>();
        let same_items = d.len() == o.len() && d.iter().all(|dv| o.iter().any(|ov| ov.get(key) == dv.get(key)));
        if same_items && order(d) != order(o) {
            // The order differs (it matters: cache behaviours match first to last).
            out.push(FieldChange {
                path: format!("{path} (order)"),
                before: Some(Value::Array(order(o))),
                after: Some(Value::Array(order(d))),
                forces_replace: false,
                sensitive: false,
                unknown: false,
            });
        }
        return;
    }
    let unknown = is_unresolved(desired);
    out.push(FieldChange {
        path: path.to_string(),
        before: (!live.is_null()).then_some(live),
        after: (!desired.is_null()).then(|| desired.clone()),
        forces_replace: replace.iter().any(|r| path == *r || path.starts_with(&format!("{r}."))),
        sensitive: false,
        unknown,
    });
}

/// The field that names the items of two lists of objects, if they have one (unique in each).
fn list_key(a: &[Value], b: &[Value]) -> Option<&'static str> {
    ["id", "path", "name", "Sid"].into_iter().find(|k| {
        let keys = |l: &[Value]| -> Option<Vec<String>> { l.iter().map(|v| v.get(*k).map(|x| x.to_string())).collect() };
        match (keys(a), keys(b)) {
            (Some(mut ka), Some(mut kb)) => {
                let (na, nb) = (ka.len(), kb.len());
                ka.sort();
                ka.dedup();
                kb.sort();
                kb.dedup();
                !a.is_empty() && ka.len() == na && kb.len() == nb
            }
            _ => false,
        }
    })
}

pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-9 * x.abs().max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w))),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_cases() {
        struct Case {
            reason: &'static str,
            desired: Value,
            observed: Value,
            want: Vec<(&'static str, bool)>,
        }
        let cases = vec![
            Case { reason: "equal", desired: json!({"a": 1, "b": {"c": "x"}}), observed: json!({"a": 1, "b": {"c": "x"}}), want: vec![] },
            Case {
                reason: "extra live fields are ignored",
                desired: json!({"a": 1}),
                observed: json!({"a": 1, "z": 9, "links": []}),
                want: vec![],
            },
            Case { reason: "int equals float", desired: json!({"a": 1}), observed: json!({"a": 1.0}), want: vec![] },
            Case {
                reason: "scalar drift",
                desired: json!({"a": 1, "b": {"c": "x"}}),
                observed: json!({"a": 2, "b": {"c": "x"}}),
                want: vec![("a", false)],
            },
            Case {
                reason: "nested drift",
                desired: json!({"b": {"c": "x"}}),
                observed: json!({"b": {"c": "y"}}),
                want: vec![("b.c", false)],
            },
            Case {
                reason: "replace path",
                desired: json!({"region": "eu-west-1"}),
                observed: json!({"region": "us-east-1"}),
                want: vec![("region", true)],
            },
            Case {
                reason: "missing live block",
                desired: json!({"b": {"c": "x", "d": 1}}),
                observed: json!({}),
                want: vec![("b.c", false), ("b.d", false)],
            },
            Case { reason: "list order matters", desired: json!({"l": [1, 2]}), observed: json!({"l": [2, 1]}), want: vec![("l", false)] },
            Case {
                reason: "named items diff by item",
                desired: json!({"b": [{"path": "a/*", "ttl": 1}, {"path": "b/*", "ttl": 2}]}),
                observed: json!({"b": [{"path": "a/*", "ttl": 1}, {"path": "b/*", "ttl": 5}, {"path": "c/*", "ttl": 3}]}),
                want: vec![("b[b/*].ttl", false), ("b[c/*]", false)],
            },
            Case {
                reason: "named items reordered",
                desired: json!({"b": [{"path": "a/*"}, {"path": "b/*"}]}),
                observed: json!({"b": [{"path": "b/*"}, {"path": "a/*"}]}),
                want: vec![("b (order)", false)],
            },
            Case {
                reason: "unresolved reference",
                desired: json!({"d": "${cdn.assets.id}"}),
                observed: json!({"d": "E123"}),
                want: vec![("d", false)],
            },
            Case { reason: "desired null, live absent", desired: json!({"k": null}), observed: json!({}), want: vec![] },
        ];
        for c in cases {
            let got: Vec<(String, bool)> =
                diff(&c.desired, &c.observed, &["region"]).into_iter().map(|f| (f.path, f.forces_replace)).collect();
            let want: Vec<(String, bool)> = c.want.iter().map(|(p, r)| (p.to_string(), *r)).collect();
            assert_eq!(got, want, "{}", c.reason);
        }
    }

    #[test]
    fn unknown_is_flagged() {
        let changes = diff(&json!({"d": "${cdn.assets.id}"}), &json!({}), &[]);
        assert!(changes[0].unknown);
    }
}
