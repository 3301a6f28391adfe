//! poactl: keeps an environment's MongoDB Atlas, AWS and MongoDB index resources exactly as
//! its YAML spec says. Stateless: live state is read every time.
//!
//! The binary's `main` is `cmd::main`: this file only declares the modules (the layering test
//! lets it use nothing but `cmd`).

// Public only what the binary and the integration tests use (the modules below with `pub`).
#![warn(unreachable_pub)]

mod audit;
mod check;
mod cli;
mod clock;
mod cmd;
mod cost;
pub mod deadline;
mod engine;
mod init;
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

/// Exit codes, as `terraform plan -detailed-exitcode` uses them.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// Changes pending (plan), drift found (drift), over budget (cost).
    pub const CHANGES: u8 = 2;
}

pub use crate::cmd::main;
