//! Whether the data a migration would load fits the target cluster's storage, from the
//! dated price catalog, and the smallest tier that holds it when it does not.

use crate::spec::LoadedSpec;

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct StorageFit {
    pub cluster: String,
    pub tier: String,
    /// What the tier stores, when the catalog knows it.
    pub storage_gb: Option<f64>,
    pub data_gb: f64,
    pub fits: bool,
    pub smallest_tier_that_fits: Option<Tier>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Tier {
    pub tier: String,
    pub monthly_usd: f64,
}

/// The cluster `database.uri` refers to (else the first one), against `bytes` of data
/// (uncompressed: a safe overestimate of what the cluster stores).
pub(crate) fn storage_fit(loaded: &LoadedSpec, bytes: u64) -> Option<StorageFit> {
    let catalog = crate::cost::Catalog::builtin();
    let at = loaded.spec.atlas.as_ref()?;
    let uri = loaded.spec.database.as_ref()?.uri.as_deref().unwrap_or("");
    let c = at.clusters.iter().find(|c| uri.contains(&format!("atlas.clusters.{}.", c.name))).or(at.clusters.first())?;
    let data_gb = bytes as f64 / 1e9;
    let has = crate::cost::cluster_storage_gb(c, &catalog);
    let fits = has.is_none_or(|h| data_gb <= h);
    let smallest = if fits { None } else { crate::cost::smallest_tier_for(c, data_gb, &catalog) };
    Some(StorageFit {
        cluster: c.name.clone(),
        tier: c.tier.to_string(),
        storage_gb: has,
        data_gb,
        fits,
        smallest_tier_that_fits: smallest.map(|(tier, monthly_usd)| Tier { tier: tier.to_string(), monthly_usd }),
    })
}
