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
        Ok(PostgresStore { pool })
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("../migrations/postgres")
    }
}

impl_store!(PostgresStore, Postgres, Backend::Postgres);
impl_sync_store!(PostgresStore, Postgres);
super::cases::impl_case_store!(PostgresStore, Postgres);
