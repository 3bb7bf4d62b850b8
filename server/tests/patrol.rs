//! Patrol logs in the store, on SQLite and on PostgreSQL: a log that reached the store
//! with check-ins by a device not registered to its worker (which sync refuses) is
//! flagged once, naming the device and its first check-in.

mod common;

use automerge::ChangeHash;
use wangge_server::store::{Device, User};
use wangge_sync_core::document::Position;
use wangge_sync_core::patrol::{CheckIn, PatrolLog, patrol_log_id};
use wangge_sync_core::role::Role;
use wangge_sync_core::sync::server::DocWrite;
use wangge_sync_core::sync::{DocKind, DocMeta};

use common::{actor, at, backends, case_rules};

fn check_in(id: &str, minutes: i64) -> CheckIn {
    CheckIn {
        id: id.into(),
        at: at(minutes),
        position: Position {
            lon: 113.66,
            lat: 34.75,
            accuracy_m: Some(8.0),
        },
        grid: None,
        note: None,
    }
}

#[tokio::test]
async fn a_log_written_by_a_device_not_registered_to_its_worker_is_flagged_once() {
    let worker = actor(
        1,
        Role::EnforcementOfficer,
        Some("enforcement"),
        "410102001001",
    );
    let mut stranger = worker.clone();
    stranger.device = format!("{:032x}", 77);
    let day = at(0).date_naive();
    let id = patrol_log_id(&worker.user, day);
    let mut log = PatrolLog::create(&worker, day).expect("log");
    log.check_in(&worker, &check_in("mine", 0))
        .expect("check-in");
    log.check_in(&stranger, &check_in("theirs", 5))
        .expect("written locally, as a tampered store could hold it");
    let rules = case_rules();
    for fresh in backends().await {
        let store = &fresh.store;
        store
            .create_user(&User {
                id: worker.user.clone(),
                display_name: "巡查员".into(),
                role: worker.role,
                team: worker.team.clone(),
                scope: worker.scope.clone(),
                password_hash: "x".into(),
                created_at: 0,
                disabled: false,
            })
            .await
            .expect("user");
        store
            .create_device(&Device {
                id: "device-1".into(),
                user_id: worker.user.clone(),
                name: "Redmi 12".into(),
                actor_id: worker.device.clone(),
                created_at: 0,
                last_seen_at: None,
                revoked_at: None,
            })
            .await
            .expect("device");
        let no_heads: [ChangeHash; 0] = [];
        let write = DocWrite {
            id: id.clone(),
            kind: DocKind::PatrolLog,
            changes: log
                .automerge()
                .get_changes(&no_heads)
                .iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect(),
            meta: DocMeta::of(DocKind::PatrolLog, log.automerge(), &rules.context()).1,
            heads: log.automerge().get_heads(),
            merged: None,
        };
        let derive = wangge_server::cases::Materializer {
            rules: &rules,
            now: at(60).timestamp_millis(),
            clock_skew_ms: None,
        };
        store
            .document_write(&write, None, &derive, 0)
            .await
            .expect("stored");

        let now = at(61).timestamp_millis();
        let found = wangge_server::patrol::check_writers(store.as_ref(), &id, now)
            .await
            .expect("checked");
        assert_eq!(found, 1);
        // Checked again (the next round): nothing new.
        let again = wangge_server::patrol::check_writers(store.as_ref(), &id, now)
            .await
            .expect("checked");
        assert_eq!(again, 0);
        let day_text = day.to_string();
        let anomalies = store
            .patrol_anomalies(Some(&id), None, (&day_text, &day_text), None)
            .await
            .expect("anomalies");
        let flagged: Vec<(&str, Option<&str>)> = anomalies
            .iter()
            .filter(|a| a.kind == "unregistered_device")
            .map(|a| (a.anomaly_id.as_str(), a.checkin_id.as_deref()))
            .collect();
        assert_eq!(
            flagged,
            [(
                format!("unregistered_device:{}", stranger.device).as_str(),
                Some("theirs")
            )]
        );
        // An unknown log, or one that is not a patrol log id: nothing, no error.
        let none =
            wangge_server::patrol::check_writers(store.as_ref(), "patrol:nobody:2026-11-23", now)
                .await
                .expect("checked");
        assert_eq!(none, 0);
        assert_eq!(
            wangge_server::patrol::check_writers(store.as_ref(), "case:1", now)
                .await
                .expect("checked"),
            0
        );
    }
}
