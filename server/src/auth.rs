//! Authentication: passwords (argon2id), devices (each with its own Automerge actor
//! id), short access tokens (JWT, HS256, with a `kid`) and refresh tokens (bound to a
//! device, stored hashed, single use, a replay revokes the whole chain).
//!
//! Signing keys live in the database so that every node signs and verifies alike;
//! rotating adds a key and retires the others, which still verify until the tokens
//! they signed have expired, so a rotation logs nobody out.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::login_throttle::{LoginThrottle, ThrottleSettings};
use crate::store::{Device, RefreshOutcome, RefreshToken, SigningKey, Store, StoreError, User};

/// Why authentication failed. Each maps to one HTTP status and error code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password (never said which).
    #[error("wrong user or password")]
    BadCredentials,
    /// The account is disabled.
    #[error("this account is disabled")]
    Disabled,
    /// The device was revoked.
    #[error("this device has been revoked; log in again from a registered device")]
    DeviceRevoked,
    /// The device belongs to someone else.
    #[error("this device is registered to another user")]
    DeviceNotYours,
    /// The access token has expired: refresh it.
    #[error("the access token has expired")]
    TokenExpired,
    /// The access token is not one of ours.
    #[error("invalid access token: {0}")]
    TokenInvalid(String),
    /// A refresh token was presented a second time: the chain is revoked.
    #[error("this refresh token was already used; every token of this login is revoked")]
    RefreshReused,
    /// Unknown, expired or revoked refresh token.
    #[error("invalid or expired refresh token")]
    RefreshInvalid,
    /// A field of the request is not valid.
    #[error("{0}")]
    Invalid(String),
    /// Too many wrong passwords for this account or from this address: wait.
    #[error("too many failed logins {}; try again in {retry_after_s} s", if *.by_address { "from this address" } else { "for this account" })]
    Throttled {
        /// Seconds to wait.
        retry_after_s: u64,
        /// Whether the address (not the account) is blocked.
        by_address: bool,
    },
    /// The user has their maximum of active devices, none of them unused long enough
    /// to be recycled.
    #[error(
        "this account has {max} active devices: log in with one of them (its device id) \
         or have an administrator revoke one (`wangge device revoke`)"
    )]
    TooManyDevices {
        /// The maximum.
        max: usize,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not happen (hashing failed, no signing key).
    #[error("internal error: {0}")]
    Internal(String),
}

/// What an access token says. Short names keep the token small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Device id.
    pub dev: String,
    /// The device's Automerge actor id (hex).
    pub act: String,
    /// Role.
    pub role: String,
    /// Team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Grid scope (`GridScope` text form).
    pub scope: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Issuer, `wangge`.
    pub iss: String,
}

/// Lifetimes of the tokens.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    /// Access token lifetime, seconds (default 900).
    pub access_seconds: i64,
    /// Refresh token lifetime, seconds (default 30 days).
    pub refresh_seconds: i64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        TokenLifetimes {
            access_seconds: 15 * 60,
            refresh_seconds: 30 * 24 * 3600,
        }
    }
}

/// A logged-in session on one device.
#[derive(Debug, Clone)]
pub struct Session {
    /// The JWT.
    pub access_token: String,
    /// Its lifetime, seconds.
    pub expires_in: i64,
    /// The refresh token (shown once, stored hashed).
    pub refresh_token: String,
    /// The user.
    pub user: User,
    /// The device.
    pub device: Device,
}

/// Hashes a password with argon2id (the crate's default parameters: 19 MiB, 2
/// passes), as a PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Internal(e.to_string()))
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .and_then(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed))
        .is_ok()
}

/// A random token: 32 bytes, base64url.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new Automerge actor id for a device: 16 random bytes, hex.
pub(crate) fn new_actor_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The authentication service.
pub struct Auth {
    store: Arc<dyn Store>,
    lifetimes: TokenLifetimes,
    keys: RwLock<Vec<SigningKey>>,
    throttle: LoginThrottle,
    /// Active devices a user may have at once.
    max_devices: usize,
}

/// Active devices per user by default (`WANGGE_MAX_DEVICES_PER_USER`).
pub const DEFAULT_MAX_DEVICES: usize = 10;

/// A user's device not seen for this long (ms) is recycled (revoked) when a new one
/// would pass the maximum.
pub const DEVICE_UNUSED_MS: i64 = 30 * 86_400_000;

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Loads the signing keys, creating the first one if there is none.
    pub async fn new(
        store: Arc<dyn Store>,
        lifetimes: TokenLifetimes,
        now_ms: i64,
    ) -> Result<Auth, AuthError> {
        let auth = Auth {
            store,
            lifetimes,
            keys: RwLock::new(Vec::new()),
            throttle: LoginThrottle::default(),
            max_devices: DEFAULT_MAX_DEVICES,
        };
        if auth.store.signing_keys().await?.is_empty() {
            rotate_signing_key(auth.store.as_ref(), now_ms).await?;
        }
        auth.reload_keys().await?;
        Ok(auth)
    }

    /// The same, with login throttling and the device maximum set (`serve` reads
    /// them from the settings).
    pub fn with_limits(mut self, throttle: ThrottleSettings, max_devices: usize) -> Auth {
        self.throttle = LoginThrottle::new(throttle);
        self.max_devices = max_devices.max(1);
        self
    }

    async fn reload_keys(&self) -> Result<(), AuthError> {
        let keys = self.store.signing_keys().await?;
        let mut slot = self
            .keys
            .write()
            .map_err(|_| AuthError::Internal("key cache poisoned".into()))?;
        *slot = keys;
        Ok(())
    }

    /// Logs `user_id` in on a device: the one named by `device_id` (which must be
    /// theirs and not revoked) or a newly registered one called `device_name`.
    pub async fn login(
        &self,
        user_id: &str,
        password: &str,
        device_id: Option<&str>,
        device_name: &str,
        peer: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<Session, AuthError> {
        if let Err(blocked) = self.throttle.check(user_id, peer, now_ms) {
            return Err(AuthError::Throttled {
                retry_after_s: u64::try_from((blocked.retry_after_ms + 999) / 1000).unwrap_or(1),
                by_address: blocked.by_address,
            });
        }
        let user = self.store.user(user_id).await?;
        // Hash even for an unknown user, so the response time does not tell.
        let known = user.as_ref().map(|u| u.password_hash.as_str());
        let valid = verify_password(known.unwrap_or(&DUMMY_HASH), password);
        let Some(user) = user.filter(|_| valid) else {
            for block in self.throttle.failed(user_id, peer, now_ms) {
                tracing::warn!(what = %block.what, block_ms = block.block_ms, failures = block.failures, "login throttled");
                let detail = format!(
                    "{} blocked {} s after {} failed logins",
                    block.what,
                    block.block_ms / 1000,
                    block.failures
                );
                self.store
                    .audit(now_ms, "-", "auth.throttle", &detail)
                    .await?;
            }
            return Err(AuthError::BadCredentials);
        };
        self.throttle.succeeded(user_id);
        if user.disabled {
            return Err(AuthError::Disabled);
        }
        let device = match device_id {
            Some(id) => {
                let device = self
                    .store
                    .device(id)
                    .await?
                    .ok_or_else(|| AuthError::Invalid(format!("unknown device {id:?}")))?;
                if device.user_id != user.id {
                    return Err(AuthError::DeviceNotYours);
                }
                if device.revoked_at.is_some() {
                    return Err(AuthError::DeviceRevoked);
                }
                device
            }
            None => {
                let name = device_name.trim();
                if name.is_empty() || name.len() > 100 {
                    return Err(AuthError::Invalid(
                        "device name must be 1-100 bytes".to_owned(),
                    ));
                }
                self.make_room_for_a_device(&user.id, now_ms).await?;
                let device = Device {
                    id: uuid::Uuid::now_v7().to_string(),
                    user_id: user.id.clone(),
                    name: name.to_owned(),
                    actor_id: new_actor_id(),
                    created_at: now_ms,
                    last_seen_at: Some(now_ms),
                    revoked_at: None,
                };
                let max = i64::try_from(self.max_devices).unwrap_or(i64::MAX);
                if !self.store.create_device_within(&device, max).await? {
                    // Another login of the same user took the last place meanwhile.
                    return Err(AuthError::TooManyDevices {
                        max: self.max_devices,
                    });
                }
                self.store
                    .audit(now_ms, &user.id, "device.register", &device.id)
                    .await?;
                device
            }
        };
        let refresh_token = random_token();
        self.store
            .insert_refresh_token(&RefreshToken {
                token_hash: token_hash(&refresh_token),
                family_id: uuid::Uuid::now_v7().to_string(),
                device_id: device.id.clone(),
                user_id: user.id.clone(),
                issued_at: now_ms,
                expires_at: now_ms + self.lifetimes.refresh_seconds * 1000,
            })
            .await?;
        self.store.touch_device(&device.id, now_ms).await?;
        let access_token = self.sign(&user, &device, now_ms)?;
        Ok(Session {
            access_token,
            expires_in: self.lifetimes.access_seconds,
            refresh_token,
            user,
            device,
        })
    }

    /// Exchanges a refresh token for a new pair (the old one is used up).
    pub async fn refresh(&self, refresh_token: &str, now_ms: i64) -> Result<Session, AuthError> {
        let next = random_token();
        let outcome = self
            .store
            .rotate_refresh_token(
                &token_hash(refresh_token),
                &token_hash(&next),
                now_ms + self.lifetimes.refresh_seconds * 1000,
                now_ms,
            )
            .await?;
        let (device_id, user_id) = match outcome {
            RefreshOutcome::Rotated { device_id, user_id } => (device_id, user_id),
            RefreshOutcome::Reused { device_id } => {
                tracing::warn!(device = %device_id, "refresh token reused; its family is revoked");
                self.store
                    .audit(now_ms, "server", "refresh.reuse", &device_id)
                    .await?;
                return Err(AuthError::RefreshReused);
            }
            RefreshOutcome::Invalid => return Err(AuthError::RefreshInvalid),
        };
        let device = self
            .store
            .device(&device_id)
            .await?
            .ok_or(AuthError::RefreshInvalid)?;
        if device.revoked_at.is_some() {
            return Err(AuthError::DeviceRevoked);
        }
        let user = self
            .store
            .user(&user_id)
            .await?
            .ok_or(AuthError::RefreshInvalid)?;
        if user.disabled {
            return Err(AuthError::Disabled);
        }
        self.store.touch_device(&device.id, now_ms).await?;
        let access_token = self.sign(&user, &device, now_ms)?;
        Ok(Session {
            access_token,
            expires_in: self.lifetimes.access_seconds,
            refresh_token: next,
            user,
            device,
        })
    }

    fn sign(&self, user: &User, device: &Device, now_ms: i64) -> Result<String, AuthError> {
        let keys = self
            .keys
            .read()
            .map_err(|_| AuthError::Internal("key cache poisoned".into()))?;
        let key = keys
            .iter()
            .find(|k| k.retired_at.is_none())
            .ok_or_else(|| AuthError::Internal("no signing key".into()))?;
        let now = now_ms / 1000;
        let claims = Claims {
            sub: user.id.clone(),
            dev: device.id.clone(),
            act: device.actor_id.clone(),
            role: user.role.as_str().to_owned(),
            team: user.team.as_ref().map(ToString::to_string),
            scope: user.scope.to_string(),
            iat: now,
            exp: now + self.lifetimes.access_seconds,
            iss: ISSUER.to_owned(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.secret))
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    /// Before a new device of `user` is registered: at the maximum, the device seen
    /// least recently is recycled (revoked, audited) if it has not been seen for
    /// [`DEVICE_UNUSED_MS`]; otherwise the login is refused.
    async fn make_room_for_a_device(&self, user: &str, now_ms: i64) -> Result<(), AuthError> {
        let mut active: Vec<Device> = self
            .store
            .devices(Some(user))
            .await?
            .into_iter()
            .filter(|d| d.revoked_at.is_none())
            .collect();
        if active.len() < self.max_devices {
            return Ok(());
        }
        active.sort_by_key(|d| d.last_seen_at.unwrap_or(d.created_at));
        let oldest = &active[0];
        if now_ms - oldest.last_seen_at.unwrap_or(oldest.created_at) < DEVICE_UNUSED_MS {
            return Err(AuthError::TooManyDevices {
                max: self.max_devices,
            });
        }
        self.store.revoke_device(&oldest.id, now_ms).await?;
        self.store
            .audit(now_ms, user, "device.recycle", &oldest.id)
            .await?;
        tracing::info!(%user, device = %oldest.id, "unused device recycled for a new one");
        Ok(())
    }

    /// Checks an access token (signature, expiry, issuer) and that its device is
    /// still registered and not revoked.
    pub async fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::TokenInvalid(e.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| AuthError::TokenInvalid("no key id".into()))?;
        let mut secret = self.secret_for(&kid, now_ms)?;
        if secret.is_none() {
            // Another node may have rotated the keys.
            self.reload_keys().await?;
            secret = self.secret_for(&kid, now_ms)?;
        }
        let secret = secret.ok_or_else(|| AuthError::TokenInvalid("unknown key id".into()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 0;
        let claims =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&secret), &validation)
                .map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                    _ => AuthError::TokenInvalid(e.to_string()),
                })?
                .claims;
        let device = self
            .store
            .device(&claims.dev)
            .await?
            .ok_or_else(|| AuthError::TokenInvalid("unknown device".into()))?;
        if device.revoked_at.is_some() {
            return Err(AuthError::DeviceRevoked);
        }
        Ok(claims)
    }

    /// The secret of key `kid`, if it may still verify at `now_ms`.
    fn secret_for(&self, kid: &str, now_ms: i64) -> Result<Option<Vec<u8>>, AuthError> {
        let keys = self
            .keys
            .read()
            .map_err(|_| AuthError::Internal("key cache poisoned".into()))?;
        let grace_ms = self.lifetimes.access_seconds * 1000;
        Ok(keys
            .iter()
            .find(|k| k.kid == kid)
            .filter(|k| {
                k.retired_at
                    .is_none_or(|retired| now_ms < retired + grace_ms)
            })
            .map(|k| k.secret.clone()))
    }
}

/// Adds a new signing key and retires the others; returns its kid.
pub async fn rotate_signing_key(store: &dyn Store, now_ms: i64) -> Result<String, AuthError> {
    let mut secret = vec![0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let kid = uuid::Uuid::now_v7().simple().to_string();
    store
        .add_signing_key(&SigningKey {
            kid: kid.clone(),
            secret,
            created_at: now_ms,
            retired_at: None,
        })
        .await?;
    store.audit(now_ms, "admin", "keys.rotate", &kid).await?;
    Ok(kid)
}

const ISSUER: &str = "wangge";

/// A hash checked against when the user is unknown, so that the response time does
/// not reveal which user ids exist.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).unwrap_or_default());
