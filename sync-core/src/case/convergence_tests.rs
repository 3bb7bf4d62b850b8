//! Property test: replicas that act offline (valid and invalid actions alike) and
//! merge in any order and grouping fold the same state, keep every entry, and give
//! every ignored entry a reason.

use proptest::prelude::*;

use super::fold::allowed;
use super::tests::{DISTRICT, actor, at, context, reported};
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

fn step(replicas: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
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

fn scenario() -> impl Strategy<Value = (usize, Vec<Step>, Vec<Vec<usize>>)> {
    (2..=5usize).prop_flat_map(|replicas| {
        let orders: Vec<_> = (0..replicas)
            .map(|_| Just((0..replicas).collect::<Vec<_>>()).prop_shuffle())
            .collect();
        (
            Just(replicas),
            proptest::collection::vec(step(replicas), 1..40),
            orders,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replicas_fold_the_same_state_whatever_the_merge_order(
        (replicas, steps, orders) in scenario()
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
                        at: at(i64::try_from(i).unwrap() * 7),
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
        // What applied was permitted; the fold is a pure function of the document.
        for folded in &first.entries {
            let entry = folded.entry.as_ref().unwrap();
            if folded.outcome == Outcome::Applied {
                prop_assert!(allowed(entry.actor.role, entry.action.name()));
            }
        }
        let reloaded = CaseDocument::load(&docs[0].save()).unwrap();
        prop_assert_eq!(reloaded.fold(&context), first);
    }
}
