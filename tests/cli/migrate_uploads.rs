//! `poactl migrate uploads` on the directory trees and interrupted uploads real servers have,
//! through the CLI against moto (S3 checksums and multipart; the launcher's documented fixes give
//! ListParts its real root element and part checksums).

use std::path::Path;

use base64::Engine as _;
use sha2::Digest;

use crate::support::{Moto, Recorder, aws_env, poactl_blocking, spec_file, strings};

const SPEC: &str = "environment: up\nstorage:\n  buckets:\n    - { name: up-files, region: us-east-1 }\ncdn:\n  distributions:\n    - name: assets\n      origin: { bucket: up-files }\n";

async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&crate::support::aws_config(&moto.url).await).force_path_style(true).build(),
    )
}

async fn keys(s3: &aws_sdk_s3::Client) -> Vec<String> {
    let listed = s3.list_objects_v2().bucket("up-files").send().await.unwrap();
    let mut k: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_links_names_and_skipped_entries_are_handled_as_a_user_expects() {
    let moto = Moto::start();
    let env = aws_env(&moto.url);
    let (dir, spec) = spec_file("up", SPEC);
    poactl_blocking(strings(&["apply", "-e", &spec, "--auto-approve", "-q"]), env.clone()).await.expect_code(0);
    let up = dir.path().join("uploads");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(up.join("a")).unwrap();
    std::fs::create_dir_all(elsewhere.join("gallery")).unwrap();
    std::fs::write(up.join("a/b.jpg"), "slash").unwrap();
    std::fs::write(up.join("a\\b.jpg"), "backslash").unwrap();
    std::fs::write(dir.path().join(".env"), "SECRET=1").unwrap();
    std::fs::write(elsewhere.join("gallery/g.png"), "gallery").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(dir.path().join(".env"), up.join("logo.png")).unwrap();
        symlink(elsewhere.join("gallery"), up.join("gallery")).unwrap();
        symlink(&up, up.join("a/loop")).unwrap();
        symlink(up.join("missing.jpg"), up.join("broken.jpg")).unwrap();
        symlink(up.join("a/b.jpg"), up.join("same.jpg")).unwrap();
    }
    let from = up.to_string_lossy().to_string();
    let manifest = dir.path().join("m.json").to_string_lossy().to_string();
    let dry = poactl_blocking(strings(&["migrate", "uploads", "-e", &spec, "--from", &from, "--dry-run"]), env.clone()).await;
    dry.expect_code(1);
    assert!(dry.stdout.contains("would not upload:") && dry.stdout.contains("broken.jpg: a broken link"), "{}", dry.stdout);
    let run = poactl_blocking(
        strings(&["migrate", "uploads", "-e", &spec, "--from", &from, "--prefix", "uploads", "--manifest", &manifest, "-o", "json"]),
        env.clone(),
    )
    .await;
    // Everything that could go went; the skipped entries are each named, and the run exits 1.
    run.expect_code(1);
    let s3 = s3(&moto).await;
    assert_eq!(
        keys(&s3).await,
        vec!["uploads/a/b.jpg", "uploads/a\\b.jpg", "uploads/gallery/g.png", "uploads/same.jpg"],
        "two files, two keys; a directory link is followed; a link inside the tree is a file"
    );
    let skipped = run.json()["skipped"].to_string();
    for (what, text) in [
        ("a link to a secret outside", "logo.png: a link to"),
        ("the fix", "--follow-links-outside"),
        ("a broken link", "broken.jpg: a broken link"),
        ("a loop", "loop: a directory already scanned"),
    ] {
        assert!(skipped.contains(text), "{what}: {skipped}");
    }
    assert!(run.stderr.contains("error: not uploaded:"), "{}", run.stderr);
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["format_version"], 2);
    assert!(m["files"].as_array().unwrap().iter().all(|f| f["status"] == "verified"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_an_interrupted_big_file_resumes_from_its_checked_parts() {
    let moto = Moto::start();
    let env = aws_env(&moto.url);
    let (dir, spec) = spec_file("up", SPEC);
    poactl_blocking(strings(&["apply", "-e", &spec, "--auto-approve", "-q"]), env.clone()).await.expect_code(0);
    let up = dir.path().join("uploads");
    std::fs::create_dir_all(&up).unwrap();
    // 4 parts of 8 MiB (the last one shorter).
    let part = 8 * 1024 * 1024usize;
    let data: Vec<u8> = (0..(3 * part + 1000)).map(|i| (i % 241) as u8).collect();
    std::fs::write(up.join("video.mp4"), &data).unwrap();
    // An earlier run got parts 1 and 3 up, and a part 2 of other bytes (the file changed).
    let s3 = s3(&moto).await;
    let created = s3
        .create_multipart_upload()
        .bucket("up-files")
        .key("video.mp4")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let id = created.upload_id().unwrap().to_string();
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(d));
    let wrong = vec![7u8; part];
    for (number, body) in [(1, &data[..part]), (2, &wrong[..]), (3, &data[2 * part..3 * part])] {
        s3.upload_part()
            .bucket("up-files")
            .key("video.mp4")
            .upload_id(&id)
            .part_number(number)
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .checksum_sha256(b64(body))
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let proxy = Recorder::start(&moto.url).await;
    let from = up.to_string_lossy().to_string();
    let manifest = dir.path().join("m.json").to_string_lossy().to_string();
    let run = poactl_blocking(
        strings(&["migrate", "uploads", "-e", &spec, "--from", &from, "--manifest", &manifest, "-o", "json"]),
        aws_env(&proxy.url),
    )
    .await;
    let m = std::fs::read_to_string(&manifest).unwrap_or_default();
    assert_eq!(run.code, 0, "{m}\n{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["resumed"], 1, "{}", run.stdout);
    let parts_sent: Vec<String> = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "PUT" && s.query.contains("partNumber="))
        .map(|s| s.query.split('&').find(|q| q.starts_with("partNumber=")).unwrap_or("").to_string())
        .collect();
    let mut parts_sent = parts_sent;
    parts_sent.sort();
    assert_eq!(parts_sent, vec!["partNumber=2", "partNumber=4"], "only the missing and the changed part go up");
    let body = s3.get_object().bucket("up-files").key("video.mp4").send().await.unwrap().body.collect().await.unwrap().into_bytes();
    assert!(body[..] == data[..], "the completed object is the file");
    assert!(s3.list_multipart_uploads().bucket("up-files").send().await.unwrap().uploads().is_empty());
    let _ = Path::new(&manifest);
}
