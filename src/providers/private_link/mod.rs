//! Atlas PrivateLink with AWS, as one resource per Atlas region: Atlas' endpoint service,
//! the AWS interface endpoint in the app's VPC with its security group, and the registration
//! that joins them. poactl holds both clouds, so one apply runs the whole chain in order with
//! its waits, where Terraform needs two providers and the Atlas operator waits for "human
//! action" (../shared/atlas/PRIVATE-NETWORKING.md, "PN §" below, §1.6).
//!
//! The chain (PN §1.1, Terraform's and the operator's waits together):
//! 1. the endpoint service (`POST …/privateEndpoint/endpointService`), adopted when the project
//!    already has one in the region: Atlas allows one per provider and region and answers a
//!    second with 409 PRIVATE_ENDPOINT_SERVICE_ALREADY_EXISTS_FOR_REGION (#3422, #590, #1872),
//!    so poactl looks first, as the operator does (`privateendpoint.go:204-226`);
//! 2. its wait, to WAITING_FOR_USER or AVAILABLE with an `endpointServiceName`;
//! 3. the security group (TCP 1024-65535 from `allow_from`) and the interface endpoint,
//!    `PrivateDnsEnabled=false`, both with poactl's ownership tags;
//! 4. the registration (`POST …/endpointService/{id}/endpoint {id: vpce}`) and its wait,
//!    PENDING_ACCEPTANCE → PENDING → AVAILABLE;
//! 5. the wait until every cluster of the project is IDLE again: the private strings appear
//!    only then (#2782, #481).
//!
//! Deletion runs the other way (PN §1.4): the registration (to 404, clusters IDLE), the AWS
//! endpoint, the security group, then the service once no endpoint is left in it, a 404
//! there meaning Atlas removed it with its last endpoint. Each step looks before it acts, so
//! a run killed halfway is finished by the next one.

mod aws_side;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use self::aws_side::{Endpoint, Group, NewEndpoint};
use super::atlas::client::AtlasError;
use super::atlas::client::version::{V2023_01_01, V2024_08_05};
use super::atlas::{Atlas, LANE, group_id, scope_group_id};
use super::aws::Aws;
use crate::plan::FieldChange;
use crate::providers::{
    Ctx, Desired, Lane, Look, Observed, Outputs, Provider, ProviderError, Result, all_tags, keep_owned_tags, ownership_from_tags,
    string_map, wait_for,
};
use crate::resource::{Address, Kind, TAG_ID};
use crate::spec::LoadedSpec;
use crate::spec::model::{AtlasSpec, PrivateEndpointSpec, aws_region_name, same_region};

pub struct PrivateEndpointProvider {
    atlas: Arc<Atlas>,
    aws: Arc<Aws>,
    /// Why a create would be refused, found by `observe` (a service Atlas is deleting).
    refused: Mutex<BTreeMap<Address, String>>,
}

impl PrivateEndpointProvider {
    pub fn new(atlas: Arc<Atlas>, aws: Arc<Aws>) -> Self {
        PrivateEndpointProvider { atlas, aws, refused: Default::default() }
    }
}

/// The status the spec asks for: the connection accepted. Pending ones count as on their way.
const AVAILABLE: &str = "AVAILABLE";
/// The AWS endpoint exists but Atlas does not know it (a run killed before the registration).
const NOT_REGISTERED: &str = "NOT_REGISTERED";

pub fn desired(loaded: &LoadedSpec, _atlas: &AtlasSpec, e: &PrivateEndpointSpec, address: Address) -> Desired {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v
    };
    let attrs = json!({
        "vpc": e.vpc,
        "subnets": sorted(&e.subnets),
        "allow_from": sorted(&e.allow_from),
        "other_ingress": [],
        "own_security_group": true,
        "other_security_groups": [],
        "status": AVAILABLE,
        "tags": all_tags(loaded, &BTreeMap::new(), &address),
    });
    let mut d = Desired::new(address, attrs);
    d.write_only = json!({"region": e.region, "aws_region": e.aws_region()});
    d
}

fn services_path(group: &str) -> String {
    format!("/api/atlas/v2/groups/{group}/privateEndpoint/AWS/endpointService")
}

fn str_of<'v>(v: &'v Value, k: &str) -> &'v str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or_default()
}

/// What observe found, kept in the handle for update and delete.
#[derive(Debug, Clone, Default)]
struct Found {
    group: String,
    region: String,
    service: Option<Value>,
    endpoint: Option<Endpoint>,
    security_group: Option<Group>,
    registration: Option<Value>,
    /// The spec's VPC's blocks (not compared: audit reads them).
    vpc_cidrs: Vec<String>,
}

impl Found {
    fn service_id(&self) -> Option<String> {
        self.service.as_ref().map(|s| str_of(s, "id").to_string()).filter(|s| !s.is_empty())
    }

    /// The connection as the plan compares it: pending ones are on their way to AVAILABLE.
    fn status(&self) -> String {
        let aws_state = self.endpoint.as_ref().map(|e| e.state.to_ascii_lowercase()).unwrap_or_default();
        if aws_state == "rejected" || aws_state == "failed" {
            return aws_state.to_ascii_uppercase();
        }
        let Some(r) = &self.registration else { return NOT_REGISTERED.to_string() };
        match str_of(r, "connectionStatus") {
            "PENDING_ACCEPTANCE" | "PENDING" | "AVAILABLE" if str_of(r, "errorMessage").is_empty() => AVAILABLE.to_string(),
            "PENDING_ACCEPTANCE" | "PENDING" | "AVAILABLE" => "FAILED".to_string(),
            other => other.to_string(),
        }
    }

    fn observed(&self, ctx: &Ctx<'_>, address: &Address) -> Observed {
        let e = self.endpoint.clone().unwrap_or_else(|| Endpoint {
            id: String::new(),
            vpc: String::new(),
            service_name: String::new(),
            state: String::new(),
            subnets: Vec::new(),
            groups: Vec::new(),
            tags: self.security_group.as_ref().map(|g| g.tags.clone()).unwrap_or_default(),
        });
        let own = self.security_group.as_ref().map(|g| g.id.clone()).unwrap_or_default();
        let others: Vec<&String> = e.groups.iter().filter(|g| **g != own).collect();
        let mut attrs = json!({
            "vpc": e.vpc,
            "subnets": e.subnets,
            "allow_from": self.security_group.as_ref().map(|g| g.allowed.clone()).unwrap_or_default(),
            "other_ingress": self.security_group.as_ref().map(|g| g.other_rules.clone()).unwrap_or_default(),
            "own_security_group": !own.is_empty() && e.groups.contains(&own),
            "other_security_groups": others,
            "status": self.status(),
            "tags": e.tags,
            "vpc_cidrs": self.vpc_cidrs,
        });
        keep_owned_tags(&mut attrs, ctx.loaded);
        let raw_status = self.registration.as_ref().map(|r| str_of(r, "connectionStatus").to_string()).unwrap_or(NOT_REGISTERED.into());
        let outputs = Outputs::from([
            ("endpoint_id".to_string(), e.id.clone()),
            ("service_id".to_string(), self.service_id().unwrap_or_default()),
            ("service_name".to_string(), self.service.as_ref().map(|s| str_of(s, "endpointServiceName").to_string()).unwrap_or_default()),
            ("security_group".to_string(), own.clone()),
            ("status".to_string(), raw_status),
            ("description".to_string(), format!("PrivateLink endpoint {} in {}", e.id, self.region)),
        ]);
        let handle = json!({
            "groupId": self.group,
            "region": self.region,
            "service": self.service,
            "vpce": e.id,
            "vpce_state": e.state,
            "security_group": own,
            "registration": self.registration,
        });
        Observed { id: e.id.clone(), attrs, outputs, ownership: ownership_from_tags(&e.tags, ctx.env, address), handle }
    }
}

impl PrivateEndpointProvider {
    async fn service_in(&self, group: &str, region: &str) -> Result<Option<Value>> {
        let list = self.atlas.client.get(&services_path(group), V2023_01_01).await?;
        Ok(list.as_array().and_then(|items| items.iter().find(|s| same_region(str_of(s, "regionName"), region)).cloned()))
    }

    async fn registration(&self, group: &str, service: &str, vpce: &str) -> Result<Option<Value>, AtlasError> {
        self.atlas.client.get_opt(&format!("{}/{service}/endpoint/{vpce}", services_path(group)), V2023_01_01).await
    }

    async fn find(&self, ctx: &Ctx<'_>, group: &str, address: &Address) -> Result<Found> {
        let region = address.name.clone();
        let ec2 = self.aws.ec2(&aws_region_name(&region));
        let id = address.to_string();
        let spec_vpc = ctx
            .loaded
            .spec
            .atlas
            .as_ref()
            .and_then(|a| a.private_endpoints().iter().find(|e| same_region(&e.region, &region)))
            .map(|e| e.vpc.clone())
            .unwrap_or_default();
        let (service, endpoint, security_group, vpc_cidrs) = tokio::try_join!(
            self.service_in(group, &region),
            aws_side::find_endpoint(&ec2, ctx.env, &id),
            aws_side::find_group(&ec2, ctx.env, &id),
            aws_side::vpc_cidrs(&ec2, &spec_vpc),
        )?;
        let registration = match (service.as_ref().map(|s| str_of(s, "id")), &endpoint) {
            (Some(sid), Some(e)) if !sid.is_empty() => self.registration(group, sid, &e.id).await?,
            _ => None,
        };
        Ok(Found { group: group.to_string(), region, service, endpoint, security_group, registration, vpc_cidrs })
    }

    /// Step 1 and 2: the region's service, adopted or made, once Atlas has its AWS name.
    async fn ready_service(&self, ctx: &Ctx<'_>, group: &str, region: &str) -> Result<Value> {
        let service = match self.service_in(group, region).await? {
            Some(s) => s,
            None => {
                let body = json!({"providerName": "AWS", "region": region});
                match self
                    .atlas
                    .client
                    .post(&format!("/api/atlas/v2/groups/{group}/privateEndpoint/endpointService"), V2023_01_01, body)
                    .await
                {
                    Ok(s) => s,
                    // Made meanwhile (another run, or an answer lost): adopt it.
                    Err(e) if e.code() == Some("PRIVATE_ENDPOINT_SERVICE_ALREADY_EXISTS_FOR_REGION") => self
                        .service_in(group, region)
                        .await?
                        .ok_or_else(|| ProviderError::Api(format!("Atlas says a service exists in {region}, but does not list it")))?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let id = str_of(&service, "id").to_string();
        let path = format!("{}/{id}", services_path(group));
        let what = format!("Atlas' endpoint service in {region}");
        wait_for(ctx, &what, "waiting for Atlas to make it", Duration::from_secs(15), || async {
            let s = self.atlas.client.get(&path, V2023_01_01).await?;
            let status = str_of(&s, "status");
            let error = str_of(&s, "errorMessage");
            if status == "FAILED" || !error.is_empty() {
                return Err(ProviderError::Refused(format!("{what} is {status}: {error}")));
            }
            // TF's targets (privatelinkendpoint/resource.go:136-139); the AWS name is null until
            // the service exists on AWS' side.
            let ready = matches!(status, "WAITING_FOR_USER" | "AVAILABLE") && !str_of(&s, "endpointServiceName").is_empty();
            Ok(if ready { Look::Ready(s) } else { Look::NotYet(status.to_string()) })
        })
        .await
    }

    /// Step 4 and 5: the registration, its acceptance, and the clusters settling.
    async fn register(&self, ctx: &Ctx<'_>, group: &str, service: &str, vpce: &str) -> Result<Value> {
        let path = format!("{}/{service}/endpoint", services_path(group));
        if self.registration(group, service, vpce).await?.is_none() {
            // A repeat after a lost answer looks for the registration first.
            let lookup = || self.registration(group, service, vpce);
            self.atlas.client.create(&path, V2023_01_01, json!({"id": vpce}), lookup).await?;
        }
        let what = format!("the PrivateLink connection {vpce}");
        let one = format!("{path}/{vpce}");
        let accepted = wait_for(ctx, &what, "waiting for Atlas to accept it", Duration::from_secs(10), || async {
            let r = self.atlas.client.get(&one, V2023_01_01).await?;
            let status = str_of(&r, "connectionStatus").to_string();
            let error = str_of(&r, "errorMessage");
            match status.as_str() {
                "AVAILABLE" => Ok(Look::Ready(r)),
                "REJECTED" | "DELETING" => Err(ProviderError::Refused(format!(
                    "Atlas {} {vpce}{}",
                    if status == "REJECTED" { "rejected" } else { "is deleting" },
                    if error.is_empty() { String::new() } else { format!(": {error}") }
                ))),
                _ if !error.is_empty() => Err(ProviderError::Refused(format!("{what} failed: {error}"))),
                _ => Ok(Look::NotYet(status)),
            }
        })
        .await?;
        self.clusters_idle(ctx, group).await?;
        Ok(accepted)
    }

    /// Registering or removing an endpoint reconfigures every cluster of the project (PN §1.1
    /// step 6; TF waits for them "to ensure the latest connection strings can be retrieved").
    async fn clusters_idle(&self, ctx: &Ctx<'_>, group: &str) -> Result<()> {
        let path = format!("/api/atlas/v2/groups/{group}/clusters");
        wait_for(ctx, "the project's clusters", "waiting for them to take the endpoint", Duration::from_secs(15), || async {
            let clusters = self.atlas.client.list(&path, V2024_08_05).await?;
            let busy: Vec<String> = clusters
                .iter()
                .filter(|c| str_of(c, "stateName") != "IDLE")
                .map(|c| format!("{} {}", str_of(c, "name"), str_of(c, "stateName")))
                .collect();
            Ok(if busy.is_empty() { Look::Ready(()) } else { Look::NotYet(busy.join(", ")) })
        })
        .await?;
        self.atlas.forget(&path);
        Ok(())
    }

    /// Waits until Atlas answers 404 for `path` (through DELETING), showing its `state_field`.
    async fn atlas_gone(&self, ctx: &Ctx<'_>, path: &str, what: &str, state_field: &str) -> Result<()> {
        wait_for(ctx, what, "waiting for Atlas to remove it", Duration::from_secs(10), || async {
            Ok(match self.atlas.client.get_opt(path, V2023_01_01).await? {
                None => Look::Ready(()),
                Some(r) => Look::NotYet(str_of(&r, state_field).to_string()),
            })
        })
        .await
    }

    fn security_group_name(env: &str, region: &str) -> String {
        format!("poactl-{env}-atlas-{}", aws_region_name(region))
    }

    fn outputs(region: &str, e: &Endpoint, group: &Group, service: &Value, status: &str) -> Outputs {
        Outputs::from([
            ("endpoint_id".to_string(), e.id.clone()),
            ("service_id".to_string(), str_of(service, "id").to_string()),
            ("service_name".to_string(), str_of(service, "endpointServiceName").to_string()),
            ("security_group".to_string(), group.id.clone()),
            ("status".to_string(), status.to_string()),
            ("description".to_string(), format!("PrivateLink endpoint {} in {region}", e.id)),
        ])
    }

    fn wanted(d: &Desired) -> (String, Vec<String>, Vec<String>, BTreeMap<String, String>) {
        let list =
            |k: &str| d.attrs[k].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default();
        (str_of(&d.attrs, "vpc").to_string(), list("subnets"), list("allow_from"), string_map(&d.attrs["tags"]))
    }

    /// Steps 1 to 5, each skipped when a killed run already did it.
    async fn converge(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let region = d.address.name.clone();
        let ec2 = self.aws.ec2(&aws_region_name(&region));
        let id = d.address.to_string();
        let (vpc, subnets, allow_from, tags) = Self::wanted(d);
        let service = self.ready_service(ctx, &group, &region).await?;
        let service_name = str_of(&service, "endpointServiceName").to_string();
        let name = Self::security_group_name(ctx.env, &region);
        let sg = aws_side::ensure_group(&ec2, ctx.env, &id, &vpc, &name, &tags).await?;
        aws_side::sync_ingress(&ec2, &sg, &allow_from).await?;
        let endpoint = match aws_side::find_endpoint(&ec2, ctx.env, &id).await? {
            Some(e) => e,
            None => {
                let new = NewEndpoint { vpc: &vpc, service_name: &service_name, subnets: &subnets, group: &sg.id, tags: &tags };
                aws_side::create_endpoint(&ec2, new).await?
            }
        };
        let registration = self.register(ctx, &group, str_of(&service, "id"), &endpoint.id).await?;
        Ok(Self::outputs(&region, &endpoint, &sg, &service, str_of(&registration, "connectionStatus")))
    }
}

#[async_trait]
impl Provider for PrivateEndpointProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasPrivateEndpoint
    }

    fn lane(&self) -> Lane {
        LANE
    }

    fn discover_after(&self) -> &'static [Kind] {
        &[Kind::AtlasProject]
    }

    /// Another VPC cannot take over an endpoint: AWS endpoints live in one VPC.
    fn replace_paths(&self) -> &'static [&'static str] {
        &["vpc"]
    }

    /// A rejected or failed connection is not mended in place: the AWS endpoint goes and a new
    /// one is registered (Atlas' own advice for a failed interface endpoint: "delete it, then
    /// try to add a new one", API v1 docs, "Add One Interface Endpoint").
    fn diff(&self, desired: &Desired, observed: &Observed) -> Vec<FieldChange> {
        let mut changes = crate::plan::diff::diff_closed(&desired.attrs, &observed.attrs, self.replace_paths(), self.closed_maps());
        let broken = matches!(observed.attrs["status"].as_str(), Some("REJECTED" | "FAILED"));
        for c in changes.iter_mut().filter(|c| c.path == "status" && broken) {
            c.forces_replace = true;
        }
        changes
    }

    fn create_blocked(&self, d: &Desired) -> Option<String> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).get(&d.address).cloned()
    }

    fn notes(&self, _d: &Desired, o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(error) = o.handle.pointer("/registration/errorMessage").and_then(|v| v.as_str()).filter(|e| !e.is_empty()) {
            notes.push(format!("Atlas says: {error}"));
        }
        notes
    }

    fn in_progress(&self, o: &Observed) -> Option<String> {
        let status = o.handle.pointer("/registration/connectionStatus").and_then(|v| v.as_str())?;
        matches!(status, "PENDING_ACCEPTANCE" | "PENDING").then(|| format!("the connection is {status}: Atlas is still accepting it"))
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let found = self.find(ctx, &group, &d.address).await?;
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.remove(&d.address);
        if let Some(s) = &found.service {
            // A service going away, or one Atlas failed to make, cannot take a new endpoint.
            let status = str_of(s, "status");
            if matches!(status, "DELETING" | "FAILED") {
                refused.insert(
                    d.address.clone(),
                    format!(
                        "the project's endpoint service in {} is {status}{}: Atlas allows one per region, so wait until it is gone (or delete it) and apply again",
                        d.address.name,
                        Some(str_of(s, "errorMessage")).filter(|e| !e.is_empty()).map(|e| format!(" ({e})")).unwrap_or_default()
                    ),
                );
            }
        }
        drop(refused);
        Ok(found.endpoint.is_some().then(|| found.observed(ctx, &d.address)))
    }

    /// The environment's endpoints and leftover security groups (a create killed before its
    /// endpoint), in the regions the spec names and the environment's own.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let Some(group) = scope_group_id(ctx) else { return Ok(Vec::new()) };
        let mut regions: Vec<String> = ctx.loaded.spec.atlas.iter().flat_map(|a| a.private_endpoints()).map(|e| e.aws_region()).collect();
        regions.push(ctx.loaded.spec.aws_region());
        regions.sort();
        regions.dedup();
        let mut ids = std::collections::BTreeSet::new();
        for region in &regions {
            let (endpoints, groups) = aws_side::list_env(&self.aws.ec2(region), ctx.env).await?;
            for tags in endpoints.iter().map(|e| &e.tags).chain(groups.iter().map(|g| &g.tags)) {
                if let Some(id) = tags.get(TAG_ID).filter(|i| i.starts_with(Kind::AtlasPrivateEndpoint.as_str())) {
                    ids.insert(id.clone());
                }
            }
        }
        let mut out = Vec::new();
        for id in &ids {
            let Some(address) = Address::parse(id) else { continue };
            let found = self.find(ctx, &group, &address).await?;
            out.push((address.clone(), found.observed(ctx, &address)));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        self.converge(ctx, d).await
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let region = d.address.name.clone();
        let ec2 = self.aws.ec2(&aws_region_name(&region));
        let vpce = str_of(&o.handle, "vpce").to_string();
        let (_, subnets, _, tags) = Self::wanted(d);
        let touched = |attr: &str| crate::plan::touches(changes, attr);
        if touched("subnets") || touched("own_security_group") || touched("other_security_groups") {
            let live: Vec<String> =
                o.attrs["subnets"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
            let add: Vec<String> = subnets.iter().filter(|s| !live.contains(s)).cloned().collect();
            let remove: Vec<String> = live.iter().filter(|s| !subnets.contains(s)).cloned().collect();
            let others: Vec<String> =
                o.attrs["other_security_groups"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
            let own = str_of(&o.handle, "security_group").to_string();
            let add_groups: Vec<String> = if o.attrs["own_security_group"] == json!(true) || own.is_empty() { vec![] } else { vec![own] };
            aws_side::modify_endpoint(&ec2, &vpce, (&add, &remove), (&add_groups, &others)).await?;
        }
        if touched("tags") {
            let live = string_map(&o.attrs["tags"]);
            let stale: Vec<String> = live.keys().filter(|k| !tags.contains_key(*k)).cloned().collect();
            aws_side::retag(&ec2, &vpce, &tags, &stale).await?;
        }
        // The security group (ingress, or a missing group) and the registration: the chain
        // again, each step skipped where it is done.
        self.converge(ctx, d).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let group = match str_of(&o.handle, "groupId") {
            "" => group_id(ctx)?,
            g => g.to_string(),
        };
        let region = address.name.clone();
        let ec2 = self.aws.ec2(&aws_region_name(&region));
        let found = self.find(ctx, &group, address).await?;
        let service = found.service_id();
        // 1. The registration, until Atlas no longer lists it, and the clusters settle.
        if let (Some(sid), Some(e)) = (&service, &found.endpoint)
            && found.registration.is_some()
        {
            let path = format!("{}/{sid}/endpoint/{}", services_path(&group), e.id);
            self.atlas.client.delete_if_exists(&path, V2023_01_01).await?;
            self.atlas_gone(ctx, &path, &format!("the PrivateLink connection {}", e.id), "connectionStatus").await?;
            self.clusters_idle(ctx, &group).await?;
        }
        // 2. The AWS endpoint.
        if let Some(e) = &found.endpoint {
            aws_side::delete_endpoint(&ec2, &e.id).await?;
            wait_for(ctx, &format!("the AWS endpoint {}", e.id), "waiting for AWS to delete it", Duration::from_secs(10), || async {
                Ok(if aws_side::endpoint_gone(&ec2, &e.id).await? { Look::Ready(()) } else { Look::NotYet("deleting".to_string()) })
            })
            .await?;
        }
        // 3. The security group, once no interface uses it.
        if let Some(g) = &found.security_group {
            wait_for(
                ctx,
                &format!("the security group {}", g.id),
                "waiting for the endpoint's interfaces to go",
                Duration::from_secs(10),
                || async {
                    Ok(if aws_side::delete_group(&ec2, &g.id).await? { Look::Ready(()) } else { Look::NotYet("in use".to_string()) })
                },
            )
            .await?;
        }
        // 4. The service, when no endpoint is left in it (others may be another environment's).
        if let Some(sid) = service {
            let path = format!("{}/{sid}", services_path(&group));
            let Some(s) = self.atlas.client.get_opt(&path, V2023_01_01).await? else { return Ok(()) };
            let in_use = s.get("interfaceEndpoints").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty());
            if !in_use && str_of(&s, "status") != "DELETING" {
                self.atlas.client.delete_if_exists(&path, V2023_01_01).await?;
            }
            if !in_use {
                self.atlas_gone(ctx, &path, &format!("Atlas' endpoint service in {region}"), "status").await?;
            }
        }
        Ok(())
    }
}
