//! An operator's own catalogue (`WANGGE_CATALOG`): a category the city added is routed
//! and listed by the server, a team it added can be posted; a catalogue with a broken
//! entry stops the start with a message naming the entry.

use serde_json::json;
use wangge_tests::{
    SHARED_BIKES, Server, add_user, answer, catalogue_file, http, wangge, wangge_ok,
};

const PASSWORD: &str = "目录-2026-ok";

#[test]
fn the_operators_catalogue_is_the_one_the_server_routes_with() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("catalogue.db").display());
    let path = catalogue_file(dir.path(), SHARED_BIKES);
    wangge_ok(&["catalog", "check", path.to_str().expect("UTF-8")], "");
    add_user(&url, "dispatcher", "city_supervisor", None, "*", PASSWORD);
    let grids = wangge_tests::places::grids_file().display().to_string();
    wangge_ok(
        &["grid", "import", "--grids", &grids, "--database", &url],
        "",
    );
    let server = Server::start(&url, &[("WANGGE_CATALOG", path.to_str().expect("UTF-8"))]);
    let (status, session) = answer(http().post(server.url("/v1/auth/login")).send_json(json!({
        "user": "dispatcher", "password": PASSWORD, "device": { "name": "desk" }
    })));
    assert_eq!(status, 200, "{session}");
    let bearer = format!(
        "Bearer {}",
        session["access_token"].as_str().expect("token")
    );
    let get = |path: &str| {
        answer(
            http()
                .get(server.url(path))
                .header("Authorization", &bearer)
                .call(),
        )
    };
    let [(_, point), _] = wangge_tests::places::two_places();
    let (status, route) = get(&format!(
        "/v1/routing?category=E0560&lon={}&lat={}",
        point.lon, point.lat
    ));
    assert_eq!(status, 200, "{route}");
    assert_eq!(route["team"], "bike_operators", "{route}");
    assert_eq!(route["team_name_zh"], "共享单车企业", "{route}");
    // The new team can be posted (the command line reads the same setting):
    // someone of the bike operator, in the API's list.
    let add_bike_handler = |catalog: Option<&std::path::Path>| {
        use std::io::Write as _;
        let mut command = wangge();
        command
            .args([
                "user",
                "add",
                "--database",
                &url,
                "--id",
                "bike-1",
                "--name",
                "单车",
            ])
            .args(["--role", "department_handler", "--team", "bike_operators"])
            .args(["--scope", "410105"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        match catalog {
            Some(path) => command.env("WANGGE_CATALOG", path),
            None => command.env_remove("WANGGE_CATALOG"),
        };
        let mut child = command.spawn().expect("wangge");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .expect("password");
        child.wait_with_output().expect("wangge")
    };
    let refused = add_bike_handler(None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown team bike_operators"));
    assert!(add_bike_handler(Some(&path)).status.success());
    let (status, listed) = get("/v1/assignments?team=bike_operators");
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["assignments"][0]["user"], "bike-1", "{listed}");
    assert_eq!(listed["assignments"][0]["team"]["name_zh"], "共享单车企业");
    drop(server);

    // Without it, the built-in catalogue knows no E0560.
    let server = Server::start(&url, &[]);
    let (status, session) = answer(http().post(server.url("/v1/auth/login")).send_json(json!({
        "user": "dispatcher", "password": PASSWORD, "device": { "name": "desk" }
    })));
    assert_eq!(status, 200, "{session}");
    let (status, refused) = answer(
        http()
            .get(server.url(&format!(
                "/v1/routing?category=E0560&lon={}&lat={}",
                point.lon, point.lat
            )))
            .header(
                "Authorization",
                format!(
                    "Bearer {}",
                    session["access_token"].as_str().expect("token")
                ),
            )
            .call(),
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("unknown_category")),
        "{refused}"
    );
    drop(server);

    // A category of a team nobody declared: the start is refused, naming the entry.
    let broken = catalogue_file(
        dir.path(),
        "[[category]]\ncode = \"E0561\"\nname_zh = \"无主\"\nname_en = \"Nobody's\"\nteam = \"nobody\"\nlimits = { handle = \"1 working_day\" }\n",
    );
    let output = wangge()
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &url])
        .env("WANGGE_CATALOG", &broken)
        .output()
        .expect("wangge");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("E0561") && stderr.contains("WANGGE_CATALOG"),
        "{stderr}"
    );
}
