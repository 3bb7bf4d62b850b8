//! The messages of the sync protocol, CBOR-encoded with `minicbor` (already used for
//! patrol tracks: small, `no_std`-friendly, derive-based, and strict when decoding).
//!
//! Every message is a CBOR array whose first item is [`PROTOCOL_VERSION`]; fields
//! are numbered (`#[n(i)]`), so a later version can append fields that an older
//! decoder skips. Each document travels as an encoded Automerge sync message
//! ([`automerge::sync::Message`]: heads + changes), wrapped with its id and type.

use automerge::sync::Message as AutomergeMessage;
use minicbor::{Decode, Encode};

/// The protocol version this code speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The type of a document: which schema and write rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
#[cbor(index_only)]
pub enum DocKind {
    /// A case (案卷).
    #[n(0)]
    Case,
    /// A worker's patrol log for a day (巡查记录).
    #[n(1)]
    PatrolLog,
}

impl DocKind {
    /// The name used in storage and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Case => "case",
            DocKind::PatrolLog => "patrol_log",
        }
    }

    /// Parses [`DocKind::as_str`].
    pub fn parse(text: &str) -> Option<DocKind> {
        match text {
            "case" => Some(DocKind::Case),
            "patrol_log" => Some(DocKind::PatrolLog),
            _ => None,
        }
    }
}

/// Where a device stands, issued by the server in every reply and returned by the
/// device in its next request. A new device sends [`Cursor::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Encode, Decode)]
#[cbor(array)]
pub struct Cursor {
    /// The change catalogue's sequence number up to which the device has everything
    /// in its scope.
    #[n(0)]
    pub seq: u64,
    /// The serial number of the last reply the device committed: acknowledges what
    /// that reply sent.
    #[n(1)]
    pub serial: u64,
    /// The fingerprint of the scope this cursor was computed for.
    #[n(2)]
    pub scope: u64,
}

/// One document in a message: id, type, and an encoded Automerge sync message.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct DocUpdate {
    /// The document id.
    #[n(0)]
    pub id: String,
    /// Its type.
    #[n(1)]
    pub kind: DocKind,
    /// `automerge::sync::Message::encode()`: the heads the receiver will share with
    /// the sender after applying, and the changes.
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub message: Vec<u8>,
}

impl DocUpdate {
    /// Decodes the Automerge message.
    pub fn automerge_message(&self) -> Result<AutomergeMessage, String> {
        AutomergeMessage::decode(&self.message).map_err(|e| e.to_string())
    }

    /// Bytes this update adds to an encoded message (close upper bound).
    pub fn encoded_len(&self) -> usize {
        self.id.len() + self.message.len() + 16
    }
}

/// A device's request.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct Request {
    /// [`PROTOCOL_VERSION`].
    #[n(0)]
    pub version: u32,
    /// Chosen by the device; the reply repeats it, so a late reply to an earlier
    /// request is recognised and dropped.
    #[n(1)]
    pub request_id: u64,
    /// The cursor of the last reply the device committed.
    #[n(2)]
    pub cursor: Cursor,
    /// Documents changed on the device: the changes the server lacks.
    #[n(3)]
    pub docs: Vec<DocUpdate>,
    /// Documents the device could not apply changes to (their base is missing):
    /// send them whole.
    #[n(4)]
    pub resync: Vec<String>,
}

/// The server's reply.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct Reply {
    /// [`PROTOCOL_VERSION`].
    #[n(0)]
    pub version: u32,
    /// The request's id.
    #[n(1)]
    pub request_id: u64,
    /// What happened.
    #[n(2)]
    pub outcome: Outcome,
}

/// A reply's content.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Outcome {
    /// The request's documents are stored; here is what the device lacks.
    #[n(0)]
    Synced(#[n(0)] Synced),
    /// The request broke the rules for some documents: nothing of it was stored.
    #[n(1)]
    Refused(#[n(0)] Vec<Refusal>),
}

/// A stored request's reply.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct Synced {
    /// One per document of the request (its acknowledgement: the heads the server
    /// stored, with any changes the device lacks), then documents changed in the
    /// device's scope.
    #[n(0)]
    pub docs: Vec<DocUpdate>,
    /// Documents that left the device's scope.
    #[n(1)]
    pub evict: Vec<String>,
    /// The cursor to send next time, once this reply is committed.
    #[n(2)]
    pub cursor: Cursor,
    /// More is waiting: sync again.
    #[n(3)]
    pub more: bool,
}

/// Why a document of a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct Refusal {
    /// The document.
    #[n(0)]
    pub id: String,
    /// The kind of refusal.
    #[n(1)]
    pub code: RefusalCode,
    /// What the rules said: one line per violation (`path: rule`).
    #[n(2)]
    pub details: Vec<String>,
}

/// The kinds of per-document refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode, thiserror::Error)]
#[cbor(index_only)]
pub enum RefusalCode {
    /// The Automerge sync message or a change in it does not decode.
    #[n(0)]
    #[error("the Automerge sync message does not decode")]
    Undecodable,
    /// The document is not in the device's scope.
    #[n(1)]
    #[error("the document is outside the device's scope")]
    OutOfScope,
    /// A change breaks the write rules (including changes by another device).
    #[n(2)]
    #[error("the changes break the write rules")]
    WriteRules,
    /// The changes depend on changes the server does not have.
    #[n(3)]
    #[error("the changes depend on changes the server does not have")]
    MissingDependencies,
    /// The document exists with another type.
    #[n(4)]
    #[error("the document exists with another type")]
    KindMismatch,
    /// The document's own `id` is not the id it was sent under.
    #[n(5)]
    #[error("the document's id field does not match")]
    IdMismatch,
    /// The document is sent twice in one request.
    #[n(6)]
    #[error("the document is sent twice")]
    Duplicate,
    /// The claimed heads are not what the changes produce.
    #[n(7)]
    #[error("the heads do not match the changes")]
    UnknownHeads,
    /// A change was made by another device than the one sending it.
    #[n(8)]
    #[error("a change is by another device's actor")]
    ForeignActor,
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not CBOR of the expected shape (truncated, garbage).
    #[error("malformed sync message: {0}")]
    Malformed(String),
    /// A version this code does not speak.
    #[error("sync protocol version {0} is not supported (this is version {PROTOCOL_VERSION})")]
    Version(u32),
    /// Larger than the limit.
    #[error("sync message of {size} bytes is over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A document id that is empty, too long or not printable ASCII.
    #[error("bad document id {0:?}")]
    BadDocId(String),
}

fn check_size(bytes: &[u8], limit: usize) -> Result<(), DecodeError> {
    if bytes.len() > limit {
        Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit,
        })
    } else {
        Ok(())
    }
}

fn check_version(version: u32) -> Result<(), DecodeError> {
    if version == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(DecodeError::Version(version))
    }
}

fn encode<T: Encode<()>>(value: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail: the only errors are the writer's, and a Vec
    // always accepts bytes.
    minicbor::to_vec(value).unwrap_or_default()
}

impl Request {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a request of at most `limit` bytes, checking version and ids.
    pub fn decode(bytes: &[u8], limit: usize) -> Result<Request, DecodeError> {
        check_size(bytes, limit)?;
        // The version is read first, so a future version with another shape gets
        // `Version`, not `Malformed`.
        check_version(peek_version(bytes)?)?;
        let request: Request =
            minicbor::decode(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        for doc in &request.docs {
            super::check_doc_id(&doc.id)?;
        }
        for id in &request.resync {
            super::check_doc_id(id)?;
        }
        Ok(request)
    }
}

impl Reply {
    /// Encodes the reply.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a reply of at most `limit` bytes.
    pub fn decode(bytes: &[u8], limit: usize) -> Result<Reply, DecodeError> {
        check_size(bytes, limit)?;
        check_version(peek_version(bytes)?)?;
        let reply: Reply =
            minicbor::decode(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if let Outcome::Synced(synced) = &reply.outcome {
            for doc in &synced.docs {
                super::check_doc_id(&doc.id)?;
            }
            for id in &synced.evict {
                super::check_doc_id(id)?;
            }
        }
        Ok(reply)
    }
}

fn peek_version(bytes: &[u8]) -> Result<u32, DecodeError> {
    let mut decoder = minicbor::Decoder::new(bytes);
    let malformed = |e: minicbor::decode::Error| DecodeError::Malformed(e.to_string());
    decoder.array().map_err(malformed)?;
    decoder.u32().map_err(malformed)
}

/// The size limits of one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request the server accepts; larger ones are refused unread.
    pub max_request: usize,
    /// The size the server fills a reply up to (one document larger than this still
    /// goes alone, so a round always makes progress).
    pub reply_budget: usize,
    /// The size a device fills a request up to.
    pub request_budget: usize,
    /// The largest reply a device accepts.
    pub max_reply: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request: 8 << 20,
            reply_budget: 1 << 20,
            request_budget: 1 << 20,
            max_reply: 16 << 20,
        }
    }
}
