//! The rules Atlas holds a dedicated cluster's region configs to, and the order it returns
//! them in. Each rule cites its source; the error codes are not recorded in
//! ../shared/atlas/captures, so each is named for what it says (the body has Atlas' shape).

use serde_json::{Value, json};

use super::ApiErr;

fn nodes(rc: &Value, spec: &str) -> u64 {
    rc.pointer(&format!("/{spec}/nodeCount")).and_then(Value::as_u64).unwrap_or(0)
}

fn priority(rc: &Value) -> u64 {
    rc.get("priority").and_then(Value::as_u64).unwrap_or(0)
}

fn region(rc: &Value) -> &str {
    rc.get("regionName").and_then(Value::as_str).unwrap_or("")
}

fn invalid(code: &'static str, detail: String, param: &str) -> ApiErr {
    ApiErr::new(400, code, detail).params(&[param])
}

/// Checks one replication spec's dedicated region configs (already filled with defaults).
pub(super) fn check(configs: &[Value]) -> Result<(), ApiErr> {
    // "Each `regionConfigs` object must be unique by region and cloud provider within the
    // `replicationSpec`" (openapi-v2.yaml, replicationSpecs.regionConfigs).
    let mut seen = std::collections::BTreeSet::new();
    for rc in configs {
        let key = (rc.get("providerName").and_then(Value::as_str).unwrap_or(""), region(rc));
        if !seen.insert(key) {
            return Err(invalid("DUPLICATE_REGION_CONFIG", format!("Region {} appears twice in the replication spec.", key.1), key.1));
        }
    }
    // "Every hardware specification must use the same `instanceSize`" (same place).
    let sizes: std::collections::BTreeSet<&str> = configs
        .iter()
        .flat_map(|rc| ["electableSpecs", "readOnlySpecs", "analyticsSpecs"].map(|k| (rc, k)))
        .filter(|(rc, k)| nodes(rc, k) > 0)
        .filter_map(|(rc, k)| rc.pointer(&format!("/{k}/instanceSize")).and_then(Value::as_str))
        .collect();
    if sizes.len() > 1 {
        return Err(invalid(
            "INSTANCE_SIZES_DIFFER",
            "Every hardware specification must use the same instanceSize.".into(),
            "instanceSize",
        ));
    }
    // "must have at least one `electableSpecs` object within a `replicationSpec`" (same place).
    let electable: Vec<&Value> = configs.iter().filter(|rc| nodes(rc, "electableSpecs") > 0).collect();
    if electable.is_empty() {
        return Err(invalid(
            "NO_ELECTABLE_NODES",
            "A replication spec needs at least one region with electable nodes.".into(),
            "electableSpecs",
        ));
    }
    for rc in configs {
        if nodes(rc, "electableSpecs") + nodes(rc, "readOnlySpecs") + nodes(rc, "analyticsSpecs") == 0 {
            return Err(invalid("REGION_CONFIG_WITHOUT_NODES", format!("Region {} has no nodes.", region(rc)), region(rc)));
        }
        // "If your `regionConfigs` has only `readOnlySpecs`, `analyticsSpecs`, or both, set
        // this value to `0`" (openapi-v2.yaml CloudRegionConfig20240805.priority).
        if nodes(rc, "electableSpecs") == 0 && priority(rc) != 0 {
            return Err(invalid(
                "INVALID_REGION_PRIORITY",
                format!("Region {} has no electable nodes; its priority must be 0.", region(rc)),
                "priority",
            ));
        }
    }
    // Electable priorities are 7, 6, 5... "exactly one (1) less than another region ... The
    // highest-priority region must have a priority of 7. The lowest possible priority is 1"
    // (terraform-provider-mongodbatlas docs/resources/advanced_cluster.md; the Atlas CLI
    // cluster config file reference).
    let mut priorities: Vec<u64> = electable.iter().map(|rc| priority(rc)).collect();
    priorities.sort_unstable_by(|a, b| b.cmp(a));
    let wanted: Vec<u64> = (0..priorities.len() as u64).map(|k| 7 - k).collect();
    if priorities != wanted {
        return Err(invalid(
            "INVALID_REGION_PRIORITY",
            format!("Electable regions must have the priorities {wanted:?}, one less each; got {priorities:?}."),
            "priority",
        ));
    }
    // "The total number of electable nodes across all regions in the cluster must be 3, 5, or
    // 7" (https://docs.atlas.mongodb.com/workload-isolation/).
    let total: u64 = electable.iter().map(|rc| nodes(rc, "electableSpecs")).sum();
    if ![3, 5, 7].contains(&total) {
        return Err(invalid(
            "INVALID_NUMBER_OF_ELECTABLE_NODES",
            format!("The cluster has {total} electable nodes; it needs 3, 5 or 7."),
            "nodeCount",
        ));
    }
    Ok(())
}

/// "You cannot remove the Highest Priority region" (workload-isolation page, above): a change
/// that drops the live priority-7 region from a cluster with several regions is refused.
pub(super) fn check_change(old: &Value, new: &Value) -> Result<(), ApiErr> {
    let configs = |specs: &Value| specs.pointer("/0/regionConfigs").and_then(Value::as_array).cloned().unwrap_or_default();
    let (before, after) = (configs(old), configs(new));
    if before.len() < 2 && after.len() < 2 {
        return Ok(());
    }
    match before.iter().find(|rc| priority(rc) == 7) {
        Some(top) if !after.iter().any(|rc| region(rc) == region(top)) => Err(invalid(
            "CANNOT_REMOVE_HIGHEST_PRIORITY_REGION",
            format!("You cannot remove the highest priority region {}.", region(top)),
            region(top),
        )),
        _ => Ok(()),
    }
}

/// Fills the specs a region config left out with no nodes, as Atlas returns all three
/// (terraform-provider-mongodbatlas #1204: a read back with `analytics_specs { node_count = 0 }`
/// the configuration never set), and sorts the configs: priority descending, and equal
/// priorities by region name descending, whatever order they were sent in
/// (terraform-provider-mongodbatlas #4585, #4625).
pub(super) fn settle(configs: &mut [Value], size: &str, disk: &Value) {
    for rc in configs.iter_mut() {
        for spec in ["electableSpecs", "readOnlySpecs", "analyticsSpecs"] {
            if rc.get(spec).is_none() {
                rc[spec] = json!({"instanceSize": size, "nodeCount": 0, "diskSizeGB": disk});
            }
        }
    }
    configs.sort_by(|a, b| priority(b).cmp(&priority(a)).then_with(|| region(b).cmp(region(a))));
}
