//! The working-time calendar (工作日历). Being written; see the issue.
