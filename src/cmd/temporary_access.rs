//! `--temporary-access`: opens the runner's Atlas temporary entry before the command and
//! closes it after, whatever the command's outcome (`providers::atlas::temporary_access`).

use std::time::Duration;

use anyhow::{Result, bail};

use super::load_env;
use crate::cli::{Command, Global, MigrateCommand};
use crate::providers::atlas::temporary_access::{self, Opened};

/// How long Atlas keeps an entry poactl could not remove (killed outright): an hour, or an
/// apply's `--timeout` with a margin. Atlas takes at most a week (openapi-v2.yaml,
/// NetworkPermissionEntry.deleteAfterDate).
fn lifetime(run_timeout: Option<u64>) -> Duration {
    let hour = Duration::from_secs(3600);
    let week = Duration::from_secs(7 * 24 * 3600 - 600);
    run_timeout.map_or(hour, |t| (Duration::from_secs(t) + Duration::from_secs(900)).max(hour)).min(week)
}

/// Opens the entry for the commands that connect to the database; refuses the flag elsewhere.
pub(super) async fn open(g: &Global, command: &Command, address: &str, run_timeout: Option<u64>) -> Result<Option<Opened>> {
    let connects = matches!(
        command,
        Command::Plan(_)
            | Command::Apply(_)
            | Command::Drift(_)
            | Command::Destroy(_)
            | Command::Check(_)
            | Command::Migrate(MigrateCommand::Data(_))
    );
    if !connects {
        bail!("--temporary-access is for the commands that connect to the database: plan, apply, drift, destroy, check and migrate data");
    }
    let loaded = load_env(g)?;
    // Ctrl-C from here on ends the command cleanly, so that the entry is closed after it.
    crate::interrupt::install();
    let opened = temporary_access::open(&loaded, address, lifetime(run_timeout)).await?;
    if !g.quiet {
        match &opened {
            None => eprintln!(
                "note: --temporary-access: project {} does not exist yet, so there is no cluster to let this runner into; run again once apply has made it",
                loaded.spec.atlas.as_ref().map(|a| a.project.as_str()).unwrap_or_default()
            ),
            Some(o) => match &o.until {
                Some(until) => eprintln!(
                    "temporary access: {} may reach project {}'s clusters through their public endpoint for this run (Atlas removes the entry at {until} if poactl cannot)",
                    o.entry, o.project
                ),
                None => eprintln!("temporary access: {} is already in project {}'s access list; it is left as it is", o.entry, o.project),
            },
        }
    }
    Ok(opened)
}

/// Closes the entry, after Ctrl-C too. An entry left behind fails the run: it is a public way
/// into the environment that nobody asked to keep.
pub(super) async fn close(g: &Global, opened: Option<Opened>, result: Result<u8>) -> Result<u8> {
    let Some(opened) = opened else { return result };
    let (entry, until) = (opened.entry.clone(), opened.until.clone());
    match opened.close().await {
        Ok(true) if !g.quiet => eprintln!("temporary access: removed {entry}"),
        Ok(_) => {}
        Err(e) => {
            eprintln!(
                "error: --temporary-access: could not remove {entry} ({}); Atlas removes it at {}, or remove it now: `poactl apply --delete 'atlas.access_list.{entry}'`",
                crate::secrets::redact(&e.to_string()),
                until.as_deref().unwrap_or("its expiry")
            );
            return result.map(|code| if code == crate::exit::OK || code == crate::exit::CHANGES { crate::exit::ERROR } else { code });
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_outlive_the_run_and_never_a_week() {
        let cases = [(None, 3600), (Some(60), 3600), (Some(7200), 8100), (Some(30 * 24 * 3600), 7 * 24 * 3600 - 600)];
        for (timeout, want) in cases {
            assert_eq!(lifetime(timeout), Duration::from_secs(want), "{timeout:?}");
        }
    }
}
