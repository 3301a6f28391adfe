//! Reading an environment: files, `extends:` layering, `${env:...}` interpolation, then the
//! typed model and its checks. No network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::error::{SpecError, SpecErrors};
use super::model::Spec;
use super::validate;
use super::yaml::{self, Key, Loc, Node, PathSeg, Value, format_path};
use crate::resource::Reference;
use crate::secrets::Secrets;

/// A loaded, checked environment.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    pub env: String,
    pub spec: Spec,
    /// The merged tree, kept to point at fields in later errors.
    pub root: Node,
    /// The files read, the environment's own first.
    pub files: Vec<PathBuf>,
    /// Values that came from `${env:...}`: never printed.
    pub secrets: Secrets,
    pub references: Vec<ReferenceUse>,
    /// `${env:...}` variables that were not set, in a load that allows it (`cost`,
    /// `validate`): their fields read as empty.
    pub unset_env: Vec<UnsetEnv>,
    sources: BTreeMap<Arc<str>, String>,
}

/// A `${env:NAME}` that was not set, and the field it is in.
#[derive(Debug, Clone)]
pub struct UnsetEnv {
    pub name: String,
    pub path: String,
    pub loc: Loc,
}

/// What a load does with an `${env:...}` that is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// An error (plan, apply and the rest: they would send the value).
    Refuse,
    /// Read as empty and recorded, and validation problems in that field left out (commands
    /// that never send the value: `cost`, `validate`, `graph`).
    Note,
}

/// Where a `${kind.name.field}` reference is written.
#[derive(Debug, Clone)]
pub struct ReferenceUse {
    pub reference: Reference,
    pub loc: Loc,
    pub path: String,
}

impl LoadedSpec {
    /// A production environment: one the spec protects, or named prod/production. `audit`
    /// and `check` hold it to the go-live rules.
    pub fn is_production(&self) -> bool {
        self.spec.protect || ["prod", "production"].contains(&self.env.as_str())
    }

    pub fn snippet(&self, loc: &Loc) -> Option<String> {
        snippet(&self.sources, loc)
    }

    /// An error at a spec path, with the source line under it.
    pub fn error_at(&self, path: &[PathSeg], message: impl Into<String>) -> SpecError {
        let loc = self.root.locate(path).clone();
        let snippet = snippet(&self.sources, &loc);
        SpecError { loc: Some(loc), path: format_path(path), message: message.into(), hint: None, snippet }
    }
}

fn snippet(sources: &BTreeMap<Arc<str>, String>, loc: &Loc) -> Option<String> {
    sources.get(&loc.file).and_then(|text| text.lines().nth(loc.line.saturating_sub(1))).map(|l| l.to_string())
}

/// Where an environment's file is: `-e prod` is `<dir>/prod.yaml` (or `.yml`); a value with a
/// slash or a YAML extension is a path.
pub fn env_file(dir: &Path, env: &str) -> PathBuf {
    if env.contains('/') || env.ends_with(".yaml") || env.ends_with(".yml") {
        return PathBuf::from(env);
    }
    let yml = dir.join(format!("{env}.yml"));
    if !dir.join(format!("{env}.yaml")).exists() && yml.exists() {
        return yml;
    }
    dir.join(format!("{env}.yaml"))
}

/// Loads and checks one environment. `lookup_env` reads the process environment in the CLI and
/// a fixed map in tests.
pub fn load(dir: &Path, env: &str, lookup_env: &dyn Fn(&str) -> Option<String>) -> Result<LoadedSpec, SpecErrors> {
    load_with(dir, env, lookup_env, Unset::Refuse)
}

/// `load`, with a choice of what an unset `${env:...}` is.
pub fn load_with(dir: &Path, env: &str, lookup_env: &dyn Fn(&str) -> Option<String>, unset: Unset) -> Result<LoadedSpec, SpecErrors> {
    let path = env_file(dir, env);
    let mut sources = BTreeMap::new();
    let mut files = Vec::new();
    let mut chain = Vec::new();
    let merged = load_layered(&path, None, &mut chain, &mut sources, &mut files)?;
    let env_name = path.file_stem().and_then(|s| s.to_str()).unwrap_or(env).to_string();

    let mut secrets = Secrets::default();
    let mut references = Vec::new();
    let mut errors = Vec::new();
    let mut root = merged;
    let mut path_buf = Vec::new();
    let unset_names = std::cell::RefCell::new(Vec::new());
    let lenient = |name: &str| match lookup_env(name) {
        Some(v) => Some(v),
        None if unset == Unset::Note => {
            unset_names.borrow_mut().push(name.to_string());
            Some(String::new())
        }
        None => None,
    };
    let mut unset_env = Vec::new();
    interpolate(&mut root, &mut path_buf, &lenient, &mut secrets, &mut references, &mut errors, &unset_names, &mut unset_env);
    if !errors.is_empty() {
        let errors = errors
            .into_iter()
            .map(|mut e: SpecError| {
                if let Some(loc) = &e.loc {
                    e.snippet = snippet(&sources, loc);
                }
                e
            })
            .collect();
        return Err(SpecErrors(errors));
    }

    if matches!(root.value, Value::Null) {
        let loc = root.loc.clone();
        let err = SpecError::new("the spec is empty")
            .at(&loc)
            .hint("start with `environment: NAME` and the sections you need (atlas, storage, cdn, monitoring, billing, database, usage)");
        return Err(err.into());
    }
    if !matches!(root.value, Value::Map(_)) {
        let loc = root.loc.clone();
        let err = SpecError::new(format!("the spec must be a map of sections, found {}", root.kind_name()))
            .at(&loc)
            .hint("a spec looks like `environment: dev` followed by sections such as `storage:`");
        return Err(err.into());
    }

    let spec = match Spec::deserialize(&root) {
        Ok(spec) => spec,
        Err(e) => {
            let path = e.path();
            // A wrong container (a map where a list goes) is best shown at its key.
            let container = node_at(&root, &path).is_some_and(|n| matches!(n.value, Value::Map(_) | Value::Seq(_)));
            let loc = match (&e.loc, container) {
                (Some(loc), false) => loc.clone(),
                _ => root.locate(&path).clone(),
            };
            let mut err = SpecError {
                snippet: snippet(&sources, &loc),
                loc: Some(loc),
                path: format_path(&path),
                message: e.message.clone(),
                hint: e.hint.clone(),
            };
            if err.hint.is_none() && e.message.starts_with("wrong type") {
                err.hint = Some("check the value's type against docs/spec.md (quote strings that look like numbers)".into());
            }
            return Err(err.into());
        }
    };

    let loaded =
        LoadedSpec { env: spec.environment.clone().unwrap_or(env_name), spec, root, files, secrets, references, unset_env, sources };
    let mut problems = validate::check(&loaded);
    // A field left empty by an unset variable is not the spec's problem here.
    problems.retain(|p| !loaded.unset_env.iter().any(|u| p.path == u.path));
    if problems.is_empty() { Ok(loaded) } else { Err(SpecErrors(problems)) }
}

fn node_at<'n>(root: &'n Node, path: &[PathSeg]) -> Option<&'n Node> {
    let mut node = root;
    for seg in path {
        node = match (seg, &node.value) {
            (PathSeg::Key(k), Value::Map(_)) => node.get(k)?,
            (PathSeg::Index(i), Value::Seq(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// The largest spec file read: bounded input, so a hostile or mistaken file (a device, a log)
/// cannot exhaust memory or time.
pub const MAX_SPEC_BYTES: u64 = 4 << 20;

/// The file's text, or `None` when it is larger than [`MAX_SPEC_BYTES`] (read at most that much
/// plus one byte, whatever the file claims to be).
fn read_bounded(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_SPEC_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Ok(None);
    }
    String::from_utf8(bytes).map(Some).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn load_layered(
    path: &Path,
    extended_from: Option<&Loc>,
    chain: &mut Vec<PathBuf>,
    sources: &mut BTreeMap<Arc<str>, String>,
    files: &mut Vec<PathBuf>,
) -> Result<Node, SpecErrors> {
    let display: Arc<str> = Arc::from(path.display().to_string());
    let text = match read_bounded(path) {
        Ok(Some(t)) => t,
        Ok(None) => {
            let mut err = SpecError::new(format!(
                "{} is larger than {} MiB; a spec is a few kilobytes (is this the right file?)",
                path.display(),
                MAX_SPEC_BYTES >> 20
            ));
            if let Some(loc) = extended_from {
                err = err.at(loc);
                err.snippet = snippet(sources, loc);
            }
            return Err(err.into());
        }
        Err(e) => {
            let mut err = SpecError::new(format!("cannot read {}: {}", path.display(), io_reason(&e)));
            if let Some(loc) = extended_from {
                err = err.at(loc);
                err.snippet = snippet(sources, loc);
                err = err.hint("fix the `extends:` path (it is relative to the file that extends)");
            } else {
                err = err.hint(missing_env_hint(path));
            }
            return Err(err.into());
        }
    };
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if chain.contains(&canonical) {
        let cycle: Vec<String> = chain.iter().chain(std::iter::once(&canonical)).map(|p| short_name(p)).collect();
        let mut err = SpecError::new(format!("`extends` cycle: {}", cycle.join(" -> ")))
            .hint("a file cannot extend itself, directly or through another file; remove one `extends:`");
        if let Some(loc) = extended_from {
            err.snippet = snippet(sources, loc);
            err = err.at(loc);
        }
        return Err(err.into());
    }
    chain.push(canonical);
    sources.insert(display.clone(), text.clone());
    files.push(path.to_path_buf());

    let node = yaml::parse(&display, &text).map_err(|e| {
        let (what, hint) = if e.limit {
            ("YAML too large", "a spec needs none of this; if the file came from a pull request, do not apply it".to_string())
        } else {
            ("YAML syntax error", syntax_hint(&e.message))
        };
        let mut err = SpecError::new(format!("{what}: {}", e.message)).at(&e.loc).hint(hint);
        err.snippet = snippet(sources, &e.loc);
        SpecErrors::from(err)
    })?;

    let extends = node.get("extends").cloned();
    let merged = match extends {
        None => node,
        Some(ext) => {
            let Some(rel) = ext.as_str() else {
                let mut err = SpecError::new(format!("`extends` must be a file name, found {}", ext.kind_name()))
                    .at(&ext.loc)
                    .path("extends")
                    .hint("write e.g. `extends: base.yaml`");
                err.snippet = snippet(sources, &ext.loc);
                return Err(err.into());
            };
            let base_path = path.parent().unwrap_or(Path::new(".")).join(rel);
            let base = load_layered(&base_path, Some(&ext.loc), chain, sources, files)?;
            merge(base, node)
        }
    };
    chain.pop();
    Ok(merged)
}

fn short_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_else(|| p.display().to_string())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::InvalidData => "the file is not UTF-8 text".to_string(),
        _ => e.to_string(),
    }
}

fn missing_env_hint(path: &Path) -> String {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut envs: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml")).map(|s| s.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    envs.sort();
    if envs.is_empty() {
        format!("create {} or pass --environments-dir", path.display())
    } else {
        format!("environments in {}: {}", dir.display(), envs.join(", "))
    }
}

fn syntax_hint(message: &str) -> String {
    if message.contains("duplicate key") {
        "a key can appear once in a map: remove or merge one of them".to_string()
    } else if message.contains("tab") {
        "YAML indentation must use spaces, not tabs".to_string()
    } else if message.contains("mapping values are not allowed") {
        "a value containing `: ` must be quoted, or the indentation is off".to_string()
    } else if message.contains("did not find expected") {
        "check the brackets, quotes and indentation around here".to_string()
    } else {
        "check the YAML syntax around here (indentation, quotes, brackets)".to_string()
    }
}

/// Deep merge of an `extends:` base and the file that extends it: maps merge key by key, lists
/// of named items (by `name`, `username`, `cidr` or `ip`) merge item by item, anything else in
/// the extending file replaces the base's value.
pub fn merge(base: Node, over: Node) -> Node {
    match (base.value, over.value) {
        (Value::Map(mut base_entries), Value::Map(over_entries)) => {
            for (key, value) in over_entries {
                if key.name == "extends" {
                    continue;
                }
                match base_entries.iter().position(|(k, _)| k.name == key.name) {
                    Some(i) => {
                        let (_, old) = base_entries.remove(i);
                        base_entries.insert(i, (key, merge(old, value)));
                    }
                    None => base_entries.push((key, value)),
                }
            }
            base_entries.retain(|(k, _)| k.name != "extends");
            Node { value: Value::Map(base_entries), loc: over.loc, raw: None, interpolated: false }
        }
        (Value::Seq(base_items), Value::Seq(over_items)) => match identity_key(&base_items, &over_items) {
            Some(id) => {
                let mut out = base_items;
                for item in over_items {
                    let item_id = item.get(id).and_then(|n| n.raw.clone().or_else(|| n.as_str().map(String::from)));
                    let pos =
                        out.iter().position(|b| b.get(id).and_then(|n| n.raw.clone().or_else(|| n.as_str().map(String::from))) == item_id);
                    match pos {
                        Some(i) => {
                            let old = out.remove(i);
                            out.insert(i, merge(old, item));
                        }
                        None => out.push(item),
                    }
                }
                Node { value: Value::Seq(out), loc: over.loc, raw: None, interpolated: false }
            }
            None => Node { value: Value::Seq(over_items), loc: over.loc, raw: over.raw, interpolated: over.interpolated },
        },
        (_, value) => Node { value, loc: over.loc, raw: over.raw, interpolated: over.interpolated },
    }
}

fn identity_key(a: &[Node], b: &[Node]) -> Option<&'static str> {
    ["name", "username", "cidr", "ip"].into_iter().find(|k| {
        a.iter().chain(b.iter()).all(|n| n.get(k).is_some_and(|v| !matches!(v.value, Value::Seq(_) | Value::Map(_) | Value::Null)))
    })
}

/// Substitutes `${env:NAME}` (and `${env:NAME:-default}`) and records `${kind.name.field}`
/// references, which stay in the text until the engine knows their value. `$${` is a literal `${`.
#[allow(clippy::too_many_arguments)]
fn interpolate(
    node: &mut Node,
    path: &mut Vec<PathSeg>,
    lookup_env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
    refs: &mut Vec<ReferenceUse>,
    errors: &mut Vec<SpecError>,
    unset_names: &std::cell::RefCell<Vec<String>>,
    unset: &mut Vec<UnsetEnv>,
) {
    match &mut node.value {
        Value::Str(s) if s.contains("${") => {
            let loc = node.loc.clone();
            let result = substitute(s, lookup_env);
            for name in unset_names.borrow_mut().drain(..) {
                unset.push(UnsetEnv { name, path: format_path(path), loc: loc.clone() });
            }
            match result {
                Ok(sub) => {
                    for (text, reference) in sub.references {
                        match reference {
                            Some(reference) => refs.push(ReferenceUse { reference, loc: loc.clone(), path: format_path(path) }),
                            None => errors.push(
                                SpecError::new(format!(
                                    "`${{{text}}}` is not a reference: write `${{env:NAME}}` or `${{KIND.NAME.FIELD}}`"
                                ))
                                .at(&loc)
                                .path(format_path(path))
                                .hint("references look like ${atlas.clusters.main.srv}, ${cdn.assets.id} or ${storage.buckets.NAME.arn}"),
                            ),
                        }
                    }
                    if sub.used_env {
                        for value in sub.env_values {
                            secrets.add(value);
                        }
                        *s = sub.text;
                        node.interpolated = true;
                        node.raw = None;
                    } else {
                        *s = sub.text;
                    }
                }
                Err(msg) => {
                    let (message, hint) = msg;
                    errors.push(SpecError::new(message).at(&loc).path(format_path(path)).hint(hint));
                }
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(PathSeg::Index(i));
                interpolate(item, path, lookup_env, secrets, refs, errors, unset_names, unset);
                path.pop();
            }
        }
        Value::Map(entries) => {
            for (Key { name, .. }, value) in entries.iter_mut() {
                path.push(PathSeg::Key(name.clone()));
                interpolate(value, path, lookup_env, secrets, refs, errors, unset_names, unset);
                path.pop();
            }
        }
        _ => {}
    }
}

struct Substituted {
    text: String,
    used_env: bool,
    env_values: Vec<String>,
    references: Vec<(String, Option<Reference>)>,
}

fn substitute(s: &str, lookup_env: &dyn Fn(&str) -> Option<String>) -> Result<Substituted, (String, String)> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut used_env = false;
    let mut env_values = Vec::new();
    let mut references = Vec::new();
    while let Some(start) = rest.find("${") {
        if start > 0 && rest[..start].ends_with('$') {
            // `$${` is an escaped literal `${`.
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err((
                "unterminated `${`: a `}` is missing".to_string(),
                "close the reference, e.g. ${env:NAME}, or write $${ for a literal ${".to_string(),
            ));
        };
        let inner = after[..end].trim();
        if let Some(var) = inner.strip_prefix("env:") {
            let (name, default) = match var.split_once(":-") {
                Some((n, d)) => (n.trim(), Some(d)),
                None => (var.trim(), None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err((
                    format!("`${{{inner}}}`: `{name}` is not an environment variable name"),
                    "use letters, digits and `_`, e.g. ${env:POAFIX_DB_PASSWORD}".to_string(),
                ));
            }
            match lookup_env(name).or_else(|| default.map(String::from)) {
                Some(value) => {
                    out.push_str(&value);
                    env_values.push(value);
                    used_env = true;
                }
                None => {
                    return Err((
                        format!("environment variable {name} is not set"),
                        format!("export {name}=... before running poactl (or give a default: ${{env:{name}:-VALUE}})"),
                    ));
                }
            }
        } else {
            references.push((inner.to_string(), Reference::parse(inner)));
            out.push_str("${");
            out.push_str(inner);
            out.push('}');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Substituted { text: out, used_env, env_values, references })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        yaml::parse(&Arc::from("t.yaml"), text).unwrap()
    }

    #[test]
    fn merge_layers_maps_and_named_lists() {
        let base = node("a: 1\nb: {x: 1, y: 2}\nl: [{name: p, v: 1}, {name: q, v: 2}]\nu: [1, 2]\n");
        let over = node("b: {y: 3}\nl: [{name: q, v: 9}, {name: r, v: 3}]\nu: [5]\n");
        let m = merge(base, over);
        assert_eq!(m.get("a").unwrap().value, Value::Int(1));
        assert_eq!(m.get("b").unwrap().get("x").unwrap().value, Value::Int(1));
        assert_eq!(m.get("b").unwrap().get("y").unwrap().value, Value::Int(3));
        let Value::Seq(l) = &m.get("l").unwrap().value else { panic!("list") };
        let got: Vec<(String, i64)> = l
            .iter()
            .map(|n| {
                let Value::Int(v) = n.get("v").unwrap().value else { panic!("int") };
                (n.get("name").unwrap().as_str().unwrap().to_string(), v)
            })
            .collect();
        assert_eq!(got, vec![("p".into(), 1), ("q".into(), 9), ("r".into(), 3)]);
        let Value::Seq(u) = &m.get("u").unwrap().value else { panic!("list") };
        assert_eq!(u.len(), 1);
    }

    #[test]
    fn substitution_cases() {
        let env = |k: &str| match k {
            "A" => Some("alpha".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let table: &[(&str, Result<&str, &str>)] = &[
            ("x-${env:A}-y", Ok("x-alpha-y")),
            ("${env:MISSING:-dflt}", Ok("dflt")),
            ("${env:EMPTY}", Ok("")),
            ("$${env:A}", Ok("${env:A}")),
            ("${cdn.assets.id}", Ok("${cdn.assets.id}")),
            ("${env:MISSING}", Err("MISSING is not set")),
            ("${env:A", Err("unterminated")),
            ("${env:a-b}", Err("not an environment variable name")),
        ];
        for (input, want) in table {
            let got = substitute(input, &env).map(|s| s.text).map_err(|e| e.0);
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(*w), "{input}"),
                Err(w) => assert!(got.as_ref().is_err_and(|e| e.contains(w)), "{input}: {got:?}"),
            }
        }
    }
}
