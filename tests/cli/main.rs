//! The one integration-test binary: drives the real `poactl` binary against real peers
//! (moto for AWS, the Atlas sandbox, a scripted MongoDB wire mock).

mod edge;
mod support;

mod atlas;
mod atlas_fidelity;
mod audit;
mod aws;
mod aws_fidelity;
mod bench;
mod captures;
mod check;
mod ci_roles;
mod deadlines;
mod demo;
mod domain;
mod encryption;
mod fuzz;
mod golive;
mod graph;
mod init;
mod layering;
mod migrate;
mod migrate_dump;
mod migrate_uploads;
mod mongo;
mod notifications;
mod offline;
mod openapi;
mod origins;
mod peering;
mod private_link;
mod regions;
mod reliability;
mod reports;
mod schema;
mod settings;
mod shell;
mod spec_errors;
mod temporary_access;
mod uptime;
mod validate;
