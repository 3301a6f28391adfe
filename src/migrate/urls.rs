//! `migrate urls`: rewrites the file URLs stored in documents (old local URLs or paths) to
//! the CDN URLs of the uploads manifest, keeping a record of every changed value so that
//! `--revert` puts it back.
//!
//! Each change is a compare-and-set on the document's top-level field (`{_id, field: {$eq:
//! before}}`, docs "db.collection.updateOne"): a document someone changed meanwhile is left
//! alone and counted, never overwritten. The record is written before the update, so a run
//! cut short leaves at most records whose update did not happen, which revert recognises
//! (the field does not hold the new value) and drops.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};

use super::MigrateError;
use super::uploads::{FileStatus, Manifest};

/// The side collection holding the reversible record.
pub(crate) const RECORD_COLLECTION: &str = "poactl_url_rewrites";
const BATCH: usize = 500;
const CONCURRENT_UPDATES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub collection: String,
    /// The dotted path inside documents (`photos.url`; arrays are walked).
    pub path: String,
}

impl Field {
    pub(crate) fn parse(s: &str) -> Result<Field, MigrateError> {
        match s.split_once('.') {
            Some((c, p)) if !c.is_empty() && !p.is_empty() && !p.split('.').any(str::is_empty) && !p.starts_with('$') => {
                Ok(Field { collection: c.to_string(), path: p.to_string() })
            }
            _ => Err(MigrateError::Usage(format!("--field {s}: expected COLLECTION.PATH, e.g. users.avatarUrl or bookings.photos.url"))),
        }
    }

    /// The top-level field the change is written to (the whole value, compare-and-set).
    pub(crate) fn top(&self) -> &str {
        self.path.split('.').next().unwrap_or(&self.path)
    }
}

/// Old values to CDN URLs, from the manifest's verified files, for values under one of the
/// old bases.
pub(crate) struct Rewriter {
    by_path: HashMap<String, String>,
    /// Paths of files the manifest lists without a verified upload.
    unverified: std::collections::HashSet<String>,
    urls: std::collections::HashSet<String>,
    bases: Vec<OldBase>,
}

/// Where the old uploads were served: an origin and a path (`http://localhost:5000/uploads/`),
/// or a path alone for values stored relative (`/uploads/`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct OldBase {
    /// `host[:port]`, lowercase; `None` for a relative base.
    host: Option<String>,
    /// The path, without its leading `/`, with a trailing `/` unless empty.
    path: String,
}

/// A value split as an old base is: its host if it is an http(s) URL, its path normalised
/// (query and fragment off, `\` as `/`, `%XX` decoded, leading `./` and `/` off).
fn split(value: &str) -> (Option<String>, String) {
    let v = value.trim();
    let (host, rest) = match v.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
            let (h, p) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
            (Some(h.to_ascii_lowercase()), p)
        }
        _ => (None, v),
    };
    let path = rest.split(['?', '#']).next().unwrap_or("");
    let normalized = decode(&path.replace('\\', "/"));
    (host, normalized.trim_start_matches("./").trim_start_matches('/').to_string())
}

impl OldBase {
    fn parse(s: &str) -> Result<OldBase, MigrateError> {
        let (host, path) = split(s);
        if host.as_deref() == Some("") || s.contains("://") && host.is_none() {
            return Err(MigrateError::Usage(format!(
                "--old-base {s}: expected an http(s) URL or a path, e.g. http://localhost:5000/uploads/ or /uploads/"
            )));
        }
        let path = if path.is_empty() || path.ends_with('/') { path } else { format!("{path}/") };
        Ok(OldBase { host, path })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rewrite {
    To(String),
    AlreadyCdn,
    /// Under an old base, but no file of the manifest has that path.
    Unmatched,
    /// The manifest's file for it did not verify: left alone.
    NotVerified,
    /// Not under any old base (another host, such as an avatar from an identity provider).
    OtherOrigin,
}

impl Rewriter {
    pub(crate) fn new(m: &Manifest, old_bases: &[String]) -> Result<Rewriter, MigrateError> {
        if m.cdn_base_url.is_none() {
            return Err(MigrateError::Usage(format!(
                "the manifest has no CDN URL (no distribution served bucket {} when it was written): run `poactl apply` for the CDN, then `poactl migrate uploads` again to rewrite the manifest",
                m.bucket
            )));
        }
        if old_bases.is_empty() {
            return Err(MigrateError::Usage(
                "--old-base is needed: where the old uploads were served, as a URL and/or a path (e.g. --old-base http://localhost:5000/uploads/ --old-base /uploads/); values under no old base are left alone".into(),
            ));
        }
        let bases = old_bases.iter().map(|b| OldBase::parse(b)).collect::<Result<Vec<_>, _>>()?;
        let mut by_path = HashMap::new();
        let mut unverified = std::collections::HashSet::new();
        let mut urls = std::collections::HashSet::new();
        for f in &m.files {
            let Some(url) = &f.url else { continue };
            if f.status != FileStatus::Verified {
                unverified.insert(f.path.clone());
                continue;
            }
            by_path.insert(f.path.clone(), url.clone());
            urls.insert(url.clone());
        }
        Ok(Rewriter { by_path, unverified, urls, bases })
    }

    /// A stored value's new URL: the value must lie under an old base (same host for a URL,
    /// a relative value for a path base), and what follows the base must be a verified file's
    /// path in the manifest (`http://localhost:5000/uploads/images/a.png` under
    /// `http://localhost:5000/uploads/`, and `uploads\\images\\a.png` under `/uploads/`, are
    /// `images/a.png`).
    pub(crate) fn rewrite(&self, value: &str) -> Rewrite {
        if self.urls.contains(value) {
            return Rewrite::AlreadyCdn;
        }
        let (host, path) = split(value);
        let mut under_a_base = false;
        for b in self.bases.iter().filter(|b| b.host == host) {
            let Some(rest) = path.strip_prefix(&b.path) else { continue };
            under_a_base = true;
            if let Some(url) = self.by_path.get(rest) {
                return Rewrite::To(url.clone());
            }
            if self.unverified.contains(rest) {
                return Rewrite::NotVerified;
            }
        }
        if under_a_base { Rewrite::Unmatched } else { Rewrite::OtherOrigin }
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(n) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(n);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct FieldReport {
    pub field: String,
    pub documents: u64,
    /// Values (strings at the path) seen, changed, already CDN URLs, matching no file.
    pub values: u64,
    pub changed: u64,
    pub already: u64,
    pub unmatched: u64,
    /// Values whose file did not verify in the manifest (left alone).
    pub not_verified: u64,
    /// Values under none of the old bases: other hosts, other paths (left alone).
    pub other_origin: u64,
    /// Documents changed by someone else between the read and the write (left alone).
    pub changed_meanwhile: u64,
    pub samples: Vec<(String, String)>,
    pub unmatched_samples: Vec<String>,
}

/// Rewrites the strings a path reaches; `None` when nothing changes.
fn rewrite_at(v: &Bson, path: &[&str], rw: &Rewriter, r: &mut FieldReport) -> Option<Bson> {
    match (v, path.split_first()) {
        (Bson::String(s), None) => {
            r.values += 1;
            match rw.rewrite(s) {
                Rewrite::To(url) if url != *s => {
                    r.changed += 1;
                    if r.samples.len() < 3 {
                        r.samples.push((s.clone(), url.clone()));
                    }
                    Some(Bson::String(url))
                }
                Rewrite::To(_) | Rewrite::AlreadyCdn => {
                    r.already += 1;
                    None
                }
                Rewrite::NotVerified => {
                    r.not_verified += 1;
                    None
                }
                Rewrite::OtherOrigin => {
                    r.other_origin += 1;
                    None
                }
                Rewrite::Unmatched => {
                    r.unmatched += 1;
                    if r.unmatched_samples.len() < 3 {
                        r.unmatched_samples.push(s.clone());
                    }
                    None
                }
            }
        }
        (Bson::Array(items), _) => {
            // An array is walked element by element (a numeric segment picks one).
            if let Some((seg, rest)) = path.split_first()
                && let Ok(i) = seg.parse::<usize>()
            {
                let new = rewrite_at(items.get(i)?, rest, rw, r)?;
                let mut out = items.clone();
                out[i] = new;
                return Some(Bson::Array(out));
            }
            let mut changed = false;
            let out: Vec<Bson> = items
                .iter()
                .map(|i| match rewrite_at(i, path, rw, r) {
                    Some(n) => {
                        changed = true;
                        n
                    }
                    None => i.clone(),
                })
                .collect();
            changed.then_some(Bson::Array(out))
        }
        (Bson::Document(d), Some((seg, rest))) => {
            let new = rewrite_at(d.get(*seg)?, rest, rw, r)?;
            let mut out = d.clone();
            out.insert(*seg, new);
            Some(Bson::Document(out))
        }
        _ => None,
    }
}

/// What one document's field becomes, if it changes.
pub(crate) fn rewrite_document(d: &Document, field: &Field, rw: &Rewriter, r: &mut FieldReport) -> Option<(Bson, Bson)> {
    let parts: Vec<&str> = field.path.split('.').collect();
    let before = d.get(field.top())?;
    let after = rewrite_at(before, &parts[1..], rw, r)?;
    Some((before.clone(), after))
}

/// Scans a field's documents and (unless `dry_run`) rewrites them, recording each change.
pub(crate) async fn rewrite(
    target: &super::Target,
    field: &Field,
    rw: &Rewriter,
    run: &str,
    dry_run: bool,
) -> Result<FieldReport, MigrateError> {
    let fail = |e: mongodb::error::Error| MigrateError::TargetWrite { collection: field.collection.clone(), source: e };
    let db = &target.db;
    let coll = db.collection::<Document>(&field.collection);
    let scan = format!("find {} (the URLs in {})", field.collection, field.top());
    let update = format!("update {} (the URLs in {})", field.collection, field.top());
    let record = format!("insert {RECORD_COLLECTION}");
    let records = db.collection::<Document>(RECORD_COLLECTION);
    let mut r = FieldReport { field: format!("{}.{}", field.collection, field.path), ..Default::default() };
    let mut cursor = target
        .step(&scan, coll.find(doc! {field.top(): {"$exists": true}}).projection(doc! {field.top(): 1}).batch_size(BATCH as u32))
        .await?
        .map_err(fail)?;
    let mut pending: Vec<(Bson, Bson, Bson)> = Vec::new();
    loop {
        let next = target.step(&scan, cursor.try_next()).await?.map_err(fail)?;
        if let Some(d) = &next {
            r.documents += 1;
            if let Some((before, after)) = rewrite_document(d, field, rw, &mut r) {
                pending.push((d.get("_id").cloned().unwrap_or(Bson::Null), before, after));
            }
        }
        if !dry_run && (pending.len() >= BATCH || (next.is_none() && !pending.is_empty())) {
            let batch = std::mem::take(&mut pending);
            let now = mongodb::bson::DateTime::now();
            let docs: Vec<Document> = batch
                .iter()
                .map(|(id, before, after)| doc! {"_id": ObjectId::new(), "run": run, "collection": &field.collection, "field": field.top(), "doc_id": id.clone(), "before": before.clone(), "after": after.clone(), "at": now})
                .collect();
            target
                .write(&record, records.insert_many(&docs))
                .await?
                .map_err(|e| MigrateError::TargetWrite { collection: RECORD_COLLECTION.into(), source: e })?;
            let top = field.top().to_string();
            // Each update is conditional on the value it replaces, so one whose answer never
            // came is found again by the next run (or by --revert) from the record.
            let results: Vec<(crate::deadline::Bounded<mongodb::results::UpdateResult, mongodb::error::Error>, Bson)> =
                futures::stream::iter(batch.into_iter().zip(docs).map(|((id, before, after), rec)| {
                    let coll = coll.clone();
                    let top = top.clone();
                    let update = &update;
                    async move {
                        (
                            target
                                .write(update, coll.update_one(doc! {"_id": id, &top: {"$eq": before}}, doc! {"$set": {&top: after}}))
                                .await,
                            rec.get("_id").cloned().unwrap_or(Bson::Null),
                        )
                    }
                }))
                .buffer_unordered(CONCURRENT_UPDATES)
                .collect()
                .await;
            for (res, rec_id) in results {
                if res?.map_err(fail)?.matched_count == 0 {
                    r.changed_meanwhile += 1;
                    r.changed = r.changed.saturating_sub(1);
                    target
                        .write(&record, records.delete_one(doc! {"_id": rec_id}))
                        .await?
                        .map_err(|e| MigrateError::TargetWrite { collection: RECORD_COLLECTION.into(), source: e })?;
                }
            }
        }
        if next.is_none() {
            return Ok(r);
        }
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct RevertReport {
    pub restored: u64,
    /// Records whose update never happened (a run cut short): dropped.
    pub never_applied: u64,
    /// Documents changed since the rewrite: left alone, their records kept.
    pub conflicts: Vec<String>,
}

/// Puts recorded values back, newest first, for the given fields (all when empty).
pub(crate) async fn revert(target: &super::Target, fields: &[Field], dry_run: bool) -> Result<RevertReport, MigrateError> {
    let rec_err = |e: mongodb::error::Error| MigrateError::TargetWrite { collection: RECORD_COLLECTION.into(), source: e };
    let db = &target.db;
    let records = db.collection::<Document>(RECORD_COLLECTION);
    let mut out = RevertReport::default();
    let listed = || async { records.find(doc! {}).sort(doc! {"_id": -1}).await?.try_collect::<Vec<Document>>().await };
    let list: Vec<Document> = target.read(&format!("find {RECORD_COLLECTION}"), listed).await?.map_err(rec_err)?;
    for rec in list {
        let (Ok(coll), Ok(top)) = (rec.get_str("collection"), rec.get_str("field")) else { continue };
        if !fields.is_empty() && !fields.iter().any(|f| f.collection == coll && f.top() == top) {
            continue;
        }
        let (Some(id), Some(before), Some(after)) = (rec.get("doc_id"), rec.get("before"), rec.get("after")) else { continue };
        let c = db.collection::<Document>(coll);
        let fail = |e: mongodb::error::Error| MigrateError::TargetWrite { collection: coll.to_string(), source: e };
        let current =
            target.read(&format!("find {coll}"), || c.find_one(doc! {"_id": id.clone()}).projection(doc! {top: 1})).await?.map_err(fail)?;
        let now = current.as_ref().and_then(|d| d.get(top));
        if now == Some(after) {
            if !dry_run {
                let put_back = c.update_one(doc! {"_id": id.clone(), top: {"$eq": after.clone()}}, doc! {"$set": {top: before.clone()}});
                let res = target.write(&format!("update {coll}"), put_back).await?.map_err(fail)?;
                if res.matched_count == 0 {
                    out.conflicts.push(format!("{coll} _id {id}"));
                    continue;
                }
            }
            out.restored += 1;
        } else if now == Some(before) {
            out.never_applied += 1;
        } else {
            out.conflicts.push(format!("{coll} _id {id} ({top} changed since the rewrite)"));
            continue;
        }
        if !dry_run {
            let done = records.delete_one(doc! {"_id": rec.get("_id").cloned().unwrap_or(Bson::Null)});
            target.write(&format!("delete {RECORD_COLLECTION}"), done).await?.map_err(rec_err)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::uploads::Entry;

    fn manifest() -> Manifest {
        let entry = |path: &str, status: FileStatus| Entry {
            path: path.into(),
            key: path.into(),
            url: Some(format!("https://cdn.example/{path}")),
            size: 1,
            sha256: String::new(),
            content_type: String::new(),
            cache_control: String::new(),
            status,
            reason: None,
        };
        Manifest {
            format_version: crate::migrate::uploads::MANIFEST_VERSION,
            environment: "t".into(),
            bucket: "b".into(),
            prefix: String::new(),
            cdn_base_url: Some("https://cdn.example".into()),
            files: vec![
                entry("images/a.png", FileStatus::Verified),
                entry("a.png", FileStatus::Verified),
                entry("documents/id card.pdf", FileStatus::Verified),
                entry("images/failed.png", FileStatus::Failed),
            ],
        }
    }

    fn rewriter() -> Rewriter {
        Rewriter::new(&manifest(), &["http://localhost:5000/uploads/".into(), "/uploads".into()]).unwrap()
    }

    #[test]
    fn only_values_under_an_old_base_find_their_verified_file() {
        let rw = rewriter();
        let cdn = |p: &str| Rewrite::To(format!("https://cdn.example/{p}"));
        let cases = [
            ("http://localhost:5000/uploads/images/a.png", cdn("images/a.png")),
            ("HTTP://LOCALHOST:5000/uploads/images/a.png", cdn("images/a.png")),
            ("/uploads/images/a.png?v=3", cdn("images/a.png")),
            ("uploads\\images\\a.png", cdn("images/a.png")),
            ("/uploads/a.png", cdn("a.png")),
            ("/uploads/documents/id%20card.pdf", cdn("documents/id card.pdf")),
            ("https://cdn.example/images/a.png", Rewrite::AlreadyCdn),
            ("/uploads/images/b.png", Rewrite::Unmatched),
            ("/uploads/images/failed.png", Rewrite::NotVerified),
            // Another host whose path ends like an uploaded file: a Gravatar, an OAuth avatar.
            ("https://www.gravatar.com/avatar/images/a.png", Rewrite::OtherOrigin),
            ("https://lh3.googleusercontent.com/uploads/images/a.png", Rewrite::OtherOrigin),
            // A relative value outside the old prefix is not guessed at.
            ("images/a.png", Rewrite::OtherOrigin),
            ("/static/a.png", Rewrite::OtherOrigin),
        ];
        for (value, want) in cases {
            assert_eq!(rw.rewrite(value), want, "{value}");
        }
        assert!(Rewriter::new(&manifest(), &[]).is_err(), "an old base is needed");
    }

    #[test]
    fn paths_walk_nested_documents_and_arrays() {
        let rw = rewriter();
        let d = doc! {"_id": 1, "photos": [{"url": "/uploads/images/a.png", "w": 3}, {"url": "https://cdn.example/a.png"}, {"url": "/uploads/nope.png"}], "avatar": "/a.png"};
        let mut r = FieldReport::default();
        let (_, after) = rewrite_document(&d, &Field::parse("users.photos.url").unwrap(), &rw, &mut r).unwrap();
        assert_eq!(
            after,
            Bson::Array(vec![
                doc! {"url": "https://cdn.example/images/a.png", "w": 3}.into(),
                doc! {"url": "https://cdn.example/a.png"}.into(),
                doc! {"url": "/uploads/nope.png"}.into()
            ])
        );
        assert_eq!((r.values, r.changed, r.already, r.unmatched), (3, 1, 1, 1));
        let mut r = FieldReport::default();
        assert!(rewrite_document(&d, &Field::parse("users.missing").unwrap(), &rw, &mut r).is_none());
        for bad in ["users", ".x", "users.", "users..x", "users.$x"] {
            assert!(Field::parse(bad).is_err(), "{bad}");
        }
    }
}
