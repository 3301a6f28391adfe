//! Reading a `mongodump --out DIR` directory as mongorestore reads it (mongo-tools
//! `mongorestore/filepath.go`: `CreateAllIntents`, `CreateIntentsForDB`, `getInfoFromFile`):
//! - The dump root holds one directory per database. Files at the root are not collections:
//!   `oplog.bson` is what `mongodump --oplog` recorded during the dump (replayed only by
//!   `mongorestore --oplogReplay`), `prelude.json` describes the dump; anything else there
//!   mongorestore skips ("don't know what to do with file").
//! - A database directory holds `COLL.bson` (BSON documents back to back, each starting with
//!   its int32 length; `.bin` in old dumps) and `COLL.metadata.json` (canonical extended JSON
//!   v2: `options`, `indexes`, and in newer dumps `uuid`, `collectionName`, `type`). `--gzip`
//!   dumps (`.bson.gz`, `.metadata.json.gz`) are read too. Subdirectories are skipped.
//! - A collection's name is the metadata's `collectionName` when it has one, else the file
//!   stem unescaped: mongodump writes `url.PathEscape(name)` (mongo-tools `common/util`,
//!   `EscapeCollectionName`) and truncates long names with a `%24` and a hash, which only
//!   `collectionName` undoes.
//! - A time-series collection `X` is `system.buckets.X.bson` beside `X.metadata.json`.
//!
//! Documents are kept as the raw bytes the dump holds, so every BSON type arrives exactly as it
//! left.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use mongodb::bson::{Bson, Document, RawDocumentBuf};

use super::{CollectionInfo, MigrateError, classify, raw};

/// The largest document a server stores (16 MiB, docs "BSON Document Size") plus the slack
/// mongodump allows for internal documents (16 KiB).
const MAX_DOCUMENT: usize = 16 * 1024 * 1024 + 16 * 1024;

/// The databases a whole-server dump holds beside the app's, which are never the one to copy
/// (mongodump writes `admin/system.version.bson` in every full dump).
const SERVER_DATABASES: &[&str] = &["admin", "config", "local"];

/// A dump directory of one database, and what the run should say about the rest of the dump.
#[derive(Debug, Clone)]
pub(crate) struct DumpDir {
    pub dir: PathBuf,
    /// The other databases, the oplog, and files that are not collections.
    pub notes: Vec<String>,
}

/// What a directory entry is to a dump.
enum DumpFile {
    Bson(String),
    Metadata(String),
    /// `oplog.bson` / `oplog.bson.gz` at the dump root.
    Oplog,
    /// `prelude.json` / `prelude.json.gz` at the dump root.
    Prelude,
    Other,
}

fn dump_file(p: &Path, at_root: bool) -> DumpFile {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else { return DumpFile::Other };
    if at_root && (name == "oplog.bson" || name == "oplog.bson.gz") {
        return DumpFile::Oplog;
    }
    if at_root && (name == "prelude.json" || name == "prelude.json.gz") {
        return DumpFile::Prelude;
    }
    for suffix in [".bson", ".bson.gz", ".bin"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return DumpFile::Bson(stem.to_string());
        }
    }
    for suffix in [".metadata.json", ".metadata.json.gz"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return DumpFile::Metadata(stem.to_string());
        }
    }
    DumpFile::Other
}

/// Whether a directory holds collection files (a database directory).
fn holds_collections(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .is_ok_and(|mut it| it.any(|e| e.is_ok_and(|e| matches!(dump_file(&e.path(), false), DumpFile::Bson(_) | DumpFile::Metadata(_)))))
}

fn names(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter().filter_map(|d| d.file_name()).map(|n| n.to_string_lossy().to_string()).collect()
}

impl DumpDir {
    /// `path` is a database's directory (it holds collection files), or a `mongodump --out`
    /// directory: then the database is `db` (`--db`), else the one named `want_db` (the
    /// spec's `database.name`), else the only one that is not the server's own.
    pub(crate) fn open(path: &Path, want_db: &str, db: Option<&str>) -> Result<DumpDir, MigrateError> {
        let bad = |why: String| MigrateError::Source { source_name: path.display().to_string(), why };
        if path.is_file() && matches!(dump_file(path, false), DumpFile::Bson(_)) {
            let coll = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(|n| n.trim_end_matches(".gz").trim_end_matches(".bson").to_string())
                .unwrap_or_default();
            let dir = path.parent().map(|d| d.display().to_string()).unwrap_or_default();
            return Err(bad(format!("is one collection's file: pass the directory that holds it, `--from {dir} --collections {coll}`")));
        }
        if path.is_file() {
            return Err(bad("is a file: poactl reads `mongodump --out DIR` directories; a `--archive` file must be restored to a directory first (`mongorestore --archive=F --dir=DIR` is not it: run `mongodump --out DIR` instead)".into()));
        }
        let entries = std::fs::read_dir(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        let mut subdirs = Vec::new();
        let (mut collection_files, mut oplog, mut stray) = (false, false, Vec::new());
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if holds_collections(&p) {
                    subdirs.push(p);
                }
                continue;
            }
            match dump_file(&p, true) {
                DumpFile::Bson(_) | DumpFile::Metadata(_) => collection_files = true,
                DumpFile::Oplog => oplog = true,
                DumpFile::Prelude => {}
                DumpFile::Other => stray.push(p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()),
            }
        }
        subdirs.sort();
        stray.sort();
        // A directory with collection files is a database directory, as mongorestore takes
        // `--db NAME DIR`; an oplog.bson among them is then a collection named oplog.
        if collection_files && (!oplog || subdirs.is_empty()) {
            let mut notes = Vec::new();
            if !subdirs.is_empty() {
                notes.push(format!(
                    "{}: subdirectories {} skipped: a database directory holds collection files only",
                    path.display(),
                    names(&subdirs).join(", ")
                ));
            }
            return Ok(DumpDir { dir: path.to_path_buf(), notes });
        }
        let user_dbs: Vec<PathBuf> =
            subdirs.iter().filter(|d| d.file_name().is_some_and(|n| !SERVER_DATABASES.iter().any(|s| n == *s))).cloned().collect();
        let chosen = match db {
            Some(name) => subdirs
                .iter()
                .find(|d| d.file_name().is_some_and(|n| n == name))
                .cloned()
                .ok_or_else(|| bad(format!("has no database directory {name} (--db); it has: {}", names(&subdirs).join(", "))))?,
            None => match subdirs.iter().find(|d| d.file_name().is_some_and(|n| n == want_db)) {
                Some(d) => d.clone(),
                None => match user_dbs.as_slice() {
                    [one] => one.clone(),
                    [] if subdirs.is_empty() => {
                        return Err(bad(
                            "holds no collection files and no database directory with some: is it a `mongodump --out` directory?".into(),
                        ));
                    }
                    [] => {
                        return Err(bad(format!("holds only the server's databases ({}): name one with --db", names(&subdirs).join(", "))));
                    }
                    many => {
                        return Err(bad(format!(
                            "holds several databases ({}): name the one to copy with --db NAME",
                            names(many).join(", ")
                        )));
                    }
                },
            },
        };
        let mut notes = Vec::new();
        let others: Vec<PathBuf> = subdirs.iter().filter(|d| **d != chosen).cloned().collect();
        if !others.is_empty() {
            notes.push(format!(
                "the dump also holds database(s) {}: not copied (this run copies {}; run again with --db NAME for another)",
                names(&others).join(", "),
                chosen.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
            ));
        }
        if oplog {
            notes.push("oplog.bson (a `mongodump --oplog` dump) is not replayed: the collections are copied as dumped, without the writes made while the dump ran; stop the app's writes before dumping, or restore with `mongorestore --oplogReplay`".into());
        }
        if !stray.is_empty() {
            notes.push(format!("{}: files that are not part of a dump skipped: {}", path.display(), stray.join(", ")));
        }
        Ok(DumpDir { dir: chosen, notes })
    }

    /// The database name the dump was taken from (its directory's name).
    pub(crate) fn database(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
    }

    /// Every collection of the dump, with its metadata, sorted by name.
    pub(crate) fn collections(&self) -> Result<Vec<CollectionInfo>, MigrateError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| MigrateError::Source { source_name: self.dir.display().to_string(), why: format!("cannot be read: {e}") })?;
        // File stem -> (data file, metadata file).
        let mut stems: BTreeMap<String, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                continue;
            }
            match dump_file(&p, false) {
                DumpFile::Bson(stem) => stems.entry(stem).or_default().0 = Some(p),
                DumpFile::Metadata(stem) => stems.entry(stem).or_default().1 = Some(p),
                _ => {}
            }
        }
        // A time-series collection's buckets file joins its metadata (mongorestore
        // `CreateIntentForCollection`: the metadata name is the buckets name without the prefix).
        let bucket_stems: Vec<String> = stems.keys().filter(|s| s.starts_with("system.buckets.")).cloned().collect();
        for b in bucket_stems {
            let of = b.trim_start_matches("system.buckets.").to_string();
            if stems.get(&of).is_some_and(|(data, meta)| data.is_none() && meta.is_some()) {
                let data = stems.remove(&b).and_then(|(d, _)| d);
                if let Some(entry) = stems.get_mut(&of) {
                    entry.0 = data;
                }
            }
        }
        let mut out = Vec::new();
        for (stem, (bson, meta_file)) in stems {
            let meta = match &meta_file {
                Some(f) => read_metadata(f)?,
                None => Document::new(),
            };
            let name = match meta.get_str("collectionName") {
                Ok(n) if !n.is_empty() => n.to_string(),
                _ => collection_name(&stem).map_err(|why| MigrateError::Dump {
                    file: bson.as_ref().or(meta_file.as_ref()).map(|p| p.display().to_string()).unwrap_or_default(),
                    offset: None,
                    why,
                })?,
            };
            let options = meta.get_document("options").cloned().unwrap_or_default();
            let indexes = meta.get_array("indexes").map(|a| a.iter().filter_map(Bson::as_document).cloned().collect()).unwrap_or_default();
            let (kind, reason) = classify(&name, meta.get_str("type").ok(), &options);
            // A damaged file is reported when its collection is copied (with the offset), not
            // here: the other collections of the dump still go.
            let (count, bytes) = match &bson {
                None => (Some(0), Some(0)),
                Some(f) => match scan(f) {
                    Ok((n, b)) => (Some(n), Some(b)),
                    Err(_) => (None, std::fs::metadata(f).ok().map(|m| m.len())),
                },
            };
            out.push(CollectionInfo { name, kind, reason, options, indexes, count, bytes, file: bson });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// A collection name from a dump file stem: mongodump's `url.PathEscape` undone. A truncated
/// long name (`%24` and a hash, 238 characters) is only in the metadata's `collectionName`.
pub(crate) fn collection_name(stem: &str) -> Result<String, String> {
    if stem.contains("%24") && stem.len() == 238 {
        return Err("has a truncated long collection name and no `collectionName` in its metadata, so its real name is unknown: dump it again with a current mongodump".into());
    }
    let b = stem.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = hex else { return Err(format!("has a file name that is not an escaped collection name ({stem})")) };
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("has a file name that does not unescape to UTF-8 ({stem})"))
}

fn read_metadata(path: &Path) -> Result<Document, MigrateError> {
    let mut text = Vec::new();
    open(path)?.read_to_end(&mut text).map_err(|e| read_error(path, e))?;
    let bad = |why: String| MigrateError::Dump { file: path.display().to_string(), offset: None, why };
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(format!("is not JSON: {e}")))?;
    match Bson::try_from(json) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err(bad("is not a JSON object".into())),
        Err(e) => Err(bad(format!("is not extended JSON: {e}"))),
    }
}

fn read_error(p: &Path, e: std::io::Error) -> MigrateError {
    MigrateError::Dump { file: p.display().to_string(), offset: None, why: format!("cannot be read: {e}") }
}

/// The file, decompressed when it is gzip.
fn open(p: &Path) -> Result<Box<dyn Read + Send>, MigrateError> {
    let f = std::fs::File::open(p).map_err(|e| read_error(p, e))?;
    let r = BufReader::with_capacity(1 << 20, f);
    if p.extension().is_some_and(|e| e == "gz") { Ok(Box::new(flate2::read::MultiGzDecoder::new(r))) } else { Ok(Box::new(r)) }
}

/// Documents and bytes of a `.bson` file, reading the length prefixes only when it is not
/// compressed (a compressed file is read through).
fn scan(p: &Path) -> Result<(u64, u64), MigrateError> {
    let mut docs = DocReader::open(p)?;
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(len) = docs.skip_one()? {
        n += 1;
        bytes += len as u64;
    }
    Ok((n, bytes))
}

/// Reads a `.bson` file one document at a time, checking each length and each document.
pub(crate) struct DocReader {
    file: String,
    reader: Box<dyn Read + Send>,
    offset: u64,
}

impl DocReader {
    pub(crate) fn open(p: &Path) -> Result<DocReader, MigrateError> {
        Ok(DocReader { file: p.display().to_string(), reader: open(p)?, offset: 0 })
    }

    fn error(&self, why: String) -> MigrateError {
        MigrateError::Dump { file: self.file.clone(), offset: Some(self.offset), why }
    }

    /// The next document's length, or None at a clean end of file.
    fn length(&mut self) -> Result<Option<usize>, MigrateError> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.reader.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(self.error("ends inside a document's length: the file is truncated".into())),
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(format!("cannot be read: {e}"))),
            }
        }
        let n = i32::from_le_bytes(len);
        if n < 5 || n as usize > MAX_DOCUMENT {
            return Err(self.error(format!("has a document of length {n}, which no BSON document has: the file is damaged or is not BSON")));
        }
        Ok(Some(n as usize))
    }

    fn skip_one(&mut self) -> Result<Option<usize>, MigrateError> {
        let Some(len) = self.length()? else { return Ok(None) };
        let copied = std::io::copy(&mut (&mut self.reader).take(len as u64 - 4), &mut std::io::sink())
            .map_err(|e| self.error(format!("cannot be read: {e}")))?;
        if copied != len as u64 - 4 {
            return Err(self.error("ends inside a document: the file is truncated".into()));
        }
        self.offset += len as u64;
        Ok(Some(len))
    }

    /// The next document, checked to be well-formed BSON, with what it holds that is not
    /// UTF-8 (copied as bytes, see `raw`).
    pub(crate) fn next_document(&mut self) -> Result<Option<(RawDocumentBuf, raw::Checked)>, MigrateError> {
        let Some(len) = self.length()? else { return Ok(None) };
        let mut buf = vec![0u8; len];
        buf[..4].copy_from_slice(&(len as i32).to_le_bytes());
        self.reader.read_exact(&mut buf[4..]).map_err(|_| self.error("ends inside a document: the file is truncated".into()))?;
        // Walk every element once, nested ones too: a damaged document fails here, with its
        // offset, not later on the server.
        let checked = raw::check(&buf).map_err(|e| self.error(format!("holds a document that cannot be copied: {e}")))?;
        let doc = RawDocumentBuf::from_bytes(buf).map_err(|e| self.error(format!("holds a document that is not valid BSON: {e}")))?;
        self.offset += len as u64;
        Ok(Some((doc, checked)))
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, to_vec};

    use super::*;

    fn read_all(bytes: &[u8]) -> Result<usize, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.bson");
        std::fs::write(&p, bytes).unwrap();
        let mut r = DocReader::open(&p).map_err(|e| e.to_string())?;
        let mut n = 0;
        while r.next_document().map_err(|e| e.to_string())?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    #[test]
    fn damaged_files_fail_with_the_offset_and_the_reason() {
        let one = to_vec(&doc! {"_id": 1, "a": {"b": [1, 2]}}).unwrap();
        let two = [one.clone(), one.clone()].concat();
        let mut bad_inner = one.clone();
        bad_inner[20] = 0x7f; // an element type that does not exist, in the nested document
        let mut deep = doc! {"x": 1};
        for _ in 0..205 {
            deep = doc! {"d": deep};
        }
        let at_second = format!("(at byte {}) ends inside a document", one.len());
        let cases: Vec<(&str, Vec<u8>, Result<usize, &str>)> = vec![
            ("empty file", vec![], Ok(0)),
            ("two documents", two.clone(), Ok(2)),
            ("cut inside the second length", two[..one.len() + 2].to_vec(), Err(&at_second)),
            ("cut inside the second document", two[..two.len() - 1].to_vec(), Err(&at_second)),
            ("a length below 5", vec![4, 0, 0, 0, 0], Err("document of length 4")),
            ("a length above 16 MiB", (17 * 1024 * 1024i32).to_le_bytes().to_vec(), Err("document of length 17825792")),
            ("an unknown element type", bad_inner, Err("not valid BSON")),
            ("nested deeper than any server takes", to_vec(&deep).unwrap(), Err("deeper than 200 levels")),
        ];
        for (what, bytes, want) in cases {
            match (read_all(&bytes), want) {
                (Ok(n), Ok(m)) => assert_eq!(n, m, "{what}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{what}: {e}"),
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }
}
