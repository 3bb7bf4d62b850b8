//! The server's part in a case's life: what it derives from every stored case (the
//! materialized fold, [`Materializer`]), what it does by itself when a case arrives
//! (routing and automatic dispatch, [`ServerActions`] over sync-core's
//! `case::automation`), and the folded view with its timeline that `/v1/cases/{id}`
//! answers ([`view_json`]).

use std::sync::Arc;

use automerge::{Automerge, ChangeHash};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::runtime::Handle;
use wangge_sync_core::assessment::CaseFacts;
use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::automation::Automation;
use wangge_sync_core::case::fold::Outcome;
use wangge_sync_core::case::{Action, ActionName, CaseDocument, CaseView, Status, WorkflowContext};
use wangge_sync_core::catalog::Catalog;
use wangge_sync_core::grid::{GridCode, GridIndex};
use wangge_sync_core::ownership::{Ownership, Posting};
use wangge_sync_core::patrol::PatrolLog;
use wangge_sync_core::patrol::assess::{PatrolRules, Receipt, assess};
use wangge_sync_core::role::{Actor, GridScope, Role};
use wangge_sync_core::sync::server::Automate;
use wangge_sync_core::sync::{DocKind, DocMeta};

use crate::store::Store;
use crate::store::assessment::FactsRow;
use crate::store::cases::{CaseRow, Derive, Derived};

/// The longest summary of the description a case row keeps.
const SUMMARY_CHARS: usize = 140;

/// Everything the server needs to fold and act on cases: the catalogue, the
/// calendar, the grids and the ownership rules.
#[derive(Debug)]
pub struct CaseRules {
    /// The categories, teams and time limits: the operator's file
    /// (`WANGGE_CATALOG`, loaded once for the process) or the built-in one.
    pub catalog: &'static Catalog,
    /// Working time, for due times.
    pub calendar: WorkCalendar,
    /// The unit grids, when imported.
    pub grids: Option<Arc<GridIndex>>,
    /// Which team handles what, where.
    pub ownership: Arc<Ownership>,
}

impl CaseRules {
    /// The catalogue and calendar.
    pub fn context(&self) -> WorkflowContext<'_> {
        WorkflowContext {
            catalog: self.catalog,
            calendar: &self.calendar,
        }
    }
}

/// Derives the meta and, for a case, the folded row, in the storing transaction.
#[derive(Debug)]
pub struct Materializer<'a> {
    /// The rules.
    pub rules: &'a CaseRules,
    /// Now (ms), the row's `updated_at`, and the receive time of a patrol check-in
    /// first stored now.
    pub now: i64,
    /// On a device's sync round: the phone's clock minus the server's, as the phone
    /// told it (`X-Wangge-Clock`), for the patrol log's clock flags.
    pub clock_skew_ms: Option<i64>,
}

impl Derive for Materializer<'_> {
    fn derive(&self, id: &str, kind: DocKind, doc: &Automerge) -> Derived {
        let context = self.rules.context();
        match kind {
            DocKind::Case => {
                let view = CaseDocument::from_automerge(doc.clone()).fold(&context);
                let photos: std::collections::BTreeSet<String> =
                    view.record.photos.iter().map(|p| p.hash.clone()).collect();
                let row = case_row(id, &view, self.now);
                Derived {
                    meta: DocMeta::of_case(&view),
                    facts: facts_row(&row, &view),
                    case: Some(row),
                    photos: photos.into_iter().collect(),
                    patrol: None,
                }
            }
            DocKind::PatrolLog => {
                let record = PatrolLog::from_automerge(doc.clone()).read();
                let receipt = Receipt {
                    now_ms: self.now,
                    clock_skew_ms: self.clock_skew_ms,
                };
                let assessment = assess(
                    &record,
                    self.rules.grids.as_deref(),
                    receipt,
                    &PatrolRules::default(),
                );
                let mut meta = DocMeta::of(kind, doc, &context).1;
                if self.rules.grids.is_some() {
                    // As the API decides who sees it (without grids nothing is located).
                    meta.grids = assessment.located_grids();
                }
                Derived {
                    meta,
                    case: None,
                    facts: None,
                    photos: Vec::new(),
                    patrol: crate::patrol::rows_of(id, &record, &assessment, receipt),
                }
            }
        }
    }
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The folded case of document `id` as a `cases` row.
pub fn case_row(id: &str, view: &CaseView, now: i64) -> CaseRow {
    let record = &view.record;
    let step = view.current_step();
    // The close, not a later reply to the caller (回访), ends the case's handling.
    let closed_at = match view.status {
        Some(Status::Closed) => view
            .steps
            .iter()
            .rev()
            .filter_map(|s| s.finished)
            .find(|(_, by)| *by == ActionName::Close)
            .map(|(at, _)| ms(at)),
        _ => None,
    };
    let steps: Vec<Value> = view
        .steps
        .iter()
        .map(|s| {
            json!({
                "step": s.step.as_str(),
                "started_at": ms(s.started_at),
                "due_at": s.due_at.map(ms),
                "finished_at": s.finished.map(|(at, _)| ms(at)),
                "by": s.finished.map(|(_, action)| action.as_str()),
                "on_time": s.on_time(),
            })
        })
        .collect();
    CaseRow {
        id: id.to_owned(),
        status: view.status.map(|s| s.as_str().to_owned()),
        kind: record.kind.map(|k| k.to_string()),
        category: record.category.map(|c| c.to_string()),
        source: record.source.map(|s| s.as_str().to_owned()),
        district: record.grid.map(|g| g.district().to_string()),
        street: record.grid.map(|g| g.street().to_string()),
        community: record.grid.map(|g| g.community().to_string()),
        grid: record.grid.map(|g| g.to_string()),
        lon: record.location.map(|p| p.lon),
        lat: record.location.map(|p| p.lat),
        address: record.address.clone(),
        summary: record.description.chars().take(SUMMARY_CHARS).collect(),
        reporter: record.reporter.clone(),
        team: view.assignment.as_ref().map(|a| a.team.as_str().to_owned()),
        assignee: view.assignment.as_ref().and_then(|a| a.assignee.clone()),
        level: view.level.as_str().to_owned(),
        reported_at: view.steps.first().map(|s| ms(s.started_at)),
        step: step.map(|s| s.step.as_str().to_owned()),
        step_started_at: step.map(|s| ms(s.started_at)),
        due_at: step.and_then(|s| s.due_at).map(ms),
        closed_at,
        dispatches: i32::try_from(view.counts.dispatches).unwrap_or(i32::MAX),
        reworks: i32::try_from(view.counts.reworks).unwrap_or(i32::MAX),
        returns: i32::try_from(view.counts.returns).unwrap_or(i32::MAX),
        escalations: i32::try_from(view.counts.escalations).unwrap_or(i32::MAX),
        ignored: i32::try_from(view.ignored().count()).unwrap_or(i32::MAX),
        steps: Value::Array(steps).to_string(),
        updated_at: now,
    }
}

/// What the case of `row` contributes to assessment (sync-core's `CaseFacts`), with
/// the units it counts for; `None` while it has no valid report.
pub fn facts_row(row: &CaseRow, view: &CaseView) -> Option<FactsRow> {
    let facts = CaseFacts::of(view);
    Some(FactsRow {
        case_id: row.id.clone(),
        month: facts.month?,
        level: row.level.clone(),
        district: row.district.clone(),
        street: row.street.clone(),
        community: row.community.clone(),
        team: row.team.clone(),
        handler: facts.handler,
        reporter: row.reporter.clone(),
        accepter: facts.accepter,
        checker: facts.checker,
        dispatcher: facts.dispatcher,
        counts: facts.counts,
    })
}

/// The server's identity for one write: a fresh Automerge actor each time, so two
/// nodes (or two rounds) acting on one case at once never write two different changes
/// under one actor and sequence number.
pub fn server_actor() -> Actor {
    Actor {
        user: "server".to_owned(),
        role: Role::Server,
        team: None,
        scope: GridScope::everywhere(),
        device: crate::auth::new_actor_id(),
    }
}

/// The server's reaction to a sync round's writes, run on the round's blocking
/// thread: routing and automatic dispatch of newly reported cases, and routing again
/// of cases whose category or location the round changed.
pub struct ServerActions<'a> {
    /// The rules.
    pub rules: &'a CaseRules,
    /// For the postings of a grid, asked for only when a case is dispatched
    /// automatically.
    pub store: &'a Arc<dyn Store>,
    /// The runtime to wait on the store with.
    pub handle: &'a Handle,
    /// Now.
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for ServerActions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerActions").finish_non_exhaustive()
    }
}

/// The postings of the enabled accounts: who handles what where.
pub fn postings_of(users: Vec<crate::store::User>) -> Vec<Posting> {
    users
        .into_iter()
        .filter(|u| !u.disabled)
        .map(|u| Posting {
            user: u.id,
            role: u.role,
            team: u.team,
            scope: u.scope,
        })
        .collect()
}

impl ServerActions<'_> {
    /// The postings covering `grid` now.
    fn postings(&self, grid: GridCode) -> Vec<Posting> {
        match self.handle.block_on(self.store.users_covering(&grid)) {
            Ok(users) => postings_of(users),
            Err(error) => {
                // Dispatched to the team without a name: the team's phones still get it.
                tracing::error!(%error, "postings unavailable for an automatic dispatch");
                Vec::new()
            }
        }
    }
}

impl Automate for ServerActions<'_> {
    fn after_write(&self, id: &str, kind: DocKind, doc: &mut Automerge, before: &[ChangeHash]) {
        let (DocKind::Case, Some(grids)) = (kind, self.rules.grids.as_deref()) else {
            return;
        };
        let postings = |grid| self.postings(grid);
        let automation = Automation {
            context: self.rules.context(),
            ownership: &self.rules.ownership,
            grids,
            postings: &postings,
        };
        // Moved, not copied: the document is only written through checked edits, each
        // whole or not at all, so whatever `act` leaves is a valid document.
        let mut case = CaseDocument::from_automerge(std::mem::take(doc));
        let acted = automation.act(&mut case, before, &server_actor(), self.now);
        *doc = std::mem::take(case.automerge_mut());
        match acted {
            Ok(done) if done.wrote() => {
                tracing::info!(case = id, relocated = ?done.relocated, returned = ?done.returned, dispatched = ?done.dispatched, "server acted on a case");
            }
            Ok(_) => {}
            // What it wrote before the failure (a relocation) stays; the dispatcher's
            // queue has the case.
            Err(error) => tracing::warn!(case = id, %error, "automatic routing failed"),
        }
    }
}

/// A folded case with its timeline, for `GET /v1/cases/{id}`: labels in Chinese and
/// English, every entry with what the fold did with it.
pub fn view_json(view: &CaseView, row: &CaseRow, now: DateTime<Utc>) -> Value {
    let record = &view.record;
    let timeline: Vec<Value> = view
        .entries
        .iter()
        .map(|folded| {
            let (applied, reason) = match &folded.outcome {
                Outcome::Applied => (true, None),
                Outcome::Ignored(reason) => (false, Some(reason.to_string())),
            };
            match &folded.entry {
                Some(entry) => json!({
                    "id": entry.id,
                    "action": entry.action.as_str(),
                    "action_zh": entry.action.name().name_zh(),
                    "payload": action_payload(&entry.action),
                    "at": entry.at.to_rfc3339(),
                    "user": entry.actor.user,
                    "role": entry.actor.role.as_str(),
                    "role_zh": entry.actor.role.name_zh(),
                    "team": entry.actor.team.as_ref().map(|t| t.as_str()),
                    "note": entry.note,
                    "applied": applied,
                    "ignored_reason": reason,
                }),
                None => {
                    json!({ "index": folded.index, "applied": false, "ignored_reason": reason })
                }
            }
        })
        .collect();
    let photos: Vec<Value> = record
        .photos
        .iter()
        .map(|p| {
            json!({
                "hash": p.hash,
                "role": format!("{:?}", p.role).to_lowercase(),
                "added_by": p.added_by,
                "taken_at": p.taken_at.map(|t| t.to_rfc3339()),
                // Where the app fetches it (`api/blobs.rs`: 404 until uploaded).
                "thumb": format!("/v1/blobs/{}/thumb", p.hash),
                "display": format!("/v1/blobs/{}/display", p.hash),
            })
        })
        .collect();
    let steps = serde_json::from_str::<Value>(&row.steps).unwrap_or(Value::Null);
    // The row keeps its steps as JSON text for the database; the API gives them as
    // JSON, in the row as at the top (a client should not parse a string twice).
    let mut case = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Some(map) = case.as_object_mut() {
        map.insert("steps".into(), steps.clone());
    }
    json!({
        "case": case,
        "status_zh": view.status.map(Status::name_zh),
        "status_en": view.status.map(Status::name_en),
        "overdue": view.is_overdue(now),
        "description": record.description,
        "photos": photos,
        "pending_extension": view.pending_extension.map(|t| t.to_string()),
        "pending_defer": view.pending_defer,
        "awaiting_reply": view.awaiting_reply,
        "steps": steps,
        "timeline": timeline,
        "problems": record.problems.iter().map(|p| json!({ "path": p.path, "reason": p.reason })).collect::<Vec<_>>(),
    })
}

fn action_payload(action: &Action) -> Value {
    match action {
        Action::Dispatch { team, assignee } => {
            json!({ "team": team.as_str(), "assignee": assignee })
        }
        Action::RequestExtension { extra } => json!({ "extra": extra.to_string() }),
        Action::DecideExtension { approved } | Action::DecideDefer { approved } => {
            json!({ "approved": approved })
        }
        Action::Reply { channel, satisfied } => {
            json!({ "channel": channel.as_str(), "satisfied": satisfied })
        }
        _ => Value::Null,
    }
}
