//! `poactl validate`: the spec checked, offline.

use super::{format, load_env_offline};
use crate::cli::{Global, OutputFormat};
use crate::spec::{self};
use crate::{exit, secrets};
use anyhow::Result;
use serde_json::json;

pub(super) fn validate(g: &Global) -> Result<u8> {
    let file = g.env.as_deref().map(|e| spec::load::env_file(&g.environments_dir, e));
    match load_env_offline(g) {
        Ok(loaded) => {
            let summary = loaded.spec.summary();
            let warnings = spec::validate::warnings(&loaded);
            let notes: Vec<String> = loaded
                .unset_env
                .iter()
                .map(|u| format!("{}:{}: {}: ${{env:{}}} is not set: set it before plan", u.loc.file, u.loc.line, u.path, u.name))
                .collect();
            if format(g) != OutputFormat::Json {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                for n in &notes {
                    eprintln!("note: {n}");
                }
            }
            match format(g) {
                OutputFormat::Json => println!(
                    "{}",
                    json!({"valid": true, "environment": loaded.env, "files": loaded.files, "summary": summary, "resources": spec::addresses(&loaded.spec).iter().map(|a| a.to_string()).collect::<Vec<_>>(), "warnings": warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(), "notes": notes})
                ),
                _ => println!("{}: environment \"{}\" is valid: {summary}", loaded.files[0].display(), loaded.env),
            }
            Ok(exit::OK)
        }
        Err(e) if format(g) == OutputFormat::Json => {
            let errors = match e.downcast_ref::<spec::SpecErrors>() {
                Some(errs) => errs
                    .0
                    .iter()
                    .map(|e| json!({"file": e.loc.as_ref().map(|l| l.file.to_string()), "line": e.loc.as_ref().map(|l| l.line), "column": e.loc.as_ref().map(|l| l.col), "path": e.path, "message": e.message, "hint": e.hint}))
                    .collect(),
                None => vec![json!({"file": file, "message": e.to_string()})],
            };
            println!("{}", secrets::redact(&json!({"valid": false, "errors": errors}).to_string()));
            Ok(exit::ERROR)
        }
        Err(e) => Err(e),
    }
}
