//! The records and enums that cross the FFI: plain data, so each generated language
//! gets a data class / struct. Times are milliseconds since the Unix epoch (UTC);
//! positions are WGS-84 as the phone's GPS reports them.

/// How to open a client.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientConfig {
    /// The app's private directory for this library (Android `filesDir`, iOS
    /// Application Support).
    pub data_dir: String,
    /// The server, e.g. `https://wangge.example.cn`.
    pub server_url: String,
    /// The phone's name as registered (shown to administrators).
    pub device_name: String,
    /// The longest wait for a connection (DNS, TCP and the TLS handshake), ms.
    #[uniffi(default = 10000)]
    pub connect_timeout_ms: u32,
    /// The longest one request may take from start to the last byte of its answer,
    /// ms (a sync round, one photo chunk, one image). A dead connection ends sooner,
    /// by `idle_timeout_ms`; this bound is for one that trickles, and must allow the
    /// largest answer (a 16 MiB sync reply) at the slowest link served: the default
    /// is 16 MiB at about 56 KB/s.
    #[uniffi(default = 300000)]
    pub request_timeout_ms: u32,
    /// The longest silence on an open connection, ms: a server that accepts and
    /// then says nothing is given up after this (and a push socket that hears
    /// nothing, not even a pong, for this long past a ping is reconnected).
    #[uniffi(default = 20000)]
    pub idle_timeout_ms: u32,
    /// The most disk the downloaded photos (thumbnails and display images) may take,
    /// MiB; the least recently shown go first.
    #[uniffi(default = 64)]
    pub photo_cache_mb: u32,
    /// Certificate authorities (PEM, one or more) to trust *instead of* the bundled
    /// public roots: a city network's private or MDM CA. `None`: the public roots.
    #[uniffi(default = None)]
    pub trusted_ca_pem: Option<String>,
}

impl ClientConfig {
    /// A configuration with every default (for Rust callers; the generated bindings
    /// have the same defaults).
    pub fn new(data_dir: &str, server_url: &str, device_name: &str) -> ClientConfig {
        ClientConfig {
            data_dir: data_dir.to_owned(),
            server_url: server_url.to_owned(),
            device_name: device_name.to_owned(),
            connect_timeout_ms: 10_000,
            request_timeout_ms: 300_000,
            idle_timeout_ms: 20_000,
            photo_cache_mb: 64,
            trusted_ca_pem: None,
        }
    }
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionInfo {
    /// The user id.
    pub user_id: String,
    /// The name for display.
    pub display_name: String,
    /// The role's identifier, e.g. `enforcement_officer`.
    pub role: String,
    /// The team, for field workers.
    pub team: Option<String>,
    /// The scope, e.g. `community:410105001001`.
    pub scope: String,
    /// The registered device.
    pub device_id: String,
}

/// A GPS fix.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct GpsFix {
    /// Longitude, WGS-84.
    pub lon: f64,
    /// Latitude, WGS-84.
    pub lat: f64,
    /// Accuracy radius in metres, if known.
    pub accuracy_m: Option<f64>,
    /// When the fix was taken (phone clock, ms); now if absent.
    pub at_ms: Option<i64>,
}

/// A unit grid of this user's scope, with the names of the units above it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GridInfo {
    /// The 15-digit unit grid code.
    pub code: String,
    /// The district (区).
    pub district_name: String,
    /// The street (街道) or town.
    pub street_name: String,
    /// The community (社区).
    pub community_name: String,
    /// The level-3 grid (三级网格) the unit grid belongs to.
    pub level3_name: String,
}

/// A category of the catalogue, with both labels.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CategoryInfo {
    /// The code, e.g. `C0102`.
    pub code: String,
    /// Component (部件) or event (事件).
    pub kind: String,
    /// Chinese label.
    pub name_zh: String,
    /// English label.
    pub name_en: String,
    /// The team that handles it.
    pub team: String,
    /// The team's labels.
    pub team_zh: String,
    /// The team's English label.
    pub team_en: String,
    /// Whether the server dispatches a report of it at once (the operator's
    /// city-wide ownership rules say `auto`: emergencies, missing manhole covers).
    pub urgent: bool,
    /// The time limit of each step (受理, 立案, 派遣, 处置, …) in the catalogue's
    /// words, e.g. `4 working_hours`.
    pub limits: Vec<StepLimit>,
}

/// One step's time limit.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StepLimit {
    /// The step: `accept`, `register`, `dispatch`, `handle`, `verify`, `close`, `reply`.
    pub step: String,
    /// Its Chinese label (受理, …).
    pub step_zh: String,
    /// Its English label.
    pub step_en: String,
    /// The limit as the catalogue writes it, e.g. `2 hours`, `4 working_hours`.
    pub limit: String,
    /// How many units.
    pub amount: u32,
    /// `working_hours`, `working_days` (the clock runs in working time only) or
    /// `hours` (calendar hours, day and night).
    pub unit: String,
}

/// A variant of a photo the server made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PhotoVariant {
    /// About 320 px, for lists.
    Thumbnail,
    /// About 1280 px, for a full-screen view.
    Display,
}

/// An action of this device that the workflow ignored once merged with what others
/// did (another phone handled the case first, a supervisor voided it meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IgnoredAction {
    /// The case.
    pub case_id: String,
    /// The timeline entry.
    pub entry_id: String,
    /// The action's identifier (`handle`, …).
    pub action: String,
    /// Why the fold ignored it.
    pub reason: String,
}

/// A problem reported from the field.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewReport {
    /// The category code.
    pub category: String,
    /// Where the problem is.
    pub position: GpsFix,
    /// Address text.
    pub address: String,
    /// What is wrong.
    pub description: String,
}

/// What a photo shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PhotoRole {
    /// The problem (处置前).
    Before,
    /// The result (处置后).
    After,
    /// Anything else.
    Other,
}

/// An action on a case, as the workflow names it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum CaseAction {
    /// Accept (受理).
    Accept,
    /// Register (立案).
    Register,
    /// Dispatch (派遣) to a team, optionally one person.
    Dispatch {
        /// The team id.
        team: String,
        /// A user of the team.
        assignee: Option<String>,
    },
    /// Handle (处置): the problem is fixed.
    Handle,
    /// Verify (核查) the result.
    Verify,
    /// Rework (返工).
    Rework,
    /// Close (结案).
    Close,
    /// Return (退回) to the dispatcher.
    Return,
    /// Ask for more time (延期申请), e.g. `4 working_hours`.
    RequestExtension {
        /// The time limit's text.
        extra: String,
    },
    /// Decide the pending extension (延期审批).
    DecideExtension {
        /// Granted.
        approved: bool,
    },
    /// Ask to defer (挂账申请).
    RequestDefer,
    /// Decide the pending defer request (挂账审批).
    DecideDefer {
        /// Granted.
        approved: bool,
    },
    /// Void (作废).
    Void,
    /// Reopen.
    Reopen,
    /// Comment (备注).
    Comment,
}

/// A case in a list.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CaseSummary {
    /// The case id.
    pub id: String,
    /// The status's identifier (`dispatched`, …).
    pub status: Option<String>,
    /// The status's label, Chinese and English (`待处置 Waiting to be handled`).
    pub status_label: Option<String>,
    /// The status's Chinese label (`待处置`).
    pub status_zh: Option<String>,
    /// The status's English label (`Waiting to be handled`).
    pub status_en: Option<String>,
    /// The category code.
    pub category: Option<String>,
    /// The category's Chinese name, from the catalogue this phone holds.
    pub category_zh: Option<String>,
    /// The category's English name.
    pub category_en: Option<String>,
    /// The unit grid.
    pub grid: Option<String>,
    /// The description.
    pub description: String,
    /// The reporting user.
    pub reporter: Option<String>,
    /// The team it is dispatched to.
    pub team: Option<String>,
    /// The person it is dispatched to.
    pub assignee: Option<String>,
    /// When it was reported.
    pub reported_at_ms: Option<i64>,
    /// When the running step is due.
    pub due_at_ms: Option<i64>,
    /// Whether the running step is past due (by the server-corrected clock, when
    /// the list was read).
    pub overdue: bool,
    /// How many photos.
    pub photo_count: u32,
    /// Local changes not yet on the server.
    pub unsent: bool,
    /// Why the server refused this phone's changes (they stay local until
    /// discarded).
    pub rejected: Option<String>,
}

/// One timeline entry as folded.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TimelineItem {
    /// The entry id.
    pub id: String,
    /// The action's identifier.
    pub action: String,
    /// The action's Chinese label (派遣).
    pub action_zh: String,
    /// The action's English label.
    pub action_en: String,
    /// Who.
    pub user: String,
    /// Their role's identifier (`server` for the server's own entries).
    pub role: String,
    /// The role's Chinese label.
    pub role_zh: String,
    /// The role's English label.
    pub role_en: String,
    /// When (the writer's clock).
    pub at_ms: i64,
    /// The note.
    pub note: Option<String>,
    /// `applied`, or why the fold ignored it.
    pub outcome: String,
}

/// A photo of a case, with its upload state on this phone.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PhotoInfo {
    /// SHA-256 of the uploaded bytes.
    pub sha256: String,
    /// `before`, `after`, `other`.
    pub role: String,
    /// Who added it.
    pub added_by: String,
    /// When it was taken (EXIF), if known.
    pub taken_at_ms: Option<i64>,
    /// `waiting_ack`, `ready`, `done`, `refused`, or `remote` (added elsewhere).
    pub upload: String,
    /// Size of the upload in bytes (0 when added elsewhere).
    pub size: u64,
}

/// A case in full.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CaseDetail {
    /// The list fields.
    pub summary: CaseSummary,
    /// Address text.
    pub address: String,
    /// Where, as reported.
    pub position: Option<GpsFix>,
    /// Where it came from (`patrol`, `hotline`, …).
    pub source: Option<String>,
    /// Every timeline entry in fold order.
    pub timeline: Vec<TimelineItem>,
    /// The photos.
    pub photos: Vec<PhotoInfo>,
    /// The actions this user may take now (identifiers).
    pub allowed_actions: Vec<String>,
    /// The same, typed: labels and a [`CaseAction`] to pass to `act`, with what the
    /// user must still choose.
    pub actions: Vec<AllowedAction>,
    /// Whether the running step is past due.
    pub overdue: bool,
    /// What is wrong in the document (missing or malformed fields).
    pub problems: Vec<String>,
}

/// A check-in as the patrol log holds it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CheckInItem {
    /// Its id in the log.
    pub id: String,
    /// Where and when (WGS-84; `at_ms` by the corrected clock).
    pub fix: GpsFix,
    /// The unit grid the phone resolved when checking in.
    pub grid: Option<String>,
    /// The worker's note.
    pub note: Option<String>,
}

/// A supervisor's review of a patrol log (巡查记录审核).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReviewItem {
    /// Its id.
    pub id: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Who reviewed (user id).
    pub reviewer: String,
    /// Their role (`grid_leader`, `district_supervisor`, …).
    pub reviewer_role: String,
    /// `approve`, `reject` or `comment`.
    pub verdict: String,
    /// What they said.
    pub comment: Option<String>,
}

/// The worker's patrol log of a day, as on this phone.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PatrolLogInfo {
    /// `patrol:<user>:<YYYY-MM-DD>`.
    pub log_id: String,
    /// The China date, `YYYY-MM-DD`.
    pub date: String,
    /// The check-ins, in the order written.
    pub check_ins: Vec<CheckInItem>,
    /// GPS fixes of the track written into the log (the buffer goes in at sync).
    pub track_points: u32,
    /// Cases reported on the walk.
    pub cases_found: Vec<String>,
    /// The reviews, in the order written.
    pub reviews: Vec<ReviewItem>,
    /// The standing verdict (the last approve or reject), if any.
    pub verdict: Option<String>,
    /// What is wrong in the document (missing or malformed fields).
    pub problems: Vec<String>,
}

/// A check-in recorded.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CheckInInfo {
    /// The patrol log (one per worker and day).
    pub log_id: String,
    /// The check-in's id.
    pub check_in_id: String,
    /// The unit grid the phone resolved offline, if its grids are cached.
    pub grid: Option<String>,
}

/// How a sync went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncOutcome {
    /// Everything went; nothing is pending but refused documents.
    Synced,
    /// The server could not be reached; nothing moved.
    Offline,
    /// Some rounds went, then the connection failed or uploads remain.
    Partial,
}

/// What `sync_now` moved.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncReport {
    /// How it went.
    pub outcome: SyncOutcome,
    /// Documents whose changes the server acknowledged.
    pub sent: u32,
    /// Documents that received changes.
    pub received: u32,
    /// Documents that left this phone's scope.
    pub evicted: u32,
    /// Documents the server refused, with why.
    pub refused: Vec<String>,
    /// This device's actions that the workflow ignored, found in this sync (each
    /// reported once).
    pub ignored: Vec<IgnoredAction>,
    /// Photos uploaded.
    pub photos_uploaded: u32,
    /// Rounds.
    pub rounds: u32,
    /// Bytes sent: sync rounds and photo uploads.
    pub bytes_up: u64,
    /// Bytes received.
    pub bytes_down: u64,
    /// The server's clock minus the phone's, seconds (the app warns past minutes).
    pub clock_skew_s: Option<i64>,
    /// What is left.
    pub pending: PendingWork,
}

/// Work not yet on the server, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingWork {
    /// Documents with unsent changes.
    pub documents: u32,
    /// Documents the server refused (need the user: discard or fix).
    pub rejected: u32,
    /// Photos not yet uploaded.
    pub photos: u32,
    /// Bytes of those photos left to send.
    pub photo_bytes: u64,
    /// Track points not yet written into the patrol log.
    pub track_points: u32,
    /// When the last sync finished (phone clock).
    pub last_sync_ms: Option<i64>,
}

/// A status identifier's label, Chinese and English (`待处置 Waiting to be handled`).
pub(crate) fn status_label(id: &str) -> Option<String> {
    wangge_sync_core::case::Status::parse(id).map(|s| format!("{} {}", s.name_zh(), s.name_en()))
}

/// An action the user may take on a case now, ready to pass to `act`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AllowedAction {
    /// The identifier (`handle`, `dispatch`, …).
    pub name: String,
    /// Chinese label (处置).
    pub name_zh: String,
    /// English label.
    pub name_en: String,
    /// The action with its parameters filled with the usual choice (the category's
    /// team for a dispatch, `2 working_days` for an extension, approval for a
    /// decision); change those named in `needs` as the user chooses.
    pub template: CaseAction,
    /// The parameters the user chooses: `team`, `assignee`, `extra`, `approved`.
    pub needs: Vec<String>,
}

/// Which cases `listCasesWhere` returns. Every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct CaseListFilter {
    /// Dispatched to this user ("my tasks").
    #[uniffi(default = false)]
    pub assigned_to_me: bool,
    /// Reported by this user.
    #[uniffi(default = false)]
    pub reported_by_me: bool,
    /// In one of these statuses (`dispatched`, …); empty: any.
    #[uniffi(default = [])]
    pub statuses: Vec<String>,
    /// The running step is past due.
    #[uniffi(default = false)]
    pub overdue: bool,
    /// With changes not yet on the server.
    #[uniffi(default = false)]
    pub unsent: bool,
    /// In grids whose code starts with this (a community's 12 digits, …).
    #[uniffi(default = None)]
    pub grid_prefix: Option<String>,
    /// How many to skip (paging).
    #[uniffi(default = 0)]
    pub offset: u32,
    /// The most to return (1–500).
    #[uniffi(default = 50)]
    pub limit: u32,
}

/// One page of a case list.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CasePage {
    /// The cases, newest report first.
    pub cases: Vec<CaseSummary>,
    /// How many cases the filter selects in all.
    pub total: u32,
}
