//! The DAG runner: every node once its dependencies are done, bounded per lane; a failure
//! skips what depends on it and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::providers::Lane;

/// How a node of the graph ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome<T, E = String> {
    Done(T),
    /// The work's own error, kept as its type (never made text in the runner).
    Failed(E),
    /// Not run because a dependency failed or was skipped.
    Skipped(String),
}

/// The runner's own failure: nodes that wait on each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle")]
pub struct Cycle;

impl From<Cycle> for String {
    fn from(c: Cycle) -> String {
        c.to_string()
    }
}

/// Runs `work` on every node once all its dependencies are done, at most `parallelism` at a
/// time. A failure skips the nodes that depend on it and nothing else. Dependencies outside
/// the node set count as done. A cycle fails the nodes on it.
#[cfg(test)]
pub(crate) async fn run_dag<K, T, E, F, Fut>(nodes: Vec<(K, Vec<K>)>, parallelism: usize, work: F) -> BTreeMap<K, Outcome<T, E>>
where
    K: Ord + Clone + std::fmt::Display,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<Cycle>,
{
    run_dag_in_lanes(nodes, |_: &K| Lane { service: "all", limit: parallelism }, work).await
}

/// [`run_dag`] with a bound per lane (per service) instead of one for all: sixteen slow S3
/// reads do not hold up the Atlas reads, and CloudFront's low request rate is not S3's.
pub(crate) async fn run_dag_in_lanes<K, T, E, F, Fut, L>(nodes: Vec<(K, Vec<K>)>, lane: L, work: F) -> BTreeMap<K, Outcome<T, E>>
where
    K: Ord + Clone + std::fmt::Display,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<Cycle>,
    L: Fn(&K) -> Lane,
{
    let keys: BTreeSet<K> = nodes.iter().map(|(k, _)| k.clone()).collect();
    let mut pending: Vec<(K, Vec<K>)> =
        nodes.into_iter().map(|(k, deps)| (k, deps.into_iter().filter(|d| keys.contains(d)).collect())).collect();
    let mut results: BTreeMap<K, Outcome<T, E>> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    let mut busy: BTreeMap<&'static str, usize> = BTreeMap::new();

    loop {
        // Skip what can no longer run, start what can.
        let mut i = 0;
        while i < pending.len() {
            let (key, deps) = &pending[i];
            let blocked_by = deps.iter().find(|d| matches!(results.get(*d), Some(Outcome::Failed(_) | Outcome::Skipped(_))));
            if let Some(dep) = blocked_by {
                let reason = format!("depends on {dep}, which did not complete");
                let key = key.clone();
                pending.remove(i);
                results.insert(key, Outcome::Skipped(reason));
                continue;
            }
            let ready = deps.iter().all(|d| matches!(results.get(d), Some(Outcome::Done(_))));
            if ready && crate::interrupt::requested() {
                let (key, _) = pending.remove(i);
                results.insert(key, Outcome::Skipped("interrupted before it started".to_string()));
                continue;
            }
            let Lane { service, limit } = lane(key);
            if ready && busy.get(service).copied().unwrap_or(0) < limit.max(1) {
                let (key, _) = pending.remove(i);
                *busy.entry(service).or_default() += 1;
                let fut = work(key.clone());
                running.push(async move { (key, service, fut.await) });
                continue;
            }
            i += 1;
        }
        match running.next().await {
            Some((key, service, result)) => {
                if let Some(n) = busy.get_mut(service) {
                    *n -= 1;
                }
                results.insert(
                    key,
                    match result {
                        Ok(v) => Outcome::Done(v),
                        Err(e) => Outcome::Failed(e),
                    },
                );
            }
            None => {
                // Nothing running and nothing startable: what is left waits on itself.
                for (key, _) in pending.drain(..) {
                    results.insert(key, Outcome::Failed(E::from(Cycle)));
                }
                break;
            }
        }
    }
    results
}
