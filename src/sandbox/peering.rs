//! The sandbox's Atlas network peering: one network container per (project, AWS region), the
//! peering connections made in it, and their AWS side, which the sandbox makes in moto as
//! Atlas' own account would (a VPC of the container's block, and the peering request to the
//! app's VPC), given moto's address (`POST /__sandbox/config {"aws_endpoint": URL}`).
//!
//! Each rule cites its source: `openapi-v2.yaml` is ../shared/atlas/openapi-v2.yaml, `PN §`
//! a section of ../shared/atlas/PRIVATE-NETWORKING.md. Error codes the spec does not record
//! are marked as such.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::state::State;
use super::{Answer, ApiErr, Req, Shared, paginate, project};

/// The account the sandbox's Atlas owns its VPCs in, in moto (the AWS documentation's example
/// account: moto keeps one set of resources per account, `x-moto-account-id`, PN §6).
const ATLAS_ACCOUNT: &str = "111122223333";

/// The block Atlas gives a container it makes by itself for the first dedicated cluster of a
/// region (Atlas docs, "Set Up a Network Peering Connection": the default Atlas CIDR block is
/// 192.168.248.0/21); PN §1.8 (#684): a later POST for that region is refused.
const DEFAULT_BLOCK: &str = "192.168.248.0/21";

/// A peering connection and where it is in its life.
#[derive(Debug, Clone)]
pub struct PeerRec {
    pub doc: Value,
    /// INITIATING until moto has the request, then PENDING_ACCEPTANCE (PN §1.8 step 3;
    /// openapi-v2.yaml AwsNetworkPeeringConnectionSettings.statusName).
    pub status: String,
    /// When AWS reported the request accepted: FINALIZING for half a cluster delay, then
    /// AVAILABLE.
    pub accepted_at: Option<Instant>,
    /// TERMINATING until then, then gone (PN §1.8, "Delete order": DELETE answers 202 and the
    /// peer goes through TERMINATING to 404).
    pub gone_at: Option<Instant>,
}

/// A call the sandbox makes to moto once the state lock is released.
#[derive(Debug, Clone)]
pub enum AwsJob {
    /// Make Atlas' VPC (if the container has none) and the peering request.
    Request { group: String, peer: String },
    /// See whether the app's account accepted (or rejected) the request.
    Check { group: String, peer: String },
    /// Delete Atlas' side of the connection.
    Remove { region: String, pcx: String },
}

/// `atlasCidrBlock`: RFC 1918, /21 to /24 on AWS (openapi-v2.yaml,
/// AWSCloudProviderContainer.atlasCidrBlock).
fn block_allowed(cidr: &str) -> bool {
    let Some((addr, len)) = cidr.split_once('/') else { return false };
    let (Ok(ip), Ok(len)) = (addr.parse::<std::net::Ipv4Addr>(), len.parse::<u8>()) else { return false };
    let [a, b, ..] = ip.octets();
    let private = a == 10 || (a == 172 && (16..32).contains(&b)) || (a == 192 && b == 168);
    private && (21..=24).contains(&len)
}

fn aws_region(atlas: &str) -> String {
    atlas.to_ascii_lowercase().replace('_', "-")
}

fn str_of<'v>(v: &'v Value, k: &str) -> &'v str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// Atlas makes a container for the first dedicated AWS cluster of a region (PN §1.8 step 1,
/// #684), with its default block.
pub(super) fn cluster_made(st: &mut State, group: &str, cluster: &Value) {
    let regions: Vec<String> = cluster
        .pointer("/replicationSpecs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|s| s.get("regionConfigs").and_then(Value::as_array).into_iter().flatten())
        .filter(|r| str_of(r, "providerName") == "AWS")
        .filter(|r| r.pointer("/electableSpecs/instanceSize").and_then(Value::as_str).is_some_and(|s| s.starts_with('M') && s != "M0"))
        .map(|r| str_of(r, "regionName").to_string())
        .collect();
    for region in regions {
        let id = st.new_id();
        let Some(p) = st.projects.get_mut(group) else { return };
        if !p.containers.iter().any(|c| str_of(c, "regionName") == region) {
            p.containers.push(container_doc(&id, &region, DEFAULT_BLOCK));
        }
    }
}

fn container_doc(id: &str, region: &str, block: &str) -> Value {
    json!({"id": id, "providerName": "AWS", "regionName": region, "atlasCidrBlock": block, "provisioned": false})
}

fn peer_doc(p: &PeerRec, delay: Duration, now: Instant) -> Value {
    let mut doc = p.doc.clone();
    let status = match (p.gone_at, p.accepted_at) {
        (Some(_), _) => "TERMINATING",
        (None, Some(at)) if now.duration_since(at) < delay / 2 => "FINALIZING",
        (None, Some(_)) => "AVAILABLE",
        (None, None) => p.status.as_str(),
    };
    doc["statusName"] = json!(status);
    doc
}

/// Drops peers whose TERMINATING time is over; the last one takes the security-group entries
/// of the access list with it (openapi-v2.yaml deleteGroupPeer: "also removes any AWS security
/// groups from the project IP access list").
pub(super) fn advance(st: &mut State, now: Instant) {
    for p in st.projects.values_mut() {
        let before = p.peers.len();
        p.peers.retain(|r| r.gone_at.is_none_or(|g| g > now));
        if before > 0 && p.peers.is_empty() {
            p.access_list.retain(|e| e.get("awsSecurityGroup").is_none());
        }
    }
}

/// The peering routes, `path` relative to `/api/atlas/v2/groups`.
pub(super) fn route(st: &mut State, method: &str, path: &str, req: &Req) -> Option<Answer> {
    let group = req.param("groupId").to_string();
    let delay = st.cluster_delay;
    let now = Instant::now();
    let answer = match (method, path) {
        ("GET", "/{groupId}/containers") => {
            // providerName is required; AWS containers only here (openapi-v2.yaml listGroupContainers).
            let provider = req.query("providerName").unwrap_or("AWS").to_string();
            match project(st, &group) {
                Err(e) => Err(e),
                Ok(p) => {
                    let items: Vec<Value> = p.containers.iter().filter(|c| str_of(c, "providerName") == provider).cloned().collect();
                    paginate(req, &format!("/api/atlas/v2/groups/{group}/containers"), items)
                }
            }
        }
        ("POST", "/{groupId}/containers") => create_container(st, req, &group),
        ("GET", "/{groupId}/containers/{containerId}") => {
            let id = req.param("containerId").to_string();
            project(st, &group).and_then(|p| {
                p.containers.iter().find(|c| str_of(c, "id") == id).cloned().map(|c| (200, Some(c))).ok_or_else(|| container_not_found(&id))
            })
        }
        ("DELETE", "/{groupId}/containers/{containerId}") => {
            // 409 CONTAINERS_IN_USE while clusters or peers use it (PN §1.8, TF
            // networkcontainer/resource_network_container.go).
            let id = req.param("containerId").to_string();
            project(st, &group).and_then(|p| {
                let c = p.containers.iter().find(|c| str_of(c, "id") == id).cloned().ok_or_else(|| container_not_found(&id))?;
                let region = str_of(&c, "regionName");
                let clusters = p.clusters.values().any(|cl| cl.doc.to_string().contains(&format!("\"regionName\":\"{region}\"")));
                if clusters || p.peers.iter().any(|r| str_of(&r.doc, "containerId") == id) {
                    return Err(
                        ApiErr::new(409, "CONTAINERS_IN_USE", format!("Cannot delete container {id}: it is in use.")).params(&[&id])
                    );
                }
                p.containers.retain(|c| str_of(c, "id") != id);
                Ok((204, None))
            })
        }
        ("GET", "/{groupId}/peers") => {
            let provider = req.query("providerName").unwrap_or("AWS").to_string();
            match project(st, &group) {
                Err(e) => Err(e),
                Ok(p) => {
                    let items: Vec<Value> =
                        p.peers.iter().filter(|r| str_of(&r.doc, "providerName") == provider).map(|r| peer_doc(r, delay, now)).collect();
                    paginate(req, &format!("/api/atlas/v2/groups/{group}/peers"), items)
                }
            }
        }
        ("POST", "/{groupId}/peers") => create_peer(st, req, &group),
        ("GET", "/{groupId}/peers/{peerId}") => {
            let id = req.param("peerId").to_string();
            let found = project(st, &group).and_then(|p| {
                let r = p.peers.iter().find(|r| str_of(&r.doc, "id") == id).ok_or_else(|| peer_not_found(&id))?;
                Ok((r.status.clone(), r.accepted_at.is_none() && r.gone_at.is_none(), peer_doc(r, delay, now)))
            });
            found.map(|(status, waiting, doc)| {
                if waiting && status == "PENDING_ACCEPTANCE" {
                    st.aws_jobs.push(AwsJob::Check { group: group.clone(), peer: id.clone() });
                }
                (200, Some(doc))
            })
        }
        ("PATCH", "/{groupId}/peers/{peerId}") => {
            let id = req.param("peerId").to_string();
            let body = match req.body_obj() {
                Ok(b) => b.clone(),
                Err(e) => return Some(Err(e)),
            };
            project(st, &group).and_then(|p| {
                let r = p.peers.iter_mut().find(|r| str_of(&r.doc, "id") == id).ok_or_else(|| peer_not_found(&id))?;
                if let Some(cidr) = body.get("routeTableCidrBlock") {
                    r.doc["routeTableCidrBlock"] = cidr.clone();
                }
                Ok((200, Some(peer_doc(r, delay, now))))
            })
        }
        ("DELETE", "/{groupId}/peers/{peerId}") => {
            let id = req.param("peerId").to_string();
            let found = project(st, &group).and_then(|p| {
                let containers = p.containers.clone();
                let r = p.peers.iter_mut().find(|r| str_of(&r.doc, "id") == id).ok_or_else(|| peer_not_found(&id))?;
                let first = r.gone_at.is_none();
                if first {
                    r.gone_at = Some(now + delay);
                }
                let container = containers.iter().find(|c| str_of(c, "id") == str_of(&r.doc, "containerId"));
                let region = container.map(|c| aws_region(str_of(c, "regionName"))).unwrap_or_default();
                Ok((first, region, str_of(&r.doc, "connectionId").to_string()))
            });
            // 202 RequestAccepted (openapi-v2.yaml deleteGroupPeer).
            found.map(|(first, region, pcx)| {
                if first && !pcx.is_empty() {
                    st.aws_jobs.push(AwsJob::Remove { region, pcx });
                }
                (202, None)
            })
        }
        _ => return None,
    };
    Some(answer)
}

fn container_not_found(id: &str) -> ApiErr {
    // Code not recorded; the status is the spec's (getGroupContainer: 404).
    ApiErr::new(404, "CLOUD_PROVIDER_CONTAINER_NOT_FOUND", format!("No container with ID {id} exists.")).params(&[id])
}

fn peer_not_found(id: &str) -> ApiErr {
    // Code not recorded; the status is the spec's (getGroupPeer: 404).
    ApiErr::new(404, "PEER_NOT_FOUND", format!("No peer with ID {id} exists.")).params(&[id])
}

fn create_container(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let region = b.get("regionName").and_then(Value::as_str).unwrap_or_default().to_string();
    let block = b.get("atlasCidrBlock").and_then(Value::as_str).unwrap_or_default().to_string();
    if b.get("providerName").and_then(Value::as_str) != Some("AWS") || region.is_empty() {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "providerName AWS and regionName are required.").params(&["regionName"]));
    }
    if !block_allowed(&block) {
        return Err(ApiErr::new(
            400,
            "INVALID_ATTRIBUTE",
            format!("Invalid attribute atlasCidrBlock {block}: it must be an RFC 1918 block from /21 to /24."),
        )
        .params(&["atlasCidrBlock"]));
    }
    let id = st.new_id();
    let p = project(st, group)?;
    // One container per AWS region (openapi-v2.yaml createGroupContainer); the code is not
    // recorded, the message is TF #684's.
    if p.containers.iter().any(|c| str_of(c, "regionName") == region) {
        return Err(ApiErr::new(409, "CONTAINER_ALREADY_EXISTS", format!("A container already exists for group {group} in {region}."))
            .params(&[group]));
    }
    let doc = container_doc(&id, &region, &block);
    p.containers.push(doc.clone());
    Ok((200, Some(doc)))
}

fn create_peer(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    // Every field is required for AWS (PN §1.8 step 2; openapi-v2.yaml
    // AwsNetworkPeeringConnectionSettings `required`).
    for field in ["containerId", "providerName", "awsAccountId", "vpcId", "routeTableCidrBlock", "accepterRegionName"] {
        if b.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(
                ApiErr::new(400, "MISSING_ATTRIBUTE", format!("The required attribute {field} was not specified.")).params(&[field])
            );
        }
    }
    let account = str_of(&Value::Object(b.clone()), "awsAccountId").to_string();
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        // Pattern ^[0-9]{12}$ (AwsNetworkPeeringConnectionSettings.awsAccountId).
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", format!("Invalid attribute awsAccountId {account}.")).params(&["awsAccountId"]));
    }
    let accepter = str_of(&Value::Object(b.clone()), "accepterRegionName").to_string();
    if accepter.contains('_') || accepter.chars().any(|c| c.is_ascii_uppercase()) {
        // AWS' form, unlike the container's (TF networkpeering/resource.go:427-444).
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", format!("Invalid attribute accepterRegionName {accepter}."))
            .params(&["accepterRegionName"]));
    }
    let id = st.new_id();
    let p = project(st, group)?;
    let container = str_of(&Value::Object(b.clone()), "containerId").to_string();
    let c = p.containers.iter().find(|c| str_of(c, "id") == container).cloned().ok_or_else(|| container_not_found(&container))?;
    let vpc = str_of(&Value::Object(b.clone()), "vpcId").to_string();
    if p.peers.iter().any(|r| r.gone_at.is_none() && str_of(&r.doc, "containerId") == container && str_of(&r.doc, "vpcId") == vpc) {
        // Code not recorded.
        return Err(ApiErr::new(
            409,
            "PEER_ALREADY_EXISTS",
            format!("A peering connection to {vpc} already exists in container {container}."),
        )
        .params(&[&vpc]));
    }
    let same_region = aws_region(str_of(&c, "regionName")) == accepter;
    let doc = json!({
        "id": id,
        "containerId": container,
        "providerName": "AWS",
        "awsAccountId": account,
        "vpcId": vpc,
        "routeTableCidrBlock": b.get("routeTableCidrBlock"),
        // Null for a same-region peer (TF #53).
        "accepterRegionName": if same_region { Value::Null } else { json!(accepter) },
    });
    let rec = PeerRec { doc: doc.clone(), status: "INITIATING".into(), accepted_at: None, gone_at: None };
    p.peers.push(rec);
    st.aws_jobs.push(AwsJob::Request { group: group.to_string(), peer: id });
    let mut answer = doc;
    answer["statusName"] = json!("INITIATING");
    Ok((200, Some(answer)))
}

/// Runs one job against moto (none configured: a request fails as Atlas' would when AWS
/// cannot be reached, with errorStateName INVALID_ARGUMENT).
pub(super) async fn run(state: Shared, endpoint: Option<String>, job: AwsJob) {
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    match job {
        AwsJob::Request { group, peer } => {
            let (region, block, vpc, account, accepter, atlas_vpc) = {
                let st = lock();
                let Some(p) = st.projects.get(&group) else { return };
                let Some(r) = p.peers.iter().find(|r| str_of(&r.doc, "id") == peer) else { return };
                let Some(c) = p.containers.iter().find(|c| str_of(c, "id") == str_of(&r.doc, "containerId")) else { return };
                let region = aws_region(str_of(c, "regionName"));
                let accepter = match str_of(&r.doc, "accepterRegionName") {
                    "" => region.clone(),
                    a => a.to_string(),
                };
                (
                    region,
                    str_of(c, "atlasCidrBlock").to_string(),
                    str_of(&r.doc, "vpcId").to_string(),
                    str_of(&r.doc, "awsAccountId").to_string(),
                    accepter,
                    c.get("vpcId").and_then(Value::as_str).map(String::from),
                )
            };
            let made = async {
                let url = endpoint.as_deref().ok_or("the sandbox has no AWS endpoint")?;
                let atlas_vpc = match atlas_vpc {
                    Some(v) => v,
                    None => first(&ec2(url, &region, &[("Action", "CreateVpc"), ("CidrBlock", &block)]).await?, "vpcId")?,
                };
                let answer = ec2(
                    url,
                    &region,
                    &[
                        ("Action", "CreateVpcPeeringConnection"),
                        ("VpcId", &atlas_vpc),
                        ("PeerVpcId", &vpc),
                        ("PeerOwnerId", &account),
                        ("PeerRegion", &accepter),
                    ],
                )
                .await?;
                Ok::<_, String>((atlas_vpc, first(&answer, "vpcPeeringConnectionId")?))
            }
            .await;
            let mut st = lock();
            let Some(p) = st.projects.get_mut(&group) else { return };
            if let Ok((atlas_vpc, _)) = &made {
                for c in p.containers.iter_mut().filter(|c| aws_region(str_of(c, "regionName")) == region) {
                    c["vpcId"] = json!(atlas_vpc);
                    c["provisioned"] = json!(true);
                }
            }
            let Some(r) = p.peers.iter_mut().find(|r| str_of(&r.doc, "id") == peer) else { return };
            match made {
                Ok((_, pcx)) => {
                    r.doc["connectionId"] = json!(pcx);
                    r.status = "PENDING_ACCEPTANCE".into();
                }
                Err(_) => {
                    r.status = "FAILED".into();
                    r.doc["errorStateName"] = json!("INVALID_ARGUMENT");
                }
            }
        }
        AwsJob::Check { group, peer } => {
            let (region, pcx) = {
                let st = lock();
                let Some(p) = st.projects.get(&group) else { return };
                let Some(r) = p.peers.iter().find(|r| str_of(&r.doc, "id") == peer) else { return };
                let region = p
                    .containers
                    .iter()
                    .find(|c| str_of(c, "id") == str_of(&r.doc, "containerId"))
                    .map(|c| aws_region(str_of(c, "regionName")));
                (region.unwrap_or_default(), str_of(&r.doc, "connectionId").to_string())
            };
            let Some(url) = endpoint.as_deref() else { return };
            let Ok(answer) = ec2(url, &region, &[("Action", "DescribeVpcPeeringConnections"), ("VpcPeeringConnectionId.1", &pcx)]).await
            else {
                return;
            };
            let code = answer.split("<code>").nth(1).and_then(|r| r.split("</code>").next()).unwrap_or_default().to_string();
            let mut st = lock();
            let Some(r) = st.projects.get_mut(&group).and_then(|p| p.peers.iter_mut().find(|r| str_of(&r.doc, "id") == peer)) else {
                return;
            };
            match code.as_str() {
                "active" if r.accepted_at.is_none() => r.accepted_at = Some(Instant::now()),
                // errorStateName REJECTED or EXPIRED (openapi-v2.yaml).
                "rejected" | "expired" => {
                    r.status = "FAILED".into();
                    r.doc["errorStateName"] = json!(code.to_ascii_uppercase());
                }
                _ => {}
            }
        }
        AwsJob::Remove { region, pcx } => {
            if let Some(url) = endpoint.as_deref() {
                let _ = ec2(url, &region, &[("Action", "DeleteVpcPeeringConnection"), ("VpcPeeringConnectionId", &pcx)]).await;
            }
        }
    }
}

/// One EC2 Query call to moto as Atlas' account (`x-moto-account-id`), in `region` (moto
/// reads it from the credential scope of the Authorization header; it checks no signature).
async fn ec2(url: &str, region: &str, params: &[(&str, &str)]) -> Result<String, String> {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.push(("Version", "2016-11-15"));
    let auth = format!("AWS4-HMAC-SHA256 Credential=AKIAATLASSANDBOX/20260101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0");
    let resp = reqwest::Client::new()
        .post(url)
        .header("x-moto-account-id", ATLAS_ACCOUNT)
        .header("authorization", auth)
        .form(&form)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let ok = resp.status().is_success();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if ok { Ok(text) } else { Err(text) }
}

fn first(xml: &str, tag: &str) -> Result<String, String> {
    xml.split(&format!("<{tag}>"))
        .nth(1)
        .and_then(|r| r.split(&format!("</{tag}>")).next())
        .map(String::from)
        .ok_or_else(|| format!("no {tag} in {xml}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn atlas_takes_private_blocks_from_21_to_24() {
        for (block, ok) in [
            ("192.168.248.0/21", true),
            ("10.8.0.0/24", true),
            ("172.31.0.0/22", true),
            ("10.0.0.0/16", false),
            ("192.168.1.0/25", false),
            ("203.0.113.0/24", false),
            ("x", false),
        ] {
            assert_eq!(super::block_allowed(block), ok, "{block}");
        }
    }
}
