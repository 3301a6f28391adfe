//! A YAML tree that remembers where every value came from.
//!
//! serde_yaml reports positions only for its own syntax errors; a spec error such as "this
//! bucket name is invalid" or "this value came from base.yaml" needs the position of any value,
//! after `extends:` layering. So the loader parses with yaml-rust2's event API into [`Node`]s
//! that carry a [`Loc`], and deserializes the typed model straight from that tree: every serde
//! error gets the position and the path of the value that caused it.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in a spec file (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
    /// The scalar as written, so `mongodb_version: 8.0` can be read as the string "8.0".
    pub raw: Option<String>,
    /// Set when `${env:...}` was substituted into this scalar: the value is a secret, and a
    /// string may stand for a number or a boolean.
    pub interpolated: bool,
}

impl Node {
    pub fn new(value: Value, loc: Loc) -> Self {
        Node { value, loc, raw: None, interpolated: false }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn key_loc(&self, key: &str) -> Option<&Loc> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(k, _)| &k.loc),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The deepest node along `path` (a path that goes further than the tree stops at the
    /// last node found, which is still the best place to point at).
    pub fn locate(&self, path: &[PathSeg]) -> &Loc {
        let mut node = self;
        let mut loc = &self.loc;
        for seg in path {
            let next = match (seg, &node.value) {
                (PathSeg::Key(k), Value::Map(entries)) => entries.iter().find(|(key, _)| &key.name == k),
                (PathSeg::Index(i), Value::Seq(items)) => match items.get(*i) {
                    Some(n) => {
                        node = n;
                        loc = &n.loc;
                        continue;
                    }
                    None => None,
                },
                _ => None,
            };
            match next {
                Some((key, value)) => {
                    // Point at the key for a map value that spans lines (a nested map or list),
                    // and at the value for a scalar: that is where the fix goes.
                    loc = match value.value {
                        Value::Map(_) | Value::Seq(_) | Value::Null => &key.loc,
                        _ => &value.loc,
                    };
                    node = value;
                }
                None => break,
            }
        }
        loc
    }
}

/// One step of a path into the spec: `atlas.clusters[0].tier`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

pub fn format_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A YAML syntax error, or a structural one (duplicate key, non-scalar key, unknown alias).
#[derive(Debug, Clone)]
pub struct ParseError {
    pub loc: Loc,
    pub message: String,
    /// A bound on the input was hit (size, aliases, depth), not a syntax error.
    pub limit: bool,
}

/// Bounds on one document, so a hostile spec (from a pull request) cannot make `validate` run
/// until killed: the "billion laughs" shape (nested aliases) expands exponentially, and deep
/// nesting costs stack. A 1,000-resource spec has about 20,000 nodes and a depth under 10.
pub const MAX_NODES: usize = 250_000;
pub const MAX_ALIASES: usize = 10_000;
pub const MAX_DEPTH: usize = 64;

/// Parses one YAML document into a located tree. An empty document is `Null`.
pub fn parse(file: &Arc<str>, text: &str) -> Result<Node, ParseError> {
    let mut builder =
        Builder { file: file.clone(), stack: Vec::new(), anchors: Vec::new(), root: None, error: None, docs: 0, nodes: 0, aliases: 0 };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(ParseError { loc: builder.loc(m), message: e.info().to_string(), limit: false });
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or_else(|| Node::new(Value::Null, Loc { file: file.clone(), line: 1, col: 1 })))
}

enum Frame {
    Seq {
        node: Node,
        anchor: usize,
        /// The node count when the collection started (its size is the difference at its end).
        start: usize,
    },
    /// `merged` holds keys that came in through a `<<` merge key: explicit keys override them.
    Map { node: Node, anchor: usize, start: usize, pending_key: Option<Node>, merged: Vec<String> },
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Frame>,
    /// Anchored nodes with their sizes in nodes (an alias costs its anchor's size).
    anchors: Vec<(usize, Node, usize)>,
    root: Option<Node>,
    error: Option<ParseError>,
    docs: usize,
    /// Nodes built so far, alias expansions included.
    nodes: usize,
    aliases: usize,
}

impl Builder {
    fn loc(&self, m: &Marker) -> Loc {
        // yaml-rust2 lines are 1-based, columns 0-based.
        Loc { file: self.file.clone(), line: m.line(), col: m.col() + 1 }
    }

    fn fail(&mut self, loc: Loc, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(ParseError { loc, message: message.into(), limit: false });
        }
    }

    fn fail_limit(&mut self, loc: Loc, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(ParseError { loc, message: message.into(), limit: true });
        }
    }

    fn finish(&mut self, node: Node, anchor: usize, size: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { node: seq, .. }) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map { node: map, pending_key, merged, .. }) => match pending_key.take() {
                None => {
                    let name = match &node.value {
                        Value::Str(s) => s.clone(),
                        Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null => node.raw.clone().unwrap_or_default(),
                        _ => {
                            let loc = node.loc.clone();
                            self.fail(loc, "a map key must be a plain value, not a list or a map");
                            return;
                        }
                    };
                    *pending_key = Some(Node { value: Value::Str(name), ..node });
                }
                Some(key) => {
                    let name = key.as_str().unwrap_or_default().to_string();
                    let Value::Map(entries) = &mut map.value else { return };
                    if name == "<<" {
                        // YAML merge key: the merged map's entries fill in what is not set here.
                        let sources: Vec<Node> = match node.value {
                            Value::Map(_) => vec![node],
                            Value::Seq(items) => items,
                            _ => Vec::new(),
                        };
                        for src in sources {
                            if let Value::Map(src_entries) = src.value {
                                for (k, v) in src_entries {
                                    if !entries.iter().any(|(ek, _)| ek.name == k.name) {
                                        merged.push(k.name.clone());
                                        entries.push((k, v));
                                    }
                                }
                            }
                        }
                        return;
                    }
                    if let Some(i) = merged.iter().position(|m| *m == name) {
                        merged.remove(i);
                        entries.retain(|(k, _)| k.name != name);
                    }
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name) {
                        let msg = format!("duplicate key `{name}` (first set at line {})", first.loc.line);
                        self.fail(key.loc.clone(), msg);
                        return;
                    }
                    entries.push((Key { name, loc: key.loc }, node));
                }
            },
        }
    }
}

impl Builder {
    /// Adds `n` nodes to the count; false (with an error) past the limit.
    fn count(&mut self, n: usize, loc: &Loc) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            self.fail_limit(
                loc.clone(),
                format!("the spec expands to more than {MAX_NODES} values (nested aliases, the \"billion laughs\" shape?); a 1,000-resource spec has about 20,000"),
            );
            return false;
        }
        true
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let loc = self.loc(&mark);
        match ev {
            Event::DocumentStart => {
                self.docs += 1;
                if self.docs > 1 {
                    self.fail(loc, "more than one YAML document in this file; a spec is one document (remove the second `---`)");
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = matches!(style, TScalarStyle::Plain);
                let forced_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if plain && !forced_str { resolve_plain(&text) } else { Value::Str(text.clone()) };
                let node = Node { value, loc: loc.clone(), raw: Some(text), interpolated: false };
                if self.count(1, &loc) {
                    self.finish(node, anchor, 1);
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(
                        loc,
                        format!("the spec nests deeper than {MAX_DEPTH} levels; a spec is a few levels deep (is this file generated?)"),
                    );
                    return;
                }
                if !self.count(1, &loc) {
                    return;
                }
                let start = self.nodes;
                let frame = if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq { node: Node::new(Value::Seq(Vec::new()), loc), anchor, start }
                } else {
                    Frame::Map { node: Node::new(Value::Map(Vec::new()), loc), anchor, start, pending_key: None, merged: Vec::new() }
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (node, anchor, start) = match frame {
                        Frame::Seq { node, anchor, start } | Frame::Map { node, anchor, start, .. } => (node, anchor, start),
                    };
                    let size = self.nodes - start + 1;
                    self.finish(node, anchor, size);
                }
            }
            Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _, _)| *a == id).map(|(_, n, size)| (n.clone(), *size)) {
                Some((node, size)) => {
                    self.aliases += 1;
                    if self.aliases > MAX_ALIASES {
                        self.fail_limit(loc, format!("more than {MAX_ALIASES} aliases (`*name`); a spec needs a handful"));
                        return;
                    }
                    // Checked before the copy is made: an alias costs the whole anchored tree.
                    if self.count(size, &loc) {
                        self.finish(node, 0, size);
                    }
                }
                None => self.fail(loc, "alias to an unknown anchor"),
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
}

/// YAML 1.2 core schema resolution of a plain scalar (the same rules serde_yaml follows, so
/// `yes` stays a string and `0o17` is an integer).
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = s.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Int(i);
    }
    if let Some(oct) = s.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Int(i);
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = s.parse::<i64>()
    {
        return Value::Int(i);
    }
    if looks_like_float(digits)
        && let Ok(f) = s.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(s.to_string())
}

fn looks_like_float(s: &str) -> bool {
    // [0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)? with at least one digit in the mantissa
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(int) || !frac.is_none_or(digits_ok) {
        return false;
    }
    if int.is_empty() && frac.is_none_or(|f| f.is_empty()) {
        return false;
    }
    if frac.is_none() && exp.is_none() {
        return false;
    }
    match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits_ok(e)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deserializing the typed model from a located tree.

/// A deserialization error that knows where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    pub hint: Option<String>,
    pub loc: Option<Loc>,
    /// Path segments, innermost first (pushed while the error bubbles up).
    rev_path: Vec<PathSeg>,
}

impl DeError {
    pub fn path(&self) -> Vec<PathSeg> {
        self.rev_path.iter().rev().cloned().collect()
    }

    fn at(mut self, loc: &Loc) -> Self {
        if self.loc.is_none() {
            self.loc = Some(loc.clone());
        }
        self
    }

    fn in_seg(mut self, seg: PathSeg) -> Self {
        self.rev_path.push(seg);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { message: msg.to_string(), hint: None, loc: None, rev_path: Vec::new() }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let mut e = Self::custom(format_args!(
            "wrong type: expected {}, found {}",
            humanize_expected(&exp.to_string()),
            describe_unexpected(&unexp)
        ));
        if let de::Unexpected::Str(s) = unexp
            && ["yes", "no", "on", "off", "y", "n"].contains(&s.to_ascii_lowercase().as_str())
        {
            e.hint = Some("YAML 1.2 booleans are `true` and `false`".to_string());
        }
        e
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!("invalid value {}: expected {exp}", describe_unexpected(&unexp)))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format_args!("unknown field `{field}`"));
        e.hint = Some(match did_you_mean(field, expected) {
            Some(best) => format!("did you mean `{best}`? (allowed here: {})", expected.join(", ")),
            None if expected.is_empty() => "no fields are allowed here".to_string(),
            None => format!("allowed here: {}", expected.join(", ")),
        });
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format_args!("unknown value `{variant}`"));
        e.hint = Some(match did_you_mean(variant, expected) {
            Some(best) => format!("did you mean `{best}`? (one of: {})", expected.join(", ")),
            None => format!("use one of: {}", expected.join(", ")),
        });
        e
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = Self::custom(format_args!("missing field `{field}`"));
        e.hint = Some(format!("add `{field}:` here"));
        e
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::custom(format_args!("field `{field}` is set twice"))
    }
}

/// serde names Rust types ("f64", "a sequence"); the spec's readers think in YAML.
fn humanize_expected(exp: &str) -> String {
    match exp {
        "f32" | "f64" => "a number".to_string(),
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => "a whole number".to_string(),
        "a sequence" => "a list".to_string(),
        "a string" | "a borrowed string" => "a string".to_string(),
        "a boolean" => "a boolean (true or false)".to_string(),
        other if other.starts_with("struct ") => "a map".to_string(),
        other if other.starts_with("enum ") => "one of the allowed values".to_string(),
        other => other.to_string(),
    }
}

fn describe_unexpected(u: &de::Unexpected<'_>) -> String {
    match u {
        de::Unexpected::Unit => "null (an empty value)".to_string(),
        de::Unexpected::Str(s) => format!("the string \"{s}\""),
        de::Unexpected::Seq => "a list".to_string(),
        de::Unexpected::Map => "a map".to_string(),
        other => other.to_string(),
    }
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word_l = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word_l, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

type DeResult<T> = Result<T, DeError>;

impl<'de> Node {
    fn unexpected(&'de self) -> de::Unexpected<'de> {
        match &self.value {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Int(i) => de::Unexpected::Signed(*i),
            Value::Float(f) => de::Unexpected::Float(*f),
            Value::Str(s) => de::Unexpected::Str(s),
            Value::Seq(_) => de::Unexpected::Seq,
            Value::Map(_) => de::Unexpected::Map,
        }
    }

    fn wrong_type(&'de self, exp: &dyn de::Expected) -> DeError {
        <DeError as de::Error>::invalid_type(self.unexpected(), exp).at(&self.loc)
    }

    /// An interpolated string may stand for another scalar type (`port: ${env:PORT}`).
    fn reinterpreted(&'de self) -> Option<Value> {
        match (&self.value, self.interpolated) {
            (Value::Str(s), true) => Some(resolve_plain(s)),
            _ => None,
        }
    }
}

macro_rules! forward_scalar {
    ($($method:ident),*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
                let result = match self.reinterpreted() {
                    Some(Value::Bool(b)) => visitor.visit_bool(b),
                    Some(Value::Int(i)) => visitor.visit_i64(i),
                    Some(Value::Float(f)) => visitor.visit_f64(f),
                    Some(Value::Null) => visitor.visit_unit(),
                    _ => return self.deserialize_any(visitor),
                };
                result.map_err(|e: DeError| e.at(&self.loc))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for &'de Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let result = match &self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqAccess { items: items.iter(), index: 0 }),
            Value::Map(entries) => visitor.visit_map(MapAccess { entries: entries.iter(), current: None }),
        };
        result.map_err(|e| e.at(&self.loc))
    }

    forward_scalar!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_f32,
        deserialize_f64
    );

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let result = match &self.value {
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => match &self.raw {
                Some(raw) => visitor.visit_borrowed_str(raw),
                None => self.deserialize_any(visitor),
            },
            _ => return Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| e.at(&self.loc))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> DeResult<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> DeResult<V::Value> {
        visitor.visit_newtype_struct(self).map_err(|e| e.at(&self.loc))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        match &self.value {
            Value::Seq(_) => self.deserialize_any(visitor),
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> DeResult<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _name: &'static str, _len: usize, visitor: V) -> DeResult<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        match &self.value {
            Value::Map(_) => self.deserialize_any(visitor),
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(self, _name: &'static str, _fields: &'static [&'static str], visitor: V) -> DeResult<V::Value> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(self, _name: &'static str, _variants: &'static [&'static str], visitor: V) -> DeResult<V::Value> {
        let result = match &self.value {
            Value::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                let raw = self.raw.as_deref().unwrap_or_default();
                visitor.visit_enum(raw.into_deserializer())
            }
            Value::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor.visit_enum(EnumAccess { key, value })
            }
            _ => return Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| e.at(&self.loc))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'de> {
    items: std::slice::Iter<'de, Node>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> DeResult<Option<T::Value>> {
        match self.items.next() {
            None => Ok(None),
            Some(node) => {
                let index = self.index;
                self.index += 1;
                seed.deserialize(node).map(Some).map_err(|e| e.at(&node.loc).in_seg(PathSeg::Index(index)))
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'de> {
    entries: std::slice::Iter<'de, (Key, Node)>,
    current: Option<&'de (Key, Node)>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> DeResult<Option<K::Value>> {
        match self.entries.next() {
            None => Ok(None),
            Some(entry) => {
                self.current = Some(entry);
                let key = &entry.0;
                let de = de::value::BorrowedStrDeserializer::<DeError>::new(&key.name);
                seed.deserialize(de).map(Some).map_err(|e| e.at(&key.loc).in_seg(PathSeg::Key(key.name.clone())))
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> DeResult<V::Value> {
        let Some((key, node)) = self.current.take() else {
            return Err(<DeError as de::Error>::custom("value without a key"));
        };
        seed.deserialize(node).map_err(|e| e.at(&node.loc).in_seg(PathSeg::Key(key.name.clone())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAccess<'de> {
    key: &'de Key,
    value: &'de Node,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = DeError;
    type Variant = &'de Node;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> DeResult<(V::Value, Self::Variant)> {
        let de = de::value::BorrowedStrDeserializer::<DeError>::new(&self.key.name);
        let variant = seed.deserialize(de).map_err(|e| e.at(&self.key.loc))?;
        Ok((variant, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for &'de Node {
    type Error = DeError;

    fn unit_variant(self) -> DeResult<()> {
        match self.value {
            Value::Null => Ok(()),
            _ => Err(<DeError as de::Error>::custom("this value takes no settings").at(&self.loc)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> DeResult<T::Value> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> DeResult<V::Value> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> DeResult<V::Value> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<str> {
        Arc::from("t.yaml")
    }

    #[test]
    fn plain_scalars_resolve_like_yaml_1_2() {
        let cases: &[(&str, Value)] = &[
            ("", Value::Null),
            ("~", Value::Null),
            ("true", Value::Bool(true)),
            ("yes", Value::Str("yes".into())),
            ("42", Value::Int(42)),
            ("-7", Value::Int(-7)),
            ("0x1F", Value::Int(31)),
            ("0o17", Value::Int(15)),
            ("8.0", Value::Float(8.0)),
            ("1e3", Value::Float(1000.0)),
            ("7d", Value::Str("7d".into())),
            ("10.0.0.0/16", Value::Str("10.0.0.0/16".into())),
            (".", Value::Str(".".into())),
            ("1.2.3", Value::Str("1.2.3".into())),
        ];
        for (text, want) in cases {
            assert_eq!(&resolve_plain(text), want, "resolving {text:?}");
        }
    }

    #[test]
    fn positions_are_one_based() {
        let node = parse(&file(), "a:\n  b: 1\n").unwrap();
        let b = node.get("a").unwrap().get("b").unwrap();
        assert_eq!((b.loc.line, b.loc.col), (2, 6));
        assert_eq!(node.get("a").unwrap().key_loc("b").map(|l| (l.line, l.col)), Some((2, 3)));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse(&file(), "a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.loc.line, 2);
        assert!(err.message.contains("duplicate key `a`"));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let node = parse(&file(), "base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n").unwrap();
        let c = node.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().value, Value::Int(1));
        assert_eq!(c.get("y").unwrap().value, Value::Int(3));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse(&file(), "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.loc.line >= 1);
    }
}
