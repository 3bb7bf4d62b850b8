//! A simulated phone: sync-core's device session over an in-memory store, signed in
//! to the real server, syncing over `POST /v1/sync` and listening on `GET /v1/push`.

use serde_json::{Value, json};
use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::{
    Action, CaseDocument, CaseView, NewCase, Position, Source, WorkflowContext,
};
use wangge_sync_core::catalog::{Catalog, TeamId};
use wangge_sync_core::grid::GridCode;
use wangge_sync_core::role::Actor;
use wangge_sync_core::sync::device::{DeviceSession, RoundReport};
use wangge_sync_core::sync::memory::MemoryDevice;
use wangge_sync_core::sync::message::Limits;
use wangge_sync_core::sync::{DocKind, load_chunks};

use crate::{Server, answer, http};

/// A signed-in phone.
#[allow(missing_debug_implementations)]
pub struct Phone {
    /// The access token.
    pub token: String,
    /// The device's id (for `wangge device revoke`).
    pub device_id: String,
    /// Who acts: the user and the device's Automerge actor.
    pub actor: Actor,
    /// The phone's documents.
    pub store: MemoryDevice,
    /// The sync state machine.
    pub session: DeviceSession,
    /// How far ahead of the server this phone's clock is, when it tells the server its
    /// clock on each round (`X-Wangge-Clock`); `None`: it does not (an old app).
    pub clock_ahead_ms: Option<i64>,
}

/// The catalogue and the standard calendar.
pub fn with_context<T>(f: impl FnOnce(&WorkflowContext<'_>) -> T) -> T {
    let calendar = WorkCalendar::standard();
    f(&WorkflowContext {
        catalog: Catalog::builtin(),
        calendar: &calendar,
    })
}

impl Phone {
    /// Signs `user` in with `password` as a new device.
    pub fn login(server: &Server, user: &str, password: &str) -> Phone {
        let (status, body) = answer(http().post(server.url("/v1/auth/login")).send_json(
            json!({ "user": user, "password": password, "device": { "name": "Redmi 12" } }),
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
            clock_ahead_ms: None,
        }
    }

    /// Posts a sync body with this content type; the status and the answer's bytes.
    pub fn post(&self, server: &Server, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
        self.try_post(&server.url("/v1/sync"), content_type, body)
            .expect("the request reaches the server")
    }

    /// Posts a sync body to `url`; an error when the connection fails.
    pub fn try_post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), ureq::Error> {
        let mut request = http()
            .post(url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", content_type);
        if let Some(ahead) = self.clock_ahead_ms {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            request = request.header("X-Wangge-Clock", (now + ahead).to_string());
        }
        let mut response = request.send(body)?;
        let status = response.status().as_u16();
        let bytes = response.body_mut().read_to_vec()?;
        Ok((status, bytes))
    }

    /// The case `id` as this phone holds it.
    pub fn case(&self, id: &str) -> CaseDocument {
        let doc = &self.store.documents()[id];
        CaseDocument::from_automerge(load_chunks(&doc.chunks).expect("load"))
    }

    /// The case `id` folded on this phone.
    pub fn fold(&self, id: &str) -> CaseView {
        with_context(|context| self.case(id).fold(context))
    }

    /// Takes `action` on case `id`, offline, at `minute` past a fixed time.
    pub fn act(&mut self, id: &str, action: Action, minute: i64) {
        let mut case = self.case(id);
        let at = chrono::DateTime::from_timestamp(1_795_000_000 + minute * 60, 0).expect("time");
        with_context(|context| {
            case.act(
                context,
                &self.actor,
                &format!("{}-{minute}", self.actor.user),
                action,
                at,
                None,
            )
        })
        .expect("act");
        DeviceSession::record_local(&mut self.store, id, DocKind::Case, case.automerge())
            .expect("store");
    }

    /// Stores a document written on the phone (a new report, an edit).
    pub fn write(&mut self, id: &str, case: &CaseDocument) {
        DeviceSession::record_local(&mut self.store, id, DocKind::Case, case.automerge())
            .expect("store");
    }

    /// Stores any other document written on the phone (a patrol log).
    /// `GET path` with this phone's token: the status and the JSON answer.
    pub fn get(&self, server: &Server, path: &str) -> (u16, Value) {
        answer(
            http()
                .get(server.url(path))
                .header("Authorization", format!("Bearer {}", self.token))
                .call(),
        )
    }

    /// A case this phone's user reports offline on patrol (at a fixed time), written
    /// for the next sync.
    pub fn report(&mut self, id: &str, category: &str, grid: GridCode, at: Position) {
        let new = NewCase {
            id: id.into(),
            category: category.parse().expect("category"),
            location: at,
            grid: Some(grid),
            address: "金水区 花园路".into(),
            description: "井盖缺失，路口东侧".into(),
            source: Source::Patrol,
            source_ref: None,
            caller: None,
        };
        let when = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("time");
        let case =
            CaseDocument::create(&new, &self.actor, &format!("{id}-report"), when).expect("report");
        self.write(id, &case);
    }

    pub fn write_doc(&mut self, id: &str, kind: DocKind, doc: &automerge::Automerge) {
        DeviceSession::record_local(&mut self.store, id, kind, doc).expect("store");
    }

    /// Opens the push socket, with a read timeout.
    pub fn push(&self, server: &Server) -> Push {
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

    /// Syncs until the server has nothing more.
    pub fn sync(&mut self, server: &Server) -> RoundReport {
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

/// The WebSocket of `GET /v1/push`.
pub type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A push socket.
#[allow(missing_debug_implementations)]
pub struct Push(pub Socket);

impl Push {
    /// The next notice (JSON), or `None` once the server closed the socket.
    pub fn next_notice(&mut self) -> Option<Value> {
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
    pub fn expect(&mut self, kind: &str) -> Value {
        loop {
            let notice = self
                .next_notice()
                .unwrap_or_else(|| panic!("closed before {kind}"));
            if notice["type"] == kind {
                return notice;
            }
        }
    }
}
