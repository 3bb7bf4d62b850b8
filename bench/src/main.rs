//! `wangge-bench`: load on the real `wangge` server over loopback HTTP (issue 5,
//! "Speed"). `ingest`: simulated phones report and edit cases offline and sync them;
//! `push`: idle push sockets and the latency of `sync_now`; `memory`: the server's
//! memory with a million cases stored. Each starts its own server
//! on a fresh database and kills it when done, failed or interrupted (Ctrl-C); see
//! `bench/README.md`.

mod assessment;
mod http;
mod ingest;
mod memory;
mod mobile;
mod patrol;
mod phone;
mod photos;
mod push;
mod report;
mod server;
mod world;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "wangge-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Phones report and edit cases offline and sync them in rounds (POST /v1/sync):
    /// changes merged and persisted per second, round latency, server CPU per change.
    Ingest(ingest::IngestArgs),
    /// Idle push sockets (GET /v1/push): memory per connection; latency from a sync
    /// to the `sync_now` of every device posted to the community.
    Push(push::PushArgs),
    /// The server's memory with a million cases stored: seeded straight into a fresh
    /// database, then listed, opened, bootstrapped, ingested and escalated over HTTP.
    Memory(memory::MemoryArgs),
    /// Phones upload photos (PATCH /v1/blobs/…, chunked or whole) into the server:
    /// photos per second, server CPU and peak memory per photo, latency; thumbnails
    /// and ranges served.
    Photos(photos::PhotosArgs),
    /// The phone library (mobile-ffi) against the server: bootstrap of N cases,
    /// `sync_now` after a day offline, memory with the cases loaded.
    Phone(mobile::PhoneArgs),
    /// Walk-patrol coverage (见巡率) with a city's month of patrol rows seeded straight
    /// into a fresh database: a district-day and the city's month, through the
    /// server's own queries.
    Patrol(patrol::PatrolArgs),
    /// Assessment (考核) with a city's month of case facts and patrols seeded straight
    /// into a fresh database: the rates and ranking per level, and publishing a month,
    /// through the server's own code.
    Assessment(assessment::AssessmentArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let work = async {
            match cli.command {
                Command::Ingest(args) => ingest::run(args).await,
                Command::Push(args) => push::run(args).await,
                Command::Memory(args) => memory::run(args).await,
                Command::Photos(args) => photos::run(args).await,
                Command::Phone(args) => mobile::run(args).await,
                Command::Patrol(args) => patrol::run(args).await,
                Command::Assessment(args) => assessment::run(args).await,
            }
        };
        // On Ctrl-C the work is dropped, and with it the server (killed) and the
        // temporary database.
        tokio::select! {
            outcome = work => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    // Sockets' reader tasks may still be parked; do not wait for them.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
