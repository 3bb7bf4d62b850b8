//! The command centre's web console (docs/console.md), end to end against the real
//! `wangge serve` on the real 金水区 grids.
//!
//! Over HTTP: the page and its files under a strict Content-Security-Policy; the
//! browser session's cookies (HttpOnly, SameSite=Strict, no token in the body); a
//! cookie-authenticated unsafe request without the CSRF header, with a wrong one or
//! from another site's `Origin` refused 403 with our JSON error; refresh and logout.
//!
//! In a real browser (headless Chromium through chromedriver; with `CI=true` a browser
//! that cannot start fails the test, elsewhere it is skipped and said so): a district
//! supervisor logs in, takes a hotline call, accepts, registers and dispatches a case
//! (which then arrives on the field worker's phone), sees the grids on the map and
//! rejects a patrol log with a reason, and reads the month's ranking of its streets
//! (and its CSV); the city supervisor and the field worker see what their roles may;
//! on SQLite and on PostgreSQL. No JavaScript error in any of it; each main screen is
//! saved under `target/console-screenshots/`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration};
use serde_json::{Value, json};
use wangge_sync_core::calendar::SHANGHAI;
use wangge_sync_core::case::Status;
use wangge_sync_core::patrol::{CheckIn, PatrolLog, TrackPoint, patrol_log_id};
use wangge_sync_core::sync::DocKind;
use wangge_tests::browser::Browser;
use wangge_tests::phone::Phone;
use wangge_tests::places::{JINSHUI, import_grids, two_streets};
use wangge_tests::{Server, answer, databases, http};

const PASSWORD: &str = "控制台-2026-ok";

/// The cookies a `Set-Cookie` list sets, as one `Cookie` header value.
fn cookie_header(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .filter(|pair| !pair.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

fn set_cookies(response: &ureq::http::Response<ureq::Body>) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .collect()
}

fn status_and_json(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    (status, body)
}

#[test]
fn the_console_is_served_under_a_strict_policy_and_its_cookie_session_needs_csrf() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("console.db").display());
    wangge_tests::add_user(&url, "sup", "district_supervisor", None, JINSHUI, PASSWORD);
    let server = Server::start(&url, &[]);

    // The page: HTML under a policy with no inline script, no eval, no framing.
    let mut page = http().get(server.url("/")).call().expect("GET /");
    assert_eq!(page.status(), 200);
    let header = |r: &ureq::http::Response<ureq::Body>, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header(&page, "content-type").starts_with("text/html"));
    let policy = header(&page, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let html = page.body_mut().read_to_string().expect("HTML");
    assert!(html.contains("/console/app.js"), "{html}");
    // Its files, Leaflet with its licence; a missing file is our JSON 404.
    for (path, kind) in [
        ("/console/app.js", "text/javascript"),
        ("/console/console.css", "text/css"),
        (
            "/console/vendor/leaflet/leaflet-src.esm.js",
            "text/javascript",
        ),
        ("/console/vendor/leaflet/LICENSE", "text/plain"),
    ] {
        let response = http().get(server.url(path)).call().expect("file");
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            header(&response, "content-type").starts_with(kind),
            "{path}"
        );
        assert!(!header(&response, "etag").is_empty(), "{path}");
    }
    let (status, body) = answer(http().get(server.url("/console/../Cargo.toml")).call());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // A wrong password: our JSON error, no cookie.
    let response = http()
        .post(server.url("/v1/console/session"))
        .send_json(json!({ "user": "sup", "password": "wrong" }))
        .expect("login");
    assert!(set_cookies(&response).is_empty());
    let (status, body) = status_and_json(response);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("bad_credentials"))
    );

    // Logged in: the session is in HttpOnly, SameSite=Strict cookies; no token in
    // the body, only the CSRF token the page repeats.
    let response = http()
        .post(server.url("/v1/console/session"))
        .send_json(json!({ "user": "sup", "password": PASSWORD }))
        .expect("login");
    let cookies = set_cookies(&response);
    let (status, session) = status_and_json(response);
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["role"], "district_supervisor");
    assert_eq!(session["may"]["review_patrol"], true);
    assert!(session.get("access_token").is_none(), "{session}");
    let csrf = session["csrf_token"]
        .as_str()
        .expect("csrf token")
        .to_owned();
    for name in [
        "wangge_session",
        "wangge_refresh",
        "wangge_device",
        "wangge_csrf",
    ] {
        let set = cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {cookies:?}"));
        assert!(set.contains("; HttpOnly"), "{set}");
        assert!(set.contains("; SameSite=Strict"), "{set}");
    }
    let jar = cookie_header(&cookies);

    // The API takes the cookie where no Authorization header is sent.
    let (status, me) = answer(
        http()
            .get(server.url("/v1/me"))
            .header("Cookie", &jar)
            .call(),
    );
    assert_eq!((status, me["sub"].as_str()), (200, Some("sup")));
    let (status, again) = answer(
        http()
            .get(server.url("/v1/console/session"))
            .header("Cookie", &jar)
            .call(),
    );
    assert_eq!((status, again["csrf_token"].as_str()), (200, Some(&*csrf)));

    // An unsafe request with the cookie: refused without the CSRF header, with a wrong
    // one, or from another site; with the right one it reaches the handler (404: no
    // such case).
    let act = || {
        http()
            .post(server.url("/v1/cases/no-such-case/actions"))
            .header("Cookie", &jar)
    };
    let refused = |response: Result<ureq::http::Response<ureq::Body>, ureq::Error>, why: &str| {
        let (status, body) = answer(response);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("csrf_failed")),
            "{why}: {body}"
        );
    };
    refused(
        act().send_json(json!({ "action": "accept" })),
        "no CSRF header",
    );
    refused(
        act()
            .header("X-Wangge-Csrf", "not-the-token")
            .send_json(json!({ "action": "accept" })),
        "a wrong CSRF token",
    );
    refused(
        act()
            .header("X-Wangge-Csrf", &csrf)
            .header("Origin", "https://evil.example")
            .send_json(json!({ "action": "accept" })),
        "another site's Origin",
    );
    refused(
        http()
            .get(server.url("/v1/cases"))
            .header("Cookie", &jar)
            .header("Origin", "https://evil.example")
            .call(),
        "another site's Origin on a GET",
    );
    let (status, body) = answer(
        act()
            .header("X-Wangge-Csrf", &csrf)
            .header("Origin", &server.base_url)
            .send_json(json!({ "action": "accept" })),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("case_not_found"))
    );
    // A bearer token needs no CSRF header: no browser sends it by itself.
    let phone = Phone::login(&server, "sup", PASSWORD);
    let (status, body) = answer(
        http()
            .post(server.url("/v1/cases/no-such-case/actions"))
            .header("Authorization", format!("Bearer {}", phone.token))
            .send_json(json!({ "action": "accept" })),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("case_not_found"))
    );

    // Refresh: CSRF-checked too; new cookies.
    refused(
        http()
            .post(server.url("/v1/console/session/refresh"))
            .header("Cookie", &jar)
            .send(""),
        "refresh without the CSRF header",
    );
    let response = http()
        .post(server.url("/v1/console/session/refresh"))
        .header("Cookie", &jar)
        .header("X-Wangge-Csrf", &csrf)
        .send("")
        .expect("refresh");
    let renewed = set_cookies(&response);
    assert_eq!(response.status().as_u16(), 200);
    assert!(renewed.iter().any(|c| c.starts_with("wangge_session=")));
    let jar = cookie_header(
        &[
            renewed.clone(),
            cookies
                .iter()
                .filter(|c| c.starts_with("wangge_csrf=") || c.starts_with("wangge_device="))
                .cloned()
                .collect(),
        ]
        .concat(),
    );

    // Logout revokes the browser's device: the cookie no longer works.
    let response = http()
        .delete(server.url("/v1/console/session"))
        .header("Cookie", &jar)
        .header("X-Wangge-Csrf", &csrf)
        .call()
        .expect("logout");
    assert_eq!(response.status().as_u16(), 204);
    assert!(
        set_cookies(&response)
            .iter()
            .any(|c| c.starts_with("wangge_session=;") && c.contains("Max-Age=0"))
    );
    let (status, body) = answer(
        http()
            .get(server.url("/v1/me"))
            .header("Cookie", &jar)
            .call(),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("device_revoked"))
    );
}

/// Where the screenshots go: `<target>/console-screenshots/`.
fn screenshots() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    exe.ancestors()
        .nth(3)
        .expect("<target>/<profile>/deps/<binary>")
        .join("console-screenshots")
}

#[test]
fn command_centre_roles_work_their_desks_in_a_real_browser() {
    let browser = match Browser::start() {
        Ok(browser) => browser,
        Err(why) => {
            // With CI=true this panics: a CI machine must run the browser tests.
            wangge_tests::skipped("the console's browser test", &why);
            return;
        }
    };
    for database in databases() {
        // SQLite's screens in `console-screenshots/`, PostgreSQL's in a folder beside.
        let shots = match database.backend {
            "sqlite" => screenshots(),
            backend => screenshots().join(backend),
        };
        work_the_desks(&browser, &database.url, &shots);
    }
}

/// Every desk, as each role, against a fresh server on `url`; screens saved in `shots`.
fn work_the_desks(browser: &Browser, url: &str, shots: &Path) {
    let url = url.to_owned();
    import_grids(&url);
    let [street, _] = two_streets();
    let places = &street[..2];
    let scope = places
        .iter()
        .flat_map(|p| p.grids.iter().map(ToString::to_string))
        .collect::<Vec<_>>()
        .join(",");
    let add = |id: &str, role: &str, team: Option<&str>, scope: &str| {
        wangge_tests::add_user(&url, id, role, team, scope, PASSWORD);
    };
    add("city", "city_supervisor", None, "*");
    add("district", "district_supervisor", None, JINSHUI);
    add("sweeper", "sanitation_worker", Some("sanitation"), &scope);
    let server = Server::start(&url, &[]);

    // A call already taken in (E0102 暴露垃圾 waits in the queue: not automatic), and
    // the field worker's day of patrol, synced from the phone.
    let district = Phone::login(&server, "district", PASSWORD);
    let (_, position) = places[0].check_in;
    // A hotline call (E0102 暴露垃圾: queued) taken in through the API.
    let take_call = |call: Value| {
        answer(
            http()
                .post(server.url("/v1/cases"))
                .header("Authorization", format!("Bearer {}", district.token))
                .send_json(call),
        )
    };
    let (status, created) = take_call(json!({
        "category": "E0102",
        "description": "来电反映：小区门口垃圾堆放两天无人清运",
        "address": "金水区 某小区北门",
        "location": { "lon": position.lon, "lat": position.lat },
        "caller": { "name": "王女士", "phone": "13800000000" },
    }));
    assert_eq!(status, 201, "{created}");
    let case_id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["case"]["status"], "reported", "{created}");
    // The same rubbish called in again: the first case's page suggests it.
    let (status, again) = take_call(json!({
        "category": "E0102",
        "description": "来电反映：北门垃圾无人清运",
        "location": { "lon": position.lon, "lat": position.lat },
    }));
    assert_eq!(status, 201, "{again}");
    let repeated = again["id"].as_str().expect("id").to_owned();
    let mut sweeper = Phone::login(&server, "sweeper", PASSWORD);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let start = DateTime::from_timestamp_millis(now_ms).expect("now") - Duration::hours(2);
    let day = start.with_timezone(&SHANGHAI).date_naive();
    let mut log = PatrolLog::create(&sweeper.actor, day).expect("log");
    let mut points = Vec::new();
    for (i, place) in places.iter().enumerate() {
        let (grid, at) = place.check_in;
        let when = start + Duration::minutes(20 * i as i64);
        log.check_in(
            &sweeper.actor,
            &CheckIn {
                id: format!("c{i}"),
                at: when,
                position: at,
                grid: Some(grid),
                note: None,
            },
        )
        .expect("check-in");
        for s in 0..5 {
            points.push(TrackPoint {
                at_ms: (when + Duration::seconds(30 * s)).timestamp_millis(),
                lon: at.lon + 0.0001 * s as f64,
                lat: at.lat,
                accuracy_m: Some(8.0),
            });
        }
    }
    log.record_track(&sweeper.actor, &points).expect("track");
    let log_id = patrol_log_id(&sweeper.actor.user, day);
    sweeper.write_doc(&log_id, DocKind::PatrolLog, log.automerge());
    sweeper.sync(&server);

    let no_errors = |when: &str| {
        let errors = browser.errors();
        assert!(errors.is_empty(), "JavaScript errors {when}: {errors:#?}");
    };
    let login = |user: &str| {
        browser.goto(&server.url("/"));
        browser.wait("document.body.dataset.state === 'login'", "the login form");
        browser.type_into("#login-user", user);
        browser.type_into("#login-password", PASSWORD);
        browser.click("#login-submit");
        browser.wait("document.body.dataset.state === 'ready'", "the console");
    };
    // The patrol tab, the log's day, the log.
    let open_log = || {
        browser.click("[data-view=patrol]");
        browser.script(
            "document.getElementById('patrol-day').value = arguments[0];",
            json!([day.to_string()]),
        );
        browser.click("#patrol-filter button[type=submit]");
        browser.click(&format!("tr[data-log='{log_id}']"));
    };
    let logout = || {
        browser.click("#logout");
        browser.wait(
            "document.body.dataset.state === 'login'",
            "the login form again",
        );
    };

    // The login page, in Chinese; a wrong password is said so.
    browser.goto(&server.url("/"));
    browser.wait("document.body.dataset.state === 'login'", "the login form");
    browser.type_into("#login-user", "district");
    browser.type_into("#login-password", "wrong");
    browser.click("#login-submit");
    browser.wait(
        "!document.getElementById('login-error').hidden",
        "the refusal",
    );
    assert!(browser.text("h2").contains("登录"));
    assert_eq!(browser.text("#login-error"), "账号或密码错误");
    browser.screenshot(&shots.join("01-login.png"));
    no_errors("on the login page");

    // The district supervisor: queues, the case desk, the hotline desk.
    login("district");
    browser.wait(
        "document.querySelector('[data-queue=q_reported] .badge').textContent === '2'",
        "two cases to accept",
    );
    assert!(browser.text("#tabs").contains("热线受理"));
    // Who takes calls also calls back: the queue of the answers owed (none yet).
    assert_eq!(
        browser.text("[data-queue=q_reply]"),
        "待回访 0",
        "the reply queue"
    );
    // The district's map starts too far out for unit grids: the areas' outlines.
    browser.wait(
        "Number(document.getElementById('map-hint').dataset.areas) > 0 \
         && document.querySelectorAll('#map path.area').length > 0",
        "the outlines of the district's areas",
    );
    browser.screenshot(&shots.join("02-case-queues.png"));

    // A call taken at the hotline desk, by grid code.
    browser.click("[data-view=hotline]");
    browser.script(
        "document.getElementById('hotline-category').value = 'E0102';",
        json!([]),
    );
    browser.type_into("#hotline-grid", &places[1].check_in.0.to_string());
    browser.type_into("#hotline-description", "来电反映：路边垃圾桶满溢");
    browser.type_into("#hotline-caller", "李先生");
    browser.screenshot(&shots.join("03-hotline.png"));
    browser.click("#hotline-submit");
    browser.wait(
        "document.getElementById('hotline-result').dataset.case",
        "the call's case",
    );
    let called = browser.script(
        "return document.getElementById('hotline-result').dataset.case;",
        json!([]),
    );
    let (status, row) = district.get(
        &server,
        &format!("/v1/cases/{}", called.as_str().expect("id")),
    );
    assert_eq!(
        (status, row["case"]["source"].as_str()),
        (200, Some("hotline")),
        "{row}"
    );
    no_errors("at the hotline desk");

    // The first case: accepted, registered, dispatched from its page.
    browser.click("[data-view=cases]");
    browser.click("[data-queue=q_reported]");
    browser.click(&format!("tr[data-case='{case_id}']"));
    browser.wait(
        "document.getElementById('case-page').dataset.status === 'reported'",
        "the case's page",
    );
    browser.wait(
        &format!("document.querySelector(\"li[data-duplicate='{repeated}']\")"),
        "the repeated call suggested as a duplicate",
    );
    browser.screenshot(&shots.join("04-case.png"));
    for (action, status) in [
        ("accept", "accepted"),
        ("register", "registered"),
        ("dispatch", "dispatched"),
    ] {
        browser.click(&format!("#case-actions button[data-action={action}]"));
        if action == "dispatch" {
            // The routing suggestion fills the team; the worker posted there is offered.
            browser.wait(
                "document.querySelector('.action-form select[name=assignee] option[value=sweeper]')",
                "the responsible worker",
            );
            assert_eq!(
                browser.script(
                    "return document.querySelector('.action-form select[name=team]').value;",
                    json!([])
                ),
                "sanitation",
                "the routing's team chosen among the catalogue's"
            );
            browser.script(
                "document.querySelector('.action-form select[name=assignee]').value = 'sweeper';",
                json!([]),
            );
            browser.screenshot(&shots.join("05-dispatch.png"));
        }
        let note = match action {
            "accept" => "来电属实，予以受理",
            "register" => "符合立案条件",
            _ => "派环卫处置",
        };
        browser.type_into(".action-form textarea[name=note]", note);
        browser.click(&format!(".action-form button[data-submit={action}]"));
        browser.wait(
            &format!("document.getElementById('case-page').dataset.status === '{status}'"),
            status,
        );
    }
    let timeline = browser.script(
        "return [...document.querySelectorAll('ol.timeline li')].map(li => li.dataset.action);",
        json!([]),
    );
    assert_eq!(
        timeline,
        json!(["report", "accept", "register", "dispatch"]),
        "the timeline in order"
    );
    // The map shows the case's grids around it (drawn from GET /v1/grids).
    browser.wait(
        "Number(document.getElementById('map-hint').dataset.grids) > 0 \
         && document.querySelectorAll('#map path.leaflet-interactive').length > 10",
        "the unit grids on the map",
    );
    browser.screenshot(&shots.join("06-map-dispatched.png"));
    no_errors("on the case desk");
    // The dispatch reaches the field worker's phone.
    sweeper.sync(&server);
    let on_phone = sweeper.fold(&case_id);
    assert_eq!(on_phone.status, Some(Status::Dispatched));
    assert_eq!(
        on_phone
            .assignment
            .as_ref()
            .and_then(|a| a.assignee.as_deref()),
        Some("sweeper")
    );

    // Patrol review: the day's log, its track on the map, rejected with a reason.
    open_log();
    browser.wait(
        "document.querySelectorAll('#map .leaflet-overlay-pane path').length > 0 \
         && document.getElementById('patrol-page').dataset.log",
        "the log and its track",
    );
    // The day's coverage (见巡率) shades the worker's level-3 grids.
    browser.wait(
        "Number(document.getElementById('map-hint').dataset.coverage) > 0",
        "the coverage on the map",
    );
    browser.click("button[data-verdict=reject]");
    browser.wait(
        "!document.querySelector('.review .error').hidden",
        "the reason asked for",
    );
    browser.type_into("#review-reason", "打卡点过少，轨迹不完整");
    browser.click("button[data-verdict=reject]");
    browser.wait(
        "document.getElementById('patrol-page').dataset.verdict === 'reject'",
        "the rejection",
    );
    browser.screenshot(&shots.join("07-patrol-review.png"));
    let (_, reviewed) = district.get(&server, &format!("/v1/patrol/logs/{log_id}"));
    assert_eq!(reviewed["reviews"][0]["verdict"], "reject", "{reviewed}");
    assert_eq!(reviewed["reviews"][0]["comment"], "打卡点过少，轨迹不完整");
    no_errors("in the patrol review");

    // Assessment (考核): this month's streets of the district, ranked, each score a bar;
    // the street of the calls above has a line, and the CSV download carries it.
    let beijing_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 8 * 3600;
    let month = chrono::DateTime::from_timestamp(i64::try_from(beijing_now).expect("time"), 0)
        .expect("time")
        .format("%Y-%m")
        .to_string();
    let street = places[0].check_in.0.street().to_string();
    browser.click("[data-view=assess]");
    browser.script(
        "document.getElementById('assess-period').value = arguments[0];",
        json!([month]),
    );
    browser.click("#assess-show");
    browser.wait(
        &format!(
            "document.querySelector('#assess-table tr[data-unit=\"{street}\"]') !== null \
             && document.querySelectorAll('#assess-table thead th').length > 5"
        ),
        "the street's line in the ranking",
    );
    browser.script(
        "window.csvText = null; \
         fetch(document.getElementById('assess-csv').href).then(r => r.text()) \
         .then(t => { window.csvText = t; });",
        json!([]),
    );
    browser.wait(
        &format!("window.csvText !== null && window.csvText.includes('{street}')"),
        "the CSV download with the street",
    );
    browser.screenshot(&shots.join("07b-assessment.png"));
    // This month is not over, so not published: the server says so, the pane shows it.
    browser.click("#assess-published");
    browser.wait(
        "document.getElementById('assess-status').textContent.includes('has not been published')",
        "the month not published yet",
    );
    no_errors("in the assessment pane");

    // English.
    browser.click("#lang");
    browser.wait(
        "document.querySelector('h1').textContent === 'Command centre' \
         && document.getElementById('who').textContent.endsWith('district supervisor')",
        "English, the role's name too",
    );
    browser.screenshot(&shots.join("08-english.png"));
    browser.click("#lang");
    logout();
    no_errors("logging out");

    // The field worker: their own cases and logs, no hotline desk, no review buttons.
    login("sweeper");
    browser.wait(
        "document.querySelector('tr[data-case]') !== null",
        "the dispatched case in the worker's queue",
    );
    assert_eq!(
        browser.script(
            "return document.querySelector('[data-view=hotline]').hidden \
             && document.querySelector('[data-view=assess]').hidden \
             && document.querySelector('[data-queue=q_reported]') === null;",
            json!([])
        ),
        true,
        "no hotline desk, no assessment and no command-centre queue for a field worker"
    );
    browser.wait(
        "Number(document.getElementById('map-hint').dataset.grids) > 0",
        "the worker's grids on the map",
    );
    browser.screenshot(&shots.join("09-field-worker.png"));
    open_log();
    browser.wait(
        "document.getElementById('patrol-page').dataset.log",
        "the worker's own log",
    );
    assert_eq!(
        browser.script(
            "return document.querySelector('button[data-verdict]') === null;",
            json!([])
        ),
        true,
        "a field worker reviews nothing"
    );
    logout();
    no_errors("as the field worker");

    // The city supervisor: the whole city's queues.
    login("city");
    browser.wait(
        "document.querySelector('[data-queue=q_reported] .badge').textContent === '2'",
        "the city's queue (the two calls still to accept)",
    );
    browser.wait(
        "document.querySelectorAll('#map path.area').length > 0",
        "the outlines on the city's map",
    );
    browser.screenshot(&shots.join("10-city-supervisor.png"));
    // A new call appears without a reload: the push socket (on the same cookie) says
    // the scope changed, long before the minute's refresh.
    let (status, created) = take_call(json!({
        "category": "E0102",
        "description": "来电反映：垃圾未清运",
        "grid": places[0].check_in.0.to_string(),
    }));
    assert_eq!(status, 201, "{created}");
    browser.wait(
        "document.querySelector('[data-queue=q_reported] .badge').textContent === '3'",
        "the new call in the queue, pushed",
    );
    logout();
    no_errors("as the city supervisor");
    eprintln!("screenshots in {}", shots.display());
}
