//! The AWS half of a VPC peering with Atlas: the peering connection Atlas requests, its
//! acceptance in the app's account, and the routes to Atlas' block.
//!
//! What the real service does (EC2 API reference for each action; ../shared/atlas/
//! PRIVATE-NETWORKING.md §1.8 and §6):
//! - `AcceptVpcPeeringConnection` is called by the accepter's account in the accepter VPC's
//!   region; a request "expires after 7 days, after which it cannot be accepted or rejected"
//!   (CreateVpcPeeringConnection reference);
//! - DescribeVpcPeeringConnections' `status.code` is one of initiating-request,
//!   pending-acceptance, active, deleted, rejected, failed, expired, provisioning, deleting;
//! - `CreateRoute` answers `RouteAlreadyExists` when the table already has a route for that
//!   destination (then `ReplaceRoute` points it at the peering); `DeleteRoute` answers
//!   `InvalidRoute.NotFound` for one that is gone.

use std::collections::BTreeMap;

use crate::providers::Result;
use crate::providers::aws::ec2::{Ec2, Node, Params, refusal_code};

/// A VPC as DescribeVpcs shows it: who owns it (the account Atlas peers with) and its block.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Vpc {
    pub(super) owner: String,
    pub(super) cidr: String,
}

/// The VPC, or `None` when this account and region do not have it.
pub(super) async fn vpc(ec2: &Ec2, id: &str) -> Result<Option<Vpc>> {
    let read = |n: &Node| Vpc { owner: n.text_of("ownerId").to_string(), cidr: n.text_of("cidrBlock").to_string() };
    match ec2.paged("DescribeVpcs", "vpcSet", Params::new().set("VpcId.1", id), read).await {
        Err(e) if refusal_code(&e).is_some_and(|c| c.starts_with("InvalidVpcID.NotFound")) => Ok(None),
        other => Ok(other?.into_iter().next()),
    }
}

/// A peering connection as the accepter sees it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Connection {
    pub(super) state: String,
    pub(super) message: String,
    pub(super) tags: BTreeMap<String, String>,
}

pub(super) async fn connection(ec2: &Ec2, pcx: &str) -> Result<Option<Connection>> {
    let read = |n: &Node| {
        let status = n.child("status");
        Connection {
            state: status.map(|s| s.text_of("code").to_string()).unwrap_or_default(),
            message: status.map(|s| s.text_of("message").to_string()).unwrap_or_default(),
            tags: n.tags(),
        }
    };
    let filter = Params::new().set("VpcPeeringConnectionId.1", pcx);
    match ec2.paged("DescribeVpcPeeringConnections", "vpcPeeringConnectionSet", filter, read).await {
        Err(e) if refusal_code(&e).is_some_and(|c| c.starts_with("InvalidVpcPeeringConnectionID.NotFound")) => Ok(None),
        other => Ok(other?.into_iter().next()),
    }
}

/// Accepts the request (a repeat of an accepted one is refused as a state transition, which
/// is what a lost answer looks like: read the state back instead).
pub(super) async fn accept(ec2: &Ec2, pcx: &str) -> Result<()> {
    match ec2.call("AcceptVpcPeeringConnection", Params::new().set("VpcPeeringConnectionId", pcx), true).await {
        Err(e) if refusal_code(&e) == Some("InvalidStateTransition") => {
            if connection(ec2, pcx).await?.is_some_and(|c| matches!(c.state.as_str(), "active" | "provisioning")) { Ok(()) } else { Err(e) }
        }
        other => other.map(|_| ()),
    }
}

/// Writes poactl's ownership tags on the accepter's side of the connection.
pub(super) async fn tag(ec2: &Ec2, pcx: &str, tags: &BTreeMap<String, String>) -> Result<()> {
    let mut p = Params::new().set("ResourceId.1", pcx);
    for (i, (k, v)) in tags.iter().enumerate() {
        p = p.set(format!("Tag.{}.Key", i + 1), k.clone()).set(format!("Tag.{}.Value", i + 1), v.clone());
    }
    ec2.call("CreateTags", p, true).await.map(|_| ())
}

/// The route tables among `tables` that send `destination` through `pcx`, and those that
/// do not exist.
pub(super) async fn routed(ec2: &Ec2, tables: &[String], destination: &str, pcx: &str) -> Result<(Vec<String>, Vec<String>)> {
    if tables.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let read = |n: &Node| {
        let routes: Vec<(String, String)> = n
            .items("routeSet")
            .map(|r| (r.text_of("destinationCidrBlock").to_string(), r.text_of("vpcPeeringConnectionId").to_string()))
            .collect();
        (n.text_of("routeTableId").to_string(), routes)
    };
    // One unknown id fails the whole call (InvalidRouteTableID.NotFound): ask table by table.
    let mut through = Vec::new();
    let mut missing = Vec::new();
    for table in tables {
        match ec2.paged("DescribeRouteTables", "routeTableSet", Params::new().set("RouteTableId.1", table), read).await {
            Err(e) if refusal_code(&e).is_some_and(|c| c.starts_with("InvalidRouteTableID.NotFound")) => missing.push(table.clone()),
            Err(e) => return Err(e),
            Ok(found) => {
                if found.iter().any(|(_, routes)| routes.iter().any(|(d, p)| d == destination && !pcx.is_empty() && p == pcx)) {
                    through.push(table.clone());
                }
            }
        }
    }
    Ok((through, missing))
}

/// Sends `destination` through `pcx` in `table`, replacing a route that goes elsewhere.
pub(super) async fn route(ec2: &Ec2, table: &str, destination: &str, pcx: &str) -> Result<()> {
    let p = Params::new().set("RouteTableId", table).set("DestinationCidrBlock", destination).set("VpcPeeringConnectionId", pcx);
    match ec2.call("CreateRoute", p.clone(), true).await {
        Err(e) if refusal_code(&e) == Some("RouteAlreadyExists") => ec2.call("ReplaceRoute", p, true).await.map(|_| ()),
        other => other.map(|_| ()),
    }
}

/// Removes the route to `destination` from `table`; one already gone is fine.
pub(super) async fn unroute(ec2: &Ec2, table: &str, destination: &str) -> Result<()> {
    let p = Params::new().set("RouteTableId", table).set("DestinationCidrBlock", destination);
    match ec2.call("DeleteRoute", p, true).await {
        Err(e)
            if refusal_code(&e)
                .is_some_and(|c| c.starts_with("InvalidRoute.NotFound") || c.starts_with("InvalidRouteTableID.NotFound")) =>
        {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}
