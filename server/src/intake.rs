//! Intake (受理): cases the server creates on someone's behalf — a 12319 hotline
//! operator or the command centre's acceptor taking a call, or a citizen's app through
//! Open311. No HTTP here: `api/intake.rs` and the Open311 routes call [`create`].
//!
//! A case taken in is the same Automerge case document a phone creates: written by a
//! fresh actor of the server's own, its `report` entry claiming the operator (or the
//! server, for Open311), checked by the same write rules (`CaseDocument::create`),
//! located, routed and dispatched by the same `case::automation`, stored and derived by
//! the same `document_write`, announced by the same push. The caller's name, phone and
//! e-mail never enter the document: they are a `case_contacts` row, shown only to the
//! roles that reply to callers ([`sees_callers`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use wangge_sync_core::case::automation::Automation;
use wangge_sync_core::case::{
    CaseDocument, CaseError, MAX_ADDRESS_CHARS, MAX_DESCRIPTION_CHARS, NewCase, Photo, PhotoRole,
    Position, Source, duplicates,
};
use wangge_sync_core::catalog::CategoryCode;
use wangge_sync_core::geo::{Crs, LonLat};
use wangge_sync_core::grid::GridCode;
use wangge_sync_core::ownership::Posting;
use wangge_sync_core::role::{Actor, Role};
use wangge_sync_core::sync::server::{DocWrite, Merged, Written};
use wangge_sync_core::sync::{DocKind, DocMeta};

use crate::cases::{CaseRules, Materializer, postings_of, server_actor};
use crate::push::PushHub;
use crate::store::cases::CaseRow;
use crate::store::intake::{ContactRow, NearQuery};
use crate::store::{Store, StoreError};

/// The longest name, phone number, e-mail address or ticket number kept.
pub const MAX_CONTACT_CHARS: usize = 120;

/// The most possible duplicates listed for one case.
pub const MAX_DUPLICATES: i64 = 20;

/// The caller, as given. Personal data: kept on the server only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// Name.
    pub name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Whether the caller wants to be told the result (回访).
    pub wants_reply: bool,
}

/// A position as given, in the datum the caller used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Longitude.
    pub lon: f64,
    /// Latitude.
    pub lat: f64,
    /// WGS-84 (GPS), GCJ-02 (Chinese maps) or BD-09 (Baidu).
    pub crs: Crs,
}

/// A problem reported by a caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Intake {
    /// `Hotline`, `Citizen`, or `Handover` (an upper level's or a department's).
    pub source: Source,
    /// The category code, e.g. `E0102`.
    pub category: String,
    /// What is wrong.
    pub description: String,
    /// The address as described.
    pub address: String,
    /// Where, if the caller could say.
    pub point: Option<Point>,
    /// The unit grid, if the operator named it.
    pub grid: Option<String>,
    /// SHA-256 of photos already uploaded (`PATCH /v1/blobs/{sha256}`).
    pub photos: Vec<String>,
    /// The caller.
    pub contact: Contact,
    /// The hotline ticket number (工单号) or the Open311 token.
    pub source_ref: Option<String>,
}

/// Who takes the case in.
#[derive(Debug, Clone, Copy)]
pub enum Reporter<'a> {
    /// A signed-in user (hotline operator, acceptor, shift lead, supervisor).
    User(&'a Actor),
    /// A citizen's app through Open311, by the name of its API key.
    Open311 {
        /// The API key's name.
        key_name: &'a str,
    },
}

/// An open case near a new one, of the same category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Duplicate {
    /// The other case.
    pub id: String,
    /// Its status.
    pub status: Option<String>,
    /// Its summary.
    pub summary: String,
    /// Its address.
    pub address: String,
    /// How far apart, metres.
    pub distance_m: f64,
    /// When it was reported (ms).
    pub reported_at: Option<i64>,
}

/// What [`create`] made.
#[derive(Debug, Clone)]
pub struct Created {
    /// The case id.
    pub id: String,
    /// Its row after the server's automation (located, routed, maybe dispatched).
    pub row: CaseRow,
    /// Open cases of the same category nearby.
    pub duplicates: Vec<Duplicate>,
}

/// Why a case was not taken in. Nothing is stored when any of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The role may not take cases in.
    #[error("a {} ({}) may not take cases in", .0.as_str(), .0.name_zh())]
    Forbidden(Role),
    /// The category is not in the catalogue.
    #[error("unknown category {0:?}")]
    UnknownCategory(String),
    /// Neither a position nor a grid.
    #[error("a location is needed: a point (lon, lat, crs) or a unit-grid code")]
    NoLocation,
    /// The position is in no unit grid and no grid was named.
    #[error(
        "the point ({lon}, {lat}) is outside every unit grid; give the unit-grid code the caller described"
    )]
    OutsideGrids {
        /// Longitude as given.
        lon: f64,
        /// Latitude as given.
        lat: f64,
    },
    /// The named grid does not exist.
    #[error("no unit grid {0}")]
    UnknownGrid(String),
    /// A field is not valid (named in the message).
    #[error("{0}")]
    Invalid(String),
    /// A photo is not an accepted upload.
    #[error("photo {0} has not been uploaded (PATCH /v1/blobs/{0} first)")]
    PhotoNotUploaded(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn optional_text(field: &str, value: Option<String>) -> Result<Option<String>, IntakeError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_CONTACT_CHARS || value.chars().any(char::is_control) {
        return Err(IntakeError::Invalid(format!(
            "{field}: at most {MAX_CONTACT_CHARS} characters, no control characters"
        )));
    }
    Ok(Some(value))
}

/// The location checked and resolved: the WGS-84 position the document stores and
/// the grid the operator's claim or the server's grids give.
fn resolve_location(
    rules: &CaseRules,
    point: Option<Point>,
    grid: Option<&str>,
) -> Result<(Position, Option<GridCode>), IntakeError> {
    let claimed = match grid {
        Some(code) => {
            let code: GridCode = code
                .parse()
                .map_err(|e| IntakeError::Invalid(format!("grid: {e}")))?;
            if let Some(grids) = &rules.grids
                && grids.describe(code).is_none()
            {
                return Err(IntakeError::UnknownGrid(code.to_string()));
            }
            Some(code)
        }
        None => None,
    };
    let position = match point {
        Some(p) => {
            let given =
                LonLat::new(p.lon, p.lat).map_err(|e| IntakeError::Invalid(e.to_string()))?;
            Some((given, p.crs))
        }
        None => None,
    };
    match (position, claimed) {
        (None, None) => Err(IntakeError::NoLocation),
        (Some((given, crs)), claimed) => {
            let wgs84 = given.to_wgs84(crs);
            let located = rules.grids.as_ref().map(|g| g.locate(given, crs));
            let grid = match located {
                // The server's grids decide; a named grid stands only for a point
                // outside all of them (automation keeps it, as the operator's claim).
                Some(Some(found)) => Some(found),
                Some(None) if claimed.is_some() => claimed,
                Some(None) => {
                    return Err(IntakeError::OutsideGrids {
                        lon: given.lon,
                        lat: given.lat,
                    });
                }
                None => claimed,
            };
            Ok((position_of(wgs84), grid))
        }
        (None, Some(code)) => {
            let Some(grids) = &rules.grids else {
                return Err(IntakeError::Invalid(
                    "no grids are imported: give a point (lon, lat, crs)".into(),
                ));
            };
            let inside = grids
                .interior_point(code)
                .ok_or_else(|| IntakeError::UnknownGrid(code.to_string()))?;
            Ok((position_of(inside.to_wgs84(Crs::Gcj02)), Some(code)))
        }
    }
}

fn position_of(p: LonLat) -> Position {
    Position {
        lon: p.lon,
        lat: p.lat,
        accuracy_m: None,
    }
}

/// Takes a case in: checks, builds the case document as `reporter`, lets the server's
/// automation locate, route and dispatch it, stores the caller and the document,
/// announces it, and lists possible duplicates. The case's id is a fresh UUID v7.
pub async fn create(
    store: &Arc<dyn Store>,
    push: &PushHub,
    rules: &CaseRules,
    reporter: Reporter<'_>,
    intake: Intake,
    now: DateTime<Utc>,
) -> Result<Created, IntakeError> {
    let id = uuid::Uuid::now_v7().to_string();
    create_with_id(store, push, rules, reporter, intake, id, now).await
}

/// [`create`] under the case id `id`, which no stored document may have (`wangge demo`
/// gives ids made from its seed, so that a seed always makes the same cases).
pub async fn create_with_id(
    store: &Arc<dyn Store>,
    push: &PushHub,
    rules: &CaseRules,
    reporter: Reporter<'_>,
    intake: Intake,
    id: String,
    now: DateTime<Utc>,
) -> Result<Created, IntakeError> {
    let actor = match reporter {
        Reporter::User(user) => {
            // The roles that answer callers take their calls (all of them may report
            // in sync-core's workflow; the administrator may not).
            if !user.role.answers_callers() {
                return Err(IntakeError::Forbidden(user.role));
            }
            // The operator's claim, written by a fresh actor of the server's own: the
            // operator's devices never write this document's first change.
            Actor {
                device: crate::auth::new_actor_id(),
                ..user.clone()
            }
        }
        Reporter::Open311 { .. } => server_actor(),
    };
    let taken_by = match reporter {
        Reporter::User(user) => user.user.clone(),
        Reporter::Open311 { key_name } => format!("open311:{key_name}"),
    };
    let category: CategoryCode = intake
        .category
        .trim()
        .parse()
        .map_err(|_| IntakeError::UnknownCategory(intake.category.clone()))?;
    if rules.catalog.get(&category).is_none() {
        return Err(IntakeError::UnknownCategory(intake.category.clone()));
    }
    let description = intake.description.trim().to_owned();
    if description.is_empty() {
        return Err(IntakeError::Invalid(
            "description: say what is wrong".into(),
        ));
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(IntakeError::Invalid(format!(
            "description: at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    let address = intake.address.trim().to_owned();
    if address.chars().count() > MAX_ADDRESS_CHARS {
        return Err(IntakeError::Invalid(format!(
            "address: at most {MAX_ADDRESS_CHARS} characters"
        )));
    }
    let source_ref = optional_text("ticket", intake.source_ref)?;
    let contact = ContactRow {
        case_id: String::new(),
        source: intake.source.as_str().to_owned(),
        name: optional_text("caller name", intake.contact.name)?,
        phone: optional_text("caller phone", intake.contact.phone)?,
        email: optional_text("caller email", intake.contact.email)?,
        wants_reply: intake.contact.wants_reply,
        ticket: source_ref.clone(),
        taken_by,
        created_at: now.timestamp_millis(),
    };
    let (location, grid) = resolve_location(rules, intake.point, intake.grid.as_deref())?;
    let mut photos = Vec::new();
    for hash in &intake.photos {
        let blob = store
            .blob(hash)
            .await?
            .ok_or_else(|| IntakeError::PhotoNotUploaded(hash.clone()))?;
        photos.push(blob);
    }

    let new = NewCase {
        id: id.clone(),
        category,
        location,
        grid,
        address,
        description,
        source: intake.source,
        source_ref,
        caller: None,
    };
    let entry_id = uuid::Uuid::now_v7().to_string();
    let mut case = CaseDocument::create(&new, &actor, &entry_id, now).map_err(invalid)?;
    for blob in &photos {
        let photo = Photo {
            hash: blob.sha256.clone(),
            role: PhotoRole::Before,
            taken_at: blob.taken_at.and_then(DateTime::from_timestamp_millis),
            position: match (blob.lon, blob.lat) {
                (Some(lon), Some(lat)) => Some(Position {
                    lon,
                    lat,
                    accuracy_m: blob.accuracy,
                }),
                _ => None,
            },
            added_by: actor.user.clone(),
            added_at: now,
        };
        case.add_photo(&actor, &photo).map_err(invalid)?;
    }

    // The server's automation, as after a phone's sync round: the postings are read
    // before (the automation is pure and synchronous).
    let postings: Vec<Posting> = match (&rules.grids, grid) {
        (Some(_), Some(grid)) => postings_of(store.users_covering(&grid).await?),
        _ => Vec::new(),
    };
    if let Some(grids) = rules.grids.as_deref() {
        let postings_of_grid = |_: GridCode| postings.clone();
        let automation = Automation {
            context: rules.context(),
            ownership: &rules.ownership,
            grids,
            postings: &postings_of_grid,
        };
        if let Err(error) = automation.act(&mut case, &[], &server_actor(), now) {
            // What it wrote before the failure stays; the acceptor's queue has the case.
            tracing::warn!(case = %id, %error, "automatic routing of a case taken in failed");
        }
    }

    let view = case.fold(&rules.context());
    let meta = DocMeta::of_case(&view);
    let doc = case.into_automerge();
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let write = DocWrite {
        id: id.clone(),
        kind: DocKind::Case,
        changes,
        meta: meta.clone(),
        heads: doc.get_heads(),
        merged: Some(Merged::new(Vec::new(), doc)),
    };
    let derive = Materializer {
        rules,
        now: now.timestamp_millis(),
        clock_skew_ms: None,
    };
    // The caller first: a case is never stored without the caller it was taken for;
    // if the document cannot be stored, the caller's row goes again.
    let contact = ContactRow {
        case_id: id.clone(),
        ..contact
    };
    store.contact_insert(&contact).await?;
    if let Err(error) = store
        // No heads condition: the id is new (a fresh UUID v7, or the demo's own).
        .document_write(&write, None, &derive, now.timestamp_millis())
        .await
    {
        if let Err(cleanup) = store.contact_delete(&id).await {
            tracing::error!(case = %id, %cleanup, "the caller of a case not stored was kept");
        }
        return Err(error.into());
    }
    tracing::info!(case = %id, source = intake.source.as_str(), category = %category, grid = ?meta.grids, "case taken in");
    let written = [Written {
        id: id.clone(),
        kind: DocKind::Case,
        meta,
        previous: None,
    }];
    crate::writes::announce(store.as_ref(), push, &actor.device, &written).await;
    let row = store
        .case_row(&id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("case {id} stored without its row")))?;
    let duplicates = possible_duplicates(store.as_ref(), rules, &row).await?;
    Ok(Created {
        id,
        row,
        duplicates,
    })
}

fn invalid(error: CaseError) -> IntakeError {
    IntakeError::Invalid(error.to_string())
}

/// The open cases of `row`'s category within the duplicate radius of its position
/// (by its source, or the category's own), nearest first.
pub async fn possible_duplicates(
    store: &dyn Store,
    rules: &CaseRules,
    row: &CaseRow,
) -> Result<Vec<Duplicate>, StoreError> {
    let (Some(code), Some(lon), Some(lat)) = (row.category.as_deref(), row.lon, row.lat) else {
        return Ok(Vec::new());
    };
    let Some(category) = code
        .parse::<CategoryCode>()
        .ok()
        .and_then(|c| rules.catalog.get(&c))
    else {
        return Ok(Vec::new());
    };
    let source = row
        .source
        .as_deref()
        .and_then(Source::parse)
        .unwrap_or(Source::Patrol);
    let Ok(centre) = LonLat::new(lon, lat) else {
        return Ok(Vec::new());
    };
    let radius = duplicates::radius_m(category, source);
    let (min, max) = duplicates::bounding_box(centre, radius);
    let query = NearQuery {
        category: code.to_owned(),
        min: (min.lon, min.lat),
        max: (max.lon, max.lat),
        except: row.id.clone(),
        limit: MAX_DUPLICATES * 5,
    };
    let mut found: Vec<Duplicate> = store
        .cases_near(&query)
        .await?
        .into_iter()
        .filter_map(|other| {
            let point = LonLat::new(other.lon?, other.lat?).ok()?;
            let distance = duplicates::within(centre, point, radius)?;
            Some(Duplicate {
                id: other.id,
                status: other.status,
                summary: other.summary,
                address: other.address,
                distance_m: (distance * 10.0).round() / 10.0,
                reported_at: other.reported_at,
            })
        })
        .collect();
    found.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
    found.truncate(usize::try_from(MAX_DUPLICATES).unwrap_or(20));
    Ok(found)
}
