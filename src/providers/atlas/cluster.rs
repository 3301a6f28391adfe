//! Atlas clusters: M0 (a TENANT region config on `/clusters`), Flex (`/flexClusters`) and
//! dedicated M10+ (replication specs, autoscaling, backup). Every mutating call is followed by
//! a wait for `IDLE`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::client::{Call, seg, version::*};
use super::{Atlas, LANE, group_id, group_of, scope_group_id, tags_from_live, tags_to_live, tags_update};
use crate::plan::{FieldChange, diff};
use crate::providers::{
    Ctx, Desired, Lane, Look, Observed, Outputs, Provider, ProviderError, Result, all_tags, ownership_from_tags, wait_for,
};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::{ClusterSpec, Placement, sort_placements};
use crate::spec::validate::{is_dedicated, tier_rank};

pub struct ClusterProvider(pub Arc<Atlas>);

pub(crate) const CLUSTERS: &str = "clusters";
pub(super) const FLEX: &str = "flexClusters";

pub fn desired(loaded: &LoadedSpec, c: &ClusterSpec, address: Address) -> Desired {
    let tags = all_tags(loaded, &c.tags, &address);
    let mut a = Map::new();
    a.insert("tier".into(), json!(c.tier));
    a.insert("provider".into(), json!(c.provider));
    if is_dedicated(&c.tier) {
        placement_attrs(&mut a, &c.placements());
    } else {
        a.insert("region".into(), json!(c.primary_region()));
    }
    a.insert("termination_protection".into(), json!(c.termination_protection));
    a.insert("tags".into(), json!(tags));
    if let Some(v) = &c.mongodb_version {
        a.insert("mongodb_version".into(), json!(v));
    }
    if is_dedicated(&c.tier) {
        let backup = c.backup.clone().unwrap_or_default();
        a.insert("backup".into(), json!(backup.enabled));
        a.insert("point_in_time".into(), json!(backup.point_in_time));
        let compute = c.autoscaling.as_ref().and_then(|s| s.compute.as_ref());
        a.insert(
            "autoscaling".into(),
            json!({
                "compute": match compute {
                    Some(cs) => json!({"enabled": true, "min": cs.min, "max": cs.max, "scale_down": cs.scale_down}),
                    None => json!({"enabled": false}),
                },
                "disk": c.autoscaling.as_ref().is_some_and(|s| s.disk),
            }),
        );
        if let Some(d) = c.disk_size_gb {
            a.insert("disk_size_gb".into(), json!(d));
        }
        if let Some(p) = c.paused {
            a.insert("paused".into(), json!(p));
        }
        // The project's own key, when the spec has one: Atlas' keys otherwise.
        let own_key = loaded.spec.atlas.as_ref().is_some_and(|a| a.encryption.is_some());
        a.insert("encryption_at_rest".into(), json!(if own_key { "AWS" } else { "NONE" }));
        // New dedicated clusters start at TLS 1.2 (the TestSchedule capture's POST answer);
        // poactl keeps them there unless the spec says otherwise.
        a.insert("min_tls".into(), json!(c.min_tls.as_deref().unwrap_or("1.2")));
    }
    Desired::new(address, Value::Object(a))
}

/// Where a dedicated cluster's nodes are, in the same shape for the spec and for Atlas: one
/// region holding only electable nodes is `region` and `node_count`, as it always was; any
/// other layout is `regions`, keyed by region name, so that regions match by name and never by
/// position (Atlas returns equal priorities sorted by name, descending:
/// terraform-provider-mongodbatlas #4585, #4625). Every region shares the cluster's provider.
fn placement_attrs(a: &mut Map<String, Value>, placements: &[Placement]) {
    match placements {
        [only] if only.read_only == 0 && only.analytics == 0 => {
            a.insert("region".into(), json!(only.region));
            a.insert("node_count".into(), json!(only.electable));
        }
        _ => {
            let regions: Map<String, Value> = placements
                .iter()
                .map(|p| {
                    let nodes =
                        json!({"electable": p.electable, "read_only": p.read_only, "analytics": p.analytics, "priority": p.priority});
                    (p.region.clone(), nodes)
                })
                .collect();
            a.insert("regions".into(), Value::Object(regions));
        }
    }
}

/// The placements the attributes describe, highest priority first.
fn placements_of(attrs: &Value) -> Vec<Placement> {
    let count = |v: &Value, k: &str| v.get(k).and_then(|n| n.as_u64()).unwrap_or(0) as u32;
    let mut out: Vec<Placement> = match attrs.get("regions").and_then(|r| r.as_object()) {
        Some(regions) => regions
            .iter()
            .map(|(region, v)| Placement {
                region: region.clone(),
                electable: count(v, "electable"),
                read_only: count(v, "read_only"),
                analytics: count(v, "analytics"),
                priority: count(v, "priority"),
            })
            .collect(),
        None => vec![Placement {
            region: attrs["region"].as_str().unwrap_or_default().to_string(),
            electable: attrs.get("node_count").and_then(|n| n.as_u64()).unwrap_or(3) as u32,
            read_only: 0,
            analytics: 0,
            priority: 7,
        }],
    };
    sort_placements(&mut out);
    out
}

/// The region the primary prefers.
fn primary_region(attrs: &Value) -> String {
    placements_of(attrs).into_iter().next().map(|p| p.region).unwrap_or_default()
}

/// A live cluster's region configs (the replica set's one replication spec), highest
/// priority first.
fn live_region_configs(doc: &Value) -> Vec<Value> {
    let mut configs: Vec<Value> = doc.pointer("/replicationSpecs/0/regionConfigs").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    configs.sort_by_key(|rc| std::cmp::Reverse(rc.get("priority").and_then(|v| v.as_u64()).unwrap_or(0)));
    configs
}

/// Which API a live cluster lives in.
fn api_of(o: &Observed) -> &'static str {
    if o.handle.get("_api").and_then(|v| v.as_str()) == Some(FLEX) { FLEX } else { CLUSTERS }
}

/// A live cluster (from either API) in the shape of the desired attributes.
pub fn normalize(env: &str, address: &Address, doc: &Value, api: &str) -> Observed {
    let s = |v: &Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    let name = s(doc, "name");
    let tags = tags_from_live(doc.get("tags"));
    let mut a = Map::new();
    if api == FLEX {
        let ps = doc.get("providerSettings").cloned().unwrap_or(Value::Null);
        a.insert("tier".into(), json!("FLEX"));
        a.insert("provider".into(), json!(s(&ps, "backingProviderName")));
        a.insert("region".into(), json!(s(&ps, "regionName")));
    } else {
        let configs = live_region_configs(doc);
        let rc = configs.first().cloned().unwrap_or(Value::Null);
        let provider = s(&rc, "providerName");
        if provider == "TENANT" {
            a.insert("tier".into(), json!(rc.pointer("/electableSpecs/instanceSize").and_then(|v| v.as_str()).unwrap_or("M0")));
            a.insert("provider".into(), json!(s(&rc, "backingProviderName")));
            a.insert("region".into(), json!(s(&rc, "regionName")));
        } else {
            let es = rc.get("electableSpecs").cloned().unwrap_or(Value::Null);
            a.insert("tier".into(), json!(s(&es, "instanceSize")));
            // Every region on one provider, as poactl writes them; a mix shows as drift.
            let mut providers: Vec<String> = configs.iter().map(|c| s(c, "providerName")).collect();
            providers.dedup();
            a.insert("provider".into(), json!(providers.join("+")));
            let nodes = |c: &Value, spec: &str| c.pointer(&format!("/{spec}/nodeCount")).and_then(|v| v.as_u64()).unwrap_or(0) as u32;
            let placements: Vec<Placement> = configs
                .iter()
                .map(|c| Placement {
                    region: s(c, "regionName"),
                    electable: nodes(c, "electableSpecs"),
                    read_only: nodes(c, "readOnlySpecs"),
                    analytics: nodes(c, "analyticsSpecs"),
                    priority: c.get("priority").and_then(|v| v.as_u64()).unwrap_or(0) as u32,
                })
                .collect();
            placement_attrs(&mut a, &placements);
            if let Some(d) = es.get("diskSizeGB") {
                a.insert("disk_size_gb".into(), d.clone());
            }
            let auto = rc.get("autoScaling").cloned().unwrap_or(Value::Null);
            let enabled = auto.pointer("/compute/enabled").and_then(|v| v.as_bool()).unwrap_or(false);
            a.insert(
                "autoscaling".into(),
                json!({
                    "compute": if enabled {
                        json!({"enabled": true, "min": auto.pointer("/compute/minInstanceSize"), "max": auto.pointer("/compute/maxInstanceSize"), "scale_down": auto.pointer("/compute/scaleDownEnabled").and_then(|v| v.as_bool()).unwrap_or(false)})
                    } else {
                        json!({"enabled": false})
                    },
                    "disk": auto.pointer("/diskGB/enabled").and_then(|v| v.as_bool()).unwrap_or(false),
                }),
            );
            a.insert("backup".into(), json!(doc.get("backupEnabled").and_then(|v| v.as_bool()).unwrap_or(false)));
            a.insert("point_in_time".into(), json!(doc.get("pitEnabled").and_then(|v| v.as_bool()).unwrap_or(false)));
            a.insert("paused".into(), json!(doc.get("paused").and_then(|v| v.as_bool()).unwrap_or(false)));
            a.insert("encryption_at_rest".into(), json!(s(doc, "encryptionAtRestProvider").if_empty("NONE")));
            // `advancedConfiguration.minimumEnabledTlsProtocol` ("TLS1_2"), in every 2024-08-05
            // answer for a dedicated cluster (captures/TestSchedule).
            if let Some(v) = doc.pointer("/advancedConfiguration/minimumEnabledTlsProtocol").and_then(|v| v.as_str()) {
                a.insert("min_tls".into(), json!(v.strip_prefix("TLS").unwrap_or(v).replace('_', ".")));
            }
            let effective = rc
                .pointer("/effectiveElectableSpecs/instanceSize")
                .or_else(|| doc.pointer("/effectiveReplicationSpecs/0/regionConfigs/0/electableSpecs/instanceSize"));
            if let Some(e) = effective.and_then(|v| v.as_str()) {
                a.insert("effective_tier".into(), json!(e));
            }
        }
    }
    a.insert("termination_protection".into(), json!(doc.get("terminationProtectionEnabled").and_then(|v| v.as_bool()).unwrap_or(false)));
    a.insert("tags".into(), json!(tags));
    if let Some(v) = doc.get("mongoDBMajorVersion").and_then(|v| v.as_str()) {
        a.insert("mongodb_version".into(), json!(v));
    } else if let Some(v) = doc.get("mongoDBVersion").and_then(|v| v.as_str()) {
        // Flex clusters report only the full version: compare the major part.
        let major: Vec<&str> = v.split('.').take(2).collect();
        a.insert("mongodb_version".into(), json!(major.join(".")));
    }
    let ownership = ownership_from_tags(&tags, env, address);
    let mut handle = doc.clone();
    handle["_api"] = json!(api);
    Observed { id: s(doc, "id").if_empty(&name), attrs: Value::Object(a), outputs: outputs(doc), ownership, handle }
}

trait IfEmpty {
    fn if_empty(self, other: &str) -> String;
}
impl IfEmpty for String {
    fn if_empty(self, other: &str) -> String {
        if self.is_empty() { other.to_string() } else { self }
    }
}

fn outputs(doc: &Value) -> Outputs {
    let mut o = Outputs::new();
    let tier = doc
        .pointer("/replicationSpecs/0/regionConfigs/0/electableSpecs/instanceSize")
        .and_then(|v| v.as_str())
        .or_else(|| doc.pointer("/providerSettings/providerName").and_then(|v| v.as_str()));
    if let Some(t) = tier {
        o.insert("tier".into(), t.to_string());
    }
    let backup = doc.get("backupEnabled").or_else(|| doc.pointer("/backupSettings/enabled")).and_then(|v| v.as_bool()).unwrap_or(false);
    o.insert("backup".into(), backup.to_string());
    let s = |p: &str| doc.pointer(p).and_then(|v| v.as_str()).map(String::from);
    for (k, p) in [
        ("id", "/id"),
        ("name", "/name"),
        ("srv", "/connectionStrings/standardSrv"),
        ("standard", "/connectionStrings/standard"),
        ("state", "/stateName"),
        ("mongodb_version", "/mongoDBVersion"),
        ("project_id", "/groupId"),
        ("created_at", "/createDate"),
    ] {
        if let Some(v) = s(p) {
            o.insert(k.to_string(), v);
        }
    }
    o
}

/// The private connection string through the environment's own PrivateLink endpoints: the
/// `connectionStrings.privateEndpoint[]` element whose `endpoints[].endpointId` is one of
/// them (../shared/atlas/PRIVATE-NETWORKING.md §1.1 step 7, after Terraform's example
/// `examples/mongodbatlas_privatelink_endpoint/aws/cluster/output.tf`). Another environment's
/// endpoint in the same project has its own element; none is taken by position.
fn private_srv(doc: &Value, ctx: &Ctx<'_>) -> Option<String> {
    let ours: Vec<&String> =
        ctx.outputs.iter().filter(|(a, _)| a.kind == Kind::AtlasPrivateEndpoint).filter_map(|(_, o)| o.get("endpoint_id")).collect();
    doc.pointer("/connectionStrings/privateEndpoint")?.as_array()?.iter().find_map(|e| {
        let serves_ours =
            e["endpoints"].as_array()?.iter().any(|ep| ep["endpointId"].as_str().is_some_and(|id| ours.iter().any(|o| *o == id)));
        serves_ours.then(|| e["srvConnectionString"].as_str().map(String::from)).flatten()
    })
}

/// The region configs the attributes describe, highest priority first (Atlas wants them "in
/// descending order", openapi-v2.yaml CloudRegionConfig20240805.priority). Every role in a
/// region shares the instance size and the disk size ("Every hardware specification must use
/// the same `instanceSize`"; `diskSizeGB` is equal across node types, same file).
fn region_configs(attrs: &Value, instance_size: &str, live_disk: Option<f64>) -> Vec<Value> {
    let tier = attrs["tier"].as_str().unwrap_or_default();
    let provider = attrs["provider"].as_str().unwrap_or("AWS");
    if tier == "M0" {
        let region = attrs["region"].as_str().unwrap_or_default();
        return vec![
            json!({"providerName": "TENANT", "backingProviderName": provider, "regionName": region, "priority": 7, "electableSpecs": {"instanceSize": "M0"}}),
        ];
    }
    let mut disk = attrs.get("disk_size_gb").cloned();
    // Disk autoscaling grew it: sending the spec's smaller size would shrink it back.
    if attrs["autoscaling"]["disk"] == json!(true)
        && let (Some(want), Some(live)) = (disk.as_ref().and_then(|d| d.as_f64()), live_disk)
        && live > want
    {
        disk = Some(json!(live));
    }
    let hardware = |nodes: u32| {
        let mut spec = json!({"instanceSize": instance_size, "nodeCount": nodes});
        if let Some(d) = &disk {
            spec["diskSizeGB"] = d.clone();
        }
        spec
    };
    let compute = &attrs["autoscaling"]["compute"];
    let mut auto_compute = json!({"enabled": compute["enabled"].as_bool().unwrap_or(false)});
    if compute["enabled"].as_bool() == Some(true) {
        auto_compute["scaleDownEnabled"] = compute["scale_down"].clone();
        auto_compute["minInstanceSize"] = compute["min"].clone();
        auto_compute["maxInstanceSize"] = compute["max"].clone();
    }
    let auto_scaling = json!({"compute": auto_compute, "diskGB": {"enabled": attrs["autoscaling"]["disk"].as_bool().unwrap_or(false)}});
    placements_of(attrs)
        .iter()
        .map(|p| {
            let mut rc = json!({"providerName": provider, "regionName": p.region, "priority": p.priority, "autoScaling": auto_scaling});
            if p.electable > 0 {
                rc["electableSpecs"] = hardware(p.electable);
            }
            if p.read_only > 0 {
                rc["readOnlySpecs"] = hardware(p.read_only);
            }
            if p.analytics > 0 {
                rc["analyticsSpecs"] = hardware(p.analytics);
            }
            rc
        })
        .collect()
}

fn replication_specs(attrs: &Value, instance_size: &str, live_disk: Option<f64>) -> Value {
    json!([{"zoneName": "Zone 1", "regionConfigs": region_configs(attrs, instance_size, live_disk)}])
}

/// `advancedConfiguration` with the oldest TLS version accepted: ClusterDescription20240805's
/// own field (openapi-v2.yaml ApiAtlasClusterAdvancedConfigurationView), so one POST or PATCH
/// sets it with the rest, without a separate processArgs call.
fn advanced_configuration(min_tls: &str) -> Value {
    json!({"minimumEnabledTlsProtocol": format!("TLS{}", min_tls.replace('.', "_"))})
}

/// The create body for `/clusters` (M0 and dedicated).
pub fn create_body(name: &str, attrs: &Value) -> Value {
    let tier = attrs["tier"].as_str().unwrap_or_default();
    let mut body = json!({
        "name": name,
        "clusterType": "REPLICASET",
        "replicationSpecs": replication_specs(attrs, tier, None),
        "terminationProtectionEnabled": attrs["termination_protection"],
        "tags": tags_to_live(&attrs["tags"]),
    });
    if tier != "M0" {
        body["backupEnabled"] = attrs["backup"].clone();
        body["pitEnabled"] = attrs["point_in_time"].clone();
    }
    if let Some(v) = attrs.get("min_tls").and_then(|v| v.as_str()) {
        body["advancedConfiguration"] = advanced_configuration(v);
    }
    if attrs.get("encryption_at_rest") == Some(&json!("AWS")) {
        body["encryptionAtRestProvider"] = json!("AWS");
    }
    if let Some(v) = attrs.get("mongodb_version") {
        body["mongoDBMajorVersion"] = v.clone();
    }
    body
}

impl ClusterProvider {
    fn path(group: &str, api: &str, name: &str) -> String {
        format!("/api/atlas/v2/groups/{group}/{api}/{}", seg(name))
    }

    async fn get(&self, group: &str, api: &str, name: &str) -> Result<Option<Value>> {
        let version = if api == FLEX { V2024_11_13 } else { V2024_08_05 };
        let call = Call::new(reqwest::Method::GET, Self::path(group, api, name), version).header("Use-Effective-Instance-Fields", "true");
        match self.0.client.send(&call).await {
            Ok((_, v)) => Ok(Some(v)),
            // Mid-upgrade, a Flex cluster is not on the clusters API yet: not there (yet).
            Err(e) if e.is_not_found() || e.code() == Some("CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Polls until the cluster is IDLE (and, after an upgrade, on the expected API), or gone
    /// when `gone` is set. Shows a spinner; gives up after the run's timeout.
    async fn wait(&self, ctx: &Ctx<'_>, group: &str, api: &str, name: &str, gone: bool) -> Result<Option<Value>> {
        if !ctx.options.wait {
            return self.get(group, api, name).await;
        }
        self.wait_always(ctx, group, api, name, gone).await
    }

    /// Atlas changes a cluster only when it is IDLE (a change while CREATING or UPDATING is
    /// refused with 409): before the first change, wait for IDLE whatever `--no-wait` says.
    async fn wait_until_changeable(&self, ctx: &Ctx<'_>, group: &str, api: &str, name: &str, o: &Observed) -> Result<()> {
        if o.handle.get("stateName").and_then(|v| v.as_str()) == Some("IDLE") {
            return Ok(());
        }
        self.wait_always(ctx, group, api, name, false).await.map(|_| ())
    }

    async fn wait_always(&self, ctx: &Ctx<'_>, group: &str, api: &str, name: &str, gone: bool) -> Result<Option<Value>> {
        let what = format!("atlas.clusters.{name}");
        wait_for(ctx, &what, "waiting for Atlas", Duration::from_secs(15), || async {
            let doc = self.get(group, api, name).await?;
            Ok(match doc {
                None if gone => Look::Ready(None),
                None => Look::NotYet("not found".to_string()),
                Some(d) => {
                    let state = d.get("stateName").and_then(|v| v.as_str()).unwrap_or("unknown").to_string();
                    if !gone && state == "IDLE" { Look::Ready(Some(d)) } else { Look::NotYet(state) }
                }
            })
        })
        .await
    }

    /// One PATCH, then the wait for IDLE. A 409 that says the cluster is busy (someone else
    /// changed it since it was read) waits for IDLE and tries once more.
    async fn patch(&self, ctx: &Ctx<'_>, group: &str, name: &str, body: Value) -> Result<Option<Value>> {
        let path = Self::path(group, CLUSTERS, name);
        match self.0.client.patch(&path, V2024_10_23, body.clone()).await {
            Err(e) if e.status() == Some(409) && !is_refusal(&e) => {
                self.wait_always(ctx, group, CLUSTERS, name, false).await?;
                self.0.client.patch(&path, V2024_10_23, body).await.map_err(refine)?;
            }
            other => {
                other.map_err(refine)?;
            }
        }
        self.wait(ctx, group, CLUSTERS, name, false).await
    }

    fn finish(&self, ctx: &Ctx<'_>, address: &Address, doc: Option<Value>, api: &str) -> Outputs {
        self.0.forget(&format!(
            "/api/atlas/v2/groups/{}/{api}",
            doc.as_ref().and_then(|d| d.get("groupId")).and_then(|v| v.as_str()).unwrap_or_default()
        ));
        let Some(doc) = doc else { return Outputs::new() };
        let mut outputs = normalize(ctx.env, address, &doc, api).outputs;
        if let Some(srv) = private_srv(&doc, ctx) {
            outputs.insert("private_srv".into(), srv);
        }
        outputs
    }
}

/// "You cannot remove the Highest Priority region" (https://docs.atlas.mongodb.com/workload-isolation/,
/// ../shared/atlas/PRIVATE-NETWORKING.md §4): in a change that involves several regions, the
/// live priority-7 region must stay in the spec, at a lower priority, until another region has
/// taken over. A single-region cluster moving to another region is a plain move.
fn removes_highest_priority_region(d: &Desired, o: &Observed) -> Option<String> {
    let several = d.attrs.get("regions").is_some() || o.attrs.get("regions").is_some();
    let dedicated = |a: &Value| is_dedicated(a["tier"].as_str().unwrap_or_default());
    if !several || !dedicated(&d.attrs) || !dedicated(&o.attrs) {
        return None;
    }
    let live_top = placements_of(&o.attrs).into_iter().next().filter(|p| p.priority == 7)?;
    let wanted = placements_of(&d.attrs);
    let new_top = wanted.first().map(|p| p.region.clone()).unwrap_or_default();
    (!wanted.iter().any(|p| p.region == live_top.region)).then(|| {
        format!(
            "Atlas cannot remove {} while it is the highest-priority region. Apply in two steps: first keep {} in `regions` at a lower priority (or as read-only nodes) with {new_top} at priority 7, then remove it",
            live_top.region, live_top.region
        )
    })
}

/// Errors that mean "not in this state", not "busy": waiting does not help them.
fn is_refusal(e: &super::client::AtlasError) -> bool {
    matches!(e.code(), Some("CANNOT_UPDATE_PAUSED_CLUSTER" | "CANNOT_PAUSE_RECENTLY_RESUMED_CLUSTER" | "DUPLICATE_CLUSTER_NAME"))
}

/// Clearer words for the errors a user can act on.
fn refine(e: super::client::AtlasError) -> ProviderError {
    match e.code() {
        Some("CANNOT_TERMINATE_CLUSTER_WHEN_TERMINATION_PROTECTION_ENABLED") => ProviderError::Refused(
            "the cluster has termination protection on: set `termination_protection: false` in the spec and apply, then delete it"
                .to_string(),
        ),
        Some("CANNOT_CREATE_FREE_CLUSTER_VIA_PUBLIC_API") => {
            ProviderError::Refused(format!("Atlas refused the M0 cluster (one free cluster per project): {e}"))
        }
        Some("DUPLICATE_CLUSTER_NAME") => {
            ProviderError::Refused(format!("a cluster with this name already exists (possibly being deleted): {e}"))
        }
        Some("CANNOT_UPDATE_PAUSED_CLUSTER") => {
            ProviderError::Refused(format!("the cluster is paused; set `paused: false` to change it: {e}"))
        }
        Some("CANNOT_PAUSE_RECENTLY_RESUMED_CLUSTER") => ProviderError::Refused(format!(
            "Atlas does not pause a cluster within about 60 minutes of resuming it; the other changes are applied, run apply again later to pause it: {e}"
        )),
        _ => e.into(),
    }
}

#[async_trait]
impl Provider for ClusterProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasCluster
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// A cluster's read waits for the environment's PrivateLink endpoints (its references):
    /// its private connection string is picked by their endpoint ids.
    fn reads_after_references(&self) -> bool {
        true
    }

    /// Its list is the project's.
    fn discover_after(&self) -> &'static [Kind] {
        &[Kind::AtlasProject]
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let name = &d.address.name;
        let clusters = self.0.cached_list(&format!("/api/atlas/v2/groups/{group}/{CLUSTERS}"), V2024_08_05).await?;
        if let Some(doc) = clusters.iter().find(|c| c.get("name").and_then(|v| v.as_str()) == Some(name)) {
            // Flex clusters may also show in the clusters list on some API versions.
            let provider = doc.pointer("/replicationSpecs/0/regionConfigs/0/providerName").and_then(|v| v.as_str());
            if provider != Some("FLEX") {
                let mut o = normalize(ctx.env, &d.address, doc, CLUSTERS);
                if let Some(srv) = private_srv(doc, ctx) {
                    o.outputs.insert("private_srv".into(), srv);
                }
                return Ok(Some(o));
            }
        }
        let flex = self.0.cached_list(&format!("/api/atlas/v2/groups/{group}/{FLEX}"), V2024_11_13).await?;
        Ok(flex.iter().find(|c| c.get("name").and_then(|v| v.as_str()) == Some(name)).map(|doc| normalize(ctx.env, &d.address, doc, FLEX)))
    }

    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let Some(group) = scope_group_id(ctx) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for (api, version) in [(CLUSTERS, V2024_08_05), (FLEX, V2024_11_13)] {
            for doc in self.0.cached_list(&format!("/api/atlas/v2/groups/{group}/{api}"), version).await?.iter() {
                let name = doc.get("name").and_then(|v| v.as_str()).unwrap_or_default();
                if api == CLUSTERS
                    && doc.pointer("/replicationSpecs/0/regionConfigs/0/providerName").and_then(|v| v.as_str()) == Some("FLEX")
                {
                    continue;
                }
                let address = Address::new(Kind::AtlasCluster, name);
                let mut o = normalize(ctx.env, &address, doc, api);
                let tier = o.attrs["tier"].as_str().unwrap_or_default().to_string();
                o.outputs.insert(
                    "description".into(),
                    format!("{tier} cluster {name}, {}", o.outputs.get("state").cloned().unwrap_or_default()),
                );
                out.push((address, o));
            }
        }
        Ok(out)
    }

    /// Tier moves Atlas cannot make in place are replacements; with compute autoscaling, a
    /// live size inside the range is Atlas doing its job, not drift.
    fn diff(&self, d: &Desired, o: &Observed) -> Vec<FieldChange> {
        let mut live = o.attrs.clone();
        let want_tier = d.attrs["tier"].as_str().unwrap_or_default();
        let live_tier = live["tier"].as_str().unwrap_or_default().to_string();
        let compute = &d.attrs["autoscaling"]["compute"];
        if compute["enabled"].as_bool() == Some(true) && is_dedicated(&live_tier) {
            let (lo, hi) = (compute["min"].as_str().and_then(tier_rank), compute["max"].as_str().and_then(tier_rank));
            let effective = live.get("effective_tier").and_then(|v| v.as_str()).unwrap_or(&live_tier).to_string();
            let in_range = |t: &str| matches!((lo, hi, tier_rank(t)), (Some(lo), Some(hi), Some(r)) if r >= lo && r <= hi);
            if in_range(&live_tier) && in_range(&effective) {
                live["tier"] = json!(want_tier);
            }
        }
        // With disk autoscaling on, Atlas grows the disk past the spec's size: a live disk at
        // least as large is Atlas doing its job, not drift.
        if d.attrs["autoscaling"]["disk"] == json!(true)
            && let (Some(want), Some(have)) =
                (d.attrs.get("disk_size_gb").and_then(|v| v.as_f64()), live.get("disk_size_gb").and_then(|v| v.as_f64()))
            && have >= want
        {
            live["disk_size_gb"] = json!(want);
        }
        let mut changes = diff::diff_closed(&d.attrs, &live, &[], self.closed_maps());
        let shared = |t: &str| t == "M0" || t == "FLEX";
        for c in &mut changes {
            c.forces_replace = match c.path.as_str() {
                // M0 -> Flex, M0 -> dedicated and Flex -> dedicated are upgrades in place
                // ("Upgrades a shared-tier cluster to a Flex or Dedicated (M10+) cluster",
                // openapi-v2.yaml, upgradeGroupClusterTenantUpgrade). Down to a shared tier,
                // or Flex -> M0, Atlas has no path.
                "tier" => {
                    let upgrade = (live_tier == "M0" && want_tier == "FLEX") || (shared(&live_tier) && is_dedicated(want_tier));
                    !upgrade && (shared(want_tier) || shared(&live_tier))
                }
                "provider" | "region" => shared(want_tier) || shared(&live_tier),
                _ => false,
            };
        }
        changes
    }

    /// Atlas refuses every change to a paused cluster but `paused: false` (terraform provider
    /// advancedcluster resource_test.go expects CANNOT_UPDATE_PAUSED_CLUSTER), and resuming it
    /// just to change something would leave it running: it could not be paused again for about
    /// 60 minutes (CANNOT_PAUSE_RECENTLY_RESUMED_CLUSTER, same test file).
    fn blocked(&self, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Option<String> {
        let live_paused = o.attrs.get("paused") == Some(&json!(true));
        let resumes = d.attrs.get("paused") == Some(&json!(false));
        let other: Vec<&str> = changes.iter().map(|c| c.path.as_str()).filter(|p| *p != "paused").collect();
        if live_paused && !resumes && !other.is_empty() {
            return Some(format!(
                "the cluster is paused, and Atlas changes a paused cluster only to resume it ({} would change). Set `paused: false` to resume it and apply the change (it then cannot be paused again for about 60 minutes), or leave the spec as the cluster is",
                other.join(", ")
            ));
        }
        removes_highest_priority_region(d, o)
    }

    fn notes(&self, d: &Desired, o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(eff) = o.attrs.get("effective_tier").and_then(|v| v.as_str())
            && Some(eff) != d.attrs["tier"].as_str()
            && d.attrs["autoscaling"]["compute"]["enabled"] == json!(true)
        {
            notes.push(format!(
                "autoscaled to {eff} (within {}..{}): not drift",
                d.attrs["autoscaling"]["compute"]["min"].as_str().unwrap_or("?"),
                d.attrs["autoscaling"]["compute"]["max"].as_str().unwrap_or("?")
            ));
        }
        notes
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let name = &d.address.name;
        let tier = d.attrs["tier"].as_str().unwrap_or_default();
        if tier == "FLEX" {
            let body = json!({
                "name": name,
                "providerSettings": {"backingProviderName": d.attrs["provider"], "regionName": primary_region(&d.attrs)},
                "terminationProtectionEnabled": d.attrs["termination_protection"],
                "tags": tags_to_live(&d.attrs["tags"]),
            });
            let path = Self::path(&group, FLEX, name);
            let lookup = || self.0.client.get_opt(&path, V2024_11_13);
            self.0.client.create(&format!("/api/atlas/v2/groups/{group}/{FLEX}"), V2024_11_13, body, lookup).await.map_err(refine)?;
            let doc = self.wait(ctx, &group, FLEX, name, false).await?;
            return Ok(self.finish(ctx, &d.address, doc, FLEX));
        }
        let path = Self::path(&group, CLUSTERS, name);
        let lookup = || self.0.client.get_opt(&path, V2024_08_05);
        self.0
            .client
            .create(&format!("/api/atlas/v2/groups/{group}/{CLUSTERS}"), V2024_10_23, create_body(name, &d.attrs), lookup)
            .await
            .map_err(refine)?;
        let mut doc = self.wait(ctx, &group, CLUSTERS, name, false).await?;
        if d.attrs.get("paused") == Some(&json!(true)) {
            doc = self.patch(ctx, &group, name, json!({"paused": true})).await?;
        }
        Ok(self.finish(ctx, &d.address, doc, CLUSTERS))
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let name = &d.address.name;
        let want_tier = d.attrs["tier"].as_str().unwrap_or_default().to_string();
        let live_tier = o.attrs["tier"].as_str().unwrap_or_default().to_string();
        let changed = |p: &str| crate::plan::touches(changes, p);
        let api = api_of(o);

        self.wait_until_changeable(ctx, &group, api, name, o).await?;
        if api == FLEX && want_tier == "FLEX" {
            let body = json!({"terminationProtectionEnabled": d.attrs["termination_protection"], "tags": tags_update(&d.attrs["tags"], &o.handle, ctx.loaded)});
            self.0.client.patch(&Self::path(&group, FLEX, name), V2024_11_13, body).await.map_err(refine)?;
            let doc = self.wait(ctx, &group, FLEX, name, false).await?;
            return Ok(self.finish(ctx, &d.address, doc, FLEX));
        }

        // Shared -> bigger tiers have their own endpoints.
        if live_tier == "M0" && want_tier == "FLEX" {
            let body = json!({
                "name": name,
                "providerSettings": {"providerName": "FLEX", "instanceSizeName": "FLEX", "backingProviderName": d.attrs["provider"], "regionName": primary_region(&d.attrs)},
            });
            self.0.client.post(&format!("/api/atlas/v2/groups/{group}/clusters/tenantUpgrade"), V2023_01_01, body).await.map_err(refine)?;
            // The cluster now lives on the Flex API, with a new id; its tags and protection
            // follow from the Flex PATCH.
            self.wait_on(ctx, &group, FLEX, name).await?;
            let body = json!({"terminationProtectionEnabled": d.attrs["termination_protection"], "tags": tags_to_live(&d.attrs["tags"])});
            self.0.client.patch(&Self::path(&group, FLEX, name), V2024_11_13, body).await.map_err(refine)?;
            let doc = self.wait(ctx, &group, FLEX, name, false).await?;
            return Ok(self.finish(ctx, &d.address, doc, FLEX));
        }
        if live_tier == "M0" && is_dedicated(&want_tier) {
            let body = json!({
                "name": name,
                "providerSettings": {"providerName": d.attrs["provider"], "instanceSizeName": want_tier, "regionName": primary_region(&d.attrs)},
            });
            self.0.client.post(&format!("/api/atlas/v2/groups/{group}/clusters/tenantUpgrade"), V2023_01_01, body).await.map_err(refine)?;
            self.wait_dedicated(ctx, &group, name).await?;
        } else if api == FLEX && is_dedicated(&want_tier) {
            let mut body = create_body(name, &d.attrs);
            body.as_object_mut().map(|b| b.remove("tags"));
            self.0
                .client
                .post(&format!("/api/atlas/v2/groups/{group}/flexClusters:tenantUpgrade"), V2024_11_13, body)
                .await
                .map_err(refine)?;
            self.wait_dedicated(ctx, &group, name).await?;
        }
        let upgraded = (live_tier == "M0" || api == FLEX) && is_dedicated(&want_tier);

        // `paused: false` goes alone, before anything else. A paused cluster with other changes
        // and no `paused: false` never gets here: the plan shows it as a conflict (`blocked`).
        let live_paused = o.attrs.get("paused") == Some(&json!(true));
        let want_paused = d.attrs.get("paused") == Some(&json!(true));
        if live_paused && d.attrs.get("paused") == Some(&json!(false)) {
            self.patch(ctx, &group, name, json!({"paused": false})).await?;
        }
        let live_disk = o.attrs.get("disk_size_gb").and_then(|v| v.as_f64());

        let mut body = Map::new();
        if upgraded || ["tier", "provider", "region", "regions", "node_count", "disk_size_gb", "autoscaling"].iter().any(|p| changed(p)) {
            // With compute autoscaling on, keep the size Atlas chose: sending the spec's tier
            // would undo a scale-up.
            let mut size = want_tier.clone();
            if d.attrs["autoscaling"]["compute"]["enabled"] == json!(true) && !changed("tier") && is_dedicated(&live_tier) {
                size = o.attrs.get("effective_tier").and_then(|v| v.as_str()).unwrap_or(&live_tier).to_string();
            }
            if want_tier != "M0" {
                body.insert("replicationSpecs".into(), replication_specs(&d.attrs, &size, live_disk));
            }
        }
        for (attr, field) in [
            ("backup", "backupEnabled"),
            ("point_in_time", "pitEnabled"),
            ("mongodb_version", "mongoDBMajorVersion"),
            ("termination_protection", "terminationProtectionEnabled"),
            ("encryption_at_rest", "encryptionAtRestProvider"),
        ] {
            if (changed(attr) || (upgraded && d.attrs.get(attr).is_some())) && d.attrs.get(attr).is_some() {
                body.insert(field.into(), d.attrs[attr].clone());
            }
        }
        if changed("tags") || upgraded {
            body.insert("tags".into(), tags_update(&d.attrs["tags"], &o.handle, ctx.loaded));
        }
        if (changed("min_tls") || upgraded)
            && let Some(v) = d.attrs.get("min_tls").and_then(|v| v.as_str())
        {
            body.insert("advancedConfiguration".into(), advanced_configuration(v));
        }
        let mut doc = None;
        if !body.is_empty() {
            doc = self.patch(ctx, &group, name, Value::Object(body)).await?;
        }
        if want_paused && !live_paused {
            doc = self.patch(ctx, &group, name, json!({"paused": true})).await?;
        }
        if doc.is_none() {
            doc = self.get(&group, CLUSTERS, name).await?;
        }
        Ok(self.finish(ctx, &d.address, doc, CLUSTERS))
    }

    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let group = group_of(o, ctx)?;
        let api = api_of(o);
        let version = if api == FLEX { V2024_11_13 } else { V2023_02_01 };
        match self.0.client.delete(&Self::path(&group, api, &address.name), version).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(refine(e)),
        }
        self.wait(ctx, &group, api, &address.name, true).await?;
        self.0.forget(&format!("/api/atlas/v2/groups/{group}/{api}"));
        Ok(())
    }
}

impl ClusterProvider {
    /// Waits until a cluster shows up IDLE on `api` (after an M0 -> Flex upgrade it moves there).
    async fn wait_on(&self, ctx: &Ctx<'_>, group: &str, api: &str, name: &str) -> Result<()> {
        let what = format!("the upgrade of atlas.clusters.{name}");
        wait_for(ctx, &what, "waiting for Atlas", Duration::from_secs(2), || async {
            let idle = self.get(group, api, name).await?.is_some_and(|d| d.get("stateName").and_then(|v| v.as_str()) == Some("IDLE"));
            Ok(if idle { Look::Ready(()) } else { Look::NotYet(format!("not IDLE on the {api} API yet")) })
        })
        .await
    }

    /// After a tenant upgrade Atlas briefly reports the old tier as IDLE: wait until the
    /// cluster is IDLE on a dedicated provider.
    async fn wait_dedicated(&self, ctx: &Ctx<'_>, group: &str, name: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            let doc = self.wait(ctx, group, CLUSTERS, name, false).await?;
            let provider = doc
                .as_ref()
                .and_then(|d| d.pointer("/replicationSpecs/0/regionConfigs/0/providerName"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            if provider != "TENANT" && provider != "FLEX" {
                return Ok(());
            }
            if !ctx.options.wait || started.elapsed() >= ctx.options.timeout {
                return Err(ProviderError::Timeout {
                    what: format!("the upgrade of atlas.clusters.{name}"),
                    seconds: ctx.options.timeout.as_secs(),
                    state: "still a shared-tier cluster".into(),
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
