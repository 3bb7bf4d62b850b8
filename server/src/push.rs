//! Push (推送): one WebSocket per online device (`GET /v1/push`). The server sends
//! JSON notices; the phone answers a notice by syncing (`POST /v1/sync`), which is
//! where the data travels. A device that is offline misses nothing: its next sync
//! brings everything.
//!
//! Notices: `hello` on connect; `sync_now` when a sync round wrote documents the
//! device may receive now or could before (so it fetches them, or evicts them);
//! `dispatch` when a case is newly dispatched (派遣) to the device's user;
//! `double_report` to the grid leader and 下沉 official told of a report beyond its
//! reporter's authority (双报告, `crate::double_report`); `revoked`
//! just before the server closes the socket of a revoked device (checked every
//! `check_every`, so within a minute of `wangge device revoke`).
//!
//! The hub holds this node's sockets. Across several nodes on one PostgreSQL, every
//! node publishes what its rounds wrote (`NOTIFY`, [`PushHub::to_other_nodes`]) and
//! applies what the others wrote to its own sockets ([`PushHub::from_other_node`]),
//! so a dispatch decided on node A reaches a phone connected to node B. A notice lost
//! while a node's listening connection reconnects costs nothing but latency: the
//! phone's next sync brings the data.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use wangge_sync_core::sync::server::Written;
use wangge_sync_core::sync::{DocKind, DocMeta, Scope, UserScope};

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
    /// A field worker reported a problem beyond their authority in this user's grid
    /// (双报告): the grid leader and the 下沉 official are told.
    DoubleReport {
        /// The case id.
        case: String,
    },
}

/// The most documents one fan-out message names (PostgreSQL's NOTIFY payload is
/// under 8,000 bytes).
const FANOUT_DOCUMENTS: usize = 24;

struct Connection {
    id: u64,
    device: String,
    scope: UserScope,
    sender: mpsc::UnboundedSender<Notice>,
}

/// The online devices of this node.
pub struct PushHub {
    connections: Mutex<Vec<Connection>>,
    /// This node's id in fan-out messages (its own come back to it and are skipped).
    node: String,
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
            node: uuid::Uuid::now_v7().simple().to_string(),
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

    /// Closes every socket (at shutdown: a push socket holds a slot of the
    /// connection cap, and the graceful stop waits for the slots); the phones
    /// reconnect to another node, or to this one when it is back, and catch up.
    pub fn close_all(&self) {
        self.lock().clear();
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

fn meta_json(meta: &DocMeta) -> serde_json::Value {
    serde_json::json!({
        "grids": meta.grids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "owner": meta.owner,
        "assignees": meta.assignees,
    })
}

fn meta_from_json(value: &serde_json::Value) -> Option<DocMeta> {
    let strings = |v: &serde_json::Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    Some(DocMeta {
        grids: strings(&value["grids"])?
            .iter()
            .map(|g| g.parse().ok())
            .collect::<Option<Vec<_>>>()?,
        owner: value["owner"].as_str().map(str::to_owned),
        assignees: strings(&value["assignees"])?,
    })
}

impl PushHub {
    /// Sends `notice` to every device of `users` online on this node.
    pub fn tell(&self, users: &[String], notice: &Notice) {
        for connection in self.lock().iter().filter(|c| users.contains(&c.scope.user)) {
            let _ = connection.sender.send(notice.clone());
        }
    }

    /// A double report's notice for the other nodes' devices of `users`.
    pub fn tell_other_nodes(&self, users: &[String], case: &str) -> String {
        serde_json::json!({
            "node": self.node,
            "tell": { "users": users, "double_report": case },
        })
        .to_string()
    }

    /// What a round by `writer` wrote, as messages for the other nodes.
    pub fn to_other_nodes(&self, writer: &str, written: &[Written]) -> Vec<String> {
        written
            .chunks(FANOUT_DOCUMENTS)
            .map(|chunk| {
                let written: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|w| {
                        serde_json::json!({
                            "id": w.id,
                            "kind": w.kind.as_str(),
                            "meta": meta_json(&w.meta),
                            "previous": w.previous.as_ref().map(meta_json),
                        })
                    })
                    .collect();
                serde_json::json!({ "node": self.node, "writer": writer, "written": written })
                    .to_string()
            })
            .collect()
    }

    /// Applies another node's message to this node's sockets (its own are skipped).
    pub fn from_other_node(&self, message: &str) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(message) else {
            tracing::warn!(message, "unreadable fan-out message");
            return;
        };
        if value["node"].as_str() == Some(self.node.as_str()) {
            return;
        }
        if let Some(tell) = value.get("tell") {
            let users: Option<Vec<String>> = tell["users"].as_array().and_then(|users| {
                users
                    .iter()
                    .map(|u| u.as_str().map(str::to_owned))
                    .collect()
            });
            match (users, tell["double_report"].as_str()) {
                (Some(users), Some(case)) => self.tell(
                    &users,
                    &Notice::DoubleReport {
                        case: case.to_owned(),
                    },
                ),
                _ => tracing::warn!(message, "malformed fan-out message"),
            }
            return;
        }
        let writer = value["writer"].as_str().unwrap_or_default();
        let written: Option<Vec<Written>> = value["written"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                Some(Written {
                    id: w["id"].as_str()?.to_owned(),
                    kind: DocKind::parse(w["kind"].as_str()?)?,
                    meta: meta_from_json(&w["meta"])?,
                    previous: match &w["previous"] {
                        serde_json::Value::Null => None,
                        previous => Some(meta_from_json(previous)?),
                    },
                })
            })
            .collect();
        match written {
            Some(written) => self.written(writer, &written),
            None => tracing::warn!(message, "malformed fan-out message"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wangge_sync_core::role::{GridScope, Role};

    fn scope(user: &str) -> UserScope {
        UserScope {
            user: user.to_owned(),
            role: Role::GridLeader,
            grids: GridScope::everywhere(),
        }
    }

    #[test]
    fn a_double_report_told_on_one_node_reaches_its_users_on_another() {
        let (a, b) = (
            PushHub::new(Duration::from_secs(30)),
            PushHub::new(Duration::from_secs(30)),
        );
        let (_, mut leader) = b.register("device-1", scope("leader"));
        let (_, mut other) = b.register("device-2", scope("other"));
        let message = a.tell_other_nodes(&["leader".to_owned()], "case-1");
        // A node skips its own message; the other applies it.
        a.from_other_node(&message);
        b.from_other_node(&message);
        let told = Notice::DoubleReport {
            case: "case-1".into(),
        };
        assert_eq!(leader.try_recv().ok(), Some(told));
        assert!(leader.try_recv().is_err() && other.try_recv().is_err());
        // Malformed: nothing sent, nothing panics.
        b.from_other_node(r#"{"node":"x","tell":{"users":[1],"double_report":"c"}}"#);
        assert!(leader.try_recv().is_err());
        assert_eq!(
            serde_json::to_value(Notice::DoubleReport { case: "c".into() }).ok(),
            Some(serde_json::json!({"type": "double_report", "case": "c"}))
        );
    }
}
