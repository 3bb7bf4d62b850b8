//! A day of walk patrol (徒步巡查) end to end, on SQLite and on PostgreSQL: the real
//! `wangge` binary with the real 金水区 grids on loopback. Three field workers walk
//! their level-3 grids (tracks generated inside the real grids): `w1`'s phone clock is
//! three hours fast, `w2` skips a grid and checks in once far from where it claims,
//! `w3` walks offline all day and syncs in the evening. Their street supervisors read
//! coverage (见巡率), the missed grid, the anomalies, the track as GeoJSON and the
//! summary as CSV; `sup1` rejects `w2`'s log and the review reaches `w2`'s phone. A
//! street supervisor never sees another street's logs, through the API or by sync.

use chrono::{DateTime, Duration, NaiveDate, TimeZone as _, Utc};
use serde_json::{Value, json};
use wangge_sync_core::calendar::SHANGHAI;
use wangge_sync_core::case::Position;
use wangge_sync_core::geo::{LonLat, distance_m};
use wangge_sync_core::patrol::{CheckIn, PatrolLog, TrackPoint, Verdict, patrol_log_id};
use wangge_sync_core::sync::DocKind;
use wangge_tests::phone::Phone;
use wangge_tests::places::{Level3Place, import_grids, two_streets};
use wangge_tests::{Server, answer, databases, http};

const PASSWORD: &str = "网格-2026-ok";
const HOUR_MS: i64 = 3_600_000;

/// A posting of whole level-3 grids: their unit grids' codes.
fn scope_of(places: &[&Level3Place]) -> String {
    places
        .iter()
        .flat_map(|p| p.grids.iter().map(ToString::to_string))
        .collect::<Vec<_>>()
        .join(",")
}

/// A walk through `stops` (WGS-84) at 1.2 m/s from `start`, a fix every 10 s, and a
/// check-in at each stop; returns the check-ins, the fixes and the length walked.
fn walk(
    stops: &[(wangge_sync_core::grid::GridCode, Position)],
    start: DateTime<Utc>,
    worker: &str,
) -> (Vec<CheckIn>, Vec<TrackPoint>, f64) {
    let mut checkins = Vec::new();
    let mut points = Vec::new();
    let mut at = start;
    let mut length = 0.0;
    for (i, (grid, position)) in stops.iter().enumerate() {
        checkins.push(CheckIn {
            id: format!("{worker}-c{i}"),
            at,
            position: *position,
            grid: Some(*grid),
            note: None,
        });
        let Some((_, next)) = stops.get(i + 1) else {
            points.push(TrackPoint {
                at_ms: at.timestamp_millis(),
                lon: position.lon,
                lat: position.lat,
                accuracy_m: Some(8.0),
            });
            break;
        };
        let a = LonLat::new(position.lon, position.lat).expect("point");
        let b = LonLat::new(next.lon, next.lat).expect("point");
        let metres = distance_m(a, b);
        length += metres;
        let steps = (metres / 12.0).ceil().max(1.0) as usize;
        for s in 0..steps {
            let f = s as f64 / steps as f64;
            points.push(TrackPoint {
                at_ms: at.timestamp_millis() + (s as i64) * 10_000,
                lon: a.lon + (b.lon - a.lon) * f,
                lat: a.lat + (b.lat - a.lat) * f,
                accuracy_m: Some(8.0),
            });
        }
        at += Duration::seconds(steps as i64 * 10);
    }
    (checkins, points, length)
}

/// The day's log written on the phone: check-ins and track, then stored for sync.
fn write_log(phone: &mut Phone, day: NaiveDate, checkins: &[CheckIn], points: &[TrackPoint]) {
    let mut log = PatrolLog::create(&phone.actor, day).expect("log");
    for c in checkins {
        log.check_in(&phone.actor, c).expect("check-in");
    }
    log.record_track(&phone.actor, points).expect("track");
    let id = patrol_log_id(&phone.actor.user, day);
    phone.write_doc(&id, DocKind::PatrolLog, log.automerge());
}

fn rows_by_key(body: &Value) -> std::collections::BTreeMap<String, (i64, i64)> {
    body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().expect("key").to_owned(),
                (
                    r["assigned"].as_i64().expect("assigned"),
                    r["covered"].as_i64().expect("covered"),
                ),
            )
        })
        .collect()
}

fn flags_of(log: &Value) -> Vec<(String, String)> {
    log["checkins"]
        .as_array()
        .expect("checkins")
        .iter()
        .map(|c| {
            (
                c["checkin_id"].as_str().expect("id").to_owned(),
                c["flags"].as_str().expect("flags").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_patrol_day_covered_reviewed_and_scoped_on_every_backend() {
    let [a, b] = two_streets();
    let street1 = a[0].code.community().street().to_string();
    let street2 = b[0].code.community().street().to_string();
    let community_a = a[0].code.community().to_string();
    // Yesterday in Beijing, walked from 09:00: nothing is in the future.
    let today = DateTime::<Utc>::from(std::time::SystemTime::now())
        .with_timezone(&SHANGHAI)
        .date_naive();
    let day = today.pred_opt().expect("yesterday");
    let nine = SHANGHAI
        .from_local_datetime(&day.and_hms_opt(9, 0, 0).expect("09:00"))
        .single()
        .expect("09:00 Beijing")
        .with_timezone(&Utc);

    for database in databases() {
        let url = &database.url;
        let backend = database.backend;
        import_grids(url);
        let add = |id: &str, role: &str, team: Option<&str>, scope: &str| {
            wangge_tests::add_user(url, id, role, team, scope, PASSWORD);
        };
        add(
            "w1",
            "enforcement_officer",
            Some("enforcement"),
            &scope_of(&[&a[0], &a[1], &a[2]]),
        );
        add(
            "w2",
            "enforcement_officer",
            Some("enforcement"),
            &scope_of(&[&a[3], &a[2]]),
        );
        add(
            "w3",
            "sanitation_worker",
            Some("sanitation"),
            &scope_of(&[&b[0], &b[1], &b[2]]),
        );
        add("gl1", "grid_leader", None, &community_a);
        add("sup1", "district_supervisor", None, &street1);
        add("sup2", "district_supervisor", None, &street2);
        let server = Server::start(url, &[]);

        let mut w1 = Phone::login(&server, "w1", PASSWORD);
        let mut w2 = Phone::login(&server, "w2", PASSWORD);
        let mut w3 = Phone::login(&server, "w3", PASSWORD);
        let gl1 = Phone::login(&server, "gl1", PASSWORD);
        let sup1 = Phone::login(&server, "sup1", PASSWORD);
        let mut sup2 = Phone::login(&server, "sup2", PASSWORD);

        // w1: all three grids, but the phone's clock is three hours fast (it never
        // synced to learn the offset), so every time it writes is three hours late,
        // and it says so on each round.
        let (w1_checkins, w1_points, _) =
            walk(&[a[0].check_in, a[1].check_in, a[2].check_in], nine, "w1");
        let shift = |t: DateTime<Utc>| t + Duration::hours(3);
        let w1_checkins: Vec<CheckIn> = w1_checkins
            .into_iter()
            .map(|c| CheckIn {
                at: shift(c.at),
                ..c
            })
            .collect();
        let w1_points: Vec<TrackPoint> = w1_points
            .into_iter()
            .map(|p| TrackPoint {
                at_ms: p.at_ms + 3 * HOUR_MS,
                ..p
            })
            .collect();
        write_log(&mut w1, day, &w1_checkins, &w1_points);
        w1.clock_ahead_ms = Some(3 * HOUR_MS);
        w1.sync(&server);

        // w2: the grid a[3] only, skipping a[2]; one more check-in claims a[3]'s grid
        // from two kilometres away (it does not count), and one fix jumps 50 km.
        let (mut w2_checkins, mut w2_points, _) = walk(&[a[3].check_in], nine, "w2");
        let far = Position {
            lon: a[3].check_in.1.lon + 0.02,
            lat: a[3].check_in.1.lat + 0.01,
            accuracy_m: Some(10.0),
        };
        w2_checkins.push(CheckIn {
            id: "w2-far".into(),
            at: nine + Duration::minutes(30),
            position: far,
            grid: Some(a[3].check_in.0),
            note: Some("路口东侧".into()),
        });
        let last = *w2_points.last().expect("a fix");
        w2_points.push(TrackPoint {
            at_ms: last.at_ms + 10_000,
            lon: last.lon + 0.5,
            lat: last.lat,
            accuracy_m: Some(8.0),
        });
        write_log(&mut w2, day, &w2_checkins, &w2_points);
        w2.clock_ahead_ms = Some(0);
        w2.sync(&server);

        // w3 walks offline all day: written now, synced in the evening (below).
        let (w3_checkins, w3_points, w3_length) =
            walk(&[b[0].check_in, b[1].check_in, b[2].check_in], nine, "w3");
        write_log(&mut w3, day, &w3_checkins, &w3_points);

        let day_q = format!("day={day}");
        // Street 1's coverage: w1 walked 3 of 3, w2 1 of 2; the missed grid is w2's a[2].
        let (status, coverage) = sup1.get(
            &server,
            &format!("/v1/patrol/coverage?unit={street1}&{day_q}&by=worker"),
        );
        assert_eq!(status, 200, "{backend}: {coverage}");
        let rows = rows_by_key(&coverage);
        assert_eq!(rows.get("w1"), Some(&(3, 3)), "{backend}: {coverage}");
        assert_eq!(rows.get("w2"), Some(&(2, 1)), "{backend}: {coverage}");
        assert!(!rows.contains_key("w3"), "{backend}: {coverage}");
        let missed: Vec<(String, String)> = coverage["missed"]
            .as_array()
            .expect("missed")
            .iter()
            .map(|m| {
                (
                    m["worker"].as_str().expect("worker").to_owned(),
                    m["level3"].as_str().expect("level3").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            missed,
            vec![("w2".to_owned(), a[2].code.to_string())],
            "{backend}"
        );

        // Street 2 before the evening sync: w3 has no duties on record for the day
        // (the server has seen nothing of that day), so nothing is claimed covered.
        let (status, before) = sup2.get(
            &server,
            &format!("/v1/patrol/coverage?unit={street2}&{day_q}"),
        );
        assert_eq!(status, 200, "{backend}: {before}");
        assert_eq!(before["total"]["covered"], 0, "{backend}: {before}");

        // Evening: w3 syncs. 3 of 3, first and last check-in at the phone's times.
        w3.sync(&server);
        let (_, after) = sup2.get(
            &server,
            &format!("/v1/patrol/coverage?unit={street2}&{day_q}"),
        );
        let rows = rows_by_key(&after);
        assert_eq!(rows.get("w3"), Some(&(3, 3)), "{backend}: {after}");
        let w3_row = &after["rows"][0];
        assert_eq!(
            w3_row["first_at"].as_i64(),
            Some(w3_checkins[0].at.timestamp_millis()),
            "{backend}: {after}"
        );
        assert_eq!(
            w3_row["last_at"].as_i64(),
            Some(w3_checkins[2].at.timestamp_millis()),
            "{backend}: {after}"
        );

        // The anomaly flags: every w1 check-in has clock_skew (≈ 3 h), none of w3's
        // has any; w2's far check-in is flagged and does not count.
        let w1_id = patrol_log_id("w1", day);
        let (status, w1_log) = sup1.get(&server, &format!("/v1/patrol/logs/{w1_id}"));
        assert_eq!(status, 200, "{backend}: {w1_log}");
        for c in w1_log["checkins"].as_array().expect("checkins") {
            assert!(
                c["flags"].as_str().expect("flags").contains("clock_skew"),
                "{backend}: {c}"
            );
            let skew = c["clock_skew_ms"].as_i64().expect("skew");
            assert!((skew - 3 * HOUR_MS).abs() < 5_000, "{backend}: {skew}");
        }
        assert!(
            w1_log["anomalies"]
                .as_array()
                .expect("anomalies")
                .iter()
                .filter(|a| a["kind"] == "clock_skew")
                .count()
                == 3,
            "{backend}: {w1_log}"
        );
        let w3_id = patrol_log_id("w3", day);
        let (_, w3_log) = sup2.get(&server, &format!("/v1/patrol/logs/{w3_id}"));
        assert!(
            flags_of(&w3_log).iter().all(|(_, flags)| flags.is_empty()),
            "{backend}: {w3_log}"
        );
        assert_eq!(w3_log["anomalies"], json!([]), "{backend}: {w3_log}");
        let w2_id = patrol_log_id("w2", day);
        let (_, w2_log) = sup1.get(&server, &format!("/v1/patrol/logs/{w2_id}"));
        let w2_flags = flags_of(&w2_log);
        assert!(
            w2_flags
                .iter()
                .any(|(id, flags)| id == "w2-far" && flags.contains("far_from_claimed_grid")),
            "{backend}: {w2_log}"
        );
        assert!(
            w2_flags
                .iter()
                .all(|(id, flags)| id == "w2-far" || flags.is_empty()),
            "{backend}: {w2_log}"
        );
        let kinds: Vec<&str> = w2_log["anomalies"]
            .as_array()
            .expect("anomalies")
            .iter()
            .filter_map(|a| a["kind"].as_str())
            .collect();
        assert!(kinds.contains(&"impossible_speed"), "{backend}: {kinds:?}");
        assert!(
            kinds.contains(&"far_from_claimed_grid"),
            "{backend}: {kinds:?}"
        );
        assert_eq!(w2_log["missed"][0]["level3"], a[2].code.to_string());

        // The anomalies of street 1 for the day, as the supervisor's list.
        let (status, listed) = sup1.get(
            &server,
            &format!("/v1/patrol/anomalies?unit={street1}&{day_q}&kind=impossible_speed"),
        );
        assert_eq!(status, 200, "{backend}: {listed}");
        assert_eq!(listed["anomalies"].as_array().map(Vec::len), Some(1));

        // w3's track: LineStrings in GCJ-02, fewer points than sent, the length walked.
        let (status, track) = sup2.get(&server, &format!("/v1/patrol/logs/{w3_id}/track"));
        assert_eq!(status, 200, "{backend}: {track}");
        let summary = &track["summary"];
        let kept = summary["points_kept"].as_u64().expect("kept");
        assert!(
            kept >= 3 && (kept as usize) < w3_points.len(),
            "{backend}: {kept} of {}",
            w3_points.len()
        );
        let walked = summary["distance_m"].as_f64().expect("distance");
        assert!(
            (walked - w3_length).abs() < 0.1 * w3_length,
            "{backend}: {walked} m against {w3_length} m"
        );
        // Time walked per level-3 grid: all of it, each of w3's grids walked through.
        let time = summary["time_in_level3"].as_array().expect("time per grid");
        let total: i64 = time.iter().filter_map(|t| t["ms"].as_i64()).sum();
        assert_eq!(
            Some(total),
            summary["walking_ms"].as_i64(),
            "{backend}: {summary}"
        );
        for place in &b[..2] {
            assert!(
                time.iter()
                    .any(|t| t["level3"] == place.code.to_string() && t["ms"].as_i64() > Some(0)),
                "{backend}: {} in {time:?}",
                place.code
            );
        }
        let lines = track["features"]
            .as_array()
            .expect("features")
            .iter()
            .filter(|f| f["geometry"]["type"] == "LineString")
            .count();
        assert!(lines >= 1, "{backend}: {track}");

        // sup1 rejects w2's log; w2's phone is told and receives the review by sync.
        let mut w2_push = w2.push(&server);
        w2_push.expect("hello");
        let (status, reviewed) = answer(
            http()
                .post(server.url(&format!("/v1/patrol/logs/{w2_id}/reviews")))
                .header("Authorization", format!("Bearer {}", sup1.token))
                .send_json(json!({"verdict": "reject", "comment": "少巡一个网格"})),
        );
        assert_eq!(status, 201, "{backend}: {reviewed}");
        assert_eq!(reviewed["log"]["verdict"], "reject", "{backend}");
        w2_push.expect("sync_now");
        w2.sync(&server);
        let on_phone = PatrolLog::from_automerge(
            wangge_sync_core::sync::load_chunks(&w2.store.documents()[&w2_id].chunks)
                .expect("load"),
        )
        .read();
        let verdict = on_phone.verdict().expect("a verdict on the phone");
        assert_eq!(verdict.verdict, Verdict::Reject, "{backend}");
        assert_eq!(verdict.comment.as_deref(), Some("少巡一个网格"));
        // Written again, the log keeps each check-in's first receipt and flags.
        let (_, w2_again) = sup1.get(&server, &format!("/v1/patrol/logs/{w2_id}"));
        assert_eq!(w2_again["checkins"], w2_log["checkins"], "{backend}");
        assert_eq!(w2_again["anomalies"], w2_log["anomalies"], "{backend}");
        assert_eq!(w2_again["reviews"][0]["verdict"], "reject", "{backend}");
        // A rejected log counts for nothing until it is approved.
        let (_, coverage) = sup1.get(
            &server,
            &format!("/v1/patrol/coverage?unit={street1}&{day_q}"),
        );
        assert_eq!(
            rows_by_key(&coverage).get("w2"),
            Some(&(2, 0)),
            "{backend}: {coverage}"
        );
        // A rejection without a reason is refused; a worker may not review.
        let (status, _) = answer(
            http()
                .post(server.url(&format!("/v1/patrol/logs/{w2_id}/reviews")))
                .header("Authorization", format!("Bearer {}", sup1.token))
                .send_json(json!({"verdict": "reject"})),
        );
        assert_eq!(status, 422, "{backend}");
        let (status, _) = answer(
            http()
                .post(server.url(&format!("/v1/patrol/logs/{w2_id}/reviews")))
                .header("Authorization", format!("Bearer {}", w2.token))
                .send_json(json!({"verdict": "approve"})),
        );
        assert_eq!(status, 403, "{backend}");

        // The summary of street 1 as CSV, for the spreadsheet.
        let mut response = http()
            .get(server.url(&format!(
                "/v1/patrol/summary?unit={street1}&{day_q}&format=csv"
            )))
            .header("Authorization", format!("Bearer {}", sup1.token))
            .call()
            .expect("summary");
        assert_eq!(response.status(), 200);
        let csv = response.body_mut().read_to_string().expect("text");
        assert!(csv.starts_with('\u{feff}'), "{backend}: a byte-order mark");
        let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
        assert!(lines[0].contains("见巡率"), "{backend}: {csv}");
        let line = lines
            .iter()
            .find(|l| l.starts_with(&community_a))
            .expect("the community's line");
        // w1 3 of 3, w2 0 of 2 (rejected): 5 assigned, 3 covered, 2 missed, 60.0 %.
        assert!(line.contains(",2,5,3,2,60.0%,"), "{backend}: {line}");

        // Scope: a street supervisor never sees another street's logs.
        let (status, _) = sup2.get(&server, &format!("/v1/patrol/logs?unit={street1}&{day_q}"));
        assert_eq!(status, 403, "{backend}");
        let (status, mine) = sup2.get(&server, &format!("/v1/patrol/logs?{day_q}"));
        assert_eq!(status, 200, "{backend}: {mine}");
        let workers: Vec<&str> = mine["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .filter_map(|l| l["worker"].as_str())
            .collect();
        assert_eq!(workers, ["w3"], "{backend}");
        let (status, _) = sup2.get(&server, &format!("/v1/patrol/logs/{w1_id}"));
        assert_eq!(status, 404, "{backend}");
        let (status, _) = answer(
            http()
                .post(server.url(&format!("/v1/patrol/logs/{w1_id}/reviews")))
                .header("Authorization", format!("Bearer {}", sup2.token))
                .send_json(json!({"verdict": "approve"})),
        );
        assert_eq!(status, 404, "{backend}");
        sup2.sync(&server);
        let received: Vec<&String> = sup2.store.documents().keys().collect();
        assert!(
            received
                .iter()
                .all(|id| !id.starts_with("patrol:w1:") && !id.starts_with("patrol:w2:")),
            "{backend}: {received:?}"
        );
        assert!(
            received.iter().any(|id| **id == w3_id),
            "{backend}: {received:?}"
        );
        // The grid leader sees their community's two workers, not street 2's.
        let (_, theirs) = gl1.get(&server, &format!("/v1/patrol/logs?{day_q}"));
        let workers: Vec<&str> = theirs["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .filter_map(|l| l["worker"].as_str())
            .collect();
        assert_eq!(workers, ["w1", "w2"], "{backend}");
        // A worker sees their own log only.
        let (status, _) = w3.get(&server, &format!("/v1/patrol/logs/{w1_id}"));
        assert_eq!(status, 404, "{backend}");
        let (status, own) = w3.get(&server, &format!("/v1/patrol/logs/{w3_id}"));
        assert_eq!(status, 200, "{backend}: {own}");
        // Each worker lists their own logs (a field worker's scope was once written as
        // an empty `IN ()`, a 503 for every one of them).
        for (phone, expected) in [(&w1, "w1"), (&w2, "w2"), (&w3, "w3")] {
            let (status, listed) = phone.get(&server, &format!("/v1/patrol/logs?{day_q}"));
            assert_eq!(status, 200, "{backend}: {expected}: {listed}");
            let workers: Vec<&str> = listed["logs"]
                .as_array()
                .expect("logs")
                .iter()
                .filter_map(|l| l["worker"].as_str())
                .collect();
            assert_eq!(workers, [expected], "{backend}");
            let (status, listed) = phone.get(
                &server,
                &format!("/v1/patrol/logs?{day_q}&verdict=none&limit=5&offset=0"),
            );
            assert_eq!(status, 200, "{backend}: {expected}: {listed}");
        }
        let (status, _) = w3.get(&server, &format!("/v1/patrol/logs?{day_q}&worker=w1"));
        assert_eq!(status, 403, "{backend}");
        let (status, _) = w3.get(&server, &format!("/v1/patrol/logs?{day_q}&unit={street2}"));
        assert_eq!(status, 403, "{backend}");
        let (status, _) = w3.get(
            &server,
            &format!("/v1/patrol/coverage?unit={street2}&{day_q}"),
        );
        assert_eq!(status, 403, "{backend}");
    }
}
