//! Intake (migration 0014): the callers of hotline and citizen cases, kept on the
//! server only (personal data never enters a synced document), the duplicate links
//! between cases, and the open cases near a point (possible duplicates).

use serde::Serialize;

use super::StoreFuture;
use super::cases::CaseRow;

/// The caller of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ContactRow {
    /// The case.
    pub case_id: String,
    /// `hotline` or `citizen`.
    pub source: String,
    /// Name as given.
    pub name: Option<String>,
    /// Phone number as given.
    pub phone: Option<String>,
    /// E-mail address as given.
    pub email: Option<String>,
    /// Whether the caller wants to be told the result.
    pub wants_reply: bool,
    /// Hotline ticket number, or the Open311 token.
    pub ticket: Option<String>,
    /// A user id, or `open311:<key name>`.
    pub taken_by: String,
    /// When (ms).
    pub created_at: i64,
}

/// A case voided as a duplicate of another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DuplicateRow {
    /// The voided case.
    pub case_id: String,
    /// The case that stands for both.
    pub duplicate_of: String,
    /// Who marked it.
    pub marked_by: String,
    /// When (ms).
    pub marked_at: i64,
}

/// Where to look for possible duplicates: one category, a WGS-84 box.
#[derive(Debug, Clone, PartialEq)]
pub struct NearQuery {
    /// The category code.
    pub category: String,
    /// South-west corner (lon, lat).
    pub min: (f64, f64),
    /// North-east corner (lon, lat).
    pub max: (f64, f64),
    /// The new case itself, left out.
    pub except: String,
    /// At most this many rows, newest first.
    pub limit: i64,
}

/// Storage of intake data.
pub trait IntakeStore {
    /// Records the caller of a case (once; a second row for the case is an error).
    fn contact_insert<'a>(&'a self, row: &'a ContactRow) -> StoreFuture<'a, ()>;
    /// Removes the caller of a case whose document could not be stored.
    fn contact_delete<'a>(&'a self, case_id: &'a str) -> StoreFuture<'a, ()>;
    /// The callers of these cases.
    fn contacts_of<'a>(&'a self, case_ids: &'a [String]) -> StoreFuture<'a, Vec<ContactRow>>;
    /// Records that `row.case_id` is a duplicate of `row.duplicate_of` (the last
    /// marking wins).
    fn duplicate_record<'a>(&'a self, row: &'a DuplicateRow) -> StoreFuture<'a, ()>;
    /// The cases marked duplicates of `case_id`.
    fn duplicates_of<'a>(&'a self, case_id: &'a str) -> StoreFuture<'a, Vec<DuplicateRow>>;
    /// The case `case_id` was marked a duplicate of, if any.
    fn duplicate_link<'a>(&'a self, case_id: &'a str) -> StoreFuture<'a, Option<DuplicateRow>>;
    /// Open cases (not closed or voided) of the category inside the box.
    fn cases_near<'a>(&'a self, query: &'a NearQuery) -> StoreFuture<'a, Vec<CaseRow>>;
}

/// Implements [`IntakeStore`] for `$store` over `$db`.
macro_rules! impl_intake_store {
    ($store:ty, $db:ident) => {
        impl $crate::store::intake::IntakeStore for $store {
            fn contact_insert<'a>(
                &'a self,
                row: &'a $crate::store::intake::ContactRow,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    sqlx::query(
                        "INSERT INTO case_contacts (case_id, source, name, phone, email,
                             wants_reply, ticket, taken_by, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&row.case_id)
                    .bind(&row.source)
                    .bind(&row.name)
                    .bind(&row.phone)
                    .bind(&row.email)
                    .bind(row.wants_reply)
                    .bind(&row.ticket)
                    .bind(&row.taken_by)
                    .bind(row.created_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                })
            }

            fn contact_delete<'a>(&'a self, case_id: &'a str) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    sqlx::query("DELETE FROM case_contacts WHERE case_id = $1")
                        .bind(case_id)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }

            fn contacts_of<'a>(
                &'a self,
                case_ids: &'a [String],
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::intake::ContactRow>> {
                Box::pin(async move {
                    if case_ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT * FROM case_contacts WHERE case_id IN (",
                    );
                    let mut ids = q.separated(", ");
                    for id in case_ids {
                        ids.push_bind(id);
                    }
                    q.push(") ORDER BY created_at, case_id");
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                })
            }

            fn duplicate_record<'a>(
                &'a self,
                row: &'a $crate::store::intake::DuplicateRow,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    sqlx::query(
                        "INSERT INTO case_duplicates (case_id, duplicate_of, marked_by, marked_at)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (case_id) DO UPDATE SET duplicate_of = excluded.duplicate_of,
                             marked_by = excluded.marked_by, marked_at = excluded.marked_at",
                    )
                    .bind(&row.case_id)
                    .bind(&row.duplicate_of)
                    .bind(&row.marked_by)
                    .bind(row.marked_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                })
            }

            fn duplicates_of<'a>(
                &'a self,
                case_id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::intake::DuplicateRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT * FROM case_duplicates WHERE duplicate_of = $1
                         ORDER BY marked_at, case_id",
                    )
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn duplicate_link<'a>(
                &'a self,
                case_id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::intake::DuplicateRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as("SELECT * FROM case_duplicates WHERE case_id = $1")
                        .bind(case_id)
                        .fetch_optional(&self.pool)
                        .await?)
                })
            }

            fn cases_near<'a>(
                &'a self,
                query: &'a $crate::store::intake::NearQuery,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::cases::CaseRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT * FROM cases WHERE category = $1
                           AND lat BETWEEN $2 AND $3 AND lon BETWEEN $4 AND $5
                           AND status NOT IN ('closed', 'voided') AND id <> $6
                         ORDER BY reported_at DESC, id LIMIT $7",
                    )
                    .bind(&query.category)
                    .bind(query.min.1)
                    .bind(query.max.1)
                    .bind(query.min.0)
                    .bind(query.max.0)
                    .bind(&query.except)
                    .bind(query.limit)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }
        }
    };
}

pub(crate) use impl_intake_store;
