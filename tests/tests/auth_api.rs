//! Accounts end to end: the real `wangge` binary serving on loopback over a SQLite
//! file, driven over HTTP like a phone would (login, refresh, reuse, revocation, key
//! rotation, expiry, bad requests).

use serde_json::{Value, json};
use wangge_tests::{Server, answer, http, wangge_ok};

const PASSWORD: &str = "巡查-2026-ok";

fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    answer(http().post(server.url(path)).send_json(body))
}

fn get(server: &Server, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = http().get(server.url(path));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    answer(request.call())
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// A database with one sanitation worker, `w1`.
fn database() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("wangge.db").display());
    wangge_ok(
        &[
            "user",
            "add",
            "--database",
            &url,
            "--id",
            "w1",
            "--name",
            "王师傅",
            "--role",
            "sanitation_worker",
            "--team",
            "sanitation",
            "--scope",
            "410102001001",
        ],
        &format!("{PASSWORD}\n"),
    );
    (dir, url)
}

fn login(server: &Server) -> Value {
    let (status, body) = post(
        server,
        "/v1/auth/login",
        &json!({ "user": "w1", "password": PASSWORD, "device": { "name": "Redmi 12" } }),
    );
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn login_me_refresh_and_a_replayed_refresh_token() {
    let (_dir, url) = database();
    let server = Server::start(&url, &[]);
    assert_eq!(get(&server, "/healthz", None).0, 200);

    for (user, password) in [("w1", "wrong password"), ("nobody", PASSWORD)] {
        let (status, body) = post(
            &server,
            "/v1/auth/login",
            &json!({ "user": user, "password": password, "device": { "name": "x" } }),
        );
        assert_eq!((status, code(&body)), (401, "bad_credentials"));
    }

    let session = login(&server);
    let access = session["access_token"].as_str().expect("access token");
    let actor = session["device"]["actor_id"].as_str().expect("actor id");
    assert_eq!(actor.len(), 32);
    assert!(actor.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(session["user"]["role"], "sanitation_worker");
    assert_eq!(session["expires_in"], 900);

    let (status, me) = get(&server, "/v1/me", Some(access));
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], "w1");
    assert_eq!(me["act"], actor);
    assert_eq!(me["scope"], "410102001001");
    assert_eq!(code(&get(&server, "/v1/me", None).1), "unauthenticated");
    assert_eq!(
        code(&get(&server, "/v1/me", Some("not.a.jwt")).1),
        "token_invalid"
    );

    // Logging in again from the same device keeps its actor id.
    let device_id = session["device"]["id"].as_str().expect("device id");
    let (status, again) = post(
        &server,
        "/v1/auth/login",
        &json!({ "user": "w1", "password": PASSWORD, "device": { "id": device_id } }),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["device"]["actor_id"], actor);

    let first = session["refresh_token"].as_str().expect("refresh token");
    let (status, rotated) = post(
        &server,
        "/v1/auth/refresh",
        &json!({ "refresh_token": first }),
    );
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"]
        .as_str()
        .expect("new refresh token");
    assert_ne!(first, second);
    assert_eq!(
        get(&server, "/v1/me", rotated["access_token"].as_str()).0,
        200
    );

    // The first token again: a replay. Its whole chain is revoked, the new one too.
    let (status, body) = post(
        &server,
        "/v1/auth/refresh",
        &json!({ "refresh_token": first }),
    );
    assert_eq!((status, code(&body)), (401, "refresh_token_reused"));
    let (status, body) = post(
        &server,
        "/v1/auth/refresh",
        &json!({ "refresh_token": second }),
    );
    assert_eq!((status, code(&body)), (401, "refresh_token_invalid"));
    // The other login's chain is untouched.
    let (status, _) = post(
        &server,
        "/v1/auth/refresh",
        &json!({ "refresh_token": again["refresh_token"] }),
    );
    assert_eq!(status, 200);
}

#[test]
fn a_revoked_device_is_refused_and_a_key_rotation_logs_nobody_out() {
    let (_dir, url) = database();
    let server = Server::start(&url, &[]);
    let phone = login(&server);
    let lost = login(&server);
    let lost_device = lost["device"]["id"].as_str().expect("device id");

    wangge_ok(&["device", "revoke", "--database", &url, lost_device], "");
    let (status, body) = get(&server, "/v1/me", lost["access_token"].as_str());
    assert_eq!((status, code(&body)), (401, "device_revoked"));
    let (status, body) = post(
        &server,
        "/v1/auth/refresh",
        &json!({ "refresh_token": lost["refresh_token"] }),
    );
    assert_eq!((status, code(&body)), (401, "refresh_token_invalid"));
    let (status, body) = post(
        &server,
        "/v1/auth/login",
        &json!({ "user": "w1", "password": PASSWORD, "device": { "id": lost_device } }),
    );
    assert_eq!((status, code(&body)), (401, "device_revoked"));

    // The other phone still works, before and after a key rotation.
    assert_eq!(
        get(&server, "/v1/me", phone["access_token"].as_str()).0,
        200
    );
    wangge_ok(&["keys", "rotate", "--database", &url], "");
    assert_eq!(
        get(&server, "/v1/me", phone["access_token"].as_str()).0,
        200
    );
    let (status, renewed) = post(
        &server,
        "/v1/auth/refresh",
        &json!({ "refresh_token": phone["refresh_token"] }),
    );
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(
        get(&server, "/v1/me", renewed["access_token"].as_str()).0,
        200
    );
    let listed = wangge_ok(&["device", "list", "--database", &url, "--user", "w1"], "");
    assert!(
        listed.contains(&format!("{lost_device}\tw1\tRedmi 12")),
        "{listed}"
    );
    assert!(
        listed.contains("revoked") && listed.contains("active"),
        "{listed}"
    );
}

#[test]
fn an_expired_access_token_is_refused_as_expired() {
    let (_dir, url) = database();
    let server = Server::start(&url, &[("WANGGE_ACCESS_TOKEN_SECONDS", "1")]);
    let session = login(&server);
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let (status, body) = get(&server, "/v1/me", session["access_token"].as_str());
    assert_eq!((status, code(&body)), (401, "token_expired"));
}

#[test]
fn bad_requests_get_json_errors() {
    let (_dir, url) = database();
    let server = Server::start(&url, &[]);
    let raw = |content_type: &str, body: &str| {
        answer(
            http()
                .post(server.url("/v1/auth/login"))
                .header("Content-Type", content_type)
                .send(body),
        )
    };
    let (status, body) = raw("application/json", "{\"user\": ");
    assert_eq!((status, code(&body)), (400, "invalid_json"));
    let (status, body) = raw(
        "application/json",
        "{\"user\":\"w1\",\"password\":\"x\",\"device\":{},\"admin\":true}",
    );
    assert_eq!((status, code(&body)), (422, "invalid_body"), "{body}");
    let (status, body) = raw("application/json", "{\"user\":\"w1\",\"device\":{}}");
    assert_eq!((status, code(&body)), (422, "invalid_body"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing field `password`")),
        "{body}"
    );
    let (status, body) = raw("text/plain", "hello");
    assert_eq!((status, code(&body)), (415, "expected_json"));
    let (status, body) = get(&server, "/v2/nothing", None);
    assert_eq!((status, code(&body)), (404, "not_found"));
    // A method an endpoint does not take: our JSON, not an empty 405.
    for (method, path) in [
        ("PUT", "/v1/cases"),
        ("DELETE", "/healthz"),
        ("PUT", "/v1/me"),
    ] {
        let url = server.url(path);
        let (status, body) = answer(match method {
            "POST" => http()
                .post(&url)
                .header("Content-Type", "application/json")
                .send("{}"),
            "PUT" => http()
                .put(&url)
                .header("Content-Type", "application/json")
                .send("{}"),
            _ => http().delete(&url).call(),
        });
        assert_eq!(
            (status, code(&body)),
            (405, "method_not_allowed"),
            "{method} {path}: {body}"
        );
    }
    // A 401 says which scheme it wants (RFC 6750), and a refused token's library
    // details stay in the log.
    let mut response = http().get(server.url("/v1/me")).call().expect("answer");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(r#"Bearer realm="wangge""#)
    );
    let _ = response.body_mut().read_to_string();
    let forged = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ3MSJ9.";
    let mut response = http()
        .get(server.url("/v1/me"))
        .header("Authorization", format!("Bearer {forged}"))
        .call()
        .expect("answer");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(r#"Bearer realm="wangge", error="invalid_token""#)
    );
    let text = response.body_mut().read_to_string().expect("body");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(code(&body), "token_invalid");
    assert!(
        !text.contains("variant") && !text.contains("HS256"),
        "{text}"
    );
    // The push socket asked for without an upgrade: our JSON too.
    let session = login(&server);
    let token = session["access_token"].as_str().expect("token");
    let (status, body) = get(&server, "/v1/push", Some(token));
    assert_eq!((status, code(&body)), (400, "websocket_required"), "{body}");
    let (status, body) = post(
        &server,
        "/v1/auth/login",
        &json!({ "user": "w1", "password": PASSWORD, "device": { "name": "" } }),
    );
    assert_eq!((status, code(&body)), (400, "invalid_request"));
}

/// A device name is the phone's to choose: `wangge device list` shows its control
/// characters escaped, so a name holding a terminal escape sequence cannot rewrite the
/// operator's screen or break the columns.
#[test]
fn device_list_escapes_control_characters_in_names() {
    let (_dir, url) = database();
    let server = Server::start(&url, &[]);
    let hostile = "Redmi\u{1b}]0;pwned\u{7}\u{1b}[2J\tcol";
    let (status, body) = post(
        &server,
        "/v1/auth/login",
        &json!({ "user": "w1", "password": PASSWORD, "device": { "name": hostile } }),
    );
    assert_eq!(status, 200, "{body}");
    drop(server);
    let listed = wangge_ok(&["device", "list", "--database", &url], "");
    assert!(
        !listed.contains('\u{1b}') && !listed.contains('\u{7}'),
        "{listed:?}"
    );
    let line = listed
        .lines()
        .find(|l| l.contains("Redmi"))
        .expect("the device");
    assert_eq!(line.split('\t').count(), 5, "{line:?}");
    assert!(
        line.contains(r"Redmi\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9}col"),
        "{line:?}"
    );
}

/// A field worker's posting names a team: their dispatched cases are routed by team.
#[test]
fn a_field_worker_cannot_be_added_or_posted_without_a_team() {
    let (_dir, url) = database();
    let output = wangge_tests::wangge()
        .args([
            "user",
            "add",
            "--database",
            &url,
            "--id",
            "w2",
            "--name",
            "李师傅",
        ])
        .args(["--role", "enforcement_officer", "--scope", "410102001001"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("wangge");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a team"), "{stderr}");
    let output = wangge_tests::wangge()
        .args([
            "user",
            "assign",
            "--database",
            &url,
            "--id",
            "w1",
            "--team",
            "-",
        ])
        .output()
        .expect("wangge");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a team"), "{stderr}");
}

/// Over HTTP: guessing passwords gets 429 with `Retry-After` (the right password too,
/// until the block passes), and a new device past the maximum gets 409.
#[test]
fn guessing_is_throttled_and_devices_are_bounded() {
    let (_dir, url) = database();
    let server = Server::start(
        &url,
        &[
            ("WANGGE_LOGIN_FREE_FAILURES", "3"),
            ("WANGGE_MAX_DEVICES_PER_USER", "2"),
        ],
    );
    let session = login(&server);
    let device_id = session["device"]["id"]
        .as_str()
        .expect("device id")
        .to_owned();
    for _ in 0..4 {
        let (status, body) = post(
            &server,
            "/v1/auth/login",
            &json!({ "user": "w1", "password": "guess", "device": { "name": "x" } }),
        );
        assert_eq!((status, code(&body)), (401, "bad_credentials"));
    }
    let mut response = http()
        .post(server.url("/v1/auth/login"))
        .send_json(json!({ "user": "w1", "password": PASSWORD, "device": { "id": device_id } }))
        .expect("answer");
    assert_eq!(response.status(), 429);
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("JSON");
    assert_eq!(code(&body), "too_many_attempts");
    std::thread::sleep(std::time::Duration::from_secs(retry));
    let (status, body) = post(
        &server,
        "/v1/auth/login",
        &json!({ "user": "w1", "password": PASSWORD, "device": { "id": device_id } }),
    );
    assert_eq!(status, 200, "{body}");
    // A second device, then a third is refused; the registered ones still log in.
    let (status, _) = post(
        &server,
        "/v1/auth/login",
        &json!({ "user": "w1", "password": PASSWORD, "device": { "name": "second" } }),
    );
    assert_eq!(status, 200);
    let (status, body) = post(
        &server,
        "/v1/auth/login",
        &json!({ "user": "w1", "password": PASSWORD, "device": { "name": "third" } }),
    );
    assert_eq!((status, code(&body)), (409, "too_many_devices"), "{body}");
    let (status, _) = post(
        &server,
        "/v1/auth/login",
        &json!({ "user": "w1", "password": PASSWORD, "device": { "id": device_id } }),
    );
    assert_eq!(status, 200);
}

/// Logins of one user racing for the last places register no more devices than the
/// maximum, on both databases (the count and the insert are one step).
#[test]
fn racing_logins_never_register_more_devices_than_the_maximum() {
    for database in wangge_tests::databases() {
        let url = &database.url;
        wangge_tests::add_user(
            url,
            "w1",
            "sanitation_worker",
            Some("sanitation"),
            "410102001001",
            PASSWORD,
        );
        let server = Server::start(url, &[("WANGGE_MAX_DEVICES_PER_USER", "3")]);
        let statuses: Vec<(u16, String)> = std::thread::scope(|scope| {
            let logins: Vec<_> = (0..12)
                .map(|n| {
                    let server = &server;
                    scope.spawn(move || {
                        let (status, body) = post(
                            server,
                            "/v1/auth/login",
                            &json!({ "user": "w1", "password": PASSWORD, "device": { "name": format!("phone {n}") } }),
                        );
                        (status, code(&body).to_owned())
                    })
                })
                .collect();
            logins
                .into_iter()
                .map(|l| l.join().expect("login thread"))
                .collect()
        });
        let accepted = statuses.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(accepted, 3, "{}: {statuses:?}", database.backend);
        assert!(
            statuses
                .iter()
                .all(|(s, c)| *s == 200 || (*s == 409 && c == "too_many_devices")),
            "{statuses:?}"
        );
        let listed = wangge_ok(&["device", "list", "--database", url], "");
        assert_eq!(
            listed.lines().filter(|l| l.contains("phone ")).count(),
            3,
            "{}: {listed}",
            database.backend
        );
    }
}

/// Wrong passwords sent with `forwarded_for` in `X-Forwarded-For`: the statuses.
fn guesses_from(server: &Server, forwarded_for: &str, times: usize) -> Vec<u16> {
    (0..times)
        .map(|_| {
            answer(
                http()
                    .post(server.url("/v1/auth/login"))
                    .header("X-Forwarded-For", forwarded_for)
                    .send_json(
                        json!({ "user": "w1", "password": "guess", "device": { "name": "x" } }),
                    ),
            )
            .0
        })
        .collect()
}

#[test]
fn behind_a_trusted_proxy_the_throttle_counts_each_forwarded_client() {
    let (_dir, url) = database();
    let settings = [
        ("WANGGE_LOGIN_FREE_FAILURES", "1000"),
        ("WANGGE_LOGIN_FREE_FAILURES_PER_ADDRESS", "2"),
    ];
    // The proxy (this test, on loopback) is trusted: the guesser behind 203.0.113.5
    // is blocked, another client behind the same proxy logs in.
    let mut trusted = settings.to_vec();
    trusted.push(("WANGGE_TRUSTED_PROXIES", "127.0.0.1, ::1"));
    let server = Server::start(&url, &trusted);
    let statuses = guesses_from(&server, "198.51.100.77, 203.0.113.5", 3);
    assert_eq!(
        statuses,
        [401, 401, 401],
        "the third failure blocks, after it"
    );
    assert_eq!(guesses_from(&server, "203.0.113.5", 1), [429]);
    // What the guesser wrote left of the proxy's entry is not believed: changing it
    // does not get a fresh address.
    assert_eq!(guesses_from(&server, "192.0.2.1, 203.0.113.5", 1), [429]);
    let (status, body) = answer(
        http()
            .post(server.url("/v1/auth/login"))
            .header("X-Forwarded-For", "203.0.113.9")
            .send_json(json!({ "user": "w1", "password": PASSWORD, "device": { "name": "p" } })),
    );
    assert_eq!(status, 200, "another client of the proxy: {body}");
    drop(server);

    // Without trust the header is ignored: every guess is the peer's, whatever it says.
    let server = Server::start(&url, &settings);
    assert_eq!(
        guesses_from(&server, "203.0.113.11", 3),
        [401, 401, 401],
        "free failures, then blocked"
    );
    assert_eq!(guesses_from(&server, "203.0.113.12", 1), [429]);
    drop(server);

    // A bad list stops the start, naming the entry.
    let output = wangge_tests::wangge()
        .args(["serve", "--database", &url, "--listen", "127.0.0.1:0"])
        .env("WANGGE_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example")
        .output()
        .expect("wangge runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("proxy.example"), "{stderr}");
}

#[test]
fn a_phone_that_logs_out_has_its_device_revoked_at_once() {
    let (_dir, url) = database();
    let server = Server::start(&url, &[]);
    let session = login(&server);
    let token = session["access_token"].as_str().expect("token");
    let (status, _) = answer(
        http()
            .post(server.url("/v1/auth/logout"))
            .header("Authorization", format!("Bearer {token}"))
            .send_empty(),
    );
    assert_eq!(status, 204);
    // Its access token and its refresh token stop working at once.
    let (status, body) = get(&server, "/v1/cases", Some(token));
    assert_eq!((status, code(&body)), (401, "device_revoked"), "{body}");
    let (status, body) = post(
        &server,
        "/v1/auth/refresh",
        &json!({ "refresh_token": session["refresh_token"] }),
    );
    assert_eq!(status, 401, "{body}");
    // Without a token: 401.
    let (status, body) = answer(http().post(server.url("/v1/auth/logout")).send_empty());
    assert_eq!((status, code(&body)), (401, "unauthenticated"), "{body}");
}
