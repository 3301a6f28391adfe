//! Reliability (issue 13): one apply at a time per environment, clean interruption, bounded input.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::{Moto, Poactl, Run, SPEC_ENV, Sandbox, aws_config, aws_env, spec_file};

fn spawn(args: &[&str], env: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poactl"));
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("NO_COLOR", "1");
    if let Some(tmp) = std::env::var_os("TMPDIR") {
        cmd.env("TMPDIR", tmp);
    }
    for (k, v) in SPEC_ENV {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start poactl")
}

fn finish(child: std::process::Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Two applies of one new environment started at once: one takes the S3 lock (a conditional
/// put), the other stops at once naming the holder; moto holds one distribution and one OAC.
/// A lock left by a vanished run is shown by `unlock` and broken by `unlock --force`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_take_turns_on_the_s3_lock() {
    let moto = Moto::start();
    let conf = aws_config(&moto.url).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    s3.create_bucket().bucket("team-locks").send().await.unwrap();
    // The winner holds the lock a while: its distribution takes 3 s to deploy (moto's state
    // manager), so the other run always finds the lock taken, however loaded the machine is.
    reqwest::Client::new()
        .post(format!("{}/moto-api/state-manager/set-transition", moto.url))
        .body(r#"{"model_name":"cloudfront::distribution","transition":{"progression":"time","seconds":3}}"#)
        .send()
        .await
        .unwrap();
    let (_dir, path) = spec_file(
        "race",
        "environment: race\nlock: { bucket: team-locks }\nstorage:\n  buckets:\n    - { name: race-origin }\ncdn:\n  distributions:\n    - { name: assets, origin: { bucket: race-origin } }\n",
    );
    let env = aws_env(&moto.url);
    let args = ["apply", "-e", path.as_str(), "--auto-approve"];
    let (a, b) = (spawn(&args, &env), spawn(&args, &env));
    let (a, b) = (finish(a), finish(b));
    let mut codes = [a.code, b.code];
    codes.sort();
    assert_eq!(codes, [0, 1], "one wins, one is refused:\n{}\n{}\n---\n{}\n{}", a.stdout, a.stderr, b.stdout, b.stderr);
    let loser = if a.code == 1 { &a } else { &b };
    assert!(
        loser.stderr.contains("environment \"race\" is locked: apply by") && loser.stderr.contains("poactl unlock -e race --force"),
        "{}",
        loser.stderr
    );
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let dists = cf.list_distributions().send().await.unwrap();
    assert_eq!(dists.distribution_list().map(|l| l.items().len()), Some(1), "one distribution");
    let oacs = cf.list_origin_access_controls().send().await.unwrap();
    assert_eq!(oacs.origin_access_control_list().map(|l| l.items().len()), Some(1), "one OAC");
    assert!(s3.get_object().bucket("team-locks").key("poactl/locks/race.json").send().await.is_err(), "the lock is released");

    // A run that vanished left its lock behind.
    let stale = json!({"environment": "race", "operation": "apply", "who": "ci@runner-7", "where": "https://ci.example/jobs/41", "since": "2026-11-30T10:00:00Z", "pid": 4242, "token": "dead"});
    s3.put_object().bucket("team-locks").key("poactl/locks/race.json").body(stale.to_string().into_bytes().into()).send().await.unwrap();
    let run = finish(spawn(&args, &env));
    run.expect_code(1);
    assert!(run.stderr.contains("apply by ci@runner-7 on https://ci.example/jobs/41 since 2026-11-30T10:00:00Z"), "{}", run.stderr);
    let show = finish(spawn(&["unlock", "-e", &path], &env));
    show.expect_code(2);
    assert!(show.stdout.contains("ci@runner-7") && show.stdout.contains("--force"), "{}", show.stdout);
    let shown = finish(spawn(&["unlock", "-e", &path, "-o", "json"], &env));
    shown.expect_code(2);
    let v = shown.json();
    assert_eq!((v["locked"].clone(), v["holder"]["who"].clone()), (json!(true), json!("ci@runner-7")), "{v}");
    finish(spawn(&["unlock", "-e", &path, "--force"], &env)).expect_code(0);
    finish(spawn(&args, &env)).expect_code(0);
}

/// Without a `lock:` section, a lock file on this machine: a second apply is refused while the
/// first runs, and both say that concurrent CI runs are not protected.
#[test]
fn without_a_lock_section_runs_on_one_machine_take_turns() {
    // The winner holds the lock at least while its cluster is being made (3 s).
    let sbx = Sandbox::start(3.0);
    let (_dir, path) = spec_file(
        "solo",
        "environment: solo\natlas:\n  org_id: 0123456789abcdef01234567\n  project: solo\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1 }\n",
    );
    let env = sbx.env();
    let args = ["apply", "-e", path.as_str(), "--auto-approve"];
    // Started together: whichever takes the lock first wins, whatever the machine's load.
    let (a, b) = (spawn(&args, &env), spawn(&args, &env));
    let (a, b) = (finish(a), finish(b));
    let (winner, loser) = if a.code == 0 { (a, b) } else { (b, a) };
    winner.expect_code(0);
    loser.expect_code(1);
    assert!(loser.stderr.contains("environment \"solo\" is locked: apply by"), "{}", loser.stderr);
    assert!(winner.stderr.contains("not against concurrent CI runs"), "{}", winner.stderr);
    Poactl::new(&["plan", "-e", &path, "--detailed-exitcode"]).envs(SPEC_ENV).envs_owned(&env).run().expect_code(0);
}

/// Ctrl-C during apply: nothing new starts, a request still waiting for its answer ends (its
/// outcome unknown), the report says what is done, exit 130; the next apply finishes the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_apply_reports_and_the_next_one_converges() {
    let sbx = Sandbox::start(1.0);
    let (_dir, path) = spec_file(
        "int",
        "environment: int\natlas:\n  org_id: 0123456789abcdef01234567\n  project: interrupted\n  clusters:\n    - { name: one, tier: M10, region: US_EAST_1 }\n    - { name: two, tier: M10, region: US_EAST_1 }\n    - { name: three, tier: M10, region: US_EAST_1 }\n",
    );
    let env = sbx.env();
    let child = spawn(&["apply", "-e", &path, "--auto-approve", "--parallelism", "1"], &env);
    // Interrupt once the first cluster is being made (the run has its signal handler by then).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sbx.log().await.iter().any(|e| e["method"] == "POST" && e["operation"] == "/api/atlas/v2/groups/{groupId}/clusters") {
        assert!(std::time::Instant::now() < deadline, "the apply never started a cluster");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let run = tokio::task::spawn_blocking(move || finish(child)).await.unwrap();
    run.expect_code(130);
    assert!(run.stderr.contains("interrupted: starting nothing new; calls still waiting for an answer end now"), "{}", run.stderr);
    assert!(run.stdout.contains("not applied: interrupted before it started"), "{}", run.stdout);
    assert!(run.stdout.contains("created"), "what was done is reported: {}", run.stdout);
    let (p1, e1) = (path.clone(), env.clone());
    tokio::task::spawn_blocking(move || {
        Poactl::new(&["apply", "-e", &p1, "--auto-approve"]).envs(SPEC_ENV).envs_owned(&e1).run().expect_code(0);
        Poactl::new(&["plan", "-e", &p1, "--detailed-exitcode"]).envs(SPEC_ENV).envs_owned(&e1).run().expect_code(0);
    })
    .await
    .unwrap();
}

/// A fault layer that disturbs a seeded fraction of requests the way the real services fail:
/// - Atlas: 429 RATE_LIMITED_TOKEN_BUCKET with Retry-After (Atlas rate-limit docs, AUTH.md),
///   503 SERVICE_UNAVAILABLE, and 500 UNEXPECTED_ERROR after doing the work;
/// - S3: 503 SlowDown (S3 API reference, error codes: "Reduce your request rate");
/// - CloudFront and CloudWatch: 400 Throttling ("Rate exceeded", the awsQuery/REST error shape);
/// - any service: a connection dropped before the request reaches it, or after it did the work.
fn faults(seed: u64, rate: f64, injected: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> crate::support::Inject {
    use crate::support::{Fault, Injected};
    let rng = std::sync::Mutex::new(fastrand::Rng::with_seed(seed));
    std::sync::Arc::new(move |s: &crate::support::Seen, _| {
        let mut rng = rng.lock().unwrap();
        if rng.f64() >= rate {
            return None;
        }
        injected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let atlas = s.path.starts_with("/api/");
        let query_api = s.action.is_some();
        let cloudfront = s.path.starts_with("/2020-05-31");
        let throttle = if atlas {
            Injected {
                status: 429,
                content_type: "application/json",
                body: r#"{"detail":"Rate limit exceeded. Please retry after 0 seconds.","error":429,"errorCode":"RATE_LIMITED_TOKEN_BUCKET","parameters":[],"reason":"Too Many Requests"}"#.into(),
            }
        } else if query_api || cloudfront {
            Injected { status: 400, content_type: "text/xml", body: "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>f</RequestId></ErrorResponse>".into() }
        } else {
            Injected {
                status: 503,
                content_type: "application/xml",
                body: "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".into(),
            }
        };
        let after = if atlas {
            Injected {
                status: 500,
                content_type: "application/json",
                body: r#"{"detail":"Unexpected error.","error":500,"errorCode":"UNEXPECTED_ERROR","parameters":[],"reason":"Internal Server Error"}"#.into(),
            }
        } else if query_api || cloudfront {
            Injected { status: 500, content_type: "text/xml", body: "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>internal error</Message></Error></ErrorResponse>".into() }
        } else {
            Injected {
                status: 500,
                content_type: "application/xml",
                body: "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>"
                    .into(),
            }
        };
        Some(match rng.u8(0..4) {
            0 => Fault::Answer(throttle),
            1 => Fault::DropBefore,
            2 => Fault::AnswerAfter(after),
            _ => Fault::DropAfter,
        })
    })
}

/// One apply converges with 20% of the requests failing (throttles, 5xx, dropped connections,
/// failures after the service did the work), and leaves exactly one of each resource.
/// `POACTL_FAULT_RATE` and `POACTL_FAULT_SEED` set the rate and the seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apply_converges_under_a_fifth_of_requests_failing() {
    let rate: f64 = std::env::var("POACTL_FAULT_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(0.2);
    let seed: u64 = std::env::var("POACTL_FAULT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261201);
    let moto = Moto::start();
    let sbx = Sandbox::start(0.2);
    let injected = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let aws_proxy = crate::support::Recorder::start_with(&moto.url, faults(seed, rate, injected.clone())).await;
    let atlas_proxy = crate::support::Recorder::start_with(&sbx.url, faults(seed + 1, rate, injected.clone())).await;
    let (_dir, path) = spec_file(
        "faults",
        "environment: faults\natlas:\n  org_id: 0123456789abcdef01234567\n  project: faulty\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1 }\n  access_list:\n    - { cidr: 10.0.0.0/16, comment: vpc }\n  database_users:\n    - { username: app, password: \"${env:POAFIX_DB_PASSWORD}\", roles: [{ role: readWrite, database: shop }] }\n  alerts:\n    - { event: OUTSIDE_METRIC_THRESHOLD, metric: CONNECTIONS, above: 400, notify: { email: ops@example.com } }\nstorage:\n  buckets:\n    - { name: faults-origin, versioning: true }\ncdn:\n  distributions:\n    - { name: assets, origin: { bucket: faults-origin } }\nmonitoring:\n  alarms:\n    - { name: errors, metric: { namespace: App, name: Errors }, above: 1 }\nbilling:\n  alerts:\n    - { above_usd: 50 }\n",
    );
    let mut env = aws_env(&aws_proxy.url);
    env.push(("POACTL_AWS_RETRY_BASE_MS", "20".to_string()));
    for (k, v) in sbx.env() {
        env.push((k, if k == "MONGODB_ATLAS_BASE_URL" { atlas_proxy.url.clone() } else { v }));
    }
    let started = std::time::Instant::now();
    let run = finish(spawn(&["apply", "-e", &path, "--auto-approve"], &env));
    let secs = started.elapsed().as_secs_f64();
    let requests = aws_proxy.all().len() + atlas_proxy.all().len();
    println!(
        "faults: rate {rate}, seed {seed}: {} of {requests} requests disturbed, apply exit {} in {secs:.1}s",
        injected.load(std::sync::atomic::Ordering::SeqCst),
        run.code
    );
    run.expect_code(0);
    assert!(!run.all().contains("api-secret-Vq3xT9"), "no secret in any error or retry message");

    // Clean, through no faults, and exactly one of each.
    let mut direct = aws_env(&moto.url);
    direct.extend(sbx.env());
    Poactl::new(&["plan", "-e", &path, "--detailed-exitcode"]).envs(SPEC_ENV).envs_owned(&direct).run().expect_code(0);
    let g = sbx.group_id("faulty").await;
    let count = |v: serde_json::Value| v["results"].as_array().map(|r| r.len()).unwrap_or(0);
    let (_, projects) = sbx.api("GET", "/api/atlas/v2/orgs/0123456789abcdef01234567/groups", "2023-01-01", None).await;
    assert_eq!(count(projects), 1, "one project");
    let (_, users) = sbx.api("GET", &format!("/api/atlas/v2/groups/{g}/databaseUsers"), "2023-01-01", None).await;
    assert_eq!(count(users), 1, "one user");
    assert_one_of_each(&sbx, &g, &moto).await;
}

/// The environment holds exactly one cluster, one CONNECTIONS alert, one distribution and one
/// origin access control: nothing was made twice.
async fn assert_one_of_each(sbx: &Sandbox, group: &str, moto: &Moto) {
    let (_, clusters) = sbx.api("GET", &format!("/api/atlas/v2/groups/{group}/clusters"), "2024-08-05", None).await;
    assert_eq!(clusters["results"].as_array().map(|r| r.len()), Some(1), "one cluster");
    let (_, alerts) = sbx.api("GET", &format!("/api/atlas/v2/groups/{group}/alertConfigs?itemsPerPage=500"), "2023-01-01", None).await;
    let connections = alerts["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a.pointer("/metricThreshold/metricName") == Some(&json!("CONNECTIONS")))
        .count();
    assert_eq!(connections, 1, "one CONNECTIONS alert");
    let conf = aws_config(&moto.url).await;
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    assert_eq!(cf.list_distributions().send().await.unwrap().distribution_list().map(|l| l.items().len()), Some(1), "one distribution");
    assert_eq!(
        cf.list_origin_access_controls().send().await.unwrap().origin_access_control_list().map(|l| l.items().len()),
        Some(1),
        "one OAC"
    );
}

/// A SIGKILL at any moment leaves nothing the next apply cannot converge: killed three times
/// at different points, then run to the end, the environment holds one of each resource. The
/// lock file a killed run leaves behind is taken over (its process is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_killed_at_any_moment_converge_without_duplicates() {
    let moto = Moto::start();
    let sbx = Sandbox::start(0.5);
    let (_dir, path) = spec_file(
        "killed",
        "environment: killed\natlas:\n  org_id: 0123456789abcdef01234567\n  project: killed\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1 }\n  alerts:\n    - { event: OUTSIDE_METRIC_THRESHOLD, metric: CONNECTIONS, above: 400, notify: { email: ops@example.com } }\nstorage:\n  buckets:\n    - { name: killed-origin }\ncdn:\n  distributions:\n    - { name: assets, origin: { bucket: killed-origin } }\n",
    );
    let mut env = aws_env(&moto.url);
    env.extend(sbx.env());
    let args = ["apply", "-e", path.as_str(), "--auto-approve"];
    for after_ms in [150, 400, 900] {
        let mut child = spawn(&args, &env);
        std::thread::sleep(std::time::Duration::from_millis(after_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    let run = finish(spawn(&args, &env));
    run.expect_code(0);
    Poactl::new(&["plan", "-e", &path, "--detailed-exitcode"]).envs(SPEC_ENV).envs_owned(&env).run().expect_code(0);
    let g = sbx.group_id("killed").await;
    assert_one_of_each(&sbx, &g, &moto).await;
}
