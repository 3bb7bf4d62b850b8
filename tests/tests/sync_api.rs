//! The sync protocol end to end: the real `wangge` binary on a SQLite file, phones
//! (sync-core's device session over an in-memory device store) logging in and
//! syncing over HTTP on loopback, and bad requests getting their statuses.

use serde_json::{Value, json};
use wangge_sync_core::case::{CaseDocument, NewCase, Position, Source};
use wangge_sync_core::catalog::TeamId;
use wangge_sync_core::role::Actor;
use wangge_sync_core::sync::DocKind;
use wangge_sync_core::sync::device::{DeviceSession, RoundReport};
use wangge_sync_core::sync::memory::MemoryDevice;
use wangge_sync_core::sync::message::{Cursor, Limits, Request};
use wangge_tests::{Server, answer, http, wangge_ok};

const PASSWORD: &str = "巡查-2026-ok";

fn add_user(url: &str, id: &str, role: &str, team: Option<&str>, scope: &str) {
    let mut args = vec![
        "user",
        "add",
        "--database",
        url,
        "--id",
        id,
        "--name",
        id,
        "--role",
        role,
        "--scope",
        scope,
    ];
    if let Some(team) = team {
        args.extend(["--team", team]);
    }
    wangge_ok(&args, &format!("{PASSWORD}\n"));
}

struct Phone {
    token: String,
    actor: Actor,
    store: MemoryDevice,
    session: DeviceSession,
}

impl Phone {
    fn login(server: &Server, user: &str) -> Phone {
        let (status, body) = answer(http().post(server.url("/v1/auth/login")).send_json(
            json!({ "user": user, "password": PASSWORD, "device": { "name": "Redmi 12" } }),
        ));
        assert_eq!(status, 200, "{body}");
        let me = &body["user"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let actor = Actor {
            user: user.to_owned(),
            role: text(&me["role"]).expect("role").parse().expect("role"),
            team: text(&me["team"]).map(|t| TeamId::new(t).expect("team")),
            scope: text(&me["scope"]).expect("scope").parse().expect("scope"),
            device: text(&body["device"]["actor_id"]).expect("actor id"),
        };
        Phone {
            token: text(&body["access_token"]).expect("token"),
            actor,
            store: MemoryDevice::new(),
            session: DeviceSession::new(Limits::default(), user.len() as u64),
        }
    }

    fn post(&self, server: &Server, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut response = http()
            .post(server.url("/v1/sync"))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", content_type)
            .send(body)
            .expect("the request reaches the server");
        let status = response.status().as_u16();
        let bytes = response.body_mut().read_to_vec().expect("body");
        (status, bytes)
    }

    fn sync(&mut self, server: &Server) -> RoundReport {
        for _ in 0..20 {
            let request = self.session.prepare(&mut self.store).expect("prepare");
            let (status, reply) = self.post(server, "application/cbor", &request);
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
            let report = self
                .session
                .receive(&mut self.store, &reply)
                .expect("receive");
            if !report.more {
                return report;
            }
        }
        panic!("{} does not settle", self.actor.user);
    }
}

fn error_code(bytes: &[u8]) -> String {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    body["error"]["code"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

#[test]
fn a_report_syncs_to_the_grid_over_http_and_bad_requests_get_statuses() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("wangge.db").display());
    add_user(
        &url,
        "officer",
        "enforcement_officer",
        Some("enforcement"),
        "410102001001",
    );
    add_user(
        &url,
        "cleaner",
        "sanitation_worker",
        Some("sanitation"),
        "410102001001",
    );
    add_user(
        &url,
        "other",
        "sanitation_worker",
        Some("sanitation"),
        "410102001002",
    );
    let server = Server::start(&url, &[]);

    let mut officer = Phone::login(&server, "officer");
    let mut cleaner = Phone::login(&server, "cleaner");
    let mut other = Phone::login(&server, "other");

    // Reported offline, synced later.
    let new = NewCase {
        id: "0193f0a0-0000-7000-8000-000000000001".into(),
        category: "E0102".parse().expect("category"),
        location: Position {
            lon: 113.66,
            lat: 34.75,
            accuracy_m: Some(6.0),
        },
        grid: Some("410102001001001".parse().expect("grid")),
        address: "金水路与花园路交叉口".into(),
        description: "路边暴露垃圾一堆".into(),
        source: Source::Patrol,
        source_ref: None,
        caller: None,
    };
    let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("time");
    let case = CaseDocument::create(&new, &officer.actor, "r1", at).expect("report");
    DeviceSession::record_local(&mut officer.store, &new.id, DocKind::Case, case.automerge())
        .expect("store");
    let report = officer.sync(&server);
    assert_eq!(report.acknowledged, 1);
    assert!(!officer.store.documents()[&new.id].unsent);

    let report = cleaner.sync(&server);
    assert_eq!(report.received, 1, "the same community receives it");
    let report = other.sync(&server);
    assert_eq!(report.received, 0, "another community does not");
    assert!(other.store.documents().is_empty());

    // Bad requests: each a status and a code, and the session goes on.
    let good = cleaner
        .session
        .prepare(&mut cleaner.store)
        .expect("prepare");
    let (status, body) = cleaner.post(&server, "text/plain", &good);
    assert_eq!((status, error_code(&body).as_str()), (415, "expected_cbor"));
    let (status, body) = cleaner.post(&server, "application/cbor", b"\x9f\xff\x00garbage");
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "sync_malformed")
    );
    let mut future = Request::decode(&good, usize::MAX).expect("decode");
    future.cursor = Cursor {
        seq: 1_000_000,
        ..future.cursor
    };
    let (status, body) = cleaner.post(&server, "application/cbor", &future.encode());
    assert_eq!(
        (status, error_code(&body).as_str()),
        (409, "sync_cursor_ahead")
    );
    let huge = vec![0u8; Limits::default().max_request + 1];
    let (status, _) = cleaner.post(&server, "application/cbor", &huge);
    assert_eq!(status, 413);
    let (status, body) = answer(
        http()
            .post(server.url("/v1/sync"))
            .header("Content-Type", "application/cbor")
            .send(&good[..]),
    );
    assert_eq!(status, 401, "{body}");
    cleaner.session.abandon();
    let report = cleaner.sync(&server);
    assert_eq!(report.received, 0);
}
