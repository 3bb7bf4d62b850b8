//! The sync endpoint's engine: sync-core's [`ServerSession`] over the SQL store.
//!
//! The session is synchronous (sync-core knows no runtime), so a round runs on a
//! blocking thread and waits on each query there (`Handle::block_on`); the CPU work of
//! checking changes and folding cases stays off the async workers too. Rounds of one
//! device run one at a time (a per-device lock), as the protocol requires; rounds of
//! different devices run side by side, at most `concurrent_rounds` of them: the others
//! wait in line as cheap tasks, not as blocked threads each holding its documents
//! (1,000 phones at once grew the blocking pool to 512 threads and the memory with
//! it, for no more throughput: the work is CPU and one SQLite writer).
//!
//! Rounds share a [`DocumentCache`]: a document a round loads or writes stays loaded
//! for the next round that reads it at the same heads; a write's document is the one
//! the round merged (`DocWrite::merged`), so the store saves it without loading it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::runtime::Handle;
use wangge_sync_core::role::Actor;
use wangge_sync_core::sync::message::Limits;
use wangge_sync_core::sync::server::{
    CatalogueEntry, PeerDoc, RoundStats, ServerCommit, ServerSession, ServerStorage, StoredDoc,
    SyncError,
};
use wangge_sync_core::sync::{CatalogueFilter, Rules, UserScope};

use automerge::Automerge;

use crate::cases::{CaseRules, Materializer, ServerActions};
use crate::doc_cache::DocumentCache;
use crate::store::{Store, StoreError};

/// What every sync round shares: the per-device locks, the case rules, the limits.
#[derive(Debug)]
pub struct SyncEngine {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Catalogue, calendar, grids and ownership: the fold and the server's actions.
    pub rules: Arc<CaseRules>,
    /// Size limits of a round.
    pub limits: Limits,
    /// Permits for the rounds that run at once.
    running: Arc<tokio::sync::Semaphore>,
    /// Documents loaded by earlier rounds.
    pub documents: DocumentCache,
}

impl SyncEngine {
    /// An engine over `rules` with `limits` that runs at most `concurrent_rounds`
    /// rounds at once (at least one), with a document cache of the default size.
    pub fn new(limits: Limits, rules: Arc<CaseRules>, concurrent_rounds: usize) -> SyncEngine {
        SyncEngine {
            locks: Mutex::new(HashMap::new()),
            rules,
            limits,
            running: Arc::new(tokio::sync::Semaphore::new(concurrent_rounds.max(1))),
            documents: DocumentCache::new(crate::doc_cache::DEFAULT_BYTES),
        }
    }

    /// The same engine with a document cache of `bytes` (0: none).
    pub fn with_document_cache(mut self, bytes: u64) -> SyncEngine {
        self.documents = DocumentCache::new(bytes);
        self
    }

    fn lock_for(&self, device: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget locks nobody holds, so the map stays the size of the devices syncing.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(device.to_owned()).or_default().clone()
    }

    /// Runs one round for `writer` (the signed-in device) on `request`; returns the
    /// encoded reply. `phone_clock_ms` is the time the phone stamps entries with, as it
    /// sent it, for the patrol log's clock flags.
    pub async fn round(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        writer: Actor,
        request: Vec<u8>,
        now: i64,
        phone_clock_ms: Option<i64>,
    ) -> Result<(Vec<u8>, RoundStats), SyncError> {
        let guard = self.lock_for(&writer.device).lock_owned().await;
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|e| SyncError::Storage(Box::new(e)))?;
        let engine = Arc::clone(self);
        let handle = Handle::current();
        let joined = tokio::task::spawn_blocking(move || {
            let _one_round_per_device = guard;
            let _running = permit;
            let scope = UserScope::of(&writer);
            let actions = ServerActions {
                rules: &engine.rules,
                store: &store,
                handle: &handle,
                now: DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default(),
            };
            let session = ServerSession {
                writer: &writer,
                scope: &scope,
                rules: Rules {
                    context: engine.rules.context(),
                },
                limits: engine.limits,
                automate: &actions,
            };
            let mut storage = BlockingStorage {
                store: Arc::clone(&store),
                handle: handle.clone(),
                now,
                clock_skew_ms: phone_clock_ms.map(|phone| phone - now),
                rules: &engine.rules,
                cache: &engine.documents,
            };
            session.handle(&mut storage, &request)
        })
        .await;
        joined.map_err(|e| SyncError::Storage(Box::new(e)))?
    }
}

/// The SQL store seen from a blocking thread.
struct BlockingStorage<'a> {
    store: Arc<dyn Store>,
    handle: Handle,
    now: i64,
    clock_skew_ms: Option<i64>,
    rules: &'a CaseRules,
    cache: &'a DocumentCache,
}

impl ServerStorage for BlockingStorage<'_> {
    type Error = StoreError;

    fn issued_serial(&mut self, device: &str) -> Result<u64, StoreError> {
        self.handle.block_on(self.store.sync_issued_serial(device))
    }

    fn latest_seq(&mut self) -> Result<u64, StoreError> {
        self.handle.block_on(self.store.sync_latest_seq())
    }

    fn document(&mut self, id: &str) -> Result<Option<StoredDoc>, StoreError> {
        self.handle.block_on(self.store.sync_document(id))
    }

    fn documents(&mut self, ids: &[&str]) -> Result<HashMap<String, StoredDoc>, StoreError> {
        self.handle.block_on(self.store.sync_documents(ids))
    }

    fn changed_since(
        &mut self,
        device: &str,
        filter: &CatalogueFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<CatalogueEntry>, StoreError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        self.handle
            .block_on(self.store.sync_changed_since(device, filter, after, limit))
    }

    fn peer(&mut self, device: &str, id: &str) -> Result<Option<PeerDoc>, StoreError> {
        self.handle.block_on(self.store.sync_peer(device, id))
    }

    fn peers_among(
        &mut self,
        device: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, PeerDoc>, StoreError> {
        self.handle
            .block_on(self.store.sync_peers_among(device, ids))
    }

    fn peers(&mut self, device: &str) -> Result<Vec<(PeerDoc, CatalogueEntry)>, StoreError> {
        self.handle.block_on(self.store.sync_peers(device))
    }

    fn load(
        &mut self,
        id: &str,
        stored: &StoredDoc,
    ) -> Result<Arc<Automerge>, automerge::AutomergeError> {
        if let Some(doc) = self.cache.get(id, &stored.heads) {
            return Ok(doc);
        }
        let doc = Arc::new(wangge_sync_core::sync::load_chunks(&stored.chunks)?);
        self.cache.insert(id, Arc::clone(&doc));
        Ok(doc)
    }

    fn commit(&mut self, commit: ServerCommit) -> Result<(), StoreError> {
        let derive = Materializer {
            rules: self.rules,
            now: self.now,
            clock_skew_ms: self.clock_skew_ms,
        };
        self.handle
            .block_on(self.store.sync_commit(&commit, &derive, self.now))?;
        // Committed: what the round merged is what it stored, unless another round
        // wrote the document meanwhile (then its heads differ, and it is never hit).
        for write in commit.documents {
            if let Some(merged) = write.merged {
                self.cache.insert(&write.id, Arc::new(merged.doc));
            }
        }
        Ok(())
    }
}
