//! The move to the new environment (the seed's week 2): the data (`data`), the uploads
//! (`uploads`) and the file URLs stored in the data (`urls`). Each step is resumable and
//! verified, and none deletes anything from its source. The commands in `commands` decide
//! what runs and print; this module does the work and reports it as data.

pub(crate) mod data;
pub(crate) mod dump;
pub(crate) mod hash;
pub(crate) mod uploads;
pub(crate) mod urls;

use std::path::PathBuf;

use mongodb::bson::Document;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CollectionKind {
    Collection,
    View,
    System,
}

/// A source collection: its `create` options and indexes as the source has them, and its
/// size when known.
#[derive(Debug, Clone)]
pub(crate) struct CollectionInfo {
    pub name: String,
    pub kind: CollectionKind,
    pub options: Document,
    pub indexes: Vec<Document>,
    pub count: Option<u64>,
    pub bytes: Option<u64>,
    /// The `.bson` file of a dump.
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum MigrateError {
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
    #[error("collection {collection}: the target refused the document with _id {id} (code {code}): {why}")]
    Refused { collection: String, id: String, code: i32, why: String },
    #[error("collection {collection}: {why}")]
    Verify { collection: String, why: String },
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
