//! `migrate uploads`: copies a local uploads directory into the environment's bucket.
//!
//! How S3 behaves, and where that was read:
//! - A `PutObject` with `x-amz-checksum-sha256` is refused when the body does not match, and
//!   the checksum is kept with the object; `HeadObject` with `x-amz-checksum-mode: ENABLED`
//!   returns it (S3 user guide, "Checking object integrity"). A multipart object's SHA-256 is
//!   a checksum of the parts' checksums with `-N` appended (a COMPOSITE checksum, same page),
//!   so poactl computes it locally from the same part size. The ETag is no content hash for
//!   multipart objects (same page), so it is never compared.
//! - The SDK sends a checksum value the caller set as it is, without computing its own
//!   (aws-sdk-s3 1.157 `http_request_checksum.rs`, `modify_before_retry_loop`; before that,
//!   awslabs/aws-sdk-rust#1122 overwrote it), so S3 checks the SHA-256 poactl computed.
//! - Parts are 5 MiB to 5 GiB, at most 10,000 per upload (S3 "Multipart upload limits").
//! - The bucket is private behind Origin Access Control with BucketOwnerEnforced ownership:
//!   ACLs are disabled and a request carrying `x-amz-acl: public-read` is refused with
//!   `AccessControlListNotSupported` (S3 user guide, "Controlling ownership of objects"), so
//!   poactl never sends an ACL.
//! - An upload cut short leaves its parts billed until aborted (S3 "Aborting a multipart
//!   upload"); a rerun aborts the unfinished uploads of the keys it writes.
//! - CloudFront matches cache behaviors' path patterns in order, first match wins, `*` any
//!   characters and `?` one, case-sensitive (CloudFront developer guide, "Path pattern");
//!   the origin honours `Cache-Control: max-age` between the behavior's minimum and maximum
//!   TTL, so objects carry the TTL the spec gives their path.

use std::io::Read;
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::MigrateError;
pub(crate) use super::scan::{LocalFile, Scan, key_prefix, scan};

/// Files at or above this size go up in parts (the AWS CLI's default threshold and part size).
pub(crate) const MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
const MIN_PART: u64 = 8 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;

/// The Content-Type of a file by its extension (IANA media types), else binary.
pub(crate) fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" | "jfif" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "svg" => "image/svg+xml",
        "ico" => "image/vnd.microsoft.icon",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "rtf" => "application/rtf",
        "txt" | "log" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// How keys become CDN URLs and which TTL each path gets, from the spec's distribution.
#[derive(Debug, Clone, Default)]
pub(crate) struct CdnRules {
    /// `https://d123.cloudfront.net` (or the first alias), when a distribution serves the bucket.
    pub base_url: Option<String>,
    /// The distribution's origin path (`public/`), which keys must start with to be served.
    pub origin_path: String,
    /// Path patterns and TTLs (seconds), in the spec's order.
    pub behaviors: Vec<(String, u64)>,
    pub default_ttl: u64,
}

impl CdnRules {
    /// The URL path the CDN serves a key under (without the leading `/`).
    fn url_path<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(&self.origin_path)
    }

    pub(crate) fn url(&self, key: &str) -> Option<String> {
        let base = self.base_url.as_ref()?;
        Some(format!("{}/{}", base.trim_end_matches('/'), encode_path(self.url_path(key)?)))
    }

    /// The TTL of the first behavior whose pattern matches, else the default's.
    pub(crate) fn ttl(&self, key: &str) -> u64 {
        let path = self.url_path(key).unwrap_or(key);
        self.behaviors
            .iter()
            .find(|(p, _)| glob(p.trim_start_matches('/').as_bytes(), path.as_bytes()))
            .map_or(self.default_ttl, |(_, t)| *t)
    }

    pub(crate) fn cache_control(&self, key: &str) -> String {
        match self.ttl(key) {
            0 => "no-cache".to_string(),
            t => format!("public, max-age={t}"),
        }
    }
}

/// Percent-encodes a key for a URL path (RFC 3986 unreserved characters and `/` kept).
fn encode_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// CloudFront's path-pattern match: `*` any run of characters (`/` included), `?` one.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// The SDK's timeouts for one request that sends `bytes` (PutObject, UploadPart): time for
/// the bytes at the slowest rate allowed (`deadline::moving`) on top of the request deadline.
pub(crate) fn transfer_timeouts(bytes: u64) -> aws_sdk_s3::config::Builder {
    let d = crate::deadline::current();
    let moving = crate::deadline::moving(bytes);
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(d.attempt + moving)
        .operation_timeout(d.call + moving * 3)
        .build();
    aws_sdk_s3::config::Builder::default().timeout_config(timeouts)
}

/// The part size for a file: 8 MiB, larger when 10,000 parts would not hold it (rounded up
/// to a MiB). A function of the size only, so a rerun computes the same composite checksum.
pub(crate) fn part_size(size: u64) -> u64 {
    let need = size.div_ceil(MAX_PARTS);
    MIN_PART.max(need.div_ceil(1024 * 1024) * 1024 * 1024)
}

/// The SHA-256 S3 will hold for the file: of the whole file, or for a multipart upload the
/// COMPOSITE one (of the parts' digests, `-N` appended). Also each part's digest.
pub(crate) fn checksum(path: &Path, size: u64) -> Result<(String, Vec<String>), MigrateError> {
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let err = |e: std::io::Error| MigrateError::File { path: path.display().to_string(), why: format!("cannot be read: {e}") };
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(err)?);
    let mut buf = vec![0u8; 1 << 20];
    if size < MULTIPART_THRESHOLD {
        let mut h = Sha256::new();
        loop {
            let n = f.read(&mut buf).map_err(err)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        return Ok((b64(&h.finalize()), Vec::new()));
    }
    let part = part_size(size);
    let mut parts = Vec::new();
    let mut all = Sha256::new();
    let mut left = size;
    while left > 0 {
        let mut want = part.min(left);
        left -= want;
        let mut h = Sha256::new();
        while want > 0 {
            let n = f.read(&mut buf[..want.min(1 << 20) as usize]).map_err(err)?;
            if n == 0 {
                return Err(MigrateError::File {
                    path: path.display().to_string(),
                    why: "changed while it was read (it got shorter)".into(),
                });
            }
            h.update(&buf[..n]);
            want -= n as u64;
        }
        let d = h.finalize();
        all.update(d);
        parts.push(b64(&d));
    }
    Ok((format!("{}-{}", b64(&all.finalize()), parts.len()), parts))
}

/// One file of the manifest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Entry {
    /// The path under the uploads directory.
    pub path: String,
    pub key: String,
    pub url: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub cache_control: String,
    /// Whether the bucket holds this file, read back after the upload (`migrate urls`
    /// rewrites only to verified files).
    #[serde(default)]
    pub status: FileStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FileStatus {
    /// Size and SHA-256 read back as uploaded.
    Verified,
    /// The upload failed, or the object read back differs or is missing.
    Failed,
    /// S3 returned no checksum to compare (see `verify`).
    #[default]
    Unverified,
}

/// The manifest format: 2 adds each file's `status`.
pub(crate) const MANIFEST_VERSION: u32 = 2;

/// The manifest `migrate uploads` writes and `migrate urls` reads.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Manifest {
    pub format_version: u32,
    pub environment: String,
    pub bucket: String,
    pub prefix: String,
    pub cdn_base_url: Option<String>,
    pub files: Vec<Entry>,
}

impl Manifest {
    pub(crate) fn read(path: &Path) -> Result<Manifest, MigrateError> {
        let bad = |why: String| MigrateError::File { path: path.display().to_string(), why };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        let m: Manifest =
            serde_json::from_str(&text).map_err(|e| bad(format!("is not a manifest written by `poactl migrate uploads`: {e}")))?;
        match m.format_version {
            MANIFEST_VERSION => {}
            1 => {
                return Err(bad("was written by an older poactl, whose manifests also listed files that did not upload: run `poactl migrate uploads` again to rewrite it (files already there are skipped)".into()));
            }
            v => return Err(bad(format!("has format_version {v}, this poactl reads {MANIFEST_VERSION}"))),
        }
        Ok(m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Uploaded,
    /// Same size and SHA-256 (and headers) already in the bucket.
    AlreadyThere,
    /// A multipart upload an earlier run left, completed from the parts it kept.
    Resumed {
        parts_kept: usize,
    },
}

pub(crate) trait Tally: Send + Sync {
    fn advance(&self, bytes: u64);
}

fn s3_error<E: std::error::Error + Send + Sync + 'static>(what: String, e: E) -> MigrateError {
    MigrateError::S3 { what, source: Box::new(e) }
}

/// What the bucket holds under a key: size, SHA-256 and headers (None: no such object).
async fn head(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<(u64, Option<String>, Option<String>, Option<String>)>, MigrateError> {
    match client.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await {
        Ok(o) => Ok(Some((
            o.content_length().unwrap_or(0).max(0) as u64,
            o.checksum_sha256().map(str::to_string),
            o.content_type().map(str::to_string),
            o.cache_control().map(str::to_string),
        ))),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
        Err(e) => Err(s3_fail(format!("HeadObject s3://{bucket}/{key}"), e)),
    }
}

/// An S3 error as its code and message (the whole context only when there is no service
/// answer), with the fix for the usual ones.
fn s3_fail<E, R>(what: String, e: aws_sdk_s3::error::SdkError<E, R>) -> MigrateError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let why = match e.as_service_error().filter(|s| s.code().is_some()) {
        Some(s) => {
            let code = s.code().unwrap_or("error");
            let hint = match code {
                "NoSuchBucket" => ": the bucket does not exist yet; run `poactl apply` first",
                "AccessDenied" => ": the credentials lack this right (see docs/migration.md, What each step needs)",
                _ => "",
            };
            format!("{code}: {}{hint}", s.message().unwrap_or(""))
        }
        None => aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
    };
    s3_error(what, why.into_error())
}

trait IntoError {
    fn into_error(self) -> std::io::Error;
}

impl IntoError for String {
    fn into_error(self) -> std::io::Error {
        std::io::Error::other(self)
    }
}

/// Whether a stored checksum is the one expected (S3 may show a composite one with or
/// without its `-N`).
fn same_checksum(stored: Option<&str>, expected: &str) -> bool {
    stored.is_some_and(|s| s == expected || expected.split_once('-').is_some_and(|(b, _)| b == s))
}

/// The size of every object under a prefix (ListObjectsV2, 1,000 keys a page): a key that is
/// not there, or has another size, is uploaded without a HeadObject first.
pub(crate) async fn listed_sizes(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<std::collections::HashMap<String, u64>, MigrateError> {
    let mut out = std::collections::HashMap::new();
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| s3_fail(format!("ListObjectsV2 s3://{bucket}/{prefix}"), e))?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                out.insert(k.to_string(), o.size().unwrap_or(0).max(0) as u64);
            }
        }
    }
    Ok(out)
}

/// Uploads one file unless the bucket has it with the same size, SHA-256 and headers
/// (`listed`: the size the bucket listing showed for the key, if any).
pub(crate) async fn put(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    file: &LocalFile,
    entry: &Entry,
    parts: &[String],
    there: &InBucket,
    tally: &dyn Tally,
) -> Result<Outcome, MigrateError> {
    let (listed, unfinished) = (there.size, there.unfinished.as_slice());
    if listed == Some(file.size)
        && let Some((size, sum, ct, cc)) = head(client, bucket, &entry.key).await?
        && size == file.size
        && same_checksum(sum.as_deref(), &entry.sha256)
        && ct.as_deref() == Some(entry.content_type.as_str())
        && cc.as_deref() == Some(entry.cache_control.as_str())
    {
        tally.advance(file.size);
        return Ok(Outcome::AlreadyThere);
    }
    let key = &entry.key;
    let what = |op: &str| format!("{op} s3://{bucket}/{key}");
    let body_error = |e: aws_sdk_s3::primitives::ByteStreamError| MigrateError::File {
        path: file.path.display().to_string(),
        why: format!("cannot be read: {e}"),
    };
    if parts.is_empty() {
        // An unfinished multipart upload of a file that is now small: its parts are billed.
        for id in unfinished {
            client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await
                .map_err(|e| s3_fail(what("AbortMultipartUpload"), e))?;
        }
        let body = ByteStream::from_path(&file.path).await.map_err(body_error)?;
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .content_type(&entry.content_type)
            .cache_control(&entry.cache_control)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&entry.sha256)
            .customize()
            .config_override(transfer_timeouts(file.size))
            .send()
            .await
            .map_err(|e| s3_fail(what("PutObject"), e))?;
        tally.advance(file.size);
        return Ok(Outcome::Uploaded);
    }
    let part = part_size(file.size);
    // The newest unfinished upload of this key resumes; the others are aborted (their parts
    // are billed until then).
    let (resume, stale) = match unfinished.split_last() {
        Some((newest, older)) => (Some(newest.clone()), older.to_vec()),
        None => (None, Vec::new()),
    };
    for id in stale {
        client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .send()
            .await
            .map_err(|e| s3_fail(what("AbortMultipartUpload"), e))?;
    }
    let mut kept: std::collections::BTreeMap<i32, CompletedPart> = std::collections::BTreeMap::new();
    let upload_id = match resume {
        Some(id) => {
            kept = uploaded_parts(client, bucket, key, &id, parts, part, file.size).await?;
            id
        }
        None => client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(&entry.content_type)
            .cache_control(&entry.cache_control)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| s3_fail(what("CreateMultipartUpload"), e))?
            .upload_id()
            .unwrap_or_default()
            .to_string(),
    };
    let resumed = kept.len();
    tally.advance(kept.keys().map(|n| part.min(file.size - (*n as u64 - 1) * part)).sum());
    let missing: Vec<(usize, &String)> = parts.iter().enumerate().filter(|(i, _)| !kept.contains_key(&(*i as i32 + 1))).collect();
    let mut uploads = futures::stream::iter(missing.into_iter().map(|(i, sum)| {
        let upload_id = &upload_id;
        async move {
            let offset = i as u64 * part;
            let len = part.min(file.size - offset);
            let body = ByteStream::read_from()
                .path(&file.path)
                .offset(offset)
                .length(aws_sdk_s3::primitives::Length::Exact(len))
                .build()
                .await
                .map_err(body_error)?;
            let number = i as i32 + 1;
            let out = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(body)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(sum)
                .customize()
                .config_override(transfer_timeouts(len))
                .send()
                .await
                .map_err(|e| s3_fail(what(&format!("UploadPart {number}")), e))?;
            tally.advance(len);
            Ok::<_, MigrateError>(
                CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string)).checksum_sha256(sum).build(),
            )
        }
    }))
    .buffer_unordered(PART_LANES);
    while let Some(done) = uploads.next().await {
        // A part that failed leaves the upload for a rerun to resume from the parts that
        // arrived (checked against their SHA-256 then).
        let done = done.map_err(|e| MigrateError::File {
            path: file.path.display().to_string(),
            why: format!(
                "{}; the parts that arrived are kept for a rerun to resume (billed until it completes or aborts them)",
                crate::secrets::error_chain(&e)
            ),
        })?;
        kept.insert(done.part_number().unwrap_or(0), done);
    }
    drop(uploads);
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(kept.into_values().collect())).build())
        .send()
        .await
        .map_err(|e| s3_fail(what("CompleteMultipartUpload"), e))?;
    Ok(if resumed > 0 { Outcome::Resumed { parts_kept: resumed } } else { Outcome::Uploaded })
}

/// What the bucket showed for a key before the upload: the size its listing gave (None:
/// not there), and the unfinished multipart uploads of the key, oldest first.
#[derive(Debug, Default)]
pub(crate) struct InBucket {
    pub size: Option<u64>,
    pub unfinished: Vec<String>,
}

/// Parts of one file uploaded at once.
const PART_LANES: usize = 4;

/// The parts of an unfinished upload that can stay: numbered within the file's parts, of
/// the size the file's part size gives, with the SHA-256 of the local part (ListParts returns
/// each part's checksum when the upload was created with one: S3 API reference, ListParts,
/// Part.ChecksumSHA256). A part without a checksum to compare goes up again.
async fn uploaded_parts(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[String],
    part: u64,
    size: u64,
) -> Result<std::collections::BTreeMap<i32, CompletedPart>, MigrateError> {
    let mut kept = std::collections::BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let page = client
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .map_err(|e| s3_fail(format!("ListParts s3://{bucket}/{key}"), e))?;
        for p in page.parts() {
            let Some(number) = p.part_number() else { continue };
            let Some(local) = usize::try_from(number - 1).ok().and_then(|i| parts.get(i)) else { continue };
            let want = part.min(size - (number as u64 - 1) * part);
            if p.size() == Some(want as i64) && p.checksum_sha256() == Some(local.as_str()) {
                kept.insert(
                    number,
                    CompletedPart::builder().part_number(number).set_e_tag(p.e_tag().map(str::to_string)).checksum_sha256(local).build(),
                );
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(kept);
        }
        marker = page.next_part_number_marker().map(str::to_string);
    }
}

/// Unfinished multipart uploads of the given keys (a run that was cut short), oldest first.
pub(crate) async fn unfinished(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    keys: &std::collections::HashSet<String>,
) -> Result<std::collections::HashMap<String, Vec<String>>, MigrateError> {
    let mut out: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    let mut key_marker: Option<String> = None;
    let mut id_marker: Option<String> = None;
    loop {
        let page = client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .map_err(|e| s3_fail(format!("ListMultipartUploads s3://{bucket}/{prefix}"), e))?;
        for u in page.uploads() {
            let (Some(key), Some(id)) = (u.key(), u.upload_id()) else { continue };
            if keys.contains(key) {
                out.entry(key.to_string()).or_default().push(id.to_string());
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(out);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Verification {
    pub files: u64,
    pub bytes: u64,
    pub verified: u64,
    /// Keys missing, or with another size or SHA-256 than the local file.
    pub mismatched: Vec<String>,
    /// Keys whose HeadObject returned no SHA-256: nothing to compare, so not verified (an
    /// object written without a checksum, e.g. by another tool, or a read not allowed to
    /// return it: see docs/migration.md on SSE-KMS buckets).
    pub no_checksum: Vec<String>,
}

/// Reads every key back (size and SHA-256 as uploaded) and sets each entry's status; entries
/// already `Failed` (their upload failed) are not read.
pub(crate) async fn verify(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    files: &mut [Entry],
    parallelism: usize,
) -> Result<Verification, MigrateError> {
    let mut v = Verification { files: files.len() as u64, bytes: files.iter().map(|f| f.size).sum(), ..Default::default() };
    let checks: Vec<(usize, Result<_, MigrateError>)> = futures::stream::iter(
        files
            .iter()
            .enumerate()
            .filter(|(_, e)| e.status != FileStatus::Failed)
            .map(|(i, e)| async move { (i, head(client, bucket, &e.key).await) }),
    )
    .buffer_unordered(parallelism.max(1))
    .collect()
    .await;
    for (i, got) in checks {
        let e = &mut files[i];
        match got? {
            Some((size, Some(sum), _, _)) if size == e.size && same_checksum(Some(&sum), &e.sha256) => {
                e.status = FileStatus::Verified;
                v.verified += 1;
            }
            Some((size, None, _, _)) if size == e.size => {
                e.status = FileStatus::Unverified;
                e.reason = Some("S3 returned no SHA-256 for the object".into());
                v.no_checksum.push(e.key.clone());
            }
            Some((size, sum, _, _)) => {
                e.status = FileStatus::Failed;
                e.reason = Some(format!("the bucket holds {size} bytes with SHA-256 {}", sum.as_deref().unwrap_or("(none)")));
                v.mismatched.push(e.key.clone());
            }
            None => {
                e.status = FileStatus::Failed;
                e.reason = Some("not in the bucket".into());
                v.mismatched.push(e.key.clone());
            }
        }
    }
    v.mismatched.extend(
        files
            .iter()
            .filter(|e| e.status == FileStatus::Failed && !v.mismatched.contains(&e.key))
            .map(|e| e.key.clone())
            .collect::<Vec<_>>(),
    );
    v.mismatched.sort();
    v.no_checksum.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_get_the_ttl_of_the_first_cloudfront_pattern_that_matches() {
        let rules = CdnRules {
            base_url: Some("https://d1.cloudfront.net".into()),
            origin_path: String::new(),
            behaviors: vec![("images/*".into(), 31_536_000), ("/documents/*.pdf".into(), 86_400), ("api/*".into(), 0), ("*.js".into(), 60)],
            default_ttl: 3600,
        };
        let cases = [
            ("images/a.png", 31_536_000, "public, max-age=31536000"),
            ("images/nested/b c.jpg", 31_536_000, "public, max-age=31536000"),
            ("documents/x.pdf", 86_400, "public, max-age=86400"),
            ("documents/x.PDF", 3600, "public, max-age=3600"),
            ("api/x", 0, "no-cache"),
            ("images/app.js", 31_536_000, "public, max-age=31536000"),
            ("app.js", 60, "public, max-age=60"),
            ("other/file", 3600, "public, max-age=3600"),
        ];
        for (key, ttl, cc) in cases {
            assert_eq!(rules.ttl(key), ttl, "{key}");
            assert_eq!(rules.cache_control(key), cc, "{key}");
        }
        assert_eq!(rules.url("images/nested/b c.jpg").as_deref(), Some("https://d1.cloudfront.net/images/nested/b%20c.jpg"));
        let under = CdnRules { origin_path: "public/".into(), ..rules };
        assert_eq!(under.url("public/a.png").as_deref(), Some("https://d1.cloudfront.net/a.png"));
        assert_eq!(under.url("private/a.png"), None, "a key outside the origin path is not served");
    }

    #[test]
    fn part_sizes_keep_within_ten_thousand_parts() {
        for (size, part) in [(8 << 20, 8 << 20), (80_000 << 20, 8 << 20), (100_000 << 20, 10 << 20), (5u64 << 40, 525 << 20)] {
            assert_eq!(part_size(size), part, "{size}");
            assert!(size.div_ceil(part_size(size)) <= 10_000);
        }
    }

    #[test]
    fn a_composite_checksum_is_the_hash_of_the_part_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.bin");
        let data: Vec<u8> = (0..(MULTIPART_THRESHOLD as usize + 100)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let (sum, parts) = checksum(&p, data.len() as u64).unwrap();
        assert_eq!(parts.len(), 2);
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let p1 = Sha256::digest(&data[..MULTIPART_THRESHOLD as usize]);
        let p2 = Sha256::digest(&data[MULTIPART_THRESHOLD as usize..]);
        let mut all = Sha256::new();
        all.update(p1);
        all.update(p2);
        assert_eq!(sum, format!("{}-2", b64(&all.finalize())));
        assert_eq!(parts, vec![b64(&p1), b64(&p2)]);
        std::fs::write(&p, b"small").unwrap();
        assert_eq!(checksum(&p, 5).unwrap(), (b64(&Sha256::digest(b"small")), vec![]));
    }
}
