//! `migrate uploads`' view of the local uploads directory: the files to upload with their
//! keys, and every entry left out with the reason.

use std::path::{Path, PathBuf};

use super::MigrateError;

#[derive(Debug, Clone)]
pub(crate) struct LocalFile {
    pub path: PathBuf,
    /// The path under the uploads directory, with `/` separators.
    pub rel: String,
    pub size: u64,
}

/// What a scan of the uploads directory found: the files to upload, and every entry left out
/// with the reason (each one makes the run exit 1, after the rest went up).
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub files: Vec<LocalFile>,
    pub skipped: Vec<String>,
}

/// Every regular file under `dir`, sorted by key. Directory links are followed, each
/// directory once (a link back up is a loop, named and skipped); a file link that resolves
/// outside `dir` is skipped unless `links_outside` (a link to a `.env` must not go to the
/// bucket the CDN serves). A broken link, an unreadable entry, something that is not a file
/// or a name that is not UTF-8 (no S3 key) is named and skipped. The key is the path's
/// components joined by `/`: on Unix `\` is part of a name, so `a\b.jpg` and `a/b.jpg` stay
/// two keys.
pub(crate) fn scan(dir: &Path, links_outside: bool) -> Result<Scan, MigrateError> {
    let bad = |p: &Path, why: String| MigrateError::File { path: p.display().to_string(), why };
    let meta = std::fs::metadata(dir).map_err(|e| bad(dir, format!("cannot be read: {e}")))?;
    if !meta.is_dir() {
        return Err(bad(dir, "is not a directory".into()));
    }
    let root = std::fs::canonicalize(dir).map_err(|e| bad(dir, format!("cannot be read: {e}")))?;
    let mut out = Scan::default();
    let mut visited = std::collections::HashSet::new();
    visited.insert(dir_id(&meta));
    let mut stack: Vec<(PathBuf, Vec<String>)> = vec![(dir.to_path_buf(), Vec::new())];
    while let Some((d, rel)) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                out.skipped.push(format!("{}: cannot be read: {e}", d.display()));
                continue;
            }
        };
        for e in entries {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    out.skipped.push(format!("{}: an entry cannot be read: {err}", d.display()));
                    continue;
                }
            };
            let p = e.path();
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                out.skipped.push(format!("{}: the name is not UTF-8, so it cannot be an S3 key: rename it", p.display()));
                continue;
            };
            let link = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
            let m = match std::fs::metadata(&p) {
                Ok(m) => m,
                Err(err) if link => {
                    out.skipped.push(format!("{}: a broken link ({err})", p.display()));
                    continue;
                }
                Err(err) => {
                    out.skipped.push(format!("{}: cannot be read: {err}", p.display()));
                    continue;
                }
            };
            let mut key = rel.clone();
            key.push(name);
            if m.is_dir() {
                if visited.insert(dir_id(&m)) {
                    stack.push((p, key));
                } else {
                    out.skipped.push(format!("{}: a directory already scanned (a link loop, or a second link to it)", p.display()));
                }
            } else if m.is_file() {
                if link && !links_outside {
                    let target = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
                    if !target.starts_with(&root) {
                        out.skipped.push(format!(
                            "{}: a link to {}, outside --from: not uploaded (pass --follow-links-outside to upload it)",
                            p.display(),
                            target.display()
                        ));
                        continue;
                    }
                }
                out.files.push(LocalFile { path: p, rel: key.join("/"), size: m.len() });
            } else {
                out.skipped.push(format!("{}: not a regular file", p.display()));
            }
        }
    }
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.skipped.sort();
    Ok(out)
}

#[cfg(unix)]
fn dir_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn dir_id(m: &std::fs::Metadata) -> (u64, u64) {
    (m.len(), m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as u64))
}

/// `--prefix` as a key prefix: `uploads`, `/uploads` and `uploads/` all mean `uploads/`.
pub(crate) fn key_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() { String::new() } else { format!("{p}/") }
}
