//! `poactl init`: writes a starting environments directory and says what to do next.

use super::format;
use crate::cli::{Global, InitArgs, OutputFormat};
use crate::init::{Options, app_name_from, render, write};
use anyhow::{Context, Result};

pub(super) fn init_cmd(g: &Global, a: InitArgs) -> Result<u8> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let app = a.app.unwrap_or_else(|| app_name_from(&cwd));
    let database = a.database.unwrap_or_else(|| format!("{}_db", app.replace('-', "_")));
    let options = Options { app, region: a.region, database, email: a.email, example: !a.empty };
    let files = render(&options)?;
    let written = write(&g.environments_dir, &files, a.force)?;
    if format(g) == OutputFormat::Json {
        let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"app": options.app, "files": files}))?);
        return Ok(crate::exit::OK);
    }
    for p in &written {
        println!("wrote {}", p.display());
    }
    if !g.quiet {
        let dir = g.environments_dir.display();
        let prefix = options.app.to_uppercase().replace('-', "_");
        println!(
            "\nNext:\n  poactl validate -e {dir}/dev.yaml       # offline; notes the secrets still unset\n  export MONGODB_ATLAS_ORG_ID=... {prefix}_DB_PASSWORD=... {prefix}_MIGRATIONS_PASSWORD=...\n  poactl plan -e {dir}/dev.yaml\nReplace the access list's placeholder (203.0.113.0/24) with the app's addresses first."
        );
    }
    Ok(crate::exit::OK)
}
