//! `poactl check`: an end-to-end smoke test of the live environment. Read-only, except for one
//! probe object per bucket that it deletes again. Each check passes, fails or is skipped (with
//! why), with its timing; exit 0 when none failed, 1 otherwise.

use std::time::Instant;

use anyhow::{Result, bail};
use mongodb::bson::doc;
use serde_json::json;

use super::{format, load_env};
use crate::cli::{CheckArgs, Global, OutputFormat};
use crate::engine::{Engine, Observation};
use crate::progress::Progress;
use crate::providers::{self, Connections, Desired, Registry};
use crate::resource::Kind;
use crate::spec::LoadedSpec;
use crate::{exit, secrets};

const GROUPS: &[&str] = &["database", "storage", "alarms", "backups"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, serde::Serialize)]
struct Outcome {
    group: &'static str,
    name: String,
    status: Status,
    ms: u64,
    detail: String,
}

fn outcome(group: &'static str, name: impl Into<String>, status: Status, started: Instant, detail: impl Into<String>) -> Outcome {
    Outcome { group, name: name.into(), status, ms: started.elapsed().as_millis() as u64, detail: secrets::redact(&detail.into()) }
}

/// `poactl check`.
pub(super) async fn run(g: &Global, a: CheckArgs) -> Result<u8> {
    if let Some(bad) = a.only.iter().find(|o| !GROUPS.contains(&o.as_str())) {
        bail!("--only {bad}: not a group of checks; use {}", GROUPS.join(", "));
    }
    let want = |group: &str| a.only.is_empty() || a.only.iter().any(|o| o == group);
    let loaded = load_env(g)?;
    let desired: Vec<Desired> = providers::desired(&loaded).into_iter().filter(|d| d.address.kind != Kind::Index).collect();
    let kinds: std::collections::BTreeSet<Kind> = desired.iter().map(|d| d.address.kind).collect();
    let registry = Registry::for_spec(&loaded, &Connections::default(), Some(&kinds)).await?;
    let progress = Progress::for_terminal(g.quiet || format(g) != OutputFormat::Text);
    let engine = Engine {
        loaded: &loaded,
        registry: &registry,
        progress: &progress,
        parallelism: g.parallelism.map(usize::from),
        options: Default::default(),
        discover_kinds: Some(Default::default()),
    };
    let obs = engine.observe(desired.clone()).await?;
    let aws = if kinds.iter().any(|k| matches!(k, Kind::Bucket | Kind::Alarm | Kind::BillingAlarm)) {
        Some(providers::aws::Aws::new(loaded.spec.aws_region()).await)
    } else {
        None
    };
    let mut results = Vec::new();
    if want("database") {
        let task = progress.spinner("checking the database logins".to_string());
        results.extend(database(&loaded, &obs).await);
        task.finish();
    }
    if want("storage")
        && let Some(aws) = &aws
    {
        let task = progress.spinner("checking the buckets".to_string());
        results.extend(storage(&loaded, &obs, aws).await);
        task.finish();
    }
    if want("alarms") {
        results.extend(alarms(&obs, aws.as_ref()).await);
    }
    if want("backups") {
        results.extend(backups(&loaded, &obs));
    }
    let failed = results.iter().filter(|r| r.status == Status::Fail).count();
    match format(g) {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"environment": loaded.env, "passed": failed == 0, "failed": failed, "checks": results}))?
        ),
        _ => {
            for r in &results {
                let mark = match r.status {
                    Status::Pass => "pass",
                    Status::Fail => "FAIL",
                    Status::Skip => "skip",
                };
                println!(
                    "  {mark}  {:<8} {} ({} ms){}",
                    r.group,
                    r.name,
                    r.ms,
                    if r.detail.is_empty() { String::new() } else { format!(": {}", r.detail) }
                );
            }
            let passed = results.iter().filter(|r| r.status == Status::Pass).count();
            let skipped = results.len() - passed - failed;
            println!("\nCheck of \"{}\": {passed} passed, {failed} failed, {skipped} skipped.", loaded.env);
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::ERROR })
}

/// Roles that read every database: a "forbidden" probe cannot exist for them.
const EVERY_DATABASE: &[&str] = &["readAnyDatabase", "readWriteAnyDatabase", "atlasAdmin", "root"];

/// Each SCRAM user of the spec logs in through `database.uri`, pings, tries what each of its
/// roles allows (a `find` of one document, or `listCollections` for dbAdmin) and a read of a
/// database none of its roles names, which the server must refuse (Unauthorized, 13).
async fn database(loaded: &LoadedSpec, obs: &Observation) -> Vec<Outcome> {
    const G: &str = "database";
    let mut out = Vec::new();
    let Some(atlas) = &loaded.spec.atlas else { return out };
    if loaded.spec.database.as_ref().and_then(|d| d.uri.as_ref()).is_none() {
        out.push(outcome(G, "connect", Status::Skip, Instant::now(), "the spec has no database.uri: set it to check the logins"));
        return out;
    }
    for user in &atlas.database_users {
        let t = Instant::now();
        let name = format!("log in as {}", user.key());
        if user.auth.is_some() {
            out.push(outcome(G, name, Status::Skip, t, "an X.509, IAM, LDAP or OIDC user: poactl logs in with passwords only here"));
            continue;
        }
        let uri = match providers::mongo_index::connection_string_as(loaded, &obs.outputs, user) {
            Ok(Some(u)) => u,
            Ok(None) => {
                out.push(outcome(G, name, Status::Skip, t, "database.uri carries its own credentials"));
                continue;
            }
            Err(e) => {
                out.push(outcome(G, name, Status::Fail, t, e.to_string()));
                continue;
            }
        };
        let client = match providers::mongo_index::parse_waiting_for_dns(&uri).await {
            Ok((mut opts, _)) => {
                opts.server_selection_timeout.get_or_insert(std::time::Duration::from_secs(10));
                opts.app_name = Some("poactl-check".into());
                mongodb::Client::with_options(opts)
            }
            Err(e) => {
                out.push(outcome(G, name, Status::Fail, t, e.to_string()));
                continue;
            }
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                out.push(outcome(G, name, Status::Fail, t, e.to_string()));
                continue;
            }
        };
        if let Err(e) = client.database("admin").run_command(doc! {"ping": 1}).await {
            let why = match e.kind.as_ref() {
                mongodb::error::ErrorKind::Authentication { .. } => {
                    "the server refused the login (AuthenticationFailed, 18): check the password in the environment and that the user has reached the cluster".to_string()
                }
                _ => format!("cannot reach the database ({e}): is this machine's IP in atlas.access_list?"),
            };
            out.push(outcome(G, name, Status::Fail, t, why));
            continue;
        }
        out.push(outcome(G, name, Status::Pass, t, ""));
        for role in &user.roles {
            let t = Instant::now();
            let name = format!("{} may use its {} role on {}", user.key(), role.role, role.database);
            let db = client.database(&role.database);
            let probe = match role.role.as_str() {
                "read" | "readWrite" | "dbOwner" => {
                    doc! {"find": role.collection.as_deref().unwrap_or("poactl_check"), "filter": {}, "limit": 1, "batchSize": 1, "singleBatch": true}
                }
                "dbAdmin" => doc! {"listCollections": 1, "nameOnly": true},
                _ => {
                    out.push(outcome(G, name, Status::Skip, t, "no probe for this role"));
                    continue;
                }
            };
            match db.run_command(probe).await {
                Ok(_) => out.push(outcome(G, name, Status::Pass, t, "")),
                Err(e) => out.push(outcome(G, name, Status::Fail, t, format!("refused: {e}"))),
            }
        }
        let t = Instant::now();
        let name = format!("{} is refused outside its roles", user.key());
        if user.roles.iter().any(|r| EVERY_DATABASE.contains(&r.role.as_str())) {
            out.push(outcome(G, name, Status::Skip, t, "it has a role on every database (see `poactl audit`)"));
            continue;
        }
        let outside = client.database("poactl_check_outside_roles");
        match outside.run_command(doc! {"find": "probe", "filter": {}, "limit": 1, "singleBatch": true}).await {
            Err(e) if providers::mongo_index::error_code(&e) == Some(13) => {
                out.push(outcome(G, name, Status::Pass, t, "Unauthorized (13), as its roles say"))
            }
            Ok(_) => out.push(outcome(
                G,
                name,
                Status::Fail,
                t,
                "it read a database none of its roles in the spec names: the user has more rights on the cluster than the spec gives it",
            )),
            Err(e) => out.push(outcome(G, name, Status::Fail, t, format!("expected Unauthorized (13), got: {e}"))),
        }
    }
    out
}

/// A probe object in each bucket: put, get (the same bytes back), delete.
async fn storage(loaded: &LoadedSpec, obs: &Observation, aws: &providers::aws::Aws) -> Vec<Outcome> {
    const G: &str = "storage";
    let mut out = Vec::new();
    for d in obs.desired.iter().filter(|d| d.address.kind == Kind::Bucket) {
        let t = Instant::now();
        let name = format!("write, read and delete a probe in {}", d.address);
        let Some(Some(o)) = obs.observed.get(&d.address) else {
            out.push(outcome(G, name, Status::Fail, t, "the bucket does not exist: run `poactl apply`"));
            continue;
        };
        let region = d.attrs.get("region").and_then(|r| r.as_str()).map(String::from).unwrap_or_else(|| loaded.spec.aws_region());
        let s3 = aws.s3(&region).await;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let key = format!("poactl-check/{}-{nanos}.txt", loaded.env);
        let body = format!("poactl check probe {key}");
        if let Err(e) =
            s3.put_object().bucket(&o.id).key(&key).body(body.clone().into_bytes().into()).content_type("text/plain").send().await
        {
            out.push(outcome(G, name, Status::Fail, t, format!("PutObject refused: {}", aws_sdk_s3::error::DisplayErrorContext(&e))));
            continue;
        }
        let read = match s3.get_object().bucket(&o.id).key(&key).send().await {
            Ok(got) => match got.body.collect().await.map(|b| b.into_bytes()) {
                Ok(bytes) if bytes.as_ref() == body.as_bytes() => Ok(()),
                Ok(_) => Err("GetObject returned other bytes than were written".to_string()),
                Err(e) => Err(format!("GetObject body: {e}")),
            },
            Err(e) => Err(format!("GetObject refused: {}", aws_sdk_s3::error::DisplayErrorContext(&e))),
        };
        let deleted = s3.delete_object().bucket(&o.id).key(&key).send().await;
        match (read, deleted) {
            (Ok(()), Ok(_)) => out.push(outcome(G, name, Status::Pass, t, "")),
            (Err(e), _) => out.push(outcome(G, name, Status::Fail, t, e)),
            (Ok(()), Err(e)) => out.push(outcome(
                G,
                name,
                Status::Fail,
                t,
                format!("the probe {key} could not be deleted ({}): delete it by hand", aws_sdk_s3::error::DisplayErrorContext(&e)),
            )),
        }
    }
    out
}

/// A day without data: longer than any period poactl allows, and than the billing metric's
/// interval (AWS publishes EstimatedCharges about every 6 hours).
const NO_DATA_FOR_LONG: i64 = 24 * 3600;

/// Each alarm and alert exists; an alarm still without data after a day is a fail: its metric
/// or dimensions are wrong, or, for billing, "Receive Billing Alerts" is off in the account.
async fn alarms(obs: &Observation, aws: Option<&providers::aws::Aws>) -> Vec<Outcome> {
    const G: &str = "alarms";
    let mut out = Vec::new();
    for d in obs.desired.iter().filter(|d| matches!(d.address.kind, Kind::Alarm | Kind::BillingAlarm | Kind::AtlasAlert)) {
        let t = Instant::now();
        let name = format!("{} exists and reports", d.address);
        let Some(Some(o)) = obs.observed.get(&d.address) else {
            out.push(outcome(G, name, Status::Fail, t, "it does not exist: run `poactl apply`"));
            continue;
        };
        if d.address.kind == Kind::AtlasAlert {
            let enabled = o.attrs.get("enabled").and_then(|e| e.as_bool()).unwrap_or(true);
            out.push(outcome(
                G,
                name,
                if enabled { Status::Pass } else { Status::Fail },
                t,
                if enabled { "" } else { "the alert is disabled in Atlas" },
            ));
            continue;
        }
        let Some(aws) = aws else { continue };
        let region = if d.address.kind == Kind::BillingAlarm {
            providers::aws::cloudwatch::BILLING_REGION.to_string()
        } else {
            d.attrs.get("region").and_then(|r| r.as_str()).map(String::from).unwrap_or_else(|| aws.region.clone())
        };
        let cw = aws.cloudwatch(&region).await;
        let alarm = match cw.describe_alarms().alarm_names(&o.id).send().await {
            Ok(r) => r.metric_alarms.unwrap_or_default().into_iter().next(),
            Err(e) => {
                out.push(outcome(
                    G,
                    name,
                    Status::Fail,
                    t,
                    format!("DescribeAlarms: {}", aws_sdk_cloudwatch::error::DisplayErrorContext(&e)),
                ));
                continue;
            }
        };
        let Some(alarm) = alarm else {
            out.push(outcome(G, name, Status::Fail, t, "it does not exist: run `poactl apply`"));
            continue;
        };
        let state = alarm.state_value.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default();
        let since = alarm.state_updated_timestamp.map(|ts| ts.secs());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let long = since.is_some_and(|s| now - s > NO_DATA_FOR_LONG);
        let (status, detail) = match (state.as_str(), long, d.address.kind) {
            ("INSUFFICIENT_DATA", true, Kind::BillingAlarm) => (
                Status::Fail,
                "no billing data for over a day: turn on \"Receive Billing Alerts\" in the account's Billing preferences (billing metrics are published to us-east-1 only once it is on)".to_string(),
            ),
            ("INSUFFICIENT_DATA", true, _) => {
                (Status::Fail, "no data for over a day: check the metric's namespace, name and dimensions".to_string())
            }
            ("INSUFFICIENT_DATA", false, _) => (Status::Pass, "INSUFFICIENT_DATA (new; data arrives within the metric's period)".to_string()),
            (s, _, _) => (Status::Pass, s.to_string()),
        };
        out.push(outcome(G, name, status, t, detail));
    }
    out
}

/// Each cluster with `backup.enabled`: its latest completed snapshot is younger than its
/// schedule allows (half an interval of grace), and point-in-time is on where the spec asks.
fn backups(loaded: &LoadedSpec, obs: &Observation) -> Vec<Outcome> {
    const G: &str = "backups";
    let mut out = Vec::new();
    let clusters = loaded.spec.atlas.iter().flat_map(|a| a.clusters.iter());
    for c in clusters.filter(|c| c.backup.as_ref().is_some_and(|b| b.enabled)) {
        let t = Instant::now();
        let cluster = crate::resource::Address::new(Kind::AtlasCluster, &c.name);
        let name = format!("{cluster} has a recent snapshot");
        let Some(Some(live)) = obs.observed.get(&cluster) else {
            out.push(outcome(G, name, Status::Fail, t, "the cluster does not exist: run `poactl apply`"));
            continue;
        };
        let schedule = obs.observed.get(&crate::resource::Address::new(Kind::AtlasBackupSchedule, &c.name)).and_then(|o| o.as_ref());
        match schedule {
            None => out.push(outcome(G, name, Status::Skip, t, "no cloud backup schedule to read on this tier")),
            Some(s) => {
                use crate::providers::atlas::backup::{SnapshotAge, snapshot_age};
                let age = snapshot_age(s, mongodb::bson::DateTime::now().timestamp_millis());
                let (status, detail) = match (&age, age.problem()) {
                    (_, Some(problem)) => (Status::Fail, problem),
                    (SnapshotAge::Recent { at, hours }, None) => (Status::Pass, format!("latest {at} ({hours:.1} h ago)")),
                    _ => (Status::Skip, "no completed snapshot yet; the first is not due".to_string()),
                };
                out.push(outcome(G, name, status, t, detail));
            }
        }
        if c.backup.as_ref().is_some_and(|b| b.point_in_time) {
            let t = Instant::now();
            let on = live.attrs.get("point_in_time") == Some(&json!(true));
            out.push(outcome(
                G,
                format!("{cluster} has point-in-time restore on"),
                if on { Status::Pass } else { Status::Fail },
                t,
                if on { "" } else { "the spec asks for point_in_time, and the cluster has it off: run `poactl apply`" },
            ));
        }
    }
    out
}
