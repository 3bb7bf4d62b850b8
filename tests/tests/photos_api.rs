//! Photos end to end with the real `wangge` binary, on SQLite and PostgreSQL: a phone
//! prepares a camera photo (EXIF read, upright, re-encoded without metadata), reports
//! a case with it and syncs, then uploads it in chunks; the server is killed with
//! SIGKILL half way and restarted, and the upload resumes where the acknowledged
//! chunks end. A supervisor fetches the stripped thumbnail; a user of another district
//! is told there is no such photo. On PostgreSQL, two nodes take alternate chunks of
//! one upload.

use serde_json::Value;
use wangge_sync_core::case::{CaseDocument, NewCase, Photo, PhotoRole, Position, Source};
use wangge_sync_core::photo::fixtures::{camera_fields, gradient, has_exif, jpeg, tiff, with_exif};
use wangge_sync_core::photo::{UploadPhoto, prepare_upload};
use wangge_tests::phone::Phone;
use wangge_tests::{Server, add_user, databases, http};

const PASSWORD: &str = "网格-2026-ok";
const CHUNK: usize = 16 * 1024;
const ENV: [(&str, &str); 1] = [("WANGGE_BLOB_MAX_CHUNK_BYTES", "16384")];

/// A camera photo (GPS, time, orientation 6) with noise, prepared as a phone does.
fn prepared_photo(seed: u32) -> UploadPhoto {
    let mut image = gradient(1600, 1200);
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    for pixel in image.pixels_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        pixel.0[1] = (state & 0xff) as u8;
    }
    let original = with_exif(&jpeg(&image, 92), &tiff(&camera_fields(6)));
    prepare_upload(&original).expect("prepared")
}

/// The officer reports a case with the photo's entry, offline, then syncs.
fn report_with_photo(server: &Server, officer: &mut Phone, id: &str, photo: &UploadPhoto) {
    let new = NewCase {
        id: id.into(),
        category: "E0102".parse().expect("category"),
        location: Position {
            lon: 113.68,
            lat: 34.78,
            accuracy_m: Some(6.0),
        },
        grid: Some("410105001001001".parse().expect("grid")),
        address: "金水区 花园路".into(),
        description: "路边暴露垃圾".into(),
        source: Source::Patrol,
        source_ref: None,
        caller: None,
    };
    let when = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("time");
    let mut case =
        CaseDocument::create(&new, &officer.actor, &format!("{id}-report"), when).expect("report");
    let entry = Photo {
        hash: photo.sha256.clone(),
        role: PhotoRole::Before,
        taken_at: photo.metadata.taken_at,
        position: photo.metadata.position,
        added_by: officer.actor.user.clone(),
        added_at: when,
    };
    case.add_photo(&officer.actor, &entry).expect("photo");
    officer.write(id, &case);
    officer.sync(server);
}

/// One chunk of `bytes` at `offset`: the status and `Upload-Offset` of the answer.
fn patch(server: &Server, token: &str, photo: &UploadPhoto, offset: usize) -> (u16, Option<u64>) {
    let end = (offset + CHUNK).min(photo.bytes.len());
    let response = http()
        .patch(server.url(&format!("/v1/blobs/{}", photo.sha256)))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string())
        .header("Upload-Length", photo.bytes.len().to_string())
        .send(&photo.bytes[offset..end])
        .expect("the request reaches the server");
    let offset = response
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status().as_u16(), offset)
}

fn head_offset(server: &Server, token: &str, sha: &str) -> (u16, Option<u64>) {
    let response = http()
        .head(server.url(&format!("/v1/blobs/{sha}")))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .expect("HEAD reaches the server");
    let offset = response
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status().as_u16(), offset)
}

fn get(server: &Server, phone: &Phone, path: &str) -> (u16, Vec<u8>) {
    let mut response = http()
        .get(server.url(path))
        .header("Authorization", format!("Bearer {}", phone.token))
        .call()
        .expect("GET reaches the server");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_vec().expect("body"))
}

fn accounts(url: &str) {
    add_user(
        url,
        "officer",
        "enforcement_officer",
        Some("enforcement"),
        "410105001001",
        PASSWORD,
    );
    add_user(url, "city", "city_supervisor", None, "*", PASSWORD);
    add_user(
        url,
        "outsider",
        "district_supervisor",
        None,
        "410102",
        PASSWORD,
    );
}

#[test]
fn a_photo_upload_survives_a_killed_server_and_only_the_case_scope_sees_it() {
    for database in databases() {
        let (url, backend) = (&database.url, database.backend);
        accounts(url);
        let server = Server::start(url, &ENV);
        let mut officer = Phone::login(&server, "officer", PASSWORD);
        let photo = prepared_photo(1);
        assert!(photo.metadata.position.is_some() && photo.metadata.taken_at.is_some());
        assert!(!has_exif(&photo.bytes), "the phone uploads no metadata");
        assert!(photo.bytes.len() > 6 * CHUNK, "{} bytes", photo.bytes.len());
        report_with_photo(&server, &mut officer, "case-photo-1", &photo);

        // Half the chunks, acknowledged; then the server is killed.
        let half = photo.bytes.len() / CHUNK / 2 * CHUNK;
        let mut offset = 0;
        while offset < half {
            let (status, next) = patch(&server, &officer.token, &photo, offset);
            assert_eq!(status, 204, "{backend}");
            offset = usize::try_from(next.expect("Upload-Offset")).expect("offset");
        }
        drop(server); // SIGKILL
        let server = Server::start(url, &ENV);
        // Everything acknowledged is there; the rest follows from there.
        let (status, resumed) = head_offset(&server, &officer.token, &photo.sha256);
        assert_eq!((status, resumed), (200, Some(half as u64)), "{backend}");
        let mut offset = half;
        let last = loop {
            let (status, next) = patch(&server, &officer.token, &photo, offset);
            match status {
                204 => offset = usize::try_from(next.expect("offset")).expect("offset"),
                other => break other,
            }
        };
        assert_eq!(last, 200, "{backend}");

        // The city supervisor sees the case, so its photo; the other district does not.
        let city = Phone::login(&server, "city", PASSWORD);
        let outsider = Phone::login(&server, "outsider", PASSWORD);
        let path = format!("/v1/blobs/{}/thumb", photo.sha256);
        let (status, thumb) = get(&server, &city, &path);
        assert_eq!(status, 200, "{backend}");
        assert!(!has_exif(&thumb), "{backend}: EXIF in the thumbnail");
        let image = image_size(&thumb);
        assert_eq!(image, (240, 320), "{backend}: upright portrait thumbnail");
        let (status, body) = get(&server, &outsider, &path);
        let body: Value = serde_json::from_slice(&body).expect("JSON error");
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("photo_not_found"))
        );

        // The case as the API shows it names the photo.
        let (status, case) = get(&server, &city, "/v1/cases/case-photo-1");
        assert_eq!(status, 200, "{backend}");
        let case: Value = serde_json::from_slice(&case).expect("JSON");
        let listed = &case["photos"][0];
        assert_eq!(
            listed["hash"].as_str(),
            Some(photo.sha256.as_str()),
            "{backend}: {case}"
        );
        // The URL the case names is the one that serves it.
        let (status, _) = get(&server, &city, listed["thumb"].as_str().expect("thumb URL"));
        assert_eq!(status, 200, "{backend}");
    }
}

#[test]
fn two_nodes_take_alternate_chunks_of_one_upload() {
    let Some(database) = databases().into_iter().find(|d| d.backend == "postgres") else {
        wangge_tests::skipped("two nodes", "they share a PostgreSQL database");
        return;
    };
    let url = &database.url;
    accounts(url);
    let nodes = [Server::start(url, &ENV), Server::start(url, &ENV)];
    let mut officer = Phone::login(&nodes[0], "officer", PASSWORD);
    let photo = prepared_photo(2);
    report_with_photo(&nodes[0], &mut officer, "case-photo-2", &photo);
    let (mut offset, mut n) = (0, 0);
    let last = loop {
        let (status, next) = patch(&nodes[n % 2], &officer.token, &photo, offset);
        n += 1;
        match status {
            204 => offset = usize::try_from(next.expect("offset")).expect("offset"),
            other => break other,
        }
    };
    assert_eq!(last, 200);
    assert!(n > 4, "{n} chunks");
    let city = Phone::login(&nodes[1], "city", PASSWORD);
    let (status, display) = get(
        &nodes[1],
        &city,
        &format!("/v1/blobs/{}/display", photo.sha256),
    );
    assert_eq!(status, 200);
    assert_eq!(image_size(&display), (960, 1280));
}

/// Width and height from a baseline JPEG's SOF0 marker.
fn image_size(jpeg: &[u8]) -> (u32, u32) {
    let at = jpeg
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("a baseline JPEG");
    let height = u32::from(u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]));
    let width = u32::from(u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]));
    (width, height)
}
