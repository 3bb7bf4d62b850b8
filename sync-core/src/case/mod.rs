//! The case document (案卷): an Automerge document per case, edited by everyone who
//! works on it, often offline at the same time.
//!
//! # Layout (schema version 1)
//!
//! | key | type | who writes it |
//! |---|---|---|
//! | `schema_version` | uint | creation; [`CaseDocument::upgrade`] |
//! | `id`, `kind`, `reporter`, `created_at`, `source`, `source_ref` | scalars | creation only |
//! | `category`, `grid`, `address` | scalars (last writer wins) | reporter, command centre, supervisors |
//! | `location` | map `{lon, lat, accuracy_m}` (WGS-84), replaced whole | as above |
//! | `description` | Text (collaborative) | reporter, hotline, command centre, supervisors |
//! | `caller` | map `{name, phone, wants_reply}`, replaced whole | hotline, acceptor, supervisors |
//! | `photos` | list of maps (see [`Photo`]) | anyone in scope appends; only the adder removes |
//! | `timeline` | list of maps (see [`entry`]) | append only, each entry claiming its writer |
//!
//! Fields nobody edits together are scalars, which cost one operation each; a map
//! replaced whole (location, caller) can never mix the halves of two concurrent
//! edits. The status is not stored anywhere: [`fold`] derives it from the timeline.
//! Who may write which path is [`rules`], used both by the server on incoming
//! changes and by [`CaseDocument`]'s own edit methods before they write.
//!
//! Reading is tolerant: a missing key, a wrong type or an unknown key never makes a
//! document unreadable; [`CaseRecord::problems`] lists what was wrong.

pub mod automation;
pub mod duplicates;
pub mod entry;
pub mod fold;
pub mod rules;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod convergence_tests;

use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, transaction::Transactable};
use autosurgeon::{Hydrate, MaybeMissing, Reconcile, hydrate_prop, reconcile_prop};
use chrono::{DateTime, Utc};

use crate::catalog::{CategoryCode, Kind};
use crate::document::{DeviceIdError, InvalidPosition, actor_id, describe};
use crate::grid::GridCode;
use crate::role::{Actor, check_user_id};

pub use crate::document::{DocProblem, Position, Violation, ViolationKind, WriteRefused};

pub use entry::{Action, ActionFields, ActionName, EntryError, ReplyChannel, TimelineEntry};
pub use fold::{CaseView, IgnoredReason, Outcome, Status, StepRecord, WorkflowContext};

/// The schema version this code writes.
pub const SCHEMA_VERSION: u64 = 1;

/// The longest description, in characters (a page of text; photos carry the rest).
pub const MAX_DESCRIPTION_CHARS: usize = 4_000;
/// The longest address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 200;
/// The longest note of a timeline entry, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;

/// Refuses a text longer than `max` characters.
pub(crate) fn check_length(what: &str, text: &str, max: usize) -> Result<(), CaseError> {
    let length = text.chars().count();
    if length > max {
        return Err(CaseError::Invalid(format!(
            "{what} has {length} characters; the most is {max}"
        )));
    }
    Ok(())
}

/// Root keys of a case document.
pub(crate) mod key {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const ID: &str = "id";
    pub const KIND: &str = "kind";
    pub const CATEGORY: &str = "category";
    pub const LOCATION: &str = "location";
    pub const GRID: &str = "grid";
    pub const ADDRESS: &str = "address";
    pub const DESCRIPTION: &str = "description";
    pub const PHOTOS: &str = "photos";
    pub const SOURCE: &str = "source";
    pub const SOURCE_REF: &str = "source_ref";
    pub const REPORTER: &str = "reporter";
    pub const CALLER: &str = "caller";
    pub const CREATED_AT: &str = "created_at";
    pub const TIMELINE: &str = "timeline";

    /// Every root key of schema version 1.
    pub const ALL: [&str; 15] = [
        SCHEMA_VERSION,
        ID,
        KIND,
        CATEGORY,
        LOCATION,
        GRID,
        ADDRESS,
        DESCRIPTION,
        PHOTOS,
        SOURCE,
        SOURCE_REF,
        REPORTER,
        CALLER,
        CREATED_AT,
        TIMELINE,
    ];
}

/// Where a case came from (问题来源).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Found on patrol by a field worker (巡查发现).
    Patrol,
    /// The 12319 hotline (热线).
    Hotline,
    /// A citizen through Open311 or the public app (市民).
    Citizen,
    /// Video surveillance (视频监控).
    Video,
    /// Handed over from an upper level or another department (上级交办).
    Handover,
    /// Found by an assessment spot check (考核抽查) that the grid's staff had missed.
    SpotCheck,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 6] = [
        Source::Patrol,
        Source::Hotline,
        Source::Citizen,
        Source::Video,
        Source::Handover,
        Source::SpotCheck,
    ];

    /// The identifier stored in the document.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Patrol => "patrol",
            Source::Hotline => "hotline",
            Source::Citizen => "citizen",
            Source::Video => "video",
            Source::Handover => "handover",
            Source::SpotCheck => "spot_check",
        }
    }

    /// Chinese label.
    pub const fn name_zh(self) -> &'static str {
        match self {
            Source::Patrol => "巡查发现",
            Source::Hotline => "12319热线",
            Source::Citizen => "市民举报",
            Source::Video => "视频监控",
            Source::Handover => "上级交办",
            Source::SpotCheck => "考核抽查",
        }
    }

    /// The source named by its identifier ([`Source::as_str`]).
    pub fn parse(text: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What a photo shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhotoRole {
    /// The problem, before it is fixed (处置前).
    Before,
    /// The result (处置后).
    After,
    /// Anything else.
    Other,
}

impl PhotoRole {
    /// The identifier stored in the document.
    pub const fn as_str(self) -> &'static str {
        match self {
            PhotoRole::Before => "before",
            PhotoRole::After => "after",
            PhotoRole::Other => "other",
        }
    }

    fn parse(text: &str) -> Option<PhotoRole> {
        [PhotoRole::Before, PhotoRole::After, PhotoRole::Other]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// A photo of the case; the bytes travel separately, addressed by their hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Photo {
    /// SHA-256 of the uploaded bytes, 64 lowercase hex digits.
    pub hash: String,
    /// Before, after, other.
    pub role: PhotoRole,
    /// When it was taken (from the camera), if known.
    pub taken_at: Option<DateTime<Utc>>,
    /// Where it was taken, if known.
    pub position: Option<Position>,
    /// The user who added it: only they may remove it.
    pub added_by: String,
    /// When it was added.
    pub added_at: DateTime<Utc>,
}

/// The stored shape of a photo: flat scalars.
#[derive(Debug, Clone, Default, PartialEq, Hydrate, Reconcile)]
pub(crate) struct StoredPhoto {
    #[autosurgeon(missing = "Option::default")]
    hash: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    role: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    taken_at: Option<i64>,
    #[autosurgeon(missing = "Option::default")]
    lon: Option<f64>,
    #[autosurgeon(missing = "Option::default")]
    lat: Option<f64>,
    #[autosurgeon(missing = "Option::default")]
    accuracy_m: Option<f64>,
    #[autosurgeon(missing = "Option::default")]
    added_by: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    added_at: Option<i64>,
}

impl StoredPhoto {
    fn from_photo(photo: &Photo) -> StoredPhoto {
        StoredPhoto {
            hash: Some(photo.hash.clone()),
            role: Some(photo.role.as_str().to_owned()),
            taken_at: photo.taken_at.map(|t| t.timestamp_millis()),
            lon: photo.position.map(|p| p.lon),
            lat: photo.position.map(|p| p.lat),
            accuracy_m: photo.position.and_then(|p| p.accuracy_m),
            added_by: Some(photo.added_by.clone()),
            added_at: Some(photo.added_at.timestamp_millis()),
        }
    }

    fn parse(&self) -> Result<Photo, String> {
        let hash = self.hash.clone().ok_or("missing hash")?;
        check_hash(&hash).map_err(|e| e.to_string())?;
        let role = self
            .role
            .as_deref()
            .and_then(PhotoRole::parse)
            .ok_or("missing or unknown role")?;
        let added_by = self.added_by.clone().ok_or("missing added_by")?;
        let added_at = self
            .added_at
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .ok_or("missing or invalid added_at")?;
        let position = match (self.lon, self.lat) {
            (Some(lon), Some(lat)) => Some(Position {
                lon,
                lat,
                accuracy_m: self.accuracy_m,
            }),
            _ => None,
        };
        Ok(Photo {
            hash,
            role,
            taken_at: self
                .taken_at
                .and_then(DateTime::<Utc>::from_timestamp_millis),
            position,
            added_by,
            added_at,
        })
    }
}

fn check_hash(hash: &str) -> Result<(), CaseError> {
    if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(CaseError::Invalid(format!(
            "photo hash {hash:?} is not 64 lowercase hex digits (SHA-256)"
        )))
    }
}

/// The hotline caller (来电人), for the reply. Personal data: only the hotline,
/// the command centre and supervisors write it.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile)]
pub struct Caller {
    /// Name as given.
    #[autosurgeon(missing = "Option::default")]
    pub name: Option<String>,
    /// Phone number as given.
    #[autosurgeon(missing = "Option::default")]
    pub phone: Option<String>,
    /// Whether the caller wants to be told the result (回访).
    pub wants_reply: bool,
}

/// What a new case starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    /// The case id (the document's identity), e.g. a UUID v7.
    pub id: String,
    /// The category; its kind is the case's kind.
    pub category: CategoryCode,
    /// Where the problem is, as reported.
    pub location: Position,
    /// The unit grid the location falls in, if resolved.
    pub grid: Option<GridCode>,
    /// Address text.
    pub address: String,
    /// What is wrong.
    pub description: String,
    /// Where the case came from.
    pub source: Source,
    /// The id in the source system (hotline ticket, Open311 request id).
    pub source_ref: Option<String>,
    /// The hotline caller.
    pub caller: Option<Caller>,
}

/// The fields of a case as read from its document, with what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRecord {
    /// Schema version the document says it has (0 when absent: a pre-release document).
    pub schema_version: u64,
    /// Case id.
    pub id: Option<String>,
    /// Component or event.
    pub kind: Option<Kind>,
    /// Category.
    pub category: Option<CategoryCode>,
    /// Location as reported.
    pub location: Option<Position>,
    /// Resolved unit grid.
    pub grid: Option<GridCode>,
    /// Address text.
    pub address: String,
    /// Description text.
    pub description: String,
    /// Photos that could be read.
    pub photos: Vec<Photo>,
    /// Source.
    pub source: Option<Source>,
    /// Id in the source system.
    pub source_ref: Option<String>,
    /// The reporting user.
    pub reporter: Option<String>,
    /// The hotline caller.
    pub caller: Option<Caller>,
    /// When the document was created.
    pub created_at: Option<DateTime<Utc>>,
    /// What was missing, malformed or unknown.
    pub problems: Vec<DocProblem>,
}

/// Why a case document could not be loaded or edited.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CaseError {
    /// The bytes are not an Automerge document.
    #[error("not an Automerge document: {0}")]
    Load(String),
    /// Automerge refused an operation (a bug or a corrupt document).
    #[error("automerge: {0}")]
    Automerge(String),
    /// An argument is not valid (a bad hash, a position out of range, …).
    #[error("{0}")]
    Invalid(String),
    /// A position out of range.
    #[error(transparent)]
    Position(#[from] InvalidPosition),
    /// An actor's device id is not an Automerge actor id.
    #[error(transparent)]
    Device(#[from] DeviceIdError),
    /// The document was written by a newer version of wangge; update the app.
    #[error("case document has schema version {found}; this version writes {SCHEMA_VERSION}")]
    NewerSchema {
        /// The version found.
        found: u64,
    },
    /// The workflow does not allow this action now.
    #[error("{action} refused: {reason}")]
    Refused {
        /// The action.
        action: ActionName,
        /// Why.
        reason: IgnoredReason,
    },
    /// The edit breaks the write rules for this actor.
    #[error(transparent)]
    WriteRefused(#[from] WriteRefused),
}

fn am_error(e: impl std::fmt::Display) -> CaseError {
    CaseError::Automerge(e.to_string())
}

/// A case document: an Automerge document with the layout above.
#[derive(Debug, Clone)]
pub struct CaseDocument {
    doc: Automerge,
}

impl CaseDocument {
    /// Creates a case reported by `reporter`: the fields and the first timeline
    /// entry (`report`, with id `entry_id`), as one change by the reporter's device.
    pub fn create(
        new: &NewCase,
        reporter: &Actor,
        entry_id: &str,
        at: DateTime<Utc>,
    ) -> Result<CaseDocument, CaseError> {
        if new.id.is_empty() || new.id.len() > 64 {
            return Err(CaseError::Invalid("case id must be 1-64 bytes".into()));
        }
        check_user_id(&reporter.user).map_err(|e| CaseError::Invalid(e.to_string()))?;
        new.location.check()?;
        check_length("the description", &new.description, MAX_DESCRIPTION_CHARS)?;
        check_length("the address", &new.address, MAX_ADDRESS_CHARS)?;
        let report = TimelineEntry {
            id: entry_id.to_owned(),
            action: Action::Report,
            at,
            actor: reporter.clone(),
            note: None,
            grid: new.grid,
        };
        let actor = actor_id(&reporter.device)?;
        let mut fresh = Automerge::new().with_actor(actor);
        fresh
            .transact::<_, _, CaseError>(|tx| {
                let version = i64::try_from(SCHEMA_VERSION).unwrap_or(i64::MAX);
                tx.put(
                    ROOT,
                    key::SCHEMA_VERSION,
                    automerge::ScalarValue::Uint(version as u64),
                )
                .map_err(am_error)?;
                tx.put(ROOT, key::ID, new.id.as_str()).map_err(am_error)?;
                tx.put(ROOT, key::KIND, new.category.kind().as_str())
                    .map_err(am_error)?;
                tx.put(ROOT, key::CATEGORY, new.category.to_string())
                    .map_err(am_error)?;
                reconcile_prop(tx, ROOT, key::LOCATION, new.location).map_err(am_error)?;
                if let Some(grid) = new.grid {
                    tx.put(ROOT, key::GRID, grid.to_string())
                        .map_err(am_error)?;
                }
                tx.put(ROOT, key::ADDRESS, new.address.as_str())
                    .map_err(am_error)?;
                let text = tx
                    .put_object(ROOT, key::DESCRIPTION, ObjType::Text)
                    .map_err(am_error)?;
                tx.splice_text(&text, 0, 0, &new.description)
                    .map_err(am_error)?;
                tx.put_object(ROOT, key::PHOTOS, ObjType::List)
                    .map_err(am_error)?;
                tx.put(ROOT, key::SOURCE, new.source.as_str())
                    .map_err(am_error)?;
                if let Some(source_ref) = &new.source_ref {
                    tx.put(ROOT, key::SOURCE_REF, source_ref.as_str())
                        .map_err(am_error)?;
                }
                tx.put(ROOT, key::REPORTER, reporter.user.as_str())
                    .map_err(am_error)?;
                if let Some(caller) = &new.caller {
                    reconcile_prop(tx, ROOT, key::CALLER, caller).map_err(am_error)?;
                }
                tx.put(ROOT, key::CREATED_AT, at.timestamp_millis())
                    .map_err(am_error)?;
                let timeline = tx
                    .put_object(ROOT, key::TIMELINE, ObjType::List)
                    .map_err(am_error)?;
                autosurgeon::reconcile_insert(
                    tx,
                    timeline,
                    0,
                    entry::StoredEntry::from_entry(&report),
                )
                .map_err(am_error)?;
                Ok(())
            })
            .map_err(|failure| failure.error)?;
        let empty = Automerge::new();
        let changes: Vec<_> = fresh.get_changes(&[]).into_iter().collect();
        rules::check_case_changes(&empty, &changes, reporter)?;
        Ok(CaseDocument { doc: fresh })
    }

    /// Loads a saved document (full or with incremental changes appended).
    pub fn load(bytes: &[u8]) -> Result<CaseDocument, CaseError> {
        let doc = Automerge::load(bytes).map_err(|e| CaseError::Load(e.to_string()))?;
        Ok(CaseDocument { doc })
    }

    /// Wraps an Automerge document (for the sync layer).
    pub fn from_automerge(doc: Automerge) -> CaseDocument {
        CaseDocument { doc }
    }

    /// The Automerge document, for sync and storage.
    pub fn automerge(&self) -> &Automerge {
        &self.doc
    }

    /// The Automerge document, given up (to store it).
    pub fn into_automerge(self) -> Automerge {
        self.doc
    }

    /// The Automerge document, mutably: for applying changes that came through
    /// sync after [`rules::check_case_changes`] accepted them.
    pub fn automerge_mut(&mut self) -> &mut Automerge {
        &mut self.doc
    }

    /// The compacted document.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// Merges another replica into this one.
    pub fn merge(&mut self, other: &CaseDocument) -> Result<(), CaseError> {
        let mut other = other.doc.clone();
        self.doc.merge(&mut other).map_err(am_error)?;
        Ok(())
    }

    /// Whether the category or the location (what routing decides by) differ from the
    /// document as it was at `heads` (empty: before it existed). A location is replaced
    /// whole, so a new location object is a change; a category written again with the
    /// same value is not.
    pub fn routing_changed_since(&self, heads: &[automerge::ChangeHash]) -> bool {
        let category = |at: Option<&[automerge::ChangeHash]>| {
            let value = match at {
                Some(heads) => self.doc.get_at(ROOT, key::CATEGORY, heads),
                None => self.doc.get(ROOT, key::CATEGORY),
            };
            value.ok().flatten().map(|(value, _)| value.to_string())
        };
        let location = |at: Option<&[automerge::ChangeHash]>| {
            let value = match at {
                Some(heads) => self.doc.get_at(ROOT, key::LOCATION, heads),
                None => self.doc.get(ROOT, key::LOCATION),
            };
            value.ok().flatten().map(|(_, id)| id)
        };
        category(Some(heads)) != category(None) || location(Some(heads)) != location(None)
    }

    /// The schema version the document declares (0 when it declares none).
    pub fn schema_version(&self) -> u64 {
        match self.doc.get(ROOT, key::SCHEMA_VERSION) {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                automerge::ScalarValue::Uint(v) => *v,
                automerge::ScalarValue::Int(v) => u64::try_from(*v).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        }
    }

    /// Reads the fields. Never fails: what cannot be read is in `problems`.
    pub fn read(&self) -> CaseRecord {
        let mut reader = Reader {
            doc: &self.doc,
            problems: Vec::new(),
        };
        let schema_version = self.schema_version();
        let id: Option<String> = reader.field(key::ID);
        let kind = reader
            .field::<String>(key::KIND)
            .and_then(|k| match k.as_str() {
                "component" => Some(Kind::Component),
                "event" => Some(Kind::Event),
                other => reader.problem(key::KIND, format!("unknown kind {other:?}")),
            });
        let category =
            reader
                .field::<String>(key::CATEGORY)
                .and_then(|c| match c.parse::<CategoryCode>() {
                    Ok(code) => Some(code),
                    Err(e) => reader.problem(key::CATEGORY, e.to_string()),
                });
        if let (Some(kind), Some(category)) = (kind, category)
            && kind != category.kind()
        {
            reader.problem::<()>(
                key::KIND,
                format!("kind {kind} does not match category {category}"),
            );
        }
        let location: Option<Position> = reader.field(key::LOCATION);
        let grid = reader
            .field::<String>(key::GRID)
            .and_then(|g| match g.parse::<GridCode>() {
                Ok(code) => Some(code),
                Err(e) => reader.problem(key::GRID, e.to_string()),
            });
        let address: String = reader.field(key::ADDRESS).unwrap_or_default();
        let description = reader.description();
        let photos = reader.photos();
        let source = reader
            .field::<String>(key::SOURCE)
            .and_then(|s| match Source::parse(&s) {
                Some(source) => Some(source),
                None => reader.problem(key::SOURCE, format!("unknown source {s:?}")),
            });
        let source_ref: Option<String> = reader.field(key::SOURCE_REF);
        let reporter: Option<String> = reader.field(key::REPORTER);
        let caller: Option<Caller> = reader.field(key::CALLER);
        let created_at = reader
            .field::<i64>(key::CREATED_AT)
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        for required in [key::ID, key::CATEGORY, key::LOCATION, key::TIMELINE] {
            if !matches!(self.doc.get(ROOT, required), Ok(Some(_))) {
                reader.problem::<()>(required, "missing".to_owned());
            }
        }
        for unknown in self
            .doc
            .keys(ROOT)
            .filter(|k| !key::ALL.contains(&k.as_str()))
        {
            reader.problem::<()>(&unknown, "unknown field (kept, not read)".to_owned());
        }
        CaseRecord {
            schema_version,
            id,
            kind,
            category,
            location,
            grid,
            address,
            description,
            photos,
            source,
            source_ref,
            reporter,
            caller,
            created_at,
            problems: reader.problems,
        }
    }

    /// Folds the timeline into the case's state (see [`fold`]).
    pub fn fold(&self, context: &WorkflowContext<'_>) -> CaseView {
        fold::fold(self, context)
    }

    /// Appends an action by `actor`, after checking it against the workflow as this
    /// replica folds it (the same check every replica makes) and against the
    /// write rules. A refused action writes nothing.
    pub fn act(
        &mut self,
        context: &WorkflowContext<'_>,
        actor: &Actor,
        entry_id: &str,
        action: Action,
        at: DateTime<Utc>,
        note: Option<String>,
    ) -> Result<(), CaseError> {
        self.act_all(
            context,
            actor,
            vec![(entry_id.to_owned(), action, note)],
            at,
        )
    }

    /// Takes actions one after the other as `actor`, all at `at` (entry id, action,
    /// note each), in one change: each is checked against the case as the ones before
    /// it leave it, and none is written unless all apply. The server's accept,
    /// register and dispatch cost one fold, one change and one check of the write
    /// rules this way, not three.
    pub fn act_all(
        &mut self,
        context: &WorkflowContext<'_>,
        actor: &Actor,
        steps: Vec<(String, Action, Option<String>)>,
        at: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        self.refuse_newer()?;
        // One fold gives the checks and the grid the entries act on.
        let mut view = self.fold(context);
        let grid = view.record.grid;
        let mut entries = Vec::with_capacity(steps.len());
        for (id, action, note) in steps {
            if let Some(note) = &note {
                check_length("the note", note, MAX_NOTE_CHARS)?;
            }
            let entry = TimelineEntry {
                id,
                action,
                at,
                actor: actor.clone(),
                note,
                grid,
            };
            view.apply_checked(&entry, context)
                .map_err(|reason| CaseError::Refused {
                    action: entry.action.name(),
                    reason,
                })?;
            entries.push(entry);
        }
        if entries.is_empty() {
            return Ok(());
        }
        self.write_entries(actor, &entries)
    }

    /// Appends an entry without the workflow check (the write rules still apply):
    /// how a test puts an action the fold must ignore into a document.
    #[cfg(test)]
    pub(crate) fn append_entry(&mut self, entry: &TimelineEntry) -> Result<(), CaseError> {
        let mut entry = entry.clone();
        entry.grid = self.read().grid;
        self.write_entries(&entry.actor.clone(), &[entry])
    }

    fn write_entries(&mut self, actor: &Actor, entries: &[TimelineEntry]) -> Result<(), CaseError> {
        let timeline = self.object(key::TIMELINE)?;
        self.edit(actor, |tx| {
            for entry in entries {
                let end = tx.length(&timeline);
                let stored = entry::StoredEntry::from_entry(entry);
                autosurgeon::reconcile_insert(tx, timeline.clone(), end, &stored)
                    .map_err(am_error)?;
            }
            Ok(())
        })
    }

    /// Adds a photo, by `actor`.
    pub fn add_photo(&mut self, actor: &Actor, photo: &Photo) -> Result<(), CaseError> {
        self.refuse_newer()?;
        check_hash(&photo.hash)?;
        if let Some(position) = &photo.position {
            position.check()?;
        }
        let photos = self.object(key::PHOTOS)?;
        let stored = StoredPhoto::from_photo(photo);
        self.edit(actor, |tx| {
            let end = tx.length(&photos);
            autosurgeon::reconcile_insert(tx, photos.clone(), end, &stored).map_err(am_error)
        })
    }

    /// Removes the photos with this hash that `actor` added. Returns how many.
    pub fn remove_photo(&mut self, actor: &Actor, hash: &str) -> Result<usize, CaseError> {
        self.refuse_newer()?;
        let photos = self.object(key::PHOTOS)?;
        let mut removed = 0;
        self.edit(actor, |tx| {
            // From the end, so earlier indices stay valid.
            for index in (0..tx.length(&photos)).rev() {
                let stored: StoredPhoto = hydrate_prop(tx, &photos, index).unwrap_or_default();
                if stored.hash.as_deref() == Some(hash)
                    && stored.added_by.as_deref() == Some(actor.user.as_str())
                {
                    tx.delete(&photos, index).map_err(am_error)?;
                    removed += 1;
                }
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// Replaces the description with `text`; Automerge records the difference as
    /// character edits, so a concurrent edit elsewhere in the text survives.
    pub fn set_description(&mut self, actor: &Actor, text: &str) -> Result<(), CaseError> {
        check_length("the description", text, MAX_DESCRIPTION_CHARS)?;
        self.refuse_newer()?;
        let description = self.object(key::DESCRIPTION)?;
        self.edit(actor, |tx| {
            tx.update_text(&description, text).map_err(am_error)
        })
    }

    /// Reclassifies the case; the kind cannot change.
    pub fn set_category(&mut self, actor: &Actor, category: CategoryCode) -> Result<(), CaseError> {
        self.refuse_newer()?;
        if let Some(kind) = self.read().kind
            && kind != category.kind()
        {
            return Err(CaseError::Invalid(format!(
                "category {category} is a {}, the case is a {kind}",
                category.kind()
            )));
        }
        self.edit(actor, |tx| {
            tx.put(ROOT, key::CATEGORY, category.to_string())
                .map_err(am_error)
        })
    }

    /// Corrects the location and the grid it resolves to.
    pub fn set_location(
        &mut self,
        actor: &Actor,
        location: Position,
        grid: Option<GridCode>,
    ) -> Result<(), CaseError> {
        self.refuse_newer()?;
        location.check()?;
        self.edit(actor, |tx| {
            // A fresh map, replaced whole: two concurrent corrections never mix.
            tx.put_object(ROOT, key::LOCATION, ObjType::Map)
                .map_err(am_error)?;
            reconcile_prop(tx, ROOT, key::LOCATION, location).map_err(am_error)?;
            match grid {
                Some(grid) => tx.put(ROOT, key::GRID, grid.to_string()),
                None => tx.delete(ROOT, key::GRID),
            }
            .map_err(am_error)
        })
    }

    /// Takes the unit grid away, leaving the location as it is: the server does so
    /// with a grid it cannot check against a location.
    pub fn clear_grid(&mut self, actor: &Actor) -> Result<(), CaseError> {
        self.refuse_newer()?;
        self.edit(actor, |tx| tx.delete(ROOT, key::GRID).map_err(am_error))
    }

    /// Sets the address text.
    pub fn set_address(&mut self, actor: &Actor, address: &str) -> Result<(), CaseError> {
        check_length("the address", address, MAX_ADDRESS_CHARS)?;
        self.refuse_newer()?;
        self.edit(actor, |tx| {
            tx.put(ROOT, key::ADDRESS, address).map_err(am_error)
        })
    }

    /// Sets the hotline caller, replaced whole.
    pub fn set_caller(&mut self, actor: &Actor, caller: &Caller) -> Result<(), CaseError> {
        self.refuse_newer()?;
        self.edit(actor, |tx| {
            tx.put_object(ROOT, key::CALLER, ObjType::Map)
                .map_err(am_error)?;
            reconcile_prop(tx, ROOT, key::CALLER, caller).map_err(am_error)
        })
    }

    /// Brings an older document to [`SCHEMA_VERSION`]; returns whether it changed.
    ///
    /// Version 0 (before release) kept the description as a plain string. Only the
    /// server upgrades (as [`crate::role::Role::Server`]), once, when it loads a
    /// document, so two replicas never race to convert the same field.
    pub fn upgrade(&mut self, server: &Actor) -> Result<bool, CaseError> {
        let version = self.schema_version();
        if version > SCHEMA_VERSION {
            return Err(CaseError::NewerSchema { found: version });
        }
        if version == SCHEMA_VERSION {
            return Ok(false);
        }
        let description = self.read().description;
        self.edit(server, |tx| {
            let text = tx
                .put_object(ROOT, key::DESCRIPTION, ObjType::Text)
                .map_err(am_error)?;
            tx.splice_text(&text, 0, 0, &description)
                .map_err(am_error)?;
            tx.put(
                ROOT,
                key::SCHEMA_VERSION,
                automerge::ScalarValue::Uint(SCHEMA_VERSION),
            )
            .map_err(am_error)
        })?;
        Ok(true)
    }

    fn refuse_newer(&self) -> Result<(), CaseError> {
        match self.schema_version() {
            found if found > SCHEMA_VERSION => Err(CaseError::NewerSchema { found }),
            _ => Ok(()),
        }
    }

    fn object(&self, name: &str) -> Result<ObjId, CaseError> {
        match self.doc.get(ROOT, name) {
            Ok(Some((automerge::Value::Object(_), id))) => Ok(id),
            _ => Err(CaseError::Invalid(format!(
                "the case document has no {name} object"
            ))),
        }
    }

    /// Makes one change as `actor`'s device on a fork, checks it with the same
    /// write rules the server applies, and only then applies it here.
    fn edit<F>(&mut self, actor: &Actor, f: F) -> Result<(), CaseError>
    where
        F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), CaseError>,
    {
        let device = actor_id(&actor.device)?;
        let mut fork = self.doc.fork().with_actor(device);
        let heads = fork.get_heads();
        fork.transact(f).map_err(|failure| failure.error)?;
        let changes: Vec<_> = fork.get_changes(&heads).into_iter().collect();
        // The checked copy is the document with the changes applied.
        self.doc = rules::check_case_changes(&self.doc, &changes, actor)?;
        Ok(())
    }
}

/// Tolerant typed reads of root fields, collecting problems.
struct Reader<'a> {
    doc: &'a Automerge,
    problems: Vec<DocProblem>,
}

impl Reader<'_> {
    fn problem<T>(&mut self, path: &str, reason: String) -> Option<T> {
        self.problems.push(DocProblem {
            path: path.to_owned(),
            reason,
        });
        None
    }

    fn field<T: Hydrate>(&mut self, name: &str) -> Option<T> {
        match hydrate_prop::<_, MaybeMissing<Option<T>>, _, _>(self.doc, ROOT, name) {
            Ok(MaybeMissing::Present(value)) => value,
            Ok(MaybeMissing::Missing) => None,
            Err(e) => self.problem(name, describe(&e)),
        }
    }

    /// Text in version 1, a plain string in version 0.
    fn description(&mut self) -> String {
        match self.doc.get(ROOT, key::DESCRIPTION) {
            Ok(Some((automerge::Value::Object(ObjType::Text), id))) => {
                self.doc.text(&id).unwrap_or_default()
            }
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                automerge::ScalarValue::Str(text) => text.to_string(),
                _ => self
                    .problem(key::DESCRIPTION, "not text".to_owned())
                    .unwrap_or_default(),
            },
            Ok(None) => String::new(),
            _ => self
                .problem(key::DESCRIPTION, "not text".to_owned())
                .unwrap_or_default(),
        }
    }

    fn photos(&mut self) -> Vec<Photo> {
        let Ok(Some((automerge::Value::Object(ObjType::List), list))) =
            self.doc.get(ROOT, key::PHOTOS)
        else {
            if matches!(self.doc.get(ROOT, key::PHOTOS), Ok(Some(_))) {
                self.problem::<()>(key::PHOTOS, "not a list".to_owned());
            }
            return Vec::new();
        };
        let mut photos = Vec::new();
        for index in 0..self.doc.length(&list) {
            let path = format!("{}/{index}", key::PHOTOS);
            match hydrate_prop::<_, StoredPhoto, _, _>(self.doc, &list, index) {
                Ok(stored) => match stored.parse() {
                    Ok(photo) => photos.push(photo),
                    Err(reason) => {
                        self.problem::<()>(&path, reason);
                    }
                },
                Err(e) => {
                    self.problem::<()>(&path, describe(&e));
                }
            }
        }
        photos
    }
}
