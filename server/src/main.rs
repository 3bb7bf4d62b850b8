//! `wangge`: the command line of the wangge server (grid and catalogue tools now; `serve`, `migrate`,
//! `user` and `device` arrive with the server issue).

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
