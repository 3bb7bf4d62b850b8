//! `wangge-bench push`: thousands of idle `GET /v1/push` WebSockets (memory per
//! connection), and how long after a phone syncs a new case the devices posted to its
//! community hear `sync_now`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::phone::{PASSWORD, Phone};
use crate::report::{Spread, default_out, machine, print_table, round3, write_json};
use crate::server::{Database, Wangge, find_wangge, proc_status_kib, redact};
use crate::world::{communities, spread};

/// The goals and anchors of issue 5.
const GOAL_P99_MS: f64 = 20.0;
const GOAL_KIB_PER_CONNECTION: f64 = 20.0;
const ANCHOR_AUTOMERGE_P50_MS: f64 = 3.8;
const ANCHOR_AUTOMERGE_P99_MS: f64 = 20.0;
/// automerge-repo: 234 MB for 1,000 subscribers.
const ANCHOR_AUTOMERGE_KIB_PER_CONNECTION: f64 = 234e6 / 1000.0 / 1024.0;

/// Accounts the idle devices log in as, each posted to another community.
const IDLE_USERS: usize = 20;
/// Accounts the watchers log in as, all posted to the writer's community.
const WATCHER_USERS: usize = 10;

/// Options of `push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Idle push sockets, of devices posted to other communities than the writer's.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Devices the idle sockets belong to (each logs in once, an argon2 hash on the
    /// server; its sockets share its token).
    #[arg(long, default_value_t = 500)]
    idle_devices: usize,
    /// Devices posted to the writer's community, each with a push socket.
    #[arg(long, default_value_t = 50)]
    watchers: usize,
    /// New cases synced by the writer, one at a time.
    #[arg(long, default_value_t = 300)]
    events: usize,
    /// Pause between events, after every watcher heard the last one.
    #[arg(long, default_value_t = 20)]
    gap_ms: u64,
    /// Seconds to watch the server's CPU with every socket open and nothing happening
    /// (the sockets' revocation checks run every `WANGGE_PUSH_CHECK_SECONDS`, 30).
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// The `wangge` binary (default: beside this tool).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// `sqlite` (a fresh file, the default) or `postgres://USER@HOST:PORT/DB`.
    #[arg(long)]
    database: Option<String>,
    /// The district whose grids are cut, imported and worked in.
    #[arg(long, default_value = "410105")]
    district: String,
    /// Logins at a time.
    #[arg(long, default_value_t = 4)]
    login_concurrency: usize,
    /// Steps the idle sockets are opened in (the server's RSS is read after each).
    #[arg(long, default_value_t = 5)]
    batches: usize,
    /// WebSocket handshakes at a time.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Results file (default `target/bench-results/push.json`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A notice a watcher heard: the documents of a `sync_now`, when.
type Heard = (Vec<String>, Instant);

/// Opens a push socket with `token` and waits for its `hello`; then a task reads it
/// until it closes, forwarding `sync_now` notices to `heard` (watchers) or counting
/// them in `idle_notices` (idle sockets).
async fn open_socket(
    addr: SocketAddr,
    token: Arc<str>,
    heard: Option<mpsc::UnboundedSender<Heard>>,
    idle_notices: Arc<AtomicU64>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut request = format!("ws://{addr}/v1/push")
        .into_client_request()
        .context("push request")?;
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {token}").parse().context("header")?,
    );
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("connecting the push socket")?;
    stream.set_nodelay(true)?;
    // tungstenite's default 128 KiB read buffer is zero-filled on the first read:
    // 1.3 GB for 10,000 sockets in this process. Notices are small.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .context("the push handshake")?;
    let first = tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .context("no hello within 30 s")?;
    match first {
        Some(Ok(Message::Text(text))) if text.contains("\"hello\"") => {}
        other => bail!("expected hello, got {other:?}"),
    }
    Ok(tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let at = Instant::now();
            match &heard {
                Some(heard) => {
                    let notice: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if notice["type"] == "sync_now" {
                        let ids = notice["documents"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|v| v.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let _ = heard.send((ids, at));
                    }
                }
                None => {
                    idle_notices.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }))
}

/// Opens `count` sockets, socket `i` with `tokens[i % len]`, `concurrency` at a time.
async fn open_many(
    addr: SocketAddr,
    tokens: &[Arc<str>],
    count: usize,
    concurrency: usize,
    heard: Option<&mpsc::UnboundedSender<Heard>>,
    idle_notices: &Arc<AtomicU64>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut readers = Vec::with_capacity(count);
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < count || !running.is_empty() {
        while next < count && running.len() < concurrency.max(1) {
            let token = Arc::clone(&tokens[next % tokens.len()]);
            let heard = heard.cloned();
            let idle_notices = Arc::clone(idle_notices);
            running.spawn(async move { open_socket(addr, token, heard, idle_notices).await });
            next += 1;
        }
        if let Some(joined) = running.join_next().await {
            readers.push(joined.context("socket task")??);
        }
    }
    Ok(readers)
}

/// Logs `count` devices in, device `i` as `users[i % len]`, a few at a time.
async fn login_many(
    addr: SocketAddr,
    users: &[String],
    count: usize,
    concurrency: usize,
    label: &str,
) -> anyhow::Result<Vec<Phone>> {
    let mut phones: Vec<Option<Phone>> = (0..count).map(|_| None).collect();
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < count || !running.is_empty() {
        while next < count && running.len() < concurrency.max(1) {
            let (user, i) = (users[next % users.len()].clone(), next);
            let name = format!("{label} {i}");
            running
                .spawn(async move { (i, Phone::login(addr, &user, &name, i as u64 + 11).await) });
            next += 1;
        }
        if let Some(joined) = running.join_next().await {
            let (i, phone) = joined.context("login task")?;
            phones[i] = Some(phone.with_context(|| format!("logging {label} {i} in"))?);
        }
    }
    phones
        .into_iter()
        .map(|p| p.context("a device did not log in"))
        .collect()
}

/// Runs the push benchmark.
pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    if args.watchers == 0 || args.events == 0 || args.idle_devices == 0 {
        bail!("--watchers, --events and --idle-devices must be at least 1");
    }
    let wangge = Wangge {
        bin: find_wangge(args.server_bin.as_deref())?,
    };
    let database = Database::create(args.database.as_deref())?;
    println!(
        "push: {} idle sockets ({} devices), {} watchers, {} events; {} database {}",
        args.idle,
        args.idle_devices,
        args.watchers,
        args.events,
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
    let chosen = spread(&all, (IDLE_USERS + 1).min(all.len()))?;
    let event_community = chosen[0].clone();
    let idle_communities = &chosen[1..];
    if idle_communities.is_empty() {
        bail!("the district has a single community: nowhere to put the idle devices");
    }
    let idle_users: Vec<String> = (0..IDLE_USERS)
        .map(|i| format!("bench-idle-{i:02}"))
        .collect();
    let watcher_users: Vec<String> = (0..WATCHER_USERS)
        .map(|i| format!("bench-watcher-{i:02}"))
        .collect();
    let mut accounts: Vec<(String, &str, Option<&str>, String)> = vec![(
        "bench-writer".into(),
        "enforcement_officer",
        Some("enforcement"),
        event_community.code.to_string(),
    )];
    for user in &watcher_users {
        accounts.push((
            user.clone(),
            "sanitation_worker",
            Some("sanitation"),
            event_community.code.to_string(),
        ));
    }
    for (i, user) in idle_users.iter().enumerate() {
        accounts.push((
            user.clone(),
            "sanitation_worker",
            Some("sanitation"),
            idle_communities[i % idle_communities.len()]
                .code
                .to_string(),
        ));
    }
    wangge
        .add_users(&database.url, &accounts, PASSWORD)
        .await
        .context("creating the accounts")?;
    println!(
        "  event community {} {}; {} accounts created ({:.1} s)",
        event_community.code,
        event_community.name,
        accounts.len(),
        setup.elapsed().as_secs_f64()
    );

    let log = database.dir.path().join("server.log");
    let mut server = wangge
        .serve(
            &database.url,
            &log,
            &[
                ("WANGGE_ACCESS_TOKEN_SECONDS", "7200"),
                // glibc raises its mmap threshold when a large block is freed, so
                // the argon2 blocks of the logins (19 MiB each) would stay in the
                // heap once freed, and the sockets would fill that freed memory:
                // the RSS difference would read near zero. A fixed threshold
                // returns them to the system.
                ("MALLOC_MMAP_THRESHOLD_", "131072"),
            ],
        )
        .await?;
    let addr = server.addr;
    println!("  server pid {} on {addr}", server.pid);

    let login_started = Instant::now();
    let mut writer = Phone::login(addr, "bench-writer", "bench writer", 1).await?;
    let watchers = login_many(
        addr,
        &watcher_users,
        args.watchers,
        args.login_concurrency,
        "bench watcher",
    )
    .await?;
    let idle_devices = login_many(
        addr,
        &idle_users,
        args.idle_devices,
        args.login_concurrency,
        "bench idle",
    )
    .await?;
    println!(
        "  {} devices logged in ({:.1} s)",
        1 + args.watchers + args.idle_devices,
        login_started.elapsed().as_secs_f64()
    );
    // The writer syncs once (an empty round) so the first event is not its first sync.
    writer.sync(5, None).await?;

    let idle_notices = Arc::new(AtomicU64::new(0));
    let (heard_tx, mut heard_rx) = mpsc::unbounded_channel::<Heard>();
    let watcher_tokens: Vec<Arc<str>> = watchers
        .iter()
        .map(|p| Arc::from(p.token.as_str()))
        .collect();
    let mut readers = open_many(
        addr,
        &watcher_tokens,
        args.watchers,
        args.connect_concurrency,
        Some(&heard_tx),
        &idle_notices,
    )
    .await
    .context("opening the watchers' sockets")?;
    drop(heard_tx);
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.check_alive()?;
    let rss_before = server.memory_kib("VmRSS")?;
    let client_rss_before = proc_status_kib("/proc/self/status", "VmRSS")?;

    let connect_started = Instant::now();
    let idle_tokens: Vec<Arc<str>> = idle_devices
        .iter()
        .map(|p| Arc::from(p.token.as_str()))
        .collect();
    // In steps, the server's RSS after each: the later steps show the marginal cost
    // even if the first ones reuse memory the server had freed.
    let batches = args.batches.clamp(1, args.idle.max(1));
    let mut steps: Vec<(usize, u64)> = vec![(0, rss_before)];
    for b in 0..batches {
        let count = args.idle * (b + 1) / batches - args.idle * b / batches;
        readers.extend(
            open_many(
                addr,
                &idle_tokens,
                count,
                args.connect_concurrency,
                None,
                &idle_notices,
            )
            .await
            .context("opening the idle sockets")?,
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        steps.push((args.idle * (b + 1) / batches, server.memory_kib("VmRSS")?));
    }
    let connect_time = connect_started.elapsed();
    println!(
        "  {} idle sockets open ({:.1} s)",
        args.idle,
        connect_time.as_secs_f64()
    );
    // Let the first revocation checks (one per socket, at connect) finish.
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.check_alive()?;
    let rss_after = server.memory_kib("VmRSS")?;
    let client_rss_after = proc_status_kib("/proc/self/status", "VmRSS")?;
    let per_connection_kib = if args.idle > 0 {
        (rss_after as f64 - rss_before as f64) / args.idle as f64
    } else {
        f64::NAN
    };
    // KiB per connection in each step.
    let step_kib: Vec<f64> = steps
        .windows(2)
        .map(|w| (w[1].1 as f64 - w[0].1 as f64) / (w[1].0 - w[0].0).max(1) as f64)
        .collect();

    // Idle: every socket open, nothing happening.
    let idle_cpu_0 = server.cpu_seconds()?;
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let idle_cpu = server.cpu_seconds()? - idle_cpu_0;
    let rss_idle = server.memory_kib("VmRSS")?;
    println!("  idle {} s: server CPU {idle_cpu:.2} s", args.idle_seconds);

    // Events: one new case at a time; every watcher must hear it.
    let spots = &event_community.spots;
    let mut from_send = Vec::new();
    let mut from_reply = Vec::new();
    let mut rounds = Vec::new();
    let mut offsets = Vec::new();
    let mut missed = 0usize;
    let mut stray = 0usize;
    let events_cpu_0 = server.cpu_seconds()?;
    let events_started = Instant::now();
    for event in 0..args.events {
        let id = writer.report(&spots[event % spots.len()])?;
        let outcome = writer.sync(5, None).await?;
        let (sent, replied) = outcome.first.context("the writer's sync sent nothing")?;
        rounds.push(replied - sent);
        // When, after the idle sockets opened (their revocation checks run together
        // every WANGGE_PUSH_CHECK_SECONDS from then).
        offsets.push(((sent - connect_started).as_secs_f64(), replied - sent));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut got = 0;
        while got < args.watchers {
            match tokio::time::timeout_at(deadline, heard_rx.recv()).await {
                Ok(Some((ids, at))) => {
                    if ids.contains(&id) {
                        got += 1;
                        from_send.push((at - sent).as_secs_f64() * 1e3);
                        from_reply.push(if at >= replied {
                            (at - replied).as_secs_f64() * 1e3
                        } else {
                            -((replied - at).as_secs_f64() * 1e3)
                        });
                    } else {
                        stray += 1;
                    }
                }
                Ok(None) => bail!("every watcher's socket closed"),
                Err(_) => break,
            }
        }
        missed += args.watchers - got;
        tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
    }
    let events_time = events_started.elapsed();
    let events_cpu = server.cpu_seconds()? - events_cpu_0;
    server.check_alive()?;
    let online_after = readers.iter().filter(|r| !r.is_finished()).count();
    let (log_count, log_lines) = server.log_problems();
    let hwm = server.memory_kib("VmHWM")?;
    for reader in &readers {
        reader.abort();
    }
    server.stop().await;

    let send = Spread::of_ms(&from_send);
    let reply = Spread::of_ms(&from_reply);
    let round = Spread::of(&rounds);
    offsets.sort_by_key(|o| std::cmp::Reverse(o.1));
    let slowest: Vec<String> = offsets
        .iter()
        .take(5)
        .map(|(t, d)| format!("{:.0} ms at {t:.1} s", d.as_secs_f64() * 1e3))
        .collect();
    let idle_heard = idle_notices.load(Ordering::Relaxed);
    let rows = vec![
        (
            "idle sockets / their devices".to_owned(),
            format!("{} / {}", args.idle, args.idle_devices),
        ),
        (
            "watchers (devices in the writer's community)".to_owned(),
            args.watchers.to_string(),
        ),
        (
            "opening the idle sockets".to_owned(),
            format!(
                "{:.1} s ({:.0}/s)",
                connect_time.as_secs_f64(),
                args.idle as f64 / connect_time.as_secs_f64()
            ),
        ),
        (
            "server RSS before / after the idle sockets".to_owned(),
            format!(
                "{:.1} / {:.1} MiB",
                rss_before as f64 / 1024.0,
                rss_after as f64 / 1024.0
            ),
        ),
        (
            "server memory per idle connection".to_owned(),
            format!(
                "{per_connection_kib:.1} KiB  (goal ≤ {GOAL_KIB_PER_CONNECTION:.0}; automerge-repo {ANCHOR_AUTOMERGE_KIB_PER_CONNECTION:.0} KiB: {:.1}×)",
                ANCHOR_AUTOMERGE_KIB_PER_CONNECTION / per_connection_kib
            ),
        ),
        (
            "  RSS growth per connection, step by step".to_owned(),
            step_kib
                .iter()
                .map(|k| format!("{k:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
                + " KiB",
        ),
        (
            "load generator RSS before / after".to_owned(),
            format!(
                "{:.1} / {:.1} MiB",
                client_rss_before as f64 / 1024.0,
                client_rss_after as f64 / 1024.0
            ),
        ),
        (
            format!("server CPU idle for {} s", args.idle_seconds),
            format!(
                "{idle_cpu:.2} s ({:.1}% of a core)",
                idle_cpu / args.idle_seconds as f64 * 100.0
            ),
        ),
        (
            "events (new case, one sync each)".to_owned(),
            format!("{} in {:.1} s", args.events, events_time.as_secs_f64()),
        ),
        (
            "writer's sync request p50 / p90 / p99 / max".to_owned(),
            round.text(),
        ),
        (
            "  slowest, at seconds after the idle sockets opened".to_owned(),
            slowest.join(", "),
        ),
        (
            "sync_now after the request was sent".to_owned(),
            send.text(),
        ),
        (
            "  (goal p99 ≤ 20 ms; automerge-repo p50 3.8 / p99 20 ms)".to_owned(),
            format!(
                "p50 {:.1}× / p99 {:.1}× automerge-repo's",
                ANCHOR_AUTOMERGE_P50_MS / send.p50,
                ANCHOR_AUTOMERGE_P99_MS / send.p99
            ),
        ),
        ("sync_now after the reply was read".to_owned(), reply.text()),
        (
            "notices missed (not heard within 5 s)".to_owned(),
            missed.to_string(),
        ),
        (
            "stray sync_now (other documents) / to idle sockets".to_owned(),
            format!("{stray} / {idle_heard}"),
        ),
        (
            "server CPU during the events".to_owned(),
            format!(
                "{events_cpu:.2} s ({:.2} ms per event)",
                events_cpu * 1e3 / args.events as f64
            ),
        ),
        (
            "server RSS after idle / peak".to_owned(),
            format!(
                "{:.1} / {:.1} MiB",
                rss_idle as f64 / 1024.0,
                hwm as f64 / 1024.0
            ),
        ),
        (
            "sockets still open at the end".to_owned(),
            format!("{online_after} / {}", readers.len()),
        ),
        (
            "server log warnings/errors".to_owned(),
            log_count.to_string(),
        ),
    ];
    print_table(
        &format!("wangge-bench push ({})", database.backend()),
        &rows,
    );
    for line in &log_lines {
        println!("  server log: {line}");
    }
    let result = json!({
        "bench": "push",
        "machine": machine(&wangge.bin),
        "database": database.backend(),
        "idle_sockets": args.idle,
        "idle_devices": args.idle_devices,
        "watchers": args.watchers,
        "events": args.events,
        "connect_seconds": round3(connect_time.as_secs_f64()),
        "server_rss_kib_before_idle": rss_before,
        "server_rss_kib_after_idle": rss_after,
        "server_rss_kib_after_idle_period": rss_idle,
        "server_peak_rss_kib": hwm,
        "kib_per_idle_connection": round3(per_connection_kib),
        "kib_per_idle_connection_by_step": step_kib.iter().map(|k| round3(*k)).collect::<Vec<_>>(),
        "server_rss_kib_by_step": steps.iter().map(|(n, kib)| json!({ "sockets": n, "rss_kib": kib })).collect::<Vec<_>>(),
        "client_rss_kib_before": client_rss_before,
        "client_rss_kib_after": client_rss_after,
        "idle_seconds": args.idle_seconds,
        "server_cpu_idle_seconds": round3(idle_cpu),
        "writer_request": round.json(),
        "slowest_writer_requests_after_idle_sockets_opened": slowest,
        "notice_after_send": send.json(),
        "notice_after_reply": reply.json(),
        "notices_missed": missed,
        "stray_notices": stray,
        "idle_sockets_notified": idle_heard,
        "server_cpu_events_seconds": round3(events_cpu),
        "sockets_open_at_end": online_after,
        "server_log_problems": log_count,
        "server_log_sample": log_lines,
        "ratios": {
            "p99_vs_goal_20_ms": round3(send.p99 / GOAL_P99_MS),
            "automerge_repo_p50_3_8_ms_vs_ours": round3(ANCHOR_AUTOMERGE_P50_MS / send.p50),
            "automerge_repo_p99_20_ms_vs_ours": round3(ANCHOR_AUTOMERGE_P99_MS / send.p99),
            "kib_per_connection_vs_goal_20": round3(per_connection_kib / GOAL_KIB_PER_CONNECTION),
            "automerge_repo_kib_per_connection_vs_ours": round3(ANCHOR_AUTOMERGE_KIB_PER_CONNECTION / per_connection_kib),
        },
    });
    write_json(&args.out.unwrap_or_else(|| default_out("push")), &result)?;
    if missed > 0 {
        bail!("{missed} notices were not heard within 5 s");
    }
    Ok(())
}
