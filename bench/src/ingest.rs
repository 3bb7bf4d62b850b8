//! `wangge-bench ingest`: many phones report and edit cases offline and sync them in
//! rounds over `POST /v1/sync`; how many changes per second the server merges and
//! persists, the round latency, and the server's CPU and memory per change.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::phone::{PASSWORD, Phone};
use crate::report::{Spread, default_out, machine, print_table, round3, write_json};
use crate::server::{Database, Metrics, Wangge, find_wangge, proc_cpu_seconds, redact};
use crate::world::{Community, communities, spread};

/// The anchors of issue 5, for the ratios.
const ANCHOR_AUTOMERGE_CHANGES_PER_S: f64 = 250.0;
const ANCHOR_AUTOMERGE_CPU_MS_PER_CHANGE: f64 = 3.8;
const ANCHOR_AUTOMERGE_RSS_MB: f64 = 366.0;
const GOAL_CHANGES_PER_S: f64 = 5000.0;

/// Options of `ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Simulated phones (each a device of its own, syncing concurrently).
    #[arg(long, default_value_t = 1000)]
    phones: usize,
    /// Cases each phone reports.
    #[arg(long, default_value_t = 10)]
    cases_per_phone: usize,
    /// Edits (alternately a comment and a photo) to each case, each its own change,
    /// made in the round after the case is reported.
    #[arg(long, default_value_t = 2)]
    edits_per_case: usize,
    /// Accounts the phones log in as (round robin); each is posted to its own
    /// community, so a phone receives the cases of its user's other phones.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// The `wangge` binary (default: beside this tool).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// `sqlite` (a fresh file, the default) or `postgres://USER@HOST:PORT/DB` (a fresh
    /// database is created beside DB and dropped afterwards).
    #[arg(long)]
    database: Option<String>,
    /// The district whose grids are cut, imported and worked in.
    #[arg(long, default_value = "410105")]
    district: String,
    /// Logins at a time (each is an argon2 hash on the server).
    #[arg(long, default_value_t = 4)]
    login_concurrency: usize,
    /// At most this many sync requests in flight at once (0: no limit, every phone
    /// syncs whenever it is ready). The latency is counted from the permit.
    #[arg(long, default_value_t = 0)]
    in_flight: usize,
    /// Stop starting rounds after this many seconds of the measured phase (the
    /// results then cover what was stored until the phones in a round are done, at
    /// most 60 s more).
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    /// Skip the check that a district supervisor's fresh phone receives every case
    /// with every change.
    #[arg(long)]
    no_verify: bool,
    /// Results file (default `target/bench-results/ingest.json`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What the phones share during the measured phase.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Changes in requests the server acknowledged.
    pub(crate) stored: AtomicU64,
    /// Changes made on the phones.
    pub(crate) made: AtomicU64,
    /// Documents received from other phones.
    pub(crate) received: AtomicU64,
    /// Changes of others' documents a phone sent back.
    pub(crate) foreign_resent: AtomicU64,
    /// Set when `--max-seconds` is up: no phone starts another round.
    pub(crate) stop: AtomicBool,
    pub(crate) samples: Mutex<Samples>,
}

#[derive(Debug, Default)]
pub(crate) struct Samples {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) syncs: Vec<Duration>,
    pub(crate) errors: Vec<String>,
}

/// One phone's rounds; returns how many of its documents are left unsent.
pub(crate) async fn run_phone(
    mut phone: Phone,
    community: Arc<Community>,
    index: usize,
    cases: usize,
    edits: usize,
    shared: Arc<Shared>,
    in_flight: Option<Arc<Semaphore>>,
) -> anyhow::Result<usize> {
    let spots = &community.spots;
    for round in 0..=cases {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        if round < cases {
            phone.report(&spots[(index + round) % spots.len()])?;
            shared.made.fetch_add(1, Ordering::Relaxed);
        }
        if round > 0 {
            let spot = &spots[(index + round - 1) % spots.len()];
            for k in 0..edits {
                phone.edit(round - 1, k, spot)?;
                shared.made.fetch_add(1, Ordering::Relaxed);
            }
        }
        let started = Instant::now();
        let outcome = phone.sync(50, in_flight.as_deref()).await?;
        let took = started.elapsed();
        shared
            .stored
            .fetch_add(outcome.changes_stored, Ordering::Relaxed);
        shared
            .received
            .fetch_add(outcome.received, Ordering::Relaxed);
        let mut samples = shared
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        samples.syncs.push(took);
        samples.latencies.extend(outcome.latencies);
        samples.errors.extend(outcome.errors);
    }
    Ok(phone.unsent())
}

/// Runs the ingest benchmark.
pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    if args.phones == 0 || args.cases_per_phone == 0 || args.users == 0 {
        bail!("--phones, --cases-per-phone and --users must be at least 1");
    }
    let wangge = Wangge {
        bin: find_wangge(args.server_bin.as_deref())?,
    };
    let database = Database::create(args.database.as_deref())?;
    println!(
        "ingest: {} phones × {} cases × (1 + {} edits), {} users; {} database {}",
        args.phones,
        args.cases_per_phone,
        args.edits_per_case,
        args.users,
        database.backend(),
        redact(&database.url)
    );
    let setup = Instant::now();
    let grid_file = database.dir.path().join("grids.geojson");
    wangge
        .grids(&args.district, &grid_file, &database.url)
        .await
        .context("cutting and importing the grids")?;
    let all = communities(&grid_file)?;
    let chosen = spread(&all, args.users.min(all.len()))?;
    let users: Vec<(String, Arc<Community>)> = (0..args.users)
        .map(|i| {
            (
                format!("bench-officer-{i:04}"),
                Arc::new(chosen[i % chosen.len()].clone()),
            )
        })
        .collect();
    let mut accounts: Vec<(String, &str, Option<&str>, String)> = users
        .iter()
        .map(|(id, c)| {
            (
                id.clone(),
                "enforcement_officer",
                Some("enforcement"),
                c.code.to_string(),
            )
        })
        .collect();
    accounts.push((
        "bench-verifier".into(),
        "district_supervisor",
        None,
        args.district.clone(),
    ));
    wangge
        .add_users(&database.url, &accounts, PASSWORD)
        .await
        .context("creating the accounts")?;
    println!(
        "  {} grids' communities usable, {} used; {} accounts created ({:.1} s)",
        all.len(),
        chosen.len(),
        accounts.len(),
        setup.elapsed().as_secs_f64()
    );

    let log = database.dir.path().join("server.log");
    let mut server = wangge
        .serve(
            &database.url,
            &log,
            &[("WANGGE_ACCESS_TOKEN_SECONDS", "7200")],
        )
        .await?;
    println!("  server pid {} on {}", server.pid, server.addr);

    // Logins (argon2 on the server): not measured.
    let login_started = Instant::now();
    let mut phones: Vec<Option<Phone>> = (0..args.phones).map(|_| None).collect();
    let mut next = 0;
    let mut running = tokio::task::JoinSet::new();
    while next < args.phones || !running.is_empty() {
        while next < args.phones && running.len() < args.login_concurrency.max(1) {
            let (user, _) = &users[next % users.len()];
            let (addr, user, i) = (server.addr, user.clone(), next);
            running.spawn(async move {
                let phone =
                    Phone::login(addr, &user, &format!("bench phone {i}"), i as u64 + 1).await;
                (i, phone)
            });
            next += 1;
        }
        if let Some(joined) = running.join_next().await {
            let (i, phone) = joined.context("login task")?;
            phones[i] = Some(phone.with_context(|| format!("logging phone {i} in"))?);
        }
    }
    println!(
        "  {} phones logged in ({:.1} s)",
        args.phones,
        login_started.elapsed().as_secs_f64()
    );
    server.check_alive()?;

    // The measured phase.
    let shared = Arc::new(Shared::default());
    let in_flight = (args.in_flight > 0).then(|| Arc::new(Semaphore::new(args.in_flight)));
    let metrics_0 = Metrics::scrape(server.addr).await;
    let server_cpu_0 = server.cpu_seconds()?;
    let client_cpu_0 = proc_cpu_seconds("/proc/self/stat")?;
    let rss_before = server.memory_kib("VmRSS")?;
    let started = Instant::now();
    let phone_actors: HashSet<String> = phones
        .iter()
        .flatten()
        .map(|p| p.actor.device.clone())
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, phone) in phones.into_iter().enumerate() {
        let phone = phone.context("a phone did not log in")?;
        let community = Arc::clone(&users[i % users.len()].1);
        let shared = Arc::clone(&shared);
        let in_flight = in_flight.clone();
        let (cases, edits) = (args.cases_per_phone, args.edits_per_case);
        tasks.spawn(async move {
            run_phone(phone, community, i, cases, edits, shared, in_flight)
                .await
                .with_context(|| format!("phone {i}"))
        });
    }
    let expected = (args.phones * args.cases_per_phone * (1 + args.edits_per_case)) as u64;
    let mut unsent = 0;
    let mut done = 0usize;
    let mut failures = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    ticker.tick().await;
    let mut last = (0u64, Instant::now());
    let stop_at = tokio::time::Instant::now() + Duration::from_secs(args.max_seconds);
    let abort_at = stop_at + Duration::from_secs(60);
    let mut stopped = false;
    let mut aborted = 0;
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(Ok(left))) => { unsent += left; done += 1; }
                Some(Ok(Err(e))) => failures.push(format!("{e:#}")),
                Some(Err(e)) => failures.push(format!("task: {e}")),
                None => {}
            },
            _ = ticker.tick() => {
                let stored = shared.stored.load(Ordering::Relaxed);
                let rate = (stored - last.0) as f64 / last.1.elapsed().as_secs_f64();
                last = (stored, Instant::now());
                println!(
                    "  {:>5.1} s: {stored} / {expected} changes stored, {rate:.0}/s now, {} phones done; server CPU {:.1} s",
                    started.elapsed().as_secs_f64(),
                    done + failures.len(),
                    server.cpu_seconds()? - server_cpu_0,
                );
                server.check_alive()?;
            }
            _ = tokio::time::sleep_until(stop_at), if !stopped => {
                println!("  --max-seconds {} reached: no phone starts another round", args.max_seconds);
                shared.stop.store(true, Ordering::Relaxed);
                stopped = true;
            }
            _ = tokio::time::sleep_until(abort_at), if stopped => {
                aborted = tasks.len();
                println!("  {aborted} phones still syncing 60 s later: abandoned");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
        }
    }
    let elapsed = started.elapsed();
    let server_cpu = server.cpu_seconds()? - server_cpu_0;
    let client_cpu = proc_cpu_seconds("/proc/self/stat")? - client_cpu_0;
    let rss_after = server.memory_kib("VmRSS")?;
    let hwm = server.memory_kib("VmHWM")?;
    // The server's own count over the phase (servers with `GET /metrics`).
    let metrics = match (metrics_0, Metrics::scrape(server.addr).await) {
        (Some(before), Some(after)) => Some(after.minus(&before)),
        _ => None,
    };

    let changes = shared.stored.load(Ordering::Relaxed);
    let made = shared.made.load(Ordering::Relaxed);
    let received = shared.received.load(Ordering::Relaxed);
    let foreign_resent = shared.foreign_resent.load(Ordering::Relaxed);
    let complete = !stopped && failures.is_empty();
    let samples = std::mem::take(
        &mut *shared
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let mut errors: Vec<(String, usize)> = Vec::new();
    for e in &samples.errors {
        match errors.iter_mut().find(|(k, _)| k == e) {
            Some((_, n)) => *n += 1,
            None => errors.push((e.clone(), 1)),
        }
    }
    let latencies = samples.latencies;
    let request = Spread::of(&latencies);
    let sync = Spread::of(&samples.syncs);
    let per_s = changes as f64 / elapsed.as_secs_f64();
    let cpu_ms_per_change = server_cpu * 1e3 / changes.max(1) as f64;

    // Verification: a district supervisor's new phone receives everything.
    let verification = if args.no_verify || !complete {
        None
    } else {
        let verify_started = Instant::now();
        let mut verifier = Phone::login(server.addr, "bench-verifier", "bench verifier", 7).await?;
        let outcome = verifier.sync(10, None).await?;
        let holdings = verifier.holdings(&phone_actors)?;
        Some((holdings, verify_started.elapsed(), outcome.latencies.len()))
    };
    let (log_count, log_lines) = server.log_problems();
    server.stop().await;

    let mut rows = vec![
        (
            "phones / users / communities".to_owned(),
            format!("{} / {} / {}", args.phones, args.users, chosen.len()),
        ),
        (
            "sync requests in flight at most".to_owned(),
            if args.in_flight == 0 {
                "no limit".to_owned()
            } else {
                args.in_flight.to_string()
            },
        ),
        (
            "run".to_owned(),
            if complete {
                "complete".to_owned()
            } else if stopped {
                format!(
                    "STOPPED after --max-seconds {} ({aborted} phones abandoned)",
                    args.max_seconds
                )
            } else {
                "phones failed".to_owned()
            },
        ),
        ("changes made on the phones".to_owned(), made.to_string()),
        (
            "changes stored (in acknowledged requests)".to_owned(),
            format!("{changes} of {expected}"),
        ),
        (
            "measured phase (wall)".to_owned(),
            format!("{:.2} s", elapsed.as_secs_f64()),
        ),
        (
            "changes merged and persisted / s".to_owned(),
            format!(
                "{per_s:.0}  (goal ≥ {GOAL_CHANGES_PER_S:.0}; {:.1}× automerge-repo's 250)",
                per_s / ANCHOR_AUTOMERGE_CHANGES_PER_S
            ),
        ),
        (
            "server CPU (user + system)".to_owned(),
            format!("{server_cpu:.2} s"),
        ),
        (
            "server CPU per change".to_owned(),
            format!(
                "{cpu_ms_per_change:.3} ms  (automerge-repo 3.8 ms: {:.1}×)",
                ANCHOR_AUTOMERGE_CPU_MS_PER_CHANGE / cpu_ms_per_change
            ),
        ),
        (
            "server peak RSS (VmHWM)".to_owned(),
            format!("{:.1} MiB  (automerge-repo 366 MB)", hwm as f64 / 1024.0),
        ),
        (
            "server RSS before / after".to_owned(),
            format!(
                "{:.1} / {:.1} MiB",
                rss_before as f64 / 1024.0,
                rss_after as f64 / 1024.0
            ),
        ),
        (
            "load generator CPU (this process)".to_owned(),
            format!(
                "{client_cpu:.2} s ({:.0}% of one core; server {:.0}%; {} cores)",
                client_cpu / elapsed.as_secs_f64() * 100.0,
                server_cpu / elapsed.as_secs_f64() * 100.0,
                std::thread::available_parallelism().map_or(0, usize::from)
            ),
        ),
        ("sync requests".to_owned(), latencies.len().to_string()),
        (
            "request latency p50 / p90 / p99 / max".to_owned(),
            request.text(),
        ),
        (
            "sync until settled p50 / p90 / p99 / max".to_owned(),
            sync.text(),
        ),
        (
            "documents received from other phones".to_owned(),
            received.to_string(),
        ),
        (
            "others' changes a phone sent back (ignored)".to_owned(),
            foreign_resent.to_string(),
        ),
        (
            "error answers (retried)".to_owned(),
            if errors.is_empty() {
                "none".into()
            } else {
                format!("{errors:?}")
            },
        ),
        (
            "phones done / failed".to_owned(),
            format!("{done} / {}", failures.len()),
        ),
        ("documents left unsent".to_owned(), unsent.to_string()),
        (
            "server log warnings/errors".to_owned(),
            log_count.to_string(),
        ),
    ];
    if let Some((holdings, took, rounds)) = &verification {
        let cases = args.phones * args.cases_per_phone;
        let ok = holdings.documents == cases && holdings.phone_changes == expected;
        rows.push((
            "verified: a supervisor's new phone receives".to_owned(),
            format!(
                "{} cases, {} phone changes (expected {cases} / {expected}){} + {} by the server, in {rounds} rounds, {:.1} s",
                holdings.documents,
                holdings.phone_changes,
                if ok { " OK" } else { " MISMATCH" },
                holdings.other_changes,
                took.as_secs_f64(),
            ),
        ));
    }
    if let Some(metrics) = &metrics {
        rows.push((
            "server /metrics: changes stored / automatic".to_owned(),
            format!(
                "{} / {} (rounds: {})",
                metrics.counter("wangge_sync_changes_stored_total"),
                metrics.counter("wangge_automatic_changes_total"),
                metrics.rounds()
            ),
        ));
        rows.push((
            "server /metrics: document cache hits / misses".to_owned(),
            format!(
                "{} / {}",
                metrics.counter("wangge_document_cache_hits_total"),
                metrics.counter("wangge_document_cache_misses_total"),
            ),
        ));
    }
    print_table(
        &format!("wangge-bench ingest ({})", database.backend()),
        &rows,
    );
    for failure in failures.iter().take(5) {
        println!("  failure: {failure}");
    }
    for line in &log_lines {
        println!("  server log: {line}");
    }

    let result = json!({
        "bench": "ingest",
        "machine": machine(&wangge.bin),
        "database": database.backend(),
        "phones": args.phones,
        "in_flight": args.in_flight,
        "complete": complete,
        "stopped_after_max_seconds": stopped,
        "phones_abandoned": aborted,
        "users": args.users,
        "communities": chosen.len(),
        "cases_per_phone": args.cases_per_phone,
        "edits_per_case": args.edits_per_case,
        "changes_expected": expected,
        "changes_made": made,
        "changes_stored": changes,
        "seconds": round3(elapsed.as_secs_f64()),
        "changes_per_second": round3(per_s),
        "server_cpu_seconds": round3(server_cpu),
        "server_cpu_ms_per_change": round3(cpu_ms_per_change),
        "server_rss_kib_before": rss_before,
        "server_rss_kib_after": rss_after,
        "server_peak_rss_kib": hwm,
        "client_cpu_seconds": round3(client_cpu),
        "requests": latencies.len(),
        "request_latency": request.json(),
        "sync_latency": sync.json(),
        "documents_received": received,
        "foreign_changes_resent": foreign_resent,
        "errors": errors.iter().map(|(k, n)| json!({ "answer": k, "count": n })).collect::<Vec<_>>(),
        "phones_failed": failures.len(),
        "failures": failures.iter().take(20).collect::<Vec<_>>(),
        "unsent_after": unsent,
        "server_log_problems": log_count,
        "server_log_sample": log_lines,
        "verification": verification.map(|(holdings, took, rounds)| json!({
            "documents": holdings.documents, "phone_changes": holdings.phone_changes,
            "other_changes": holdings.other_changes,
            "seconds": round3(took.as_secs_f64()), "rounds": rounds,
        })),
        "server_metrics_delta": metrics.as_ref().map(metrics_json),
        "ratios": {
            "changes_per_second_vs_goal_5000": round3(per_s / GOAL_CHANGES_PER_S),
            "changes_per_second_vs_automerge_repo_250": round3(per_s / ANCHOR_AUTOMERGE_CHANGES_PER_S),
            "automerge_repo_cpu_3_8_ms_vs_ours": round3(ANCHOR_AUTOMERGE_CPU_MS_PER_CHANGE / cpu_ms_per_change),
            "automerge_repo_rss_366_mb_vs_ours": round3(ANCHOR_AUTOMERGE_RSS_MB * 1e6 / (hwm as f64 * 1024.0)),
        },
    });
    write_json(&args.out.unwrap_or_else(|| default_out("ingest")), &result)?;
    if !failures.is_empty() {
        bail!("{} phones failed; first: {}", failures.len(), failures[0]);
    }
    Ok(())
}

/// What the server's `/metrics` counted during the run.
fn metrics_json(m: &Metrics) -> serde_json::Value {
    json!({
        "sync_changes_stored": m.counter("wangge_sync_changes_stored_total"),
        "automatic_changes": m.counter("wangge_automatic_changes_total"),
        "sync_rounds": m.rounds(),
        "document_cache_hits": m.counter("wangge_document_cache_hits_total"),
        "document_cache_misses": m.counter("wangge_document_cache_misses_total"),
    })
}
