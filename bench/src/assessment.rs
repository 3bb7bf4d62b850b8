//! `wangge-bench assessment`: how fast a month's assessment is computed and published
//! with a city's month stored (issue 23: 1,000,000 cases and a month of patrols; the
//! rates and ranking within 2 s and publishing within 10 s, on SQLite and on
//! PostgreSQL).
//!
//! The per-case facts (`case_facts`, one row per case as the sync store writes them)
//! are seeded straight into a fresh database with bulk SQL, with the walk patrol's month
//! of `wangge-bench patrol` beside them (the coverage rollup the regions' 见巡率 reads);
//! then the server's own `assessment::compute` (the code behind `GET /v1/assessment`)
//! is timed through its store, and publishing (compute, serialize, store) too.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use wangge_server::assessment::{ReportLevel, compute};
use wangge_server::store::assessment::ReportRow;
use wangge_sync_core::assessment::{AssessmentRules, Period};

use crate::patrol::{Batch, DISTRICTS, PatrolArgs, Seeder, seed as seed_patrol, time};
use crate::server::{Database, redact};

#[derive(Debug, Args)]
pub struct AssessmentArgs {
    /// `sqlite` (a fresh file, the default) or `postgres://…/DB` (a fresh database
    /// beside DB on that server).
    #[arg(long)]
    database: Option<String>,
    /// Cases reported in the month, over the six urban districts.
    #[arg(long, default_value_t = 1_000_000)]
    cases: usize,
    /// Field workers per district (their month of patrols is seeded too; 0: none).
    #[arg(long, default_value_t = 2_000)]
    workers: usize,
    /// Timed runs of each query (after one warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const STREETS: usize = 12;
const COMMUNITIES: usize = 20;
const TEAMS: [&str; 5] = [
    "enforcement",
    "sanitation",
    "municipal_maintenance",
    "landscaping",
    "power",
];

/// A deterministic pseudo-random number for case `i`, stream `k`.
fn hash(i: usize, k: u64) -> u64 {
    (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(k << 40)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9)
        >> 20
}

/// One case's facts row as SQL values: shares as seen in a city's month (95 % stand,
/// 70 % found on patrol, 10 % needing a higher level, 90 % handled, 8 % reworked…).
fn facts(i: usize) -> String {
    let d = i % DISTRICTS.len();
    let district = DISTRICTS[d];
    let street = format!("{district}{:03}", hash(i, 1) as usize % STREETS + 1);
    let community = format!("{street}{:03}", hash(i, 2) as usize % COMMUNITIES + 1);
    let percent = |k: u64| hash(i, k) % 100;
    let level = match percent(3) {
        0..=89 => "street",
        90..=97 => "district",
        _ => "city",
    };
    let problem = u8::from(percent(4) < 95);
    let own = problem & u8::from(percent(5) < 70);
    let registered = problem & u8::from(percent(6) < 97);
    let dispatched = registered & u8::from(percent(7) < 98);
    let dispatched_on_time = dispatched & u8::from(percent(8) < 95);
    let handled = dispatched & u8::from(percent(9) < 90);
    let handled_on_time = handled & u8::from(percent(10) < 85);
    let reworked = handled & u8::from(percent(11) < 8);
    let closed = handled & u8::from(percent(12) < 95);
    let closed_on_time = closed & handled_on_time;
    let up = u8::from(level != "street") & problem & u8::from(percent(13) < 80);
    let caller = problem & u8::from(percent(14) < 20);
    let reply_due = caller & closed;
    let replied = reply_due & u8::from(percent(15) < 90);
    let satisfied = replied & u8::from(percent(16) < 85);
    let worker = hash(i, 17) as usize % 2_000;
    let team = TEAMS[worker % TEAMS.len()];
    // 200 information supervisors and 20 dispatchers per district.
    let accepted = registered;
    let accepted_on_time = accepted & u8::from(percent(18) < 92);
    let checked = handled;
    let checked_on_time = checked & u8::from(percent(19) < 90);
    let returned = dispatched & u8::from(percent(20) < 3);
    let supervisor = |k: u64| format!("'s{d}-{:03}'", hash(i, k) % 200);
    let (accepter, checker) = (supervisor(21), supervisor(22));
    let dispatcher = format!("'d{d}-{:02}'", hash(i, 23) % 20);
    format!(
        "('c{i:08}', '2026-11', '{level}', '{district}', '{street}', '{community}', \
         '{team}', 'w{d}-{worker:05}', 'w{d}-{:05}', {accepter}, {checker}, {dispatcher}, \
         1, {problem}, {own}, {registered}, \
         {dispatched}, {dispatched_on_time}, {handled}, {handled_on_time}, {reworked}, \
         {closed}, {closed_on_time}, {up}, {}, {reply_due}, {replied}, {satisfied}, \
         {accepted}, {accepted_on_time}, {checked}, {checked_on_time}, {returned})",
        (worker + 7) % 2_000,
        u8::from(level == "city") & up,
    )
}

async fn seed_facts(seeder: &Seeder, cases: usize) -> anyhow::Result<usize> {
    // The facts rows only: the documents they belong to are not what is measured.
    let mut batch = Batch::new(
        seeder,
        "INSERT INTO case_facts (case_id, month, level, district, street, community, team,
             handler, reporter, accepter, checker, dispatcher, reports, problems, own_found,
             registered, dispatched, dispatched_on_time, handled, handled_on_time, reworked,
             closed, closed_on_time, reported_up_by_street, reported_up_by_district,
             reply_due, replied, satisfied, accepted, accepted_on_time, checked,
             checked_on_time, dispatch_returned)",
    );
    seeder.execute("BEGIN").await?;
    for i in 0..cases {
        batch.push(facts(i)).await?;
        if i % 100_000 == 99_999 {
            seeder.execute("COMMIT").await?;
            seeder.execute("BEGIN").await?;
            eprintln!("seeded {} case facts", i + 1);
        }
    }
    batch.flush().await?;
    seeder.execute("COMMIT").await?;
    Ok(batch.written)
}

pub async fn run(args: AssessmentArgs) -> anyhow::Result<()> {
    let database = Database::create(args.database.as_deref())?;
    eprintln!("database {}", redact(&database.url));
    let store = wangge_server::store::connect(&database.url)
        .await
        .context("connecting the store")?;
    store.migrate().await.context("migrating")?;
    let seeder = Seeder::connect(&database.url).await?;
    // Facts rows without their documents: the foreign key is not what is measured.
    seeder.without_foreign_keys().await?;
    let started = Instant::now();
    let cases = seed_facts(&seeder, args.cases).await?;
    let patrol_args = PatrolArgs::month(args.workers);
    let patrol = if args.workers > 0 {
        seed_patrol(&seeder, &patrol_args, 15).await?
    } else {
        seeder.execute("ANALYZE").await?;
        [0; 4]
    };
    if matches!(seeder, Seeder::Postgres(_)) {
        // What autovacuum does to a table after a million inserts: the visibility map
        // that lets the covering indexes be read without the table.
        seeder.execute("VACUUM ANALYZE case_facts").await?;
    }
    let seed_seconds = started.elapsed().as_secs_f64();

    let catalog = wangge_sync_core::catalog::Catalog::builtin();
    let rules = wangge_server::cases::CaseRules {
        catalog,
        calendar: wangge_sync_core::calendar::WorkCalendar::standard(),
        grids: None,
        ownership: Arc::new(wangge_sync_core::ownership::Ownership::builtin(catalog)?),
    };
    let weights = AssessmentRules::standard();
    let period = Period::parse("2026-11")?;
    let store = store.as_ref();
    let (rules, weights) = (&rules, &weights);
    let report = |level: ReportLevel, within: &'static str| async move {
        Ok(compute(store, rules, weights, period, level, within).await?)
    };
    let district = DISTRICTS[3];
    let timed = [
        (
            "city month, districts ranked",
            time(args.runs, || report(ReportLevel::District, "")).await?,
        ),
        (
            "city month, every street ranked",
            time(args.runs, || report(ReportLevel::Street, "")).await?,
        ),
        (
            "a district's streets (410105)",
            time(args.runs, || report(ReportLevel::Street, district)).await?,
        ),
        (
            "a district's communities",
            time(args.runs, || report(ReportLevel::Community, district)).await?,
        ),
        (
            "city month, teams",
            time(args.runs, || report(ReportLevel::Team, "")).await?,
        ),
        (
            "a district's handlers",
            time(args.runs, || report(ReportLevel::Handler, district)).await?,
        ),
        (
            "city month, every supervisor (reports, acceptances, checks)",
            time(args.runs, || report(ReportLevel::Reporter, "")).await?,
        ),
        (
            "city month, dispatchers",
            time(args.runs, || report(ReportLevel::Dispatcher, "")).await?,
        ),
    ];
    let mut published = 0usize;
    let publish = time(args.runs, || {
        published += 1;
        let unit = format!("bench-{published}");
        async move {
            let report = compute(store, rules, weights, period, ReportLevel::District, "").await?;
            let body = serde_json::to_string(&report)?;
            let row = ReportRow {
                period: period.to_string(),
                unit,
                published_at: 0,
                published_by: "bench".into(),
                body,
            };
            anyhow::ensure!(store.report_publish(&row).await?, "published twice");
            Ok(report)
        }
    })
    .await?;

    println!(
        "backend {}  cores {}  {cases} case facts in one month over {} districts; patrol \
         month: {} worker-days, {} duties; seeded in {seed_seconds:.0} s",
        database.backend(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        DISTRICTS.len(),
        patrol[0],
        patrol[1],
    );
    for (name, (median, max, report)) in &timed {
        println!(
            "{name:<40} {median:>9.1} ms median {max:>9.1} ms max {:>6} units  {:>6.3} of the 2 s target",
            report.units.len(),
            median / 2_000.0
        );
    }
    println!(
        "{:<40} {:>9.1} ms median {:>9.1} ms max {:>6} units  {:>6.3} of the 10 s target",
        "publish the city's month",
        publish.0,
        publish.1,
        publish.2.units.len(),
        publish.0 / 10_000.0
    );
    Ok(())
}
