//! `poactl output`: live outputs through a Tera template.

use super::{format, load_env, observe_declared};
use crate::cli::{Global, OutputArgs, OutputFormat};
use crate::providers::Connections;
use anyhow::{Context, Result, bail};
use std::io::IsTerminal;

/// `poactl output`: live outputs through a Tera template.
pub(super) async fn output_cmd(g: &Global, a: OutputArgs) -> Result<u8> {
    if a.show_secrets && std::io::stdout().is_terminal() {
        bail!("--show-secrets writes passwords; it is refused on a terminal. Redirect stdout to a file (e.g. > .env) instead");
    }
    let (name, template) = match &a.template {
        Some(path) => {
            (path.display().to_string(), std::fs::read_to_string(path).with_context(|| format!("cannot read template {}", path.display()))?)
        }
        None => ("app.env.tera".to_string(), crate::view::APP_ENV.to_string()),
    };
    let loaded = load_env(g)?;
    let progress = crate::progress::Progress::for_terminal(g.quiet);
    // Outputs need the declared resources only: no listing of unmanaged ones.
    let desired: Vec<_> = crate::providers::desired(&loaded).into_iter().filter(|d| !d.address.kind.in_database()).collect();
    let conn = Connections { mongodb_uri: a.connect.mongodb_uri.clone() };
    let obs = observe_declared(g, &loaded, &conn, desired, Default::default(), &progress).await?;
    let ctx = crate::view::output_context(&loaded, &obs.outputs, a.show_secrets);
    let text = crate::view::render_one(&name, &template, &ctx)?;
    let text = if a.show_secrets { text } else { crate::secrets::redact(&text) };
    match format(g) {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&if a.show_secrets { ctx } else { crate::view::redacted(ctx) })?),
        _ => print!("{text}"),
    }
    Ok(crate::exit::OK)
}
