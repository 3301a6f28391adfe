//! MongoDB indexes through the CLI: against the scripted wire MOCK (`poactl::sandbox::mongo`) for the
//! commands poactl sends and the errors it handles, and against a real MongoDB when
//! `MONGODB_TEST_URI` is set (skipped, and said so, otherwise).

use mongodb::bson::{Bson, Document, doc};

use crate::support::{Poactl, Run, SPEC_ENV, Sandbox, spec_file};
use poactl::sandbox::mongo::MongoMock;

async fn poactl(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        Poactl::new(&args).envs(SPEC_ENV).run()
    })
    .await
    .unwrap()
}

fn args(list: &[&str], uri: &str) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.extend(["--mongodb-uri".to_string(), uri.to_string()]);
    v
}

fn name_of(cmd: &Document) -> String {
    cmd.keys().next().cloned().unwrap_or_default()
}

/// A command in short form: `createIndexes users email_1`, `collMod sessions createdAt_1 expireAfterSeconds=3600`.
fn short(cmd: &Document) -> String {
    let name = name_of(cmd);
    let coll = cmd.get_str(&name).unwrap_or("");
    match name.as_str() {
        "createIndexes" => {
            let ix = cmd.get_array("indexes").unwrap()[0].as_document().unwrap().clone();
            format!("createIndexes {coll} {}", ix.get_str("name").unwrap())
        }
        "collMod" => {
            let ix = cmd.get_document("index").unwrap();
            let opts: Vec<String> = ix.iter().filter(|(k, _)| *k != "name").map(|(k, v)| format!("{k}={v}")).collect();
            format!("collMod {coll} {} {}", ix.get_str("name").unwrap(), opts.join(","))
        }
        "dropIndexes" => format!("dropIndexes {coll} {}", cmd.get_str("index").unwrap()),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_prod_indexes_are_created_in_key_order_then_left_alone() {
    let mock = MongoMock::start().await;
    let run = poactl(args(&["apply", "-e", "prod", "--target", "database", "--auto-approve"], &mock.uri)).await;
    run.expect_code(0);
    assert!(run.stdout.contains("18 added"), "{}", run.stdout);
    // The new indexes of a collection go out together (one collection scan); how many land in
    // one command depends on timing (those that start within 150 ms of each other).
    let creates = mock.sent(&["createIndexes"]);
    assert!(creates.iter().any(|c| c.get_array("indexes").unwrap().len() > 1), "{creates:?}");
    let built: Vec<(String, Document)> = creates
        .iter()
        .flat_map(|c| {
            c.get_array("indexes")
                .unwrap()
                .iter()
                .map(move |i| (c.get_str("createIndexes").unwrap().to_string(), i.as_document().unwrap().clone()))
        })
        .collect();
    assert_eq!(built.len(), 18);
    let find =
        |coll: &str, name: &str| built.iter().find(|(c, i)| c == coll && i.get_str("name") == Ok(name)).map(|(_, i)| i.clone()).unwrap();
    let notif =
        built.iter().find(|(c, i)| c == "notifications" && i.get_document("key").unwrap().contains_key("recipient")).unwrap().1.clone();
    let order: Vec<(String, Bson)> = notif.get_document("key").unwrap().clone().into_iter().collect();
    assert_eq!(order, vec![("recipient".into(), Bson::Int64(1)), ("read".into(), Bson::Int64(1)), ("createdAt".into(), Bson::Int64(-1))]);
    assert_eq!(find("users", "email_1").get_bool("unique"), Ok(true));
    assert_eq!(find("serviceproviders", "location_2dsphere").get_document("key").unwrap().get_str("location"), Ok("2dsphere"));

    let before = mock.mutating().len();
    let run = poactl(args(&["apply", "-e", "prod", "--target", "database", "--auto-approve"], &mock.uri)).await;
    run.expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    poactl(args(&["plan", "-e", "prod", "--target", "database", "--detailed-exitcode"], &mock.uri)).await.expect_code(0);
    assert_eq!(mock.mutating().len(), before, "no command sent to a converged database");
}

const OPTIONS_SPEC: &str = "environment: idx\ndatabase:\n  name: app\n  collections:\n    sessions:\n      indexes:\n        - { keys: { createdAt: 1 }, expire_after: 1h }\n    users:\n      indexes:\n        - { keys: { email: 1 }, unique: true }\n        - { keys: { status: 1 } }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_option_changes_use_collmod_and_rebuilds_need_consent() {
    let mock = MongoMock::start().await;
    mock.add_index("app.sessions", doc! {"v": 2, "key": {"createdAt": 1}, "name": "createdAt_1", "expireAfterSeconds": 7200i64});
    mock.add_index("app.users", doc! {"v": 2, "key": {"email": 1}, "name": "email_1"});
    mock.add_index("app.users", doc! {"v": 2, "key": {"status": 1}, "name": "status_1", "sparse": true});
    mock.add_index("app.users", doc! {"v": 2, "key": {"legacy": 1}, "name": "legacy_1"});
    let (_dir, spec) = spec_file("idx", OPTIONS_SPEC);

    let plan = poactl(args(&["plan", "-e", &spec], &mock.uri)).await;
    plan.expect_code(0);
    for want in [
        "~ database.indexes.sessions.createdAt_1",
        "expire_after_seconds: 7200 -> 3600",
        "~ database.indexes.users.email_1",
        "-/+ database.indexes.users.status_1",
        "forces replacement: sparse",
        "? users.legacy_1",
    ] {
        assert!(plan.stdout.contains(want), "missing {want:?} in\n{}", plan.stdout);
    }

    let refused = poactl(args(&["apply", "-e", &spec, "--auto-approve"], &mock.uri)).await;
    refused.expect_code(1);
    assert!(refused.stderr.contains("refusing to rebuild an index") && refused.stderr.contains("--allow-rebuild"), "{}", refused.stderr);
    assert!(mock.mutating().is_empty(), "nothing is sent when the apply is refused");

    poactl(args(&["apply", "-e", &spec, "--auto-approve", "--allow-rebuild"], &mock.uri)).await.expect_code(0);
    let sent: Vec<String> = mock.mutating().iter().map(short).collect();
    let per = |prefix: &str| sent.iter().filter(|s| s.contains(prefix)).cloned().collect::<Vec<_>>();
    assert_eq!(per("createdAt_1"), vec!["collMod sessions createdAt_1 expireAfterSeconds=3600"]);
    // prepareUnique, the dry run, the conversion.
    assert_eq!(
        per("email_1"),
        vec!["collMod users email_1 prepareUnique=true", "collMod users email_1 unique=true", "collMod users email_1 unique=true"]
    );
    assert_eq!(per("status_1"), vec!["dropIndexes users status_1", "createIndexes users status_1"]);
    assert!(per("legacy_1").is_empty() && per("_id_").is_empty(), "{sent:?}");
    assert!(mock.index("app.users", "status_1").unwrap().get("sparse").is_none());

    // Unmanaged: hidden first (and when, recorded), kept by --prune for 7 days, then dropped;
    // a unique or TTL one is never dropped by --prune alone; _id_ never.
    mock.add_index("app.users", doc! {"v": 2, "key": {"code": 1}, "name": "code_1", "unique": true});
    let first = poactl(args(&["plan", "-e", &spec, "--prune"], &mock.uri)).await;
    assert!(
        first.stdout.contains("- database.indexes.users.legacy_1")
            && first.stdout.contains("# hidden now, dropped by a --prune once it has been hidden 7 days"),
        "{}",
        first.stdout
    );
    poactl(args(&["apply", "-e", &spec, "--auto-approve", "--prune"], &mock.uri)).await.expect_code(0);
    assert_eq!(mock.index("app.users", "legacy_1").unwrap().get_bool("hidden"), Ok(true));
    assert!(mock.index("app.users", "code_1").unwrap().get("hidden").is_none(), "a unique index is left alone");
    let plan = poactl(args(&["plan", "-e", &spec, "--prune"], &mock.uri)).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("kept by --prune: hidden since") && plan.stdout.contains("0 of 7 days"), "{}", plan.stdout);
    assert!(plan.stdout.contains("kept by --prune: a unique index still enforces uniqueness"), "{}", plan.stdout);
    poactl(args(&["apply", "-e", &spec, "--auto-approve", "--prune"], &mock.uri)).await.expect_code(0);
    assert!(mock.index("app.users", "legacy_1").is_some(), "not dropped the day after it was hidden");
    {
        let eight_days_ago = mongodb::bson::DateTime::from_millis(mongodb::bson::DateTime::now().timestamp_millis() - 8 * 86_400_000);
        let mut st = mock.state.lock().unwrap();
        for d in st.collections.get_mut("app.poactl_hidden_indexes").unwrap().docs.values_mut() {
            d.insert("hidden_at", eight_days_ago);
        }
    }
    poactl(args(&["apply", "-e", &spec, "--auto-approve", "--prune"], &mock.uri)).await.expect_code(0);
    assert!(mock.index("app.users", "legacy_1").is_none());
    assert!(mock.index("app.users", "code_1").is_some());
    // Named, it goes: hidden first, then dropped.
    for _ in 0..2 {
        poactl(args(&["apply", "-e", &spec, "--auto-approve", "--delete", "database.indexes.users.code_1"], &mock.uri))
            .await
            .expect_code(0);
    }
    assert!(mock.index("app.users", "code_1").is_none());
    assert!(mock.index("app.users", "_id_").is_some());
    assert!(!mock.mutating().iter().any(|c| short(c).contains("_id_")));
    poactl(args(&["drift", "-e", &spec], &mock.uri)).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_server_errors_become_clear_messages() {
    let mock = MongoMock::start().await;
    let (_dir, spec) = spec_file("idx", OPTIONS_SPEC);
    // One index the server refuses: it fails alone, whether it went out with the others of its
    // collection or not (a failed batch is retried one index at a time).
    mock.fail_index("email_1", 85, "IndexOptionsConflict");
    let run = poactl(args(&["apply", "-e", &spec, "--auto-approve"], &mock.uri)).await;
    run.expect_code(1);
    assert!(run.stdout.contains("IndexOptionsConflict") && run.stdout.contains("same keys already exists"), "{}", run.stdout);
    assert!(run.stdout.contains("Apply incomplete: 2 done"), "the other indexes were still created: {}", run.stdout);
    assert!(mock.index("app.users", "status_1").is_some() && mock.index("app.users", "email_1").is_none());

    mock.clear_failures();
    mock.fail_index("status_1", 86, "IndexKeySpecsConflict");
    mock.state.lock().unwrap().collections.clear();
    let run = poactl(args(&["apply", "-e", &spec, "--auto-approve"], &mock.uri)).await;
    run.expect_code(1);
    assert!(run.stdout.contains("IndexKeySpecsConflict") && run.stdout.contains("already exists with other keys"), "{}", run.stdout);
    mock.clear_failures();

    poactl(args(&["apply", "-e", &spec, "--auto-approve"], &mock.uri)).await.expect_code(0);
    mock.add_index("app.users", doc! {"v": 2, "key": {"old": 1}, "name": "old_1", "hidden": true});
    mock.fail_next("dropIndexes", 27, "IndexNotFound");
    // Hidden by someone else: --prune keeps it, naming it drops it.
    let run = poactl(args(&["apply", "-e", &spec, "--auto-approve", "--prune"], &mock.uri)).await;
    run.expect_code(0);
    assert!(mock.index("app.users", "old_1").is_some());
    let run = poactl(args(&["apply", "-e", &spec, "--auto-approve", "--delete", "database.indexes.users.old_1"], &mock.uri)).await;
    run.expect_code(1);
    assert!(run.stdout.contains("no such index (IndexNotFound)"), "{}", run.stdout);
}

/// The same flows against a real MongoDB, where one is available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_mongodb_when_mongodb_test_uri_is_set() {
    let Ok(uri) = std::env::var("MONGODB_TEST_URI") else {
        println!("SKIPPED: real-MongoDB index tests (set MONGODB_TEST_URI, e.g. mongodb://127.0.0.1:27017, to run them)");
        return;
    };
    let db = format!("poactl_test_{}", std::process::id());
    let spec_text = OPTIONS_SPEC.replace("name: app", &format!("name: {db}"));
    let (_dir, spec) = spec_file("idx", &spec_text);
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let database = client.database(&db);
    database.collection::<Document>("users").insert_one(doc! {"email": "a@example.com", "status": "active"}).await.unwrap();

    poactl(args(&["apply", "-e", &spec, "--auto-approve"], &uri)).await.expect_code(0);
    poactl(args(&["plan", "-e", &spec, "--detailed-exitcode"], &uri)).await.expect_code(0);
    // Out of band: change the TTL; drift names it; apply converges with collMod.
    database.run_command(doc! {"collMod": "sessions", "index": {"name": "createdAt_1", "expireAfterSeconds": 60}}).await.unwrap();
    let drift = poactl(args(&["drift", "-e", &spec], &uri)).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("expire_after_seconds: live 60, spec 3600"), "{}", drift.stdout);
    poactl(args(&["apply", "-e", &spec, "--auto-approve"], &uri)).await.expect_code(0);
    poactl(args(&["drift", "-e", &spec], &uri)).await.expect_code(0);
    database.drop().await.unwrap();
}

/// Issue 12, item 1: the plan never deadlocks on the database. An index is read only when the
/// connection can work: not through a paused cluster (Atlas refuses connections to it), nor as
/// a database user or through an access-list entry this apply creates. Such reads are put off:
/// apply reads them after what they need and changes only what differs, and a cluster that
/// stays paused keeps its indexes for a later run. A database that cannot be reached fails its
/// indexes only: the rest of the plan stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_reads_wait_for_what_the_connection_needs_and_never_stop_the_plan() {
    let sbx = Sandbox::start(0.1);
    let mock = MongoMock::start().await;
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env = sbx.env();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
                Poactl::new(&args).envs(SPEC_ENV).envs_owned(&env).run()
            })
            .await
            .unwrap()
        }
    };
    // The URI refers to the cluster (so the indexes go through it) and reaches the mock.
    let uri = mock.uri.replacen("/?", "/?appName=${atlas.clusters.main.name}&", 1);
    let spec = |paused: bool, user: bool, second_index: bool, uri: &str| {
        let users = if user {
            "  database_users:\n    - { username: app, password: \"${env:POAFIX_DB_PASSWORD}\", roles: [{ role: readWrite, database: shop }] }\n"
        } else {
            ""
        };
        let db_user = if user { "  user: app\n" } else { "" };
        let second = if second_index { "        - { keys: { createdAt: -1 } }\n" } else { "" };
        format!(
            "environment: t\natlas:\n  org_id: 0123456789abcdef01234567\n  project: idx\n  clusters:\n    - {{ name: main, tier: M10, region: US_EAST_1, paused: {paused} }}\n{users}database:\n  name: shop\n  uri: \"{uri}\"\n{db_user}  collections:\n    users:\n      indexes:\n        - {{ keys: {{ email: 1 }}, unique: true }}\n{second}"
        )
    };
    let (_dir, path) = spec_file("t", &spec(false, false, false, &uri));
    run(&["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    assert_eq!(mock.sent(&["createIndexes"]).len(), 1, "the index is built once the cluster runs");

    // Paused, and paused in the spec: the index is not read, and the plan is clean.
    std::fs::write(&path, spec(true, false, false, &uri)).unwrap();
    run(&["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let sent = mock.received();
    let plan = run(&["plan", "-e", &path, "--detailed-exitcode"]).await;
    plan.expect_code(0);
    assert_eq!(mock.received(), sent, "nothing is sent to a paused cluster's database");

    // Resumed by this apply, with an index added: the plan says the read waits; the apply
    // resumes, then reads and builds only the new index.
    std::fs::write(&path, spec(false, false, true, &uri)).unwrap();
    let plan = run(&["plan", "-e", &path, "--detailed-exitcode"]).await;
    plan.expect_code(2);
    assert!(plan.stdout.contains("is paused; this apply resumes it"), "{}", plan.stdout);
    assert_eq!(mock.received(), sent, "the plan does not connect either");
    let apply = run(&["apply", "-e", &path, "--auto-approve"]).await;
    apply.expect_code(0);
    // The resume, and the new index; the old one was read and found in sync (not "updated").
    assert!(apply.stdout.contains("1 added, 1 changed, 0 destroyed"), "{}", apply.stdout);
    let builds: Vec<String> = mock.sent(&["createIndexes"]).iter().map(short).collect();
    assert_eq!(builds, vec!["createIndexes users email_1", "createIndexes users createdAt_-1"], "only the new index is built");
    run(&["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    // Read as a user this apply creates: put off, not a failed login that stops the plan.
    std::fs::write(&path, spec(false, true, true, &uri)).unwrap();
    let sent = mock.received();
    let plan = run(&["plan", "-e", &path, "--detailed-exitcode"]).await;
    plan.expect_code(2);
    assert!(plan.stdout.contains("is created by this apply"), "{}", plan.stdout);
    assert_eq!(mock.received(), sent, "no login with a user that does not exist yet");

    // A database nobody answers at: its indexes fail, with the cause; the rest is planned.
    let dead = "mongodb://127.0.0.1:9/?directConnection=true&serverSelectionTimeoutMS=1000&appName=${atlas.clusters.main.name}";
    std::fs::write(&path, spec(false, false, true, dead)).unwrap();
    let plan = run(&["plan", "-e", &path]).await;
    plan.expect_code(1);
    assert!(plan.stdout.contains("could not be read") && plan.stdout.contains("the rest of the plan stands"), "{}", plan.stdout);
    assert!(plan.stdout.contains("database.users") || plan.stdout.contains("users.email_1"), "{}", plan.stdout);
}

/// A cluster's SRV name that does not resolve (yet: a new cluster's DNS record appears some
/// minutes after it) is asked again for a while, then reported as what it is, not as an
/// invalid URI; it fails the indexes only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srv_name_that_does_not_resolve_is_not_an_invalid_uri() {
    let (_dir, path) = spec_file(
        "d",
        "environment: d\ndatabase:\n  name: shop\n  uri: \"mongodb+srv://missing-cluster.example.invalid/\"\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 } }\n",
    );
    let run = tokio::task::spawn_blocking(move || {
        Poactl::new(&["plan", "-e", &path]).envs(SPEC_ENV).envs(&[("POACTL_MONGO_DNS_WAIT_SECS", "0")]).run()
    })
    .await
    .unwrap();
    run.expect_code(1);
    assert!(run.stdout.contains("does not resolve yet") && !run.all().contains("invalid MongoDB URI"), "{}", run.all());
    assert!(run.stderr.contains("could not be read"), "{}", run.stderr);
}

/// Issue 12, item 7: adding a TTL to an existing single-field index is a `collMod` on 5.1+
/// (jstests/core/ddl/collmod_convert_to_ttl.js), a rebuild before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_ttl_is_added_in_place_from_5_1_and_rebuilt_before() {
    let spec_text = "environment: ttl\ndatabase:\n  name: app\n  collections:\n    sessions:\n      indexes:\n        - { keys: { createdAt: 1 }, expire_after: 1h }\n";
    for (version, in_place) in [((7, 0), true), ((5, 1), true), ((5, 0), false)] {
        let mock = MongoMock::start().await;
        mock.state.lock().unwrap().version = Some(version);
        mock.add_index("app.sessions", doc! {"v": 2, "key": {"createdAt": 1}, "name": "createdAt_1"});
        let (_dir, spec) = spec_file("ttl", spec_text);
        let plan = poactl(args(&["plan", "-e", &spec, "-o", "json"], &mock.uri)).await;
        plan.expect_code(0);
        let action = plan.json()["resources"][0]["action"].as_str().unwrap().to_string();
        assert_eq!(action, if in_place { "update" } else { "replace" }, "{version:?}: {}", plan.stdout);
        let apply = poactl(args(&["apply", "-e", &spec, "--auto-approve"], &mock.uri)).await;
        if in_place {
            apply.expect_code(0);
            let sent: Vec<String> = mock.mutating().iter().map(short).collect();
            assert_eq!(sent, vec!["collMod sessions createdAt_1 expireAfterSeconds=3600"], "{version:?}");
        } else {
            apply.expect_code(1);
            assert!(apply.stderr.contains("--allow-rebuild"), "{}", apply.stderr);
            assert!(mock.mutating().is_empty());
        }
        assert_eq!(mock.index("app.sessions", "createdAt_1").unwrap().get("expireAfterSeconds").is_some(), in_place);
    }
}

/// Issue 12, item 10: `$indexStats` dates are read, and a user without the right to run it gets
/// a note saying what to grant instead of silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_index_usage_shows_its_date_and_missing_rights_say_what_to_grant() {
    let spec_text = "environment: st\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 } }\n        - { keys: { name: 1 } }\n";
    let (_dir, spec) = spec_file("st", spec_text);
    let mock = MongoMock::start().await;
    mock.add_index("app.users", doc! {"v": 2, "key": {"email": 1}, "name": "email_1"});
    mock.add_index("app.users", doc! {"v": 2, "key": {"name": 1}, "name": "name_1"});
    let plan = poactl(args(&["plan", "-e", &spec], &mock.uri)).await;
    plan.expect_code(0);
    let year = "20"; // the start of a date (20xx-...), not "the server started"
    assert!(plan.stdout.contains(&format!("no operation has used this index since {year}")), "{}", plan.stdout);
    mock.fail_next("aggregate", 13, "Unauthorized");
    let plan = poactl(args(&["plan", "-e", &spec], &mock.uri)).await;
    plan.expect_code(0);
    assert_eq!(plan.stdout.matches("grant it clusterMonitor").count(), 1, "one note per collection: {}", plan.stdout);
}

/// Issue 12, item 4: making an index unique runs a dry run first (6.0+), names the real cause
/// (359 duplicates), and never leaves `prepareUnique` behind after a failed conversion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_unique_conversion_checks_first_and_leaves_nothing_half_done() {
    let spec_text = "environment: uq\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 }, unique: true }\n";
    for version in [(7, 0), (5, 2)] {
        let (_dir, spec) = spec_file("uq", spec_text);
        let mock = MongoMock::start().await;
        mock.state.lock().unwrap().version = Some(version);
        mock.add_index("app.users", doc! {"v": 2, "key": {"email": 1}, "name": "email_1"});
        mock.insert("app.users", [doc! {"_id": 1, "email": "a@x"}, doc! {"_id": 2, "email": "a@x"}]);
        let run = poactl(args(&["apply", "-e", &spec, "--auto-approve"], &mock.uri)).await;
        run.expect_code(1);
        assert!(
            run.stdout.contains("CannotConvertIndexToUnique, 359") && run.stdout.contains("$group: {_id: {email: \"$email\"}"),
            "{version:?}: {}",
            run.stdout
        );
        let ix = mock.index("app.users", "email_1").unwrap();
        assert!(ix.get("unique").is_none() && ix.get("prepareUnique").is_none(), "{version:?}: left as it was: {ix}");
        let sent: Vec<String> = mock.mutating().iter().map(short).collect();
        let dry_runs = mock.mutating().iter().filter(|c| c.get_bool("dryRun") == Ok(true)).count();
        assert_eq!(dry_runs, usize::from(version >= (6, 0)), "{version:?}: {sent:?}");
        assert_eq!(sent.len(), 3, "prepare, the dry run or the conversion, revert: {sent:?}");
        assert!(run.stdout.contains("nothing changed (prepareUnique was set back to false)"), "{}", run.stdout);
        mock.retain("app.users", |d| d.get_i32("_id") == Ok(1));
        poactl(args(&["apply", "-e", &spec, "--auto-approve"], &mock.uri)).await.expect_code(0);
        assert_eq!(mock.index("app.users", "email_1").unwrap().get_bool("unique"), Ok(true));
    }
    // A conversion someone else left half done is named.
    let (_dir, spec) = spec_file(
        "uq",
        "environment: uq\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 } }\n",
    );
    let mock = MongoMock::start().await;
    mock.add_index("app.users", doc! {"v": 2, "key": {"email": 1}, "name": "email_1", "prepareUnique": true});
    let plan = poactl(args(&["plan", "-e", &spec], &mock.uri)).await;
    assert!(plan.stdout.contains("prepareUnique is set: new duplicate keys are refused"), "{}", plan.stdout);
}

/// Issue 12, item 9: an option other drivers take and the Rust driver refuses as unknown is
/// left out (with a warning), not a failure to connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_uri_option_the_rust_driver_does_not_know_is_left_out() {
    let mock = MongoMock::start().await;
    mock.add_index("app.users", doc! {"v": 2, "key": {"email": 1}, "name": "email_1"});
    let (_dir, spec) = spec_file(
        "opt",
        "environment: opt\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 } }\n",
    );
    let uri = format!("{}&useUnifiedTopology=true&useNewUrlParser=true", mock.uri);
    poactl(args(&["plan", "-e", &spec, "--detailed-exitcode"], &uri)).await.expect_code(0);
    let run = poactl(strings_for_migrate(&spec, &uri)).await;
    run.expect_code(0);
    assert!(run.stderr.contains("option useUnifiedTopology is not one the Rust driver knows"), "{}", run.stderr);
}

fn strings_for_migrate(spec: &str, uri: &str) -> Vec<String> {
    let dump = crate::support::repo().join("tests/fixtures/mongodump/testdirs").to_string_lossy().to_string();
    ["migrate", "data", "-e", spec, "--from", &dump, "--collections", "c4", "--mongodb-uri", uri].iter().map(|s| s.to_string()).collect()
}

const REBUILD_SPEC: &str = "environment: idx\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 }, unique: true, collation: { locale: en, strength: 2 } }\n        - { keys: { code: 1 }, name: code_present, unique: true, partial_filter: { code: { $exists: true } } }\n        - { keys: { nick: 1 }, name: nick_unique, unique: true }\n        - { keys: { tag: 1 }, unique: true, sparse: true }\n";

/// Item 2: a rebuild builds the new index before it drops the old one, so the collection is
/// never without it, nor without its uniqueness; a failed build leaves the old index in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_rebuilds_build_before_they_drop_and_never_lose_uniqueness() {
    let mock = MongoMock::start().await;
    // email_1: rebuilt under the same name (a collation): a stand-in keeps it unique meanwhile.
    mock.add_index("app.users", doc! {"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true});
    // code_1 -> code_present: another name and a partial filter, so both can stand at once.
    mock.add_index("app.users", doc! {"v": 2, "key": {"code": 1}, "name": "code_1", "unique": true});
    // nick_1 -> nick_unique: the build fails on duplicates, and nick_1 stays.
    mock.add_index("app.users", doc! {"v": 2, "key": {"nick": 1}, "name": "nick_1"});
    // tag_1 -> tag_1 unique sparse: dropped first (nothing unique to keep), the build fails on
    // duplicates, and tag_1 is built again.
    mock.add_index("app.users", doc! {"v": 2, "key": {"tag": 1}, "name": "tag_1"});
    mock.insert(
        "app.users",
        [
            doc! {"_id": 1, "email": "a@x", "code": "c1", "nick": "al", "tag": "t"},
            doc! {"_id": 2, "email": "b@x", "code": "c2", "nick": "al", "tag": "t"},
        ],
    );
    assert_eq!(mock.collection("app.users").unwrap().documents().count(), 2);
    let (_dir, spec) = spec_file("idx", REBUILD_SPEC);
    let run = poactl(args(&["apply", "-e", &spec, "--auto-approve", "--allow-rebuild"], &mock.uri)).await;
    run.expect_code(1);
    let sent: Vec<String> = mock.mutating().iter().map(short).collect();
    let per = |prefix: &str| sent.iter().filter(|s| s.contains(prefix)).cloned().collect::<Vec<_>>();
    assert_eq!(
        per("email_1"),
        vec![
            "createIndexes users email_1_poactl_standin",
            "dropIndexes users email_1",
            "createIndexes users email_1",
            "dropIndexes users email_1_poactl_standin"
        ]
    );
    let standin = mock
        .sent(&["createIndexes"])
        .into_iter()
        .find(|c| short(c).contains("standin"))
        .map(|c| c.get_array("indexes").unwrap()[0].as_document().unwrap().clone())
        .unwrap();
    assert_eq!(standin.get_bool("unique"), Ok(true));
    assert_eq!(standin.get_document("partialFilterExpression").unwrap(), &doc! {"_id": {"$exists": true}});
    assert_eq!(mock.index("app.users", "email_1").unwrap().get_document("collation").unwrap().get_str("locale"), Ok("en"));
    assert!(mock.index("app.users", "email_1_poactl_standin").is_none());

    assert_eq!(per("code_"), vec!["createIndexes users code_present", "dropIndexes users code_1"]);
    assert!(mock.index("app.users", "code_1").is_none() && mock.index("app.users", "code_present").is_some());

    assert_eq!(per("nick_"), vec!["createIndexes users nick_unique"], "the old index is never dropped before the new one stands");
    assert!(mock.index("app.users", "nick_1").is_some());
    assert!(run.all().contains("dup key") && run.all().contains("the old index nick_1 is left as it was"), "{}", run.all());

    assert_eq!(per("tag_1"), vec!["dropIndexes users tag_1", "createIndexes users tag_1", "createIndexes users tag_1"]);
    let tag = mock.index("app.users", "tag_1").unwrap();
    assert!(tag.get("unique").is_none() && tag.get("sparse").is_none(), "the old tag_1 is back: {tag}");
    assert!(run.all().contains("the old index tag_1 was built again"), "{}", run.all());
}

const BUILDING_SPEC: &str = "environment: idx\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { status: 1 } }\n        - { keys: { city: 1 }, sparse: true }\n";

/// Item 8 and 11: a build in progress is reported as building, never changed or dropped
/// (that would abort it), and an apply that stops waiting leaves the server building.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_builds_in_progress_are_reported_and_never_aborted() {
    let mock = MongoMock::start().await;
    mock.hold_build("app.users", doc! {"key": {"status": 1}, "name": "status_1"}, 400, 1000);
    mock.hold_build("app.users", doc! {"key": {"city": 1}, "name": "city_1"}, 10, 1000);
    mock.hold_build("app.users", doc! {"key": {"scratch": 1}, "name": "scratch_1"}, 1, 1000);
    let (_dir, spec) = spec_file("idx", BUILDING_SPEC);

    let plan = poactl(args(&["plan", "-e", &spec, "--prune"], &mock.uri)).await;
    // The conflict (city_1 cannot change now) fails the plan.
    plan.expect_code(1);
    for want in [
        "building: an index build is in progress on the server (40%, 400 of 1000 keys)",
        "city_1: an index build is in progress on the server (1%, 10 of 1000 keys): poactl does not change or drop an index while it is built",
        "kept by --prune: an index build is in progress on the server (0%, 1 of 1000 keys): dropping it would abort that build",
    ] {
        assert!(plan.stdout.contains(want), "missing {want:?} in\n{}", plan.stdout);
    }
    assert!(!plan.stdout.contains("No changes"), "{}", plan.stdout);
    poactl(args(&["apply", "-e", &spec, "--auto-approve", "--prune", "--drop-immediately", "--allow-rebuild"], &mock.uri)).await;
    assert!(mock.mutating().is_empty(), "nothing is sent to indexes being built: {:?}", mock.mutating());
    let drift = poactl(args(&["drift", "-e", &spec, "--output", "json"], &mock.uri)).await;
    let v: serde_json::Value = serde_json::from_str(&drift.stdout).unwrap();
    assert_eq!(v["in_progress"][0]["address"], "database.indexes.users.status_1", "{v}");

    // Finished, status_1 is in sync and city_1 is rebuilt sparse.
    mock.finish_builds();
    let plan = poactl(args(&["plan", "-e", &spec], &mock.uri)).await;
    assert!(plan.stdout.contains("-/+ database.indexes.users.city_1") && !plan.stdout.contains("building"), "{}", plan.stdout);

    // A build that outlasts --timeout: the apply stops waiting, the server goes on.
    mock.set_build_delay(std::time::Duration::from_secs(3));
    let (_dir2, spec2) = spec_file(
        "idx2",
        "environment: idx2\ndatabase:\n  name: app\n  collections:\n    orders:\n      indexes:\n        - { keys: { total: 1 } }\n",
    );
    mock.insert("app.orders", [doc! {"_id": 1, "total": 5}]);
    let run = poactl(args(&["apply", "-e", &spec2, "--auto-approve", "--timeout", "1"], &mock.uri)).await;
    run.expect_code(1);
    assert!(run.all().contains("did not become ready within 1s") && run.all().contains("never aborts"), "{}", run.all());
    let plan = poactl(args(&["plan", "-e", &spec2], &mock.uri)).await;
    assert!(plan.stdout.contains("building: an index build is in progress"), "{}", plan.stdout);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(mock.index("app.orders", "total_1").is_some(), "the server finished the build the client stopped waiting for");
    let plan = poactl(args(&["plan", "-e", &spec2], &mock.uri)).await;
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
}

/// Item 1 and the peer's access control: a login the server refuses (18), a missing login and
/// missing rights (13) fail the indexes alone, each with its real cause and what to do; the
/// password never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_logins_and_rights_fail_the_indexes_alone_with_their_real_cause() {
    use poactl::sandbox::mongo::MockUser;
    let mock = MongoMock::start().await;
    mock.set_users(vec![
        MockUser::new("admin", "ops", "ops-pass-1", &[("readWrite", "app"), ("dbAdmin", "app")]),
        MockUser::new("admin", "reader", "reader-pass-1", &[("read", "app")]),
        MockUser::new("admin", "monitor", "monitor-pass-1", &[("readWrite", "app"), ("dbAdmin", "app"), ("clusterMonitor", "admin")]),
    ]);
    let login = |who: &str| mock.uri.replacen("mongodb://", &format!("mongodb://{who}@"), 1);
    let (_dir, spec) = spec_file(
        "idx",
        "environment: idx\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 }, unique: true }\n",
    );

    let anonymous = poactl(args(&["plan", "-e", &spec], &mock.uri)).await;
    assert_ne!(anonymous.code, 0);
    assert!(anonymous.all().contains("requires authentication"), "{}", anonymous.all());

    let wrong = poactl(args(&["plan", "-e", &spec], &login("ops:not-the-password"))).await;
    assert_ne!(wrong.code, 0);
    assert!(
        wrong.all().contains("AuthenticationFailed, 18") && wrong.all().contains("check database.user's name, password"),
        "{}",
        wrong.all()
    );
    assert!(!wrong.all().contains("not-the-password"), "the password is never shown");

    let reader = poactl(args(&["apply", "-e", &spec, "--auto-approve"], &login("reader:reader-pass-1"))).await;
    reader.expect_code(1);
    assert!(reader.all().contains("Unauthorized, 13") && reader.all().contains("grant it readWrite and dbAdmin"), "{}", reader.all());
    assert!(mock.index("app.users", "email_1").is_none());

    poactl(args(&["apply", "-e", &spec, "--auto-approve"], &login("ops:ops-pass-1"))).await.expect_code(0);
    assert_eq!(mock.index("app.users", "email_1").unwrap().get_bool("unique"), Ok(true));
    let plan = poactl(args(&["plan", "-e", &spec], &login("ops:ops-pass-1"))).await;
    plan.expect_code(0);
    for want in ["grant it clusterMonitor to see unused indexes", "builds in progress on users not checked"] {
        assert!(plan.stdout.contains(want), "missing {want:?} in\n{}", plan.stdout);
    }
    let plan = poactl(args(&["plan", "-e", &spec], &login("monitor:monitor-pass-1"))).await;
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("No changes.") && !plan.stdout.contains("not checked") && !plan.stdout.contains("not read"),
        "{}",
        plan.stdout
    );
}

/// Item 5 against the peer: the server stores a collation whole (fr_CA means backwards: true),
/// poactl sends and compares only what the spec sets, and `locale: simple` is no collation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_collations_are_filled_in_by_the_server_and_not_drift() {
    let mock = MongoMock::start().await;
    let (_dir, spec) = spec_file(
        "idx",
        "environment: idx\ndatabase:\n  name: app\n  collections:\n    people:\n      indexes:\n        - { keys: { last: 1 }, collation: { locale: fr_CA } }\n        - { keys: { code: 1 }, collation: { locale: simple } }\n        - { keys: { city: 1 }, collation: { locale: en, strength: 2 } }\n",
    );
    poactl(args(&["apply", "-e", &spec, "--auto-approve"], &mock.uri)).await.expect_code(0);
    let sent: Vec<Document> = mock
        .sent(&["createIndexes"])
        .iter()
        .flat_map(|c| c.get_array("indexes").unwrap().iter().map(|i| i.as_document().unwrap().clone()).collect::<Vec<_>>())
        .collect();
    let of = |name: &str| sent.iter().find(|i| i.get_str("name") == Ok(name)).unwrap().clone();
    assert_eq!(of("last_1").get_document("collation").unwrap(), &doc! {"locale": "fr_CA"}, "only what the spec sets is sent");
    let stored = mock.index("app.people", "last_1").unwrap();
    assert_eq!(stored.get_document("collation").unwrap().get_bool("backwards"), Ok(true));
    assert!(mock.index("app.people", "code_1").unwrap().get("collation").is_none());
    let plan = poactl(args(&["plan", "-e", &spec, "--detailed-exitcode"], &mock.uri)).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
}

/// Item 10: index usage is the sum over every data-bearing member, so an index that only a
/// secondary serves (analytics reads) is not called unused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_index_usage_is_read_from_every_member() {
    let primary = MongoMock::start().await;
    let secondary = MongoMock::start().await;
    let host = |m: &MongoMock| m.uri.strip_prefix("mongodb://").unwrap().split('/').next().unwrap().to_string();
    let hosts = vec![host(&primary), host(&secondary)];
    for m in [&primary, &secondary] {
        m.set_replica_set("rs0", &hosts);
        m.add_index("app.users", doc! {"v": 2, "key": {"status": 1}, "name": "status_1"});
        m.add_index("app.users", doc! {"v": 2, "key": {"city": 1}, "name": "city_1"});
    }
    secondary.set_index_ops("app.users", "status_1", 12);
    let (_dir, spec) = spec_file(
        "idx",
        "environment: idx\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { status: 1 } }\n        - { keys: { city: 1 } }\n",
    );
    let plan = poactl(args(&["plan", "-e", &spec], &primary.uri)).await;
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("city_1: unused: no operation has used this index since") && plan.stdout.contains("(on any of the 2 members)"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("status_1: unused"), "used on the secondary: {}", plan.stdout);
    assert!(!secondary.sent(&["aggregate"]).is_empty(), "the secondary was asked");
    // Drift lists it as information: exit 0, and only city_1 in its JSON.
    let drift = poactl(args(&["drift", "-e", &spec, "-o", "json"], &primary.uri)).await;
    drift.expect_code(0);
    let unused: Vec<String> =
        drift.json()["unused_indexes"].as_array().unwrap().iter().map(|u| u["address"].as_str().unwrap().to_string()).collect();
    assert_eq!(unused, ["database.indexes.users.city_1"], "{}", drift.stdout);
}

const REAL_SPEC: &str = "environment: idx\ndatabase:\n  name: app\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 }, unique: true, collation: { locale: en, strength: 2 } }\n        - { keys: { nick: 1 }, name: nick_unique, unique: true }\n        - { keys: { code: 1 }, unique: true }\n        - { keys: { last: 1 }, collation: { locale: fr_CA } }\n        - { keys: { seen: 1 }, expire_after: 1d }\n";

/// Items 2 to 7 against a real server (skipped without MONGODB_TEST_URI): a unique index
/// rebuilt under its own name through a stand-in; a rebuild whose build fails on duplicates
/// leaves the old index; a unique conversion over duplicates fails with 359 and is undone; a
/// locale's defaults are not drift; a TTL is added in place; --prune hides first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_mongodb_rebuilds_conversions_collations_and_prune_when_mongodb_test_uri_is_set() {
    let Ok(uri) = std::env::var("MONGODB_TEST_URI") else {
        println!("SKIPPED: real-MongoDB rebuild tests (set MONGODB_TEST_URI to run them)");
        return;
    };
    let db = format!("poactl_rebuild_{}", std::process::id());
    let (_dir, spec) = spec_file("idx", &REAL_SPEC.replace("name: app", &format!("name: {db}")));
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let database = client.database(&db);
    let users = database.collection::<Document>("users");
    users
        .insert_many([
            doc! {"email": "a@x", "nick": "al", "code": "c", "last": "Émile", "seen": mongodb::bson::DateTime::now()},
            doc! {"email": "b@x", "nick": "al", "code": "c", "last": "Eve", "seen": mongodb::bson::DateTime::now()},
        ])
        .await
        .unwrap();
    for (keys, opts) in [
        (doc! {"email": 1}, doc! {"name": "email_1", "unique": true}),
        (doc! {"nick": 1}, doc! {"name": "nick_1"}),
        (doc! {"code": 1}, doc! {"name": "code_1"}),
        (doc! {"seen": 1}, doc! {"name": "seen_1"}),
        (doc! {"legacy": 1}, doc! {"name": "legacy_1"}),
    ] {
        let mut ix = doc! {"key": keys};
        ix.extend(opts);
        database.run_command(doc! {"createIndexes": "users", "indexes": [ix]}).await.unwrap();
    }
    let run = poactl(args(&["apply", "-e", &spec, "--auto-approve", "--allow-rebuild", "--prune"], &uri)).await;
    run.expect_code(1);
    let all = run.all();
    assert!(all.contains("the old index nick_1 is left as it was") && all.contains("dup key"), "{all}");
    assert!(all.contains("CannotConvertIndexToUnique, 359") || all.contains("(CannotConvertIndexToUnique, 359)"), "{all}");
    // listIndexes' own documents (all indexes fit in the first batch).
    let reply = database.run_command(doc! {"listIndexes": "users"}).await.unwrap();
    let list: Vec<Document> =
        reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().iter().filter_map(|i| i.as_document().cloned()).collect();
    let find = |name: &str| list.iter().find(|i| i.get_str("name") == Ok(name)).cloned();
    let email = find("email_1").expect("email_1 rebuilt");
    assert_eq!(email.get_document("collation").unwrap().get("strength").and_then(Bson::as_i32), Some(2));
    assert!(find("email_1_poactl_standin").is_none(), "the stand-in is dropped");
    assert!(find("nick_1").is_some() && find("nick_unique").is_none());
    let code = find("code_1").unwrap();
    assert!(code.get("unique").is_none() && code.get("prepareUnique").is_none(), "the failed conversion is undone: {code}");
    assert_eq!(find("last_1").unwrap().get_document("collation").unwrap().get_bool("backwards"), Ok(true));
    assert!(find("seen_1").unwrap().get("expireAfterSeconds").is_some());
    assert_eq!(find("legacy_1").unwrap().get_bool("hidden"), Ok(true), "--prune hides first");
    let plan = poactl(args(&["plan", "-e", &spec], &uri)).await;
    assert!(!plan.stdout.contains("database.indexes.users.last_1"), "fr_CA defaults are not drift: {}", plan.stdout);
    database.drop().await.unwrap();
}
