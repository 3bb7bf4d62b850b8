//! `wangge demo`'s week end to end, on 金水区 (where the demo's accounts work): the
//! first start fills the database with a week of cases at every step of the workflow
//! and of patrol logs; the API shows them to the demo's users; a second start adds
//! nothing; the same seed makes the same week.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wangge_tests::{Server, answer, http};

/// A fixed week (it ended on a Friday evening), so that two runs are the same week.
const WEEK_ENDING: &str = "2026-11-27T18:00:00+08:00";

fn demo(database: &str) -> Server {
    Server::spawn(
        &[
            "demo",
            "--database",
            database,
            "--listen",
            "127.0.0.1:0",
            "--adcodes",
            "410105",
            "--seed",
            "7",
            "--week-ending",
            WEEK_ENDING,
        ],
        &[],
    )
    .0
}

/// A demo user's bearer token.
fn login(server: &Server, user: &str) -> String {
    let (status, session) = answer(http().post(server.url("/v1/auth/login")).send_json(json!({
        "user": user, "password": "wangge-demo", "device": { "name": "test browser" }
    })));
    assert_eq!(status, 200, "{session}");
    format!(
        "Bearer {}",
        session["access_token"].as_str().expect("token")
    )
}

fn get(server: &Server, bearer: &str, path: &str) -> Value {
    let (status, body) = answer(
        http()
            .get(server.url(path))
            .header("Authorization", bearer)
            .call(),
    );
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Every case the city supervisor sees: id → status.
fn all_cases(server: &Server, bearer: &str) -> BTreeMap<String, String> {
    let mut cases = BTreeMap::new();
    for offset in (0..).step_by(500) {
        let page = get(
            server,
            bearer,
            &format!("/v1/cases?limit=500&offset={offset}"),
        );
        let rows = page["cases"].as_array().expect("cases").clone();
        for row in &rows {
            cases.insert(
                row["id"].as_str().expect("id").to_owned(),
                row["status"].as_str().unwrap_or_default().to_owned(),
            );
        }
        if rows.len() < 500 {
            break;
        }
    }
    cases
}

fn count(server: &Server, bearer: &str, query: &str) -> usize {
    get(server, bearer, &format!("/v1/cases?limit=500&{query}"))["cases"]
        .as_array()
        .expect("cases")
        .len()
}

#[test]
fn the_demo_fills_a_believable_week_once_and_the_same_for_a_seed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = format!("sqlite://{}", dir.path().join("first.db").display());
    let started = std::time::Instant::now();
    let server = demo(&first);
    eprintln!("first start with the week: {:?}", started.elapsed());
    let city = login(&server, "demo-city");

    let cases = all_cases(&server, &city);
    assert!((200..=400).contains(&cases.len()), "{} cases", cases.len());
    // Every step of the workflow has cases (sync-core's status names).
    for status in [
        "reported",
        "accepted",
        "registered",
        "dispatched",
        "handled",
        "verified",
        "closed",
        "voided",
    ] {
        let n = count(&server, &city, &format!("status={status}"));
        eprintln!("{status}: {n}");
        assert!(n > 0, "no case is {status}");
    }
    let overdue = count(&server, &city, "overdue=true");
    assert!(overdue > 0, "no case is overdue");
    for source in ["patrol", "hotline", "citizen"] {
        let n = count(&server, &city, &format!("source={source}"));
        eprintln!("{source}: {n}");
        assert!(n > 0, "no case from {source}");
    }

    // A closed hotline case went the whole way, by the people whose job each step is,
    // and its caller was told; some cases were reworked or went up a level.
    let mut replied = 0;
    let mut reworked = 0;
    let mut escalated = 0;
    let closed = get(&server, &city, "/v1/cases?limit=500&status=closed");
    for row in closed["cases"].as_array().expect("cases") {
        let id = row["id"].as_str().expect("id");
        let case = get(&server, &city, &format!("/v1/cases/{id}"));
        let text = case.to_string();
        replied += usize::from(text.contains("\"reply\""));
        reworked += usize::from(text.contains("\"rework\""));
    }
    for level in ["district", "city"] {
        let page = get(&server, &city, "/v1/cases?limit=500");
        escalated += page["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .filter(|c| c["level"] == level)
            .count();
    }
    eprintln!("replied {replied}, reworked {reworked}, at a higher level {escalated}");
    assert!(replied > 0 && reworked > 0 && escalated > 0);

    // Patrol logs with check-ins and tracks for the week, reviewed by the grid leader.
    let leader = login(&server, "demo-grid-leader");
    let logs = get(&server, &leader, "/v1/patrol/logs?month=2026-11&limit=500");
    let logs = logs["logs"].as_array().expect("logs").clone();
    assert!(logs.len() >= 10, "{} logs", logs.len());
    assert!(logs.iter().all(|l| l["checkins"].as_i64() > Some(0)));
    assert!(logs.iter().any(|l| l["points"].as_i64() > Some(100)));
    assert!(logs.iter().any(|l| l["verdict"] == "approve"));
    let id = logs[0]["id"].as_str().expect("log id");
    let log = get(&server, &leader, &format!("/v1/patrol/logs/{id}"));
    assert!(
        !log["checkins"].as_array().expect("checkins").is_empty(),
        "{log}"
    );
    drop(server);

    // A second start adds nothing.
    let server = demo(&first);
    let city = login(&server, "demo-city");
    assert_eq!(all_cases(&server, &city).len(), cases.len());
    drop(server);

    // The same seed, the same week.
    let second = format!("sqlite://{}", dir.path().join("second.db").display());
    let server = demo(&second);
    let city = login(&server, "demo-city");
    assert_eq!(all_cases(&server, &city), cases);
}
