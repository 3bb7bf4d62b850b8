//! Storage: one [`Store`] trait, implemented for SQLite (embedded, the default) and
//! PostgreSQL (production, several nodes). Only this module writes SQL.
//!
//! Both implementations are generated from the same SQL text by `impl_store!`:
//! the statements use only what both dialects share (`$n` parameters, `RETURNING`,
//! `BIGINT` milliseconds for time), so the two cannot drift apart. What differs —
//! connection options and the migration folders — is in `sqlite.rs` and `postgres.rs`.

pub mod assessment;
pub mod blobs;
pub mod cases;
pub mod double_reports;
pub mod intake;
pub mod open311;
pub mod patrol;
mod postgres;
mod sqlite;
pub mod sync;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use wangge_sync_core::catalog::TeamId;
use wangge_sync_core::grid::GridCode;
use wangge_sync_core::role::{GridScope, Role};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A boxed future, so that the trait can be used as `Arc<dyn Store>`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with this key exists already.
    #[error("{what} {id:?} already exists")]
    Conflict {
        /// What kind of row.
        what: &'static str,
        /// Its key.
        id: String,
    },
    /// The URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL {0:?}: use sqlite://FILE or postgres://…")]
    UnsupportedUrl(String),
    /// A stored value does not parse (a role, a scope): the database was edited by hand.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Messages between the nodes that share a database: PostgreSQL `NOTIFY` / `LISTEN`
/// on a channel of the schema; nothing on SQLite, which one node serves.
pub trait Fanout: Send + Sync {
    /// Sends `message` to every node listening (this one too).
    fn publish<'a>(&'a self, message: &'a str) -> StoreFuture<'a, ()>;
    /// The messages every node publishes, as they arrive; `None` without fan-out.
    fn subscribe(&self) -> StoreFuture<'_, Option<tokio::sync::mpsc::UnboundedReceiver<String>>>;
}

/// Which database a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login id.
    pub id: String,
    /// Name to show.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Team, for the roles that handle cases.
    pub team: Option<TeamId>,
    /// Grids the user works in.
    pub scope: GridScope,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// A disabled user cannot log in or refresh.
    pub disabled: bool,
}

impl User {
    /// Who their entries claim to be: this posting, written by the Automerge actor
    /// `device` (the token's device).
    pub fn actor(&self, device: &str) -> wangge_sync_core::role::Actor {
        wangge_sync_core::role::Actor {
            user: self.id.clone(),
            role: self.role,
            team: self.team.clone(),
            scope: self.scope.clone(),
            device: device.to_owned(),
        }
    }

    /// What sync and the API let them see: this posting.
    pub fn sync_scope(&self) -> wangge_sync_core::sync::UserScope {
        wangge_sync_core::sync::UserScope {
            user: self.id.clone(),
            role: self.role,
            grids: self.scope.clone(),
        }
    }
}

/// A registered phone (or browser): it writes with its own Automerge actor id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device id (UUID v7).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Name the app gave (model, label).
    pub name: String,
    /// Automerge actor id, hex (16 random bytes).
    pub actor_id: String,
    /// Registered at, ms.
    pub created_at: i64,
    /// Last login, refresh or request, ms.
    pub last_seen_at: Option<i64>,
    /// Revoked at, ms: a revoked device cannot refresh, sync or stay connected.
    pub revoked_at: Option<i64>,
}

/// A refresh token as stored (hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The chain of rotations it belongs to.
    pub family_id: String,
    /// The device it is bound to.
    pub device_id: String,
    /// The user.
    pub user_id: String,
    /// Issued at, ms.
    pub issued_at: i64,
    /// Expires at, ms.
    pub expires_at: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// It was valid and unused: it is now used, and the new token replaces it.
    Rotated {
        /// The device it is bound to.
        device_id: String,
        /// The user.
        user_id: String,
    },
    /// It had been used already: someone replays it. The whole family is revoked.
    Reused {
        /// The device it was bound to.
        device_id: String,
    },
    /// Unknown, expired or revoked.
    Invalid,
}

/// A JWT signing key (HS256). The newest unretired key signs; retired keys still
/// verify until the tokens they signed have expired, so rotation logs nobody out.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Key id, in the JWT header.
    pub kid: String,
    /// The secret (32 random bytes).
    pub secret: Vec<u8>,
    /// Created at, ms.
    pub created_at: i64,
    /// Retired at, ms.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("secret", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// A unit grid as stored: its code and its GeoJSON Feature text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrid {
    /// 15-digit unit grid code.
    pub code: String,
    /// The GeoJSON Feature.
    pub feature: String,
}

/// Every storage operation the server needs.
pub trait Store:
    sync::SyncStore
    + cases::CaseStore
    + blobs::BlobStore
    + patrol::PatrolStore
    + double_reports::DoubleReportStore
    + intake::IntakeStore
    + open311::Open311Store
    + assessment::AssessmentStore
    + Fanout
    + Send
    + Sync
    + 'static
{
    /// Which database.
    fn backend(&self) -> Backend;
    /// Applies the pending migrations.
    fn migrate(&self) -> StoreFuture<'_, ()>;
    /// Creates a user; `Conflict` if the id is taken.
    fn create_user<'a>(&'a self, user: &'a User) -> StoreFuture<'a, ()>;
    /// A user by id.
    fn user<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<User>>;
    /// Every user, by id.
    fn users(&self) -> StoreFuture<'_, Vec<User>>;
    /// The users whose scope covers `grid` (one of its prefixes, or the whole city),
    /// by id: whom routing may name for a case there, without reading every account.
    fn users_covering<'a>(&'a self, grid: &'a GridCode) -> StoreFuture<'a, Vec<User>>;
    /// Changes a user's posting (role, team, grids); false if there is no such user.
    fn set_posting<'a>(
        &'a self,
        user_id: &'a str,
        role: Role,
        team: Option<&'a TeamId>,
        scope: &'a GridScope,
    ) -> StoreFuture<'a, bool>;
    /// Registers a device.
    fn create_device<'a>(&'a self, device: &'a Device) -> StoreFuture<'a, ()>;
    /// Registers a device only while its user has fewer than `max_active` devices
    /// not revoked, as one step (the user's row locked first, so concurrent logins
    /// cannot both pass the count); false, and nothing stored, at the maximum.
    fn create_device_within<'a>(
        &'a self,
        device: &'a Device,
        max_active: i64,
    ) -> StoreFuture<'a, bool>;
    /// A device by id.
    fn device<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Device>>;
    /// The devices of a user, or all, by id.
    fn devices<'a>(&'a self, user_id: Option<&'a str>) -> StoreFuture<'a, Vec<Device>>;
    /// Notes that a device was seen.
    fn touch_device<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, ()>;
    /// Revokes a device and all its refresh tokens; false if there is no such device.
    fn revoke_device<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, bool>;
    /// Stores a new refresh token (a new family, at login).
    fn insert_refresh_token<'a>(&'a self, token: &'a RefreshToken) -> StoreFuture<'a, ()>;
    /// Uses the token whose hash is `presented`: if valid, marks it used and stores
    /// `next_hash` (expiring at `next_expires_at`) in its family, in one transaction.
    fn rotate_refresh_token<'a>(
        &'a self,
        presented: &'a str,
        next_hash: &'a str,
        next_expires_at: i64,
        now: i64,
    ) -> StoreFuture<'a, RefreshOutcome>;
    /// Every signing key, newest first.
    fn signing_keys(&self) -> StoreFuture<'_, Vec<SigningKey>>;
    /// Adds a signing key and retires the others (at `key.created_at`).
    fn add_signing_key<'a>(&'a self, key: &'a SigningKey) -> StoreFuture<'a, ()>;
    /// Replaces every unit grid with `grids`, in one transaction.
    fn replace_grids<'a>(&'a self, grids: &'a [StoredGrid]) -> StoreFuture<'a, ()>;
    /// Up to `limit` unit grids with codes after `after` (all when `None`), by code: a
    /// page, so that a city's 760k grids never sit in memory as text at once.
    fn grids_page<'a>(
        &'a self,
        after: Option<&'a str>,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredGrid>>;
    /// How many unit grids there are.
    fn grid_count(&self) -> StoreFuture<'_, u64>;
    /// Appends to the audit log.
    fn audit<'a>(
        &'a self,
        at: i64,
        actor: &'a str,
        action: &'a str,
        detail: &'a str,
    ) -> StoreFuture<'a, ()>;
}

/// Opens the database at `url` (`sqlite://FILE`, created if missing, or
/// `postgres://…`), without migrating.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// A `users` row in column order.
pub(crate) type UserRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    bool,
);

fn parse_user(row: UserRow) -> Result<User, StoreError> {
    let (id, display_name, role, team, scope, password_hash, created_at, disabled) = row;
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("user {id:?}: {e}"));
    Ok(User {
        role: role.parse().map_err(|e| corrupt(&e))?,
        team: team
            .map(|t| TeamId::new(t).map_err(|e| corrupt(&e)))
            .transpose()?,
        scope: scope.parse().map_err(|e| corrupt(&e))?,
        id,
        display_name,
        password_hash,
        created_at,
        disabled,
    })
}

/// An insert's result, with a unique-key violation as [`StoreError::Conflict`].
fn inserted<T>(
    result: Result<T, sqlx::Error>,
    what: &'static str,
    id: &str,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict {
            what,
            id: id.to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// A `devices` row in column order.
pub(crate) type DeviceRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

fn device_from_row(row: DeviceRow) -> Device {
    let (id, user_id, name, actor_id, created_at, last_seen_at, revoked_at) = row;
    Device {
        id,
        user_id,
        name,
        actor_id,
        created_at,
        last_seen_at,
        revoked_at,
    }
}

/// Shared by login (a new family) and rotation (the next token of a family).
const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (token_hash, family_id, device_id, user_id, issued_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Implements [`Store`] for `$store` (a struct with a `pool: sqlx::Pool<$db>` field and
/// a `migrator()` function) from one set of SQL statements.
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:expr) => {
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::store::Backend {
                $backend
            }

            fn migrate(&self) -> $crate::store::StoreFuture<'_, ()> {
                Box::pin(async move {
                    Self::migrator().run(&self.pool).await?;
                    Ok(())
                })
            }

            fn create_user<'a>(
                &'a self,
                user: &'a $crate::store::User,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let result = sqlx::query(
                        "INSERT INTO users (id, display_name, role, team, scope, password_hash, created_at, disabled)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&user.id)
                    .bind(&user.display_name)
                    .bind(user.role.as_str())
                    .bind(user.team.as_ref().map(|t| t.as_str()))
                    .bind(user.scope.to_string())
                    .bind(&user.password_hash)
                    .bind(user.created_at)
                    .bind(user.disabled)
                    .execute(&self.pool)
                    .await;
                    $crate::store::inserted(result, "user", &user.id)
                })
            }

            fn user<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::User>> {
                Box::pin(async move {
                    let row: Option<$crate::store::UserRow> =
                        sqlx::query_as(
                            "SELECT id, display_name, role, team, scope, password_hash, created_at, disabled
                             FROM users WHERE id = $1",
                        )
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map($crate::store::parse_user)
                        .transpose()
                })
            }

            fn users(&self) -> $crate::store::StoreFuture<'_, Vec<$crate::store::User>> {
                Box::pin(async move {
                    let rows: Vec<$crate::store::UserRow> =
                        sqlx::query_as(
                            "SELECT id, display_name, role, team, scope, password_hash, created_at, disabled
                             FROM users ORDER BY id",
                        )
                        .fetch_all(&self.pool)
                        .await?;
                    rows.into_iter()
                        .map($crate::store::parse_user)
                        .collect()
                })
            }

            fn users_covering<'a>(
                &'a self,
                grid: &'a wangge_sync_core::grid::GridCode,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::User>> {
                Box::pin(async move {
                    // `scope` is GridScope's text: prefixes joined by commas, `*` for
                    // the whole city. A scope covers the grid when it lists one of the
                    // code's prefixes at a level boundary.
                    let code = grid.to_string();
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id, display_name, role, team, scope, password_hash, created_at, disabled
                         FROM users WHERE (',' || scope || ',') LIKE '%,*,%'",
                    );
                    for len in [2, 4, 6, 9, 12, 15] {
                        if let Some(prefix) = code.get(..len) {
                            q.push(" OR (',' || scope || ',') LIKE ")
                                .push_bind(format!("%,{prefix},%"));
                        }
                    }
                    q.push(" ORDER BY id");
                    let rows: Vec<$crate::store::UserRow> =
                        q.build_query_as().fetch_all(&self.pool).await?;
                    rows.into_iter()
                        .map($crate::store::parse_user)
                        .collect()
                })
            }

            fn set_posting<'a>(
                &'a self,
                user_id: &'a str,
                role: wangge_sync_core::role::Role,
                team: Option<&'a wangge_sync_core::catalog::TeamId>,
                scope: &'a wangge_sync_core::role::GridScope,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query("UPDATE users SET role = $1, team = $2, scope = $3 WHERE id = $4")
                        .bind(role.as_str())
                        .bind(team.map(|t| t.as_str()))
                        .bind(scope.to_string())
                        .bind(user_id)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                })
            }

            fn create_device<'a>(
                &'a self,
                device: &'a $crate::store::Device,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    $crate::store::Store::create_device_within(self, device, i64::MAX)
                        .await
                        .map(|_| ())
                })
            }

            fn create_device_within<'a>(
                &'a self,
                device: &'a $crate::store::Device,
                max_active: i64,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    // Locks the user's row (PostgreSQL) or takes the write lock
                    // (SQLite) before counting.
                    sqlx::query("UPDATE users SET role = role WHERE id = $1")
                        .bind(&device.user_id)
                        .execute(&mut *tx)
                        .await?;
                    let (active,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM devices WHERE user_id = $1 AND revoked_at IS NULL",
                    )
                    .bind(&device.user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if active >= max_active {
                        return Ok(false);
                    }
                    let result = sqlx::query(
                        "INSERT INTO devices (id, user_id, name, actor_id, created_at, last_seen_at, revoked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&device.id)
                    .bind(&device.user_id)
                    .bind(&device.name)
                    .bind(&device.actor_id)
                    .bind(device.created_at)
                    .bind(device.last_seen_at)
                    .bind(device.revoked_at)
                    .execute(&mut *tx)
                    .await;
                    $crate::store::inserted(result, "device", &device.id)?;
                    tx.commit().await?;
                    Ok(true)
                })
            }

            fn device<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::Device>> {
                Box::pin(async move {
                    let row: Option<$crate::store::DeviceRow> =
                        sqlx::query_as(
                            "SELECT id, user_id, name, actor_id, created_at, last_seen_at, revoked_at
                             FROM devices WHERE id = $1",
                        )
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(row.map($crate::store::device_from_row))
                })
            }

            fn devices<'a>(
                &'a self,
                user_id: Option<&'a str>,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::Device>> {
                Box::pin(async move {
                    let rows: Vec<$crate::store::DeviceRow> =
                        sqlx::query_as(
                            "SELECT id, user_id, name, actor_id, created_at, last_seen_at, revoked_at
                             FROM devices WHERE $1 IS NULL OR user_id = $1 ORDER BY id",
                        )
                        .bind(user_id)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows.into_iter().map($crate::store::device_from_row).collect())
                })
            }

            fn touch_device<'a>(&'a self, id: &'a str, at: i64) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
                        .bind(at)
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }

            fn revoke_device<'a>(&'a self, id: &'a str, at: i64) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        "UPDATE devices SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
                    )
                    .bind(at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE device_id = $2",
                    )
                    .bind(at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() > 0)
                })
            }

            fn insert_refresh_token<'a>(
                &'a self,
                token: &'a $crate::store::RefreshToken,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query($crate::store::INSERT_REFRESH_TOKEN)
                    .bind(&token.token_hash)
                    .bind(&token.family_id)
                    .bind(&token.device_id)
                    .bind(&token.user_id)
                    .bind(token.issued_at)
                    .bind(token.expires_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                })
            }

            fn rotate_refresh_token<'a>(
                &'a self,
                presented: &'a str,
                next_hash: &'a str,
                next_expires_at: i64,
                now: i64,
            ) -> $crate::store::StoreFuture<'a, $crate::store::RefreshOutcome> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    // Marking it used is the claim: of two concurrent presentations,
                    // exactly one updates the row.
                    let claimed: Option<(String, String, String)> = sqlx::query_as(
                        "UPDATE refresh_tokens SET used_at = $1
                         WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1
                         RETURNING family_id, device_id, user_id",
                    )
                    .bind(now)
                    .bind(presented)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((family_id, device_id, user_id)) = claimed {
                        sqlx::query($crate::store::INSERT_REFRESH_TOKEN)
                        .bind(next_hash)
                        .bind(&family_id)
                        .bind(&device_id)
                        .bind(&user_id)
                        .bind(now)
                        .bind(next_expires_at)
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        return Ok($crate::store::RefreshOutcome::Rotated { device_id, user_id });
                    }
                    let used: Option<(String, String)> = sqlx::query_as(
                        "SELECT family_id, device_id FROM refresh_tokens
                         WHERE token_hash = $1 AND used_at IS NOT NULL",
                    )
                    .bind(presented)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let outcome = match used {
                        Some((family_id, device_id)) => {
                            sqlx::query(
                                "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE family_id = $2",
                            )
                            .bind(now)
                            .bind(&family_id)
                            .execute(&mut *tx)
                            .await?;
                            $crate::store::RefreshOutcome::Reused { device_id }
                        }
                        None => $crate::store::RefreshOutcome::Invalid,
                    };
                    tx.commit().await?;
                    Ok(outcome)
                })
            }

            fn signing_keys(&self) -> $crate::store::StoreFuture<'_, Vec<$crate::store::SigningKey>> {
                Box::pin(async move {
                    let rows: Vec<(String, Vec<u8>, i64, Option<i64>)> = sqlx::query_as(
                        "SELECT kid, secret, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, kid DESC",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(kid, secret, created_at, retired_at)| $crate::store::SigningKey {
                            kid,
                            secret,
                            created_at,
                            retired_at,
                        })
                        .collect())
                })
            }

            fn add_signing_key<'a>(
                &'a self,
                key: &'a $crate::store::SigningKey,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
                        .bind(key.created_at)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO signing_keys (kid, secret, created_at, retired_at) VALUES ($1, $2, $3, NULL)",
                    )
                    .bind(&key.kid)
                    .bind(&key.secret)
                    .bind(key.created_at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn replace_grids<'a>(
                &'a self,
                grids: &'a [$crate::store::StoredGrid],
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query("DELETE FROM grids").execute(&mut *tx).await?;
                    // Multi-row inserts: 110k grids in a few hundred statements.
                    for chunk in grids.chunks(1000) {
                        let mut insert =
                            sqlx::QueryBuilder::<$db>::new("INSERT INTO grids (code, feature) ");
                        insert.push_values(chunk, |mut row, grid| {
                            row.push_bind(&grid.code).push_bind(&grid.feature);
                        });
                        insert.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn grids_page<'a>(
                &'a self,
                after: Option<&'a str>,
                limit: u32,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::StoredGrid>> {
                Box::pin(async move {
                    let rows: Vec<(String, String)> = sqlx::query_as(
                        "SELECT code, feature FROM grids WHERE code > $1 ORDER BY code LIMIT $2",
                    )
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(code, feature)| $crate::store::StoredGrid { code, feature })
                        .collect())
                })
            }

            fn grid_count(&self) -> $crate::store::StoreFuture<'_, u64> {
                Box::pin(async move {
                    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM grids")
                        .fetch_one(&self.pool)
                        .await?;
                    Ok(u64::try_from(count).unwrap_or(0))
                })
            }

            fn audit<'a>(
                &'a self,
                at: i64,
                actor: &'a str,
                action: &'a str,
                detail: &'a str,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
                        .bind(at)
                        .bind(actor)
                        .bind(action)
                        .bind(detail)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }
        }
    };
}

pub(crate) use impl_store;
