//! Postings and ownership rules over real HTTP on loopback, on SQLite and PostgreSQL:
//! `GET /v1/assignments` (scope, filters, refusals), `PUT /v1/users/{id}/posting`
//! (who may move whom, bad bodies, unknown users) and the new posting in routing at
//! once, `GET /v1/ownership-rules`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{Fresh, backends};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wangge_server::api::{AppState, now_ms, router};
use wangge_server::auth::{Auth, hash_password};
use wangge_server::store::{Store, User};
use wangge_sync_core::catalog::{Catalog, TeamId};
use wangge_sync_core::grid::GridIndex;
use wangge_sync_core::grid::geojson::read_grids;
use wangge_sync_core::ownership::{DEFAULT_TOML, Ownership};
use wangge_sync_core::role::Role;

const PASSWORD: &str = "correct horse";

/// The built-in rules, an area rule for 金水区 and one city-maintained road.
fn ownership_toml() -> String {
    format!(
        r#"{DEFAULT_TOML}
[[rule]]
categories = ["E0102"]
area = "410105"
dispatch = "auto"

[[override]]
name = "中原路（市管道路）"
categories = ["C02", "E0401"]
team = "municipal_maintenance"
line = [[113.600, 34.7505], [113.610, 34.7505]]
buffer_m = 30
"#
    )
}

/// A unit grid square (GCJ-02) with its names.
fn grid_feature(code: &str, district_name: &str, lon: f64, lat: f64) -> Value {
    let (d, s, c) = (&code[..6], &code[..9], &code[..12]);
    let ring = json!([
        [lon, lat],
        [lon + 0.001, lat],
        [lon + 0.001, lat + 0.001],
        [lon, lat + 0.001],
        [lon, lat]
    ]);
    json!({
        "type": "Feature",
        "geometry": { "type": "Polygon", "coordinates": [ring] },
        "properties": {
            "code": code,
            "district": d,
            "district_name": district_name,
            "street": s,
            "street_name": "第1街道",
            "street_kind": "subdistrict",
            "community": c,
            "community_name": "第1社区",
            "level3": format!("{c}-01"),
            "level3_name": "第1网格",
        }
    })
}

/// Grid A in 中原区 and grid B in 金水区, far apart.
const GRID_A: &str = "410102001001001";
const GRID_B: &str = "410105001001001";
const POINT_A: (f64, f64) = (113.6005, 34.7505);
const POINT_B: (f64, f64) = (113.7005, 34.7605);

fn grids() -> GridIndex {
    let collection = json!({
        "type": "FeatureCollection",
        "features": [
            grid_feature(GRID_A, "中原区", 113.600, 34.750),
            grid_feature(GRID_B, "金水区", 113.700, 34.760),
        ]
    });
    let set = read_grids(collection.to_string().as_bytes()).expect("grids");
    GridIndex::build(set).expect("index")
}

/// The accounts: (id, role, team, scope).
const USERS: [(&str, Role, Option<&str>, &str); 9] = [
    ("admin", Role::Admin, None, "*"),
    ("zy-sup", Role::DistrictSupervisor, None, "410102"),
    ("jj-sup", Role::DistrictSupervisor, None, "410105"),
    ("dispatcher", Role::Dispatcher, None, "410102"),
    ("leader", Role::GridLeader, None, "410102001001"),
    (
        "officer",
        Role::EnforcementOfficer,
        Some("enforcement"),
        "410102001001",
    ),
    (
        "sweeper",
        Role::SanitationWorker,
        Some("sanitation"),
        GRID_A,
    ),
    (
        "jj-sweeper",
        Role::SanitationWorker,
        Some("sanitation"),
        "410105001001",
    ),
    ("nobody-posted", Role::Assistant, Some("enforcement"), ""),
];

/// The server on `store` on a loopback port, with the accounts and the two grids.
struct Api {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start(store: Arc<dyn Store>) -> Api {
    let hash = hash_password(PASSWORD).expect("hash");
    for (id, role, team, scope) in USERS {
        store
            .create_user(&User {
                id: id.into(),
                display_name: format!("{id} 姓名"),
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
    let grids = Some(Arc::new(grids()));
    let ownership = Arc::new(
        Ownership::from_toml_str(&ownership_toml(), Catalog::builtin()).expect("ownership"),
    );
    let rules = Arc::new(wangge_server::cases::CaseRules {
        catalog: wangge_sync_core::catalog::Catalog::builtin(),
        calendar: wangge_sync_core::calendar::WorkCalendar::standard(),
        grids: grids.clone(),
        ownership: Arc::clone(&ownership),
    });
    let auth = Auth::new(store.clone(), Default::default(), now_ms())
        .await
        .expect("auth");
    let state = AppState {
        store: store.clone(),
        auth: Arc::new(auth),
        grids,
        ownership,
        sync: Arc::new(wangge_server::sync::SyncEngine::new(
            Default::default(),
            rules,
            4,
        )),
        push: Arc::new(wangge_server::push::PushHub::new(
            std::time::Duration::from_secs(30),
        )),
        metrics: Arc::new(wangge_server::metrics::Metrics::new()),
        blobs: Arc::new(wangge_server::blobs::Blobs::new(
            store.clone(),
            Default::default(),
            Default::default(),
        )),
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
        server,
    }
}

/// One HTTP/1.1 exchange (a connection each, closed by the server after the answer):
/// the status and the JSON body.
async fn call(
    api: &Api,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(api.addr)
        .await
        .expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        api.addr
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method != "GET" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read answer");
    let text = String::from_utf8(answer).expect("UTF-8 answer");
    let (head, payload) = text.split_once("\r\n\r\n").expect("header end");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let payload = if chunked {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    let value = serde_json::from_str(&payload)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {payload:?}"));
    (status, value)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

async fn get(api: &Api, token: &str, path: &str) -> (u16, Value) {
    call(api, "GET", path, Some(token), None).await
}

async fn put_posting(api: &Api, token: &str, user: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1/users/{user}/posting");
    call(api, "PUT", &path, Some(token), Some(&body.to_string())).await
}

/// Logs `user` in over HTTP: the access token and the refresh token.
async fn login(api: &Api, user: &str) -> (String, String) {
    let body = json!({ "user": user, "password": PASSWORD, "device": { "name": "test phone" } });
    let (status, session) =
        call(api, "POST", "/v1/auth/login", None, Some(&body.to_string())).await;
    assert_eq!(status, 200, "login {user}: {session}");
    (
        session["access_token"].as_str().expect("token").to_owned(),
        session["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_owned(),
    )
}

async fn token(api: &Api, user: &str) -> String {
    login(api, user).await.0
}

/// The user ids of an assignments answer, in order.
fn users_of(answer: &Value) -> Vec<String> {
    answer["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .map(|a| a["user"].as_str().expect("user").to_owned())
        .collect()
}

fn error_code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("")
}

fn error_message(answer: &Value) -> &str {
    answer["error"]["message"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignments_are_the_postings_in_the_callers_scope() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let api = start(store).await;
        let zy_sup = token(&api, "zy-sup").await;
        let (status, answer) = get(&api, &zy_sup, "/v1/assignments").await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        // Everyone whose grids overlap 中原区 (the admin's * does), by id; not 金水区's
        // people, not the account with no grids.
        assert_eq!(
            users_of(&answer),
            [
                "admin",
                "dispatcher",
                "leader",
                "officer",
                "sweeper",
                "zy-sup"
            ],
            "{backend:?}"
        );
        let sweeper = answer["assignments"]
            .as_array()
            .expect("assignments")
            .iter()
            .find(|a| a["user"] == "sweeper")
            .expect("sweeper");
        assert_eq!(
            sweeper,
            &json!({
                "user": "sweeper",
                "display_name": "sweeper 姓名",
                "disabled": false,
                "role": { "code": "sanitation_worker", "name_zh": "环卫工人", "name_en": "Sanitation worker" },
                "team": { "code": "sanitation", "name_zh": "环卫", "name_en": "Sanitation" },
                "scope": GRID_A,
                "grids": [{
                    "code": GRID_A,
                    "level": "grid",
                    "level_zh": "单元网格",
                    "names": { "district": "中原区", "street": "第1街道", "community": "第1社区", "level3": "第1网格" },
                }],
            }),
            "{backend:?}"
        );
        let supervisor = &answer["assignments"][5];
        assert_eq!(supervisor["role"]["name_zh"], "区级分包领导");
        assert_eq!(supervisor["team"], Value::Null);
        assert_eq!(
            supervisor["grids"],
            json!([{ "code": "410102", "level": "district", "level_zh": "区", "names": { "district": "中原区" } }])
        );
        assert_eq!(
            answer["assignments"][0]["grids"],
            json!([{ "code": "*", "level": "city", "level_zh": "市", "names": {} }])
        );

        // The command centre lists its own grids too; the city level everyone.
        let dispatcher = token(&api, "dispatcher").await;
        let (status, answer) = get(&api, &dispatcher, "/v1/assignments?team=sanitation").await;
        assert_eq!(
            (status, users_of(&answer)),
            (200, vec!["sweeper".to_owned()])
        );
        let admin = token(&api, "admin").await;
        let (status, answer) = get(&api, &admin, "/v1/assignments").await;
        assert_eq!(status, 200);
        assert_eq!(users_of(&answer).len(), USERS.len(), "{backend:?}");
        assert_eq!(answer["assignments"][5]["user"], "nobody-posted");
        assert_eq!(answer["assignments"][5]["grids"], json!([]));

        // Filters, alone and together.
        for (query, expected) in [
            ("team=sanitation", vec!["jj-sweeper", "sweeper"]),
            ("role=district_supervisor", vec!["jj-sup", "zy-sup"]),
            ("grid=410105", vec!["admin", "jj-sup", "jj-sweeper"]),
            (
                "grid=410102001001001",
                vec![
                    "admin",
                    "dispatcher",
                    "leader",
                    "officer",
                    "sweeper",
                    "zy-sup",
                ],
            ),
            (
                "grid=410102&team=sanitation&role=sanitation_worker",
                vec!["sweeper"],
            ),
            ("grid=410105&role=dispatcher", vec![]),
        ] {
            let (status, answer) = get(&api, &admin, &format!("/v1/assignments?{query}")).await;
            assert_eq!(status, 200, "{backend:?} {query}: {answer}");
            assert_eq!(users_of(&answer), expected, "{backend:?} {query}");
        }

        // Bad filters: 400 invalid_query, saying what is wrong.
        for (query, says) in [
            ("team=plumbers", "team \"plumbers\" is not in the catalogue"),
            ("team=Sanitation", "team"),
            ("role=mayor", "role \"mayor\": one of enforcement_officer"),
            ("grid=4101", "grid \"4101\""),
            ("grid=41010200100x", "grid"),
            ("grid=410100", "410100"),
            ("colour=red", "colour"),
        ] {
            let (status, answer) = get(&api, &admin, &format!("/v1/assignments?{query}")).await;
            assert_eq!(
                (status, error_code(&answer)),
                (400, "invalid_query"),
                "{backend:?} {query}: {answer}"
            );
            assert!(error_message(&answer).contains(says), "{query}: {answer}");
        }

        // Field workers list nobody; no token, no answer.
        for user in ["officer", "sweeper", "nobody-posted"] {
            let token = token(&api, user).await;
            let (status, answer) = get(&api, &token, "/v1/assignments").await;
            assert_eq!(
                (status, error_code(&answer)),
                (403, "forbidden"),
                "{backend:?} {user}"
            );
        }
        let (status, answer) = call(&api, "GET", "/v1/assignments", None, None).await;
        assert_eq!((status, error_code(&answer)), (401, "unauthenticated"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_supervisor_reposts_people_within_the_district_only() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let api = start(store).await;
        let zy_sup = token(&api, "zy-sup").await;
        let to_community =
            json!({ "role": "sanitation_worker", "team": "sanitation", "scope": "410102001001" });

        // Not a supervisor: refused, and nothing changes.
        for (user, role) in [
            ("officer", "enforcement_officer"),
            ("dispatcher", "dispatcher"),
            ("leader", "grid_leader"),
        ] {
            let token = token(&api, user).await;
            let (status, answer) = put_posting(&api, &token, "sweeper", to_community.clone()).await;
            assert_eq!(
                (status, error_code(&answer)),
                (403, "forbidden"),
                "{backend:?} {user}: {answer}"
            );
            assert_eq!(
                error_message(&answer),
                format!("the role {role} changes no postings")
            );
        }
        let unchanged = api
            .store
            .user("sweeper")
            .await
            .expect("read")
            .expect("user");
        assert_eq!(unchanged.scope.to_string(), GRID_A);

        // Inside the district: done, answered with the new and the previous posting.
        let (status, answer) = put_posting(&api, &zy_sup, "sweeper", to_community.clone()).await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        assert_eq!(answer["assignment"]["user"], "sweeper");
        assert_eq!(answer["assignment"]["scope"], "410102001001");
        assert_eq!(
            answer["assignment"]["grids"],
            json!([{ "code": "410102001001", "level": "community", "level_zh": "社区",
                     "names": { "district": "中原区", "street": "第1街道", "community": "第1社区" } }])
        );
        assert_eq!(
            answer["previous"],
            json!({
                "role": { "code": "sanitation_worker", "name_zh": "环卫工人", "name_en": "Sanitation worker" },
                "team": { "code": "sanitation", "name_zh": "环卫", "name_en": "Sanitation" },
                "scope": GRID_A,
            })
        );
        let stored = api
            .store
            .user("sweeper")
            .await
            .expect("read")
            .expect("user");
        assert_eq!(
            (
                stored.role,
                stored.team.as_ref().map(|t| t.as_str()),
                stored.scope.to_string()
            ),
            (
                Role::SanitationWorker,
                Some("sanitation"),
                "410102001001".to_owned()
            ),
            "{backend:?}"
        );
        // A field role without a team is refused (its cases are routed by team), and
        // nothing changes.
        let (status, answer) = put_posting(
            &api,
            &zy_sup,
            "officer",
            json!({ "role": "assistant", "team": null, "scope": "410102001001,410102001002" }),
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (400, "invalid_posting"),
            "{backend:?}: {answer}"
        );
        assert_eq!(
            error_message(&answer),
            "a assistant posting needs a team: its dispatched cases are routed by team"
        );
        // A new role and a new team, also inside: the officer becomes an assistant.
        let (status, answer) = put_posting(
            &api,
            &zy_sup,
            "officer",
            json!({ "role": "assistant", "team": "enforcement", "scope": "410102001001,410102001002" }),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        assert_eq!(answer["assignment"]["role"]["code"], "assistant");
        assert_eq!(answer["assignment"]["team"]["code"], "enforcement");
        // Nobody changes their own posting, not even inside their own grids.
        let (status, answer) = put_posting(
            &api,
            &zy_sup,
            "zy-sup",
            json!({ "role": "acceptor", "team": null, "scope": "410102" }),
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (403, "forbidden"),
            "{backend:?}: {answer}"
        );
        let admin = token(&api, "admin").await;
        let (status, answer) = put_posting(
            &api,
            &admin,
            "admin",
            json!({ "role": "acceptor", "team": null, "scope": "*" }),
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (403, "forbidden"),
            "{answer}"
        );
        let still = api.store.user("zy-sup").await.expect("read").expect("user");
        assert_eq!(still.role, Role::DistrictSupervisor, "{backend:?}");
        // The change shows in the list at once.
        let (_, listed) = get(&api, &zy_sup, "/v1/assignments?role=assistant").await;
        assert_eq!(users_of(&listed), ["officer"]);
        assert_eq!(
            listed["assignments"][0]["scope"],
            "410102001001,410102001002"
        );
        // And someone not yet posted may be posted into the district.
        let (status, _) = put_posting(
            &api,
            &zy_sup,
            "nobody-posted",
            json!({ "role": "assistant", "team": "enforcement", "scope": "410102001" }),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}");

        // Outside the district, or above the supervisor's rank: 403, nothing changes.
        for (user, body, says) in [
            (
                "sweeper",
                json!({ "role": "sanitation_worker", "team": "sanitation", "scope": "410105001001" }),
                "the new grids 410105001001 are not all inside yours",
            ),
            (
                "sweeper",
                json!({ "role": "sanitation_worker", "team": "sanitation", "scope": "410102,410105" }),
                "the new grids 410102,410105 are not all inside yours",
            ),
            (
                "jj-sweeper",
                json!({ "role": "sanitation_worker", "team": "sanitation", "scope": "410102001001" }),
                "the user's current grids 410105001001 are not all inside yours",
            ),
            (
                "sweeper",
                json!({ "role": "city_supervisor", "scope": "410102" }),
                "the role district_supervisor may not post anyone as city_supervisor",
            ),
            (
                "admin",
                json!({ "role": "dispatcher", "scope": "410102" }),
                "the role district_supervisor may not change the posting of someone posted as admin",
            ),
        ] {
            let (status, answer) = put_posting(&api, &zy_sup, user, body.clone()).await;
            assert_eq!(
                (status, error_code(&answer), error_message(&answer)),
                (403, "forbidden", says),
                "{backend:?} {user} {body}"
            );
        }
        let stored = api
            .store
            .user("jj-sweeper")
            .await
            .expect("read")
            .expect("user");
        assert_eq!(stored.scope.to_string(), "410105001001");
        let stored = api
            .store
            .user("sweeper")
            .await
            .expect("read")
            .expect("user");
        assert_eq!(stored.scope.to_string(), "410102001001");

        // Unknown user: 404.
        let (status, answer) = put_posting(&api, &zy_sup, "ghost", to_community.clone()).await;
        assert_eq!(
            (status, error_code(&answer), error_message(&answer)),
            (404, "user_not_found", "no user \"ghost\""),
            "{backend:?}"
        );

        // Bad bodies: 400 with the reason, or the JSON layer's 400/422/415.
        for (body, code, says) in [
            (
                json!({ "role": "mayor", "scope": "410102" }),
                "invalid_posting",
                "role \"mayor\"",
            ),
            (
                json!({ "role": "server", "scope": "410102" }),
                "invalid_posting",
                "server is the server's own role",
            ),
            (
                json!({ "role": "sanitation_worker", "team": "plumbers", "scope": "410102" }),
                "invalid_posting",
                "team \"plumbers\" is not in the catalogue",
            ),
            (
                json!({ "role": "sanitation_worker", "team": "sanitation", "scope": "4101x" }),
                "invalid_posting",
                "scope: invalid scope item \"4101x\"",
            ),
            (
                json!({ "role": "sanitation_worker", "team": "sanitation", "scope": "410100" }),
                "invalid_posting",
                "scope: ",
            ),
            (
                json!({ "role": "sanitation_worker", "team": "sanitation", "scope": "410102000" }),
                "invalid_posting",
                "scope: ",
            ),
        ] {
            let (status, answer) = put_posting(&api, &zy_sup, "sweeper", body.clone()).await;
            assert_eq!(
                (status, error_code(&answer)),
                (400, code),
                "{backend:?} {body}: {answer}"
            );
            assert!(error_message(&answer).contains(says), "{body}: {answer}");
        }
        let (status, answer) = call(
            &api,
            "PUT",
            "/v1/users/sweeper/posting",
            Some(&zy_sup),
            Some("{\"role\":"),
        )
        .await;
        assert_eq!((status, error_code(&answer)), (400, "invalid_json"));
        let (status, answer) =
            put_posting(&api, &zy_sup, "sweeper", json!({ "role": "assistant" })).await;
        assert_eq!(
            (status, error_code(&answer)),
            (422, "invalid_body"),
            "no scope"
        );
        let (status, answer) = put_posting(
            &api,
            &zy_sup,
            "sweeper",
            json!({ "role": "assistant", "scope": "410102", "grids": [] }),
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (422, "invalid_body"),
            "unknown field"
        );
        let (status, answer) =
            call(&api, "PUT", "/v1/users/sweeper/posting", None, Some("{}")).await;
        assert_eq!((status, error_code(&answer)), (401, "unauthenticated"));
        let stored = api
            .store
            .user("sweeper")
            .await
            .expect("read")
            .expect("user");
        assert_eq!(stored.scope.to_string(), "410102001001", "{backend:?}");

        // Across districts takes the city level: the administrator moves the sweeper.
        let admin = token(&api, "admin").await;
        let (status, answer) = put_posting(
            &api,
            &admin,
            "sweeper",
            json!({ "role": "sanitation_worker", "team": "sanitation", "scope": "410105001001" }),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        let jj_sup = token(&api, "jj-sup").await;
        let (_, listed) = get(&api, &jj_sup, "/v1/assignments?team=sanitation").await;
        assert_eq!(users_of(&listed), ["jj-sweeper", "sweeper"], "{backend:?}");
        let (_, listed) = get(&api, &zy_sup, "/v1/assignments?team=sanitation").await;
        assert_eq!(users_of(&listed), Vec::<String>::new(), "{backend:?}");
    }
}

/// `GET /v1/routing` for exposed garbage (E0102) at a point: handlers, grid leaders,
/// supervisors.
async fn responsible(api: &Api, token: &str, (lon, lat): (f64, f64)) -> Value {
    let path = format!("/v1/routing?category=E0102&lon={lon}&lat={lat}&crs=gcj02");
    let (status, answer) = get(api, token, &path).await;
    assert_eq!(status, 200, "{answer}");
    answer["responsible"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_posting_routes_at_once_and_reaches_the_token_at_refresh() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let api = start(store).await;
        let officer = token(&api, "officer").await;
        assert_eq!(
            responsible(&api, &officer, POINT_A).await,
            json!({ "handlers": ["sweeper"], "grid_leaders": ["leader"], "supervisors": ["zy-sup"] }),
            "{backend:?}"
        );
        assert_eq!(
            responsible(&api, &officer, POINT_B).await,
            json!({ "handlers": ["jj-sweeper"], "grid_leaders": [], "supervisors": ["jj-sup"] }),
            "{backend:?}"
        );
        let (sweeper, refresh) = login(&api, "sweeper").await;

        let admin = token(&api, "admin").await;
        let (status, _) = put_posting(
            &api,
            &admin,
            "sweeper",
            json!({ "role": "sanitation_worker", "team": "sanitation", "scope": GRID_B }),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}");
        // Routing reads the postings per decision: the sweeper, posted to grid B
        // itself, is its closest handler now, and grid A has none.
        assert_eq!(
            responsible(&api, &officer, POINT_B).await,
            json!({ "handlers": ["sweeper", "jj-sweeper"], "grid_leaders": [], "supervisors": ["jj-sup"] }),
            "{backend:?}"
        );
        assert_eq!(
            responsible(&api, &officer, POINT_A).await,
            json!({ "handlers": [], "grid_leaders": ["leader"], "supervisors": ["zy-sup"] }),
            "{backend:?}"
        );
        // `GET /v1/users` reads the caller's posting as it is now, not the token's: a
        // district supervisor demoted to field work lists nobody from that moment.
        let zy_sup = token(&api, "zy-sup").await;
        let (status, listed) = get(&api, &zy_sup, "/v1/users").await;
        assert_eq!(status, 200, "{backend:?}: {listed}");
        assert!(!listed["users"].as_array().expect("users").is_empty());
        let (status, _) = put_posting(
            &api,
            &admin,
            "zy-sup",
            json!({ "role": "enforcement_officer", "team": "enforcement", "scope": "410102001001" }),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}");
        let (status, refused) = get(&api, &zy_sup, "/v1/users").await;
        assert_eq!(
            (status, error_code(&refused)),
            (403, "forbidden"),
            "{backend:?}: {refused}"
        );
        // The token issued before keeps the old posting; the refreshed one has the new.
        let (_, me) = get(&api, &sweeper, "/v1/me").await;
        assert_eq!(me["scope"], GRID_A, "{backend:?}");
        let body = json!({ "refresh_token": refresh }).to_string();
        let (status, session) = call(&api, "POST", "/v1/auth/refresh", None, Some(&body)).await;
        assert_eq!(status, 200, "{backend:?}: {session}");
        assert_eq!(session["user"]["scope"], GRID_B);
        let fresh = session["access_token"].as_str().expect("token");
        let (_, me) = get(&api, fresh, "/v1/me").await;
        assert_eq!(me["scope"], GRID_B, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ownership_rules_are_readable_by_anyone_signed_in() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let api = start(store).await;
        let officer = token(&api, "officer").await;
        let (status, answer) = get(&api, &officer, "/v1/ownership-rules").await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        let rules = answer["rules"].as_array().expect("rules");
        assert_eq!(rules.len(), 3);
        let auto = json!({ "code": "auto", "name_zh": "自动派遣", "name_en": "Dispatched at once by the server" });
        assert_eq!(
            rules[0],
            json!({
                "rule": 1,
                "categories": [{ "pattern": "E04", "level": "major_class", "name_zh": "突发事件", "name_en": "Emergencies" }],
                "area": null,
                "team": null,
                "dispatch": auto,
            })
        );
        let covers = rules[1]["categories"].as_array().expect("categories");
        assert_eq!(covers.len(), 12);
        assert_eq!(
            covers[0],
            json!({ "pattern": "C0101", "level": "category", "name_zh": "上水井盖", "name_en": "Water supply manhole cover" })
        );
        assert_eq!(rules[1]["dispatch"]["code"], "auto");
        assert_eq!(
            rules[2],
            json!({
                "rule": 3,
                "categories": [{ "pattern": "E0102", "level": "category", "name_zh": "暴露垃圾", "name_en": "Exposed garbage" }],
                "area": { "code": "410105", "level": "district", "level_zh": "区", "names": { "district": "金水区" } },
                "team": null,
                "dispatch": auto,
            })
        );
        assert_eq!(
            answer["overrides"],
            json!([{
                "name": "中原路（市管道路）",
                "categories": [
                    { "pattern": "C02", "level": "major_class", "name_zh": "道路交通", "name_en": "Roads and traffic" },
                    { "pattern": "E0401", "level": "category", "name_zh": "路面塌陷", "name_en": "Road collapse" },
                ],
                "team": { "code": "municipal_maintenance", "name_zh": "市政维护", "name_en": "Municipal maintenance" },
                "dispatch": { "code": "queue", "name_zh": "待派遣队列", "name_en": "The dispatcher's queue" },
                "shape": "line",
                "line": [[113.6, 34.7505], [113.61, 34.7505]],
                "buffer_m": 30.0,
                "polygon": null,
            }]),
            "{backend:?}"
        );
        assert!(
            answer["precedence"]
                .as_str()
                .is_some_and(|p| p.starts_with("An override")),
            "{answer}"
        );
        // The routing agrees: a road collapse on the road goes to the override's team.
        let (status, routed) = get(
            &api,
            &officer,
            "/v1/routing?category=E0401&lon=113.6005&lat=34.7505&crs=gcj02",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(routed["team"], "municipal_maintenance");
        assert_eq!(
            routed["decided_by"],
            json!({ "override": "中原路（市管道路）" })
        );

        let (status, answer) = call(&api, "GET", "/v1/ownership-rules", None, None).await;
        assert_eq!((status, error_code(&answer)), (401, "unauthenticated"));
    }
}
