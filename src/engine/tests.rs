//! Engine tests with an in-test provider (never reachable from the CLI).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::*;
use crate::engine::apply::ApplyError;
use crate::engine::planner::StalePlan;
use crate::plan::{Action, FieldChange, Plan, PlanOptions, Reason};
use crate::plan::{Failure as _, FailureClass};
use crate::providers::{self, Observed, Ownership};
use crate::providers::{Provider, ProviderError};

/// A provider over an in-memory map: name -> attributes. Fails on the names in `fail`.
#[derive(Default)]
struct FakeProvider {
    live: Mutex<BTreeMap<String, Value>>,
    fail: Vec<String>,
    calls: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    delay_ms: u64,
}

impl FakeProvider {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    async fn busy(&self) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    fn outputs(name: &str) -> Outputs {
        BTreeMap::from([("arn".to_string(), format!("arn:fake:{name}")), ("name".to_string(), name.to_string())])
    }
}

#[async_trait]
impl Provider for FakeProvider {
    fn kind(&self) -> Kind {
        Kind::Alarm
    }

    async fn observe(&self, _ctx: &Ctx<'_>, d: &Desired) -> providers::Result<Option<Observed>> {
        if d.address.name.starts_with("unreadable") {
            return Err(ProviderError::Timeout { what: d.address.to_string(), seconds: 1, state: "reading".into() });
        }
        let live = self.live.lock().unwrap().get(&d.address.name).cloned();
        Ok(live.map(|attrs| Observed {
            id: d.address.name.clone(),
            attrs,
            outputs: Self::outputs(&d.address.name),
            ownership: Ownership::Owned,
            handle: Value::Null,
        }))
    }

    async fn discover(&self, _ctx: &Ctx<'_>) -> providers::Result<Vec<(Address, Observed)>> {
        Ok(self
            .live
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    Address::new(Kind::Alarm, k),
                    Observed {
                        id: k.clone(),
                        attrs: v.clone(),
                        outputs: Self::outputs(k),
                        ownership: Ownership::Owned,
                        handle: Value::Null,
                    },
                )
            })
            .collect())
    }

    async fn create(&self, _ctx: &Ctx<'_>, d: &Desired) -> providers::Result<Outputs> {
        self.calls.lock().unwrap().push(format!("create {}", d.address.name));
        self.busy().await;
        if self.fail.contains(&d.address.name) {
            let name = &d.address.name;
            return Err(if name.starts_with("slow") {
                ProviderError::Timeout { what: name.clone(), seconds: 1, state: "CREATING".into() }
            } else if name.starts_with("refused") {
                ProviderError::Refused(format!("{name} is not allowed"))
            } else {
                ProviderError::Api(format!("{name} is broken"))
            });
        }
        self.live.lock().unwrap().insert(d.address.name.clone(), d.attrs.clone());
        Ok(Self::outputs(&d.address.name))
    }

    async fn update(&self, _ctx: &Ctx<'_>, d: &Desired, _o: &Observed, _c: &[FieldChange]) -> providers::Result<Outputs> {
        self.calls.lock().unwrap().push(format!("update {}", d.address.name));
        self.live.lock().unwrap().insert(d.address.name.clone(), d.attrs.clone());
        Ok(Self::outputs(&d.address.name))
    }

    async fn delete(&self, _ctx: &Ctx<'_>, a: &Address, _o: &Observed) -> providers::Result<()> {
        self.calls.lock().unwrap().push(format!("delete {}", a.name));
        self.live.lock().unwrap().remove(&a.name);
        Ok(())
    }
}

fn loaded() -> LoadedSpec {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test.yaml"), "environment: test\n").unwrap();
    crate::spec::load(dir.path(), "test", &|_| None).unwrap()
}

fn alarm(name: &str, attrs: Value, deps: &[&str]) -> Desired {
    let mut d = Desired::new(Address::new(Kind::Alarm, name), attrs);
    for dep in deps {
        d = d.depends(Address::new(Kind::Alarm, *dep));
    }
    d
}

fn engine_with<'a>(loaded: &'a LoadedSpec, registry: &'a Registry, progress: &'a Progress, parallelism: usize) -> Engine<'a> {
    Engine { loaded, registry, progress, parallelism: Some(parallelism), options: RunOptions::default(), discover_kinds: None }
}

#[tokio::test]
async fn dag_runs_dependencies_first() {
    let order = Mutex::new(Vec::new());
    let nodes = vec![
        ("c".to_string(), vec!["b".to_string()]),
        ("b".to_string(), vec!["a".to_string()]),
        ("a".to_string(), vec![]),
        ("d".to_string(), vec!["a".to_string(), "c".to_string()]),
    ];
    let results = run_dag(nodes, 4, |k: String| {
        let order = &order;
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            order.lock().unwrap().push(k);
            Ok::<_, String>(())
        }
    })
    .await;
    assert!(results.values().all(|o| matches!(o, Outcome::Done(_))));
    assert_eq!(*order.lock().unwrap(), vec!["a", "b", "c", "d"]);
}

#[tokio::test]
async fn dag_cases() {
    struct Case {
        reason: &'static str,
        nodes: Vec<(&'static str, Vec<&'static str>)>,
        failing: Vec<&'static str>,
        want: Vec<(&'static str, &'static str)>,
    }
    let cases = vec![
        Case {
            reason: "independent nodes all run",
            nodes: vec![("a", vec![]), ("b", vec![])],
            failing: vec![],
            want: vec![("a", "done"), ("b", "done")],
        },
        Case {
            reason: "a failure skips dependents only",
            nodes: vec![("a", vec![]), ("b", vec!["a"]), ("c", vec!["b"]), ("x", vec![])],
            failing: vec!["a"],
            want: vec![("a", "failed"), ("b", "skipped"), ("c", "skipped"), ("x", "done")],
        },
        Case {
            reason: "a cycle fails its members",
            nodes: vec![("a", vec!["b"]), ("b", vec!["a"]), ("z", vec![])],
            failing: vec![],
            want: vec![("a", "failed"), ("b", "failed"), ("z", "done")],
        },
        Case {
            reason: "unknown dependencies count as done",
            nodes: vec![("a", vec!["elsewhere"])],
            failing: vec![],
            want: vec![("a", "done")],
        },
    ];
    for c in cases {
        let failing = c.failing.clone();
        let nodes = c.nodes.iter().map(|(k, d)| (k.to_string(), d.iter().map(|s| s.to_string()).collect())).collect();
        let results = run_dag(nodes, 2, |k: String| {
            let fail = failing.contains(&k.as_str());
            async move { if fail { Err(format!("{k} failed")) } else { Ok(()) } }
        })
        .await;
        let got: Vec<(String, &str)> = results
            .into_iter()
            .map(|(k, o)| {
                (
                    k,
                    match o {
                        Outcome::Done(_) => "done",
                        Outcome::Failed(_) => "failed",
                        Outcome::Skipped(_) => "skipped",
                    },
                )
            })
            .collect();
        let want: Vec<(String, &str)> = c.want.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(got, want, "{}", c.reason);
    }
}

#[tokio::test]
async fn apply_honours_the_concurrency_limit() {
    for limit in [1usize, 3, 8] {
        let loaded = loaded();
        let fake = Arc::new(FakeProvider { delay_ms: 20, ..Default::default() });
        let mut registry = Registry::empty();
        registry.insert(fake.clone());
        let progress = Progress::hidden();
        let engine = engine_with(&loaded, &registry, &progress, limit);
        let desired: Vec<Desired> = (0..12).map(|i| alarm(&format!("a{i:02}"), json!({"v": i}), &[])).collect();
        let obs = engine.observe(desired).await.unwrap();
        let plan = engine.plan(&obs, PlanOptions::default());
        assert_eq!(plan.summary().add, 12);
        let report = engine.apply(&plan, &obs).await;
        assert!(report.ok(), "{:?}", report.failed);
        let max = fake.max_running.load(Ordering::SeqCst);
        assert!(max <= limit, "limit {limit}: {max} ran at once");
        assert_eq!(max, limit, "limit {limit} should be reached with 12 independent resources");
    }
}

#[tokio::test]
async fn one_failure_does_not_stop_independent_resources() {
    let loaded = loaded();
    let fake = Arc::new(FakeProvider { fail: vec!["broken".into()], ..Default::default() });
    let mut registry = Registry::empty();
    registry.insert(fake.clone());
    let progress = Progress::hidden();
    let engine = engine_with(&loaded, &registry, &progress, 4);
    let desired = vec![
        alarm("broken", json!({"v": 1}), &[]),
        alarm("needs-broken", json!({"ref": "${monitoring.alarms.broken.arn}"}), &[]),
        alarm("fine", json!({"v": 2}), &[]),
        alarm("needs-fine", json!({"ref": "${monitoring.alarms.fine.arn}"}), &[]),
    ];
    let desired: Vec<Desired> = desired
        .into_iter()
        .map(|d| {
            let mut refs = Vec::new();
            providers::collect_refs(&d.attrs, &mut refs);
            refs.into_iter().fold(d, |d, r| d.depends(r.target))
        })
        .collect();
    let obs = engine.observe(desired).await.unwrap();
    let plan = engine.plan(&obs, PlanOptions::default());
    let needs_fine = plan.resources.iter().find(|r| r.address.name == "needs-fine").unwrap();
    assert!(needs_fine.changes.iter().any(|c| c.unknown), "a reference to a resource not yet created is unknown");
    let report = engine.apply(&plan, &obs).await;
    assert!(!report.ok());
    let done: Vec<&str> = report.done.iter().map(|d| d.0.name.as_str()).collect();
    assert!(done.contains(&"fine") && done.contains(&"needs-fine"), "{done:?}");
    assert_eq!(report.failed.iter().map(|f| f.0.name.as_str()).collect::<Vec<_>>(), vec!["broken"]);
    assert_eq!(report.skipped.iter().map(|f| f.0.name.as_str()).collect::<Vec<_>>(), vec!["needs-broken"]);
    assert_eq!(
        fake.live.lock().unwrap().get("needs-fine"),
        Some(&json!({"ref": "arn:fake:fine"})),
        "the reference was resolved before create"
    );
    assert!(report.failed[0].2.to_string().contains("broken is broken"), "{}", report.failed[0].2);
}

#[tokio::test]
async fn second_apply_changes_nothing() {
    let loaded = loaded();
    let fake = Arc::new(FakeProvider::default());
    let mut registry = Registry::empty();
    registry.insert(fake.clone());
    let progress = Progress::hidden();
    let engine = engine_with(&loaded, &registry, &progress, 4);
    let desired = || vec![alarm("a", json!({"v": 1, "nested": {"x": [1, 2]}}), &[]), alarm("b", json!({"v": 2}), &["a"])];
    let obs = engine.observe(desired()).await.unwrap();
    let report = engine.apply(&engine.plan(&obs, PlanOptions::default()), &obs).await;
    assert!(report.ok());
    let calls_after_first = fake.calls().len();
    let obs = engine.observe(desired()).await.unwrap();
    let plan = engine.plan(&obs, PlanOptions::default());
    assert!(!plan.has_changes(), "{:?}", plan.resources);
    engine.apply(&plan, &obs).await;
    assert_eq!(fake.calls().len(), calls_after_first, "no mutating call on the second apply");
}

#[tokio::test]
async fn plan_actions_and_prune() {
    let loaded = loaded();
    let fake = Arc::new(FakeProvider::default());
    fake.live.lock().unwrap().insert("same".into(), json!({"v": 1}));
    fake.live.lock().unwrap().insert("drifted".into(), json!({"v": 1}));
    fake.live.lock().unwrap().insert("orphan".into(), json!({"v": 9}));
    let mut registry = Registry::empty();
    registry.insert(fake.clone());
    let progress = Progress::hidden();
    let engine = engine_with(&loaded, &registry, &progress, 4);
    let desired = vec![alarm("same", json!({"v": 1}), &[]), alarm("drifted", json!({"v": 2}), &[]), alarm("new", json!({"v": 3}), &[])];
    let obs = engine.observe(desired).await.unwrap();

    let plan = engine.plan(&obs, PlanOptions::default());
    let actions: Vec<(&str, Action)> = plan.resources.iter().map(|r| (r.address.name.as_str(), r.action)).collect();
    assert_eq!(actions, vec![("same", Action::NoOp), ("drifted", Action::Update), ("new", Action::Create)]);
    assert_eq!(plan.unmanaged.iter().map(|u| u.address.name.as_str()).collect::<Vec<_>>(), vec!["orphan"]);
    let drifted = plan.resources.iter().find(|r| r.address.name == "drifted").unwrap();
    let fields: Vec<_> = drifted.changes.iter().map(|c| (c.path.as_str(), c.before.clone(), c.after.clone())).collect();
    assert_eq!(fields, vec![("v", Some(json!(1)), Some(json!(2)))]);
    let s = plan.summary();
    assert_eq!((s.add, s.change, s.destroy), (1, 1, 0));

    let pruned = engine.plan(&obs, PlanOptions { prune: true, ..Default::default() });
    assert!(pruned.unmanaged.is_empty());
    assert!(pruned.resources.iter().any(|r| r.address.name == "orphan" && r.action == Action::Delete && r.reason == Reason::Pruned));
    assert_eq!(pruned.summary().destroy, 1);
}

#[tokio::test]
async fn plan_json_round_trips_and_stale_plans_are_refused() {
    let loaded = loaded();
    let fake = Arc::new(FakeProvider::default());
    fake.live.lock().unwrap().insert("a".into(), json!({"v": 1}));
    let mut registry = Registry::empty();
    registry.insert(fake.clone());
    let progress = Progress::hidden();
    let engine = engine_with(&loaded, &registry, &progress, 4);
    let desired = || vec![alarm("a", json!({"v": 2}), &[]), alarm("b", json!({"v": "${monitoring.alarms.a.arn}"}), &["a"])];
    let obs = engine.observe(desired()).await.unwrap();
    let plan = engine.plan(&obs, PlanOptions::default());

    let text = serde_json::to_string_pretty(&plan).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["format_version"], json!(crate::plan::FORMAT_VERSION));
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, plan, "plan JSON round-trips");

    // Same spec, same state: accepted.
    let again = engine.plan(&engine.observe(desired()).await.unwrap(), PlanOptions::default());
    assert_eq!(check_saved_plan(&back, &again), Ok(()));

    // Live state changed out of band: refused.
    fake.live.lock().unwrap().insert("a".into(), json!({"v": 3}));
    let changed = engine.plan(&engine.observe(desired()).await.unwrap(), PlanOptions::default());
    assert!(matches!(check_saved_plan(&back, &changed), Err(StalePlan::StateChanged(_))));

    // Spec changed: refused.
    fake.live.lock().unwrap().insert("a".into(), json!({"v": 1}));
    let other = vec![alarm("a", json!({"v": 5}), &[])];
    let respec = engine.plan(&engine.observe(other).await.unwrap(), PlanOptions::default());
    assert!(matches!(check_saved_plan(&back, &respec), Err(StalePlan::SpecChanged(_))));
}

#[tokio::test]
async fn foreign_resources_are_conflicts_not_changes() {
    struct Foreign;
    #[async_trait]
    impl Provider for Foreign {
        fn kind(&self) -> Kind {
            Kind::Alarm
        }
        async fn observe(&self, _c: &Ctx<'_>, d: &Desired) -> providers::Result<Option<Observed>> {
            Ok(Some(Observed {
                id: d.address.name.clone(),
                attrs: json!({"v": 0}),
                outputs: Outputs::new(),
                ownership: Ownership::Foreign("no tags".into()),
                handle: Value::Null,
            }))
        }
        async fn discover(&self, _c: &Ctx<'_>) -> providers::Result<Vec<(Address, Observed)>> {
            Ok(vec![])
        }
        async fn create(&self, _c: &Ctx<'_>, _d: &Desired) -> providers::Result<Outputs> {
            panic!("must not create over a foreign resource")
        }
        async fn update(&self, _c: &Ctx<'_>, _d: &Desired, _o: &Observed, _ch: &[FieldChange]) -> providers::Result<Outputs> {
            panic!("must not update a foreign resource")
        }
        async fn delete(&self, _c: &Ctx<'_>, _a: &Address, _o: &Observed) -> providers::Result<()> {
            panic!("must not delete a foreign resource")
        }
    }
    let loaded = loaded();
    let mut registry = Registry::empty();
    registry.insert(Arc::new(Foreign));
    let progress = Progress::hidden();
    let engine = engine_with(&loaded, &registry, &progress, 4);
    let obs = engine.observe(vec![alarm("x", json!({"v": 1}), &[])]).await.unwrap();
    let plan = engine.plan(&obs, PlanOptions { prune: true, ..Default::default() });
    assert!(!plan.has_changes());
    assert!(plan.has_drift());
    assert_eq!(plan.conflicts.len(), 1);
    assert!(plan.conflicts[0].message.contains("does not own it"));
    let report = engine.apply(&plan, &obs).await;
    assert!(report.done.is_empty());
}

#[tokio::test]
async fn the_report_tells_timed_out_from_refused_from_failed() {
    let loaded = loaded();
    let fake = Arc::new(FakeProvider { fail: vec!["slow".into(), "refused".into(), "broken".into()], ..Default::default() });
    let mut registry = Registry::empty();
    registry.insert(fake.clone());
    let progress = Progress::hidden();
    let engine = engine_with(&loaded, &registry, &progress, 4);
    let desired: Vec<Desired> = ["slow", "refused", "broken"].iter().map(|n| alarm(n, json!({"v": 1}), &[])).collect();
    let obs = engine.observe(desired).await.unwrap();
    let report = engine.apply(&engine.plan(&obs, PlanOptions::default()), &obs).await;
    // (resource, class, message); the view's own test covers how each class is shown.
    let cases = [
        ("broken", FailureClass::Failed, "broken is broken"),
        ("refused", FailureClass::Refused, "refused is not allowed"),
        ("slow", FailureClass::TimedOut, "slow did not become ready within 1s"),
    ];
    for (name, class, message) in cases {
        let (_, _, err) = report.failed.iter().find(|f| f.0.name == name).expect(name);
        assert_eq!(err.class(), class, "{name}");
        assert!(matches!(err, ApplyError::Provider(_)), "{name}: the provider's error is kept whole: {err:?}");
        assert!(err.to_string().contains(message), "{name}: {err}");
    }
}

#[test]
fn atlas_answers_are_classed_by_their_status() {
    use crate::providers::atlas::client::AtlasError;
    let api = |status: u16| {
        ApplyError::Provider(ProviderError::Atlas(AtlasError::Api {
            status,
            code: "X".into(),
            detail: "d".into(),
            method: "POST".into(),
            path: "/p".into(),
        }))
    };
    let transport = ApplyError::Provider(ProviderError::Atlas(AtlasError::Transport {
        base: "b".into(),
        reason: "r".into(),
        method: "GET".into(),
        path: "/p".into(),
    }));
    let table = [
        (api(400), FailureClass::Refused),
        (api(409), FailureClass::Refused),
        (api(429), FailureClass::Failed),
        (api(500), FailureClass::Failed),
        (transport, FailureClass::Failed),
    ];
    for (e, want) in table {
        assert_eq!(e.class(), want, "{e}");
    }
}

#[tokio::test]
async fn a_failed_read_keeps_the_providers_error() {
    let fake = Arc::new(FakeProvider::default());
    let mut registry = Registry::empty();
    registry.insert(fake);
    let loaded = loaded();
    let progress = Progress::hidden();
    let engine = engine_with(&loaded, &registry, &progress, 4);
    let desired: Vec<Desired> = ["ok", "unreadable-a"].iter().map(|n| alarm(n, json!({"v": 1}), &[])).collect();
    let Err(err) = engine.observe(desired).await else { panic!("the read should fail") };
    assert_eq!(err.0.len(), 1);
    let (node, cause) = &err.0[0];
    assert_eq!(node, "monitoring.alarms.unreadable-a");
    assert!(matches!(cause, crate::engine::observe::ReadError::Provider(ProviderError::Timeout { .. })), "{cause:?}");
    assert!(err.to_string().contains("monitoring.alarms.unreadable-a: monitoring.alarms.unreadable-a did not become ready"), "{err}");
}
