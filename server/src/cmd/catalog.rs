//! `wangge catalog export` and `wangge catalog check`: the category catalogue an
//! operator starts from and validates before the server uses it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use wangge_sync_core::catalog::{Catalog, DEFAULT_TOML, Kind};

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Print the built-in catalogue (TOML, with its comments) to start your own from.
    Export,
    /// Validate a catalogue file; prints a summary, or the error naming the bad entry.
    Check {
        /// The catalogue file (TOML, the format `export` prints).
        file: PathBuf,
    },
}

pub fn run(command: CatalogCommand) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Export => {
            print!("{DEFAULT_TOML}");
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let catalog = Catalog::from_toml_str(&text)
                .with_context(|| format!("in catalogue {}", file.display()))?;
            println!(
                "{}: valid; {} teams, {} major classes, {} component (部件) and {} event (事件) categories",
                file.display(),
                catalog.teams().len(),
                catalog.major_classes().len(),
                catalog.categories_of(Kind::Component).count(),
                catalog.categories_of(Kind::Event).count(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
