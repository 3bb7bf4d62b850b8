//! The sync protocol on the real databases: sync-core's device sessions against the
//! server's `SyncEngine` over the SQL store, on SQLite and PostgreSQL (see
//! `common::backends`). The same rounds as sync-core's in-memory tests: reports reach
//! the grid and only the grid, a lost reply is resent without duplicates, a case that
//! moves is evicted, a forged write is refused whole, a document compacts.

mod common;

use std::sync::Arc;

use common::{Fresh, actor, at, backends, case_rules, new_case};
use wangge_server::store::Store;
use wangge_server::sync::SyncEngine;
use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::{Action, CaseDocument, Position, WorkflowContext};
use wangge_sync_core::catalog::Catalog;
use wangge_sync_core::role::{Actor, Role};
use wangge_sync_core::sync::device::{DeviceSession, RoundReport};
use wangge_sync_core::sync::memory::MemoryDevice;
use wangge_sync_core::sync::message::{Limits, RefusalCode};
use wangge_sync_core::sync::{DocKind, load_chunks, sorted_heads};

struct Phone {
    actor: Actor,
    store: MemoryDevice,
    session: DeviceSession,
}

impl Phone {
    fn new(actor: Actor) -> Phone {
        let seed = u64::from_str_radix(&actor.device[16..], 16).expect("hex");
        Phone {
            actor,
            store: MemoryDevice::new(),
            session: DeviceSession::new(Limits::default(), seed),
        }
    }

    fn case(&self, id: &str) -> Option<CaseDocument> {
        let doc = self.store.documents().get(id)?;
        Some(CaseDocument::from_automerge(load_chunks(&doc.chunks).ok()?))
    }

    fn save(&mut self, id: &str, case: &CaseDocument) {
        DeviceSession::record_local(&mut self.store, id, DocKind::Case, case.automerge())
            .expect("store");
    }

    fn act(&mut self, id: &str, action: Action, minute: i64, note: Option<String>) {
        let calendar = WorkCalendar::standard();
        let context = WorkflowContext {
            catalog: Catalog::builtin(),
            calendar: &calendar,
        };
        let mut case = self.case(id).expect("case on the phone");
        let entry = format!("e-{}-{minute}", self.actor.user);
        case.act(&context, &self.actor, &entry, action, at(minute), note)
            .expect("act");
        self.save(id, &case);
    }

    /// Moves a case to a unit grid (a point in the other community of the tests).
    fn relocate(&mut self, id: &str, grid: &str) {
        let mut case = self.case(id).expect("case on the phone");
        let position = Position {
            lon: 113.67,
            lat: 34.76,
            accuracy_m: None,
        };
        case.set_location(&self.actor, position, Some(grid.parse().expect("grid")))
            .expect("move");
        self.save(id, &case);
    }

    /// One round; `None` when the reply is lost on the way back.
    async fn round(
        &mut self,
        engine: &Arc<SyncEngine>,
        store: &Arc<dyn Store>,
        lose: bool,
    ) -> Option<RoundReport> {
        let request = self.session.prepare(&mut self.store).expect("prepare");
        let (reply, _) = engine
            .round(store.clone(), self.actor.clone(), request, 0, None)
            .await
            .expect("round");
        if lose {
            self.session.abandon();
            return None;
        }
        Some(
            self.session
                .receive(&mut self.store, &reply)
                .expect("receive"),
        )
    }

    async fn sync(&mut self, engine: &Arc<SyncEngine>, store: &Arc<dyn Store>) -> RoundReport {
        for _ in 0..20 {
            let report = self.round(engine, store, false).await.expect("report");
            if !report.more {
                return report;
            }
        }
        panic!("{} does not settle", self.actor.user);
    }
}

/// The community most of these tests report in.
const COMMUNITY: &str = "410102001001";

/// An enforcement officer of [`COMMUNITY`] (user `u1`).
fn officer() -> Phone {
    Phone::new(actor(
        1,
        Role::EnforcementOfficer,
        Some("enforcement"),
        COMMUNITY,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_rounds_on_every_backend() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let engine = Arc::new(SyncEngine::new(Limits::default(), case_rules(), 4));
        let community = COMMUNITY;
        let mut officer = officer();
        let mut sanitation = Phone::new(actor(
            2,
            Role::SanitationWorker,
            Some("sanitation"),
            community,
        ));
        let mut stranger = Phone::new(actor(
            3,
            Role::SanitationWorker,
            Some("sanitation"),
            "410102001002",
        ));
        let mut supervisor = Phone::new(actor(4, Role::DistrictSupervisor, None, "410102"));

        for id in ["case-1", "case-2", "case-3"] {
            let case =
                CaseDocument::create(&new_case(id), &officer.actor, &format!("r-{id}"), at(0))
                    .expect("report");
            officer.save(id, &case);
        }
        let report = officer.sync(&engine, &store).await;
        assert_eq!(report.acknowledged, 3, "{backend:?}");
        sanitation.sync(&engine, &store).await;
        stranger.sync(&engine, &store).await;
        supervisor.sync(&engine, &store).await;
        assert_eq!(sanitation.store.documents().len(), 3, "{backend:?}");
        assert!(
            stranger.store.documents().is_empty(),
            "{backend:?}: another community"
        );
        assert_eq!(supervisor.store.documents().len(), 3, "{backend:?}");

        // A reply lost after the server committed: the comment goes again, once.
        officer.act("case-1", Action::Comment, 1, Some("再次确认".into()));
        assert!(officer.round(&engine, &store, true).await.is_none());
        officer.sync(&engine, &store).await;
        sanitation.sync(&engine, &store).await;
        let view = sanitation
            .case("case-1")
            .expect("case")
            .fold(&WorkflowContext {
                catalog: Catalog::builtin(),
                calendar: &WorkCalendar::standard(),
            });
        assert_eq!(
            view.entries.len(),
            2,
            "{backend:?}: one report, one comment"
        );

        // Forty comments, each its own round: the document compacts on the way.
        for minute in 2..42 {
            officer.act(
                "case-3",
                Action::Comment,
                minute,
                Some(format!("第{minute}次巡查")),
            );
            officer.sync(&engine, &store).await;
        }
        let stored = store
            .sync_document("case-3")
            .await
            .expect("read")
            .expect("stored");
        assert!(
            stored.chunks.len() == 1,
            "{backend:?}: {} chunks",
            stored.chunks.len()
        );
        sanitation.sync(&engine, &store).await;
        let local = load_chunks(&sanitation.store.documents()["case-3"].chunks).expect("load");
        let server = load_chunks(&stored.chunks).expect("load");
        assert_eq!(
            sorted_heads(&local.get_heads()),
            sorted_heads(&server.get_heads())
        );

        // The supervisor moves case-2 to the other community.
        supervisor.relocate("case-2", "410102001002001");
        supervisor.sync(&engine, &store).await;
        // A later write that leaves the meta as it is: the move still evicts.
        supervisor.act(
            "case-2",
            Action::Comment,
            50,
            Some("已移交 handed over".into()),
        );
        supervisor.sync(&engine, &store).await;
        let report = sanitation.sync(&engine, &store).await;
        assert_eq!(report.evicted, 1, "{backend:?}");
        assert!(!sanitation.store.documents().contains_key("case-2"));
        stranger.sync(&engine, &store).await;
        assert!(
            stranger.store.documents().contains_key("case-2"),
            "{backend:?}"
        );

        // The stranger sends case-1, which it may not hold (a copy from elsewhere).
        let copy = officer.case("case-1").expect("case");
        stranger.save("case-1", &copy);
        let report = stranger
            .round(&engine, &store, false)
            .await
            .expect("report");
        assert_eq!(report.refused.len(), 1, "{backend:?}");
        assert_eq!(report.refused[0].code, RefusalCode::OutOfScope);
        let stored = store
            .sync_peer(&stranger.actor.device, "case-1")
            .await
            .expect("read");
        assert!(
            stored.is_none(),
            "{backend:?}: nothing stored for a refused batch"
        );
    }
}

/// Two rounds of one device that ran at once (on two nodes) computed the same reply
/// serial: the first commit claims it, the second is refused and stores nothing.
#[tokio::test]
async fn a_reply_serial_is_claimed_once() {
    use wangge_server::store::StoreError;
    use wangge_sync_core::sync::server::{PeerWrite, Pending, ServerCommit};
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let round = |doc: &str| ServerCommit {
            device: "00000000000000000000000000000001".into(),
            writer: "officer".into(),
            acknowledged: 0,
            documents: Vec::new(),
            peers: vec![PeerWrite {
                id: doc.into(),
                confirmed: None,
                pending: Some(Pending {
                    serial: 1,
                    heads: None,
                }),
            }],
            issued: 1,
        };
        // The peers refer to documents; store two first.
        let officer = actor(
            1,
            Role::EnforcementOfficer,
            Some("enforcement"),
            "410102001001",
        );
        let engine = Arc::new(SyncEngine::new(Limits::default(), case_rules(), 4));
        let mut phone = Phone::new(officer);
        for id in ["a", "b"] {
            let case =
                CaseDocument::create(&new_case(id), &phone.actor, id, at(0)).expect("report");
            phone.save(id, &case);
        }
        phone.sync(&engine, &store).await;
        let device = "00000000000000000000000000000001";
        let issued = store.sync_issued_serial(device).await.expect("read");
        let mut first = round("a");
        first.issued = issued + 1;
        let mut second = round("b");
        second.issued = issued + 1;
        let rules = case_rules();
        let derive = wangge_server::cases::Materializer {
            rules: &rules,
            now: 0,
            clock_skew_ms: None,
        };
        store
            .sync_commit(&first, &derive, 0)
            .await
            .expect("the first claims the serial");
        let refused = store.sync_commit(&second, &derive, 0).await;
        assert!(
            matches!(refused, Err(StoreError::Conflict { .. })),
            "{backend:?}: {refused:?}"
        );
        assert_eq!(
            store.sync_issued_serial(device).await.expect("read"),
            issued + 1
        );
        let b = store
            .sync_peer(device, "b")
            .await
            .expect("read")
            .expect("row");
        assert!(
            b.pending.is_none(),
            "{backend:?}: the refused round left nothing"
        );
    }
}

/// Six phones comment on one case and sync at the same time, three times over: the
/// store prepares each write before its transaction and must notice when another
/// round changed the document meanwhile (and compute it again), or a compaction
/// would drop the other round's changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_case_lose_nothing_on_every_backend() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let engine = Arc::new(SyncEngine::new(Limits::default(), case_rules(), 8));
        let community = "410102001001";
        let mut phones: Vec<Phone> = (1..=6)
            .map(|n| {
                Phone::new(actor(
                    n,
                    Role::EnforcementOfficer,
                    Some("enforcement"),
                    community,
                ))
            })
            .collect();
        let case = CaseDocument::create(&new_case("busy"), &phones[0].actor, "r-busy", at(0))
            .expect("report");
        phones[0].save("busy", &case);
        phones[0].sync(&engine, &store).await;
        for phone in &mut phones[1..] {
            phone.sync(&engine, &store).await;
            assert!(phone.case("busy").is_some(), "{backend:?}");
        }
        for wave in 0..3 {
            for phone in &mut phones {
                let minute = 10 + wave;
                let note = format!("{} 第{wave}轮", phone.actor.user);
                phone.act("busy", Action::Comment, minute, Some(note));
            }
            let tasks: Vec<_> = phones
                .drain(..)
                .map(|mut phone| {
                    let (engine, store) = (Arc::clone(&engine), Arc::clone(&store));
                    tokio::spawn(async move {
                        phone.sync(&engine, &store).await;
                        phone
                    })
                })
                .collect();
            for task in tasks {
                phones.push(task.await.expect("phone"));
            }
        }
        let stored = store
            .sync_document("busy")
            .await
            .expect("read")
            .expect("stored");
        let doc = load_chunks(&stored.chunks).expect("loads");
        assert_eq!(
            sorted_heads(&doc.get_heads()),
            sorted_heads(&stored.heads),
            "{backend:?}: the row's heads are the chunks' heads"
        );
        assert_eq!(stored.chunks.len(), 1, "{backend:?}: compacted");
        let calendar = WorkCalendar::standard();
        let context = WorkflowContext {
            catalog: Catalog::builtin(),
            calendar: &calendar,
        };
        let view = CaseDocument::from_automerge(doc).fold(&context);
        assert_eq!(
            comments(&view),
            18,
            "{backend:?}: every wave's comments stored"
        );
        // And every phone ends with all of them.
        for phone in &mut phones {
            phone.sync(&engine, &store).await;
            let view = phone.case("busy").expect("case").fold(&context);
            assert_eq!(comments(&view), 18, "{backend:?}: {}", phone.actor.user);
        }
    }
}

/// The comments in a case's timeline.
fn comments(view: &wangge_sync_core::case::CaseView) -> usize {
    view.entries
        .iter()
        .filter_map(|e| e.entry.as_ref())
        .filter(|e| e.action == Action::Comment)
        .count()
}

/// Migration 0007 gives the documents stored before it the keys the server writes
/// (`DocMeta::catalogue_keys` of each stored meta); the server's own rows add the
/// keys a document had before it moved and its writers' users.
#[tokio::test]
async fn the_catalogue_keys_migration_fills_what_the_server_writes() {
    use std::collections::BTreeSet;

    for Fresh { store, raw, .. } in backends().await {
        let backend = store.backend();
        let engine = Arc::new(SyncEngine::new(Limits::default(), case_rules(), 4));
        let mut officer = officer();
        let mut supervisor = Phone::new(actor(4, Role::DistrictSupervisor, None, "410102"));
        for id in ["case-1", "case-2"] {
            let case =
                CaseDocument::create(&new_case(id), &officer.actor, &format!("r-{id}"), at(0))
                    .expect("report");
            officer.save(id, &case);
        }
        officer.sync(&engine, &store).await;
        supervisor.sync(&engine, &store).await;
        supervisor.relocate("case-2", "410102001002001");
        supervisor.sync(&engine, &store).await;

        let keys = |rows: Vec<Vec<Option<String>>>| -> BTreeSet<(String, String)> {
            rows.into_iter()
                .map(|r| (r[0].clone().expect("key"), r[1].clone().expect("id")))
                .collect()
        };
        // The keys sync-core gives for each document's meta as stored.
        let documents = raw.texts("SELECT id FROM documents").await;
        assert_eq!(documents.len(), 2, "{backend:?}");
        let mut expected = BTreeSet::new();
        for id in ["case-1", "case-2"] {
            let stored = store
                .sync_document(id)
                .await
                .expect("read")
                .expect("stored");
            for key in stored.meta.catalogue_keys(stored.kind) {
                expected.insert((key, id.to_owned()));
            }
        }
        let written = keys(
            raw.texts("SELECT scope_key, doc_id FROM catalogue_keys")
                .await,
        );
        assert!(written.is_superset(&expected), "{backend:?}: {written:?}");
        for kept in [
            ("case:410102001001", "case-2"), // where it was before the move
            ("user:u4", "case-2"),           // the supervisor's device wrote it
        ] {
            let kept = (kept.0.to_owned(), kept.1.to_owned());
            assert!(written.contains(&kept), "{backend:?}: {kept:?}");
        }

        raw.script("DROP TABLE catalogue_keys").await;
        raw.script(match raw {
            common::Raw::Sqlite(_) => {
                include_str!("../../migrations/sqlite/0007_catalogue_keys.sql")
            }
            common::Raw::Postgres(_) => {
                include_str!("../../migrations/postgres/0007_catalogue_keys.sql")
            }
        })
        .await;
        let filled = keys(
            raw.texts("SELECT scope_key, doc_id FROM catalogue_keys")
                .await,
        );
        // No device is registered here, so no holder's user is added.
        assert_eq!(filled, expected, "{backend:?}");
    }
}

/// A case's photo references (`case_photos`) follow its document through sync rounds
/// on both databases: added with the photo entry, kept for each case that references
/// the photo, dropped when the entry is removed.
#[tokio::test]
async fn the_photos_a_case_references_are_materialized_on_every_backend() {
    use wangge_sync_core::case::{Photo, PhotoRole};

    let photo = |hash: &str| Photo {
        hash: hash.to_owned(),
        role: PhotoRole::Before,
        taken_at: Some(at(0)),
        position: None,
        added_by: "u1".into(),
        added_at: at(1),
    };
    let (shared, other) = ("a".repeat(64), "b".repeat(64));
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let engine = Arc::new(SyncEngine::new(Limits::default(), case_rules(), 4));
        let mut phone = officer();
        for id in ["photo-1", "photo-2"] {
            let mut case =
                CaseDocument::create(&new_case(id), &phone.actor, &format!("r-{id}"), at(0))
                    .expect("report");
            case.add_photo(&phone.actor, &photo(&shared))
                .expect("photo");
            if id == "photo-1" {
                case.add_photo(&phone.actor, &photo(&other)).expect("photo");
            }
            phone.save(id, &case);
        }
        phone.sync(&engine, &store).await;
        let referencing = |hash: String| {
            let store = Arc::clone(&store);
            async move { store.cases_with_photo(&hash).await.expect("read") }
        };
        assert_eq!(
            referencing(shared.clone()).await,
            ["photo-1", "photo-2"],
            "{backend:?}"
        );
        assert_eq!(referencing(other.clone()).await, ["photo-1"], "{backend:?}");

        // Removed on the phone, offline; synced: only the other case still has it.
        let mut case = phone.case("photo-1").expect("case");
        assert_eq!(case.remove_photo(&phone.actor, &shared).expect("remove"), 1);
        phone.save("photo-1", &case);
        phone.sync(&engine, &store).await;
        assert_eq!(
            referencing(shared.clone()).await,
            ["photo-2"],
            "{backend:?}"
        );
        assert_eq!(referencing(other.clone()).await, ["photo-1"], "{backend:?}");
        assert!(referencing("c".repeat(64)).await.is_empty(), "{backend:?}");
    }
}
