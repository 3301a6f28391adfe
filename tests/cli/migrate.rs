//! `poactl migrate` through the CLI. Data: read from the real mongodump files in
//! `tests/fixtures/mongodump/` (written by MongoDB's own tools) and written to the scripted wire
//! MOCK (`poactl::sandbox::mongo`), or to a real server when `MONGODB_TEST_URI` is set.
//! Uploads: against moto (real S3 semantics: checksums, multipart, conditional reads).

use std::path::{Path, PathBuf};

use mongodb::bson::{Bson, Document, doc};
use poactl::sandbox::mongo::MongoMock;

use crate::support::{Moto, Poactl, aws_env, poactl_blocking, spec_file, strings};

fn shared(path: &str) -> PathBuf {
    crate::support::repo().join("tests/fixtures/mongodump").join(path)
}

/// The documents of a `.bson` file, parsed independently of poactl's reader.
fn dump_docs(path: &Path) -> Vec<Document> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(Document::from_reader(&bytes[at..at + len]).unwrap());
        at += len;
    }
    out
}

const DATA_SPEC: &str =
    "environment: mig\ndatabase:\n  name: home_service_db\n  collections:\n    c1:\n      indexes:\n        - { keys: { a: 1 } }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_dump_is_copied_exactly_resumed_by_id_and_verified() {
    let mock = MongoMock::start().await;
    let (_dir, spec) = spec_file("mig", DATA_SPEC);
    let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];
    let from = shared("testdirs").to_string_lossy().to_string();

    // The dry run reads the dump only: nothing reaches the server.
    let dry = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "--dry-run", "-o", "json"]), env.clone()).await;
    dry.expect_code(0);
    let v = dry.json();
    assert_eq!(v["documents"], 110, "{v}");
    assert_eq!(v["collections"][0]["collection"], "c1");
    assert_eq!(mock.received(), 0, "a dry run does not connect");

    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "-o", "json"]), env.clone()).await;
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["ok"], true, "{v}");
    for (coll, n) in [("c1", 100), ("c4", 10)] {
        let stored: Vec<Document> = mock.collection(&format!("home_service_db.{coll}")).unwrap().documents().cloned().collect();
        let source = dump_docs(&shared(&format!("testdirs/db1/{coll}.bson")));
        assert_eq!(stored.len(), n);
        assert_eq!(stored, source, "{coll}: every document arrives with its types and field order");
    }
    // The declared index is built once, after the documents are in.
    let names: Vec<String> = mock.sent(&["insert", "createIndexes"]).iter().map(|c| c.keys().next().unwrap().clone()).collect();
    assert_eq!(names.last().map(String::as_str), Some("createIndexes"), "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "createIndexes").count(), 1);
    assert!(mock.index("home_service_db.c1", "a_1").is_some());

    // A copy cut short: the target lost 40 documents. The rerun sends only those.
    let keep: Vec<Bson> = dump_docs(&shared("testdirs/db1/c1.bson")).iter().take(60).map(|d| d.get("_id").unwrap().clone()).collect();
    mock.retain("home_service_db.c1", |d| keep.contains(d.get("_id").unwrap()));
    let inserts_before = mock.sent(&["insert"]).len();
    let rerun =
        poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "--collections", "c1", "-o", "json"]), env.clone())
            .await;
    rerun.expect_code(0);
    let r = &rerun.json()["collections"][0];
    assert_eq!((r["inserted"].as_u64(), r["already_there"].as_u64(), r["verified"].as_bool()), (Some(40), Some(60), Some(true)), "{r}");
    let sent: i32 = mock.sent(&["insert"])[inserts_before..].iter().map(|c| c.get_i32("documents").unwrap_or(0)).sum();
    assert_eq!(sent, 40, "only the missing documents are sent again");

    // A target document that differs: exit 1, naming the collection and the first _id.
    let changed_id = {
        let mut st = mock.state.lock().unwrap();
        let c = st.collections.get_mut("home_service_db.c4").unwrap();
        let d = c.docs.values_mut().nth(3).unwrap();
        d.insert("a", Bson::Int64(1));
        d.get("_id").unwrap().clone()
    };
    let bad = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "--collections", "c4"]), env.clone()).await;
    bad.expect_code(1);
    assert!(bad.stderr.contains("collection c4 differs") && bad.stderr.contains(&changed_id.to_string()), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_every_bson_type_old_metadata_and_bad_dumps() {
    let mock = MongoMock::start().await;
    let (_dir, spec) = spec_file("mig", DATA_SPEC);
    let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];

    // One document holding every BSON type, and no _id: it gets a derived one, and a rerun
    // recognises it.
    let types = shared("types").to_string_lossy().to_string();
    for (round, inserted) in [(1, 1), (2, 0)] {
        let run = poactl_blocking(
            strings(&["migrate", "data", "-e", &spec, "--from", &types, "--collections", "all_in_one_doc", "-o", "json"]),
            env.clone(),
        )
        .await;
        run.expect_code(0);
        assert_eq!(run.json()["collections"][0]["inserted"], inserted, "round {round}: {}", run.stdout);
    }
    let mut stored = mock.collection("home_service_db.all_in_one_doc").unwrap().documents().next().unwrap().clone();
    assert!(matches!(stored.remove("_id"), Some(Bson::ObjectId(_))));
    assert_eq!(
        stored,
        dump_docs(&shared("types/all_in_one_doc.bson"))[0],
        "every type kept (Decimal128, binary subtypes, int32 vs int64, ...)"
    );

    // Deeper than any server accepts: a clear error with the file and the offset.
    let deep =
        poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &types, "--collections", "deep_nested"]), env.clone()).await;
    deep.expect_code(1);
    assert!(deep.stderr.contains("deep_nested.bson (at byte 0)") && deep.stderr.contains("200 levels"), "{}", deep.stderr);

    // An old dump: v:1 indexes with `ns` and `safe`, odd key values. The undeclared index is
    // named with the fix.
    let old = shared("indextestdump").to_string_lossy().to_string();
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &old]), env.clone()).await;
    run.expect_code(0);
    assert!(run.stdout.contains("index a_1_b_true on (a, b, c, d), which the spec does not declare"), "{}", run.stdout);

    // A made-up dump: a view, a system collection, a truncated file, a collection with options.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("home_service_db");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(db.join("active.metadata.json"), r#"{"options":{"viewOn":"users","pipeline":[]},"indexes":[],"type":"view"}"#).unwrap();
    std::fs::write(db.join("system.js.bson"), b"").unwrap();
    let mut users = Vec::new();
    doc! {"_id": 1, "email": "a@x"}.to_writer(&mut users).unwrap();
    std::fs::write(db.join("users.bson"), &users).unwrap();
    std::fs::write(
        db.join("users.metadata.json"),
        r#"{"options":{"validator":{"email":{"$exists":true}},"collation":{"locale":"fr"},"autoIndexId":true},"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}]}"#,
    )
    .unwrap();
    std::fs::write(db.join("broken.bson"), &users[..users.len() - 3]).unwrap();
    let from = dir.path().to_string_lossy().to_string();
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "--collections", "users"]), env.clone()).await;
    run.expect_code(0);
    let created: Vec<Document> = mock.sent(&["create"]).into_iter().filter(|c| c.get_str("create") == Ok("users")).collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].get_document("collation").unwrap(), &doc! {"locale": "fr"});
    // The validator comes after the load (documents older than it still go in), with collMod.
    assert!(!created[0].contains_key("validator") && !created[0].contains_key("autoIndexId"), "{:?}", created[0]);
    let coll_mod: Vec<Document> =
        mock.sent(&["collMod"]).into_iter().filter(|c| c.get_str("collMod") == Ok("users") && c.contains_key("validator")).collect();
    assert_eq!(coll_mod.len(), 1);
    assert_eq!(coll_mod[0].get_document("validator").unwrap(), &doc! {"email": {"$exists": true}});
    assert!(mock.collection("home_service_db.users").unwrap().options.contains_key("validator"));
    assert!(run.stdout.contains("options not sent to the target: autoIndexId"), "{}", run.stdout);
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from, "--collections", "active"]), env.clone()).await;
    run.expect_code(1);
    assert!(run.stderr.contains("active, which is a view"), "{}", run.stderr);
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &from]), env.clone()).await;
    run.expect_code(1);
    assert!(run.stdout.contains("active is a view: not copied"), "{}", run.stdout);
    // system.js is data (the server lets clients write it; mongorestore restores it).
    assert!(mock.collection("home_service_db.system.js").is_some(), "system.js is copied");
    assert!(run.stderr.contains("broken.bson (at byte 0)") && run.stderr.contains("truncated"), "{}", run.stderr);

    // protect: true: refused before anything is read or sent.
    let (_d2, protected) = spec_file("mig", &format!("protect: true\n{DATA_SPEC}"));
    let before = mock.received();
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &protected, "--from", &from]), env.clone()).await;
    run.expect_code(1);
    assert!(run.stderr.contains("--allow-protected"), "{}", run.stderr);
    assert_eq!(mock.received(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_database_is_copied_from_a_uri_and_never_onto_itself() {
    let mock = MongoMock::start().await;
    let docs: Vec<Document> = (0..2500)
        .map(|i| {
            doc! {"_id": mongodb::bson::oid::ObjectId::new(), "n": i, "big": i as i64 * 1_000_000_000, "price": mongodb::bson::Decimal128::from_bytes([i as u8; 16]), "at": mongodb::bson::DateTime::from_millis(i as i64), "loc": {"type": "Point", "coordinates": [-73.9, 40.7]}}
        })
        .collect();
    mock.insert("legacy.bookings", docs.clone());
    let (_dir, spec) = spec_file("mig", DATA_SPEC);
    let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];
    let source = mock.uri.replacen("/?", "/legacy?", 1);
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &source]), env.clone()).await;
    run.expect_code(0);
    assert!(run.stdout.contains("verified (2500 documents"), "{}", run.stdout);
    let copied: Vec<Document> = mock.collection("home_service_db.bookings").unwrap().documents().cloned().collect();
    assert_eq!(copied, docs);
    assert!(mock.sent(&["getMore"]).len() >= 2, "the source is read in batches");

    let onto_itself = mock.uri.replacen("/?", "/home_service_db?", 1);
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &onto_itself]), env.clone()).await;
    run.expect_code(1);
    assert!(run.stderr.contains("is the target database itself"), "{}", run.stderr);
    let run = poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", "mongodb://127.0.0.1:1/"]), env).await;
    run.expect_code(1);
    assert!(run.stderr.contains("names no database"), "{}", run.stderr);
}

const UPLOADS_SPEC: &str = "environment: up\nstorage:\n  buckets:\n    - { name: up-uploads, region: us-east-1 }\ncdn:\n  distributions:\n    - name: assets\n      origin: { bucket: up-uploads }\n      cache:\n        - { path: \"images/*\", ttl: 365d }\n        - { path: \"api/*\", ttl: 0 }\n";

fn write_uploads(dir: &Path, files: usize) {
    std::fs::create_dir_all(dir.join("images/avatars")).unwrap();
    std::fs::create_dir_all(dir.join("documents")).unwrap();
    for i in 0..files {
        std::fs::write(dir.join(format!("images/avatars/user-{i}.jpg")), format!("jpeg {i}").repeat(100)).unwrap();
    }
    // Over the multipart threshold: three parts.
    let big: Vec<u8> = (0..(17 * 1024 * 1024)).map(|i: u32| (i % 253) as u8).collect();
    std::fs::write(dir.join("documents/contract 1.pdf"), big).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_uploads_resume_after_a_kill_skip_what_is_there_and_verify() {
    let moto = Moto::start();
    let env = aws_env(&moto.url);
    let (dir, spec) = spec_file("up", UPLOADS_SPEC);
    poactl_blocking(strings(&["apply", "-e", &spec, "--auto-approve", "-q"]), env.clone()).await.expect_code(0);
    let uploads = dir.path().join("uploads");
    write_uploads(&uploads, 60);
    let manifest = dir.path().join("manifest.json").to_string_lossy().to_string();
    let from = uploads.to_string_lossy().to_string();
    let args = strings(&["migrate", "uploads", "-e", &spec, "--from", &from, "--manifest", &manifest, "--parallelism", "2", "-o", "json"]);

    // Killed halfway (through a proxy adding 50 ms a request, once a few files are in): a
    // rerun skips what arrived, aborts any unfinished multipart upload, and checks all.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&crate::support::aws_config(&moto.url).await).force_path_style(true).build(),
    );
    let slow = crate::support::Recorder::start_slow(&moto.url, std::time::Duration::from_millis(50)).await;
    let mut child = Poactl::new(&args.iter().map(String::as_str).collect::<Vec<_>>()).envs_owned(&aws_env(&slow.url)).spawn();
    for _ in 0..600 {
        let listed = s3.list_objects_v2().bucket("up-uploads").send().await.unwrap();
        if listed.key_count().unwrap_or(0) >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let run = poactl_blocking(args.clone(), env.clone()).await;
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["verification"]["verified"], 61, "{v}");
    assert_eq!(v["uploaded"].as_u64().unwrap() + v["already_there"].as_u64().unwrap(), 61);
    assert!(v["already_there"].as_u64().unwrap() >= 5 && v["uploaded"].as_u64().unwrap() >= 1, "the rerun resumed: {v}");

    let left = s3.list_multipart_uploads().bucket("up-uploads").send().await.unwrap();
    assert!(left.uploads().is_empty(), "no unfinished upload left behind");
    let head = s3.head_object().bucket("up-uploads").key("images/avatars/user-7.jpg").send().await.unwrap();
    assert_eq!((head.content_type(), head.cache_control()), (Some("image/jpeg"), Some("public, max-age=31536000")));
    let head = s3.head_object().bucket("up-uploads").key("documents/contract 1.pdf").send().await.unwrap();
    assert_eq!(
        (head.content_type(), head.cache_control(), head.content_length()),
        (Some("application/pdf"), Some("public, max-age=86400"), Some(17 * 1024 * 1024))
    );
    // Never an ACL: the bucket's objects have their owner's grant only.
    let acl = s3.get_object_acl().bucket("up-uploads").key("images/avatars/user-7.jpg").send().await.unwrap();
    assert!(acl.grants().iter().all(|g| g.grantee().and_then(|x| x.uri()).is_none()), "no group (AllUsers) grant: {:?}", acl.grants());

    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let big = m["files"].as_array().unwrap().iter().find(|f| f["path"] == "documents/contract 1.pdf").unwrap();
    assert!(big["sha256"].as_str().unwrap().ends_with("-3"), "a multipart object's checksum is the composite one: {big}");
    assert!(
        big["url"].as_str().unwrap().starts_with("https://") && big["url"].as_str().unwrap().ends_with("/documents/contract%201.pdf"),
        "{big}"
    );

    // Nothing changed: nothing sent. One file changed: it alone goes up again.
    let run = poactl_blocking(args.clone(), env.clone()).await;
    run.expect_code(0);
    assert_eq!((run.json()["uploaded"].as_u64(), run.json()["already_there"].as_u64()), (Some(0), Some(61)));
    std::fs::write(uploads.join("images/avatars/user-3.jpg"), "a new avatar").unwrap();
    let run = poactl_blocking(args.clone(), env.clone()).await;
    run.expect_code(0);
    assert_eq!((run.json()["uploaded"].as_u64(), run.json()["bytes_uploaded"].as_u64()), (Some(1), Some(12)));
    let body = s3
        .get_object()
        .bucket("up-uploads")
        .key("images/avatars/user-3.jpg")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(&body[..], b"a new avatar");

    // The object someone replaced out of band is found and put right by the next run.
    s3.put_object().bucket("up-uploads").key("images/avatars/user-4.jpg").body(b"tampered".to_vec().into()).send().await.unwrap();
    let run = poactl_blocking(args, env).await;
    run.expect_code(0);
    assert_eq!(run.json()["uploaded"], 1);
}

fn manifest_file(dir: &Path) -> String {
    let entry = |path: &str, status: &str| serde_json::json!({"path": path, "key": path, "url": format!("https://d1.cloudfront.net/{}", path.replace(' ', "%20")), "size": 1, "sha256": "x", "content_type": "image/jpeg", "cache_control": "public, max-age=1", "status": status});
    let m = serde_json::json!({"format_version": 2, "environment": "mig", "bucket": "b", "prefix": "", "cdn_base_url": "https://d1.cloudfront.net",
        "files": [entry("avatars/u1.jpg", "verified"), entry("avatars/u2.jpg", "verified"), entry("jobs/b1/photo 1.jpg", "verified"), entry("avatars/u5.jpg", "failed")]});
    let p = dir.join("manifest.json");
    std::fs::write(&p, m.to_string()).unwrap();
    p.to_string_lossy().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_file_urls_are_rewritten_after_a_dry_run_idempotently_and_reverted() {
    let mock = MongoMock::start().await;
    let users = vec![
        doc! {"_id": 1, "name": "a", "avatar": "http://localhost:5000/uploads/avatars/u1.jpg"},
        doc! {"_id": 2, "name": "b", "avatar": "/uploads/avatars/u2.jpg"},
        doc! {"_id": 3, "name": "c", "avatar": "/uploads/avatars/gone.jpg"},
        doc! {"_id": 4, "name": "d"},
        // A Gravatar whose path ends like an uploaded file, and a file whose upload failed.
        doc! {"_id": 5, "name": "e", "avatar": "https://www.gravatar.com/uploads/avatars/u1.jpg"},
        doc! {"_id": 6, "name": "f", "avatar": "/uploads/avatars/u5.jpg"},
    ];
    mock.insert("home_service_db.users", users.clone());
    let bookings =
        vec![doc! {"_id": "b1", "photos": [{"url": "uploads\\jobs\\b1\\photo 1.jpg", "w": 800}, {"url": "/uploads/avatars/u1.jpg"}]}];
    mock.insert("home_service_db.bookings", bookings.clone());
    let (dir, spec) = spec_file("mig", DATA_SPEC);
    let manifest = manifest_file(dir.path());
    let env = vec![("POACTL_MONGODB_URI", mock.uri.clone())];
    let base = strings(&[
        "migrate",
        "urls",
        "-e",
        &spec,
        "--manifest",
        &manifest,
        "--field",
        "users.avatar",
        "--field",
        "bookings.photos.url",
        "--old-base",
        "http://localhost:5000/uploads/",
        "--old-base",
        "/uploads/",
    ]);
    let with = |extra: &[&str]| base.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect::<Vec<_>>();

    let dry = poactl_blocking(with(&["--dry-run"]), env.clone()).await;
    dry.expect_code(0);
    assert!(
        dry.stdout.contains("users.avatar: 5 document(s), 5 value(s): 2 to rewrite, 0 already CDN URLs, 1 matching no uploaded file, 1 whose upload did not verify, 1 under no old base (left alone)"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("http://localhost:5000/uploads/avatars/u1.jpg  ->  https://d1.cloudfront.net/avatars/u1.jpg"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("no file for: /uploads/avatars/gone.jpg"), "{}", dry.stdout);
    assert!(mock.sent(&["update", "insert"]).is_empty(), "a dry run writes nothing");

    // Without a terminal, the change needs --auto-approve.
    poactl_blocking(base.clone(), env.clone()).await.expect_code(1);
    poactl_blocking(with(&["--auto-approve"]), env.clone()).await.expect_code(0);
    let avatar = |id: i32| {
        mock.collection("home_service_db.users")
            .unwrap()
            .documents()
            .find(|d| d.get_i32("_id") == Ok(id))
            .unwrap()
            .get_str("avatar")
            .unwrap()
            .to_string()
    };
    assert_eq!(avatar(1), "https://d1.cloudfront.net/avatars/u1.jpg");
    assert_eq!(avatar(2), "https://d1.cloudfront.net/avatars/u2.jpg");
    assert_eq!(avatar(3), "/uploads/avatars/gone.jpg");
    assert_eq!(avatar(5), "https://www.gravatar.com/uploads/avatars/u1.jpg", "another host is left alone");
    assert_eq!(avatar(6), "/uploads/avatars/u5.jpg", "a file whose upload failed is not pointed at");
    let b = mock.collection("home_service_db.bookings").unwrap().documents().next().unwrap().clone();
    assert_eq!(
        b.get_array("photos").unwrap(),
        &vec![
            Bson::Document(doc! {"url": "https://d1.cloudfront.net/jobs/b1/photo%201.jpg", "w": 800}),
            Bson::Document(doc! {"url": "https://d1.cloudfront.net/avatars/u1.jpg"})
        ]
    );
    assert_eq!(
        mock.collection("home_service_db.poactl_url_rewrites").unwrap().documents().count(),
        3,
        "one record per changed document field"
    );

    // Idempotent: a second run finds nothing to change.
    let again = poactl_blocking(with(&["--auto-approve"]), env.clone()).await;
    again.expect_code(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);

    // Revert puts every value back exactly, and empties the record.
    poactl_blocking(strings(&["migrate", "urls", "-e", &spec, "--revert", "--auto-approve"]), env.clone()).await.expect_code(0);
    let now: Vec<Document> = mock.collection("home_service_db.users").unwrap().documents().cloned().collect();
    assert_eq!(now, users);
    assert_eq!(mock.collection("home_service_db.bookings").unwrap().documents().next().unwrap(), &bookings[0]);
    assert_eq!(mock.collection("home_service_db.poactl_url_rewrites").unwrap().documents().count(), 0);
}

/// Against a real MongoDB: source and target are two databases on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_mongodb_migrates_between_two_databases_when_mongodb_test_uri_is_set() {
    let Ok(uri) = std::env::var("MONGODB_TEST_URI") else {
        eprintln!("skipped: MONGODB_TEST_URI is not set (no real MongoDB here)");
        return;
    };
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let tag = std::process::id();
    let (source_db, target_db) = (format!("poactl_src_{tag}"), format!("poactl_dst_{tag}"));
    let docs: Vec<Document> =
        (0..3000).map(|i| doc! {"_id": i, "n": i as i64, "avatar": format!("/uploads/avatars/u{}.jpg", i % 2 + 1)}).collect();
    client.database(&source_db).collection::<Document>("users").insert_many(&docs).await.unwrap();
    let (dir, spec) = spec_file("mig", &DATA_SPEC.replace("home_service_db", &target_db));
    let target_uri = match uri.split_once('?') {
        Some((a, q)) => format!("{}/{target_db}?{q}", a.trim_end_matches('/')),
        None => format!("{}/{target_db}", uri.trim_end_matches('/')),
    };
    let source_uri = target_uri.replace(&target_db, &source_db);
    let env = vec![("POACTL_MONGODB_URI", target_uri)];
    poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &source_uri]), env.clone()).await.expect_code(0);
    poactl_blocking(strings(&["migrate", "data", "-e", &spec, "--from", &source_uri]), env.clone()).await.expect_code(0);
    let manifest = manifest_file(dir.path());
    poactl_blocking(
        strings(&[
            "migrate",
            "urls",
            "-e",
            &spec,
            "--manifest",
            &manifest,
            "--field",
            "users.avatar",
            "--old-base",
            "/uploads/",
            "--auto-approve",
        ]),
        env.clone(),
    )
    .await
    .expect_code(0);
    let one = client.database(&target_db).collection::<Document>("users").find_one(doc! {"_id": 0}).await.unwrap().unwrap();
    assert_eq!(one.get_str("avatar"), Ok("https://d1.cloudfront.net/avatars/u1.jpg"));
    poactl_blocking(strings(&["migrate", "urls", "-e", &spec, "--revert", "--auto-approve"]), env).await.expect_code(0);
    let one = client.database(&target_db).collection::<Document>("users").find_one(doc! {"_id": 0}).await.unwrap().unwrap();
    assert_eq!(one.get_str("avatar"), Ok("/uploads/avatars/u1.jpg"));
    client.database(&source_db).drop().await.unwrap();
    client.database(&target_db).drop().await.unwrap();
}
