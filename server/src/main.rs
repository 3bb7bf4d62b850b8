//! `wangge`: the command line of the wangge server: serve, migrate, accounts and
//! devices, signing keys, and the grid and catalogue tools.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the server allocates and frees many small,
/// short-lived blocks on many threads (documents loaded per round), where glibc's
/// arenas fragment and keep memory; measured in docs/BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "wangge",
    version,
    about = "wangge (网格): grid-based city management"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (applies pending migrations first).
    Serve(cmd::database::ServeArgs),
    /// Run a demo server: SQLite, the real urban grids, an account for every role.
    Demo(cmd::database::DemoArgs),
    /// Apply pending database migrations.
    Migrate(cmd::database::Database),
    /// Copy a SQLite database while the server runs, checked (PostgreSQL: pg_dump).
    Backup(cmd::backup::BackupArgs),
    /// Accounts: add, list.
    #[command(subcommand)]
    User(cmd::database::UserCommand),
    /// Registered devices: list, revoke.
    #[command(subcommand)]
    Device(cmd::database::DeviceCommand),
    /// JWT signing keys: rotate.
    #[command(subcommand)]
    Keys(cmd::database::KeysCommand),
    /// Photos: garbage collection, the reference backfill.
    #[command(subcommand)]
    Blobs(cmd::database::BlobsCommand),
    /// Unit grids (万米单元网格): generate them from district boundaries, locate points.
    #[command(subcommand)]
    Grid(cmd::grid::GridCommand),
    /// The category catalogue (部件 components, 事件 events): export the default, check a file.
    #[command(subcommand)]
    Catalog(cmd::catalog::CatalogCommand),
    /// Open311 client apps' API keys: add (shown once), list, revoke.
    #[command(subcommand)]
    Apikey(cmd::apikey::ApikeyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => cmd::database::serve(args),
        Command::Demo(args) => cmd::database::demo(args),
        Command::Migrate(database) => cmd::database::migrate(database),
        Command::Backup(args) => cmd::backup::run(args),
        Command::User(command) => cmd::database::user(command),
        Command::Device(command) => cmd::database::device(command),
        Command::Keys(command) => cmd::database::keys(command),
        Command::Blobs(command) => cmd::database::blobs(command),
        Command::Grid(command) => cmd::grid::run(command),
        Command::Catalog(command) => cmd::catalog::run(command),
        Command::Apikey(command) => cmd::apikey::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
