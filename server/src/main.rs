//! `wangge`: the command line of the wangge server (grid tools now; `serve`, `migrate`,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Grid(command) => cmd::grid::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
