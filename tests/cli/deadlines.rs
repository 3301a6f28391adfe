//! Every request has a deadline (`--request-timeout`): a peer that accepts the connection and
//! never answers ends the command within it, with TIMED OUT, the endpoint, the operation and
//! the time waited. Peers: the wire MOCK's hold mode (`MongoMock::hold`), the Atlas
//! sandbox's `response_delay_secs`, and a TCP blackhole in front of moto's address.

use std::sync::Arc;
use std::time::{Duration, Instant};

use poactl::sandbox::mongo::MongoMock;

use crate::support::{Fault, Inject, Moto, Recorder, Sandbox, Seen, aws_env, poactl_blocking, spec_file, strings};

const INDEX_SPEC: &str =
    "environment: dl\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 }, unique: true }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_mongodb_that_never_answers_one_command_ends_the_plan_within_its_deadline() {
    let (_dir, spec) = spec_file("dl", INDEX_SPEC);
    // (held command, what the message names)
    let cases = [("listIndexes", "did not answer listIndexes users"), ("hello", "did not answer hello")];
    for (held, names) in cases {
        let mock = MongoMock::start().await;
        mock.hold(held);
        let started = Instant::now();
        let run = poactl_blocking(strings(&["plan", "-e", &spec, "--mongodb-uri", &mock.uri, "--request-timeout", "1"]), vec![]).await;
        let took = started.elapsed();
        run.expect_code(1);
        let out = format!("{}{}", run.stdout, run.stderr);
        let host = mock.uri.trim_start_matches("mongodb://").split('/').next().unwrap();
        assert!(out.contains(&format!("TIMED OUT: MongoDB at {host}")) && out.contains(names), "{held}: {out}");
        assert!(out.contains("the rest of the plan stands"), "{held}: {out}");
        // Three attempts of one second, plus start-up: far below any hang.
        assert!(took < Duration::from_secs(20), "{held}: took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_an_insert_that_is_never_answered_is_outcome_unknown_and_a_rerun_resumes() {
    let (_dir, spec) = spec_file("dl", INDEX_SPEC);
    let dump = tempfile::tempdir().unwrap();
    let db = dump.path().join("app");
    std::fs::create_dir(&db).unwrap();
    let mut bytes = Vec::new();
    for i in 0..50 {
        mongodb::bson::doc! {"_id": i, "email": format!("u{i}@x")}.to_writer(&mut bytes).unwrap();
    }
    std::fs::write(db.join("users.bson"), bytes).unwrap();
    std::fs::write(db.join("users.metadata.json"), r#"{"options":{},"indexes":[]}"#).unwrap();
    let from = dump.path().to_string_lossy().to_string();
    let mock = MongoMock::start().await;
    mock.hold("insert");
    let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];
    let args = strings(&["migrate", "data", "-e", &spec, "--from", &from, "--no-indexes", "--request-timeout", "1"]);
    let started = Instant::now();
    let run = poactl_blocking(args.clone(), env.clone()).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("TIMED OUT: MongoDB at 127.0.0.1:")
            && run.stderr.contains("did not answer insert users (50 documents) within 1 s; the outcome is unknown"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("run the same command again to resume"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());

    mock.state.lock().unwrap().hold = None;
    let again = poactl_blocking(args, env).await;
    again.expect_code(0);
    assert_eq!(mock.collection("app.users").unwrap().documents().count(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_an_atlas_that_holds_every_answer_ends_the_plan_within_its_deadline() {
    let sbx = Sandbox::start(0.0);
    let spec = "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: held\n  clusters:\n    - { name: main, tier: M0, region: US_EAST_1 }\n";
    let (_dir, path) = spec_file("t", spec);
    sbx.control("config", serde_json::json!({"response_delay_secs": 600})).await;
    let started = Instant::now();
    let run = poactl_blocking(strings(&["plan", "-e", &path, "--request-timeout", "1"]), sbx.env()).await;
    let took = started.elapsed();
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!("atlas.project.held: TIMED OUT: Atlas at {} did not answer GET /api/atlas/v2/", sbx.url))
            && run.stderr.contains(" within 3 s"),
        "{}",
        run.stderr
    );
    // One attempt is 1 s and a call three; the reads of one plan run side by side.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_behind_a_blackhole_ends_the_plan_within_its_deadline() {
    let moto = Moto::start();
    let spec = "environment: t\nstorage:\n  buckets:\n    - { name: held-uploads }\n";
    let (_dir, path) = spec_file("t", spec);
    // (what the blackhole holds, the operation the message names)
    let cases: [(&str, Inject, &str); 2] = [
        ("every request", Arc::new(|_: &Seen, _: usize| Some(Fault::Hold)), "GetCallerIdentity"),
        // STS answers; S3 (REST, no Action) never does.
        ("S3 only", Arc::new(|s: &Seen, _: usize| s.action.is_none().then_some(Fault::Hold)), "ListBuckets"),
    ];
    for (what, inject, operation) in cases {
        let proxy = Recorder::start_with(&moto.url, inject).await;
        let mut env = aws_env(&proxy.url);
        env.push(("POACTL_REQUEST_TIMEOUT", "1".into()));
        let started = Instant::now();
        let run = poactl_blocking(strings(&["plan", "-e", &path]), env).await;
        let took = started.elapsed();
        run.expect_code(1);
        assert!(
            run.stderr.contains(&format!("TIMED OUT: AWS at {} did not answer {operation}", proxy.url))
                && run.stderr.contains("within 3 s"),
            "{what}: {}",
            run.stderr
        );
        assert!(took < Duration::from_secs(20), "{what}: took {took:?}");
    }
}

/// Ctrl-C while a request waits for its answer ends the run at once (exit 130, the reads that
/// did not finish named), not when the deadline passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_ctrl_c_during_an_unanswered_request_ends_the_plan_at_once() {
    let (_dir, spec) = spec_file("dl", INDEX_SPEC);
    let mock = MongoMock::start().await;
    mock.hold("listIndexes");
    let child = crate::support::Poactl::new(&["plan", "-e", &spec, "--mongodb-uri", &mock.uri, "--request-timeout", "600"]).spawn_piped();
    // Long enough for the plan to connect and send listIndexes, which the mock holds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let signalled = Instant::now();
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(5), "took {:?} after Ctrl-C", signalled.elapsed());
    assert!(stderr.contains("interrupted while reading the live state; nothing was changed"), "{stderr}");
}

/// Atlas does the work of a POST whose answer never comes back (the sandbox holds the answers
/// of POSTs only): each create is outcome unknown, poactl looks for what it would have made
/// before sending again, and one apply converges without a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_creates_whose_answers_never_come_are_found_not_sent_twice() {
    let sbx = Sandbox::start(0.0);
    let spec = "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: lost-answers\n  clusters:\n    - { name: main, tier: M0, region: US_EAST_1 }\n";
    let (_dir, path) = spec_file("t", spec);
    sbx.control("config", serde_json::json!({"response_delay_secs": 600, "response_delay_methods": ["POST"]})).await;
    let started = Instant::now();
    let run = poactl_blocking(strings(&["apply", "-e", &path, "--auto-approve", "--request-timeout", "1"]), sbx.env()).await;
    run.expect_code(0);
    assert!(started.elapsed() >= Duration::from_secs(2), "each of the two creates waited out its deadline");
    let posts: Vec<String> =
        sbx.log().await.iter().filter(|e| e["method"] == "POST").map(|e| e["operation"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(posts.iter().filter(|p| p.as_str() == "/api/atlas/v2/groups").count(), 1, "one project create: {posts:?}");
    assert_eq!(posts.iter().filter(|p| p.ends_with("/clusters")).count(), 1, "one cluster create: {posts:?}");
    sbx.control("config", serde_json::json!({"response_delay_secs": 0})).await;
    poactl_blocking(strings(&["plan", "-e", &path, "--detailed-exitcode"]), sbx.env()).await.expect_code(0);
}
