//! The Atlas project: found by name, created in the spec's organization.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::client::{seg, version::V2023_01_01};
use super::{Atlas, LANE, tags_from_live, tags_to_live, tags_update};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::AtlasSpec;

pub struct ProjectProvider(pub Arc<Atlas>);

pub fn desired(loaded: &LoadedSpec, atlas: &AtlasSpec, address: Address) -> Desired {
    let tags = all_tags(loaded, &Default::default(), &address);
    Desired::new(address, json!({"name": atlas.project, "org_id": atlas.org_id, "tags": tags}))
}

fn observed(env: &str, address: &Address, doc: Value) -> Observed {
    let id = doc.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let name = doc.get("name").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let created = doc.get("created").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let tags = tags_from_live(doc.get("tags"));
    let ownership = ownership_from_tags(&tags, env, address);
    Observed {
        id: id.clone(),
        attrs: json!({"name": name, "org_id": doc.get("orgId").cloned().unwrap_or(Value::Null), "tags": tags}),
        outputs: Outputs::from([("id".to_string(), id), ("name".to_string(), name), ("created".to_string(), created)]),
        ownership,
        handle: doc,
    }
}

#[async_trait]
impl Provider for ProjectProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasProject
    }

    fn lane(&self) -> Lane {
        LANE
    }

    fn replace_paths(&self) -> &'static [&'static str] {
        &["org_id"]
    }

    /// Looked up in the spec's organization with `GET /orgs/{orgId}/groups?name=`: for a
    /// project that does not exist, `GET /groups/byName/{name}` answers 401 NOT_IN_GROUP, which
    /// cannot be told apart from missing rights (the Atlas Kubernetes operator's
    /// test/int/project_test.go). The filter is a case-insensitive prefix match
    /// (openapi-v2.yaml, getOrgGroups), so the exact name is picked from the answer.
    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let name = d.attrs["name"].as_str().unwrap_or_default();
        let org = d.attrs["org_id"].as_str().unwrap_or_default();
        let found = self.0.client.list_where(&format!("/api/atlas/v2/orgs/{}/groups", seg(org)), V2023_01_01, &[("name", name)]).await?;
        let project = found.into_iter().find(|g| g.get("name").and_then(|v| v.as_str()) == Some(name));
        if let Some(group) = project.as_ref().and_then(|g| g.get("id")).and_then(|v| v.as_str()) {
            self.0.prefetch(group, ctx.loaded).await;
        }
        Ok(project.map(|doc| observed(ctx.env, &d.address, doc)))
    }

    async fn discover(&self, _ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        // Other projects of the organization are none of this environment's business.
        Ok(Vec::new())
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let body = json!({"name": d.attrs["name"], "orgId": d.attrs["org_id"], "tags": tags_to_live(&d.attrs["tags"])});
        let name = d.attrs["name"].as_str().unwrap_or_default();
        let org = d.attrs["org_id"].as_str().unwrap_or_default();
        let lookup = || async move {
            let found =
                self.0.client.list_where(&format!("/api/atlas/v2/orgs/{}/groups", seg(org)), V2023_01_01, &[("name", name)]).await?;
            Ok(found.into_iter().find(|g| g.get("name").and_then(|v| v.as_str()) == Some(name)))
        };
        let doc = self.0.client.create("/api/atlas/v2/groups", V2023_01_01, body, lookup).await?;
        Ok(observed(ctx.env, &d.address, doc).outputs)
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        let body = json!({"name": d.attrs["name"], "tags": tags_update(&d.attrs["tags"], &o.handle, ctx.loaded)});
        let doc = self.0.client.patch(&format!("/api/atlas/v2/groups/{}", o.id), V2023_01_01, body).await?;
        Ok(observed(ctx.env, &d.address, doc).outputs)
    }

    /// Atlas keeps answering 409 CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS for a while after the
    /// last cluster is gone (terraform-provider-mongodbatlas' test logs; mongodb-mcp-server's
    /// cleanup retries it every 30 s): retried with backoff within the run's timeout.
    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let path = format!("/api/atlas/v2/groups/{}", o.id);
        let started = std::time::Instant::now();
        let mut delay = std::time::Duration::from_millis(500);
        let task = ctx.progress.spinner(format!("{address}: deleting"));
        loop {
            match self.0.client.delete_if_exists(&path, V2023_01_01).await {
                Ok(()) => {
                    task.finish();
                    return Ok(());
                }
                Err(e) if e.code() == Some("CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS") => {
                    if started.elapsed() >= ctx.options.timeout {
                        return Err(ProviderError::Timeout {
                            what: address.to_string(),
                            seconds: ctx.options.timeout.as_secs(),
                            state: "Atlas still reports active clusters".into(),
                        });
                    }
                    task.set_message(format!("{address}: Atlas still closes its clusters"));
                    tokio::time::sleep(delay.min(ctx.options.timeout.saturating_sub(started.elapsed()))).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(30));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
