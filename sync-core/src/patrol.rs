//! The patrol log (巡查记录): one Automerge document per field worker per day of the
//! daily walk patrol (徒步巡查). The worker's phone appends check-ins, GPS track
//! points and the cases found; supervisors append reviews, which reach the phone on
//! its next sync.
//!
//! # Layout (schema version 1)
//!
//! | key | type | who writes it |
//! |---|---|---|
//! | `schema_version`, `id`, `worker`, `role`, `team`, `date` | scalars | creation only (the worker) |
//! | `checkins` | list of maps `{id, at, lon, lat, accuracy_m, grid, note}` | the worker appends |
//! | `track` | list of byte strings, each a batch of points (see [`TrackPoint`]) | the worker appends |
//! | `cases_found` | list of case ids | the worker appends |
//! | `reviews` | list of maps `{id, at, user, role, team, scope, device, verdict, comment}` | reviewers append |
//!
//! A day's GPS track has thousands of points that nobody edits, so the phone
//! appends them in batches, each one CBOR byte string (`minicbor`): one Automerge
//! operation per batch instead of five per point. Every list is append-only
//! ([`check_patrol_changes`]).

use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, transaction::Transactable};
use autosurgeon::{Hydrate, MaybeMissing, Reconcile, hydrate_prop};
use chrono::{DateTime, NaiveDate, Utc};

use crate::document::{
    ChangeEffect, Depth, DeviceIdError, DocProblem, InvalidPosition, Position, Violation,
    ViolationKind, WriteRefused, actor_id, describe, judge_changes, locate, object_at, push_unique,
    string_at,
};
use crate::grid::GridCode;
use crate::role::{Actor, GridScope, Role, check_user_id};

pub mod assess;
pub mod track;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

/// The schema version this code writes.
pub const SCHEMA_VERSION: u64 = 1;

/// The longest note of a check-in or comment of a review, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;

/// The most points one track batch may hold (a day at one point a second is 86,400;
/// phones send far fewer, more often).
pub const MAX_TRACK_BATCH: usize = 10_000;

mod key {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const ID: &str = "id";
    pub const WORKER: &str = "worker";
    pub const ROLE: &str = "role";
    pub const TEAM: &str = "team";
    pub const DATE: &str = "date";
    pub const CHECKINS: &str = "checkins";
    pub const TRACK: &str = "track";
    pub const CASES_FOUND: &str = "cases_found";
    pub const REVIEWS: &str = "reviews";

    pub const ALL: [&str; 10] = [
        SCHEMA_VERSION,
        ID,
        WORKER,
        ROLE,
        TEAM,
        DATE,
        CHECKINS,
        TRACK,
        CASES_FOUND,
        REVIEWS,
    ];
    /// The lists the worker appends to.
    pub const WORKER_LISTS: [&str; 3] = [CHECKINS, TRACK, CASES_FOUND];
}

/// The day a patrol log of a check-in or fix at `at` belongs to: its date in Beijing
/// time ([`crate::calendar::SHANGHAI`]), whatever the phone's own time zone.
pub fn patrol_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&crate::calendar::SHANGHAI).date_naive()
}

/// The id of a worker's patrol log for a day: `patrol:<user>:<YYYY-MM-DD>`.
pub fn patrol_log_id(user: &str, date: NaiveDate) -> String {
    format!("patrol:{user}:{date}")
}

/// The roles that review patrol logs (网格长 and the 分包 leaders, the shift lead).
pub fn reviews(role: Role) -> bool {
    matches!(
        role,
        Role::GridLeader | Role::ShiftLead | Role::DistrictSupervisor | Role::CitySupervisor
    )
}

/// A check-in (打卡) at a grid during the walk.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckIn {
    /// Unique within the log.
    pub id: String,
    /// When, by the phone's clock.
    pub at: DateTime<Utc>,
    /// Where, WGS-84 as the phone reported it.
    pub position: Position,
    /// The unit grid the phone resolved, if any.
    pub grid: Option<GridCode>,
    /// A note.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Hydrate, Reconcile)]
struct StoredCheckIn {
    #[autosurgeon(missing = "Option::default")]
    id: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    at: Option<i64>,
    #[autosurgeon(missing = "Option::default")]
    lon: Option<f64>,
    #[autosurgeon(missing = "Option::default")]
    lat: Option<f64>,
    #[autosurgeon(missing = "Option::default")]
    accuracy_m: Option<f64>,
    #[autosurgeon(missing = "Option::default")]
    grid: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    note: Option<String>,
}

impl StoredCheckIn {
    fn from_check_in(check_in: &CheckIn) -> StoredCheckIn {
        StoredCheckIn {
            id: Some(check_in.id.clone()),
            at: Some(check_in.at.timestamp_millis()),
            lon: Some(check_in.position.lon),
            lat: Some(check_in.position.lat),
            accuracy_m: check_in.position.accuracy_m,
            grid: check_in.grid.map(|g| g.to_string()),
            note: check_in.note.clone(),
        }
    }

    fn parse(&self) -> Result<CheckIn, String> {
        let id = self.id.clone().ok_or("missing id")?;
        let at = self
            .at
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .ok_or("missing or invalid at")?;
        let (Some(lon), Some(lat)) = (self.lon, self.lat) else {
            return Err("missing lon/lat".to_owned());
        };
        let position = Position {
            lon,
            lat,
            accuracy_m: self.accuracy_m,
        };
        position.check().map_err(|e| e.to_string())?;
        let grid = match &self.grid {
            Some(grid) => Some(grid.parse::<GridCode>().map_err(|e| e.to_string())?),
            None => None,
        };
        check_note(self.note.as_deref())?;
        Ok(CheckIn {
            id,
            at,
            position,
            grid,
            note: self.note.clone(),
        })
    }
}

/// One GPS fix of the track.
#[derive(Debug, Clone, Copy, PartialEq, minicbor::Encode, minicbor::Decode)]
#[cbor(array)]
pub struct TrackPoint {
    /// Milliseconds since the Unix epoch, UTC.
    #[n(0)]
    pub at_ms: i64,
    /// Longitude, WGS-84.
    #[n(1)]
    pub lon: f64,
    /// Latitude, WGS-84.
    #[n(2)]
    pub lat: f64,
    /// Accuracy radius, metres.
    #[n(3)]
    pub accuracy_m: Option<f32>,
}

impl TrackPoint {
    /// When the fix was taken.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        DateTime::<Utc>::from_timestamp_millis(self.at_ms)
    }
}

/// A batch of track points as stored: a version number and the points.
#[derive(Debug, Clone, PartialEq, minicbor::Encode, minicbor::Decode)]
#[cbor(array)]
struct TrackBatch {
    #[n(0)]
    version: u8,
    #[n(1)]
    points: Vec<TrackPoint>,
}

const TRACK_BATCH_VERSION: u8 = 1;

fn encode_batch(points: &[TrackPoint]) -> Vec<u8> {
    let batch = TrackBatch {
        version: TRACK_BATCH_VERSION,
        points: points.to_vec(),
    };
    // Encoding into a Vec cannot fail: the only errors are the writer's, and a Vec
    // always accepts bytes.
    minicbor::to_vec(&batch).unwrap_or_default()
}

fn decode_batch(bytes: &[u8]) -> Result<Vec<TrackPoint>, String> {
    let batch: TrackBatch = minicbor::decode(bytes).map_err(|e| format!("track batch: {e}"))?;
    if batch.version != TRACK_BATCH_VERSION {
        return Err(format!("track batch version {} is unknown", batch.version));
    }
    if batch.points.len() > MAX_TRACK_BATCH {
        return Err(format!("track batch of {} points", batch.points.len()));
    }
    for point in &batch.points {
        Position {
            lon: point.lon,
            lat: point.lat,
            accuracy_m: point.accuracy_m.map(f64::from),
        }
        .check()
        .map_err(|e| e.to_string())?;
        point.at().ok_or("track point time out of range")?;
    }
    Ok(batch.points)
}

fn check_note(note: Option<&str>) -> Result<(), String> {
    match note.map(|n| n.chars().count()) {
        Some(length) if length > MAX_NOTE_CHARS => Err(format!(
            "note of {length} characters; the most is {MAX_NOTE_CHARS}"
        )),
        _ => Ok(()),
    }
}

/// A supervisor's verdict on the day's patrol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Approved (合格).
    Approve,
    /// Rejected (不合格): the worker must explain or redo.
    Reject,
    /// A comment without a verdict.
    Comment,
}

impl Verdict {
    /// The identifier stored in the document.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
            Verdict::Comment => "comment",
        }
    }

    /// The verdict named `text` (`approve`, `reject`, `comment`).
    pub fn parse(text: &str) -> Option<Verdict> {
        [Verdict::Approve, Verdict::Reject, Verdict::Comment]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// A review entry written by a supervisor.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// Unique within the log.
    pub id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (the claim the server checks).
    pub reviewer: Actor,
    /// Approve, reject or comment.
    pub verdict: Verdict,
    /// The comment.
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Hydrate, Reconcile)]
struct StoredReview {
    #[autosurgeon(missing = "Option::default")]
    id: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    at: Option<i64>,
    #[autosurgeon(missing = "Option::default")]
    user: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    role: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    team: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    scope: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    device: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    verdict: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    comment: Option<String>,
}

impl StoredReview {
    fn from_review(review: &Review) -> StoredReview {
        StoredReview {
            id: Some(review.id.clone()),
            at: Some(review.at.timestamp_millis()),
            user: Some(review.reviewer.user.clone()),
            role: Some(review.reviewer.role.as_str().to_owned()),
            team: review.reviewer.team.as_ref().map(ToString::to_string),
            scope: Some(review.reviewer.scope.to_string()),
            device: Some(review.reviewer.device.clone()),
            verdict: Some(review.verdict.as_str().to_owned()),
            comment: review.comment.clone(),
        }
    }

    fn parse(&self) -> Result<Review, String> {
        let id = self.id.clone().ok_or("missing id")?;
        let at = self
            .at
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .ok_or("missing or invalid at")?;
        let user = self.user.clone().ok_or("missing user")?;
        check_user_id(&user).map_err(|e| e.to_string())?;
        let role: Role = self
            .role
            .as_deref()
            .ok_or("missing role")?
            .parse()
            .map_err(|e: crate::role::IdentityError| e.to_string())?;
        let team = match &self.team {
            Some(team) => {
                Some(crate::catalog::TeamId::new(team.as_str()).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let scope: GridScope = self
            .scope
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e: crate::role::IdentityError| e.to_string())?;
        let device = self.device.clone().ok_or("missing device")?;
        let verdict = self
            .verdict
            .as_deref()
            .and_then(Verdict::parse)
            .ok_or("missing or unknown verdict")?;
        check_note(self.comment.as_deref())?;
        Ok(Review {
            id,
            at,
            reviewer: Actor {
                user,
                role,
                team,
                scope,
                device,
            },
            verdict,
            comment: self.comment.clone(),
        })
    }
}

/// Who wrote a log's check-ins and track (see [`PatrolLog::writers`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writers {
    /// (check-in id, actor hex), in list order.
    pub check_ins: Vec<(String, String)>,
    /// The actor of each track batch, in list order.
    pub track_batches: Vec<String>,
}

impl Writers {
    /// Every actor that wrote a check-in or a batch, once each, in order.
    pub fn actors(&self) -> Vec<&str> {
        let mut actors: Vec<&str> = self
            .check_ins
            .iter()
            .map(|(_, a)| a.as_str())
            .chain(self.track_batches.iter().map(String::as_str))
            .collect();
        actors.sort_unstable();
        actors.dedup();
        actors
    }
}

/// A patrol log as read, with what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct PatrolRecord {
    /// Schema version (0 when absent).
    pub schema_version: u64,
    /// Log id, see [`patrol_log_id`].
    pub id: Option<String>,
    /// The worker's user id.
    pub worker: Option<String>,
    /// The worker's role.
    pub role: Option<Role>,
    /// The worker's team.
    pub team: Option<String>,
    /// The day (Asia/Shanghai).
    pub date: Option<NaiveDate>,
    /// Check-ins that could be read, in list order.
    pub checkins: Vec<CheckIn>,
    /// Track points of every readable batch, in list order.
    pub track: Vec<TrackPoint>,
    /// Ids of the cases the worker reported on this walk.
    pub cases_found: Vec<String>,
    /// Reviews that could be read, in list order.
    pub reviews: Vec<Review>,
    /// What was missing, malformed or unknown.
    pub problems: Vec<DocProblem>,
}

impl PatrolRecord {
    /// The last approve or reject, if any: the log's standing.
    pub fn verdict(&self) -> Option<&Review> {
        self.reviews
            .iter()
            .rev()
            .find(|r| r.verdict != Verdict::Comment)
    }
}

/// Why a patrol log could not be loaded or edited.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatrolError {
    /// The bytes are not an Automerge document.
    #[error("not an Automerge document: {0}")]
    Load(String),
    /// Automerge refused an operation.
    #[error("automerge: {0}")]
    Automerge(String),
    /// An argument is not valid.
    #[error("{0}")]
    Invalid(String),
    /// A position out of range.
    #[error(transparent)]
    Position(#[from] InvalidPosition),
    /// An actor's device id is not an Automerge actor id.
    #[error(transparent)]
    Device(#[from] DeviceIdError),
    /// Written by a newer version of wangge; update the app.
    #[error("patrol log has schema version {found}; this version writes {SCHEMA_VERSION}")]
    NewerSchema {
        /// The version found.
        found: u64,
    },
    /// The edit breaks the write rules for this actor.
    #[error(transparent)]
    WriteRefused(#[from] WriteRefused),
}

fn am_error(e: impl std::fmt::Display) -> PatrolError {
    PatrolError::Automerge(e.to_string())
}

/// A patrol log document.
#[derive(Debug, Clone)]
pub struct PatrolLog {
    doc: Automerge,
}

impl PatrolLog {
    /// Starts `worker`'s log for `date` (one change by the worker's device).
    pub fn create(worker: &Actor, date: NaiveDate) -> Result<PatrolLog, PatrolError> {
        check_user_id(&worker.user).map_err(|e| PatrolError::Invalid(e.to_string()))?;
        let mut doc = Automerge::new().with_actor(actor_id(&worker.device)?);
        doc.transact::<_, _, PatrolError>(|tx| {
            tx.put(ROOT, key::SCHEMA_VERSION, ScalarValue::Uint(SCHEMA_VERSION))
                .map_err(am_error)?;
            tx.put(ROOT, key::ID, patrol_log_id(&worker.user, date))
                .map_err(am_error)?;
            tx.put(ROOT, key::WORKER, worker.user.as_str())
                .map_err(am_error)?;
            tx.put(ROOT, key::ROLE, worker.role.as_str())
                .map_err(am_error)?;
            if let Some(team) = &worker.team {
                tx.put(ROOT, key::TEAM, team.as_str()).map_err(am_error)?;
            }
            tx.put(ROOT, key::DATE, date.to_string())
                .map_err(am_error)?;
            for list in [key::CHECKINS, key::TRACK, key::CASES_FOUND, key::REVIEWS] {
                tx.put_object(ROOT, list, ObjType::List).map_err(am_error)?;
            }
            Ok(())
        })
        .map_err(|failure| failure.error)?;
        let changes: Vec<_> = doc.get_changes(&[]).into_iter().collect();
        check_patrol_changes(&Automerge::new(), &changes, worker)?;
        Ok(PatrolLog { doc })
    }

    /// Loads a saved log.
    pub fn load(bytes: &[u8]) -> Result<PatrolLog, PatrolError> {
        let doc = Automerge::load(bytes).map_err(|e| PatrolError::Load(e.to_string()))?;
        Ok(PatrolLog { doc })
    }

    /// Wraps an Automerge document (for the sync layer).
    pub fn from_automerge(doc: Automerge) -> PatrolLog {
        PatrolLog { doc }
    }

    /// The Automerge document.
    pub fn automerge(&self) -> &Automerge {
        &self.doc
    }

    /// Unwraps the Automerge document.
    pub fn into_automerge(self) -> Automerge {
        self.doc
    }

    /// The compacted document.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// Merges another replica into this one.
    pub fn merge(&mut self, other: &PatrolLog) -> Result<(), PatrolError> {
        let mut other = other.doc.clone();
        self.doc.merge(&mut other).map_err(am_error)?;
        Ok(())
    }

    /// Appends a check-in, by the worker.
    pub fn check_in(&mut self, worker: &Actor, check_in: &CheckIn) -> Result<(), PatrolError> {
        check_in.position.check()?;
        if check_in.id.is_empty() || check_in.id.len() > 64 {
            return Err(PatrolError::Invalid(
                "check-in id must be 1-64 bytes".into(),
            ));
        }
        let stored = StoredCheckIn::from_check_in(check_in);
        stored.parse().map_err(PatrolError::Invalid)?;
        self.append(worker, key::CHECKINS, |tx, list, end| {
            autosurgeon::reconcile_insert(tx, list, end, &stored).map_err(am_error)
        })
    }

    /// Appends a batch of track points (at most [`MAX_TRACK_BATCH`]), by the worker.
    pub fn record_track(
        &mut self,
        worker: &Actor,
        points: &[TrackPoint],
    ) -> Result<(), PatrolError> {
        if points.is_empty() {
            return Ok(());
        }
        if points.len() > MAX_TRACK_BATCH {
            return Err(PatrolError::Invalid(format!(
                "{} track points in one batch; the most is {MAX_TRACK_BATCH}",
                points.len()
            )));
        }
        let bytes = encode_batch(points);
        decode_batch(&bytes).map_err(PatrolError::Invalid)?;
        self.append(worker, key::TRACK, |tx, list, end| {
            tx.insert(&list, end, ScalarValue::Bytes(bytes))
                .map_err(am_error)
        })
    }

    /// Records that the worker reported case `case_id` on this walk.
    pub fn add_case_found(&mut self, worker: &Actor, case_id: &str) -> Result<(), PatrolError> {
        if case_id.is_empty() || case_id.len() > 64 {
            return Err(PatrolError::Invalid("case id must be 1-64 bytes".into()));
        }
        self.append(worker, key::CASES_FOUND, |tx, list, end| {
            tx.insert(&list, end, case_id).map_err(am_error)
        })
    }

    /// Appends a review, by a supervisor (the review's `reviewer`).
    pub fn review(&mut self, review: &Review) -> Result<(), PatrolError> {
        if review.id.is_empty() || review.id.len() > 64 {
            return Err(PatrolError::Invalid("review id must be 1-64 bytes".into()));
        }
        // The worker must learn what to do better: a rejection says why.
        if review.verdict == Verdict::Reject
            && review
                .comment
                .as_deref()
                .is_none_or(|c| c.trim().is_empty())
        {
            return Err(PatrolError::Invalid(
                "a rejection says why: give a comment".into(),
            ));
        }
        let stored = StoredReview::from_review(review);
        stored.parse().map_err(PatrolError::Invalid)?;
        self.append(&review.reviewer, key::REVIEWS, |tx, list, end| {
            autosurgeon::reconcile_insert(tx, list, end, &stored).map_err(am_error)
        })
    }

    /// Which device wrote what (provenance): the Automerge actor (hex) that inserted
    /// each check-in, by check-in id, and each track batch, in every conflicting copy
    /// of the lists. A check-in without a readable id is keyed by its position.
    pub fn writers(&self) -> Writers {
        let doc = &self.doc;
        let actor_of = |id: &automerge::ObjId| match id {
            automerge::ObjId::Id(_, actor, _) => Some(actor.to_hex_string()),
            automerge::ObjId::Root => None,
        };
        let items = |name: &str| -> Vec<(automerge::Value<'_>, automerge::ObjId)> {
            doc.get_all(ROOT, name)
                .unwrap_or_default()
                .into_iter()
                .filter(|(value, _)| matches!(value, automerge::Value::Object(ObjType::List)))
                .flat_map(|(_, list)| {
                    (0..doc.length(&list))
                        .filter_map(|index| doc.get(&list, index).ok().flatten())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let mut writers = Writers::default();
        for (position, (_, item)) in items(key::CHECKINS).into_iter().enumerate() {
            let id = match doc.get(&item, key::ID) {
                Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                    ScalarValue::Str(text) => text.to_string(),
                    _ => format!("#{position}"),
                },
                _ => format!("#{position}"),
            };
            if let Some(actor) = actor_of(&item) {
                writers.check_ins.push((id, actor));
            }
        }
        for (_, item) in items(key::TRACK) {
            if let Some(actor) = actor_of(&item) {
                writers.track_batches.push(actor);
            }
        }
        writers
    }

    /// Reads the log. Never fails: what cannot be read is in `problems`.
    pub fn read(&self) -> PatrolRecord {
        let mut problems = Vec::new();
        let mut problem = |path: String, reason: String| problems.push(DocProblem { path, reason });
        let doc = &self.doc;
        let mut field = |name: &str| -> Option<String> {
            match hydrate_prop::<_, MaybeMissing<Option<String>>, _, _>(doc, ROOT, name) {
                Ok(MaybeMissing::Present(value)) => value,
                Ok(MaybeMissing::Missing) => None,
                Err(e) => {
                    problem(name.to_owned(), describe(&e));
                    None
                }
            }
        };
        let id = field(key::ID);
        let worker = field(key::WORKER);
        let role_text = field(key::ROLE);
        let team = field(key::TEAM);
        let date_text = field(key::DATE);
        let role = role_text.and_then(|r| match r.parse::<Role>() {
            Ok(role) => Some(role),
            Err(e) => {
                problem(key::ROLE.to_owned(), e.to_string());
                None
            }
        });
        let date = date_text.and_then(|d| match d.parse::<NaiveDate>() {
            Ok(date) => Some(date),
            Err(e) => {
                problem(key::DATE.to_owned(), e.to_string());
                None
            }
        });
        let mut checkins = Vec::new();
        let mut track = Vec::new();
        let mut cases_found = Vec::new();
        let mut reviews = Vec::new();
        for name in [key::CHECKINS, key::TRACK, key::CASES_FOUND, key::REVIEWS] {
            // Two devices of the worker that each started the day's log offline both
            // put these lists on the root: Automerge keeps both, one visible. Every one
            // is read, so neither phone's check-ins are lost (appends go to the visible
            // one; ids are unique, so nothing is counted twice).
            let values = doc.get_all(ROOT, name).unwrap_or_default();
            if values.is_empty() {
                problem(name.to_owned(), "missing".to_owned());
                continue;
            }
            let lists: Vec<ObjId> = values
                .into_iter()
                .filter_map(|(value, id)| match value {
                    automerge::Value::Object(ObjType::List) => Some(id),
                    _ => {
                        problem(name.to_owned(), "not a list".to_owned());
                        None
                    }
                })
                .collect();
            let several = lists.len() > 1;
            for (copy, list) in lists.iter().enumerate() {
                for index in 0..doc.length(list) {
                    let path = if several {
                        format!("{name}#{copy}/{index}")
                    } else {
                        format!("{name}/{index}")
                    };
                    let list = list.clone();
                    let item = match name {
                        key::CHECKINS => hydrate_prop::<_, StoredCheckIn, _, _>(doc, &list, index)
                            .map_err(|e| describe(&e))
                            .and_then(|s| s.parse())
                            .map(|c| checkins.push(c)),
                        key::REVIEWS => hydrate_prop::<_, StoredReview, _, _>(doc, &list, index)
                            .map_err(|e| describe(&e))
                            .and_then(|s| s.parse())
                            .map(|r| reviews.push(r)),
                        key::TRACK => match doc.get(&list, index) {
                            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                                ScalarValue::Bytes(bytes) => {
                                    decode_batch(bytes).map(|points| track.extend(points))
                                }
                                _ => Err("not a track batch".to_owned()),
                            },
                            _ => Err("not a track batch".to_owned()),
                        },
                        _ => hydrate_prop::<_, String, _, _>(doc, &list, index)
                            .map_err(|e| describe(&e))
                            .map(|id| cases_found.push(id)),
                    };
                    if let Err(reason) = item {
                        problem(path, reason);
                    }
                }
            }
        }
        dedup_by_id(&mut checkins, |c| c.id.clone());
        dedup_by_id(&mut reviews, |r| r.id.clone());
        dedup_by_id(&mut cases_found, Clone::clone);
        for unknown in doc.keys(ROOT).filter(|k| !key::ALL.contains(&k.as_str())) {
            problem(unknown, "unknown field (kept, not read)".to_owned());
        }
        let schema_version = match doc.get(ROOT, key::SCHEMA_VERSION) {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Uint(v) => *v,
                _ => 0,
            },
            _ => 0,
        };
        PatrolRecord {
            schema_version,
            id,
            worker,
            role,
            team,
            date,
            checkins,
            track,
            cases_found,
            reviews,
            problems,
        }
    }

    fn append<F>(&mut self, actor: &Actor, list: &str, f: F) -> Result<(), PatrolError>
    where
        F: FnOnce(
            &mut automerge::transaction::Transaction<'_>,
            ObjId,
            usize,
        ) -> Result<(), PatrolError>,
    {
        let version = self.read().schema_version;
        if version > SCHEMA_VERSION {
            return Err(PatrolError::NewerSchema { found: version });
        }
        let Some(list) = object_at(&self.doc, list, &self.doc.get_heads()) else {
            return Err(PatrolError::Invalid(format!(
                "the patrol log has no {list} list"
            )));
        };
        let mut fork = self.doc.fork().with_actor(actor_id(&actor.device)?);
        let heads = fork.get_heads();
        fork.transact(|tx| {
            let end = tx.length(&list);
            f(tx, list.clone(), end)
        })
        .map_err(|failure| failure.error)?;
        let changes: Vec<_> = fork.get_changes(&heads).into_iter().collect();
        self.doc = check_patrol_changes(&self.doc, &changes, actor)?;
        Ok(())
    }
}

/// Checks changes to a patrol log against the write rules for `writer`: the worker
/// creates the log (a field worker, claiming their own user, role and team) and
/// appends to `checkins`, `track` and `cases_found`; reviewers ([`reviews`]) append
/// reviews claiming themselves; nobody edits or deletes anything.
pub fn check_patrol_changes(
    base: &Automerge,
    changes: &[automerge::Change],
    writer: &Actor,
) -> Result<Automerge, WriteRefused> {
    judge_changes(base, changes, &writer.device, |candidate, effects| {
        let mut violations = Vec::new();
        for effect in effects {
            check_effect(candidate, effect, writer, &mut violations);
        }
        violations
    })
}

fn check_effect(
    doc: &Automerge,
    effect: &ChangeEffect,
    writer: &Actor,
    violations: &mut Vec<Violation>,
) {
    let deps = &effect.deps;
    let after = [effect.hash];
    let creating = string_at(doc, key::ID, deps).is_none();
    let worker = string_at(doc, key::WORKER, &after);
    let is_worker = worker.as_deref() == Some(writer.user.as_str());
    let mut refuse = |path: String, kind: ViolationKind| {
        push_unique(violations, Violation { path, kind });
    };
    if creating {
        if !writer.role.is_field_worker() {
            refuse(
                String::new(),
                ViolationKind::RoleMayNotWrite { role: writer.role },
            );
        }
        let claims = [
            ("worker", worker.as_deref() == Some(writer.user.as_str())),
            (
                "role",
                string_at(doc, key::ROLE, &after).as_deref() == Some(writer.role.as_str()),
            ),
            (
                "team",
                string_at(doc, key::TEAM, &after) == writer.team.as_ref().map(ToString::to_string),
            ),
        ];
        for (field, matches) in claims {
            if !matches {
                refuse(field.to_owned(), ViolationKind::ClaimMismatch { field });
            }
        }
    }
    // Insertions, from the patches: where they landed and what they added.
    for patch in &effect.patches {
        let automerge::patches::PatchAction::Insert { index, values } = &patch.action else {
            continue;
        };
        let (Some(root), path) = locate(patch) else {
            continue;
        };
        if creating || !key::ALL.contains(&root.as_str()) {
            continue;
        }
        let old_len = object_at(doc, &root, deps)
            .map(|old| doc.length_at(&old, deps))
            .unwrap_or(0);
        if *index < old_len {
            refuse(path, ViolationKind::AppendOnly);
            continue;
        }
        for (value, id, _) in values.iter() {
            if let Err(kind) = check_new_item(doc, &root, value, id, writer) {
                refuse(format!("{root}/{index}"), kind);
            }
        }
    }
    // Every operation on what existed before the change, visible or not.
    for write in &effect.existing_writes {
        let path = write.path.clone();
        let root = write.root.as_str();
        if !key::ALL.contains(&root) {
            refuse(path, ViolationKind::UnknownField);
            continue;
        }
        if creating {
            continue;
        }
        let list = key::WORKER_LISTS.contains(&root) || root == key::REVIEWS;
        let may_append = if root == key::REVIEWS {
            reviews(writer.role)
        } else {
            is_worker && key::WORKER_LISTS.contains(&root)
        };
        match write.depth {
            Depth::Element if write.insert && may_append => {}
            Depth::Element if write.insert => {
                refuse(path, ViolationKind::RoleMayNotWrite { role: writer.role });
            }
            _ if list => refuse(path, ViolationKind::AppendOnly),
            _ => refuse(path, ViolationKind::Immutable),
        }
    }
}

/// A new list item must be readable, and a review must claim its writer.
fn check_new_item(
    doc: &Automerge,
    list: &str,
    value: &automerge::Value<'_>,
    id: &ObjId,
    writer: &Actor,
) -> Result<(), ViolationKind> {
    let malformed = |reason: String| ViolationKind::Malformed(reason);
    match list {
        key::TRACK => match value {
            automerge::Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Bytes(bytes) => decode_batch(bytes).map(drop).map_err(malformed),
                _ => Err(malformed("not a track batch".to_owned())),
            },
            _ => Err(malformed("not a track batch".to_owned())),
        },
        key::CASES_FOUND => match value {
            automerge::Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Str(_)) => Ok(()),
            _ => Err(malformed("not a case id".to_owned())),
        },
        key::CHECKINS => {
            let stored: StoredCheckIn = autosurgeon::hydrate::Hydrate::hydrate_map(doc, id)
                .map_err(|e| malformed(describe(&e)))?;
            stored.parse().map(drop).map_err(malformed)
        }
        _ => {
            let stored: StoredReview = autosurgeon::hydrate::Hydrate::hydrate_map(doc, id)
                .map_err(|e| malformed(describe(&e)))?;
            let review = stored.parse().map_err(malformed)?;
            let claims = [
                ("user", review.reviewer.user == writer.user),
                ("role", review.reviewer.role == writer.role),
                ("team", review.reviewer.team == writer.team),
                ("scope", review.reviewer.scope == writer.scope),
                (
                    "device",
                    review.reviewer.device.eq_ignore_ascii_case(&writer.device),
                ),
            ];
            match claims.into_iter().find(|(_, ok)| !ok) {
                Some((field, _)) => Err(ViolationKind::ClaimMismatch { field }),
                None => Ok(()),
            }
        }
    }
}

/// Keeps the first of each id, in order (the same item read from two copies of a list).
fn dedup_by_id<T>(items: &mut Vec<T>, id: impl Fn(&T) -> String) {
    let mut seen = std::collections::HashSet::new();
    items.retain(|item| seen.insert(id(item)));
}
