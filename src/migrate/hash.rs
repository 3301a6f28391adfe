//! A collection's content fingerprint, computed the same way on both sides of a copy: each
//! document's SHA-256 over its raw BSON bytes with `_id` first (where a server puts it on
//! insert), summed without regard to order, in 256 buckets chosen by the `_id`. Equal
//! fingerprints mean the same documents with the same bytes (so the same types: an int32
//! that became an int64 differs); a differing bucket narrows the search for the first
//! differing `_id` to 1/256 of the collection.

use mongodb::bson::RawDocument;
use sha2::{Digest, Sha256};

use super::raw;

pub(crate) const BUCKETS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub count: u64,
    pub bytes: u64,
    buckets: Vec<u128>,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint { count: 0, bytes: 0, buckets: vec![0; BUCKETS] }
    }
}

/// A document as the fingerprint sees it.
pub(crate) struct Hashed {
    /// The `_id` element's type byte and value bytes.
    pub id: Vec<u8>,
    pub bucket: usize,
    /// SHA-256 of the `_id`: its first byte is the bucket, the next ones narrow a search for
    /// a differing document (`super::verify`).
    pub key: [u8; 32],
    pub digest: u128,
}

impl Fingerprint {
    pub(crate) fn add(&mut self, h: &Hashed, len: usize) {
        self.count += 1;
        self.bytes += len as u64;
        self.buckets[h.bucket] = self.buckets[h.bucket].wrapping_add(h.digest);
    }

    /// The buckets whose contents differ.
    pub(crate) fn differing(&self, other: &Fingerprint) -> Vec<usize> {
        (0..BUCKETS).filter(|b| self.buckets[*b] != other.buckets[*b]).collect()
    }

    /// One hex string for reports.
    pub(crate) fn hex(&self) -> String {
        let mut h = Sha256::new();
        for b in &self.buckets {
            h.update(b.to_le_bytes());
        }
        h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

/// Hashes one document; `None` when it has no `_id` (it cannot be matched across sides).
/// The walk is byte-level (`raw`), so strings that are not UTF-8 hash as their bytes.
pub(crate) fn hash(doc: &RawDocument) -> Option<Hashed> {
    let bytes = doc.as_bytes();
    let mut position = None;
    for (i, e) in raw::elements(bytes).enumerate() {
        let e = e.ok()?;
        if e.key == b"_id" {
            position = Some((i, e));
            break;
        }
    }
    let (at, id_element) = position?;
    let id = raw::value_document(&id_element);
    let digest = if at == 0 { Sha256::digest(bytes) } else { Sha256::digest(id_first_bytes(bytes, &id_element)?) };
    let key: [u8; 32] = Sha256::digest(&id).into();
    let mut low = [0u8; 16];
    low.copy_from_slice(&digest[..16]);
    Some(Hashed { id, bucket: key[0] as usize, key, digest: u128::from_le_bytes(low) })
}

/// The `_id` value as bytes (its type, then its BSON encoding, in a one-field document): the
/// key documents are matched by across sides.
pub(crate) fn id_bytes(doc: &RawDocument) -> Option<Vec<u8>> {
    raw::find(doc.as_bytes(), "_id").map(|e| raw::value_document(&e))
}

/// The document with `_id` moved first, the other fields in their order.
fn id_first_bytes(doc: &[u8], id: &raw::Element<'_>) -> Option<Vec<u8>> {
    let mut parts = vec![id.whole];
    for e in raw::elements(doc) {
        let e = e.ok()?;
        if e.key != b"_id" {
            parts.push(e.whole);
        }
    }
    Some(raw::document(parts))
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{RawDocumentBuf, doc, rawdoc};

    use super::*;

    #[test]
    fn the_fingerprint_sees_types_values_and_ids_but_not_order_or_field_placement_of_id() {
        let base = || [rawdoc! {"_id": 1, "a": 1i32}, rawdoc! {"_id": 2, "a": "x"}];
        let fp = |docs: &[RawDocumentBuf]| {
            let mut f = Fingerprint::default();
            for d in docs {
                f.add(&hash(d).unwrap(), d.as_bytes().len());
            }
            f
        };
        let reference = fp(&base());
        let [a, b] = base();
        let cases: Vec<(&str, Vec<RawDocumentBuf>, bool)> = vec![
            ("the same documents in another order", vec![b.clone(), a.clone()], true),
            ("_id written last (a server moves it first)", vec![rawdoc! {"a": 1i32, "_id": 1}, b.clone()], true),
            ("an int32 that became an int64", vec![rawdoc! {"_id": 1, "a": 1i64}, b.clone()], false),
            ("a changed value", vec![a.clone(), rawdoc! {"_id": 2, "a": "y"}], false),
            ("another _id", vec![a.clone(), rawdoc! {"_id": 3, "a": "x"}], false),
        ];
        for (what, docs, same) in cases {
            assert_eq!(fp(&docs) == reference, same, "{what}");
        }
        assert!(hash(&rawdoc! {"a": 1}).is_none(), "no _id, no hash");
        let _ = doc! {};
    }
}
