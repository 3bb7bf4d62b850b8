//! `wangge demo` end to end on one real district (上街区, 410106): it cuts the real
//! boundary into unit grids once, creates an account per role, serves; the grid
//! endpoints answer a phone's GPS fix and a map's bounding box.

use serde_json::json;
use wangge_tests::{Server, answer, http, wangge_ok};

/// `wangge demo` on 上街区 alone, run from `dir` (no project files there: the district
/// boundaries are built in), its accounts posted where the GPS fix 113.30,34.80 is.
fn demo(dir: &std::path::Path, database: &str) -> (Server, Vec<String>) {
    Server::spawn_in(
        Some(dir),
        &[
            "demo",
            "--database",
            database,
            "--listen",
            "127.0.0.1:0",
            "--adcodes",
            "410106",
            "--accounts-at",
            "113.30,34.80",
        ],
        &[],
    )
}

#[test]
fn the_demo_serves_the_real_grids_to_every_role() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Relative to the directory it runs in, as a user types it.
    let database = "sqlite://demo.db".to_owned();
    let (server, printed) = demo(dir.path(), &database);
    assert!(dir.path().join("demo.db").exists());
    let database = format!("sqlite://{}", dir.path().join("demo.db").display());
    // One per role; the field workers the demo's week adds in the next communities
    // follow the line that ends the list.
    let accounts: Vec<&String> = printed
        .iter()
        .take_while(|l| !l.trim().starts_with("(field workers"))
        .filter(|l| l.trim().starts_with("demo-"))
        .collect();
    assert_eq!(accounts.len(), 14, "{printed:?}");

    let (status, session) = answer(http().post(server.url("/v1/auth/login")).send_json(json!({
        "user": "demo-officer", "password": "wangge-demo", "device": { "name": "test phone" }
    })));
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["role"], "enforcement_officer");
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

    // A GPS fix (WGS-84) in 上街区, and one in 金水区, which this demo did not cut.
    let (status, found) = get("/v1/grids/locate?lon=113.30&lat=34.80");
    assert_eq!(status, 200, "{found}");
    let code = found["grid"]["code"].as_str().expect("code");
    assert!(code.starts_with("410106") && code.len() == 15, "{found}");
    // The officer works exactly there: the demo posted its accounts around the point.
    assert_eq!(session["user"]["scope"], json!(code[..12]), "{session}");
    let street = code[..9].to_owned();
    assert_eq!(found["grid"]["district_name"], "上街区");
    let (status, outside) = get("/v1/grids/locate?lon=113.6654&lat=34.7579");
    assert_eq!(
        (status, outside["error"]["code"].as_str()),
        (404, Some("outside_grids"))
    );
    let (status, bad) = get("/v1/grids/locate?lon=east&lat=34.8");
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, bad) = get("/v1/grids/locate?lon=113.3&lat=95");
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );

    let (status, map) = get("/v1/grids?bbox=113.300,34.800,113.305,34.805");
    assert_eq!(status, 200, "{map}");
    let features = map["features"].as_array().expect("features");
    assert!(
        !features.is_empty() && features.len() < 100,
        "{} features",
        features.len()
    );
    assert!(features.iter().all(|f| {
        f["properties"]["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("410106"))
    }));
    // Routing: exposed garbage waits in the queue for sanitation; a burst water main
    // goes at once to the water company (the built-in rules).
    let (status, route) = get("/v1/routing?category=E0102&lon=113.30&lat=34.80");
    assert_eq!(status, 200, "{route}");
    assert_eq!(
        (route["team"].as_str(), route["dispatch"].as_str()),
        (Some("sanitation"), Some("queue"))
    );
    assert_eq!(route["grid"]["code"], found["grid"]["code"]);
    let supervisors = route["responsible"]["supervisors"]
        .as_array()
        .expect("supervisors");
    assert!(
        supervisors.contains(&json!("demo-district")) && supervisors.contains(&json!("demo-city")),
        "{route}"
    );
    let (status, route) = get("/v1/routing?category=E0402&lon=113.30&lat=34.80");
    assert_eq!(status, 200, "{route}");
    assert_eq!(
        (route["team"].as_str(), route["dispatch"].as_str()),
        (Some("water"), Some("auto"))
    );
    assert_eq!(route["decided_by"], json!({ "rule": 1 }));
    let (status, bad) = get("/v1/routing?category=X9&lon=113.30&lat=34.80");
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, bad) = get("/v1/routing?category=E0999&lon=113.30&lat=34.80");
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("unknown_category"))
    );

    // Listing users: not for field workers; by overlapping grids for the street.
    let (status, denied) = get("/v1/users");
    assert_eq!(
        (status, denied["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    wangge_ok(
        &[
            "user",
            "add",
            "--database",
            &database,
            "--id",
            "w-next-street",
            "--name",
            "李师傅",
            "--role",
            "sanitation_worker",
            "--team",
            "sanitation",
            "--scope",
            "410106999001",
        ],
        "password-123\n",
    );
    let listed = |user: &str| -> Vec<String> {
        let (status, session) =
            answer(http().post(server.url("/v1/auth/login")).send_json(json!({
                "user": user, "password": "wangge-demo", "device": { "name": "desk" }
            })));
        assert_eq!(status, 200, "{session}");
        let bearer = format!(
            "Bearer {}",
            session["access_token"].as_str().expect("token")
        );
        let (status, body) = answer(
            http()
                .get(server.url("/v1/users"))
                .header("Authorization", &bearer)
                .call(),
        );
        assert_eq!(status, 200, "{body}");
        body["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let in_street = listed("demo-dispatcher");
    assert!(
        in_street.contains(&"demo-officer".to_owned())
            && in_street.contains(&"demo-district".to_owned())
    );
    assert!(
        !in_street.contains(&"w-next-street".to_owned()),
        "{in_street:?}"
    );
    assert!(listed("demo-district").contains(&"w-next-street".to_owned()));
    wangge_ok(
        &[
            "user",
            "assign",
            "--database",
            &database,
            "--id",
            "w-next-street",
            "--scope",
            &format!("{street}002"),
        ],
        "",
    );
    assert!(listed("demo-dispatcher").contains(&"w-next-street".to_owned()));

    let (status, big) = get("/v1/grids?bbox=113,34,114,35");
    assert_eq!(
        (status, big["error"]["code"].as_str()),
        (400, Some("bbox_too_large"))
    );
    let (status, _) = answer(
        http()
            .get(server.url("/v1/grids/locate?lon=113.3&lat=34.8"))
            .call(),
    );
    assert_eq!(status, 401);
    drop(server);

    // A second start keeps the grids and the accounts.
    let (server, printed) = demo(dir.path(), &database);
    assert_eq!(
        printed
            .iter()
            .filter(|l| l.trim().starts_with("demo-"))
            .count(),
        14
    );
    let (status, _) = answer(http().post(server.url("/v1/auth/login")).send_json(json!({
        "user": "demo-city", "password": "wangge-demo", "device": { "name": "desk" }
    })));
    assert_eq!(status, 200);
}

/// The README's example point is one the full demo's accounts work at: it lies inside
/// a district the demo cuts (金水区), so `wangge demo` posts its accounts around it.
#[test]
fn the_readmes_example_point_lies_in_a_district_the_demo_cuts() {
    use geo::Contains as _;
    let readme = std::fs::read_to_string(wangge_tests::workspace_root().join("README.md"))
        .expect("README.md");
    let query = readme
        .split("grids/locate?")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("the README locates a point");
    let value = |name: &str| -> f64 {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .expect("lon and lat")
    };
    let point = wangge_sync_core::geo::LonLat::new(value("lon"), value("lat"))
        .expect("a point")
        .to_gcj02(wangge_sync_core::geo::Crs::Wgs84);
    let bytes = std::fs::read(wangge_tests::districts_file()).expect("districts");
    let districts = wangge_sync_core::grid::geojson::read_districts(&bytes).expect("districts");
    let jinshui = districts
        .iter()
        .find(|d| d.code.to_string() == "410105")
        .expect("金水区");
    assert!(
        jinshui
            .geometry
            .contains(&geo::Point::new(point.lon, point.lat)),
        "{query} is not in 金水区"
    );
}

/// A demo whose setup fails leaves no empty database behind that the next try would
/// take as set up.
#[test]
fn a_failed_demo_leaves_no_database_behind() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = wangge_tests::wangge()
        .current_dir(dir.path())
        .args([
            "demo",
            "--database",
            "sqlite://demo.db",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--districts", "no-such-file.geojson"])
        .output()
        .expect("wangge");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-file.geojson"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
