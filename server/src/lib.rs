//! The wangge server: storage, auth and the HTTP API. The `wangge` binary (`main.rs`)
//! is its command line.

pub mod api;
pub mod assessment;
pub mod auth;
pub mod blobs;
pub mod cases;
pub mod client_addr;
pub mod config;
pub mod console;
pub mod doc_cache;
pub mod double_report;
pub mod escalation;
pub mod grids;
pub mod intake;
pub mod listener;
pub mod login_throttle;
pub mod metrics;
pub mod open311;
pub mod patrol;
pub mod photos;
pub mod push;
pub mod store;
pub mod sync;
pub mod writes;
