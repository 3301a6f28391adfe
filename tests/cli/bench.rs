//! `make bench`: plan and apply of generated environments through a proxy that adds 50 ms to
//! every request (a CI runner far from the APIs). Not part of `make test` (`#[ignore]`): it
//! prints figures, it asserts nothing about speed.
//!
//! `POACTL_BENCH_SCALE` multiplies the environment (1: about 200 resources, 10: about 2,000).

use std::time::{Duration, Instant};

use crate::support::{Moto, Recorder, SPEC_ENV, Sandbox, aws_env, spec_file};

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

/// Runs poactl under `/usr/bin/time` when there is one, for the peak RSS.
fn run(args: &[&str], env: &[(&str, String)]) -> (i32, Duration, Option<u64>) {
    let time = std::path::Path::new("/usr/bin/time").exists();
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = if time {
        let mut c = std::process::Command::new("/usr/bin/time");
        c.args(["-f", "%M", "-o"]).arg(out_file.path()).arg(env!("CARGO_BIN_EXE_poactl"));
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_poactl"))
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
    let rss = std::fs::read_to_string(out_file.path()).ok().and_then(|t| t.trim().lines().last()?.trim().parse().ok());
    (status.code().unwrap_or(-1), wall, rss)
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
    println!("\nbench: {resources} resources, {} ms added to every request", LATENCY.as_millis());

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
    for parallelism in ["16", "10", "1"] {
        let (before, writes_before) = count(&aws, &atlas);
        let (code, wall, rss) = run(&["plan", "-e", &path, "--parallelism", parallelism], &env);
        let (after, writes_after) = count(&aws, &atlas);
        let requests = after - before;
        println!(
            "plan -p{parallelism:<3} exit {code}: {:>6.2} s = {:>5.1} round trips, {requests:>5} requests, {:.2} per resource, {} writes, peak RSS {} MB",
            wall.as_secs_f64(),
            wall.as_secs_f64() / LATENCY.as_secs_f64(),
            requests as f64 / resources as f64,
            writes_after - writes_before,
            rss.map_or("?".to_string(), |k| (k / 1024).to_string())
        );
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
