//! The phone library end to end through its generated Python bindings (the same
//! uniffi scaffolding the Kotlin and Swift apps call): the scripts in
//! `mobile-ffi/tests/python/` drive two phones and a supervisor against the real
//! `wangge serve` on loopback, on SQLite and on PostgreSQL. Also: the Kotlin and Swift
//! bindings generate.

use std::path::Path;
use std::process::Command;

use wangge_sync_core::photo::fixtures::{camera_fields, jpeg, png_bomb, textured, tiff, with_exif};
use wangge_tests::mobile::{generate, python_bindings};
use wangge_tests::places::{JINSHUI, import_grids, two_places};
use wangge_tests::{Server, add_user, databases, workspace_root};

const PASSWORD: &str = "网格-2026-ok";

/// Runs `python3 -m unittest -v MODULE` in `mobile-ffi/tests/python` against a fresh
/// server with the officer, the maintenance worker and a district supervisor, on each
/// database.
fn run_python(module: &str, server_env: &[(&str, &str)]) {
    for database in databases() {
        run_python_on(&database.url, database.backend, module, server_env);
    }
}

fn run_python_on(database: &str, backend: &str, module: &str, server_env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let [(grid, position), (other_grid, other_position)] = two_places();
    let community = grid.community().to_string();
    import_grids(database);
    for (user, role, team, scope) in [
        (
            "officer",
            "enforcement_officer",
            Some("enforcement"),
            community.as_str(),
        ),
        (
            "maint",
            "municipal_maintenance",
            Some("municipal_maintenance"),
            community.as_str(),
        ),
        ("supervisor", "district_supervisor", None, JINSHUI),
    ] {
        add_user(database, user, role, team, scope, PASSWORD);
    }
    let server = Server::start(database, server_env);
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).expect("photo directory");
    for (name, seed) in [("before.jpg", 1), ("more.jpg", 2), ("after.jpg", 3)] {
        let camera = with_exif(
            &jpeg(&textured(1600, 1200, seed), 90),
            &tiff(&camera_fields(6)),
        );
        std::fs::write(photos.join(name), camera).expect("writing a photo");
    }
    for (name, bytes) in [
        ("bomb.png", png_bomb(30_000, 30_000)),
        ("photo.heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec()),
        ("empty.jpg", Vec::new()),
    ] {
        std::fs::write(photos.join(name), bytes).expect("writing a bad photo");
    }
    // A port that was just free: nothing listens there, as when the phone is offline.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}", dead.local_addr().expect("address"));
    drop(dead);
    let lon_lat = |p: &wangge_sync_core::case::Position| format!("{},{}", p.lon, p.lat);
    let output = Command::new("python3")
        .current_dir(workspace_root().join("mobile-ffi/tests/python"))
        .args(["-m", "unittest", "-v", module])
        .env("PYTHONPATH", python_bindings())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("WANGGE_URL", &server.base_url)
        .env("WANGGE_DEAD_URL", &dead_url)
        .env("WANGGE_PASSWORD", PASSWORD)
        .env("WANGGE_GRID_A", grid.to_string())
        .env("WANGGE_POS_A", lon_lat(&position))
        .env("WANGGE_GRID_B", other_grid.to_string())
        .env("WANGGE_POS_B", lon_lat(&other_position))
        .env("WANGGE_PHOTO_DIR", &photos)
        .env("WANGGE_BIN", wangge_tests::wangge_bin())
        .env("WANGGE_DATABASE", database)
        .output()
        .expect("python3 runs (it is part of the toolchain .ci/run checks)");
    assert!(
        output.status.success(),
        "python3 -m unittest {module} failed on {backend}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn two_phones_report_dispatch_edit_offline_and_close() {
    run_python("test_two_phones", &[]);
}

#[test]
fn an_app_killed_before_or_during_sync_loses_nothing_and_sends_once() {
    run_python("test_killed", &[]);
}

#[test]
fn a_revoked_device_is_told_and_wipes_itself() {
    run_python("test_revoked", &[("WANGGE_PUSH_CHECK_SECONDS", "1")]);
}

#[test]
fn bad_input_gets_typed_errors_and_leaves_the_store_unchanged() {
    run_python("test_bad_input", &[]);
}

#[test]
fn categories_discarding_and_wiping_do_what_they_say() {
    run_python("test_housekeeping", &[]);
}

#[test]
fn concurrent_token_refreshes_keep_the_login() {
    run_python("test_session", &[("WANGGE_ACCESS_TOKEN_SECONDS", "30")]);
}

#[test]
fn bounded_waits_against_silent_and_trickling_servers() {
    run_python("test_waits", &[]);
}

#[test]
fn a_dispatch_made_while_the_socket_is_down_is_heard_at_reconnect() {
    run_python("test_push_missed", &[]);
}

#[test]
fn the_operators_catalogue_reaches_the_phone() {
    // A city's own team and category (as tests/tests/catalogue.rs serves).
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = wangge_tests::catalogue_file(dir.path(), wangge_tests::SHARED_BIKES);
    run_python(
        "test_catalogue",
        &[("WANGGE_CATALOG", path.to_str().expect("UTF-8 path"))],
    );
}

#[test]
fn ignored_actions_tls_errors_and_bad_directories_are_reported_as_such() {
    run_python("test_outcomes", &[]);
}

#[test]
fn photos_of_the_cases_on_the_phone_are_shown_online_and_offline() {
    run_python("test_photo_view", &[]);
}

#[test]
fn the_case_list_filters_and_pages_with_labels_and_typed_actions() {
    run_python("test_case_list", &[]);
}

#[test]
fn kotlin_and_swift_bindings_generate() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for language in ["kotlin", "swift"] {
        generate(language, dir.path());
    }
    let find = |suffix: &str| -> String {
        let mut found = Vec::new();
        collect(dir.path(), &mut found);
        let file = found
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no generated file ending in {suffix}"));
        std::fs::read_to_string(file).expect("generated file")
    };
    let kotlin = find(".kt");
    assert!(
        kotlin.contains("class FieldClient"),
        "Kotlin has FieldClient"
    );
    assert!(
        kotlin.contains("interface PushListener"),
        "Kotlin has PushListener"
    );
    assert!(kotlin.contains("suspend fun `syncNow`") || kotlin.contains("suspend fun syncNow"));
    let swift = find(".swift");
    assert!(swift.contains("class FieldClient"), "Swift has FieldClient");
    assert!(
        swift.contains("protocol PushListener"),
        "Swift has PushListener"
    );
    assert!(swift.contains("func syncNow() async throws"));
    let header = find(".h");
    assert!(header.contains("uniffi_wangge_mobile_ffi_fn_method_fieldclient_sync_now"));
    find(".modulemap");
}

fn collect(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, found);
        } else {
            found.push(path);
        }
    }
}
