//! wangge sync-core: the pure domain core shared by the phone and the server.
//!
//! No I/O, no clock, no threads: callers pass bytes and time in. See ARCHITECTURE.md.

pub mod assessment;
pub mod calendar;
pub mod case;
pub mod catalog;
pub mod document;
pub mod geo;
pub mod grid;
pub mod ownership;
pub mod patrol;
pub mod photo;
pub mod role;
pub mod sync;
