//! Subcommands of the `wangge` binary, one module per area.

pub mod apikey;
pub mod backup;
pub mod catalog;
pub mod database;
pub mod demo_week;
pub mod grid;
