//! Push (推送): one WebSocket per online device (`GET /v1/push`). The server sends
//! JSON notices; the phone answers a notice by syncing (`POST /v1/sync`), which is
//! where the data travels. A device that is offline misses nothing: its next sync
//! brings everything.
//!
//! Notices: `hello` on connect; `sync_now` when a sync round wrote documents the
//! device may receive now or could before (so it fetches them, or evicts them);
//! `dispatch` when a case is newly dispatched (派遣) to the device's user; `revoked`
//! just before the server closes the socket of a revoked device (checked every
//! `check_every`, so within a minute of `wangge device revoke`).
//!
//! The hub is per node: across several nodes, notices would fan out through
//! PostgreSQL LISTEN/NOTIFY (not built yet).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use wangge_sync_core::sync::server::Written;
use wangge_sync_core::sync::{Scope, UserScope};

/// A notice, as the JSON text frame the phone receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// Connected.
    Hello {
        /// The device id.
        device: String,
    },
    /// Documents of the device's scope changed (or left it): sync.
    SyncNow {
        /// Their ids.
        documents: Vec<String>,
    },
    /// A case was dispatched to this user.
    Dispatch {
        /// The case id.
        case: String,
    },
    /// The device is revoked; the socket closes.
    Revoked,
}

struct Connection {
    id: u64,
    device: String,
    scope: UserScope,
    sender: mpsc::UnboundedSender<Notice>,
}

/// The online devices of this node.
pub struct PushHub {
    connections: Mutex<Vec<Connection>>,
    next_id: AtomicU64,
    /// How often a connection checks that its device is not revoked.
    pub check_every: Duration,
}

impl std::fmt::Debug for PushHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushHub")
            .field("connections", &self.online())
            .field("check_every", &self.check_every)
            .finish()
    }
}

impl PushHub {
    /// A hub whose connections check revocation every `check_every`.
    pub fn new(check_every: Duration) -> PushHub {
        PushHub {
            connections: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            check_every,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many sockets are open.
    pub fn online(&self) -> usize {
        self.lock().len()
    }

    /// Registers a socket of `device` (its actor id) for `scope`; returns its id and
    /// the notices to send.
    pub fn register(
        &self,
        device: &str,
        scope: UserScope,
    ) -> (u64, mpsc::UnboundedReceiver<Notice>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Connection {
            id,
            device: device.to_owned(),
            scope,
            sender,
        });
        (id, receiver)
    }

    /// Forgets a socket.
    pub fn unregister(&self, id: u64) {
        self.lock().retain(|c| c.id != id);
    }

    /// Tells every other online device what a sync round by `writer` wrote.
    pub fn written(&self, writer: &str, written: &[Written]) {
        if written.is_empty() {
            return;
        }
        let connections = self.lock();
        for connection in connections.iter().filter(|c| c.device != writer) {
            let scope = &connection.scope;
            let documents: Vec<String> = written
                .iter()
                .filter(|w| {
                    scope.may_receive(w.kind, &w.meta)
                        || w.previous
                            .as_ref()
                            .is_some_and(|p| scope.may_receive(w.kind, p))
                })
                .map(|w| w.id.clone())
                .collect();
            if documents.is_empty() {
                continue;
            }
            for w in written {
                let mine =
                    |meta: &wangge_sync_core::sync::DocMeta| meta.assignees.contains(&scope.user);
                if mine(&w.meta) && !w.previous.as_ref().is_some_and(mine) {
                    // A closed socket's receiver is gone; it unregisters itself.
                    let _ = connection
                        .sender
                        .send(Notice::Dispatch { case: w.id.clone() });
                }
            }
            let _ = connection.sender.send(Notice::SyncNow { documents });
        }
    }
}
