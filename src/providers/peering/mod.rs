//! VPC peering between Atlas and the app's VPC, the alternative to PrivateLink for teams
//! that want routes rather than endpoints: one resource per Atlas region, run as one chain
//! (../shared/atlas/PRIVATE-NETWORKING.md §1.8, "PN" below; Terraform's
//! `internal/service/networkpeering/resource.go` and its AWS example, where the same chain
//! takes three resources across two providers and a `depends_on`):
//! 1. the network container of the region (`GET /containers?providerName=AWS`, else
//!    `POST /containers`). Its `atlasCidrBlock` is locked once a dedicated cluster or a
//!    peering exists, and the first dedicated cluster makes one by itself (#684), so the
//!    container comes before the clusters (the clusters depend on the peering) and a live
//!    one with another block is refused with the block it has;
//! 2. the peer (`POST /peers`), `accepterRegionName` in AWS' form (`us-east-1`, TF
//!    `resource.go:427-444`) and `awsAccountId` the VPC's owner, read from DescribeVpcs;
//! 3. its wait, to PENDING_ACCEPTANCE with a `connectionId` (`pcx-…`, not `id`: TF #56);
//! 4. `AcceptVpcPeeringConnection` in the VPC's region, by the VPC's account;
//! 5. the routes to `atlas_cidr` through the `pcx` in each of `route_tables`;
//! 6. the wait for AVAILABLE;
//! 7. the access-list entry for the VPC's block (TF's example): Atlas lets the peered VPC in
//!    through it, VPC-only or not.
//!
//! Deletion runs the other way (PN §1.8, "Delete order"): the routes, the entry, then the
//! peer (202) through TERMINATING to 404. The container stays: the clusters live in it, and
//! Atlas removes it with the project (a DELETE answers 409 CONTAINERS_IN_USE while any
//! cluster is there).

mod aws_side;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::atlas::client::version::V2023_01_01;
use super::atlas::client::{AtlasError, seg};
use super::atlas::{Atlas, LANE, group_id, scope_group_id};
use super::aws::Aws;
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Look, Observed, Outputs, Ownership, Provider, ProviderError, Result, all_tags, wait_for};
use crate::resource::{Address, Kind, TAG_ENV, TAG_ID};
use crate::spec::LoadedSpec;
use crate::spec::model::{PeeringSpec, aws_region_name, same_region};

/// What the access-list entry of a peering's VPC says; the access-list provider leaves the
/// spec's peerings' entries to this one.
pub const ENTRY_COMMENT: &str = "poactl peering";

/// The status the spec asks for.
const AVAILABLE: &str = "AVAILABLE";

pub struct PeeringProvider {
    atlas: Arc<Atlas>,
    aws: Arc<Aws>,
    /// Why a create or update would be refused, found by `observe`.
    refused: Mutex<BTreeMap<Address, String>>,
}

impl PeeringProvider {
    pub fn new(atlas: Arc<Atlas>, aws: Arc<Aws>) -> Self {
        PeeringProvider { atlas, aws, refused: Default::default() }
    }
}

pub fn desired(loaded: &LoadedSpec, p: &PeeringSpec, address: Address) -> Desired {
    let mut tables = p.route_tables.clone();
    tables.sort();
    tables.dedup();
    let attrs = json!({
        "atlas_cidr": p.atlas_cidr,
        "vpc": p.vpc,
        "vpc_cidr": p.vpc_cidr,
        "route_tables": tables,
        "access_list": true,
        "status": AVAILABLE,
    });
    let mut d = Desired::new(address.clone(), attrs);
    d.write_only = json!({"region": p.region, "vpc_region": p.vpc_region(), "tags": all_tags(loaded, &BTreeMap::new(), &address)});
    d
}

fn str_of<'v>(v: &'v Value, k: &str) -> &'v str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or_default()
}

fn groups(group: &str) -> String {
    format!("/api/atlas/v2/groups/{group}")
}

/// What observe found.
#[derive(Debug, Clone, Default)]
struct Found {
    container: Option<Value>,
    peer: Option<Value>,
    connection: Option<aws_side::Connection>,
    routed: Vec<String>,
    entry: Option<Value>,
}

impl Found {
    /// The peering as the plan compares it: on its way counts as AVAILABLE; a request nobody
    /// accepted is PENDING_ACCEPTANCE, which apply accepts.
    fn status(&self) -> String {
        let Some(peer) = &self.peer else { return "MISSING".into() };
        let aws = self.connection.as_ref().map(|c| c.state.as_str()).unwrap_or_default();
        if matches!(aws, "rejected" | "expired" | "failed" | "deleted") {
            return aws.to_ascii_uppercase();
        }
        match str_of(peer, "statusName") {
            "INITIATING" | "FINALIZING" | "AVAILABLE" => AVAILABLE.into(),
            "PENDING_ACCEPTANCE" if aws == "active" || aws == "provisioning" => AVAILABLE.into(),
            other => other.to_string(),
        }
    }

    fn observed(&self, ctx: &Ctx<'_>, address: &Address, group: &str) -> Observed {
        let peer = self.peer.clone().unwrap_or(Value::Null);
        let container = self.container.clone().unwrap_or(Value::Null);
        let attrs = json!({
            "atlas_cidr": str_of(&container, "atlasCidrBlock"),
            "vpc": str_of(&peer, "vpcId"),
            "vpc_cidr": str_of(&peer, "routeTableCidrBlock"),
            "route_tables": self.routed,
            "access_list": self.entry.is_some(),
            "status": self.status(),
        });
        let tags = self.connection.as_ref().map(|c| c.tags.clone()).unwrap_or_default();
        let ownership =
            if tags.contains_key(TAG_ID) { crate::providers::ownership_from_tags(&tags, ctx.env, address) } else { Ownership::NaturalKey };
        let connection_id = str_of(&peer, "connectionId").to_string();
        Observed {
            id: str_of(&peer, "id").to_string(),
            attrs,
            outputs: Outputs::from([
                ("container_id".to_string(), str_of(&container, "id").to_string()),
                ("peer_id".to_string(), str_of(&peer, "id").to_string()),
                ("connection_id".to_string(), connection_id.clone()),
                ("atlas_cidr".to_string(), str_of(&container, "atlasCidrBlock").to_string()),
                ("status".to_string(), str_of(&peer, "statusName").to_string()),
                ("description".to_string(), format!("VPC peering {connection_id} in {}", address.name)),
            ]),
            ownership,
            handle: json!({"groupId": group, "peer": peer, "container": container, "routed": self.routed, "entry": self.entry}),
        }
    }
}

impl PeeringProvider {
    async fn container_in(&self, group: &str, region: &str) -> Result<Option<Value>, AtlasError> {
        let list = self.atlas.client.list_where(&format!("{}/containers", groups(group)), V2023_01_01, &[("providerName", "AWS")]).await?;
        Ok(list.into_iter().find(|c| same_region(str_of(c, "regionName"), region)))
    }

    async fn peer_in(&self, group: &str, container: &str, vpc: &str) -> Result<Option<Value>, AtlasError> {
        let list = self.atlas.client.list_where(&format!("{}/peers", groups(group)), V2023_01_01, &[("providerName", "AWS")]).await?;
        Ok(list.into_iter().find(|p| str_of(p, "containerId") == container && (vpc.is_empty() || str_of(p, "vpcId") == vpc)))
    }

    async fn entry(&self, group: &str, cidr: &str) -> Result<Option<Value>, AtlasError> {
        if cidr.is_empty() {
            return Ok(None);
        }
        self.atlas.client.get_opt(&format!("{}/accessList/{}", groups(group), seg(cidr)), V2023_01_01).await
    }

    async fn find(&self, group: &str, region: &str, vpc: &str, vpc_region: &str, tables: &[String], atlas_cidr: &str) -> Result<Found> {
        let container = self.container_in(group, region).await?;
        let peer = match container.as_ref().map(|c| str_of(c, "id")) {
            Some(id) if !id.is_empty() => self.peer_in(group, id, vpc).await?,
            _ => None,
        };
        let pcx = peer.as_ref().map(|p| str_of(p, "connectionId").to_string()).unwrap_or_default();
        let ec2 = self.aws.ec2(vpc_region);
        let cidr = peer.as_ref().map(|p| str_of(p, "routeTableCidrBlock").to_string()).unwrap_or_default();
        let connection = async { if pcx.is_empty() { Ok(None) } else { aws_side::connection(&ec2, &pcx).await } };
        let (connection, (routed, _missing), entry) =
            tokio::try_join!(connection, aws_side::routed(&ec2, tables, atlas_cidr, &pcx), async { Ok(self.entry(group, &cidr).await?) })?;
        Ok(Found { container, peer, connection, routed, entry })
    }

    fn wanted(d: &Desired) -> (String, String, String, String, String, Vec<String>) {
        let tables = d.attrs["route_tables"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
        (
            str_of(&d.write_only, "region").to_string(),
            str_of(&d.write_only, "vpc_region").to_string(),
            str_of(&d.attrs, "atlas_cidr").to_string(),
            str_of(&d.attrs, "vpc").to_string(),
            str_of(&d.attrs, "vpc_cidr").to_string(),
            tables,
        )
    }

    /// Step 1: the region's container, adopted or made; one with another block is refused.
    async fn ready_container(&self, group: &str, region: &str, atlas_cidr: &str) -> Result<Value> {
        let container = match self.container_in(group, region).await? {
            Some(c) => c,
            None => {
                let body = json!({"providerName": "AWS", "regionName": region, "atlasCidrBlock": atlas_cidr});
                match self.atlas.client.post(&format!("{}/containers", groups(group)), V2023_01_01, body).await {
                    Ok(c) => c,
                    // Made meanwhile (a cluster, another run, or a lost answer): read it back.
                    Err(e) if e.status() == Some(409) => self
                        .container_in(group, region)
                        .await?
                        .ok_or_else(|| ProviderError::Api(format!("Atlas says a container exists in {region}, but does not list it")))?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let live = str_of(&container, "atlasCidrBlock");
        if live != atlas_cidr {
            return Err(ProviderError::Refused(container_refusal(region, live)));
        }
        Ok(container)
    }

    /// Steps 1 to 7, each skipped where a killed run already did it.
    async fn converge(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let (region, vpc_region, atlas_cidr, vpc, vpc_cidr, tables) = Self::wanted(d);
        let ec2 = self.aws.ec2(&vpc_region);
        let container = self.ready_container(&group, &region, &atlas_cidr).await?;
        let container_id = str_of(&container, "id").to_string();
        let peer = match self.peer_in(&group, &container_id, &vpc).await? {
            Some(p) => p,
            None => {
                let owner = aws_side::vpc(&ec2, &vpc).await?.ok_or_else(|| {
                    ProviderError::Refused(format!(
                        "the VPC {vpc} does not exist in {vpc_region} for these AWS credentials: check `vpc` and `vpc_region`"
                    ))
                })?;
                let body = json!({
                    "containerId": container_id,
                    "providerName": "AWS",
                    "awsAccountId": owner.owner,
                    "vpcId": vpc,
                    "routeTableCidrBlock": vpc_cidr,
                    "accepterRegionName": vpc_region,
                });
                let lookup = || self.peer_in(&group, &container_id, &vpc);
                self.atlas.client.create(&format!("{}/peers", groups(&group)), V2023_01_01, body, lookup).await?
            }
        };
        let peer_id = str_of(&peer, "id").to_string();
        let one = format!("{}/peers/{peer_id}", groups(&group));
        let what = format!("the VPC peering in {region}");
        // Step 3: Atlas has asked AWS (TF waits toward PENDING_ACCEPTANCE, AVAILABLE or FAILED,
        // `resource.go:261-266`), and the request is visible to the accepter.
        let (peer, pcx) = wait_for(ctx, &what, "waiting for Atlas to request it", Duration::from_secs(10), || async {
            let p = self.atlas.client.get(&one, V2023_01_01).await?;
            let status = str_of(&p, "statusName").to_string();
            if status == "FAILED" {
                return Err(ProviderError::Refused(format!("{what} FAILED ({})", str_of(&p, "errorStateName"))));
            }
            let pcx = str_of(&p, "connectionId").to_string();
            if pcx.is_empty() || !matches!(status.as_str(), "PENDING_ACCEPTANCE" | "FINALIZING" | "AVAILABLE") {
                return Ok(Look::NotYet(status));
            }
            Ok(match aws_side::connection(&ec2, &pcx).await? {
                Some(_) => Look::Ready((p, pcx)),
                None => Look::NotYet(format!("{status}, {pcx} not visible in {vpc_region} yet")),
            })
        })
        .await?;
        // Step 4: accept, then mark it poactl's.
        if aws_side::connection(&ec2, &pcx).await?.is_some_and(|c| c.state == "pending-acceptance") {
            aws_side::accept(&ec2, &pcx).await?;
        }
        let tags: BTreeMap<String, String> = crate::providers::string_map(&d.write_only["tags"]);
        aws_side::tag(&ec2, &pcx, &tags).await?;
        // Step 5: the routes.
        let (routed, missing) = aws_side::routed(&ec2, &tables, &atlas_cidr, &pcx).await?;
        if !missing.is_empty() {
            return Err(ProviderError::Refused(format!(
                "route table(s) {} do not exist in {vpc_region}: check `route_tables`",
                missing.join(", ")
            )));
        }
        for table in tables.iter().filter(|t| !routed.contains(t)) {
            aws_side::route(&ec2, table, &atlas_cidr, &pcx).await?;
        }
        // Step 6: Atlas sees the acceptance.
        let peer = if str_of(&peer, "statusName") == AVAILABLE {
            peer
        } else {
            wait_for(ctx, &what, "waiting for Atlas to finish it", Duration::from_secs(10), || async {
                let p = self.atlas.client.get(&one, V2023_01_01).await?;
                match str_of(&p, "statusName") {
                    "AVAILABLE" => Ok(Look::Ready(p)),
                    "FAILED" => Err(ProviderError::Refused(format!("{what} FAILED ({})", str_of(&p, "errorStateName")))),
                    other => Ok(Look::NotYet(other.to_string())),
                }
            })
            .await?
        };
        // Step 7: the VPC's block in the access list.
        if self.entry(&group, &vpc_cidr).await?.is_none() {
            let list = format!("{}/accessList", groups(&group));
            let lock = self.atlas.lock_for(&list);
            let _guard = lock.lock().await;
            let comment = format!("{ENTRY_COMMENT} {region} ({vpc})");
            let lookup = || self.entry(&group, &vpc_cidr);
            self.atlas.client.create(&list, V2023_01_01, json!([{"cidrBlock": vpc_cidr, "comment": comment}]), lookup).await?;
            self.atlas.forget(&list);
        }
        Ok(Outputs::from([
            ("container_id".to_string(), container_id),
            ("peer_id".to_string(), peer_id),
            ("connection_id".to_string(), pcx.clone()),
            ("atlas_cidr".to_string(), atlas_cidr),
            ("status".to_string(), str_of(&peer, "statusName").to_string()),
            ("description".to_string(), format!("VPC peering {pcx} in {region}")),
        ]))
    }
}

fn container_refusal(region: &str, live: &str) -> String {
    format!(
        "the project's AWS network container in {region} has the Atlas block {live}; Atlas locks it once a dedicated cluster or a peering exists (the first dedicated cluster makes the container): set `atlas_cidr: {live}`"
    )
}

#[async_trait]
impl Provider for PeeringProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasPeering
    }

    fn lane(&self) -> Lane {
        LANE
    }

    fn discover_after(&self) -> &'static [Kind] {
        &[Kind::AtlasProject]
    }

    /// A peer joins one VPC; Atlas cannot move it to another.
    fn replace_paths(&self) -> &'static [&'static str] {
        &["vpc"]
    }

    /// A rejected, expired or failed request cannot be accepted any more: a new one is asked.
    fn diff(&self, desired: &Desired, observed: &Observed) -> Vec<FieldChange> {
        let mut changes = crate::plan::diff::diff(&desired.attrs, &observed.attrs, self.replace_paths());
        let dead = matches!(observed.attrs["status"].as_str(), Some("REJECTED" | "EXPIRED" | "FAILED" | "DELETED"));
        for c in changes.iter_mut().filter(|c| c.path == "status" && dead) {
            c.forces_replace = true;
        }
        changes
    }

    fn create_blocked(&self, d: &Desired) -> Option<String> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).get(&d.address).cloned()
    }

    fn in_progress(&self, o: &Observed) -> Option<String> {
        let status = o.handle.pointer("/peer/statusName").and_then(|v| v.as_str())?;
        matches!(status, "INITIATING" | "FINALIZING").then(|| format!("the peering is {status}: Atlas is still setting it up"))
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let (region, vpc_region, atlas_cidr, vpc, _, tables) = Self::wanted(d);
        let found = self.find(&group, &region, &vpc, &vpc_region, &tables, &atlas_cidr).await?;
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.remove(&d.address);
        if let Some(live) = found.container.as_ref().map(|c| str_of(c, "atlasCidrBlock")).filter(|l| *l != atlas_cidr) {
            refused.insert(d.address.clone(), container_refusal(&region, live));
        }
        drop(refused);
        Ok(found.peer.is_some().then(|| found.observed(ctx, &d.address, &group)))
    }

    /// The project's peerings whose connection carries this environment's tags.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let Some(group) = scope_group_id(ctx) else { return Ok(Vec::new()) };
        let peers = self.atlas.client.list_where(&format!("{}/peers", groups(&group)), V2023_01_01, &[("providerName", "AWS")]).await?;
        let containers =
            self.atlas.client.list_where(&format!("{}/containers", groups(&group)), V2023_01_01, &[("providerName", "AWS")]).await?;
        let mut out = Vec::new();
        for peer in peers {
            let pcx = str_of(&peer, "connectionId");
            let Some(container) = containers.iter().find(|c| str_of(c, "id") == str_of(&peer, "containerId")) else { continue };
            if pcx.is_empty() {
                continue;
            }
            let region = str_of(container, "regionName").to_string();
            // Atlas answers null for a same-region peer (TF #53).
            let vpc_region = match str_of(&peer, "accepterRegionName") {
                "" => aws_region_name(&region),
                r => r.to_string(),
            };
            let Some(connection) = aws_side::connection(&self.aws.ec2(&vpc_region), pcx).await? else { continue };
            if connection.tags.get(TAG_ENV).map(String::as_str) != Some(ctx.env) {
                continue;
            }
            let Some(address) = connection.tags.get(TAG_ID).and_then(|id| Address::parse(id)).filter(|a| a.kind == Kind::AtlasPeering)
            else {
                continue;
            };
            let cidr = str_of(container, "atlasCidrBlock").to_string();
            let entry = self.entry(&group, str_of(&peer, "routeTableCidrBlock")).await?;
            let found = Found {
                container: Some(container.clone()),
                peer: Some(peer.clone()),
                connection: Some(connection),
                routed: Vec::new(),
                entry,
            };
            let mut o = found.observed(ctx, &address, &group);
            o.handle["vpc_region"] = json!(vpc_region);
            o.handle["atlas_cidr"] = json!(cidr);
            out.push((address, o));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        self.converge(ctx, d).await
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        if crate::plan::touches(changes, "vpc_cidr") {
            // Atlas routes the new block back (PATCH the peer); the old entry goes.
            let group = group_id(ctx)?;
            let peer = str_of(&o.handle["peer"], "id");
            let new = str_of(&d.attrs, "vpc_cidr");
            let body = json!({"providerName": "AWS", "containerId": str_of(&o.handle["peer"], "containerId"), "vpcId": str_of(&d.attrs, "vpc"),
                "awsAccountId": str_of(&o.handle["peer"], "awsAccountId"), "routeTableCidrBlock": new,
                "accepterRegionName": str_of(&d.write_only, "vpc_region")});
            self.atlas.client.patch(&format!("{}/peers/{peer}", groups(&group)), V2023_01_01, body).await?;
            remove_entry(&self.atlas, &group, &o.handle).await?;
        }
        self.converge(ctx, d).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let group = match str_of(&o.handle, "groupId") {
            "" => group_id(ctx)?,
            g => g.to_string(),
        };
        let spec =
            ctx.loaded.spec.atlas.as_ref().and_then(|a| a.peerings().iter().find(|p| same_region(&p.region, &address.name)).cloned());
        let vpc_region = match str_of(&o.handle, "vpc_region") {
            "" => spec.as_ref().map(|p| p.vpc_region()).unwrap_or_else(|| aws_region_name(&address.name)),
            r => r.to_string(),
        };
        let ec2 = self.aws.ec2(&vpc_region);
        let atlas_cidr = str_of(&o.handle["container"], "atlasCidrBlock").to_string();
        let pcx = str_of(&o.handle["peer"], "connectionId").to_string();
        // 1. The routes: those the spec names and those observe saw through the peering.
        let mut tables: Vec<String> = spec.map(|p| p.route_tables).unwrap_or_default();
        tables.extend(o.handle["routed"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)));
        tables.sort();
        tables.dedup();
        let (routed, _) = aws_side::routed(&ec2, &tables, &atlas_cidr, &pcx).await?;
        for table in &routed {
            aws_side::unroute(&ec2, table, &atlas_cidr).await?;
        }
        // 2. The VPC's entry, when it is the peering's.
        remove_entry(&self.atlas, &group, &o.handle).await?;
        // 3. The peer, through TERMINATING to 404.
        let peer = str_of(&o.handle["peer"], "id");
        if !peer.is_empty() {
            let path = format!("{}/peers/{peer}", groups(&group));
            self.atlas.client.delete_if_exists(&path, V2023_01_01).await?;
            wait_for(
                ctx,
                &format!("the VPC peering in {}", address.name),
                "waiting for Atlas to remove it",
                Duration::from_secs(10),
                || async {
                    Ok(match self.atlas.client.get_opt(&path, V2023_01_01).await? {
                        None => Look::Ready(()),
                        Some(p) => Look::NotYet(str_of(&p, "statusName").to_string()),
                    })
                },
            )
            .await?;
        }
        Ok(())
    }
}

/// Removes the peering's access-list entry (only one that says it is the peering's).
async fn remove_entry(atlas: &Atlas, group: &str, handle: &Value) -> Result<()> {
    let cidr = str_of(&handle["peer"], "routeTableCidrBlock");
    if cidr.is_empty() {
        return Ok(());
    }
    let list = format!("{}/accessList", groups(group));
    let path = format!("{list}/{}", seg(cidr));
    let Some(entry) = atlas.client.get_opt(&path, V2023_01_01).await? else { return Ok(()) };
    if !str_of(&entry, "comment").starts_with(ENTRY_COMMENT) {
        return Ok(());
    }
    let lock = atlas.lock_for(&list);
    let _guard = lock.lock().await;
    atlas.client.delete_if_exists(&path, V2023_01_01).await?;
    atlas.forget(&list);
    Ok(())
}
