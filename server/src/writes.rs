//! The server's own write path, shared by the HTTP API and the background jobs and
//! knowing nothing of HTTP: storing an edit the server made to a document like a
//! device's, announcing what was written to the online devices (this node's sockets
//! and the other nodes'), loading stored documents, the double reports (双报告) after
//! a round, and the time.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::cases::CaseRules;
use crate::push::PushHub;
use crate::store::{Store, StoreError};

/// Why a write-path step failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored document does not load (logged where found).
    #[error("the stored document {id} does not load")]
    Corrupt {
        /// The document.
        id: String,
    },
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Tells the online devices what `writer` wrote: this node's sockets at once, the
/// other nodes' through the store's fan-out (PostgreSQL only).
pub async fn announce(
    store: &dyn Store,
    push: &PushHub,
    writer: &str,
    written: &[wangge_sync_core::sync::server::Written],
) {
    if written.is_empty() {
        return;
    }
    push.written(writer, written);
    if store.backend() == crate::store::Backend::Postgres {
        for message in push.to_other_nodes(writer, written) {
            if let Err(error) = store.publish(&message).await {
                // The other nodes' phones get the data on their next sync.
                tracing::warn!(%error, "fan-out to the other nodes failed");
            }
        }
    }
}

/// The stored document `id` loaded, `None` when there is none; a stored document that
/// does not load is [`WriteError::Corrupt`] (logged), never a panic.
pub async fn load_stored(
    store: &dyn Store,
    id: &str,
) -> Result<Option<automerge::Automerge>, WriteError> {
    let Some(stored) = store.sync_document(id).await? else {
        return Ok(None);
    };
    wangge_sync_core::sync::load_chunks(&stored.chunks)
        .map(Some)
        .map_err(|error| {
            tracing::error!(document = id, %error, "stored document does not load");
            WriteError::Corrupt { id: id.to_owned() }
        })
}

/// An edit the server made to a loaded document (for the API or a background job),
/// to store like a device's.
#[derive(Debug)]
pub struct ServerEdit {
    pub id: String,
    pub kind: wangge_sync_core::sync::DocKind,
    /// The heads the document was loaded at.
    pub before: Vec<automerge::ChangeHash>,
    /// The document with the edit.
    pub doc: automerge::Automerge,
    /// Its meta after the edit.
    pub meta: wangge_sync_core::sync::DocMeta,
    /// Its meta as loaded.
    pub previous: wangge_sync_core::sync::DocMeta,
}

/// Stores an API edit like a device's: only its new changes, merged with whatever
/// came meanwhile (no heads condition), the derived rows in the same transaction,
/// then announced to the other devices as written by `writer_device`.
pub async fn store_edit(
    store: &dyn Store,
    push: &PushHub,
    rules: &CaseRules,
    writer_device: &str,
    edit: ServerEdit,
    now_ms: i64,
) -> Result<(), StoreError> {
    use wangge_sync_core::sync::server::{DocWrite, Merged, Written};
    let ServerEdit {
        id,
        kind,
        before,
        doc,
        meta,
        previous,
    } = edit;
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&before)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let write = DocWrite {
        id: id.clone(),
        kind,
        changes,
        meta: meta.clone(),
        heads: doc.get_heads(),
        merged: Some(Merged::new(before, doc)),
    };
    let derive = crate::cases::Materializer {
        rules,
        now: now_ms,
        clock_skew_ms: None,
    };
    store.document_write(&write, None, &derive, now_ms).await?;
    let written = [Written {
        id,
        kind,
        meta,
        previous: Some(previous),
    }];
    announce(store, push, writer_device, &written).await;
    Ok(())
}

/// After a round at `now_ms`: the double reports (双报告) of the cases it stored
/// first, pushed to the users newly told, on this node and the others.
pub async fn tell_double_reports(
    store: &dyn Store,
    push: &PushHub,
    written: &[wangge_sync_core::sync::server::Written],
    now_ms: i64,
) {
    for told in crate::double_report::after_round(store, written, now_ms).await {
        push.tell(
            &told.users,
            &crate::push::Notice::DoubleReport {
                case: told.case.clone(),
            },
        );
        if store.backend() == crate::store::Backend::Postgres {
            let message = push.tell_other_nodes(&told.users, &told.case);
            if let Err(error) = store.publish(&message).await {
                tracing::warn!(%error, "fan-out of a double report failed");
            }
        }
    }
}
