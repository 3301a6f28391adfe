//! `atlas.network`: PrivateLink endpoints and VPC-only access, checked offline.
//!
//! The rules and their sources (../shared/atlas/PRIVATE-NETWORKING.md, "PN §"):
//! - private endpoints are not on M0 or Flex (PN §1.3, "Tier");
//! - one endpoint service per provider and region in a project (PN §1.1 step 1), so one
//!   entry per region;
//! - Atlas publishes a cluster's private strings "only if you deployed a private endpoint to
//!   all regions to which you deployed this clusters' nodes" (openapi-v2.yaml,
//!   ClusterDescriptionConnectionStrings.privateEndpoint): every cluster region needs an
//!   endpoint (each region of a multi-region cluster, PN §1.3 "Regions"), and an endpoint in
//!   a region with no nodes serves nothing;
//! - AWS ids: `vpc-`, `subnet-`, `sg-` and 8 or 17 hex digits (EC2 API reference, resource
//!   ids; the longer form since 2018);
//! - PrivateLink does not switch public access off (PN, "How the plan maps"): VPC-only means no
//!   access-list entries, and an environment that is VPC-only needs a way in.

use super::regions::region_fields;
use super::{Checker, is_dedicated, parse_cidr};
// Regions compare in either form, so a misspelt form gets its own error.
use crate::spec::model::{AtlasSpec, same_region};
use crate::spec::yaml::PathSeg;

/// An AWS resource id: the prefix, a dash, and 8 or 17 lower-case hex digits.
fn aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|hex| (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
}

/// `US_EAST_1`: Atlas' form of an AWS region.
fn atlas_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('_').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

pub(super) fn check_network(c: &mut Checker, atlas: &AtlasSpec) {
    let Some(network) = &atlas.network else { return };
    let endpoints = &network.private_endpoints;
    if !network.public_access {
        // A security group is a private way in (through a peering), not a public one.
        for (i, _) in atlas.access_list.iter().enumerate().filter(|(_, e)| e.security_group.is_none()) {
            c.err(
                path!("atlas", "access_list", i),
                "a VPC-only environment (`network.public_access: false`) has no access-list entries",
                "remove `atlas.access_list`: the app connects through `network.private_endpoints`",
            );
        }
        if endpoints.is_empty() && network.peering.is_empty() {
            c.err(
                path!("atlas", "network", "public_access"),
                "a VPC-only environment needs a private way in, and this one has none",
                "add `network.private_endpoints` (one per cluster region) or `network.peering`, or set `public_access: true`",
            );
        }
    }
    check_peering(c, atlas);
    if endpoints.is_empty() {
        return;
    }
    c.unique(
        endpoints.iter().enumerate().map(|(i, e)| (path!("atlas", "network", "private_endpoints", i, "region"), e.region.as_str())),
        "private endpoint region",
    );
    for (i, cl) in atlas.clusters.iter().enumerate() {
        if !is_dedicated(&cl.tier) {
            c.err(
                path!("atlas", "clusters", i, "tier"),
                format!("cluster `{}` is {}, and private endpoints need a dedicated cluster (M10 or larger)", cl.name, cl.tier),
                "use tier M10 or larger, or remove `network.private_endpoints`",
            );
        } else if cl.provider != "AWS" {
            c.err(
                path!("atlas", "clusters", i, "provider"),
                format!("cluster `{}` runs on {}, and AWS PrivateLink reaches clusters on AWS only", cl.name, cl.provider),
                "use provider AWS for a VPC-only environment on AWS",
            );
        } else {
            for (at, region) in region_fields(i, cl) {
                if !endpoints.iter().any(|e| same_region(&e.region, &region)) {
                    c.err(
                        at,
                        format!(
                            "cluster `{}` has nodes in {region} but no private endpoint there: Atlas gives it no private connection string",
                            cl.name
                        ),
                        format!("add a `network.private_endpoints` entry with `region: {region}`"),
                    );
                }
            }
        }
    }
    for (i, e) in endpoints.iter().enumerate() {
        let at = |f: &str| path!("atlas", "network", "private_endpoints", i, f);
        if !atlas_region(&e.region) {
            c.err(
                at("region"),
                format!("`{}` is not an Atlas AWS region", e.region),
                "write it as Atlas does, e.g. US_EAST_1 for us-east-1",
            );
        } else if !atlas.clusters.iter().any(|cl| cl.node_regions().iter().any(|r| same_region(r, &e.region))) {
            c.err(
                at("region"),
                format!("no cluster has nodes in {}: an endpoint there reaches nothing", e.region),
                "use a region where the clusters are, or remove the entry",
            );
        }
        if !aws_id(&e.vpc, "vpc") {
            c.err(
                at("vpc"),
                format!("`{}` is not a VPC id", e.vpc),
                "e.g. vpc-0123456789abcdef0 (poactl never creates VPCs: use the app's)",
            );
        }
        if e.subnets.is_empty() {
            c.err(at("subnets"), "the endpoint needs at least one subnet", "list one subnet per availability zone the app runs in");
        }
        c.unique(
            e.subnets.iter().enumerate().map(|(j, s)| (path!("atlas", "network", "private_endpoints", i, "subnets", j), s.as_str())),
            "subnet",
        );
        for (j, s) in e.subnets.iter().enumerate() {
            if !aws_id(s, "subnet") {
                c.err(
                    path!("atlas", "network", "private_endpoints", i, "subnets", j),
                    format!("`{s}` is not a subnet id"),
                    "e.g. subnet-0aaaaaaaaaaaaaaaa",
                );
            }
        }
        if e.allow_from.is_empty() {
            c.err(at("allow_from"), "nobody may connect through this endpoint", "list the app's security group (sg-...) or its CIDR block");
        }
        for (j, source) in e.allow_from.iter().enumerate() {
            let ok = if source.starts_with("sg-") { aws_id(source, "sg") } else { parse_cidr(source).is_ok() };
            if !ok {
                c.err(
                    path!("atlas", "network", "private_endpoints", i, "allow_from", j),
                    format!("`{source}` is neither a security group id nor a CIDR block"),
                    "e.g. sg-0cccccccccccccccc or 10.0.0.0/16",
                );
            }
        }
    }
}

/// `network.peering`, the rules and their sources:
/// - Atlas' block is RFC 1918, /21 to /24 on AWS (openapi-v2.yaml,
///   AWSCloudProviderContainer.atlasCidrBlock);
/// - one container per AWS region in a project (openapi-v2.yaml, createGroupContainer: "AWS
///   and Azure can have one container per cloud provider region"), so one entry per region;
/// - the two blocks may not overlap (Amazon VPC Peering Guide, "VPC peering limitations":
///   "You cannot create a VPC peering connection between VPCs that have matching or
///   overlapping IPv4 CIDR blocks");
/// - nodes use only the peering in their own region (openapi-v2.yaml,
///   CloudRegionConfig20240805.regionName: "one VPC peering connection for each region"), and
///   peering is for dedicated clusters (Atlas docs, "Set Up a Network Peering Connection":
///   not available for M0 and Flex clusters);
/// - ids: `vpc-`, `rtb-` and 8 or 17 hex digits; the VPC's region in AWS' form.
fn check_peering(c: &mut Checker, atlas: &AtlasSpec) {
    use crate::spec::cidr::Cidr;
    let peerings = atlas.peerings();
    if peerings.is_empty() {
        return;
    }
    c.unique(
        peerings.iter().enumerate().map(|(i, p)| (path!("atlas", "network", "peering", i, "region"), p.region.as_str())),
        "peering region",
    );
    let private: [Cidr; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].map(|b| Cidr::parse(b).expect("a fixed block"));
    for (i, p) in peerings.iter().enumerate() {
        let at = |f: &str| path!("atlas", "network", "peering", i, f);
        if !atlas_region(&p.region) {
            c.err(
                at("region"),
                format!("`{}` is not an Atlas AWS region", p.region),
                "write it as Atlas does, e.g. US_EAST_1 for us-east-1",
            );
        } else if !atlas.clusters.iter().any(|cl| cl.node_regions().iter().any(|r| same_region(r, &p.region))) {
            c.err(
                at("region"),
                format!("no cluster has nodes in {}: a peering there reaches nothing", p.region),
                "use a region where the clusters are, or remove the entry",
            );
        }
        let atlas_block = Cidr::parse(&p.atlas_cidr);
        match &atlas_block {
            Err(why) => c.err(at("atlas_cidr"), format!("`{}` is not a CIDR block: {why}", p.atlas_cidr), "e.g. 192.168.248.0/21"),
            Ok(b) if b.v6 || !private.iter().any(|r| b.within(*r)) || !(21..=24).contains(&b.prefix) => c.err(
                at("atlas_cidr"),
                format!("`{}` is not a block Atlas takes on AWS: it must be private (RFC 1918) and /21 to /24", p.atlas_cidr),
                "e.g. 192.168.248.0/21",
            ),
            Ok(_) => {}
        }
        match (Cidr::parse(&p.vpc_cidr), atlas_block.ok()) {
            (Err(why), _) => {
                c.err(at("vpc_cidr"), format!("`{}` is not a CIDR block: {why}", p.vpc_cidr), "the VPC's own block, e.g. 10.0.0.0/16")
            }
            (Ok(v), Some(a)) if v.within(a) || a.within(v) => c.err(
                at("vpc_cidr"),
                format!("the VPC's block {} overlaps Atlas' {}: AWS refuses to peer overlapping networks", p.vpc_cidr, p.atlas_cidr),
                "pick an `atlas_cidr` outside the VPC's block",
            ),
            _ => {}
        }
        if !aws_id(&p.vpc, "vpc") {
            c.err(
                at("vpc"),
                format!("`{}` is not a VPC id", p.vpc),
                "e.g. vpc-0123456789abcdef0 (poactl never creates VPCs: use the app's)",
            );
        }
        if p.route_tables.is_empty() {
            c.err(at("route_tables"), "no route table would send traffic to Atlas", "list the route tables of the app's subnets (rtb-...)");
        }
        for (j, t) in p.route_tables.iter().enumerate() {
            if !aws_id(t, "rtb") {
                c.err(
                    path!("atlas", "network", "peering", i, "route_tables", j),
                    format!("`{t}` is not a route table id"),
                    "e.g. rtb-0123456789abcdef0",
                );
            }
        }
        if let Some(r) = &p.vpc_region {
            let parts: Vec<&str> = r.split('-').collect();
            let aws_form = parts.len() >= 3
                && parts.iter().all(|x| !x.is_empty() && x.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit()));
            if !aws_form {
                c.err(at("vpc_region"), format!("`{r}` is not an AWS region"), "write it as AWS does, e.g. us-east-1");
            }
        }
    }
    let endpoints = atlas.private_endpoints();
    for (i, cl) in atlas.clusters.iter().enumerate() {
        if !is_dedicated(&cl.tier) {
            c.err(
                path!("atlas", "clusters", i, "tier"),
                format!("cluster `{}` is {}, and network peering needs a dedicated cluster (M10 or larger)", cl.name, cl.tier),
                "use tier M10 or larger, or remove `network.peering`",
            );
        } else if endpoints.is_empty() && !atlas.public_access() {
            for (at, region) in region_fields(i, cl) {
                if !peerings.iter().any(|p| same_region(&p.region, &region)) {
                    c.err(
                        at,
                        format!(
                            "cluster `{}` has nodes in {region} but no peering there: nodes use only the peering of their own region",
                            cl.name
                        ),
                        format!("add a `network.peering` entry with `region: {region}`"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn aws_ids_have_their_prefix_and_8_or_17_hex_digits() {
        for (id, prefix, ok) in [
            ("vpc-0123456789abcdef0", "vpc", true),
            ("vpc-01234567", "vpc", true),
            ("vpc-0123456789ABCDEF0", "vpc", false),
            ("vpc-0123", "vpc", false),
            ("subnet-0aaaaaaaaaaaaaaaa", "subnet", true),
            ("sg-0aaaaaaaaaaaaaaaa", "subnet", false),
            ("sg-", "sg", false),
        ] {
            assert_eq!(super::aws_id(id, prefix), ok, "{id}");
        }
        assert!(super::atlas_region("US_EAST_1") && super::atlas_region("AP_SOUTHEAST_2"));
        assert!(!super::atlas_region("us-east-1") && !super::atlas_region("US_EAST") && !super::atlas_region("EAST_1"));
    }
}
