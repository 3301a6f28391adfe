//! poactl: keeps an environment's MongoDB Atlas, AWS and MongoDB index resources exactly as
//! its YAML spec says. Stateless: live state is read every time.

// Public only what the binary and the integration tests use (the modules below with `pub`).
#![warn(unreachable_pub)]

mod audit;
mod cli;
mod clock;
mod cmd;
mod cost;
mod engine;
mod interrupt;
mod lock;
mod migrate;
pub mod plan;
mod progress;
pub mod providers;
pub mod resource;
pub mod sandbox;
mod secrets;
pub mod spec;
pub mod view;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes, as `terraform plan -detailed-exitcode` uses them.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// Changes pending (plan), drift found (drift), over budget (cost).
    pub const CHANGES: u8 = 2;
}

/// Parses the command line, runs the command, prints any error, returns the exit code.
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::ERROR } else { exit::OK });
        }
    };
    let verbose = cli.global.verbose;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let text = if verbose { format!("{e:#}") } else { one_line(&e) };
            eprintln!("error: {}", secrets::redact(&text));
            ExitCode::from(exit::ERROR)
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
