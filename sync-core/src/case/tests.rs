//! Table tests of the workflow, the write rules and bad documents. The property
//! test of convergence is in `tests/case_convergence.rs`.

use automerge::{Automerge, ObjType, ROOT, ReadDoc, ScalarValue, transaction::Transactable};
use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::calendar::WorkCalendar;
use crate::catalog::{Catalog, Step, TeamId, TimeLimit};
use crate::role::{Actor, Level, Role};

pub(crate) const GRID: &str = "410102001001001";
pub(crate) const STREET: &str = "410102001";
pub(crate) const DISTRICT: &str = "410102";

pub(crate) fn device(n: u32) -> String {
    format!("{n:032x}")
}

pub(crate) fn actor(n: u32, role: Role, team: Option<&str>, scope: &str) -> Actor {
    Actor {
        user: format!("u{n}"),
        role,
        team: team.map(|t| TeamId::new(t).unwrap()),
        scope: scope.parse().unwrap(),
        device: device(n),
    }
}

/// The cast of a case: one of each role, in the street of [`GRID`].
pub(crate) struct Cast {
    pub officer: Actor,
    pub sanitation: Actor,
    pub sanitation2: Actor,
    pub supervisor: Actor,
    pub acceptor: Actor,
    pub shift_lead: Actor,
    pub dispatcher: Actor,
    pub district_dispatcher: Actor,
    pub city_dispatcher: Actor,
    pub district_supervisor: Actor,
    pub hotline: Actor,
    pub admin: Actor,
    pub server: Actor,
}

pub(crate) fn cast() -> Cast {
    Cast {
        officer: actor(
            1,
            Role::EnforcementOfficer,
            Some("enforcement"),
            "410102001001",
        ),
        sanitation: actor(
            2,
            Role::SanitationWorker,
            Some("sanitation"),
            "410102001001",
        ),
        sanitation2: actor(
            3,
            Role::SanitationWorker,
            Some("sanitation"),
            "410102001001",
        ),
        supervisor: actor(4, Role::InformationSupervisor, None, "410102001001"),
        acceptor: actor(5, Role::Acceptor, None, STREET),
        shift_lead: actor(6, Role::ShiftLead, None, STREET),
        dispatcher: actor(7, Role::Dispatcher, None, STREET),
        district_dispatcher: actor(8, Role::Dispatcher, None, DISTRICT),
        city_dispatcher: actor(9, Role::Dispatcher, None, "*"),
        district_supervisor: actor(10, Role::DistrictSupervisor, None, DISTRICT),
        hotline: actor(11, Role::HotlineOperator, None, "*"),
        admin: actor(13, Role::Admin, None, "*"),
        server: actor(15, Role::Server, None, "*"),
    }
}

pub(crate) fn calendar() -> &'static WorkCalendar {
    static CALENDAR: std::sync::LazyLock<WorkCalendar> =
        std::sync::LazyLock::new(WorkCalendar::standard);
    &CALENDAR
}

pub(crate) fn context() -> WorkflowContext<'static> {
    WorkflowContext {
        catalog: Catalog::builtin(),
        calendar: calendar(),
    }
}

/// Monday 2026-11-23 09:00 Beijing time plus `minutes`.
pub(crate) fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap() + chrono::TimeDelta::minutes(minutes)
}

pub(crate) fn new_case() -> NewCase {
    NewCase {
        id: "case-1".into(),
        category: "E0102".parse().unwrap(),
        location: Position {
            lon: 113.66,
            lat: 34.75,
            accuracy_m: Some(8.0),
        },
        grid: Some(GRID.parse().unwrap()),
        address: "金水路与花园路交叉口".into(),
        description: "路边暴露垃圾一堆".into(),
        source: Source::Patrol,
        source_ref: None,
        caller: None,
    }
}

pub(crate) fn reported(by: &Actor) -> CaseDocument {
    CaseDocument::create(&new_case(), by, "e0", at(0)).unwrap()
}

/// Appends `action` by `who` with a fresh entry id, without the workflow check.
pub(crate) fn push(case: &mut CaseDocument, who: &Actor, action: Action, minutes: i64) {
    let id = format!("e{}-{}", who.user, case.fold(&context()).entries.len());
    let entry = TimelineEntry {
        id,
        action,
        at: at(minutes),
        actor: who.clone(),
        note: None,
        grid: None,
    };
    case.append_entry(&entry).unwrap();
}

fn act(case: &mut CaseDocument, who: &Actor, action: Action, minutes: i64) {
    let id = format!("e{}-{}", who.user, case.fold(&context()).entries.len());
    case.act(&context(), who, &id, action, at(minutes), None)
        .unwrap_or_else(|e| panic!("{} as {}: {e}", who.user, who.role));
}

fn dispatch(team: &str) -> Action {
    Action::Dispatch {
        team: TeamId::new(team).unwrap(),
        assignee: None,
    }
}

fn last_outcome(case: &CaseDocument) -> Outcome {
    case.fold(&context())
        .entries
        .last()
        .unwrap()
        .outcome
        .clone()
}

fn ignored_because(case: &CaseDocument) -> IgnoredReason {
    match last_outcome(case) {
        Outcome::Ignored(reason) => reason,
        Outcome::Applied => panic!("the last entry was applied"),
    }
}

fn status(case: &CaseDocument) -> Status {
    case.fold(&context()).status.unwrap()
}

/// A case of exposed garbage found by the officer, dispatched to sanitation.
fn dispatched(c: &Cast) -> CaseDocument {
    let mut case = reported(&c.officer);
    act(&mut case, &c.acceptor, Action::Accept, 10);
    act(&mut case, &c.shift_lead, Action::Register, 20);
    act(&mut case, &c.dispatcher, dispatch("sanitation"), 30);
    case
}

#[test]
fn the_whole_flow_closes_the_case_with_every_step_on_time() {
    let c = cast();
    let mut case = dispatched(&c);
    act(&mut case, &c.sanitation, Action::Handle, 120);
    act(&mut case, &c.supervisor, Action::Verify, 180);
    act(&mut case, &c.shift_lead, Action::Close, 200);
    let view = case.fold(&context());
    assert_eq!(view.status, Some(Status::Closed));
    assert!(view.ignored().next().is_none());
    let steps: Vec<Step> = view.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        [
            Step::Accept,
            Step::Register,
            Step::Dispatch,
            Step::Handle,
            Step::Verify,
            Step::Close
        ]
    );
    assert!(view.steps.iter().all(|s| s.on_time() == Some(true)));
    // 暴露垃圾: 4 working hours to handle from dispatch at 09:30: 2.5 h before the
    // 12:00-13:30 lunch break, 1.5 h after it, so 15:00.
    let handle = &view.steps[3];
    assert_eq!(handle.due_at, Some(at(6 * 60)));
    assert_eq!(view.current_step(), None);
    assert!(!view.is_overdue(at(10_000)));
    assert_eq!(view.assignment.unwrap().team.as_str(), "sanitation");
    assert_eq!(view.record.description, "路边暴露垃圾一堆");
}

#[test]
fn a_handle_step_past_its_due_time_is_overdue_and_counted_late() {
    let c = cast();
    let mut case = dispatched(&c);
    let view = case.fold(&context());
    assert!(!view.is_overdue(at(6 * 60)));
    assert!(view.is_overdue(at(6 * 60 + 1)));
    act(&mut case, &c.sanitation, Action::Handle, 7 * 60);
    let view = case.fold(&context());
    assert_eq!(view.steps[3].on_time(), Some(false));
    assert_eq!(view.current_step().unwrap().step, Step::Verify);
}

#[test]
fn rework_twice_sends_the_case_back_to_the_same_team_each_time() {
    let c = cast();
    let mut case = dispatched(&c);
    for round in 0..2 {
        act(&mut case, &c.sanitation, Action::Handle, 60 + round * 60);
        act(&mut case, &c.supervisor, Action::Rework, 90 + round * 60);
        assert_eq!(status(&case), Status::Dispatched);
    }
    act(&mut case, &c.sanitation2, Action::Handle, 200);
    act(&mut case, &c.supervisor, Action::Verify, 210);
    act(&mut case, &c.shift_lead, Action::Close, 220);
    let view = case.fold(&context());
    assert_eq!(view.status, Some(Status::Closed));
    assert_eq!(view.counts.reworks, 2);
    let handles = view.steps.iter().filter(|s| s.step == Step::Handle).count();
    assert_eq!(handles, 3);
}

#[test]
fn escalation_raises_the_level_and_needs_the_higher_authority_to_dispatch() {
    let c = cast();
    let mut case = reported(&c.officer);
    act(&mut case, &c.acceptor, Action::Accept, 10);
    act(&mut case, &c.shift_lead, Action::Register, 20);
    act(&mut case, &c.dispatcher, Action::Escalate, 30);
    let view = case.fold(&context());
    assert_eq!(view.level, Level::District);
    assert_eq!(view.status, Some(Status::Registered));

    push(&mut case, &c.dispatcher, dispatch("sanitation"), 40);
    assert_eq!(
        ignored_because(&case),
        IgnoredReason::BeyondAuthority {
            needed: Level::District
        }
    );
    act(&mut case, &c.district_dispatcher, Action::Escalate, 50);
    assert_eq!(case.fold(&context()).level, Level::City);
    push(&mut case, &c.district_dispatcher, Action::Escalate, 55);
    assert_eq!(ignored_because(&case), IgnoredReason::TopLevel);
    act(
        &mut case,
        &c.city_dispatcher,
        dispatch("municipal_maintenance"),
        60,
    );
    let view = case.fold(&context());
    assert_eq!(view.status, Some(Status::Dispatched));
    assert_eq!(view.counts.escalations, 2);
}

#[test]
fn a_dispatch_to_the_wrong_owner_is_returned_and_dispatched_again() {
    let c = cast();
    let mut case = reported(&c.officer);
    act(&mut case, &c.acceptor, Action::Accept, 10);
    act(&mut case, &c.shift_lead, Action::Register, 20);
    act(&mut case, &c.dispatcher, dispatch("enforcement"), 30);
    push(&mut case, &c.sanitation, Action::Handle, 40);
    assert_eq!(
        ignored_because(&case),
        IgnoredReason::NotAssignee {
            team: TeamId::new("enforcement").unwrap()
        }
    );
    act(&mut case, &c.officer, Action::Return, 50);
    let view = case.fold(&context());
    assert_eq!(view.status, Some(Status::Registered));
    assert_eq!(view.assignment, None);
    assert_eq!(view.counts.returns, 1);
    act(&mut case, &c.dispatcher, dispatch("sanitation"), 60);
    act(&mut case, &c.sanitation, Action::Handle, 70);
    assert_eq!(status(&case), Status::Handled);
    assert_eq!(case.fold(&context()).counts.dispatches, 2);
}

#[test]
fn an_extension_moves_the_due_time_and_a_defer_stops_the_clock() {
    let c = cast();
    let mut case = dispatched(&c);
    let due = case
        .fold(&context())
        .current_step()
        .unwrap()
        .due_at
        .unwrap();
    push(
        &mut case,
        &c.dispatcher,
        Action::DecideExtension { approved: true },
        40,
    );
    assert_eq!(ignored_because(&case), IgnoredReason::NoPendingRequest);
    let extra = TimeLimit::working_days(2);
    act(
        &mut case,
        &c.sanitation,
        Action::RequestExtension { extra },
        45,
    );
    push(
        &mut case,
        &c.sanitation2,
        Action::RequestExtension { extra },
        46,
    );
    assert_eq!(ignored_because(&case), IgnoredReason::RequestPending);
    act(
        &mut case,
        &c.dispatcher,
        Action::DecideExtension { approved: true },
        50,
    );
    let view = case.fold(&context());
    let step = view.current_step().unwrap();
    assert_eq!(step.due_at, Some(calendar().due(due, extra)));
    assert_eq!(step.extensions, [extra]);

    act(&mut case, &c.sanitation, Action::RequestDefer, 60);
    act(
        &mut case,
        &c.dispatcher,
        Action::DecideDefer { approved: false },
        70,
    );
    assert_eq!(status(&case), Status::Dispatched);
    act(&mut case, &c.sanitation, Action::RequestDefer, 80);
    act(
        &mut case,
        &c.dispatcher,
        Action::DecideDefer { approved: true },
        90,
    );
    let view = case.fold(&context());
    assert_eq!(view.status, Some(Status::Deferred));
    assert_eq!(
        view.current_step(),
        None,
        "a deferred case's clock is stopped"
    );
    assert!(!view.is_overdue(at(1_000_000)));
    act(&mut case, &c.dispatcher, dispatch("sanitation"), 10_000);
    let view = case.fold(&context());
    assert_eq!(view.status, Some(Status::Dispatched));
    assert_eq!(view.current_step().unwrap().started_at, at(10_000));
}

#[test]
fn void_and_reopen() {
    let c = cast();
    let mut case = reported(&c.officer);
    act(&mut case, &c.acceptor, Action::Void, 10);
    assert_eq!(status(&case), Status::Voided);
    push(&mut case, &c.acceptor, Action::Accept, 20);
    assert!(matches!(
        ignored_because(&case),
        IgnoredReason::WrongStatus {
            status: Status::Voided,
            ..
        }
    ));
    act(&mut case, &c.district_supervisor, Action::Reopen, 30);
    assert_eq!(status(&case), Status::Registered);
    assert_eq!(case.fold(&context()).counts.reopens, 1);
}

/// A hotline case taken by the operator, handled and closed (at minute 200).
fn closed_hotline_case(c: &Cast) -> CaseDocument {
    let mut new = new_case();
    new.source = Source::Hotline;
    new.source_ref = Some("12319-20261123-0001".into());
    let mut case = CaseDocument::create(&new, &c.hotline, "e0", at(0)).unwrap();
    act(&mut case, &c.acceptor, Action::Accept, 10);
    act(&mut case, &c.shift_lead, Action::Register, 20);
    act(&mut case, &c.dispatcher, dispatch("sanitation"), 30);
    act(&mut case, &c.sanitation, Action::Handle, 120);
    act(&mut case, &c.supervisor, Action::Verify, 180);
    act(&mut case, &c.shift_lead, Action::Close, 200);
    case
}

fn reply(satisfied: bool) -> Action {
    Action::Reply {
        channel: ReplyChannel::Phone,
        satisfied,
    }
}

#[test]
fn a_closed_hotline_case_waits_for_the_reply_to_its_caller_with_a_due_time() {
    let c = cast();
    let mut case = closed_hotline_case(&c);
    let view = case.fold(&context());
    assert_eq!(view.status, Some(Status::Closed));
    assert!(view.awaiting_reply);
    let step = view.current_step().unwrap();
    assert_eq!(step.step, Step::Reply);
    // The catalogue's [defaults] reply = 3 working days (24 working hours) from the
    // close at Monday 12:20 Beijing time, in the lunch break: from 13:30, Monday 4.5 h,
    // Tuesday and Wednesday 8 h each, Thursday 08:30-12:00: due Thursday 12:00.
    assert_eq!(step.due_at, Some(at(3 * 24 * 60 + 3 * 60)));
    assert!(view.is_overdue(at(200) + chrono::TimeDelta::days(4)));
    // A field worker may not reply; the hotline may, once.
    push(&mut case, &c.sanitation, reply(true), 210);
    assert!(matches!(
        ignored_because(&case),
        IgnoredReason::RoleNotPermitted { .. }
    ));
    act(&mut case, &c.hotline, reply(false), 220);
    let view = case.fold(&context());
    assert!(!view.awaiting_reply);
    assert_eq!(view.current_step(), None);
    assert_eq!(view.status, Some(Status::Closed));
    push(&mut case, &c.hotline, reply(true), 230);
    assert_eq!(ignored_because(&case), IgnoredReason::NoReplyDue);
    // The caller was not satisfied: the shift lead reopens, and after the next close
    // the caller is replied to again.
    act(&mut case, &c.shift_lead, Action::Reopen, 240);
    assert_eq!(status(&case), Status::Registered);
    act(&mut case, &c.dispatcher, dispatch("sanitation"), 250);
    act(&mut case, &c.sanitation, Action::Handle, 260);
    act(&mut case, &c.supervisor, Action::Verify, 270);
    act(&mut case, &c.shift_lead, Action::Close, 280);
    assert!(case.fold(&context()).awaiting_reply);
    act(&mut case, &c.acceptor, reply(true), 290);
    let view = case.fold(&context());
    assert!(!view.awaiting_reply);
    let replies: Vec<Step> = view
        .steps
        .iter()
        .map(|s| s.step)
        .filter(|s| *s == Step::Reply)
        .collect();
    assert_eq!(replies.len(), 2);
    assert!(view.ignored().count() == 2);
}

#[test]
fn a_case_found_on_patrol_is_not_replied_to() {
    let c = cast();
    let mut case = dispatched(&c);
    act(&mut case, &c.sanitation, Action::Handle, 120);
    act(&mut case, &c.supervisor, Action::Verify, 180);
    act(&mut case, &c.shift_lead, Action::Close, 200);
    let view = case.fold(&context());
    assert!(!view.awaiting_reply);
    assert_eq!(view.current_step(), None);
    push(&mut case, &c.hotline, reply(true), 210);
    assert_eq!(ignored_because(&case), IgnoredReason::NoReplyDue);
    // And a hotline case still open cannot be replied to yet.
    let mut new = new_case();
    new.source = Source::Citizen;
    let mut open = CaseDocument::create(&new, &c.hotline, "e0", at(0)).unwrap();
    push(&mut open, &c.hotline, reply(true), 10);
    assert!(matches!(
        ignored_because(&open),
        IgnoredReason::WrongStatus {
            status: Status::Reported,
            ..
        }
    ));
}

#[test]
fn forbidden_actions_are_refused_locally_and_ignored_when_they_arrive_anyway() {
    let c = cast();
    let mut case = dispatched(&c);
    // A field worker may not close a case, even one dispatched to them.
    let refused = case.act(&context(), &c.sanitation, "x1", Action::Close, at(40), None);
    assert!(matches!(
        refused,
        Err(CaseError::Refused {
            action: ActionName::Close,
            reason: IgnoredReason::RoleNotPermitted { .. }
        })
    ));
    let before = case.fold(&context()).entries.len();
    assert_eq!(before, 4, "a refused action writes nothing");
    push(&mut case, &c.sanitation, Action::Close, 40);
    assert_eq!(
        ignored_because(&case),
        IgnoredReason::RoleNotPermitted {
            role: Role::SanitationWorker,
            action: ActionName::Close
        }
    );
    // An acceptor of another street.
    let elsewhere = actor(30, Role::ShiftLead, None, "410102002");
    push(&mut case, &elsewhere, Action::Comment, 41);
    assert_eq!(ignored_because(&case), IgnoredReason::OutOfScope);
    // The admin manages accounts, not cases, but may comment.
    act(&mut case, &c.admin, Action::Comment, 42);
    push(&mut case, &c.admin, Action::Void, 43);
    assert!(matches!(
        ignored_because(&case),
        IgnoredReason::RoleNotPermitted { .. }
    ));
    // A second report.
    push(&mut case, &c.officer, Action::Report, 44);
    assert_eq!(ignored_because(&case), IgnoredReason::AlreadyReported);
    let view = case.fold(&context());
    assert_eq!(view.status, Some(Status::Dispatched));
    assert_eq!(view.ignored().count(), 4);
}

#[test]
fn an_entry_id_used_twice_is_ignored_the_second_time() {
    let c = cast();
    let mut case = reported(&c.officer);
    let entry = TimelineEntry {
        id: "same".into(),
        action: Action::Comment,
        at: at(1),
        actor: c.acceptor.clone(),
        note: Some("first".into()),
        grid: None,
    };
    case.append_entry(&entry).unwrap();
    case.append_entry(&entry).unwrap();
    assert_eq!(
        ignored_because(&case),
        IgnoredReason::DuplicateId("same".into())
    );
}

/// Two replicas of `case`, as two devices that each went offline with it.
fn offline_pair(case: &CaseDocument) -> (CaseDocument, CaseDocument) {
    (case.clone(), case.clone())
}

fn merged(a: &CaseDocument, b: &CaseDocument) -> (CaseDocument, CaseDocument) {
    let mut ab = a.clone();
    ab.merge(b).unwrap();
    let mut ba = b.clone();
    ba.merge(a).unwrap();
    (ab, ba)
}

#[test]
fn two_officers_handling_at_once_both_stay_in_the_timeline_and_the_first_counts() {
    let c = cast();
    let case = dispatched(&c);
    let (mut a, mut b) = offline_pair(&case);
    act(&mut a, &c.sanitation, Action::Handle, 60);
    act(&mut b, &c.sanitation2, Action::Handle, 61);
    let (ab, ba) = merged(&a, &b);
    let view = ab.fold(&context());
    assert_eq!(view, ba.fold(&context()));
    assert_eq!(view.status, Some(Status::Handled));
    assert_eq!(view.entries.len(), 6);
    let ignored: Vec<_> = view.ignored().collect();
    assert_eq!(ignored.len(), 1);
    assert!(matches!(
        ignored[0].1,
        IgnoredReason::WrongStatus {
            status: Status::Handled,
            action: ActionName::Handle
        }
    ));
}

#[test]
fn close_racing_reopen_folds_the_same_on_every_replica() {
    let c = cast();
    // Two supervisors with the same scope but different devices, so that the
    // order of their concurrent entries is decided by the actor ids.
    for (low, high) in [(40, 41), (41, 40)] {
        let first = actor(low, Role::DistrictSupervisor, None, DISTRICT);
        let second = actor(high, Role::DistrictSupervisor, None, DISTRICT);
        let mut case = dispatched(&c);
        act(&mut case, &c.sanitation, Action::Handle, 60);
        act(&mut case, &c.supervisor, Action::Verify, 70);
        act(&mut case, &c.shift_lead, Action::Close, 80);
        let (mut a, mut b) = offline_pair(&case);
        // Replica a: reopened, fixed again and closed again.
        act(&mut a, &first, Action::Reopen, 90);
        act(&mut a, &c.dispatcher, dispatch("sanitation"), 91);
        act(&mut a, &c.sanitation, Action::Handle, 92);
        act(&mut a, &c.supervisor, Action::Verify, 93);
        act(&mut a, &c.shift_lead, Action::Close, 94);
        // Replica b saw only the first close and reopens it too.
        act(&mut b, &second, Action::Reopen, 95);
        let (ab, ba) = merged(&a, &b);
        let view = ab.fold(&context());
        assert_eq!(view, ba.fold(&context()));
        assert_eq!(view.entries.len(), 7 + 5 + 1);
        let b_reopen = view
            .entries
            .iter()
            .find(|e| e.entry.as_ref().unwrap().actor.user == second.user)
            .unwrap();
        if b_reopen.index == 7 {
            // b's reopen sorts first: it reopens, a's reopen finds the case
            // registered and is ignored, a's dispatch… close still apply.
            assert_eq!(view.status, Some(Status::Closed));
            assert_eq!(view.ignored().count(), 1);
        } else {
            // a's whole chain sorts first: b's reopen reopens the closed case again.
            assert_eq!(b_reopen.index, 12);
            assert_eq!(view.status, Some(Status::Registered));
            assert_eq!(view.ignored().count(), 0);
        }
    }
}

#[test]
fn an_entry_claiming_another_device_is_ignored_as_forged() {
    let c = cast();
    let mut case = reported(&c.officer);
    // Written by the officer's device but claiming the shift lead's identity:
    // the write rules refuse it; if it reaches a document anyway (an old server),
    // the fold ignores it.
    let forged = TimelineEntry {
        id: "forged".into(),
        action: Action::Void,
        at: at(5),
        actor: c.shift_lead.clone(),
        note: None,
        grid: None,
    };
    let timeline = case.object(key::TIMELINE).unwrap();
    let doc = case.automerge_mut();
    doc.set_actor(automerge::ActorId::from(vec![0, 0, 0, 1]));
    let mut fork = doc
        .fork()
        .with_actor(crate::case::actor_id(&c.officer.device).unwrap());
    fork.transact::<_, _, autosurgeon::ReconcileError>(|tx| {
        autosurgeon::reconcile_insert(
            tx,
            timeline.clone(),
            1,
            entry::StoredEntry::from_entry(&forged),
        )
    })
    .unwrap();
    let changes = fork.get_changes(&doc.get_heads());
    let changes: Vec<_> = changes.into_iter().collect();
    let refused = rules::check_case_changes(doc, &changes, &c.officer).unwrap_err();
    assert!(
        refused
            .violations
            .iter()
            .any(|v| v.kind == ViolationKind::ClaimMismatch { field: "device" })
    );
    doc.apply_changes(changes).unwrap();
    assert!(matches!(
        ignored_because(&case),
        IgnoredReason::ForgedDevice { .. }
    ));
    assert_eq!(status(&case), Status::Reported);
}

// ---------------------------------------------------------------------------
// Write rules: each role × each path.

/// An edit attempted by a writer, made on a fork and checked by the write rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Category,
    Location,
    MalformedLocation,
    Address,
    Description,
    Caller,
    AddOwnPhoto,
    RemoveOwnPhoto,
    RemoveOthersPhoto,
    RetagPhoto,
    AppendOwnEntry,
    AppendEntryClaimingOther,
    RewriteEntry,
    DeleteEntry,
    InsertEntryFirst,
    UnknownField,
    ChangeId,
    ChangeSchemaVersion,
}

const EDITS: [Edit; 18] = [
    Edit::Category,
    Edit::Location,
    Edit::MalformedLocation,
    Edit::Address,
    Edit::Description,
    Edit::Caller,
    Edit::AddOwnPhoto,
    Edit::RemoveOwnPhoto,
    Edit::RemoveOthersPhoto,
    Edit::RetagPhoto,
    Edit::AppendOwnEntry,
    Edit::AppendEntryClaimingOther,
    Edit::RewriteEntry,
    Edit::DeleteEntry,
    Edit::InsertEntryFirst,
    Edit::UnknownField,
    Edit::ChangeId,
    Edit::ChangeSchemaVersion,
];

fn photo(hash_digit: char, by: &Actor) -> Photo {
    Photo {
        hash: hash_digit.to_string().repeat(64),
        role: PhotoRole::Before,
        taken_at: Some(at(0)),
        position: Some(Position {
            lon: 113.66,
            lat: 34.75,
            accuracy_m: None,
        }),
        added_by: by.user.clone(),
        added_at: at(1),
    }
}

/// Makes `edit` as `writer` on a fork of `case` (bypassing the local checks) and
/// returns what the write rules say about it.
fn attempt(case: &CaseDocument, writer: &Actor, edit: Edit) -> Result<(), WriteRefused> {
    let base = case.automerge();
    let mut fork = base.fork().with_actor(actor_id(&writer.device).unwrap());
    let timeline = case.object(key::TIMELINE).unwrap();
    let photos = case.object(key::PHOTOS).unwrap();
    let description = case.object(key::DESCRIPTION).unwrap();
    // Photo 0 is the writer's own, photo 1 someone else's (see the caller).
    let own_photo = (0..base.length(&photos))
        .find(|&i| {
            let stored: StoredPhoto = autosurgeon::hydrate_prop(base, &photos, i).unwrap();
            stored.added_by.as_deref() == Some(writer.user.as_str())
        })
        .unwrap_or(0);
    let other_photo = (0..base.length(&photos))
        .find(|&i| {
            let stored: StoredPhoto = autosurgeon::hydrate_prop(base, &photos, i).unwrap();
            stored.added_by.as_deref() != Some(writer.user.as_str())
        })
        .unwrap_or(0);
    let entry = |who: &Actor| {
        entry::StoredEntry::from_entry(&TimelineEntry {
            id: format!("w-{}", writer.user),
            action: Action::Comment,
            at: at(50),
            actor: who.clone(),
            note: Some("看过了".into()),
            grid: Some(GRID.parse().unwrap()),
        })
    };
    let someone_else = actor(99, Role::ShiftLead, None, STREET);
    fork.transact::<_, _, automerge::AutomergeError>(|tx| {
        match edit {
            Edit::Category => tx.put(ROOT, key::CATEGORY, "E0103")?,
            Edit::Location => {
                let location = tx.put_object(ROOT, key::LOCATION, ObjType::Map)?;
                tx.put(&location, "lon", 113.7)?;
                tx.put(&location, "lat", 34.8)?;
            }
            Edit::MalformedLocation => {
                // `lon` sent as a map: the server could not locate it.
                let location = tx.put_object(ROOT, key::LOCATION, ObjType::Map)?;
                tx.put_object(&location, "lon", ObjType::Map)?;
                tx.put(&location, "lat", 34.8)?;
            }
            Edit::Address => tx.put(ROOT, key::ADDRESS, "花园路")?,
            Edit::Description => tx.splice_text(&description, 0, 0, "大量")?,
            Edit::Caller => {
                let caller = tx.put_object(ROOT, key::CALLER, ObjType::Map)?;
                tx.put(&caller, "phone", "13800000000")?;
                tx.put(&caller, "wants_reply", true)?;
            }
            Edit::AddOwnPhoto => {
                let end = tx.length(&photos);
                autosurgeon::reconcile_insert(
                    tx,
                    photos.clone(),
                    end,
                    StoredPhoto::from_photo(&photo('c', writer)),
                )
                .unwrap();
            }
            Edit::RemoveOwnPhoto => tx.delete(&photos, own_photo)?,
            Edit::RemoveOthersPhoto => tx.delete(&photos, other_photo)?,
            Edit::RetagPhoto => {
                let Some((_, item)) = tx.get(&photos, own_photo)? else {
                    unreachable!()
                };
                tx.put(&item, "role", "after")?;
            }
            Edit::AppendOwnEntry => {
                let end = tx.length(&timeline);
                autosurgeon::reconcile_insert(tx, timeline.clone(), end, entry(writer)).unwrap();
            }
            Edit::AppendEntryClaimingOther => {
                let end = tx.length(&timeline);
                let mut claim = someone_else.clone();
                claim.device = writer.device.clone();
                autosurgeon::reconcile_insert(tx, timeline.clone(), end, entry(&claim)).unwrap();
            }
            Edit::RewriteEntry => {
                let Some((_, first)) = tx.get(&timeline, 0)? else {
                    unreachable!()
                };
                tx.put(&first, "action", "close")?;
            }
            Edit::DeleteEntry => tx.delete(&timeline, 1)?,
            Edit::InsertEntryFirst => {
                autosurgeon::reconcile_insert(tx, timeline.clone(), 0, entry(writer)).unwrap();
            }
            Edit::UnknownField => tx.put(ROOT, "priority", "high")?,
            Edit::ChangeId => tx.put(ROOT, key::ID, "case-2")?,
            Edit::ChangeSchemaVersion => tx.put(ROOT, key::SCHEMA_VERSION, ScalarValue::Uint(2))?,
        }
        Ok(())
    })
    .unwrap();
    let changes: Vec<_> = fork.get_changes(&base.get_heads()).into_iter().collect();
    assert_eq!(changes.len(), 1);
    rules::check_case_changes(base, &changes, writer).map(drop)
}

/// Whether the write rules let `role` make `edit` on a case `reporter` reported.
fn expected(role: Role, is_reporter: bool, edit: Edit) -> bool {
    let fields = is_reporter
        || matches!(
            role,
            Role::Acceptor
                | Role::ShiftLead
                | Role::Dispatcher
                | Role::InformationSupervisor
                | Role::GridLeader
                | Role::HotlineOperator
                | Role::DistrictSupervisor
                | Role::CitySupervisor
                | Role::Server
        );
    match edit {
        Edit::Category | Edit::Location | Edit::Address | Edit::Description => fields,
        Edit::Caller => matches!(
            role,
            Role::HotlineOperator
                | Role::Acceptor
                | Role::ShiftLead
                | Role::DistrictSupervisor
                | Role::CitySupervisor
                | Role::Server
        ),
        Edit::AddOwnPhoto | Edit::RemoveOwnPhoto | Edit::AppendOwnEntry => true,
        Edit::ChangeSchemaVersion => role == Role::Server,
        Edit::RemoveOthersPhoto
        | Edit::RetagPhoto
        | Edit::AppendEntryClaimingOther
        | Edit::RewriteEntry
        | Edit::DeleteEntry
        | Edit::InsertEntryFirst
        | Edit::UnknownField
        | Edit::MalformedLocation
        | Edit::ChangeId => false,
    }
}

#[test]
fn write_rules_for_each_role_and_each_path() {
    let reporter = actor(
        1,
        Role::EnforcementOfficer,
        Some("enforcement"),
        "410102001001",
    );
    let mut checked = 0;
    for (n, role) in (50..).zip(Role::ALL) {
        let writer = actor(n, role, None, DISTRICT);
        for is_reporter in [false, true] {
            if is_reporter && !fold::allowed(role, ActionName::Report) {
                continue;
            }
            let mut case = reported(if is_reporter { &writer } else { &reporter });
            // One photo of the writer's and one of someone else's.
            case.add_photo(&writer, &photo('a', &writer)).unwrap();
            case.add_photo(&reporter, &photo('b', &reporter)).unwrap();
            push(&mut case, &reporter, Action::Comment, 2);
            for edit in EDITS {
                if edit == Edit::RemoveOthersPhoto && is_reporter {
                    continue;
                }
                let verdict = attempt(&case, &writer, edit);
                assert_eq!(
                    verdict.is_ok(),
                    expected(role, is_reporter, edit),
                    "{role} (reporter: {is_reporter}) {edit:?}: {verdict:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 15 * 17);
}

#[test]
fn a_refusal_names_the_document_and_the_path() {
    let c = cast();
    let case = reported(&c.officer);
    let refused = attempt(&case, &c.sanitation, Edit::RewriteEntry).unwrap_err();
    assert_eq!(refused.doc, "case-1");
    assert_eq!(refused.violations.len(), 1);
    assert_eq!(refused.violations[0].path, "timeline/0/action");
    assert_eq!(refused.violations[0].kind, ViolationKind::AppendOnly);
    let message = refused.to_string();
    assert!(
        message.contains("case-1") && message.contains("timeline/0/action"),
        "{message}"
    );
}

#[test]
fn changes_from_another_device_or_with_missing_dependencies_are_refused() {
    let c = cast();
    let mut case = reported(&c.officer);
    let before = case.automerge().clone();
    case.set_description(&c.officer, "两堆垃圾").unwrap();
    let changes: Vec<_> = case
        .automerge()
        .get_changes(&before.get_heads())
        .into_iter()
        .collect();
    let refused = rules::check_case_changes(&before, &changes, &c.acceptor).unwrap_err();
    assert!(matches!(
        refused.violations[0].kind,
        ViolationKind::ForeignActor { .. }
    ));
    // The second of two changes without the first.
    let base = case.automerge().clone();
    case.set_address(&c.officer, "一").unwrap();
    case.set_address(&c.officer, "二").unwrap();
    let changes: Vec<_> = case.automerge().get_changes(&base.get_heads());
    let refused = rules::check_case_changes(&base, &changes[1..], &c.officer).unwrap_err();
    assert_eq!(
        refused.violations[0].kind,
        ViolationKind::MissingDependencies
    );
    assert!(rules::check_case_changes(&base, &changes, &c.officer).is_ok());
}

#[test]
fn only_a_role_that_may_report_creates_a_case() {
    let c = cast();
    let refused = CaseDocument::create(&new_case(), &c.dispatcher, "e0", at(0)).unwrap_err();
    assert!(matches!(refused, CaseError::WriteRefused(_)), "{refused:?}");
    assert!(CaseDocument::create(&new_case(), &c.hotline, "e0", at(0)).is_ok());
}

#[test]
fn the_local_edit_methods_refuse_what_the_server_would() {
    let c = cast();
    let mut case = reported(&c.officer);
    assert!(
        case.set_caller(
            &c.sanitation,
            &Caller {
                name: None,
                phone: Some("1".into()),
                wants_reply: false
            }
        )
        .is_err()
    );
    case.add_photo(&c.sanitation, &photo('d', &c.sanitation))
        .unwrap();
    assert_eq!(case.remove_photo(&c.officer, &"d".repeat(64)).unwrap(), 0);
    assert_eq!(case.read().photos.len(), 1);
    assert_eq!(
        case.remove_photo(&c.sanitation, &"d".repeat(64)).unwrap(),
        1
    );
    assert!(case.read().photos.is_empty());
    assert!(
        case.set_category(&c.officer, "C0101".parse().unwrap())
            .is_err()
    );
    case.set_category(&c.acceptor, "E0103".parse().unwrap())
        .unwrap();
    assert_eq!(case.read().category.unwrap().to_string(), "E0103");
}

#[test]
fn concurrent_description_edits_both_survive() {
    let c = cast();
    let case = reported(&c.officer);
    let (mut a, mut b) = offline_pair(&case);
    a.set_description(&c.officer, "路边暴露垃圾一堆，有异味")
        .unwrap();
    b.set_description(&c.hotline, "市民来电：路边暴露垃圾一堆")
        .unwrap();
    let (ab, ba) = merged(&a, &b);
    assert_eq!(ab.read().description, ba.read().description);
    assert_eq!(ab.read().description, "市民来电：路边暴露垃圾一堆，有异味");
}

// ---------------------------------------------------------------------------
// Bad documents.

fn raw_case(f: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) -> CaseDocument {
    let mut doc = Automerge::new().with_actor(actor_id(&device(1)).unwrap());
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        f(tx);
        Ok(())
    })
    .unwrap();
    CaseDocument::from_automerge(doc)
}

fn raw_entry(
    tx: &mut automerge::transaction::Transaction<'_>,
    timeline: &automerge::ObjId,
    fields: &[(&str, ScalarValue)],
) {
    let end = tx.length(timeline);
    let entry = tx.insert_object(timeline, end, ObjType::Map).unwrap();
    for (key, value) in fields {
        tx.put(&entry, *key, value.clone()).unwrap();
    }
}

fn report_fields(action: &str) -> Vec<(&'static str, ScalarValue)> {
    vec![
        ("id", ScalarValue::Str(format!("r-{action}").into())),
        ("action", ScalarValue::Str(action.into())),
        ("at", ScalarValue::Int(at(0).timestamp_millis())),
        ("user", ScalarValue::Str("u1".into())),
        ("role", ScalarValue::Str("enforcement_officer".into())),
        ("team", ScalarValue::Str("enforcement".into())),
        ("scope", ScalarValue::Str("410102001001".into())),
        ("device", ScalarValue::Str(device(1).into())),
    ]
}

#[test]
fn a_document_with_unknown_missing_and_mistyped_fields_still_folds() {
    let case = raw_case(|tx| {
        tx.put(ROOT, key::SCHEMA_VERSION, ScalarValue::Uint(1))
            .unwrap();
        tx.put(ROOT, key::ID, "bad-1").unwrap();
        // category missing; grid of the wrong type; an unknown field.
        tx.put(ROOT, key::GRID, 410102001001001_i64).unwrap();
        tx.put(ROOT, "colour", "red").unwrap();
        tx.put(ROOT, key::PHOTOS, "not a list").unwrap();
        let timeline = tx.put_object(ROOT, key::TIMELINE, ObjType::List).unwrap();
        raw_entry(tx, &timeline, &report_fields("report"));
        // Unknown action; malformed payload; wrong type; not a map at all.
        raw_entry(tx, &timeline, &report_fields("teleport"));
        let mut no_team = report_fields("dispatch");
        no_team[1] = ("action", ScalarValue::Str("dispatch".into()));
        raw_entry(tx, &timeline, &no_team);
        let mut bad_time = report_fields("comment");
        bad_time[2] = ("at", ScalarValue::Str("yesterday".into()));
        raw_entry(tx, &timeline, &bad_time);
        tx.insert(&timeline, 4, "just a string").unwrap();
        let mut bad_extra = report_fields("request_extension");
        bad_extra.push(("extra", ScalarValue::Str("forever".into())));
        raw_entry(tx, &timeline, &bad_extra);
    });
    let view = case.fold(&context());
    assert_eq!(view.status, Some(Status::Reported));
    assert_eq!(view.entries.len(), 6);
    let reasons: Vec<String> = view.ignored().map(|(_, r)| r.to_string()).collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(
        reasons[0].contains("unknown action \"teleport\""),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("to_team"), "{reasons:?}");
    assert!(reasons[2].contains("wrong type"), "{reasons:?}");
    assert!(reasons[3].contains("not a map"), "{reasons:?}");
    assert!(reasons[4].contains("extra"), "{reasons:?}");
    let paths: Vec<&str> = view
        .record
        .problems
        .iter()
        .map(|p| p.path.as_str())
        .collect();
    for expected in ["grid", "photos", "category", "location", "colour"] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    assert_eq!(view.record.id.as_deref(), Some("bad-1"));
    assert_eq!(view.steps.len(), 1);
    assert_eq!(view.steps[0].due_at, None, "no category, no due time");
}

#[test]
fn garbage_bytes_are_an_error_not_a_panic() {
    for bytes in [&b"\x85o\x4a\x83"[..], b"not automerge at all", &[0xff; 300]] {
        assert!(
            matches!(CaseDocument::load(bytes), Err(CaseError::Load(_))),
            "{bytes:?}"
        );
    }
    // No bytes at all load as an empty document, which folds to nothing.
    if let Ok(empty) = CaseDocument::load(b"") {
        assert_eq!(empty.fold(&context()).status, None);
    }
    // A valid Automerge document that is not a case at all.
    let mut doc = automerge::AutoCommit::new();
    doc.put(ROOT, "hello", "world").unwrap();
    let case = CaseDocument::load(&doc.save()).unwrap();
    let view = case.fold(&context());
    assert_eq!(view.status, None);
    assert!(view.entries.is_empty());
    assert!(!view.record.problems.is_empty());
    // The timeline is a map instead of a list.
    let case = raw_case(|tx| {
        tx.put_object(ROOT, key::TIMELINE, ObjType::Map).unwrap();
    });
    assert!(
        case.fold(&context())
            .record
            .problems
            .iter()
            .any(|p| p.path == "timeline")
    );
}

#[test]
fn a_version_0_document_reads_and_the_server_upgrades_it() {
    // Version 0 had no schema_version and kept the description as a plain string.
    let c = cast();
    let mut case = raw_case(|tx| {
        tx.put(ROOT, key::ID, "old-1").unwrap();
        tx.put(ROOT, key::KIND, "event").unwrap();
        tx.put(ROOT, key::CATEGORY, "E0102").unwrap();
        tx.put(ROOT, key::DESCRIPTION, "旧的描述").unwrap();
        tx.put(ROOT, key::REPORTER, "u1").unwrap();
        let location = tx.put_object(ROOT, key::LOCATION, ObjType::Map).unwrap();
        tx.put(&location, "lon", 113.6).unwrap();
        tx.put(&location, "lat", 34.7).unwrap();
        tx.put_object(ROOT, key::PHOTOS, ObjType::List).unwrap();
        let timeline = tx.put_object(ROOT, key::TIMELINE, ObjType::List).unwrap();
        raw_entry(tx, &timeline, &report_fields("report"));
    });
    assert_eq!(case.schema_version(), 0);
    assert_eq!(case.read().description, "旧的描述");
    assert_eq!(case.fold(&context()).status, Some(Status::Reported));
    assert!(
        case.upgrade(&c.officer).is_err(),
        "only the server upgrades"
    );
    assert!(case.upgrade(&c.server).unwrap());
    assert!(!case.upgrade(&c.server).unwrap());
    assert_eq!(case.schema_version(), SCHEMA_VERSION);
    assert_eq!(case.read().description, "旧的描述");
    case.set_description(&c.acceptor, "旧的描述（已核实）")
        .unwrap();
    assert_eq!(case.read().description, "旧的描述（已核实）");
}

#[test]
fn a_newer_document_folds_but_is_not_edited() {
    let c = cast();
    let mut case = reported(&c.officer);
    let doc = case.automerge_mut();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(
            ROOT,
            key::SCHEMA_VERSION,
            ScalarValue::Uint(SCHEMA_VERSION + 1),
        )?;
        Ok(())
    })
    .unwrap();
    assert_eq!(status(&case), Status::Reported);
    assert!(matches!(
        case.act(&context(), &c.acceptor, "x", Action::Accept, at(1), None),
        Err(CaseError::NewerSchema { .. })
    ));
}

#[test]
fn a_saved_case_loads_back_the_same() {
    let c = cast();
    let mut case = dispatched(&c);
    case.add_photo(&c.officer, &photo('e', &c.officer)).unwrap();
    let bytes = case.save();
    let loaded = CaseDocument::load(&bytes).unwrap();
    assert_eq!(loaded.fold(&context()), case.fold(&context()));
    assert_eq!(loaded.read().photos, [photo('e', &c.officer)]);
}

#[test]
fn moving_a_case_to_another_grid_keeps_what_was_done_in_the_first() {
    let c = cast();
    let mut case = dispatched(&c);
    // The acceptor and dispatcher of street 410102001 acted on it; now it turns out
    // to be in the next street, 410102002.
    let elsewhere: crate::grid::GridCode = "410102002001001".parse().unwrap();
    case.set_location(
        &c.acceptor,
        Position {
            lon: 113.67,
            lat: 34.75,
            accuracy_m: None,
        },
        Some(elsewhere),
    )
    .unwrap();
    let view = case.fold(&context());
    assert!(
        view.ignored().next().is_none(),
        "{:?}",
        view.ignored().collect::<Vec<_>>()
    );
    assert_eq!(view.status, Some(Status::Dispatched));
    // From now on the first street's staff are out of scope, the new street's are not.
    push(&mut case, &c.shift_lead, Action::Comment, 40);
    assert_eq!(ignored_because(&case), IgnoredReason::OutOfScope);
    let next_street = actor(31, Role::ShiftLead, None, "410102002");
    act(&mut case, &next_street, Action::Comment, 41);
    // An entry must name the grid as it was: claiming another is refused.
    let lying = TimelineEntry {
        id: "lie".into(),
        action: Action::Comment,
        at: at(42),
        actor: c.shift_lead.clone(),
        note: None,
        grid: Some(GRID.parse().unwrap()),
    };
    let timeline = case.object(key::TIMELINE).unwrap();
    let base = case.automerge().clone();
    let mut fork = base
        .fork()
        .with_actor(actor_id(&c.shift_lead.device).unwrap());
    fork.transact::<_, _, autosurgeon::ReconcileError>(|tx| {
        let end = tx.length(&timeline);
        autosurgeon::reconcile_insert(
            tx,
            timeline.clone(),
            end,
            entry::StoredEntry::from_entry(&lying),
        )
    })
    .unwrap();
    let changes: Vec<_> = fork.get_changes(&base.get_heads()).into_iter().collect();
    let refused = rules::check_case_changes(&base, &changes, &c.shift_lead).unwrap_err();
    assert_eq!(
        refused.violations[0].kind,
        ViolationKind::ClaimMismatch { field: "grid" }
    );
}

#[test]
fn texts_are_bounded_locally_and_by_the_write_rules() {
    let c = cast();
    let mut case = reported(&c.officer);
    let long = "垃".repeat(MAX_DESCRIPTION_CHARS + 1);
    assert!(matches!(
        case.set_description(&c.officer, &long),
        Err(CaseError::Invalid(_))
    ));
    assert!(
        case.set_address(&c.officer, &"路".repeat(MAX_ADDRESS_CHARS + 1))
            .is_err()
    );
    let note = Some("注".repeat(MAX_NOTE_CHARS + 1));
    assert!(
        case.act(&context(), &c.acceptor, "n", Action::Comment, at(1), note)
            .is_err()
    );
    // The same edit made without the local checks is refused by the write rules.
    let base = case.automerge().clone();
    let description = case.object(key::DESCRIPTION).unwrap();
    let mut fork = base.fork().with_actor(actor_id(&c.officer.device).unwrap());
    fork.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.splice_text(&description, 0, 0, &long)
    })
    .unwrap();
    let changes: Vec<_> = fork.get_changes(&base.get_heads()).into_iter().collect();
    let refused = rules::check_case_changes(&base, &changes, &c.officer).unwrap_err();
    assert_eq!(
        refused.violations[0].kind,
        ViolationKind::TooLong {
            max: MAX_DESCRIPTION_CHARS
        }
    );
    assert_eq!(case.read().description, "路边暴露垃圾一堆");
}

#[test]
fn the_actions_offered_are_the_ones_the_fold_would_apply() {
    let c = cast();
    let case = dispatched(&c);
    let view = case.fold(&context());
    let offered = |who: &Actor| -> Vec<&'static str> {
        view.allowed_actions(who, &context(), at(60))
            .into_iter()
            .map(|a| a.as_str())
            .collect()
    };
    let worker = offered(&c.sanitation);
    assert!(worker.contains(&"handle"), "{worker:?}");
    assert!(worker.contains(&"request_extension"), "{worker:?}");
    assert!(
        !worker.contains(&"close") && !worker.contains(&"dispatch"),
        "{worker:?}"
    );
    // Every one offered is taken when tried for real.
    for name in worker {
        let action = match name {
            "handle" => Action::Handle,
            "comment" => Action::Comment,
            "return" => Action::Return,
            "request_defer" => Action::RequestDefer,
            "request_extension" => Action::RequestExtension {
                extra: crate::catalog::TimeLimit::working_days(1),
            },
            other => panic!("unexpected offer {other}"),
        };
        let mut copy = case.clone();
        act(&mut copy, &c.sanitation, action, 60);
    }
}

#[test]
fn every_action_is_built_from_its_fields_with_the_same_checks() {
    use crate::case::ActionFields;
    let fields = |extra: &'static str| ActionFields {
        extra: Some(extra),
        ..ActionFields::default()
    };
    assert!(Action::from_fields(ActionName::RequestExtension, &fields("2 working_days")).is_ok());
    for bad in ["0 hours", "400 working_days", "9000 hours", "soon"] {
        assert!(
            matches!(
                Action::from_fields(ActionName::RequestExtension, &fields(bad)),
                Err(EntryError::Invalid { key: "extra", .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(
        Action::from_fields(ActionName::Dispatch, &ActionFields::default()),
        Err(EntryError::Missing("team"))
    );
    assert_eq!(
        Action::from_fields(
            ActionName::Reply,
            &ActionFields {
                channel: Some("phone"),
                ..ActionFields::default()
            }
        ),
        Err(EntryError::Missing("satisfied"))
    );
    let dispatch = ActionFields {
        team: Some("sanitation"),
        assignee: Some("w1"),
        ..ActionFields::default()
    };
    assert_eq!(
        Action::from_fields(ActionName::Dispatch, &dispatch),
        Ok(Action::Dispatch {
            team: TeamId::new("sanitation").unwrap(),
            assignee: Some("w1".into()),
        })
    );
}
