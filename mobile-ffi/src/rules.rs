//! The workflow context the phone checks actions with: the catalogue the client
//! holds (the server's, fetched with the reference data, else the built-in one) and
//! the standard work calendar, the same the server uses.

use std::sync::OnceLock;

use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::WorkflowContext;
use wangge_sync_core::catalog::Catalog;

/// Runs `f` with the workflow context of `catalog`.
pub fn with_context<T>(catalog: &Catalog, f: impl FnOnce(&WorkflowContext<'_>) -> T) -> T {
    static CALENDAR: OnceLock<WorkCalendar> = OnceLock::new();
    let calendar = CALENDAR.get_or_init(WorkCalendar::standard);
    f(&WorkflowContext { catalog, calendar })
}
