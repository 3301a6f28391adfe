//! AWS: S3, CloudFront, CloudWatch.
use super::{Connections, Desired, Registry};
use crate::spec::LoadedSpec;

pub async fn register(_reg: &mut Registry, _loaded: &LoadedSpec, _conn: &Connections) -> anyhow::Result<()> {
    anyhow::bail!("this build of poactl cannot manage AWS resources yet")
}

pub fn desired(_loaded: &LoadedSpec) -> Vec<Desired> {
    Vec::new()
}
