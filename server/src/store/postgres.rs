//! The PostgreSQL store (production: several stateless nodes share it).

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};

use super::sync::impl_sync_store;
use super::{Backend, StoreError, impl_store};

/// PostgreSQL behind a pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool<Postgres>,
    /// The fan-out channel: one per schema, so databases sharing a server (tests'
    /// schemas) never hear each other.
    channel: String,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`).
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        PostgresStore::connect_with(options).await
    }

    /// Connects with explicit options (tests use a fresh schema through `search_path`).
    pub async fn connect_with(options: PgConnectOptions) -> Result<PostgresStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let (schema,): (Option<String>,) = sqlx::query_as("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        Ok(PostgresStore {
            pool,
            channel: format!("wangge_push_{}", schema.as_deref().unwrap_or("public")),
        })
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("../migrations/postgres")
    }

    /// PostgreSQL's writers wait on row locks, in order: no turn to take.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }
}

impl_store!(PostgresStore, Postgres, Backend::Postgres);
impl_sync_store!(PostgresStore, Postgres);
super::cases::impl_case_store!(PostgresStore, Postgres);
super::blobs::impl_blob_store!(PostgresStore, Postgres);
super::patrol::impl_patrol_store!(PostgresStore, Postgres);
super::double_reports::impl_double_report_store!(PostgresStore, Postgres);
super::intake::impl_intake_store!(PostgresStore, Postgres);
super::assessment::impl_assessment_store!(PostgresStore, Postgres);
super::open311::impl_open311_store!(PostgresStore, Postgres);

impl super::Fanout for PostgresStore {
    fn publish<'a>(&'a self, message: &'a str) -> super::StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(message)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn subscribe(
        &self,
    ) -> super::StoreFuture<'_, Option<tokio::sync::mpsc::UnboundedReceiver<String>>> {
        Box::pin(async move {
            let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
            listener.listen(&self.channel).await?;
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                loop {
                    match listener.recv().await {
                        Ok(notification) => {
                            if sender.send(notification.payload().to_owned()).is_err() {
                                return; // nobody listens any more
                            }
                        }
                        // The listener reconnects on the next call; what was sent in
                        // between is lost (phones' next sync brings the data).
                        Err(error) => {
                            tracing::warn!(%error, "fan-out listener lost its connection");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                }
            });
            Ok(Some(receiver))
        })
    }
}
