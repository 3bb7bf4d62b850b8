//! The workflow: the case's status folded from its timeline.
//!
//! The flow is report → accept/verify (受理/核实) → register (立案) → dispatch (派遣)
//! → handle (处置) → verify the result (核查) → close (结案), with return (退回),
//! rework (返工), extension (延期) and defer (挂账) requests, void (作废), escalate
//! (逐级上报), reopen and comment. A closed case that a hotline caller or a citizen
//! reported waits for the reply to the caller (回访, its own step with a due time);
//! an unsatisfied caller's case can be reopened.
//!
//! Entries are folded in the timeline list's order. Automerge orders a list
//! deterministically from its operations: an entry comes after every entry its
//! writer had seen (causal order), and entries appended concurrently are ordered by
//! their operation ids (Lamport counter, then actor): a stable key. So every replica
//! with the same changes folds the same entries in the same order, with no clock.
//!
//! Each entry is checked, in order, against: its form; its claimed device against the
//! Automerge actor that wrote it; its id being new; its role being allowed the
//! action ([`allowed`]); the actor's scope covering the grid the entry acted on (so a
//! case moved to another grid keeps what was done in the first); the status at
//! that point; and the action's own conditions (the assigned team, a pending request,
//! the authority level). An entry failing a check stays in the document, is marked
//! [`Outcome::Ignored`] with the reason, and changes nothing.

use std::collections::HashSet;
use std::fmt;

use automerge::{ObjType, ROOT, ReadDoc};
use chrono::{DateTime, Utc};

use super::entry::{Action, ActionName, EntryError, StoredEntry, TimelineEntry};
use super::{CaseDocument, CaseRecord, key};
use crate::calendar::WorkCalendar;
use crate::catalog::{Catalog, Limits, Step, TeamId, TimeLimit};
use crate::document::DocProblem;
use crate::role::{Level, Role};

/// What the fold needs besides the document: the catalogue (time limits per
/// category, teams) and the working-time calendar.
#[derive(Debug, Clone, Copy)]
pub struct WorkflowContext<'a> {
    /// Categories and teams.
    pub catalog: &'a Catalog,
    /// Working time, for due times.
    pub calendar: &'a WorkCalendar,
}

/// The status of a case (案卷状态), folded from the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Reported, waiting to be accepted (待受理).
    Reported,
    /// Accepted, waiting to be registered (待立案).
    Accepted,
    /// Registered, waiting to be dispatched (待派遣).
    Registered,
    /// Dispatched, waiting to be handled (待处置).
    Dispatched,
    /// Handled, waiting for the result to be verified (待核查).
    Handled,
    /// Verified, waiting to be closed (待结案).
    Verified,
    /// Closed (已结案).
    Closed,
    /// Voided (已作废).
    Voided,
    /// Deferred (已挂账): the clock is stopped until it is dispatched again.
    Deferred,
}

impl Status {
    /// Every status, in the workflow's order.
    pub const ALL: [Status; 9] = [
        Status::Reported,
        Status::Accepted,
        Status::Registered,
        Status::Dispatched,
        Status::Handled,
        Status::Verified,
        Status::Closed,
        Status::Voided,
        Status::Deferred,
    ];

    /// The status named by its identifier ([`Status::as_str`]).
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The identifier in JSON and SQL.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Reported => "reported",
            Status::Accepted => "accepted",
            Status::Registered => "registered",
            Status::Dispatched => "dispatched",
            Status::Handled => "handled",
            Status::Verified => "verified",
            Status::Closed => "closed",
            Status::Voided => "voided",
            Status::Deferred => "deferred",
        }
    }

    /// Chinese label.
    pub const fn name_zh(self) -> &'static str {
        match self {
            Status::Reported => "待受理",
            Status::Accepted => "待立案",
            Status::Registered => "待派遣",
            Status::Dispatched => "待处置",
            Status::Handled => "待核查",
            Status::Verified => "待结案",
            Status::Closed => "已结案",
            Status::Voided => "已作废",
            Status::Deferred => "已挂账",
        }
    }

    /// English label.
    pub const fn name_en(self) -> &'static str {
        match self {
            Status::Reported => "Waiting to be accepted",
            Status::Accepted => "Waiting to be registered",
            Status::Registered => "Waiting to be dispatched",
            Status::Dispatched => "Waiting to be handled",
            Status::Handled => "Waiting for verification",
            Status::Verified => "Waiting to be closed",
            Status::Closed => "Closed",
            Status::Voided => "Voided",
            Status::Deferred => "Deferred",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_str(), self.name_zh())
    }
}

/// Which roles may take an action at all (the status and scope are checked after).
pub fn allowed(role: Role, action: ActionName) -> bool {
    use ActionName as A;
    use Role as R;
    let handles = matches!(
        role,
        R::EnforcementOfficer
            | R::Assistant
            | R::MunicipalMaintenance
            | R::SanitationWorker
            | R::DepartmentHandler
    );
    let supervises = matches!(role, R::DistrictSupervisor | R::CitySupervisor);
    match action {
        A::Report => {
            role.is_field_worker()
                || supervises
                || matches!(
                    role,
                    R::GridLeader | R::HotlineOperator | R::Acceptor | R::ShiftLead | R::Server
                )
        }
        // The server accepts and registers only on its way to an automatic dispatch
        // (an ownership rule with `dispatch = "auto"`: urgent categories).
        A::Accept => {
            supervises
                || matches!(
                    role,
                    R::Acceptor
                        | R::InformationSupervisor
                        | R::GridLeader
                        | R::ShiftLead
                        | R::Server
                )
        }
        A::Register => supervises || matches!(role, R::ShiftLead | R::Server),
        A::Close | A::Reopen => supervises || role == R::ShiftLead,
        A::Dispatch => supervises || matches!(role, R::Dispatcher | R::ShiftLead | R::Server),
        A::Handle | A::RequestExtension | A::RequestDefer => handles,
        // The server returns a case whose category or location changed after the
        // dispatch, when the ownership rules now give it to another team.
        A::Return => handles || role == R::Server,
        A::DecideExtension | A::DecideDefer => {
            supervises || matches!(role, R::Dispatcher | R::ShiftLead)
        }
        A::Verify | A::Rework => {
            supervises || matches!(role, R::InformationSupervisor | R::GridLeader)
        }
        A::Void => supervises || matches!(role, R::Acceptor | R::ShiftLead),
        A::Escalate => {
            supervises
                || matches!(
                    role,
                    R::GridLeader | R::Dispatcher | R::ShiftLead | R::Server
                )
        }
        A::Comment => true,
        A::Reply => role.answers_callers(),
    }
}

/// Whether a case from `source` is replied to once closed (回访): the caller of a
/// hotline or citizen report is told the result.
pub fn replies_to_caller(source: Option<super::Source>) -> bool {
    matches!(
        source,
        Some(super::Source::Hotline | super::Source::Citizen)
    )
}

/// The statuses in which an action can be taken.
fn valid_in(action: ActionName, status: Status) -> bool {
    use ActionName as A;
    use Status as S;
    match action {
        A::Report => false,
        A::Accept => status == S::Reported,
        A::Register => status == S::Accepted,
        A::Dispatch => matches!(status, S::Registered | S::Deferred),
        A::Handle | A::Return | A::RequestExtension | A::RequestDefer => status == S::Dispatched,
        A::DecideExtension | A::DecideDefer => status == S::Dispatched,
        A::Verify | A::Rework => status == S::Handled,
        A::Close => status == S::Verified,
        A::Void => matches!(status, S::Reported | S::Accepted | S::Registered),
        A::Escalate => matches!(status, S::Registered | S::Dispatched),
        A::Reopen => matches!(status, S::Closed | S::Voided),
        A::Comment => true,
        A::Reply => status == S::Closed,
    }
}

/// Why an entry was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoredReason {
    /// The entry could not be read.
    #[error("{0}")]
    Malformed(#[from] EntryError),
    /// The entry claims a device other than the one that wrote it.
    #[error("claims device {claimed} but was written by device {actual}")]
    ForgedDevice {
        /// The device in the entry.
        claimed: String,
        /// The Automerge actor that inserted it.
        actual: String,
    },
    /// Another entry already has this id.
    #[error("entry id {0:?} is already used")]
    DuplicateId(String),
    /// The case has no report yet; only `report` can come first.
    #[error("the case has not been reported")]
    NotReported,
    /// A second report.
    #[error("the case is already reported")]
    AlreadyReported,
    /// The role may never take this action.
    #[error("a {} ({}) may not {action}", role.as_str(), role.name_zh())]
    RoleNotPermitted {
        /// The actor's role.
        role: Role,
        /// The action.
        action: ActionName,
    },
    /// The case's grid is outside the actor's scope.
    #[error("the case's grid is outside the actor's scope")]
    OutOfScope,
    /// Not possible in the current status.
    #[error("cannot {action} a case that is {status}")]
    WrongStatus {
        /// The status at that point.
        status: Status,
        /// The action.
        action: ActionName,
    },
    /// Only the team (or person) the case is dispatched to may do this.
    #[error("the case is dispatched to {team}, not to this actor")]
    NotAssignee {
        /// The team the case is dispatched to.
        team: TeamId,
    },
    /// Dispatch to a team the catalogue does not know.
    #[error("unknown team {0}")]
    UnknownTeam(TeamId),
    /// The case is at a level above the actor's authority.
    #[error("the case is at {needed} level, above the actor's authority")]
    BeyondAuthority {
        /// The case's level.
        needed: Level,
    },
    /// Escalation above the city.
    #[error("the case is already at city level")]
    TopLevel,
    /// A decision without a pending request.
    #[error("there is no pending request to decide")]
    NoPendingRequest,
    /// A request while one is pending.
    #[error("a request is already pending")]
    RequestPending,
    /// A reply to the caller of a case that waits for none (not from the hotline or
    /// a citizen, or already replied to since it was closed).
    #[error("the case is not waiting for a reply to its caller")]
    NoReplyDue,
}

/// What the fold did with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The entry took effect.
    Applied,
    /// The entry changed nothing, for this reason.
    Ignored(IgnoredReason),
}

/// One timeline entry as folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedEntry {
    /// Position in the timeline.
    pub index: usize,
    /// The entry, if it could be read.
    pub entry: Option<TimelineEntry>,
    /// Applied or ignored.
    pub outcome: Outcome,
}

/// Who the case is dispatched to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The team.
    pub team: TeamId,
    /// One person of it, if named.
    pub assignee: Option<String>,
    /// When it was dispatched.
    pub at: DateTime<Utc>,
}

/// One run of a workflow step, with its due time: assessment counts these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// The step.
    pub step: Step,
    /// When it started (the time of the entry that started it).
    pub started_at: DateTime<Utc>,
    /// When it is due; none when the category is unknown to the catalogue.
    pub due_at: Option<DateTime<Utc>>,
    /// When it ended, and by which action.
    pub finished: Option<(DateTime<Utc>, ActionName)>,
    /// Extensions granted to this step.
    pub extensions: Vec<TimeLimit>,
}

impl StepRecord {
    /// Whether the step ended by its due time; `None` while it runs or without a due time.
    pub fn on_time(&self) -> Option<bool> {
        let (finished, _) = self.finished?;
        Some(finished <= self.due_at?)
    }

    /// Whether the step still runs and its due time has passed.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.finished.is_none() && self.due_at.is_some_and(|due| now > due)
    }
}

/// How often things happened, for assessment (返工率, 准确派遣率, 上报率).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Reworks (返工).
    pub reworks: u32,
    /// Returns to the dispatcher (退回).
    pub returns: u32,
    /// Escalations (上报上级).
    pub escalations: u32,
    /// Reopenings.
    pub reopens: u32,
    /// Dispatches.
    pub dispatches: u32,
    /// Extensions granted.
    pub extensions: u32,
}

/// A case folded: its fields, status, assignment, steps with due times, and every
/// timeline entry with what the fold did with it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseView {
    /// The fields as read, with document problems.
    pub record: CaseRecord,
    /// The status; `None` when there is no valid report.
    pub status: Option<Status>,
    /// The level that must deal with the case (starts at street; escalation raises it).
    pub level: Level,
    /// Who the case is dispatched to, while dispatched, handled or deferred.
    pub assignment: Option<Assignment>,
    /// A pending extension request: how much more time.
    pub pending_extension: Option<TimeLimit>,
    /// Whether a defer request is pending.
    pub pending_defer: bool,
    /// Whether the case is closed and its caller not yet replied to (回访).
    pub awaiting_reply: bool,
    /// Counters for assessment.
    pub counts: Counts,
    /// Every step run, in order.
    pub steps: Vec<StepRecord>,
    /// Every timeline entry, in fold order.
    pub entries: Vec<FoldedEntry>,
    limits: Option<Limits>,
    seen_ids: HashSet<String>,
}

impl CaseView {
    /// The step now running, if any.
    pub fn current_step(&self) -> Option<&StepRecord> {
        self.steps.last().filter(|s| s.finished.is_none())
    }

    /// The text of the latest reply to the caller (回访) that took effect, if any.
    pub fn last_reply(&self) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.outcome == Outcome::Applied)
            .filter_map(|e| e.entry.as_ref())
            .find(|e| matches!(e.action, Action::Reply { .. }))
            .and_then(|e| e.note.as_deref())
            .filter(|note| !note.trim().is_empty())
    }

    /// Whether the running step is past its due time.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.current_step().is_some_and(|s| s.is_overdue(now))
    }

    /// The entries that were ignored, with their reasons.
    pub fn ignored(&self) -> impl Iterator<Item = (&FoldedEntry, &IgnoredReason)> + '_ {
        self.entries.iter().filter_map(|e| match &e.outcome {
            Outcome::Ignored(reason) => Some((e, reason)),
            Outcome::Applied => None,
        })
    }

    /// The actions `actor` may take now (what an app offers as buttons): each is
    /// tried as an entry at `now` by the same check every replica's fold makes.
    /// Payloads are representative: a dispatch to the category's own team, an
    /// extension of one working day, a decision granting; report and escalate (the
    /// server's and the reporter's own) are not offered.
    pub fn allowed_actions(
        &self,
        actor: &crate::role::Actor,
        context: &WorkflowContext<'_>,
        now: DateTime<Utc>,
    ) -> Vec<ActionName> {
        let team = self
            .record
            .category
            .and_then(|c| context.catalog.get(&c))
            .map(|c| c.team.clone());
        ActionName::ALL
            .into_iter()
            .filter(|name| !matches!(name, ActionName::Report | ActionName::Escalate))
            .filter(|name| {
                let action = match name {
                    ActionName::Dispatch => match &team {
                        Some(team) => Action::Dispatch {
                            team: team.clone(),
                            assignee: None,
                        },
                        None => return false,
                    },
                    ActionName::RequestExtension => Action::RequestExtension {
                        extra: TimeLimit::working_days(1),
                    },
                    ActionName::DecideExtension => Action::DecideExtension { approved: true },
                    ActionName::DecideDefer => Action::DecideDefer { approved: true },
                    ActionName::Accept => Action::Accept,
                    ActionName::Register => Action::Register,
                    ActionName::Handle => Action::Handle,
                    ActionName::Verify => Action::Verify,
                    ActionName::Rework => Action::Rework,
                    ActionName::Close => Action::Close,
                    ActionName::Return => Action::Return,
                    ActionName::RequestDefer => Action::RequestDefer,
                    ActionName::Void => Action::Void,
                    ActionName::Reopen => Action::Reopen,
                    ActionName::Comment => Action::Comment,
                    ActionName::Reply => Action::Reply {
                        channel: super::ReplyChannel::Phone,
                        satisfied: true,
                    },
                    ActionName::Report | ActionName::Escalate => return false,
                };
                let entry = TimelineEntry {
                    id: String::new(),
                    action,
                    at: now,
                    actor: actor.clone(),
                    note: None,
                    grid: self.record.grid,
                };
                self.check(&entry, context).is_none()
            })
            .collect()
    }

    /// Why `entry` would be ignored if appended now, or `None` if it would apply.
    pub fn check(
        &self,
        entry: &TimelineEntry,
        context: &WorkflowContext<'_>,
    ) -> Option<IgnoredReason> {
        self.validate(entry, context).err()
    }

    /// Applies `entry` as if appended now, or says why it would be ignored: how a
    /// run of actions is checked one after the other before any is written.
    pub(crate) fn apply_checked(
        &mut self,
        entry: &TimelineEntry,
        context: &WorkflowContext<'_>,
    ) -> Result<(), IgnoredReason> {
        self.validate(entry, context)?;
        self.apply(entry, context);
        Ok(())
    }

    fn validate(
        &self,
        entry: &TimelineEntry,
        context: &WorkflowContext<'_>,
    ) -> Result<(), IgnoredReason> {
        let action = entry.action.name();
        let actor = &entry.actor;
        if self.seen_ids.contains(&entry.id) {
            return Err(IgnoredReason::DuplicateId(entry.id.clone()));
        }
        let status = match (self.status, action) {
            (None, ActionName::Report) => None,
            (None, _) => return Err(IgnoredReason::NotReported),
            (Some(_), ActionName::Report) => return Err(IgnoredReason::AlreadyReported),
            (Some(status), _) => Some(status),
        };
        if !allowed(actor.role, action) {
            return Err(IgnoredReason::RoleNotPermitted {
                role: actor.role,
                action,
            });
        }
        // The grid the entry acted on (older entries: the case's current grid).
        let grid = entry.grid.as_ref().or(self.record.grid.as_ref());
        // Anyone may report a problem they see; everything else needs the grid in scope.
        if action != ActionName::Report && actor.role != Role::Server && !actor.scope.covers(grid) {
            return Err(IgnoredReason::OutOfScope);
        }
        let Some(status) = status else {
            return Ok(());
        };
        if !valid_in(action, status) {
            return Err(IgnoredReason::WrongStatus { status, action });
        }
        match &entry.action {
            Action::Handle
            | Action::Return
            | Action::RequestExtension { .. }
            | Action::RequestDefer => {
                let Some(assignment) = &self.assignment else {
                    return Err(IgnoredReason::WrongStatus { status, action });
                };
                let on_team = actor.team.as_ref() == Some(&assignment.team);
                let named = assignment.assignee.as_deref() == Some(actor.user.as_str());
                let rerouting = actor.role == Role::Server && entry.action == Action::Return;
                if !(on_team || named || rerouting) {
                    return Err(IgnoredReason::NotAssignee {
                        team: assignment.team.clone(),
                    });
                }
                let pending = match &entry.action {
                    Action::RequestExtension { .. } => self.pending_extension.is_some(),
                    Action::RequestDefer => self.pending_defer,
                    _ => false,
                };
                if pending {
                    return Err(IgnoredReason::RequestPending);
                }
            }
            Action::DecideExtension { .. } if self.pending_extension.is_none() => {
                return Err(IgnoredReason::NoPendingRequest);
            }
            Action::DecideDefer { .. } if !self.pending_defer => {
                return Err(IgnoredReason::NoPendingRequest);
            }
            Action::Reply { .. } if !self.awaiting_reply => {
                return Err(IgnoredReason::NoReplyDue);
            }
            Action::Dispatch { team, .. } => {
                if context.catalog.team(team.as_str()).is_none() {
                    return Err(IgnoredReason::UnknownTeam(team.clone()));
                }
                self.check_authority(entry)?;
            }
            Action::Escalate => {
                if self.level.up().is_none() {
                    return Err(IgnoredReason::TopLevel);
                }
                self.check_authority(entry)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn check_authority(&self, entry: &TimelineEntry) -> Result<(), IgnoredReason> {
        if entry.actor.role == Role::Server {
            return Ok(());
        }
        let grid = entry.grid.as_ref().or(self.record.grid.as_ref());
        let authority = entry.actor.scope.authority_over(grid);
        if authority.is_some_and(|level| level >= self.level) {
            Ok(())
        } else {
            Err(IgnoredReason::BeyondAuthority { needed: self.level })
        }
    }

    /// Applies a validated entry.
    fn apply(&mut self, entry: &TimelineEntry, context: &WorkflowContext<'_>) {
        let at = entry.at;
        self.seen_ids.insert(entry.id.clone());
        match &entry.action {
            Action::Report => {
                self.status = Some(Status::Reported);
                self.start(Step::Accept, at, context);
            }
            Action::Accept => self.advance(Status::Accepted, Step::Register, entry, context),
            Action::Register => self.advance(Status::Registered, Step::Dispatch, entry, context),
            Action::Dispatch { team, assignee } => {
                self.assignment = Some(Assignment {
                    team: team.clone(),
                    assignee: assignee.clone(),
                    at,
                });
                self.counts.dispatches += 1;
                self.advance(Status::Dispatched, Step::Handle, entry, context);
            }
            Action::Handle => self.advance(Status::Handled, Step::Verify, entry, context),
            Action::Verify => self.advance(Status::Verified, Step::Close, entry, context),
            Action::Rework => {
                self.counts.reworks += 1;
                self.advance(Status::Dispatched, Step::Handle, entry, context);
            }
            Action::Close => {
                self.stop(Status::Closed, entry);
                if replies_to_caller(self.record.source) {
                    self.awaiting_reply = true;
                    self.start(Step::Reply, at, context);
                }
            }
            Action::Reply { .. } => {
                self.awaiting_reply = false;
                self.stop(Status::Closed, entry);
            }
            Action::Return => {
                self.counts.returns += 1;
                self.assignment = None;
                self.advance(Status::Registered, Step::Dispatch, entry, context);
            }
            Action::RequestExtension { extra } => self.pending_extension = Some(*extra),
            Action::DecideExtension { approved } => {
                let extra = self.pending_extension.take();
                if let (true, Some(extra), Some(step)) = (*approved, extra, self.steps.last_mut()) {
                    step.due_at = step.due_at.map(|due| context.calendar.due(due, extra));
                    step.extensions.push(extra);
                    self.counts.extensions += 1;
                }
            }
            Action::RequestDefer => self.pending_defer = true,
            Action::DecideDefer { approved } => {
                self.pending_defer = false;
                if *approved {
                    self.stop(Status::Deferred, entry);
                }
            }
            Action::Void => {
                self.assignment = None;
                self.stop(Status::Voided, entry);
            }
            Action::Escalate => {
                self.counts.escalations += 1;
                self.level = self.level.up().unwrap_or(Level::City);
                self.assignment = None;
                self.advance(Status::Registered, Step::Dispatch, entry, context);
            }
            Action::Reopen => {
                self.counts.reopens += 1;
                self.advance(Status::Registered, Step::Dispatch, entry, context);
            }
            Action::Comment => {}
        }
    }

    /// Ends the running step and starts `next`.
    fn advance(
        &mut self,
        status: Status,
        next: Step,
        entry: &TimelineEntry,
        context: &WorkflowContext<'_>,
    ) {
        self.stop(status, entry);
        self.start(next, entry.at, context);
    }

    /// Ends the running step; the clock stops.
    fn stop(&mut self, status: Status, entry: &TimelineEntry) {
        // A request belongs to one dispatched period; any change of status ends it.
        self.pending_extension = None;
        self.pending_defer = false;
        self.awaiting_reply = false;
        self.status = Some(status);
        if let Some(step) = self.steps.last_mut()
            && step.finished.is_none()
        {
            step.finished = Some((entry.at, entry.action.name()));
        }
    }

    fn start(&mut self, step: Step, at: DateTime<Utc>, context: &WorkflowContext<'_>) {
        let due_at = self
            .limits
            .map(|limits| context.calendar.due(at, limits.get(step)));
        self.steps.push(StepRecord {
            step,
            started_at: at,
            due_at,
            finished: None,
            extensions: Vec::new(),
        });
    }
}

/// Folds a case document.
pub(super) fn fold(case: &CaseDocument, context: &WorkflowContext<'_>) -> CaseView {
    let mut record = case.read();
    let limits = record
        .category
        .and_then(|code| context.catalog.get(&code))
        .map(|category| category.limits);
    if let (Some(code), None) = (record.category, limits) {
        record.problems.push(DocProblem {
            path: key::CATEGORY.to_owned(),
            reason: format!("category {code} is not in the catalogue: no due times"),
        });
    }
    let mut view = CaseView {
        record,
        status: None,
        level: Level::Street,
        assignment: None,
        pending_extension: None,
        pending_defer: false,
        awaiting_reply: false,
        counts: Counts::default(),
        steps: Vec::new(),
        entries: Vec::new(),
        limits,
        seen_ids: HashSet::new(),
    };
    let doc = case.automerge();
    let timeline = match doc.get(ROOT, key::TIMELINE) {
        Ok(Some((automerge::Value::Object(ObjType::List), id))) => id,
        Ok(Some(_)) => {
            view.record.problems.push(DocProblem {
                path: key::TIMELINE.to_owned(),
                reason: "not a list".to_owned(),
            });
            return view;
        }
        _ => return view,
    };
    // One pass over the list, one pass over each entry's keys: reading key by key
    // costs a lookup per key (missing ones included) and dominated the fold.
    let items: Vec<(usize, automerge::ObjId, bool)> = doc
        .list_range(&timeline, ..)
        .map(|item| {
            let is_map = matches!(item.value, automerge::ValueRef::Object(ObjType::Map));
            (item.index, item.id(), is_map)
        })
        .collect();
    for (index, obj, is_map) in items {
        let read = if is_map {
            read_entry(doc, &obj)
        } else {
            Err(IgnoredReason::Malformed(EntryError::Malformed(
                "not a map".to_owned(),
            )))
        };
        let (entry, outcome) = match read {
            Err(reason) => (None, Outcome::Ignored(reason)),
            Ok(entry) => match view.validate(&entry, context) {
                Ok(()) => {
                    view.apply(&entry, context);
                    (Some(entry), Outcome::Applied)
                }
                Err(reason) => (Some(entry), Outcome::Ignored(reason)),
            },
        };
        view.entries.push(FoldedEntry {
            index,
            entry,
            outcome,
        });
    }
    view
}

/// Reads the entry map `obj` and checks that its claimed device wrote it.
fn read_entry(
    doc: &automerge::Automerge,
    obj: &automerge::ObjId,
) -> Result<TimelineEntry, IgnoredReason> {
    let stored = StoredEntry::read(doc, obj)?;
    let entry = stored.parse()?;
    if let automerge::ObjId::Id(_, actor, _) = obj {
        let actual = actor.to_hex_string();
        if !actual.eq_ignore_ascii_case(&entry.actor.device) {
            return Err(IgnoredReason::ForgedDevice {
                claimed: entry.actor.device,
                actual,
            });
        }
    }
    Ok(entry)
}
