//! Photo benchmarks on a 12-megapixel camera JPEG (4000 × 3000, quality 90, EXIF with
//! GPS, time and Orientation 6): the server's validate + EXIF + strip + display and
//! thumbnail derivatives (`photos::process`), header-only validation (`photos::probe`),
//! and the phone's compression for upload (`sync_core::photo::prepare_upload`).
//!
//! Peak memory is measured twice: the heap's high-water mark (a counting allocator)
//! and the process's resident-set high-water mark (`VmHWM`, reset through
//! `/proc/self/clear_refs` just before the run), which is what `/usr/bin/time -v`
//! reports for ImageMagick. Both, with the output sizes, go to
//! `target/bench-data/photo/report.json`. The photo is generated once (a smooth
//! gradient with texture and noise, so it compresses like a photo) and cached as
//! `target/bench-data/photo/photo-4000x3000.jpg`. `scripts/bench-photos.sh` runs this
//! and ImageMagick's `convert` on the same file and prints the ratios.

#![allow(unsafe_code)] // the counting allocator below
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use image::ImageEncoder;
use wangge_server::photos::{SERVER_LIMITS, probe, process};
use wangge_sync_core::photo::fixtures::{camera_fields, tiff, with_exif};
use wangge_sync_core::photo::prepare_upload;

#[path = "../../sync-core/benches/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, heap_peak};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/bench-data/photo"
    ))
}

/// xorshift64: the same photo on every machine.
/// The cached camera photo, generated on first use.
fn camera_photo() -> Vec<u8> {
    let path = data_dir().join("photo-4000x3000.jpg");
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes;
    }
    let image = wangge_sync_core::photo::fixtures::textured(WIDTH, HEIGHT, 0x1234_5678_9ABC_DEF0);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .write_image(
            image.as_raw(),
            WIDTH,
            HEIGHT,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let photo = with_exif(&jpeg, &tiff(&camera_fields(6)));
    std::fs::create_dir_all(data_dir()).unwrap();
    std::fs::write(&path, &photo).unwrap();
    photo
}

/// The process's resident-set high-water mark over `run`, KiB (Linux; `None` elsewhere).
fn rss_peak<T>(run: impl FnOnce() -> T) -> (T, Option<u64>) {
    // Writing 5 to clear_refs resets VmHWM to the current RSS.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let result = run();
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        });
    (result, if reset { hwm } else { None })
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn report(photo: &[u8]) {
    let (processed, server_heap) = heap_peak(|| process(photo, &SERVER_LIMITS).unwrap());
    let (_, server_rss_kib) = rss_peak(|| process(photo, &SERVER_LIMITS).unwrap());
    let (upload, phone_heap) = heap_peak(|| prepare_upload(photo).unwrap());
    let json = serde_json::json!({
        "input_bytes": photo.len(),
        "input_size": [WIDTH, HEIGHT],
        "server_heap_peak_mib": mib(server_heap),
        "server_rss_hwm_mib": server_rss_kib.map(|kib| kib as f64 / 1024.0),
        "display_size": [processed.display.width, processed.display.height],
        "display_bytes": processed.display.bytes.len(),
        "thumbnail_size": [processed.thumbnail.width, processed.thumbnail.height],
        "thumbnail_bytes": processed.thumbnail.bytes.len(),
        "phone_heap_peak_mib": mib(phone_heap),
        "phone_output_size": [upload.width, upload.height],
        "phone_output_bytes": upload.bytes.len(),
    });
    println!("photo report: {json:#}");
    let mut file = std::fs::File::create(data_dir().join("report.json")).unwrap();
    writeln!(file, "{json:#}").unwrap();
    std::fs::write(data_dir().join("display.jpg"), &processed.display.bytes).unwrap();
    std::fs::write(data_dir().join("thumbnail.jpg"), &processed.thumbnail.bytes).unwrap();
    std::fs::write(data_dir().join("upload.jpg"), &upload.bytes).unwrap();
}

fn photos(c: &mut Criterion) {
    let photo = camera_photo();
    report(&photo);
    let mut group = c.benchmark_group("photos");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("server_process_12mp", |b| {
        b.iter(|| process(black_box(&photo), &SERVER_LIMITS).unwrap())
    });
    group.bench_function("server_probe_12mp", |b| {
        b.iter(|| probe(black_box(&photo), &SERVER_LIMITS).unwrap())
    });
    group.bench_function("phone_prepare_upload_12mp", |b| {
        b.iter(|| prepare_upload(black_box(&photo)).unwrap())
    });
    // What the server gets from phones: the 2048 × 1536 upload. jpeg-decoder cannot
    // scale it (1/2 would be under 1280), so it is decoded whole.
    let uploaded = prepare_upload(&photo).unwrap().bytes;
    group.bench_function("server_process_phone_upload_2048", |b| {
        b.iter(|| process(black_box(&uploaded), &SERVER_LIMITS).unwrap())
    });
    group.bench_function("sha256_phone_upload", |b| {
        b.iter(|| wangge_sync_core::photo::sha256_hex(black_box(&uploaded)))
    });
    group.finish();
}

criterion_group!(benches, photos);
criterion_main!(benches);
