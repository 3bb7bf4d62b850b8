//! Overdue escalation (超期升级): a case whose running step is past its due time goes up
//! the responsibility chain (street → district → city), as the server's timeline
//! entry (`case::automation::escalate_overdue`), once per overdue step. The candidates
//! come from the materialized cases (`due_at < now`), so a pass reads only what is
//! late. `wangge serve` runs a pass every `WANGGE_ESCALATE_SECONDS` (60).
//!
//! Two nodes may pass over the same case at once: the write is conditional on the
//! document's heads (`document_write` with `expect`), so only one escalation lands;
//! the other node finds the case changed and leaves it for its next pass.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use wangge_sync_core::case::CaseDocument;
use wangge_sync_core::case::automation::escalate_overdue;
use wangge_sync_core::sync::server::{DocWrite, Merged, Written};
use wangge_sync_core::sync::{DocKind, DocMeta, load_chunks};

use crate::cases::{CaseRules, Materializer, server_actor};
use crate::store::cases::CaseFilter;
use crate::store::{Store, StoreError};

/// The most cases one pass escalates (the next pass takes the rest).
pub const CASES_PER_PASS: u32 = 500;

/// Escalates every overdue case that can go up; returns what it wrote (for push).
pub async fn escalate_overdue_cases(
    store: &Arc<dyn Store>,
    rules: &CaseRules,
    now: DateTime<Utc>,
) -> Result<Vec<Written>, StoreError> {
    let now_ms = now.timestamp_millis();
    let filter = CaseFilter {
        scope: vec![String::new()],
        statuses: vec!["registered".into(), "dispatched".into()],
        overdue_at: Some(now_ms),
        limit: CASES_PER_PASS,
        ..CaseFilter::default()
    };
    let context = rules.context();
    let mut written = Vec::new();
    for row in store.cases_list(&filter).await? {
        if row.level == "city" {
            continue;
        }
        let Some(stored) = store.sync_document(&row.id).await? else {
            continue;
        };
        let doc = match load_chunks(&stored.chunks) {
            Ok(doc) => doc,
            Err(error) => {
                tracing::error!(case = %row.id, %error, "stored case does not load");
                continue;
            }
        };
        let before = doc.get_heads();
        let mut case = CaseDocument::from_automerge(doc);
        match escalate_overdue(&context, &mut case, &server_actor(), now) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::warn!(case = %row.id, %error, "overdue escalation refused");
                continue;
            }
        }
        let changes = case
            .automerge()
            .get_changes(&before)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let meta = DocMeta::of_case(&case.fold(&context));
        let write = DocWrite {
            id: row.id.clone(),
            kind: DocKind::Case,
            changes,
            meta: meta.clone(),
            heads: case.automerge().get_heads(),
            merged: Some(Merged::new(before.clone(), case.into_automerge())),
        };
        let derive = Materializer {
            rules,
            now: now_ms,
            clock_skew_ms: None,
        };
        match store
            .document_write(&write, Some(&before), &derive, now_ms)
            .await
        {
            Ok(()) => {
                tracing::info!(case = %row.id, "overdue case escalated");
                written.push(Written {
                    id: row.id,
                    kind: DocKind::Case,
                    meta,
                    previous: Some(stored.meta),
                });
            }
            // Changed meanwhile (a phone's round, another node): the next pass sees it.
            Err(StoreError::Conflict { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}
