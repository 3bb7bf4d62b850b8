//! Intake end to end, on SQLite and on PostgreSQL (issue 22): a 12319 call becomes a
//! case through `POST /v1/cases`, is routed and pushed to the field worker's phone,
//! handled, verified and closed, and replied to; the caller's name and number are
//! never on the phone nor shown to a field role. Every bad input is refused with a
//! clear error and leaves nothing behind; two nearby reports of one problem are
//! suggested as duplicates and merged, and the survivor lists both callers.

use serde_json::{Value, json};
use wangge_sync_core::case::{Action, Source, Status};
use wangge_sync_core::geo::{LonLat, wgs84_to_bd09, wgs84_to_gcj02};
use wangge_sync_core::photo::fixtures::{camera_fields, gradient, jpeg, tiff, with_exif};
use wangge_sync_core::photo::prepare_upload;
use wangge_tests::phone::Phone;
use wangge_tests::places::{JINSHUI, import_grids, two_places};
use wangge_tests::{Server, answer, databases, http};

const PASSWORD: &str = "网格-2026-ok";
const CALLER_PHONE: &str = "13907310042";
const CALLER_NAME: &str = "王秀英";

fn post(server: &Server, who: Option<&Phone>, path: &str, body: &Value) -> (u16, Value) {
    let mut request = http().post(server.url(path));
    if let Some(phone) = who {
        request = request.header("Authorization", format!("Bearer {}", phone.token));
    }
    answer(request.send_json(body))
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// A hotline call about `category` at `lon`/`lat` (WGS-84).
fn call(category: &str, lon: f64, lat: f64, ticket: &str) -> Value {
    json!({
        "category": category,
        "description": "来电反映：路口井盖丢失，行人险些跌落",
        "address": "金水区 花园路与农业路交叉口东北角",
        "location": { "lon": lon, "lat": lat },
        "caller": { "name": CALLER_NAME, "phone": CALLER_PHONE, "wants_reply": true },
        "ticket": ticket,
    })
}

#[test]
fn a_hotline_call_becomes_a_case_that_is_handled_closed_and_replied_to() {
    let [(grid, position), (other_grid, other_position)] = two_places();
    let community = grid.community().to_string();
    for database in databases() {
        let url = &database.url;
        let backend = database.backend;
        import_grids(url);
        let add = |id: &str, role: &str, team: Option<&str>, scope: &str| {
            wangge_tests::add_user(url, id, role, team, scope, PASSWORD);
        };
        add("hotline", "hotline_operator", None, "*");
        add("acceptor", "acceptor", None, JINSHUI);
        add("supervisor", "district_supervisor", None, JINSHUI);
        add(
            "officer",
            "enforcement_officer",
            Some("enforcement"),
            &community,
        );
        add(
            "maint",
            "municipal_maintenance",
            Some("municipal_maintenance"),
            &community,
        );
        add(
            "outsider",
            "municipal_maintenance",
            Some("municipal_maintenance"),
            &other_grid.community().to_string(),
        );
        let server = Server::start(url, &[]);
        let hotline = Phone::login(&server, "hotline", PASSWORD);
        let acceptor = Phone::login(&server, "acceptor", PASSWORD);
        let supervisor = Phone::login(&server, "supervisor", PASSWORD);
        let mut officer = Phone::login(&server, "officer", PASSWORD);
        let mut maint = Phone::login(&server, "maint", PASSWORD);
        let outsider = Phone::login(&server, "outsider", PASSWORD);
        let mut maint_push = maint.push(&server);
        maint_push.expect("hello");

        // The call: C0102 污水井盖, a missing sewage manhole cover, dispatched at once
        // by the built-in rules to the maintenance worker posted there.
        let (status, created) = post(
            &server,
            Some(&hotline),
            "/v1/cases",
            &call("C0102", position.lon, position.lat, "12319-20261207-0001"),
        );
        assert_eq!(status, 201, "{backend}: {created}");
        let id = created["id"].as_str().expect("id").to_owned();
        let row = &created["case"];
        assert_eq!(row["source"], "hotline", "{backend}");
        assert_eq!(row["grid"], json!(grid.to_string()), "{backend}");
        assert_eq!(row["status"], "dispatched", "{backend}: {created}");
        assert_eq!(row["team"], "municipal_maintenance");
        assert_eq!(row["assignee"], "maint", "{backend}");
        assert_eq!(row["reporter"], "hotline");
        assert_eq!(created["callers"][0]["phone"], CALLER_PHONE);
        assert_eq!(created["callers"][0]["ticket"], "12319-20261207-0001");
        assert_eq!(created["callers"][0]["taken_by"], "hotline");

        // Pushed to the assignee's phone, which syncs it: the same case document a
        // phone's report is, with no trace of the caller.
        let notice = maint_push.expect("dispatch");
        assert_eq!(notice["case"], json!(id), "{backend}");
        maint.sync(&server);
        let on_phone = maint.fold(&id);
        assert_eq!(on_phone.status, Some(Status::Dispatched), "{backend}");
        assert_eq!(on_phone.record.source, Some(Source::Hotline));
        assert_eq!(
            on_phone.record.source_ref.as_deref(),
            Some("12319-20261207-0001")
        );
        assert_eq!(on_phone.record.caller, None);
        let saved = maint.case(&id).automerge().save_nocompress();
        for secret in [CALLER_PHONE, CALLER_NAME] {
            assert!(
                !contains(&saved, secret.as_bytes()),
                "{backend}: {secret} is in the phone's document"
            );
        }

        // Field roles see the case, never the caller; the office roles see the caller.
        for phone in [&maint, &officer] {
            let (status, shown) = phone.get(&server, &format!("/v1/cases/{id}"));
            assert_eq!(status, 200, "{backend}: {}", phone.actor.user);
            assert_eq!(shown.get("callers"), None, "{}", phone.actor.user);
            assert!(!shown.to_string().contains(CALLER_PHONE));
            let (_, list) = phone.get(&server, "/v1/cases");
            assert!(!list.to_string().contains(CALLER_PHONE));
        }
        for phone in [&hotline, &acceptor, &supervisor] {
            let (status, shown) = phone.get(&server, &format!("/v1/cases/{id}"));
            assert_eq!(status, 200, "{backend}: {}", phone.actor.user);
            assert_eq!(
                shown["callers"][0]["phone"], CALLER_PHONE,
                "{}",
                phone.actor.user
            );
            assert_eq!(shown["callers"][0]["name"], CALLER_NAME);
        }
        let (status, _) = outsider.get(&server, &format!("/v1/cases/{id}"));
        assert_eq!(status, 404, "{backend}");

        // Handled on the phone; verified and closed by the command centre.
        maint.act(&id, Action::Handle, 30);
        maint.sync(&server);
        let action = |phone: &Phone, body: Value| {
            post(
                &server,
                Some(phone),
                &format!("/v1/cases/{id}/actions"),
                &body,
            )
        };
        let (status, body) = action(&supervisor, json!({ "action": "verify" }));
        assert_eq!(status, 200, "{backend}: {body}");
        let (status, body) = action(&supervisor, json!({ "action": "close" }));
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body["case"]["status"], "closed");
        assert_eq!(body["awaiting_reply"], true, "{body}");
        assert_eq!(body["case"]["step"], "reply");
        assert!(body["case"]["due_at"].is_i64());
        assert!(body["case"]["closed_at"].is_i64());
        // The hotline's queue of answers owed (the console's 待回访) holds it.
        let owed = |phone: &Phone| -> Vec<String> {
            let (status, list) = phone.get(&server, "/v1/cases?status=closed&step=reply");
            assert_eq!(status, 200, "{list}");
            list["cases"]
                .as_array()
                .expect("cases")
                .iter()
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(owed(&hotline), std::slice::from_ref(&id), "{backend}");
        let (status, refused) = hotline.get(&server, "/v1/cases?step=lunch");
        assert_eq!((status, code(&refused)), (400, Some("invalid_query")));

        // The reply: not by a field worker, not without what the caller was told.
        let (status, body) = action(
            &maint,
            json!({ "action": "reply", "channel": "phone", "satisfied": true, "note": "已修复" }),
        );
        assert_eq!(
            (status, code(&body)),
            (409, Some("action_refused")),
            "{body}"
        );
        let (status, body) = action(
            &hotline,
            json!({ "action": "reply", "channel": "phone", "satisfied": true }),
        );
        assert_eq!(
            (status, code(&body)),
            (400, Some("invalid_action")),
            "{body}"
        );
        let (status, body) = action(
            &hotline,
            json!({ "action": "reply", "channel": "pigeon", "satisfied": true, "note": "x" }),
        );
        assert_eq!(
            (status, code(&body)),
            (400, Some("invalid_action")),
            "{body}"
        );
        let (status, body) = action(
            &hotline,
            json!({
                "action": "reply", "channel": "phone", "satisfied": true,
                "note": "已电话告知来电人：井盖已补装，来电人表示满意"
            }),
        );
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body["awaiting_reply"], false);
        assert_eq!(body["case"]["step"], Value::Null);
        assert!(owed(&hotline).is_empty(), "{backend}: answered");
        let reply = body["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .rev()
            .find(|e| e["action"] == "reply")
            .expect("the reply entry")
            .clone();
        assert_eq!(reply["applied"], true, "{reply}");
        assert_eq!(
            reply["payload"],
            json!({ "channel": "phone", "satisfied": true })
        );
        // Replied once: a second reply changes nothing.
        let (status, body) = action(
            &hotline,
            json!({ "action": "reply", "channel": "sms", "satisfied": true, "note": "again" }),
        );
        assert_eq!(
            (status, code(&body)),
            (409, Some("action_refused")),
            "{body}"
        );

        // The phone folds the same closed case, still with no caller.
        maint.sync(&server);
        assert_eq!(maint.fold(&id).status, Some(Status::Closed), "{backend}");
        assert!(!contains(
            &maint.case(&id).automerge().save_nocompress(),
            CALLER_PHONE.as_bytes()
        ));

        // The same place in GCJ-02 and BD-09 is the same grid; a queued category
        // waits for the acceptor.
        let wgs84 = LonLat::new(position.lon, position.lat).expect("position");
        for (crs, point) in [
            ("gcj02", wgs84_to_gcj02(wgs84)),
            ("bd09", wgs84_to_bd09(wgs84)),
        ] {
            let mut body = call("E0102", 0.0, 0.0, "12319-20261207-0002");
            body["location"] = json!({ "lon": point.lon, "lat": point.lat, "crs": crs });
            let (status, created) = post(&server, Some(&hotline), "/v1/cases", &body);
            assert_eq!(status, 201, "{backend} {crs}: {created}");
            assert_eq!(created["case"]["grid"], json!(grid.to_string()), "{crs}");
            assert_eq!(created["case"]["status"], "reported");
        }

        // A call with a photo the operator uploaded first (the same upload and
        // checks as a phone's): on the assignee's phone as the report's photo, its
        // derivatives served to the case's scope only.
        let photo = prepare_upload(&with_exif(
            &jpeg(&gradient(800, 600), 90),
            &tiff(&camera_fields(1)),
        ))
        .expect("photo");
        let uploaded = http()
            .patch(server.url(&format!("/v1/blobs/{}", photo.sha256)))
            .header("Authorization", format!("Bearer {}", hotline.token))
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", "0")
            .header("Upload-Length", photo.bytes.len().to_string())
            .send(&photo.bytes[..])
            .expect("upload");
        assert_eq!(
            uploaded.status().as_u16(),
            200,
            "{backend}: the photo is stored"
        );
        let mut body = call("C0102", position.lon, position.lat, "12319-20261207-0005");
        body["photos"] = json!([photo.sha256]);
        let (status, created) = post(&server, Some(&hotline), "/v1/cases", &body);
        assert_eq!(status, 201, "{backend}: {created}");
        let with_photo = created["id"].as_str().expect("id").to_owned();
        maint.sync(&server);
        let photos = maint.fold(&with_photo).record.photos;
        assert_eq!(photos.len(), 1, "{backend}");
        assert_eq!(photos[0].hash, photo.sha256);
        assert_eq!(photos[0].added_by, "hotline");
        let thumb = format!("/v1/blobs/{}/thumb", photo.sha256);
        for (phone, expected) in [(&maint, 200), (&outsider, 404)] {
            let status = http()
                .get(server.url(&thumb))
                .header("Authorization", format!("Bearer {}", phone.token))
                .call()
                .expect("thumb")
                .status()
                .as_u16();
            assert_eq!(status, expected, "{backend}: {}", phone.actor.user);
        }

        // A grid named by the operator, with no point: located inside it.
        let mut body = call("E0102", 0.0, 0.0, "12319-20261207-0003");
        body.as_object_mut().expect("object").remove("location");
        body["grid"] = json!(other_grid.to_string());
        let (status, created) = post(&server, Some(&hotline), "/v1/cases", &body);
        assert_eq!(status, 201, "{backend}: {created}");
        assert_eq!(created["case"]["grid"], json!(other_grid.to_string()));
        let (lon, lat) = (
            created["case"]["lon"].as_f64().expect("lon"),
            created["case"]["lat"].as_f64().expect("lat"),
        );
        assert!((lon - other_position.lon).abs() < 0.01 && (lat - other_position.lat).abs() < 0.01);
        // A point outside every grid stands with the grid the operator named.
        let mut body = call("E0102", 114.9, 35.9, "12319-20261207-0004");
        body["grid"] = json!(grid.to_string());
        let (status, created) = post(&server, Some(&hotline), "/v1/cases", &body);
        assert_eq!(status, 201, "{backend}: {created}");
        assert_eq!(created["case"]["grid"], json!(grid.to_string()));

        // Bad input: a clear error, nothing stored.
        let (_, before) = supervisor.get(&server, "/v1/cases?limit=500");
        let count = before["cases"].as_array().map_or(0, Vec::len);
        let mut long = call("E0102", position.lon, position.lat, "t");
        long["description"] = json!("很".repeat(4_001));
        let mut no_place = call("E0102", 0.0, 0.0, "t");
        no_place.as_object_mut().expect("object").remove("location");
        let mut bad_crs = call("E0102", position.lon, position.lat, "t");
        bad_crs["location"]["crs"] = json!("mercator");
        let mut bad_grid = call("E0102", position.lon, position.lat, "t");
        bad_grid["grid"] = json!("410105001001999");
        let mut fake_photo = call("E0102", position.lon, position.lat, "t");
        fake_photo["photos"] = json!(["ab".repeat(32)]);
        let mut empty = call("E0102", position.lon, position.lat, "t");
        empty["description"] = json!("  ");
        let mut bad_source = call("E0102", position.lon, position.lat, "t");
        bad_source["source"] = json!("patrol");
        let refused = [
            (
                call("X9999", position.lon, position.lat, "t"),
                400,
                "unknown_category",
            ),
            (
                call("E0199", position.lon, position.lat, "t"),
                400,
                "unknown_category",
            ),
            (call("E0102", 114.9, 35.9, "t"), 400, "outside_grids"),
            (call("E0102", 200.0, 35.9, "t"), 400, "invalid_case"),
            (no_place, 400, "no_location"),
            (long, 400, "invalid_case"),
            (empty, 400, "invalid_case"),
            (bad_crs, 400, "invalid_case"),
            (bad_grid, 400, "unknown_grid"),
            (fake_photo, 400, "photo_not_uploaded"),
            (bad_source, 400, "invalid_case"),
            (json!({ "category": "E0102" }), 422, "invalid_body"),
        ];
        for (body, expected_status, expected_code) in refused {
            let (status, answer) = post(&server, Some(&hotline), "/v1/cases", &body);
            assert_eq!(
                (status, code(&answer)),
                (expected_status, Some(expected_code)),
                "{backend}: {body} → {answer}"
            );
        }
        // Field roles take no calls; nobody unauthenticated does.
        let good = call("E0102", position.lon, position.lat, "t");
        for phone in [&maint, &officer] {
            let (status, answer) = post(&server, Some(phone), "/v1/cases", &good);
            assert_eq!(
                (status, code(&answer)),
                (403, Some("forbidden")),
                "{answer}"
            );
        }
        let (status, _) = post(&server, None, "/v1/cases", &good);
        assert_eq!(status, 401);
        let (_, after) = supervisor.get(&server, "/v1/cases?limit=500");
        assert_eq!(
            after["cases"].as_array().map_or(0, Vec::len),
            count,
            "{backend}: a refused call stored a case"
        );
        // The command centre takes calls too: the acceptor and the district
        // supervisor, each in their district (both places are in it).
        for (phone, place) in [(&acceptor, position), (&supervisor, other_position)] {
            let (status, created) = post(
                &server,
                Some(phone),
                "/v1/cases",
                &call("E0102", place.lon, place.lat, "12319-20261207-0009"),
            );
            assert_eq!(status, 201, "{backend}: {}: {created}", phone.actor.user);
            assert_eq!(created["case"]["reporter"], json!(phone.actor.user));
            assert_eq!(created["callers"][0]["taken_by"], json!(phone.actor.user));
        }
        officer.sync(&server);
    }
}

#[test]
fn two_calls_about_one_problem_are_suggested_and_merged_and_both_callers_kept() {
    let [(grid, position), _] = two_places();
    for database in databases() {
        let url = &database.url;
        let backend = database.backend;
        import_grids(url);
        wangge_tests::add_user(url, "hotline", "hotline_operator", None, "*", PASSWORD);
        wangge_tests::add_user(url, "acceptor", "acceptor", None, JINSHUI, PASSWORD);
        wangge_tests::add_user(
            url,
            "officer",
            "enforcement_officer",
            Some("enforcement"),
            &grid.community().to_string(),
            PASSWORD,
        );
        let server = Server::start(url, &[]);
        let hotline = Phone::login(&server, "hotline", PASSWORD);
        let acceptor = Phone::login(&server, "acceptor", PASSWORD);
        let officer = Phone::login(&server, "officer", PASSWORD);

        // E0102 暴露垃圾 twice, ~21 m apart, from two callers.
        let mut first = call("E0102", position.lon, position.lat, "12319-A");
        first["caller"]["phone"] = json!("13800000001");
        let (status, first) = post(&server, Some(&hotline), "/v1/cases", &first);
        assert_eq!(status, 201, "{backend}: {first}");
        assert_eq!(first["possible_duplicates"], json!([]));
        let first_id = first["id"].as_str().expect("id").to_owned();
        let mut second = call(
            "E0102",
            position.lon + 0.0002,
            position.lat + 0.0001,
            "12319-B",
        );
        second["caller"]["phone"] = json!("13800000002");
        let (status, second) = post(&server, Some(&hotline), "/v1/cases", &second);
        assert_eq!(status, 201, "{backend}: {second}");
        let second_id = second["id"].as_str().expect("id").to_owned();
        let suggested = second["possible_duplicates"].as_array().expect("list");
        assert_eq!(suggested.len(), 1, "{backend}: {second}");
        assert_eq!(suggested[0]["id"], json!(first_id));
        let distance = suggested[0]["distance_m"].as_f64().expect("distance");
        assert!((15.0..30.0).contains(&distance), "{distance}");
        // Another category at the same place is not a duplicate.
        let (status, other) = post(
            &server,
            Some(&hotline),
            "/v1/cases",
            &call("E0201", position.lon, position.lat, "12319-C"),
        );
        assert_eq!(status, 201, "{other}");
        assert_eq!(other["possible_duplicates"], json!([]));

        // The acceptor's page of the first case suggests the second; a field
        // worker's does not, and shows no callers.
        let (_, page) = acceptor.get(&server, &format!("/v1/cases/{first_id}"));
        let ids: Vec<&str> = page["possible_duplicates"]
            .as_array()
            .expect("suggestions")
            .iter()
            .filter_map(|d| d["id"].as_str())
            .collect();
        assert_eq!(ids, vec![second_id.as_str()], "{backend}: {page}");
        let (_, page) = officer.get(&server, &format!("/v1/cases/{first_id}"));
        assert_eq!(page.get("possible_duplicates"), None);
        assert_eq!(page.get("callers"), None);

        // Merged: the second is voided as a duplicate of the first, by the acceptor
        // (a field worker may not void; nonsense links are refused).
        let path = format!("/v1/cases/{second_id}/actions");
        let refused = [
            (
                &acceptor,
                json!({ "action": "void", "duplicate_of": second_id }),
                400,
            ),
            (
                &acceptor,
                json!({ "action": "comment", "duplicate_of": first_id }),
                400,
            ),
            (
                &acceptor,
                json!({ "action": "void", "duplicate_of": "no-such-case" }),
                404,
            ),
            (
                &officer,
                json!({ "action": "void", "duplicate_of": first_id }),
                409,
            ),
        ];
        for (who, body, expected) in refused {
            let (status, answer) = post(&server, Some(who), &path, &body);
            assert_eq!(status, expected, "{backend}: {body} → {answer}");
        }
        let (_, page) = acceptor.get(&server, &format!("/v1/cases/{second_id}"));
        assert_eq!(
            page["case"]["status"], "reported",
            "refused links change nothing"
        );
        assert_eq!(page["duplicate_of"], Value::Null);
        let (status, body) = post(
            &server,
            Some(&acceptor),
            &path,
            &json!({ "action": "void", "duplicate_of": first_id }),
        );
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body["case"]["status"], "voided");

        let (_, survivor) = hotline.get(&server, &format!("/v1/cases/{first_id}"));
        assert_eq!(survivor["duplicates"], json!([second_id]), "{backend}");
        let phones: Vec<&str> = survivor["callers"]
            .as_array()
            .expect("callers")
            .iter()
            .filter_map(|c| c["phone"].as_str())
            .collect();
        assert_eq!(phones, vec!["13800000001", "13800000002"], "{backend}");
        assert_eq!(
            survivor
                .get("possible_duplicates")
                .map(|d| d.as_array().map(Vec::len)),
            Some(Some(0))
        );
        let (_, merged) = hotline.get(&server, &format!("/v1/cases/{second_id}"));
        assert_eq!(merged["duplicate_of"], json!(first_id));
        let note = merged["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .find(|e| e["action"] == "void")
            .and_then(|e| e["note"].as_str())
            .expect("void note")
            .to_owned();
        assert!(note.contains(&first_id), "{note}");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
