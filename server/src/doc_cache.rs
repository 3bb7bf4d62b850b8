//! Loaded documents kept between sync rounds, bounded in bytes.
//!
//! Loading a stored document (inflating its save, checking hashes, rebuilding the op
//! columns) is most of what reading one costs; a case is typically written by several
//! people within minutes (the reporter, the server's dispatch, the handler, the
//! supervisor), so the next round that touches it finds it loaded. Entries are keyed by
//! document id and hold the heads they were loaded at: a document is its changes, so
//! an entry whose heads are the stored ones *is* the stored document, whichever node
//! wrote it. A stale entry is a miss, never a wrong answer; nothing is invalidated.
//!
//! Bounded by an estimate of each document's heap, not by a count: cases grow with
//! their timelines. `quick_cache` (weighted, sharded, scan-resistant: a supervisor's
//! bootstrap reading thousands of documents once does not flush the hot ones), rather
//! than an LRU behind one mutex that every round would contend on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use automerge::{Automerge, ChangeHash, ReadDoc};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use wangge_sync_core::sync::sorted_heads;

/// The default bound (`WANGGE_DOCUMENT_CACHE_MB`, default 64): some 4,000 small
/// cases; at 1,000,000 stored cases the server measured 174–224 MiB of peak RSS
/// without it (docs/BENCHMARKS.md), so the bound keeps it well under 1 GB.
pub const DEFAULT_BYTES: u64 = 64 * 1024 * 1024;

/// The estimated heap of a loaded document: 13 KiB plus 0.5 KiB per change, a fit of
/// the counting allocator's measurements in docs/BENCHMARKS.md (loaded cases of 20,
/// 25 and 50 changes: 22.0, 24.2 and 35.9 KiB; the fit gives 23.0, 25.5 and 38.0).
pub fn estimated_bytes(doc: &Automerge) -> u64 {
    13 * 1024 + 512 * doc.stats().num_changes
}

#[derive(Clone)]
struct Entry {
    heads: Vec<ChangeHash>,
    doc: Arc<Automerge>,
    bytes: u64,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, Entry> for ByBytes {
    fn weight(&self, _id: &String, entry: &Entry) -> u64 {
        entry.bytes
    }
}

/// Loaded documents by id, at most `capacity` estimated bytes.
pub struct DocumentCache {
    entries: Option<Cache<String, Entry, ByBytes>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("numbers", &self.numbers())
            .finish()
    }
}

/// What the cache holds and how it served, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheNumbers {
    /// Loads answered from the cache.
    pub hits: u64,
    /// Loads that found no entry at the stored heads.
    pub misses: u64,
    /// Documents held.
    pub documents: u64,
    /// Their estimated bytes.
    pub bytes: u64,
}

impl DocumentCache {
    /// A cache of at most `capacity` estimated bytes; 0 keeps nothing.
    pub fn new(capacity: u64) -> DocumentCache {
        let entries = (capacity > 0).then(|| {
            // quick_cache sizes its tables from an item estimate: a small case's.
            let items = usize::try_from(capacity / (16 * 1024)).unwrap_or(usize::MAX);
            Cache::with_weighter(items.max(1), capacity, ByBytes)
        });
        DocumentCache {
            entries,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The document `id` at exactly `heads`, if held.
    pub fn get(&self, id: &str, heads: &[ChangeHash]) -> Option<Arc<Automerge>> {
        let found = self
            .entries
            .as_ref()
            .and_then(|entries| entries.get(id))
            .filter(|entry| entry.heads == sorted_heads(heads))
            .map(|entry| entry.doc);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `doc` as document `id` (at its own heads), replacing what was held.
    pub fn insert(&self, id: &str, doc: Arc<Automerge>) {
        let Some(entries) = &self.entries else {
            return;
        };
        let entry = Entry {
            heads: sorted_heads(&doc.get_heads()),
            bytes: estimated_bytes(&doc),
            doc,
        };
        entries.insert(id.to_owned(), entry);
    }

    /// Hits, misses and what is held.
    pub fn numbers(&self) -> CacheNumbers {
        CacheNumbers {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            documents: self
                .entries
                .as_ref()
                .map_or(0, |entries| entries.len() as u64),
            bytes: self.entries.as_ref().map_or(0, Cache::weight),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn doc_with(changes: u64) -> Automerge {
        let mut doc = Automerge::new();
        for n in 0..changes {
            let mut tx = doc.transaction();
            tx.put(automerge::ROOT, "n", n).expect("put");
            tx.commit();
        }
        doc
    }

    #[test]
    fn a_document_is_found_only_at_the_heads_it_was_kept_at() {
        let cache = DocumentCache::new(DEFAULT_BYTES);
        let old = doc_with(1);
        let new = doc_with(2);
        cache.insert("case-1", Arc::new(new.clone()));
        assert!(
            cache.get("case-1", &old.get_heads()).is_none(),
            "stale heads"
        );
        assert!(
            cache.get("case-2", &new.get_heads()).is_none(),
            "another id"
        );
        let found = cache.get("case-1", &new.get_heads()).expect("held");
        assert_eq!(found.get_heads(), new.get_heads());
        let numbers = cache.numbers();
        assert_eq!((numbers.hits, numbers.misses, numbers.documents), (1, 2, 1));
        assert_eq!(numbers.bytes, estimated_bytes(&new));
    }

    #[test]
    fn the_bound_is_kept_in_estimated_bytes() {
        let doc = Arc::new(doc_with(3));
        let one = estimated_bytes(&doc);
        let cache = DocumentCache::new(one * 10);
        for n in 0..100 {
            cache.insert(&format!("case-{n}"), Arc::clone(&doc));
        }
        let numbers = cache.numbers();
        assert!(numbers.bytes <= one * 10, "{numbers:?}");
        assert!(numbers.documents >= 1, "{numbers:?}");
    }

    #[test]
    fn a_cache_of_zero_bytes_keeps_nothing() {
        let cache = DocumentCache::new(0);
        let doc = doc_with(1);
        cache.insert("case-1", Arc::new(doc.clone()));
        assert!(cache.get("case-1", &doc.get_heads()).is_none());
        assert_eq!(cache.numbers().documents, 0);
    }
}
