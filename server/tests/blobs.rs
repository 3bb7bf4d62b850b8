//! Photos over real HTTP on loopback, on SQLite and PostgreSQL: the resumable upload
//! (cut at random bytes and resumed; two phones with one photo; every refusal), the
//! derivatives (no EXIF, upright, scope, caching and ranges) and garbage collection.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Fresh, at, backends, case_rules, new_case, store_case};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wangge_server::api::{AppState, now_ms, router};
use wangge_server::auth::{Auth, hash_password};
use wangge_server::blobs::{BlobSettings, Blobs};
use wangge_server::store::{Store, User};
use wangge_sync_core::case::{CaseDocument, Photo, PhotoRole};
use wangge_sync_core::catalog::{Catalog, TeamId};
use wangge_sync_core::ownership::Ownership;
use wangge_sync_core::photo::fixtures::{
    camera_fields, gradient, has_exif, jpeg, png_bomb, tiff, tiff_with_entry, with_exif,
};
use wangge_sync_core::photo::sha256_hex;
use wangge_sync_core::role::{Actor, Role};

const PASSWORD: &str = "correct horse";
/// Small chunks, so a photo of a few hundred KB is many of them.
const CHUNK: usize = 8 * 1024;
const MAX_BYTES: u64 = 2 * 1024 * 1024;

/// (id, role, team, scope). The test case is in unit grid 410102001001001.
const USERS: [(&str, Role, Option<&str>, &str); 5] = [
    (
        "officer",
        Role::EnforcementOfficer,
        Some("enforcement"),
        "410102001001",
    ),
    ("zy-sup", Role::DistrictSupervisor, None, "410102"),
    ("jj-sup", Role::DistrictSupervisor, None, "410105"),
    ("nobody-posted", Role::Assistant, Some("enforcement"), ""),
    ("disabled", Role::DistrictSupervisor, None, "410102"),
];

struct Api {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    blobs: Arc<Blobs>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn settings() -> BlobSettings {
    BlobSettings {
        max_bytes: MAX_BYTES,
        max_chunk: CHUNK as u64,
        max_uploads_per_device: 4,
        workers: 1,
        ..BlobSettings::default()
    }
}

async fn start(store: Arc<dyn Store>) -> Api {
    start_with(store, settings()).await
}

async fn start_with(store: Arc<dyn Store>, settings: BlobSettings) -> Api {
    let hash = hash_password(PASSWORD).expect("hash");
    for (id, role, team, scope) in USERS {
        store
            .create_user(&User {
                id: id.into(),
                display_name: id.into(),
                role,
                team: team.map(|t| TeamId::new(t).expect("team")),
                scope: scope.parse().expect("scope"),
                password_hash: hash.clone(),
                created_at: 0,
                disabled: false,
            })
            .await
            .expect("user");
    }
    let ownership = Arc::new(Ownership::builtin(Catalog::builtin()).expect("ownership"));
    let auth = Auth::new(store.clone(), Default::default(), now_ms())
        .await
        .expect("auth");
    let metrics = Arc::new(wangge_server::metrics::Metrics::new());
    let blobs = Arc::new(Blobs::new(store.clone(), settings, Arc::clone(&metrics)));
    let state = AppState {
        store: store.clone(),
        auth: Arc::new(auth),
        grids: None,
        ownership,
        sync: Arc::new(wangge_server::sync::SyncEngine::new(
            Default::default(),
            case_rules(),
            4,
        )),
        push: Arc::new(wangge_server::push::PushHub::new(Duration::from_secs(30))),
        metrics,
        blobs: Arc::clone(&blobs),
        assessment: Arc::new(wangge_sync_core::assessment::AssessmentRules::standard()),
        outlines: Default::default(),
        console: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state)).await.expect("serve");
    });
    Api {
        addr,
        store,
        blobs,
        server,
    }
}

/// An HTTP answer: status, headers (lowercase names) and body.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn offset(&self) -> Option<u64> {
        self.header("upload-offset").and_then(|v| v.parse().ok())
    }
}

fn request_head(api: &Api, method: &str, path: &str, headers: &[(&str, String)]) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        api.addr
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// One exchange on its own connection.
async fn call(
    api: &Api,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(api.addr)
        .await
        .expect("connect");
    stream
        .write_all(request_head(api, method, path, headers).as_bytes())
        .await
        .expect("send head");
    // The server may answer (and close) before reading a body it refuses.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    parse(&answer, method == "HEAD")
}

fn parse(answer: &[u8], head_only: bool) -> Answer {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = std::str::from_utf8(&answer[..end]).expect("UTF-8 head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = answer[end + 4..].to_vec();
    if head_only {
        body.clear();
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n").expect("size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line]).expect("hex").trim(), 16)
                .expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[line + 2..line + 2 + size]);
        rest = &rest[line + 2 + size + 2..];
    }
}

/// Logs `user` in on a new device: the access token.
async fn login(api: &Api, user: &str) -> String {
    let body = json!({ "user": user, "password": PASSWORD, "device": { "name": "test" } });
    let answer = call(
        api,
        "POST",
        "/v1/auth/login",
        &[
            ("Content-Type", "application/json".into()),
            ("Content-Length", body.to_string().len().to_string()),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 200, "login {user}");
    answer.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// `PATCH` of `chunk` at `offset` of an upload of `length` bytes.
async fn patch(
    api: &Api,
    token: &str,
    sha: &str,
    offset: usize,
    length: usize,
    chunk: &[u8],
) -> Answer {
    call(
        api,
        "PATCH",
        &format!("/v1/blobs/{sha}"),
        &patch_headers(token, offset, length, chunk.len()),
        chunk,
    )
    .await
}

fn patch_headers(
    token: &str,
    offset: usize,
    length: usize,
    chunk: usize,
) -> Vec<(&'static str, String)> {
    vec![
        bearer(token),
        ("Content-Type", "application/offset+octet-stream".into()),
        ("Upload-Offset", offset.to_string()),
        ("Upload-Length", length.to_string()),
        ("Content-Length", chunk.to_string()),
    ]
}

async fn head(api: &Api, token: &str, sha: &str) -> Answer {
    call(
        api,
        "HEAD",
        &format!("/v1/blobs/{sha}"),
        &[bearer(token)],
        &[],
    )
    .await
}

/// Uploads `bytes` whole, chunk by chunk: the last answer.
async fn upload(api: &Api, token: &str, bytes: &[u8]) -> Answer {
    let sha = sha256_hex(bytes);
    let mut offset = 0;
    loop {
        let end = (offset + CHUNK).min(bytes.len());
        let answer = patch(api, token, &sha, offset, bytes.len(), &bytes[offset..end]).await;
        if answer.status != 204 {
            return answer;
        }
        offset = end;
    }
}

/// A camera photo: EXIF with GPS and time, orientation 6 (turn 90° clockwise), and
/// noise so that it is a few hundred KB like a real one.
fn camera_photo(seed: u32) -> Vec<u8> {
    let mut image = gradient(1600, 1200);
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    for pixel in image.pixels_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        pixel.0[2] = (state & 0xff) as u8;
    }
    with_exif(&jpeg(&image, 90), &tiff(&camera_fields(6)))
}

/// A case in unit grid 410102001001001 reported by the officer, with these photos.
fn case_with(id: &str, photos: &[&str]) -> CaseDocument {
    let mut case =
        CaseDocument::create(&new_case(id), &officer(), &format!("r-{id}"), at(0)).expect("report");
    for hash in photos {
        case.add_photo(&officer(), &photo_entry(hash))
            .expect("photo");
    }
    case
}

fn officer() -> Actor {
    Actor {
        user: "officer".into(),
        role: Role::EnforcementOfficer,
        team: Some(TeamId::new("enforcement").expect("team")),
        scope: "410102001001".parse().expect("scope"),
        device: format!("{:032x}", 7),
    }
}

fn photo_entry(hash: &str) -> Photo {
    Photo {
        hash: hash.to_owned(),
        role: PhotoRole::Before,
        taken_at: Some(at(0)),
        position: None,
        added_by: "officer".into(),
        added_at: at(1),
    }
}

/// Rows left in the upload tables.
async fn upload_rows(fresh: &Fresh) -> usize {
    fresh
        .raw
        .texts("SELECT sha256 FROM blob_uploads UNION ALL SELECT sha256 FROM blob_upload_chunks")
        .await
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_at_random_bytes_resumes_resending_at_most_the_chunk_in_flight() {
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let api = start(fresh.store.clone()).await;
        let token = login(&api, "officer").await;
        let photo = camera_photo(1);
        let sha = sha256_hex(&photo);
        assert!(photo.len() > 20 * CHUNK, "{} bytes", photo.len());
        let mut rng: u64 = 0x5eed;
        let mut next = |bound: usize| {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(rng >> 33).unwrap_or(0) % bound.max(1)
        };
        let (mut sent, mut cuts, mut offset) = (0usize, 0, 0usize);
        let done = loop {
            let end = (offset + CHUNK).min(photo.len());
            let chunk = &photo[offset..end];
            if next(3) == 0 {
                // Cut: the body stops at a random byte (or, one time in four, the
                // whole body is sent and the answer never read).
                cuts += 1;
                let mut stream = tokio::net::TcpStream::connect(api.addr)
                    .await
                    .expect("connect");
                let request = request_head(
                    &api,
                    "PATCH",
                    &format!("/v1/blobs/{sha}"),
                    &patch_headers(&token, offset, photo.len(), chunk.len()),
                );
                stream.write_all(request.as_bytes()).await.expect("head");
                let cut_at = if next(4) == 0 {
                    chunk.len()
                } else {
                    next(chunk.len())
                };
                stream.write_all(&chunk[..cut_at]).await.expect("body");
                sent += cut_at;
                drop(stream);
                tokio::time::sleep(Duration::from_millis(20)).await;
                // Resume where the server stands.
                let status = head(&api, &token, &sha).await;
                assert_eq!(status.status, 200, "{backend:?}");
                if status.header("upload-complete") == Some("?1") {
                    break None;
                }
                let resumed = status.offset().expect("Upload-Offset") as usize;
                assert!(
                    resumed == offset || resumed == end,
                    "{backend:?}: {resumed} after a cut at {offset}+{cut_at}"
                );
                offset = resumed;
                continue;
            }
            let answer = patch(&api, &token, &sha, offset, photo.len(), chunk).await;
            sent += chunk.len();
            match answer.status {
                204 => offset = answer.offset().expect("offset") as usize,
                200 => break Some(answer),
                // A chunk whose answer was lost was stored after all: go on from there.
                409 => offset = answer.offset().expect("offset") as usize,
                other => panic!("{backend:?}: {other} {}", answer.code()),
            }
        };
        let resent = sent - photo.len();
        assert!(cuts >= 5, "{backend:?}: only {cuts} cuts");
        assert!(
            resent <= cuts * CHUNK,
            "{backend:?}: {resent} bytes re-sent for {cuts} cuts"
        );
        if let Some(answer) = done {
            let body = answer.json();
            assert_eq!(body["sha256"], sha.as_str(), "{backend:?}");
            assert_eq!(body["format"], "jpeg", "{backend:?}");
            assert_eq!(
                (body["width"].as_i64(), body["height"].as_i64()),
                (Some(1600), Some(1200))
            );
            assert_eq!(answer.header("upload-complete"), Some("?1"));
        }
        let status = head(&api, &token, &sha).await;
        assert_eq!(
            (status.status, status.header("upload-complete")),
            (200, Some("?1")),
            "{backend:?}"
        );
        assert_eq!(
            upload_rows(&fresh).await,
            0,
            "{backend:?}: the half upload is gone"
        );
        // The EXIF position and time are the photo's metadata record.
        let rows = fresh
            .raw
            .texts("SELECT CAST(taken_at AS TEXT), CAST(lat AS TEXT), CAST(lon AS TEXT), format FROM blobs")
            .await;
        assert_eq!(rows.len(), 1, "{backend:?}");
        assert!(rows[0].iter().all(Option::is_some), "{backend:?}: {rows:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_uploading_one_photo_store_it_once() {
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let api = start(fresh.store.clone()).await;
        let (a, b) = (login(&api, "officer").await, login(&api, "zy-sup").await);
        let photo = camera_photo(2);
        let sha = sha256_hex(&photo);
        // Interleaved: each phone sends its own chunks, into its own half upload.
        let (mut at_a, mut at_b) = (0, 0);
        let mut finished = Vec::new();
        while finished.len() < 2 {
            for (token, offset, name) in [(&a, &mut at_a, "a"), (&b, &mut at_b, "b")] {
                if finished.iter().any(|(n, _)| n == &name) {
                    continue;
                }
                let end = (*offset + CHUNK).min(photo.len());
                let answer = patch(
                    &api,
                    token,
                    &sha,
                    *offset,
                    photo.len(),
                    &photo[*offset..end],
                )
                .await;
                match answer.status {
                    204 => *offset = end,
                    200 => finished.push((name, answer.json()["deduplicated"].as_bool())),
                    other => panic!("{backend:?}: {other} {}", answer.code()),
                }
            }
        }
        // The first to finish stored it; the other was told on its next chunk.
        assert_eq!(finished[0].1, Some(false), "{backend:?}: {finished:?}");
        assert_eq!(finished[1].1, Some(true), "{backend:?}: {finished:?}");
        assert_eq!(fresh.raw.texts("SELECT sha256 FROM blobs").await.len(), 1);
        assert_eq!(upload_rows(&fresh).await, 0, "{backend:?}");
        // A third phone learns it from HEAD, and its PATCH at 0 completes at once.
        let c = login(&api, "jj-sup").await;
        let status = head(&api, &c, &sha).await;
        assert_eq!(
            (status.status, status.header("upload-complete")),
            (200, Some("?1"))
        );
        assert_eq!(status.offset(), Some(photo.len() as u64));
        let answer = patch(&api, &c, &sha, 0, photo.len(), &photo[..CHUNK]).await;
        assert_eq!(
            (answer.status, answer.json()["deduplicated"].as_bool()),
            (200, Some(true))
        );
        // With another length it is not the same photo.
        let answer = patch(&api, &c, &sha, 0, photo.len() + 1, &photo[..CHUNK]).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (409, "upload_length_mismatch")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_upload_gets_a_clear_4xx_and_stores_nothing() {
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let api = start(fresh.store.clone()).await;
        let token = login(&api, "officer").await;
        let photo = camera_photo(3);
        let sha = sha256_hex(&photo);
        let expect = |answer: Answer, status: u16, code: &str| {
            assert_eq!(
                (answer.status, answer.code().as_str()),
                (status, code),
                "{backend:?}"
            );
            answer
        };

        // A wrong hash: the whole upload is dropped.
        let mut flipped = photo.clone();
        flipped[photo.len() / 2] ^= 1;
        let mut offset = 0;
        let last = loop {
            let end = (offset + CHUNK).min(photo.len());
            let answer = patch(
                &api,
                &token,
                &sha,
                offset,
                photo.len(),
                &flipped[offset..end],
            )
            .await;
            if answer.status != 204 {
                break answer;
            }
            offset = end;
        };
        expect(last, 422, "hash_mismatch");
        assert_eq!(head(&api, &token, &sha).await.status, 404, "{backend:?}");

        // Not images, or images never accepted: refused, single request or first chunk.
        let text = b"this is a text file named photo.jpg\n".repeat(500);
        expect(
            upload(&api, &token, &text).await,
            422,
            "photo_unsupported_format",
        );
        expect(
            upload(&api, &token, &png_bomb(30_000, 30_000)).await,
            422,
            "photo_too_large",
        );
        let mut bomb_stream = png_bomb(30_000, 30_000);
        bomb_stream.resize(200_000, 0);
        let bomb_sha = sha256_hex(&bomb_stream);
        expect(
            patch(
                &api,
                &token,
                &bomb_sha,
                0,
                bomb_stream.len(),
                &bomb_stream[..CHUNK],
            )
            .await,
            422,
            "photo_too_large",
        );
        let truncated = &photo[..photo.len() - 5000];
        expect(upload(&api, &token, truncated).await, 422, "photo_corrupt");
        expect(
            patch(&api, &token, &sha256_hex(b""), 0, 0, b"").await,
            422,
            "photo_empty",
        );
        let mut heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
        heic.resize(4000, 0);
        expect(
            upload(&api, &token, &heic).await,
            422,
            "photo_heif_unsupported",
        );

        // An empty first PATCH starts nothing that blocks the real start.
        assert_eq!(
            patch(&api, &token, &sha, 0, photo.len(), b"").await.status,
            204
        );
        // Protocol errors.
        let first = expect_ok(patch(&api, &token, &sha, 0, photo.len(), &photo[..CHUNK]).await);
        assert_eq!(first.offset(), Some(CHUNK as u64));
        expect(
            patch(&api, &token, &sha, 2 * CHUNK, photo.len(), &photo[..CHUNK]).await,
            409,
            "offset_mismatch",
        )
        .offset()
        .filter(|o| *o == CHUNK as u64)
        .expect("Upload-Offset tells where to go on");
        expect(
            patch(&api, &token, &sha, 0, photo.len(), &photo[..CHUNK]).await,
            409,
            "offset_mismatch",
        );
        expect(
            patch(&api, &token, &sha, CHUNK, photo.len() + 7, &photo[..CHUNK]).await,
            409,
            "upload_length_mismatch",
        );
        expect(
            patch(
                &api,
                &token,
                &sha,
                photo.len() - 10,
                photo.len(),
                &photo[..CHUNK],
            )
            .await,
            400,
            "chunk_past_end",
        );
        assert_eq!(
            head(&api, &token, &sha).await.offset(),
            Some(CHUNK as u64),
            "{backend:?}"
        );
        let unknown = sha256_hex(b"never started");
        expect(
            patch(&api, &token, &unknown, CHUNK, 3 * CHUNK, &photo[..CHUNK]).await,
            404,
            "upload_not_found",
        );
        expect(
            patch(
                &api,
                &token,
                &unknown,
                0,
                MAX_BYTES as usize + 1,
                &photo[..CHUNK],
            )
            .await,
            413,
            "blob_too_large",
        );
        let big = vec![0u8; CHUNK + 1];
        expect(
            patch(&api, &token, &unknown, 0, 3 * CHUNK, &big).await,
            413,
            "chunk_too_large",
        );
        let mut wrong_type = patch_headers(&token, 0, 3 * CHUNK, CHUNK);
        wrong_type[1].1 = "image/jpeg".into();
        let answer = call(
            &api,
            "PATCH",
            &format!("/v1/blobs/{unknown}"),
            &wrong_type,
            &photo[..CHUNK],
        )
        .await;
        expect(answer, 415, "expected_offset_octet_stream");
        expect(
            patch(&api, &token, "ABC", 0, 10, b"0123456789").await,
            400,
            "invalid_hash",
        );
        let no_token = call(&api, "HEAD", &format!("/v1/blobs/{sha}"), &[], &[]).await;
        assert_eq!(no_token.status, 401, "{backend:?}");

        // Too many half uploads for one device (4 in these settings; one is open).
        for n in 0..3 {
            let other = camera_photo(100 + n);
            expect_ok(
                patch(
                    &api,
                    &token,
                    &sha256_hex(&other),
                    0,
                    other.len(),
                    &other[..CHUNK],
                )
                .await,
            );
        }
        let fifth = camera_photo(200);
        expect(
            patch(
                &api,
                &token,
                &sha256_hex(&fifth),
                0,
                fifth.len(),
                &fifth[..CHUNK],
            )
            .await,
            429,
            "too_many_uploads",
        );
        // An upload past its time: 410 once, then it is gone (and no longer counts).
        let stale = camera_photo(100);
        let stale_sha = sha256_hex(&stale);
        fresh
            .raw
            .script(&format!(
                "UPDATE blob_uploads SET expires_at = 0 WHERE sha256 = '{stale_sha}'"
            ))
            .await;
        expect(
            patch(
                &api,
                &token,
                &stale_sha,
                CHUNK,
                stale.len(),
                &stale[CHUNK..2 * CHUNK],
            )
            .await,
            410,
            "upload_expired",
        );
        assert_eq!(
            head(&api, &token, &stale_sha).await.status,
            404,
            "{backend:?}"
        );
        expect_ok(
            patch(
                &api,
                &token,
                &sha256_hex(&fifth),
                0,
                fifth.len(),
                &fifth[..CHUNK],
            )
            .await,
        );
        // Abandoned uploads go.
        let deleted = call(
            &api,
            "DELETE",
            &format!("/v1/blobs/{sha}"),
            &[bearer(&token)],
            &[],
        )
        .await;
        assert_eq!(deleted.status, 204, "{backend:?}");
        assert_eq!(head(&api, &token, &sha).await.status, 404, "{backend:?}");

        // Expired: a chunk after the time to live, and the maintenance pass.
        let late = now_ms() + settings().upload_ttl.as_millis() as i64 + 1;
        let report = api
            .blobs
            .collect(late, Duration::from_secs(30 * 86_400), false)
            .await
            .expect("collect");
        assert_eq!(report.expired_uploads, 3, "{backend:?}");
        assert_eq!(upload_rows(&fresh).await, 0, "{backend:?}");

        // EXIF with an absurd size, or an IFD loop.
        for block in [
            tiff_with_entry(0x010F, 2, 0xFFFF_FFF0, 16),
            tiff_with_entry(0x8769, 4, 1, 8),
        ] {
            let hostile = with_exif(&jpeg(&gradient(64, 64), 80), &block);
            expect(
                upload(&api, &token, &hostile).await,
                422,
                "photo_exif_malformed",
            );
        }

        // The operator sees the refusals by code.
        let metrics = call(&api, "GET", "/metrics", &[], &[]).await;
        let metrics = String::from_utf8(metrics.body).expect("text");
        for outcome in [
            "hash_mismatch",
            "photo_too_large",
            "too_many_uploads",
            "offset_mismatch",
            "stored",
        ] {
            assert!(
                metrics.contains(&format!(
                    "wangge_blob_patches_total{{outcome=\"{outcome}\"}}"
                )),
                "{backend:?}: {outcome} not counted"
            );
        }

        // Nothing was stored, and the server is up.
        assert!(
            fresh.raw.texts("SELECT sha256 FROM blobs").await.is_empty(),
            "{backend:?}"
        );
        let health = call(&api, "GET", "/healthz", &[], &[]).await;
        assert_eq!(health.status, 200, "{backend:?}");
    }
}

/// The cap on a device's half uploads holds when its first chunks arrive all at once
/// (it was counted, then inserted: 64 parallel starts were all accepted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_first_chunks_of_one_device_respect_the_upload_cap() {
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let api = Arc::new(start(fresh.store.clone()).await);
        let token = login(&api, "officer").await;
        let mut running = tokio::task::JoinSet::new();
        for n in 0..64 {
            let api = Arc::clone(&api);
            let token = token.clone();
            running.spawn(async move {
                let photo = camera_photo(300 + n);
                let sha = sha256_hex(&photo);
                patch(&api, &token, &sha, 0, photo.len(), &photo[..CHUNK])
                    .await
                    .status
            });
        }
        let mut statuses = Vec::new();
        while let Some(status) = running.join_next().await {
            statuses.push(status.expect("task"));
        }
        let accepted = statuses.iter().filter(|s| **s == 204).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        // All 64 wait on the device's row in turn: on a loaded machine some may wait
        // past the pool's acquire timeout and get 503 (retry later), never a 500 and
        // never a fifth upload.
        let unavailable = statuses.iter().filter(|s| **s == 503).count();
        assert_eq!(
            accepted + refused + unavailable,
            64,
            "{backend:?}: {statuses:?}"
        );
        assert!(accepted <= 4 && refused >= 1, "{backend:?}: {statuses:?}");
        if unavailable == 0 {
            assert_eq!((accepted, refused), (4, 60), "{backend:?}: {statuses:?}");
        }
        let live = fresh.raw.texts("SELECT sha256 FROM blob_uploads").await;
        assert_eq!(live.len(), accepted, "{backend:?}");
    }
}

fn expect_ok(answer: Answer) -> Answer {
    assert_eq!(answer.status, 204, "{}", answer.code());
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derivatives_are_served_only_in_scope_upright_and_without_metadata() {
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let api = start(fresh.store.clone()).await;
        let officer_token = login(&api, "officer").await;
        let photo = camera_photo(4);
        let sha = sha256_hex(&photo);
        let missing = "c".repeat(64);
        store_case(
            &api.store,
            "case-1",
            &case_with("case-1", &[&sha, &missing]),
            &[],
        )
        .await;
        let stored = upload(&api, &officer_token, &photo).await;
        assert_eq!(stored.status, 200, "{backend:?}: {}", stored.code());

        let get = |token: String, path: String, extra: Vec<(&'static str, String)>| {
            let api = &api;
            async move {
                let mut headers = vec![bearer(&token)];
                headers.extend(extra);
                call(api, "GET", &path, &headers, &[]).await
            }
        };
        let display = format!("/v1/blobs/{sha}/display");
        // Who may see the case may see its photos; nobody else learns they exist.
        for (user, status, code) in [
            ("officer", 200, ""),
            ("zy-sup", 200, ""),
            ("jj-sup", 404, "photo_not_found"),
            ("nobody-posted", 404, "photo_not_found"),
        ] {
            let token = login(&api, user).await;
            let answer = get(token, display.clone(), vec![]).await;
            assert_eq!(
                (answer.status, answer.code().as_str()),
                (status, code),
                "{backend:?} {user}"
            );
        }
        let answer = get(
            officer_token.clone(),
            format!("/v1/blobs/{missing}/thumb"),
            vec![],
        )
        .await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (404, "photo_not_uploaded")
        );
        let answer = get(
            officer_token.clone(),
            format!("/v1/blobs/{sha}/original"),
            vec![],
        )
        .await;
        assert_eq!(
            answer.status, 404,
            "{backend:?}: the original is never served"
        );
        let disabled = login(&api, "disabled").await;
        sqlx_disable(&fresh).await;
        let answer = get(disabled, display.clone(), vec![]).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (403, "account_disabled")
        );

        // The derivatives: JPEG, no EXIF (nor any APP1), upright (orientation 6 turned
        // 1600×1200 into 1200×1600, so portrait), at most 1280 / 320 px.
        let full = get(officer_token.clone(), display.clone(), vec![]).await;
        assert_eq!(full.header("content-type"), Some("image/jpeg"));
        assert!(
            full.header("cache-control")
                .is_some_and(|v| v.contains("private"))
        );
        assert!(
            !has_exif(&full.body),
            "{backend:?}: EXIF in the display size"
        );
        // No APP1 marker at all (entropy-coded data never holds FF E1: FF is stuffed).
        assert!(
            !full.body.windows(2).any(|w| w == [0xff, 0xe1]),
            "{backend:?}: APP1"
        );
        let image = image::load_from_memory(&full.body).expect("a JPEG");
        assert_eq!((image.width(), image.height()), (960, 1280), "{backend:?}");
        let thumb = get(
            officer_token.clone(),
            format!("/v1/blobs/{sha}/thumb"),
            vec![],
        )
        .await;
        assert!(!has_exif(&thumb.body), "{backend:?}: EXIF in the thumbnail");
        let image = image::load_from_memory(&thumb.body).expect("a JPEG");
        assert_eq!((image.width(), image.height()), (240, 320), "{backend:?}");

        let metrics = call(&api, "GET", "/metrics", &[], &[]).await;
        let metrics = String::from_utf8(metrics.body).expect("text");
        assert!(metrics.contains("wangge_blob_fetches_total{outcome=\"photo_not_found\"} 2"));
        assert!(
            metrics.contains("wangge_photo_process_seconds_count 1"),
            "{backend:?}"
        );

        // Caching and ranges.
        let etag = full.header("etag").expect("ETag").to_owned();
        let answer = get(
            officer_token.clone(),
            display.clone(),
            vec![("If-None-Match", etag.clone())],
        )
        .await;
        assert_eq!(answer.status, 304, "{backend:?}");
        let len = full.body.len();
        for (range, start, end) in [
            ("bytes=0-99", 0, 99),
            ("bytes=-100", len - 100, len - 1),
            ("bytes=100-", 100, len - 1),
        ] {
            let answer = get(
                officer_token.clone(),
                display.clone(),
                vec![("Range", range.into())],
            )
            .await;
            assert_eq!(answer.status, 206, "{backend:?} {range}");
            assert_eq!(answer.body, full.body[start..=end], "{backend:?} {range}");
            assert_eq!(
                answer.header("content-range"),
                Some(format!("bytes {start}-{end}/{len}").as_str())
            );
        }
        let answer = get(
            officer_token.clone(),
            display.clone(),
            vec![("Range", format!("bytes={len}-"))],
        )
        .await;
        assert_eq!(answer.status, 416, "{backend:?}");
        let answer = get(
            officer_token.clone(),
            display.clone(),
            vec![("Range", "bytes=0-1,5-6".into())],
        )
        .await;
        assert_eq!(
            (answer.status, answer.body.len()),
            (200, len),
            "{backend:?}"
        );
        let answer = get(
            officer_token.clone(),
            display.clone(),
            vec![
                ("Range", "bytes=0-9".into()),
                ("If-Range", "\"stale\"".into()),
            ],
        )
        .await;
        assert_eq!(
            (answer.status, answer.body.len()),
            (200, len),
            "{backend:?}"
        );
    }
}

async fn sqlx_disable(fresh: &Fresh) {
    fresh
        .raw
        .script("UPDATE users SET disabled = TRUE WHERE id = 'disabled'")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn png_and_webp_photos_are_accepted_as_jpeg_derivatives_and_originals_kept_unserved() {
    use image::ImageEncoder as _;
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let keep = BlobSettings {
            keep_original: true,
            ..settings()
        };
        let api = start_with(fresh.store.clone(), keep).await;
        let token = login(&api, "officer").await;
        let pixels = gradient(700, 500);
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(pixels.as_raw(), 700, 500, image::ExtendedColorType::Rgb8)
            .expect("png");
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .write_image(pixels.as_raw(), 700, 500, image::ExtendedColorType::Rgb8)
            .expect("webp");
        for (bytes, format) in [(png, "png"), (webp, "webp")] {
            let sha = sha256_hex(&bytes);
            store_case(&api.store, format, &case_with(format, &[&sha]), &[]).await;
            let answer = upload(&api, &token, &bytes).await;
            assert_eq!(
                (answer.status, answer.json()["format"].as_str()),
                (200, Some(format)),
                "{backend:?}"
            );
            let thumb = call(
                &api,
                "GET",
                &format!("/v1/blobs/{sha}/thumb"),
                &[bearer(&token)],
                &[],
            )
            .await;
            assert_eq!(thumb.status, 200, "{backend:?} {format}");
            let image = image::load_from_memory_with_format(&thumb.body, image::ImageFormat::Jpeg)
                .expect("JPEG");
            assert_eq!(image.width(), 320, "{backend:?} {format}");
            let original = call(
                &api,
                "GET",
                &format!("/v1/blobs/{sha}/original"),
                &[bearer(&token)],
                &[],
            )
            .await;
            assert_eq!(
                original.status, 404,
                "{backend:?}: the original is never served"
            );
            assert!(
                (228..=229).contains(&image.height()),
                "{backend:?} {format}"
            );
        }
        // Kept as uploaded (WANGGE_PHOTO_KEEP_ORIGINAL), for the record only.
        let kept = fresh
            .raw
            .texts("SELECT sha256 FROM blob_originals ORDER BY sha256")
            .await;
        assert_eq!(kept.len(), 2, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_never_deletes_a_referenced_photo() {
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let api = start(fresh.store.clone()).await;
        let token = login(&api, "officer").await;
        let photos: Vec<Vec<u8>> = (10..13).map(camera_photo).collect();
        let [kept, loose, shared]: [String; 3] = photos
            .iter()
            .map(|p| sha256_hex(p))
            .collect::<Vec<_>>()
            .try_into()
            .expect("three");
        let one = case_with("gc-1", &[&kept, &shared]);
        store_case(&api.store, "gc-1", &one, &[]).await;
        store_case(&api.store, "gc-2", &case_with("gc-2", &[&shared]), &[]).await;
        for photo in &photos {
            assert_eq!(upload(&api, &token, photo).await.status, 200, "{backend:?}");
        }
        let exists = |sha: String| {
            let store = api.store.clone();
            async move { store.blob(&sha).await.expect("read").is_some() }
        };
        let later = now_ms() + 1000;
        let none = Duration::ZERO;

        // Within the grace period nothing goes; after it, only the unreferenced photo.
        let report = api
            .blobs
            .collect(later, Duration::from_secs(3600), false)
            .await
            .expect("gc");
        assert_eq!(report.deleted, 0, "{backend:?}");
        let dry = api.blobs.collect(later, none, true).await.expect("gc");
        assert_eq!(dry.deleted, 1, "{backend:?}");
        assert!(
            exists(loose.clone()).await,
            "{backend:?}: a dry run deletes nothing"
        );
        let report = api.blobs.collect(later, none, false).await.expect("gc");
        assert_eq!(report.deleted, 1, "{backend:?}");
        assert!(report.deleted_bytes > photos[1].len() as u64, "{backend:?}");
        assert!(!exists(loose.clone()).await, "{backend:?}");
        assert!(
            exists(kept.clone()).await && exists(shared.clone()).await,
            "{backend:?}"
        );
        assert!(
            fresh
                .raw
                .texts("SELECT sha256 FROM blob_derivatives")
                .await
                .len()
                == 4,
            "{backend:?}: the derivatives went with their photo"
        );

        // Removed from its only case: released, collected after the grace period. The
        // photo still in another case stays.
        let mut edited = one.clone();
        let before = edited.automerge().get_heads();
        assert_eq!(edited.remove_photo(&officer(), &kept).expect("remove"), 1);
        assert_eq!(edited.remove_photo(&officer(), &shared).expect("remove"), 1);
        store_case(&api.store, "gc-1", &edited, &before).await;
        let report = api
            .blobs
            .collect(now_ms() + 1000, none, false)
            .await
            .expect("gc");
        assert_eq!(report.deleted, 1, "{backend:?}");
        assert!(!exists(kept.clone()).await, "{backend:?}");
        assert!(exists(shared.clone()).await, "{backend:?}: still in gc-2");

        // Referenced again and uploaded again: kept.
        let mut again = edited.clone();
        let before = again.automerge().get_heads();
        again
            .add_photo(&officer(), &photo_entry(&kept))
            .expect("photo");
        store_case(&api.store, "gc-1", &again, &before).await;
        assert_eq!(upload(&api, &token, &photos[0]).await.status, 200);
        let report = api
            .blobs
            .collect(now_ms() + 1000, none, false)
            .await
            .expect("gc");
        assert_eq!(report.deleted, 0, "{backend:?}");
        assert!(exists(kept.clone()).await, "{backend:?}");

        // Until a database from before photo references is backfilled, nothing goes;
        // the backfill restores lost references.
        fresh
            .raw
            .script("UPDATE blob_gc SET backfilled = FALSE")
            .await;
        fresh.raw.script("DELETE FROM case_photos").await;
        let report = api
            .blobs
            .collect(now_ms() + 1000, none, false)
            .await
            .expect("gc");
        assert!(report.not_backfilled && report.deleted == 0, "{backend:?}");
        let cases = api.blobs.backfill(&case_rules()).await.expect("backfill");
        assert_eq!(cases, 2, "{backend:?}");
        assert_eq!(
            fresh
                .raw
                .texts("SELECT sha256 FROM case_photos")
                .await
                .len(),
            2
        );
        let report = api
            .blobs
            .collect(now_ms() + 1000, none, false)
            .await
            .expect("gc");
        assert_eq!(report.deleted, 0, "{backend:?}");
        assert!(exists(kept).await && exists(shared).await, "{backend:?}");
    }
}

/// Collection racing a writer that references a photo (on PostgreSQL truly at once,
/// on separate connections), once per photo: a photo seen stored after its reference
/// committed is never deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collection_racing_new_references_never_deletes_a_referenced_photo() {
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let api = start(fresh.store.clone()).await;
        let (mut collected_first, mut seen_after_reference) = (0, Vec::new());
        for n in 0..60u32 {
            let hash = sha256_hex(&n.to_be_bytes());
            // Released long ago: a candidate until referenced.
            fresh
                .raw
                .script(&format!(
                    "INSERT INTO blobs (sha256, size, format, width, height, uploaded_by, created_at, released_at)
                     VALUES ('{hash}', 1, 'jpeg', 1, 1, 'officer', 0, 0)"
                ))
                .await;
            let id = format!("race-{n}");
            let case = case_with(&id, &[&hash]);
            let reference = async {
                store_case(&api.store, &id, &case, &[]).await;
                api.store.blob(&hash).await.expect("read").is_some()
            };
            let collection = api.blobs.collect(now_ms(), Duration::ZERO, false);
            let (seen, report) = tokio::join!(reference, collection);
            collected_first += report.expect("collect").deleted;
            if seen {
                seen_after_reference.push(hash);
            }
        }
        api.blobs
            .collect(now_ms(), Duration::ZERO, false)
            .await
            .expect("collect");
        for hash in &seen_after_reference {
            assert!(
                api.store.blob(hash).await.expect("read").is_some(),
                "{backend:?}: {hash} was deleted while referenced"
            );
        }
        eprintln!(
            "{backend:?}: {collected_first} collected before their reference, {} referenced first",
            seen_after_reference.len()
        );
        assert_eq!(
            collected_first + seen_after_reference.len() as u64,
            60,
            "{backend:?}: each photo either went before its reference or stays"
        );
    }
}
