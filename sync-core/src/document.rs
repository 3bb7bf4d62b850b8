//! What the case and patrol documents share: positions, document problems, device
//! actor ids, and the machinery of the write rules (each incoming change's own
//! effect, as Automerge patches, and the typed refusal).

use std::fmt;

use automerge::{
    ActorId, Automerge, Change, ChangeHash, ObjId, Prop, ROOT, ReadDoc,
    patches::{Patch, PatchAction},
};
use autosurgeon::{Hydrate, HydrateError, Reconcile};

use crate::role::Role;

/// A WGS-84 position as a phone reports it.
#[derive(Debug, Clone, Copy, PartialEq, Hydrate, Reconcile)]
pub struct Position {
    /// Longitude, degrees east.
    pub lon: f64,
    /// Latitude, degrees north.
    pub lat: f64,
    /// Reported accuracy (radius), metres.
    #[autosurgeon(missing = "Option::default")]
    pub accuracy_m: Option<f64>,
}

impl Position {
    /// Checks the ranges: longitude ±180, latitude ±90, accuracy finite and ≥ 0.
    pub fn check(&self) -> Result<(), InvalidPosition> {
        let valid = self.lon.is_finite()
            && self.lat.is_finite()
            && (-180.0..=180.0).contains(&self.lon)
            && (-90.0..=90.0).contains(&self.lat)
            && self.accuracy_m.is_none_or(|a| a.is_finite() && a >= 0.0);
        if valid {
            Ok(())
        } else {
            Err(InvalidPosition(*self))
        }
    }
}

/// A position out of range.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("position {0:?} is not a WGS-84 longitude/latitude")]
pub struct InvalidPosition(pub Position);

/// Something wrong with the document itself (not with a timeline entry, which
/// the fold reports per entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocProblem {
    /// The path, e.g. `category` or `photos/2`.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// A device id that is not the hex form of an Automerge actor id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device {0:?} is not a hex actor id")]
pub struct DeviceIdError(pub String);

/// Parses a device's actor id from its hex form.
pub fn actor_id(device: &str) -> Result<ActorId, DeviceIdError> {
    let bytes = (device.len().is_multiple_of(2) && !device.is_empty())
        .then(|| {
            (0..device.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(device.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
        .ok_or_else(|| DeviceIdError(device.to_owned()))?;
    Ok(ActorId::from(bytes))
}

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

pub(crate) fn object_at(doc: &Automerge, name: &str, heads: &[ChangeHash]) -> Option<ObjId> {
    match doc.get_at(ROOT, name, heads) {
        Ok(Some((automerge::Value::Object(_), id))) => Some(id),
        _ => None,
    }
}

pub(crate) fn string_at(doc: &Automerge, name: &str, heads: &[ChangeHash]) -> Option<String> {
    match doc.get_at(ROOT, name, heads) {
        Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
            automerge::ScalarValue::Str(text) => Some(text.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// A new object named by its operation id (its index may have moved).
pub(crate) fn describe_obj(id: &ObjId) -> String {
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

pub(crate) fn describe(error: &HydrateError) -> String {
    match error {
        HydrateError::Unexpected(unexpected) => format!("wrong type: {unexpected}"),
        other => other.to_string(),
    }
}
