//! Shell completions (clap_complete) and man pages (clap_mangen), both generated from the CLI's
//! own definition, so they cannot fall behind it.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

pub(super) fn completions(a: &CompletionsArgs) -> Result<u8> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut cmd, "poactl", &mut out);
    out.flush()?;
    Ok(crate::exit::OK)
}

/// `poactl.1`, then `poactl-COMMAND.1` for each visible command (and `poactl-migrate-data.1`
/// for the nested ones).
pub(super) fn man_pages(a: &ManArgs) -> Result<u8> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("cannot create {}", a.dir.display()))?;
    let root = Cli::command();
    let mut pages = vec![("poactl".to_string(), root.clone())];
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("poactl-{}", sub.get_name());
        for nested in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages.push((format!("{name}-{}", nested.get_name()), nested.clone()));
        }
        pages.push((name, sub.clone()));
    }
    let mut out = std::io::stdout().lock();
    for (name, cmd) in pages {
        let path = a.dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.name(name.clone())).render(&mut buf).with_context(|| format!("cannot render {name}.1"))?;
        std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
        // A closed pipe (`| head`) is the reader's choice, not an error of the pages.
        let _ = writeln!(out, "{}", path.display());
    }
    Ok(crate::exit::OK)
}
