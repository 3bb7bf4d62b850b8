//! The sync protocol end to end: the real `wangge` binary on a SQLite file, phones
//! (sync-core's device session over an in-memory device store) logging in and
//! syncing over HTTP on loopback, and bad requests getting their statuses.

use serde_json::{Value, json};
use wangge_sync_core::case::{Action, CaseDocument, NewCase, Position, Source};
use wangge_sync_core::catalog::TeamId;
use wangge_sync_core::sync::DocKind;
use wangge_sync_core::sync::device::DeviceSession;
use wangge_sync_core::sync::message::{Cursor, Limits, Request};
use wangge_tests::phone::Phone;
use wangge_tests::{Server, answer, http, wangge_ok};

const PASSWORD: &str = "巡查-2026-ok";

fn add_user(url: &str, id: &str, role: &str, team: Option<&str>, scope: &str) {
    wangge_tests::add_user(url, id, role, team, scope, PASSWORD);
}

/// A database with an officer and a sanitation worker of one community, and a
/// sanitation worker of the next.
fn database() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("wangge.db").display());
    let community = "410102001001";
    add_user(
        &url,
        "officer",
        "enforcement_officer",
        Some("enforcement"),
        community,
    );
    add_user(
        &url,
        "cleaner",
        "sanitation_worker",
        Some("sanitation"),
        community,
    );
    add_user(
        &url,
        "other",
        "sanitation_worker",
        Some("sanitation"),
        "410102001002",
    );
    (dir, url)
}

fn error_code(bytes: &[u8]) -> String {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    body["error"]["code"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

/// The officer reports a case offline (written on the phone, not yet synced).
fn report(officer: &mut Phone) -> NewCase {
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
    new
}

#[test]
fn a_report_syncs_to_the_grid_over_http_and_bad_requests_get_statuses() {
    let (_dir, url) = database();
    let server = Server::start(&url, &[]);

    let mut officer = Phone::login(&server, "officer", PASSWORD);
    let mut cleaner = Phone::login(&server, "cleaner", PASSWORD);
    let mut other = Phone::login(&server, "other", PASSWORD);

    // Reported offline, synced later.
    let new = report(&mut officer);
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

#[test]
fn push_tells_the_grid_to_sync_and_the_assignee_of_a_dispatch_and_cuts_a_revoked_device() {
    let (_dir, url) = database();
    let street = "410102001";
    add_user(&url, "acceptor", "acceptor", None, street);
    add_user(&url, "lead", "shift_lead", None, street);
    add_user(&url, "dispatcher", "dispatcher", None, street);
    let server = Server::start(&url, &[("WANGGE_PUSH_CHECK_SECONDS", "1")]);
    let mut officer = Phone::login(&server, "officer", PASSWORD);
    let mut cleaner = Phone::login(&server, "cleaner", PASSWORD);
    let other = Phone::login(&server, "other", PASSWORD);
    let mut push = cleaner.push(&server);
    assert_eq!(push.next_notice().expect("hello")["type"], "hello");
    let mut other_push = other.push(&server);
    other_push.expect("hello");

    let new = report(&mut officer);
    officer.sync(&server);
    let notice = push.expect("sync_now");
    assert_eq!(notice["documents"], json!([new.id]));
    cleaner.sync(&server);

    for (user, action) in [("acceptor", Action::Accept), ("lead", Action::Register)] {
        let mut phone = Phone::login(&server, user, PASSWORD);
        phone.sync(&server);
        phone.act(&new.id, action, 5);
        phone.sync(&server);
    }
    let mut dispatcher = Phone::login(&server, "dispatcher", PASSWORD);
    dispatcher.sync(&server);
    dispatcher.act(
        &new.id,
        Action::Dispatch {
            team: TeamId::new("sanitation").expect("team"),
            assignee: Some("cleaner".into()),
        },
        10,
    );
    dispatcher.sync(&server);
    let notice = push.expect("dispatch");
    assert_eq!(notice["case"], json!(new.id));
    let report = cleaner.sync(&server);
    assert!(report.received >= 1);

    wangge_ok(
        &["device", "revoke", "--database", &url, &cleaner.device_id],
        "",
    );
    push.expect("revoked");
    assert!(push.next_notice().is_none(), "the socket is closed");
    // The other community heard none of it.
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = other_push.0.get_ref() {
        stream
            .set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .expect("timeout");
    }
    match other_push.0.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("another community was told: {other:?}"),
    }
}
