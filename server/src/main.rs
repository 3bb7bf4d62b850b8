//! `wangge`: the command line of the wangge server: serve, migrate, accounts and
//! devices, signing keys, and the grid and catalogue tools.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Serve(cmd::accounts::ServeArgs),
    /// Apply pending database migrations.
    Migrate(cmd::accounts::Database),
    /// Accounts: add, list.
    #[command(subcommand)]
    User(cmd::accounts::UserCommand),
    /// Registered devices: list, revoke.
    #[command(subcommand)]
    Device(cmd::accounts::DeviceCommand),
    /// JWT signing keys: rotate.
    #[command(subcommand)]
    Keys(cmd::accounts::KeysCommand),
    /// Unit grids (万米单元网格): generate them from district boundaries, locate points.
    #[command(subcommand)]
    Grid(cmd::grid::GridCommand),
    /// The category catalogue (部件 components, 事件 events): export the default, check a file.
    #[command(subcommand)]
    Catalog(cmd::catalog::CatalogCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => cmd::accounts::serve(args),
        Command::Migrate(database) => cmd::accounts::migrate(database),
        Command::User(command) => cmd::accounts::user(command),
        Command::Device(command) => cmd::accounts::device(command),
        Command::Keys(command) => cmd::accounts::keys(command),
        Command::Grid(command) => cmd::grid::run(command),
        Command::Catalog(command) => cmd::catalog::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
