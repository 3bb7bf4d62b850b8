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
    /// An entry of an append-only list (a case's timeline, a patrol log's
    /// check-ins, track, cases found and reviews) edited, deleted, or an entry
    /// inserted before it.
    #[error("this list is append-only: entries are never edited, deleted or inserted before")]
    AppendOnly,
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
    /// A text longer than its limit.
    #[error("longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
}

/// A change's effect, seen two ways: as patches against the document at its
/// dependencies (what became visible: insertions and their positions), and as the
/// change's own operations on objects that existed before it (every write, even one
/// that changes nothing visible, such as putting a value that is already there).
pub(crate) struct ChangeEffect {
    pub hash: ChangeHash,
    pub deps: Vec<ChangeHash>,
    pub patches: Vec<Patch>,
    pub existing_writes: Vec<ExistingWrite>,
}

/// Where in the document an operation on something that existed before the change
/// writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// A key of the root map.
    Root,
    /// An element of a top-level list or text (put, delete, or insert).
    Element,
    /// Inside a top-level map (e.g. `location`) or inside an item of a list.
    Nested,
}

/// One operation of a change on an object that existed before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExistingWrite {
    /// The root key it is under.
    pub root: String,
    /// The path, e.g. `timeline/0/action`.
    pub path: String,
    /// How deep.
    pub depth: Depth,
    /// Whether it inserts into a list or text (rather than putting or deleting).
    pub insert: bool,
    /// Whether it deletes.
    pub delete: bool,
}

/// Applies `changes` to a copy of `base` and computes each change's own effect.
/// Refuses changes not made by `device`, undecodable ones and ones with unknown
/// dependencies.
fn effects(
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
    let undecodable = |reason: String| {
        vec![Violation {
            path: String::new(),
            kind: ViolationKind::Undecodable(reason),
        }]
    };
    check_sequence(base, changes).map_err(|kind| {
        vec![Violation {
            path: String::new(),
            kind,
        }]
    })?;
    let mut candidate = base.clone();
    // Automerge asserts (panics) on some inconsistencies it does not expect from a
    // peer; `check_sequence` refuses the ones we know of, and this turns any other
    // into a refusal instead of a crashed server.
    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        candidate.apply_changes(changes.iter().cloned())
    }));
    match applied {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(undecodable(e.to_string())),
        Err(_) => return Err(undecodable("automerge refused the changes".to_owned())),
    }
    // A change whose dependencies are unknown waits in Automerge's queue: applied
    // later, unchecked, when they arrive. So it is refused now.
    if !candidate.get_missing_deps(&[]).is_empty() {
        return Err(vec![Violation {
            path: String::new(),
            kind: ViolationKind::MissingDependencies,
        }]);
    }
    let mut effects = Vec::with_capacity(changes.len());
    for change in changes {
        let start = change.start_op().get();
        let len = u64::try_from(change.len()).unwrap_or(u64::MAX);
        let ops = start..start.saturating_add(len);
        let existing_writes = existing_writes(&candidate, change, &ops)?;
        effects.push(ChangeEffect {
            hash: change.hash(),
            deps: change.deps().to_vec(),
            patches: candidate.diff(change.deps(), &[change.hash()]),
            existing_writes,
        });
    }
    Ok((candidate, effects))
}

/// Runs a document type's write rules on a batch: computes each change's effect
/// (refusing foreign, undecodable and orphan changes first), lets `check` list the
/// violations, and names the document (its root `id`) in the refusal.
pub(crate) fn judge_changes(
    base: &Automerge,
    changes: &[Change],
    device: &str,
    check: impl FnOnce(&Automerge, &[ChangeEffect]) -> Vec<Violation>,
) -> Result<Automerge, WriteRefused> {
    let doc_id = |doc: &Automerge| string_at(doc, "id", &doc.get_heads());
    let refuse = |doc: Option<String>, violations: Vec<Violation>| WriteRefused {
        doc: doc.unwrap_or_else(|| "?".to_owned()),
        violations,
    };
    let (candidate, effects) =
        effects(base, changes, device).map_err(|v| refuse(doc_id(base), v))?;
    let violations = check(&candidate, &effects);
    if violations.is_empty() {
        Ok(candidate)
    } else {
        Err(refuse(
            doc_id(base).or_else(|| doc_id(&candidate)),
            violations,
        ))
    }
}

/// Each actor's changes must be numbered 1, 2, 3… without gaps or repeats, counting
/// those already in `base`; a change carrying an author must be its actor's first.
/// Automerge assumes this of its peers (it asserts it), so it is checked first.
pub(crate) fn check_sequence(base: &Automerge, changes: &[Change]) -> Result<(), ViolationKind> {
    use std::collections::{HashMap, HashSet};
    let known = base.get_changes(&[]);
    let known_hashes: HashSet<ChangeHash> = known.iter().map(|c| c.hash()).collect();
    let mut new: Vec<&Change> = changes
        .iter()
        .filter(|c| !known_hashes.contains(&c.hash()))
        .collect();
    let mut next: HashMap<&automerge::ActorId, u64> = HashMap::new();
    for change in &new {
        next.entry(change.actor_id()).or_insert_with(|| {
            let count = known
                .iter()
                .filter(|k| k.actor_id() == change.actor_id())
                .count();
            u64::try_from(count).unwrap_or(u64::MAX).saturating_add(1)
        });
    }
    new.sort_by_key(|c| c.seq());
    let mut seen = HashSet::new();
    for change in new {
        if !seen.insert(change.hash()) {
            continue;
        }
        let expected = next.entry(change.actor_id()).or_insert(1);
        if change.seq() > *expected {
            // An earlier change of this actor is neither stored nor in the batch.
            return Err(ViolationKind::MissingDependencies);
        }
        if change.seq() < *expected {
            return Err(ViolationKind::Undecodable(format!(
                "change {} of actor {} repeats sequence number {}",
                change.hash(),
                change.actor_id(),
                change.seq()
            )));
        }
        if change.author().is_some() && change.seq() != 1 {
            return Err(ViolationKind::Undecodable(format!(
                "change {} carries an author but is not its actor's first",
                change.hash()
            )));
        }
        *expected += 1;
    }
    Ok(())
}

/// Adds `violation` unless the same one is already listed.
pub(crate) fn push_unique(violations: &mut Vec<Violation>, violation: Violation) {
    if !violations.contains(&violation) {
        violations.push(violation);
    }
}

/// The operations of `change` (already applied to `doc`) on objects it did not create.
fn existing_writes(
    doc: &Automerge,
    change: &Change,
    created: &std::ops::Range<u64>,
) -> Result<Vec<ExistingWrite>, Vec<Violation>> {
    use automerge::legacy::{Key, ObjectId, OpType};
    let undecodable = |reason: String| {
        vec![Violation {
            path: String::new(),
            kind: ViolationKind::Undecodable(reason),
        }]
    };
    let heads = [change.hash()];
    let mut writes = Vec::new();
    for op in change.decode().operations {
        let delete = matches!(op.action, OpType::Delete);
        let (root, path, depth) = match &op.obj {
            ObjectId::Root => match &op.key {
                Key::Map(key) => (key.to_string(), key.to_string(), Depth::Root),
                Key::Seq(_) => return Err(undecodable("a list operation on the root map".into())),
            },
            ObjectId::Id(id) if id.1 == *change.actor_id() && created.contains(&id.0) => continue,
            ObjectId::Id(id) => {
                // `import_obj` is how Automerge turns an operation id into the handle
                // its read API takes.
                let obj = doc
                    .import_obj(&format!("{}@{}", id.0, id.1.to_hex_string()))
                    .map_err(|e| undecodable(e.to_string()))?;
                let parents = doc
                    .parents_at(&obj, &heads)
                    .map_err(|e| undecodable(e.to_string()))?;
                let mut parts: Vec<String> = parents
                    .path()
                    .iter()
                    .map(|(_, prop)| prop_text(prop))
                    .collect();
                let Some(root) = parts.first().cloned() else {
                    return Err(undecodable(
                        "an operation on an object outside the root".into(),
                    ));
                };
                let depth = if parts.len() == 1 && matches!(op.key, Key::Seq(_)) {
                    Depth::Element
                } else {
                    Depth::Nested
                };
                if let Key::Map(key) = &op.key {
                    parts.push(key.to_string());
                }
                (root, parts.join("/"), depth)
            }
        };
        writes.push(ExistingWrite {
            root,
            path,
            depth,
            insert: op.insert,
            delete,
        });
    }
    Ok(writes)
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

/// The position at root field `name` as of `heads`: `None` when absent, the reason
/// when it is not a map of numeric `lon`, `lat` (and optional `accuracy_m`) in range.
pub(crate) fn position_at(
    doc: &Automerge,
    name: &str,
    heads: &[ChangeHash],
) -> Option<Result<Position, String>> {
    let (value, map) = doc.get_at(ROOT, name, heads).ok()??;
    if !matches!(value, automerge::Value::Object(automerge::ObjType::Map)) {
        return Some(Err(format!("{name} is not a map")));
    }
    let number = |field: &str| -> Result<Option<f64>, String> {
        match doc.get_at(&map, field, heads) {
            Ok(None) => Ok(None),
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                automerge::ScalarValue::F64(x) => Ok(Some(*x)),
                #[allow(clippy::cast_precision_loss)]
                automerge::ScalarValue::Int(x) => Ok(Some(*x as f64)),
                #[allow(clippy::cast_precision_loss)]
                automerge::ScalarValue::Uint(x) => Ok(Some(*x as f64)),
                automerge::ScalarValue::Null if field == "accuracy_m" => Ok(None),
                _ => Err(format!("{name}/{field} is not a number")),
            },
            Ok(Some(_)) => Err(format!("{name}/{field} is not a number")),
            Err(e) => Err(format!("{name}/{field}: {e}")),
        }
    };
    let read = || -> Result<Position, String> {
        let lon = number("lon")?.ok_or_else(|| format!("{name}/lon is missing"))?;
        let lat = number("lat")?.ok_or_else(|| format!("{name}/lat is missing"))?;
        let position = Position {
            lon,
            lat,
            accuracy_m: number("accuracy_m")?,
        };
        position.check().map_err(|e| e.to_string())?;
        Ok(position)
    };
    Some(read())
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
