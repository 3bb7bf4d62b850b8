//! The sync protocol end to end: the real `wangge` binary on a SQLite file, phones
//! (sync-core's device session over an in-memory device store) logging in and
//! syncing over HTTP on loopback, and bad requests getting their statuses.

use serde_json::{Value, json};
use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::{Action, CaseDocument, NewCase, Position, Source, WorkflowContext};
use wangge_sync_core::catalog::{Catalog, TeamId};
use wangge_sync_core::role::Actor;
use wangge_sync_core::sync::device::{DeviceSession, RoundReport};
use wangge_sync_core::sync::memory::MemoryDevice;
use wangge_sync_core::sync::message::{Cursor, Limits, Request};
use wangge_sync_core::sync::{DocKind, load_chunks};
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

struct Phone {
    token: String,
    device_id: String,
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
            device_id: text(&body["device"]["id"]).expect("device id"),
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

    fn act(&mut self, id: &str, action: Action, minute: i64) {
        let calendar = WorkCalendar::standard();
        let context = WorkflowContext {
            catalog: Catalog::builtin(),
            calendar: &calendar,
        };
        let doc = &self.store.documents()[id];
        let mut case = CaseDocument::from_automerge(load_chunks(&doc.chunks).expect("load"));
        let at = chrono::DateTime::from_timestamp(1_795_000_000 + minute * 60, 0).expect("time");
        case.act(
            &context,
            &self.actor,
            &format!("{}-{minute}", self.actor.user),
            action,
            at,
            None,
        )
        .expect("act");
        DeviceSession::record_local(&mut self.store, id, DocKind::Case, case.automerge())
            .expect("store");
    }

    /// Opens the push socket, with a read timeout.
    fn push(&self, server: &Server) -> Push {
        use tungstenite::client::IntoClientRequest as _;
        let url = server.url("/v1/push").replacen("http://", "ws://", 1);
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "Authorization",
            format!("Bearer {}", self.token).parse().expect("header"),
        );
        let (socket, _) = tungstenite::connect(request).expect("push socket");
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(20)))
                .expect("timeout");
        }
        Push(socket)
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

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

struct Push(Socket);

impl Push {
    /// The next notice (JSON), or `None` once the server closed the socket.
    fn next(&mut self) -> Option<Value> {
        loop {
            match self.0.read() {
                Ok(tungstenite::Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).expect("notice is JSON"));
                }
                Ok(tungstenite::Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next notice of type `kind`, skipping others.
    fn expect(&mut self, kind: &str) -> Value {
        loop {
            let notice = self
                .next()
                .unwrap_or_else(|| panic!("closed before {kind}"));
            if notice["type"] == kind {
                return notice;
            }
        }
    }
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

    let mut officer = Phone::login(&server, "officer");
    let mut cleaner = Phone::login(&server, "cleaner");
    let mut other = Phone::login(&server, "other");

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
    let mut officer = Phone::login(&server, "officer");
    let mut cleaner = Phone::login(&server, "cleaner");
    let other = Phone::login(&server, "other");
    let mut push = cleaner.push(&server);
    assert_eq!(push.next().expect("hello")["type"], "hello");
    let mut other_push = other.push(&server);
    other_push.expect("hello");

    let new = report(&mut officer);
    officer.sync(&server);
    let notice = push.expect("sync_now");
    assert_eq!(notice["documents"], json!([new.id]));
    cleaner.sync(&server);

    for (user, action) in [("acceptor", Action::Accept), ("lead", Action::Register)] {
        let mut phone = Phone::login(&server, user);
        phone.sync(&server);
        phone.act(&new.id, action, 5);
        phone.sync(&server);
    }
    let mut dispatcher = Phone::login(&server, "dispatcher");
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
    assert!(push.next().is_none(), "the socket is closed");
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
