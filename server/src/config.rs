//! Settings: one typed struct, from the environment (`WANGGE_*`) and flags.

use std::net::SocketAddr;

use crate::auth::TokenLifetimes;

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://wangge.db";

/// The default address `serve` listens on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Server settings. `Debug` hides the database password.
#[derive(Clone)]
pub struct Settings {
    /// `sqlite://FILE` or `postgres://…` (`WANGGE_DATABASE_URL`).
    pub database_url: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Token lifetimes (`WANGGE_ACCESS_TOKEN_SECONDS`, `WANGGE_REFRESH_TOKEN_SECONDS`).
    pub lifetimes: TokenLifetimes,
    /// An ownership rules file (TOML); the built-in rules when `None`.
    pub ownership: Option<std::path::PathBuf>,
    /// How often a push socket checks that its device is not revoked
    /// (`WANGGE_PUSH_CHECK_SECONDS`, default 30: a revoked device is cut within a minute).
    pub push_check_every: std::time::Duration,
    /// HTTPS: the certificate chain and private key (PEM files); plain HTTP if `None`.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field("lifetimes", &self.lifetimes)
            .field("ownership", &self.ownership)
            .field("push_check_every", &self.push_check_every)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Token lifetimes from the environment, defaults otherwise.
pub fn lifetimes_from_env() -> Result<TokenLifetimes, String> {
    let mut lifetimes = TokenLifetimes::default();
    for (name, slot) in [
        ("WANGGE_ACCESS_TOKEN_SECONDS", &mut lifetimes.access_seconds),
        (
            "WANGGE_REFRESH_TOKEN_SECONDS",
            &mut lifetimes.refresh_seconds,
        ),
    ] {
        if let Ok(text) = std::env::var(name) {
            *slot =
                text.parse::<i64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("{name}={text:?} is not a positive number of seconds")
                })?;
        }
    }
    Ok(lifetimes)
}

/// `WANGGE_PUSH_CHECK_SECONDS` (default 30).
pub fn push_check_from_env() -> Result<std::time::Duration, String> {
    seconds_from_env("WANGGE_PUSH_CHECK_SECONDS", 30)
}

/// `WANGGE_ESCALATE_SECONDS` (default 60): how often overdue cases are escalated.
pub fn escalate_every_from_env() -> Result<std::time::Duration, String> {
    seconds_from_env("WANGGE_ESCALATE_SECONDS", 60)
}

/// `WANGGE_PATROL_DUTY_SECONDS` (default 300): how often today's patrol duties are
/// snapshotted for the field workers who have none yet.
pub fn patrol_duty_every_from_env() -> Result<std::time::Duration, String> {
    seconds_from_env("WANGGE_PATROL_DUTY_SECONDS", 300)
}

/// `WANGGE_SYNC_ROUNDS` (1..=1024; default twice the cores): how many sync rounds run
/// at once; the others wait their turn in line.
pub fn sync_rounds_from_env() -> Result<usize, String> {
    let default = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    match std::env::var("WANGGE_SYNC_ROUNDS") {
        Err(_) => Ok(default),
        Ok(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| format!("WANGGE_SYNC_ROUNDS={text:?} is not a number in 1..=1024")),
    }
}

/// `WANGGE_DOCUMENT_CACHE_MB` (0..=65536; default 64): the bound of the loaded
/// documents kept between sync rounds, in MiB of their estimated heap (0: none).
pub fn document_cache_from_env() -> Result<u64, String> {
    match std::env::var("WANGGE_DOCUMENT_CACHE_MB") {
        Err(_) => Ok(crate::doc_cache::DEFAULT_BYTES),
        Ok(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= 65_536)
            .map(|mib| mib * 1024 * 1024)
            .ok_or_else(|| {
                format!("WANGGE_DOCUMENT_CACHE_MB={text:?} is not a number of MiB in 0..=65536")
            }),
    }
}

/// A number of seconds in 1..=3600 from the environment variable `name`.
fn seconds_from_env(name: &str, default: u64) -> Result<std::time::Duration, String> {
    match std::env::var(name) {
        Err(_) => Ok(std::time::Duration::from_secs(default)),
        Ok(text) => text
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=3600).contains(s))
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| format!("{name}={text:?} is not a number of seconds in 1..=3600")),
    }
}

/// Photo upload limits, processing and garbage collection from the environment:
///
/// | variable | default | range |
/// |---|---|---|
/// | `WANGGE_BLOB_MAX_BYTES` | 20 MiB | 1 KiB – 256 MiB |
/// | `WANGGE_BLOB_MAX_CHUNK_BYTES` | 1 MiB | 16 KiB – 16 MiB |
/// | `WANGGE_BLOB_UPLOAD_EXPIRE_SECONDS` | 3 days | 60 s – 30 days |
/// | `WANGGE_BLOB_MAX_UPLOADS_PER_DEVICE` | 32 | 1 – 1024 |
/// | `WANGGE_PHOTO_WORKERS` | half the cores (≥ 1) | 1 – 64 |
/// | `WANGGE_PHOTO_KEEP_ORIGINAL` | false | `true` / `false` |
/// | `WANGGE_BLOB_GC_SECONDS` | 3600 | 60 – 86400 |
/// | `WANGGE_BLOB_GC_GRACE_DAYS` | 30 | 0 – 3650 |
pub fn blob_settings_from_env() -> Result<crate::blobs::BlobSettings, String> {
    use std::time::Duration;
    let defaults = crate::blobs::BlobSettings::default();
    let day = 24 * 3600;
    let workers = bounded_from_env("WANGGE_PHOTO_WORKERS", defaults.workers as u64, 1..=64)?;
    let keep_original = match std::env::var("WANGGE_PHOTO_KEEP_ORIGINAL") {
        Err(_) => defaults.keep_original,
        Ok(text) => match text.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(format!(
                    "WANGGE_PHOTO_KEEP_ORIGINAL={text:?} is not true or false"
                ));
            }
        },
    };
    Ok(crate::blobs::BlobSettings {
        max_bytes: bounded_from_env(
            "WANGGE_BLOB_MAX_BYTES",
            defaults.max_bytes,
            1024..=256 << 20,
        )?,
        max_chunk: bounded_from_env(
            "WANGGE_BLOB_MAX_CHUNK_BYTES",
            defaults.max_chunk,
            16 << 10..=16 << 20,
        )?,
        upload_ttl: Duration::from_secs(bounded_from_env(
            "WANGGE_BLOB_UPLOAD_EXPIRE_SECONDS",
            defaults.upload_ttl.as_secs(),
            60..=30 * day,
        )?),
        max_uploads_per_device: bounded_from_env(
            "WANGGE_BLOB_MAX_UPLOADS_PER_DEVICE",
            defaults.max_uploads_per_device,
            1..=1024,
        )?,
        workers: usize::try_from(workers).unwrap_or(1),
        worker_wait: defaults.worker_wait,
        keep_original,
        gc_every: Duration::from_secs(bounded_from_env(
            "WANGGE_BLOB_GC_SECONDS",
            defaults.gc_every.as_secs(),
            60..=day,
        )?),
        gc_grace: Duration::from_secs(
            day * bounded_from_env(
                "WANGGE_BLOB_GC_GRACE_DAYS",
                defaults.gc_grace.as_secs() / day,
                0..=3650,
            )?,
        ),
    })
}

/// A whole number in `range` from the environment variable `name`, `default` if unset.
fn bounded_from_env(
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                format!(
                    "{name}={text:?} is not a whole number in {}..={}",
                    range.start(),
                    range.end()
                )
            }),
    }
}

/// The connection layer's limits from the environment (`WANGGE_MAX_CONNECTIONS`,
/// `WANGGE_HEADER_TIMEOUT_SECONDS`), the defaults of
/// [`crate::listener::ConnectionLimits::for_open_files`] otherwise. A cap above what
/// the open-files limit leaves is lowered to it.
pub fn connection_limits_from_env(
    open_files: u64,
) -> Result<crate::listener::ConnectionLimits, String> {
    let defaults = crate::listener::ConnectionLimits::for_open_files(open_files);
    let most = defaults.max_connections as u64;
    let max = bounded_from_env("WANGGE_MAX_CONNECTIONS", most, 1..=10_000_000)?;
    Ok(crate::listener::ConnectionLimits {
        max_connections: usize::try_from(max.min(most)).unwrap_or(usize::MAX),
        header_timeout: std::time::Duration::from_secs(bounded_from_env(
            "WANGGE_HEADER_TIMEOUT_SECONDS",
            defaults.header_timeout.as_secs(),
            1..=3600,
        )?),
    })
}

/// The time a request's body may take to arrive (`WANGGE_BODY_TIMEOUT_SECONDS`,
/// 60 s by default): a body that stalls is cut off, not waited on forever.
pub fn body_timeout_from_env() -> Result<std::time::Duration, String> {
    Ok(std::time::Duration::from_secs(bounded_from_env(
        "WANGGE_BODY_TIMEOUT_SECONDS",
        60,
        1..=3600,
    )?))
}

/// Login throttling and the devices per user from the environment
/// (`WANGGE_LOGIN_FREE_FAILURES`, `WANGGE_LOGIN_FREE_FAILURES_PER_ADDRESS`,
/// `WANGGE_MAX_DEVICES_PER_USER`), the defaults otherwise.
pub fn login_limits_from_env() -> Result<(crate::login_throttle::ThrottleSettings, usize), String> {
    let defaults = crate::login_throttle::ThrottleSettings::default();
    let throttle = crate::login_throttle::ThrottleSettings {
        account_free: u32::try_from(bounded_from_env(
            "WANGGE_LOGIN_FREE_FAILURES",
            u64::from(defaults.account_free),
            1..=1000,
        )?)
        .unwrap_or(defaults.account_free),
        address_free: u32::try_from(bounded_from_env(
            "WANGGE_LOGIN_FREE_FAILURES_PER_ADDRESS",
            u64::from(defaults.address_free),
            1..=100_000,
        )?)
        .unwrap_or(defaults.address_free),
        ..defaults
    };
    let devices = bounded_from_env(
        "WANGGE_MAX_DEVICES_PER_USER",
        crate::auth::DEFAULT_MAX_DEVICES as u64,
        1..=1000,
    )?;
    Ok((throttle, usize::try_from(devices).unwrap_or(usize::MAX)))
}

/// The category catalogue: the operator's TOML file named by `WANGGE_CATALOG`
/// (validated; an error names the entry), else the built-in one. Loaded once and kept
/// for the life of the process, like the built-in one.
pub fn catalog_from_env() -> Result<&'static wangge_sync_core::catalog::Catalog, String> {
    use wangge_sync_core::catalog::Catalog;
    let Ok(path) = std::env::var("WANGGE_CATALOG") else {
        return Ok(Catalog::builtin());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("WANGGE_CATALOG={path}: reading it: {e}"))?;
    let catalog =
        Catalog::from_toml_str(&text).map_err(|e| format!("WANGGE_CATALOG={path}: {e}"))?;
    Ok(Box::leak(Box::new(catalog)))
}

/// `WANGGE_TRUSTED_PROXIES`: the reverse proxies (addresses, CIDR networks,
/// comma-separated) whose `X-Forwarded-For` names the client; none by default.
pub fn trusted_proxies_from_env() -> Result<crate::client_addr::TrustedProxies, String> {
    let text = std::env::var("WANGGE_TRUSTED_PROXIES").unwrap_or_default();
    crate::client_addr::TrustedProxies::parse(&text)
        .map_err(|e| format!("WANGGE_TRUSTED_PROXIES: {e}"))
}
