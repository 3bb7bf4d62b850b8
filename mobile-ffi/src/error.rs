//! The one error type every exported call returns: a uniffi error enum, so Kotlin,
//! Swift and Python get a typed exception whose message a screen can show.

use wangge_sync_core::case::CaseError;
use wangge_sync_core::patrol::PatrolError;
use wangge_sync_core::photo::PhotoError;
use wangge_sync_core::sync::device::DeviceSyncError;

use crate::store::StoreError;

/// Why a call failed. Nothing was written unless the variant says so. (No field is
/// named `message`: in Kotlin it would clash with `Throwable.message`.)
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum FieldError {
    /// The server cannot be reached; local work is kept and goes with the next sync.
    #[error("offline: {detail}")]
    Offline {
        /// What failed.
        detail: String,
    },
    /// The server was reached but TLS failed: an `https://` URL to a plain-HTTP
    /// port, a certificate no trusted authority signed (a private CA not given in
    /// `trusted_ca_pem`), a name mismatch, an expired certificate. Retrying will not
    /// help: the URL or the configuration is wrong.
    #[error("TLS failed: {detail}")]
    Tls {
        /// What rustls said.
        detail: String,
    },
    /// No session: log in first.
    #[error("not logged in")]
    NotLoggedIn,
    /// The user name or password is wrong.
    #[error("wrong user name or password")]
    BadCredentials,
    /// The session ended (refresh token invalid or reused): log in again; local work
    /// is kept.
    #[error("the session ended: {detail}")]
    SessionExpired {
        /// The server's words.
        detail: String,
    },
    /// This device was revoked by an administrator: its data has been wiped.
    #[error("this device was revoked; its data was wiped")]
    DeviceRevoked,
    /// The workflow, the write rules or the scope refuse the action; nothing written.
    #[error("refused: {reason}")]
    ActionRefused {
        /// Why.
        reason: String,
    },
    /// No such case, photo file or document.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// An argument is not valid (category code, position, text too long, …).
    #[error("invalid input: {detail}")]
    InvalidInput {
        /// What is wrong.
        detail: String,
    },
    /// A photo cannot be used.
    #[error("photo refused ({code}): {detail}")]
    Photo {
        /// `not_found`, `not_an_image`, `heif_unsupported`, `too_large`, `corrupt`, `empty`.
        code: String,
        /// Details.
        detail: String,
    },
    /// The server answered something that is not our protocol (an HTML page from a
    /// captive portal, garbage): nothing was stored.
    #[error("the server's answer is not understood (HTTP {status}, {content_type}): {detail}")]
    BadServerAnswer {
        /// The HTTP status.
        status: u16,
        /// The answer's content type.
        content_type: String,
        /// The start of the body, or why it did not decode.
        detail: String,
    },
    /// The server refused the request with an error of its own.
    #[error("server error {status} {code}: {detail}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's error code.
        code: String,
        /// The server's message.
        detail: String,
    },
    /// The phone's store failed. `recoverable` is false when the file is damaged:
    /// the app offers `wipe_data_dir` (unsent work in it is lost).
    #[error("storage failed: {detail}")]
    Storage {
        /// Whether retrying may help.
        recoverable: bool,
        /// Details.
        detail: String,
    },
    /// The client was logged out and wiped; open a new one.
    #[error("this client is closed")]
    Closed,
    /// A bug.
    #[error("internal error: {detail}")]
    Internal {
        /// Details.
        detail: String,
    },
}

impl FieldError {
    pub(crate) fn invalid(message: impl Into<String>) -> FieldError {
        FieldError::InvalidInput {
            detail: message.into(),
        }
    }

    pub(crate) fn internal(message: impl std::fmt::Display) -> FieldError {
        FieldError::Internal {
            detail: message.to_string(),
        }
    }
}

impl From<StoreError> for FieldError {
    fn from(error: StoreError) -> FieldError {
        if let StoreError::NotADirectory(_) = error {
            // The app passed a wrong path: neither retrying nor wiping helps.
            return FieldError::invalid(format!("data_dir: {error}"));
        }
        FieldError::Storage {
            recoverable: !error.is_permanent(),
            detail: error.to_string(),
        }
    }
}

impl From<CaseError> for FieldError {
    fn from(error: CaseError) -> FieldError {
        match error {
            CaseError::Refused { .. } | CaseError::WriteRefused(_) => FieldError::ActionRefused {
                reason: error.to_string(),
            },
            CaseError::Invalid(_) | CaseError::Position(_) => {
                FieldError::invalid(error.to_string())
            }
            CaseError::NewerSchema { .. } => FieldError::ActionRefused {
                reason: error.to_string(),
            },
            CaseError::Load(_) => FieldError::Storage {
                recoverable: false,
                detail: error.to_string(),
            },
            CaseError::Automerge(_) | CaseError::Device(_) => FieldError::internal(error),
        }
    }
}

impl From<PatrolError> for FieldError {
    fn from(error: PatrolError) -> FieldError {
        match error {
            PatrolError::Invalid(_) | PatrolError::Position(_) => {
                FieldError::invalid(error.to_string())
            }
            PatrolError::WriteRefused(_) | PatrolError::NewerSchema { .. } => {
                FieldError::ActionRefused {
                    reason: error.to_string(),
                }
            }
            PatrolError::Load(_) => FieldError::Storage {
                recoverable: false,
                detail: error.to_string(),
            },
            PatrolError::Automerge(_) | PatrolError::Device(_) => FieldError::internal(error),
        }
    }
}

impl From<PhotoError> for FieldError {
    fn from(error: PhotoError) -> FieldError {
        let code = match &error {
            PhotoError::Empty => "empty",
            PhotoError::UnsupportedFormat => "not_an_image",
            PhotoError::HeifUnsupported => "heif_unsupported",
            PhotoError::TooLarge { .. } => "too_large",
            PhotoError::Corrupt(_) | PhotoError::Exif(_) => "corrupt",
            PhotoError::Internal(_) => return FieldError::internal(error),
        };
        FieldError::Photo {
            code: code.to_owned(),
            detail: error.to_string(),
        }
    }
}

impl From<DeviceSyncError> for FieldError {
    fn from(error: DeviceSyncError) -> FieldError {
        match error {
            DeviceSyncError::Decode(_)
            | DeviceSyncError::NotOurs { .. }
            | DeviceSyncError::BadDocument { .. } => FieldError::BadServerAnswer {
                status: 200,
                content_type: "application/cbor".into(),
                detail: error.to_string(),
            },
            DeviceSyncError::CorruptDocument { .. } => FieldError::Storage {
                recoverable: false,
                detail: error.to_string(),
            },
            DeviceSyncError::Storage(inner) => FieldError::Storage {
                recoverable: true,
                detail: inner.to_string(),
            },
        }
    }
}
