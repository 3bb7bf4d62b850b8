//! What the storage-backed suites share: a store on every backend, fresh.

use std::sync::Arc;

use sqlx::Executor as _;
use sqlx::postgres::PgConnectOptions;
use wangge_server::store::{PostgresStore, Store, connect};

/// A store on a fresh database, and what to drop afterwards.
pub struct Fresh {
    pub store: Arc<dyn Store>,
    /// The same database for SQL of a test's own (connects when first used).
    #[allow(dead_code)]
    pub raw: Raw,
    pub _dir: Option<tempfile::TempDir>,
}

/// A pool on a [`Fresh`] store's database.
#[allow(dead_code)]
pub enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

#[allow(dead_code)]
impl Raw {
    /// Runs a script of statements (a migration file).
    pub async fn script(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Sqlite(pool) => pool.execute(sqlx::raw_sql(sql)).await.map(|_| ()),
            Raw::Postgres(pool) => pool.execute(sqlx::raw_sql(sql)).await.map(|_| ()),
        }
        .expect("script");
    }

    /// Rows of a query whose columns are all text (or NULL).
    pub async fn texts(&self, query: &'static str) -> Vec<Vec<Option<String>>> {
        use sqlx::Row as _;
        macro_rules! rows {
            ($pool:expr) => {
                sqlx::query(query)
                    .fetch_all($pool)
                    .await
                    .expect("query")
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| row.try_get::<Option<String>, _>(i).expect("text"))
                            .collect()
                    })
                    .collect()
            };
        }
        match self {
            Raw::Sqlite(pool) => rows!(pool),
            Raw::Postgres(pool) => rows!(pool),
        }
    }
}

pub async fn backends() -> Vec<Fresh> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let sqlite = connect(&url).await.expect("open sqlite");
    sqlite.migrate().await.expect("migrate sqlite");
    let mut stores = vec![Fresh {
        store: sqlite,
        raw: Raw::Sqlite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_lazy(&url)
                .expect("sqlite URL"),
        ),
        _dir: Some(dir),
    }];
    match std::env::var("WANGGE_TEST_POSTGRES_URL") {
        Ok(url) => {
            let schema = format!("test_{}", uuid::Uuid::now_v7().simple());
            let admin = sqlx::PgPool::connect(&url)
                .await
                .expect("connect to PostgreSQL");
            let create = format!("CREATE SCHEMA {schema}");
            admin
                // The name is ours (a UUID), not input.
                .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create)))
                .await
                .expect("create schema");
            let options: PgConnectOptions = url.parse().expect("postgres URL");
            let options = options.options([("search_path", schema.as_str())]);
            let raw = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(options.clone());
            let store = PostgresStore::connect_with(options)
                .await
                .expect("open postgres");
            store.migrate().await.expect("migrate postgres");
            stores.push(Fresh {
                store: Arc::new(store),
                raw: Raw::Postgres(raw),
                _dir: None,
            });
        }
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but WANGGE_TEST_POSTGRES_URL is not set: the PostgreSQL tests must run"
            );
        }
        Err(_) => skipped(
            "the PostgreSQL half of a storage test",
            "WANGGE_TEST_POSTGRES_URL is not set",
        ),
    }
    stores
}

/// The case rules without grids (nothing is routed), the built-in ownership.
#[allow(dead_code)]
pub fn case_rules() -> std::sync::Arc<wangge_server::cases::CaseRules> {
    use wangge_sync_core::catalog::Catalog;
    use wangge_sync_core::ownership::Ownership;
    std::sync::Arc::new(wangge_server::cases::CaseRules {
        catalog: wangge_sync_core::catalog::Catalog::builtin(),
        calendar: wangge_sync_core::calendar::WorkCalendar::standard(),
        grids: None,
        ownership: std::sync::Arc::new(
            Ownership::builtin(Catalog::builtin()).expect("built-in ownership"),
        ),
    })
}

/// An actor of user `u{n}` with device `n` (hex).
#[allow(dead_code)]
pub fn actor(
    n: u32,
    role: wangge_sync_core::role::Role,
    team: Option<&str>,
    scope: &str,
) -> wangge_sync_core::role::Actor {
    wangge_sync_core::role::Actor {
        user: format!("u{n}"),
        role,
        team: team.map(|t| wangge_sync_core::catalog::TeamId::new(t).expect("team")),
        scope: scope.parse().expect("scope"),
        device: format!("{n:032x}"),
    }
}

/// Monday 2026-11-23 09:00 Beijing time plus `minutes`.
#[allow(dead_code)]
pub fn at(minutes: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 23, 1, 0, 0)
        .single()
        .expect("time")
        + chrono::TimeDelta::minutes(minutes)
}

/// A report of exposed garbage (E0102) in unit grid 410102001001001.
#[allow(dead_code)]
pub fn new_case(id: &str) -> wangge_sync_core::case::NewCase {
    use wangge_sync_core::case::{NewCase, Position, Source};
    NewCase {
        id: id.into(),
        category: "E0102".parse().expect("category"),
        location: Position {
            lon: 113.66,
            lat: 34.75,
            accuracy_m: Some(8.0),
        },
        grid: Some("410102001001001".parse().expect("grid")),
        address: "金水路与花园路交叉口".into(),
        description: format!("路边暴露垃圾 {id}"),
        source: Source::Patrol,
        source_ref: None,
        caller: None,
    }
}

/// Stores the changes of `case` made since `since` (empty: all of them) as the server
/// stores any write, materialized with the built-in rules: what a sync round does,
/// without a phone.
#[allow(dead_code)]
pub async fn store_case(
    store: &Arc<dyn Store>,
    id: &str,
    case: &wangge_sync_core::case::CaseDocument,
    since: &[automerge::ChangeHash],
) {
    use wangge_sync_core::sync::server::DocWrite;
    use wangge_sync_core::sync::{DocKind, DocMeta};
    let rules = case_rules();
    let write = DocWrite {
        id: id.into(),
        kind: DocKind::Case,
        changes: case
            .automerge()
            .get_changes(since)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect(),
        meta: DocMeta::of_case(&case.fold(&rules.context())),
        heads: case.automerge().get_heads(),
        merged: None,
    };
    let derive = wangge_server::cases::Materializer {
        rules: &rules,
        now: 0,
        clock_skew_ms: None,
    };
    store
        .document_write(&write, None, &derive, 0)
        .await
        .expect("stored");
}

/// Says that a part of a test did not run, on standard error and in
/// `<target>/test-skips.log` for `.ci/run`'s closing line (as `wangge_tests::skipped`).
pub fn skipped(what: &str, why: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    eprintln!("skipped: {test}: {what} ({why})");
    let log = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("test-skips.log")));
    if let Some(log) = log
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = writeln!(file, "{test}: {what} ({why})");
    }
}
