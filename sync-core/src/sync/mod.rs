//! The sync protocol (同步协议) between phones and the server, as pure state machines
//! over storage traits: no sockets, no SQL, no clock.
//!
//! # Why not plain Automerge sync
//!
//! Automerge's sync protocol negotiates each document separately: with a fresh or
//! reloaded sync state the first message carries only heads and a Bloom filter, so
//! every document costs a round trip before any change moves, and a peer that holds
//! thousands of documents announces every one on reconnect (automerge-repo does).
//! Here both sides keep **durable, acknowledged heads per (device, document)**, so
//! the sender already knows what the receiver has and sends `get_changes(heads)` at
//! once, and a **change catalogue** (every document's latest sequence number, like
//! CouchDB's by-seq index) tells a device in one request which of its documents
//! changed since its cursor. Each document still travels as an Automerge sync
//! message ([`automerge::sync::Message`]): the sender's heads and the changes.
//!
//! # One round
//!
//! The device sends a [`message::Request`]: its [`message::Cursor`], the documents it
//! changed (each with the changes the server lacks and the heads it will have), and
//! documents it could not apply and wants whole. The server ([`server::ServerSession`])
//! checks every incoming change with the write rules of its document type, refuses the
//! whole batch if any document breaks a rule (typed, per document; nothing stored), or
//! stores it and answers with a [`message::Reply`]: an acknowledgement per document,
//! what changed in the device's scope since its cursor, documents to evict, and a new
//! cursor. Requests and replies are bounded in size; a backlog takes several rounds,
//! each one stored progress.
//!
//! # Acknowledgements and faults
//!
//! The server records what a reply sent as *pending* under the reply's serial number;
//! the device's next request carries that serial in its cursor only if the device
//! committed the reply, and only then does the server count those heads as the device's
//! ([`server::PeerDoc::effective`]). A reply lost at any byte, a device or server that
//! crashes, a request delivered twice or late: the server's view of a device never
//! claims more than the device durably has, so at worst something is sent again, and
//! Automerge ignores a change it already has. (It may claim less: a late duplicate
//! request drops what an answered reply sent. So evictions go by the record, not the
//! heads: a document the server ever sent or received stays evictable until the
//! device acknowledges its eviction. A seed of the long simulation found this.) A device that receives changes it cannot
//! apply (their base is missing) asks for the whole document (`resync`).

pub mod device;
pub mod memory;
pub mod message;
pub mod server;

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use automerge::{Automerge, Change, ChangeHash};
use sha2::{Digest, Sha256};

use crate::case::{CaseDocument, WorkflowContext};
use crate::grid::GridCode;
use crate::patrol::{self, PatrolLog};
use crate::role::{Actor, GridScope, Role};

pub use message::{Cursor, DocKind, PROTOCOL_VERSION};

/// The longest document id, in bytes.
pub const MAX_DOC_ID_BYTES: usize = 64;

/// Checks a document id: 1–64 bytes, printable ASCII without spaces.
pub fn check_doc_id(id: &str) -> Result<(), message::DecodeError> {
    let ok =
        !id.is_empty() && id.len() <= MAX_DOC_ID_BYTES && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(message::DecodeError::BadDocId(
            id.chars().take(80).collect(),
        ))
    }
}

/// What decides who receives a document, derived from the document by
/// [`DocMeta::of`] and kept beside it in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocMeta {
    /// The unit grids it concerns: a case's grid; the grids a patrol log checked in at.
    pub grids: Vec<GridCode>,
    /// Its owner: a case's reporter, a patrol log's worker.
    pub owner: Option<String>,
    /// Who a case is dispatched to by name (派遣 to a person).
    pub assignees: Vec<String>,
}

impl DocMeta {
    /// The meta of a folded case: its grid, its reporter, the person it is
    /// dispatched to.
    pub fn of_case(view: &crate::case::CaseView) -> DocMeta {
        DocMeta {
            grids: view.record.grid.into_iter().collect(),
            owner: view.record.reporter.clone(),
            assignees: view
                .assignment
                .as_ref()
                .and_then(|a| a.assignee.clone())
                .into_iter()
                .collect(),
        }
    }

    /// The meta of a document of `kind`, and the id written in it.
    pub fn of(
        kind: DocKind,
        doc: &Automerge,
        context: &WorkflowContext<'_>,
    ) -> (Option<String>, DocMeta) {
        match kind {
            DocKind::Case => {
                let view = CaseDocument::from_automerge(doc.clone()).fold(context);
                let meta = DocMeta::of_case(&view);
                (view.record.id, meta)
            }
            DocKind::PatrolLog => {
                let record = PatrolLog::from_automerge(doc.clone()).read();
                let mut grids: Vec<GridCode> =
                    record.checkins.iter().filter_map(|c| c.grid).collect();
                grids.sort();
                grids.dedup();
                (
                    record.id,
                    DocMeta {
                        grids,
                        owner: record.worker,
                        assignees: Vec::new(),
                    },
                )
            }
        }
    }
}

/// Which documents a device may receive. The server asks it of every document it
/// would send; the simulation checks that nothing else ever reaches a device.
pub trait Scope {
    /// Whether the device may hold a document of `kind` with `meta`.
    fn may_receive(&self, kind: DocKind, meta: &DocMeta) -> bool;
    /// Changes whenever the answers may change (another posting, another role): a
    /// device whose cursor carries another fingerprint is re-scanned from the start
    /// and loses what left its scope.
    fn fingerprint(&self) -> u64;
    /// What a storage may use to skip catalogue entries with an index before
    /// [`Scope::may_receive`] judges each one: it must admit at least every document
    /// `may_receive` admits. The default admits everything.
    fn catalogue_filter(&self) -> CatalogueFilter {
        CatalogueFilter::everything()
    }
}

/// A coarse, index-friendly superset of a scope ([`Scope::catalogue_filter`]): a
/// round scans the catalogue from the device's cursor, and without it would read every
/// document written anywhere in the city since then. A storage answers
/// [`server::ServerStorage::changed_since`] with the entries this admits plus those the
/// device holds (which may have to be evicted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueFilter {
    /// Documents this user owns (a case's reporter, a patrol log's worker) or a case
    /// is dispatched to (an assignee).
    pub user: Option<String>,
    /// Cases whose grid code starts with one of these (`""`: every case with a grid).
    pub case_grids: Vec<String>,
    /// Documents with no grid (a case not located yet, a patrol log without a
    /// check-in).
    pub without_grid: bool,
    /// Patrol logs with a check-in grid starting with one of these.
    pub patrol_grids: Vec<String>,
}

impl CatalogueFilter {
    /// Admits every document.
    pub fn everything() -> CatalogueFilter {
        CatalogueFilter {
            user: None,
            case_grids: vec![String::new()],
            without_grid: true,
            patrol_grids: vec![String::new()],
        }
    }

    /// Whether the filter admits a document of `kind` with `meta` (what a storage's
    /// query computes, here for the in-memory storage and the tests).
    pub fn admits(&self, kind: DocKind, meta: &DocMeta) -> bool {
        if let Some(user) = &self.user
            && (meta.owner.as_ref() == Some(user) || meta.assignees.contains(user))
        {
            return true;
        }
        let under = |prefixes: &[String]| {
            meta.grids.iter().any(|g| {
                let code = g.to_string();
                prefixes.iter().any(|p| code.starts_with(p.as_str()))
            })
        };
        if meta.grids.is_empty() {
            return self.without_grid;
        }
        match kind {
            DocKind::Case => under(&self.case_grids),
            DocKind::PatrolLog => under(&self.patrol_grids),
        }
    }
}

/// Grid code prefix lengths the catalogue is indexed by (district, street, community,
/// unit grid). Shorter prefixes (a province, the city) match nearly every document:
/// a storage reads those by position instead.
pub const INDEXED_PREFIX_LENGTHS: [usize; 4] = [6, 9, 12, 15];

/// The catalogue index key of a user (an owner, an assignee, a writer).
pub fn user_key(user: &str) -> String {
    format!("user:{user}")
}

/// The catalogue index key of documents without a grid.
pub const NO_GRID_KEY: &str = "nogrid";

fn grid_key(kind: DocKind, prefix: &str) -> String {
    match kind {
        DocKind::Case => format!("case:{prefix}"),
        DocKind::PatrolLog => format!("patrol:{prefix}"),
    }
}

impl DocMeta {
    /// The keys a storage indexes a document of `kind` under, so that a round reads
    /// the entries of its scope without scanning the others ([`CatalogueLookup`]):
    /// its owner and assignees, and each indexed prefix of each of its grids (or
    /// [`NO_GRID_KEY`]).
    pub fn catalogue_keys(&self, kind: DocKind) -> Vec<String> {
        let mut keys: Vec<String> = self
            .owner
            .iter()
            .chain(&self.assignees)
            .map(|u| user_key(u))
            .collect();
        if self.grids.is_empty() {
            keys.push(NO_GRID_KEY.to_owned());
        }
        for grid in &self.grids {
            let code = grid.to_string();
            for len in INDEXED_PREFIX_LENGTHS {
                if let Some(prefix) = code.get(..len) {
                    keys.push(grid_key(kind, prefix));
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

/// How a storage reads what a [`CatalogueFilter`] admits: the entries under any of
/// `keys` (see [`DocMeta::catalogue_keys`]), plus those `unindexed` admits (prefixes
/// too short to index, read by position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueLookup {
    /// Index keys, sorted.
    pub keys: Vec<String>,
    /// What no key covers (a city-wide scope); `None` when the keys cover it all.
    pub unindexed: Option<CatalogueFilter>,
}

impl CatalogueFilter {
    /// The index keys and the rest: a document is admitted exactly when one of its
    /// [`DocMeta::catalogue_keys`] is among `keys` or `unindexed` admits it.
    pub fn lookup(&self) -> CatalogueLookup {
        let mut keys: Vec<String> = self.user.iter().map(|u| user_key(u)).collect();
        if self.without_grid {
            keys.push(NO_GRID_KEY.to_owned());
        }
        let mut rest = CatalogueFilter {
            user: None,
            case_grids: Vec::new(),
            without_grid: false,
            patrol_grids: Vec::new(),
        };
        for (kind, prefixes, short) in [
            (DocKind::Case, &self.case_grids, &mut rest.case_grids),
            (
                DocKind::PatrolLog,
                &self.patrol_grids,
                &mut rest.patrol_grids,
            ),
        ] {
            for prefix in prefixes {
                if INDEXED_PREFIX_LENGTHS.contains(&prefix.len()) {
                    keys.push(grid_key(kind, prefix));
                } else {
                    short.push(prefix.clone());
                }
            }
        }
        keys.sort();
        keys.dedup();
        let unindexed =
            (!rest.case_grids.is_empty() || !rest.patrol_grids.is_empty()).then_some(rest);
        CatalogueLookup { keys, unindexed }
    }
}

/// The scope of a signed-in user's device: the cases of the grids they work in,
/// cases dispatched to them, their own reports and patrol logs, and for reviewers
/// ([`patrol::reviews`]) the patrol logs that checked in within their grids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScope {
    /// The user.
    pub user: String,
    /// Their role.
    pub role: Role,
    /// The grids they work in.
    pub grids: GridScope,
}

impl UserScope {
    /// The scope of `actor`.
    pub fn of(actor: &Actor) -> UserScope {
        UserScope {
            user: actor.user.clone(),
            role: actor.role,
            grids: actor.scope.clone(),
        }
    }
}

impl Scope for UserScope {
    fn may_receive(&self, kind: DocKind, meta: &DocMeta) -> bool {
        if meta.owner.as_deref() == Some(self.user.as_str()) {
            return true;
        }
        match kind {
            DocKind::Case => {
                meta.assignees.contains(&self.user)
                    || match meta.grids.as_slice() {
                        [] => self.grids.covers(None),
                        grids => grids.iter().any(|g| self.grids.covers(Some(g))),
                    }
            }
            DocKind::PatrolLog => {
                patrol::reviews(self.role) && meta.grids.iter().any(|g| self.grids.covers(Some(g)))
            }
        }
    }

    fn fingerprint(&self) -> u64 {
        // A stable hash (not `DefaultHasher`, which may change between releases):
        // fingerprints are stored in devices' cursors.
        let text = format!(
            "{}\u{0}{}\u{0}{}",
            self.user,
            self.role.as_str(),
            self.grids
        );
        let digest = Sha256::digest(text.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        // Zero is the fingerprint of a new device's empty cursor.
        u64::from_le_bytes(first).max(1)
    }

    fn catalogue_filter(&self) -> CatalogueFilter {
        let prefixes = self.grids.prefixes().to_vec();
        CatalogueFilter {
            user: Some(self.user.clone()),
            without_grid: self.grids.covers(None),
            patrol_grids: if patrol::reviews(self.role) {
                prefixes.clone()
            } else {
                Vec::new()
            },
            case_grids: prefixes,
        }
    }
}

/// The document-type rules the server applies to incoming changes: the write rules
/// and the meta.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Catalogue and calendar, for folding cases.
    pub context: WorkflowContext<'a>,
}

impl Rules<'_> {
    /// Checks `changes` to a document of `kind` stored as `base`, written by `writer`;
    /// gives `base` with them applied.
    pub fn check(
        &self,
        kind: DocKind,
        base: &Automerge,
        changes: &[Change],
        writer: &Actor,
    ) -> Result<Automerge, crate::document::WriteRefused> {
        match kind {
            DocKind::Case => crate::case::rules::check_case_changes(base, changes, writer),
            DocKind::PatrolLog => patrol::check_patrol_changes(base, changes, writer),
        }
    }
}

/// The heads of a document that has `base` plus `changes`, where `changes` are
/// changes not in `base`'s history, in causal order, such as a prefix of
/// `get_changes(base)`. A base head stays a head unless a change depends on it
/// directly (a base head has no descendants in the base, so any path from a change
/// to it ends in a direct dependency).
pub fn heads_after(base: &[ChangeHash], changes: &[Change]) -> Vec<ChangeHash> {
    let depended: BTreeSet<ChangeHash> = changes
        .iter()
        .flat_map(|c| c.deps().iter().copied())
        .collect();
    let mut heads: Vec<ChangeHash> = base
        .iter()
        .copied()
        .chain(changes.iter().map(Change::hash))
        .filter(|h| !depended.contains(h))
        .collect();
    heads.sort();
    heads.dedup();
    heads
}

/// Heads as a sorted, deduplicated list, so two lists compare as sets.
pub fn sorted_heads(heads: &[ChangeHash]) -> Vec<ChangeHash> {
    let mut heads = heads.to_vec();
    heads.sort();
    heads.dedup();
    heads
}

/// Loads a document from stored chunks: a save and incremental changes, in any
/// number. Refuses bytes that do not load, or whose changes are missing a base.
pub fn load_chunks(chunks: &[Vec<u8>]) -> Result<Automerge, automerge::AutomergeError> {
    let mut doc = Automerge::new();
    for chunk in chunks {
        doc.load_incremental(chunk)?;
    }
    Ok(doc)
}
