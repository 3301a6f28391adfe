//! BSON read byte by byte, without asking its strings to be UTF-8.
//!
//! The bson crate refuses a key or a string that is not valid UTF-8, but such data exists on
//! real servers: the server stores the bytes a client sends (MongoDB's docs,
//! `source/includes/fact-non-utf8-data.rst`: "If you attempt to query or export data with
//! invalid UTF8 characters ... disable UTF8 validation"), and older drivers and hand-written
//! BSON put them there. mongorestore copies them as they are, so poactl does too: every
//! place that looks inside a document (the well-formedness check, `_id`, empty timestamps,
//! derived ids, hashes) walks the bytes here, and the document goes to the server unchanged.
//!
//! The layout of each element type is the BSON spec's (bsonspec.org/spec.html); the walk
//! checks every length against its container, so a damaged document fails here, not on the
//! server.

/// One element of a document: its type byte, its key's bytes, its value's bytes, and the
/// whole element (type, key, NUL, value) for copying it into another document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Element<'a> {
    pub kind: u8,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub whole: &'a [u8],
}

pub(crate) const TIMESTAMP: u8 = 0x11;
pub(crate) const DOCUMENT: u8 = 0x03;
const STRING: u8 = 0x02;
const ARRAY: u8 = 0x04;
const DB_POINTER: u8 = 0x0C;
const CODE: u8 = 0x0D;
const SYMBOL: u8 = 0x0E;
const CODE_WITH_SCOPE: u8 = 0x0F;
const REGEX: u8 = 0x0B;

/// No server accepts a document nested deeper than this (src/mongo/bson/bson_depth.h,
/// `kDefaultMaxAllowableDepth`); the walk stops there instead of recursing without bound.
pub(crate) const MAX_DEPTH: usize = 200;

fn i32_at(b: &[u8], at: usize) -> Result<i32, String> {
    b.get(at..at + 4)
        .map(|s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("a length at byte {at} runs past the end of its document"))
}

fn cstring_len(b: &[u8], at: usize) -> Result<usize, String> {
    b.get(at..).and_then(|rest| rest.iter().position(|c| *c == 0)).ok_or_else(|| format!("a name at byte {at} has no terminating NUL"))
}

/// A string value's length: an int32 that counts the trailing NUL, then the bytes.
fn string_len(b: &[u8], at: usize) -> Result<usize, String> {
    let n = i32_at(b, at)?;
    if n < 1 {
        return Err(format!("a string at byte {at} has length {n}"));
    }
    let end = at + 4 + n as usize;
    match b.get(end - 1) {
        Some(0) => Ok(4 + n as usize),
        Some(_) => Err(format!("a string at byte {at} does not end in NUL")),
        None => Err(format!("a string at byte {at} runs past the end of its document")),
    }
}

/// The size of the value of type `kind` that starts at `at`.
fn value_len(b: &[u8], kind: u8, at: usize) -> Result<usize, String> {
    Ok(match kind {
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x10 => 4,
        0x07 => 12,
        0x13 => 16,
        0x08 => 1,
        0x06 | 0x0A | 0x7F | 0xFF => 0,
        STRING | CODE | SYMBOL => string_len(b, at)?,
        DB_POINTER => string_len(b, at)? + 12,
        DOCUMENT | ARRAY | CODE_WITH_SCOPE => {
            let n = i32_at(b, at)?;
            if n < 5 {
                return Err(format!("a nested document at byte {at} has length {n}"));
            }
            n as usize
        }
        0x05 => {
            let n = i32_at(b, at)?;
            if n < 0 {
                return Err(format!("a binary at byte {at} has length {n}"));
            }
            4 + 1 + n as usize
        }
        REGEX => {
            let pattern = cstring_len(b, at)?;
            let options = cstring_len(b, at + pattern + 1)?;
            pattern + 1 + options + 1
        }
        other => return Err(format!("element type 0x{other:02x} at byte {} does not exist", at)),
    })
}

/// The elements of one document, in order; the first structural fault ends the walk with
/// its reason.
pub(crate) fn elements(doc: &[u8]) -> impl Iterator<Item = Result<Element<'_>, String>> {
    let mut at = 4;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let declared = i32_at(doc, 0).ok().map(|n| n as usize);
        if declared != Some(doc.len()) || doc.len() < 5 || doc[doc.len() - 1] != 0 {
            done = true;
            return Some(Err("the document's length or its final NUL is wrong".to_string()));
        }
        if at == doc.len() - 1 {
            done = true;
            return None;
        }
        let step = (|| {
            let kind = doc[at];
            let key_len = cstring_len(doc, at + 1)?;
            let value_at = at + 1 + key_len + 1;
            let len = value_len(doc, kind, value_at)?;
            let end = value_at + len;
            if end > doc.len() - 1 {
                return Err(format!("an element at byte {at} runs past the end of its document"));
            }
            let e = Element { kind, key: &doc[at + 1..at + 1 + key_len], value: &doc[value_at..end], whole: &doc[at..end] };
            Ok((e, end))
        })();
        match step {
            Ok((e, end)) => {
                at = end;
                Some(Ok(e))
            }
            Err(why) => {
                done = true;
                Some(Err(why))
            }
        }
    })
}

/// The element named `key` at the top level.
pub(crate) fn find<'a>(doc: &'a [u8], key: &str) -> Option<Element<'a>> {
    elements(doc).map_while(Result::ok).find(|e| e.key == key.as_bytes())
}

/// A document of the given elements' bytes, in order.
pub(crate) fn document<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    for p in parts {
        out.extend_from_slice(p);
    }
    out.push(0);
    let len = out.len() as i32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// One element's bytes: its type, its key, and its value.
pub(crate) fn element(kind: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + key.len() + value.len());
    out.push(kind);
    out.extend_from_slice(key);
    out.push(0);
    out.extend_from_slice(value);
    out
}

/// The value as a one-field document `{"": value}`: its type and its bytes, comparable
/// across documents and parsable on its own.
pub(crate) fn value_document(e: &Element<'_>) -> Vec<u8> {
    let head = [e.kind, 0];
    document([&head[..], e.value])
}

/// The value as the bson crate reads it; `None` when it holds bytes that are not UTF-8.
pub(crate) fn parsed(e: &Element<'_>) -> Option<mongodb::bson::RawBson> {
    let one = value_document(e);
    mongodb::bson::RawDocument::from_bytes(&one).ok()?.get("").ok().flatten().map(|v| v.to_raw_bson())
}

/// The `_id` of a document, for messages (read from the bytes, so any document has one to
/// show).
pub(crate) fn id_of(d: &mongodb::bson::RawDocument) -> String {
    let Some(id) = find(d.as_bytes(), "_id") else { return "(none)".into() };
    match parsed(&id) {
        Some(v) => display(&v),
        None => format!("(an _id that is not UTF-8: {})", String::from_utf8_lossy(id.value)),
    }
}

/// A value as the shell shows it.
pub(crate) fn display(v: &mongodb::bson::RawBson) -> String {
    mongodb::bson::Bson::try_from(v.clone()).map(|b| b.to_string()).unwrap_or_else(|_| format!("{v:?}"))
}

/// What a well-formed document holds that the bson crate would refuse.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Checked {
    /// Keys and string values (strings, code, symbols, regexes, DBPointer namespaces) that
    /// are not valid UTF-8.
    pub not_utf8: u64,
    /// The dotted path of the first of them, for the warning.
    pub first_path: Option<String>,
}

/// Walks every element, nested ones too, and fails on the first structural fault.
pub(crate) fn check(doc: &[u8]) -> Result<Checked, String> {
    let mut out = Checked::default();
    check_doc(doc, 1, "", &mut out)?;
    Ok(out)
}

fn check_doc(doc: &[u8], depth: usize, path: &str, out: &mut Checked) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("it nests documents deeper than {MAX_DEPTH} levels, which no MongoDB server accepts (maxBSONDepth)"));
    }
    for e in elements(doc) {
        let e = e.map_err(|why| format!("it is not valid BSON: {why}"))?;
        let key = String::from_utf8_lossy(e.key);
        let here = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
        let mut note = |ok: bool| {
            if !ok {
                out.not_utf8 += 1;
                out.first_path.get_or_insert_with(|| here.clone());
            }
        };
        note(std::str::from_utf8(e.key).is_ok());
        match e.kind {
            STRING | CODE | SYMBOL | DB_POINTER => {
                let n = i32_at(e.value, 0)? as usize;
                note(std::str::from_utf8(&e.value[4..4 + n - 1]).is_ok());
            }
            REGEX => note(std::str::from_utf8(e.value).is_ok()),
            DOCUMENT | ARRAY => check_doc(e.value, depth + 1, &here, out)?,
            CODE_WITH_SCOPE => {
                let code = string_len(e.value, 4)?;
                let scope = e.value.get(4 + code..).ok_or("a code-with-scope is too short")?;
                note(std::str::from_utf8(&e.value[8..4 + code - 1]).is_ok());
                check_doc(scope, depth + 1, &here, out)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, to_vec};

    use super::*;

    /// `{"_id": 1, "s": <bytes>}` with the string's bytes as given.
    fn with_string(bytes: &[u8]) -> Vec<u8> {
        let mut s = vec![STRING];
        s.extend_from_slice(b"s\0");
        s.extend_from_slice(&((bytes.len() + 1) as i32).to_le_bytes());
        s.extend_from_slice(bytes);
        s.push(0);
        let id = [0x10, b'_', b'i', b'd', 0, 1, 0, 0, 0];
        document([&id[..], &s[..]])
    }

    #[test]
    fn the_walk_agrees_with_the_bson_crate_and_counts_what_it_refuses() {
        let nested = to_vec(
            &doc! {"_id": 1, "a": {"b": [1, "x", {"c": null}]}, "r": mongodb::bson::Regex { pattern: "^a".into(), options: "i".into() }},
        )
        .unwrap();
        let cases: Vec<(&str, Vec<u8>, Result<u64, &str>)> = vec![
            ("every common type", nested.clone(), Ok(0)),
            ("a string that is UTF-8", with_string("é".as_bytes()), Ok(0)),
            ("a string that is not", with_string(&[0xff, 0xfe]), Ok(1)),
            ("a cut string", with_string(&[0xff])[..14].to_vec(), Err("length or its final NUL")),
            (
                "an unknown type",
                {
                    let mut b = nested.clone();
                    b[4] = 0x40;
                    b
                },
                Err("0x40"),
            ),
        ];
        for (what, bytes, want) in cases {
            match (check(&bytes), want) {
                (Ok(c), Ok(n)) => assert_eq!(c.not_utf8, n, "{what}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{what}: {e}"),
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(check(&with_string(&[0xff])).unwrap().first_path.as_deref(), Some("s"));
        let id = find(&nested, "_id").unwrap();
        assert_eq!(value_document(&id), to_vec(&doc! {"": 1}).unwrap(), "the one-field form is what the bson crate writes");
        let rebuilt = document(elements(&nested).map(|e| e.unwrap().whole));
        assert_eq!(rebuilt, nested, "elements put back together give the same bytes");
    }
}
