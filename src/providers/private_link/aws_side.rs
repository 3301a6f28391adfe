//! The AWS half of a PrivateLink endpoint: the interface endpoint in the app's VPC and the
//! security group that says who may connect through it.
//!
//! What the real service does (EC2 API reference for each action; ../shared/atlas/
//! PRIVATE-NETWORKING.md §1.3 and §6):
//! - `CreateVpcEndpoint` defaults `PrivateDnsEnabled` to true for interface endpoints, and real
//!   AWS refuses private DNS for a service another account hosts ("Private DNS can't be enabled
//!   because the service … does not provide a private DNS name"): poactl always sends false.
//!   moto accepts either, so the tests assert on the request.
//! - Atlas' endpoints listen on ports 1024-65535, not 27017 alone (MongoDB's own Terraform
//!   module, terraform-mongodbatlas-atlas-aws `modules/privatelink/variables.tf`: from_port 1024,
//!   to_port 65535).
//! - A security group still used by an endpoint's network interfaces cannot be deleted:
//!   `DependencyViolation` until the interfaces are gone, which outlasts `DeleteVpcEndpoints`.
//! - `DeleteVpcEndpoints` answers 200 with the ids it could not delete in `unsuccessful`.

use std::collections::{BTreeMap, BTreeSet};

use crate::providers::aws::ec2::{Ec2, Node, Params, refusal_code};
use crate::providers::{ProviderError, Result};
use crate::resource::{TAG_ENV, TAG_ID};

/// The ports Atlas' private endpoints use.
pub(super) const FROM_PORT: &str = "1024";
pub(super) const TO_PORT: &str = "65535";

/// An interface endpoint as DescribeVpcEndpoints shows it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Endpoint {
    pub(super) id: String,
    pub(super) vpc: String,
    pub(super) service_name: String,
    /// pendingAcceptance, pending, available, deleting, deleted, rejected, failed.
    pub(super) state: String,
    pub(super) subnets: Vec<String>,
    pub(super) groups: Vec<String>,
    pub(super) tags: BTreeMap<String, String>,
}

impl Endpoint {
    fn from(n: &Node) -> Endpoint {
        let mut subnets: Vec<String> = n.items("subnetIdSet").map(|i| i.text.clone()).collect();
        subnets.sort();
        Endpoint {
            id: n.text_of("vpcEndpointId").to_string(),
            vpc: n.text_of("vpcId").to_string(),
            service_name: n.text_of("serviceName").to_string(),
            state: n.text_of("state").to_string(),
            subnets,
            groups: n.items("groupSet").map(|g| g.text_of("groupId").to_string()).collect(),
            tags: n.tags(),
        }
    }

    /// Gone, or going: such an endpoint is not the live one (moto keeps deleted endpoints
    /// listed, and so does AWS for a while).
    pub(super) fn gone(&self) -> bool {
        matches!(self.state.to_ascii_lowercase().as_str(), "deleted" | "deleting")
    }
}

/// A security group with its ingress as `allow_from` entries.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Group {
    pub(super) id: String,
    pub(super) vpc: String,
    pub(super) tags: BTreeMap<String, String>,
    /// Sources allowed on TCP 1024-65535 (CIDR blocks and group ids), sorted.
    pub(super) allowed: Vec<String>,
    /// Any other ingress, worded (`0.0.0.0/0 tcp 27017`): drift, since poactl owns the group.
    pub(super) other_rules: Vec<String>,
}

impl Group {
    fn from(n: &Node) -> Group {
        let mut allowed = BTreeSet::new();
        let mut other_rules = Vec::new();
        for p in n.items("ipPermissions") {
            let sources: Vec<String> = p
                .items("ipRanges")
                .map(|r| r.text_of("cidrIp").to_string())
                .chain(p.items("ipv6Ranges").map(|r| r.text_of("cidrIpv6").to_string()))
                .chain(p.items("groups").map(|g| g.text_of("groupId").to_string()))
                .filter(|s| !s.is_empty())
                .collect();
            let (proto, from, to) = (p.text_of("ipProtocol"), p.text_of("fromPort"), p.text_of("toPort"));
            if proto == "tcp" && from == FROM_PORT && to == TO_PORT {
                allowed.extend(sources);
            } else {
                let ports = if proto == "-1" { "all traffic".to_string() } else { format!("{proto} {from}-{to}") };
                other_rules.extend(sources.into_iter().map(|s| format!("{s} {ports}")));
            }
        }
        Group {
            id: n.text_of("groupId").to_string(),
            vpc: n.text_of("vpcId").to_string(),
            tags: n.tags(),
            allowed: allowed.into_iter().collect(),
            other_rules,
        }
    }
}

fn owned_by(env: &str, id: &str) -> Params {
    Params::new().filter(&format!("tag:{TAG_ID}"), &[id]).filter(&format!("tag:{TAG_ENV}"), &[env])
}

/// The live endpoint poactl made for `id` in `env`, if any.
pub(super) async fn find_endpoint(ec2: &Ec2, env: &str, id: &str) -> Result<Option<Endpoint>> {
    Ok(list_endpoints(ec2, owned_by(env, id)).await?.into_iter().find(|e| !e.gone()))
}

/// Every page of a Describe call: the `item`s of `set` in each answer, read by `read`.
async fn paged<T>(ec2: &Ec2, action: &str, set: &str, filter: Params, read: fn(&Node) -> T) -> Result<Vec<T>> {
    ec2.paged(action, set, filter, read).await
}

/// The endpoints matching `filter`.
pub(super) async fn list_endpoints(ec2: &Ec2, filter: Params) -> Result<Vec<Endpoint>> {
    paged(ec2, "DescribeVpcEndpoints", "vpcEndpointSet", filter, Endpoint::from).await
}

/// The environment's endpoints and groups (for discovery).
pub(super) async fn list_env(ec2: &Ec2, env: &str) -> Result<(Vec<Endpoint>, Vec<Group>)> {
    let filter = Params::new().filter(&format!("tag:{TAG_ENV}"), &[env]);
    let endpoints = list_endpoints(ec2, filter.clone()).await?.into_iter().filter(|e| !e.gone()).collect();
    Ok((endpoints, list_groups(ec2, filter).await?))
}

pub(super) async fn find_group(ec2: &Ec2, env: &str, id: &str) -> Result<Option<Group>> {
    Ok(list_groups(ec2, owned_by(env, id)).await?.into_iter().next())
}

async fn list_groups(ec2: &Ec2, filter: Params) -> Result<Vec<Group>> {
    paged(ec2, "DescribeSecurityGroups", "securityGroupInfo", filter, Group::from).await
}

/// The endpoint's security group: poactl's, made now if a killed run did not leave it.
pub(super) async fn ensure_group(ec2: &Ec2, env: &str, id: &str, vpc: &str, name: &str, tags: &BTreeMap<String, String>) -> Result<Group> {
    if let Some(g) = find_group(ec2, env, id).await? {
        return Ok(g);
    }
    let params = Params::new()
        .set("GroupName", name)
        .set("GroupDescription", format!("poactl {env}: who may reach Atlas through {id}"))
        .set("VpcId", vpc)
        .tag_on_create("security-group", tags);
    // A repeat after a lost answer is refused as a duplicate name, not doubled.
    match ec2.call("CreateSecurityGroup", params, true).await {
        Ok(_) => {}
        Err(e) if refusal_code(&e) == Some("InvalidGroup.Duplicate") => {
            let by_name = Params::new().filter("group-name", &[name]).filter("vpc-id", &[vpc]);
            let theirs = list_groups(ec2, by_name).await?.into_iter().next();
            let ours = theirs.as_ref().is_some_and(|g| crate::providers::managed_in_env(&g.tags, env));
            if !ours {
                return Err(ProviderError::Refused(format!(
                    "a security group named {name} already exists in {vpc} without poactl's tags for `{env}`: rename or delete it"
                )));
            }
        }
        Err(e) => return Err(e),
    }
    // Read it back whole (its default egress, its tags) rather than trust the create answer.
    find_group(ec2, env, id).await?.ok_or_else(|| ProviderError::Propagating(format!("the security group {name} is not listed yet")))
}

fn permission(p: Params, source: &str) -> Params {
    let p = p.set("IpPermissions.1.IpProtocol", "tcp").set("IpPermissions.1.FromPort", FROM_PORT).set("IpPermissions.1.ToPort", TO_PORT);
    with_source(p, source)
}

/// A permission's source: a security group, an IPv6 or an IPv4 block.
fn with_source(p: Params, source: &str) -> Params {
    if source.starts_with("sg-") {
        p.set("IpPermissions.1.Groups.1.GroupId", source)
    } else if source.contains(':') {
        p.set("IpPermissions.1.Ipv6Ranges.1.CidrIpv6", source)
    } else {
        p.set("IpPermissions.1.IpRanges.1.CidrIp", source)
    }
}

/// Makes the group's ingress exactly `want` on 1024-65535, and nothing else.
pub(super) async fn sync_ingress(ec2: &Ec2, group: &Group, want: &[String]) -> Result<()> {
    for source in want.iter().filter(|s| !group.allowed.contains(s)) {
        let p = permission(Params::new().set("GroupId", group.id.clone()), source);
        match ec2.call("AuthorizeSecurityGroupIngress", p, true).await {
            Err(e) if refusal_code(&e) != Some("InvalidPermission.Duplicate") => return Err(e),
            _ => {}
        }
    }
    for source in group.allowed.iter().filter(|s| !want.contains(s)) {
        revoke(ec2, &group.id, permission(Params::new(), source)).await?;
    }
    for rule in &group.other_rules {
        // `SOURCE PROTO FROM-TO` or `SOURCE all traffic`, as `Group::from` wrote it.
        let (source, ports) = rule.split_once(' ').unwrap_or((rule, ""));
        let mut p = Params::new();
        if ports == "all traffic" {
            p = p.set("IpPermissions.1.IpProtocol", "-1");
        } else if let Some((proto, range)) = ports.split_once(' ') {
            let (from, to) = range.split_once('-').unwrap_or((range, range));
            p = p.set("IpPermissions.1.IpProtocol", proto).set("IpPermissions.1.FromPort", from).set("IpPermissions.1.ToPort", to);
        }
        revoke(ec2, &group.id, with_source(p, source)).await?;
    }
    Ok(())
}

async fn revoke(ec2: &Ec2, group: &str, permission: Params) -> Result<()> {
    let mut p = Params::new().set("GroupId", group);
    for (k, v) in permission.pairs() {
        p = p.set(k.clone(), v.clone());
    }
    match ec2.call("RevokeSecurityGroupIngress", p, true).await {
        Err(e) if refusal_code(&e) != Some("InvalidPermission.NotFound") => Err(e),
        _ => Ok(()),
    }
}

/// What `CreateVpcEndpoint` is asked for.
pub(super) struct NewEndpoint<'a> {
    pub(super) vpc: &'a str,
    pub(super) service_name: &'a str,
    pub(super) subnets: &'a [String],
    pub(super) group: &'a str,
    pub(super) tags: &'a BTreeMap<String, String>,
}

/// Creates the interface endpoint. Its client token is fresh per create and kept across the
/// call's retries: a repeat after a lost answer gets the same endpoint, not a second one.
pub(super) async fn create_endpoint(ec2: &Ec2, new: NewEndpoint<'_>) -> Result<Endpoint> {
    let token = format!("poactl-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let params = Params::new()
        .set("VpcEndpointType", "Interface")
        .set("VpcId", new.vpc)
        .set("ServiceName", new.service_name)
        .list("SubnetId", new.subnets)
        .list("SecurityGroupId", &[new.group])
        // Real AWS refuses private DNS for Atlas' service; the API defaults it to true.
        .set("PrivateDnsEnabled", "false")
        .set("ClientToken", token)
        .tag_on_create("vpc-endpoint", new.tags);
    let answer = ec2.call("CreateVpcEndpoint", params, true).await?;
    answer
        .child("vpcEndpoint")
        .map(Endpoint::from)
        .ok_or_else(|| ProviderError::Api("CreateVpcEndpoint answered without the endpoint".to_string()))
}

/// Adds and removes subnets and security groups in place.
pub(super) async fn modify_endpoint(ec2: &Ec2, id: &str, subnets: (&[String], &[String]), groups: (&[String], &[String])) -> Result<()> {
    let p = Params::new()
        .set("VpcEndpointId", id)
        .list("AddSubnetId", subnets.0)
        .list("RemoveSubnetId", subnets.1)
        .list("AddSecurityGroupId", groups.0)
        .list("RemoveSecurityGroupId", groups.1);
    ec2.call("ModifyVpcEndpoint", p, true).await.map(|_| ())
}

/// Writes `tags` on a resource and removes the `stale` keys.
pub(super) async fn retag(ec2: &Ec2, id: &str, tags: &BTreeMap<String, String>, stale: &[String]) -> Result<()> {
    let mut p = Params::new().set("ResourceId.1", id);
    for (i, (k, v)) in tags.iter().enumerate() {
        p = p.set(format!("Tag.{}.Key", i + 1), k.clone()).set(format!("Tag.{}.Value", i + 1), v.clone());
    }
    ec2.call("CreateTags", p, true).await?;
    if !stale.is_empty() {
        let mut p = Params::new().set("ResourceId.1", id);
        for (i, k) in stale.iter().enumerate() {
            p = p.set(format!("Tag.{}.Key", i + 1), k.clone());
        }
        ec2.call("DeleteTags", p, true).await?;
    }
    Ok(())
}

/// Deletes the endpoint; one already gone is fine.
pub(super) async fn delete_endpoint(ec2: &Ec2, id: &str) -> Result<()> {
    let answer = match ec2.call("DeleteVpcEndpoints", Params::new().set("VpcEndpointId.1", id), true).await {
        Err(e) if refusal_code(&e).is_some_and(|c| c.starts_with("InvalidVpcEndpointId.NotFound")) => return Ok(()),
        other => other?,
    };
    for item in answer.items("unsuccessful") {
        let error = item.child("error");
        let code = error.map(|e| e.text_of("code")).unwrap_or_default();
        if !code.contains("NotFound") {
            let message = error.map(|e| e.text_of("message")).unwrap_or_default();
            return Err(ProviderError::Refused(format!("DeleteVpcEndpoints {id}: {code}: {message}")));
        }
    }
    Ok(())
}

/// Whether the endpoint is gone (deleted, or no longer listed).
pub(super) async fn endpoint_gone(ec2: &Ec2, id: &str) -> Result<bool> {
    match list_endpoints(ec2, Params::new().set("VpcEndpointId.1", id)).await {
        Ok(list) => Ok(list.iter().all(|e| e.state.eq_ignore_ascii_case("deleted"))),
        Err(e) if refusal_code(&e).is_some_and(|c| c.starts_with("InvalidVpcEndpointId.NotFound")) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Deletes the group: `Ok(false)` while an endpoint's interfaces still use it.
pub(super) async fn delete_group(ec2: &Ec2, id: &str) -> Result<bool> {
    match ec2.call("DeleteSecurityGroup", Params::new().set("GroupId", id), true).await {
        Ok(_) => Ok(true),
        Err(e) if refusal_code(&e) == Some("DependencyViolation") => Ok(false),
        Err(e) if refusal_code(&e) == Some("InvalidGroup.NotFound") => Ok(true),
        Err(e) => Err(e),
    }
}

/// The VPC's IPv4 and IPv6 blocks (its primary and associated ones), for audit's "wider than
/// the VPC" rule. A VPC that does not exist has none: the plan says so through the endpoint,
/// not through this read (DescribeVpcs answers `InvalidVpcID.NotFound`).
pub(super) async fn vpc_cidrs(ec2: &Ec2, vpc: &str) -> Result<Vec<String>> {
    if vpc.is_empty() {
        return Ok(Vec::new());
    }
    let vpcs = match paged(ec2, "DescribeVpcs", "vpcSet", Params::new().set("VpcId.1", vpc), vpc_blocks).await {
        Err(e) if refusal_code(&e).is_some_and(|c| c.starts_with("InvalidVpcID.NotFound")) => return Ok(Vec::new()),
        other => other?,
    };
    let mut blocks: BTreeSet<String> = vpcs.into_iter().flatten().collect();
    blocks.retain(|b| !b.is_empty());
    Ok(blocks.into_iter().collect())
}

/// A VPC's blocks: `cidrBlock`, the associated IPv4 ones and the IPv6 ones, leaving out those
/// being disassociated (DescribeVpcs `cidrBlockState`/`ipv6CidrBlockState`).
fn vpc_blocks(n: &Node) -> Vec<String> {
    let live = |a: &Node, state: &str| {
        let s = a.child(state).map(|s| s.text_of("state")).unwrap_or("associated");
        matches!(s, "associated" | "associating")
    };
    std::iter::once(n.text_of("cidrBlock").to_string())
        .chain(n.items("cidrBlockAssociationSet").filter(|a| live(a, "cidrBlockState")).map(|a| a.text_of("cidrBlock").to_string()))
        .chain(
            n.items("ipv6CidrBlockAssociationSet")
                .filter(|a| live(a, "ipv6CidrBlockState"))
                .map(|a| a.text_of("ipv6CidrBlock").to_string()),
        )
        .collect()
}
