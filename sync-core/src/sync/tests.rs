//! Rounds between one server and a few devices, and bad input. The fault-injecting
//! simulation is in `simulation.rs`.

use automerge::Automerge;

use super::device::{DeviceSession, DeviceSyncError};
use super::memory::{MemoryDevice, MemoryServer};
use super::message::{Cursor, DocUpdate, Limits, Outcome, RefusalCode, Reply, Request};
use super::server::{ServerSession, SyncError};
use super::*;
use crate::case::tests::{GRID, at, cast, context, new_case};
use crate::case::{Action, CaseDocument, NewCase};
use crate::role::Actor;

pub(crate) struct Phone {
    pub actor: Actor,
    pub store: MemoryDevice,
    pub session: DeviceSession,
}

impl Phone {
    pub fn new(actor: Actor, seed: u64) -> Phone {
        Phone {
            actor,
            store: MemoryDevice::new(),
            session: DeviceSession::new(Limits::default(), seed),
        }
    }

    pub fn case(&self, id: &str) -> Option<CaseDocument> {
        let doc = self.store.documents().get(id)?;
        Some(CaseDocument::from_automerge(load_chunks(&doc.chunks).ok()?))
    }

    pub fn report(&mut self, new: &NewCase) {
        let case = CaseDocument::create(new, &self.actor, &format!("e-{}", new.id), at(0))
            .expect("report");
        DeviceSession::record_local(&mut self.store, &new.id, DocKind::Case, case.automerge())
            .expect("store");
    }

    pub fn act(&mut self, id: &str, action: Action, minutes: i64) {
        let mut case = self.case(id).expect("case on phone");
        let entry = format!("e-{}-{minutes}", self.actor.user);
        case.act(&context(), &self.actor, &entry, action, at(minutes), None)
            .expect("act");
        DeviceSession::record_local(&mut self.store, id, DocKind::Case, case.automerge())
            .expect("store");
    }
}

pub(crate) fn serve(
    server: &mut MemoryServer,
    actor: &Actor,
    request: &[u8],
) -> Result<Vec<u8>, SyncError> {
    let scope = UserScope::of(actor);
    let session = ServerSession {
        automate: &crate::sync::server::NoAutomation,
        writer: actor,
        scope: &scope,
        rules: Rules { context: context() },
        limits: Limits::default(),
    };
    session.handle(server, request).map(|(reply, _)| reply)
}

/// Rounds until nothing is left; returns how many.
fn sync(server: &mut MemoryServer, phone: &mut Phone) -> usize {
    for round in 1..=50 {
        let request = phone.session.prepare(&mut phone.store).expect("prepare");
        let reply = serve(server, &phone.actor, &request).expect("serve");
        let report = phone
            .session
            .receive(&mut phone.store, &reply)
            .expect("receive");
        if !report.more {
            return round;
        }
    }
    panic!("no quiescence in 50 rounds");
}

#[test]
fn a_report_reaches_the_grid_and_a_dispatch_comes_back() {
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    let mut dispatcher = Phone::new(cast.dispatcher.clone(), 2);
    let mut sanitation = Phone::new(cast.sanitation.clone(), 3);
    officer.report(&new_case());
    assert_eq!(sync(&mut server, &mut officer), 1);
    assert!(!officer.store.documents()["case-1"].unsent);
    sync(&mut server, &mut dispatcher);
    sync(&mut server, &mut sanitation);
    assert!(dispatcher.case("case-1").is_some());
    assert!(sanitation.case("case-1").is_some(), "same community");

    for (i, action) in [Action::Accept, Action::Register].into_iter().enumerate() {
        let who = if i == 0 {
            &cast.acceptor
        } else {
            &cast.shift_lead
        };
        let mut phone = Phone::new(who.clone(), 10 + i as u64);
        sync(&mut server, &mut phone);
        phone.act("case-1", action, 5 + i as i64);
        sync(&mut server, &mut phone);
    }
    sync(&mut server, &mut dispatcher);
    dispatcher.act(
        "case-1",
        Action::Dispatch {
            team: crate::catalog::TeamId::new("sanitation").expect("team"),
            assignee: Some(cast.sanitation.user.clone()),
        },
        10,
    );
    sync(&mut server, &mut dispatcher);
    assert_eq!(
        sync(&mut server, &mut sanitation),
        1,
        "one round to learn and get it"
    );
    let view = sanitation.case("case-1").expect("case").fold(&context());
    assert_eq!(view.status, Some(crate::case::Status::Dispatched));
    sanitation.act("case-1", Action::Handle, 20);
    sync(&mut server, &mut sanitation);
    sync(&mut server, &mut officer);
    let officer_view = officer.case("case-1").expect("case").fold(&context());
    assert_eq!(officer_view.status, Some(crate::case::Status::Handled));
}

#[test]
fn another_grid_never_receives_the_case_and_cannot_write_it() {
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    officer.report(&new_case());
    sync(&mut server, &mut officer);
    let mut stranger = Phone::new(
        crate::case::tests::actor(
            40,
            crate::role::Role::EnforcementOfficer,
            Some("enforcement"),
            "410102002001",
        ),
        4,
    );
    sync(&mut server, &mut stranger);
    assert!(stranger.store.documents().is_empty());
    // It forges a comment on the case from a copy it should not have.
    let mut case = officer.case("case-1").expect("case");
    let copy = CaseDocument::load(&case.save()).expect("copy");
    case = copy;
    let entry = crate::case::TimelineEntry {
        id: "forged".into(),
        action: Action::Comment,
        at: at(3),
        actor: stranger.actor.clone(),
        note: Some("x".into()),
        grid: None,
    };
    let mut fork = case.automerge().fork();
    fork.set_actor(crate::document::actor_id(&stranger.actor.device).expect("actor"));
    let mut forged = CaseDocument::from_automerge(fork);
    forged.append_entry(&entry).expect("append");
    DeviceSession::record_local(
        &mut stranger.store,
        "case-1",
        DocKind::Case,
        forged.automerge(),
    )
    .expect("store");
    let request = stranger
        .session
        .prepare(&mut stranger.store)
        .expect("prepare");
    let reply = serve(&mut server, &stranger.actor, &request).expect("serve");
    let report = stranger
        .session
        .receive(&mut stranger.store, &reply)
        .expect("receive");
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].code, RefusalCode::OutOfScope);
    assert!(stranger.store.documents()["case-1"].rejected.is_some());
}

#[test]
fn a_batch_with_one_bad_document_is_refused_whole() {
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    officer.report(&new_case());
    // A second case whose id field disagrees with the id it is sent under.
    let other = NewCase {
        id: "case-2".into(),
        ..new_case()
    };
    let case = CaseDocument::create(&other, &officer.actor, "e-2", at(0)).expect("create");
    DeviceSession::record_local(
        &mut officer.store,
        "case-3",
        DocKind::Case,
        case.automerge(),
    )
    .expect("store");
    let request = officer
        .session
        .prepare(&mut officer.store)
        .expect("prepare");
    let reply = serve(&mut server, &officer.actor, &request).expect("serve");
    let report = officer
        .session
        .receive(&mut officer.store, &reply)
        .expect("receive");
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].code, RefusalCode::IdMismatch);
    assert_eq!(server.document_ids().count(), 0, "nothing stored");
    // The good document goes in the next round.
    sync(&mut server, &mut officer);
    assert_eq!(server.document_ids().collect::<Vec<_>>(), ["case-1"]);
}

#[test]
fn a_lost_reply_is_resent_and_nothing_is_applied_twice() {
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    let mut dispatcher = Phone::new(cast.dispatcher.clone(), 2);
    officer.report(&new_case());
    let request = officer
        .session
        .prepare(&mut officer.store)
        .expect("prepare");
    serve(&mut server, &officer.actor, &request).expect("serve");
    // The reply is lost; the phone sends again.
    officer.session.abandon();
    sync(&mut server, &mut officer);
    sync(&mut server, &mut dispatcher);
    let view = dispatcher.case("case-1").expect("case").fold(&context());
    assert_eq!(view.entries.len(), 1, "one report, not two");
    // The dispatcher's reply is lost after the server stored it: the next round
    // resends it (not acknowledged), and the phone ends with it once.
    let mut third = Phone::new(cast.sanitation.clone(), 3);
    let request = third.session.prepare(&mut third.store).expect("prepare");
    let _lost = serve(&mut server, &third.actor, &request).expect("serve");
    third.session.abandon();
    assert_eq!(sync(&mut server, &mut third), 1);
    assert!(third.case("case-1").is_some());
}

#[test]
fn bad_requests_get_typed_errors_and_store_nothing() {
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    officer.report(&new_case());
    let good = officer
        .session
        .prepare(&mut officer.store)
        .expect("prepare");
    let actor = &cast.officer;
    for cut in [0, 1, 5, good.len() / 2, good.len() - 1] {
        let err = serve(&mut server, actor, &good[..cut]).expect_err("truncated");
        assert!(matches!(err, SyncError::Decode(_)), "{cut}: {err}");
    }
    let err = serve(&mut server, actor, b"\xff\x00garbage").expect_err("garbage");
    assert!(matches!(err, SyncError::Decode(_)));
    let mut request = Request::decode(&good, usize::MAX).expect("decode");

    let mut future = request.clone();
    future.cursor = Cursor {
        seq: 99,
        serial: 0,
        scope: 0,
    };
    let err = serve(&mut server, actor, &future.encode()).expect_err("future");
    assert!(matches!(err, SyncError::CursorFromFuture { .. }));

    let mut version = request.clone();
    version.version = 9;
    let err = serve(&mut server, actor, &version.encode()).expect_err("version");
    assert!(matches!(
        err,
        SyncError::Decode(message::DecodeError::Version(9))
    ));

    let huge = vec![0u8; Limits::default().max_request + 1];
    let err = serve(&mut server, actor, &huge).expect_err("huge");
    assert!(matches!(
        err,
        SyncError::Decode(message::DecodeError::TooLarge { .. })
    ));

    let mut undecodable = request.clone();
    undecodable.docs[0].message = b"not automerge".to_vec();
    let reply = serve(&mut server, actor, &undecodable.encode()).expect("reply");
    assert_refused(&reply, RefusalCode::Undecodable);

    // The officer's changes under another device's identity.
    let foreign = crate::case::tests::actor(
        41,
        crate::role::Role::EnforcementOfficer,
        Some("enforcement"),
        "410102001001",
    );
    let reply = serve(&mut server, &foreign, &good).expect("reply");
    assert_refused(&reply, RefusalCode::ForeignActor);

    let mut bad_id = request.clone();
    bad_id.docs[0].id = "has space".into();
    let err = serve(&mut server, actor, &bad_id.encode()).expect_err("bad id");
    assert!(matches!(
        err,
        SyncError::Decode(message::DecodeError::BadDocId(_))
    ));

    request.docs.push(request.docs[0].clone());
    let reply = serve(&mut server, actor, &request.encode()).expect("reply");
    assert_refused(&reply, RefusalCode::Duplicate);

    assert_eq!(server.document_ids().count(), 0, "nothing stored");
    // And the session is still usable.
    officer.session.abandon();
    sync(&mut server, &mut officer);
    assert_eq!(server.document_ids().count(), 1);
}

fn assert_refused(reply: &[u8], code: RefusalCode) {
    let reply = Reply::decode(reply, usize::MAX).expect("reply");
    match reply.outcome {
        Outcome::Refused(refusals) => {
            assert!(refusals.iter().any(|r| r.code == code), "{refusals:?}");
        }
        Outcome::Synced(_) => panic!("accepted, expected {code:?}"),
    }
}

#[test]
fn garbage_replies_change_nothing_on_the_device() {
    let cast = cast();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    officer.report(&new_case());
    let before = officer.store.documents().clone();
    let request = officer
        .session
        .prepare(&mut officer.store)
        .expect("prepare");
    let request_id = Request::decode(&request, usize::MAX)
        .expect("decode")
        .request_id;
    let bad_doc = Reply {
        version: PROTOCOL_VERSION,
        request_id,
        outcome: Outcome::Synced(message::Synced {
            docs: vec![DocUpdate {
                id: "case-1".into(),
                kind: DocKind::Case,
                message: vec![0x42, 1, 2, 3],
            }],
            evict: Vec::new(),
            cursor: Cursor::default(),
            more: false,
        }),
    };
    for bytes in [b"\x00".to_vec(), bad_doc.encode()] {
        let err = officer
            .session
            .receive(&mut officer.store, &bytes)
            .expect_err("bad");
        assert!(
            matches!(
                err,
                DeviceSyncError::Decode(_) | DeviceSyncError::BadDocument { .. }
            ),
            "{err}"
        );
    }
    assert_eq!(officer.store.documents(), &before);
    let other = Reply {
        request_id: request_id ^ 1,
        ..bad_doc
    };
    let err = officer
        .session
        .receive(&mut officer.store, &other.encode())
        .expect_err("not ours");
    assert!(matches!(err, DeviceSyncError::NotOurs { .. }));
}

#[test]
fn a_large_backlog_takes_several_bounded_rounds() {
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    for i in 0..60u32 {
        officer.report(&NewCase {
            id: format!("case-{i}"),
            // Varied text, so compression does not make it small.
            description: (0..1000u32)
                .filter_map(|k| char::from_u32(0x4e00 + (k * 7919 + i * 31) % 20000))
                .collect(),
            ..new_case()
        });
    }
    let limits = Limits {
        reply_budget: 16 << 10,
        request_budget: 16 << 10,
        ..Limits::default()
    };
    officer.session = DeviceSession::new(limits, 7);
    let mut rounds = 0;
    loop {
        rounds += 1;
        let request = officer
            .session
            .prepare(&mut officer.store)
            .expect("prepare");
        assert!(request.len() <= limits.request_budget, "{}", request.len());
        let reply = serve(&mut server, &officer.actor, &request).expect("serve");
        if !officer
            .session
            .receive(&mut officer.store, &reply)
            .expect("receive")
            .more
        {
            break;
        }
        assert!(rounds < 100);
    }
    assert!(rounds > 3, "{rounds} rounds");
    assert_eq!(server.document_ids().count(), 60);

    let mut sanitation = Phone::new(cast.sanitation.clone(), 2);
    sanitation.session = DeviceSession::new(limits, 8);
    let scope = UserScope::of(&sanitation.actor);
    let session = ServerSession {
        automate: &crate::sync::server::NoAutomation,
        writer: &sanitation.actor,
        scope: &scope,
        rules: Rules { context: context() },
        limits,
    };
    let mut rounds = 0;
    loop {
        rounds += 1;
        let request = sanitation
            .session
            .prepare(&mut sanitation.store)
            .expect("prepare");
        let (reply, _) = session.handle(&mut server, &request).expect("serve");
        assert!(reply.len() <= limits.reply_budget, "{}", reply.len());
        if !sanitation
            .session
            .receive(&mut sanitation.store, &reply)
            .expect("receive")
            .more
        {
            break;
        }
        assert!(rounds < 100);
    }
    assert!(rounds > 3);
    assert_eq!(sanitation.store.documents().len(), 60);
}

#[test]
fn a_case_that_moves_away_is_evicted_but_unsent_work_is_kept() {
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    let mut sanitation = Phone::new(cast.sanitation.clone(), 2);
    let mut supervisor = Phone::new(cast.district_supervisor.clone(), 3);
    officer.report(&new_case());
    officer.report(&NewCase {
        id: "case-2".into(),
        ..new_case()
    });
    sync(&mut server, &mut officer);
    sync(&mut server, &mut sanitation);
    sync(&mut server, &mut supervisor);
    assert_eq!(sanitation.store.documents().len(), 2);
    // The sanitation worker comments on case-2 offline …
    sanitation.act("case-2", Action::Comment, 3);
    // … while the district supervisor moves both cases to another street's grid.
    for id in ["case-1", "case-2"] {
        let mut case = supervisor.case(id).expect("case");
        let moved: crate::grid::GridCode = "410102002001001".parse().expect("grid");
        case.set_location(
            &supervisor.actor,
            crate::document::Position {
                lon: 113.7,
                lat: 34.8,
                accuracy_m: None,
            },
            Some(moved),
        )
        .expect("move");
        DeviceSession::record_local(&mut supervisor.store, id, DocKind::Case, case.automerge())
            .expect("store");
    }
    sync(&mut server, &mut supervisor);
    sync(&mut server, &mut sanitation);
    let docs = sanitation.store.documents();
    assert!(!docs.contains_key("case-1"), "evicted");
    let kept = &docs["case-2"];
    assert!(kept.rejected.is_some(), "unsent work is kept, marked");
    // The officer keeps both: own reports.
    sync(&mut server, &mut officer);
    assert_eq!(officer.store.documents().len(), 2);
    let _ = Automerge::new();
    let _ = GRID;
}

#[test]
fn a_device_that_lost_a_base_asks_for_the_whole_document() {
    use super::device::{DeviceCommit, DeviceStorage};
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    let mut sanitation = Phone::new(cast.sanitation.clone(), 2);
    officer.report(&new_case());
    sync(&mut server, &mut officer);
    sync(&mut server, &mut sanitation);
    // The phone loses the document (a restored backup, a bug); the server still
    // believes it holds it and sends only what is new.
    sanitation
        .store
        .commit(DeviceCommit {
            delete: vec!["case-1".into()],
            ..DeviceCommit::default()
        })
        .expect("delete");
    officer.act("case-1", Action::Comment, 4);
    sync(&mut server, &mut officer);
    let request = sanitation
        .session
        .prepare(&mut sanitation.store)
        .expect("prepare");
    let reply = serve(&mut server, &sanitation.actor, &request).expect("serve");
    let report = sanitation
        .session
        .receive(&mut sanitation.store, &reply)
        .expect("receive");
    assert_eq!(report.resync, 1, "{report:?}");
    assert!(report.more);
    assert!(
        sanitation.case("case-1").is_none(),
        "nothing half-applied is stored"
    );
    sync(&mut server, &mut sanitation);
    let view = sanitation
        .case("case-1")
        .expect("whole again")
        .fold(&context());
    assert_eq!(view.entries.len(), 2);
    assert!(sanitation.store.resync_wanted().expect("memory").is_empty());
}

/// Random byte flips, truncations and insertions of valid messages: every one is
/// refused with a typed error or handled, never a panic; a refused request stores
/// nothing.
#[test]
fn mutated_messages_never_panic() {
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    let sanitation = Phone::new(cast.sanitation.clone(), 2);
    officer.report(&new_case());
    sync(&mut server, &mut officer);
    officer.act("case-1", Action::Comment, 2);
    let request = officer
        .session
        .prepare(&mut officer.store)
        .expect("prepare");
    // A new session with the same seed sends the same request id, so each mutated
    // reply is taken as the answer to it and its documents are read.
    let fresh = |store: &MemoryDevice| {
        let mut session = DeviceSession::new(Limits::default(), 2);
        let mut store = store.clone();
        let request = session.prepare(&mut store).expect("prepare");
        (session, store, request)
    };
    let (_, _, sanitation_request) = fresh(&sanitation.store);
    let reply = serve(&mut server.clone(), &sanitation.actor, &sanitation_request).expect("serve");
    let mut seed = 0x5EED_u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) as usize
    };
    for round in 0..1500 {
        let mut bytes = if round % 2 == 0 {
            request.clone()
        } else {
            reply.clone()
        };
        match next() % 3 {
            0 => {
                for _ in 0..1 + next() % 4 {
                    let i = next() % bytes.len();
                    bytes[i] ^= 1 << (next() % 8);
                }
            }
            1 => bytes.truncate(next() % bytes.len()),
            _ => {
                let i = next() % bytes.len();
                bytes.insert(i, (next() % 256) as u8);
            }
        }
        if round % 2 == 0 {
            let mut copy = server.clone();
            let before = copy.document_ids().count();
            if serve(&mut copy, &officer.actor, &bytes).is_err() {
                assert_eq!(copy.document_ids().count(), before);
            }
        } else {
            let (mut session, mut store, _) = fresh(&sanitation.store);
            if session.receive(&mut store, &bytes).is_err() {
                assert_eq!(store.documents(), sanitation.store.documents());
            }
        }
    }
}

#[test]
fn asking_for_a_document_the_server_never_had_stops() {
    let cast = cast();
    let mut server = MemoryServer::new();
    let mut officer = Phone::new(cast.officer.clone(), 1);
    // Reported, then discarded before it was ever sent.
    officer.report(&new_case());
    DeviceSession::discard(&mut officer.store, "case-1").expect("discard");
    sync(&mut server, &mut officer);
    use super::device::DeviceStorage;
    assert!(officer.store.resync_wanted().expect("memory").is_empty());
    assert!(officer.store.documents().is_empty());
}

mod catalogue_filter {
    use proptest::prelude::*;

    use super::super::{CatalogueFilter, DocKind, DocMeta, NO_GRID_KEY, Scope, UserScope};
    use crate::grid::GridCode;
    use crate::role::{GridScope, Role};

    // Grid codes of two districts, streets and communities, so prefixes of every
    // level both match and miss.
    const GRIDS: [&str; 6] = [
        "410105001001001",
        "410105001001002",
        "410105001002001",
        "410105002001001",
        "410102001001001",
        "410102003004005",
    ];
    const USERS: [&str; 3] = ["wang_1", "li%2", "zhao"];

    fn grid(i: usize) -> GridCode {
        GRIDS[i].parse().expect("grid code")
    }

    /// A case (or patrol log) in `grids` (indices into [`GRIDS`]) with that owner and
    /// those assignees.
    fn document(
        patrol: bool,
        grids: Vec<usize>,
        owner: Option<&str>,
        assignees: Vec<&str>,
    ) -> (DocKind, DocMeta) {
        let kind = if patrol {
            DocKind::PatrolLog
        } else {
            DocKind::Case
        };
        let meta = DocMeta {
            grids: grids.into_iter().map(grid).collect(),
            owner: owner.map(str::to_owned),
            assignees: assignees.into_iter().map(str::to_owned).collect(),
        };
        (kind, meta)
    }

    fn scope_prefixes() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(
            (
                0..GRIDS.len(),
                prop::sample::select(vec![0usize, 2, 4, 6, 9, 12, 15]),
            ),
            1..3,
        )
        .prop_map(|items| {
            items
                .into_iter()
                .map(|(g, len)| {
                    if len == 0 {
                        "*".to_owned()
                    } else {
                        GRIDS[g][..len].to_owned()
                    }
                })
                .collect()
        })
    }

    proptest! {
        /// The storage may skip what the filter does not admit, so the filter must
        /// admit everything the scope does, for every role, posting and document.
        #[test]
        fn admits_everything_the_scope_admits(
            role in prop::sample::select(Role::ALL.to_vec()),
            user in prop::sample::select(USERS.to_vec()),
            prefixes in scope_prefixes(),
            patrol in any::<bool>(),
            grids in prop::collection::vec(0..GRIDS.len(), 0..3),
            owner in prop::option::of(prop::sample::select(USERS.to_vec())),
            assignees in prop::collection::vec(prop::sample::select(USERS.to_vec()), 0..2),
        ) {
            let scope = UserScope {
                user: user.to_owned(),
                role,
                grids: GridScope::new(&prefixes).expect("scope"),
            };
            let (kind, meta) = document(patrol, grids, owner, assignees);
            let filter = scope.catalogue_filter();
            if scope.may_receive(kind, &meta) {
                prop_assert!(filter.admits(kind, &meta), "{filter:?} hides {kind:?} {meta:?}");
            }
            prop_assert!(CatalogueFilter::everything().admits(kind, &meta));
        }
    }

    proptest! {
        /// A storage reads the filter through its index keys: that must admit exactly
        /// what the filter admits, for any prefixes (scope items or not).
        #[test]
        fn the_index_keys_admit_what_the_filter_admits(
            user in prop::option::of(prop::sample::select(USERS.to_vec())),
            case_grids in prop::collection::vec((0..GRIDS.len(), 0usize..=15), 0..3),
            patrol_grids in prop::collection::vec((0..GRIDS.len(), 0usize..=15), 0..3),
            without_grid in any::<bool>(),
            patrol in any::<bool>(),
            grids in prop::collection::vec(0..GRIDS.len(), 0..3),
            owner in prop::option::of(prop::sample::select(USERS.to_vec())),
            assignees in prop::collection::vec(prop::sample::select(USERS.to_vec()), 0..2),
        ) {
            let prefixes = |items: Vec<(usize, usize)>| -> Vec<String> {
                items.into_iter().map(|(g, len)| GRIDS[g][..len].to_owned()).collect()
            };
            let filter = CatalogueFilter {
                user: user.map(str::to_owned),
                case_grids: prefixes(case_grids),
                without_grid,
                patrol_grids: prefixes(patrol_grids),
            };
            let (kind, meta) = document(patrol, grids, owner, assignees);
            let lookup = filter.lookup();
            let by_key = meta.catalogue_keys(kind).iter().any(|k| lookup.keys.contains(k));
            let by_position = lookup.unindexed.as_ref().is_some_and(|f| f.admits(kind, &meta));
            prop_assert_eq!(
                by_key || by_position,
                filter.admits(kind, &meta),
                "{:?} {:?} {:?}", lookup, kind, meta
            );
        }
    }

    #[test]
    fn a_city_wide_filter_is_read_by_position_and_a_community_by_key() {
        let lookup = CatalogueFilter::everything().lookup();
        assert_eq!(lookup.keys, vec![NO_GRID_KEY.to_owned()]);
        assert!(lookup.unindexed.is_some());
        let scope = UserScope {
            user: "zhao".to_owned(),
            role: Role::EnforcementOfficer,
            grids: GridScope::new(["410105001001"]).expect("scope"),
        };
        let lookup = scope.catalogue_filter().lookup();
        assert_eq!(lookup.keys, vec!["case:410105001001", "user:zhao"]);
        assert_eq!(lookup.unindexed, None);
    }

    #[test]
    fn an_officer_of_one_community_skips_another_districts_cases() {
        let scope = UserScope {
            user: "zhao".to_owned(),
            role: Role::EnforcementOfficer,
            grids: GridScope::new(["410105001001"]).expect("scope"),
        };
        let filter = scope.catalogue_filter();
        let elsewhere = DocMeta {
            grids: vec![grid(4)],
            owner: Some("wang_1".to_owned()),
            assignees: Vec::new(),
        };
        assert!(!filter.admits(DocKind::Case, &elsewhere));
        let dispatched_to_me = DocMeta {
            assignees: vec!["zhao".to_owned()],
            ..elsewhere.clone()
        };
        assert!(filter.admits(DocKind::Case, &dispatched_to_me));
        let here = DocMeta {
            grids: vec![grid(1)],
            ..elsewhere
        };
        assert!(filter.admits(DocKind::Case, &here));
        // Officers do not review patrol logs: only their own.
        assert!(!filter.admits(DocKind::PatrolLog, &here));
    }
}
