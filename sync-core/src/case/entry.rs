//! Timeline entries (流程记录): one action by one person, appended and never changed.
//!
//! In the document an entry is a map of scalars: the claim of who acted (`user`,
//! `role`, `team`, `scope`, `device`), `id`, `action`, `at` (milliseconds since the
//! Unix epoch, UTC), an optional `note`, and the keys of the action's payload. A map
//! of scalars costs one operation per key and nobody edits an entry after it is
//! written, so nothing richer is needed.

use std::fmt;
use std::str::FromStr;

use autosurgeon::reconcile::MapReconciler;
use autosurgeon::{Hydrate, Reconcile, Reconciler};
use chrono::{DateTime, Utc};

use crate::catalog::{TeamId, TimeLimit};
use crate::grid::GridCode;
use crate::role::{Actor, GridScope, Role, check_user_id};

/// What an entry does to the case. The workflow (which role may do which action in
/// which status) is in [`crate::case::fold`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Report (上报): the first entry of every case.
    Report,
    /// Accept/verify (受理/核实): the report is real and in the system's remit.
    Accept,
    /// Register (立案): the command centre opens the case.
    Register,
    /// Dispatch (派遣) to a team, optionally to one person of it.
    Dispatch {
        /// The team that must handle the case.
        team: TeamId,
        /// A user of that team, when the dispatcher names one.
        assignee: Option<String>,
    },
    /// Handle (处置): the assigned team reports the problem fixed.
    Handle,
    /// Verify the result (核查) on site: it is fixed.
    Verify,
    /// Rework (返工): the verification failed; back to the same team.
    Rework,
    /// Close (结案).
    Close,
    /// Return (退回) to the dispatcher: the case is not this team's.
    Return,
    /// Ask for more time (延期申请) to handle.
    RequestExtension {
        /// How much more time.
        extra: TimeLimit,
    },
    /// Grant or refuse (延期审批) the pending extension request.
    DecideExtension {
        /// Whether the extension is granted.
        approved: bool,
    },
    /// Ask to defer (挂账申请): the problem cannot be fixed now (budget, season).
    RequestDefer,
    /// Grant or refuse (挂账审批) the pending defer request; a deferred case's
    /// clock stops until it is dispatched again.
    DecideDefer {
        /// Whether the case is deferred.
        approved: bool,
    },
    /// Void (作废): not a real problem, a duplicate, not the bureau's remit.
    Void,
    /// Escalate (逐级上报) to the next level: beyond this level's authority.
    Escalate,
    /// Reopen (重新打开) a closed or voided case.
    Reopen,
    /// Comment (备注): changes nothing.
    Comment,
    /// Reply (回复/回访) to the caller of a closed hotline or citizen case: the reply's
    /// text is the entry's note. An unsatisfied caller's case can be reopened.
    Reply {
        /// How the caller was told.
        channel: ReplyChannel,
        /// Whether the caller is satisfied with the result.
        satisfied: bool,
    },
}

/// How the caller was told the result (回访方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyChannel {
    /// A phone call (电话回访).
    Phone,
    /// A text message (短信).
    Sms,
    /// The Open311 request's status notes (网上回复).
    Open311,
    /// In person (上门回访).
    InPerson,
}

impl ReplyChannel {
    /// Every channel.
    pub const ALL: [ReplyChannel; 4] = [
        ReplyChannel::Phone,
        ReplyChannel::Sms,
        ReplyChannel::Open311,
        ReplyChannel::InPerson,
    ];

    /// The identifier stored in the document and used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReplyChannel::Phone => "phone",
            ReplyChannel::Sms => "sms",
            ReplyChannel::Open311 => "open311",
            ReplyChannel::InPerson => "in_person",
        }
    }

    /// The channel named by its identifier.
    pub fn parse(text: &str) -> Option<ReplyChannel> {
        ReplyChannel::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl Action {
    /// The identifier stored in the document, e.g. `dispatch`.
    pub const fn as_str(&self) -> &'static str {
        self.name().as_str()
    }

    /// The name of this action, without its payload.
    pub const fn name(&self) -> ActionName {
        match self {
            Action::Report => ActionName::Report,
            Action::Accept => ActionName::Accept,
            Action::Register => ActionName::Register,
            Action::Dispatch { .. } => ActionName::Dispatch,
            Action::Handle => ActionName::Handle,
            Action::Verify => ActionName::Verify,
            Action::Rework => ActionName::Rework,
            Action::Close => ActionName::Close,
            Action::Return => ActionName::Return,
            Action::RequestExtension { .. } => ActionName::RequestExtension,
            Action::DecideExtension { .. } => ActionName::DecideExtension,
            Action::RequestDefer => ActionName::RequestDefer,
            Action::DecideDefer { .. } => ActionName::DecideDefer,
            Action::Void => ActionName::Void,
            Action::Escalate => ActionName::Escalate,
            Action::Reopen => ActionName::Reopen,
            Action::Comment => ActionName::Comment,
            Action::Reply { .. } => ActionName::Reply,
        }
    }
}

/// The name of an action, without payload: what permissions are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum ActionName {
    Report,
    Accept,
    Register,
    Dispatch,
    Handle,
    Verify,
    Rework,
    Close,
    Return,
    RequestExtension,
    DecideExtension,
    RequestDefer,
    DecideDefer,
    Void,
    Escalate,
    Reopen,
    Comment,
    Reply,
}

impl ActionName {
    /// Every action.
    pub const ALL: [ActionName; 18] = [
        ActionName::Report,
        ActionName::Accept,
        ActionName::Register,
        ActionName::Dispatch,
        ActionName::Handle,
        ActionName::Verify,
        ActionName::Rework,
        ActionName::Close,
        ActionName::Return,
        ActionName::RequestExtension,
        ActionName::DecideExtension,
        ActionName::RequestDefer,
        ActionName::DecideDefer,
        ActionName::Void,
        ActionName::Escalate,
        ActionName::Reopen,
        ActionName::Comment,
        ActionName::Reply,
    ];

    /// The identifier stored in the document.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionName::Report => "report",
            ActionName::Accept => "accept",
            ActionName::Register => "register",
            ActionName::Dispatch => "dispatch",
            ActionName::Handle => "handle",
            ActionName::Verify => "verify",
            ActionName::Rework => "rework",
            ActionName::Close => "close",
            ActionName::Return => "return",
            ActionName::RequestExtension => "request_extension",
            ActionName::DecideExtension => "decide_extension",
            ActionName::RequestDefer => "request_defer",
            ActionName::DecideDefer => "decide_defer",
            ActionName::Void => "void",
            ActionName::Escalate => "escalate",
            ActionName::Reopen => "reopen",
            ActionName::Comment => "comment",
            ActionName::Reply => "reply",
        }
    }

    /// Chinese label, e.g. 派遣.
    pub const fn name_zh(self) -> &'static str {
        match self {
            ActionName::Report => "上报",
            ActionName::Accept => "受理",
            ActionName::Register => "立案",
            ActionName::Dispatch => "派遣",
            ActionName::Handle => "处置",
            ActionName::Verify => "核查通过",
            ActionName::Rework => "返工",
            ActionName::Close => "结案",
            ActionName::Return => "退回",
            ActionName::RequestExtension => "延期申请",
            ActionName::DecideExtension => "延期审批",
            ActionName::RequestDefer => "挂账申请",
            ActionName::DecideDefer => "挂账审批",
            ActionName::Void => "作废",
            ActionName::Escalate => "上报上级",
            ActionName::Reopen => "重新打开",
            ActionName::Comment => "备注",
            ActionName::Reply => "回访",
        }
    }

    /// English label, e.g. Dispatch.
    pub const fn name_en(self) -> &'static str {
        match self {
            ActionName::Report => "Report",
            ActionName::Accept => "Accept",
            ActionName::Register => "Register",
            ActionName::Dispatch => "Dispatch",
            ActionName::Handle => "Handle",
            ActionName::Verify => "Verify",
            ActionName::Rework => "Rework",
            ActionName::Close => "Close",
            ActionName::Return => "Return",
            ActionName::RequestExtension => "Request an extension",
            ActionName::DecideExtension => "Decide the extension",
            ActionName::RequestDefer => "Request to defer",
            ActionName::DecideDefer => "Decide the deferral",
            ActionName::Void => "Void",
            ActionName::Escalate => "Escalate",
            ActionName::Reopen => "Reopen",
            ActionName::Comment => "Comment",
            ActionName::Reply => "Reply to the caller",
        }
    }
}

impl fmt::Display for ActionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionName {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ActionName::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
            .ok_or_else(|| EntryError::UnknownAction(text.to_owned()))
    }
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// Unique within the case (the writer makes it, e.g. a UUID v7).
    pub id: String,
    /// What was done.
    pub action: Action,
    /// When, by the writer's clock.
    pub at: DateTime<Utc>,
    /// Who claims to have done it.
    pub actor: Actor,
    /// Free text: the reason for a return, a void, a rework; a comment.
    pub note: Option<String>,
    /// The case's unit grid when the entry was written. The document sets it (the
    /// write rules check it), so that the actor's scope is judged against the grid
    /// they acted on, even after the case is moved to another grid. `None` in
    /// entries written before it was recorded; the case's current grid then counts.
    pub grid: Option<GridCode>,
}

/// Why a stored entry could not be read. The fold keeps the entry, ignored, with
/// this as its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The entry is not a map of the expected scalar types.
    #[error("malformed entry: {0}")]
    Malformed(String),
    /// A required key is missing.
    #[error("missing {0:?}")]
    Missing(&'static str),
    /// The action is not one this version knows.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// A key has a value that does not parse.
    #[error("invalid {key:?}: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// An action's payload as it comes from outside: a stored entry's keys, the API's
/// JSON, the phone library's typed call. Every one of them builds its [`Action`]
/// through [`Action::from_fields`], so all obey the same checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionFields<'a> {
    /// `dispatch`: the team (`team`; `to_team` in a stored entry).
    pub team: Option<&'a str>,
    /// `dispatch`: the person, if one is named.
    pub assignee: Option<&'a str>,
    /// `request_extension`: how much more time (`2 working_days`), 1 unit to 365 days.
    pub extra: Option<&'a str>,
    /// `decide_extension`, `decide_defer`.
    pub approved: Option<bool>,
    /// `reply`: how the caller was told.
    pub channel: Option<&'a str>,
    /// `reply`: whether the caller is satisfied.
    pub satisfied: Option<bool>,
}

impl Action {
    /// The action `name` with its payload from `fields`, checked: a missing field is
    /// [`EntryError::Missing`], a bad one [`EntryError::Invalid`] (keys as in
    /// [`ActionFields`]). Fields the action does not take are ignored.
    pub fn from_fields(name: ActionName, fields: &ActionFields<'_>) -> Result<Action, EntryError> {
        fn needed<T: Copy>(value: Option<T>, key: &'static str) -> Result<T, EntryError> {
            value.ok_or(EntryError::Missing(key))
        }
        Ok(match name {
            ActionName::Report => Action::Report,
            ActionName::Accept => Action::Accept,
            ActionName::Register => Action::Register,
            ActionName::Dispatch => {
                let team =
                    TeamId::new(needed(fields.team, "team")?).map_err(|e| invalid("team", e))?;
                if let Some(assignee) = fields.assignee {
                    check_user_id(assignee).map_err(|e| invalid("assignee", e))?;
                }
                Action::Dispatch {
                    team,
                    assignee: fields.assignee.map(str::to_owned),
                }
            }
            ActionName::Handle => Action::Handle,
            ActionName::Verify => Action::Verify,
            ActionName::Rework => Action::Rework,
            ActionName::Close => Action::Close,
            ActionName::Return => Action::Return,
            ActionName::RequestExtension => {
                let extra: TimeLimit = needed(fields.extra, "extra")?
                    .parse()
                    .map_err(|e| invalid("extra", e))?;
                if extra.amount == 0 || extra.is_too_long() {
                    return Err(invalid("extra", "must be more than 0 and at most 365 days"));
                }
                Action::RequestExtension { extra }
            }
            ActionName::DecideExtension => Action::DecideExtension {
                approved: needed(fields.approved, "approved")?,
            },
            ActionName::RequestDefer => Action::RequestDefer,
            ActionName::DecideDefer => Action::DecideDefer {
                approved: needed(fields.approved, "approved")?,
            },
            ActionName::Void => Action::Void,
            ActionName::Escalate => Action::Escalate,
            ActionName::Reopen => Action::Reopen,
            ActionName::Comment => Action::Comment,
            ActionName::Reply => {
                let channel = needed(fields.channel, "channel")?;
                Action::Reply {
                    channel: ReplyChannel::parse(channel).ok_or_else(|| {
                        invalid(
                            "channel",
                            format!(
                                "{channel:?} is not a reply channel (one of {})",
                                ReplyChannel::ALL.map(ReplyChannel::as_str).join(", ")
                            ),
                        )
                    })?,
                    satisfied: needed(fields.satisfied, "satisfied")?,
                }
            }
        })
    }
}

/// The stored shape: every key optional, so that reading never fails on a missing
/// key and [`StoredEntry::parse`] can say which one is missing.
#[derive(Debug, Clone, Default, PartialEq, Hydrate)]
pub(crate) struct StoredEntry {
    #[autosurgeon(missing = "Option::default")]
    pub id: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub action: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub at: Option<i64>,
    #[autosurgeon(missing = "Option::default")]
    pub user: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub role: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub team: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub scope: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub device: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub note: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub to_team: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub assignee: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub extra: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub approved: Option<bool>,
    #[autosurgeon(missing = "Option::default")]
    pub grid: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub channel: Option<String>,
    #[autosurgeon(missing = "Option::default")]
    pub satisfied: Option<bool>,
}

impl Reconcile for StoredEntry {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        let mut map = reconciler.map()?;
        // Absent keys are not written: an entry costs one operation per key it has.
        let strings = [
            ("id", &self.id),
            ("action", &self.action),
            ("user", &self.user),
            ("role", &self.role),
            ("team", &self.team),
            ("scope", &self.scope),
            ("device", &self.device),
            ("note", &self.note),
            ("to_team", &self.to_team),
            ("assignee", &self.assignee),
            ("extra", &self.extra),
            ("grid", &self.grid),
            ("channel", &self.channel),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                map.put(key, value)?;
            }
        }
        if let Some(at) = self.at {
            map.put("at", at)?;
        }
        if let Some(approved) = self.approved {
            map.put("approved", approved)?;
        }
        if let Some(satisfied) = self.satisfied {
            map.put("satisfied", satisfied)?;
        }
        Ok(())
    }
}

fn required<T: Clone>(value: &Option<T>, key: &'static str) -> Result<T, EntryError> {
    value.clone().ok_or(EntryError::Missing(key))
}

fn invalid(key: &'static str, reason: impl ToString) -> EntryError {
    EntryError::Invalid {
        key,
        reason: reason.to_string(),
    }
}

impl StoredEntry {
    /// Reads the entry map `obj` in one pass over its keys. Unknown keys are
    /// ignored (a newer version's payload); a known key of the wrong type is an error.
    pub(crate) fn read(
        doc: &automerge::Automerge,
        obj: &automerge::ObjId,
    ) -> Result<StoredEntry, EntryError> {
        use automerge::{ReadDoc, ScalarValueRef, ValueRef};
        let mut stored = StoredEntry::default();
        for item in doc.map_range(obj, ..) {
            let wrong = |expected: &str| {
                EntryError::Malformed(format!("{}: wrong type, expected {expected}", item.key))
            };
            let text = || match &item.value {
                ValueRef::Scalar(ScalarValueRef::Str(s)) => Ok(Some(s.to_string())),
                ValueRef::Scalar(ScalarValueRef::Null) => Ok(None),
                _ => Err(wrong("a string")),
            };
            match item.key.as_ref() {
                "id" => stored.id = text()?,
                "action" => stored.action = text()?,
                "user" => stored.user = text()?,
                "role" => stored.role = text()?,
                "team" => stored.team = text()?,
                "scope" => stored.scope = text()?,
                "device" => stored.device = text()?,
                "note" => stored.note = text()?,
                "to_team" => stored.to_team = text()?,
                "assignee" => stored.assignee = text()?,
                "extra" => stored.extra = text()?,
                "grid" => stored.grid = text()?,
                "channel" => stored.channel = text()?,
                "at" => {
                    stored.at = match &item.value {
                        ValueRef::Scalar(ScalarValueRef::Int(v) | ScalarValueRef::Timestamp(v)) => {
                            Some(*v)
                        }
                        ValueRef::Scalar(ScalarValueRef::Uint(v)) => i64::try_from(*v).ok(),
                        ValueRef::Scalar(ScalarValueRef::Null) => None,
                        _ => return Err(wrong("an integer")),
                    }
                }
                "approved" | "satisfied" => {
                    let flag = match &item.value {
                        ValueRef::Scalar(ScalarValueRef::Boolean(b)) => Some(*b),
                        ValueRef::Scalar(ScalarValueRef::Null) => None,
                        _ => return Err(wrong("a boolean")),
                    };
                    if item.key.as_ref() == "approved" {
                        stored.approved = flag;
                    } else {
                        stored.satisfied = flag;
                    }
                }
                _ => {}
            }
        }
        Ok(stored)
    }

    pub(crate) fn from_entry(entry: &TimelineEntry) -> StoredEntry {
        let mut stored = StoredEntry {
            id: Some(entry.id.clone()),
            action: Some(entry.action.as_str().to_owned()),
            at: Some(entry.at.timestamp_millis()),
            user: Some(entry.actor.user.clone()),
            role: Some(entry.actor.role.as_str().to_owned()),
            team: entry.actor.team.as_ref().map(ToString::to_string),
            scope: Some(entry.actor.scope.to_string()),
            device: Some(entry.actor.device.clone()),
            note: entry.note.clone(),
            grid: entry.grid.map(|g| g.to_string()),
            ..StoredEntry::default()
        };
        match &entry.action {
            Action::Dispatch { team, assignee } => {
                stored.to_team = Some(team.to_string());
                stored.assignee = assignee.clone();
            }
            Action::RequestExtension { extra } => stored.extra = Some(extra.to_string()),
            Action::DecideExtension { approved } | Action::DecideDefer { approved } => {
                stored.approved = Some(*approved);
            }
            Action::Reply { channel, satisfied } => {
                stored.channel = Some(channel.as_str().to_owned());
                stored.satisfied = Some(*satisfied);
            }
            _ => {}
        }
        stored
    }

    /// Checks every key and builds the typed entry.
    pub(crate) fn parse(&self) -> Result<TimelineEntry, EntryError> {
        let id = required(&self.id, "id")?;
        if id.is_empty() || id.len() > 64 {
            return Err(invalid("id", "must be 1-64 bytes"));
        }
        let name: ActionName = required(&self.action, "action")?.parse()?;
        let at_ms = required(&self.at, "at")?;
        let at = DateTime::<Utc>::from_timestamp_millis(at_ms)
            .ok_or_else(|| invalid("at", format!("{at_ms} ms is out of range")))?;
        let user = required(&self.user, "user")?;
        check_user_id(&user).map_err(|e| invalid("user", e))?;
        let role: Role = required(&self.role, "role")?
            .parse()
            .map_err(|e| invalid("role", e))?;
        let team = match &self.team {
            Some(team) => Some(TeamId::new(team.as_str()).map_err(|e| invalid("team", e))?),
            None => None,
        };
        let scope: GridScope = required(&self.scope, "scope")?
            .parse()
            .map_err(|e| invalid("scope", e))?;
        let device = required(&self.device, "device")?;
        let fields = ActionFields {
            team: self.to_team.as_deref(),
            assignee: self.assignee.as_deref(),
            extra: self.extra.as_deref(),
            approved: self.approved,
            channel: self.channel.as_deref(),
            satisfied: self.satisfied,
        };
        // The stored key of the team is `to_team`: errors name the key as stored.
        let action = Action::from_fields(name, &fields).map_err(|e| match e {
            EntryError::Missing("team") => EntryError::Missing("to_team"),
            EntryError::Invalid {
                key: "team",
                reason,
            } => EntryError::Invalid {
                key: "to_team",
                reason,
            },
            other => other,
        })?;
        let grid = match &self.grid {
            Some(grid) => Some(grid.parse::<GridCode>().map_err(|e| invalid("grid", e))?),
            None => None,
        };
        Ok(TimelineEntry {
            id,
            action,
            at,
            grid,
            actor: Actor {
                user,
                role,
                team,
                scope,
                device,
            },
            note: self.note.clone(),
        })
    }
}
