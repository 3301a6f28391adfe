//! `make bench`: plan and apply of generated environments through a proxy that adds 50 ms to
//! every request (a CI runner far from the APIs). Not part of `make test` (`#[ignore]`): it
//! prints figures, it asserts nothing about speed.
//!
//! `POACTL_BENCH_SCALE` multiplies the environment (1: about 200 resources, 10: about 2,000).

use std::time::{Duration, Instant};

use crate::support::{Moto, Recorder, SPEC_ENV, Sandbox, Seen, aws_env, spec_file};

const LATENCY: Duration = Duration::from_millis(50);

/// The benchmark's environment: an Atlas project with one M10, access-list entries, users and
/// alerts; buckets, distributions, alarms and billing alarms.
fn environment(scale: usize) -> (String, usize) {
    let mut y = String::from(
        "environment: bench\natlas:\n  org_id: 0123456789abcdef01234567\n  project: bench\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1 }\n  access_list:\n",
    );
    for i in 0..60 * scale {
        y.push_str(&format!("    - {{ cidr: 10.{}.{}.0/24, comment: net {i} }}\n", i / 250, i % 250));
    }
    y.push_str("  database_users:\n");
    for i in 0..30 * scale {
        y.push_str(&format!(
            "    - {{ username: user-{i}, password: \"${{env:POAFIX_DB_PASSWORD}}\", roles: [{{ role: read, database: db{i} }}] }}\n"
        ));
    }
    y.push_str("  alerts:\n");
    for i in 0..10 * scale {
        y.push_str(&format!(
            "    - {{ event: OUTSIDE_METRIC_THRESHOLD, metric: CONNECTIONS, above: 400, matchers: [{{ field: HOSTNAME_AND_PORT, operator: EQUALS, value: \"host-{i}:27017\" }}], notify: {{ email: ops@example.com }} }}\n"
        ));
    }
    y.push_str("storage:\n  buckets:\n");
    for i in 0..30 * scale {
        y.push_str(&format!("    - {{ name: bench-bucket-{i}, versioning: true }}\n"));
    }
    y.push_str("cdn:\n  distributions:\n");
    for i in 0..2 * scale {
        y.push_str(&format!("    - {{ name: cdn-{i}, origin: {{ bucket: bench-bucket-{i} }} }}\n"));
    }
    y.push_str("monitoring:\n  alarms:\n");
    for i in 0..60 * scale {
        y.push_str(&format!("    - {{ name: alarm-{i}, metric: {{ namespace: App, name: Errors{i} }}, above: 1 }}\n"));
    }
    y.push_str("billing:\n  alerts:\n");
    for i in 0..3 {
        y.push_str(&format!("    - {{ above_usd: {} }}\n", 50 * (i + 1)));
    }
    // Project, cluster, schedule-less; the bucket policies of the distributions' origins; and
    // each billing alert is an Atlas alert and a CloudWatch alarm.
    let resources = 2 + (60 + 30 + 10 + 30 + 2 + 2 + 60) * scale + 6;
    (y, resources)
}

/// One run: exit code, wall time, peak RSS (KiB), CPU seconds, the requests it made.
type Measured = (i32, Duration, Option<u64>, f64, Vec<Seen>);

thread_local! {
    /// poactl's own CPU time (user + system) in the last `run`, when `/usr/bin/time` is there.
    static CPU: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

fn last_cpu() -> f64 {
    CPU.with(|c| c.get())
}

/// The binary measured: `POACTL_BENCH_BIN` (`make bench` sets the release build), else the
/// test build (unoptimized: its own CPU time shows in the figures).
fn binary() -> String {
    std::env::var("POACTL_BENCH_BIN").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| env!("CARGO_BIN_EXE_poactl").to_string())
}

/// Runs poactl under `/usr/bin/time` when there is one, for the peak RSS.
fn run(args: &[&str], env: &[(&str, String)]) -> (i32, Duration, Option<u64>) {
    let time = std::path::Path::new("/usr/bin/time").exists();
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = if time {
        let mut c = std::process::Command::new("/usr/bin/time");
        c.args(["-f", "%M %U %S", "-o"]).arg(out_file.path()).arg(binary());
        c
    } else {
        std::process::Command::new(binary())
    };
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("NO_COLOR", "1");
    for (k, v) in SPEC_ENV {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).output().unwrap();
    let wall = started.elapsed();
    let status = out.status;
    if !status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        println!(
            "  (exit {:?}: {})",
            status.code(),
            err.lines().filter(|l| !l.starts_with("warning")).take(3).collect::<Vec<_>>().join(" / ")
        );
    }
    let timed = std::fs::read_to_string(out_file.path()).unwrap_or_default();
    let fields: Vec<&str> = timed.trim().lines().last().unwrap_or("").split_whitespace().collect();
    let rss = fields.first().and_then(|v| v.parse().ok());
    let cpu: f64 = fields.iter().skip(1).filter_map(|v| v.parse::<f64>().ok()).sum();
    CPU.with(|c| c.set(cpu));
    (status.code().unwrap_or(-1), wall, rss)
}

/// The requests both proxies saw since `marks` (their counts before the run).
fn recent_requests(aws: &Recorder, atlas: &Recorder, marks: (usize, usize)) -> Vec<Seen> {
    let mut out: Vec<Seen> = aws.all().into_iter().skip(marks.0).collect();
    out.extend(atlas.all().into_iter().skip(marks.1));
    out
}

/// A request's operation, ids and names folded away: `GET /{bucket}?tagging`, `DescribeAlarms`,
/// `GET /api/atlas/v2/groups/{id}/clusters`.
fn operation(s: &Seen) -> String {
    if let Some(action) = &s.action {
        return action.clone();
    }
    let fold = |seg: &str, i: usize, path: &[&str]| -> String {
        let is_id = seg.len() >= 12 && seg.chars().any(|c| c.is_ascii_digit());
        let after_named = i > 0
            && matches!(
                path[i - 1],
                "groups"
                    | "clusters"
                    | "databaseUsers"
                    | "alertConfigs"
                    | "accessList"
                    | "distribution"
                    | "origin-access-control"
                    | "admin"
                    | "orgs"
                    | "tags"
                    | "snapshots"
            );
        if is_id || after_named || (i == 1 && !path[0].is_empty() && !matches!(seg, "api" | "2020-05-31")) {
            "{}".to_string()
        } else {
            seg.to_string()
        }
    };
    let path: Vec<&str> = s.path.trim_start_matches('/').split('/').collect();
    let mut folded: Vec<String> = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        folded.push(if i == 0 && !matches!(*seg, "api" | "2020-05-31" | "") { "{bucket}".to_string() } else { fold(seg, i, &path) });
    }
    let keys: Vec<&str> = s
        .query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split('=').next().unwrap_or(""))
        .filter(|k| !matches!(*k, "x-id" | "name" | "pageNum" | "itemsPerPage" | "includeCount" | "envelope" | "Marker" | "MaxItems"))
        .collect();
    let q = if keys.is_empty() { String::new() } else { format!("?{}", keys.join("&")) };
    format!("{} /{}{q}", s.method, folded.join("/"))
}

/// The longest chain of requests in which each one went out only after an earlier one was
/// answered: the round trips a run needs however fast the service answers (the emulators'
/// own time, which is not network latency, drops out).
fn chain(seen: &[Seen]) -> usize {
    let mut by_start: Vec<&Seen> = seen.iter().collect();
    by_start.sort_by_key(|s| s.at);
    let mut depth: Vec<usize> = Vec::with_capacity(by_start.len());
    for (i, r) in by_start.iter().enumerate() {
        let before = (0..i).filter(|&j| by_start[j].done.is_some_and(|d| d <= r.at)).map(|j| depth[j]).max().unwrap_or(0);
        depth.push(before + 1);
    }
    depth.into_iter().max().unwrap_or(0)
}

fn breakdown(seen: &[Seen]) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for s in seen {
        *counts.entry(operation(s)).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter().map(|(op, n)| format!("    {n:>5}  {op}")).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with make bench"]
async fn bench_plan_and_apply() {
    let scale: usize = std::env::var("POACTL_BENCH_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let (yaml, resources) = environment(scale);
    let (_dir, path) = spec_file("bench", &yaml);
    let moto = Moto::start();
    let sbx = Sandbox::start(0.2);
    let aws = Recorder::start_slow(&moto.url, LATENCY).await;
    let atlas = Recorder::start_slow(&sbx.url, LATENCY).await;
    let mut env = aws_env(&aws.url);
    for (k, v) in sbx.env() {
        env.push((k, if k == "MONGODB_ATLAS_BASE_URL" { atlas.url.clone() } else { v }));
    }
    let count = |aws: &Recorder, atlas: &Recorder| {
        let all: Vec<_> = aws.all().into_iter().chain(atlas.all()).collect();
        (all.len(), all.iter().filter(|s| s.mutating() && !s.path.starts_with("/api/oauth")).count())
    };
    println!("\nbench: {resources} resources, {} ms added to every request, binary {}", LATENCY.as_millis(), binary());

    let (before, _) = count(&aws, &atlas);
    let (code, wall, rss) = run(&["apply", "-e", &path, "--auto-approve"], &env);
    let (after, writes) = count(&aws, &atlas);
    let requests = after - before;
    println!(
        "apply      exit {code}: {:>6.2} s, {requests:>5} requests ({writes} writes), {:.2} per resource, peak RSS {} MB",
        wall.as_secs_f64(),
        requests as f64 / resources as f64,
        rss.map_or("?".to_string(), |k| (k / 1024).to_string())
    );
    for parallelism in ["default", "10", "1"] {
        let mut args = vec!["plan", "-e", &path];
        if parallelism != "default" {
            args.extend(["--parallelism", parallelism]);
        }
        // Best of three: moto (one Python process) and the sandbox add their own noise.
        let mut best: Option<Measured> = None;
        for _ in 0..3 {
            let marks = (aws.all().len(), atlas.all().len());
            let (code, wall, rss) = run(&args, &env);
            if best.as_ref().is_none_or(|b| wall < b.1) {
                best = Some((code, wall, rss, last_cpu(), recent_requests(&aws, &atlas, marks)));
            }
        }
        let Some((code, wall, rss, cpu, seen)) = best else { continue };
        let requests = seen.len();
        let writes = seen.iter().filter(|s| s.mutating() && !s.path.starts_with("/api/oauth")).count();
        println!(
            "plan -p {parallelism:<7} exit {code}: {:>6.2} s = {:>5.1} round trips of wall time, a chain of {} requests, {requests:>5} requests, {:.2} per resource, {} writes, peak RSS {} MB, poactl CPU {:.2} s",
            wall.as_secs_f64(),
            wall.as_secs_f64() / LATENCY.as_secs_f64(),
            chain(&seen),
            requests as f64 / resources as f64,
            writes,
            rss.map_or("?".to_string(), |k| (k / 1024).to_string()),
            cpu
        );
        if parallelism == "default" && std::env::var_os("POACTL_BENCH_BREAKDOWN").is_some() {
            let mut plan_requests = seen.clone();
            println!("{}", breakdown(&plan_requests));
            // When each request started, by 50 ms slot since the first: the waves of the run.
            plan_requests.sort_by_key(|s| s.at);
            if let Some(first) = plan_requests.first().map(|s| s.at) {
                let mut slots: std::collections::BTreeMap<u128, Vec<String>> = Default::default();
                for s in &plan_requests {
                    slots.entry((s.at - first).as_millis() / LATENCY.as_millis()).or_default().push(operation(s));
                }
                for (slot, ops) in slots {
                    let mut by_op: std::collections::BTreeMap<&str, usize> = Default::default();
                    for op in &ops {
                        *by_op.entry(op.as_str()).or_default() += 1;
                    }
                    let summary: Vec<String> = by_op.into_iter().map(|(op, n)| format!("{n}x {op}")).collect();
                    println!("    slot {slot:>3}: {}", summary.join(", "));
                }
            }
        }
    }
    let (big, big_resources) = environment(5);
    let (_d2, big_path) = spec_file("big", &big);
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let (_, wall, _) = run(&["validate", "-e", &big_path], &[]);
        best = best.min(wall);
    }
    println!("validate of a {big_resources}-resource spec: {:.1} ms (best of 5, process start included)", best.as_secs_f64() * 1000.0);
}

/// Runs the measured binary and returns its JSON output.
fn run_json(args: &[String], env: &[(&str, String)]) -> serde_json::Value {
    let out = std::process::Command::new(binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `migrate data` into the scripted wire mock (in this process) from the generated dump of the
/// seed's 7 collections (`POACTL_BENCH_SCALE` x 20: about 94,000 documents, 15 MB at 1), and
/// `migrate uploads` to moto (the seed's uploads plus four 32 MiB files), each run cold and
/// then again (the resume: everything already there). The figures include the verification
/// (both sides read again and hashed). The mock answers from memory, so the data figures are
/// poactl's own ceiling, not a real cluster's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with make bench"]
async fn bench_migrate() {
    let scale: usize = std::env::var("POACTL_BENCH_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    let seed = std::process::Command::new("python3")
        .arg(crate::support::repo().join("scripts/seed-data.py"))
        .arg(dir.path())
        .arg((20 * scale).to_string())
        .output()
        .unwrap();
    assert!(seed.status.success(), "{}", String::from_utf8_lossy(&seed.stderr));
    let mock = poactl::sandbox::mongo::MongoMock::start().await;
    let (_spec_dir, spec) = spec_file("bench", "environment: bench\ndatabase:\n  name: home_service_db\n");
    let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];
    let from = dir.path().join("dump").to_string_lossy().to_string();
    println!("\nmigrate data (dump -> wire mock, copy + verify), {}:", binary());
    for label in ["cold", "rerun (resume: all there)"] {
        let args: Vec<String> = ["migrate", "data", "-e", &spec, "--from", &from, "-o", "json"].iter().map(|s| s.to_string()).collect();
        let v = tokio::task::spawn_blocking({
            let env = env.clone();
            move || run_json(&args, &env)
        })
        .await
        .unwrap();
        println!(
            "  {label:<28} {} documents, {:.1} MB in {:.2} s: {:.0} documents/s, {:.1} MB/s",
            v["documents"],
            v["bytes"].as_f64().unwrap_or(0.0) / 1e6,
            v["seconds"].as_f64().unwrap_or(0.0),
            v["documents_per_second"].as_f64().unwrap_or(0.0),
            v["mb_per_second"].as_f64().unwrap_or(0.0)
        );
    }

    let moto = Moto::start();
    let aws = aws_env(&moto.url);
    let (_d, uspec) = spec_file("benchup", "environment: benchup\nstorage:\n  buckets:\n    - { name: bench-uploads }\n");
    let (code, _, _) = run(&["apply", "-e", &uspec, "--auto-approve", "-q"], &aws);
    assert_eq!(code, 0);
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(uploads.join("videos")).unwrap();
    for i in 0..4u8 {
        std::fs::write(uploads.join(format!("videos/clip-{i}.mp4")), vec![i; 32 * 1024 * 1024]).unwrap();
    }
    let files = uploads.to_string_lossy().to_string();
    let manifest = dir.path().join("manifest.json").to_string_lossy().to_string();
    println!("migrate uploads (local -> moto S3, upload + verify):");
    for label in ["cold", "rerun (all there)"] {
        let args: Vec<String> = ["migrate", "uploads", "-e", &uspec, "--from", &files, "--manifest", &manifest, "-o", "json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = tokio::task::spawn_blocking({
            let aws = aws.clone();
            move || run_json(&args, &aws)
        })
        .await
        .unwrap();
        let secs = v["seconds"].as_f64().unwrap_or(0.0);
        println!(
            "  {label:<28} {} uploaded, {} already there, {:.1} MB in {secs:.2} s: {:.1} MB/s, {:.0} files/s",
            v["uploaded"],
            v["already_there"],
            v["bytes_uploaded"].as_f64().unwrap_or(0.0) / 1e6,
            v["mb_per_second"].as_f64().unwrap_or(0.0),
            (v["uploaded"].as_f64().unwrap_or(0.0) + v["already_there"].as_f64().unwrap_or(0.0)) / secs.max(1e-9)
        );
    }
}
