//! The Atlas project: found by name, created in the spec's organization.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::client::{seg, version::V2023_01_01};
use super::{Atlas, tags_from_live, tags_to_live};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Observed, Outputs, Provider, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::AtlasSpec;

pub struct ProjectProvider(pub Arc<Atlas>);

pub fn desired(loaded: &LoadedSpec, atlas: &AtlasSpec, address: &Address) -> Desired {
    let tags = all_tags(loaded, &Default::default(), address);
    Desired::new(address.clone(), json!({"name": atlas.project, "org_id": atlas.org_id, "tags": tags}))
}

fn observed(env: &str, address: &Address, doc: Value) -> Observed {
    let id = doc.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let name = doc.get("name").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let tags = tags_from_live(doc.get("tags"));
    let ownership = ownership_from_tags(&tags, env, address);
    Observed {
        id: id.clone(),
        attrs: json!({"name": name, "org_id": doc.get("orgId").cloned().unwrap_or(Value::Null), "tags": tags}),
        outputs: Outputs::from([("id".to_string(), id), ("name".to_string(), name)]),
        ownership,
        handle: doc,
    }
}

#[async_trait]
impl Provider for ProjectProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasProject
    }

    fn replace_paths(&self) -> &'static [&'static str] {
        &["org_id"]
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let name = d.attrs["name"].as_str().unwrap_or_default();
        let doc = self.0.client.get_opt(&format!("/api/atlas/v2/groups/byName/{}", seg(name)), V2023_01_01).await?;
        Ok(doc.map(|doc| observed(ctx.env, &d.address, doc)))
    }

    async fn discover(&self, _ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        // Other projects of the organization are none of this environment's business.
        Ok(Vec::new())
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let body = json!({"name": d.attrs["name"], "orgId": d.attrs["org_id"], "tags": tags_to_live(&d.attrs["tags"])});
        let doc = self.0.client.post("/api/atlas/v2/groups", V2023_01_01, body).await?;
        Ok(observed(ctx.env, &d.address, doc).outputs)
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        let body = json!({"name": d.attrs["name"], "tags": tags_to_live(&d.attrs["tags"])});
        let doc = self.0.client.patch(&format!("/api/atlas/v2/groups/{}", o.id), V2023_01_01, body).await?;
        Ok(observed(ctx.env, &d.address, doc).outputs)
    }

    async fn delete(&self, _ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        self.0.client.delete(&format!("/api/atlas/v2/groups/{}", o.id), V2023_01_01).await?;
        Ok(())
    }
}
