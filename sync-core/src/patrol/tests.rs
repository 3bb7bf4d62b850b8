use automerge::{ObjType, ROOT, transaction::Transactable};
use chrono::{NaiveDate, TimeZone, Utc};

use super::*;
use crate::catalog::TeamId;

fn actor(n: u32, role: Role, team: Option<&str>, scope: &str) -> Actor {
    Actor {
        user: format!("u{n}"),
        role,
        team: team.map(|t| TeamId::new(t).unwrap()),
        scope: scope.parse().unwrap(),
        device: format!("{n:032x}"),
    }
}

fn worker() -> Actor {
    actor(
        1,
        Role::EnforcementOfficer,
        Some("enforcement"),
        "410102001001",
    )
}

fn leader() -> Actor {
    actor(2, Role::GridLeader, None, "410102001001")
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 0, 30, 0).unwrap() + chrono::TimeDelta::minutes(minutes)
}

fn check_in(n: i64) -> CheckIn {
    CheckIn {
        id: format!("c{n}"),
        at: at(n * 20),
        position: Position {
            lon: 113.66 + n as f64 * 0.001,
            lat: 34.75,
            accuracy_m: Some(6.0),
        },
        grid: Some("410102001001001".parse().unwrap()),
        note: (n == 0).then(|| "人行道畅通".to_owned()),
    }
}

fn points(from: i64, count: i64) -> Vec<TrackPoint> {
    (from..from + count)
        .map(|i| TrackPoint {
            at_ms: at(i).timestamp_millis(),
            lon: 113.66 + i as f64 * 1e-4,
            lat: 34.75,
            accuracy_m: Some(5.0),
        })
        .collect()
}

fn review(by: &Actor, id: &str, verdict: Verdict) -> Review {
    Review {
        id: id.into(),
        at: at(600),
        reviewer: by.clone(),
        verdict,
        comment: Some("巡查到位".into()),
    }
}

#[test]
fn a_rejection_says_why() {
    let mut log = walked();
    for comment in [None, Some("  ".to_owned())] {
        let silent = Review {
            comment,
            ..review(&leader(), "r0", Verdict::Reject)
        };
        assert!(matches!(log.review(&silent), Err(PatrolError::Invalid(_))));
    }
    assert!(log.read().reviews.is_empty());
    let approve = Review {
        comment: None,
        ..review(&leader(), "r1", Verdict::Approve)
    };
    log.review(&approve).expect("an approval needs no comment");
}

fn walked() -> PatrolLog {
    let w = worker();
    let mut log = PatrolLog::create(&w, day()).unwrap();
    log.check_in(&w, &check_in(0)).unwrap();
    log.record_track(&w, &points(0, 30)).unwrap();
    log.check_in(&w, &check_in(1)).unwrap();
    log.record_track(&w, &points(30, 30)).unwrap();
    log.add_case_found(&w, "case-1").unwrap();
    log
}

#[test]
fn a_days_walk_reads_back_whole() {
    let log = walked();
    let record = log.read();
    assert_eq!(record.id.as_deref(), Some("patrol:u1:2026-11-27"));
    assert_eq!(record.worker.as_deref(), Some("u1"));
    assert_eq!(record.role, Some(Role::EnforcementOfficer));
    assert_eq!(record.team.as_deref(), Some("enforcement"));
    assert_eq!(record.date, Some(day()));
    assert_eq!(record.checkins, [check_in(0), check_in(1)]);
    assert_eq!(record.track, points(0, 60));
    assert_eq!(record.cases_found, ["case-1"]);
    assert!(record.problems.is_empty(), "{:?}", record.problems);
    let loaded = PatrolLog::load(&log.save()).unwrap();
    assert_eq!(loaded.read(), record);
}

#[test]
fn a_review_written_while_the_worker_walks_on_reaches_the_phone() {
    let phone = walked();
    let mut server = phone.clone();
    let mut phone = phone;
    server
        .review(&review(&leader(), "r1", Verdict::Reject))
        .unwrap();
    server
        .review(&review(&leader(), "r2", Verdict::Comment))
        .unwrap();
    phone.check_in(&worker(), &check_in(2)).unwrap();
    let mut merged_on_server = server.clone();
    merged_on_server.merge(&phone).unwrap();
    phone.merge(&server).unwrap();
    let record = phone.read();
    assert_eq!(record, merged_on_server.read());
    assert_eq!(record.checkins.len(), 3);
    assert_eq!(record.reviews.len(), 2);
    assert_eq!(record.verdict().unwrap().verdict, Verdict::Reject);
}

fn attempt(
    log: &PatrolLog,
    writer: &Actor,
    edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Result<(), WriteRefused> {
    let base = log.automerge();
    let mut fork = base.fork().with_actor(actor_id(&writer.device).unwrap());
    fork.transact::<_, _, automerge::AutomergeError>(|tx| {
        edit(tx);
        Ok(())
    })
    .unwrap();
    let changes: Vec<_> = fork.get_changes(&base.get_heads()).into_iter().collect();
    check_patrol_changes(base, &changes, writer).map(drop)
}

fn list(log: &PatrolLog, name: &str) -> ObjId {
    object_at(log.automerge(), name, &log.automerge().get_heads()).unwrap()
}

fn kinds(result: Result<(), WriteRefused>) -> Vec<ViolationKind> {
    result
        .unwrap_err()
        .violations
        .into_iter()
        .map(|v| v.kind)
        .collect()
}

#[test]
fn only_the_worker_appends_and_only_reviewers_review() {
    let log = walked();
    let other = actor(
        3,
        Role::SanitationWorker,
        Some("sanitation"),
        "410102001001",
    );
    let mut other_log = log.clone();
    assert!(matches!(
        other_log.check_in(&other, &check_in(5)),
        Err(PatrolError::WriteRefused(_))
    ));
    assert!(matches!(
        log.clone()
            .review(&review(&worker(), "r", Verdict::Approve)),
        Err(PatrolError::WriteRefused(_))
    ));
    let dispatcher = actor(4, Role::Dispatcher, None, "410102");
    assert!(
        log.clone()
            .review(&review(&dispatcher, "r", Verdict::Approve))
            .is_err()
    );
    assert!(
        log.clone()
            .review(&review(&leader(), "r", Verdict::Approve))
            .is_ok()
    );
}

#[test]
fn nothing_in_a_patrol_log_is_edited_or_deleted() {
    let log = {
        let mut log = walked();
        log.review(&review(&leader(), "r1", Verdict::Approve))
            .unwrap();
        log
    };
    let checkins = list(&log, key::CHECKINS);
    let reviews_list = list(&log, key::REVIEWS);
    let track = list(&log, key::TRACK);
    let w = worker();
    assert_eq!(
        kinds(attempt(&log, &w, |tx| tx.delete(&checkins, 0).unwrap())),
        [ViolationKind::AppendOnly]
    );
    assert_eq!(
        kinds(attempt(&log, &w, |tx| tx.delete(&track, 1).unwrap())),
        [ViolationKind::AppendOnly]
    );
    let refused = attempt(&log, &leader(), |tx| {
        let (_, first) = tx.get(&checkins, 0).unwrap().unwrap();
        tx.put(&first, "note", "改了").unwrap();
    });
    assert_eq!(
        refused.as_ref().unwrap_err().violations[0].path,
        "checkins/0/note"
    );
    assert_eq!(kinds(refused), [ViolationKind::AppendOnly]);
    assert_eq!(
        kinds(attempt(&log, &w, |tx| {
            let (_, first) = tx.get(&reviews_list, 0).unwrap().unwrap();
            tx.put(&first, "verdict", "reject").unwrap();
        })),
        [ViolationKind::AppendOnly]
    );
    assert_eq!(
        kinds(attempt(&log, &w, |tx| tx
            .put(ROOT, key::DATE, "2026-11-26")
            .unwrap())),
        [ViolationKind::Immutable]
    );
    assert_eq!(
        kinds(attempt(&log, &w, |tx| tx
            .put(ROOT, "mood", "good")
            .unwrap())),
        [ViolationKind::UnknownField]
    );
    // Inserted before the existing check-ins.
    assert_eq!(
        kinds(attempt(&log, &w, |tx| {
            let item = tx.insert_object(&checkins, 0, ObjType::Map).unwrap();
            tx.put(&item, "id", "early").unwrap();
        })),
        [ViolationKind::AppendOnly]
    );
}

#[test]
fn new_items_must_be_readable_and_reviews_must_claim_their_writer() {
    let log = walked();
    let w = worker();
    let track = list(&log, key::TRACK);
    let checkins = list(&log, key::CHECKINS);
    let reviews_list = list(&log, key::REVIEWS);
    assert!(matches!(
        kinds(attempt(&log, &w, |tx| {
            tx.insert(&track, 2, ScalarValue::Bytes(vec![0xff, 0x00, 0x13]))
                .unwrap();
        }))[..],
        [ViolationKind::Malformed(_)]
    ));
    assert!(matches!(
        kinds(attempt(&log, &w, |tx| {
            let item = tx.insert_object(&checkins, 2, ObjType::Map).unwrap();
            tx.put(&item, "id", "c9").unwrap();
            tx.put(&item, "at", "noon").unwrap();
        }))[..],
        [ViolationKind::Malformed(_)]
    ));
    let mut claimed = review(&leader(), "r9", Verdict::Approve);
    claimed.reviewer.user = "u99".into();
    let stored = StoredReview::from_review(&claimed);
    assert_eq!(
        kinds(attempt(&log, &leader(), |tx| {
            autosurgeon::reconcile_insert(tx, reviews_list.clone(), 0, &stored).unwrap();
        })),
        [ViolationKind::ClaimMismatch { field: "user" }]
    );
}

#[test]
fn a_log_is_created_by_its_own_field_worker() {
    let dispatcher = actor(4, Role::Dispatcher, None, "410102");
    assert!(matches!(
        PatrolLog::create(&dispatcher, day()),
        Err(PatrolError::WriteRefused(_))
    ));
    // A log whose worker field names someone else than the device's user.
    let w = worker();
    let mut doc = Automerge::new().with_actor(actor_id(&w.device).unwrap());
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, key::ID, "patrol:u7:2026-11-27")?;
        tx.put(ROOT, key::WORKER, "u7")?;
        tx.put(ROOT, key::ROLE, w.role.as_str())?;
        tx.put(ROOT, key::TEAM, "enforcement")?;
        Ok(())
    })
    .unwrap();
    let changes: Vec<_> = doc.get_changes(&[]).into_iter().collect();
    let refused = check_patrol_changes(&Automerge::new(), &changes, &w).unwrap_err();
    assert_eq!(refused.doc, "patrol:u7:2026-11-27");
    assert_eq!(
        refused.violations[0].kind,
        ViolationKind::ClaimMismatch { field: "worker" }
    );
}

#[test]
fn a_damaged_log_still_reads() {
    let w = worker();
    let mut doc = Automerge::new().with_actor(actor_id(&w.device).unwrap());
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, key::ID, "patrol:u1:2026-11-27")?;
        tx.put(ROOT, key::DATE, "27/11/2026")?;
        tx.put(ROOT, key::ROLE, "astronaut")?;
        tx.put(ROOT, "weather", "sunny")?;
        let track = tx.put_object(ROOT, key::TRACK, ObjType::List)?;
        tx.insert(&track, 0, ScalarValue::Bytes(encode_batch(&points(0, 3))))?;
        tx.insert(&track, 1, ScalarValue::Bytes(b"garbage".to_vec()))?;
        tx.insert(&track, 2, "not bytes")?;
        tx.put(ROOT, key::CHECKINS, 42)?;
        Ok(())
    })
    .unwrap();
    let record = PatrolLog::from_automerge(doc).read();
    assert_eq!(record.track, points(0, 3));
    let paths: Vec<&str> = record.problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "date", "role", "weather", "track/1", "track/2", "checkins", "reviews",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    assert!(PatrolLog::load(b"\x00\x01garbage").is_err());
}

#[test]
fn track_batches_are_bounded_and_checked() {
    let w = worker();
    let mut log = PatrolLog::create(&w, day()).unwrap();
    let too_many = points(0, i64::try_from(MAX_TRACK_BATCH).unwrap() + 1);
    assert!(matches!(
        log.record_track(&w, &too_many),
        Err(PatrolError::Invalid(_))
    ));
    let mut bad = points(0, 2);
    bad[1].lat = 123.0;
    assert!(log.record_track(&w, &bad).is_err());
    log.record_track(&w, &[]).unwrap();
    assert!(log.read().track.is_empty());
}

#[test]
fn notes_and_comments_are_bounded() {
    let w = worker();
    let mut log = PatrolLog::create(&w, day()).unwrap();
    let mut long = check_in(0);
    long.note = Some("长".repeat(MAX_NOTE_CHARS + 1));
    assert!(matches!(
        log.check_in(&w, &long),
        Err(PatrolError::Invalid(_))
    ));
    let mut comment = review(&leader(), "r", Verdict::Comment);
    comment.comment = Some("长".repeat(MAX_NOTE_CHARS + 1));
    assert!(matches!(log.review(&comment), Err(PatrolError::Invalid(_))));
    // Written around the typed API, the write rules refuse it.
    let checkins = list(&log, key::CHECKINS);
    let stored = StoredCheckIn::from_check_in(&long);
    assert!(matches!(
        kinds(attempt(&log, &w, |tx| {
            autosurgeon::reconcile_insert(tx, checkins.clone(), 0, &stored).unwrap();
        }))[..],
        [ViolationKind::Malformed(_)]
    ));
    assert!(log.read().checkins.is_empty());
}

#[test]
fn two_phones_that_each_start_the_days_log_offline_lose_no_check_in() {
    // The same worker on two devices (a second phone, or one wiped and logged in
    // again), each starting the day's log before either synced.
    let first = worker();
    let mut second = worker();
    second.device = format!("{:032x}", 99);
    let mut a = PatrolLog::create(&first, day()).unwrap();
    a.check_in(&first, &check_in(0)).unwrap();
    let mut b = PatrolLog::create(&second, day()).unwrap();
    b.check_in(&second, &check_in(1)).unwrap();
    b.record_track(&second, &points(0, 5)).unwrap();
    b.add_case_found(&second, "case-9").unwrap();

    // The server takes B's changes onto A's log under the same write rules.
    let changes: Vec<_> = b.automerge().get_changes(&[]).into_iter().collect();
    let merged = check_patrol_changes(a.automerge(), &changes, &second).expect("accepted");
    let mut log = PatrolLog::from_automerge(merged);
    let record = log.read();
    let mut ids: Vec<&str> = record.checkins.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["c0", "c1"]);
    assert_eq!(record.track, points(0, 5));
    assert_eq!(record.cases_found, ["case-9"]);
    assert!(record.problems.is_empty(), "{:?}", record.problems);

    // Either phone appends on; every replica reads the same.
    log.check_in(&first, &check_in(2)).unwrap();
    let mut on_b = b.clone();
    on_b.merge(&log).unwrap();
    assert_eq!(on_b.read().checkins.len(), 3);
    assert_eq!(on_b.read(), log.read());

    // Which device wrote what, for the supervisor (the unregistered-device check).
    let writers = on_b.writers();
    let mut check_ins = writers.check_ins.clone();
    check_ins.sort();
    assert_eq!(
        check_ins,
        [
            ("c0".to_owned(), first.device.clone()),
            ("c1".to_owned(), second.device.clone()),
            ("c2".to_owned(), first.device.clone()),
        ]
    );
    assert_eq!(writers.track_batches, [second.device.clone()]);
    assert_eq!(
        writers.actors(),
        [first.device.as_str(), second.device.as_str()]
    );
}

#[test]
fn a_log_belongs_to_the_beijing_date() {
    // 23:30 UTC is 07:30 the next morning in Zhengzhou.
    let late = Utc.with_ymd_and_hms(2026, 11, 26, 23, 30, 0).unwrap();
    assert_eq!(patrol_date(late), day());
    assert_eq!(
        patrol_date(late - chrono::TimeDelta::hours(8)),
        day().pred_opt().unwrap()
    );
}
