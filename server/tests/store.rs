//! The storage suite, run against every backend: SQLite in a temporary file and
//! PostgreSQL (a fresh schema per test) at `WANGGE_TEST_POSTGRES_URL`. With `CI=true`
//! and no PostgreSQL URL, the suite fails instead of skipping.

mod common;

use common::{Fresh, backends};
use wangge_server::store::{
    Backend, Device, RefreshOutcome, RefreshToken, SigningKey, Store, StoreError, User,
};
use wangge_sync_core::catalog::TeamId;
use wangge_sync_core::role::Role;

fn user(id: &str) -> User {
    User {
        id: id.into(),
        display_name: format!("用户{id}"),
        role: Role::SanitationWorker,
        team: Some(TeamId::new("sanitation").expect("team")),
        scope: "410102001001,410102001002".parse().expect("scope"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        created_at: 1_700_000_000_000,
        disabled: false,
    }
}

fn device(id: &str, user: &str) -> Device {
    Device {
        id: id.into(),
        user_id: user.into(),
        name: "Redmi 12".into(),
        actor_id: format!("{:0>32}", id),
        created_at: 1_700_000_000_000,
        last_seen_at: None,
        revoked_at: None,
    }
}

/// User `w1` with device `d1`.
async fn worker_with_phone(store: &dyn Store) {
    store.create_user(&user("w1")).await.expect("user");
    store
        .create_device(&device("d1", "w1"))
        .await
        .expect("device");
}

fn token(hash: &str, family: &str, device: &str, expires_at: i64) -> RefreshToken {
    RefreshToken {
        token_hash: hash.into(),
        family_id: family.into(),
        device_id: device.into(),
        user_id: "w1".into(),
        issued_at: 1_000,
        expires_at,
    }
}

#[tokio::test]
async fn users_are_created_once_and_read_back_whole() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        store.create_user(&user("w2")).await.expect("create");
        store.create_user(&user("w1")).await.expect("create");
        assert!(
            matches!(
                store.create_user(&user("w1")).await,
                Err(StoreError::Conflict { what: "user", .. })
            ),
            "{backend:?}"
        );
        assert_eq!(
            store.user("w1").await.expect("read"),
            Some(user("w1")),
            "{backend:?}"
        );
        assert_eq!(store.user("nobody").await.expect("read"), None);
        let scope = "410102002".parse().expect("scope");
        assert!(
            store
                .set_posting("w2", Role::GridLeader, None, &scope)
                .await
                .expect("post")
        );
        assert!(
            !store
                .set_posting("nobody", Role::GridLeader, None, &scope)
                .await
                .expect("post")
        );
        let moved = store.user("w2").await.expect("read").expect("w2");
        assert_eq!(
            (moved.role, moved.team, moved.scope),
            (Role::GridLeader, None, scope)
        );
        let ids: Vec<String> = store
            .users()
            .await
            .expect("list")
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(ids, ["w1", "w2"], "{backend:?}");
        // Migrating again changes nothing.
        store.migrate().await.expect("migrate twice");
        assert_eq!(store.users().await.expect("list").len(), 2);
    }
}

#[tokio::test]
async fn a_revoked_device_loses_its_refresh_tokens() {
    for Fresh { store, .. } in backends().await {
        worker_with_phone(store.as_ref()).await;
        store
            .create_device(&device("d2", "w1"))
            .await
            .expect("device");
        assert!(matches!(
            store.create_device(&device("d1", "w1")).await,
            Err(StoreError::Conflict { what: "device", .. })
        ));
        store
            .insert_refresh_token(&token("h1", "f1", "d1", i64::MAX))
            .await
            .expect("token");
        store
            .insert_refresh_token(&token("h2", "f2", "d2", i64::MAX))
            .await
            .expect("token");
        store.touch_device("d1", 5_000).await.expect("touch");
        assert_eq!(
            store
                .device("d1")
                .await
                .expect("read")
                .and_then(|d| d.last_seen_at),
            Some(5_000)
        );
        assert!(store.revoke_device("d1", 6_000).await.expect("revoke"));
        assert!(!store.revoke_device("nope", 6_000).await.expect("revoke"));
        assert_eq!(
            store
                .device("d1")
                .await
                .expect("read")
                .and_then(|d| d.revoked_at),
            Some(6_000)
        );
        assert_eq!(
            store
                .rotate_refresh_token("h1", "h1b", i64::MAX, 7_000)
                .await
                .expect("rotate"),
            RefreshOutcome::Invalid,
            "{:?}",
            store.backend()
        );
        assert!(matches!(
            store
                .rotate_refresh_token("h2", "h2b", i64::MAX, 7_000)
                .await
                .expect("rotate"),
            RefreshOutcome::Rotated { .. }
        ));
        assert_eq!(store.devices(Some("w1")).await.expect("list").len(), 2);
        assert_eq!(store.devices(Some("w9")).await.expect("list").len(), 0);
        assert_eq!(store.devices(None).await.expect("list").len(), 2);
    }
}

#[tokio::test]
async fn a_refresh_token_works_once_and_a_replay_revokes_its_family() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        worker_with_phone(store.as_ref()).await;
        store
            .insert_refresh_token(&token("a", "fam", "d1", 100_000))
            .await
            .expect("token");
        assert_eq!(
            store
                .rotate_refresh_token("a", "b", 200_000, 10_000)
                .await
                .expect("rotate"),
            RefreshOutcome::Rotated {
                device_id: "d1".into(),
                user_id: "w1".into()
            },
            "{backend:?}"
        );
        assert_eq!(
            store
                .rotate_refresh_token("b", "c", 300_000, 20_000)
                .await
                .expect("rotate"),
            RefreshOutcome::Rotated {
                device_id: "d1".into(),
                user_id: "w1".into()
            }
        );
        // "a" again: a replay. The family (a, b, c) is revoked, so "c" is dead too.
        assert_eq!(
            store
                .rotate_refresh_token("a", "x", 300_000, 30_000)
                .await
                .expect("rotate"),
            RefreshOutcome::Reused {
                device_id: "d1".into()
            },
            "{backend:?}"
        );
        assert_eq!(
            store
                .rotate_refresh_token("c", "y", 300_000, 31_000)
                .await
                .expect("rotate"),
            RefreshOutcome::Invalid
        );
        // Expired and unknown tokens.
        store
            .insert_refresh_token(&token("old", "fam2", "d1", 50_000))
            .await
            .expect("token");
        assert_eq!(
            store
                .rotate_refresh_token("old", "z", 300_000, 50_000)
                .await
                .expect("rotate"),
            RefreshOutcome::Invalid
        );
        assert_eq!(
            store
                .rotate_refresh_token("unknown", "z2", 300_000, 1)
                .await
                .expect("rotate"),
            RefreshOutcome::Invalid
        );
    }
}

#[tokio::test]
async fn of_two_concurrent_refreshes_with_one_token_exactly_one_wins() {
    for Fresh { store, .. } in backends().await {
        worker_with_phone(store.as_ref()).await;
        store
            .insert_refresh_token(&token("t", "fam", "d1", i64::MAX))
            .await
            .expect("token");
        let (one, two) = tokio::join!(
            store.rotate_refresh_token("t", "n1", i64::MAX, 10),
            store.rotate_refresh_token("t", "n2", i64::MAX, 10),
        );
        let outcomes = [one.expect("first"), two.expect("second")];
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Rotated { .. }))
            .count();
        assert_eq!(rotated, 1, "{:?}: {outcomes:?}", store.backend());
    }
}

#[tokio::test]
async fn a_new_signing_key_retires_the_others() {
    for Fresh { store, .. } in backends().await {
        let key = |kid: &str, at: i64| SigningKey {
            kid: kid.into(),
            secret: vec![7; 32],
            created_at: at,
            retired_at: None,
        };
        store.add_signing_key(&key("k1", 1_000)).await.expect("k1");
        store.add_signing_key(&key("k2", 2_000)).await.expect("k2");
        let keys = store.signing_keys().await.expect("keys");
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[0].kid.as_str(), keys[0].retired_at), ("k2", None));
        assert_eq!(
            (keys[1].kid.as_str(), keys[1].retired_at),
            ("k1", Some(2_000))
        );
        assert_eq!(keys[1].secret, vec![7; 32]);
        assert!(
            !format!("{:?}", keys[0]).contains("7, 7"),
            "Debug hides the secret"
        );
        store
            .audit(3_000, "admin", "test", "ok")
            .await
            .expect("audit");
        assert!(matches!(
            store.backend(),
            Backend::Sqlite | Backend::Postgres
        ));
    }
}

#[tokio::test]
async fn importing_grids_replaces_them_whole() {
    use wangge_server::store::StoredGrid;
    let grid = |code: &str| StoredGrid {
        code: code.into(),
        feature: format!(
            r#"{{"type":"Feature","properties":{{"code":"{code}"}},"geometry":null}}"#
        ),
    };
    for Fresh { store, .. } in backends().await {
        let many: Vec<StoredGrid> = (1..=2_500u32)
            .map(|n| grid(&format!("4101020{:08}", n)))
            .collect();
        store.replace_grids(&many).await.expect("import");
        assert_eq!(store.grid_count().await.expect("count"), 2_500);
        // Paging through them in code order.
        let mut after: Option<String> = None;
        let mut seen = 0;
        loop {
            let page = store
                .grids_page(after.as_deref(), 1_000)
                .await
                .expect("page");
            seen += page.len();
            match page.last() {
                Some(last) => after = Some(last.code.clone()),
                None => break,
            }
        }
        assert_eq!(seen, 2_500);
        store
            .replace_grids(&[grid("410103001001001"), grid("410102001001001")])
            .await
            .expect("import again");
        let stored = store.grids_page(None, 10).await.expect("read");
        let codes: Vec<&str> = stored.iter().map(|g| g.code.as_str()).collect();
        assert_eq!(
            codes,
            ["410102001001001", "410103001001001"],
            "{:?}",
            store.backend()
        );
        assert_eq!(stored[0], grid("410102001001001"));
        let next = store
            .grids_page(Some("410102001001001"), 10)
            .await
            .expect("page");
        assert_eq!(next, [grid("410103001001001")]);
    }
}

#[tokio::test]
async fn users_covering_a_grid_are_those_posted_at_one_of_its_levels() {
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        // (id, scope): the grid 410102001001003 is in community 410102001001,
        // street 410102001, district 410102.
        let postings = [
            ("a-grid", "410102001001003"),
            ("b-community", "410102001001"),
            ("c-street", "410105001,410102001"),
            ("d-district", "410102"),
            ("e-city", "*"),
            ("f-other-grid", "410102001001004"),
            ("g-other-street", "410102002"),
            ("h-other-district", "410105"),
        ];
        for (id, scope) in postings {
            let mut u = user(id);
            u.scope = scope.parse().expect("scope");
            store.create_user(&u).await.expect("create");
        }
        let grid = "410102001001003".parse().expect("grid");
        let ids: Vec<String> = store
            .users_covering(&grid)
            .await
            .expect("covering")
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(
            ids,
            ["a-grid", "b-community", "c-street", "d-district", "e-city"],
            "{backend:?}"
        );
        // The same answer as filtering every account with GridScope::covers.
        let every: Vec<String> = store
            .users()
            .await
            .expect("users")
            .into_iter()
            .filter(|u| u.scope.covers(Some(&grid)))
            .map(|u| u.id)
            .collect();
        assert_eq!(ids, every, "{backend:?}");
    }
}

/// A derive that writes the row it is given, whatever the document says.
struct FixedRow(wangge_server::store::cases::CaseRow);

impl wangge_server::store::cases::Derive for FixedRow {
    fn derive(
        &self,
        _id: &str,
        _kind: wangge_sync_core::sync::DocKind,
        _doc: &automerge::Automerge,
    ) -> wangge_server::store::cases::Derived {
        wangge_server::store::cases::Derived {
            meta: wangge_sync_core::sync::DocMeta::default(),
            case: Some(self.0.clone()),
            facts: None,
            photos: Vec::new(),
            patrol: None,
        }
    }
}

fn case_row(
    n: usize,
    grid: &str,
    reporter: &str,
    assignee: Option<&str>,
) -> wangge_server::store::cases::CaseRow {
    wangge_server::store::cases::CaseRow {
        id: format!("case-{n:03}"),
        // Independent of the grid (`n % 3`).
        status: Some(
            match n % 4 {
                0 => "dispatched",
                1 => "closed",
                _ => "reported",
            }
            .into(),
        ),
        kind: Some("event".into()),
        category: Some("E0102".into()),
        source: Some("patrol".into()),
        district: Some(grid[..6].into()),
        street: Some(grid[..9].into()),
        community: Some(grid[..12].into()),
        grid: Some(grid.into()),
        lon: Some(113.66),
        lat: Some(34.75),
        address: String::new(),
        summary: String::new(),
        reporter: Some(reporter.into()),
        team: None,
        assignee: assignee.map(str::to_owned),
        level: "street".into(),
        // Some share a time: the order falls back on the id.
        reported_at: Some(1_700_000_000_000 + i64::try_from(n / 2).unwrap_or(0) * 60_000),
        step: None,
        step_started_at: None,
        due_at: None,
        closed_at: None,
        dispatches: 0,
        reworks: 0,
        returns: 0,
        escalations: 0,
        ignored: 0,
        steps: "[]".into(),
        updated_at: 0,
    }
}

#[tokio::test]
async fn a_case_list_is_the_scope_newest_first_page_by_page() {
    use wangge_server::store::cases::{CaseFilter, CaseRow};
    use wangge_sync_core::sync::DocKind;
    use wangge_sync_core::sync::server::DocWrite;
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        // 60 cases over two streets of one district and one of another; `me` reported
        // some outside my street and is dispatched some others.
        let grids = ["410102001001001", "410102002001001", "410105001001001"];
        let mut rows: Vec<CaseRow> = Vec::new();
        for n in 0..60 {
            let grid = grids[n % 3];
            let reporter = if n.is_multiple_of(7) { "me" } else { "someone" };
            let assignee = n.is_multiple_of(11).then_some("me");
            let row = case_row(n, grid, reporter, assignee);
            let mut doc = automerge::AutoCommit::new();
            automerge::transaction::Transactable::put(
                &mut doc,
                automerge::ROOT,
                "n",
                i64::try_from(n).unwrap_or(0),
            )
            .expect("put");
            let write = DocWrite {
                id: row.id.clone(),
                kind: DocKind::Case,
                changes: vec![doc.save()],
                meta: wangge_sync_core::sync::DocMeta::default(),
                heads: doc.get_heads(),
                merged: None,
            };
            store
                .document_write(&write, None, &FixedRow(row.clone()), 0)
                .await
                .expect("write");
            rows.push(row);
        }
        let newest_first = |mut picked: Vec<&CaseRow>| -> Vec<String> {
            picked.sort_by(|a, b| b.reported_at.cmp(&a.reported_at).then(a.id.cmp(&b.id)));
            picked.into_iter().map(|r| r.id.clone()).collect()
        };
        let list = |filter: CaseFilter| {
            let store = &store;
            async move {
                let mut ids = Vec::new();
                let mut offset = 0;
                loop {
                    let page = store
                        .cases_list(&CaseFilter {
                            limit: 7,
                            offset,
                            ..filter.clone()
                        })
                        .await
                        .expect("list");
                    let done = page.len() < 7;
                    ids.extend(page.into_iter().map(|r| r.id));
                    offset += 7;
                    if done {
                        return ids;
                    }
                }
            }
        };
        let in_street = |r: &&CaseRow| r.street.as_deref() == Some("410102001");
        let mine = |r: &&CaseRow| {
            r.reporter.as_deref() == Some("me") || r.assignee.as_deref() == Some("me")
        };
        // A street's worker: the street, plus their own reports and dispatches (each
        // once, though many are both).
        let scoped = CaseFilter {
            scope: vec!["410102001".into()],
            user: "me".into(),
            ..CaseFilter::default()
        };
        let expected = newest_first(rows.iter().filter(|r| in_street(r) || mine(r)).collect());
        assert_eq!(list(scoped.clone()).await, expected, "{backend:?}");
        // Narrowed by status.
        let dispatched = CaseFilter {
            statuses: vec!["dispatched".into()],
            ..scoped.clone()
        };
        let expected = newest_first(
            rows.iter()
                .filter(|r| (in_street(r) || mine(r)) && r.status.as_deref() == Some("dispatched"))
                .collect(),
        );
        assert_eq!(list(dispatched).await, expected, "{backend:?}");
        // Two statuses (a branch each), in a street and in the whole city.
        let two_statuses =
            |r: &&CaseRow| matches!(r.status.as_deref(), Some("dispatched" | "closed"));
        let closed_or_dispatched = CaseFilter {
            statuses: vec!["dispatched".into(), "closed".into()],
            ..scoped.clone()
        };
        let expected = newest_first(
            rows.iter()
                .filter(|r| (in_street(r) || mine(r)) && two_statuses(r))
                .collect(),
        );
        assert_eq!(
            list(closed_or_dispatched.clone()).await,
            expected,
            "{backend:?}"
        );
        let city = CaseFilter {
            scope: vec![String::new()],
            ..closed_or_dispatched
        };
        let expected = newest_first(rows.iter().filter(two_statuses).collect());
        assert_eq!(list(city).await, expected, "{backend:?}");
        // Two streets and an area inside the scope.
        let two = CaseFilter {
            scope: vec!["410102001".into(), "410105".into()],
            area: Some("410105001001".into()),
            user: "me".into(),
            ..CaseFilter::default()
        };
        let expected = newest_first(
            rows.iter()
                .filter(|r| r.community.as_deref() == Some("410105001001"))
                .collect(),
        );
        assert_eq!(list(two).await, expected, "{backend:?}");
        // The whole city, and a city-wide prefix.
        for scope in ["", "41"] {
            let city = CaseFilter {
                scope: vec![scope.into()],
                user: "nobody".into(),
                ..CaseFilter::default()
            };
            assert_eq!(
                list(city).await,
                newest_first(rows.iter().collect()),
                "{backend:?} {scope:?}"
            );
        }
        // No grids at all: only what is theirs.
        let own = CaseFilter {
            user: "me".into(),
            ..CaseFilter::default()
        };
        let expected = newest_first(rows.iter().filter(mine).collect());
        assert_eq!(list(own).await, expected, "{backend:?}");
    }
}

#[tokio::test]
async fn cases_stored_before_assessment_get_their_facts_once() {
    use wangge_server::store::assessment::GroupBy;
    use wangge_sync_core::case::{CaseDocument, NewCase, Source};
    use wangge_sync_core::sync::DocKind;
    use wangge_sync_core::sync::server::DocWrite;
    let rules = common::case_rules();
    for Fresh { store, .. } in backends().await {
        let backend = store.backend();
        let actor = wangge_sync_core::role::Actor {
            user: "o1".into(),
            role: wangge_sync_core::role::Role::EnforcementOfficer,
            team: Some(wangge_sync_core::catalog::TeamId::new("enforcement").expect("team")),
            scope: "410102001001".parse().expect("scope"),
            device: format!("{:032x}", 1),
        };
        let new = NewCase {
            id: "old-case".into(),
            category: "E0102".parse().expect("category"),
            location: wangge_sync_core::document::Position {
                lon: 113.66,
                lat: 34.75,
                accuracy_m: Some(5.0),
            },
            grid: Some("410102001001001".parse().expect("grid")),
            address: String::new(),
            description: "暴露垃圾".into(),
            source: Source::Patrol,
            source_ref: None,
            caller: None,
        };
        // 2026-11-18, Zhengzhou time.
        let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("time");
        let case = CaseDocument::create(&new, &actor, "e0", at).expect("case");
        let doc = case.automerge();
        let write = DocWrite {
            id: "old-case".into(),
            kind: DocKind::Case,
            changes: vec![doc.save()],
            meta: wangge_sync_core::sync::DocMeta::default(),
            heads: doc.get_heads(),
            merged: None,
        };
        // Stored with its row and without facts, as before migration 0016.
        let mut row = case_row(0, "410102001001001", "o1", None);
        row.id = "old-case".into();
        store
            .document_write(&write, None, &FixedRow(row), 0)
            .await
            .expect("write");
        let months = ["2026-11".to_owned()];
        let sums = || store.assessment_sums(&months, GroupBy::District, "");
        assert!(sums().await.expect("sums").is_empty(), "{backend:?}");
        assert_eq!(
            store.facts_missing(10).await.expect("missing"),
            ["old-case"]
        );
        let written = wangge_server::assessment::backfill_facts(store.as_ref(), &rules)
            .await
            .expect("backfill");
        assert_eq!(written, 1, "{backend:?}");
        let after = sums().await.expect("sums");
        assert_eq!(after.len(), 1, "{backend:?}: {after:?}");
        assert_eq!(after[0].unit, "410102");
        assert_eq!(
            (
                after[0].counts.reports,
                after[0].counts.problems,
                after[0].counts.own_found
            ),
            (1, 1, 1),
            "{backend:?}"
        );
        let again = wangge_server::assessment::backfill_facts(store.as_ref(), &rules)
            .await
            .expect("backfill");
        assert_eq!(again, 0, "{backend:?}: once");
    }
}
