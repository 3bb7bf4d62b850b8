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
//!   writer's identity (user, role, team, scope, device) and the case's grid as of the
//!   change; nobody edits, inserts before, or deletes an entry;
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
    ChangeEffect, Depth, Violation, ViolationKind, WriteRefused, describe, describe_obj,
    judge_changes, locate, object_at, position_at, push_unique, string_at,
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
    role.answers_callers() || role == Role::Server
}

/// Checks `changes` (a batch for one case document, in any order) against the write
/// rules for `writer`. `base` is the document as stored before the batch (empty
/// for a new case). Returns every violation found, or, if the batch may be stored
/// whole, `base` with it applied (the checks apply it to a copy anyway).
pub fn check_case_changes(
    base: &Automerge,
    changes: &[Change],
    writer: &Actor,
) -> Result<Automerge, WriteRefused> {
    judge_changes(base, changes, &writer.device, |candidate, effects| {
        let mut violations = Vec::new();
        let mut new_entries = Vec::new();
        let mut new_photos = Vec::new();
        for effect in effects {
            check_effect(
                candidate,
                effect,
                writer,
                &mut violations,
                &mut new_entries,
                &mut new_photos,
            );
        }
        check_claims(
            candidate,
            writer,
            &new_entries,
            &new_photos,
            &mut violations,
        );
        violations
    })
}

fn check_effect(
    doc: &Automerge,
    effect: &ChangeEffect,
    writer: &Actor,
    violations: &mut Vec<Violation>,
    new_entries: &mut Vec<(ObjId, ChangeHash)>,
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
        let path = path.to_owned();
        push_unique(violations, Violation { path, kind });
    };

    if creating && !super::fold::allowed(role, ActionName::Report) {
        refuse("", ViolationKind::RoleMayNotWrite { role });
    }
    // Insertions, from the patches: where they landed and what they added.
    for patch in &effect.patches {
        let (_, path) = locate(patch);
        // New timeline entries and photos are collected in every change, the
        // creating one included, so that their claims are checked.
        match &patch.action {
            PatchAction::Insert { index, values } if is_on(patch, &timeline) => {
                if !creating && *index < old_timeline_len {
                    refuse(&path, ViolationKind::AppendOnly);
                }
                new_entries.extend(values.iter().map(|(_, id, _)| (id.clone(), effect.hash)));
            }
            PatchAction::Insert { values, .. } if is_on(patch, &photos) => {
                new_photos.extend(values.iter().map(|(_, id, _)| id.clone()));
            }
            PatchAction::DeleteSeq { index, length } if is_on(patch, &photos) && !creating => {
                if let Some(list) = object_at(doc, key::PHOTOS, deps) {
                    for i in *index..index + length {
                        if added_by_at(doc, &list, i, deps).as_deref() != Some(writer.user.as_str())
                        {
                            refuse(&path, ViolationKind::NotOwnPhoto);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    // Every operation on what existed before the change, visible or not.
    for write in &effect.existing_writes {
        let path = write.path.as_str();
        if !key::ALL.contains(&write.root.as_str()) {
            refuse(path, ViolationKind::UnknownField);
            continue;
        }
        if creating {
            continue;
        }
        match (write.root.as_str(), write.depth) {
            // Insertions were judged above; deleting a photo is the adder's right,
            // also judged above.
            (key::TIMELINE | key::PHOTOS, Depth::Element) if write.insert => {}
            (key::PHOTOS, Depth::Element) if write.delete => {}
            (key::TIMELINE, Depth::Element | Depth::Nested) => {
                refuse(path, ViolationKind::AppendOnly);
            }
            (key::PHOTOS, Depth::Element | Depth::Nested) => {
                refuse(path, ViolationKind::PhotoRewrite);
            }
            (root, depth) => {
                if let Some(kind) = field_rule(root, depth, writer.role, is_reporter) {
                    refuse(path, kind);
                }
            }
        }
    }
    // Texts stay bounded: the description and address as they are after the change.
    let after = [effect.hash];
    // A location this change wrote must be one: a claimed grid beside a location the
    // server cannot read would go unchecked and put the case into another area's
    // lists.
    if let Some(Err(reason)) = position_at(doc, key::LOCATION, &after)
        && position_at(doc, key::LOCATION, deps) != position_at(doc, key::LOCATION, &after)
    {
        refuse(key::LOCATION, ViolationKind::Malformed(reason));
    }
    if let Some(text) = object_at(doc, key::DESCRIPTION, &after)
        && doc
            .text_at(&text, &after)
            .is_ok_and(|t| t.chars().count() > super::MAX_DESCRIPTION_CHARS)
    {
        refuse(
            key::DESCRIPTION,
            ViolationKind::TooLong {
                max: super::MAX_DESCRIPTION_CHARS,
            },
        );
    }
    if string_at(doc, key::ADDRESS, &after)
        .is_some_and(|a| a.chars().count() > super::MAX_ADDRESS_CHARS)
    {
        refuse(
            key::ADDRESS,
            ViolationKind::TooLong {
                max: super::MAX_ADDRESS_CHARS,
            },
        );
    }
    if creating && reporter.is_some() && !is_reporter {
        refuse(
            key::REPORTER,
            ViolationKind::ClaimMismatch { field: "reporter" },
        );
    }
}

/// Who may write a root field (other than the timeline and photos) of an existing case.
fn field_rule(root: &str, depth: Depth, role: Role, is_reporter: bool) -> Option<ViolationKind> {
    let refused = Some(ViolationKind::RoleMayNotWrite { role });
    match root {
        key::ID | key::KIND | key::REPORTER | key::CREATED_AT | key::SOURCE | key::SOURCE_REF => {
            Some(ViolationKind::Immutable)
        }
        key::SCHEMA_VERSION if role != Role::Server => Some(ViolationKind::Immutable),
        key::SCHEMA_VERSION => None,
        // Replacing the description object itself is the schema upgrade.
        key::DESCRIPTION if depth == Depth::Root && role != Role::Server => refused,
        key::CATEGORY | key::LOCATION | key::GRID | key::ADDRESS | key::DESCRIPTION => {
            (!(is_reporter || edits_fields(role)))
                .then_some(ViolationKind::RoleMayNotWrite { role })
        }
        key::CALLER => (!edits_caller(role)).then_some(ViolationKind::RoleMayNotWrite { role }),
        _ => Some(ViolationKind::UnknownField),
    }
}

/// New timeline entries and photos must name the writer.
fn check_claims(
    doc: &Automerge,
    writer: &Actor,
    new_entries: &[(ObjId, ChangeHash)],
    new_photos: &[ObjId],
    violations: &mut Vec<Violation>,
) {
    for (id, hash) in new_entries {
        let path = format!("{}/{}", key::TIMELINE, describe_obj(id));
        // The grid the entry says it acted on is the case's grid as of its change.
        let grid_then = string_at(doc, key::GRID, &[*hash]);
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
            ("grid", entry.grid.map(|g| g.to_string()) == grid_then),
        ];
        if entry
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > super::MAX_NOTE_CHARS)
        {
            violations.push(Violation {
                path: format!("{path}/note"),
                kind: ViolationKind::TooLong {
                    max: super::MAX_NOTE_CHARS,
                },
            });
        }
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
