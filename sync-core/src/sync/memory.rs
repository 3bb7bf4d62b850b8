//! In-memory storages for both sides: what the simulation and the benchmarks run on,
//! and the reference for what the SQL storages must do. A commit is atomic (it is
//! built aside and swapped in), so "crash" means dropping the sessions: everything
//! committed stays.

use std::collections::{BTreeMap, BTreeSet};

use super::CatalogueFilter;
use super::device::{DeviceCommit, DeviceDoc, DeviceStorage};
use super::message::Cursor;
use super::server::{CatalogueEntry, PeerDoc, ServerCommit, ServerStorage, StoredDoc};

/// Compact a document's chunks into one save past this many: always, so a device
/// that has nothing receives one compressed save (see the SQL store's reasons).
const COMPACT_AFTER: usize = 1;

/// A failure injected by a test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected storage failure")]
pub struct InjectedFailure;

#[derive(Debug, Clone)]
struct ServerDoc {
    stored: StoredDoc,
    seq: u64,
}

/// The server's storage, in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryServer {
    docs: BTreeMap<String, ServerDoc>,
    by_seq: BTreeMap<u64, String>,
    seq: u64,
    issued: BTreeMap<String, u64>,
    peers: BTreeMap<(String, String), PeerDoc>,
    /// Fail the next commit (nothing stored), for tests.
    pub fail_next_commit: bool,
}

impl MemoryServer {
    /// An empty server.
    pub fn new() -> MemoryServer {
        MemoryServer::default()
    }

    /// Every stored document id.
    pub fn document_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.docs.keys().map(String::as_str)
    }

    /// The catalogue entry of a document.
    pub fn entry(&self, id: &str) -> Option<CatalogueEntry> {
        self.docs.get(id).map(|d| CatalogueEntry {
            seq: d.seq,
            id: id.to_owned(),
            kind: d.stored.kind,
            meta: d.stored.meta.clone(),
            heads: d.stored.heads.clone(),
        })
    }

    /// Stores changes made on the server itself (routing, dispatch): the same path as
    /// a device's, without a peer.
    pub fn store_server_changes(&mut self, write: super::server::DocWrite) {
        self.append(write);
    }

    fn append(&mut self, write: super::server::DocWrite) {
        self.seq += 1;
        let seq = self.seq;
        let entry = self
            .docs
            .entry(write.id.clone())
            .or_insert_with(|| ServerDoc {
                stored: StoredDoc {
                    kind: write.kind,
                    chunks: Vec::new(),
                    meta: write.meta.clone(),
                    heads: Vec::new(),
                },
                seq,
            });
        self.by_seq.remove(&entry.seq);
        entry.seq = seq;
        // The writer's merged document is this one plus the changes only if it was
        // merged from what is stored now.
        let merged = write.merged.filter(|merged| {
            super::sorted_heads(&merged.base) == super::sorted_heads(&entry.stored.heads)
        });
        entry.stored.heads = write.heads;
        entry.stored.meta = write.meta;
        entry.stored.chunks.extend(write.changes);
        if entry.stored.chunks.len() > COMPACT_AFTER {
            if let Some(merged) = merged {
                entry.stored.chunks = vec![merged.doc.save()];
            } else if let Ok(doc) = super::load_chunks(&entry.stored.chunks) {
                entry.stored.chunks = vec![doc.save()];
            }
        }
        self.by_seq.insert(seq, write.id);
    }
}

impl ServerStorage for MemoryServer {
    type Error = InjectedFailure;

    fn issued_serial(&mut self, device: &str) -> Result<u64, InjectedFailure> {
        Ok(self.issued.get(device).copied().unwrap_or(0))
    }

    fn latest_seq(&mut self) -> Result<u64, InjectedFailure> {
        Ok(self.seq)
    }

    fn document(&mut self, id: &str) -> Result<Option<StoredDoc>, InjectedFailure> {
        Ok(self.docs.get(id).map(|d| d.stored.clone()))
    }

    fn changed_since(
        &mut self,
        device: &str,
        filter: &CatalogueFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<CatalogueEntry>, InjectedFailure> {
        // Filtered as a SQL storage does, so the simulations check that the filter
        // never hides what a device must receive or have evicted.
        Ok(self
            .by_seq
            .range(after.saturating_add(1)..)
            .filter_map(|(_, id)| self.entry(id))
            .filter(|entry| {
                filter.admits(entry.kind, &entry.meta)
                    || self
                        .peers
                        .contains_key(&(device.to_owned(), entry.id.clone()))
            })
            .take(limit)
            .collect())
    }

    fn peer(&mut self, device: &str, id: &str) -> Result<Option<PeerDoc>, InjectedFailure> {
        Ok(self.peers.get(&(device.to_owned(), id.to_owned())).cloned())
    }

    fn peers(&mut self, device: &str) -> Result<Vec<(PeerDoc, CatalogueEntry)>, InjectedFailure> {
        Ok(self
            .peers
            .range((device.to_owned(), String::new())..)
            .take_while(|((d, _), _)| d == device)
            .filter_map(|((_, id), peer)| Some((peer.clone(), self.entry(id)?)))
            .collect())
    }

    fn commit(&mut self, commit: ServerCommit) -> Result<(), InjectedFailure> {
        if std::mem::take(&mut self.fail_next_commit) {
            return Err(InjectedFailure);
        }
        // The reply serial is claimed: a round that ran beside another of the same
        // device (and lost) is refused, as the SQL stores do.
        let issued = self.issued.get(&commit.device).copied().unwrap_or(0);
        if issued != commit.issued.saturating_sub(1) {
            return Err(InjectedFailure);
        }
        // Settle the device's pending entries.
        let keys: Vec<(String, String)> = self
            .peers
            .range((commit.device.clone(), String::new())..)
            .take_while(|((d, _), _)| *d == commit.device)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            match peer.pending.take() {
                Some(p) if p.serial == commit.acknowledged => match p.heads {
                    Some(heads) => peer.confirmed = Some(heads),
                    None => {
                        self.peers.remove(&key);
                    }
                },
                _ => {}
            }
        }
        for write in commit.documents {
            self.append(write);
        }
        for write in commit.peers {
            let peer = self
                .peers
                .entry((commit.device.clone(), write.id))
                .or_default();
            if let Some(confirmed) = write.confirmed {
                peer.confirmed = Some(confirmed);
            }
            peer.pending = write.pending;
        }
        self.issued.insert(commit.device, commit.issued);
        Ok(())
    }
}

/// A device's storage, in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryDevice {
    cursor: Cursor,
    docs: BTreeMap<String, DeviceDoc>,
    resync: BTreeSet<String>,
    /// Fail the next commit (nothing stored), for tests.
    pub fail_next_commit: bool,
}

impl MemoryDevice {
    /// An empty device.
    pub fn new() -> MemoryDevice {
        MemoryDevice::default()
    }

    /// Every document the device holds.
    pub fn documents(&self) -> &BTreeMap<String, DeviceDoc> {
        &self.docs
    }
}

impl DeviceStorage for MemoryDevice {
    type Error = InjectedFailure;

    fn cursor(&mut self) -> Result<Cursor, InjectedFailure> {
        Ok(self.cursor)
    }

    fn unsent(&mut self) -> Result<Vec<String>, InjectedFailure> {
        Ok(self
            .docs
            .iter()
            .filter(|(_, d)| d.unsent && d.rejected.is_none())
            .map(|(id, _)| id.clone())
            .collect())
    }

    fn resync_wanted(&mut self) -> Result<Vec<String>, InjectedFailure> {
        Ok(self.resync.iter().cloned().collect())
    }

    fn document(&mut self, id: &str) -> Result<Option<DeviceDoc>, InjectedFailure> {
        Ok(self.docs.get(id).cloned())
    }

    fn commit(&mut self, commit: DeviceCommit) -> Result<(), InjectedFailure> {
        if std::mem::take(&mut self.fail_next_commit) {
            return Err(InjectedFailure);
        }
        if let Some(cursor) = commit.cursor {
            self.cursor = cursor;
        }
        for id in commit.resynced {
            self.resync.remove(&id);
        }
        for id in commit.delete {
            self.docs.remove(&id);
        }
        for write in commit.docs {
            self.docs.insert(write.id, write.doc);
        }
        self.resync.extend(commit.want_resync);
        Ok(())
    }
}
