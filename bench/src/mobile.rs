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
        ClientConfig {
            data_dir: dir.display().to_string(),
            server_url: url.to_owned(),
            device_name: name.to_owned(),
        },
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

/// Runs the bench.
pub async fn run(args: PhoneArgs) -> anyhow::Result<()> {
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

    // The phone: memory and bootstrap.
    let baseline = rss_kib()?;
    let phone = open(&phone_dir, &url, "phone")?;
    phone.login("bench-phone".into(), PASSWORD.into()).await?;
    phone.refresh_reference_data().await?;
    let after_open = rss_kib()?;
    let started = Instant::now();
    let bootstrap = settle(&phone).await?;
    let bootstrap_time = started.elapsed();
    let after_bootstrap = rss_kib()?;
    let started = Instant::now();
    let listed = phone.list_cases()?;
    let list_time = started.elapsed();
    if listed.len() < args.cases {
        bail!("the phone lists {} cases of {}", listed.len(), args.cases);
    }
    let after_list = rss_kib()?;
    let started = Instant::now();
    for id in ids.iter().take(50) {
        phone.show_case(id.clone())?;
    }
    let show_time = started.elapsed() / 50;
    let after_show = rss_kib()?;
    let store_file = phone_dir.join(wangge_mobile_ffi::store::STORE_FILE);
    let store_bytes = std::fs::metadata(&store_file).map_or(0, |m| m.len());

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
        let before_edits = std::fs::metadata(&store_file).map_or(0, |m| m.len());
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
        let after_edits = std::fs::metadata(&store_file).map_or(0, |m| m.len());
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
            "store_growth_from_edits": after_edits.saturating_sub(before_edits),
        });
        println!("  day {day}: {day_json}");
        days.push(day_json);
    }
    let hwm = proc_status_kib("/proc/self/status", "VmHWM")?;
    let sync = Spread::of(&sync_times);
    let act = Spread::of(&act_times);
    let boot_rounds: u32 = bootstrap.iter().map(|r| r.rounds).sum();
    let boot_down: u64 = bootstrap.iter().map(|r| r.bytes_down).sum();
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let delta = |from: u64, to: u64| format!("{:+.1} MiB", (to as f64 - from as f64) / 1024.0);
    print_table(
        "phone library",
        &[
            (
                "bootstrap sync".into(),
                format!(
                    "{:.0} ms, {boot_rounds} rounds, {boot_down} bytes down",
                    bootstrap_time.as_secs_f64() * 1000.0
                ),
            ),
            (
                "sync_now after a day offline".into(),
                format!("{} (n = {})", sync.text(), sync_times.len()),
            ),
            ("act (comment), per call".into(), act.text()),
            (
                "list_cases".into(),
                format!(
                    "{:.1} ms for {}",
                    list_time.as_secs_f64() * 1000.0,
                    listed.len()
                ),
            ),
            (
                "show_case".into(),
                format!("{:.2} ms each", show_time.as_secs_f64() * 1000.0),
            ),
            ("RSS before open".into(), mib(baseline)),
            ("open + login + grids".into(), delta(baseline, after_open)),
            ("bootstrap".into(), delta(after_open, after_bootstrap)),
            ("list_cases".into(), delta(after_bootstrap, after_list)),
            ("show_case × 50".into(), delta(after_list, after_show)),
            ("peak RSS (VmHWM, whole process)".into(), mib(hwm)),
            (
                "store file after bootstrap".into(),
                format!("{store_bytes} bytes"),
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
            "bootstrap_ms": round3(bootstrap_time.as_secs_f64() * 1000.0),
            "bootstrap_rounds": boot_rounds,
            "bootstrap_bytes_down": boot_down,
            "sync_after_day_ms": sync.json(),
            "act_ms": act.json(),
            "list_ms": round3(list_time.as_secs_f64() * 1000.0),
            "show_ms": round3(show_time.as_secs_f64() * 1000.0),
            "rss_kib": {
                "baseline": baseline, "after_open": after_open,
                "after_bootstrap": after_bootstrap, "after_list": after_list,
                "after_show": after_show, "hwm": hwm,
            },
            "store_bytes": store_bytes,
            "days": days,
        }),
    )?;
    drop(phone);
    Ok(())
}
