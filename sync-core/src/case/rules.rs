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

use automerge::{
    Automerge, Change, ChangeHash, ObjId, ReadDoc,
    patches::{Patch, PatchAction},
};

use super::entry::{ActionName, StoredEntry};
use super::{StoredPhoto, key};
use crate::document::{
    ChangeEffect, Violation, ViolationKind, WriteRefused, describe, describe_obj, effects, locate,
    object_at, string_at,
};
use crate::role::{Actor, Role};

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
            .map_err(|e| describe(&e))
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
        match stored.map_err(|e| describe(&e)).and_then(|s| s.parse()) {
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
