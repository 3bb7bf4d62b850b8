//! Double reports (双报告, migration 0013): who was told of a problem a field worker
//! reported beyond their own authority. Written once per case and recipient (the
//! insert says which rows are new, so a notice is pushed once even when two nodes
//! judge the same case), read by the recipient, newest first.

use serde::Serialize;

use super::StoreFuture;

/// One recipient of one case's double report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DoubleReportRow {
    /// The case.
    pub case_id: String,
    /// The user told.
    pub recipient: String,
    /// `grid_leader` or `official`.
    pub recipient_as: String,
    /// The field worker who reported it.
    pub reporter: String,
    /// The reporter's team.
    pub reporter_team: Option<String>,
    /// The team routing gave the case.
    pub routed_team: String,
    /// The unit grid.
    pub grid: String,
    /// When the server judged it (ms).
    pub created_at: i64,
}

/// Storage of double reports.
pub trait DoubleReportStore {
    /// Records the rows; returns the recipients whose row is new.
    fn double_reports_record<'a>(
        &'a self,
        rows: &'a [DoubleReportRow],
    ) -> StoreFuture<'a, Vec<String>>;
    /// The double reports `recipient` was told of, newest first, at most `limit`.
    fn double_reports_for<'a>(
        &'a self,
        recipient: &'a str,
        limit: i64,
    ) -> StoreFuture<'a, Vec<DoubleReportRow>>;
}

/// Implements [`DoubleReportStore`] for `$store` over `$db`.
macro_rules! impl_double_report_store {
    ($store:ty, $db:ident) => {
        impl $crate::store::double_reports::DoubleReportStore for $store {
            fn double_reports_record<'a>(
                &'a self,
                rows: &'a [$crate::store::double_reports::DoubleReportRow],
            ) -> $crate::store::StoreFuture<'a, Vec<String>> {
                Box::pin(async move {
                    if rows.is_empty() {
                        return Ok(Vec::new());
                    }
                    let _turn = self.write_turn().await;
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "INSERT INTO double_reports (case_id, recipient, recipient_as, reporter,
                             reporter_team, routed_team, grid, created_at) ",
                    );
                    q.push_values(rows, |mut row, r| {
                        row.push_bind(&r.case_id)
                            .push_bind(&r.recipient)
                            .push_bind(&r.recipient_as)
                            .push_bind(&r.reporter)
                            .push_bind(&r.reporter_team)
                            .push_bind(&r.routed_team)
                            .push_bind(&r.grid)
                            .push_bind(r.created_at);
                    });
                    q.push(" ON CONFLICT (case_id, recipient) DO NOTHING RETURNING recipient");
                    let new: Vec<(String,)> = q.build_query_as().fetch_all(&self.pool).await?;
                    Ok(new.into_iter().map(|(recipient,)| recipient).collect())
                })
            }

            fn double_reports_for<'a>(
                &'a self,
                recipient: &'a str,
                limit: i64,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::double_reports::DoubleReportRow>>
            {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT * FROM double_reports WHERE recipient = $1
                         ORDER BY created_at DESC, case_id LIMIT $2",
                    )
                    .bind(recipient)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }
        }
    };
}

pub(crate) use impl_double_report_store;
