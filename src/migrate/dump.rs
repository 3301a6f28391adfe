//! Reading a `mongodump --out DIR` directory: `DB/COLL.bson` (BSON documents back to back,
//! each starting with its int32 length) and `DB/COLL.metadata.json` (canonical extended
//! JSON v2: `options`, `indexes`, and in newer dumps `uuid`, `collectionName`, `type`).
//! `--gzip` dumps (`.bson.gz`, `.metadata.json.gz`) are read too. Documents are kept as the
//! raw bytes the dump holds, so every BSON type arrives exactly as it left.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use mongodb::bson::{Bson, Document, RawDocumentBuf};

use super::{CollectionInfo, CollectionKind, MigrateError};

/// The largest document a server stores (16 MiB, docs "BSON Document Size") plus the slack
/// mongodump allows for internal documents (16 KiB).
const MAX_DOCUMENT: usize = 16 * 1024 * 1024 + 16 * 1024;

/// A dump directory of one database.
#[derive(Debug, Clone)]
pub(crate) struct DumpDir {
    pub dir: PathBuf,
}

impl DumpDir {
    /// `path` is the database's directory (it holds `.bson` files), or a `mongodump --out`
    /// directory holding exactly one database directory, or `want_db` among several.
    pub(crate) fn open(path: &Path, want_db: &str) -> Result<DumpDir, MigrateError> {
        let bad = |why: String| MigrateError::Source { source_name: path.display().to_string(), why };
        if path.is_file() && is_bson_file(path) {
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
        let mut has_bson = false;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                subdirs.push(p);
            } else if is_bson_file(&p) {
                has_bson = true;
            }
        }
        if has_bson {
            return Ok(DumpDir { dir: path.to_path_buf() });
        }
        subdirs.retain(|d| std::fs::read_dir(d).is_ok_and(|mut it| it.any(|e| e.is_ok_and(|e| is_bson_file(&e.path())))));
        subdirs.sort();
        if let Some(d) = subdirs.iter().find(|d| d.file_name().is_some_and(|n| n == want_db)) {
            return Ok(DumpDir { dir: d.clone() });
        }
        match subdirs.as_slice() {
            [one] => Ok(DumpDir { dir: one.clone() }),
            [] => Err(bad("holds no .bson file and no database directory with one: is it a `mongodump --out` directory?".into())),
            many => Err(bad(format!(
                "holds several databases ({}): name one, e.g. --from {}",
                many.iter().filter_map(|d| d.file_name()).map(|n| n.to_string_lossy().to_string()).collect::<Vec<_>>().join(", "),
                many[0].display()
            ))),
        }
    }

    /// The database name the dump was taken from (its directory's name).
    pub(crate) fn database(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
    }

    /// Every collection of the dump, with its metadata, sorted by name.
    pub(crate) fn collections(&self) -> Result<Vec<CollectionInfo>, MigrateError> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| MigrateError::Source { source_name: self.dir.display().to_string(), why: format!("cannot be read: {e}") })?;
        let mut names: Vec<(String, PathBuf)> = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            let Some(file) = p.file_name().and_then(|n| n.to_str()) else { continue };
            if let Some(name) = file.strip_suffix(".bson").or_else(|| file.strip_suffix(".bson.gz")) {
                names.push((name.to_string(), p.clone()));
            } else if let Some(name) = file.strip_suffix(".metadata.json").or_else(|| file.strip_suffix(".metadata.json.gz")) {
                // A view has metadata and no .bson (mongodump writes its definition only).
                let bson = self.dir.join(format!("{name}.bson"));
                if !bson.exists() && !self.dir.join(format!("{name}.bson.gz")).exists() {
                    names.push((name.to_string(), PathBuf::new()));
                }
            }
        }
        names.sort();
        for (name, bson) in names {
            let meta = self.metadata(&name)?;
            let options = meta.get_document("options").cloned().unwrap_or_default();
            let indexes = meta.get_array("indexes").map(|a| a.iter().filter_map(Bson::as_document).cloned().collect()).unwrap_or_default();
            let kind = if name.starts_with("system.") {
                CollectionKind::System
            } else if meta.get_str("type") == Ok("view") || options.contains_key("viewOn") {
                CollectionKind::View
            } else {
                CollectionKind::Collection
            };
            // A damaged file is reported when its collection is copied (with the offset), not
            // here: the other collections of the dump still go.
            let (count, bytes) = if bson.as_os_str().is_empty() {
                (Some(0), Some(0))
            } else {
                match scan(&bson) {
                    Ok((n, b)) => (Some(n), Some(b)),
                    Err(_) => (None, std::fs::metadata(&bson).ok().map(|m| m.len())),
                }
            };
            out.push(CollectionInfo { name, kind, options, indexes, count, bytes, file: Some(bson) });
        }
        Ok(out)
    }

    fn metadata(&self, name: &str) -> Result<Document, MigrateError> {
        let plain = self.dir.join(format!("{name}.metadata.json"));
        let gz = self.dir.join(format!("{name}.metadata.json.gz"));
        let (path, text) = if plain.exists() {
            (plain.clone(), std::fs::read(&plain).map_err(|e| read_error(&plain, e))?)
        } else if gz.exists() {
            let mut buf = Vec::new();
            open(&gz)?.read_to_end(&mut buf).map_err(|e| read_error(&gz, e))?;
            (gz, buf)
        } else {
            // mongodump always writes one; a hand-made dump without it has no options.
            return Ok(Document::new());
        };
        let bad = |why: String| MigrateError::Dump { file: path.display().to_string(), offset: None, why };
        let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(format!("is not JSON: {e}")))?;
        match Bson::try_from(json) {
            Ok(Bson::Document(d)) => Ok(d),
            Ok(_) => Err(bad("is not a JSON object".into())),
            Err(e) => Err(bad(format!("is not extended JSON: {e}"))),
        }
    }
}

fn is_bson_file(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".bson") || n.ends_with(".bson.gz"))
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

    /// The next document, checked to be well-formed BSON.
    pub(crate) fn next_document(&mut self) -> Result<Option<RawDocumentBuf>, MigrateError> {
        let Some(len) = self.length()? else { return Ok(None) };
        let mut buf = vec![0u8; len];
        buf[..4].copy_from_slice(&(len as i32).to_le_bytes());
        self.reader.read_exact(&mut buf[4..]).map_err(|_| self.error("ends inside a document: the file is truncated".into()))?;
        let doc = RawDocumentBuf::from_bytes(buf).map_err(|e| self.error(format!("holds a document that is not valid BSON: {e}")))?;
        // Walk every element once, nested ones too: a damaged document fails here, with its
        // offset, not later on the server.
        check(&doc).map_err(|e| self.error(format!("holds a document that cannot be copied: {e}")))?;
        self.offset += len as u64;
        Ok(Some(doc))
    }
}

/// No server accepts a document nested deeper than this (src/mongo/bson/bson_depth.h,
/// `kDefaultMaxAllowableDepth`); the walk stops there instead of recursing without bound.
const MAX_DEPTH: usize = 200;

fn check(doc: &mongodb::bson::RawDocument) -> Result<(), String> {
    check_doc(doc, 1)
}

fn check_doc(doc: &mongodb::bson::RawDocument, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("it nests documents deeper than {MAX_DEPTH} levels, which no MongoDB server accepts (maxBSONDepth)"));
    }
    for el in doc.iter() {
        check_value(el.map_err(|e| format!("it is not valid BSON: {e}"))?.1, depth)?;
    }
    Ok(())
}

fn check_value(v: mongodb::bson::RawBsonRef<'_>, depth: usize) -> Result<(), String> {
    match v {
        mongodb::bson::RawBsonRef::Document(d) => check_doc(d, depth + 1),
        mongodb::bson::RawBsonRef::Array(a) => {
            if depth + 1 > MAX_DEPTH {
                return Err(format!("it nests documents deeper than {MAX_DEPTH} levels, which no MongoDB server accepts (maxBSONDepth)"));
            }
            for item in a {
                check_value(item.map_err(|e| format!("it is not valid BSON: {e}"))?, depth + 1)?;
            }
            Ok(())
        }
        _ => Ok(()),
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
