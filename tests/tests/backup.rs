//! `wangge backup` of a SQLite database while the server runs and phones sync, then a
//! restore: a server started on the copy has every account and every acknowledged
//! case; a PostgreSQL URL or an existing target is refused with a clear message.

use wangge_sync_core::case::Position;
use wangge_tests::phone::Phone;
use wangge_tests::{Server, add_user, wangge, wangge_ok};

const PASSWORD: &str = "备份-2026-ok";

#[test]
fn a_backup_taken_while_serving_restores_every_acknowledged_case() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("wangge.db").display());
    add_user(
        &url,
        "officer",
        "enforcement_officer",
        Some("enforcement"),
        "410102001001",
        PASSWORD,
    );
    let server = Server::start(&url, &[]);
    let mut officer = Phone::login(&server, "officer", PASSWORD);
    let grid = "410102001001001".parse().expect("grid");
    let at = Position {
        lon: 113.62,
        lat: 34.75,
        accuracy_m: Some(5.0),
    };
    let ids: Vec<String> = (0..5)
        .map(|n| format!("0193f0a0-0000-7000-8000-00000000b{n:03}"))
        .collect();
    for id in &ids {
        officer.report(id, "E0102", grid, at);
    }
    let round = officer.sync(&server);
    assert_eq!(round.acknowledged, 5, "{round:?}");

    // Taken while the server runs.
    let copy = dir.path().join("backup").join("wangge-copy.db");
    let printed = wangge_ok(
        &[
            "backup",
            "--database",
            &url,
            "--to",
            copy.to_str().expect("UTF-8"),
        ],
        "",
    );
    assert!(printed.contains("integrity ok"), "{printed}");
    // A second backup to the same file is refused: nothing is overwritten.
    let again = wangge()
        .args(["backup", "--database", &url, "--to"])
        .arg(&copy)
        .output()
        .expect("wangge");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // PostgreSQL has its own tools.
    let postgres = wangge()
        .args([
            "backup",
            "--database",
            "postgres://postgres@127.0.0.1:5432/test",
            "--to",
        ])
        .arg(dir.path().join("pg.db"))
        .output()
        .expect("wangge");
    assert!(!postgres.status.success());
    assert!(
        String::from_utf8_lossy(&postgres.stderr).contains("pg_dump"),
        "{}",
        String::from_utf8_lossy(&postgres.stderr)
    );
    drop(server);

    // Restored: a server on the copy has the account and the five cases.
    let restored = format!("sqlite://{}", copy.display());
    let server = Server::start(&restored, &[]);
    let officer = Phone::login(&server, "officer", PASSWORD);
    for id in &ids {
        let (status, body) = officer.get(&server, &format!("/v1/cases/{id}"));
        assert_eq!(status, 200, "{id}: {body}");
    }
    let mut fresh = Phone::login(&server, "officer", PASSWORD);
    let round = fresh.sync(&server);
    assert_eq!(round.received, 5, "{round:?}");
}
