//! The workflow context the phone checks actions with: the built-in catalogue and
//! the standard work calendar, the same the server uses unless its operator
//! configured others.

use std::sync::OnceLock;

use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::WorkflowContext;
use wangge_sync_core::catalog::Catalog;

/// Runs `f` with the workflow context.
pub fn with_context<T>(f: impl FnOnce(&WorkflowContext<'_>) -> T) -> T {
    static CALENDAR: OnceLock<WorkCalendar> = OnceLock::new();
    let calendar = CALENDAR.get_or_init(WorkCalendar::standard);
    f(&WorkflowContext {
        catalog: Catalog::builtin(),
        calendar,
    })
}
