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
