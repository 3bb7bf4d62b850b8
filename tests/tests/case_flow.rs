//! A case's whole life end to end, on SQLite and on PostgreSQL: the real `wangge`
//! binary with the real 金水区 grids on loopback. An officer's phone reports a missing
//! sewage manhole cover offline; it syncs; the server locates it, routes it to the
//! municipal maintenance team and dispatches it to the worker posted there, whose
//! connected phone is told at once; the worker handles it offline and syncs; the
//! district supervisor verifies and closes it through the API; both phones and the
//! server fold the same case. Plus the scope of `/v1/cases` and refused actions.

use serde_json::{Value, json};
use wangge_sync_core::case::{Action, Status};
use wangge_tests::phone::Phone;
use wangge_tests::places::{JINSHUI, import_grids, two_places};
use wangge_tests::{Server, answer, databases, http};

const PASSWORD: &str = "网格-2026-ok";

fn add_user(url: &str, id: &str, role: &str, team: Option<&str>, scope: &str) {
    wangge_tests::add_user(url, id, role, team, scope, PASSWORD);
}

/// The grids, and an enforcement officer (`officer`) and a municipal maintenance
/// worker (`maint`) posted to `community`.
fn officer_and_maintenance(url: &str, community: &str) {
    import_grids(url);
    add_user(
        url,
        "officer",
        "enforcement_officer",
        Some("enforcement"),
        community,
    );
    add_user(
        url,
        "maint",
        "municipal_maintenance",
        Some("municipal_maintenance"),
        community,
    );
}

/// [`officer_and_maintenance`] in `community`, a municipal maintenance worker
/// (`outsider`) in `other_grid`'s community and the 金水区 supervisor.
fn officer_maintenance_outsider_and_supervisor(
    url: &str,
    community: &str,
    other_grid: &wangge_sync_core::grid::GridCode,
) {
    officer_and_maintenance(url, community);
    add_user(
        url,
        "outsider",
        "municipal_maintenance",
        Some("municipal_maintenance"),
        &other_grid.community().to_string(),
    );
    add_user(url, "supervisor", "district_supervisor", None, JINSHUI);
}

fn act(server: &Server, phone: &Phone, id: &str, body: Value) -> (u16, Value) {
    answer(
        http()
            .post(server.url(&format!("/v1/cases/{id}/actions")))
            .header("Authorization", format!("Bearer {}", phone.token))
            .send_json(body),
    )
}

fn listed(body: &Value) -> Vec<String> {
    body["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn a_case_from_an_offline_report_to_its_close_on_every_backend() {
    let [(grid, position), (other_grid, _)] = two_places();
    let community = grid.community().to_string();
    for database in databases() {
        let url = &database.url;
        officer_maintenance_outsider_and_supervisor(url, &community, &other_grid);
        let server = Server::start(url, &[]);
        let backend = database.backend;

        let mut officer = Phone::login(&server, "officer", PASSWORD);
        let mut maint = Phone::login(&server, "maint", PASSWORD);
        let outsider = Phone::login(&server, "outsider", PASSWORD);
        let supervisor = Phone::login(&server, "supervisor", PASSWORD);
        let mut maint_push = maint.push(&server);
        maint_push.expect("hello");

        // Reported offline: C0102 污水井盖 (a sewage manhole cover), dispatched at once
        // by the built-in rules. The server's dispatch comes back in the same reply.
        let id = "0193f0a0-0000-7000-8000-0000000000c1";
        officer.report(id, "C0102", grid, position);
        let round = officer.sync(&server);
        assert_eq!(round.acknowledged, 1, "{backend}");
        let on_officer = officer.fold(id);
        assert_eq!(on_officer.status, Some(Status::Dispatched), "{backend}");
        let assignment = on_officer.assignment.clone().expect("assignment");
        assert_eq!(assignment.team.as_str(), "municipal_maintenance");
        assert_eq!(assignment.assignee.as_deref(), Some("maint"), "{backend}");

        // The assignee's connected phone is told, and gets the case on its sync.
        let notice = maint_push.expect("dispatch");
        assert_eq!(notice["case"], json!(id), "{backend}");
        maint.sync(&server);
        assert_eq!(maint.fold(id).status, Some(Status::Dispatched));

        // The server's view, materialized in the same transaction.
        let (status, body) = supervisor.get(&server, &format!("/v1/cases?grid={community}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(listed(&body), vec![id.to_owned()], "{backend}");
        let row = &body["cases"][0];
        assert_eq!(row["status"], "dispatched");
        assert_eq!(row["grid"], json!(grid.to_string()));
        assert_eq!(row["street"], json!(grid.street().to_string()));
        assert_eq!(row["assignee"], "maint");
        assert_eq!(row["step"], "handle");
        assert!(row["due_at"].is_i64(), "{row}");

        // Handled offline, synced.
        maint.act(id, Action::Handle, 30);
        maint.sync(&server);
        let (_, body) = supervisor.get(&server, "/v1/cases?status=handled");
        assert_eq!(listed(&body), vec![id.to_owned()], "{backend}");

        // A worker may not verify; out of scope is not found; nonsense is refused.
        let (status, body) = act(&server, &maint, id, json!({ "action": "verify" }));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("action_refused"))
        );
        let (status, _) = act(&server, &outsider, id, json!({ "action": "comment" }));
        assert_eq!(status, 404, "{backend}");
        let (status, body) = act(&server, &supervisor, id, json!({ "action": "fly" }));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_action"))
        );
        // The same checks as a phone's entry (sync-core's `Action::from_fields`): an
        // extension of more than 365 days, or of nothing; a dispatch without a team.
        for (bad, says) in [
            (
                json!({ "action": "request_extension", "extra": "400 working_days" }),
                "365 days",
            ),
            (
                json!({ "action": "request_extension", "extra": "0 hours" }),
                "365 days",
            ),
            (json!({ "action": "dispatch" }), "dispatch needs \"team\""),
            (
                json!({ "action": "dispatch", "team": "sanitation", "assignee": "a b" }),
                "assignee",
            ),
        ] {
            let (status, body) = act(&server, &maint, id, bad.clone());
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_action")),
                "{bad}: {body}"
            );
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{bad}: {message}");
        }

        // The supervisor verifies and closes from the command centre.
        let (status, body) = act(
            &server,
            &supervisor,
            id,
            json!({ "action": "verify", "note": "现场核查：已修复" }),
        );
        assert_eq!(status, 200, "{backend}: {body}");
        let (status, body) = act(&server, &supervisor, id, json!({ "action": "close" }));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["case"]["status"], "closed");
        assert_eq!(body["status_zh"], "已结案");

        // The same folded case everywhere.
        let (status, shown) = supervisor.get(&server, &format!("/v1/cases/{id}"));
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["case"]["status"], "closed");
        assert!(shown["case"]["closed_at"].is_i64());
        let timeline: Vec<(String, String)> = shown["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .filter(|e| e["applied"] == true)
            .map(|e| {
                (
                    e["role"].as_str().unwrap_or("").to_owned(),
                    e["action"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = [
            ("enforcement_officer", "report"),
            ("server", "accept"),
            ("server", "register"),
            ("server", "dispatch"),
            ("municipal_maintenance", "handle"),
            ("district_supervisor", "verify"),
            ("district_supervisor", "close"),
        ]
        .iter()
        .map(|(r, a)| ((*r).to_owned(), (*a).to_owned()))
        .collect();
        assert_eq!(timeline, expected, "{backend}");
        for phone in [&mut officer, &mut maint] {
            phone.sync(&server);
            let view = phone.fold(id);
            assert_eq!(
                view.status,
                Some(Status::Closed),
                "{backend}: {}",
                phone.actor.user
            );
            assert_eq!(
                view.entries.len(),
                shown["timeline"].as_array().map_or(0, Vec::len)
            );
            assert_eq!(view.assignment, on_officer.assignment);
        }

        // Scope: the other community's worker sees nothing of it.
        let (status, _) = outsider.get(&server, &format!("/v1/cases/{id}"));
        assert_eq!(status, 404, "{backend}");
        let (_, body) = outsider.get(&server, "/v1/cases");
        assert!(listed(&body).is_empty(), "{backend}: {body}");
        let (_, body) = officer.get(&server, "/v1/cases");
        assert_eq!(listed(&body), vec![id.to_owned()], "{backend}: own grid");

        // A queued category waits for the dispatcher, routed to nobody yet.
        let queued = "0193f0a0-0000-7000-8000-0000000000c2";
        officer.report(queued, "E0102", grid, position);
        officer.sync(&server);
        assert_eq!(officer.fold(queued).status, Some(Status::Reported));
        let (_, body) = supervisor.get(&server, "/v1/cases?status=reported&category=E01");
        assert_eq!(listed(&body), vec![queued.to_owned()], "{backend}");
        assert_eq!(body["cases"][0]["team"], Value::Null);

        // Bad queries.
        for bad in [
            "/v1/cases?status=lost",
            "/v1/cases?grid=41",
            "/v1/cases?limit=0",
            "/v1/cases?category=X1",
        ] {
            let (status, body) = supervisor.get(&server, bad);
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_query")),
                "{bad}"
            );
        }
        let (status, _) = supervisor.get(&server, "/v1/cases/no-such-case");
        assert_eq!(status, 404);

        // What an operator watches.
        let mut response = http().get(server.url("/metrics")).call().expect("metrics");
        assert_eq!(response.status().as_u16(), 200);
        let text = response.body_mut().read_to_string().expect("text");
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
                .unwrap_or_else(|| panic!("{name} in {text}"))
        };
        assert_eq!(value("wangge_case_actions_total "), 2.0, "{backend}");
        // Accept, register and dispatch: one change by the server.
        assert_eq!(value("wangge_automatic_changes_total "), 1.0, "{text}");
        assert!(value("wangge_sync_rounds_total{outcome=\"stored\"} ") >= 6.0);
        assert_eq!(value("wangge_push_sockets "), 1.0);
        assert!(value("wangge_resident_memory_bytes ") > 1e6);
    }
}

/// A dispatched case the acceptor reclassifies goes to the team the rules now name: the
/// server returns it (退回) and dispatches it again in the acceptor's round, and the new
/// worker's connected phone is told.
#[test]
fn a_case_reclassified_after_its_dispatch_goes_to_the_new_team() {
    let [(grid, position), _] = two_places();
    let community = grid.community().to_string();
    for database in databases() {
        let url = &database.url;
        officer_and_maintenance(url, &community);
        add_user(
            url,
            "plumber",
            "department_handler",
            Some("water"),
            &community,
        );
        add_user(
            url,
            "acceptor",
            "acceptor",
            None,
            &grid.street().to_string(),
        );
        let server = Server::start(url, &[]);
        let backend = database.backend;
        let mut officer = Phone::login(&server, "officer", PASSWORD);
        let mut maint = Phone::login(&server, "maint", PASSWORD);
        let mut plumber = Phone::login(&server, "plumber", PASSWORD);
        let mut acceptor = Phone::login(&server, "acceptor", PASSWORD);
        let mut plumber_push = plumber.push(&server);
        plumber_push.expect("hello");

        // A sewage manhole cover (C0102): municipal maintenance's, dispatched at once.
        let id = "0193f0a0-0000-7000-8000-0000000000d1";
        officer.report(id, "C0102", grid, position);
        officer.sync(&server);
        let first = officer.fold(id).assignment.expect("dispatched");
        assert_eq!(first.assignee.as_deref(), Some("maint"), "{backend}");

        // On site it is a water supply cover (C0101 上水井盖): the water company's.
        acceptor.sync(&server);
        let mut case = acceptor.case(id);
        case.set_category(&acceptor.actor, "C0101".parse().expect("category"))
            .expect("reclassified");
        acceptor.write(id, &case);
        let round = acceptor.sync(&server);
        assert_eq!(round.acknowledged, 1, "{backend}");
        let notice = plumber_push.expect("dispatch");
        assert_eq!(notice["case"], json!(id), "{backend}");

        // The acceptor's reply carried the server's return and new dispatch; every
        // phone folds the same.
        plumber.sync(&server);
        maint.sync(&server);
        officer.sync(&server);
        for phone in [&acceptor, &plumber, &maint, &officer] {
            let view = phone.fold(id);
            assert_eq!(view.status, Some(Status::Dispatched), "{backend}");
            let assignment = view.assignment.expect("dispatched");
            assert_eq!(assignment.team.as_str(), "water", "{backend}");
            assert_eq!(assignment.assignee.as_deref(), Some("plumber"));
            assert_eq!(view.counts.returns, 1);
            assert_eq!(view.counts.dispatches, 2);
        }
        let (status, shown) = acceptor.get(&server, &format!("/v1/cases/{id}"));
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["case"]["team"], "water", "{backend}");
        assert_eq!(shown["case"]["assignee"], "plumber");
        let server_actions: Vec<&str> = shown["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .filter(|e| e["role"] == "server" && e["applied"] == true)
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert_eq!(
            server_actions,
            ["accept", "register", "dispatch", "return", "dispatch"],
            "{backend}"
        );
    }
}

#[test]
fn a_dispatch_decided_on_one_node_reaches_a_phone_on_another() {
    let [(grid, position), _] = two_places();
    let community = grid.community().to_string();
    let Some(database) = databases().into_iter().find(|d| d.backend == "postgres") else {
        wangge_tests::skipped("two nodes", "they share a PostgreSQL database");
        return;
    };
    let url = &database.url;
    officer_and_maintenance(url, &community);
    let node_a = Server::start(url, &[]);
    let node_b = Server::start(url, &[]);
    let mut officer = Phone::login(&node_a, "officer", PASSWORD);
    let mut maint = Phone::login(&node_b, "maint", PASSWORD);
    let mut push = maint.push(&node_b);
    push.expect("hello");

    let id = "0193f0a0-0000-7000-8000-0000000000d1";
    officer.report(id, "C0102", grid, position);
    officer.sync(&node_a);
    assert_eq!(push.expect("dispatch")["case"], json!(id));
    let round = maint.sync(&node_b);
    assert_eq!(round.received, 1);
    let view = maint.fold(id);
    assert_eq!(view.status, Some(Status::Dispatched));
    assert_eq!(
        view.assignment.and_then(|a| a.assignee).as_deref(),
        Some("maint")
    );
}

/// `kill -9` of the server while phones sync, several times, at different moments:
/// after a restart every report the phone wrote is on the server exactly once, and
/// nothing the server acknowledged is missing.
#[test]
fn a_server_killed_in_the_middle_of_sync_rounds_loses_nothing_it_acknowledged() {
    let [(grid, position), _] = two_places();
    let community = grid.community().to_string();
    for database in databases() {
        let url = &database.url;
        let backend = database.backend;
        import_grids(url);
        add_user(
            url,
            "officer",
            "enforcement_officer",
            Some("enforcement"),
            &community,
        );
        add_user(url, "supervisor", "district_supervisor", None, JINSHUI);
        let mut server = Server::start(url, &[]);
        let mut officer = Phone::login(&server, "officer", PASSWORD);
        let mut written = 0;
        let mut cut = 0;
        for (attempt, delay_ms) in [0u64, 10, 40, 100, 250, 1500].into_iter().enumerate() {
            for n in 0..25 {
                officer.report(
                    &format!("0193f0a0-0000-7000-8000-{attempt:04}{n:08}"),
                    "E0102",
                    grid,
                    position,
                );
                written += 1;
            }
            let sync_url = server.url("/v1/sync");
            let request = officer
                .session
                .prepare(&mut officer.store)
                .expect("prepare");
            let answer = std::thread::scope(|scope| {
                let phone = &officer;
                let posting =
                    scope.spawn(|| phone.try_post(&sync_url, "application/cbor", &request));
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                drop(server); // SIGKILL, mid-round or not
                posting.join().expect("the posting thread")
            });
            match answer {
                Ok((200, reply)) => {
                    officer
                        .session
                        .receive(&mut officer.store, &reply)
                        .expect("a whole reply is received");
                }
                _ => {
                    cut += 1;
                    officer.session.abandon();
                }
            }
            server = Server::start(url, &[]);
        }
        eprintln!("{backend}: {cut} of 6 rounds cut by kill -9");
        assert!(cut >= 1, "{backend}: a kill at 0 ms cuts its round");
        officer.sync(&server);
        let unsent = officer
            .store
            .documents()
            .values()
            .filter(|d| d.unsent)
            .count();
        assert_eq!(
            unsent, 0,
            "{backend}: everything delivered after the restarts"
        );
        let supervisor = Phone::login(&server, "supervisor", PASSWORD);
        let (status, body) = supervisor.get(&server, "/v1/cases?limit=500");
        assert_eq!(status, 200, "{body}");
        let mut ids = listed(&body);
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            written,
            "{backend}: every report once ({cut} rounds cut)"
        );
        let mut held: Vec<String> = officer.store.documents().keys().cloned().collect();
        held.sort();
        assert_eq!(ids, held, "{backend}");
    }
}

/// A posting and the statuses it gets: (user, role, team, scope, read, comment, verify).
type Cell<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, u16, u16, u16);

/// Who may read and act on a case, cell by cell: roles × (the case's community, its
/// street, its district, another community, another district, the city) × (read,
/// comment, verify). Out of scope is 404 (not told apart from a case that does not
/// exist); in scope but not allowed by the workflow is 409.
#[test]
fn the_scope_matrix_of_the_case_endpoints() {
    let [(grid, position), (other_grid, _)] = two_places();
    let community = grid.community().to_string();
    let street = grid.street().to_string();
    let other_community = other_grid.community().to_string();
    for database in databases() {
        let url = &database.url;
        let backend = database.backend;
        import_grids(url);
        // (user, role, team, scope, read, comment, verify). Verify is tried in this
        // order on a handled case: every refusal first, then the one that applies
        // (after which the status refuses it to everyone).
        let matrix: [Cell<'_>; 9] = [
            (
                "officer",
                "enforcement_officer",
                Some("enforcement"),
                &community,
                200,
                200,
                409,
            ),
            (
                "neighbour",
                "enforcement_officer",
                Some("enforcement"),
                &other_community,
                404,
                404,
                404,
            ),
            (
                "other_leader",
                "grid_leader",
                None,
                &other_community,
                404,
                404,
                404,
            ),
            (
                "street_dispatcher",
                "dispatcher",
                None,
                &street,
                200,
                200,
                409,
            ),
            (
                "zhongyuan",
                "district_supervisor",
                None,
                "410102",
                404,
                404,
                404,
            ),
            ("hotline", "hotline_operator", None, "*", 200, 200, 409),
            (
                "maint",
                "municipal_maintenance",
                Some("municipal_maintenance"),
                &community,
                200,
                200,
                409,
            ),
            ("city", "city_supervisor", None, "*", 200, 200, 200),
            // May verify, but the city has: the case is verified by now.
            ("leader", "grid_leader", None, &community, 200, 200, 409),
        ];
        for (user, role, team, scope, ..) in &matrix {
            add_user(url, user, role, *team, scope);
        }
        let server = Server::start(url, &[]);
        let mut officer = Phone::login(&server, "officer", PASSWORD);
        let id = "0193f0a0-0000-7000-8000-0000000000e1";
        officer.report(id, "C0102", grid, position);
        officer.sync(&server);
        // Dispatched by the server to maint, posted there; maint handles it.
        let maint = Phone::login(&server, "maint", PASSWORD);
        let (status, body) = act(&server, &maint, id, json!({ "action": "handle" }));
        assert_eq!(status, 200, "{backend}: {body}");
        for (user, _, _, _, read, comment, verify) in matrix {
            let phone = Phone::login(&server, user, PASSWORD);
            let (status, body) = phone.get(&server, &format!("/v1/cases/{id}"));
            assert_eq!(status, read, "{backend}: {user} reads: {body}");
            let (_, list) = phone.get(&server, "/v1/cases");
            assert_eq!(
                listed(&list).contains(&id.to_owned()),
                read == 200,
                "{backend}: {user} lists: {list}"
            );
            let (status, body) = act(
                &server,
                &phone,
                id,
                json!({ "action": "comment", "note": user }),
            );
            assert_eq!(status, comment, "{backend}: {user} comments: {body}");
            let (status, body) = act(&server, &phone, id, json!({ "action": "verify" }));
            assert_eq!(status, verify, "{backend}: {user} verifies: {body}");
        }
    }
}

/// The officer's own case, edited raw as a tampered phone could (the reporter may
/// edit the location and grid): `edit` runs on the document with the phone's actor.
fn tamper(
    phone: &mut Phone,
    id: &str,
    edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) {
    let mut case = phone.case(id);
    let actor = automerge::ActorId::from(hex_bytes(&phone.actor.device));
    let doc = case.automerge_mut();
    doc.set_actor(actor);
    let mut tx = doc.transaction();
    edit(&mut tx);
    tx.commit();
    phone.write(id, &case);
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A grid the server cannot check against a location never puts a case into
/// another area's lists: a location that is not one is refused with the batch, and a
/// grid claimed without any location outside the reporter's posting is taken away.
#[test]
fn a_claimed_grid_the_server_cannot_check_enters_no_other_areas_scope() {
    use automerge::transaction::Transactable as _;
    let [(grid, position), (other_grid, _)] = two_places();
    let community = grid.community().to_string();
    for database in databases() {
        let url = &database.url;
        officer_maintenance_outsider_and_supervisor(url, &community, &other_grid);
        let server = Server::start(url, &[]);
        let backend = database.backend;
        let mut officer = Phone::login(&server, "officer", PASSWORD);
        let mut outsider = Phone::login(&server, "outsider", PASSWORD);
        let supervisor = Phone::login(&server, "supervisor", PASSWORD);

        // No location at all, and the other community's grid claimed.
        let moved = "0193f0a0-0000-7000-8000-0000000000d1";
        officer.report(moved, "E0102", grid, position);
        let other = other_grid.to_string();
        tamper(&mut officer, moved, |tx| {
            tx.delete(automerge::ROOT, "location").expect("delete");
            tx.put(automerge::ROOT, "grid", other.as_str())
                .expect("put");
        });
        let round = officer.sync(&server);
        assert_eq!(round.acknowledged, 1, "{backend}: {round:?}");
        assert_eq!(officer.fold(moved).record.grid, None, "{backend}");
        let (status, body) = outsider.get(&server, "/v1/cases");
        assert_eq!(status, 200, "{backend}: {body}");
        assert!(
            !listed(&body).contains(&moved.to_owned()),
            "{backend}: {body}"
        );
        outsider.sync(&server);
        assert!(
            !outsider.store.documents().contains_key(moved),
            "{backend}: the outsider's phone received it"
        );
        // Still the reporter's, and the supervisor's to locate.
        let (status, body) = officer.get(&server, &format!("/v1/cases/{moved}"));
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body["case"]["grid"], Value::Null, "{backend}: {body}");

        // A location whose longitude is a map: the whole batch is refused, nothing is
        // stored.
        let broken = "0193f0a0-0000-7000-8000-0000000000d2";
        officer.report(broken, "E0102", grid, position);
        tamper(&mut officer, broken, |tx| {
            let location = tx
                .put_object(automerge::ROOT, "location", automerge::ObjType::Map)
                .expect("location");
            tx.put_object(&location, "lon", automerge::ObjType::Map)
                .expect("lon");
            tx.put(&location, "lat", 34.76).expect("lat");
            tx.put(automerge::ROOT, "grid", other.as_str())
                .expect("grid");
        });
        // One round, to read its refusal.
        let request = officer
            .session
            .prepare(&mut officer.store)
            .expect("prepare");
        let (status, reply) = officer.post(&server, "application/cbor", &request);
        assert_eq!(status, 200, "{backend}");
        let round = officer
            .session
            .receive(&mut officer.store, &reply)
            .expect("receive");
        assert_eq!(round.acknowledged, 0, "{backend}: {round:?}");
        assert!(
            round
                .refused
                .iter()
                .any(|r| format!("{r:?}").contains("location")),
            "{backend}: {round:?}"
        );
        let (status, _) = supervisor.get(&server, &format!("/v1/cases/{broken}"));
        assert_eq!(status, 404, "{backend}");
        let (_, body) = outsider.get(&server, "/v1/cases");
        assert!(!listed(&body).contains(&broken.to_owned()), "{backend}");
    }
}
