//! The device side of a sync round: [`DeviceSession::prepare`] builds a request from
//! what changed locally; [`DeviceSession::receive`] commits the reply, in one
//! transaction of the [`DeviceStorage`].
//!
//! A local change counts as delivered only when a reply acknowledges it: until then
//! the document stays *unsent* and its changes go again (the server ignores what it
//! already has). The app may edit documents between `prepare` and `receive`; the
//! reply is merged into the document as stored then.

use std::collections::BTreeSet;

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use super::message::{
    Cursor, DecodeError, DocUpdate, Limits, Outcome, PROTOCOL_VERSION, Refusal, RefusalCode, Reply,
    Request,
};
use super::server::doc_update;
use super::{DocKind, heads_after, load_chunks, sorted_heads};

/// A document as the device stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDoc {
    /// Its type.
    pub kind: DocKind,
    /// A save and incremental changes.
    pub chunks: Vec<Vec<u8>>,
    /// The heads the server acknowledged or sent: everything up to them is on the
    /// server; local changes after them are not yet.
    pub server_heads: Vec<ChangeHash>,
    /// Local changes not yet acknowledged.
    pub unsent: bool,
    /// Why the server refused this document's changes; a rejected document is not
    /// sent again until the app discards its local changes.
    pub rejected: Option<Rejection>,
}

/// A refusal kept beside the document, for the app to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The kind of refusal.
    pub code: RefusalCode,
    /// The rules' words.
    pub details: Vec<String>,
}

/// A document written by a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDocWrite {
    /// The document.
    pub id: String,
    /// The document as stored after this commit.
    pub doc: DeviceDoc,
}

/// One transaction on the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceCommit {
    /// The new cursor, if the reply moves it.
    pub cursor: Option<Cursor>,
    /// Documents to write whole.
    pub docs: Vec<DeviceDocWrite>,
    /// Documents to delete.
    pub delete: Vec<String>,
    /// Documents to ask for whole in the next request.
    pub want_resync: Vec<String>,
    /// Documents no longer to ask for whole.
    pub resynced: Vec<String>,
}

/// The device's storage, as the sync session needs it.
pub trait DeviceStorage {
    /// Storage failures.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The cursor of the last committed reply.
    fn cursor(&mut self) -> Result<Cursor, Self::Error>;
    /// Documents with unsent local changes that are not rejected, oldest first.
    fn unsent(&mut self) -> Result<Vec<String>, Self::Error>;
    /// Documents to ask for whole.
    fn resync_wanted(&mut self) -> Result<Vec<String>, Self::Error>;
    /// A document.
    fn document(&mut self, id: &str) -> Result<Option<DeviceDoc>, Self::Error>;
    /// Stores a commit, atomically and durably, before it returns.
    fn commit(&mut self, commit: DeviceCommit) -> Result<(), Self::Error>;
}

/// Why a round failed on the device. Nothing was committed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceSyncError {
    /// The reply is not a valid message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The reply answers another request (late or duplicated): dropped.
    #[error("the reply answers request {got}, not {expected:?}")]
    NotOurs {
        /// The request it answers.
        got: u64,
        /// The request waiting for a reply.
        expected: Option<u64>,
    },
    /// A document of the reply does not decode or apply.
    #[error("document {id} in the reply is bad: {reason}")]
    BadDocument {
        /// The document.
        id: String,
        /// Why.
        reason: String,
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

fn storage_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> DeviceSyncError {
    DeviceSyncError::Storage(Box::new(e))
}

/// What a round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Documents whose local changes the server acknowledged.
    pub acknowledged: usize,
    /// Documents that received changes.
    pub received: usize,
    /// Documents evicted (deleted; or kept as rejected when they had unsent changes).
    pub evicted: usize,
    /// Refusals, if the server refused the request.
    pub refused: Vec<Refusal>,
    /// Documents that could not be applied and will be asked for whole.
    pub resync: usize,
    /// Another round has work to do.
    pub more: bool,
}

/// The request in flight.
#[derive(Debug, Clone)]
struct InFlight {
    request_id: u64,
    sent: Vec<String>,
    more_local: bool,
}

/// A device's sync session. It holds only the request in flight: everything else is
/// in the storage, so a new session after a crash continues where the last commit
/// left off.
#[derive(Debug)]
pub struct DeviceSession {
    limits: Limits,
    next_id: u64,
    in_flight: Option<InFlight>,
}

impl DeviceSession {
    /// A session; `seed` is random from the app (request ids must not repeat across
    /// restarts, so a late reply to a request before a crash is not taken for the
    /// answer to a new one).
    pub fn new(limits: Limits, seed: u64) -> DeviceSession {
        DeviceSession {
            limits,
            next_id: seed,
            in_flight: None,
        }
    }

    /// Builds the next request: the cursor, documents to resync, and the unsent
    /// documents' changes, up to the request budget (one document's changes are
    /// split at a causal boundary if they alone exceed it).
    pub fn prepare<T: DeviceStorage>(
        &mut self,
        storage: &mut T,
    ) -> Result<Vec<u8>, DeviceSyncError> {
        let cursor = storage.cursor().map_err(storage_err)?;
        let resync = storage.resync_wanted().map_err(storage_err)?;
        let mut used = 64 + resync.iter().map(|id| id.len() + 4).sum::<usize>();
        let mut docs = Vec::new();
        let mut sent = Vec::new();
        let mut more_local = false;
        for id in storage.unsent().map_err(storage_err)? {
            let Some(stored) = storage.document(&id).map_err(storage_err)? else {
                continue;
            };
            let doc = load(&id, &stored.chunks)?;
            let base = known(&doc, &stored.server_heads);
            let changes = doc.get_changes(&base);
            if changes.is_empty() {
                continue;
            }
            let update = outgoing(&id, stored.kind, &base, &changes);
            if used + update.encoded_len() <= self.limits.request_budget {
                used += update.encoded_len();
                docs.push(update);
                sent.push(id);
                continue;
            }
            more_local = true;
            if docs.is_empty() {
                // Alone it is too large: send the longest causal prefix that fits
                // (at least one change, so every round makes progress).
                let mut take = changes.len();
                let mut update = outgoing(&id, stored.kind, &base, &changes[..take]);
                while take > 1 && used + update.encoded_len() > self.limits.request_budget {
                    take = take.div_ceil(2).min(take - 1);
                    update = outgoing(&id, stored.kind, &base, &changes[..take]);
                }
                docs.push(update);
                sent.push(id);
            }
            break;
        }
        self.next_id = self.next_id.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let request_id = self.next_id;
        self.in_flight = Some(InFlight {
            request_id,
            sent,
            more_local,
        });
        Ok(Request {
            version: PROTOCOL_VERSION,
            request_id,
            cursor,
            docs,
            resync,
        }
        .encode())
    }

    /// Commits a reply to the request in flight. A reply that does not decode, or
    /// answers another request, changes nothing.
    pub fn receive<T: DeviceStorage>(
        &mut self,
        storage: &mut T,
        reply: &[u8],
    ) -> Result<RoundReport, DeviceSyncError> {
        let reply = Reply::decode(reply, self.limits.max_reply)?;
        let expected = self.in_flight.as_ref().map(|f| f.request_id);
        if expected != Some(reply.request_id) {
            return Err(DeviceSyncError::NotOurs {
                got: reply.request_id,
                expected,
            });
        }
        let in_flight = self.in_flight.take().unwrap_or_else(|| InFlight {
            request_id: reply.request_id,
            sent: Vec::new(),
            more_local: false,
        });
        let report = match reply.outcome {
            Outcome::Synced(synced) => {
                let mut report = RoundReport {
                    more: synced.more || in_flight.more_local,
                    ..RoundReport::default()
                };
                let mut commit = DeviceCommit {
                    cursor: Some(synced.cursor),
                    ..DeviceCommit::default()
                };
                let sent: BTreeSet<&str> = in_flight.sent.iter().map(String::as_str).collect();
                for update in &synced.docs {
                    let outcome = apply(storage, update)?;
                    match outcome {
                        Applied::Written(doc) => {
                            if sent.contains(update.id.as_str()) {
                                report.acknowledged += 1;
                            }
                            report.received += 1;
                            report.more |= doc.unsent && doc.rejected.is_none();
                            commit.resynced.push(update.id.clone());
                            commit.docs.push(DeviceDocWrite {
                                id: update.id.clone(),
                                doc,
                            });
                        }
                        Applied::Incomplete => {
                            report.resync += 1;
                            report.more = true;
                            commit.want_resync.push(update.id.clone());
                        }
                    }
                }
                for id in &synced.evict {
                    report.evicted += 1;
                    match storage.document(id).map_err(storage_err)? {
                        Some(mut stored) => {
                            let doc = load(id, &stored.chunks)?;
                            if doc
                                .get_changes(&known(&doc, &stored.server_heads))
                                .is_empty()
                            {
                                commit.delete.push(id.clone());
                            } else {
                                // Unsent work is never deleted: kept, refused, for the
                                // app to show.
                                stored.rejected = Some(Rejection {
                                    code: RefusalCode::OutOfScope,
                                    details: vec!["left your scope with unsent changes".into()],
                                });
                                commit.docs.push(DeviceDocWrite {
                                    id: id.clone(),
                                    doc: stored,
                                });
                            }
                        }
                        None => commit.delete.push(id.clone()),
                    }
                    commit.resynced.push(id.clone());
                }
                storage.commit(commit).map_err(storage_err)?;
                report
            }
            Outcome::Refused(refusals) => {
                let mut commit = DeviceCommit::default();
                for refusal in &refusals {
                    let Some(mut stored) = storage.document(&refusal.id).map_err(storage_err)?
                    else {
                        continue;
                    };
                    if refusal.code == RefusalCode::MissingDependencies
                        && !stored.server_heads.is_empty()
                    {
                        // The server lacks a base this device thought it had: send
                        // the whole history next time (it ignores what it has).
                        stored.server_heads = Vec::new();
                    } else {
                        stored.rejected = Some(Rejection {
                            code: refusal.code,
                            details: refusal.details.clone(),
                        });
                    }
                    commit.docs.push(DeviceDocWrite {
                        id: refusal.id.clone(),
                        doc: stored,
                    });
                }
                storage.commit(commit).map_err(storage_err)?;
                RoundReport {
                    more: true,
                    refused: refusals,
                    ..RoundReport::default()
                }
            }
        };
        Ok(report)
    }

    /// Forgets the request in flight (its reply will be refused as not ours).
    pub fn abandon(&mut self) {
        self.in_flight = None;
    }

    /// Writes a document changed locally (the app's edit), marking it unsent.
    pub fn record_local<T: DeviceStorage>(
        storage: &mut T,
        id: &str,
        kind: DocKind,
        doc: &Automerge,
    ) -> Result<(), DeviceSyncError> {
        let previous = storage.document(id).map_err(storage_err)?;
        let (server_heads, rejected) = previous
            .map(|p| (p.server_heads, p.rejected))
            .unwrap_or_default();
        storage
            .commit(DeviceCommit {
                docs: vec![DeviceDocWrite {
                    id: id.to_owned(),
                    doc: DeviceDoc {
                        kind,
                        chunks: vec![doc.save()],
                        server_heads,
                        unsent: true,
                        rejected,
                    },
                }],
                ..DeviceCommit::default()
            })
            .map_err(storage_err)
    }

    /// Drops a rejected document's local changes: deletes it and asks the server for
    /// it whole (if the server has it and the device may hold it).
    pub fn discard<T: DeviceStorage>(storage: &mut T, id: &str) -> Result<(), DeviceSyncError> {
        storage
            .commit(DeviceCommit {
                delete: vec![id.to_owned()],
                want_resync: vec![id.to_owned()],
                ..DeviceCommit::default()
            })
            .map_err(storage_err)
    }
}

/// The heads among `heads` that `doc` has.
fn known(doc: &Automerge, heads: &[ChangeHash]) -> Vec<ChangeHash> {
    heads
        .iter()
        .copied()
        .filter(|h| doc.get_change_meta_by_hash(h).is_some())
        .collect()
}

fn outgoing(id: &str, kind: DocKind, base: &[ChangeHash], changes: &[Change]) -> DocUpdate {
    doc_update(id, kind, heads_after(base, changes), changes)
}

fn load(id: &str, chunks: &[Vec<u8>]) -> Result<Automerge, DeviceSyncError> {
    load_chunks(chunks).map_err(|e| DeviceSyncError::CorruptDocument {
        id: id.to_owned(),
        reason: e.to_string(),
    })
}

enum Applied {
    Written(DeviceDoc),
    /// The changes need a base this device lacks.
    Incomplete,
}

/// Merges one document of a reply into the stored one.
fn apply<T: DeviceStorage>(
    storage: &mut T,
    update: &DocUpdate,
) -> Result<Applied, DeviceSyncError> {
    let bad = |reason: String| DeviceSyncError::BadDocument {
        id: update.id.clone(),
        reason,
    };
    let message = update.automerge_message().map_err(bad)?;
    let stored = storage.document(&update.id).map_err(storage_err)?;
    if let Some(stored) = &stored
        && stored.kind != update.kind
    {
        return Err(bad(format!("stored as {}", stored.kind.as_str())));
    }
    let mut doc = match &stored {
        Some(stored) => load(&update.id, &stored.chunks)?,
        None => Automerge::new(),
    };
    for chunk in message.changes.iter() {
        // Automerge asserts on some malformed input; a bad reply must not crash the
        // app.
        let loaded =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.load_incremental(chunk)));
        match loaded {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(bad(e.to_string())),
            Err(_) => return Err(bad("automerge refused the changes".into())),
        }
    }
    let heads = sorted_heads(&message.heads);
    if !doc.get_missing_deps(&[]).is_empty()
        || heads
            .iter()
            .any(|h| doc.get_change_meta_by_hash(h).is_none())
    {
        return Ok(Applied::Incomplete);
    }
    // The document holds everything up to `heads`; anything beyond is local.
    let unsent = sorted_heads(&doc.get_heads()) != heads;
    let chunks = match &stored {
        Some(_) => vec![doc.save()],
        // New here: keep the bytes as received (they load, as just shown), instead of
        // re-encoding what the server already compacted.
        None => message.changes.iter().map(<[u8]>::to_vec).collect(),
    };
    let rejected = stored.and_then(|s| s.rejected);
    Ok(Applied::Written(DeviceDoc {
        kind: update.kind,
        chunks,
        server_heads: heads,
        unsent,
        rejected,
    }))
}
