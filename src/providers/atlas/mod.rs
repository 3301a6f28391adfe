//! MongoDB Atlas (Admin API v2).
use super::{Connections, Desired, Registry};
use crate::spec::LoadedSpec;

pub async fn register(_reg: &mut Registry, _conn: &Connections) -> anyhow::Result<()> {
    anyhow::bail!("this build of poactl cannot manage the `atlas` section yet")
}

pub fn desired(_loaded: &LoadedSpec) -> Vec<Desired> {
    Vec::new()
}
