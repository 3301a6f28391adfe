//! The spec's indexes on the collections a migration loaded, built after the load: one build
//! over the data instead of index upkeep on every insert. Only creates: a change to an index
//! that exists is left to `poactl apply`, which asks for it.

use std::collections::BTreeSet;

use crate::progress::Progress;
use crate::providers::{self, Connections, Registry};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct IndexReport {
    pub built: Vec<String>,
    pub left_to_apply: Vec<String>,
    pub summary: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum IndexError {
    #[error(transparent)]
    Provider(#[from] providers::ProviderError),
    #[error(transparent)]
    Observe(#[from] crate::engine::ObserveError),
    #[error("{0}")]
    Apply(String),
}

/// Plans the indexes of the migrated collections and creates the missing ones (changes to
/// existing indexes are left to `poactl apply`, which asks for them).
pub(crate) async fn build_indexes(
    loaded: &LoadedSpec,
    cli_uri: Option<&str>,
    parallelism: Option<usize>,
    collections: &[String],
    progress: &Progress,
) -> Result<IndexReport, IndexError> {
    let kinds: BTreeSet<Kind> =
        [Kind::Index].into_iter().chain(Kind::ALL.into_iter().filter(|k| k.as_str().starts_with("atlas."))).collect();
    let conn = Connections { mongodb_uri: cli_uri.map(str::to_string) };
    let registry = Registry::for_spec(loaded, &conn, Some(&kinds)).await?;
    let engine = crate::engine::Engine::new(loaded, &registry, progress, parallelism);
    let in_scope = |a: &Address| a.kind == Kind::Index && collections.iter().any(|c| a.name.starts_with(&format!("{c}.")));
    let desired: Vec<_> = providers::desired(loaded)
        .into_iter()
        .filter(|d| in_scope(&d.address) || (d.address.kind != Kind::Index && kinds.contains(&d.address.kind)))
        .collect();
    if !desired.iter().any(|d| in_scope(&d.address)) {
        return Ok(IndexReport { summary: "the spec declares no index on these collections".into(), ..Default::default() });
    }
    let obs = engine.observe(desired).await?;
    let mut plan = engine.plan(&obs, crate::plan::PlanOptions::default());
    let others: Vec<String> = plan
        .resources
        .iter()
        .filter(|r| in_scope(&r.address) && !matches!(r.action, crate::plan::Action::Create | crate::plan::Action::NoOp))
        .map(|r| r.address.to_string())
        .collect();
    plan.resources.retain(|r| in_scope(&r.address) && r.action == crate::plan::Action::Create);
    let built: Vec<String> = plan.resources.iter().map(|r| r.address.to_string()).collect();
    if plan.resources.is_empty() {
        let summary = if others.is_empty() {
            "all declared indexes already there".to_string()
        } else {
            format!("{} change(s) left to `poactl apply`: {}", others.len(), others.join(", "))
        };
        return Ok(IndexReport { built: Vec::new(), left_to_apply: others, summary });
    }
    let report = engine.apply(&plan, &obs).await;
    if !report.ok() {
        return Err(IndexError::Apply(crate::view::report_text(&report).trim().to_string()));
    }
    let mut summary = format!("built {} after the load: {}", built.len(), built.join(", "));
    if !others.is_empty() {
        summary.push_str(&format!("; {} change(s) left to `poactl apply`: {}", others.len(), others.join(", ")));
    }
    Ok(IndexReport { built, left_to_apply: others, summary })
}
