//! `poactl check`: an end-to-end smoke test of the live environment. Read-only, except for one
//! probe object per bucket that it deletes again. Each check passes, fails or is skipped (with
//! why), with its timing; exit 0 when none failed, 1 otherwise.

use std::time::Instant;

use anyhow::{Result, bail};
use mongodb::bson::doc;
use serde_json::json;

use super::{format, load_env, observe_declared};
use crate::cli::{CheckArgs, Global, OutputFormat};
use crate::engine::Observation;
use crate::progress::Progress;
use crate::providers::{self, Connections, Desired};
use crate::resource::Kind;
use crate::spec::LoadedSpec;
use crate::{exit, secrets};

const GROUPS: &[&str] = &["database", "storage", "cdn", "alarms", "backups"];

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
    let desired: Vec<Desired> = providers::desired(&loaded).into_iter().filter(|d| !d.address.kind.in_database()).collect();
    let kinds: std::collections::BTreeSet<Kind> = desired.iter().map(|d| d.address.kind).collect();
    let progress = Progress::for_terminal(g.quiet || format(g) != OutputFormat::Text);
    let obs = observe_declared(g, &loaded, &Connections::default(), desired, Default::default(), &progress).await?;
    let aws = if kinds.iter().any(|k| matches!(k, Kind::Bucket | Kind::Distribution | Kind::Alarm | Kind::BillingAlarm)) {
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
    if want("cdn")
        && let Some(aws) = &aws
    {
        let task = progress.spinner("checking the distributions".to_string());
        results.extend(cdn(&loaded, &obs, aws).await);
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
                providers::mongo_index::bound_client_options(&mut opts);
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

/// A name no other probe (of this run or another) shares: the environment and the time.
fn probe_token(env: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{env}-{nanos}")
}

/// A declared bucket's region: its own, else the environment's.
fn bucket_region(loaded: &LoadedSpec, bucket: &Desired) -> String {
    bucket.attrs.get("region").and_then(|r| r.as_str()).map(String::from).unwrap_or_else(|| loaded.spec.aws_region())
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
        let region = bucket_region(loaded, d);
        let s3 = aws.s3(&region).await;
        let key = format!("poactl-check/{}.txt", probe_token(&loaded.env));
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

/// Whether a CloudFront path pattern matches a path (no leading `/`): `*` is any run of
/// characters, `?` one character, case-sensitive (CloudFront Developer Guide, "Path pattern").
fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.trim_start_matches('/').chars().collect(), path.chars().collect());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < s.len() {
        if i < p.len() && (p[i] == '?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(st) = star {
            i = st + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// One probe path per cache behavior of the spec, and one for the default behavior, each with
/// the TTL of the behavior CloudFront picks for it (the first pattern that matches, in order).
fn cdn_probes(attrs: &serde_json::Value, token: &str) -> Vec<(String, String, i64)> {
    let behaviors: Vec<(String, i64)> = attrs["behaviors"]
        .as_array()
        .map(|b| b.iter().map(|b| (b["path"].as_str().unwrap_or("").to_string(), b["default_ttl"].as_i64().unwrap_or(0))).collect())
        .unwrap_or_default();
    let default_ttl = attrs.pointer("/default_behavior/default_ttl").and_then(|v| v.as_i64()).unwrap_or(86_400);
    let picked = |path: &str| behaviors.iter().find(|(p, _)| path_matches(p, path)).map(|(p, t)| (p.clone(), *t));
    let mut probes = Vec::new();
    for (pattern, _) in &behaviors {
        let path = pattern.trim_start_matches('/').replace('*', token).replace('?', "x");
        if let Some((by, ttl)) = picked(&path) {
            probes.push((path, by, ttl));
        }
    }
    let root = format!("{token}.txt");
    // When even this path falls under a pattern, the default behavior is not probed.
    if picked(&root).is_none() {
        probes.push((root, "default".to_string(), default_ttl));
    }
    let mut seen = std::collections::BTreeSet::new();
    probes.retain(|p| seen.insert(p.1.clone()));
    probes
}

/// Each distribution serves a probe from its origin bucket over HTTPS: it arrives through the
/// OAC, a direct anonymous GET of the same object is refused, and each cache behavior caches
/// it (or not) as its TTL says. `POACTL_CDN_EDGE_URL` sends the requests to another edge
/// (an HTTP proxy or fake), with the distribution's name as `Host`.
async fn cdn(loaded: &LoadedSpec, obs: &Observation, aws: &providers::aws::Aws) -> Vec<Outcome> {
    const G: &str = "cdn";
    let mut out = Vec::new();
    let http = match reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build() {
        Ok(h) => h,
        Err(e) => {
            out.push(outcome(G, "an HTTP client", Status::Fail, Instant::now(), e.to_string()));
            return out;
        }
    };
    let edge = std::env::var("POACTL_CDN_EDGE_URL").ok().filter(|v| !v.is_empty());
    for d in obs.desired.iter().filter(|d| d.address.kind == Kind::Distribution) {
        let t = Instant::now();
        let served = format!("{} serves a probe over HTTPS through its OAC", d.address);
        let Some(Some(o)) = obs.observed.get(&d.address) else {
            out.push(outcome(G, served, Status::Fail, t, "the distribution does not exist: run `poactl apply`"));
            continue;
        };
        let Some(domain) = o.outputs.get("domain").cloned() else {
            out.push(outcome(G, served, Status::Fail, t, "CloudFront gave no domain name for it"));
            continue;
        };
        if o.handle.get("status").and_then(|s| s.as_str()).is_some_and(|s| s != "Deployed") {
            out.push(outcome(G, served, Status::Skip, t, "still deploying (status InProgress): check again once it is Deployed"));
            continue;
        }
        let bucket_name = d.attrs.pointer("/origin/bucket").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let bucket = crate::resource::Address::new(Kind::Bucket, &bucket_name);
        let region =
            obs.desired.iter().find(|b| b.address == bucket).map_or_else(|| loaded.spec.aws_region(), |b| bucket_region(loaded, b));
        let origin_path = d.attrs.pointer("/origin/path").and_then(|v| v.as_str()).unwrap_or("").trim_matches('/').to_string();
        let s3 = aws.s3(&region).await;
        let token = format!("poactl-check-{}", probe_token(&loaded.env));
        // Through a name: the distribution's own, or one of its aliases (with an edge of the
        // user's, as the `Host`; otherwise by DNS and the name's TLS certificate).
        let get_as = |host: &str, path: &str| {
            let url = match &edge {
                Some(e) => format!("{}/{path}", e.trim_end_matches('/')),
                None => format!("https://{host}/{path}"),
            };
            let mut req = http.get(url);
            if edge.is_some() {
                req = req.header(reqwest::header::HOST, host);
            }
            req.send()
        };
        let get = |path: &str| get_as(&domain, path);
        // The spec's names: what viewers are meant to use, whatever the live config says.
        let aliases: Vec<String> = d.attrs["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .filter(|a| !a.starts_with("*."))
            .map(String::from)
            .collect();
        let mut first = true;
        for (path, behavior, ttl) in cdn_probes(&d.attrs, &token) {
            let t = Instant::now();
            let key = if origin_path.is_empty() { path.clone() } else { format!("{origin_path}/{path}") };
            let body = format!("poactl check probe {key}");
            if let Err(e) = s3
                .put_object()
                .bucket(&bucket_name)
                .key(&key)
                .body(body.clone().into_bytes().into())
                .content_type("text/plain")
                .send()
                .await
            {
                out.push(outcome(
                    G,
                    served.clone(),
                    Status::Fail,
                    t,
                    format!("the probe could not be written to {bucket}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)),
                ));
                break;
            }
            let fetched = get(&path).await;
            let second = get(&path).await;
            let mut through_aliases = Vec::new();
            if first {
                for alias in &aliases {
                    through_aliases.push((alias.clone(), Instant::now(), get_as(alias, &path).await));
                }
            }
            let direct = http.get(aws.s3_object_url(&bucket_name, &region, &key)).send().await;
            let deleted = s3.delete_object().bucket(&bucket_name).key(&key).send().await;
            if first {
                first = false;
                let verdict = match fetched {
                    Err(e) => (Status::Fail, format!("GET https://{domain}/{path}: {e}")),
                    Ok(r) if r.status().is_success() => match r.text().await {
                        Ok(text) if text == body => (Status::Pass, String::new()),
                        Ok(_) => (Status::Fail, format!("https://{domain}/{path} answered other bytes than the probe")),
                        Err(e) => (Status::Fail, format!("reading https://{domain}/{path}: {e}")),
                    },
                    // A 403 from the edge is S3 refusing CloudFront: no OAC on the origin, or a
                    // bucket policy without the distribution (CloudFront Developer Guide,
                    // "Restrict access to an Amazon S3 origin").
                    Ok(r) if r.status() == reqwest::StatusCode::FORBIDDEN => (
                        Status::Fail,
                        format!(
                            "https://{domain}/{path} answered 403: the bucket refuses CloudFront; run `poactl apply` to put back the OAC and {bucket}'s policy"
                        ),
                    ),
                    Ok(r) => (Status::Fail, format!("https://{domain}/{path} answered {}", r.status())),
                };
                out.push(outcome(G, served.clone(), verdict.0, t, verdict.1));
                for (alias, t, got) in through_aliases {
                    let name = format!("{} serves the probe as https://{alias}", d.address);
                    // A TLS failure here is a certificate that does not cover the name; a
                    // resolution failure, DNS that does not point at the distribution yet.
                    out.push(match got {
                        Err(e) => outcome(
                            G,
                            name,
                            Status::Fail,
                            t,
                            format!(
                                "{}: check that {alias} points at {domain} and that the certificate covers it",
                                crate::secrets::error_chain(&e)
                            ),
                        ),
                        Ok(r) if r.status().is_success() => match r.text().await {
                            Ok(text) if text == body => outcome(G, name, Status::Pass, t, ""),
                            _ => outcome(G, name, Status::Fail, t, format!("https://{alias}/{path} answered other bytes than the probe")),
                        },
                        Ok(r) => outcome(
                            G,
                            name,
                            Status::Fail,
                            t,
                            format!(
                                "https://{alias}/{path} answered {}: is {alias} an alias of this distribution and pointed at {domain}?",
                                r.status()
                            ),
                        ),
                    });
                }
                let t = Instant::now();
                let name = format!("{bucket} refuses a direct GET of the probe");
                out.push(match direct {
                    Ok(r) if r.status() == reqwest::StatusCode::FORBIDDEN => outcome(G, name, Status::Pass, t, ""),
                    Ok(r) if r.status().is_success() => outcome(
                        G,
                        name,
                        Status::Fail,
                        t,
                        "anyone can read it without the CDN: the bucket or the object is public; `public_access: blocked` and `poactl apply`",
                    ),
                    Ok(r) => outcome(G, name, Status::Fail, t, format!("the direct GET answered {} (403 expected)", r.status())),
                    Err(e) => outcome(G, name, Status::Skip, t, format!("S3 could not be reached without credentials: {e}")),
                });
            }
            let t = Instant::now();
            let name = format!(
                "{} caches {} as its TTL says ({ttl} s)",
                d.address,
                if behavior == "default" { "the default behavior".to_string() } else { format!("`{behavior}`") }
            );
            // X-Cache says where the answer came from: "Hit from cloudfront", "RefreshHit ...",
            // "Miss from cloudfront" (CloudFront Developer Guide, "Standard logging" x-edge-result-type).
            let cache = second.ok().and_then(|r| r.headers().get("x-cache").and_then(|v| v.to_str().ok()).map(str::to_string));
            out.push(match cache {
                None => outcome(G, name, Status::Skip, t, "the edge sent no X-Cache header"),
                Some(c) => {
                    let hit = c.to_ascii_lowercase().starts_with("hit");
                    match (ttl > 0, hit) {
                        (true, true) | (false, false) => outcome(G, name, Status::Pass, t, ""),
                        (true, false) => outcome(
                            G,
                            name,
                            Status::Fail,
                            t,
                            format!("a second GET was not cached ({c}): the live behavior's TTL is not the spec's; run `poactl apply`"),
                        ),
                        (false, true) => outcome(
                            G,
                            name,
                            Status::Fail,
                            t,
                            format!("a second GET came from the cache ({c}) though the spec says TTL 0; run `poactl apply`"),
                        ),
                    }
                }
            });
            if let Err(e) = deleted {
                out.push(outcome(
                    G,
                    format!("delete the probe {key}"),
                    Status::Fail,
                    t,
                    format!("{}: delete it by hand", aws_sdk_s3::error::DisplayErrorContext(&e)),
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_match_as_cloudfront_reads_them() {
        // (pattern, path, matches)
        let cases = [
            ("images/*", "images/a.png", true),
            ("/images/*", "images/a.png", true),
            ("images/*", "Images/a.png", false),
            ("*.jpg", "a/b/c.jpg", true),
            ("*.jpg", "a.jpeg", false),
            ("api/v?/*", "api/v1/users", true),
            ("api/v?/*", "api/v10/users", false),
            ("*", "anything", true),
            ("docs/*", "docs/", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(path_matches(pattern, path), want, "{pattern} on {path}");
        }
    }

    #[test]
    fn one_probe_per_reachable_behavior_with_the_ttl_cloudfront_would_pick() {
        let attrs = json!({
            "default_behavior": {"default_ttl": 86400},
            "behaviors": [
                {"path": "images/*", "default_ttl": 31536000},
                {"path": "images/thumbs/*", "default_ttl": 60},
                {"path": "api/*", "default_ttl": 0},
            ],
        });
        let probes = cdn_probes(&attrs, "T");
        assert_eq!(
            probes,
            vec![
                ("images/T".to_string(), "images/*".to_string(), 31_536_000),
                ("api/T".to_string(), "api/*".to_string(), 0),
                ("T.txt".to_string(), "default".to_string(), 86_400),
            ],
            "images/thumbs/* is shadowed by images/*: CloudFront never reaches it"
        );
        let all = json!({"default_behavior": {"default_ttl": 5}, "behaviors": [{"path": "*", "default_ttl": 7}]});
        assert_eq!(cdn_probes(&all, "T"), vec![("T".to_string(), "*".to_string(), 7)]);
    }
}
