//! The move to the new environment (the seed's week 2): the data (`data`), the uploads
//! (`uploads`) and the file URLs stored in the data (`urls`). Each step is resumable and
//! verified, and none deletes anything from its source. The commands in `commands` decide
//! what runs and print; this module does the work and reports it as data.

pub(crate) mod copy;
pub(crate) mod data;
pub(crate) mod dump;
pub(crate) mod fit;
pub(crate) mod hash;
pub(crate) mod indexes;
pub(crate) mod raw;
pub(crate) mod run;
pub(crate) mod scan;
pub(crate) mod select;
pub(crate) mod upload_run;
pub(crate) mod uploads;
pub(crate) mod urls;
pub(crate) mod verify;

use std::path::PathBuf;

use mongodb::bson::Document;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CollectionKind {
    /// Documents to copy.
    Collection,
    /// A view: its definition only, left to the operator (`db.createView`).
    View,
    /// A time-series collection: refused before anything is written (see `classify`).
    TimeSeries,
    /// Not data of the app's: server-owned, the profiler's, users and roles.
    Skipped,
}

/// A source collection: its `create` options and indexes as the source has them, and its
/// size when known.
#[derive(Debug, Clone)]
pub(crate) struct CollectionInfo {
    pub name: String,
    pub kind: CollectionKind,
    /// Why a collection that is not `Collection` is not copied, for the report.
    pub reason: Option<String>,
    pub options: Document,
    pub indexes: Vec<Document>,
    pub count: Option<u64>,
    pub bytes: Option<u64>,
    /// The `.bson` file of a dump.
    pub file: Option<PathBuf>,
}

/// What a source collection is, from its name and its type (`listCollections`' `type`, or a
/// dump's metadata `type`), as mongorestore and the server decide it:
/// - `system.buckets.X` holds the buckets of the time-series collection `X` (mongorestore
///   `filepath.go` strips `common.TimeseriesBucketPrefix` and restores through the view).
///   poactl refuses time series up front: their buckets are not documents to insert one by
///   one, and the verification would compare buckets, not measurements.
/// - `system.js` is data (server `namespace_string.cpp`, `isLegalClientSystemNS`, lets a
///   client write it; mongorestore restores it like any collection).
/// - `system.profile` is the profiler's (mongorestore skips it, TOOLS-717); `system.indexes`
///   is the index list of pre-3.0 dumps (mongorestore skips it when metadata files exist;
///   poactl builds indexes from the spec); `system.users` and the `$admin.system.*` files of
///   `--dumpDbUsersAndRoles` are users and roles, which come from `database.user` and Atlas.
/// - `system.views` is view definitions: views are left to `db.createView`.
/// - any other `system.*` is refused by the server for client writes (`isLegalClientSystemNS`
///   is false: InvalidNamespace, "Invalid system namespace").
pub(crate) fn classify(name: &str, kind: Option<&str>, options: &Document) -> (CollectionKind, Option<String>) {
    let users = "holds users and roles of the source: not copied; the app's user is `database.user`, and Atlas manages database users";
    let skipped = |why: &str| (CollectionKind::Skipped, Some(why.to_string()));
    if let Some(of) = name.strip_prefix("system.buckets.") {
        return (CollectionKind::TimeSeries, Some(format!("holds the buckets of time-series collection {of}, which poactl does not copy")));
    }
    if kind == Some("timeseries") || options.contains_key("timeseries") {
        return (CollectionKind::TimeSeries, Some("is a time-series collection, which poactl does not copy".into()));
    }
    if kind == Some("view") || options.contains_key("viewOn") {
        return (CollectionKind::View, Some("is a view: not copied; recreate it with db.createView on the target".into()));
    }
    if name.starts_with('$') {
        return skipped(users);
    }
    match name {
        "system.js" => (CollectionKind::Collection, None),
        "system.profile" => skipped("is the profiler's output: not copied (mongorestore skips it too)"),
        "system.indexes" => skipped("is the index list of a pre-3.0 dump: not copied; poactl builds the spec's indexes"),
        "system.users" | "system.roles" | "system.version" => skipped(users),
        "system.views" => skipped("holds view definitions: not copied; recreate each view with db.createView on the target"),
        n if n.starts_with("system.") => skipped("is a collection the server owns: clients cannot write it (Invalid system namespace)"),
        _ => (CollectionKind::Collection, None),
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum MigrateError {
    /// A request to the source or the target went unanswered within its deadline.
    #[error(transparent)]
    Unanswered(#[from] crate::deadline::Unanswered),
    #[error("the source {source_name} {why}")]
    Source { source_name: String, why: String },
    #[error("cannot read the source {source_name}")]
    SourceRead {
        source_name: String,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("{file}{} {why}", offset.map(|o| format!(" (at byte {o})")).unwrap_or_default())]
    Dump { file: String, offset: Option<u64>, why: String },
    #[error("writing collection {collection} on the target failed")]
    TargetWrite {
        collection: String,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("collection {collection}: {why}")]
    Verify { collection: String, why: String },
    #[error("collection {collection} exists on the target with other options than the source's ({differences}): {fix}")]
    Options { collection: String, differences: String, fix: String },
    #[error("{what} failed")]
    S3 {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("{0}")]
    Usage(String),
}

/// The database the data goes to, and where it is (its hosts, for messages). Every request
/// to it is bounded (`deadline`): reads are asked again within the call's deadline, writes
/// unanswered in time end the collection as "outcome unknown" (a rerun resumes by `_id`), and
/// a cursor's next batch is one bounded attempt.
#[derive(Clone)]
pub(crate) struct Target {
    pub db: mongodb::Database,
    pub endpoint: String,
}

impl Target {
    fn request<'a>(&'a self, operation: &'a str) -> crate::deadline::Request<'a> {
        crate::deadline::Request { service: "MongoDB", endpoint: &self.endpoint, operation }
    }

    pub(crate) async fn read<T, F, Fut>(&self, operation: &str, f: F) -> crate::deadline::Bounded<T, mongodb::error::Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    {
        crate::deadline::read(self.request(operation), f).await
    }

    pub(crate) async fn write<T, Fut>(&self, operation: &str, call: Fut) -> crate::deadline::Bounded<T, mongodb::error::Error>
    where
        Fut: std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    {
        crate::deadline::write(self.request(operation), call).await
    }

    pub(crate) async fn write_sized<T, Fut>(
        &self,
        operation: &str,
        bytes: u64,
        call: Fut,
    ) -> crate::deadline::Bounded<T, mongodb::error::Error>
    where
        Fut: std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    {
        crate::deadline::write_sized(self.request(operation), bytes, call).await
    }

    pub(crate) async fn step<T, Fut>(&self, operation: &str, call: Fut) -> crate::deadline::Bounded<T, mongodb::error::Error>
    where
        Fut: std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    {
        crate::deadline::step(self.request(operation), call).await
    }
}
