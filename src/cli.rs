//! Command-line interface (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "poactl", version, about = "Keeps MongoDB Atlas, AWS (S3, CloudFront, CloudWatch) and MongoDB indexes exactly as an environment's YAML spec says.", long_about = None)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct Global {
    /// Environment name (environments/NAME.yaml) or a path to a spec file.
    #[arg(short = 'e', long = "env", global = true, env = "POACTL_ENV")]
    pub env: Option<String>,
    /// Where environment specs live.
    #[arg(long, global = true, default_value = "environments", env = "POACTL_ENVIRONMENTS_DIR")]
    pub environments_dir: PathBuf,
    /// Output format: text for people, json for machines, markdown for PR comments.
    #[arg(short = 'o', long, global = true, value_enum)]
    pub output: Option<OutputFormat>,
    /// No progress, no step lines: results and errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No colors (also with NO_COLOR set).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Print the whole cause chain of errors.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// How many resources of one service are read or changed at once. Default: each service's
    /// own bound (S3 24, CloudWatch 16, Atlas 16, MongoDB 8, CloudFront 4).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: Option<u16>,
    /// How long one request to MongoDB, Atlas or AWS may go unanswered, in seconds (default
    /// 30). A read is asked again within three times that; a write unanswered in time is
    /// reported as "outcome unknown". Never past apply's --timeout.
    #[arg(long, global = true, env = "POACTL_REQUEST_TIMEOUT", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: Option<u64>,
    /// Let this runner reach a VPC-only environment's clusters for this run: an Atlas temporary
    /// access-list entry for ADDRESS (default: the address checkip.amazonaws.com sees), removed
    /// when the command ends, also on Ctrl-C, and by Atlas itself within the hour (apply: its
    /// --timeout) if poactl is killed. For plan, apply, drift, destroy, check and migrate data.
    #[arg(long, global = true, value_name = "ADDRESS", num_args = 0..=1, default_missing_value = "auto")]
    pub temporary_access: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a starting environments/ (base, dev, staging, prod) that passes validate. No
    /// network; never overwrites a file without --force.
    Init(InitArgs),
    /// Parse, resolve and check the spec. No network.
    Validate,
    /// Read live state and show what apply would change.
    Plan(PlanArgs),
    /// Carry out the plan and wait for resources to settle.
    Apply(ApplyArgs),
    /// Compare live state with the spec, for CI: exit 0 clean, 2 drift, 1 error.
    Drift(DriftArgs),
    /// Delete everything this environment owns (refuses protected environments).
    Destroy(DestroyArgs),
    /// Monthly cost estimate from the price catalog. No network.
    Cost(CostArgs),
    /// The resource dependency graph (the order apply takes), as Mermaid, DOT or JSON. No
    /// network.
    Graph(GraphArgs),
    /// Print the spec's JSON Schema (2020-12), for editors (yaml-language-server) and CI. No
    /// network. Types and field names only: `validate` checks the rest.
    Schema,
    /// Print a shell completion script: `poactl completions bash > /etc/bash_completion.d/poactl`.
    Completions(CompletionsArgs),
    /// Write the man pages (one per command) into a directory.
    #[command(hide = true)]
    Man(ManArgs),
    /// Render outputs (connection string, bucket, CDN domain) through a Tera template.
    Output(OutputArgs),
    /// Security and reliability rules over the spec and the live state; prints the app's
    /// least-privilege IAM policy. `--fail-on high` exits 2 for CI.
    Audit(AuditArgs),
    /// Smoke-test the live environment end to end: log in as each database user and try what
    /// its roles allow and refuse, write/read/delete a probe object in each bucket, and see
    /// that each alarm exists and reports, and that backups are recent. Exit 0 all passed, 1 a
    /// check failed.
    Check(CheckArgs),
    /// Move the data, the uploads and the stored file URLs into the environment (resumable,
    /// verified; the source is never changed).
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Serve a local emulation of the Atlas Admin API v2 for offline runs and tests.
    Sandbox(SandboxArgs),
    /// Show who holds the environment's apply lock; `--force` breaks it.
    Unlock(UnlockArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct InitArgs {
    /// The app's name (lowercase letters, digits, dashes): it names projects, buckets, roles.
    /// Default: the current directory's name.
    #[arg(long)]
    pub app: Option<String>,
    /// The AWS region the app runs in; the Atlas cluster goes to the same region.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// The MongoDB database's name. Default: the app's, with `_db`.
    #[arg(long)]
    pub database: Option<String>,
    /// Who the alarms email (each topic's subscriber; they confirm from SNS' email).
    #[arg(long, default_value = "ops@example.com")]
    pub email: String,
    /// No example collections and indexes (default: a marketplace's, to start from).
    #[arg(long)]
    pub empty: bool,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct UnlockArgs {
    /// Break the lock, whoever holds it (only when that run is gone).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ConnectArgs {
    /// MongoDB connection string for index management (overrides `database.uri`).
    #[arg(long, env = "POACTL_MONGODB_URI")]
    pub mongodb_uri: Option<String>,
    /// Only resources whose address starts with this (e.g. `atlas`, `storage.buckets`); repeatable.
    #[arg(long = "target", value_name = "ADDRESS_PREFIX")]
    pub targets: Vec<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct PlanArgs {
    /// Exit 2 when there are changes (0 none, 1 error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan (JSON) for `apply --plan`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Plan deletion of live resources the spec does not declare.
    #[arg(long)]
    pub prune: bool,
    /// Plan deletion of this unmanaged resource, which --prune alone keeps because nothing on
    /// it proves poactl made it (Atlas access-list entries, database users, alert configs).
    #[arg(long = "delete", value_name = "ADDRESS")]
    pub delete: Vec<String>,
    /// Plan sending database-user passwords again (Atlas never returns them).
    #[arg(long)]
    pub rotate_passwords: bool,
    /// Take over resources with the spec's names that carry no poactl tags (writes the tags).
    #[arg(long)]
    pub adopt: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ApplyArgs {
    /// Apply a plan saved by `plan --out`; refused if the spec or live state changed since.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Allow deleting or replacing resources that hold data, or anything in a protected env.
    #[arg(long)]
    pub allow_destroy: bool,
    /// Delete live resources the spec does not declare.
    #[arg(long)]
    pub prune: bool,
    /// Delete this unmanaged resource, which --prune alone keeps because nothing on it proves
    /// poactl made it (Atlas access-list entries, database users, alert configs).
    #[arg(long = "delete", value_name = "ADDRESS")]
    pub delete: Vec<String>,
    /// Send database-user passwords again.
    #[arg(long)]
    pub rotate_passwords: bool,
    /// Take over resources with the spec's names that carry no poactl tags (writes the tags).
    #[arg(long)]
    pub adopt: bool,
    /// Allow index changes that need a rebuild (drop and create).
    #[arg(long)]
    pub allow_rebuild: bool,
    /// With --prune, drop unmanaged indexes at once instead of hiding them first.
    #[arg(long)]
    pub drop_immediately: bool,
    /// Do not wait for clusters and distributions to settle.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for one resource to settle, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct DriftArgs {
    /// Also report live resources the spec does not declare as drift (exit 2).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct DestroyArgs {
    /// Required: this deletes data.
    #[arg(long)]
    pub allow_destroy: bool,
    #[arg(long)]
    pub auto_approve: bool,
    #[arg(long)]
    pub no_wait: bool,
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CostArgs {
    /// Price the named usage scenarios (usage.scenarios) side by side; `all` for every one.
    #[arg(long)]
    pub scenario: Vec<String>,
    /// Exit 2 when the monthly estimate is above this (default: billing.budget_usd).
    #[arg(long)]
    pub budget: Option<f64>,
    /// A price catalog to use instead of the built-in one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct CompletionsArgs {
    /// bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct ManArgs {
    /// Where to write `poactl.1` and `poactl-COMMAND.1`.
    #[arg(long, default_value = "target/man")]
    pub dir: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct GraphArgs {
    /// mermaid (GitHub renders it in a comment), dot (Graphviz) or json; `--output json` also
    /// gives json.
    #[arg(long, value_enum, default_value = "mermaid")]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    Mermaid,
    Dot,
    Json,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct OutputArgs {
    /// The Tera template to render (default: templates/app.env.tera, built in).
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Include secrets (database passwords); refused when stdout is a terminal.
    #[arg(long)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct SandboxArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Seconds a cluster stays CREATING/UPDATING/DELETING.
    #[arg(long, default_value_t = 2.0)]
    pub cluster_delay: f64,
    /// Answer this fraction of requests with 429 + Retry-After (0..1), to test retries.
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit: f64,
    /// Write the base URL here once listening (for scripts).
    #[arg(long)]
    pub url_file: Option<PathBuf>,
    /// Also serve a scripted MongoDB wire MOCK (in-memory, a subset of the commands; not a
    /// database) on this address, for offline runs of the index and migrate commands.
    #[arg(long, value_name = "ADDRESS")]
    pub mongo_listen: Option<String>,
    /// Write the MongoDB mock's connection string here once listening.
    #[arg(long, requires = "mongo_listen")]
    pub mongo_url_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCommand {
    /// Copy collections from a MongoDB URI or a `mongodump --out` directory into the
    /// environment's database, then build its indexes and verify every collection.
    Data(MigrateDataArgs),
    /// Copy a local uploads directory into the environment's bucket; write a manifest.
    Uploads(MigrateUploadsArgs),
    /// Rewrite stored file URLs to the CDN URLs of an uploads manifest (reversible).
    Urls(MigrateUrlsArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct MigrateGuard {
    /// Allow migrating into an environment with `protect: true`.
    #[arg(long)]
    pub allow_protected: bool,
    /// Show what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct MigrateDataArgs {
    /// A MongoDB URI with the database in its path (mongodb://127.0.0.1:27017/home_service_db)
    /// or a `mongodump --out` directory.
    #[arg(long, value_name = "SOURCE")]
    pub from: String,
    /// Only these collections (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub collections: Vec<String>,
    /// The database of a dump that holds several (default: the spec's `database.name`, else
    /// the only one that is not admin, config or local).
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
    /// Insert with `bypassDocumentValidation`, for a target collection whose validator
    /// refuses older documents (needs the bypassDocumentValidation right: dbAdmin or restore).
    #[arg(long)]
    pub bypass_document_validation: bool,
    /// Leave the indexes alone after the load (build them later with `poactl apply`).
    #[arg(long)]
    pub no_indexes: bool,
    /// The target's connection string (overrides `database.uri` and `database.user`).
    #[arg(long, env = "POACTL_MONGODB_URI")]
    pub mongodb_uri: Option<String>,
    #[command(flatten)]
    pub guard: MigrateGuard,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct MigrateUploadsArgs {
    /// The local uploads directory.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The bucket (`storage.buckets[].name`); needed when the spec has several.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Key prefix for every file (e.g. `uploads/`).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Where to write the manifest (local path -> key -> CDN URL).
    #[arg(long, default_value = "uploads-manifest.json")]
    pub manifest: PathBuf,
    /// The base of the CDN URLs (e.g. https://cdn.example.com); default: the distribution
    /// serving the bucket.
    #[arg(long)]
    pub cdn_url: Option<String>,
    /// Upload files reached through links that resolve outside --from (skipped by default,
    /// so that a link to a secret never reaches the bucket the CDN serves).
    #[arg(long)]
    pub follow_links_outside: bool,
    #[command(flatten)]
    pub guard: MigrateGuard,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct MigrateUrlsArgs {
    /// The manifest `poactl migrate uploads` wrote.
    #[arg(long, required_unless_present = "revert")]
    pub manifest: Option<PathBuf>,
    /// A field holding file URLs, as COLLECTION.PATH (repeatable; arrays are walked).
    #[arg(long = "field", value_name = "COLL.PATH", required_unless_present = "revert")]
    pub fields: Vec<String>,
    /// Where the old uploads were served (repeatable): a URL base such as
    /// http://localhost:5000/uploads/, or a path such as /uploads/ for relative values. Only
    /// values under one of them are rewritten; other hosts are counted and left alone.
    #[arg(long = "old-base", value_name = "URL_OR_PATH", required_unless_present = "revert")]
    pub old_bases: Vec<String>,
    /// Put back the values recorded by earlier runs (of the given fields, or all).
    #[arg(long)]
    pub revert: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// The target's connection string (overrides `database.uri` and `database.user`).
    #[arg(long, env = "POACTL_MONGODB_URI")]
    pub mongodb_uri: Option<String>,
    #[command(flatten)]
    pub guard: MigrateGuard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SeverityArg {
    Low,
    Medium,
    High,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct AuditArgs {
    /// Exit 2 when a finding is at least this severe.
    #[arg(long, value_enum)]
    pub fail_on: Option<SeverityArg>,
    /// Check the spec only (no network): live state is not read.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CheckArgs {
    /// Only these groups of checks (database, storage, cdn, alarms, notifications, backups); repeatable.
    #[arg(long = "only", value_name = "GROUP")]
    pub only: Vec<String>,
}
