//! The project IP access list. Writes are serialized per project: Atlas does not support
//! concurrent POSTs to it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::client::{seg, version::V2023_01_01};
use super::{Atlas, LANE, group_id, group_of, scope_group_id};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Ownership, Provider, Result};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::AccessListSpec;

pub struct AccessListProvider(pub Arc<Atlas>);

pub fn desired(e: &AccessListSpec, address: Address) -> Desired {
    let mut a = Map::new();
    if let Some(c) = &e.comment {
        a.insert("comment".into(), json!(c));
    }
    let mut d = Desired::new(address, Value::Object(a));
    let mut entry = Map::new();
    if let Some(c) = &e.cidr {
        entry.insert("cidrBlock".into(), json!(c));
    } else if let Some(ip) = &e.ip {
        entry.insert("ipAddress".into(), json!(ip));
    } else if let Some(sg) = &e.security_group {
        entry.insert("awsSecurityGroup".into(), json!(sg));
    }
    // Not compared (it is the key), but needed to write the entry.
    d.write_only = Value::Object(entry);
    d
}

/// The key Atlas lists an entry under: its CIDR block (single IPs come back as /32), or its
/// security group.
fn key_of(entry: &Value) -> String {
    entry
        .get("cidrBlock")
        .or_else(|| entry.get("awsSecurityGroup"))
        .and_then(|v| v.as_str())
        .map(String::from)
        .or_else(|| {
            entry
                .get("ipAddress")
                .and_then(|v| v.as_str())
                .map(|ip| if ip.contains(':') { format!("{ip}/128") } else { format!("{ip}/32") })
        })
        .unwrap_or_default()
}

fn observed(entry: &Value) -> Observed {
    let key = key_of(entry);
    let comment = entry.get("comment").and_then(|v| v.as_str()).unwrap_or("");
    let mut outputs = Outputs::from([
        ("cidr".to_string(), key.clone()),
        (
            "description".to_string(),
            format!("access-list entry {key}{}", if comment.is_empty() { String::new() } else { format!(" ({comment})") }),
        ),
    ]);
    let mut attrs = json!({"comment": comment});
    // When Atlas removes a temporary entry by itself (not compared: the spec never sets it);
    // audit reads it.
    if let Some(at) = entry.get("deleteAfterDate").and_then(|v| v.as_str()) {
        attrs["delete_after"] = json!(at);
        outputs.insert("delete_after".to_string(), at.to_string());
    }
    Observed { id: key.clone(), attrs, outputs, ownership: Ownership::NaturalKey, handle: entry.clone() }
}

impl AccessListProvider {
    pub(super) fn list_path(group: &str) -> String {
        format!("/api/atlas/v2/groups/{group}/accessList")
    }

    async fn write(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let mut entry = d.write_only.as_object().cloned().unwrap_or_default();
        if let Some(c) = d.attrs.get("comment") {
            entry.insert("comment".into(), c.clone());
        }
        let lock = self.0.lock_for(&Self::list_path(&group));
        let _guard = lock.lock().await;
        // POSTing an existing entry updates its comment.
        let entry_path = format!("{}/{}", Self::list_path(&group), seg(&d.address.name));
        let lookup = || self.0.client.get_opt(&entry_path, V2023_01_01);
        self.0.client.create(&Self::list_path(&group), V2023_01_01, json!([entry]), lookup).await?;
        self.0.forget(&Self::list_path(&group));
        Ok(Outputs::from([("cidr".to_string(), d.address.name.clone())]))
    }
}

#[async_trait]
impl Provider for AccessListProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasAccessList
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// Its list is the project's.
    fn discover_after(&self) -> &'static [Kind] {
        &[Kind::AtlasProject]
    }

    /// Atlas keeps no tags on access-list entries: nothing proves poactl made one, so `--prune` alone keeps them.
    fn prune_guard(&self, _o: &Observed) -> Option<String> {
        Some("Atlas keeps no ownership mark on access-list entries, so poactl cannot prove it made this one".to_string())
    }

    /// A VPC-only environment has no public entries: one added by hand (or left from before) is
    /// drift, and apply removes it. PrivateLink does not switch public access off by itself
    /// (../shared/atlas/PRIVATE-NETWORKING.md, "How the plan maps": clusters stay reachable
    /// "using other methods, such as public IP access list").
    /// `--temporary-access` entries are neither: they are the run's own (closed when it ends),
    /// or left from a killed one, which Atlas removes at their `deleteAfterDate` and `audit`
    /// reports.
    fn forbidden(&self, o: &Observed, loaded: &LoadedSpec) -> Option<String> {
        // A security group lets in hosts of a peered VPC only: not a public way in.
        if super::temporary_access::is_temporary(&o.handle) || o.handle.get("awsSecurityGroup").is_some() {
            return None;
        }
        let vpc_only = loaded.spec.atlas.as_ref().is_some_and(|a| !a.public_access());
        vpc_only.then(|| format!("the environment is VPC-only (`network.public_access: false`): the public entry {} goes", o.id))
    }

    fn polices(&self, loaded: &LoadedSpec) -> bool {
        loaded.spec.atlas.as_ref().is_some_and(|a| !a.public_access())
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let entries = self.0.cached_list(&Self::list_path(&group), V2023_01_01).await?;
        Ok(entries.iter().find(|e| key_of(e) == d.address.name).map(observed))
    }

    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let Some(group) = scope_group_id(ctx) else { return Ok(Vec::new()) };
        let entries = self.0.cached_list(&Self::list_path(&group), V2023_01_01).await?;
        // The entry `--temporary-access` opened for this very run is not listed, nor those
        // of the spec's peerings (the peering resource writes and removes them).
        let peered: Vec<&str> = ctx.loaded.spec.atlas.iter().flat_map(|a| a.peerings()).map(|p| p.vpc_cidr.as_str()).collect();
        Ok(entries
            .iter()
            .filter(|e| !super::temporary_access::is_own(&key_of(e)) && !peered.contains(&key_of(e).as_str()))
            .map(|e| (Address::new(Kind::AtlasAccessList, key_of(e)), observed(e)))
            .collect())
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        self.write(ctx, d).await
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, _o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        self.write(ctx, d).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let group = group_of(o, ctx)?;
        let lock = self.0.lock_for(&Self::list_path(&group));
        let _guard = lock.lock().await;
        self.0.client.delete_if_exists(&format!("{}/{}", Self::list_path(&group), seg(&address.name)), V2023_01_01).await?;
        self.0.forget(&Self::list_path(&group));
        Ok(())
    }
}
