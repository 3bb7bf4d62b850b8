//! [`FieldClient`]: everything a field worker's app calls. Local calls (report, act,
//! check in, list, show) work offline and return once their transaction committed;
//! network calls (`login`, `sync_now`, `attach_photo`'s compression) are async and run
//! on the client's own tokio runtime, so the app's coroutine or `Task` only awaits.
//!
//! The store's mutex is held only for local transactions, never across the network,
//! and listener callbacks are made without it (a callback may call back in).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::Automerge;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use ureq::http::Method;
use wangge_sync_core::case::{
    Action, ActionFields, ActionName, CaseDocument, NewCase, Outcome, Photo,
    PhotoRole as CorePhotoRole, Source,
};
use wangge_sync_core::catalog::{CategoryCode, TeamId};
use wangge_sync_core::document::Position;
use wangge_sync_core::geo::{Crs, LonLat};
use wangge_sync_core::grid::geojson::read_grids;
use wangge_sync_core::grid::{GridCode, GridIndex};
use wangge_sync_core::patrol::{
    CheckIn, MAX_TRACK_BATCH, PatrolLog, TrackPoint, patrol_date, patrol_log_id,
};
use wangge_sync_core::photo::prepare_upload;
use wangge_sync_core::role::Actor;
use wangge_sync_core::sync::device::{
    DeviceCommit, DeviceDoc, DeviceDocWrite, DeviceSession, DeviceStorage, DeviceSyncError,
};
use wangge_sync_core::sync::message::Limits;
use wangge_sync_core::sync::{DocKind, load_chunks};

use crate::error::FieldError;
use crate::http::{Answer, Http, Trust, Waits};
use crate::push::{PushHandle, PushListener};
use crate::rules::with_context;
use crate::store::{
    PHOTO_CACHE_DIR, PHOTO_DIR, QueuedPhoto, STORE_FILE, Store, StoreError, StoredSession,
    refusal_text,
};
use crate::types::*;

/// The phone's own clock, supplied by the app (or a test); the system clock when
/// none is given. (Not `Clock`: Swift's standard library has a protocol of that name.)
#[uniffi::export(with_foreign)]
pub trait PhoneClock: Send + Sync {
    /// Milliseconds since the Unix epoch, as the phone believes.
    fn now_ms(&self) -> i64;
}

/// The largest photo file read from disk (a camera's 12-50 MP JPEG is under this).
const MAX_PHOTO_FILE: u64 = 40 * 1024 * 1024;
/// Incremental chunks a document keeps before a local edit saves it whole again
/// (loading many small chunks costs more than one compacted save).
const COMPACT_AFTER_CHUNKS: usize = 16;
/// The most rounds one `sync_now` makes (a bootstrap of thousands of cases takes a
/// few dozen; a sync never runs forever).
const MAX_ROUNDS: u32 = 200;

/// The phone library: one per data directory.
#[derive(uniffi::Object)]
pub struct FieldClient {
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for FieldClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldClient")
            .field("data_dir", &self.inner.dir)
            .field("server", &self.inner.http.base())
            .finish_non_exhaustive()
    }
}

impl Drop for FieldClient {
    fn drop(&mut self) {
        self.inner.stop_push();
        // The last reference may be dropped on any thread, even inside the runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

pub(crate) struct Inner {
    dir: PathBuf,
    device_name: String,
    pub(crate) http: Http,
    store: Mutex<Option<Store>>,
    /// One sync at a time; holds the request in flight.
    session: Mutex<DeviceSession>,
    clock: Option<Arc<dyn PhoneClock>>,
    grids: Mutex<Option<Arc<GridIndex>>>,
    push: Mutex<Option<PushHandle>>,
    /// Held while a refresh token is spent.
    refreshing: Mutex<()>,
    /// The most bytes of downloaded photos kept.
    photo_cache_bytes: u64,
    /// Set when a write may have left dispatches the app was not told of (the push
    /// thread looks at the store only then).
    pub(crate) notices_waiting: AtomicBool,
    /// Set once the server said this device is revoked (and the store was wiped):
    /// a call that then finds the store closed is told why.
    pub(crate) was_revoked: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the store half-written (SQLite
    // rolls the transaction back), so the value is still good.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[uniffi::export]
impl FieldClient {
    /// Opens (or creates) the store in `config.data_dir`. Never touches the network.
    #[uniffi::constructor]
    pub fn open(config: ClientConfig) -> Result<Arc<FieldClient>, FieldError> {
        FieldClient::open_with(config, None)
    }

    /// Opens with the app's clock (tests use it to put the phone hours off).
    #[uniffi::constructor]
    pub fn open_with_clock(
        config: ClientConfig,
        clock: Arc<dyn PhoneClock>,
    ) -> Result<Arc<FieldClient>, FieldError> {
        FieldClient::open_with(config, Some(clock))
    }

    /// Logs in (online). The same user on the same phone keeps the same device (and
    /// Automerge actor); another user must log out first if this phone holds work.
    pub async fn login(&self, user: String, password: String) -> Result<SessionInfo, FieldError> {
        let inner = self.inner.clone();
        self.blocking(move || inner.login(&user, &password)).await
    }

    /// The stored session (offline too).
    pub fn session(&self) -> Result<Option<SessionInfo>, FieldError> {
        Ok(self.inner.with_store(|s| s.session())?.map(session_info))
    }

    /// Fetches this user's unit grids (for offline `locate`) and caches them.
    /// Returns how many grids are cached.
    pub async fn refresh_reference_data(&self) -> Result<u32, FieldError> {
        let inner = self.inner.clone();
        self.blocking(move || inner.refresh_reference_data()).await
    }

    /// The unit grid a GPS fix falls in, from the cached grids (offline).
    pub fn locate(&self, fix: GpsFix) -> Result<Option<String>, FieldError> {
        Ok(self.inner.locate(&fix)?.map(|g| g.to_string()))
    }

    /// The unit grids of this user's scope, from the cache (offline), in code order.
    pub fn my_grids(&self) -> Result<Vec<GridInfo>, FieldError> {
        let Some(index) = self.inner.grid_index()? else {
            return Ok(Vec::new());
        };
        let everywhere = |lon, lat| LonLat::new(lon, lat).map_err(FieldError::internal);
        let mut codes = index.codes_in_bbox(everywhere(-180.0, -90.0)?, everywhere(180.0, 90.0)?);
        codes.sort();
        Ok(codes
            .into_iter()
            .filter_map(|code| index.describe(code))
            .map(|d| GridInfo {
                code: d.code.to_string(),
                district_name: d.district_name,
                street_name: d.street_name,
                community_name: d.community_name,
                level3_name: d.level3_name,
            })
            .collect())
    }

    /// The cached grids as GeoJSON (GCJ-02, as the app's map draws them).
    pub fn grid_polygons_geojson(&self) -> Result<Option<String>, FieldError> {
        let body = self.inner.with_store(|s| s.cache("grids"))?;
        Ok(body.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The catalogue's categories: the server's (fetched with the reference data and
    /// again after a sync that shows it changed), the built-in one before any fetch;
    /// with both labels, the team, whether a report is dispatched at once, and each
    /// step's time limit.
    pub fn categories(&self) -> Vec<CategoryInfo> {
        let served = self
            .inner
            .served()
            .unwrap_or_else(|_| Arc::new(crate::catalogue::Served::builtin()));
        let catalog = &served.catalog;
        catalog
            .categories()
            .map(|c| {
                let team = catalog.team(c.team.as_str());
                CategoryInfo {
                    code: c.code.to_string(),
                    kind: c.kind().as_str().to_owned(),
                    name_zh: c.name_zh.clone(),
                    name_en: c.name_en.clone(),
                    team: c.team.to_string(),
                    team_zh: team.map(|t| t.name_zh.clone()).unwrap_or_default(),
                    team_en: team.map(|t| t.name_en.clone()).unwrap_or_default(),
                    urgent: served.urgent.contains(&c.code.to_string()),
                    limits: c
                        .limits
                        .iter()
                        .map(|(step, limit)| StepLimit {
                            step: step.as_str().to_owned(),
                            step_zh: step.name_zh().to_owned(),
                            step_en: step.name_en().to_owned(),
                            limit: limit.to_string(),
                            amount: limit.amount,
                            unit: limit.unit.as_str().to_owned(),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// The version of the catalogue this phone holds (the server's), `None` while it
    /// has the built-in one.
    pub fn catalogue_version(&self) -> Result<Option<String>, FieldError> {
        Ok(self.inner.served()?.version.clone())
    }

    /// A photo of a case on this phone, as a JPEG file to show: the thumbnail
    /// (about 320 px) or the display image (about 1280 px) the server made, fetched
    /// once and kept (offline afterwards) in a cache bounded by `photo_cache_mb`,
    /// the least recently shown dropped first and every photo dropped with its
    /// case. A photo of this phone not yet uploaded is its local copy. The path is
    /// valid until the photo is dropped: show it, do not keep it.
    pub async fn photo_file(
        &self,
        sha256: String,
        variant: PhotoVariant,
    ) -> Result<String, FieldError> {
        let inner = self.inner.clone();
        self.blocking(move || inner.photo_file(&sha256, variant))
            .await
    }

    /// Reports a problem found on patrol (offline): the new case's id.
    pub fn report_case(&self, report: NewReport) -> Result<String, FieldError> {
        self.inner.report_case(&report)
    }

    /// Compresses the photo at `path` (at most 2048 px, EXIF read then dropped),
    /// adds it to the case and queues its upload, in one transaction. The photo's
    /// bytes go to the server once the case entry naming it is acknowledged.
    pub async fn attach_photo(
        &self,
        case_id: String,
        path: String,
        role: PhotoRole,
    ) -> Result<PhotoInfo, FieldError> {
        let inner = self.inner.clone();
        self.blocking(move || inner.attach_photo(&case_id, Path::new(&path), role))
            .await
    }

    /// The cases on this phone, newest report first.
    pub fn list_cases(&self) -> Result<Vec<CaseSummary>, FieldError> {
        let now = self.inner.now()?.timestamp_millis();
        let all = CaseListFilter {
            limit: u32::MAX,
            ..CaseListFilter::default()
        };
        Ok(self
            .inner
            .with_store(|s| s.cases_where(&all, None, now, u32::MAX))?
            .cases)
    }

    /// One page of the cases `filter` selects ("my tasks": `assignedToMe`; overdue;
    /// by status, grid, unsent), newest report first, with how many it selects.
    pub fn list_cases_where(&self, filter: CaseListFilter) -> Result<CasePage, FieldError> {
        if !(1..=500).contains(&filter.limit) {
            return Err(FieldError::invalid(format!(
                "limit {} is not between 1 and 500",
                filter.limit
            )));
        }
        if let Some(bad) = filter
            .statuses
            .iter()
            .find(|s| wangge_sync_core::case::Status::parse(s).is_none())
        {
            return Err(FieldError::invalid(format!("{bad:?} is not a case status")));
        }
        if let Some(prefix) = &filter.grid_prefix
            && (prefix.is_empty()
                || prefix.len() > 15
                || !prefix.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(FieldError::invalid(format!(
                "grid_prefix {prefix:?} is not the start of a grid code"
            )));
        }
        let user = self.inner.session().ok().map(|s| s.user_id);
        if (filter.assigned_to_me || filter.reported_by_me) && user.is_none() {
            return Err(FieldError::NotLoggedIn);
        }
        let now = self.inner.now()?.timestamp_millis();
        self.inner
            .with_store(|s| s.cases_where(&filter, user.as_deref(), now, filter.limit))
    }

    /// One case, folded: status, timeline, photos, what this user may do.
    pub fn show_case(&self, case_id: String) -> Result<CaseDetail, FieldError> {
        self.inner.show_case(&case_id)
    }

    /// Acts on a case (offline), with the same rules the server applies: a refused
    /// action writes nothing and says why.
    pub fn act(
        &self,
        case_id: String,
        action: CaseAction,
        note: Option<String>,
    ) -> Result<(), FieldError> {
        self.inner.act(&case_id, action, note)
    }

    /// Drops this phone's refused changes to a case; the next sync fetches it whole.
    pub fn discard_local_changes(&self, case_id: String) -> Result<(), FieldError> {
        self.inner
            .with_store(|s| DeviceSession::discard(s, &case_id).map_err(FieldError::from))
    }

    /// Checks in at the current position (today's patrol log, offline).
    pub fn check_in(&self, fix: GpsFix, note: Option<String>) -> Result<CheckInInfo, FieldError> {
        self.inner.check_in(&fix, note)
    }

    /// This user's patrol log of `date` (`YYYY-MM-DD`; today in China when `None`):
    /// check-ins, track size, cases found, and the reviews supervisors wrote, which
    /// arrive by sync. `NotFound` when the phone has no log of that day.
    pub fn show_patrol_log(&self, date: Option<String>) -> Result<PatrolLogInfo, FieldError> {
        self.inner.show_patrol_log(date.as_deref())
    }

    /// Buffers GPS points of the walk; they are written into the patrol log before
    /// each sync.
    pub fn record_track(&self, points: Vec<GpsFix>) -> Result<(), FieldError> {
        self.inner.record_track(&points)
    }

    /// Sends and receives everything, then uploads waiting photos. Offline is an
    /// outcome, not an error.
    pub async fn sync_now(&self) -> Result<SyncReport, FieldError> {
        let inner = self.inner.clone();
        self.blocking(move || inner.sync_now()).await
    }

    /// What is waiting to go.
    pub fn pending(&self) -> Result<PendingWork, FieldError> {
        self.inner.pending()
    }

    /// Starts listening for the server's notices (dispatches, "sync now").
    pub fn start_push(&self, listener: Arc<dyn PushListener>) -> Result<(), FieldError> {
        crate::push::start(&self.inner, listener)
    }

    /// Stops listening.
    pub fn stop_push(&self) {
        self.inner.stop_push();
    }

    /// Logs out and deletes everything this library stored (lost-device hygiene);
    /// unsent work is lost. The client is closed afterwards. The server is told when
    /// it can be reached (within the client's waits): it revokes this device, so its
    /// tokens stop working at once; offline, the wipe goes ahead and an administrator
    /// revokes the device (`wangge device revoke`) if it matters.
    pub fn logout_and_wipe(&self) -> Result<(), FieldError> {
        self.inner.stop_push();
        if let Err(error) = self.inner.logout_on_server() {
            tracing::info!(%error, "the server was not told of the logout");
        }
        self.inner.wipe()
    }
}

/// Deletes a data directory's store and photos without opening it: the way out of a
/// damaged store file.
#[uniffi::export]
pub fn wipe_data_dir(data_dir: String) -> Result<(), FieldError> {
    let dir = Path::new(&data_dir);
    if dir.exists() && !dir.is_dir() {
        return Err(FieldError::invalid(format!(
            "data_dir: {} is a file, not a directory",
            dir.display()
        )));
    }
    wipe_files(dir).map_err(|e| FieldError::Storage {
        recoverable: true,
        detail: e.to_string(),
    })
}

fn wipe_files(dir: &Path) -> std::io::Result<()> {
    for name in [
        STORE_FILE.to_owned(),
        format!("{STORE_FILE}-wal"),
        format!("{STORE_FILE}-shm"),
    ] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    for sub in [PHOTO_DIR, PHOTO_CACHE_DIR] {
        match std::fs::remove_dir_all(dir.join(sub)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

impl FieldClient {
    /// Opens a client (for Rust callers: tests and the benchmark).
    pub fn open_with(
        config: ClientConfig,
        clock: Option<Arc<dyn PhoneClock>>,
    ) -> Result<Arc<FieldClient>, FieldError> {
        if config.server_url.is_empty() || !config.server_url.starts_with("http") {
            return Err(FieldError::invalid(format!(
                "server_url {:?} is not an http(s) URL",
                config.server_url
            )));
        }
        let waits = Waits::from_ms(
            config.connect_timeout_ms,
            config.request_timeout_ms,
            config.idle_timeout_ms,
        )?;
        if config.photo_cache_mb == 0 {
            return Err(FieldError::invalid("photo_cache_mb must be at least 1"));
        }
        let trust = Trust::from_pem(config.trusted_ca_pem.as_deref())?;
        let dir = PathBuf::from(&config.data_dir);
        let store = Store::open(&dir)?;
        store.sweep_photo_files()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("wangge-ffi")
            .enable_time()
            .build()
            .map_err(FieldError::internal)?;
        let inner = Arc::new(Inner {
            dir,
            device_name: config.device_name,
            http: Http::new(&config.server_url, waits, trust),
            photo_cache_bytes: u64::from(config.photo_cache_mb) << 20,
            notices_waiting: AtomicBool::new(true),
            was_revoked: AtomicBool::new(false),
            store: Mutex::new(Some(store)),
            session: Mutex::new(DeviceSession::new(Limits::default(), rand::random())),
            clock,
            grids: Mutex::new(None),
            push: Mutex::new(None),
            refreshing: Mutex::new(()),
        });
        Ok(Arc::new(FieldClient {
            inner,
            runtime: Some(runtime),
        }))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, FieldError> + Send + 'static,
    ) -> Result<T, FieldError> {
        let runtime = self.runtime.as_ref().ok_or(FieldError::Closed)?;
        runtime
            .spawn_blocking(work)
            .await
            .map_err(|e| FieldError::internal(format!("the task failed: {e}")))?
    }
}

fn session_info(s: StoredSession) -> SessionInfo {
    SessionInfo {
        user_id: s.user_id,
        display_name: s.display_name,
        role: s.role,
        team: s.team,
        scope: s.scope,
        device_id: s.device_id,
    }
}

fn actor_of(session: &StoredSession) -> Result<Actor, FieldError> {
    let bad = |what: &str, e: String| FieldError::Storage {
        recoverable: false,
        detail: format!("the stored session's {what} is invalid: {e}"),
    };
    Ok(Actor {
        user: session.user_id.clone(),
        role: session
            .role
            .parse()
            .map_err(|e| bad("role", format!("{e}")))?,
        team: session
            .team
            .as_deref()
            .map(TeamId::new)
            .transpose()
            .map_err(|e| bad("team", format!("{e}")))?,
        scope: session
            .scope
            .parse()
            .map_err(|e| bad("scope", format!("{e}")))?,
        device: session.actor_id.clone(),
    })
}

fn position_of(fix: &GpsFix) -> Result<Position, FieldError> {
    let position = Position {
        lon: fix.lon,
        lat: fix.lat,
        accuracy_m: fix.accuracy_m,
    };
    position
        .check()
        .map_err(|e| FieldError::invalid(e.to_string()))?;
    Ok(position)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The app's typed action as sync-core's, through the one constructor every action
/// goes through (`Action::from_fields`: an extension of 0 or over 365 days, a bad
/// team or assignee id are refused here as on the server).
fn core_action(action: CaseAction) -> Result<Action, FieldError> {
    let mut fields = ActionFields::default();
    let name = match &action {
        CaseAction::Accept => ActionName::Accept,
        CaseAction::Register => ActionName::Register,
        CaseAction::Dispatch { team, assignee } => {
            fields.team = Some(team);
            fields.assignee = assignee.as_deref();
            ActionName::Dispatch
        }
        CaseAction::Handle => ActionName::Handle,
        CaseAction::Verify => ActionName::Verify,
        CaseAction::Rework => ActionName::Rework,
        CaseAction::Close => ActionName::Close,
        CaseAction::Return => ActionName::Return,
        CaseAction::RequestExtension { extra } => {
            fields.extra = Some(extra);
            ActionName::RequestExtension
        }
        CaseAction::DecideExtension { approved } => {
            fields.approved = Some(*approved);
            ActionName::DecideExtension
        }
        CaseAction::RequestDefer => ActionName::RequestDefer,
        CaseAction::DecideDefer { approved } => {
            fields.approved = Some(*approved);
            ActionName::DecideDefer
        }
        CaseAction::Void => ActionName::Void,
        CaseAction::Reopen => ActionName::Reopen,
        CaseAction::Comment => ActionName::Comment,
    };
    Action::from_fields(name, &fields).map_err(|e| FieldError::invalid(e.to_string()))
}

impl Inner {
    pub(crate) fn with_store<T, E: Into<FieldError>>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, E>,
    ) -> Result<T, FieldError> {
        // The app's clock is read before the lock: no foreign code runs under it.
        let now = self.local_now_ms();
        let mut guard = lock(&self.store);
        let store = guard.as_mut().ok_or(FieldError::Closed)?;
        store.set_now(now);
        f(store).map_err(Into::into)
    }

    /// The phone's clock.
    fn local_now_ms(&self) -> i64 {
        match &self.clock {
            Some(clock) => clock.now_ms(),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }

    /// The best estimate of the server's time: the phone's clock corrected by the
    /// offset measured on the last answers (a phone hours off still writes the
    /// right time into the documents).
    fn now(&self) -> Result<DateTime<Utc>, FieldError> {
        let offset = self.with_store(|s| s.clock_offset_ms())?.unwrap_or(0);
        DateTime::from_timestamp_millis(self.local_now_ms() + offset)
            .ok_or_else(|| FieldError::internal("the clock is out of range"))
    }

    fn session(&self) -> Result<StoredSession, FieldError> {
        self.with_store(|s| s.session())?
            .ok_or(FieldError::NotLoggedIn)
    }

    fn actor(&self) -> Result<Actor, FieldError> {
        actor_of(&self.session()?)
    }

    /// The catalogue this phone holds.
    pub(crate) fn served(&self) -> Result<Arc<crate::catalogue::Served>, FieldError> {
        self.with_store(|s| Ok::<_, FieldError>(s.served()))
    }

    /// Fetches the server's catalogue and keeps it (every case re-derived with it).
    fn refresh_catalogue(&self) -> Result<(), FieldError> {
        let answer = self.send(Method::GET, "/v1/catalogue", &[], None, 8 << 20)?;
        if answer.status == 404 && answer.error_code().is_some_and(|(c, _)| c == "not_found") {
            // A server older than the route: it folds with the built-in catalogue,
            // which the phone keeps.
            tracing::warn!("the server does not serve its catalogue; keeping the one held");
            return Ok(());
        }
        if answer.status != 200 {
            return Err(answer.server_error());
        }
        answer.json()?;
        let served =
            crate::catalogue::parse(&answer.body).map_err(|e| answer.not_understood(&e))?;
        self.with_store(|s| s.set_catalogue(&answer.body, served))
    }

    /// A photo to show (see [`FieldClient::photo_file`]).
    fn photo_file(&self, sha256: &str, variant: PhotoVariant) -> Result<String, FieldError> {
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(FieldError::invalid(format!(
                "{sha256:?} is not a photo hash (64 lowercase hex digits)"
            )));
        }
        let name = match variant {
            PhotoVariant::Thumbnail => "thumb",
            PhotoVariant::Display => "display",
        };
        let not_here = || FieldError::NotFound {
            what: format!("photo {sha256} in the cases on this phone"),
        };
        let text = |p: PathBuf| p.to_string_lossy().into_owned();
        let local = self.with_store(|s| {
            if !s.photo_referenced(sha256)? {
                return Ok::<_, StoreError>(Err(()));
            }
            if let Some(path) = s.cached_photo(sha256, name)? {
                return Ok(Ok(Some(path)));
            }
            Ok(Ok(s.queued_photo_file(sha256)?))
        })?;
        match local {
            Err(()) => return Err(not_here()),
            Ok(Some(path)) => return Ok(text(path)),
            Ok(None) => {}
        }
        let answer = self.send(
            Method::GET,
            &format!("/v1/blobs/{sha256}/{name}"),
            &[],
            None,
            16 << 20,
        )?;
        match answer.status {
            200 => {}
            // Not uploaded yet by the phone that took it, or not ours to see.
            404 => {
                return Err(FieldError::NotFound {
                    what: format!(
                        "photo {sha256} on the server (not uploaded yet by the phone that took it?)"
                    ),
                });
            }
            _ => return Err(answer.server_error()),
        }
        if answer.content_type != "image/jpeg" || !answer.body.starts_with(&[0xff, 0xd8]) {
            return Err(answer.not_understood("expected a JPEG image"));
        }
        let file = format!("{sha256}-{name}.jpg");
        let dir = self.dir.join(PHOTO_CACHE_DIR);
        write_durably(&dir, &file, &answer.body).map_err(|e| FieldError::Storage {
            recoverable: true,
            detail: format!("keeping the photo: {e}"),
        })?;
        let size = answer.body.len() as u64;
        let max = self.photo_cache_bytes;
        if !self.with_store(|s| s.keep_photo(sha256, name, &file, size, max))? {
            return Err(not_here());
        }
        Ok(text(dir.join(file)))
    }

    // --- network ---------------------------------------------------------------

    fn observe_clock(&self, answer: &Answer, sent_at: i64) {
        let Some(server) = answer.date_ms else {
            return;
        };
        let received = self.local_now_ms();
        // The Date header has one-second resolution; the midpoint of the exchange.
        let offset = server + 500 - (sent_at + received) / 2;
        let _ = self.with_store(|s| s.set_clock_offset_ms(offset));
    }

    /// Sends without a token.
    fn send_anonymous(&self, path: &str, body: Value) -> Result<Answer, FieldError> {
        let sent_at = self.local_now_ms();
        let answer = self.http.send(
            Method::POST,
            path,
            None,
            &[],
            Some(("application/json", body.to_string().into_bytes())),
            1 << 20,
        )?;
        self.observe_clock(&answer, sent_at);
        Ok(answer)
    }

    /// Sends with the session's token: refreshes it when expired, and handles a
    /// revoked device (wipes, then [`FieldError::DeviceRevoked`]).
    pub(crate) fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<(&str, Vec<u8>)>,
        limit: u64,
    ) -> Result<Answer, FieldError> {
        let mut session = self.session()?;
        if session.access_expires_local_ms <= self.local_now_ms() + 30_000 {
            session = self.refresh(&session)?;
        }
        for attempt in 0..2 {
            let sent_at = self.local_now_ms();
            let answer = self.http.send(
                method.clone(),
                path,
                Some(&session.access_token),
                headers,
                body.clone(),
                limit,
            )?;
            self.observe_clock(&answer, sent_at);
            if answer.status != 401 {
                return Ok(answer);
            }
            let code = answer.error_code().map(|(c, _)| c).unwrap_or_default();
            match code.as_str() {
                "device_revoked" => return Err(self.revoked()),
                "token_expired" | "token_invalid" if attempt == 0 => {
                    session = self.refresh(&session)?;
                }
                _ => {
                    return Err(FieldError::SessionExpired {
                        detail: format!("the server refused the token ({code})"),
                    });
                }
            }
        }
        Err(FieldError::SessionExpired {
            detail: "the server refused a fresh token".into(),
        })
    }

    /// Tells the server this device logs out (`POST /v1/auth/logout`: it revokes it).
    fn logout_on_server(&self) -> Result<(), FieldError> {
        let answer = self.send(Method::POST, "/v1/auth/logout", &[], None, 1 << 16)?;
        match answer.status {
            204 => Ok(()),
            _ => Err(answer.server_error()),
        }
    }

    /// The device was revoked: wipe, and say so.
    pub(crate) fn revoked(&self) -> FieldError {
        self.was_revoked.store(true, Ordering::SeqCst);
        if let Err(e) = self.wipe() {
            tracing::error!(error = %e, "wiping a revoked device failed");
        }
        FieldError::DeviceRevoked
    }

    fn refresh(&self, session: &StoredSession) -> Result<StoredSession, FieldError> {
        // Refresh tokens are single-use and a reuse revokes the whole login: the push
        // thread and a sync that both find the token expired must not both spend it.
        // The second waits here and takes what the first stored.
        let _one_at_a_time = lock(&self.refreshing);
        let stored = self.session()?;
        if stored.refresh_token != session.refresh_token {
            return Ok(stored);
        }
        let answer = self.send_anonymous(
            "/v1/auth/refresh",
            json!({ "refresh_token": session.refresh_token }),
        )?;
        match answer.status {
            200 => {
                let fresh = self.session_from(&answer)?;
                self.with_store(|s| s.save_session(&fresh))?;
                Ok(fresh)
            }
            401 => {
                let (code, message) = answer.error_code().unwrap_or_default();
                if code == "device_revoked" {
                    return Err(self.revoked());
                }
                Err(FieldError::SessionExpired {
                    detail: format!("{code}: {message}"),
                })
            }
            _ => Err(answer.server_error()),
        }
    }

    fn session_from(&self, answer: &Answer) -> Result<StoredSession, FieldError> {
        let body = answer.json()?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let missing = || answer.not_understood("a session answer without its fields");
        let user = &body["user"];
        Ok(StoredSession {
            server_url: self.http.base().to_owned(),
            user_id: text(&user["id"]).ok_or_else(missing)?,
            display_name: text(&user["display_name"]).unwrap_or_default(),
            role: text(&user["role"]).ok_or_else(missing)?,
            team: text(&user["team"]),
            scope: text(&user["scope"]).ok_or_else(missing)?,
            device_id: text(&body["device"]["id"]).ok_or_else(missing)?,
            actor_id: text(&body["device"]["actor_id"]).ok_or_else(missing)?,
            access_token: text(&body["access_token"]).ok_or_else(missing)?,
            access_expires_local_ms: self.local_now_ms()
                + body["expires_in"].as_i64().ok_or_else(missing)? * 1000,
            refresh_token: text(&body["refresh_token"]).ok_or_else(missing)?,
            logged_in_at_ms: self.local_now_ms(),
        })
    }

    fn login(&self, user: &str, password: &str) -> Result<SessionInfo, FieldError> {
        let known = self.with_store(|s| s.known_device())?;
        let mut device = json!({ "name": self.device_name });
        match known {
            Some((known_user, device_id)) if known_user == user => {
                device["id"] = json!(device_id);
            }
            Some((known_user, _)) if self.with_store(|s| s.has_documents())? => {
                return Err(FieldError::invalid(format!(
                    "this phone holds {known_user}'s work: log out (and wipe) first"
                )));
            }
            _ => {}
        }
        let answer = self.send_anonymous(
            "/v1/auth/login",
            json!({ "user": user, "password": password, "device": device }),
        )?;
        match answer.status {
            200 => {}
            401 if answer
                .error_code()
                .is_some_and(|(c, _)| c == "device_revoked") =>
            {
                return Err(self.revoked());
            }
            401 => return Err(FieldError::BadCredentials),
            _ => return Err(answer.server_error()),
        }
        let session = self.session_from(&answer)?;
        self.with_store(|s| s.save_session(&session))?;
        Ok(session_info(session))
    }

    fn refresh_reference_data(&self) -> Result<u32, FieldError> {
        let answer = self.send(Method::GET, "/v1/grids/mine", &[], None, 64 << 20)?;
        if answer.status != 200 {
            return Err(answer.server_error());
        }
        let set = read_grids(&answer.body).map_err(|e| answer.not_understood(&e.to_string()))?;
        let count = set.grids().len() as u32;
        let index = GridIndex::build(set).map_err(|e| answer.not_understood(&e.to_string()))?;
        let now = self.local_now_ms();
        self.with_store(|s| s.put_cache("grids", &answer.body, now))?;
        *lock(&self.grids) = Some(Arc::new(index));
        self.refresh_catalogue()?;
        Ok(count)
    }

    fn grid_index(&self) -> Result<Option<Arc<GridIndex>>, FieldError> {
        if let Some(index) = lock(&self.grids).clone() {
            return Ok(Some(index));
        }
        let Some(body) = self.with_store(|s| s.cache("grids"))? else {
            return Ok(None);
        };
        let index = read_grids(&body)
            .ok()
            .and_then(|set| GridIndex::build(set).ok())
            .map(Arc::new);
        *lock(&self.grids) = index.clone();
        Ok(index)
    }

    fn locate(&self, fix: &GpsFix) -> Result<Option<GridCode>, FieldError> {
        let point =
            LonLat::new(fix.lon, fix.lat).map_err(|e| FieldError::invalid(e.to_string()))?;
        Ok(self
            .grid_index()?
            .and_then(|index| index.locate(point, Crs::Wgs84)))
    }

    // --- local edits -------------------------------------------------------------

    /// Loads document `id` (or makes it with `create` when absent), applies `edit`,
    /// and stores it, unsent, with `extra` rows: all under the store's lock and in one
    /// transaction, so an edit never overwrites what a sync committed meanwhile. The
    /// edit is appended as an incremental chunk (its own changes, not the whole
    /// document again) until [`COMPACT_AFTER_CHUNKS`], then the document is saved
    /// whole. `create` and `edit` run under the lock: they must not call the client.
    fn edit_local<T>(
        &self,
        id: &str,
        kind: DocKind,
        create: impl FnOnce() -> Result<Automerge, FieldError>,
        edit: impl FnOnce(&mut Automerge) -> Result<T, FieldError>,
        extra: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<T, FieldError> {
        self.with_store(|store| {
            let previous = store.document(id)?;
            if previous.as_ref().is_some_and(|p| p.kind != kind) {
                return Err(FieldError::NotFound {
                    what: format!("{} {id}", kind.as_str()),
                });
            }
            let mut doc = match &previous {
                Some(p) => load_chunks(&p.chunks).map_err(|e| FieldError::Storage {
                    recoverable: false,
                    detail: format!("{} {id} does not load: {e}", kind.as_str()),
                })?,
                None => create()?,
            };
            let before = doc.get_heads();
            let value = edit(&mut doc)?;
            let chunks = match &previous {
                Some(p) if doc.get_heads() == before => p.chunks.clone(),
                Some(p) if p.chunks.len() < COMPACT_AFTER_CHUNKS => {
                    let mut chunks = p.chunks.clone();
                    chunks.push(doc.save_after(&before));
                    chunks
                }
                _ => vec![doc.save()],
            };
            let (server_heads, rejected) = previous
                .map(|p| (p.server_heads, p.rejected))
                .unwrap_or_default();
            let commit = DeviceCommit {
                docs: vec![DeviceDocWrite {
                    id: id.to_owned(),
                    doc: DeviceDoc {
                        kind,
                        chunks,
                        server_heads,
                        unsent: true,
                        rejected,
                    },
                }],
                ..DeviceCommit::default()
            };
            store.commit_with(commit, extra)?;
            Ok(value)
        })
    }

    /// [`Inner::edit_local`] for an existing case.
    fn edit_case<T>(
        &self,
        id: &str,
        edit: impl FnOnce(&mut CaseDocument) -> Result<T, FieldError>,
        extra: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<T, FieldError> {
        self.edit_local(
            id,
            DocKind::Case,
            || {
                Err(FieldError::NotFound {
                    what: format!("case {id}"),
                })
            },
            |doc| {
                let mut case = CaseDocument::from_automerge(std::mem::take(doc));
                let value = edit(&mut case);
                *doc = case.into_automerge();
                value
            },
            extra,
        )
    }

    fn load_case(&self, id: &str) -> Result<CaseDocument, FieldError> {
        let stored = self
            .with_store(|s| s.document(id).map_err(FieldError::from))?
            .filter(|d| d.kind == DocKind::Case)
            .ok_or_else(|| FieldError::NotFound {
                what: format!("case {id}"),
            })?;
        let doc = load_chunks(&stored.chunks).map_err(|e| FieldError::Storage {
            recoverable: false,
            detail: format!("case {id} does not load: {e}"),
        })?;
        Ok(CaseDocument::from_automerge(doc))
    }

    fn report_case(&self, report: &NewReport) -> Result<String, FieldError> {
        let actor = self.actor()?;
        let category: CategoryCode = report
            .category
            .parse()
            .map_err(|e| FieldError::invalid(format!("category {:?}: {e}", report.category)))?;
        if self.served()?.catalog.get(&category).is_none() {
            return Err(FieldError::invalid(format!(
                "category {} is not in the catalogue",
                report.category
            )));
        }
        let location = position_of(&report.position)?;
        let id = new_id();
        let new = NewCase {
            id: id.clone(),
            category,
            location,
            // Resolved here when the grids are cached; the server resolves it anyway.
            grid: self.locate(&report.position)?,
            address: report.address.clone(),
            description: report.description.clone(),
            source: Source::Patrol,
            source_ref: None,
            caller: None,
        };
        let case = CaseDocument::create(&new, &actor, &new_id(), self.now()?)?;
        self.edit_local(
            &id,
            DocKind::Case,
            || Ok(case.into_automerge()),
            |_| Ok(()),
            |_| Ok(()),
        )?;
        // The patrol log counts problems found on the walk (发现率).
        if let Err(e) = self
            .edit_patrol_log(|log, actor| log.add_case_found(actor, &id).map_err(FieldError::from))
        {
            tracing::warn!(error = %e, "the case was reported; the patrol log did not record it");
        }
        Ok(id)
    }

    fn act(&self, id: &str, action: CaseAction, note: Option<String>) -> Result<(), FieldError> {
        let actor = self.actor()?;
        let action = core_action(action)?;
        let at = self.now()?;
        let served = self.served()?;
        self.edit_case(
            id,
            |case| {
                with_context(&served.catalog, |context| {
                    case.act(context, &actor, &new_id(), action, at, note)
                })
                .map_err(FieldError::from)
            },
            |_| Ok(()),
        )
    }

    fn attach_photo(
        &self,
        case_id: &str,
        path: &Path,
        role: PhotoRole,
    ) -> Result<PhotoInfo, FieldError> {
        let actor = self.actor()?;
        let not_found = |e: std::io::Error| FieldError::Photo {
            code: "not_found".into(),
            detail: format!("{}: {e}", path.display()),
        };
        let size = std::fs::metadata(path).map_err(not_found)?.len();
        if size > MAX_PHOTO_FILE {
            return Err(FieldError::Photo {
                code: "too_large".into(),
                detail: format!("{size} bytes; the most is {MAX_PHOTO_FILE}"),
            });
        }
        // Refused before the work (and before any file is written) when the case
        // is not here.
        self.with_store(|s| match s.document(case_id)? {
            Some(d) if d.kind == DocKind::Case => Ok(()),
            _ => Err(FieldError::NotFound {
                what: format!("case {case_id}"),
            }),
        })?;
        let original = std::fs::read(path).map_err(not_found)?;
        let upload = prepare_upload(&original)?;
        // The same picture attached again (a double tap, a retry after a crash) is
        // the photo the case already has: content-addressed, so one entry.
        let existing = self
            .load_case(case_id)?
            .read()
            .photos
            .into_iter()
            .find(|p| p.hash == upload.sha256);
        if let Some(existing) = existing {
            let queued = self
                .with_store(|s| s.photos())?
                .into_iter()
                .find(|q| q.sha256 == existing.hash);
            return Ok(PhotoInfo {
                sha256: existing.hash,
                role: existing.role.as_str().to_owned(),
                added_by: existing.added_by,
                taken_at_ms: existing.taken_at.map(|t| t.timestamp_millis()),
                upload: queued
                    .as_ref()
                    .map_or("remote".to_owned(), |q| q.state.clone()),
                size: queued.map_or(0, |q| q.size),
            });
        }
        let photo = Photo {
            hash: upload.sha256.clone(),
            role: match role {
                PhotoRole::Before => CorePhotoRole::Before,
                PhotoRole::After => CorePhotoRole::After,
                PhotoRole::Other => CorePhotoRole::Other,
            },
            taken_at: upload.metadata.taken_at,
            position: upload.metadata.position,
            added_by: actor.user.clone(),
            added_at: self.now()?,
        };
        // The file first, durably; then the transaction naming it. A crash between
        // leaves an orphan file that the next open sweeps.
        let file = format!("{}.jpg", upload.sha256);
        let queued = QueuedPhoto {
            sha256: upload.sha256.clone(),
            case_id: case_id.to_owned(),
            file: file.clone(),
            size: upload.bytes.len() as u64,
            state: "waiting_ack".into(),
            uploaded: 0,
            error: None,
        };
        let already_queued = self.with_store(|s| s.photo_queued(&upload.sha256))?;
        write_durably(&self.dir.join(PHOTO_DIR), &file, &upload.bytes).map_err(|e| {
            FieldError::Storage {
                recoverable: true,
                detail: format!("writing the photo: {e}"),
            }
        })?;
        let now = self.local_now_ms();
        let added = self.edit_case(
            case_id,
            |case| case.add_photo(&actor, &photo).map_err(FieldError::from),
            |tx| Store::queue_photo(tx, &queued, now),
        );
        if let Err(e) = added {
            if !already_queued {
                let _ = std::fs::remove_file(self.dir.join(PHOTO_DIR).join(&file));
            }
            return Err(e);
        }
        Ok(PhotoInfo {
            sha256: upload.sha256,
            role: photo.role.as_str().to_owned(),
            added_by: actor.user,
            taken_at_ms: photo.taken_at.map(|t| t.timestamp_millis()),
            upload: "waiting_ack".into(),
            size: queued.size,
        })
    }

    fn show_case(&self, id: &str) -> Result<CaseDetail, FieldError> {
        let case = self.load_case(id)?;
        let actor = self.session().ok().map(|s| actor_of(&s)).transpose()?;
        let now_ms = self.now()?.timestamp_millis();
        let row = self
            .with_store(|s| s.cases_where(&CaseListFilter::default(), None, now_ms, u32::MAX))?
            .cases
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| FieldError::NotFound {
                what: format!("case {id}"),
            })?;
        let queue: BTreeMap<String, QueuedPhoto> = self
            .with_store(|s| s.photos())?
            .into_iter()
            .map(|p| (p.sha256.clone(), p))
            .collect();
        let now = self.now()?;
        let served = self.served()?;
        let (view, allowed) = with_context(&served.catalog, |context| {
            let view = case.fold(context);
            let allowed: Vec<ActionName> = actor
                .as_ref()
                .map(|actor| view.allowed_actions(actor, context, now))
                .unwrap_or_default();
            (view, allowed)
        });
        // The team a dispatch goes to unless the dispatcher chooses another: the
        // one it went to before, else the category's.
        let usual_team = view
            .assignment
            .as_ref()
            .map(|a| a.team.to_string())
            .or_else(|| {
                view.record
                    .category
                    .and_then(|c| served.catalog.get(&c))
                    .map(|c| c.team.to_string())
            })
            .unwrap_or_default();
        let actions = allowed
            .iter()
            .filter_map(|name| {
                let (template, needs): (CaseAction, &[&str]) = match name {
                    ActionName::Accept => (CaseAction::Accept, &[]),
                    ActionName::Register => (CaseAction::Register, &[]),
                    ActionName::Dispatch => (
                        CaseAction::Dispatch {
                            team: usual_team.clone(),
                            assignee: None,
                        },
                        &["team", "assignee"],
                    ),
                    ActionName::Handle => (CaseAction::Handle, &[]),
                    ActionName::Verify => (CaseAction::Verify, &[]),
                    ActionName::Rework => (CaseAction::Rework, &[]),
                    ActionName::Close => (CaseAction::Close, &[]),
                    ActionName::Return => (CaseAction::Return, &[]),
                    ActionName::RequestExtension => (
                        CaseAction::RequestExtension {
                            extra: "2 working_days".into(),
                        },
                        &["extra"],
                    ),
                    ActionName::DecideExtension => (
                        CaseAction::DecideExtension { approved: true },
                        &["approved"],
                    ),
                    ActionName::RequestDefer => (CaseAction::RequestDefer, &[]),
                    ActionName::DecideDefer => {
                        (CaseAction::DecideDefer { approved: true }, &["approved"])
                    }
                    ActionName::Void => (CaseAction::Void, &[]),
                    ActionName::Reopen => (CaseAction::Reopen, &[]),
                    ActionName::Comment => (CaseAction::Comment, &[]),
                    // Not taken on a phone (the report is `reportCase`; escalation
                    // and replies to callers are the server's and the hotline's).
                    ActionName::Report | ActionName::Escalate | ActionName::Reply => return None,
                };
                Some(AllowedAction {
                    name: name.as_str().to_owned(),
                    name_zh: name.name_zh().to_owned(),
                    name_en: name.name_en().to_owned(),
                    template,
                    needs: needs.iter().map(|n| (*n).to_owned()).collect(),
                })
            })
            .collect();
        let allowed: Vec<String> = allowed.iter().map(|n| n.as_str().to_owned()).collect();
        let record = &view.record;
        Ok(CaseDetail {
            summary: row,
            address: record.address.clone(),
            position: record.location.map(|p| GpsFix {
                lon: p.lon,
                lat: p.lat,
                accuracy_m: p.accuracy_m,
                at_ms: None,
            }),
            source: record.source.map(|s| s.as_str().to_owned()),
            timeline: view
                .entries
                .iter()
                .filter_map(|folded| {
                    let entry = folded.entry.as_ref()?;
                    let name = entry.action.name();
                    Some(TimelineItem {
                        id: entry.id.clone(),
                        action: entry.action.as_str().to_owned(),
                        action_zh: name.name_zh().to_owned(),
                        action_en: name.name_en().to_owned(),
                        user: entry.actor.user.clone(),
                        role: entry.actor.role.as_str().to_owned(),
                        role_zh: entry.actor.role.name_zh().to_owned(),
                        role_en: entry.actor.role.name_en().to_owned(),
                        at_ms: entry.at.timestamp_millis(),
                        note: entry.note.clone(),
                        outcome: match &folded.outcome {
                            Outcome::Applied => "applied".to_owned(),
                            Outcome::Ignored(reason) => format!("ignored: {reason}"),
                        },
                    })
                })
                .collect(),
            photos: record
                .photos
                .iter()
                .map(|p| {
                    let queued = queue.get(&p.hash);
                    PhotoInfo {
                        sha256: p.hash.clone(),
                        role: p.role.as_str().to_owned(),
                        added_by: p.added_by.clone(),
                        taken_at_ms: p.taken_at.map(|t| t.timestamp_millis()),
                        upload: queued.map_or("remote".to_owned(), |q| q.state.clone()),
                        size: queued.map_or(0, |q| q.size),
                    }
                })
                .collect(),
            allowed_actions: allowed,
            actions,
            overdue: view.is_overdue(now),
            problems: record.problems.iter().map(|p| format!("{p:?}")).collect(),
        })
    }

    /// Edits the worker's patrol log of `date` (created on first use).
    fn edit_patrol_log_of(
        &self,
        actor: &Actor,
        date: NaiveDate,
        edit: impl FnOnce(&mut PatrolLog) -> Result<(), FieldError>,
        extra: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<String, FieldError> {
        let id = patrol_log_id(&actor.user, date);
        self.edit_local(
            &id,
            DocKind::PatrolLog,
            || Ok(PatrolLog::create(actor, date)?.into_automerge()),
            |doc| {
                let mut log = PatrolLog::from_automerge(std::mem::take(doc));
                let value = edit(&mut log);
                *doc = log.into_automerge();
                value
            },
            extra,
        )?;
        Ok(id)
    }

    /// Edits today's patrol log (China time, by the corrected clock).
    fn edit_patrol_log(
        &self,
        edit: impl FnOnce(&mut PatrolLog, &Actor) -> Result<(), FieldError>,
    ) -> Result<String, FieldError> {
        let actor = self.actor()?;
        let date = patrol_date(self.now()?);
        self.edit_patrol_log_of(&actor, date, |log| edit(log, &actor), |_| Ok(()))
    }

    fn show_patrol_log(&self, date: Option<&str>) -> Result<PatrolLogInfo, FieldError> {
        let actor = self.actor()?;
        let date = match date {
            Some(text) => text
                .parse::<NaiveDate>()
                .map_err(|e| FieldError::invalid(format!("date {text:?}: {e}")))?,
            None => patrol_date(self.now()?),
        };
        let id = patrol_log_id(&actor.user, date);
        let stored = self
            .with_store(|s| s.document(&id).map_err(FieldError::from))?
            .filter(|d| d.kind == DocKind::PatrolLog)
            .ok_or_else(|| FieldError::NotFound {
                what: format!("patrol log {id}"),
            })?;
        let doc = load_chunks(&stored.chunks).map_err(|e| FieldError::Storage {
            recoverable: false,
            detail: format!("patrol log {id} does not load: {e}"),
        })?;
        let record = PatrolLog::from_automerge(doc).read();
        Ok(PatrolLogInfo {
            log_id: id,
            date: date.to_string(),
            check_ins: record
                .checkins
                .iter()
                .map(|c| CheckInItem {
                    id: c.id.clone(),
                    fix: GpsFix {
                        lon: c.position.lon,
                        lat: c.position.lat,
                        accuracy_m: c.position.accuracy_m,
                        at_ms: Some(c.at.timestamp_millis()),
                    },
                    grid: c.grid.map(|g| g.to_string()),
                    note: c.note.clone(),
                })
                .collect(),
            track_points: u32::try_from(record.track.len()).unwrap_or(u32::MAX),
            cases_found: record.cases_found.clone(),
            reviews: record
                .reviews
                .iter()
                .map(|r| ReviewItem {
                    id: r.id.clone(),
                    at_ms: r.at.timestamp_millis(),
                    reviewer: r.reviewer.user.clone(),
                    reviewer_role: r.reviewer.role.as_str().to_owned(),
                    verdict: r.verdict.as_str().to_owned(),
                    comment: r.comment.clone(),
                })
                .collect(),
            verdict: record.verdict().map(|r| r.verdict.as_str().to_owned()),
            problems: record.problems.iter().map(|p| format!("{p:?}")).collect(),
        })
    }

    fn check_in(&self, fix: &GpsFix, note: Option<String>) -> Result<CheckInInfo, FieldError> {
        let position = position_of(fix)?;
        let grid = self.locate(fix)?;
        let at = match fix.at_ms {
            // The fix's time is by the phone's clock: correct it as `now` is.
            Some(at) => {
                let offset = self.with_store(|s| s.clock_offset_ms())?.unwrap_or(0);
                DateTime::from_timestamp_millis(at + offset)
                    .ok_or_else(|| FieldError::invalid("the fix's time is out of range"))?
            }
            None => self.now()?,
        };
        let check_in_id = new_id();
        let check_in = CheckIn {
            id: check_in_id.clone(),
            at,
            position,
            grid,
            note,
        };
        let log_id = self.edit_patrol_log(|log, actor| {
            log.check_in(actor, &check_in).map_err(FieldError::from)
        })?;
        Ok(CheckInInfo {
            log_id,
            check_in_id,
            grid: grid.map(|g| g.to_string()),
        })
    }

    fn record_track(&self, points: &[GpsFix]) -> Result<(), FieldError> {
        let now = self.local_now_ms();
        let rows = points
            .iter()
            .map(|p| {
                position_of(p)?;
                let at = p.at_ms.unwrap_or(now);
                if DateTime::from_timestamp_millis(at).is_none() {
                    return Err(FieldError::invalid(format!(
                        "track point time {at} is out of range"
                    )));
                }
                Ok((at, p.lon, p.lat, p.accuracy_m))
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        self.with_store(|s| s.buffer_track(&rows).map_err(FieldError::from))
    }

    /// Writes buffered track points into the patrol logs of their days, and clears
    /// them, in one transaction per log.
    fn flush_track(&self) -> Result<(), FieldError> {
        let buffered = self.with_store(|s| s.buffered_track().map_err(FieldError::from))?;
        if buffered.is_empty() {
            return Ok(());
        }
        let actor = self.actor()?;
        let offset = self.with_store(|s| s.clock_offset_ms())?.unwrap_or(0);
        let mut by_day: BTreeMap<NaiveDate, Vec<(i64, TrackPoint)>> = BTreeMap::new();
        for point in buffered {
            let at = point.at_ms.saturating_add(offset);
            // `record_track` admits only times in range; a point that still is not
            // goes into today's log rather than being dropped.
            let day =
                patrol_date(DateTime::from_timestamp_millis(at).map_or_else(|| self.now(), Ok)?);
            by_day.entry(day).or_default().push((
                point.seq,
                TrackPoint {
                    at_ms: at,
                    lon: point.lon,
                    lat: point.lat,
                    accuracy_m: point.accuracy_m.map(|a| a as f32),
                },
            ));
        }
        for (day, points) in by_day {
            let track: Vec<TrackPoint> = points.iter().map(|(_, p)| *p).collect();
            let seqs: Vec<i64> = points.iter().map(|(s, _)| *s).collect();
            self.edit_patrol_log_of(
                &actor,
                day,
                |log| {
                    for batch in track.chunks(MAX_TRACK_BATCH) {
                        log.record_track(&actor, batch)?;
                    }
                    Ok(())
                },
                |tx| {
                    let mut delete =
                        tx.prepare_cached("DELETE FROM track_buffer WHERE seq = ?1")?;
                    for seq in &seqs {
                        delete.execute([seq])?;
                    }
                    Ok(())
                },
            )?;
        }
        Ok(())
    }

    // --- sync ----------------------------------------------------------------------

    fn sync_now(&self) -> Result<SyncReport, FieldError> {
        self.sync(true)
    }

    /// Sends and receives the documents, then (with `photos`) uploads the photos
    /// that are ready. The push thread's catch-up after a reconnect leaves the
    /// photos to the app's own syncs.
    pub(crate) fn sync(&self, photos: bool) -> Result<SyncReport, FieldError> {
        self.session()?;
        self.flush_track()?;
        let mut session = lock(&self.session);
        let mut server_catalogue: Option<String> = None;
        let mut report = SyncReport {
            outcome: SyncOutcome::Synced,
            sent: 0,
            received: 0,
            evicted: 0,
            refused: Vec::new(),
            ignored: Vec::new(),
            photos_uploaded: 0,
            rounds: 0,
            bytes_up: 0,
            bytes_down: 0,
            clock_skew_s: None,
            pending: self.pending()?,
        };
        let max_reply = Limits::default().max_reply as u64;
        loop {
            let prepared = self.with_store(|s| Ok::<_, FieldError>(session.prepare(s)))?;
            let request = match prepared {
                Ok(request) => request,
                Err(DeviceSyncError::CorruptDocument { id, reason }) => {
                    report.refused.push(self.refetch_corrupt(&id, &reason)?);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            // The time this phone stamps entries with (its clock corrected by the
            // measured offset): the server flags patrol check-ins of a round whose
            // clock is implausibly off.
            let clock = self.now()?.timestamp_millis().to_string();
            let answer = match self.send(
                Method::POST,
                "/v1/sync",
                &[("X-Wangge-Clock", clock)],
                Some(("application/cbor", request.clone())),
                max_reply,
            ) {
                Ok(answer) => answer,
                Err(FieldError::Offline { .. }) => {
                    session.abandon();
                    report.outcome = if report.rounds == 0 {
                        SyncOutcome::Offline
                    } else {
                        SyncOutcome::Partial
                    };
                    return self.finish(report);
                }
                Err(e) => {
                    session.abandon();
                    return Err(e);
                }
            };
            if answer.status != 200 {
                session.abandon();
                return Err(answer.server_error());
            }
            if answer.content_type != "application/cbor" {
                session.abandon();
                return Err(answer.not_understood("expected a CBOR sync reply"));
            }
            report.rounds += 1;
            report.bytes_up += request.len() as u64;
            if let Some(version) = answer.header("x-wangge-catalogue") {
                server_catalogue = Some(version.to_owned());
            }
            report.bytes_down += answer.body.len() as u64;
            let received =
                self.with_store(|s| Ok::<_, FieldError>(session.receive(s, &answer.body)))?;
            let round = match received {
                Ok(round) => round,
                Err(DeviceSyncError::CorruptDocument { id, reason }) => {
                    // Nothing of the reply was committed: the next round asks again.
                    session.abandon();
                    report.refused.push(self.refetch_corrupt(&id, &reason)?);
                    continue;
                }
                Err(e) => {
                    session.abandon();
                    return Err(e.into());
                }
            };
            report.sent += round.acknowledged as u32;
            report.received += round.received as u32;
            report.evicted += round.evicted as u32;
            report.refused.extend(round.refused.iter().map(|r| {
                format!(
                    "{}: {} {}",
                    r.id,
                    refusal_text(r.code),
                    r.details.join("; ")
                )
            }));
            if !round.more || !round.refused.is_empty() || report.rounds >= MAX_ROUNDS {
                break;
            }
        }
        drop(session);
        // Whatever came may hold a dispatch to this user (the push thread tells
        // the app) or an action of this device the workflow ignored.
        self.notices_waiting.store(true, Ordering::SeqCst);
        report.ignored = self.with_store(|s| s.take_ignored())?;
        // The server's catalogue changed (or was never fetched): fetch it now, so
        // an operator's change reaches the phone at its next sync.
        let held = self.served()?.version.clone();
        if let Some(version) = server_catalogue
            && held.as_deref() != Some(version.as_str())
        {
            match self.refresh_catalogue() {
                Ok(()) => {}
                Err(FieldError::Offline { .. }) => report.outcome = SyncOutcome::Partial,
                // Revoked between the rounds and this fetch: the store is wiped
                // already, and the caller must hear why (not a later `Closed`).
                Err(FieldError::DeviceRevoked) => return Err(FieldError::DeviceRevoked),
                // The documents are stored; the old catalogue serves until the next
                // sync tries again.
                Err(e) => tracing::warn!(error = %e, "the server's catalogue was not taken"),
            }
        }
        if photos {
            let mut photo_bytes = 0;
            let uploaded = crate::photos::upload_ready(self, &mut photo_bytes);
            report.bytes_up += photo_bytes;
            match uploaded {
                Ok(uploaded) => report.photos_uploaded = uploaded,
                Err(FieldError::Offline { .. }) => report.outcome = SyncOutcome::Partial,
                Err(e) => return Err(e),
            }
        }
        let now = self.local_now_ms();
        self.with_store(|s| s.set_last_sync_ms(now).map_err(FieldError::from))?;
        self.finish(report)
    }

    /// A stored document whose bytes do not load (a damaged page, a bug): it is
    /// dropped and asked of the server whole, so one bad document does not stop the
    /// sync of the others. Its local changes not yet sent are lost with its bytes; the
    /// returned line says so in the sync report.
    fn refetch_corrupt(&self, id: &str, reason: &str) -> Result<String, FieldError> {
        tracing::error!(%id, %reason, "a stored document does not load; fetching it again");
        self.with_store(|s| DeviceSession::discard(s, id).map_err(FieldError::from))?;
        Ok(format!(
            "{id}: damaged on this phone ({reason}); fetched again from the server"
        ))
    }

    fn finish(&self, mut report: SyncReport) -> Result<SyncReport, FieldError> {
        report.pending = self.pending()?;
        report.clock_skew_s = self.with_store(|s| s.clock_offset_ms())?.map(|o| o / 1000);
        if report.outcome == SyncOutcome::Synced
            && (report.pending.documents > 0 || report.pending.photos > 0)
        {
            report.outcome = SyncOutcome::Partial;
        }
        Ok(report)
    }

    fn pending(&self) -> Result<PendingWork, FieldError> {
        self.with_store(|s| {
            let (documents, rejected) = s.outbox_counts()?;
            let photos: Vec<QueuedPhoto> = s
                .photos()?
                .into_iter()
                .filter(|p| p.state == "waiting_ack" || p.state == "ready")
                .collect();
            Ok::<_, FieldError>(PendingWork {
                documents,
                rejected,
                photos: photos.len() as u32,
                photo_bytes: photos.iter().map(|p| p.size - p.uploaded.min(p.size)).sum(),
                track_points: s.buffered_track()?.len() as u32,
                last_sync_ms: s.last_sync_ms()?,
            })
        })
    }

    pub(crate) fn photo_dir(&self) -> PathBuf {
        self.dir.join(PHOTO_DIR)
    }

    // --- push and wipe -------------------------------------------------------------

    pub(crate) fn set_push(&self, handle: Option<PushHandle>) {
        let previous = std::mem::replace(&mut *lock(&self.push), handle);
        if let Some(previous) = previous {
            previous.stop();
        }
    }

    pub(crate) fn stop_push(&self) {
        self.set_push(None);
    }

    /// Whether a push thread runs.
    pub(crate) fn push_running(&self) -> bool {
        lock(&self.push)
            .as_ref()
            .is_some_and(PushHandle::is_running)
    }

    pub(crate) fn access_token(&self) -> Result<String, FieldError> {
        let mut session = self.session()?;
        if session.access_expires_local_ms <= self.local_now_ms() + 30_000 {
            session = self.refresh(&session)?;
        }
        Ok(session.access_token)
    }

    /// Closes the store and deletes its files.
    pub(crate) fn wipe(&self) -> Result<(), FieldError> {
        let store = lock(&self.store).take();
        drop(store);
        *lock(&self.grids) = None;
        wipe_files(&self.dir).map_err(|e| FieldError::Storage {
            recoverable: true,
            detail: format!("wiping {}: {e}", self.dir.display()),
        })
    }
}

/// Writes `name` in `dir` so that it is whole or absent after a crash: a temporary
/// file, fsynced, renamed, and the directory fsynced.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}
