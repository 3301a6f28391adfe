//! Strings that are not UTF-8, carried through the wire mock unchanged.
//!
//! A real server stores the bytes a client sends and gives them back as they are: it does
//! not check a string's UTF-8 on insert, which is why MongoDB's docs tell users who meet
//! such data to read it with `enableUtf8Validation=false`
//! (mongodb/docs `source/includes/fact-non-utf8-data.rst`), and why drivers grew lossy
//! decoding for server replies (mongodb/bson-rust#86, citing SERVER-24007). The mock keeps
//! its collections as `bson::Document`, which cannot hold such a string, so at the wire it
//! swaps each one for a binary of the private subtype `MARK` on the way in and back on the
//! way out. Gap: a client's own binary of that subtype would come back as a string; a key
//! that is not UTF-8 is still refused as malformed.
//!
//! This walker is the mock's own (the sandbox imports no product code); the element layout
//! is the BSON spec's (bsonspec.org/spec.html).

/// A user-defined binary subtype (0x80-0xFF are the user's, per the spec).
const MARK: u8 = 0xEE;

fn int(b: &[u8], at: usize) -> Option<usize> {
    let n = i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?);
    usize::try_from(n).ok()
}

fn cstring(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..)?.iter().position(|c| *c == 0)
}

fn value_len(b: &[u8], kind: u8, at: usize) -> Option<usize> {
    Some(match kind {
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x10 => 4,
        0x07 => 12,
        0x13 => 16,
        0x08 => 1,
        0x06 | 0x0A | 0x7F | 0xFF => 0,
        0x02 | 0x0D | 0x0E => 4 + int(b, at)?,
        0x0C => 4 + int(b, at)? + 12,
        0x03 | 0x04 | 0x0F => int(b, at)?,
        0x05 => 5 + int(b, at)?,
        0x0B => {
            let p = cstring(b, at)?;
            p + 1 + cstring(b, at + p + 1)? + 1
        }
        _ => return None,
    })
}

/// The document with `swap` applied to every element, nested ones too; `None` when it is
/// not well-formed. `swap` returns a replacement (type, value) or `None` to keep it.
/// An element's replacement: its new type and value, or `None` to keep it.
type Swap = dyn Fn(u8, &[u8]) -> Option<(u8, Vec<u8>)>;

fn rewrite(doc: &[u8], swap: &Swap) -> Option<Vec<u8>> {
    if int(doc, 0)? != doc.len() || doc.last() != Some(&0) {
        return None;
    }
    let mut out = vec![0u8; 4];
    let mut at = 4;
    while at < doc.len() - 1 {
        let kind = doc[at];
        let key_end = at + 1 + cstring(doc, at + 1)?;
        let value_at = key_end + 1;
        let end = value_at + value_len(doc, kind, value_at)?;
        let value = doc.get(value_at..end)?;
        let (kind, value) = match kind {
            0x03 | 0x04 => (kind, rewrite(value, swap)?),
            _ => swap(kind, value).unwrap_or_else(|| (kind, value.to_vec())),
        };
        out.push(kind);
        out.extend_from_slice(&doc[at + 1..=key_end]);
        out.extend_from_slice(&value);
        at = end;
    }
    out.push(0);
    let len = out.len() as i32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    Some(out)
}

/// A client's document as the mock stores it: each string that is not UTF-8 becomes a
/// binary of subtype `MARK` holding its bytes.
pub(super) fn marked(doc: &[u8]) -> Option<Vec<u8>> {
    rewrite(doc, &|kind, value| {
        if kind != 0x02 {
            return None;
        }
        let text = value.get(4..value.len().checked_sub(1)?)?;
        if std::str::from_utf8(text).is_ok() {
            return None;
        }
        let mut bin = (text.len() as i32).to_le_bytes().to_vec();
        bin.push(MARK);
        bin.extend_from_slice(text);
        Some((0x05, bin))
    })
}

/// A reply as the client gets it: each `MARK` binary back to the string it was.
pub(super) fn unmarked(doc: &[u8]) -> Vec<u8> {
    rewrite(doc, &|kind, value| {
        if kind != 0x05 || value.get(4) != Some(&MARK) {
            return None;
        }
        let text = &value[5..];
        let mut s = ((text.len() + 1) as i32).to_le_bytes().to_vec();
        s.extend_from_slice(text);
        s.push(0);
        Some((0x02, s))
    })
    .unwrap_or_else(|| doc.to_vec())
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, to_vec};

    use super::*;

    #[test]
    fn a_string_that_is_not_utf8_goes_in_and_comes_back_byte_for_byte() {
        let plain = to_vec(&doc! {"_id": 1, "n": null, "s": "é", "a": [{"t": "x"}]}).unwrap();
        assert_eq!(marked(&plain).unwrap(), plain, "UTF-8 strings are left alone");
        let mut bad = plain.clone();
        let at = bad.windows(2).position(|w| w == "é".as_bytes()).unwrap();
        bad[at] = 0xff;
        let stored = marked(&bad).unwrap();
        assert!(mongodb::bson::Document::from_reader(stored.as_slice()).is_ok(), "the mock can hold it");
        assert_eq!(unmarked(&stored), bad);
    }
}
