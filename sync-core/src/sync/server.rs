//! The server side of a sync round: [`ServerSession::handle`] turns a device's request
//! into a reply, over a [`ServerStorage`].
//!
//! The storage must run [`ServerStorage::commit`] as one durable transaction, and the
//! caller must not run two rounds of the same device at once (the server adapter holds
//! a per-device lock); rounds of different devices may interleave freely, because
//! stored changes are only ever added and each change is judged by its own history.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use automerge::sync::{Message as AutomergeMessage, MessageVersion};
use automerge::{Automerge, Change, ChangeHash};

use super::message::{
    Cursor, DecodeError, DocUpdate, Limits, Outcome, PROTOCOL_VERSION, Refusal, RefusalCode, Reply,
    Request, Synced,
};
use super::{CatalogueFilter, DocKind, DocMeta, Rules, Scope, load_chunks, sorted_heads};
use crate::role::Actor;

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    /// Its type.
    pub kind: DocKind,
    /// A save and incremental changes: loading them in order gives the document.
    pub chunks: Vec<Vec<u8>>,
    /// Its meta as of the last write.
    pub meta: DocMeta,
    /// Its heads: what loading `chunks` gives.
    pub heads: Vec<ChangeHash>,
}

/// One document in the change catalogue: its latest sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// Sequence number of its last change (unique, increasing).
    pub seq: u64,
    /// The document.
    pub id: String,
    /// Its type.
    pub kind: DocKind,
    /// Who may receive it.
    pub meta: DocMeta,
    /// Its heads.
    pub heads: Vec<ChangeHash>,
}

/// What the server knows a device holds of one document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerDoc {
    /// Heads the device is known to hold durably (it sent them, or acknowledged a
    /// reply that brought them).
    pub confirmed: Option<Vec<ChangeHash>>,
    /// What the last reply sent, not yet acknowledged.
    pub pending: Option<Pending>,
}

/// What a reply sent about a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The reply's serial number.
    pub serial: u64,
    /// The heads the device holds once it commits the reply; `None` for an eviction.
    pub heads: Option<Vec<ChangeHash>>,
}

impl PeerDoc {
    /// The heads the device holds, given the serial of the last reply it committed:
    /// a pending entry counts only if that reply is the one acknowledged.
    pub fn effective(&self, acknowledged: u64) -> Option<&[ChangeHash]> {
        match &self.pending {
            Some(p) if p.serial == acknowledged => p.heads.as_deref(),
            _ => self.confirmed.as_deref(),
        }
    }
}

/// A write to a device's record of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerWrite {
    /// The document.
    pub id: String,
    /// New confirmed heads (the device sent them), if any.
    pub confirmed: Option<Vec<ChangeHash>>,
    /// What this reply sends.
    pub pending: Option<Pending>,
}

/// New changes to store for one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocWrite {
    /// The document.
    pub id: String,
    /// Its type.
    pub kind: DocKind,
    /// Encoded changes to append (each loads with `load_incremental`).
    pub changes: Vec<Vec<u8>>,
    /// Its meta after them.
    pub meta: DocMeta,
    /// Its heads after them.
    pub heads: Vec<ChangeHash>,
    /// The whole document after them, as the writer merged it (`None`: the storage
    /// loads what it stores and applies `changes`).
    pub merged: Option<Merged>,
}

/// A document with a write's changes applied, and the stored heads it was merged
/// from: a storage whose document is still at `base` may save this instead of
/// loading the stored chunks and the changes again (the same document: Automerge
/// documents with the same changes are equal).
#[derive(Clone)]
pub struct Merged {
    /// The stored heads the changes were applied to (empty: a new document).
    pub base: Vec<ChangeHash>,
    /// The document with the changes.
    pub doc: Automerge,
}

impl Merged {
    /// `doc`, merged from the stored document at `base`.
    pub fn new(base: Vec<ChangeHash>, doc: Automerge) -> Merged {
        Merged { base, doc }
    }
}

/// Equal when merged from the same heads into the same heads: a document is its
/// changes.
impl PartialEq for Merged {
    fn eq(&self, other: &Merged) -> bool {
        sorted_heads(&self.base) == sorted_heads(&other.base)
            && sorted_heads(&self.doc.get_heads()) == sorted_heads(&other.doc.get_heads())
    }
}

impl Eq for Merged {}

impl std::fmt::Debug for Merged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merged")
            .field("base", &self.base)
            .field("heads", &self.doc.get_heads())
            .finish_non_exhaustive()
    }
}

/// Everything one round stores, in one transaction: first settle the device's
/// pending entries (those of `acknowledged` become confirmed, an acknowledged
/// eviction forgets the document, every other pending entry is dropped), then append
/// the documents' changes (each document gets a new catalogue sequence number), then
/// the peer writes, then record `issued` as the device's last reply serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCommit {
    /// The device.
    pub device: String,
    /// The device's user. What a device wrote it may hold, so a storage that reads
    /// the catalogue by key ([`crate::sync::DocMeta::catalogue_keys`]) indexes the
    /// written documents under this user too: if one leaves the device's scope, the
    /// device still reads it, and evicts it.
    pub writer: String,
    /// The serial the request acknowledged.
    pub acknowledged: u64,
    /// New changes.
    pub documents: Vec<DocWrite>,
    /// The device's records.
    pub peers: Vec<PeerWrite>,
    /// This reply's serial.
    pub issued: u64,
}

/// The server's storage, as the sync session needs it.
pub trait ServerStorage {
    /// Storage failures.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The serial of the last reply issued to `device` (0 if none).
    fn issued_serial(&mut self, device: &str) -> Result<u64, Self::Error>;
    /// The catalogue's highest sequence number.
    fn latest_seq(&mut self) -> Result<u64, Self::Error>;
    /// A document, if stored.
    fn document(&mut self, id: &str) -> Result<Option<StoredDoc>, Self::Error>;
    /// Catalogue entries with `seq > after`, in sequence order, at most `limit`. It
    /// may leave out entries that `filter` does not admit and `device` does not hold
    /// (with an index, without reading them), never others.
    fn changed_since(
        &mut self,
        device: &str,
        filter: &CatalogueFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<CatalogueEntry>, Self::Error>;
    /// Those of `ids` that are stored. A round asks this for the documents of a
    /// catalogue page it sends, so a storage with a round trip per query should
    /// answer it in one (the default asks [`ServerStorage::document`] per id).
    fn documents(&mut self, ids: &[&str]) -> Result<HashMap<String, StoredDoc>, Self::Error> {
        let mut found = HashMap::new();
        for id in ids {
            if let Some(doc) = self.document(id)? {
                found.insert((*id).to_owned(), doc);
            }
        }
        Ok(found)
    }
    /// The device's record of a document.
    fn peer(&mut self, device: &str, id: &str) -> Result<Option<PeerDoc>, Self::Error>;
    /// The device's records of those of `ids` it has one of. A round asks this for
    /// every page of the catalogue it scans, so a storage with a round trip per query
    /// should answer it in one (the default asks [`ServerStorage::peer`] per id).
    fn peers_among(
        &mut self,
        device: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, PeerDoc>, Self::Error> {
        let mut found = HashMap::new();
        for id in ids {
            if let Some(peer) = self.peer(device, id)? {
                found.insert((*id).to_owned(), peer);
            }
        }
        Ok(found)
    }
    /// Every document the device has a record of, with its catalogue entry.
    fn peers(&mut self, device: &str) -> Result<Vec<(PeerDoc, CatalogueEntry)>, Self::Error>;
    /// Loads stored document `id` (`stored` as [`ServerStorage::document`] or
    /// [`ServerStorage::documents`] read it). A storage may answer from documents it
    /// keeps loaded, by `stored.heads`: loading is most of the cost of reading one.
    fn load(
        &mut self,
        _id: &str,
        stored: &StoredDoc,
    ) -> Result<Arc<Automerge>, automerge::AutomergeError> {
        load_chunks(&stored.chunks).map(Arc::new)
    }
    /// Stores a round, atomically and durably, before it returns. It must refuse
    /// (and store nothing) unless the device's last issued serial is still
    /// `commit.issued - 1`: two rounds of one device that ran at once must not both
    /// leave pending entries under the same serial.
    fn commit(&mut self, commit: ServerCommit) -> Result<(), Self::Error>;
}

/// Why a request got no reply. The session stays usable; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The request is not a valid message (truncated, garbage, too large, another
    /// version, a bad id).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The cursor names a reply or a catalogue position that does not exist yet.
    #[error(
        "the cursor {cursor:?} is ahead of the server (last serial {issued}, last seq {latest})"
    )]
    CursorFromFuture {
        /// The cursor sent.
        cursor: Cursor,
        /// The device's last issued serial.
        issued: u64,
        /// The catalogue's last sequence number.
        latest: u64,
    },
    /// A stored document does not load.
    #[error("stored document {id} is corrupt: {reason}")]
    CorruptDocument {
        /// The document.
        id: String,
        /// Why.
        reason: String,
    },
    /// The storage failed.
    #[error("storage: {0}")]
    Storage(Box<dyn std::error::Error + Send + Sync>),
}

/// What one round did, for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// Documents received with new changes.
    pub stored_docs: usize,
    /// New changes stored (the server's own included).
    pub stored_changes: usize,
    /// Changes the server added by itself ([`Automate`]).
    pub automatic_changes: usize,
    /// Documents sent (acknowledgements included).
    pub sent_docs: usize,
    /// Documents evicted.
    pub evicted: usize,
    /// Documents refused.
    pub refused: usize,
    /// Reply size.
    pub reply_bytes: usize,
    /// The documents this round wrote, for push notices.
    pub written: Vec<Written>,
}

/// A document a round wrote: who may receive it now, and who could before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The document.
    pub id: String,
    /// Its type.
    pub kind: DocKind,
    /// Its meta now.
    pub meta: DocMeta,
    /// Its meta before the round (`None` for a new document).
    pub previous: Option<DocMeta>,
}

/// A device's sync session on the server: who the device is, what it may receive,
/// and the document rules.
#[derive(Debug)]
pub struct ServerSession<'a, S> {
    /// The signed-in device (its `device` is the actor id its changes must carry).
    pub writer: &'a Actor,
    /// What it may receive.
    pub scope: &'a S,
    /// The document rules.
    pub rules: Rules<'a>,
    /// Size limits.
    pub limits: Limits,
    /// The server's own reaction to what the device wrote.
    pub automate: &'a dyn Automate,
}

/// What the server adds by itself to a document the device has just changed (the
/// routing and automatic dispatch of a case, [`crate::case::automation`]), before the
/// round is stored: the additions are stored in the same commit and reach the writer
/// in the same reply, and everyone else through the catalogue.
pub trait Automate: std::fmt::Debug {
    /// Changes `doc` (the document with the device's changes applied) as the server,
    /// with a fresh actor; `before` are the heads of the document as stored before the
    /// round (empty for a new one). A failure must leave `doc` a document the server
    /// would store (what it wrote before failing may stay), and not fail the round:
    /// the device's work is stored either way.
    fn after_write(&self, id: &str, kind: DocKind, doc: &mut Automerge, before: &[ChangeHash]);
}

/// A server that adds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAutomation;

impl Automate for NoAutomation {
    fn after_write(&self, _id: &str, _kind: DocKind, _doc: &mut Automerge, _: &[ChangeHash]) {}
}

/// A document of the request, checked and ready to store.
struct Accepted {
    id: String,
    kind: DocKind,
    doc: Automerge,
    new_changes: Vec<Vec<u8>>,
    meta: DocMeta,
    previous: Option<DocMeta>,
    /// The stored document's heads (empty for a new one).
    stored_heads: Vec<ChangeHash>,
    device_heads: Vec<ChangeHash>,
}

const CATALOGUE_PAGE: usize = 512;
/// Documents read per query while offering a catalogue page.
const DOCUMENT_BATCH: usize = 64;

impl<S: Scope> ServerSession<'_, S> {
    /// Handles one request: refuses it whole (typed, per document) or stores it and
    /// returns the reply, encoded. The reply's acknowledgements are sent only after
    /// [`ServerStorage::commit`] returned.
    pub fn handle<T: ServerStorage>(
        &self,
        storage: &mut T,
        request: &[u8],
    ) -> Result<(Vec<u8>, RoundStats), SyncError> {
        let request = Request::decode(request, self.limits.max_request)?;
        let issued = storage
            .issued_serial(&self.writer.device)
            .map_err(storage_err)?;
        let latest = storage.latest_seq().map_err(storage_err)?;
        let cursor = request.cursor;
        if cursor.serial > issued || cursor.seq > latest {
            return Err(SyncError::CursorFromFuture {
                cursor,
                issued,
                latest,
            });
        }
        let mut stats = RoundStats::default();
        let (accepted, refusals) = self.check_incoming(storage, &request)?;
        if !refusals.is_empty() {
            stats.refused = refusals.len();
            let reply = Reply {
                version: PROTOCOL_VERSION,
                request_id: request.request_id,
                outcome: Outcome::Refused(refusals),
            };
            let bytes = reply.encode();
            stats.reply_bytes = bytes.len();
            return Ok((bytes, stats));
        }
        let serial = issued + 1;
        let mut reply = ReplyBuilder::new(self.limits.reply_budget);
        let mut documents = Vec::new();
        let mut peers: BTreeMap<String, PeerWrite> = BTreeMap::new();

        let mut accepted = accepted;
        for written in accepted.iter_mut().filter(|a| !a.new_changes.is_empty()) {
            let before = written.doc.get_heads();
            self.automate.after_write(
                &written.id,
                written.kind,
                &mut written.doc,
                &written.stored_heads,
            );
            let added = written.doc.get_changes(&before);
            if !added.is_empty() {
                stats.automatic_changes += added.len();
                written
                    .new_changes
                    .extend(added.iter().map(|c| c.raw_bytes().to_vec()));
                written.meta = DocMeta::of(written.kind, &written.doc, &self.rules.context).1;
            }
        }

        // Acknowledgements, with what the device lacks when it fits.
        for accepted in accepted {
            let lacking = accepted.doc.get_changes(&accepted.device_heads);
            let server_heads = sorted_heads(&accepted.doc.get_heads());
            let full = doc_update(&accepted.id, accepted.kind, server_heads.clone(), &lacking);
            let (update, heads) = if lacking.is_empty() || reply.fits(&full) {
                (full, server_heads.clone())
            } else {
                let ack = doc_update(
                    &accepted.id,
                    accepted.kind,
                    accepted.device_heads.clone(),
                    &[],
                );
                (ack, accepted.device_heads.clone())
            };
            reply.push(update);
            peers.insert(
                accepted.id.clone(),
                PeerWrite {
                    id: accepted.id.clone(),
                    confirmed: Some(accepted.device_heads.clone()),
                    pending: Some(Pending {
                        serial,
                        heads: Some(heads),
                    }),
                },
            );
            if !accepted.new_changes.is_empty() {
                stats.stored_docs += 1;
                stats.stored_changes += accepted.new_changes.len();
                stats.written.push(Written {
                    id: accepted.id.clone(),
                    kind: accepted.kind,
                    meta: accepted.meta.clone(),
                    previous: accepted.previous.clone(),
                });
                documents.push(DocWrite {
                    id: accepted.id,
                    kind: accepted.kind,
                    changes: accepted.new_changes,
                    meta: accepted.meta,
                    heads: server_heads,
                    merged: Some(Merged::new(accepted.stored_heads, accepted.doc)),
                });
            }
        }

        // Documents the device asked for whole.
        for id in &request.resync {
            if peers.contains_key(id) {
                continue;
            }
            let Some(stored) = storage.document(id).map_err(storage_err)? else {
                // Not here (never sent, or discarded on the device before it was):
                // the device stops asking.
                if reply.fits_evict(id) {
                    reply.evict(id.clone());
                }
                continue;
            };
            if !self.scope.may_receive(stored.kind, &stored.meta) {
                if reply.fits_evict(id) {
                    reply.evict(id.clone());
                    peers.insert(id.clone(), evicted(id, serial));
                }
                continue;
            }
            let update = whole_doc(id, &stored);
            if !reply.fits(&update) && !reply.is_empty() {
                reply.more = true;
                continue;
            }
            reply.push(update);
            peers.insert(id.clone(), sent(id, serial, &stored.heads));
        }

        // A new scope: forget what left it, then rescan the catalogue from the start.
        let fingerprint = self.scope.fingerprint();
        let mut scan_from = cursor.seq;
        let mut cursor_scope = fingerprint;
        if cursor.scope != fingerprint {
            scan_from = 0;
            // Every record, as in `offer`: what the device may hold.
            for (_, entry) in storage.peers(&self.writer.device).map_err(storage_err)? {
                if peers.contains_key(&entry.id) || self.scope.may_receive(entry.kind, &entry.meta)
                {
                    continue;
                }
                if !reply.fits_evict(&entry.id) {
                    // Not all evictions fit: keep the old fingerprint so the next
                    // round finishes them before rescanning.
                    cursor_scope = cursor.scope;
                    reply.more = true;
                    break;
                }
                reply.evict(entry.id.clone());
                peers.insert(entry.id.clone(), evicted(&entry.id, serial));
            }
        }

        // What changed since the cursor.
        let mut new_seq = scan_from;
        if cursor_scope == fingerprint {
            let filter = self.scope.catalogue_filter();
            'scan: loop {
                let page = storage
                    .changed_since(&self.writer.device, &filter, new_seq, CATALOGUE_PAGE)
                    .map_err(storage_err)?;
                let last_page = page.len() < CATALOGUE_PAGE;
                let ids: Vec<&str> = page.iter().map(|e| e.id.as_str()).collect();
                let mut held = storage
                    .peers_among(&self.writer.device, &ids)
                    .map_err(storage_err)?;
                // The documents to send are read a batch at a time: one query each,
                // and little read in vain when the reply fills up.
                for batch in page.chunks(DOCUMENT_BATCH) {
                    let offers: Vec<(&CatalogueEntry, Option<PeerDoc>)> =
                        batch.iter().map(|e| (e, held.remove(&e.id))).collect();
                    let wanted: Vec<&str> = offers
                        .iter()
                        .filter(|(entry, peer)| {
                            self.must_send(entry, peer.as_ref(), cursor.serial, &peers)
                        })
                        .map(|(entry, _)| entry.id.as_str())
                        .collect();
                    let mut fetched = if wanted.is_empty() {
                        HashMap::new()
                    } else {
                        storage.documents(&wanted).map_err(storage_err)?
                    };
                    for (entry, peer) in offers {
                        let stored = fetched.remove(&entry.id);
                        if !self.offer(
                            storage,
                            (entry, peer, stored),
                            cursor.serial,
                            serial,
                            &mut reply,
                            &mut peers,
                        )? {
                            reply.more = true;
                            break 'scan;
                        }
                        new_seq = entry.seq;
                    }
                }
                if last_page {
                    break;
                }
            }
        } else {
            new_seq = 0;
        }

        stats.sent_docs = reply.docs.len();
        stats.evicted = reply.evict.len();
        let synced = Synced {
            docs: reply.docs,
            evict: reply.evict,
            cursor: Cursor {
                seq: new_seq,
                serial,
                scope: cursor_scope,
            },
            more: reply.more,
        };
        storage
            .commit(ServerCommit {
                device: self.writer.device.clone(),
                writer: self.writer.user.clone(),
                acknowledged: cursor.serial,
                documents,
                peers: peers.into_values().collect(),
                issued: serial,
            })
            .map_err(storage_err)?;
        let bytes = Reply {
            version: PROTOCOL_VERSION,
            request_id: request.request_id,
            outcome: Outcome::Synced(synced),
        }
        .encode();
        stats.reply_bytes = bytes.len();
        Ok((bytes, stats))
    }

    /// Whether [`Self::offer`] sends `entry`'s document: not answered yet in this
    /// round, in scope, and the device lacks some of it.
    fn must_send(
        &self,
        entry: &CatalogueEntry,
        peer: Option<&PeerDoc>,
        acknowledged: u64,
        peers: &BTreeMap<String, PeerWrite>,
    ) -> bool {
        !peers.contains_key(&entry.id)
            && self.scope.may_receive(entry.kind, &entry.meta)
            && peer
                .and_then(|p| p.effective(acknowledged))
                .map(sorted_heads)
                != Some(sorted_heads(&entry.heads))
    }

    /// Adds a catalogue entry to the reply if the device lacks it (or evicts it);
    /// `false` when the reply is full and the entry must wait for the next round.
    /// `stored` is its document, read when [`Self::must_send`] said so (`None`: not
    /// stored, or not needed).
    fn offer<T: ServerStorage>(
        &self,
        storage: &mut T,
        (entry, peer, stored): (&CatalogueEntry, Option<PeerDoc>, Option<StoredDoc>),
        acknowledged: u64,
        serial: u64,
        reply: &mut ReplyBuilder,
        peers: &mut BTreeMap<String, PeerWrite>,
    ) -> Result<bool, SyncError> {
        if peers.contains_key(&entry.id) {
            // Already answered in this round (acknowledged, resynced or evicted).
            return Ok(true);
        }
        let held: Option<Vec<ChangeHash>> = peer
            .as_ref()
            .and_then(|p| p.effective(acknowledged))
            .map(sorted_heads);
        if !self.scope.may_receive(entry.kind, &entry.meta) {
            // Evict whatever the device may hold: a record at all, not only confirmed
            // heads. Heads may be under-counted (a late duplicate request drops what
            // an answered reply sent), and that is safe for sending (a resend) but
            // would leave an out-of-scope document on the device for good.
            if peer.is_some() {
                if !reply.fits_evict(&entry.id) {
                    return Ok(false);
                }
                reply.evict(entry.id.clone());
                peers.insert(entry.id.clone(), evicted(&entry.id, serial));
            }
            return Ok(true);
        }
        if held.as_deref() == Some(sorted_heads(&entry.heads).as_slice()) {
            return Ok(true);
        }
        let Some(stored) = stored else {
            return Ok(true);
        };
        let update = match &held {
            // What the storage holds goes as it is: no load, no re-encoding.
            None => whole_doc(&entry.id, &stored),
            Some(heads) => {
                let doc = load(storage, &entry.id, &stored)?;
                let known: Vec<ChangeHash> = heads
                    .iter()
                    .copied()
                    .filter(|h| doc.get_change_meta_by_hash(h).is_some())
                    .collect();
                let lacking = doc.get_changes(&known);
                doc_update(
                    &entry.id,
                    stored.kind,
                    sorted_heads(&stored.heads),
                    &lacking,
                )
            }
        };
        if !reply.fits(&update) && !reply.is_empty() {
            return Ok(false);
        }
        reply.push(update);
        peers.insert(entry.id.clone(), sent(&entry.id, serial, &stored.heads));
        Ok(true)
    }

    /// Checks every document of the request; returns the accepted ones, or the
    /// refusals if there is any.
    fn check_incoming<T: ServerStorage>(
        &self,
        storage: &mut T,
        request: &Request,
    ) -> Result<(Vec<Accepted>, Vec<Refusal>), SyncError> {
        let mut accepted = Vec::new();
        let mut refusals = Vec::new();
        let mut seen = BTreeSet::new();
        for update in &request.docs {
            if !seen.insert(update.id.as_str()) {
                refusals.push(refusal(&update.id, RefusalCode::Duplicate, Vec::new()));
                continue;
            }
            match self.check_one(storage, update)? {
                Ok(doc) => accepted.push(doc),
                Err(refused) => refusals.push(refused),
            }
        }
        Ok((accepted, refusals))
    }

    fn check_one<T: ServerStorage>(
        &self,
        storage: &mut T,
        update: &DocUpdate,
    ) -> Result<Result<Accepted, Refusal>, SyncError> {
        let id = update.id.as_str();
        let refuse = |code, details: Vec<String>| Ok(Err(refusal(id, code, details)));
        let Ok(message) = update.automerge_message() else {
            return refuse(RefusalCode::Undecodable, vec!["sync message".into()]);
        };
        let mut changes = Vec::with_capacity(message.changes.len());
        for bytes in message.changes.iter() {
            match Change::from_bytes(bytes.to_vec()) {
                Ok(change) => changes.push(change),
                Err(e) => return refuse(RefusalCode::Undecodable, vec![e.to_string()]),
            }
        }
        let stored = storage.document(id).map_err(storage_err)?;
        let base = match &stored {
            Some(stored) if stored.kind != update.kind => {
                return refuse(
                    RefusalCode::KindMismatch,
                    vec![format!("stored as {}", stored.kind.as_str())],
                );
            }
            Some(stored) => {
                // A document may be written only by a device that may receive it
                // (its own reports stay in scope: the owner always may).
                if !self.scope.may_receive(stored.kind, &stored.meta) {
                    return refuse(RefusalCode::OutOfScope, Vec::new());
                }
                load(storage, id, stored)?
            }
            None => Arc::new(Automerge::new()),
        };
        let new: Vec<Change> = changes
            .into_iter()
            .filter(|c| base.get_change_meta_by_hash(&c.hash()).is_none())
            .collect();
        let mut meta = stored.as_ref().map(|s| s.meta.clone()).unwrap_or_default();
        let doc = if new.is_empty() {
            if stored.is_none() {
                return refuse(
                    RefusalCode::Undecodable,
                    vec!["a new document with no changes".into()],
                );
            }
            Arc::unwrap_or_clone(base)
        } else {
            // The rules check the changes on a copy of `base` with them applied: that
            // copy is the document from here on.
            let doc = match self.rules.check(update.kind, &base, &new, self.writer) {
                Ok(doc) => doc,
                Err(refused) => {
                    use crate::document::ViolationKind;
                    let any = |f: fn(&ViolationKind) -> bool| {
                        refused.violations.iter().any(|v| f(&v.kind))
                    };
                    let code = if any(|k| matches!(k, ViolationKind::ForeignActor { .. })) {
                        RefusalCode::ForeignActor
                    } else if any(|k| *k == ViolationKind::MissingDependencies) {
                        RefusalCode::MissingDependencies
                    } else {
                        RefusalCode::WriteRules
                    };
                    let details = refused.violations.iter().map(ToString::to_string).collect();
                    return refuse(code, details);
                }
            };
            let (written_id, new_meta) = DocMeta::of(update.kind, &doc, &self.rules.context);
            if written_id.as_deref() != Some(id) {
                return refuse(
                    RefusalCode::IdMismatch,
                    vec![format!("the document says {written_id:?}")],
                );
            }
            if stored.is_none() && !self.scope.may_receive(update.kind, &new_meta) {
                return refuse(RefusalCode::OutOfScope, Vec::new());
            }
            meta = new_meta;
            doc
        };
        // The device holds what it had plus what it sent: its claimed heads must be
        // known here, or the server would later compute from a base it lacks.
        let device_heads = sorted_heads(&message.heads);
        if device_heads.is_empty()
            || device_heads
                .iter()
                .any(|h| doc.get_change_meta_by_hash(h).is_none())
        {
            return refuse(RefusalCode::UnknownHeads, Vec::new());
        }
        Ok(Ok(Accepted {
            id: id.to_owned(),
            kind: update.kind,
            doc,
            new_changes: new.iter().map(|c| c.raw_bytes().to_vec()).collect(),
            meta,
            stored_heads: stored.as_ref().map(|s| s.heads.clone()).unwrap_or_default(),
            previous: stored.map(|s| s.meta),
            device_heads,
        }))
    }
}

fn storage_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> SyncError {
    SyncError::Storage(Box::new(e))
}

fn refusal(id: &str, code: RefusalCode, details: Vec<String>) -> Refusal {
    Refusal {
        id: id.to_owned(),
        code,
        details,
    }
}

fn load<T: ServerStorage>(
    storage: &mut T,
    id: &str,
    stored: &StoredDoc,
) -> Result<Arc<Automerge>, SyncError> {
    storage
        .load(id, stored)
        .map_err(|e| SyncError::CorruptDocument {
            id: id.to_owned(),
            reason: e.to_string(),
        })
}

fn evicted(id: &str, serial: u64) -> PeerWrite {
    PeerWrite {
        id: id.to_owned(),
        confirmed: None,
        pending: Some(Pending {
            serial,
            heads: None,
        }),
    }
}

fn sent(id: &str, serial: u64, heads: &[ChangeHash]) -> PeerWrite {
    PeerWrite {
        id: id.to_owned(),
        confirmed: None,
        pending: Some(Pending {
            serial,
            heads: Some(sorted_heads(heads)),
        }),
    }
}

/// A document update carrying `changes` (each encoded on its own, compressed when
/// large) and the heads the receiver will share with the sender.
pub fn doc_update(
    id: &str,
    kind: DocKind,
    heads: Vec<ChangeHash>,
    changes: &[Change],
) -> DocUpdate {
    let chunks: Vec<Vec<u8>> = changes
        .iter()
        .map(|c| c.clone().bytes().into_owned())
        .collect();
    DocUpdate {
        id: id.to_owned(),
        kind,
        message: AutomergeMessage {
            heads,
            need: Vec::new(),
            have: Vec::new(),
            changes: chunks.into(),
            flags: None,
            version: MessageVersion::V1,
        }
        .encode(),
    }
}

/// A document update carrying the whole stored document: what a device that has
/// nothing of it receives. The stored chunks go as they are (a compacted save is
/// columnar and deflated, far smaller than the changes one by one), each loaded
/// with `load_incremental` on the device.
pub fn whole_doc(id: &str, stored: &StoredDoc) -> DocUpdate {
    DocUpdate {
        id: id.to_owned(),
        kind: stored.kind,
        message: AutomergeMessage {
            heads: sorted_heads(&stored.heads),
            need: Vec::new(),
            have: Vec::new(),
            changes: stored.chunks.clone().into(),
            flags: None,
            version: MessageVersion::V1,
        }
        .encode(),
    }
}

/// Keeps a reply within its budget.
struct ReplyBuilder {
    budget: usize,
    used: usize,
    docs: Vec<DocUpdate>,
    evict: Vec<String>,
    more: bool,
}

impl ReplyBuilder {
    fn new(budget: usize) -> ReplyBuilder {
        ReplyBuilder {
            budget,
            used: 64,
            docs: Vec::new(),
            evict: Vec::new(),
            more: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.docs.is_empty() && self.evict.is_empty()
    }

    fn fits(&self, update: &DocUpdate) -> bool {
        self.used + update.encoded_len() <= self.budget
    }

    fn fits_evict(&self, id: &str) -> bool {
        self.used + id.len() + 4 <= self.budget
    }

    fn push(&mut self, update: DocUpdate) {
        self.used += update.encoded_len();
        self.docs.push(update);
    }

    fn evict(&mut self, id: String) {
        self.used += id.len() + 4;
        self.evict.push(id);
    }
}
