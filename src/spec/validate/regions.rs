//! Where a cluster's nodes are: its single `region`, or the `regions` of a multi-region
//! cluster, checked offline. The rules and their sources
//! (../shared/atlas/PRIVATE-NETWORKING.md §4):
//! - a cluster names `region` or `regions`, not both;
//! - only dedicated tiers span regions: M0 and Flex have one region config, a
//!   TenantRegionConfig or Flex `providerSettings` (openapi-v2.yaml);
//! - regions are unique: "Each `regionConfigs` object must be unique by region and cloud
//!   provider within the `replicationSpec`" (openapi-v2.yaml, replicationSpecs.regionConfigs);
//! - each holds nodes: "Each `regionConfigs` object must have either an `analyticsSpecs`
//!   object, `electableSpecs` object, or `readOnlySpecs` object" (same place);
//! - electable regions have the priorities 7, 6, 5... with no gaps: "must have a priority of
//!   exactly one (1) less than another region ... The highest-priority region must have a
//!   priority of 7. The lowest possible priority is 1" (terraform-provider-mongodbatlas
//!   docs/resources/advanced_cluster.md, and the Atlas CLI cluster config file reference);
//! - a region with only read-only or analytics nodes has priority 0
//!   (openapi-v2.yaml CloudRegionConfig20240805.priority);
//! - "The total number of electable nodes across all regions in the cluster must be 3, 5, or 7"
//!   (https://docs.atlas.mongodb.com/workload-isolation/).

use super::{ATLAS_AWS_REGIONS, ATLAS_AZURE_REGIONS, ATLAS_GCP_REGIONS, AWS_REGIONS, Checker, is_dedicated};
use crate::spec::model::ClusterSpec;
use crate::spec::yaml::{PathSeg, did_you_mean};

/// Each region the cluster names, with the path of the field that names it, in spec order.
pub(super) fn region_fields(i: usize, cl: &ClusterSpec) -> Vec<(Vec<PathSeg>, String)> {
    if cl.regions.is_empty() {
        cl.region.iter().map(|r| (path!("atlas", "clusters", i, "region"), r.clone())).collect()
    } else {
        cl.regions.iter().enumerate().map(|(j, r)| (path!("atlas", "clusters", i, "regions", j, "region"), r.region.clone())).collect()
    }
}

pub(super) fn check_regions(c: &mut Checker, i: usize, cl: &ClusterSpec) {
    let base = |f: &str| path!("atlas", "clusters", i, f);
    match (&cl.region, cl.regions.is_empty()) {
        (None, true) => {
            c.err(base("name"), format!("cluster `{}` has no region", cl.name), "add `region: US_EAST_1` (or a `regions` list)");
            return;
        }
        (Some(_), false) => {
            c.err(
                base("region"),
                "a cluster has either one `region` or a `regions` list",
                "move the region into `regions`, or remove the list",
            );
            return;
        }
        _ => {}
    }
    for (path, region) in region_fields(i, cl) {
        check_region_name(c, path, &cl.provider, &region);
    }
    if cl.regions.is_empty() {
        return;
    }
    if !is_dedicated(&cl.tier) {
        c.err(
            base("regions"),
            format!("{} clusters live in one region", cl.tier),
            "use `region:`, or a dedicated tier (M10+) for several regions",
        );
        return;
    }
    if cl.node_count.is_some() {
        c.err(base("node_count"), "`node_count` is for a single-region cluster", "give each region its `electable` count instead");
    }
    let mut seen = std::collections::BTreeSet::new();
    for (path, region) in region_fields(i, cl) {
        if !seen.insert(region.clone()) {
            c.err(path, format!("region {region} is listed twice"), "list each region once, with all its nodes");
        }
    }
    let mut electable = Vec::new();
    for (j, r) in cl.regions.iter().enumerate() {
        let at = |f: &str| path!("atlas", "clusters", i, "regions", j, f);
        if r.electable + r.read_only + r.analytics == 0 {
            c.err(
                at("region"),
                format!("region {} holds no nodes", r.region),
                "give it `electable`, `read_only` or `analytics` nodes, or remove it",
            );
        }
        match (r.electable, r.priority) {
            (0, Some(p)) if p != 0 => c.err(
                at("priority"),
                format!("region {} has no electable nodes, so it takes no part in elections", r.region),
                "set `priority: 0` (or leave it out)",
            ),
            (0, _) => {}
            (_, None) => c.err(
                at("priority"),
                format!("region {} has electable nodes but no election priority", r.region),
                "7 for the region the primary prefers, then 6, 5... in order of preference",
            ),
            (_, Some(p)) => electable.push((j, p)),
        }
    }
    // 7, 6, 5...: sorted from the highest, each one less than the one before.
    let mut sorted = electable.clone();
    sorted.sort_by_key(|b| std::cmp::Reverse(b.1));
    for (rank, (j, p)) in sorted.iter().enumerate() {
        let want = 7 - rank as u32;
        if *p != want {
            let all: Vec<String> = (0..sorted.len()).map(|k| (7 - k).to_string()).collect();
            c.err(
                path!("atlas", "clusters", i, "regions", *j, "priority"),
                format!("electable regions take the priorities 7, 6, 5... with no gaps or repeats; this one is {p}"),
                format!("with {} electable regions, use {}", sorted.len(), all.join(", ")),
            );
            break;
        }
    }
    let total: u32 = cl.regions.iter().map(|r| r.electable).sum();
    if ![3, 5, 7].contains(&total) {
        c.err(
            base("regions"),
            format!("the cluster has {total} electable nodes; a replica set has 3, 5 or 7 in all regions together"),
            "e.g. 2 + 2 + 1 over three regions",
        );
    }
}

/// A region Atlas knows for the provider, in Atlas' form.
pub(super) fn check_region_name(c: &mut Checker, path: Vec<PathSeg>, provider: &str, region: &str) {
    let regions = match provider {
        "GCP" => ATLAS_GCP_REGIONS,
        "AZURE" => ATLAS_AZURE_REGIONS,
        _ => ATLAS_AWS_REGIONS,
    };
    if regions.contains(&region) {
        return;
    }
    let hint = if AWS_REGIONS.contains(&region) {
        format!("Atlas writes regions as `{}`", region.to_ascii_uppercase().replace('-', "_"))
    } else {
        match did_you_mean(region, regions) {
            Some(b) => format!("did you mean `{b}`?"),
            None => format!("{provider} regions look like {}", regions[..3].join(", ")),
        }
    };
    c.err(path, format!("unknown {provider} region `{region}`"), hint);
}
