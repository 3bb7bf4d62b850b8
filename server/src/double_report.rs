//! Double report (双报告, issue 8): when a field worker reports a problem beyond their
//! own authority (routing gives it to another team), the grid's leader (网格长) and its
//! 下沉 official are told as well, as the plan requires. Who is told is sync-core's
//! `ownership::double_report` over the postings; this module judges each case the
//! server stores for the first time, records the recipients once
//! (`store::double_reports`), and returns who is newly told, for push.

use wangge_sync_core::catalog::TeamId;
use wangge_sync_core::grid::GridCode;
use wangge_sync_core::ownership::double_report;
use wangge_sync_core::sync::DocKind;
use wangge_sync_core::sync::server::Written;

use crate::cases::postings_of;
use crate::store::double_reports::DoubleReportRow;
use crate::store::{Store, StoreError};

/// A case's double report: the users newly told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    /// The case.
    pub case: String,
    /// Users told now for the first time.
    pub users: Vec<String>,
}

/// Judges the cases a round stored for the first time (their rows are written, routing
/// included) and records each double report; returns who is newly told.
pub async fn after_round(store: &dyn Store, written: &[Written], now_ms: i64) -> Vec<Told> {
    let mut told = Vec::new();
    for w in written
        .iter()
        .filter(|w| w.kind == DocKind::Case && w.previous.is_none())
    {
        match judge(store, &w.id, now_ms).await {
            Ok(Some(users)) if !users.is_empty() => told.push(Told {
                case: w.id.clone(),
                users,
            }),
            Ok(_) => {}
            // The case is stored and routed; only the extra notice is missed.
            Err(error) => tracing::warn!(case = %w.id, %error, "double report not judged"),
        }
    }
    told
}

/// The recipients newly recorded for case `id`, if it is a double report.
async fn judge(
    store: &dyn Store,
    id: &str,
    now_ms: i64,
) -> Result<Option<Vec<String>>, StoreError> {
    let Some(row) = store.case_row(id).await? else {
        return Ok(None);
    };
    let (Some(reporter), Some(team), Some(grid)) = (&row.reporter, &row.team, &row.grid) else {
        return Ok(None);
    };
    let (Ok(routed_team), Ok(grid_code)) = (TeamId::new(team), grid.parse::<GridCode>()) else {
        return Ok(None);
    };
    let Some(reporter_user) = store.user(reporter).await? else {
        return Ok(None);
    };
    let reporter_team = reporter_user.team.as_ref().map(|t| t.as_str().to_owned());
    let Some(reporter_posting) = postings_of(vec![reporter_user]).pop() else {
        return Ok(None);
    };
    let postings = postings_of(store.users_covering(&grid_code).await?);
    let Some(report) = double_report(&reporter_posting, &routed_team, &postings, grid_code) else {
        return Ok(None);
    };
    let row_for = |recipient: &String, recipient_as: &str| DoubleReportRow {
        case_id: id.to_owned(),
        recipient: recipient.clone(),
        recipient_as: recipient_as.to_owned(),
        reporter: reporter.clone(),
        reporter_team: reporter_team.clone(),
        routed_team: team.clone(),
        grid: grid.clone(),
        created_at: now_ms,
    };
    let rows: Vec<DoubleReportRow> = report
        .grid_leaders
        .iter()
        .map(|u| row_for(u, "grid_leader"))
        .chain(report.officials.iter().map(|u| row_for(u, "official")))
        .collect();
    tracing::info!(case = id, recipients = ?report.recipients(), "double report (双报告)");
    Ok(Some(store.double_reports_record(&rows).await?))
}
