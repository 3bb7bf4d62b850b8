//! `wangge-bench photos`: phones upload photos over the resumable upload
//! (`PATCH /v1/blobs/{sha256}`, in chunks or in one request) into a real `wangge serve`;
//! photos per second, the server's CPU per photo (and the share spent processing), the
//! requests' latency, the server's peak memory with every phone finishing at once;
//! then a supervisor fetches the thumbnails of a case list and a display size in ranges.
//!
//! The photos are what phones send: a 12 MP camera JPEG with EXIF through sync-core's
//! `prepare_upload` (2048 px, no metadata, ~0.3 MB), made distinct per photo by a JPEG
//! comment segment (the server's work is the same for each; the comment is stripped).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use wangge_sync_core::photo::fixtures::{camera_fields, jpeg, textured, tiff, with_exif};
use wangge_sync_core::photo::{prepare_upload, sha256_hex};

use crate::phone::{PASSWORD, Phone};
use crate::report::{Spread, default_out, machine, print_table, round3, write_json};
use crate::server::{Database, Metrics, Wangge, find_wangge, proc_cpu_seconds, redact};
use crate::world::{communities, spread};

/// Options of `photos`.
#[derive(Debug, clap::Args)]
pub struct PhotosArgs {
    /// Phones uploading at once.
    #[arg(long, default_value_t = 16)]
    phones: usize,
    /// Photos each phone uploads (one case each).
    #[arg(long, default_value_t = 5)]
    photos_per_phone: usize,
    /// Bytes per `PATCH` (0: each photo in one request, as on a good link).
    #[arg(long, default_value_t = 256 * 1024)]
    chunk_bytes: usize,
    /// `WANGGE_PHOTO_WORKERS` for the server (default: its own, half the cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Rounds of fetching every thumbnail (a case list's pictures).
    #[arg(long, default_value_t = 5)]
    thumb_rounds: usize,
    /// The `wangge` binary (default: beside this tool).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// `sqlite` (a fresh file, the default) or `postgres://USER@HOST:PORT/DB`.
    #[arg(long)]
    database: Option<String>,
    /// The district whose grids are cut and imported.
    #[arg(long, default_value = "410105")]
    district: String,
    /// Where the JSON results go.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A photo ready to upload.
struct Upload {
    bytes: Vec<u8>,
    sha256: String,
}

/// `jpeg` with a comment segment (`FF FE`) after SOI holding `n`: another file, the
/// same image.
fn distinct(jpeg: &[u8], n: usize) -> Vec<u8> {
    let text = format!("wangge-bench photo {n}");
    let length = u16::try_from(text.len() + 2).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xff, 0xfe]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The SQLite file and its WAL, bytes (0 on PostgreSQL).
fn database_bytes(database: &Database) -> u64 {
    let Some(path) = database.url.strip_prefix("sqlite://") else {
        return 0;
    };
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{path}{suffix}")).ok())
        .map(|m| m.len())
        .sum()
}

/// One photo's upload: every request's latency; the last is the finishing one.
async fn upload(phone: &mut Phone, photo: &Upload, chunk: usize) -> anyhow::Result<Vec<Duration>> {
    let (path, length) = (
        format!("/v1/blobs/{}", photo.sha256),
        photo.bytes.len().to_string(),
    );
    let bearer = format!("Bearer {}", phone.token);
    let step = if chunk == 0 { photo.bytes.len() } else { chunk };
    let mut latencies = Vec::new();
    let mut offset = 0;
    loop {
        let end = (offset + step).min(photo.bytes.len());
        let offset_text = offset.to_string();
        let started = Instant::now();
        let response = phone
            .http
            .request(
                "PATCH",
                &path,
                &[
                    ("Authorization", &bearer),
                    ("Content-Type", "application/offset+octet-stream"),
                    ("Upload-Offset", &offset_text),
                    ("Upload-Length", &length),
                ],
                &photo.bytes[offset..end],
            )
            .await?;
        latencies.push(started.elapsed());
        match response.status {
            204 => offset = end,
            200 => return Ok(latencies),
            other => bail!(
                "PATCH at {offset} answered {other}: {}",
                response.error_code()
            ),
        }
    }
}

/// Runs the photos benchmark.
pub async fn run(args: PhotosArgs) -> anyhow::Result<()> {
    if args.phones == 0 || args.photos_per_phone == 0 {
        bail!("--phones and --photos-per-phone must be at least 1");
    }
    let wangge = Wangge {
        bin: find_wangge(args.server_bin.as_deref())?,
    };
    let database = Database::create(args.database.as_deref())?;
    let total = args.phones * args.photos_per_phone;
    println!(
        "photos: {} phones × {} photos, {}; {} database {}",
        args.phones,
        args.photos_per_phone,
        if args.chunk_bytes == 0 {
            "one request each".to_owned()
        } else {
            format!("{} KiB chunks", args.chunk_bytes / 1024)
        },
        database.backend(),
        redact(&database.url)
    );

    // The photo a phone sends, once (its preparation is the phone's cost, measured in
    // the criterion bench), then made distinct.
    let prepared = tokio::task::spawn_blocking(|| {
        let original = with_exif(
            &jpeg(&textured(4000, 3000, 0x1234_5678_9ABC_DEF0), 90),
            &tiff(&camera_fields(6)),
        );
        prepare_upload(&original)
    })
    .await?
    .context("preparing the photo")?;
    let photos: Vec<Arc<Upload>> = (0..total)
        .map(|n| {
            let bytes = distinct(&prepared.bytes, n);
            Arc::new(Upload {
                sha256: sha256_hex(&bytes),
                bytes,
            })
        })
        .collect();
    let photo_bytes = photos[0].bytes.len();
    println!(
        "  the phone's photo: {} × {}, {} bytes",
        prepared.width, prepared.height, photo_bytes
    );

    let grid_file = database.dir.path().join("grids.geojson");
    wangge
        .grids(&args.district, &grid_file, &database.url)
        .await
        .context("cutting and importing the grids")?;
    let chosen = spread(&communities(&grid_file)?, 1)?;
    let community = chosen.first().context("no community")?.clone();
    let mut accounts: Vec<(String, &str, Option<&str>, String)> = (0..args.phones)
        .map(|i| {
            (
                format!("bench-officer-{i:04}"),
                "enforcement_officer",
                Some("enforcement"),
                community.code.to_string(),
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
    let log = database.dir.path().join("server.log");
    let workers = args.workers.map(|n| n.to_string());
    let mut env = vec![("WANGGE_ACCESS_TOKEN_SECONDS", "7200")];
    if let Some(workers) = &workers {
        env.push(("WANGGE_PHOTO_WORKERS", workers));
    }
    let chunk_limit = args.chunk_bytes.max(1024 * 1024).to_string();
    env.push(("WANGGE_BLOB_MAX_CHUNK_BYTES", &chunk_limit));
    let mut server = wangge.serve(&database.url, &log, &env).await?;
    println!("  server pid {} on {}", server.pid, server.addr);

    // Each phone reports its cases with their photo entries and syncs (not measured):
    // the references exist before the bytes, as the app does it.
    let mut phones = Vec::new();
    for i in 0..args.phones {
        let mut phone = Phone::login(
            server.addr,
            &format!("bench-officer-{i:04}"),
            &format!("bench phone {i}"),
            i as u64 + 1,
        )
        .await?;
        for k in 0..args.photos_per_phone {
            phone.report(&community.spots[k % community.spots.len()])?;
            phone.add_photos(k, &[photos[i * args.photos_per_phone + k].sha256.clone()])?;
        }
        phone.sync(10, None).await?;
        phones.push(phone);
    }
    server.check_alive()?;

    // The measured phase: every phone uploads its photos, all at once.
    let database_bytes_0 = database_bytes(&database);
    let metrics_0 = Metrics::scrape(server.addr).await;
    let server_cpu_0 = server.cpu_seconds()?;
    let client_cpu_0 = proc_cpu_seconds("/proc/self/stat")?;
    let rss_before = server.memory_kib("VmRSS")?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut phone) in phones.into_iter().enumerate() {
        let mine: Vec<Arc<Upload>> =
            photos[i * args.photos_per_phone..(i + 1) * args.photos_per_phone].to_vec();
        let chunk = args.chunk_bytes;
        tasks.spawn(async move {
            let mut all = Vec::new();
            for photo in &mine {
                all.push(upload(&mut phone, photo, chunk).await?);
            }
            anyhow::Ok(all)
        });
    }
    let (mut requests, mut finishing, mut per_photo) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(joined) = tasks.join_next().await {
        for latencies in joined.context("upload task")?? {
            per_photo.push(latencies.iter().sum::<Duration>());
            finishing.extend(latencies.last().copied());
            requests.extend(latencies);
        }
    }
    let elapsed = started.elapsed();
    let stored_bytes = database_bytes(&database).saturating_sub(database_bytes_0);
    let server_cpu = server.cpu_seconds()? - server_cpu_0;
    let client_cpu = proc_cpu_seconds("/proc/self/stat")? - client_cpu_0;
    let hwm = server.memory_kib("VmHWM")?;
    let metrics = match (metrics_0, Metrics::scrape(server.addr).await) {
        (Some(before), Some(after)) => after.minus(&before),
        _ => bail!("the server has no /metrics"),
    };
    let processed = metrics.counter("wangge_photo_process_seconds_count");
    let process_s = metrics.counter("wangge_photo_process_seconds_sum");
    if processed as usize != total {
        bail!("{processed} photos processed, {total} uploaded");
    }

    // Serving: a supervisor's case list shows every thumbnail; one display size is
    // read in four ranges.
    let mut verifier = Phone::login(server.addr, "bench-verifier", "bench verifier", 7).await?;
    let bearer = format!("Bearer {}", verifier.token);
    let mut thumbs = Vec::new();
    let serve_started = Instant::now();
    for _ in 0..args.thumb_rounds {
        for photo in &photos {
            let started = Instant::now();
            let response = verifier
                .http
                .request(
                    "GET",
                    &format!("/v1/blobs/{}/thumb", photo.sha256),
                    &[("Authorization", &bearer)],
                    b"",
                )
                .await?;
            thumbs.push(started.elapsed());
            if response.status != 200 {
                bail!(
                    "thumbnail answered {}: {}",
                    response.status,
                    response.error_code()
                );
            }
        }
    }
    let serve_elapsed = serve_started.elapsed();
    let display_path = format!("/v1/blobs/{}/display", photos[0].sha256);
    let whole = verifier
        .http
        .request("GET", &display_path, &[("Authorization", &bearer)], b"")
        .await?;
    let quarter = whole.body.len().div_ceil(4);
    let mut ranged = Vec::new();
    for part in 0..4 {
        let range = format!(
            "bytes={}-{}",
            part * quarter,
            ((part + 1) * quarter).min(whole.body.len()) - 1
        );
        let response = verifier
            .http
            .request(
                "GET",
                &display_path,
                &[("Authorization", &bearer), ("Range", &range)],
                b"",
            )
            .await?;
        if response.status != 206 {
            bail!("a range answered {}", response.status);
        }
        ranged.extend(response.body);
    }
    if ranged != whole.body {
        bail!("the four ranges do not make the display size");
    }
    let (log_count, log_lines) = server.log_problems();
    server.stop().await;

    let per_s = total as f64 / elapsed.as_secs_f64();
    let request = Spread::of(&requests);
    let finish = Spread::of(&finishing);
    let whole_photo = Spread::of(&per_photo);
    let thumb = Spread::of(&thumbs);
    let cpu_ms = server_cpu * 1e3 / total as f64;
    let process_ms = process_s * 1e3 / total as f64;
    let rows = vec![
        (
            "photos uploaded".to_owned(),
            format!("{total} × {photo_bytes} bytes"),
        ),
        (
            "measured phase (wall)".to_owned(),
            format!("{:.2} s", elapsed.as_secs_f64()),
        ),
        (
            "photos / s, MB / s".to_owned(),
            format!("{per_s:.1}, {:.2}", per_s * photo_bytes as f64 / 1e6),
        ),
        ("server CPU per photo".to_owned(), format!("{cpu_ms:.1} ms")),
        (
            "  of which verify + process (wall in the worker)".to_owned(),
            format!("{process_ms:.1} ms"),
        ),
        ("PATCH latency".to_owned(), request.text()),
        ("finishing PATCH latency".to_owned(), finish.text()),
        (
            "whole photo (sum of its requests)".to_owned(),
            whole_photo.text(),
        ),
        (
            "server RSS before / peak (VmHWM)".to_owned(),
            format!(
                "{:.1} / {:.1} MiB",
                rss_before as f64 / 1024.0,
                hwm as f64 / 1024.0
            ),
        ),
        (
            "thumbnail fetch (authorization + read)".to_owned(),
            format!(
                "{}; {:.0} / s",
                thumb.text(),
                thumbs.len() as f64 / serve_elapsed.as_secs_f64()
            ),
        ),
        (
            "database growth per photo (SQLite file + WAL)".to_owned(),
            if stored_bytes > 0 {
                format!("{:.0} bytes", stored_bytes as f64 / total as f64)
            } else {
                "n/a".to_owned()
            },
        ),
        ("client CPU".to_owned(), format!("{client_cpu:.2} s")),
        (
            "server log warnings/errors".to_owned(),
            log_count.to_string(),
        ),
    ];
    print_table("photos", &rows);
    for line in log_lines.iter().take(5) {
        println!("  log: {line}");
    }
    let out = args.out.unwrap_or_else(|| default_out("photos"));
    write_json(
        &out,
        &json!({
            "machine": machine(&wangge.bin),
            "backend": database.backend(),
            "phones": args.phones,
            "photos_per_phone": args.photos_per_phone,
            "chunk_bytes": args.chunk_bytes,
            "workers": args.workers,
            "photo_bytes": photo_bytes,
            "seconds": round3(elapsed.as_secs_f64()),
            "photos_per_s": round3(per_s),
            "server_cpu_ms_per_photo": round3(cpu_ms),
            "process_ms_per_photo": round3(process_ms),
            "patch_ms": request.json(),
            "finishing_patch_ms": finish.json(),
            "photo_ms": whole_photo.json(),
            "server_rss_before_kib": rss_before,
            "server_hwm_kib": hwm,
            "thumb_ms": thumb.json(),
            "thumbs_per_s": round3(thumbs.len() as f64 / serve_elapsed.as_secs_f64()),
            "database_growth_bytes": stored_bytes,
            "client_cpu_s": round3(client_cpu),
            "log_problems": log_count,
        }),
    )?;
    Ok(())
}
