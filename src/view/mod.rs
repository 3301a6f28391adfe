//! The views: pure functions from data (a plan, an apply report, a cost estimate, live
//! outputs) to text, JSON and Markdown. Nothing here reads the network or prints; `cmd` picks
//! a view and prints it. Every format of a resource change starts from one projection
//! (`change_json`) and one way of showing a value (`show_value`).
//!
//! The Markdown reports and `poactl output` (the app's `.env`) go through Tera; the templates in
//! `templates/` are built into the binary, and `--template FILE` renders another.

mod cost;
mod drift;
mod graph;
mod output;
mod plan;
mod report;

pub use cost::{CostView, cost_json, cost_markdown, cost_text};
pub use drift::{drift_json, drift_markdown, drift_text};
pub use graph::{GraphNode, graph_dot, graph_json, graph_mermaid};
pub use output::{APP_ENV, output_context, redacted};
pub use plan::{plan_json, plan_markdown, plan_text};
pub use report::{report_json, report_text};

use serde_json::{Value, json};
use tera::Tera;

use crate::plan::{Action, FieldChange, ResourceChange};
use crate::secrets::{self, REDACTED};

pub const UNKNOWN: &str = "(known after apply)";

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

fn action_color(a: Action) -> &'static str {
    match a {
        Action::Create => "32",
        Action::Update => "33",
        Action::Replace => "35",
        Action::Delete => "31",
        Action::NoOp => "0",
    }
}

/// A field value as shown to people: secrets and unknowns never appear as values.
pub fn show_value(change: &FieldChange, v: Option<&Value>, is_after: bool) -> String {
    if change.sensitive {
        return REDACTED.to_string();
    }
    if is_after && change.unknown {
        return UNKNOWN.to_string();
    }
    match v {
        None => "(absent)".to_string(),
        Some(v) => secrets::redact(&compact(v)),
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// The one projection of a resource change every format shares: address, kind, action and
/// its symbol, the drift status, the live id, notes, and each field with its raw live and
/// desired values (`live`/`desired`: redacted when sensitive, `(known after apply)` when
/// unknown) and the same values as shown to people (`before`/`after`).
pub fn change_json(r: &ResourceChange) -> Value {
    json!({
        "address": r.address.to_string(),
        "kind": r.address.kind,
        "action": r.action,
        "symbol": r.action.symbol(),
        "status": r.action.drift_status(),
        "id": r.id,
        "notes": r.notes,
        "fields": r.changes.iter().map(|c| json!({
            "path": c.path,
            "live": if c.sensitive { json!(secrets::REDACTED) } else { c.before.clone().unwrap_or(Value::Null) },
            "desired": if c.sensitive { json!(secrets::REDACTED) } else if c.unknown { json!(UNKNOWN) } else { c.after.clone().unwrap_or(Value::Null) },
            "before": show_value(c, c.before.as_ref(), false),
            "after": show_value(c, c.after.as_ref(), true),
            "forces_replace": c.forces_replace,
        })).collect::<Vec<_>>(),
    })
}

/// Replaces sensitive and secret-bearing values in a JSON document.
pub fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("sensitive") == Some(&Value::Bool(true)) {
                for key in ["before", "after"] {
                    if map.contains_key(key) {
                        map.insert(key.to_string(), Value::String(REDACTED.to_string()));
                    }
                }
            }
            for (_, child) in map.iter_mut() {
                redact_json(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::String(s) => {
            let r = secrets::redact(s);
            if r != *s {
                *s = r;
            }
        }
        _ => {}
    }
}

/// A template that would not parse or render. Tera's own error says only "failed to render"
/// at its top level and nests the useful part in its sources, so the detail is that chain,
/// flattened once here.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {detail}")]
    Parse { name: String, detail: String },
    #[error("cannot render {name}: {detail}")]
    Render { name: String, detail: String },
}

/// Renders one template against a JSON context (an object).
pub fn render_one(name: &str, template: &str, context: &Value) -> Result<String, TemplateError> {
    let mut tera = Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_template(name, template).map_err(|e| TemplateError::Parse { name: name.to_string(), detail: secrets::error_chain(&e) })?;
    let ctx = tera::Context::from_value(context.clone())
        .map_err(|e| TemplateError::Render { name: name.to_string(), detail: secrets::error_chain(&e) })?;
    tera.render(name, &ctx).map_err(|e| TemplateError::Render { name: name.to_string(), detail: secrets::error_chain(&e) })
}
