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
    finish(spawn(&["unlock", "-e", &path, "--force"], &env)).expect_code(0);
    finish(spawn(&args, &env)).expect_code(0);
}

/// Without a `lock:` section, a lock file on this machine: a second apply is refused while the
/// first runs, and both say that concurrent CI runs are not protected.
#[test]
fn without_a_lock_section_runs_on_one_machine_take_turns() {
    let sbx = Sandbox::start(1.5);
    let (_dir, path) = spec_file(
        "solo",
        "environment: solo\natlas:\n  org_id: 0123456789abcdef01234567\n  project: solo\n  clusters:\n    - { name: main, tier: M10, region: US_EAST_1 }\n",
    );
    let env = sbx.env();
    let args = ["apply", "-e", path.as_str(), "--auto-approve"];
    let first = spawn(&args, &env);
    std::thread::sleep(std::time::Duration::from_millis(700));
    let second = finish(spawn(&args, &env));
    let first = finish(first);
    first.expect_code(0);
    second.expect_code(1);
    assert!(second.stderr.contains("environment \"solo\" is locked: apply by"), "{}", second.stderr);
    assert!(first.stderr.contains("not against concurrent CI runs"), "{}", first.stderr);
    Poactl::new(&["plan", "-e", &path, "--detailed-exitcode"]).envs(SPEC_ENV).envs_owned(&env).run().expect_code(0);
}

/// Ctrl-C during apply: nothing new starts, what runs finishes, the report says what is done,
/// exit 130; the next apply finishes the rest.
#[test]
fn an_interrupted_apply_reports_and_the_next_one_converges() {
    let sbx = Sandbox::start(1.0);
    let (_dir, path) = spec_file(
        "int",
        "environment: int\natlas:\n  org_id: 0123456789abcdef01234567\n  project: interrupted\n  clusters:\n    - { name: one, tier: M10, region: US_EAST_1 }\n    - { name: two, tier: M10, region: US_EAST_1 }\n    - { name: three, tier: M10, region: US_EAST_1 }\n",
    );
    let env = sbx.env();
    let child = spawn(&["apply", "-e", &path, "--auto-approve", "--parallelism", "1"], &env);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let run = finish(child);
    run.expect_code(130);
    assert!(run.stderr.contains("interrupted: finishing the calls in flight"), "{}", run.stderr);
    assert!(run.stdout.contains("not applied: interrupted before it started"), "{}", run.stdout);
    assert!(run.stdout.contains("created"), "what was done is reported: {}", run.stdout);
    Poactl::new(&["apply", "-e", &path, "--auto-approve"]).envs(SPEC_ENV).envs_owned(&env).run().expect_code(0);
    Poactl::new(&["plan", "-e", &path, "--detailed-exitcode"]).envs(SPEC_ENV).envs_owned(&env).run().expect_code(0);
}
