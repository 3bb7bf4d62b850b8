//! Subcommands of the `wangge` binary, one module per area.

pub mod accounts;
pub mod catalog;
pub mod grid;
