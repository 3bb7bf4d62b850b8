//! Write rules: whether a writer (user, role, device) may make the given changes to
//! a case document.
//!
//! The server calls [`check_case_changes`] on every incoming change before storing
//! anything; [`super::CaseDocument`]'s edit methods call it before writing, so the
//! phone refuses locally what the server would refuse.
//!
//! Each change is judged by its own effect: the difference between the document at
//! the change's dependencies and at the change (Automerge's `diff` between those
//! heads), so a concurrent edit by someone else never hides or excuses it. Rules:
//!
//! - every change must be made by the writer's device (its Automerge actor);
//! - the creating change may set every known field, with `reporter` the writer, and
//!   only a role that may report creates a case;
//! - `id`, `kind`, `reporter`, `created_at`, `source`, `source_ref` never change;
//!   `schema_version` changes only by the server's upgrade;
//! - `category`, `location`, `grid`, `address` and the `description` text are
//!   edited by the reporter or by the command centre, the hotline and supervisors;
//! - `caller` (personal data) by the hotline, the acceptor, shift leads, supervisors;
//! - `photos`: anyone appends photos added by themselves; only the adder removes one;
//!   nobody edits a photo entry;
//! - `timeline`: entries are appended at the end, each claiming exactly the
//!   writer's identity (user, role, team, scope, device); nobody edits, inserts
//!   before, or deletes an entry;
//! - unknown root keys are not written.
//!
//! Whether an appended action is allowed in the workflow is not a write rule: the
//! fold decides it, identically on every replica, and ignores it with a reason.

use std::fmt;

use automerge::{
    Automerge, Change, ChangeHash, ObjId, Prop, ROOT, ReadDoc,
    patches::{Patch, PatchAction},
};

use super::entry::{ActionName, StoredEntry};
use super::{StoredPhoto, key};
use crate::role::{Actor, Role};

/// Why a batch of changes was refused: every violation found, each naming its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("changes to document {doc} refused: {}", list(.violations))]
pub struct WriteRefused {
    /// The document (case id, or `?` when unknown).
    pub doc: String,
    /// What was wrong.
    pub violations: Vec<Violation>,
}

fn list(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct Violation {
    /// The path written, e.g. `timeline/3/action`; empty for a whole change.
    pub path: String,
    /// What rule it breaks.
    pub kind: ViolationKind,
}

/// The rules a change can break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViolationKind {
    /// The change was made by another device than the writer's.
    #[error("change by actor {actor}, not by the writer's device")]
    ForeignActor {
        /// The change's actor (hex).
        actor: String,
    },
    /// Automerge could not apply the changes.
    #[error("changes cannot be applied: {0}")]
    Undecodable(String),
    /// The change depends on changes neither stored nor in the batch.
    #[error("change depends on changes that are not known")]
    MissingDependencies,
    /// A field that is fixed when the case is created.
    #[error("field is fixed when the case is created")]
    Immutable,
    /// The writer's role may not write this path.
    #[error("a {} may not write this", .role.as_str())]
    RoleMayNotWrite {
        /// The writer's role.
        role: Role,
    },
    /// An existing timeline entry edited, deleted, or an entry inserted before it.
    #[error("timeline entries are append-only")]
    TimelineRewrite,
    /// An existing photo entry edited.
    #[error("photo entries are not edited")]
    PhotoRewrite,
    /// A photo added by someone else removed.
    #[error("only the user who added a photo may remove it")]
    NotOwnPhoto,
    /// A new entry or photo claims someone other than the writer.
    #[error("{field} does not match the writer")]
    ClaimMismatch {
        /// The claimed field.
        field: &'static str,
    },
    /// A new timeline entry or photo that cannot be read.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A root key this schema does not have.
    #[error("unknown field")]
    UnknownField,
}

/// A change's effect, as patches against the document at its dependencies.
pub(crate) struct ChangeEffect {
    pub hash: ChangeHash,
    pub deps: Vec<ChangeHash>,
    pub patches: Vec<Patch>,
    actor: automerge::ActorId,
    ops: std::ops::Range<u64>,
}

impl ChangeEffect {
    /// Whether `obj` was created by this change (so writing inside it is part of
    /// creating it, not an edit of something that existed).
    pub fn created(&self, obj: &ObjId) -> bool {
        match obj {
            ObjId::Id(counter, actor, _) => *actor == self.actor && self.ops.contains(counter),
            ObjId::Root => false,
        }
    }
}

/// Applies `changes` to a copy of `base` and computes each change's own effect.
/// Refuses changes not made by `device`, undecodable ones and ones with unknown
/// dependencies.
pub(crate) fn effects(
    base: &Automerge,
    changes: &[Change],
    device: &str,
) -> Result<(Automerge, Vec<ChangeEffect>), Vec<Violation>> {
    let mut violations = Vec::new();
    for change in changes {
        let actor = change.actor_id().to_hex_string();
        if !actor.eq_ignore_ascii_case(device) {
            violations.push(Violation {
                path: String::new(),
                kind: ViolationKind::ForeignActor { actor },
            });
        }
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    let mut candidate = base.clone();
    if let Err(e) = candidate.apply_changes(changes.iter().cloned()) {
        return Err(vec![Violation {
            path: String::new(),
            kind: ViolationKind::Undecodable(e.to_string()),
        }]);
    }
    let mut effects = Vec::with_capacity(changes.len());
    for change in changes {
        if candidate.get_change_by_hash(&change.hash()).is_none() {
            return Err(vec![Violation {
                path: String::new(),
                kind: ViolationKind::MissingDependencies,
            }]);
        }
        let start = change.start_op().get();
        let len = u64::try_from(change.len()).unwrap_or(u64::MAX);
        effects.push(ChangeEffect {
            hash: change.hash(),
            deps: change.deps().to_vec(),
            patches: candidate.diff(change.deps(), &[change.hash()]),
            actor: change.actor_id().clone(),
            ops: start..start.saturating_add(len),
        });
    }
    Ok((candidate, effects))
}

/// The root key a patch writes under, and the full path as text.
pub(crate) fn locate(patch: &Patch) -> (Option<String>, String) {
    let mut parts: Vec<String> = patch.path.iter().map(|(_, prop)| prop_text(prop)).collect();
    match &patch.action {
        PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => parts.push(key.clone()),
        PatchAction::PutSeq { index, .. }
        | PatchAction::Insert { index, .. }
        | PatchAction::SpliceText { index, .. }
        | PatchAction::DeleteSeq { index, .. } => parts.push(index.to_string()),
        PatchAction::Increment { prop, .. } | PatchAction::Conflict { prop } => {
            parts.push(prop_text(prop));
        }
        PatchAction::Mark { .. } => {}
    }
    let root = parts.first().cloned();
    (root, parts.join("/"))
}

fn prop_text(prop: &Prop) -> String {
    match prop {
        Prop::Map(key) => key.clone(),
        Prop::Seq(index) => index.to_string(),
    }
}

/// Whether `obj` is `list` itself (the patch is on the list, not inside an item).
fn is_on(patch: &Patch, list: &Option<ObjId>) -> bool {
    list.as_ref() == Some(&patch.obj)
}

/// Who added photo `index` of `list`, as the document was at `heads`.
fn added_by_at(
    doc: &Automerge,
    list: &ObjId,
    index: usize,
    heads: &[ChangeHash],
) -> Option<String> {
    let Ok(Some((automerge::Value::Object(_), photo))) = doc.get_at(list, index, heads) else {
        return None;
    };
    match doc.get_at(&photo, "added_by", heads) {
        Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
            automerge::ScalarValue::Str(text) => Some(text.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn object_at(doc: &Automerge, name: &str, heads: &[ChangeHash]) -> Option<ObjId> {
    match doc.get_at(ROOT, name, heads) {
        Ok(Some((automerge::Value::Object(_), id))) => Some(id),
        _ => None,
    }
}

fn string_at(doc: &Automerge, name: &str, heads: &[ChangeHash]) -> Option<String> {
    match doc.get_at(ROOT, name, heads) {
        Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
            automerge::ScalarValue::Str(text) => Some(text.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Roles that correct a case's category, location, address and description.
fn edits_fields(role: Role) -> bool {
    matches!(
        role,
        Role::Acceptor
            | Role::ShiftLead
            | Role::Dispatcher
            | Role::InformationSupervisor
            | Role::GridLeader
            | Role::HotlineOperator
            | Role::DistrictSupervisor
            | Role::CitySupervisor
            | Role::Server
    )
}

/// Roles that write the caller's personal data.
fn edits_caller(role: Role) -> bool {
    matches!(
        role,
        Role::HotlineOperator
            | Role::Acceptor
            | Role::ShiftLead
            | Role::DistrictSupervisor
            | Role::CitySupervisor
            | Role::Server
    )
}

/// Checks `changes` (a batch for one case document, in any order) against the write
/// rules for `writer`. `base` is the document as stored before the batch (empty
/// for a new case). Returns every violation found, or `Ok` if the batch may be
/// stored whole.
pub fn check_case_changes(
    base: &Automerge,
    changes: &[Change],
    writer: &Actor,
) -> Result<(), WriteRefused> {
    let mut doc_id = string_at(base, key::ID, &base.get_heads());
    let refuse = |doc: Option<String>, violations: Vec<Violation>| WriteRefused {
        doc: doc.unwrap_or_else(|| "?".to_owned()),
        violations,
    };
    let (candidate, effects) =
        effects(base, changes, &writer.device).map_err(|v| refuse(doc_id.clone(), v))?;
    if doc_id.is_none() {
        doc_id = string_at(&candidate, key::ID, &candidate.get_heads());
    }
    let mut violations = Vec::new();
    let mut new_entries = Vec::new();
    let mut new_photos = Vec::new();
    for effect in &effects {
        check_effect(
            &candidate,
            effect,
            writer,
            &mut violations,
            &mut new_entries,
            &mut new_photos,
        );
    }
    check_claims(
        &candidate,
        writer,
        &new_entries,
        &new_photos,
        &mut violations,
    );
    if violations.is_empty() {
        Ok(())
    } else {
        Err(refuse(doc_id, violations))
    }
}

fn check_effect(
    doc: &Automerge,
    effect: &ChangeEffect,
    writer: &Actor,
    violations: &mut Vec<Violation>,
    new_entries: &mut Vec<ObjId>,
    new_photos: &mut Vec<ObjId>,
) {
    let deps = &effect.deps;
    let creating = string_at(doc, key::ID, deps).is_none();
    let reporter = string_at(doc, key::REPORTER, &[effect.hash]);
    let is_reporter = reporter.as_deref() == Some(writer.user.as_str());
    let timeline = object_at(doc, key::TIMELINE, &[effect.hash]);
    let photos = object_at(doc, key::PHOTOS, &[effect.hash]);
    let old_timeline_len = object_at(doc, key::TIMELINE, deps)
        .map(|list| doc.length_at(&list, deps))
        .unwrap_or(0);
    let role = writer.role;
    let mut refuse = |path: &str, kind: ViolationKind| {
        let violation = Violation {
            path: path.to_owned(),
            kind,
        };
        if !violations.contains(&violation) {
            violations.push(violation);
        }
    };

    if creating && !super::fold::allowed(role, ActionName::Report) {
        refuse("", ViolationKind::RoleMayNotWrite { role });
    }
    for patch in &effect.patches {
        let (root, path) = locate(patch);
        let Some(root) = root else { continue };
        if !key::ALL.contains(&root.as_str()) {
            refuse(&path, ViolationKind::UnknownField);
            continue;
        }
        // New timeline entries and photos are collected in every change, the
        // creating one included, so that their claims are checked.
        if is_on(patch, &timeline) {
            match &patch.action {
                PatchAction::Insert { index, values } => {
                    if !creating && *index < old_timeline_len {
                        refuse(&path, ViolationKind::TimelineRewrite);
                    }
                    new_entries.extend(values.iter().map(|(_, id, _)| id.clone()));
                }
                _ if creating => {}
                _ => refuse(&path, ViolationKind::TimelineRewrite),
            }
            continue;
        }
        if is_on(patch, &photos) {
            match &patch.action {
                PatchAction::Insert { values, .. } => {
                    new_photos.extend(values.iter().map(|(_, id, _)| id.clone()));
                }
                PatchAction::DeleteSeq { index, length } if !creating => {
                    if let Some(list) = object_at(doc, key::PHOTOS, deps) {
                        for i in *index..index + length {
                            if added_by_at(doc, &list, i, deps).as_deref()
                                != Some(writer.user.as_str())
                            {
                                refuse(&path, ViolationKind::NotOwnPhoto);
                            }
                        }
                    }
                }
                _ if creating => {}
                _ => refuse(&path, ViolationKind::PhotoRewrite),
            }
            continue;
        }
        if creating {
            continue;
        }
        let inside_new_object = effect.created(&patch.obj);
        match root.as_str() {
            key::TIMELINE if !inside_new_object => refuse(&path, ViolationKind::TimelineRewrite),
            key::PHOTOS if !inside_new_object => refuse(&path, ViolationKind::PhotoRewrite),
            key::TIMELINE | key::PHOTOS => {}
            key::ID
            | key::KIND
            | key::REPORTER
            | key::CREATED_AT
            | key::SOURCE
            | key::SOURCE_REF => refuse(&path, ViolationKind::Immutable),
            key::SCHEMA_VERSION if role != Role::Server => {
                refuse(&path, ViolationKind::Immutable);
            }
            key::SCHEMA_VERSION => {}
            // Replacing the description object itself is the schema upgrade.
            key::DESCRIPTION if patch.path.is_empty() && role != Role::Server => {
                refuse(&path, ViolationKind::RoleMayNotWrite { role });
            }
            key::CATEGORY | key::LOCATION | key::GRID | key::ADDRESS | key::DESCRIPTION => {
                if !(is_reporter || edits_fields(role)) {
                    refuse(&path, ViolationKind::RoleMayNotWrite { role });
                }
            }
            key::CALLER => {
                if !edits_caller(role) {
                    refuse(&path, ViolationKind::RoleMayNotWrite { role });
                }
            }
            _ => refuse(&path, ViolationKind::UnknownField),
        }
    }
    if creating && reporter.is_some() && !is_reporter {
        refuse(
            key::REPORTER,
            ViolationKind::ClaimMismatch { field: "reporter" },
        );
    }
}

/// New timeline entries and photos must name the writer.
fn check_claims(
    doc: &Automerge,
    writer: &Actor,
    new_entries: &[ObjId],
    new_photos: &[ObjId],
    violations: &mut Vec<Violation>,
) {
    for id in new_entries {
        let path = format!("{}/{}", key::TIMELINE, describe_obj(id));
        let stored: Result<StoredEntry, _> = autosurgeon::hydrate::Hydrate::hydrate_map(doc, id);
        let entry = match stored
            .map_err(|e| super::describe(&e))
            .and_then(|s| s.parse().map_err(|e| e.to_string()))
        {
            Ok(entry) => entry,
            Err(reason) => {
                violations.push(Violation {
                    path,
                    kind: ViolationKind::Malformed(reason),
                });
                continue;
            }
        };
        let claims = [
            ("user", entry.actor.user == writer.user),
            ("role", entry.actor.role == writer.role),
            ("team", entry.actor.team == writer.team),
            ("scope", entry.actor.scope == writer.scope),
            (
                "device",
                entry.actor.device.eq_ignore_ascii_case(&writer.device),
            ),
        ];
        for (field, matches) in claims {
            if !matches {
                violations.push(Violation {
                    path: format!("{path}/{field}"),
                    kind: ViolationKind::ClaimMismatch { field },
                });
            }
        }
    }
    for id in new_photos {
        let path = format!("{}/{}", key::PHOTOS, describe_obj(id));
        let stored: Result<StoredPhoto, _> = autosurgeon::hydrate::Hydrate::hydrate_map(doc, id);
        match stored
            .map_err(|e| super::describe(&e))
            .and_then(|s| s.parse())
        {
            Ok(photo) if photo.added_by == writer.user => {}
            Ok(_) => violations.push(Violation {
                path: format!("{path}/added_by"),
                kind: ViolationKind::ClaimMismatch { field: "added_by" },
            }),
            Err(reason) => violations.push(Violation {
                path,
                kind: ViolationKind::Malformed(reason),
            }),
        }
    }
}

/// A new object named by its operation id (its index may have moved).
fn describe_obj(id: &ObjId) -> String {
    match id {
        ObjId::Id(counter, actor, _) => format!("{counter}@{}", actor.to_hex_string()),
        ObjId::Root => "root".to_owned(),
    }
}

impl fmt::Display for ChangeEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "change {}", self.hash)
    }
}
