//! `wangge-bench phone`: the phone library (`wangge-mobile-ffi`, linked as a Rust
//! library: the library's cost, not ctypes') against a real `wangge serve`. A peer
//! phone reports N cases in one community; the measured phone, posted there too,
//! bootstraps them; then "days offline": the peer edits some of the cases and syncs,
//! the phone makes its own edits and reports without syncing, and the phone's
//! `sync_now` is timed. Also the process's memory with the cases loaded (VmRSS deltas
//! after open, bootstrap, listing and showing cases) and the store file's size.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use wangge_mobile_ffi::{CaseAction, ClientConfig, FieldClient, GpsFix, NewReport, SyncReport};

use crate::phone::PASSWORD;
use crate::report::{Spread, default_out, machine, print_table, round3, write_json};
use crate::server::{Database, Wangge, find_wangge, proc_status_kib, redact};
use crate::world::{Spot, communities, spread};

/// Options of `phone`.
#[derive(Debug, clap::Args)]
pub struct PhoneArgs {
    /// Cases in the phone's community (reported by the peer, bootstrapped by the phone).
    #[arg(long, default_value_t = 1000)]
    cases: usize,
    /// Days offline to time.
    #[arg(long, default_value_t = 3)]
    days: usize,
    /// Cases the peer edits on the server each day.
    #[arg(long, default_value_t = 300)]
    peer_edits: usize,
    /// Comments the phone writes offline each day.
    #[arg(long, default_value_t = 20)]
    local_edits: usize,
    /// Cases the phone reports offline each day.
    #[arg(long, default_value_t = 5)]
    local_reports: usize,
    /// The `wangge` binary (default: beside this tool).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The district whose grids are cut and imported.
    #[arg(long, default_value = "410105")]
    district: String,
    /// Where the JSON results go.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Internal: measure only the phone's bootstrap and memory against this server, in
    /// a process of its own (so the peer's allocations are not in its RSS), and print
    /// the result as one JSON line.
    #[arg(long, hide = true, requires = "probe_dir")]
    probe_url: Option<String>,
    /// Internal: the phone's data directory for `--probe-url`.
    #[arg(long, hide = true)]
    probe_dir: Option<PathBuf>,
}

fn rss_kib() -> anyhow::Result<u64> {
    proc_status_kib("/proc/self/status", "VmRSS")
}

fn fix(spot: &Spot) -> GpsFix {
    GpsFix {
        lon: spot.position.lon,
        lat: spot.position.lat,
        accuracy_m: spot.position.accuracy_m,
        at_ms: None,
    }
}

fn open(dir: &std::path::Path, url: &str, name: &str) -> anyhow::Result<Arc<FieldClient>> {
    Ok(FieldClient::open_with(
        ClientConfig::new(&dir.display().to_string(), url, name),
        None,
    )?)
}

fn report(client: &FieldClient, spot: &Spot, n: usize) -> anyhow::Result<String> {
    Ok(client.report_case(NewReport {
        category: "C0102".into(),
        position: fix(spot),
        address: format!("bench address {n}"),
        description: format!("bench case {n}"),
    })?)
}

/// Syncs until nothing is left to send; the reports of every `sync_now`.
async fn settle(client: &FieldClient) -> anyhow::Result<Vec<SyncReport>> {
    let mut reports = Vec::new();
    for _ in 0..50 {
        let report = client.sync_now().await?;
        let done = report.pending.documents == 0 && report.pending.photos == 0;
        reports.push(report);
        if done {
            return Ok(reports);
        }
    }
    bail!("the phone does not settle")
}

/// The phone's side, in its own process: open, log in, cache the grids, bootstrap,
/// list, show 50 cases; times and `VmRSS` after each step, and `VmHWM`.
async fn probe(url: &str, dir: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let baseline = rss_kib()?;
    let phone = open(dir, url, "phone")?;
    phone.login("bench-phone".into(), PASSWORD.into()).await?;
    phone.refresh_reference_data().await?;
    let after_open = rss_kib()?;
    let started = Instant::now();
    let bootstrap = settle(&phone).await?;
    let bootstrap_ms = started.elapsed().as_secs_f64() * 1000.0;
    let after_bootstrap = rss_kib()?;
    let started = Instant::now();
    let listed = phone.list_cases()?;
    let list_ms = started.elapsed().as_secs_f64() * 1000.0;
    let after_list = rss_kib()?;
    let started = Instant::now();
    for case in listed.iter().take(50) {
        phone.show_case(case.id.clone())?;
    }
    let show_ms = started.elapsed().as_secs_f64() * 1000.0 / 50.0;
    let after_show = rss_kib()?;
    Ok(json!({
        "bootstrap_ms": round3(bootstrap_ms),
        "bootstrap_rounds": bootstrap.iter().map(|r| r.rounds).sum::<u32>(),
        "bootstrap_bytes_down": bootstrap.iter().map(|r| r.bytes_down).sum::<u64>(),
        "listed": listed.len(),
        "list_ms": round3(list_ms),
        "show_ms": round3(show_ms),
        "rss_kib": {
            "baseline": baseline, "after_open": after_open,
            "after_bootstrap": after_bootstrap, "after_list": after_list,
            "after_show": after_show,
            "hwm": proc_status_kib("/proc/self/status", "VmHWM")?,
        },
    }))
}

/// Runs the bench.
pub async fn run(args: PhoneArgs) -> anyhow::Result<()> {
    if let (Some(url), Some(dir)) = (&args.probe_url, &args.probe_dir) {
        println!("PROBE {}", probe(url, dir).await?);
        return Ok(());
    }
    if args.cases == 0 {
        bail!("--cases must be at least 1");
    }
    let wangge = Wangge {
        bin: find_wangge(args.server_bin.as_deref())?,
    };
    let database = Database::create(None)?;
    println!(
        "phone: {} cases, {} days offline ({} peer edits, {} local edits, {} reports a day); {}",
        args.cases,
        args.days,
        args.peer_edits,
        args.local_edits,
        args.local_reports,
        redact(&database.url)
    );
    let grid_file = database.dir.path().join("grids.geojson");
    wangge
        .grids(&args.district, &grid_file, &database.url)
        .await
        .context("cutting and importing the grids")?;
    let community = spread(&communities(&grid_file)?, 1)?
        .into_iter()
        .next()
        .context("no community")?;
    let scope = community.code.to_string();
    let accounts: Vec<(String, &str, Option<&str>, String)> = ["bench-phone", "bench-peer"]
        .iter()
        .map(|id| {
            (
                (*id).to_owned(),
                "enforcement_officer",
                Some("enforcement"),
                scope.clone(),
            )
        })
        .collect();
    wangge.add_users(&database.url, &accounts, PASSWORD).await?;
    let log = database.dir.path().join("server.log");
    let server = wangge
        .serve(
            &database.url,
            &log,
            &[("WANGGE_ACCESS_TOKEN_SECONDS", "7200")],
        )
        .await?;
    let url = format!("http://{}", server.addr);
    let peer_dir = database.dir.path().join("peer");
    let phone_dir = database.dir.path().join("phone");

    // The peer reports the cases.
    let seeding = Instant::now();
    let peer = open(&peer_dir, &url, "peer")?;
    peer.login("bench-peer".into(), PASSWORD.into()).await?;
    peer.refresh_reference_data().await?;
    let mut ids = Vec::with_capacity(args.cases);
    for n in 0..args.cases {
        ids.push(report(
            &peer,
            &community.spots[n % community.spots.len()],
            n,
        )?);
    }
    settle(&peer).await?;
    drop(peer);
    println!(
        "  {} cases reported and synced by the peer in {:.1} s",
        args.cases,
        seeding.elapsed().as_secs_f64()
    );

    // The phone's bootstrap and memory, in a process of its own.
    let probe = std::process::Command::new(std::env::current_exe()?)
        .args(["phone", "--probe-url", &url, "--probe-dir"])
        .arg(&phone_dir)
        .output()
        .context("running the phone probe")?;
    if !probe.status.success() {
        bail!(
            "the phone probe failed: {}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    let measured: serde_json::Value = String::from_utf8_lossy(&probe.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("PROBE "))
        .and_then(|line| serde_json::from_str(line).ok())
        .context("the phone probe printed no result")?;
    if measured["listed"].as_u64().unwrap_or(0) < args.cases as u64 {
        bail!(
            "the phone lists {} cases of {}",
            measured["listed"],
            args.cases
        );
    }
    let phone = open(&phone_dir, &url, "phone")?;
    let store_bytes = || -> u64 {
        // The file and its write-ahead log: in WAL mode recent commits live in the
        // log until a checkpoint moves them.
        let file = wangge_mobile_ffi::store::STORE_FILE;
        [file.to_owned(), format!("{file}-wal")]
            .iter()
            .filter_map(|name| std::fs::metadata(phone_dir.join(name)).ok())
            .map(|m| m.len())
            .sum()
    };
    let store_after_bootstrap = store_bytes();

    // Days offline.
    let mut days = Vec::new();
    let mut act_times = Vec::new();
    let mut sync_times = Vec::new();
    for day in 0..args.days {
        let peer = open(&peer_dir, &url, "peer")?;
        for k in 0..args.peer_edits {
            let id = &ids[(day * args.peer_edits + k) % ids.len()];
            peer.act(
                id.clone(),
                CaseAction::Comment,
                Some(format!("peer day {day} #{k}")),
            )?;
        }
        settle(&peer).await?;
        drop(peer);
        let before_edits = store_bytes();
        for k in 0..args.local_edits {
            let id = &ids[(day * 7 + k * 13) % ids.len()];
            let started = Instant::now();
            phone.act(
                id.clone(),
                CaseAction::Comment,
                Some(format!("phone day {day} #{k}")),
            )?;
            act_times.push(started.elapsed());
        }
        for k in 0..args.local_reports {
            report(
                &phone,
                &community.spots[k % community.spots.len()],
                1_000_000 + k,
            )?;
        }
        let after_edits = store_bytes();
        let started = Instant::now();
        let reports = settle(&phone).await?;
        let took = started.elapsed();
        sync_times.push(took);
        let sum = |f: fn(&SyncReport) -> u64| reports.iter().map(f).sum::<u64>();
        let day_json = json!({
            "day": day,
            "sync_ms": round3(took.as_secs_f64() * 1000.0),
            "sync_now_calls": reports.len(),
            "rounds": sum(|r| u64::from(r.rounds)),
            "sent": sum(|r| u64::from(r.sent)),
            "received": sum(|r| u64::from(r.received)),
            "bytes_up": sum(|r| r.bytes_up),
            "bytes_down": sum(|r| r.bytes_down),
            "store_and_wal_growth_from_edits": after_edits.saturating_sub(before_edits),
        });
        println!("  day {day}: {day_json}");
        days.push(day_json);
    }
    let sync = Spread::of(&sync_times);
    let act = Spread::of(&act_times);
    let rss = &measured["rss_kib"];
    let kib = |key: &str| rss[key].as_u64().unwrap_or(0);
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let delta =
        |from: &str, to: &str| format!("{:+.1} MiB", (kib(to) as f64 - kib(from) as f64) / 1024.0);
    print_table(
        "phone library",
        &[
            (
                "bootstrap sync".into(),
                format!(
                    "{} ms, {} round(s), {} bytes down",
                    measured["bootstrap_ms"],
                    measured["bootstrap_rounds"],
                    measured["bootstrap_bytes_down"]
                ),
            ),
            ("sync_now after a day offline".into(), sync.text()),
            ("act (comment), per call".into(), act.text()),
            (
                "list_cases".into(),
                format!("{} ms for {}", measured["list_ms"], measured["listed"]),
            ),
            (
                "show_case".into(),
                format!("{} ms each", measured["show_ms"]),
            ),
            (
                "RSS before open (probe process)".into(),
                mib(kib("baseline")),
            ),
            (
                "open + login + grids".into(),
                delta("baseline", "after_open"),
            ),
            ("bootstrap".into(), delta("after_open", "after_bootstrap")),
            ("list_cases".into(), delta("after_bootstrap", "after_list")),
            ("show_case × 50".into(), delta("after_list", "after_show")),
            ("peak RSS (VmHWM, probe process)".into(), mib(kib("hwm"))),
            (
                "store file + WAL after bootstrap".into(),
                format!("{store_after_bootstrap} bytes"),
            ),
        ],
    );
    let out = args.out.unwrap_or_else(|| default_out("phone"));
    write_json(
        &out,
        &json!({
            "bench": "phone",
            "machine": machine(&wangge.bin),
            "cases": args.cases,
            "phone": measured,
            "sync_after_day_ms": sync.json(),
            "act_ms": act.json(),
            "store_and_wal_bytes_after_bootstrap": store_after_bootstrap,
            "days": days,
        }),
    )?;
    drop(phone);
    Ok(())
}
