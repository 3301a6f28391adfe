//! MongoDB collection indexes.
use super::{Connections, Desired, Registry};
use crate::spec::LoadedSpec;

pub fn register(_reg: &mut Registry, _conn: &Connections) {}

pub fn desired(_loaded: &LoadedSpec) -> Vec<Desired> {
    Vec::new()
}
