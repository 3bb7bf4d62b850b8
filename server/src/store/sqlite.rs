//! The embedded SQLite store (the default: one node serves a district).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

use super::sync::impl_sync_store;
use super::{Backend, StoreError, impl_store};

/// SQLite behind a small pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: Pool<Sqlite>,
    /// Sync writes take turns here: SQLite has one writer, and a writer that finds the
    /// database locked polls in its busy handler (sleeping, waking, retrying) instead
    /// of waiting in line; a queue hands the lock over at once.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (and creates, if missing) the database file of `url` (`sqlite://FILE`).
    pub async fn connect(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // WAL: readers never block the writer, and a commit is one append.
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit survives power loss, not only a crash of the process;
            // the server acknowledges only what is durable.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Writers queue instead of failing while another writes.
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            pool,
            writer: std::sync::Arc::default(),
        })
    }

    /// Waits for this node's turn to write (see `writer`).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.writer.lock().await)
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("../migrations/sqlite")
    }
}

impl_store!(SqliteStore, Sqlite, Backend::Sqlite);
impl_sync_store!(SqliteStore, Sqlite);
super::cases::impl_case_store!(SqliteStore, Sqlite);
super::blobs::impl_blob_store!(SqliteStore, Sqlite);
super::patrol::impl_patrol_store!(SqliteStore, Sqlite);
super::double_reports::impl_double_report_store!(SqliteStore, Sqlite);
super::intake::impl_intake_store!(SqliteStore, Sqlite);
super::assessment::impl_assessment_store!(SqliteStore, Sqlite);
super::open311::impl_open311_store!(SqliteStore, Sqlite);

impl super::Fanout for SqliteStore {
    fn publish<'a>(&'a self, _message: &'a str) -> super::StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn subscribe(
        &self,
    ) -> super::StoreFuture<'_, Option<tokio::sync::mpsc::UnboundedReceiver<String>>> {
        Box::pin(async { Ok(None) })
    }
}
