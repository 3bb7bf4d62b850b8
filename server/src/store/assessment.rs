//! Assessment storage (migrations 0016, 0017): each case's facts (`case_facts`, written with
//! its `cases` row in the storing transaction), their sums per unit and period, the
//! published reports, and the spot checks.

use serde::Serialize;
use wangge_sync_core::assessment::Counts;

use super::StoreFuture;

/// A case's facts as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactsRow {
    /// The case.
    pub case_id: String,
    /// `2026-11`.
    pub month: String,
    /// `street`, `district`, `city`.
    pub level: String,
    /// District code.
    pub district: Option<String>,
    /// Street code.
    pub street: Option<String>,
    /// Community code.
    pub community: Option<String>,
    /// The team dispatched to.
    pub team: Option<String>,
    /// Whose handling stood.
    pub handler: Option<String>,
    /// The reporting user.
    pub reporter: Option<String>,
    /// Whose acceptance (核实) stood.
    pub accepter: Option<String>,
    /// Who checked the result (核查) last.
    pub checker: Option<String>,
    /// Who dispatched first (a person; not the server's automation).
    pub dispatcher: Option<String>,
    /// The flags.
    pub counts: Counts,
}

/// How many of [`Counts::FIELDS`] migration 0016 made (the first ones): what the
/// region, team and handler groupings sum, through 0016's covering indexes.
const FIELDS_OF_0016: usize = 16;

/// What the sums of a period are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// District code.
    District,
    /// Street code.
    Street,
    /// Community code.
    Community,
    /// Team id.
    Team,
    /// Handler's user id.
    Handler,
    /// Reporter's user id.
    Reporter,
    /// Accepter's user id.
    Accepter,
    /// Checker's user id.
    Checker,
    /// First dispatcher's user id.
    Dispatcher,
}

impl GroupBy {
    /// The column.
    pub const fn column(self) -> &'static str {
        match self {
            GroupBy::District => "district",
            GroupBy::Street => "street",
            GroupBy::Community => "community",
            GroupBy::Team => "team",
            GroupBy::Handler => "handler",
            GroupBy::Reporter => "reporter",
            GroupBy::Accepter => "accepter",
            GroupBy::Checker => "checker",
            GroupBy::Dispatcher => "dispatcher",
        }
    }

    /// The fields summed: a person grouping only its person's own part (the
    /// accepters', checkers' and dispatchers' read a covering index of just those
    /// columns, migration 0017); the others the fields of migration 0016. Fields not
    /// summed are 0 in the sums.
    pub const fn fields(self) -> &'static [&'static str] {
        match self {
            GroupBy::Accepter => &["accepted", "accepted_on_time"],
            GroupBy::Checker => &["checked", "checked_on_time"],
            GroupBy::Dispatcher => &["dispatched", "dispatched_on_time", "dispatch_returned"],
            // A supervisor's own reports: the rest of their line is the two above.
            GroupBy::Reporter => &["reports", "problems", "own_found"],
            _ => {
                let (first, _) = Counts::FIELDS.split_at(FIELDS_OF_0016);
                first
            }
        }
    }
}

/// The sums of the cases of one unit that ended at one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumsRow {
    /// The unit (the grouped column's value).
    pub unit: String,
    /// `street`, `district`, `city`.
    pub level: String,
    /// The sums.
    pub counts: Counts,
}

/// A published report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ReportRow {
    /// `2026-11` or `2026-Q4`.
    pub period: String,
    /// `''` for the city, else a district code.
    pub unit: String,
    /// When (ms).
    pub published_at: i64,
    /// Who.
    pub published_by: String,
    /// The report as published (JSON).
    pub body: String,
}

/// A spot check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SpotCheckRow {
    /// Id (UUID v7).
    pub id: String,
    /// The grid code prefix checked (a unit grid, community or street).
    pub area: String,
    /// When it was done (ms).
    pub checked_at: i64,
    /// Who did it.
    pub checker: String,
    /// Notes.
    pub note: String,
    /// When it was recorded (ms).
    pub created_at: i64,
}

/// One problem a spot check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct FindingRow {
    /// The spot check.
    pub spot_check_id: String,
    /// The case that stands for the problem.
    pub case_id: String,
    /// Whether the grid's staff had reported it before the check.
    pub already_reported: bool,
}

/// Assessment storage.
pub trait AssessmentStore {
    /// The sums of the facts of the cases reported in `months`, grouped by `by` and the
    /// level each case ended at; only cases whose grid code starts with `within` (a
    /// district or street code; `""`: all).
    fn assessment_sums<'a>(
        &'a self,
        months: &'a [String],
        by: GroupBy,
        within: &'a str,
    ) -> StoreFuture<'a, Vec<SumsRow>>;
    /// Cases with a valid report and no facts row (stored before migration 0016), at
    /// most `limit`, by id.
    fn facts_missing(&self, limit: i64) -> StoreFuture<'_, Vec<String>>;
    /// Writes a case's facts unless it has a row already (a sync write since then
    /// wrote a fresher one).
    fn facts_insert_missing<'a>(&'a self, row: &'a FactsRow) -> StoreFuture<'a, ()>;
    /// Stores a published report; `false` when that period and unit was published
    /// already (a published report never changes).
    fn report_publish<'a>(&'a self, row: &'a ReportRow) -> StoreFuture<'a, bool>;
    /// The published report of a period and unit.
    fn report<'a>(&'a self, period: &'a str, unit: &'a str) -> StoreFuture<'a, Option<ReportRow>>;
    /// Every report published for a period (the city's and the districts').
    fn reports_of<'a>(&'a self, period: &'a str) -> StoreFuture<'a, Vec<ReportRow>>;
    /// Records a spot check and its findings.
    fn spot_check_insert<'a>(
        &'a self,
        check: &'a SpotCheckRow,
        findings: &'a [FindingRow],
    ) -> StoreFuture<'a, ()>;
    /// The spot checks of areas starting with `within`, checked in `[from, to)` (ms),
    /// with their findings.
    fn spot_checks<'a>(
        &'a self,
        within: &'a str,
        from: i64,
        to: i64,
    ) -> StoreFuture<'a, Vec<(SpotCheckRow, Vec<FindingRow>)>>;
}

/// Implements [`AssessmentStore`] for `$store` over `$db`, and the facts' upsert used by
/// the sync store's transaction.
macro_rules! impl_assessment_store {
    ($store:ty, $db:ident) => {
        /// Writes (or, for a case without a valid report, removes) a case's facts in
        /// the storing transaction.
        pub(crate) async fn write_facts(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            case_id: &str,
            facts: Option<&$crate::store::assessment::FactsRow>,
        ) -> Result<(), $crate::store::StoreError> {
            write_facts_or_keep(tx, case_id, facts, true).await
        }

        /// [`write_facts`]; with `overwrite` false an existing row stays.
        async fn write_facts_or_keep(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            case_id: &str,
            facts: Option<&$crate::store::assessment::FactsRow>,
            overwrite: bool,
        ) -> Result<(), $crate::store::StoreError> {
            let Some(f) = facts else {
                sqlx::query("DELETE FROM case_facts WHERE case_id = $1")
                    .bind(case_id)
                    .execute(&mut **tx)
                    .await?;
                return Ok(());
            };
            let fields = wangge_sync_core::assessment::Counts::FIELDS;
            let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(format!(
                "INSERT INTO case_facts (case_id, month, level, district, street, community,
                     team, handler, reporter, accepter, checker, dispatcher, {}) ",
                fields.join(", ")
            ));
            q.push_values([f], |mut row, f| {
                row.push_bind(f.case_id.as_str())
                    .push_bind(f.month.as_str())
                    .push_bind(f.level.as_str())
                    .push_bind(f.district.as_deref())
                    .push_bind(f.street.as_deref())
                    .push_bind(f.community.as_deref())
                    .push_bind(f.team.as_deref())
                    .push_bind(f.handler.as_deref())
                    .push_bind(f.reporter.as_deref())
                    .push_bind(f.accepter.as_deref())
                    .push_bind(f.checker.as_deref())
                    .push_bind(f.dispatcher.as_deref());
                for value in f.counts.values() {
                    row.push_bind(i64::try_from(value).unwrap_or(i64::MAX));
                }
            });
            let updates: Vec<String> = [
                "month",
                "level",
                "district",
                "street",
                "community",
                "team",
                "handler",
                "reporter",
                "accepter",
                "checker",
                "dispatcher",
            ]
            .iter()
            .chain(fields.iter())
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
            if overwrite {
                q.push(format!(
                    " ON CONFLICT (case_id) DO UPDATE SET {}",
                    updates.join(", ")
                ));
            } else {
                q.push(" ON CONFLICT (case_id) DO NOTHING");
            }
            q.build().execute(&mut **tx).await?;
            Ok(())
        }

        impl $crate::store::assessment::AssessmentStore for $store {
            fn assessment_sums<'a>(
                &'a self,
                months: &'a [String],
                by: $crate::store::assessment::GroupBy,
                within: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::assessment::SumsRow>> {
                Box::pin(async move {
                    if months.is_empty() {
                        return Ok(Vec::new());
                    }
                    let fields = by.fields();
                    // Each grouping reads the groups in the order of a covering index
                    // (migration 0016: month, district, street, community, level, team;
                    // month, handler or reporter, district, street, community, level),
                    // an index-only scan that aggregates as it goes with no sort, and
                    // sums them here by the unit asked for.
                    use $crate::store::assessment::GroupBy as G;
                    let (keys, unit_at, level_at): (&[&str], usize, usize) = match by {
                        G::District => {
                            (&["district", "street", "community", "level", "team"], 0, 3)
                        }
                        G::Street => (&["district", "street", "community", "level", "team"], 1, 3),
                        G::Community => {
                            (&["district", "street", "community", "level", "team"], 2, 3)
                        }
                        G::Team => (&["district", "street", "community", "level", "team"], 4, 3),
                        G::Handler => (
                            &["handler", "district", "street", "community", "level"],
                            0,
                            4,
                        ),
                        G::Reporter => (
                            &["reporter", "district", "street", "community", "level"],
                            0,
                            4,
                        ),
                        G::Accepter => (
                            &["accepter", "district", "street", "community", "level"],
                            0,
                            4,
                        ),
                        G::Checker => (
                            &["checker", "district", "street", "community", "level"],
                            0,
                            4,
                        ),
                        G::Dispatcher => (
                            &["dispatcher", "district", "street", "community", "level"],
                            0,
                            4,
                        ),
                    };
                    let keys_text = keys.join(", ");
                    let sums: Vec<String> = fields
                        .iter()
                        .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
                        .collect();
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(format!(
                        "SELECT {keys_text}, {} FROM case_facts WHERE month IN (",
                        sums.join(", ")
                    ));
                    let mut list = q.separated(", ");
                    for month in months {
                        list.push_bind(month.as_str());
                    }
                    q.push(")");
                    match within.len() {
                        0 => {}
                        6 => {
                            q.push(" AND district = ").push_bind(within);
                        }
                        9 => {
                            q.push(" AND street = ").push_bind(within);
                        }
                        12 => {
                            q.push(" AND community = ").push_bind(within);
                        }
                        _ => {
                            q.push(" AND 1 = 0");
                        }
                    }
                    q.push(format!(" GROUP BY {keys_text}"));
                    let rows = q.build().fetch_all(&self.pool).await?;
                    let mut groups: std::collections::BTreeMap<
                        (String, String),
                        wangge_sync_core::assessment::Counts,
                    > = std::collections::BTreeMap::new();
                    for row in rows {
                        use sqlx::Row as _;
                        let unit: Option<String> = row.try_get(unit_at)?;
                        let Some(unit) = unit.filter(|u| !u.is_empty()) else {
                            continue;
                        };
                        let level: String = row.try_get(level_at)?;
                        let all = wangge_sync_core::assessment::Counts::FIELDS;
                        let mut values = [0u64; 21];
                        for (i, field) in fields.iter().enumerate() {
                            let sum: Option<i64> = row.try_get(i + keys.len())?;
                            if let Some(at) = all.iter().position(|f| f == field) {
                                values[at] = u64::try_from(sum.unwrap_or(0)).unwrap_or(0);
                            }
                        }
                        groups
                            .entry((unit, level))
                            .or_default()
                            .add(&wangge_sync_core::assessment::Counts::from_values(values));
                    }
                    let out = groups
                        .into_iter()
                        .map(
                            |((unit, level), counts)| $crate::store::assessment::SumsRow {
                                unit,
                                level,
                                counts,
                            },
                        )
                        .collect();
                    Ok(out)
                })
            }

            fn facts_missing(&self, limit: i64) -> $crate::store::StoreFuture<'_, Vec<String>> {
                Box::pin(async move {
                    let ids: Vec<(String,)> = sqlx::query_as(
                        "SELECT c.id FROM cases c LEFT JOIN case_facts f ON f.case_id = c.id
                         WHERE c.status IS NOT NULL AND f.case_id IS NULL
                         ORDER BY c.id LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(ids.into_iter().map(|(id,)| id).collect())
                })
            }

            fn facts_insert_missing<'a>(
                &'a self,
                row: &'a $crate::store::assessment::FactsRow,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    write_facts_or_keep(&mut tx, &row.case_id, Some(row), false).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn report_publish<'a>(
                &'a self,
                row: &'a $crate::store::assessment::ReportRow,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let done = sqlx::query(
                        "INSERT INTO assessment_reports
                             (period, unit, published_at, published_by, body)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (period, unit) DO NOTHING",
                    )
                    .bind(&row.period)
                    .bind(&row.unit)
                    .bind(row.published_at)
                    .bind(&row.published_by)
                    .bind(&row.body)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn report<'a>(
                &'a self,
                period: &'a str,
                unit: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::assessment::ReportRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT * FROM assessment_reports WHERE period = $1 AND unit = $2",
                    )
                    .bind(period)
                    .bind(unit)
                    .fetch_optional(&self.pool)
                    .await?)
                })
            }

            fn reports_of<'a>(
                &'a self,
                period: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::assessment::ReportRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT * FROM assessment_reports WHERE period = $1 ORDER BY unit",
                    )
                    .bind(period)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn spot_check_insert<'a>(
                &'a self,
                check: &'a $crate::store::assessment::SpotCheckRow,
                findings: &'a [$crate::store::assessment::FindingRow],
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "INSERT INTO spot_checks (id, area, checked_at, checker, note, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&check.id)
                    .bind(&check.area)
                    .bind(check.checked_at)
                    .bind(&check.checker)
                    .bind(&check.note)
                    .bind(check.created_at)
                    .execute(&mut *tx)
                    .await?;
                    for f in findings {
                        sqlx::query(
                            "INSERT INTO spot_check_findings (spot_check_id, case_id,
                                 already_reported) VALUES ($1, $2, $3)
                             ON CONFLICT (spot_check_id, case_id) DO NOTHING",
                        )
                        .bind(&f.spot_check_id)
                        .bind(&f.case_id)
                        .bind(f.already_reported)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn spot_checks<'a>(
                &'a self,
                within: &'a str,
                from: i64,
                to: i64,
            ) -> $crate::store::StoreFuture<
                'a,
                Vec<(
                    $crate::store::assessment::SpotCheckRow,
                    Vec<$crate::store::assessment::FindingRow>,
                )>,
            > {
                Box::pin(async move {
                    let checks: Vec<$crate::store::assessment::SpotCheckRow> = sqlx::query_as(
                        "SELECT * FROM spot_checks
                         WHERE area LIKE $1 AND checked_at >= $2 AND checked_at < $3
                         ORDER BY checked_at, id LIMIT 10000",
                    )
                    // Areas are grid codes (digits only): nothing to escape.
                    .bind(format!("{within}%"))
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(checks.len());
                    for check in checks {
                        let findings = sqlx::query_as(
                            "SELECT * FROM spot_check_findings WHERE spot_check_id = $1
                             ORDER BY case_id",
                        )
                        .bind(&check.id)
                        .fetch_all(&self.pool)
                        .await?;
                        out.push((check, findings));
                    }
                    Ok(out)
                })
            }
        }
    };
}

pub(crate) use impl_assessment_store;
