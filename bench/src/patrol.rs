//! `wangge-bench patrol`: how fast the walk-patrol coverage (见巡率) is answered with a
//! city's month of patrol rows stored (issue 8: a district-day with 2,000 workers and
//! 20,000 check-ins; a month for the city within 2 s, on SQLite and on PostgreSQL).
//!
//! The rows are seeded straight into a fresh database with bulk SQL, shaped as the
//! server writes them (`patrol_worker_days`, `patrol_duties`, `patrol_visits`, the
//! `patrol_coverage` rollup, `patrol_logs`, `patrol_log_areas`, and the measured day's
//! `patrol_checkins`), then
//! the server's own queries (`PatrolStore::patrol_coverage`, `patrol_missed`, the
//! ones behind `GET /v1/patrol/coverage` and `/summary`) are timed through its store.
//! Check-ins are seeded for the measured day only: coverage never reads them (it reads
//! the visits they make), so a month of them would only slow the seeding.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use wangge_server::store::patrol::CoverageBy;

use crate::server::{Database, redact};

/// The six urban districts of Zhengzhou (中原, 二七, 管城, 金水, 上街, 惠济).
pub(crate) const DISTRICTS: [&str; 6] =
    ["410102", "410103", "410104", "410105", "410106", "410108"];

#[derive(Debug, Args)]
pub struct PatrolArgs {
    /// `sqlite` (a fresh file, the default) or `postgres://…/DB` (a fresh database
    /// beside DB on that server).
    #[arg(long)]
    database: Option<String>,
    /// Field workers per district.
    #[arg(long, default_value_t = 2_000)]
    workers: usize,
    /// Districts (up to 6).
    #[arg(long, default_value_t = 6)]
    districts: usize,
    /// Days of the month seeded (from 2026-11-01).
    #[arg(long, default_value_t = 30)]
    days: usize,
    /// Check-ins per worker on the measured day.
    #[arg(long, default_value_t = 10)]
    checkins: usize,
    /// Timed runs of each query (after one warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const STREETS: usize = 12;
const COMMUNITIES: usize = 20;
const LEVEL3S: usize = 8;

/// A worker's level-3 grids: 2 or 3 consecutive ones of their district, so a grid is
/// walked by about 2.6 workers of different teams, as in the plan.
fn duties_of(worker: usize) -> Vec<usize> {
    let count = 2 + worker % 2;
    let per_district = STREETS * COMMUNITIES * LEVEL3S;
    (0..count)
        .map(|k| (worker * 5 / 2 + k) % per_district)
        .collect()
}

fn units(district: &str, level3: usize) -> (String, String, String) {
    let street = level3 / (COMMUNITIES * LEVEL3S);
    let community = (level3 / LEVEL3S) % COMMUNITIES;
    let number = level3 % LEVEL3S;
    let street = format!("{district}{:03}", street + 1);
    let community = format!("{street}{:03}", community + 1);
    let level3 = format!("{community}-{:02}", number + 1);
    (level3, community, street)
}

/// Whether the worker walked that grid that day (about 90 %, deterministic).
fn walked(worker: usize, day: usize, k: usize) -> bool {
    let h = (worker as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((day as u64) << 32 | k as u64)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    !(h >> 33).is_multiple_of(10)
}

fn day_text(day: usize) -> String {
    format!("2026-11-{:02}", day + 1)
}

/// 09:00 Beijing on `day`, ms.
fn nine_ms(day: usize) -> i64 {
    // 2026-11-01 01:00 UTC.
    1_793_494_800_000 + day as i64 * 86_400_000
}

impl PatrolArgs {
    /// The default month of `workers` per district in the six districts.
    pub(crate) fn month(workers: usize) -> PatrolArgs {
        PatrolArgs {
            database: None,
            workers,
            districts: DISTRICTS.len(),
            days: 30,
            checkins: 10,
            runs: 5,
        }
    }
}

/// Raw SQL batches on the seeding connection.
pub(crate) enum Seeder {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Seeder {
    /// One connection to the database at `url`.
    pub(crate) async fn connect(url: &str) -> anyhow::Result<Seeder> {
        Ok(if url.starts_with("sqlite:") {
            Seeder::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await?,
            )
        } else {
            Seeder::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await?,
            )
        })
    }

    /// Lets this connection write rows whose parents are not seeded (derived rows
    /// without their documents).
    pub(crate) async fn without_foreign_keys(&self) -> anyhow::Result<()> {
        match self {
            Seeder::Sqlite(_) => self.execute("PRAGMA foreign_keys = OFF").await,
            Seeder::Postgres(_) => self.execute("SET session_replication_role = replica").await,
        }
    }

    /// Runs generated SQL (codes and numbers this tool made up; no outside input).
    pub(crate) async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            Seeder::Sqlite(pool) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(pool)
                    .await?;
            }
            Seeder::Postgres(pool) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Collects `(…)` value tuples and writes them 1,000 rows per statement.
pub(crate) struct Batch<'a> {
    seeder: &'a Seeder,
    insert: &'static str,
    rows: Vec<String>,
    pub(crate) written: usize,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(seeder: &'a Seeder, insert: &'static str) -> Batch<'a> {
        Batch {
            seeder,
            insert,
            rows: Vec::new(),
            written: 0,
        }
    }

    pub(crate) async fn push(&mut self, row: String) -> anyhow::Result<()> {
        self.rows.push(row);
        if self.rows.len() >= 1_000 {
            self.flush().await?;
        }
        Ok(())
    }

    pub(crate) async fn flush(&mut self) -> anyhow::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let sql = format!("{} VALUES {}", self.insert, self.rows.join(","));
        self.seeder.execute(&sql).await?;
        self.written += self.rows.len();
        self.rows.clear();
        Ok(())
    }
}

/// Seeds the rows; returns (worker-days, duties, visits, check-ins).
pub(crate) async fn seed(
    seeder: &Seeder,
    args: &PatrolArgs,
    measured_day: usize,
) -> anyhow::Result<[usize; 4]> {
    let mut worker_days = Batch::new(
        seeder,
        "INSERT INTO patrol_worker_days (day, worker, role, team, scope, problem, duties_at)",
    );
    let mut duties = Batch::new(
        seeder,
        "INSERT INTO patrol_duties (day, worker, level3, community, street, district)",
    );
    let mut visits = Batch::new(
        seeder,
        "INSERT INTO patrol_visits (day, worker, level3, first_at, last_at, checkins)",
    );
    let mut logs = Batch::new(
        seeder,
        "INSERT INTO patrol_logs (id, worker, day, role, team, checkins, counted, first_at,
             last_at, points, distance_m, walking_ms, cases_found, reviews, verdict,
             reviewed_at, reviewer, problems, first_received_at, updated_at)",
    );
    let mut areas = Batch::new(seeder, "INSERT INTO patrol_log_areas (area, day, log_id)");
    let mut checkins = Batch::new(
        seeder,
        "INSERT INTO patrol_checkins (log_id, checkin_id, worker, day, at, received_at,
             clock_skew_ms, lon, lat, accuracy_m, claimed_grid, grid, level3s, distance_m,
             counts, flags, note)",
    );
    seeder.execute("BEGIN").await?;
    for day in 0..args.days {
        let date = day_text(day);
        for (d, district) in DISTRICTS.iter().take(args.districts).enumerate() {
            for w in 0..args.workers {
                let worker = format!("w{d}-{w:05}");
                let team = [
                    "enforcement",
                    "sanitation",
                    "municipal",
                    "landscaping",
                    "power",
                ][w % 5];
                let grids = duties_of(w);
                let scope = grids
                    .iter()
                    .map(|l| units(district, *l).1)
                    .collect::<Vec<_>>();
                worker_days
                    .push(format!(
                        "('{date}','{worker}','enforcement_officer','{team}','{}',NULL,{})",
                        scope.join(","),
                        nine_ms(day) - 3_600_000
                    ))
                    .await?;
                let log_id = format!("patrol:{worker}:{date}");
                let mut counted = 0;
                for (k, l) in grids.iter().enumerate() {
                    let (level3, community, street) = units(district, *l);
                    duties
                        .push(format!(
                            "('{date}','{worker}','{level3}','{community}','{street}','{district}')"
                        ))
                        .await?;
                    if walked(w, day, k) {
                        counted += 1;
                        let first = nine_ms(day) + (k as i64) * 1_800_000;
                        visits
                            .push(format!(
                                "('{date}','{worker}','{level3}',{first},{},3)",
                                first + 900_000
                            ))
                            .await?;
                    }
                    if k == 0 {
                        for area in [district.to_string(), street, community] {
                            areas
                                .push(format!("('{area}','{date}','{log_id}')"))
                                .await?;
                        }
                    }
                }
                let first = nine_ms(day);
                logs.push(format!(
                    "('{log_id}','{worker}','{date}','enforcement_officer','{team}',{n},{counted},\
                     {first},{last},1500,4200.0,14400000,1,0,NULL,NULL,NULL,0,{recv},{recv})",
                    n = args.checkins,
                    last = first + 14_400_000,
                    recv = first + 36_000_000,
                ))
                .await?;
                if day == measured_day {
                    for c in 0..args.checkins {
                        let at = first + c as i64 * 1_200_000;
                        let (level3, _, _) = units(district, grids[c % grids.len()]);
                        checkins
                            .push(format!(
                                "('{log_id}','c{c}','{worker}','{date}',{at},{recv},0,\
                                 113.6{w:04},34.7{c:04},8.0,NULL,NULL,'{level3}',0.0,TRUE,'',NULL)",
                                recv = at + 60_000,
                            ))
                            .await?;
                    }
                }
            }
        }
        // A transaction a day keeps SQLite's WAL and PostgreSQL's memory bounded.
        for batch in [
            &mut worker_days,
            &mut duties,
            &mut visits,
            &mut logs,
            &mut areas,
            &mut checkins,
        ] {
            batch.flush().await?;
        }
        // The coverage rollup, as the server recomputes it per worker-day.
        seeder
            .execute(&format!(
                "INSERT INTO patrol_coverage (day, worker, community, street, district,
                     assigned, covered, first_at, last_at)
                 SELECT d.day, d.worker, d.community, d.street, d.district, COUNT(*),
                     COUNT(v.level3), MIN(v.first_at), MAX(v.last_at)
                 FROM patrol_duties d LEFT JOIN patrol_visits v
                     ON v.day = d.day AND v.worker = d.worker AND v.level3 = d.level3
                 WHERE d.day = '{date}'
                 GROUP BY d.day, d.worker, d.community, d.street, d.district"
            ))
            .await?;
        seeder.execute("COMMIT").await?;
        seeder.execute("BEGIN").await?;
        eprintln!("seeded {date}");
    }
    seeder.execute("COMMIT").await?;
    seeder.execute("ANALYZE").await?;
    Ok([
        worker_days.written,
        duties.written,
        visits.written,
        checkins.written,
    ])
}

fn n<T>(timed: &(f64, f64, Vec<T>)) -> (f64, f64, usize) {
    (timed.0, timed.1, timed.2.len())
}

/// Median and slowest of `runs` timed calls (after a warm-up), ms, and the last result.
/// The median and slowest of `runs` timed calls (after one warm-up), ms, and the last
/// answer.
pub(crate) async fn time<T, F, Fut>(runs: usize, mut call: F) -> anyhow::Result<(f64, f64, T)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut last = call().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        last = call().await?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[times.len() - 1], last))
}

pub async fn run(args: PatrolArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=DISTRICTS.len()).contains(&args.districts),
        "--districts: 1 to 6"
    );
    anyhow::ensure!((1..=30).contains(&args.days), "--days: 1 to 30");
    let database = Database::create(args.database.as_deref())?;
    eprintln!("database {}", redact(&database.url));
    let store = wangge_server::store::connect(&database.url)
        .await
        .context("connecting the store")?;
    store.migrate().await.context("migrating")?;
    // One connection, so BEGIN and COMMIT frame the statements between them.
    let seeder = Seeder::connect(&database.url).await?;
    let measured_day = args.days / 2;
    let started = Instant::now();
    let [worker_days, duties, visits, checkins] = seed(&seeder, &args, measured_day).await?;
    let seed_seconds = started.elapsed().as_secs_f64();

    let day = day_text(measured_day);
    let month = (day_text(0), day_text(args.days - 1));
    let district = DISTRICTS[DISTRICTS.len().min(args.districts) - 1];
    let runs = args.runs;
    let store = &store;
    let day_by_worker = time(runs, || async {
        Ok(store
            .patrol_coverage(district, (&day, &day), CoverageBy::Worker)
            .await?)
    })
    .await?;
    let day_missed = time(runs, || async {
        Ok(store.patrol_missed(district, (&day, &day)).await?)
    })
    .await?;
    let day_by_street = time(runs, || async {
        Ok(store
            .patrol_coverage(district, (&day, &day), CoverageBy::Street)
            .await?)
    })
    .await?;
    let month_by_district = time(runs, || async {
        Ok(store
            .patrol_coverage("", (&month.0, &month.1), CoverageBy::District)
            .await?)
    })
    .await?;
    let month_by_street = time(runs, || async {
        Ok(store
            .patrol_coverage("", (&month.0, &month.1), CoverageBy::Street)
            .await?)
    })
    .await?;
    let month_missed = time(runs, || async {
        Ok(store.patrol_missed("", (&month.0, &month.1)).await?)
    })
    .await?;
    let district_month_level3 = time(runs, || async {
        Ok(store
            .patrol_coverage(district, (&month.0, &month.1), CoverageBy::Level3)
            .await?)
    })
    .await?;
    let district_month = time(runs, || async {
        Ok(store
            .patrol_coverage(district, (&month.0, &month.1), CoverageBy::Community)
            .await?)
    })
    .await?;

    let line = |name: &str, (median, max, rows): (f64, f64, usize)| {
        format!(
            "{name:<52} {median:>9.1} ms median {max:>9.1} ms max {rows:>7} rows  {:>6.3} of the 2 s target",
            median / 2_000.0
        )
    };
    let assigned: i64 = month_by_district.2.iter().map(|r| r.assigned).sum();
    let covered: i64 = month_by_district.2.iter().map(|r| r.covered).sum();
    println!(
        "backend {}  cores {}  {} districts × {} workers × {} days: {worker_days} worker-days, \
         {duties} duties, {visits} visits, {checkins} check-ins on {day}; seeded in {seed_seconds:.0} s",
        database.backend(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.districts,
        args.workers,
        args.days,
    );
    println!("city month: {covered} of {assigned} duties walked");
    println!(
        "{}",
        line(
            &format!("district-day {district} {day}, by worker"),
            n(&day_by_worker)
        )
    );
    println!("{}", line("district-day, missed grids", n(&day_missed)));
    println!(
        "{}",
        line("district-day, by street (summary)", n(&day_by_street))
    );
    println!(
        "{}",
        line(
            &format!("district month {district}, by community"),
            n(&district_month)
        )
    );
    println!(
        "{}",
        line(
            "district month, by level-3 grid (from the duties)",
            n(&district_month_level3)
        )
    );
    println!("{}", line("city month, by district", n(&month_by_district)));
    println!(
        "{}",
        line("city month, by street (summary)", n(&month_by_street))
    );
    println!(
        "{}",
        line("city month, missed grids (first 10,000)", n(&month_missed))
    );
    Ok(())
}
