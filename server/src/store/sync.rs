//! The sync protocol's storage: documents, the change catalogue and what each device
//! holds (sync-core's `ServerStorage`, in SQL). Like the rest of the store, one SQL
//! text serves both databases (`impl_sync_store!`).

use automerge::ChangeHash;
use wangge_sync_core::grid::GridCode;
use wangge_sync_core::sync::server::{
    CatalogueEntry, DocWrite, PeerDoc, Pending, ServerCommit, StoredDoc,
};
use wangge_sync_core::sync::{CatalogueFilter, DocKind, DocMeta};

use super::cases::Derive;
use super::{StoreError, StoreFuture};

/// Whether a write stores its changes as they came rather than one save of the whole
/// document: only a new document's single change (the common report, which needs no
/// save). Otherwise each write leaves a single save, so a new phone's bootstrap is the
/// compressed saves (1.06× their size, against 1.89× for the changes as they arrived;
/// see docs/BENCHMARKS.md), for one save (~250 µs) per document written. The save is
/// made before the transaction; the transaction writes it only if the document is
/// still as it was read (see [`Prepared`]).
fn appends(stored_chunks: usize, new_changes: usize) -> bool {
    stored_chunks == 0 && new_changes == 1
}

/// The sync protocol's storage operations (see sync-core's `ServerStorage` for their
/// meaning). The server runs them through `crate::sync`, one device at a time.
pub trait SyncStore: Send + Sync {
    /// The serial of the last reply issued to a device (0 if none).
    fn sync_issued_serial<'a>(&'a self, device: &'a str) -> StoreFuture<'a, u64>;
    /// The catalogue's highest position.
    fn sync_latest_seq(&self) -> StoreFuture<'_, u64>;
    /// A stored document.
    fn sync_document<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<StoredDoc>> {
        Box::pin(async move {
            let ids = [id];
            Ok(self.sync_documents(&ids).await?.remove(id))
        })
    }
    /// Those of `ids` that are stored, in one query.
    fn sync_documents<'a>(
        &'a self,
        ids: &'a [&'a str],
    ) -> StoreFuture<'a, std::collections::HashMap<String, StoredDoc>>;
    /// Catalogue entries after `after`, in order, at most `limit`: those `filter`
    /// admits and those `device` holds, the rest skipped in SQL (read by key from
    /// `catalogue_keys`, which also finds what the device holds: see migration 0007).
    fn sync_changed_since<'a>(
        &'a self,
        device: &'a str,
        filter: &'a CatalogueFilter,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'a, Vec<CatalogueEntry>>;
    /// What a device holds of a document.
    fn sync_peer<'a>(&'a self, device: &'a str, id: &'a str) -> StoreFuture<'a, Option<PeerDoc>>;
    /// The device's records of those of `ids` it has one of, in one query.
    fn sync_peers_among<'a>(
        &'a self,
        device: &'a str,
        ids: &'a [&'a str],
    ) -> StoreFuture<'a, std::collections::HashMap<String, PeerDoc>>;
    /// Every document a device has a record of.
    fn sync_peers<'a>(&'a self, device: &'a str)
    -> StoreFuture<'a, Vec<(PeerDoc, CatalogueEntry)>>;
    /// Stores a round in one transaction; `derive` gives each written document's meta
    /// and materialized fold.
    fn sync_commit<'a>(
        &'a self,
        commit: &'a ServerCommit,
        derive: &'a dyn Derive,
        now: i64,
    ) -> StoreFuture<'a, ()>;
    /// Stores one document's new changes (the server's or an API caller's, not a sync
    /// round's) in one transaction. With `expect`, only if the stored document's
    /// heads are still these (`StoreError::Conflict` otherwise): for the server's
    /// decisions that two nodes must not both take.
    fn document_write<'a>(
        &'a self,
        write: &'a DocWrite,
        expect: Option<&'a [ChangeHash]>,
        derive: &'a dyn Derive,
        now: i64,
    ) -> StoreFuture<'a, ()>;
}

/// Heads as stored: sorted 32-byte hashes, concatenated.
pub(crate) fn heads_to_bytes(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.iter().flat_map(|h| h.0).collect()
}

pub(crate) fn heads_from_bytes(bytes: &[u8]) -> Result<Vec<ChangeHash>, StoreError> {
    if !bytes.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(format!(
            "heads of {} bytes is not a list of hashes",
            bytes.len()
        )));
    }
    bytes
        .chunks(32)
        .map(|c| ChangeHash::try_from(c).map_err(|e| StoreError::Corrupt(format!("heads: {e}"))))
        .collect()
}

pub(crate) fn join(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join(",")
}

pub(crate) fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').filter(|s| !s.is_empty())
}

pub(crate) fn kind_from(id: &str, text: &str) -> Result<DocKind, StoreError> {
    DocKind::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("document {id:?} has kind {text:?}")))
}

pub(crate) fn meta_from(
    id: &str,
    grids: &str,
    owner: Option<String>,
    assignees: &str,
) -> Result<DocMeta, StoreError> {
    let grids = split(grids)
        .map(|g| {
            g.parse::<GridCode>()
                .map_err(|e| StoreError::Corrupt(format!("document {id:?} grid {g:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DocMeta {
        grids,
        owner,
        assignees: split(assignees).map(str::to_owned).collect(),
    })
}

/// A `documents` row for the catalogue: seq, id, kind, heads, grids, owner, assignees.
pub(crate) type EntryRow = (i64, String, String, Vec<u8>, String, Option<String>, String);

pub(crate) fn entry_from(row: EntryRow) -> Result<CatalogueEntry, StoreError> {
    let (seq, id, kind, heads, grids, owner, assignees) = row;
    Ok(CatalogueEntry {
        seq: u64::try_from(seq).unwrap_or(0),
        kind: kind_from(&id, &kind)?,
        heads: heads_from_bytes(&heads)?,
        meta: meta_from(&id, &grids, owner, &assignees)?,
        id,
    })
}

/// A `sync_peers` row: confirmed, pending serial, pending heads, pending eviction.
pub(crate) type PeerRow = (Option<Vec<u8>>, Option<i64>, Option<Vec<u8>>, bool);

pub(crate) fn peer_from(row: PeerRow) -> Result<PeerDoc, StoreError> {
    let (confirmed, serial, heads, evict) = row;
    let pending = match serial {
        None => None,
        Some(serial) => Some(Pending {
            serial: u64::try_from(serial).unwrap_or(0),
            heads: if evict {
                None
            } else {
                Some(heads_from_bytes(heads.as_deref().unwrap_or(&[]))?)
            },
        }),
    };
    Ok(PeerDoc {
        confirmed: confirmed.as_deref().map(heads_from_bytes).transpose()?,
        pending,
    })
}

/// What storing a document's changes writes, computed from the stored document as read
/// before the write transaction (the CPU of loading, compacting and folding stays out
/// of the serialized part). The transaction uses it only if the document is still
/// as read (`base`), and otherwise computes it again inside.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The stored heads as read; `None`: the document was not stored.
    pub base: Option<Vec<u8>>,
    /// The chunks to store: one save, or the changes appended.
    pub chunks: Replace,
    /// The heads of the whole document.
    pub heads: Vec<u8>,
    /// What `Derive` makes of it.
    pub derived: super::cases::Derived,
}

/// How a write changes a document's chunks.
#[derive(Debug)]
pub(crate) enum Replace {
    /// All chunks become this one save.
    Compacted(Vec<u8>),
    /// The new changes are appended as they are.
    Appended,
}

/// Loads `stored` (the chunks as read, whose heads are `base`) plus `write`'s changes
/// and derives what the transaction writes.
pub(crate) fn prepare(
    write: &DocWrite,
    base: Option<Vec<u8>>,
    stored: Vec<Vec<u8>>,
    derive: &dyn Derive,
) -> Result<Prepared, StoreError> {
    let append = appends(stored.len(), write.changes.len());
    let mut chunks = stored;
    chunks.extend(write.changes.iter().cloned());
    let doc = wangge_sync_core::sync::load_chunks(&chunks)
        .map_err(|e| StoreError::Corrupt(format!("document {:?}: {e}", write.id)))?;
    Ok(prepared(write, base, append, &doc, derive))
}

/// What the transaction writes, from the document the writer merged (`write.merged`):
/// nothing to read or load. `None` if the write carries none.
pub(crate) fn prepare_merged(write: &DocWrite, derive: &dyn Derive) -> Option<Prepared> {
    let merged = write.merged.as_ref()?;
    let base = (!merged.base.is_empty()).then(|| heads_to_bytes(&merged.base));
    let stored_chunks = usize::from(base.is_some());
    let append = appends(stored_chunks, write.changes.len());
    Some(prepared(write, base, append, &merged.doc, derive))
}

fn prepared(
    write: &DocWrite,
    base: Option<Vec<u8>>,
    append: bool,
    doc: &automerge::Automerge,
    derive: &dyn Derive,
) -> Prepared {
    Prepared {
        base,
        chunks: if append {
            Replace::Appended
        } else {
            Replace::Compacted(doc.save())
        },
        heads: heads_to_bytes(&doc.get_heads()),
        derived: derive.derive(&write.id, write.kind, doc),
    }
}

/// Rows of `sync_peers` written per statement (6 parameters each: well within
/// SQLite's 32,766 and PostgreSQL's 65,535).
pub(crate) const PEER_ROWS_PER_STATEMENT: usize = 500;

/// Attempts after the first when the database gives up a transaction to break a
/// deadlock or a serialization conflict; the transaction is rolled back, so it is
/// run again whole.
pub(crate) const RETRIES: u32 = 3;

/// Whether `error` is PostgreSQL's `deadlock_detected` (40P01) or
/// `serialization_failure` (40001), or SQLite's busy/locked: worth running the
/// transaction again.
pub(crate) fn retryable(error: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(db)) = error else {
        return false;
    };
    matches!(
        db.code().as_deref(),
        Some("40P01" | "40001" | "5" | "6" | "517")
    )
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Implements [`SyncStore`] for `$store` (a struct with a `pool` field).
macro_rules! impl_sync_store {
    ($store:ty, $db:ident) => {
        impl $crate::store::sync::SyncStore for $store {
            fn sync_issued_serial<'a>(&'a self, device: &'a str) -> $crate::store::StoreFuture<'a, u64> {
                Box::pin(async move {
                    let row: Option<(i64,)> =
                        sqlx::query_as("SELECT issued_serial FROM sync_devices WHERE device = $1")
                            .bind(device)
                            .fetch_optional(&self.pool)
                            .await?;
                    Ok(row.map_or(0, |(s,)| u64::try_from(s).unwrap_or(0)))
                })
            }

            fn sync_latest_seq(&self) -> $crate::store::StoreFuture<'_, u64> {
                Box::pin(async move {
                    let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM catalogue WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?;
                    Ok(u64::try_from(seq).unwrap_or(0))
                })
            }

            fn sync_documents<'a>(
                &'a self,
                ids: &'a [&'a str],
            ) -> $crate::store::StoreFuture<
                'a,
                std::collections::HashMap<String, wangge_sync_core::sync::server::StoredDoc>,
            > {
                Box::pin(async move {
                    use $crate::store::sync as s;
                    let mut found = std::collections::HashMap::new();
                    if ids.is_empty() {
                        return Ok(found);
                    }
                    // One statement, so a document's row and its chunks are one
                    // snapshot (a concurrent write replaces both).
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT d.id, d.kind, d.heads, d.grids, d.owner, d.assignees, c.bytes
                         FROM documents d JOIN document_chunks c ON c.doc_id = d.id
                         WHERE d.id IN (",
                    );
                    let mut list = q.separated(", ");
                    for id in ids {
                        list.push_bind(*id);
                    }
                    q.push(") ORDER BY d.id, c.n");
                    #[allow(clippy::type_complexity)]
                    let rows: Vec<(String, String, Vec<u8>, String, Option<String>, String, Vec<u8>)> =
                        q.build_query_as().fetch_all(&self.pool).await?;
                    for (id, kind, heads, grids, owner, assignees, bytes) in rows {
                        if let Some(doc) = found.get_mut(&id) {
                            let doc: &mut wangge_sync_core::sync::server::StoredDoc = doc;
                            doc.chunks.push(bytes);
                            continue;
                        }
                        let doc = wangge_sync_core::sync::server::StoredDoc {
                            kind: s::kind_from(&id, &kind)?,
                            chunks: vec![bytes],
                            meta: s::meta_from(&id, &grids, owner, &assignees)?,
                            heads: s::heads_from_bytes(&heads)?,
                        };
                        found.insert(id, doc);
                    }
                    Ok(found)
                })
            }

            fn sync_changed_since<'a>(
                &'a self,
                _device: &'a str,
                filter: &'a wangge_sync_core::sync::CatalogueFilter,
                after: u64,
                limit: u32,
            ) -> $crate::store::StoreFuture<'a, Vec<wangge_sync_core::sync::server::CatalogueEntry>> {
                Box::pin(async move {
                    // One branch per key of the scope (and one by position for what
                    // no key covers, a city-wide scope), each the first `limit`
                    // after the cursor by its own index, merged: an `OR` over the
                    // documents made every round test each document written in the
                    // city since its cursor.
                    let lookup = filter.lookup();
                    let after = $crate::store::sync::to_i64(after);
                    let limit = i64::from(limit);
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT seq, id, kind, heads, grids, owner, assignees FROM documents
                         WHERE id IN (",
                    );
                    // What the device holds needs no branch of its own: it came
                    // under one of these keys or its user's (its writes,
                    // `ServerCommit::writer`), and a document keeps its keys, so it
                    // is read (and evicted) even after it left the scope.
                    let mut branches = 0;
                    for key in &lookup.keys {
                        if branches > 0 {
                            q.push(" UNION ");
                        }
                        q.push("SELECT doc_id FROM (SELECT doc_id FROM catalogue_keys WHERE scope_key = ")
                            .push_bind(key.clone())
                            .push(" AND seq > ")
                            .push_bind(after)
                            .push(" ORDER BY seq LIMIT ")
                            .push_bind(limit)
                            .push(format!(") AS key{branches}"));
                        branches += 1;
                    }
                    if let Some(unindexed) = &lookup.unindexed {
                        if branches > 0 {
                            q.push(" UNION ");
                        }
                        q.push("SELECT id FROM (SELECT id FROM documents WHERE seq > ")
                            .push_bind(after)
                            .push(" AND (FALSE");
                        for (kind, prefixes) in [
                            ("case", &unindexed.case_grids),
                            ("patrol_log", &unindexed.patrol_grids),
                        ] {
                            if prefixes.is_empty() {
                                continue;
                            }
                            q.push(" OR (kind = ").push_bind(kind).push(" AND (FALSE");
                            for prefix in prefixes.iter() {
                                if prefix.is_empty() {
                                    q.push(" OR grids <> ''");
                                } else {
                                    // `grids` is a comma-separated list of codes.
                                    q.push(" OR grids LIKE ").push_bind(format!("{prefix}%"));
                                    q.push(" OR grids LIKE ").push_bind(format!("%,{prefix}%"));
                                }
                            }
                            q.push("))");
                        }
                        q.push(") ORDER BY seq LIMIT ").push_bind(limit).push(") AS unindexed");
                        branches += 1;
                    }
                    if branches == 0 {
                        return Ok(Vec::new());
                    }
                    q.push(") ORDER BY seq LIMIT ").push_bind(limit);
                    let rows: Vec<$crate::store::sync::EntryRow> =
                        q.build_query_as().fetch_all(&self.pool).await?;
                    rows.into_iter().map($crate::store::sync::entry_from).collect()
                })
            }

            fn sync_peer<'a>(
                &'a self,
                device: &'a str,
                id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<wangge_sync_core::sync::server::PeerDoc>> {
                Box::pin(async move {
                    let row: Option<$crate::store::sync::PeerRow> = sqlx::query_as(
                        "SELECT confirmed, pending_serial, pending_heads, pending_evict
                         FROM sync_peers WHERE device = $1 AND doc_id = $2",
                    )
                    .bind(device)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map($crate::store::sync::peer_from).transpose()
                })
            }

            fn sync_peers_among<'a>(
                &'a self,
                device: &'a str,
                ids: &'a [&'a str],
            ) -> $crate::store::StoreFuture<
                'a,
                std::collections::HashMap<String, wangge_sync_core::sync::server::PeerDoc>,
            > {
                Box::pin(async move {
                    let mut found = std::collections::HashMap::new();
                    if ids.is_empty() {
                        return Ok(found);
                    }
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT doc_id, confirmed, pending_serial, pending_heads, pending_evict
                         FROM sync_peers WHERE device = ",
                    );
                    q.push_bind(device).push(" AND doc_id IN (");
                    let mut list = q.separated(", ");
                    for id in ids {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    #[allow(clippy::type_complexity)]
                    let rows: Vec<(String, Option<Vec<u8>>, Option<i64>, Option<Vec<u8>>, bool)> =
                        q.build_query_as().fetch_all(&self.pool).await?;
                    for (id, confirmed, serial, heads, evict) in rows {
                        let peer = $crate::store::sync::peer_from((confirmed, serial, heads, evict))?;
                        found.insert(id, peer);
                    }
                    Ok(found)
                })
            }

            fn sync_peers<'a>(
                &'a self,
                device: &'a str,
            ) -> $crate::store::StoreFuture<
                'a,
                Vec<(wangge_sync_core::sync::server::PeerDoc, wangge_sync_core::sync::server::CatalogueEntry)>,
            > {
                Box::pin(async move {
                    use $crate::store::sync as s;
                    #[allow(clippy::type_complexity)]
                    let rows: Vec<(
                        Option<Vec<u8>>, Option<i64>, Option<Vec<u8>>, bool,
                        i64, String, String, Vec<u8>, String, Option<String>, String,
                    )> = sqlx::query_as(
                        "SELECT p.confirmed, p.pending_serial, p.pending_heads, p.pending_evict,
                                d.seq, d.id, d.kind, d.heads, d.grids, d.owner, d.assignees
                         FROM sync_peers p JOIN documents d ON d.id = p.doc_id
                         WHERE p.device = $1 ORDER BY d.seq",
                    )
                    .bind(device)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map(|(c, ps, ph, pe, seq, id, kind, heads, grids, owner, assignees)| {
                            Ok((
                                s::peer_from((c, ps, ph, pe))?,
                                s::entry_from((seq, id, kind, heads, grids, owner, assignees))?,
                            ))
                        })
                        .collect()
                })
            }

            fn sync_commit<'a>(
                &'a self,
                commit: &'a wangge_sync_core::sync::server::ServerCommit,
                derive: &'a dyn $crate::store::cases::Derive,
                now: i64,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut documents: Vec<&wangge_sync_core::sync::server::DocWrite> =
                        commit.documents.iter().collect();
                    documents.sort_by(|a, b| a.id.cmp(&b.id));
                    let mut prepared = Vec::with_capacity(documents.len());
                    for write in &documents {
                        prepared.push(prepare_write(&self.pool, write, derive).await?);
                    }
                    let mut attempt = 0;
                    loop {
                        let _turn = self.write_turn().await;
                        match sync_commit_once(&self.pool, commit, &documents, &prepared, derive, now).await {
                            Err(e) if $crate::store::sync::retryable(&e) && attempt < $crate::store::sync::RETRIES => {
                                attempt += 1;
                                tracing::info!(device = %commit.device, attempt, "retrying a sync commit: {e}");
                            }
                            other => return other,
                        }
                    }
                })
            }

            fn document_write<'a>(
                &'a self,
                write: &'a wangge_sync_core::sync::server::DocWrite,
                expect: Option<&'a [automerge::ChangeHash]>,
                derive: &'a dyn $crate::store::cases::Derive,
                now: i64,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let prepared = prepare_write(&self.pool, write, derive).await?;
                    let mut attempt = 0;
                    loop {
                        let _turn = self.write_turn().await;
                        match document_write_once(&self.pool, write, expect, &prepared, derive, now).await {
                            Err(e) if $crate::store::sync::retryable(&e) && attempt < $crate::store::sync::RETRIES => {
                                attempt += 1;
                                tracing::info!(id = %write.id, attempt, "retrying a document write: {e}");
                            }
                            other => return other,
                        }
                    }
                })
            }
        }

        /// One attempt at [`SyncStore::sync_commit`].
        ///
        /// Lock order, so that two transactions never wait for each other in a cycle:
        /// the device's row, then the written documents' rows in id order, then the
        /// catalogue counter last. The counter serializes every writer (positions
        /// must become visible in order), so it is taken only for the last statements:
        /// everything that costs — loading, compacting, folding, the device's records
        /// — happens before.
        async fn sync_commit_once(
            pool: &sqlx::Pool<sqlx::$db>,
            commit: &wangge_sync_core::sync::server::ServerCommit,
            documents: &[&wangge_sync_core::sync::server::DocWrite],
            prepared: &[$crate::store::sync::Prepared],
            derive: &dyn $crate::store::cases::Derive,
            now: i64,
        ) -> Result<(), $crate::store::StoreError> {
            use $crate::store::sync as s;
            let device = commit.device.as_str();
            let acknowledged = s::to_i64(commit.acknowledged);
            let mut tx = pool.begin().await?;
            // Claim the reply serial first: of two rounds of one device that ran
            // at once (on two nodes), only the first to commit keeps its serial;
            // the other finds it taken and is refused, so the pending entries of
            // one serial always come from one reply.
            let claimed = sqlx::query(
                "INSERT INTO sync_devices (device, issued_serial) VALUES ($1, $2)
                 ON CONFLICT (device) DO UPDATE SET issued_serial = excluded.issued_serial
                 WHERE sync_devices.issued_serial = $3",
            )
            .bind(device)
            .bind(s::to_i64(commit.issued))
            .bind(s::to_i64(commit.issued.saturating_sub(1)))
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() == 0 {
                return Err($crate::store::StoreError::Conflict {
                    what: "sync round of device",
                    id: device.to_owned(),
                });
            }
            // Settle: what the acknowledged reply sent is now the device's; an
            // acknowledged eviction forgets the document; anything else pending was
            // never received.
            sqlx::query(
                "DELETE FROM sync_peers
                 WHERE device = $1 AND pending_serial = $2 AND pending_evict",
            )
            .bind(device)
            .bind(acknowledged)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE sync_peers SET
                     confirmed = CASE WHEN pending_serial = $2 THEN pending_heads ELSE confirmed END,
                     pending_serial = NULL, pending_heads = NULL, pending_evict = FALSE
                 WHERE device = $1 AND pending_serial IS NOT NULL",
            )
            .bind(device)
            .bind(acknowledged)
            .execute(&mut *tx)
            .await?;
            for (i, (write, prepared)) in documents.iter().zip(prepared).enumerate() {
                write_document(&mut tx, write, i, Some(prepared), Some(commit.writer.as_str()), derive, now).await?;
            }
            // The device's records, many rows a statement.
            for batch in commit.peers.chunks(s::PEER_ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                    "INSERT INTO sync_peers (device, doc_id, confirmed, pending_serial, pending_heads, pending_evict) ",
                );
                q.push_values(batch, |mut row, peer| {
                    let (serial, heads, evict) = match &peer.pending {
                        None => (None, None, false),
                        Some(p) => (
                            Some(s::to_i64(p.serial)),
                            p.heads.as_deref().map(s::heads_to_bytes),
                            p.heads.is_none(),
                        ),
                    };
                    row.push_bind(device)
                        .push_bind(peer.id.as_str())
                        .push_bind(peer.confirmed.as_deref().map(s::heads_to_bytes))
                        .push_bind(serial)
                        .push_bind(heads)
                        .push_bind(evict);
                });
                q.push(
                    " ON CONFLICT (device, doc_id) DO UPDATE SET
                         confirmed = COALESCE(excluded.confirmed, sync_peers.confirmed),
                         pending_serial = excluded.pending_serial,
                         pending_heads = excluded.pending_heads,
                         pending_evict = excluded.pending_evict",
                );
                q.build().execute(&mut *tx).await?;
            }
            publish_positions(&mut tx, documents).await?;
            tx.commit().await?;
            Ok(())
        }

        /// One attempt at [`SyncStore::document_write`].
        async fn document_write_once(
            pool: &sqlx::Pool<sqlx::$db>,
            write: &wangge_sync_core::sync::server::DocWrite,
            expect: Option<&[automerge::ChangeHash]>,
            prepared: &$crate::store::sync::Prepared,
            derive: &dyn $crate::store::cases::Derive,
            now: i64,
        ) -> Result<(), $crate::store::StoreError> {
            let mut tx = pool.begin().await?;
            if let Some(expected) = expect {
                // Takes the row's lock (PostgreSQL) or the write lock (SQLite)
                // first, so the check and the write are one step.
                let locked = sqlx::query(
                    "UPDATE documents SET updated_at = updated_at WHERE id = $1 AND heads = $2",
                )
                .bind(&write.id)
                .bind($crate::store::sync::heads_to_bytes(expected))
                .execute(&mut *tx)
                .await?;
                if locked.rows_affected() == 0 {
                    return Err($crate::store::StoreError::Conflict {
                        what: "document changed meanwhile",
                        id: write.id.clone(),
                    });
                }
            }
            write_document(&mut tx, write, 0, Some(prepared), None, derive, now).await?;
            publish_positions(&mut tx, &[write]).await?;
            tx.commit().await?;
            Ok(())
        }

        /// Prepares `write` outside any transaction: on the document its writer
        /// merged, or else on the document as stored (heads, chunks: one statement,
        /// one snapshot).
        async fn prepare_write(
            pool: &sqlx::Pool<sqlx::$db>,
            write: &wangge_sync_core::sync::server::DocWrite,
            derive: &dyn $crate::store::cases::Derive,
        ) -> Result<$crate::store::sync::Prepared, $crate::store::StoreError> {
            if let Some(prepared) = $crate::store::sync::prepare_merged(write, derive) {
                return Ok(prepared);
            }
            let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
                "SELECT d.heads, c.bytes FROM documents d
                 JOIN document_chunks c ON c.doc_id = d.id
                 WHERE d.id = $1 ORDER BY c.n",
            )
            .bind(&write.id)
            .fetch_all(pool)
            .await?;
            let base = rows.first().map(|(heads, _)| heads.clone());
            let stored = rows.into_iter().map(|(_, bytes)| bytes).collect();
            $crate::store::sync::prepare(write, base, stored, derive)
        }

        /// Stores a document's new changes, compacted with what is stored into one
        /// save, and what `derive` makes of the whole document (concurrent writers'
        /// changes included): `prepared` if the document is still as it was read,
        /// else computed again here; adds its catalogue keys (and `writer`'s, for a
        /// device's round). Its catalogue position stays a placeholder unique in the
        /// transaction (`-1 - nth`, never read outside it) until
        /// [`publish_positions`].
        pub(crate) async fn write_document(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            write: &wangge_sync_core::sync::server::DocWrite,
            nth: usize,
            prepared: Option<&$crate::store::sync::Prepared>,
            writer: Option<&str>,
            derive: &dyn $crate::store::cases::Derive,
            now: i64,
        ) -> Result<(), $crate::store::StoreError> {
            use $crate::store::sync as s;
            let placeholder = -1 - i64::try_from(nth).unwrap_or(0);
            // The row first: it locks the document (PostgreSQL) so concurrent writers
            // of one document compact one after the other, each seeing the other's
            // committed chunks.
            sqlx::query(
                "INSERT INTO documents (id, kind, seq, heads, grids, owner, assignees, updated_at)
                 VALUES ($1, $2, $3, $4, '', NULL, '', $5)
                 ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
            )
            .bind(&write.id)
            .bind(write.kind.as_str())
            .bind(placeholder)
            .bind(s::heads_to_bytes(&write.heads))
            .bind(now)
            .execute(&mut **tx)
            .await?;
            // Under the row's lock nothing moves any more: is the document still what
            // `prepared` was computed from? (Another writer may have created or
            // changed it since it was read.) A new document's row holds the heads
            // just written, and no chunks.
            let (heads, chunks, last): (Vec<u8>, i64, i64) = sqlx::query_as(
                "SELECT d.heads, COUNT(c.n), COALESCE(MAX(c.n), 0) FROM documents d
                 LEFT JOIN document_chunks c ON c.doc_id = d.id
                 WHERE d.id = $1 GROUP BY d.heads",
            )
            .bind(&write.id)
            .fetch_one(&mut **tx)
            .await?;
            let unchanged = match prepared.map(|p| p.base.as_ref()) {
                None => false,
                Some(None) => chunks == 0,
                Some(Some(base)) => chunks > 0 && &heads == base,
            };
            let computed;
            let prepared = match prepared.filter(|_| unchanged) {
                Some(prepared) => prepared,
                None => {
                    tracing::debug!(id = %write.id, "document changed since the write was prepared: preparing again");
                    let stored: Vec<(Vec<u8>,)> = sqlx::query_as(
                        "SELECT bytes FROM document_chunks WHERE doc_id = $1 ORDER BY n",
                    )
                    .bind(&write.id)
                    .fetch_all(&mut **tx)
                    .await?;
                    let stored = stored.into_iter().map(|(bytes,)| bytes).collect();
                    computed = s::prepare(write, None, stored, derive)?;
                    &computed
                }
            };
            match &prepared.chunks {
                s::Replace::Compacted(save) => {
                    sqlx::query("DELETE FROM document_chunks WHERE doc_id = $1")
                        .bind(&write.id)
                        .execute(&mut **tx)
                        .await?;
                    sqlx::query("INSERT INTO document_chunks (doc_id, n, bytes) VALUES ($1, $2, $3)")
                        .bind(&write.id)
                        .bind(last + 1)
                        .bind(save)
                        .execute(&mut **tx)
                        .await?;
                }
                s::Replace::Appended => {
                    let mut n = last;
                    for change in &write.changes {
                        n += 1;
                        sqlx::query("INSERT INTO document_chunks (doc_id, n, bytes) VALUES ($1, $2, $3)")
                            .bind(&write.id)
                            .bind(n)
                            .bind(change)
                            .execute(&mut **tx)
                            .await?;
                    }
                }
            }
            let derived = &prepared.derived;
            sqlx::query(
                "UPDATE documents SET heads = $2, grids = $3, owner = $4, assignees = $5
                 WHERE id = $1",
            )
            .bind(&write.id)
            .bind(&prepared.heads)
            .bind(s::join(derived.meta.grids.iter().map(ToString::to_string)))
            .bind(derived.meta.owner.as_deref())
            .bind(s::join(derived.meta.assignees.iter().cloned()))
            .execute(&mut **tx)
            .await?;
            // New keys only: the ones it had stay (see migration 0007).
            let mut keys = derived.meta.catalogue_keys(write.kind);
            keys.extend(writer.map(wangge_sync_core::sync::user_key));
            let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                "INSERT INTO catalogue_keys (scope_key, doc_id, seq) ",
            );
            q.push_values(&keys, |mut row, key| {
                row.push_bind(key.as_str())
                    .push_bind(write.id.as_str())
                    .push_bind(placeholder);
            });
            q.push(" ON CONFLICT (scope_key, doc_id) DO NOTHING");
            q.build().execute(&mut **tx).await?;
            if let Some(case) = &derived.case {
                upsert_case(tx, case).await?;
                write_facts(tx, &write.id, derived.facts.as_ref()).await?;
                // A document without chunks before this write is new: it has no rows.
                replace_case_photos(tx, &write.id, &derived.photos, chunks == 0, now).await?;
            }
            if let Some(patrol) = &derived.patrol {
                write_patrol(tx, patrol).await?;
            }
            Ok(())
        }

        /// Gives the written documents their catalogue positions, in the order
        /// given: the transaction's last statements, under the counter's lock.
        async fn publish_positions(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            written: &[&wangge_sync_core::sync::server::DocWrite],
        ) -> Result<(), $crate::store::StoreError> {
            let Ok(count) = i64::try_from(written.len()) else {
                return Err($crate::store::StoreError::Corrupt("too many documents".into()));
            };
            if count == 0 {
                return Ok(());
            }
            let (last,): (i64,) =
                sqlx::query_as("UPDATE catalogue SET seq = seq + $1 WHERE id = 1 RETURNING seq")
                    .bind(count)
                    .fetch_one(&mut **tx)
                    .await?;
            for (i, write) in written.iter().enumerate() {
                let i = i64::try_from(i).unwrap_or(0);
                sqlx::query("UPDATE documents SET seq = $2 WHERE id = $1")
                    .bind(&write.id)
                    .bind(last - count + 1 + i)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("UPDATE catalogue_keys SET seq = $2 WHERE doc_id = $1")
                    .bind(&write.id)
                    .bind(last - count + 1 + i)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(())
        }
    };
}

pub(crate) use impl_sync_store;
