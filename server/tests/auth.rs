//! Logins on SQLite and PostgreSQL: the devices a user may have (a new one beyond the
//! maximum is refused, unless the least recently seen one is unused long enough to be
//! recycled) and login throttling (wrong passwords block the account, then the right
//! one waits too; the block is audited).

mod common;

use common::{Fresh, backends};
use wangge_server::auth::{Auth, AuthError, DEVICE_UNUSED_MS, hash_password};
use wangge_server::login_throttle::ThrottleSettings;
use wangge_server::store::User;
use wangge_sync_core::catalog::TeamId;
use wangge_sync_core::role::Role;

const PASSWORD: &str = "correct horse";
const T0: i64 = 1_800_000_000_000;

/// The store's one worker, and logins allowing `max_devices` devices each.
async fn auth_with_worker(fresh: &Fresh, max_devices: usize) -> Auth {
    fresh
        .store
        .create_user(&User {
            id: "w1".into(),
            display_name: "王师傅".into(),
            role: Role::SanitationWorker,
            team: Some(TeamId::new("sanitation").expect("team")),
            scope: "410102001001".parse().expect("scope"),
            password_hash: hash_password(PASSWORD).expect("hash"),
            created_at: 0,
            disabled: false,
        })
        .await
        .expect("user");
    Auth::new(fresh.store.clone(), Default::default(), T0)
        .await
        .expect("auth")
        .with_limits(ThrottleSettings::default(), max_devices)
}

#[tokio::test]
async fn devices_beyond_the_maximum_are_refused_or_recycle_an_unused_one() {
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let auth = auth_with_worker(&fresh, 2).await;
        let first = auth
            .login("w1", PASSWORD, None, "Redmi 12", None, T0)
            .await
            .expect("first device");
        auth.login("w1", PASSWORD, None, "Mate 60", None, T0 + 1_000)
            .await
            .expect("second device");
        let refused = auth
            .login("w1", PASSWORD, None, "third", None, T0 + 60_000)
            .await
            .expect_err("a third device");
        assert!(
            matches!(refused, AuthError::TooManyDevices { max: 2 }),
            "{backend:?}: {refused}"
        );
        // A registered device still logs in.
        auth.login(
            "w1",
            PASSWORD,
            Some(&first.device.id),
            "",
            None,
            T0 + 60_000,
        )
        .await
        .expect("a registered device");
        // A month later, the device not seen since is recycled for a new one.
        let later = T0 + 60_000 + DEVICE_UNUSED_MS + 1;
        auth.login("w1", PASSWORD, Some(&first.device.id), "", None, later - 10)
            .await
            .expect("the first device, still in use");
        let fresh_login = auth
            .login("w1", PASSWORD, None, "new phone", None, later)
            .await
            .expect("recycles the unused one");
        let devices = fresh.store.devices(Some("w1")).await.expect("devices");
        let active: Vec<&str> = devices
            .iter()
            .filter(|d| d.revoked_at.is_none())
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(active.len(), 2, "{backend:?}: {active:?}");
        assert!(active.contains(&"Redmi 12") && active.contains(&"new phone"));
        assert_eq!(fresh_login.device.name, "new phone");
    }
}

#[tokio::test]
async fn wrong_passwords_block_the_account_then_the_right_one_waits_too() {
    for fresh in backends().await {
        let backend = fresh.store.backend();
        let auth = auth_with_worker(&fresh, 10).await;
        let address = Some(std::net::IpAddr::from([127, 0, 0, 9]));
        for n in 0..6 {
            let refused = auth
                .login("w1", "wrong", None, "x", address, T0 + n)
                .await
                .expect_err("a wrong password");
            assert!(matches!(refused, AuthError::BadCredentials), "{refused}");
        }
        // Blocked for a second: even the right password waits, and is not checked.
        let refused = auth
            .login("w1", PASSWORD, None, "x", address, T0 + 500)
            .await
            .expect_err("blocked");
        assert!(
            matches!(
                refused,
                AuthError::Throttled {
                    retry_after_s: 1,
                    by_address: false
                }
            ),
            "{backend:?}: {refused}"
        );
        // The same for a name that has no account: nothing tells them apart.
        for n in 0..6 {
            let _ = auth.login("nobody", "wrong", None, "x", None, T0 + n).await;
        }
        assert!(matches!(
            auth.login("nobody", "wrong", None, "x", None, T0 + 500)
                .await,
            Err(AuthError::Throttled { .. })
        ));
        // After the block, the right password works.
        auth.login("w1", PASSWORD, None, "x", address, T0 + 1_100)
            .await
            .expect("the block has passed");
        let audited = fresh
            .raw
            .texts("SELECT action, detail FROM audit_log WHERE action = 'auth.throttle'")
            .await;
        assert!(
            audited.iter().any(|row| row[1]
                .as_deref()
                .is_some_and(|d| d.starts_with("account w1 blocked"))),
            "{backend:?}: {audited:?}"
        );
    }
}
