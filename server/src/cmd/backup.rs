//! `wangge backup`: a consistent copy of a SQLite database while the server runs
//! (SQLite's `VACUUM INTO`: one read transaction, nothing locked for writers beyond
//! what WAL already allows), checked with `PRAGMA integrity_check` before it is
//! reported done. PostgreSQL has its own tools (`docs/operations.md`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr as _;

use anyhow::{Context as _, bail};
use clap::Args;
use sqlx::sqlite::SqliteConnectOptions;

use super::database::Database;

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub database: Database,
    /// The copy to write; it must not exist (a backup never overwrites one).
    #[arg(long)]
    pub to: PathBuf,
}

pub fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let url = &args.database.url;
    if !url.starts_with("sqlite:") {
        bail!(
            "wangge backup copies SQLite databases; back up PostgreSQL with pg_dump \
             (see docs/operations.md)"
        );
    }
    if args.to.exists() {
        bail!(
            "{} exists: a backup never overwrites a file",
            args.to.display()
        );
    }
    if let Some(dir) = args.to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let target = args
        .to
        .to_str()
        .context("the backup's path is not UTF-8")?
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let source = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("the database URL {url:?}"))?
            .create_if_missing(false);
        let pool = sqlx::SqlitePool::connect_with(source)
            .await
            .with_context(|| format!("opening {url}"))?;
        sqlx::query("VACUUM INTO $1")
            .bind(&target)
            .execute(&pool)
            .await
            .with_context(|| format!("copying into {target}"))?;
        pool.close().await;
        let copy = sqlx::SqlitePool::connect_with(
            SqliteConnectOptions::new()
                .filename(&target)
                .read_only(true),
        )
        .await
        .with_context(|| format!("opening the copy {target}"))?;
        let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&copy)
            .await
            .context("checking the copy")?;
        copy.close().await;
        if verdict != "ok" {
            bail!("the copy {target} failed its integrity check: {verdict}");
        }
        let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
        println!("backed up {url} to {target} ({bytes} bytes), integrity ok");
        Ok(ExitCode::SUCCESS)
    })
}
