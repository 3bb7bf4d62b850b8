//! Case document benchmarks: fold a case of 50 timeline entries, merge two replicas of
//! a case that were edited offline, load a saved case, and (reported once) the live heap
//! of a loaded case (counting allocator) and the bytes of a saved one.
//!
//! Every case is built through the public API only, each action by the role that may
//! take it (the cast of `src/case/tests.rs`), each actor writing from its own device,
//! with UUID-v7-like entry ids and random SHA-256 photo hashes, so that the sizes are
//! those of a real case. The once-off numbers are printed and written to
//! `bench-data/case/results.txt` under `$CARGO_TARGET_DIR` (default `target/`). Run with
//! `cargo bench -p wangge-sync-core --bench case_document`.

#![allow(unsafe_code)] // the counting allocator below

use std::hint::black_box;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::{
    Action, CaseDocument, NewCase, Photo, PhotoRole, Position, Source, Status, WorkflowContext,
};
use wangge_sync_core::catalog::{Catalog, TeamId, TimeLimit};
use wangge_sync_core::role::{Actor, Role};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, live_bytes};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The anchor: a loaded case document in automerge 0.12, about 21 KiB.
const ANCHOR_BYTES: usize = 21 * 1024;

const GRID: &str = "410102001001001";
const STREET: &str = "410102001";
const DISTRICT: &str = "410102";

#[path = "support/rng.rs"]
mod rng;

use rng::{Rng, results_dir};

/// Monday 2026-11-23 09:00 Beijing time plus `minutes`.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0)
        .single()
        .expect("a valid time")
        + TimeDelta::minutes(minutes)
}

/// One person of the cast, with a random 16-byte device id of their own.
fn actor(rng: &mut Rng, user: &str, role: Role, team: Option<&str>, scope: &str) -> Actor {
    Actor {
        user: user.to_owned(),
        role,
        team: team.map(|t| TeamId::new(t).expect("team id")),
        scope: scope.parse().expect("grid scope"),
        device: rng.hex(32),
    }
}

/// Who works on the case: one of each role, in the street of [`GRID`].
struct Cast {
    officer: Actor,
    sanitation: Actor,
    sanitation2: Actor,
    supervisor: Actor,
    acceptor: Actor,
    shift_lead: Actor,
    dispatcher: Actor,
    district_supervisor: Actor,
    hotline: Actor,
}

fn cast(rng: &mut Rng) -> Cast {
    let community = &GRID[..12];
    Cast {
        officer: actor(
            rng,
            "zz0100231",
            Role::EnforcementOfficer,
            Some("enforcement"),
            community,
        ),
        sanitation: actor(
            rng,
            "zz0300417",
            Role::SanitationWorker,
            Some("sanitation"),
            community,
        ),
        sanitation2: actor(
            rng,
            "zz0300422",
            Role::SanitationWorker,
            Some("sanitation"),
            community,
        ),
        supervisor: actor(
            rng,
            "zz0500108",
            Role::InformationSupervisor,
            None,
            community,
        ),
        acceptor: actor(rng, "zz0900012", Role::Acceptor, None, STREET),
        shift_lead: actor(rng, "zz0900003", Role::ShiftLead, None, STREET),
        dispatcher: actor(rng, "zz0900027", Role::Dispatcher, None, STREET),
        district_supervisor: actor(rng, "zz0010002", Role::DistrictSupervisor, None, DISTRICT),
        hotline: actor(rng, "zz1231905", Role::HotlineOperator, None, "*"),
    }
}

/// One timeline action to take, with a note.
struct Step<'a> {
    who: &'a Actor,
    action: Action,
    note: Option<&'static str>,
}

fn step<'a>(who: &'a Actor, action: Action, note: Option<&'static str>) -> Step<'a> {
    Step { who, action, note }
}

fn dispatch(team: &str, assignee: Option<&Actor>) -> Action {
    Action::Dispatch {
        team: TeamId::new(team).expect("team id"),
        assignee: assignee.map(|a| a.user.clone()),
    }
}

/// The 49 actions after the report of a case of exposed garbage (暴露垃圾) that
/// takes a wrong dispatch, an extension, a refused defer and twelve rework rounds
/// before it is verified and closed: every one valid when taken in this order.
fn script(c: &Cast) -> Vec<Step<'_>> {
    let mut s = vec![
        step(&c.acceptor, Action::Accept, None),
        step(&c.shift_lead, Action::Register, None),
        step(&c.dispatcher, dispatch("enforcement", None), None),
        step(&c.officer, Action::Return, Some("属环卫清运，非执法事项")),
        step(
            &c.dispatcher,
            dispatch("sanitation", Some(&c.sanitation)),
            None,
        ),
        step(&c.sanitation, Action::Comment, Some("已到现场，垃圾约两车")),
        step(
            &c.sanitation,
            Action::RequestExtension {
                extra: TimeLimit::working_days(2),
            },
            Some("需调派清运车辆"),
        ),
        step(
            &c.dispatcher,
            Action::DecideExtension { approved: true },
            None,
        ),
        step(&c.sanitation, Action::Handle, Some("已清运")),
    ];
    let commenters = [
        &c.dispatcher,
        &c.shift_lead,
        &c.district_supervisor,
        &c.hotline,
        &c.acceptor,
    ];
    for round in 0..12 {
        s.push(step(
            &c.supervisor,
            Action::Rework,
            Some("现场仍有残留垃圾"),
        ));
        s.push(step(
            commenters[round % commenters.len()],
            Action::Comment,
            Some("请尽快处理，市民再次来电"),
        ));
        if round == 3 {
            s.push(step(
                &c.sanitation,
                Action::RequestDefer,
                Some("待拆违后清运"),
            ));
            s.push(step(
                &c.dispatcher,
                Action::DecideDefer { approved: false },
                Some("不予挂账"),
            ));
        }
        let handler = if round % 2 == 0 {
            &c.sanitation2
        } else {
            &c.sanitation
        };
        s.push(step(handler, Action::Handle, Some("已再次清理")));
    }
    s.push(step(&c.supervisor, Action::Verify, None));
    s.push(step(&c.shift_lead, Action::Close, None));
    s
}

fn new_case(rng: &mut Rng) -> NewCase {
    NewCase {
        id: rng.uuid_v7(at(0)),
        category: "E0102".parse().expect("category"),
        location: Position {
            lon: 113.665_412,
            lat: 34.757_981,
            accuracy_m: Some(8.0),
        },
        grid: Some(GRID.parse().expect("grid code")),
        address: "金水路与花园路交叉口东北角".into(),
        description: "路边暴露垃圾一堆，约两车，影响通行".into(),
        source: Source::Patrol,
        source_ref: None,
        caller: None,
    }
}

fn photo(rng: &mut Rng, by: &Actor, role: PhotoRole, minutes: i64) -> Photo {
    Photo {
        hash: rng.hex(64),
        role,
        taken_at: Some(at(minutes) - TimeDelta::seconds(40)),
        position: Some(Position {
            lon: 113.665_398,
            lat: 34.757_962,
            accuracy_m: Some(5.0),
        }),
        added_by: by.user.clone(),
        added_at: at(minutes),
    }
}

/// The case after its report and the first `actions` of [`script`], one change each,
/// ten minutes apart; with `photos`, five photos where people would take them.
fn build(
    rng: &mut Rng,
    c: &Cast,
    context: &WorkflowContext<'_>,
    actions: usize,
    photos: bool,
) -> CaseDocument {
    let mut case = CaseDocument::create(&new_case(rng), &c.officer, &rng.uuid_v7(at(0)), at(0))
        .expect("create the case");
    if photos {
        for _ in 0..2 {
            let before = photo(rng, &c.officer, PhotoRole::Before, 1);
            case.add_photo(&c.officer, &before).expect("add a photo");
        }
    }
    for (n, step) in script(c).into_iter().take(actions).enumerate() {
        let minutes = 10 * (n as i64 + 1);
        let id = rng.uuid_v7(at(minutes));
        case.act(
            context,
            step.who,
            &id,
            step.action,
            at(minutes),
            step.note.map(Into::into),
        )
        .unwrap_or_else(|e| panic!("action {} by {}: {e}", n + 1, step.who.role));
        if photos {
            // After photos with the first two handles, one of the supervisor's
            // with the first rework (the two before photos came with the report).
            let taken = match n {
                8 => Some((&c.sanitation, PhotoRole::After)),
                9 => Some((&c.supervisor, PhotoRole::Other)),
                11 => Some((&c.sanitation2, PhotoRole::After)),
                _ => None,
            };
            if let Some((who, role)) = taken {
                case.add_photo(who, &photo(rng, who, role, minutes + 1))
                    .expect("add a photo");
            }
        }
    }
    case
}

/// Two replicas forked from the first 30 entries: the field (supervisor and the
/// sanitation workers, offline) reworks, handles and verifies; the command centre
/// comments meanwhile. Each adds 10 entries.
fn replicas(
    rng: &mut Rng,
    c: &Cast,
    context: &WorkflowContext<'_>,
) -> (CaseDocument, CaseDocument) {
    let base = build(rng, c, context, 29, false);
    assert_eq!(base.fold(context).status, Some(Status::Handled));
    let mut field = base.clone();
    let mut centre = base;
    let field_steps = [
        step(&c.supervisor, Action::Rework, Some("路沿仍有渣土")),
        step(&c.sanitation, Action::Comment, Some("收到，马上处理")),
        step(&c.sanitation, Action::Handle, Some("渣土已清")),
        step(&c.supervisor, Action::Rework, Some("绿化带内仍有塑料袋")),
        step(&c.sanitation2, Action::Comment, Some("正在清理")),
        step(&c.sanitation2, Action::Handle, Some("已清理干净")),
        step(&c.supervisor, Action::Comment, Some("已拍照留存")),
        step(&c.supervisor, Action::Verify, None),
        step(&c.sanitation, Action::Comment, Some("已撤离现场")),
        step(&c.supervisor, Action::Comment, Some("建议增加巡查频次")),
    ];
    let centre_steps = [
        &c.dispatcher,
        &c.shift_lead,
        &c.district_supervisor,
        &c.hotline,
        &c.acceptor,
        &c.dispatcher,
        &c.hotline,
        &c.shift_lead,
        &c.district_supervisor,
        &c.dispatcher,
    ]
    .map(|who| step(who, Action::Comment, Some("市民来电催办，请现场尽快处理")));
    for (replica, steps, start) in [
        (&mut field, field_steps, 400),
        (&mut centre, centre_steps, 405),
    ] {
        for (n, step) in steps.into_iter().enumerate() {
            let minutes = start + 10 * n as i64;
            let id = rng.uuid_v7(at(minutes));
            replica
                .act(
                    context,
                    step.who,
                    &id,
                    step.action,
                    at(minutes),
                    step.note.map(Into::into),
                )
                .unwrap_or_else(|e| panic!("offline action {} by {}: {e}", n + 1, step.who.role));
        }
    }
    (field, centre)
}

/// Live heap bytes retained by `make()`'s result.
fn retained<T>(make: impl FnOnce() -> T) -> (T, usize) {
    let before = live_bytes();
    let value = make();
    let after = live_bytes();
    (value, after.saturating_sub(before))
}

fn kib(bytes: usize) -> String {
    format!("{bytes} B ({:.1} KiB)", bytes as f64 / 1024.0)
}

fn benches(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let calendar = WorkCalendar::standard();
    let context = WorkflowContext {
        catalog,
        calendar: &calendar,
    };
    let mut rng = Rng(20_261_127);
    let people = cast(&mut rng);

    let case50 = build(&mut rng, &people, &context, 49, false);
    let view = case50.fold(&context);
    assert_eq!(view.entries.len(), 50);
    assert_eq!(
        view.ignored().count(),
        0,
        "every action of the script applies"
    );
    assert_eq!(view.status, Some(Status::Closed));
    assert_eq!(view.counts.reworks, 12);

    let photos = build(&mut rng, &people, &context, 19, true);
    let view = photos.fold(&context);
    assert_eq!((view.entries.len(), view.record.photos.len()), (20, 5));
    assert_eq!(view.ignored().count(), 0);
    // The same 20 entries without the photos, to see what the photos cost.
    let plain20 = build(&mut rng, &people, &context, 19, false);

    let (field, centre) = replicas(&mut rng, &people, &context);
    let mut merged = centre.clone();
    merged.merge(&field).expect("merge");
    let view = merged.fold(&context);
    assert_eq!(view.entries.len(), 50);
    assert_eq!(view.ignored().count(), 0, "concurrent comments never clash");
    assert_eq!(view.status, Some(Status::Verified));

    // Once-off numbers: sizes and live heap.
    let bytes50 = case50.save();
    let bytes_photos = photos.save();
    let (loaded50, heap50) = retained(|| CaseDocument::load(&bytes50).expect("load"));
    let (loaded_photos, heap_photos) =
        retained(|| CaseDocument::load(&bytes_photos).expect("load"));
    let bytes_plain20 = plain20.save();
    let (loaded_plain20, heap_plain20) =
        retained(|| CaseDocument::load(&bytes_plain20).expect("load"));
    let (edited50, heap_edited50) = retained(|| case50.clone());
    let (reloaded50, heap_reloaded50) = retained(|| loaded50.clone());
    assert_eq!(loaded50.fold(&context).entries.len(), 50);
    assert_eq!(loaded_photos.read().photos.len(), 5);
    drop((loaded_photos, loaded_plain20, edited50, reloaded50));
    let changes = |case: &CaseDocument| {
        let changes = case.automerge().get_changes(&[]);
        let raw: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
        (changes.len(), raw)
    };
    let (changes50, raw50) = changes(&case50);
    let (changes_photos, raw_photos) = changes(&photos);
    let ratio = |heap: usize| heap as f64 / ANCHOR_BYTES as f64;
    let report = [
        format!(
            "live heap, loaded 50-entry case: {} = {:.2}x the 21 KiB anchor",
            kib(heap50),
            ratio(heap50)
        ),
        format!(
            "live heap, loaded case with 5 photos + 20 entries: {} = {:.2}x the anchor",
            kib(heap_photos),
            ratio(heap_photos)
        ),
        format!(
            "live heap, loaded case of the same 20 entries without photos: {}",
            kib(heap_plain20)
        ),
        format!(
            "live heap, clone of the 50-entry replica as edited: {}",
            kib(heap_edited50)
        ),
        format!(
            "live heap, clone of the loaded 50-entry case: {}",
            kib(heap_reloaded50)
        ),
        format!("saved, 50-entry case: {}", kib(bytes50.len())),
        format!("saved, 5 photos + 20 entries: {}", kib(bytes_photos.len())),
        format!(
            "saved, the same 20 entries without photos: {}",
            kib(bytes_plain20.len())
        ),
        format!(
            "saved uncompressed (save_nocompress), 50 entries / 5 photos + 20: {} / {}",
            kib(case50.automerge().save_nocompress().len()),
            kib(photos.automerge().save_nocompress().len())
        ),
        format!(
            "changes, 50-entry case: {changes50} changes, {} raw; saved/raw {:.2}",
            kib(raw50),
            bytes50.len() as f64 / raw50 as f64
        ),
        format!(
            "changes, 5 photos + 20 entries: {changes_photos} changes, {} raw; saved/raw {:.2}",
            kib(raw_photos),
            bytes_photos.len() as f64 / raw_photos as f64
        ),
    ]
    .join("\n");
    eprintln!("case document:\n{report}");
    std::fs::create_dir_all(results_dir("case")).expect("results dir");
    std::fs::write(
        results_dir("case").join("results.txt"),
        format!("{report}\n"),
    )
    .expect("results");

    let mut group = c.benchmark_group("fold");
    group.bench_function("50_entries", |b| {
        b.iter(|| black_box(&case50).fold(black_box(&context)))
    });
    group.bench_function("50_entries_loaded", |b| {
        b.iter(|| black_box(&loaded50).fold(black_box(&context)))
    });
    group.finish();

    let mut group = c.benchmark_group("merge");
    group.bench_function("two_replicas", |b| {
        b.iter_batched(
            || centre.clone(),
            |mut replica| {
                replica.merge(black_box(&field)).expect("merge");
                replica
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("two_replicas_then_fold", |b| {
        b.iter_batched(
            || centre.clone(),
            |mut replica| {
                replica.merge(black_box(&field)).expect("merge");
                let view = replica.fold(&context);
                (replica, view)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("load");
    group.bench_function("50_entries", |b| {
        b.iter(|| CaseDocument::load(black_box(&bytes50)).expect("load"))
    });
    group.finish();

    let mut group = c.benchmark_group("save");
    group.bench_function("50_entries", |b| b.iter(|| black_box(&case50).save()));
    group.finish();
}

criterion_group!(case_document, benches);
criterion_main!(case_document);
