//! Property test: replicas that act offline (valid and invalid actions alike), with
//! clocks that disagree, and merge in any order and grouping fold the same state,
//! keep every entry, and give every ignored entry a reason; and what the fold applied
//! obeys the workflow as written out again below (roles, status transitions, the
//! grid in the actor's scope, the assigned team), not as `fold.rs` says it.

use proptest::prelude::*;

use super::fold::allowed;
use super::tests::{DISTRICT, actor, at, context, new_case, reported};
use super::*;
use crate::catalog::{TeamId, TimeLimit};
use crate::role::{Actor, Role};

/// The people on one replica (a phone, or the command centre's server): their
/// devices are this replica's own, as in the field.
fn people(replica: usize) -> Vec<Actor> {
    let n = |k: u32| 100 + u32::try_from(replica).unwrap() * 10 + k;
    let community = "410102001001";
    vec![
        actor(n(0), Role::SanitationWorker, Some("sanitation"), community),
        actor(
            n(1),
            Role::EnforcementOfficer,
            Some("enforcement"),
            community,
        ),
        actor(n(2), Role::Acceptor, None, DISTRICT),
        actor(n(3), Role::ShiftLead, None, DISTRICT),
        actor(n(4), Role::Dispatcher, None, DISTRICT),
        actor(n(5), Role::InformationSupervisor, None, community),
        actor(n(6), Role::DistrictSupervisor, None, DISTRICT),
        actor(n(7), Role::Dispatcher, None, "410102002"),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    /// Replica `replica`'s person `person` appends `action`.
    Act {
        replica: usize,
        person: usize,
        action: ActionName,
        flag: bool,
    },
    /// Replica `into` receives everything replica `from` has.
    Merge { into: usize, from: usize },
}

/// The workflow's next steps by the people who take them (indexes into [`people`]),
/// so that histories reach every status, not only the first few.
const PROGRESS: [(ActionName, usize); 8] = [
    (ActionName::Accept, 2),
    (ActionName::Register, 3),
    (ActionName::Dispatch, 4),
    (ActionName::Handle, 0),
    (ActionName::Verify, 5),
    (ActionName::Rework, 5),
    (ActionName::Close, 3),
    (ActionName::Return, 0),
];

fn step(replicas: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        // Mostly on one replica, so that a chain of steps is not all concurrent.
        3 => (prop_oneof![3 => Just(0), 1 => 0..replicas], 0..PROGRESS.len()).prop_map(|(replica, k)| Step::Act {
            replica,
            person: PROGRESS[k].1,
            action: PROGRESS[k].0,
            flag: true,
        }),
        3 => (0..replicas, 0..8usize, 0..ActionName::ALL.len(), any::<bool>()).prop_map(
            |(replica, person, action, flag)| Step::Act {
                replica,
                person,
                action: ActionName::ALL[action],
                flag,
            }
        ),
        1 => (0..replicas, 0..replicas).prop_map(|(into, from)| Step::Merge { into, from }),
    ]
}

fn action(name: ActionName, flag: bool) -> Action {
    match name {
        ActionName::Report => Action::Report,
        ActionName::Accept => Action::Accept,
        ActionName::Register => Action::Register,
        ActionName::Dispatch => Action::Dispatch {
            // An unknown team now and then: the fold must ignore that dispatch.
            team: TeamId::new(if flag { "sanitation" } else { "ghost" }).unwrap(),
            assignee: None,
        },
        ActionName::Handle => Action::Handle,
        ActionName::Verify => Action::Verify,
        ActionName::Rework => Action::Rework,
        ActionName::Close => Action::Close,
        ActionName::Return => Action::Return,
        ActionName::RequestExtension => Action::RequestExtension {
            extra: TimeLimit::working_days(1),
        },
        ActionName::DecideExtension => Action::DecideExtension { approved: flag },
        ActionName::RequestDefer => Action::RequestDefer,
        ActionName::DecideDefer => Action::DecideDefer { approved: flag },
        ActionName::Void => Action::Void,
        ActionName::Escalate => Action::Escalate,
        ActionName::Reopen => Action::Reopen,
        ActionName::Comment => Action::Comment,
        ActionName::Reply => Action::Reply {
            channel: crate::case::ReplyChannel::Phone,
            satisfied: flag,
        },
    }
}

/// The replicas, the steps, each replica's merge order, and each replica's clock
/// error in minutes (a phone hours slow or fast): entries' times do not rise with
/// the order they were written in.
type Scenario = (usize, Vec<Step>, Vec<Vec<usize>>, Vec<i64>);

fn scenario() -> impl Strategy<Value = Scenario> {
    (2..=5usize).prop_flat_map(|replicas| {
        let orders: Vec<_> = (0..replicas)
            .map(|_| Just((0..replicas).collect::<Vec<_>>()).prop_shuffle())
            .collect();
        (
            Just(replicas),
            proptest::collection::vec(step(replicas), 1..60),
            orders,
            proptest::collection::vec(-240i64..240, replicas),
        )
    })
}

/// The workflow's status after `action` applied in `from`, written out from the
/// workflow's description (docs and the plan), independently of `fold.rs`; `None`
/// where the action cannot be taken in that status.
fn next_status(action: &Action, from: Status) -> Option<Status> {
    use Status as S;
    Some(match (action, from) {
        (Action::Accept, S::Reported) => S::Accepted,
        (Action::Register, S::Accepted) => S::Registered,
        (Action::Dispatch { .. }, S::Registered | S::Deferred) => S::Dispatched,
        (Action::Handle, S::Dispatched) => S::Handled,
        (Action::Return, S::Dispatched) => S::Registered,
        (
            Action::RequestExtension { .. } | Action::DecideExtension { .. } | Action::RequestDefer,
            S::Dispatched,
        ) => S::Dispatched,
        (Action::DecideDefer { approved }, S::Dispatched) => {
            if *approved {
                S::Deferred
            } else {
                S::Dispatched
            }
        }
        (Action::Verify, S::Handled) => S::Verified,
        (Action::Rework, S::Handled) => S::Dispatched,
        (Action::Close, S::Verified) => S::Closed,
        (Action::Reply { .. }, S::Closed) => S::Closed,
        (Action::Void, S::Reported | S::Accepted | S::Registered) => S::Voided,
        (Action::Escalate, S::Registered | S::Dispatched) => S::Registered,
        (Action::Reopen, S::Closed | S::Voided) => S::Registered,
        (Action::Comment, status) => status,
        _ => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn replicas_fold_the_same_state_whatever_the_merge_order(
        (replicas, steps, orders, skew) in scenario()
    ) {
        let reporter = people(0).remove(1);
        let origin = reported(&reporter);
        let mut docs: Vec<CaseDocument> = vec![origin; replicas];
        let mut appended = vec!["e0".to_owned()];
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Act { replica, person, action: name, flag } => {
                    let who = people(*replica).remove(*person);
                    let id = format!("p{i}");
                    let entry = TimelineEntry {
                        id: id.clone(),
                        action: action(*name, *flag),
                        at: at(i64::try_from(i).unwrap() * 7 + skew[*replica]),
                        actor: who,
                        note: None,
                        grid: None,
                    };
                    docs[*replica].append_entry(&entry).unwrap();
                    appended.push(id);
                }
                Step::Merge { into, from } => {
                    let other = docs[*from].clone();
                    docs[*into].merge(&other).unwrap();
                }
            }
        }
        // Every replica receives every other, each in its own order.
        let snapshot = docs.clone();
        for (replica, order) in orders.iter().enumerate() {
            for &from in order {
                docs[replica].merge(&snapshot[from]).unwrap();
            }
        }
        let context = context();
        let first = docs[0].fold(&context);
        for doc in &docs[1..] {
            prop_assert_eq!(&doc.fold(&context), &first);
        }
        // Nothing lost: every appended entry is there once.
        let mut ids: Vec<String> = first
            .entries
            .iter()
            .map(|e| e.entry.as_ref().unwrap().id.clone())
            .collect();
        ids.sort();
        appended.sort();
        prop_assert_eq!(ids, appended);
        // What applied was permitted: the role, the status it was taken in (replayed
        // from the applied entries in the fold's order), the case's grid in the
        // actor's scope, the assigned team for the team's own actions.
        let grid = new_case().grid.map(|g| g.to_string()).unwrap_or_default();
        let mut status = None;
        let mut team: Option<TeamId> = None;
        for folded in &first.entries {
            let entry = folded.entry.as_ref().unwrap();
            if folded.outcome != Outcome::Applied {
                continue;
            }
            prop_assert!(allowed(entry.actor.role, entry.action.name()));
            let Some(from) = status else {
                prop_assert_eq!(&entry.action, &Action::Report, "the report comes first");
                status = Some(Status::Reported);
                continue;
            };
            let in_scope = entry
                .actor
                .scope
                .prefixes()
                .iter()
                .any(|prefix| grid.starts_with(prefix.as_str()));
            prop_assert!(in_scope, "{} applied outside its scope", entry.id);
            let next = next_status(&entry.action, from);
            prop_assert!(next.is_some(), "{:?} applied in {:?}", entry.action, from);
            if matches!(
                entry.action,
                Action::Handle | Action::Return | Action::RequestExtension { .. } | Action::RequestDefer
            ) {
                prop_assert_eq!(entry.actor.team.as_ref(), team.as_ref(), "not the assigned team");
            }
            match &entry.action {
                Action::Dispatch { team: to, .. } => team = Some(to.clone()),
                Action::Return | Action::Void | Action::Escalate => team = None,
                _ => {}
            }
            status = next;
        }
        prop_assert_eq!(first.status, status, "the replayed status");
        let reloaded = CaseDocument::load(&docs[0].save()).unwrap();
        prop_assert_eq!(reloaded.fold(&context), first);
    }
}
