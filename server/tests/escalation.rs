//! Overdue escalation on both databases: a dispatched case left past its due time goes
//! up one level, once per overdue step; a write conditional on stale heads is refused,
//! and one merged from stale heads is applied to what is stored.

mod common;

use chrono::DateTime;
use common::{Fresh, actor, at, backends, case_rules, new_case, store_case};
use wangge_server::cases::Materializer;
use wangge_server::escalation::escalate_overdue_cases;
use wangge_server::store::StoreError;
use wangge_sync_core::case::{Action, CaseDocument};
use wangge_sync_core::catalog::TeamId;
use wangge_sync_core::role::Role;
use wangge_sync_core::sync::server::{DocWrite, Merged};
use wangge_sync_core::sync::{DocKind, DocMeta, load_chunks};

/// A case reported, accepted, registered and dispatched to sanitation at minute 3.
fn dispatched_case(id: &str) -> CaseDocument {
    let officer = actor(
        1,
        Role::EnforcementOfficer,
        Some("enforcement"),
        "410102001001",
    );
    let supervisor = actor(2, Role::DistrictSupervisor, None, "410102");
    let new = new_case(id);
    let mut case = CaseDocument::create(&new, &officer, "r", at(0)).expect("report");
    let rules = case_rules();
    let context = rules.context();
    let dispatch = Action::Dispatch {
        team: TeamId::new("sanitation").expect("team"),
        assignee: None,
    };
    for (n, action) in [Action::Accept, Action::Register, dispatch]
        .into_iter()
        .enumerate()
    {
        case.act(
            &context,
            &supervisor,
            &format!("s{n}"),
            action,
            at(n as i64 + 1),
            None,
        )
        .expect("act");
    }
    case
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_case_is_escalated_once_per_step_on_every_backend() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let rules = case_rules();
        let case = dispatched_case("late");
        store_case(&store, "late", &case, &[]).await;
        let row = store.case_row("late").await.expect("read").expect("row");
        let due = DateTime::from_timestamp_millis(row.due_at.expect("due")).expect("due");
        assert_eq!(row.level, "street");

        let on_time = escalate_overdue_cases(&store, &rules, due)
            .await
            .expect("pass");
        assert!(on_time.is_empty(), "{backend:?}: not late yet");
        let late = due + chrono::TimeDelta::minutes(5);
        let written = escalate_overdue_cases(&store, &rules, late)
            .await
            .expect("pass");
        assert_eq!(written.len(), 1, "{backend:?}");
        let row = store.case_row("late").await.expect("read").expect("row");
        assert_eq!(row.level, "district", "{backend:?}");
        assert_eq!(row.status.as_deref(), Some("registered"));
        assert_eq!(row.escalations, 1);
        assert!(row.due_at.expect("new due") > late.timestamp_millis());
        let again = escalate_overdue_cases(&store, &rules, late)
            .await
            .expect("pass");
        assert!(again.is_empty(), "{backend:?}: once per overdue step");

        // A write conditional on heads that are no longer the stored ones is refused.
        let stale = case.automerge().get_heads();
        let mut edit = case.clone();
        let comment = actor(2, Role::DistrictSupervisor, None, "410102");
        edit.act(&rules.context(), &comment, "c", Action::Comment, late, None)
            .expect("comment");
        let write = DocWrite {
            id: "late".into(),
            kind: DocKind::Case,
            changes: edit
                .automerge()
                .get_changes(&stale)
                .iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect(),
            meta: DocMeta::of_case(&edit.fold(&rules.context())),
            heads: edit.automerge().get_heads(),
            merged: None,
        };
        let derive = Materializer {
            rules: &rules,
            now: 0,
            clock_skew_ms: None,
        };
        let refused = store.document_write(&write, Some(&stale), &derive, 0).await;
        assert!(
            matches!(refused, Err(StoreError::Conflict { .. })),
            "{backend:?}: {refused:?}"
        );

        // Unconditional, the same edit carrying the document it was merged into from
        // the stale heads: the store sees the stored heads moved, so it applies the
        // changes to what is stored instead of saving that document over the
        // escalation.
        let merged = DocWrite {
            merged: Some(Merged::new(stale.clone(), edit.automerge().clone())),
            ..write
        };
        store
            .document_write(&merged, None, &derive, 0)
            .await
            .expect("merged write");
        let stored = store
            .sync_document("late")
            .await
            .expect("read")
            .expect("stored");
        let doc = CaseDocument::from_automerge(load_chunks(&stored.chunks).expect("loads"));
        let view = doc.fold(&rules.context());
        let actions: Vec<Action> = view
            .entries
            .iter()
            .filter_map(|e| e.entry.as_ref().map(|e| e.action.clone()))
            .collect();
        assert!(
            actions.contains(&Action::Comment),
            "{backend:?}: {actions:?}"
        );
        let row = store.case_row("late").await.expect("read").expect("row");
        assert_eq!(row.escalations, 1, "{backend:?}: the escalation stays");
        assert_eq!(row.level, "district", "{backend:?}");
    }
}
