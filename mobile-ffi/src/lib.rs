//! The phone library of wangge: what a field worker's app needs offline — the
//! documents, the workflow rules, the outbox and sync, photos, the patrol log, the
//! grid lookup — in the same Rust the server runs, exported to Kotlin and Swift by
//! uniffi (and to Python, which the end-to-end tests drive).
//!
//! [`FieldClient`] is the one object an app holds; [`store`] is its SQLite file.

// uniffi's scaffolding exports `extern "C"` functions with `#[unsafe(no_mangle)]`;
// this crate's own code has no unsafe block.
#![allow(unsafe_code)]

uniffi::setup_scaffolding!();

mod catalogue;
mod client;
mod error;
mod http;
mod photos;
mod push;
mod rules;
pub mod store;
mod types;

pub use client::{FieldClient, PhoneClock, wipe_data_dir};
pub use error::FieldError;
pub use push::PushListener;
pub use types::*;
