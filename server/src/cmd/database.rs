//! `wangge serve`, `wangge demo`, `wangge migrate`, `wangge user …`, `wangge device …`,
//! `wangge keys rotate`, `wangge blobs gc|backfill`, `wangge grid import`: the commands that work on the database.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use wangge_server::api::{self, AppState, now_ms};
use wangge_server::auth::{self, Auth};
use wangge_server::config::{self, Settings};
use wangge_server::grids;
use wangge_server::store::{self, Store, User};
use wangge_sync_core::catalog::TeamId;
use wangge_sync_core::grid::GridSet;
use wangge_sync_core::ownership::Ownership;
use wangge_sync_core::role::{AssignRefused, GridScope, Role, check_user_id};

/// Where the database is.
#[derive(Debug, Args)]
pub struct Database {
    /// `sqlite://FILE` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long = "database", env = "WANGGE_DATABASE_URL", default_value = config::DEFAULT_DATABASE_URL)]
    pub url: String,
}

/// What `wangge serve --help` says after the flags: every other setting.
const SETTINGS_HELP: &str = "Settings (environment; defaults and ranges in docs/operations.md):
  WANGGE_CATALOG                 the city's category catalogue (TOML)
  WANGGE_ASSESSMENT              the assessment's weights and grade bands (TOML)
  WANGGE_LOG                     log filter (info)
  WANGGE_ACCESS_TOKEN_SECONDS, WANGGE_REFRESH_TOKEN_SECONDS
  WANGGE_MAX_CONNECTIONS, WANGGE_HEADER_TIMEOUT_SECONDS, WANGGE_BODY_TIMEOUT_SECONDS
  WANGGE_TRUSTED_PROXIES         reverse proxies whose X-Forwarded-For is believed
  WANGGE_LOGIN_FREE_FAILURES, WANGGE_LOGIN_FREE_FAILURES_PER_ADDRESS,
  WANGGE_MAX_DEVICES_PER_USER
  WANGGE_SYNC_ROUNDS, WANGGE_DOCUMENT_CACHE_MB, WANGGE_PUSH_CHECK_SECONDS,
  WANGGE_ESCALATE_SECONDS, WANGGE_PATROL_DUTY_SECONDS
  WANGGE_BLOB_MAX_BYTES, WANGGE_BLOB_MAX_CHUNK_BYTES, WANGGE_BLOB_UPLOAD_EXPIRE_SECONDS,
  WANGGE_BLOB_MAX_UPLOADS_PER_DEVICE, WANGGE_PHOTO_WORKERS, WANGGE_PHOTO_KEEP_ORIGINAL,
  WANGGE_BLOB_GC_SECONDS, WANGGE_BLOB_GC_GRACE_DAYS
  WANGGE_CONSOLE_TILES           the web console's base-map tile URL (none: grids only)";

#[derive(Debug, Args)]
#[command(after_help = SETTINGS_HELP)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: Database,
    /// Address to listen on; port 0 picks a free one (printed at start).
    #[arg(long, env = "WANGGE_LISTEN", default_value = config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Ownership rules (TOML, see `sync-core/src/ownership.rs`); the built-in ones if omitted.
    #[arg(long, env = "WANGGE_OWNERSHIP")]
    pub ownership: Option<std::path::PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, env = "WANGGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM); needs --tls-cert.
    #[arg(long, env = "WANGGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Add {
        #[command(flatten)]
        database: Database,
        /// Login id (letters, digits, - _ . @ :).
        #[arg(long)]
        id: String,
        /// Name to show.
        #[arg(long)]
        name: String,
        /// Role, e.g. enforcement_officer, dispatcher, district_supervisor.
        #[arg(long)]
        role: String,
        /// Team (for roles that handle cases), e.g. sanitation.
        #[arg(long)]
        team: Option<String>,
        /// Grids: comma-separated grid code prefixes, or * for the whole city.
        #[arg(long, default_value = "")]
        scope: String,
    },
    /// List users.
    List {
        #[command(flatten)]
        database: Database,
    },
    /// Post a user: change their role, team or grids (the others stay).
    Assign {
        #[command(flatten)]
        database: Database,
        /// The user.
        #[arg(long)]
        id: String,
        /// New role.
        #[arg(long)]
        role: Option<String>,
        /// New team (`-` for none).
        #[arg(long)]
        team: Option<String>,
        /// New grids: comma-separated grid code prefixes, or *.
        #[arg(long)]
        scope: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List devices (of one user, or all).
    List {
        #[command(flatten)]
        database: Database,
        /// Only this user's devices.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a device: its refresh tokens stop working at once, its access token at
    /// the next request.
    Revoke {
        #[command(flatten)]
        database: Database,
        /// The device id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new JWT signing key and retire the others (they verify until their
    /// tokens expire, so nobody is logged out).
    Rotate {
        #[command(flatten)]
        database: Database,
    },
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(super) async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(url)
        .await
        .with_context(|| format!("opening {}", config::redact_url(url)))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        database_url: args.database.url,
        listen: args.listen,
        lifetimes: config::lifetimes_from_env().map_err(anyhow::Error::msg)?,
        ownership: args.ownership,
        push_check_every: config::push_check_from_env().map_err(anyhow::Error::msg)?,
        tls: args.tls_cert.zip(args.tls_key),
    };
    init_logging();
    runtime()?.block_on(serve_with(settings, None))
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WANGGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Serves with `settings`; `demo`: first fills an empty demo database with its week.
async fn serve_with(
    settings: Settings,
    demo: Option<super::demo_week::Week>,
) -> anyhow::Result<ExitCode> {
    tracing::info!(?settings, "starting");
    // Before anything else: a certificate that will not do stops the start.
    let tls = settings
        .tls
        .as_ref()
        .map(|(cert, key)| wangge_server::listener::tls_acceptor(cert, key))
        .transpose()
        .context("HTTPS (WANGGE_TLS_CERT, WANGGE_TLS_KEY)")?;
    let store = open(&settings.database_url).await?;
    let (throttle, max_devices) = config::login_limits_from_env().map_err(anyhow::Error::msg)?;
    let auth = Auth::new(store.clone(), settings.lifetimes, now_ms())
        .await
        .context("loading the signing keys")?
        .with_limits(throttle, max_devices);
    let grids = grids::load(store.as_ref())
        .await
        .context("loading the unit grids")?;
    match &grids {
        Some(index) => tracing::info!(grids = index.len(), "unit grids loaded"),
        None => tracing::warn!("no unit grids: import them with `wangge grid import`"),
    }
    let catalog = config::catalog_from_env().map_err(anyhow::Error::msg)?;
    let ownership = match &settings.ownership {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ownership::from_toml_str(&text, catalog)
                .with_context(|| format!("in ownership rules {}", path.display()))?
        }
        None => Ownership::builtin(catalog)
            .context("the built-in ownership rules, with the catalogue")?,
    };
    tracing::info!(
        categories = catalog.categories().count(),
        teams = catalog.teams().len(),
        "catalogue loaded"
    );
    let push = Arc::new(wangge_server::push::PushHub::new(settings.push_check_every));
    // What the other nodes' rounds wrote, for this node's sockets.
    if let Some(mut messages) = store.subscribe().await? {
        let push = Arc::clone(&push);
        tokio::spawn(async move {
            while let Some(message) = messages.recv().await {
                push.from_other_node(&message);
            }
        });
    }
    let grids = grids.map(Arc::new);
    let ownership = Arc::new(ownership);
    let rules = Arc::new(wangge_server::cases::CaseRules {
        catalog,
        calendar: wangge_sync_core::calendar::WorkCalendar::standard(),
        grids: grids.clone(),
        ownership: Arc::clone(&ownership),
    });
    let metrics = Arc::new(wangge_server::metrics::Metrics::new());
    let state = AppState {
        store: store.clone(),
        auth: Arc::new(auth),
        grids,
        ownership,
        sync: Arc::new(
            wangge_server::sync::SyncEngine::new(
                Default::default(),
                rules,
                config::sync_rounds_from_env().map_err(anyhow::Error::msg)?,
            )
            .with_document_cache(config::document_cache_from_env().map_err(anyhow::Error::msg)?),
        ),
        push,
        metrics: Arc::clone(&metrics),
        blobs: Arc::new(wangge_server::blobs::Blobs::new(
            store.clone(),
            config::blob_settings_from_env().map_err(anyhow::Error::msg)?,
            Arc::clone(&metrics),
        )),
        assessment: Arc::new(
            wangge_server::assessment::rules_from_env().map_err(anyhow::Error::msg)?,
        ),
        outlines: Default::default(),
        console: Arc::new(
            wangge_server::console::ConsoleSettings::from_env()?
                .serving_https(settings.tls.is_some()),
        ),
    };
    if let Some(week) = demo {
        // Before the background jobs: the week runs on its own clock.
        super::demo_week::seed_once(&state, week, DEMO_PASSWORD)
            .await
            .context("filling the demo's week")?;
    }
    tokio::spawn({
        let state = state.clone();
        async move {
            match wangge_server::assessment::backfill_facts(state.store.as_ref(), &state.sync.rules)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(cases = n, "assessment facts written for older cases"),
                Err(error) => tracing::error!(%error, "assessment backfill failed"),
            }
        }
    });
    let escalate_every = config::escalate_every_from_env().map_err(anyhow::Error::msg)?;
    tokio::spawn(escalate_periodically(state.clone(), escalate_every));
    tokio::spawn(collect_photos_periodically(state.clone()));
    let duty_every = config::patrol_duty_every_from_env().map_err(anyhow::Error::msg)?;
    tokio::spawn(snapshot_duties_periodically(state.clone(), duty_every));
    let open_files = wangge_server::listener::raise_open_files_limit();
    let limits = config::connection_limits_from_env(open_files).map_err(anyhow::Error::msg)?;
    let body_timeout = config::body_timeout_from_env().map_err(anyhow::Error::msg)?;
    let trusted = config::trusted_proxies_from_env().map_err(anyhow::Error::msg)?;
    tracing::info!(
        open_files,
        ?limits,
        ?body_timeout,
        ?trusted,
        "connection limits"
    );
    let sockets = Arc::clone(&state.push);
    let app = api::router(state).layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        body_timeout,
    ));
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let address = listener.local_addr()?;
    // Printed on stdout, flushed: scripts and tests read the port from it.
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("wangge listening on {scheme}://{address}");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    wangge_server::listener::serve(
        listener,
        app,
        limits,
        trusted,
        tls,
        async move {
            shutdown_signal().await;
            // Push sockets hold slots the graceful stop waits for.
            sockets.close_all();
        },
        std::time::Duration::from_secs(10),
    )
    .await;
    Ok(ExitCode::SUCCESS)
}

/// Escalates overdue cases every `every` (see `wangge_server::escalation`).
async fn escalate_periodically(state: AppState, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = chrono::DateTime::from_timestamp_millis(wangge_server::writes::now_ms())
            .unwrap_or_default();
        match wangge_server::escalation::escalate_overdue_cases(
            &state.store,
            &state.sync.rules,
            now,
        )
        .await
        {
            Ok(written) => {
                wangge_server::writes::announce(
                    state.store.as_ref(),
                    &state.push,
                    "server",
                    &written,
                )
                .await
            }
            Err(error) => tracing::error!(%error, "overdue escalation pass failed"),
        }
    }
}

/// Snapshots today's patrol duties every `every` (see `wangge_server::patrol`): the
/// first pass at start, so a day's duties exist before anyone syncs.
async fn snapshot_duties_periodically(state: AppState, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match wangge_server::patrol::duty_pass(
            state.store.as_ref(),
            state.grids.as_deref(),
            wangge_server::writes::now_ms(),
        )
        .await
        {
            Ok(0) => {}
            Ok(written) => tracing::info!(written, "patrol duties snapshotted for today"),
            Err(error) => tracing::error!(%error, "patrol duty pass failed"),
        }
    }
}

/// Photo maintenance every `WANGGE_BLOB_GC_SECONDS`: the backfill of `case_photos`
/// once if a database from before it needs one, then expiry of half uploads and
/// garbage collection of photos unreferenced for the grace period.
async fn collect_photos_periodically(state: AppState) {
    let blobs = &state.blobs;
    match state.store.backfilled().await {
        Ok(true) => {}
        Ok(false) => match blobs.backfill(&state.sync.rules).await {
            Ok(cases) => tracing::info!(cases, "photo references backfilled"),
            Err(error) => tracing::error!(%error, "photo reference backfill failed"),
        },
        Err(error) => tracing::error!(%error, "reading the photo collection state failed"),
    }
    let mut ticks = tokio::time::interval(blobs.settings.gc_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = std::time::Instant::now();
        match blobs
            .collect(
                wangge_server::writes::now_ms(),
                blobs.settings.gc_grace,
                false,
            )
            .await
        {
            Ok(report) => tracing::info!(
                expired_uploads = report.expired_uploads,
                deleted = report.deleted,
                deleted_bytes = report.deleted_bytes,
                not_backfilled = report.not_backfilled,
                ms = started.elapsed().as_millis() as u64,
                "photo collection"
            ),
            Err(error) => tracing::error!(%error, "photo collection failed"),
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

pub fn migrate(database: Database) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        open(&database.url).await?;
        println!("migrated {}", config::redact_url(&database.url));
        Ok(ExitCode::SUCCESS)
    })
}

pub fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add {
            database,
            id,
            name,
            role,
            team,
            scope,
        } => {
            check_user_id(&id)?;
            let role: Role = role.parse()?;
            let team = team.map(TeamId::new).transpose()?;
            if let Some(team) = &team
                && config::catalog_from_env()
                    .map_err(anyhow::Error::msg)?
                    .team(team.as_str())
                    .is_none()
            {
                bail!("unknown team {team}: see `wangge catalog export` for the teams");
            }
            let scope: GridScope = scope.parse()?;
            if role.needs_team() && team.is_none() {
                bail!("{}", AssignRefused::TeamRequired(role));
            }
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.chars().count() < 8 {
                bail!(
                    "the password (first line of standard input) must have at least 8 characters"
                );
            }
            let user = User {
                id,
                display_name: name,
                role,
                team,
                scope,
                password_hash: auth::hash_password(password)?,
                created_at: now_ms(),
                disabled: false,
            };
            runtime()?.block_on(async move {
                let store = open(&database.url).await?;
                store.create_user(&user).await?;
                store.audit(now_ms(), "admin", "user.add", &user.id).await?;
                println!("created user {} ({})", user.id, user.role.as_str());
                Ok(ExitCode::SUCCESS)
            })
        }
        UserCommand::Assign {
            database,
            id,
            role,
            team,
            scope,
        } => runtime()?.block_on(async move {
            let store = open(&database.url).await?;
            let Some(user) = store.user(&id).await? else {
                bail!("no user {id:?}");
            };
            let role: Role = role.map_or(Ok(user.role), |r| r.parse())?;
            let team = match team.as_deref() {
                None => user.team,
                Some("-") => None,
                Some(team) => {
                    let team = TeamId::new(team)?;
                    if config::catalog_from_env()
                        .map_err(anyhow::Error::msg)?
                        .team(team.as_str())
                        .is_none()
                    {
                        bail!("unknown team {team}: see `wangge catalog export` for the teams");
                    }
                    Some(team)
                }
            };
            let scope: GridScope = scope.map_or(Ok(user.scope), |s| s.parse())?;
            if role.needs_team() && team.is_none() {
                bail!("{}", AssignRefused::TeamRequired(role));
            }
            store.set_posting(&id, role, team.as_ref(), &scope).await?;
            store
                .audit(
                    now_ms(),
                    "admin",
                    "user.assign",
                    &format!("{id} {} {scope}", role.as_str()),
                )
                .await?;
            println!(
                "{id}: {} {} {scope}",
                role.as_str(),
                team.as_ref().map_or("-", |t| t.as_str())
            );
            Ok(ExitCode::SUCCESS)
        }),
        UserCommand::List { database } => runtime()?.block_on(async move {
            let store = open(&database.url).await?;
            for user in store.users().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}{}",
                    user.id,
                    printable(&user.display_name),
                    user.role.as_str(),
                    user.team.as_ref().map_or("-", |t| t.as_str()),
                    user.scope,
                    if user.disabled { "\tdisabled" } else { "" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }),
    }
}

/// Text a user or a phone chose, safe to print on an operator's terminal: control
/// characters (an escape sequence could rewrite the screen or the title; a tab or a
/// newline would break the columns) are shown escaped, as `\u{1b}`.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

pub fn device(command: DeviceCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match command {
            DeviceCommand::List { database, user } => {
                let store = open(&database.url).await?;
                for device in store.devices(user.as_deref()).await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        device.id,
                        device.user_id,
                        printable(&device.name),
                        device.actor_id,
                        if device.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            DeviceCommand::Revoke { database, id } => {
                let store = open(&database.url).await?;
                if !store.revoke_device(&id, now_ms()).await? {
                    bail!("no device {id:?}");
                }
                store.audit(now_ms(), "admin", "device.revoke", &id).await?;
                println!("revoked device {id}");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

#[derive(Debug, Subcommand)]
pub enum BlobsCommand {
    /// Delete half uploads past their time and photos no stored case has referenced for
    /// the grace period (what `serve` runs every `WANGGE_BLOB_GC_SECONDS`).
    Gc {
        #[command(flatten)]
        database: Database,
        /// Days a photo stays after the last case stopped referencing it
        /// (default `WANGGE_BLOB_GC_GRACE_DAYS`, else 30).
        #[arg(long)]
        grace_days: Option<u64>,
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Record the photos of cases stored before photo references were kept (needed
    /// once on such a database before anything is collected; `serve` runs it too).
    Backfill {
        #[command(flatten)]
        database: Database,
    },
}

pub fn blobs(command: BlobsCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match command {
            BlobsCommand::Gc {
                database,
                grace_days,
                dry_run,
            } => {
                let store = open(&database.url).await?;
                let settings = config::blob_settings_from_env().map_err(anyhow::Error::msg)?;
                let grace = match grace_days {
                    Some(days) => std::time::Duration::from_secs(days.saturating_mul(24 * 3600)),
                    None => settings.gc_grace,
                };
                let blobs = wangge_server::blobs::Blobs::new(store, settings, Default::default());
                let report = blobs.collect(now_ms(), grace, dry_run).await?;
                if report.not_backfilled {
                    bail!("nothing collected: run `wangge blobs backfill` first");
                }
                let verb = if dry_run { "would delete" } else { "deleted" };
                println!(
                    "{verb} {} photos ({} bytes); {} expired half uploads deleted",
                    report.deleted, report.deleted_bytes, report.expired_uploads
                );
                Ok(ExitCode::SUCCESS)
            }
            BlobsCommand::Backfill { database } => {
                let store = open(&database.url).await?;
                let grids = grids::load(store.as_ref()).await?.map(Arc::new);
                let catalog = config::catalog_from_env().map_err(anyhow::Error::msg)?;
                let rules = wangge_server::cases::CaseRules {
                    catalog,
                    calendar: wangge_sync_core::calendar::WorkCalendar::standard(),
                    grids,
                    ownership: Arc::new(Ownership::builtin(catalog)?),
                };
                let settings = config::blob_settings_from_env().map_err(anyhow::Error::msg)?;
                let blobs = wangge_server::blobs::Blobs::new(store, settings, Default::default());
                let cases = blobs.backfill(&rules).await?;
                println!("photo references of {cases} cases recorded");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

pub fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    let KeysCommand::Rotate { database } = command;
    runtime()?.block_on(async move {
        let store = open(&database.url).await?;
        let kid = auth::rotate_signing_key(store.as_ref(), now_ms()).await?;
        println!("new signing key {kid}; the others are retired");
        Ok(ExitCode::SUCCESS)
    })
}

/// Stores `set` as the server's unit grids (replacing any).
pub fn import_grids(set: &GridSet, database: &Database) -> anyhow::Result<()> {
    let rows = grids::to_stored(set)?;
    runtime()?.block_on(async move {
        let store = open(&database.url).await?;
        store.replace_grids(&rows).await?;
        store
            .audit(now_ms(), "admin", "grid.import", &rows.len().to_string())
            .await?;
        eprintln!(
            "imported {} unit grids into {}",
            rows.len(),
            config::redact_url(&database.url)
        );
        Ok(())
    })
}

/// The six urban districts: 中原, 二七, 管城, 金水, 上街, 惠济.
const URBAN_DISTRICTS: &str = "410102,410103,410104,410105,410106,410108";

/// The real boundaries of Zhengzhou's districts (GCJ-02, `data/README.md`), built in so
/// that `wangge demo` runs from any directory.
pub const ZHENGZHOU_DISTRICTS: &[u8] = include_bytes!("../../../data/zhengzhou-districts.geojson");

/// The point the README locates (WGS-84, 金水区 near the city government); the demo's
/// accounts are posted around it.
pub const DEMO_POINT: &str = "113.6654,34.7579";

fn parse_lon_lat(text: &str) -> Result<(f64, f64), String> {
    let (lon, lat) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?}: expected lon,lat"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|e| format!("{text:?}: {e}"))
    };
    let point = (number(lon)?, number(lat)?);
    wangge_sync_core::geo::LonLat::new(point.0, point.1).map_err(|e| format!("{text:?}: {e}"))?;
    Ok(point)
}

/// The password of every demo account (printed at start; a demo only).
pub const DEMO_PASSWORD: &str = "wangge-demo";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The demo database (created if missing).
    #[arg(
        long = "database",
        env = "WANGGE_DATABASE_URL",
        default_value = "sqlite://wangge-demo.db"
    )]
    pub database: String,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "WANGGE_LISTEN", default_value = config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The district boundaries to cut when the database has no grids yet; the real
    /// Zhengzhou districts built into the binary if omitted.
    #[arg(long)]
    pub districts: Option<std::path::PathBuf>,
    /// Where the demo's accounts work (WGS-84 `lon,lat`): they are posted to the
    /// community, street and district of the unit grid there (the first grid's when
    /// the point lies outside the cut districts). By default the point the README
    /// tries.
    #[arg(long, value_parser = parse_lon_lat, default_value = DEMO_POINT)]
    pub accounts_at: (f64, f64),
    /// Which districts to cut (adcodes); the six urban districts by default.
    #[arg(long, value_delimiter = ',', default_value = URBAN_DISTRICTS)]
    pub adcodes: Vec<String>,
    /// Ownership rules (TOML); the built-in ones if omitted.
    #[arg(long, env = "WANGGE_OWNERSHIP")]
    pub ownership: Option<std::path::PathBuf>,
    /// The seed of the demo's week of cases and patrols (made once, into a database
    /// without cases): the same seed makes the same week.
    #[arg(long, default_value_t = super::demo_week::DEFAULT_SEED)]
    pub seed: u64,
    /// When the demo's week ends (RFC 3339, e.g. 2026-12-04T18:00:00+08:00); the
    /// demo's start by default.
    #[arg(long)]
    pub week_ending: Option<chrono::DateTime<chrono::Utc>>,
}

/// One demo account per role that logs in (the server's own role does not).
fn demo_accounts(
    first_grid: &str,
) -> Vec<(String, &'static str, Role, Option<&'static str>, String)> {
    let community = first_grid.get(..12).unwrap_or(first_grid).to_owned();
    let street = first_grid.get(..9).unwrap_or(first_grid).to_owned();
    let district = first_grid.get(..6).unwrap_or(first_grid).to_owned();
    let everywhere = "*".to_owned();
    vec![
        (
            "officer".into(),
            "执法队员",
            Role::EnforcementOfficer,
            Some("enforcement"),
            community.clone(),
        ),
        (
            "assistant".into(),
            "协管员",
            Role::Assistant,
            Some("enforcement"),
            community.clone(),
        ),
        (
            "maintenance".into(),
            "市政维护",
            Role::MunicipalMaintenance,
            Some("municipal_maintenance"),
            community.clone(),
        ),
        (
            "sanitation".into(),
            "环卫工人",
            Role::SanitationWorker,
            Some("sanitation"),
            community.clone(),
        ),
        (
            "info-supervisor".into(),
            "信息监督员",
            Role::InformationSupervisor,
            None,
            community.clone(),
        ),
        (
            "grid-leader".into(),
            "网格长",
            Role::GridLeader,
            None,
            community,
        ),
        (
            "acceptor".into(),
            "受理员",
            Role::Acceptor,
            None,
            street.clone(),
        ),
        (
            "shift-lead".into(),
            "值班长",
            Role::ShiftLead,
            None,
            street.clone(),
        ),
        (
            "dispatcher".into(),
            "派遣员",
            Role::Dispatcher,
            None,
            street,
        ),
        (
            "power".into(),
            "供电(专业部门)",
            Role::DepartmentHandler,
            Some("power"),
            everywhere.clone(),
        ),
        (
            "hotline".into(),
            "12319接线员",
            Role::HotlineOperator,
            None,
            everywhere.clone(),
        ),
        (
            "district".into(),
            "区级分包领导",
            Role::DistrictSupervisor,
            None,
            district,
        ),
        (
            "city".into(),
            "市级分包领导",
            Role::CitySupervisor,
            None,
            everywhere.clone(),
        ),
        ("admin".into(), "系统管理员", Role::Admin, None, everywhere),
    ]
}

/// `wangge demo`: a ready-to-try server on SQLite with the real urban grids and an
/// account for every role.
pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let runtime = runtime()?;
    // A SQLite file this run creates is removed again if the setup fails, so a failed
    // first try leaves no empty database that the next try would take as set up.
    let created = args
        .database
        .strip_prefix("sqlite://")
        .map(|rest| std::path::PathBuf::from(rest.split('?').next().unwrap_or(rest)))
        .filter(|path| !path.exists());
    let set_up = runtime.block_on(demo_setup(&args));
    if let (Err(_), Some(path)) = (&set_up, &created) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
    set_up?;
    let settings = Settings {
        database_url: args.database,
        listen: args.listen,
        lifetimes: config::lifetimes_from_env().map_err(anyhow::Error::msg)?,
        ownership: args.ownership,
        push_check_every: config::push_check_from_env().map_err(anyhow::Error::msg)?,
        tls: None,
    };
    let week = super::demo_week::Week {
        seed: args.seed,
        ending: args.week_ending,
    };
    runtime.block_on(serve_with(settings, Some(week)))
}

/// Creates a demo account as `wangge user add` does (kept when it exists), and prints
/// it.
pub(super) async fn add_demo_user(store: &dyn Store, user: &User) -> anyhow::Result<()> {
    match store.create_user(user).await {
        Ok(()) | Err(store::StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    println!(
        "  {:<22} {:<24} {:<10} scope {}",
        user.id,
        user.role.as_str(),
        user.role.name_zh(),
        user.scope
    );
    Ok(())
}

/// The demo's grids (cut once) and accounts (created once).
async fn demo_setup(args: &DemoArgs) -> anyhow::Result<()> {
    let store = open(&args.database).await?;
    // One row is enough to know; counting would read the whole table.
    if store.grids_page(None, 1).await?.is_empty() {
        let (bytes, name) = match &args.districts {
            Some(path) => (
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
                path.display().to_string(),
            ),
            None => (
                ZHENGZHOU_DISTRICTS.to_vec(),
                "the built-in Zhengzhou districts".to_owned(),
            ),
        };
        eprintln!(
            "cutting districts {} of {name} into unit grids (once; kept in the database)…",
            args.adcodes.join(","),
        );
        let adcodes = args.adcodes.clone();
        let set = tokio::task::spawn_blocking(move || {
            super::grid::cut_district_bytes(&bytes, &name, &adcodes, 100.0)
        })
        .await??;
        let rows = grids::to_stored(&set)?;
        store.replace_grids(&rows).await?;
        eprintln!("{} unit grids stored", rows.len());
    }
    let (lon, lat) = args.accounts_at;
    // Once the accounts exist (every start after the first) their posting says where
    // they work: loading the whole grid index here as well as in `serve` would double
    // the start-up's longest step.
    let posted = store
        .user("demo-grid-leader")
        .await?
        .and_then(|u| u.scope.prefixes().first().cloned())
        .filter(|p| p.len() == 12);
    let located = match posted {
        Some(community) => Some(format!("{community}001")),
        None => grids::load(store.as_ref())
            .await?
            .and_then(|index| {
                let point = wangge_sync_core::geo::LonLat::new(lon, lat).ok()?;
                index.locate_gcj02(point.to_gcj02(wangge_sync_core::geo::Crs::Wgs84))
            })
            .map(|grid| grid.to_string()),
    };
    let anchor = match located {
        Some(grid) => grid,
        None => {
            eprintln!(
                "{lon},{lat} lies outside the cut districts: the accounts work around the first grid"
            );
            store
                .grids_page(None, 1)
                .await?
                .first()
                .map(|g| g.code.clone())
                .unwrap_or_default()
        }
    };
    let password_hash = auth::hash_password(DEMO_PASSWORD)?;
    println!(
        "demo accounts (password {DEMO_PASSWORD}), working in community {}:",
        anchor.get(..12).unwrap_or(&anchor)
    );
    for (id, name, role, team, scope) in demo_accounts(&anchor) {
        let user = User {
            id: format!("demo-{id}"),
            display_name: format!("演示{name}"),
            role,
            team: team.map(TeamId::new).transpose()?,
            scope: scope.parse()?,
            password_hash: password_hash.clone(),
            created_at: now_ms(),
            disabled: false,
        };
        add_demo_user(store.as_ref(), &user).await?;
    }
    println!(
        "  (field workers report and handle cases in their community; the grid leader, \
         shift lead and supervisors review patrol logs; the acceptor, shift lead and \
         dispatcher work the case queue)"
    );
    Ok(())
}
