//! `wangge apikey add|list|revoke`: the Open311 client apps' keys. A key is shown
//! once, when it is added; only its SHA-256 is stored (migration 0015 says why that
//! is enough for a random key).

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use wangge_server::api::now_ms;
use wangge_server::open311;
use wangge_server::store::open311::ApiKey;

use super::database::{Database, open, printable, runtime};

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Add a key for a client app; the key is printed once, on standard output.
    Add {
        #[command(flatten)]
        database: Database,
        /// Who the key is for (the app, the portal, its maintainer).
        #[arg(long)]
        name: String,
        /// POST requests per minute this key may make (per server node); unlimited
        /// if omitted.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        rate_per_minute: Option<u32>,
    },
    /// List the keys (never the keys themselves): id, name, rate, created, state.
    List {
        #[command(flatten)]
        database: Database,
    },
    /// Revoke a key: its next request is refused (403).
    Revoke {
        #[command(flatten)]
        database: Database,
        /// The key's id (from `wangge apikey list`).
        #[arg(long)]
        id: String,
    },
}

/// Runs an `apikey` subcommand.
pub fn run(command: ApikeyCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match command {
            ApikeyCommand::Add {
                database,
                name,
                rate_per_minute,
            } => {
                let name = name.trim().to_owned();
                if name.is_empty()
                    || name.chars().count() > 200
                    || name.chars().any(char::is_control)
                {
                    bail!("--name: 1 to 200 characters, no control characters");
                }
                let store = open(&database.url).await?;
                let secret = open311::new_api_key();
                let key = ApiKey {
                    id: uuid::Uuid::now_v7().to_string(),
                    name,
                    key_hash: open311::key_hash(&secret),
                    rate_per_minute: rate_per_minute.map(|r| i32::try_from(r).unwrap_or(i32::MAX)),
                    created_at: now_ms(),
                    revoked_at: None,
                };
                store.api_key_add(&key).await?;
                store
                    .audit(
                        now_ms(),
                        "admin",
                        "apikey.add",
                        &format!("{} {}", key.id, key.name),
                    )
                    .await?;
                eprintln!(
                    "api key {} for {:?} added; it is shown once, here:",
                    key.id, key.name
                );
                println!("{secret}");
                Ok(ExitCode::SUCCESS)
            }
            ApikeyCommand::List { database } => {
                let store = open(&database.url).await?;
                for key in store.api_keys().await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        key.id,
                        printable(&key.name),
                        key.rate_per_minute
                            .map_or_else(|| "unlimited".to_owned(), |r| format!("{r}/min")),
                        open311::w3c(key.created_at),
                        if key.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            ApikeyCommand::Revoke { database, id } => {
                let store = open(&database.url).await?;
                if !store.api_key_revoke(&id, now_ms()).await? {
                    bail!("no api key {id:?}");
                }
                store.audit(now_ms(), "admin", "apikey.revoke", &id).await?;
                println!("revoked api key {id}");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
