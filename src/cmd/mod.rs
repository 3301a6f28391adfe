//! The commands: each loads the spec, talks to the engine, and prints its result. `main`
//! (the binary's) is here too: this is the only layer that sees the CLI types, prints and
//! picks exit codes.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser as _;

use crate::cli::{Cli, Command, ConnectArgs, Global, OutputFormat};
use crate::engine::{Engine, Observation};
use crate::progress::Progress;
use crate::providers::{self, Connections, Registry};
use crate::resource::Kind;
use crate::secrets;
use crate::spec::{self, LoadedSpec};

mod apply;
mod audit;
mod check;
mod cost;
mod drift;
mod graph;
mod init;
mod migrate;
mod output;
mod session;
mod shell;
mod temporary_access;
mod validate;

use self::apply::{apply_cmd, destroy_cmd, plan_cmd};
use self::cost::cost_cmd;
use self::drift::drift_cmd;
use self::output::output_cmd;
use self::session::{Session, take_lock, unlock_cmd};
use self::validate::validate;

/// Parses the command line, runs the command, prints any error, returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { crate::exit::ERROR } else { crate::exit::OK });
        }
    };
    let verbose = cli.global.verbose;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(crate::exit::ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let text = if verbose { format!("{e:#}") } else { one_line(&e) };
            eprintln!("error: {}", secrets::redact(&text));
            ExitCode::from(crate::exit::ERROR)
        }
    }
}

/// The error and, when the outermost message is only context, its first cause.
fn one_line(e: &anyhow::Error) -> String {
    let mut chain = e.chain();
    let first = chain.next().map(|c| c.to_string()).unwrap_or_default();
    match chain.next() {
        Some(cause) if !first.contains('\n') => format!("{first}: {cause}"),
        _ => first,
    }
}

async fn run(cli: Cli) -> Result<u8> {
    let result = run_command(cli).await;
    providers::atlas::client::revoke_issued_tokens().await;
    result
}

async fn run_command(cli: Cli) -> Result<u8> {
    let g = cli.global;
    let attempt = g.request_timeout.map_or(crate::deadline::DEFAULT_ATTEMPT, std::time::Duration::from_secs);
    let run_timeout = match &cli.command {
        Command::Apply(a) => Some(a.timeout),
        Command::Destroy(a) => Some(a.timeout),
        _ => None,
    };
    crate::deadline::set(crate::deadline::Deadlines::from_attempt(attempt).within(run_timeout.map(std::time::Duration::from_secs)));
    let Some(address) = g.temporary_access.clone() else { return dispatch(&g, cli.command).await };
    let opened = temporary_access::open(&g, &cli.command, &address, run_timeout).await?;
    let result = dispatch(&g, cli.command).await;
    temporary_access::close(&g, opened, result).await
}

async fn dispatch(g: &Global, command: Command) -> Result<u8> {
    match command {
        Command::Init(a) => init::init_cmd(g, a),
        Command::Validate => validate(g),
        Command::Plan(a) => plan_cmd(g, a).await,
        Command::Apply(a) => apply_cmd(g, a).await,
        Command::Drift(a) => drift_cmd(g, a).await,
        Command::Destroy(a) => destroy_cmd(g, a).await,
        Command::Cost(a) => cost_cmd(g, a),
        Command::Graph(a) => graph::graph_cmd(g, a),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&crate::spec::model::spec_schema())?);
            Ok(crate::exit::OK)
        }
        Command::Completions(a) => shell::completions(&a),
        Command::Man(a) => shell::man_pages(&a),
        Command::Output(a) => output_cmd(g, a).await,
        Command::Unlock(a) => unlock_cmd(g, a).await,
        Command::Migrate(m) => migrate::run(g, m).await,
        Command::Audit(a) => audit::run(g, a).await,
        Command::Check(a) => check::run(g, a).await,
        Command::Sandbox(a) => {
            let settings = crate::sandbox::Settings {
                listen: a.listen,
                cluster_delay: a.cluster_delay,
                rate_limit: a.rate_limit,
                url_file: a.url_file,
                mongo_listen: a.mongo_listen,
                mongo_url_file: a.mongo_url_file,
            };
            crate::sandbox::command(settings).await.map(|()| crate::exit::OK)
        }
    }
}

pub(crate) fn color(g: &Global) -> bool {
    !g.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

pub(crate) fn format(g: &Global) -> OutputFormat {
    g.output.unwrap_or(OutputFormat::Text)
}

/// Loads and checks the environment `-e` names; registers its secrets for redaction.
/// Reads the live state of `desired` (declared resources), and lists the live resources the
/// spec does not declare for the `discover` kinds only: the read `output`, `audit`, `check`
/// and `migrate` share.
pub(crate) async fn observe_declared(
    g: &Global,
    loaded: &LoadedSpec,
    conn: &Connections,
    desired: Vec<providers::Desired>,
    discover: std::collections::BTreeSet<Kind>,
    progress: &Progress,
) -> Result<Observation> {
    let mut kinds: std::collections::BTreeSet<Kind> = desired.iter().map(|d| d.address.kind).collect();
    kinds.extend(discover.iter().copied());
    let registry = Registry::for_spec(loaded, conn, Some(&kinds)).await?;
    let mut engine = Engine::new(loaded, &registry, progress, g.parallelism.map(usize::from));
    engine.discover_kinds = Some(discover);
    Ok(engine.observe(desired).await?)
}

pub(crate) fn load_env(g: &Global) -> Result<LoadedSpec> {
    load_env_with(g, spec::load::Unset::Refuse)
}

/// For the commands that never send a value to a service (`validate`, `cost`, `graph`): an
/// unset `${env:...}` (a password, the org id) reads as empty and is noted, not refused.
pub(crate) fn load_env_offline(g: &Global) -> Result<LoadedSpec> {
    load_env_with(g, spec::load::Unset::Note)
}

fn load_env_with(g: &Global, unset: spec::load::Unset) -> Result<LoadedSpec> {
    let Some(env) = &g.env else {
        bail!("no environment given: pass -e NAME (a file in {}/) or set POACTL_ENV", g.environments_dir.display());
    };
    let lookup = |name: &str| std::env::var(name).ok();
    let loaded = spec::load::load_with(&g.environments_dir, env, &lookup, unset)?;
    secrets::register(&loaded.secrets);
    Ok(loaded)
}

fn connections(c: &ConnectArgs) -> Connections {
    Connections { mongodb_uri: c.mongodb_uri.clone() }
}

fn confirm(prompt: &str) -> Result<bool> {
    eprint!("{prompt} Only 'yes' will be accepted: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("cannot read the confirmation")?;
    Ok(answer.trim() == "yes")
}
