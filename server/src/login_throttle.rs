//! Login throttling: wrong passwords slow down, per account and per address. The
//! first few failures in a window are free (a worker mistypes on a cold morning); each
//! further one blocks that account (or address) for twice as long as the last, up to a
//! cap. A blocked login is refused before the password is checked, so guessing at
//! speed gets nowhere, and the account key is the name as typed, so the refusal says
//! nothing about whether the account exists.
//!
//! Kept in the node's memory: with several nodes behind a balancer each node throttles
//! what reaches it (the cap per node still bounds the guesses an hour).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The throttle's numbers (`docs/operations.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failures of one account within the window before it is blocked.
    pub account_free: u32,
    /// Failures from one address within the window before it is blocked (an office
    /// behind one address has many users).
    pub address_free: u32,
    /// Milliseconds after the last failure that a key is forgotten.
    pub window_ms: i64,
    /// The first block, milliseconds; each further failure doubles it.
    pub first_block_ms: i64,
    /// The longest block, milliseconds.
    pub max_block_ms: i64,
}

impl Default for ThrottleSettings {
    fn default() -> ThrottleSettings {
        ThrottleSettings {
            account_free: 5,
            address_free: 30,
            window_ms: 15 * 60_000,
            first_block_ms: 1_000,
            max_block_ms: 15 * 60_000,
        }
    }
}

/// The most keys kept; beyond it the forgotten ones are dropped first.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_at: i64,
    blocked_until: i64,
}

/// Why a login attempt may not proceed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// Milliseconds until it may try again.
    pub retry_after_ms: i64,
    /// Whether the address (not the account) is blocked.
    pub by_address: bool,
}

/// A block that started with a failure: for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockStarted {
    /// `account USER` or `address IP`.
    pub what: String,
    /// For how long, milliseconds.
    pub block_ms: i64,
    /// Failures within the window so far.
    pub failures: u32,
}

/// The throttle of one node.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    settings: ThrottleSettings,
    keys: Mutex<HashMap<Key, Failures>>,
}

impl LoginThrottle {
    /// A throttle with `settings`.
    pub fn new(settings: ThrottleSettings) -> LoginThrottle {
        LoginThrottle {
            settings,
            keys: Mutex::default(),
        }
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Failures>> {
        // A panic elsewhere while holding it leaves only counters behind.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `user` from `address` may try a password at `now` (ms).
    pub fn check(&self, user: &str, address: Option<IpAddr>, now: i64) -> Result<(), Blocked> {
        let keys = self.keys();
        let blocked = |key: &Key| {
            keys.get(key)
                .map(|f| f.blocked_until - now)
                .filter(|left| *left > 0)
        };
        if let Some(address) = address
            && let Some(left) = blocked(&Key::Address(address))
        {
            return Err(Blocked {
                retry_after_ms: left,
                by_address: true,
            });
        }
        if let Some(left) = blocked(&Key::Account(user.to_owned())) {
            return Err(Blocked {
                retry_after_ms: left,
                by_address: false,
            });
        }
        Ok(())
    }

    /// Counts a wrong password; returns the blocks it started.
    pub fn failed(&self, user: &str, address: Option<IpAddr>, now: i64) -> Vec<BlockStarted> {
        let settings = self.settings;
        let mut keys = self.keys();
        if keys.len() >= MAX_KEYS {
            keys.retain(|_, f| now - f.last_at < settings.window_ms);
            if keys.len() >= MAX_KEYS {
                // Still full of live keys: an attack from very many addresses. Forget
                // the addresses first; accounts keep their counts.
                keys.retain(|key, _| matches!(key, Key::Account(_)));
            }
        }
        let mut started = Vec::new();
        let mut count = |key: Key, free: u32, what: String| {
            let failures = keys.entry(key).or_insert(Failures {
                count: 0,
                last_at: now,
                blocked_until: 0,
            });
            if now - failures.last_at >= settings.window_ms {
                failures.count = 0;
            }
            failures.count += 1;
            failures.last_at = now;
            if failures.count > free {
                let doublings = (failures.count - free - 1).min(30);
                let block = settings
                    .first_block_ms
                    .saturating_mul(1_i64 << doublings)
                    .min(settings.max_block_ms);
                failures.blocked_until = now + block;
                started.push(BlockStarted {
                    what,
                    block_ms: block,
                    failures: failures.count,
                });
            }
        };
        count(
            Key::Account(user.to_owned()),
            settings.account_free,
            format!("account {user}"),
        );
        if let Some(address) = address {
            count(
                Key::Address(address),
                settings.address_free,
                format!("address {address}"),
            );
        }
        started
    }

    /// A correct password: the account's count starts again (the address's does not:
    /// one right password must not wash away a thousand wrong ones for others).
    pub fn succeeded(&self, user: &str) {
        self.keys().remove(&Key::Account(user.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn a_few_mistakes_are_free_then_each_one_doubles_the_wait() {
        let throttle = LoginThrottle::new(ThrottleSettings::default());
        for n in 0..5 {
            assert_eq!(throttle.check("w1", address(1), n), Ok(()));
            assert!(throttle.failed("w1", address(1), n).is_empty());
        }
        let started = throttle.failed("w1", address(1), 10);
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].block_ms, 1_000);
        assert_eq!(
            throttle.check("w1", address(2), 500),
            Err(Blocked {
                retry_after_ms: 510,
                by_address: false
            })
        );
        // Another account from the same address is not blocked.
        assert_eq!(throttle.check("w2", address(1), 500), Ok(()));
        assert_eq!(throttle.check("w1", address(2), 1_010), Ok(()));
        assert_eq!(throttle.failed("w1", address(2), 1_010)[0].block_ms, 2_000);
        assert_eq!(throttle.failed("w1", address(2), 3_010)[0].block_ms, 4_000);
        // Capped.
        let mut block = 0;
        for n in 0..40 {
            block = throttle.failed("w1", address(3), 10_000 + n)[0].block_ms;
        }
        assert_eq!(block, 15 * 60_000);
        // The right password starts the account's count again.
        throttle.succeeded("w1");
        assert_eq!(throttle.check("w1", address(4), 20_000), Ok(()));
    }

    #[test]
    fn an_address_guessing_many_accounts_is_blocked_and_the_window_forgets() {
        let throttle = LoginThrottle::new(ThrottleSettings::default());
        for n in 0..30 {
            assert!(throttle.failed(&format!("u{n}"), address(9), n).is_empty());
        }
        let started = throttle.failed("u31", address(9), 40);
        assert_eq!(started.len(), 1, "{started:?}");
        assert!(started[0].what.starts_with("address"));
        assert!(
            throttle
                .check("anyone", address(9), 41)
                .is_err_and(|b| b.by_address)
        );
        assert_eq!(throttle.check("anyone", address(8), 41), Ok(()));
        // Fifteen quiet minutes later the address starts afresh.
        let later = 40 + 15 * 60_000;
        assert!(throttle.failed("u32", address(9), later).is_empty());
    }
}
