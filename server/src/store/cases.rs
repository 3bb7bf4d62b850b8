//! Materialized cases: each case document's fold as a row (`cases`), written in the
//! transaction that stores the document's change (`Derive`, called by the sync store),
//! and the queries over them. Like the rest of the store, one SQL text serves both
//! databases (`impl_case_store!`).

use automerge::Automerge;
use serde::Serialize;
use wangge_sync_core::sync::{DocKind, DocMeta};

use super::StoreFuture;

/// What the server derives from a document after a write, inside the transaction that
/// stores it: the meta scope is decided on, and for a case its folded row. The store
/// calls it with the whole document as stored (every chunk, concurrent writers' too).
pub trait Derive: Send + Sync {
    /// Derives from `doc`.
    fn derive(&self, id: &str, kind: DocKind, doc: &Automerge) -> Derived;
}

/// What [`Derive`] gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// Grids, owner and assignees.
    pub meta: DocMeta,
    /// The folded case, for a case document.
    pub case: Option<CaseRow>,
    /// What the case contributes to assessment; `None` for a case without a valid
    /// report (and for a patrol log).
    pub facts: Option<super::assessment::FactsRow>,
    /// The photos a case references (SHA-256 hex), sorted, each once.
    pub photos: Vec<String>,
    /// For a patrol log with a worker and a day: its rows.
    pub patrol: Option<super::patrol::PatrolRows>,
}

/// A case as folded, as stored in `cases` and listed by `GET /v1/cases`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CaseRow {
    /// Case (document) id.
    pub id: String,
    /// `reported` … `closed`; `None` while there is no valid report.
    pub status: Option<String>,
    /// `component` / `event`.
    pub kind: Option<String>,
    /// Category code, e.g. `C0101`.
    pub category: Option<String>,
    /// `patrol`, `hotline`, `citizen`, …
    pub source: Option<String>,
    /// District code (6 digits).
    pub district: Option<String>,
    /// Street code (9).
    pub street: Option<String>,
    /// Community code (12).
    pub community: Option<String>,
    /// Unit grid code (15).
    pub grid: Option<String>,
    /// WGS-84 longitude as reported.
    pub lon: Option<f64>,
    /// WGS-84 latitude.
    pub lat: Option<f64>,
    /// Address text.
    pub address: String,
    /// The description's beginning.
    pub summary: String,
    /// The reporting user.
    pub reporter: Option<String>,
    /// The team it is dispatched to.
    pub team: Option<String>,
    /// The person it is dispatched to, when named.
    pub assignee: Option<String>,
    /// `street`, `district` or `city`.
    pub level: String,
    /// When it was reported (ms).
    pub reported_at: Option<i64>,
    /// The running step (`accept` … `close`).
    pub step: Option<String>,
    /// When the running step started (ms).
    pub step_started_at: Option<i64>,
    /// When the running step is due (ms).
    pub due_at: Option<i64>,
    /// When it was closed (ms).
    pub closed_at: Option<i64>,
    /// Dispatches so far.
    pub dispatches: i32,
    /// Reworks (返工).
    pub reworks: i32,
    /// Returns to the dispatcher (退回).
    pub returns: i32,
    /// Escalations (逐级上报).
    pub escalations: i32,
    /// Timeline entries the fold ignored.
    pub ignored: i32,
    /// Every step run, JSON.
    pub steps: String,
    /// When the row was written (ms).
    pub updated_at: i64,
}

/// Which cases to list. Every field narrows; the caller's scope always applies.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Grid code prefixes the caller may see (`""`: everything); the scope.
    pub scope: Vec<String>,
    /// The caller, who also sees their own reports and what is dispatched to them.
    pub user: String,
    /// A grid code prefix: a district, street, community or unit grid.
    pub area: Option<String>,
    /// Any of these statuses.
    pub statuses: Vec<String>,
    /// A category, or a major class / kind prefix (`C01`, `E`).
    pub category: Option<String>,
    /// The source.
    pub source: Option<String>,
    /// Only cases whose running step is past due at this time (ms).
    pub overdue_at: Option<i64>,
    /// Only cases whose running step is this one (`reply`: closed calls whose
    /// caller is still owed the answer).
    pub step: Option<String>,
    /// Reported at or after (ms).
    pub from: Option<i64>,
    /// Reported before (ms).
    pub to: Option<i64>,
    /// The team dispatched to.
    pub team: Option<String>,
    /// The person dispatched to.
    pub assignee: Option<String>,
    /// At most this many.
    pub limit: u32,
    /// Skip this many (newest first).
    pub offset: u32,
}

/// The column holding a code prefix of this length, or `None` for 2 and 4 digits
/// (province, city: compared on the district code's beginning).
pub(crate) fn code_column(prefix: &str) -> Option<&'static str> {
    match prefix.len() {
        6 => Some("district"),
        9 => Some("street"),
        12 => Some("community"),
        15 => Some("grid"),
        _ => None,
    }
}

/// Queries over the materialized cases.
pub trait CaseStore: Send + Sync {
    /// Cases matching `filter`, newest report first.
    fn cases_list<'a>(&'a self, filter: &'a CaseFilter) -> StoreFuture<'a, Vec<CaseRow>>;
    /// One case's row.
    fn case_row<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<CaseRow>>;
    /// The cases whose stored document references photo `sha256`, by id.
    fn cases_with_photo<'a>(&'a self, sha256: &'a str) -> StoreFuture<'a, Vec<String>>;
}

/// Implements [`CaseStore`] for `$store` (a struct with a `pool` field) over `$db`.
macro_rules! impl_case_store {
    ($store:ty, $db:ident) => {
        impl $crate::store::cases::CaseStore for $store {
            fn cases_list<'a>(
                &'a self,
                filter: &'a $crate::store::cases::CaseFilter,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::cases::CaseRow>> {
                Box::pin(async move {
                    // One branch per way of being in scope (the caller's reports, their
                    // dispatches, each grid prefix), each the newest `wanted` ids by
                    // its own (…, reported_at) index, merged: an `OR` of them made the
                    // databases collect and sort every case in scope (2–5 s a page
                    // with 250,000 cases).
                    let wanted = i64::from(filter.limit) + i64::from(filter.offset);
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT * FROM cases WHERE id IN (",
                    );
                    // (column, value) or a grid code prefix.
                    let mut branches: Vec<(Option<&str>, &str)> = Vec::new();
                    if !filter.scope.iter().any(String::is_empty) {
                        branches.push((Some("reporter"), &filter.user));
                        branches.push((Some("assignee"), &filter.user));
                    }
                    branches.extend(filter.scope.iter().map(|prefix| (None, prefix.as_str())));
                    // And one per status asked for, each on its `(…, status,
                    // reported_at)` index: with `status IN (…)` the newest-first walk
                    // of a district passed every case of the other statuses (4.7–8.5 s
                    // for the closed cases of a district of 1,000,000).
                    let statuses: Vec<Option<&str>> = if filter.statuses.is_empty() {
                        vec![None]
                    } else {
                        filter.statuses.iter().map(|s| Some(s.as_str())).collect()
                    };
                    let mut n = 0;
                    for (column, value) in branches {
                        for status in &statuses {
                            if n > 0 {
                                q.push(" UNION ");
                            }
                            q.push("SELECT id FROM (SELECT id FROM cases WHERE ");
                            match column {
                                Some(column) => {
                                    q.push(format!("{column} = ")).push_bind(value.to_owned());
                                }
                                None => push_prefix(&mut q, value),
                            }
                            if let Some(status) = status {
                                q.push(" AND status = ").push_bind(status.to_string());
                            }
                            push_conditions(&mut q, filter);
                            q.push(" ORDER BY reported_at DESC, id LIMIT ")
                                .push_bind(wanted)
                                .push(format!(") AS branch{n}"));
                            n += 1;
                        }
                    }
                    q.push(") ORDER BY reported_at DESC, id LIMIT ")
                        .push_bind(i64::from(filter.limit))
                        .push(" OFFSET ")
                        .push_bind(i64::from(filter.offset));
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                })
            }

            fn case_row<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::cases::CaseRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as("SELECT * FROM cases WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?)
                })
            }

            fn cases_with_photo<'a>(
                &'a self,
                sha256: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<String>> {
                Box::pin(async move {
                    let ids: Vec<(String,)> = sqlx::query_as(
                        "SELECT case_id FROM case_photos WHERE sha256 = $1 ORDER BY case_id",
                    )
                    .bind(sha256)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(ids.into_iter().map(|(id,)| id).collect())
                })
            }
        }

        /// Makes `case_photos` hold exactly `photos` for case `id` (`new_case`: it
        /// has none yet): only the differences are written (most writes change no
        /// photo). A photo no case references any more is marked released at `now`
        /// (garbage collection's grace period starts); one referenced again is
        /// unmarked, which also locks its row against a collection running at the
        /// same time (see `store::blobs`).
        pub(crate) async fn replace_case_photos(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            id: &str,
            photos: &[String],
            new_case: bool,
            now: i64,
        ) -> Result<(), $crate::store::StoreError> {
            // A new case has no rows yet: its report reads nothing.
            let stored: Vec<(String,)> = if new_case {
                Vec::new()
            } else {
                sqlx::query_as("SELECT sha256 FROM case_photos WHERE case_id = $1")
                    .bind(id)
                    .fetch_all(&mut **tx)
                    .await?
            };
            let stored: std::collections::BTreeSet<&str> =
                stored.iter().map(|(hash,)| hash.as_str()).collect();
            let wanted: std::collections::BTreeSet<&str> =
                photos.iter().map(String::as_str).collect();
            for gone in stored.difference(&wanted) {
                sqlx::query("DELETE FROM case_photos WHERE sha256 = $1 AND case_id = $2")
                    .bind(*gone)
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "UPDATE blobs SET released_at = $1 WHERE sha256 = $2 AND released_at IS NULL
                         AND NOT EXISTS (SELECT 1 FROM case_photos p WHERE p.sha256 = blobs.sha256)",
                )
                .bind(now)
                .bind(*gone)
                .execute(&mut **tx)
                .await?;
            }
            let added: Vec<&str> = wanted.difference(&stored).copied().collect();
            if !added.is_empty() {
                let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                    "INSERT INTO case_photos (sha256, case_id) ",
                );
                q.push_values(&added, |mut row, hash| {
                    row.push_bind(*hash).push_bind(id);
                });
                q.push(" ON CONFLICT (sha256, case_id) DO NOTHING");
                q.build().execute(&mut **tx).await?;
                for hash in &added {
                    sqlx::query(
                        "UPDATE blobs SET released_at = NULL WHERE sha256 = $1 AND released_at IS NOT NULL",
                    )
                    .bind(*hash)
                    .execute(&mut **tx)
                    .await?;
                }
            }
            Ok(())
        }

        /// `<the cases under this code prefix>` (a district, street, community or
        /// grid column; shorter prefixes on the district's beginning).
        fn push_prefix(q: &mut sqlx::QueryBuilder<sqlx::$db>, prefix: &str) {
            match $crate::store::cases::code_column(prefix) {
                _ if prefix.is_empty() => {
                    q.push("TRUE");
                }
                Some(column) => {
                    q.push(format!("{column} = ")).push_bind(prefix.to_owned());
                }
                None => {
                    q.push("substr(district, 1, ")
                        .push_bind(i32::try_from(prefix.len()).unwrap_or(0))
                        .push(") = ")
                        .push_bind(prefix.to_owned());
                }
            }
        }

        /// ` AND …` for every narrowing field of `filter` (not the scope, not the
        /// statuses: each is a branch of its own).
        fn push_conditions(
            q: &mut sqlx::QueryBuilder<sqlx::$db>,
            filter: &$crate::store::cases::CaseFilter,
        ) {
            if let Some(area) = &filter.area {
                q.push(" AND ");
                push_prefix(q, area);
            }
            if let Some(category) = &filter.category {
                q.push(" AND substr(category, 1, ")
                    .push_bind(i32::try_from(category.len()).unwrap_or(0))
                    .push(") = ")
                    .push_bind(category.clone());
            }
            if let Some(source) = &filter.source {
                q.push(" AND source = ").push_bind(source.clone());
            }
            if let Some(now) = filter.overdue_at {
                q.push(" AND due_at < ").push_bind(now);
            }
            if let Some(step) = &filter.step {
                q.push(" AND step = ").push_bind(step.clone());
            }
            if let Some(from) = filter.from {
                q.push(" AND reported_at >= ").push_bind(from);
            }
            if let Some(to) = filter.to {
                q.push(" AND reported_at < ").push_bind(to);
            }
            if let Some(team) = &filter.team {
                q.push(" AND team = ").push_bind(team.clone());
            }
            if let Some(assignee) = &filter.assignee {
                q.push(" AND assignee = ").push_bind(assignee.clone());
            }
        }

        /// Writes a case's row (insert or replace).
        pub(crate) async fn upsert_case(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            row: &$crate::store::cases::CaseRow,
        ) -> Result<(), $crate::store::StoreError> {
            sqlx::query(
                "INSERT INTO cases (id, status, kind, category, source, district, street, community,
                     grid, lon, lat, address, summary, reporter, team, assignee, level, reported_at,
                     step, step_started_at, due_at, closed_at, dispatches, reworks, returns,
                     escalations, ignored, steps, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, kind = excluded.kind,
                     category = excluded.category, source = excluded.source,
                     district = excluded.district, street = excluded.street,
                     community = excluded.community, grid = excluded.grid, lon = excluded.lon,
                     lat = excluded.lat, address = excluded.address, summary = excluded.summary,
                     reporter = excluded.reporter, team = excluded.team,
                     assignee = excluded.assignee, level = excluded.level,
                     reported_at = excluded.reported_at, step = excluded.step,
                     step_started_at = excluded.step_started_at, due_at = excluded.due_at,
                     closed_at = excluded.closed_at, dispatches = excluded.dispatches,
                     reworks = excluded.reworks, returns = excluded.returns,
                     escalations = excluded.escalations, ignored = excluded.ignored,
                     steps = excluded.steps, updated_at = excluded.updated_at",
            )
            .bind(&row.id)
            .bind(&row.status)
            .bind(&row.kind)
            .bind(&row.category)
            .bind(&row.source)
            .bind(&row.district)
            .bind(&row.street)
            .bind(&row.community)
            .bind(&row.grid)
            .bind(row.lon)
            .bind(row.lat)
            .bind(&row.address)
            .bind(&row.summary)
            .bind(&row.reporter)
            .bind(&row.team)
            .bind(&row.assignee)
            .bind(&row.level)
            .bind(row.reported_at)
            .bind(&row.step)
            .bind(row.step_started_at)
            .bind(row.due_at)
            .bind(row.closed_at)
            .bind(row.dispatches)
            .bind(row.reworks)
            .bind(row.returns)
            .bind(row.escalations)
            .bind(row.ignored)
            .bind(&row.steps)
            .bind(row.updated_at)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }
    };
}

pub(crate) use impl_case_store;
