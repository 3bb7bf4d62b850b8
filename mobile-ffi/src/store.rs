//! The phone's store: one SQLite file (rusqlite, bundled) holding the documents and
//! their sync state (the outbox is the documents with unsent changes, oldest first),
//! the session, the photo upload queue, buffered track points and cached reference
//! data.
//!
//! Every write is one transaction, committed with `synchronous=FULL` before the call
//! that made it returns: a killed app (or a dead battery) loses nothing it reported
//! as done. A document's summary (`case_index`) is re-derived in the same transaction
//! as the document, so a list is never staler than what it lists (the server keeps
//! the same invariant).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use automerge::ChangeHash;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use wangge_sync_core::case::{CaseDocument, Outcome, WorkflowContext};
use wangge_sync_core::catalog::Catalog;

use crate::catalogue::Served;
use wangge_sync_core::sync::device::{DeviceCommit, DeviceDoc, DeviceStorage, Rejection};
use wangge_sync_core::sync::message::{Cursor, RefusalCode};
use wangge_sync_core::sync::{DocKind, load_chunks};

use crate::types::{CaseListFilter, CasePage, CaseSummary, IgnoredAction, status_label};

/// The store's file name inside the data directory.
pub const STORE_FILE: &str = "store.sqlite3";
/// The directory of photos waiting to be uploaded, inside the data directory.
pub const PHOTO_DIR: &str = "photos";
/// The directory of photos downloaded to be shown (thumbnails, display images).
pub const PHOTO_CACHE_DIR: &str = "photo-cache";

const SCHEMA_VERSION: i64 = 2;

/// Version 2 (issue 29): what the phone derives from each stored case besides its
/// summary — the photos it references (so a downloaded image goes with its case),
/// the dispatches to this user not yet told to the app, this device's actions the
/// workflow ignored — and the downloaded photos.
const SCHEMA_2: &str = r#"
CREATE TABLE case_photos (
    case_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (case_id, sha256)
) WITHOUT ROWID;
CREATE INDEX case_photos_by_hash ON case_photos (sha256);
-- A case dispatched to this user: `assignment` names the dispatch (its time), so a
-- second dispatch of the same case is told again. `told` = 0 until the listener
-- heard it; '' as assignment: heard on the socket before the data arrived.
CREATE TABLE dispatch_notices (
    case_id TEXT PRIMARY KEY,
    assignment TEXT NOT NULL,
    told INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE ignored_actions (
    entry_id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE photo_cache (
    sha256 TEXT NOT NULL,
    variant TEXT NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    used_ms INTEGER NOT NULL,
    PRIMARY KEY (sha256, variant)
) WITHOUT ROWID;
"#;

const SCHEMA: &str = r#"
CREATE TABLE session (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    server_url TEXT NOT NULL,
    user_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    team TEXT,
    scope TEXT NOT NULL,
    device_id TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    access_token TEXT NOT NULL,
    -- By the phone's own clock at receipt (expires_in added): immune to clock skew.
    access_expires_local_ms INTEGER NOT NULL,
    refresh_token TEXT NOT NULL,
    logged_in_at_ms INTEGER NOT NULL
);
-- The device id survives logout of the session row, so the same user on the same
-- phone keeps the same Automerge actor.
CREATE TABLE device (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL
);
CREATE TABLE sync_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cursor_seq INTEGER NOT NULL,
    cursor_serial INTEGER NOT NULL,
    cursor_scope INTEGER NOT NULL,
    clock_offset_ms INTEGER,
    last_sync_ms INTEGER
);
INSERT INTO sync_state (id, cursor_seq, cursor_serial, cursor_scope) VALUES (1, 0, 0, 0);
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    server_heads BLOB NOT NULL,
    unsent INTEGER NOT NULL,
    -- When the document first had unsent changes: the outbox's order.
    unsent_since INTEGER,
    rejected_code TEXT,
    rejected_details TEXT
) WITHOUT ROWID;
CREATE INDEX documents_outbox ON documents (unsent_since, id)
    WHERE unsent = 1 AND rejected_code IS NULL;
CREATE TABLE document_chunks (
    doc_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (doc_id, n)
) WITHOUT ROWID;
CREATE TABLE resync (doc_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE case_index (
    id TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    status TEXT,
    category TEXT,
    grid TEXT,
    description TEXT NOT NULL,
    reporter TEXT,
    team TEXT,
    assignee TEXT,
    reported_at_ms INTEGER,
    due_at_ms INTEGER,
    photo_count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE photo_queue (
    sha256 TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    -- waiting_ack: the case entry naming it is not on the server yet;
    -- ready: to upload; done: the server has it; refused: the server refused it.
    state TEXT NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE track_buffer (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    accuracy_m REAL
);
CREATE TABLE cache (
    key TEXT PRIMARY KEY,
    fetched_ms INTEGER NOT NULL,
    body BLOB NOT NULL
) WITHOUT ROWID;
"#;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file is not a wangge store, or is damaged: it is kept (it may hold unsent
    /// work) until the app wipes it.
    #[error("the store file is damaged: {0}")]
    Corrupt(String),
    /// The store was written by a newer version of the library.
    #[error("the store has schema version {0}; this library knows {SCHEMA_VERSION}")]
    Newer(i64),
    /// A file next to the store (a photo) failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The data directory given is a file.
    #[error("{} is a file, not a directory", .0.display())]
    NotADirectory(PathBuf),
}

impl StoreError {
    /// Whether retrying cannot help: the file itself is bad, or from a newer library
    /// (wiping or updating the app is the way out), as opposed to a passing failure
    /// (disk full, locked).
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::Corrupt(_) | StoreError::Newer(_) | StoreError::NotADirectory(_) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ),
            _ => false,
        }
    }
}

/// The session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The server it belongs to.
    pub server_url: String,
    /// The user.
    pub user_id: String,
    /// The user's name for display.
    pub display_name: String,
    /// The role's identifier.
    pub role: String,
    /// The team, if any.
    pub team: Option<String>,
    /// The scope's text.
    pub scope: String,
    /// The registered device.
    pub device_id: String,
    /// The device's Automerge actor id.
    pub actor_id: String,
    /// The bearer token.
    pub access_token: String,
    /// When it expires, by this phone's clock.
    pub access_expires_local_ms: i64,
    /// The single-use refresh token.
    pub refresh_token: String,
    /// When the user logged in, by this phone's clock.
    pub logged_in_at_ms: i64,
}

/// A queued photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPhoto {
    /// SHA-256 of the bytes to upload.
    pub sha256: String,
    /// The case that references it.
    pub case_id: String,
    /// The file, relative to the photo directory.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// `waiting_ack`, `ready`, `done` or `refused`.
    pub state: String,
    /// Bytes the server is known to have.
    pub uploaded: u64,
    /// Why the server refused it.
    pub error: Option<String>,
}

/// A track point waiting to be written into the patrol log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BufferedPoint {
    /// Its order of arrival.
    pub seq: i64,
    /// When (phone clock, ms).
    pub at_ms: i64,
    /// Longitude, WGS-84.
    pub lon: f64,
    /// Latitude, WGS-84.
    pub lat: f64,
    /// Accuracy radius, metres.
    pub accuracy_m: Option<f64>,
}

/// A `documents` row: kind, server heads, unsent, rejection code and details.
type DocumentRow = (String, Vec<u8>, bool, Option<String>, Option<String>);

/// The phone's store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    dir: PathBuf,
    /// The clock of the last local write (milliseconds), for `unsent_since`.
    now_ms: i64,
    /// The catalogue cases are folded with: the server's, once fetched (cached in
    /// `cache` under [`CATALOGUE_KEY`]), else the built-in one.
    served: Arc<Served>,
}

/// The cache key of the server's catalogue (the body of `GET /v1/catalogue`).
pub const CATALOGUE_KEY: &str = "catalogue";

fn refusal_name(code: RefusalCode) -> &'static str {
    match code {
        RefusalCode::Undecodable => "undecodable",
        RefusalCode::OutOfScope => "out_of_scope",
        RefusalCode::WriteRules => "write_rules",
        RefusalCode::MissingDependencies => "missing_dependencies",
        RefusalCode::KindMismatch => "kind_mismatch",
        RefusalCode::IdMismatch => "id_mismatch",
        RefusalCode::Duplicate => "duplicate",
        RefusalCode::UnknownHeads => "unknown_heads",
        RefusalCode::ForeignActor => "foreign_actor",
    }
}

fn refusal_code(name: &str) -> RefusalCode {
    [
        RefusalCode::Undecodable,
        RefusalCode::OutOfScope,
        RefusalCode::WriteRules,
        RefusalCode::MissingDependencies,
        RefusalCode::KindMismatch,
        RefusalCode::IdMismatch,
        RefusalCode::Duplicate,
        RefusalCode::UnknownHeads,
        RefusalCode::ForeignActor,
    ]
    .into_iter()
    .find(|c| refusal_name(*c) == name)
    // A name this version does not know still keeps the document out of the outbox.
    .unwrap_or(RefusalCode::WriteRules)
}

/// The text of a refusal code, for display.
pub fn refusal_text(code: RefusalCode) -> &'static str {
    refusal_name(code)
}

fn heads_bytes(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

fn heads_of(bytes: &[u8]) -> Result<Vec<ChangeHash>, StoreError> {
    if !bytes.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(
            "server heads are not 32-byte hashes".into(),
        ));
    }
    bytes
        .chunks(32)
        .map(|c| ChangeHash::try_from(c).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

fn u64_of(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

fn i64_of(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, checks it, and brings its
    /// schema up to date.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        // A file where the directory should be is the app's mistake, not a passing
        // failure: retrying cannot help.
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory(dir.to_owned()));
        }
        std::fs::create_dir_all(dir.join(PHOTO_DIR))?;
        std::fs::create_dir_all(dir.join(PHOTO_CACHE_DIR))?;
        let conn = Connection::open(dir.join(STORE_FILE))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL: readers never block the writer; FULL: a commit survives power loss
        // too, at one fsync per user action.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
        if check != "ok" {
            return Err(StoreError::Corrupt(check));
        }
        let mut store = Store {
            conn,
            dir: dir.to_owned(),
            now_ms: 0,
            served: Arc::new(Served::builtin()),
        };
        store.migrate()?;
        if let Some(body) = store.cache(CATALOGUE_KEY)? {
            match crate::catalogue::parse(&body) {
                Ok(served) => store.served = Arc::new(served),
                // Stored by this library after the same check: only a damaged page
                // gets here; the built-in catalogue serves until the next fetch.
                Err(e) => tracing::error!(error = %e, "the cached catalogue does not parse"),
            }
        }
        Ok(store)
    }

    /// The catalogue cases are folded and checked with.
    pub fn served(&self) -> Arc<Served> {
        self.served.clone()
    }

    /// Stores the server's catalogue (`body` as served, already parsed into
    /// `served`) and re-derives every case's summary with it (due times follow the
    /// new limits), in one transaction.
    pub fn set_catalogue(&mut self, body: &[u8], served: Served) -> Result<(), StoreError> {
        let served = Arc::new(served);
        let now = self.now_ms;
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO cache (key, fetched_ms, body) VALUES (?1, ?2, ?3)",
                params![CATALOGUE_KEY, now, body],
            )?;
            reindex_cases(tx, &served.catalog)
        })?;
        self.served = served;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer(version));
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if version < 1 {
            tx.execute_batch(SCHEMA)?;
        }
        tx.execute_batch(SCHEMA_2)?;
        // A version-1 store's cases get their photo rows (and the rest) now.
        reindex_cases(&tx, &self.served.catalog)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a queued photo's file is.
    pub fn photo_path(&self, file: &str) -> PathBuf {
        self.dir.join(PHOTO_DIR).join(file)
    }

    /// Sets the time that the next writes record (the app's clock).
    pub fn set_now(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
    }

    /// Runs `f` in one immediate transaction; nothing is kept unless it returns `Ok`.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let value = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// A read on the connection.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    // --- session ---------------------------------------------------------------

    /// The stored session.
    pub fn session(&self) -> Result<Option<StoredSession>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT server_url, user_id, display_name, role, team, scope, device_id,
                        actor_id, access_token, access_expires_local_ms, refresh_token,
                        logged_in_at_ms
                 FROM session WHERE id = 1",
                [],
                |row| {
                    Ok(StoredSession {
                        server_url: row.get(0)?,
                        user_id: row.get(1)?,
                        display_name: row.get(2)?,
                        role: row.get(3)?,
                        team: row.get(4)?,
                        scope: row.get(5)?,
                        device_id: row.get(6)?,
                        actor_id: row.get(7)?,
                        access_token: row.get(8)?,
                        access_expires_local_ms: row.get(9)?,
                        refresh_token: row.get(10)?,
                        logged_in_at_ms: row.get(11)?,
                    })
                },
            )
            .optional()?)
    }

    /// Stores a session (login or refresh) and remembers the device for the user.
    pub fn save_session(&mut self, s: &StoredSession) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO session (id, server_url, user_id, display_name, role,
                    team, scope, device_id, actor_id, access_token, access_expires_local_ms,
                    refresh_token, logged_in_at_ms)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    s.server_url,
                    s.user_id,
                    s.display_name,
                    s.role,
                    s.team,
                    s.scope,
                    s.device_id,
                    s.actor_id,
                    s.access_token,
                    s.access_expires_local_ms,
                    s.refresh_token,
                    s.logged_in_at_ms
                ],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO device (id, user_id, device_id) VALUES (1, ?1, ?2)",
                params![s.user_id, s.device_id],
            )?;
            Ok(())
        })
    }

    /// The device registered for the last user: `(user, device id)`.
    pub fn known_device(&self) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT user_id, device_id FROM device WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    /// Whether the store holds any document.
    pub fn has_documents(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM documents)", [], |row| {
                row.get(0)
            })?)
    }

    // --- clock -----------------------------------------------------------------

    /// The last measured offset of the server's clock from the phone's.
    pub fn clock_offset_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_row(
            "SELECT clock_offset_ms FROM sync_state WHERE id = 1",
            [],
            |row| row.get(0),
        )?)
    }

    /// Records the server's clock offset.
    pub fn set_clock_offset_ms(&mut self, offset: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sync_state SET clock_offset_ms = ?1 WHERE id = 1",
            [offset],
        )?;
        Ok(())
    }

    /// Records a finished sync.
    pub fn set_last_sync_ms(&mut self, at: i64) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE sync_state SET last_sync_ms = ?1 WHERE id = 1", [at])?;
        Ok(())
    }

    /// When the last sync finished.
    pub fn last_sync_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_row(
            "SELECT last_sync_ms FROM sync_state WHERE id = 1",
            [],
            |row| row.get(0),
        )?)
    }

    // --- documents -------------------------------------------------------------

    /// Commits a sync or local write, plus `extra` in the same transaction.
    pub fn commit_with(
        &mut self,
        commit: DeviceCommit,
        extra: impl FnOnce(&Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let now = self.now_ms;
        let served = self.served.clone();
        let deletes = !commit.delete.is_empty();
        self.write(|tx| {
            if let Some(cursor) = commit.cursor {
                tx.execute(
                    "UPDATE sync_state SET cursor_seq = ?1, cursor_serial = ?2, cursor_scope = ?3
                     WHERE id = 1",
                    params![
                        i64_of(cursor.seq),
                        i64_of(cursor.serial),
                        i64_of(cursor.scope)
                    ],
                )?;
            }
            for id in &commit.resynced {
                tx.execute("DELETE FROM resync WHERE doc_id = ?1", [id])?;
            }
            for id in &commit.delete {
                tx.execute("DELETE FROM documents WHERE id = ?1", [id])?;
            }
            for write in &commit.docs {
                write_document(tx, &write.id, &write.doc, now, &served.catalog)?;
            }
            for id in &commit.want_resync {
                tx.execute("INSERT OR IGNORE INTO resync (doc_id) VALUES (?1)", [id])?;
            }
            extra(tx)
        })?;
        if deletes {
            // Cases left (evicted, discarded): their downloaded photos go too.
            self.sweep_photo_cache(None)?;
        }
        Ok(())
    }

    /// The case summaries, newest report first.
    pub fn cases(&self) -> Result<Vec<CaseSummary>, StoreError> {
        Ok(self
            .cases_where(&CaseListFilter::default(), None, 0, u32::MAX)?
            .cases)
    }

    /// The case summaries `filter` selects, newest report first, one page of at
    /// most `max` from `filter.offset`, with the count of all selected. `user` is
    /// whom "mine" means; `now_ms` the time "overdue" is judged at.
    pub fn cases_where(
        &self,
        filter: &CaseListFilter,
        user: Option<&str>,
        now_ms: i64,
        max: u32,
    ) -> Result<CasePage, StoreError> {
        use rusqlite::types::Value as Sql;
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Sql> = Vec::new();
        let bind = |values: &mut Vec<Sql>, v: Sql| {
            values.push(v);
            format!("?{}", values.len())
        };
        if filter.assigned_to_me {
            let p = bind(&mut values, Sql::Text(user.unwrap_or_default().to_owned()));
            clauses.push(format!("c.assignee = {p}"));
        }
        if filter.reported_by_me {
            let p = bind(&mut values, Sql::Text(user.unwrap_or_default().to_owned()));
            clauses.push(format!("c.reporter = {p}"));
        }
        if !filter.statuses.is_empty() {
            let list: Vec<String> = filter
                .statuses
                .iter()
                .map(|status| bind(&mut values, Sql::Text(status.clone())))
                .collect();
            clauses.push(format!("c.status IN ({})", list.join(", ")));
        }
        if filter.overdue {
            // `due_at_ms` is the running step's: set only while a step runs.
            let p = bind(&mut values, Sql::Integer(now_ms));
            clauses.push(format!("c.due_at_ms IS NOT NULL AND c.due_at_ms < {p}"));
        }
        if filter.unsent {
            clauses.push("d.unsent = 1".into());
        }
        if let Some(grid) = &filter.grid_prefix {
            let p = bind(&mut values, Sql::Text(format!("{grid}%")));
            clauses.push(format!("c.grid LIKE {p}"));
        }
        let condition = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let total: i64 = self.conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM case_index c JOIN documents d ON d.id = c.id {condition}"
            ),
            rusqlite::params_from_iter(values.iter()),
            |row| row.get(0),
        )?;
        let limit = bind(&mut values, Sql::Integer(i64::from(max)));
        let offset = bind(&mut values, Sql::Integer(i64::from(filter.offset)));
        let mut statement = self.conn.prepare(&format!(
            "SELECT c.id, c.status, c.category, c.grid, c.description, c.reporter, c.team,
                    c.assignee, c.reported_at_ms, c.due_at_ms, c.photo_count, d.unsent,
                    d.rejected_code
             FROM case_index c JOIN documents d ON d.id = c.id
             {condition}
             ORDER BY c.reported_at_ms DESC, c.id
             LIMIT {limit} OFFSET {offset}"
        ))?;
        let catalog = &self.served.catalog;
        let rows = statement.query_map(rusqlite::params_from_iter(values.iter()), |row| {
            let status: Option<String> = row.get(1)?;
            let category: Option<String> = row.get(2)?;
            let named = category
                .as_deref()
                .and_then(|c| c.parse().ok())
                .and_then(|c| catalog.get(&c));
            let parsed = status
                .as_deref()
                .and_then(wangge_sync_core::case::Status::parse);
            let due_at_ms: Option<i64> = row.get(9)?;
            Ok(CaseSummary {
                id: row.get(0)?,
                status_label: status.as_deref().and_then(status_label),
                status_zh: parsed.map(|s| s.name_zh().to_owned()),
                status_en: parsed.map(|s| s.name_en().to_owned()),
                status,
                category_zh: named.map(|c| c.name_zh.clone()),
                category_en: named.map(|c| c.name_en.clone()),
                category,
                grid: row.get(3)?,
                description: row.get(4)?,
                reporter: row.get(5)?,
                team: row.get(6)?,
                assignee: row.get(7)?,
                reported_at_ms: row.get(8)?,
                due_at_ms,
                overdue: due_at_ms.is_some_and(|due| due < now_ms) && now_ms > 0,
                photo_count: row.get(10)?,
                unsent: row.get(11)?,
                rejected: row.get(12)?,
            })
        })?;
        Ok(CasePage {
            cases: rows.collect::<Result<_, _>>()?,
            total: u32::try_from(total).unwrap_or(u32::MAX),
        })
    }

    /// Counts for the progress display: unsent documents, rejected documents.
    pub fn outbox_counts(&self) -> Result<(u32, u32), StoreError> {
        Ok(self.conn.query_row(
            "SELECT
                COALESCE(SUM(unsent = 1 AND rejected_code IS NULL), 0),
                COALESCE(SUM(rejected_code IS NOT NULL), 0)
             FROM documents",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?)
    }

    // --- photos ----------------------------------------------------------------

    /// Queues a photo whose file is already in place, in `tx`.
    pub fn queue_photo(
        tx: &Transaction<'_>,
        photo: &QueuedPhoto,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO photo_queue (sha256, case_id, file, size, state, uploaded, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)
             ON CONFLICT (sha256) DO NOTHING",
            params![
                photo.sha256,
                photo.case_id,
                photo.file,
                i64_of(photo.size),
                photo.state,
                now_ms
            ],
        )?;
        Ok(())
    }

    /// Whether a photo with this hash is queued (in any state).
    pub fn photo_queued(&self, sha256: &str) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM photo_queue WHERE sha256 = ?1)",
            [sha256],
            |row| row.get(0),
        )?)
    }

    /// The queued photos, oldest first.
    pub fn photos(&self) -> Result<Vec<QueuedPhoto>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT sha256, case_id, file, size, state, uploaded, error
             FROM photo_queue ORDER BY created_ms, sha256",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(QueuedPhoto {
                sha256: row.get(0)?,
                case_id: row.get(1)?,
                file: row.get(2)?,
                size: u64_of(row.get(3)?),
                state: row.get(4)?,
                uploaded: u64_of(row.get(5)?),
                error: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records upload progress or the end of an upload; a finished upload's file is
    /// deleted after the row says so (a crash in between leaves an orphan file,
    /// which the next open sweeps).
    pub fn set_photo_state(
        &mut self,
        sha256: &str,
        state: &str,
        uploaded: u64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE photo_queue SET state = ?2, uploaded = ?3, error = ?4 WHERE sha256 = ?1",
            params![sha256, state, i64_of(uploaded), error],
        )?;
        Ok(())
    }

    /// Deletes photo files no queue row needs (left by a crash between writing the
    /// file and committing its row, or after an upload finished).
    pub fn sweep_photo_files(&self) -> Result<usize, StoreError> {
        let needed: std::collections::HashSet<String> = self
            .photos()?
            .into_iter()
            .filter(|p| p.state == "waiting_ack" || p.state == "ready")
            .map(|p| p.file)
            .collect();
        let mut removed = 0;
        for entry in std::fs::read_dir(self.dir.join(PHOTO_DIR))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !needed.contains(&name) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        let cached: std::collections::HashSet<String> = {
            let mut select = self.conn.prepare("SELECT file FROM photo_cache")?;
            select
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?
        };
        for entry in std::fs::read_dir(self.dir.join(PHOTO_CACHE_DIR))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !cached.contains(&name) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    // --- track points ----------------------------------------------------------

    /// Buffers track points.
    pub fn buffer_track(
        &mut self,
        points: &[(i64, f64, f64, Option<f64>)],
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO track_buffer (at_ms, lon, lat, accuracy_m) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (at, lon, lat, accuracy) in points {
                insert.execute(params![at, lon, lat, accuracy])?;
            }
            Ok(())
        })
    }

    /// The buffered track points, oldest first, with their sequence numbers.
    pub fn buffered_track(&self) -> Result<Vec<BufferedPoint>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT seq, at_ms, lon, lat, accuracy_m FROM track_buffer ORDER BY seq")?;
        let rows = statement.query_map([], |row| {
            Ok(BufferedPoint {
                seq: row.get(0)?,
                at_ms: row.get(1)?,
                lon: row.get(2)?,
                lat: row.get(3)?,
                accuracy_m: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // --- what the app is told ------------------------------------------------

    /// Dispatches to this user the app has not been told of, oldest first.
    pub fn untold_dispatches(&self) -> Result<Vec<String>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT n.case_id FROM dispatch_notices n JOIN documents d ON d.id = n.case_id
             WHERE n.told = 0 ORDER BY n.at_ms, n.case_id",
        )?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that the app was told of a dispatch of `case_id`: from the data
    /// (`from_socket` false) or from the socket's notice, which may come before the
    /// data (then the next dispatch found in the data is this one, not told again).
    pub fn told_dispatch(&mut self, case_id: &str, from_socket: bool) -> Result<(), StoreError> {
        if from_socket {
            let now = self.now_ms;
            self.conn.execute(
                "INSERT INTO dispatch_notices (case_id, assignment, told, at_ms)
                 VALUES (?1, '', 1, ?2)
                 ON CONFLICT (case_id) DO UPDATE SET told = 1,
                    assignment = CASE WHEN dispatch_notices.told = 1 THEN '' ELSE assignment END",
                params![case_id, now],
            )?;
        } else {
            self.conn.execute(
                "UPDATE dispatch_notices SET told = 1 WHERE case_id = ?1",
                [case_id],
            )?;
        }
        Ok(())
    }

    /// This device's ignored actions not yet reported, marked reported in the same
    /// transaction.
    pub fn take_ignored(&mut self) -> Result<Vec<IgnoredAction>, StoreError> {
        self.write(|tx| {
            let found: Vec<IgnoredAction> = {
                let mut select = tx.prepare(
                    "SELECT case_id, entry_id, action, reason FROM ignored_actions
                     WHERE reported = 0 ORDER BY case_id, entry_id",
                )?;
                select
                    .query_map([], |row| {
                        Ok(IgnoredAction {
                            case_id: row.get(0)?,
                            entry_id: row.get(1)?,
                            action: row.get(2)?,
                            reason: row.get(3)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?
            };
            tx.execute(
                "UPDATE ignored_actions SET reported = 1 WHERE reported = 0",
                [],
            )?;
            Ok(found)
        })
    }

    // --- downloaded photos -------------------------------------------------------

    /// Whether a case on this phone references the photo.
    pub fn photo_referenced(&self, sha256: &str) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM case_photos WHERE sha256 = ?1)",
            [sha256],
            |row| row.get(0),
        )?)
    }

    /// The local file of a photo this phone still holds (queued, not yet uploaded).
    pub fn queued_photo_file(&self, sha256: &str) -> Result<Option<PathBuf>, StoreError> {
        let file: Option<String> = self
            .conn
            .query_row(
                "SELECT file FROM photo_queue
                 WHERE sha256 = ?1 AND state IN ('waiting_ack', 'ready')",
                [sha256],
                |row| row.get(0),
            )
            .optional()?;
        Ok(file
            .map(|f| self.photo_path(&f))
            .filter(|path| path.is_file()))
    }

    /// A downloaded photo's file, marked used now; `None` when not downloaded (or
    /// its file went missing, whose row is then dropped).
    pub fn cached_photo(
        &mut self,
        sha256: &str,
        variant: &str,
    ) -> Result<Option<PathBuf>, StoreError> {
        let file: Option<String> = self
            .conn
            .query_row(
                "SELECT file FROM photo_cache WHERE sha256 = ?1 AND variant = ?2",
                params![sha256, variant],
                |row| row.get(0),
            )
            .optional()?;
        let Some(file) = file else {
            return Ok(None);
        };
        let path = self.dir.join(PHOTO_CACHE_DIR).join(&file);
        if !path.is_file() {
            self.conn.execute(
                "DELETE FROM photo_cache WHERE sha256 = ?1 AND variant = ?2",
                params![sha256, variant],
            )?;
            return Ok(None);
        }
        self.conn.execute(
            "UPDATE photo_cache SET used_ms = ?3 WHERE sha256 = ?1 AND variant = ?2",
            params![sha256, variant, self.now_ms],
        )?;
        Ok(Some(path))
    }

    /// Keeps a downloaded photo (its file already written durably as `file` in the
    /// cache directory), then evicts the least recently used beyond `max_bytes`.
    /// Nothing is kept when no case references the photo any more (it left while
    /// the download ran).
    pub fn keep_photo(
        &mut self,
        sha256: &str,
        variant: &str,
        file: &str,
        size: u64,
        max_bytes: u64,
    ) -> Result<bool, StoreError> {
        let now = self.now_ms;
        let kept = self.write(|tx| {
            let referenced: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM case_photos WHERE sha256 = ?1)",
                [sha256],
                |row| row.get(0),
            )?;
            if referenced {
                tx.execute(
                    "INSERT OR REPLACE INTO photo_cache (sha256, variant, file, size, used_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![sha256, variant, file, i64_of(size), now],
                )?;
            }
            Ok::<_, StoreError>(referenced)
        })?;
        if !kept {
            let _ = std::fs::remove_file(self.dir.join(PHOTO_CACHE_DIR).join(file));
        }
        self.sweep_photo_cache(Some(max_bytes))?;
        Ok(kept)
    }

    /// Drops downloaded photos no stored case references, and with `max_bytes` the
    /// least recently used beyond it. Rows first, then files (a crash in between
    /// leaves an orphan file, which [`Store::sweep_photo_files`] removes at open).
    pub fn sweep_photo_cache(&mut self, max_bytes: Option<u64>) -> Result<(), StoreError> {
        let files = self.write(|tx| {
            let mut gone: Vec<String> = {
                let mut select = tx.prepare(
                    "SELECT file FROM photo_cache WHERE sha256 NOT IN
                        (SELECT sha256 FROM case_photos)",
                )?;
                select
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?
            };
            tx.execute(
                "DELETE FROM photo_cache WHERE sha256 NOT IN (SELECT sha256 FROM case_photos)",
                [],
            )?;
            if let Some(max) = max_bytes {
                let rows: Vec<(String, String, String, i64)> = {
                    let mut select = tx.prepare(
                        "SELECT sha256, variant, file, size FROM photo_cache
                         ORDER BY used_ms DESC, sha256, variant",
                    )?;
                    select
                        .query_map([], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                        })?
                        .collect::<Result<_, _>>()?
                };
                let mut total: u64 = 0;
                // The most recently used is kept even alone over the bound: it is
                // the one being shown.
                for (index, (sha256, variant, file, size)) in rows.into_iter().enumerate() {
                    total = total.saturating_add(u64_of(size));
                    if total > max && index > 0 {
                        tx.execute(
                            "DELETE FROM photo_cache WHERE sha256 = ?1 AND variant = ?2",
                            params![sha256, variant],
                        )?;
                        gone.push(file);
                    }
                }
            }
            Ok::<_, StoreError>(gone)
        })?;
        for file in files {
            let _ = std::fs::remove_file(self.dir.join(PHOTO_CACHE_DIR).join(file));
        }
        Ok(())
    }

    /// The downloaded photos' total size.
    pub fn photo_cache_bytes(&self) -> Result<u64, StoreError> {
        let total: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(size), 0) FROM photo_cache",
            [],
            |row| row.get(0),
        )?;
        Ok(u64_of(total))
    }

    // --- cache -----------------------------------------------------------------

    /// Stores reference data fetched from the server.
    pub fn put_cache(&mut self, key: &str, body: &[u8], now_ms: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO cache (key, fetched_ms, body) VALUES (?1, ?2, ?3)",
            params![key, now_ms, body],
        )?;
        Ok(())
    }

    /// Cached reference data.
    pub fn cache(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT body FROM cache WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }
}

/// Writes one document whole: its row, its chunks, its summary.
fn write_document(
    tx: &Transaction<'_>,
    id: &str,
    doc: &DeviceDoc,
    now_ms: i64,
    catalog: &Catalog,
) -> Result<(), StoreError> {
    let previous_since: Option<Option<i64>> = tx
        .query_row(
            "SELECT unsent_since FROM documents WHERE id = ?1 AND unsent = 1",
            [id],
            |row| row.get(0),
        )
        .optional()?;
    let unsent_since = match (doc.unsent, previous_since) {
        (false, _) => None,
        (true, Some(Some(since))) => Some(since),
        (true, _) => Some(now_ms),
    };
    let (rejected_code, rejected_details) = match &doc.rejected {
        Some(r) => (
            Some(refusal_name(r.code)),
            Some(serde_json::to_string(&r.details).unwrap_or_else(|_| "[]".into())),
        ),
        None => (None, None),
    };
    tx.execute(
        "INSERT INTO documents (id, kind, server_heads, unsent, unsent_since, rejected_code,
            rejected_details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind,
            server_heads = excluded.server_heads, unsent = excluded.unsent,
            unsent_since = excluded.unsent_since, rejected_code = excluded.rejected_code,
            rejected_details = excluded.rejected_details",
        params![
            id,
            doc.kind.as_str(),
            heads_bytes(&doc.server_heads),
            doc.unsent,
            unsent_since,
            rejected_code,
            rejected_details
        ],
    )?;
    // Only what changed is written: a local edit appends one incremental chunk to
    // the ones stored (the common prefix stays), a compaction or a sync rewrites all.
    let stored: Vec<Vec<u8>> = {
        let mut select =
            tx.prepare_cached("SELECT bytes FROM document_chunks WHERE doc_id = ?1 ORDER BY n")?;
        select
            .query_map([id], |row| row.get(0))?
            .collect::<Result<_, _>>()?
    };
    let keep = stored
        .iter()
        .zip(&doc.chunks)
        .take_while(|(old, new)| old == new)
        .count();
    tx.execute(
        "DELETE FROM document_chunks WHERE doc_id = ?1 AND n >= ?2",
        params![id, keep as i64],
    )?;
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO document_chunks (doc_id, n, bytes) VALUES (?1, ?2, ?3)")?;
        for (n, chunk) in doc.chunks.iter().enumerate().skip(keep) {
            insert.execute(params![id, n as i64, chunk])?;
        }
    }
    if doc.kind == DocKind::Case {
        index_case(tx, id, &doc.chunks, catalog, now_ms)?;
    }
    if !doc.unsent {
        // Everything in the document is on the server, so are the entries naming
        // its photos: their bytes may go now (issue 6's rule: a blob is uploaded
        // only after the entry that references it is acknowledged).
        tx.execute(
            "UPDATE photo_queue SET state = 'ready' WHERE case_id = ?1 AND state = 'waiting_ack'",
            [id],
        )?;
    }
    Ok(())
}

/// Re-derives every stored case's rows (after a catalogue change or a migration).
fn reindex_cases(tx: &Transaction<'_>, catalog: &Catalog) -> Result<(), StoreError> {
    let ids: Vec<String> = {
        let mut select = tx.prepare("SELECT id FROM documents WHERE kind = 'case'")?;
        select
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?
    };
    let now: i64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for id in ids {
        let chunks: Vec<Vec<u8>> = {
            let mut select = tx
                .prepare_cached("SELECT bytes FROM document_chunks WHERE doc_id = ?1 ORDER BY n")?;
            select
                .query_map([&id], |row| row.get(0))?
                .collect::<Result<_, _>>()?
        };
        // A case that does not load keeps its old rows; sync refetches it.
        if let Err(e) = index_case(tx, &id, &chunks, catalog, now) {
            tracing::error!(%id, error = %e, "a stored case does not load");
        }
    }
    Ok(())
}

/// Re-derives a case's rows from its chunks: the summary, the photos it references,
/// a dispatch to this user the app has not been told of, this device's actions the
/// workflow ignored.
fn index_case(
    tx: &Transaction<'_>,
    id: &str,
    chunks: &[Vec<u8>],
    catalog: &Catalog,
    now_ms: i64,
) -> Result<(), StoreError> {
    let doc = load_chunks(chunks).map_err(|e| StoreError::Corrupt(format!("case {id}: {e}")))?;
    let case = CaseDocument::from_automerge(doc);
    let view =
        crate::rules::with_context(catalog, |context: &WorkflowContext<'_>| case.fold(context));
    let record = &view.record;
    tx.execute("DELETE FROM case_photos WHERE case_id = ?1", [id])?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO case_photos (case_id, sha256) VALUES (?1, ?2)",
        )?;
        for photo in &record.photos {
            insert.execute(params![id, photo.hash])?;
        }
    }
    let me: Option<(String, String)> = tx
        .query_row(
            "SELECT user_id, actor_id FROM session WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    if let Some((user, actor)) = &me {
        // A dispatch to this user by someone else (not this device's own), still
        // waiting to be handled: the app must hear of it once, however it arrived.
        let dispatched_to_me = view
            .assignment
            .as_ref()
            .filter(|a| a.assignee.as_deref() == Some(user.as_str()))
            .filter(|_| view.status == Some(wangge_sync_core::case::Status::Dispatched))
            .filter(|_| {
                let last_dispatch = view
                    .entries
                    .iter()
                    .rev()
                    .filter(|e| e.outcome == Outcome::Applied)
                    .filter_map(|e| e.entry.as_ref())
                    .find(|e| matches!(e.action, wangge_sync_core::case::Action::Dispatch { .. }));
                last_dispatch.is_none_or(|e| e.actor.device != *actor)
            });
        match dispatched_to_me {
            Some(assignment) => {
                let key = assignment.at.timestamp_millis().to_string();
                let stored: Option<String> = tx
                    .query_row(
                        "SELECT assignment FROM dispatch_notices WHERE case_id = ?1",
                        [id],
                        |row| row.get(0),
                    )
                    .optional()?;
                match stored.as_deref() {
                    Some(k) if k == key => {}
                    // Heard on the socket before the data came: already told.
                    Some("") => {
                        tx.execute(
                            "UPDATE dispatch_notices SET assignment = ?2 WHERE case_id = ?1",
                            params![id, key],
                        )?;
                    }
                    _ => {
                        tx.execute(
                            "INSERT OR REPLACE INTO dispatch_notices (case_id, assignment, told,
                                at_ms) VALUES (?1, ?2, 0, ?3)",
                            params![id, key, now_ms],
                        )?;
                    }
                }
            }
            None => {
                tx.execute(
                    "DELETE FROM dispatch_notices WHERE case_id = ?1 AND assignment != ''",
                    [id],
                )?;
            }
        }
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO ignored_actions (entry_id, case_id, action, reason)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for folded in &view.entries {
            if let (Some(entry), Outcome::Ignored(reason)) = (&folded.entry, &folded.outcome)
                && entry.actor.device == *actor
            {
                insert.execute(params![
                    entry.id,
                    id,
                    entry.action.as_str(),
                    reason.to_string()
                ])?;
            }
        }
    }
    tx.execute(
        "INSERT OR REPLACE INTO case_index (id, status, category, grid, description, reporter,
            team, assignee, reported_at_ms, due_at_ms, photo_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            id,
            view.status.map(|s| s.as_str()),
            record.category.map(|c| c.to_string()),
            record.grid.map(|g| g.to_string()),
            record.description,
            record.reporter,
            view.assignment.as_ref().map(|a| a.team.to_string()),
            view.assignment.as_ref().and_then(|a| a.assignee.clone()),
            record.created_at.map(|t| t.timestamp_millis()),
            view.current_step()
                .and_then(|s| s.due_at)
                .map(|t| t.timestamp_millis()),
            record.photos.len() as i64
        ],
    )?;
    Ok(())
}

impl DeviceStorage for Store {
    type Error = StoreError;

    fn cursor(&mut self) -> Result<Cursor, StoreError> {
        Ok(self.conn.query_row(
            "SELECT cursor_seq, cursor_serial, cursor_scope FROM sync_state WHERE id = 1",
            [],
            |row| {
                Ok(Cursor {
                    seq: u64_of(row.get(0)?),
                    serial: u64_of(row.get(1)?),
                    scope: u64_of(row.get(2)?),
                })
            },
        )?)
    }

    fn unsent(&mut self) -> Result<Vec<String>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id FROM documents WHERE unsent = 1 AND rejected_code IS NULL
             ORDER BY unsent_since, id",
        )?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn resync_wanted(&mut self) -> Result<Vec<String>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT doc_id FROM resync ORDER BY doc_id")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn document(&mut self, id: &str) -> Result<Option<DeviceDoc>, StoreError> {
        let row: Option<DocumentRow> = self
            .conn
            .query_row(
                "SELECT kind, server_heads, unsent, rejected_code, rejected_details
                 FROM documents WHERE id = ?1",
                [id],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((kind, heads, unsent, code, details)) = row else {
            return Ok(None);
        };
        let kind = DocKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("document {id} has kind {kind:?}")))?;
        let mut statement = self
            .conn
            .prepare_cached("SELECT bytes FROM document_chunks WHERE doc_id = ?1 ORDER BY n")?;
        let chunks = statement
            .query_map([id], |row| row.get(0))?
            .collect::<Result<Vec<Vec<u8>>, _>>()?;
        Ok(Some(DeviceDoc {
            kind,
            chunks,
            server_heads: heads_of(&heads)?,
            unsent,
            rejected: code.map(|code| Rejection {
                code: refusal_code(&code),
                details: details
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or_default(),
            }),
        }))
    }

    fn commit(&mut self, commit: DeviceCommit) -> Result<(), StoreError> {
        self.commit_with(commit, |_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use wangge_sync_core::sync::device::DeviceDocWrite;

    use super::*;

    fn doc(chunks: Vec<Vec<u8>>, unsent: bool) -> DeviceCommit {
        DeviceCommit {
            docs: vec![DeviceDocWrite {
                id: "patrol:w:2026-12-03".into(),
                doc: DeviceDoc {
                    kind: DocKind::PatrolLog,
                    chunks,
                    server_heads: Vec::new(),
                    unsent,
                    rejected: None,
                },
            }],
            ..DeviceCommit::default()
        }
    }

    fn chunk_rows(store: &Store) -> Vec<(i64, Vec<u8>)> {
        let mut statement = store
            .conn()
            .prepare("SELECT n, bytes FROM document_chunks ORDER BY n")
            .expect("prepare");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn an_appended_chunk_keeps_the_stored_prefix_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(dir.path()).expect("open");
        store.set_now(1_000);
        store
            .commit(doc(vec![b"save".to_vec()], true))
            .expect("first");
        store.set_now(2_000);
        store
            .commit(doc(vec![b"save".to_vec(), b"edit".to_vec()], true))
            .expect("append");
        assert_eq!(
            chunk_rows(&store),
            vec![(0, b"save".to_vec()), (1, b"edit".to_vec())]
        );
        // The outbox keeps the time the document first had unsent changes.
        let since: i64 = store
            .conn()
            .query_row("SELECT unsent_since FROM documents", [], |row| row.get(0))
            .expect("since");
        assert_eq!(since, 1_000);
        store
            .commit(doc(vec![b"compacted".to_vec()], false))
            .expect("compact");
        drop(store);
        let mut store = Store::open(dir.path()).expect("reopen");
        let stored = store
            .document("patrol:w:2026-12-03")
            .expect("read")
            .expect("present");
        assert_eq!(stored.chunks, vec![b"compacted".to_vec()]);
        assert!(!stored.unsent);
        assert!(store.unsent().expect("outbox").is_empty());
    }

    #[test]
    fn a_commit_whose_extra_rows_fail_stores_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(dir.path()).expect("open");
        let failed = store.commit_with(doc(vec![b"save".to_vec()], true), |tx| {
            tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        });
        assert!(failed.is_err());
        assert_eq!(store.document("patrol:w:2026-12-03").expect("read"), None);
        assert!(chunk_rows(&store).is_empty());
    }

    /// A document row and a photo it references, as `index_case` writes them.
    fn case_with_photo(store: &Store, case: &str, sha256: &str) {
        store
            .conn()
            .execute(
                "INSERT OR IGNORE INTO documents (id, kind, server_heads, unsent)
                 VALUES (?1, 'case', x'', 0)",
                [case],
            )
            .expect("document");
        store
            .conn()
            .execute(
                "INSERT INTO case_photos (case_id, sha256) VALUES (?1, ?2)",
                [case, sha256],
            )
            .expect("photo");
    }

    fn cached(dir: &Path, store: &mut Store, sha256: &str, size: usize, max: u64) -> bool {
        let file = format!("{sha256}-thumb.jpg");
        std::fs::write(dir.join(PHOTO_CACHE_DIR).join(&file), vec![0u8; size]).expect("file");
        store
            .keep_photo(sha256, "thumb", &file, size as u64, max)
            .expect("keep")
    }

    #[test]
    fn downloaded_photos_stay_within_the_bound_and_go_with_their_case() {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(dir.path()).expect("open");
        for (n, sha) in ["a", "b", "c"].iter().enumerate() {
            case_with_photo(&store, &format!("case-{n}"), sha);
        }
        // 100 bytes each under a 250-byte bound: the least recently used goes.
        for (at, sha) in [(1, "a"), (2, "b")] {
            store.set_now(at);
            assert!(cached(dir.path(), &mut store, sha, 100, 250));
        }
        store.set_now(3);
        assert!(
            store.cached_photo("a", "thumb").expect("read").is_some(),
            "a used again"
        );
        store.set_now(4);
        assert!(cached(dir.path(), &mut store, "c", 100, 250));
        assert!(
            store.cached_photo("b", "thumb").expect("read").is_none(),
            "b evicted"
        );
        assert!(
            !dir.path()
                .join(PHOTO_CACHE_DIR)
                .join("b-thumb.jpg")
                .exists()
        );
        assert_eq!(store.photo_cache_bytes().expect("size"), 200);
        // One photo larger than the whole bound is still kept: it is being shown.
        case_with_photo(&store, "case-3", "d");
        store.set_now(5);
        assert!(cached(dir.path(), &mut store, "d", 1_000, 250));
        assert!(store.cached_photo("d", "thumb").expect("read").is_some());
        // A photo no case references is not kept; a case that leaves takes its own.
        assert!(!cached(dir.path(), &mut store, "nobody", 10, 10_000));
        store
            .commit(DeviceCommit {
                delete: vec!["case-3".into()],
                ..DeviceCommit::default()
            })
            .expect("evict");
        assert!(store.cached_photo("d", "thumb").expect("read").is_none());
        let left: Vec<String> = std::fs::read_dir(dir.path().join(PHOTO_CACHE_DIR))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_version_1_store_is_brought_to_version_2() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let conn = Connection::open(dir.path().join(STORE_FILE)).expect("open");
            conn.execute_batch(SCHEMA).expect("schema 1");
            conn.pragma_update(None, "user_version", 1)
                .expect("version");
        }
        let store = Store::open(dir.path()).expect("migrated");
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        for table in [
            "case_photos",
            "dispatch_notices",
            "ignored_actions",
            "photo_cache",
        ] {
            let count: i64 = store
                .conn()
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                    row.get(0)
                })
                .expect(table);
            assert_eq!(count, 0, "{table}");
        }
    }

    #[test]
    fn a_file_given_as_the_directory_is_not_a_passing_failure() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let error = Store::open(&file).expect_err("refused");
        assert!(matches!(error, StoreError::NotADirectory(_)), "{error}");
        assert!(error.is_permanent());
    }

    #[test]
    fn a_file_that_is_not_a_store_is_reported_as_damaged() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(STORE_FILE), b"not sqlite at all, just text")
            .expect("write");
        let error = Store::open(dir.path()).expect_err("refused");
        assert!(error.is_permanent(), "{error}");
    }
}
