//! The Atlas Admin API sandbox.
use crate::cli::{Global, SandboxArgs};

pub async fn command(_g: &Global, _a: SandboxArgs) -> anyhow::Result<u8> {
    anyhow::bail!("the sandbox is not built yet")
}
