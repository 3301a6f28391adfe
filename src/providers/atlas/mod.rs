//! MongoDB Atlas through the Admin API v2: project, clusters (M0, Flex, dedicated), backup
//! schedules, IP access list, database users, alert configurations, and the project's
//! maintenance window and auditing.

pub mod access_list;
pub mod alerts;
pub mod backup;
pub mod client;
pub mod cluster;
pub mod project;
pub mod settings;
pub mod temporary_access;
pub mod users;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use self::client::{AtlasClient, AtlasError};
use super::{Connections, Ctx, Lane, ProviderError, Registry};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;

impl From<AtlasError> for ProviderError {
    fn from(e: AtlasError) -> Self {
        match e {
            AtlasError::Auth(m) => ProviderError::Config(m),
            other => ProviderError::Atlas(other),
        }
    }
}

/// Atlas limits requests per project and endpoint (Atlas Administration API, "Rate Limiting":
/// a 429 past the limit); most reads are served from the run's cached lists, so sixteen
/// resources at once keep the writes well below it.
pub const LANE: Lane = Lane { service: "atlas", limit: 16 };

/// A project list read once per run, shared by every resource that looks in it.
type ListCell = Arc<OnceCell<Arc<Vec<Value>>>>;

/// The client plus what a run shares: lists read once per project, and the per-project lock
/// that serializes access-list writes (Atlas does not support concurrent POSTs there).
pub struct Atlas {
    pub client: AtlasClient,
    lists: std::sync::Mutex<HashMap<String, ListCell>>,
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Atlas {
    pub fn new(client: AtlasClient) -> Self {
        Atlas { client, lists: Default::default(), locks: Default::default() }
    }

    /// A list read once per run (observe and discover share it); `forget` drops it after a write.
    /// Shared, not copied: a project's 600 access-list entries are read by 600 resources.
    pub async fn cached_list(&self, path: &str, version: &str) -> Result<Arc<Vec<Value>>, AtlasError> {
        let cell = {
            let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
            lists.entry(path.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| async { self.client.list(path, version).await.map(Arc::new) }).await.cloned()
    }

    /// Reads at once the project's lists the spec's resources will look in, so that they are
    /// one round trip, not one after another as the first resource of each kind asks. A list
    /// that fails here is asked again, and its error reported, by the resources that need it.
    pub async fn prefetch(&self, group: &str, loaded: &LoadedSpec) {
        use client::version::{V2023_01_01, V2024_08_05, V2024_11_13};
        let Some(atlas) = &loaded.spec.atlas else { return };
        let mut lists: Vec<(String, &'static str)> = Vec::new();
        if !atlas.access_list.is_empty() {
            lists.push((access_list::AccessListProvider::list_path(group), V2023_01_01));
        }
        if !atlas.database_users.is_empty() {
            lists.push((users::UserProvider::list_path(group), V2023_01_01));
        }
        if !atlas.alerts.is_empty() {
            lists.push((alerts::AlertProvider::list_path(group), V2023_01_01));
        }
        if !atlas.clusters.is_empty() {
            lists.push((format!("/api/atlas/v2/groups/{group}/{}", cluster::CLUSTERS), V2024_08_05));
            lists.push((format!("/api/atlas/v2/groups/{group}/{}", cluster::FLEX), V2024_11_13));
        }
        futures::future::join_all(lists.iter().map(|(path, version)| self.cached_list(path, version))).await;
    }

    pub fn forget(&self, path: &str) {
        self.lists.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
    }

    pub fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(key.to_string()).or_default().clone()
    }
}

pub fn register(reg: &mut Registry, _conn: &Connections) -> Result<Arc<Atlas>, ProviderError> {
    let client = AtlasClient::from_env().map_err(ProviderError::Atlas)?;
    let atlas = Arc::new(Atlas::new(client));
    let shared = atlas.clone();
    reg.insert(Arc::new(project::ProjectProvider(atlas.clone())));
    reg.insert(Arc::new(cluster::ClusterProvider(atlas.clone())));
    reg.insert(Arc::new(backup::BackupScheduleProvider(atlas.clone())));
    reg.insert(Arc::new(access_list::AccessListProvider(atlas.clone())));
    reg.insert(Arc::new(users::UserProvider(atlas.clone())));
    reg.insert(Arc::new(settings::MaintenanceWindowProvider(atlas.clone())));
    reg.insert(Arc::new(settings::AuditingProvider(atlas.clone())));
    reg.insert(Arc::new(alerts::AlertProvider(atlas)));
    Ok(shared)
}

/// The project id from a resource's parent outputs (the project, or a cluster's `project_id`).
pub fn group_id(ctx: &Ctx<'_>) -> Result<String, ProviderError> {
    ctx.parent
        .and_then(|o| o.get("project_id").or_else(|| o.get("id")))
        .cloned()
        .ok_or_else(|| ProviderError::Config("the Atlas project is not known yet".to_string()))
}

/// The project a live resource is in: its own `groupId`, else the parent's.
pub fn group_of(o: &super::Observed, ctx: &Ctx<'_>) -> Result<String, ProviderError> {
    match o.handle.get("groupId").and_then(|v| v.as_str()) {
        Some(g) => Ok(g.to_string()),
        None => group_id(ctx),
    }
}

/// The project id for listing unmanaged resources: the observed project of the spec.
pub fn scope_group_id(ctx: &Ctx<'_>) -> Option<String> {
    let project = ctx.loaded.spec.atlas.as_ref()?.project.clone();
    ctx.outputs.get(&Address::new(Kind::AtlasProject, project)).and_then(|o| o.get("id")).cloned()
}

/// An output of the spec's project (`created`, ...), once observed.
pub fn project_output(ctx: &Ctx<'_>, field: &str) -> Option<String> {
    let project = ctx.loaded.spec.atlas.as_ref()?.project.clone();
    ctx.outputs.get(&Address::new(Kind::AtlasProject, project)).and_then(|o| o.get(field)).cloned()
}

/// Atlas tags (`[{key, value}]`) as a map.
pub fn tags_from_live(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(|t| t.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|t| {
                    Some((t.get("key")?.as_str()?.to_string(), t.get("value").and_then(|v| v.as_str()).unwrap_or("").to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn tags_to_live(tags: &Value) -> Value {
    let items: Vec<Value> = tags.as_object().map(|m| m.iter().map(|(k, v)| json!({"key": k, "value": v})).collect()).unwrap_or_default();
    Value::Array(items)
}

/// The tags to write on an update: Atlas replaces the whole list, so the live tags the spec
/// leaves alone (`ignore_tags`) go back with the desired ones.
pub fn tags_update(desired: &Value, live_doc: &Value, loaded: &LoadedSpec) -> Value {
    let mut tags = crate::providers::string_map(desired);
    for (k, v) in tags_from_live(live_doc.get("tags")) {
        if crate::providers::foreign_tag(&k, loaded) {
            tags.entry(k).or_insert(v);
        }
    }
    tags_to_live(&json!(tags))
}
