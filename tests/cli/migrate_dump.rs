//! `poactl migrate data` on the dump layouts mongodump writes and on the documents a server
//! changes or refuses, through the CLI against the scripted wire MOCK (`poactl::sandbox::mongo`),
//! whose rules (empty timestamps, validators, namespaces, 16 MiB) each cite their server source.
//! Layouts follow mongo-tools `mongorestore/filepath.go`; the metadata of long and escaped names is
//! mongo-tools' own test data (tests/fixtures/mongodump/README.md).

use std::path::Path;

use mongodb::bson::{Bson, Document, Timestamp, doc};
use poactl::sandbox::mongo::{Collection, MongoMock};

use crate::support::{poactl_blocking, spec_file, strings};

fn fixture(path: &str) -> std::path::PathBuf {
    crate::support::repo().join("tests/fixtures/mongodump").join(path)
}

fn write_bson(path: &Path, docs: &[Document]) {
    let mut bytes = Vec::new();
    for d in docs {
        d.to_writer(&mut bytes).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

const SPEC: &str =
    "environment: mig\ndatabase:\n  name: home_service_db\n  collections:\n    users:\n      indexes:\n        - { keys: { email: 1 } }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_dump_layouts_are_read_as_mongorestore_reads_them() {
    let mock = MongoMock::start().await;
    let (_dir, spec) = spec_file("mig", SPEC);
    let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];

    // A `mongodump --oplog` of a whole server: oplog.bson and prelude.json at the root, the
    // server's admin database beside the app's.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    copy_dir(&fixture("testdirs/db1"), &r.join("db1"));
    std::fs::create_dir(r.join("admin")).unwrap();
    write_bson(&r.join("admin/system.version.bson"), &[doc! {"_id": "featureCompatibilityVersion", "version": "7.0"}]);
    write_bson(&r.join("oplog.bson"), &[doc! {"ts": Timestamp { time: 1, increment: 1 }, "op": "i", "ns": "db1.c1", "o": {"_id": 1}}]);
    std::fs::write(r.join("prelude.json"), r#"{"server":{"version":"7.0.0"}}"#).unwrap();
    let from = r.to_string_lossy().to_string();
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from]), env.clone()).await;
    run.expect_code(0);
    assert!(run.stdout.contains("oplog.bson (a `mongodump --oplog` dump) is not replayed"), "{}", run.stdout);
    assert!(run.stdout.contains("also holds database(s) admin"), "{}", run.stdout);
    assert!(mock.collection("home_service_db.oplog").is_none(), "the oplog is not a collection");
    assert_eq!(mock.collection("home_service_db.c1").unwrap().documents().count(), 100);
    assert!(mock.collection("home_service_db.system.version").is_none());

    // Two databases of the app's kind: a name is needed, and nothing is read or sent first.
    copy_dir(&fixture("testdirs/db1"), &r.join("other"));
    let before = mock.received();
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from]), env.clone()).await;
    run.expect_code(1);
    assert!(run.stderr.contains("holds several databases (db1, other): name the one to copy with --db NAME"), "{}", run.stderr);
    assert_eq!(mock.received(), before);
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "--db", "other", "--dry-run"]), env.clone()).await;
    run.expect_code(0);
    assert!(run.stdout.contains("(database other)") && run.stdout.contains("admin, db1: not copied"), "{}", run.stdout);

    // Names: a long one truncated by mongodump comes from collectionName; an escaped one is
    // unescaped; users and roles, the profiler and server-owned collections are named, not copied.
    let db = tempfile::tempdir().unwrap();
    let d = db.path().join("home_service_db");
    copy_dir(&fixture("longcollectionname/db1"), &d);
    copy_dir(&fixture("specialcharacter/db1"), &d);
    let long_stem = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".metadata.json").map(str::to_string))
        .find(|n| n.starts_with("aVery"))
        .unwrap();
    write_bson(&d.join(format!("{long_stem}.bson")), &[doc! {"_id": 1}, doc! {"_id": 2}]);
    write_bson(&d.join("caf%C3%A9s.bson"), &[doc! {"_id": "espresso"}]);
    write_bson(&d.join("%24admin.system.users.bson"), &[doc! {"_id": "home_service_db.app", "user": "app"}]);
    write_bson(&d.join("system.profile.bson"), &[doc! {"op": "query"}]);
    write_bson(&d.join("system.sessions.bson"), &[doc! {"_id": 1}]);
    let (_d2, db1_spec) = spec_file("mig", "environment: mig\ndatabase:\n  name: db1\n");
    let from = d.to_string_lossy().to_string();
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &db1_spec, "--from", &from, "-o", "json"]), env.clone()).await;
    run.expect_code(0);
    let long = "aVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryLongCollectionNameConsistingOfExactlyTwoHundredAndFortySevenCharacters";
    assert_eq!(mock.collection(&format!("db1.{long}")).unwrap().documents().count(), 2);
    assert_eq!(mock.collection("db1.cafés").unwrap().documents().count(), 1);
    let notes = run.json()["notes"].to_string();
    for (what, text) in [
        ("users and roles", "$admin.system.users holds users and roles of the source: not copied"),
        ("the profiler", "system.profile is the profiler's output"),
        ("server-owned", "system.sessions is a collection the server owns"),
    ] {
        assert!(notes.contains(text), "{what}: {notes}");
    }
    for ns in ["db1.$admin.system.users", "db1.system.profile", "db1.system.sessions"] {
        assert!(mock.collection(ns).is_none(), "{ns} is not copied");
    }

    // A time-series collection: refused before anything is written, with the way out.
    write_bson(&d.join("system.buckets.weather.bson"), &[doc! {"_id": 1, "control": {"version": 1}}]);
    std::fs::write(
        d.join("weather.metadata.json"),
        r#"{"options":{"timeseries":{"timeField":"t","metaField":"m","granularity":"seconds"}},"indexes":[],"type":"timeseries","collectionName":"weather"}"#,
    )
    .unwrap();
    let inserts = mock.sent(&["insert", "create"]).len();
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &db1_spec, "--from", &from]), env.clone()).await;
    run.expect_code(1);
    assert!(run.stderr.contains("weather is a time-series collection") && run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert_eq!(mock.sent(&["insert", "create"]).len(), inserts, "nothing was written");
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &db1_spec, "--from", &from, "--collections", "cafés"]), env.clone()).await;
    run.expect_code(0);
}

/// `migrate data --dry-run`, which reads the dump only (the target's address goes nowhere).
async fn dry_run(spec: &str, from: &str) -> crate::support::Run {
    let dry = poactl_blocking(
        strings(&["migrate", "data", "-e", spec, "--from", from, "--dry-run"]),
        vec![("POACTL_MONGODB_URI", "mongodb://127.0.0.1:1/".into())],
    )
    .await;
    dry.expect_code(0);
    dry
}

fn dump_of(collections: &[(&str, &[Document], &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("home_service_db");
    std::fs::create_dir(&db).unwrap();
    for (name, docs, metadata) in collections {
        write_bson(&db.join(format!("{name}.bson")), docs);
        std::fs::write(db.join(format!("{name}.metadata.json")), metadata).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_documents_arrive_exactly_and_refusals_do_not_stop_the_rest() {
    let (_dir, spec) = spec_file("mig", SPEC);
    let zero = Timestamp { time: 0, increment: 0 };
    let events = vec![
        doc! {"_id": 1, "at": zero, "nested": {"at": zero}},
        doc! {"_id": 2, "at": Timestamp { time: 5, increment: 1 }},
        doc! {"at": zero, "_id": 3},
    ];
    let dump = dump_of(&[("events", &events, r#"{"options":{},"indexes":[]}"#)]);
    let from = dump.path().to_string_lossy().to_string();

    // The dry run finds them, and the documents without _id, reading the dump only.
    let no_id = dump_of(&[
        ("events", &events, r#"{"options":{},"indexes":[]}"#),
        ("logs", &[doc! {"line": "a"}, doc! {"line": "a"}], r#"{"options":{}}"#),
    ]);
    let dry_from = no_id.path().to_string_lossy().to_string();
    let dry = dry_run(&spec, &dry_from).await;
    assert!(dry.stdout.contains("events: 2 document(s) hold an empty Timestamp(0, 0) at the top level"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("logs: 2 document(s) have no _id") && dry.stdout.contains("a fresh dump of the same data"),
        "{}",
        dry.stdout
    );

    // Empty timestamps stay as they were: on a current server through bypassEmptyTsReplacement,
    // on a 4.4 server (which refuses that field) put back with $set after the insert.
    for version in [None, Some((4, 4))] {
        let mock = MongoMock::start().await;
        mock.state.lock().unwrap().version = version;
        let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];
        let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "-o", "json"]), env).await;
        run.expect_code(0);
        let row = &run.json()["collections"][0];
        assert_eq!((row["verified"].as_bool(), row["empty_timestamps"].as_u64()), (Some(true), Some(2)), "{version:?}: {row}");
        let stored: Vec<Document> = mock.collection("home_service_db.events").unwrap().documents().cloned().collect();
        for (got, want) in stored.iter().zip(&events) {
            assert_eq!(got.get("at"), want.get("at"), "{version:?}: {got}");
        }
    }

    // A target whose collection has a validator the older documents fail: they are named with
    // the fix, the others go in, and the run exits 1; --bypass-document-validation loads them.
    let users = vec![doc! {"_id": 1, "email": "a@x"}, doc! {"_id": 2, "name": "no email"}, doc! {"_id": 3, "email": "c@x"}];
    let places = vec![doc! {"_id": 1, "name": "Café"}];
    let dump = dump_of(&[
        (
            "users",
            &users,
            r#"{"options":{"validator":{"email":{"$exists":true}}},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"},{"v":2,"key":{"email":1},"name":"email_1","unique":true}]}"#,
        ),
        ("places", &places, r#"{"options":{"collation":{"locale":"fr","strength":3,"version":"57.1"}},"indexes":[]}"#),
    ]);
    let from = dump.path().to_string_lossy().to_string();
    let mock = MongoMock::start().await;
    let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];
    {
        let mut st = mock.state.lock().unwrap();
        let mut validated = Collection::default();
        validated.options = doc! {"validator": {"email": {"$exists": true}}, "validationLevel": "strict", "validationAction": "error"};
        st.collections.insert("home_service_db.users".into(), validated);
        // `poactl apply` built an index first: the collection exists without the dump's collation.
        st.collections.insert("home_service_db.places".into(), Collection::default());
    }
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "--no-indexes"]), env.clone()).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("collection users: the target refused 1 document(s): _id 2 (code 121: DocumentValidationFailure")
            && run.stderr.contains("--bypass-document-validation"),
        "{}",
        run.stderr
    );
    assert_eq!(mock.collection("home_service_db.users").unwrap().documents().count(), 2, "the others went in");
    assert!(
        run.stderr.contains("collection places exists on the target with other options than the source's (collation: source")
            && run.stderr.contains("drop it with `db.getCollection(\"places\").drop()`"),
        "{}",
        run.stderr
    );
    assert!(mock.collection("home_service_db.places").unwrap().documents().next().is_none(), "nothing written into places");
    // The spec declares users' email index without its uniqueness: named.
    assert!(run.stdout.contains("the source's index email_1 on (email) has unique: true"), "{}", run.stdout);

    let run = poactl_blocking(
        strings(&[
            "migrate",
            "data",
            "-e",
            &spec,
            "--from",
            &from,
            "--collections",
            "users",
            "--bypass-document-validation",
            "--no-indexes",
        ]),
        env.clone(),
    )
    .await;
    run.expect_code(0);
    let sent = mock.sent(&["insert"]);
    assert_eq!(sent.last().unwrap().get_bool("bypassDocumentValidation"), Ok(true));
    assert_eq!(mock.collection("home_service_db.users").unwrap().documents().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_collection_that_differs_everywhere_is_narrowed_to_one_id() {
    let docs: Vec<Document> = (0..5000).map(|i| doc! {"_id": i, "n": i}).collect();
    let dump = dump_of(&[("bookings", &docs, r#"{"options":{},"indexes":[]}"#)]);
    let from = dump.path().to_string_lossy().to_string();
    let (_dir, spec) = spec_file("mig", SPEC);
    let mock = MongoMock::start().await;
    let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];
    poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from]), env.clone()).await.expect_code(0);
    {
        let mut st = mock.state.lock().unwrap();
        for d in st.collections.get_mut("home_service_db.bookings").unwrap().docs.values_mut() {
            d.insert("n", Bson::Int64(-1));
        }
    }
    let finds = mock.sent(&["find"]).len();
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "-o", "json"]), env).await;
    run.expect_code(1);
    let row = &run.json()["collections"][0];
    let id = row["first_difference"].as_str().unwrap_or("").to_string();
    assert!(id.parse::<i32>().is_ok_and(|n| (0..5000).contains(&n)), "{row}");
    // The full read, then 256-fold narrowing (5,000 differing documents: one more read), then
    // the read that keeps at most 2,000: each read of the target is one find.
    let reads = mock.sent(&["find"])[finds..].iter().filter(|c| c.get_document("filter").is_ok_and(|f| f.is_empty())).count();
    assert!((3..=4).contains(&reads), "{reads} reads of the target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_user_without_collmod_gets_the_validator_at_once_and_never_loses_it() {
    let users = vec![doc! {"_id": 1, "email": "a@x"}, doc! {"_id": 2, "name": "no email"}];
    let meta = r#"{"options":{"validator":{"email":{"$exists":true}},"validationLevel":"moderate"},"indexes":[]}"#;
    let dump = dump_of(&[("users", &users, meta), ("members", &users, meta)]);
    let from = dump.path().to_string_lossy().to_string();
    let (_dir, spec) = spec_file("mig", "environment: mig\ndatabase:\n  name: home_service_db\n");
    let mock = MongoMock::start().await;
    mock.set_users(vec![poactl::sandbox::mongo::MockUser::new("admin", "app", "app-pass-1", &[("readWrite", "home_service_db")])]);
    // `apply` made `members` empty, without options.
    mock.state.lock().unwrap().collections.insert("home_service_db.members".into(), Collection::default());
    let env = vec![("POACTL_MONGODB_URI", mock.uri.replacen("mongodb://", "mongodb://app:app-pass-1@", 1))];
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from]), env).await;
    run.expect_code(1);
    // readWrite may not collMod: users is created with its validator, as mongorestore does.
    let created: Vec<Document> = mock.sent(&["create"]).into_iter().filter(|c| c.get_str("create") == Ok("users")).collect();
    assert_eq!(created[0].get_document("validator").ok(), Some(&doc! {"email": {"$exists": true}}), "{created:?}");
    assert!(run.stderr.contains("collection users: the target refused 1 document(s): _id 2 (code 121"), "{}", run.stderr);
    // members would have lost its validator: stopped before any write, with the fix.
    assert!(
        run.stderr.contains("collection members exists on the target") && run.stderr.contains("only collMod adds a validator"),
        "{}",
        run.stderr
    );
    assert!(mock.collection("home_service_db.members").unwrap().documents().next().is_none());
}

/// `doc`'s bytes with every `PLACEHOLDER` string's contents replaced by bytes that are not
/// UTF-8 (same length, so every length prefix stays right).
fn not_utf8(doc: &Document) -> Vec<u8> {
    let mut bytes = mongodb::bson::to_vec(doc).unwrap();
    while let Some(at) = bytes.windows(11).position(|w| w == b"PLACEHOLDER") {
        bytes[at..at + 11].copy_from_slice(b"caf\xe9 \xff\xfe bad");
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_strings_that_are_not_utf8_are_copied_as_bytes_with_a_warning() {
    let (_dir, spec) = spec_file("mig", SPEC);
    let zero = Timestamp { time: 0, increment: 0 };
    // One with _id, one without (its derived _id is written around the bytes) whose empty
    // timestamp comes after the bad string, one nested in an array, and a clean one.
    let source = [
        not_utf8(&doc! {"_id": 1, "name": "PLACEHOLDER"}),
        not_utf8(&doc! {"name": "PLACEHOLDER", "at": zero}),
        not_utf8(&doc! {"_id": 3, "tags": ["ok", {"label": "PLACEHOLDER"}]}),
        mongodb::bson::to_vec(&doc! {"_id": 4, "name": "fine"}).unwrap(),
    ];
    let dump = dump_of(&[("places", &[], r#"{"options":{},"indexes":[]}"#)]);
    std::fs::write(dump.path().join("home_service_db/places.bson"), source.concat()).unwrap();
    let from = dump.path().to_string_lossy().to_string();

    let dry = dry_run(&spec, &from).await;
    assert!(
        dry.stdout.contains(
            "places: 3 document(s) hold a key or string that is not valid UTF-8 (first: _id 1, field name): copied byte for byte"
        ),
        "{}",
        dry.stdout
    );

    for version in [None, Some((4, 4))] {
        let mock = MongoMock::start().await;
        mock.state.lock().unwrap().version = version;
        let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];
        let run =
            poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "--no-indexes", "-o", "json"]), env.clone()).await;
        run.expect_code(0);
        let report = run.json();
        let row = &report["collections"][0];
        assert_eq!(
            (row["verified"].as_bool(), row["inserted"].as_u64(), row["not_utf8"].as_u64(), row["empty_timestamps"].as_u64()),
            (Some(true), Some(4), Some(3), Some(1)),
            "{version:?}: {row}"
        );
        assert!(report["warnings"][0].as_str().unwrap_or("").contains("field name"), "{report}");
        let stored = mock.stored_bytes("home_service_db.places");
        for want in [&source[0], &source[2], &source[3]] {
            assert!(stored.contains(want), "{version:?}: a document with _id arrives byte for byte");
        }
        let derived = stored.iter().find(|d| !source.contains(d)).expect("the document without _id");
        let (bad, stamp) = (b"caf\xe9 \xff\xfe bad", [0x11u8, b'a', b't', 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(derived.windows(bad.len()).any(|w| w == bad), "{version:?}: its string keeps its bytes");
        assert!(derived.windows(stamp.len()).any(|w| w == stamp), "{version:?}: its empty timestamp stays empty");

        // A rerun finds every document again, the derived _id too.
        let again = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "--no-indexes", "-o", "json"]), env).await;
        again.expect_code(0);
        let row = &again.json()["collections"][0];
        assert_eq!(
            (row["inserted"].as_u64(), row["already_there"].as_u64(), row["verified"].as_bool()),
            (Some(0), Some(4), Some(true)),
            "{row}"
        );
        assert!(again.stderr.contains("warning: places: 3 document(s) hold a key or string that is not valid UTF-8"), "{}", again.stderr);
    }
}
