//! Assessment (考核评价, the plan's § 监督考核机制): what each case contributes
//! ([`CaseFacts`], from its fold), the sums of a unit's cases ([`Counts`]), the rates
//! defined on them ([`Indicator`], [`Rates`]), the operator's weights and grade bands
//! ([`AssessmentRules`], TOML like the catalogue), and the ranking with the plan's
//! flags ([`rank`]: last place of a month, top three of a quarter).
//!
//! Every definition here is written out in `docs/assessment.md` (numerator,
//! denominator, window); the server only sums [`Counts`] in SQL and calls these.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{from_local, to_local};
use crate::case::fold::Outcome;
use crate::case::{Action, ActionName, CaseView, Source, Status};
use crate::catalog::Step;
use crate::role::{Level, Role};

/// The built-in rules.
pub const DEFAULT_RULES: &str = include_str!("assessment/default.toml");

/// What one case contributes to assessment, derived from its fold. Each flag is a
/// 0 or 1 in the sums of [`Counts`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaseFacts {
    /// The month it was reported in, Zhengzhou time (`2026-11`): its period.
    pub month: Option<String>,
    /// The level that had to deal with it in the end (escalation raises it).
    pub level: Option<Level>,
    /// The user whose handling stood (the last applied handle), for people's scores.
    pub handler: Option<String>,
    /// The person whose acceptance (受理/核实) stood: the last applied accept.
    pub accepter: Option<String>,
    /// The person who checked the result (核查) last: the last applied verify or
    /// rework.
    pub checker: Option<String>,
    /// The person who dispatched it first (派遣); `None` when the server's
    /// automation did, which is no one's work to rank.
    pub dispatcher: Option<String>,
    /// The sums it adds to.
    pub counts: Counts,
}

/// Sums over a set of cases (each field counts cases; see `docs/assessment.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Reports with a valid first entry, voided or not (上报数).
    pub reports: u64,
    /// Problems: reports not voided (有效上报数 / 问题数).
    pub problems: u64,
    /// Problems found by field staff on patrol (自行发现数).
    pub own_found: u64,
    /// Problems registered (立案数, 应派遣数, 应结案数).
    pub registered: u64,
    /// Registered problems dispatched at least once (派遣数).
    pub dispatched: u64,
    /// Whose first dispatch was within its time limit (按时派遣数).
    pub dispatched_on_time: u64,
    /// Dispatched problems handled (处置数).
    pub handled: u64,
    /// Handled ones whose every handling ended within its time limit (按期处置数).
    pub handled_on_time: u64,
    /// Handled ones sent back at least once (返工数).
    pub reworked: u64,
    /// Registered problems closed (结案数).
    pub closed: u64,
    /// Closed ones whose every step up to the close ended in time (按期结案数).
    pub closed_on_time: u64,
    /// Escalated out of street level by someone with street-level authority
    /// (the street reported it up itself).
    pub reported_up_by_street: u64,
    /// Escalated out of district level by someone with district-level authority.
    pub reported_up_by_district: u64,
    /// Hotline and citizen problems closed: their callers are owed a reply (应回访数).
    pub reply_due: u64,
    /// Of those, replied to (回访数).
    pub replied: u64,
    /// Of those replied to, the caller satisfied (满意数).
    pub satisfied: u64,
    /// Problems whose report was accepted as real (核实数), counted for the accepter.
    pub accepted: u64,
    /// Of those, every acceptance within its time limit (按时核实数).
    pub accepted_on_time: u64,
    /// Handled problems whose result was checked on site (核查数), for the checker.
    pub checked: u64,
    /// Of those, every check within its time limit (按时核查数).
    pub checked_on_time: u64,
    /// Dispatched problems that a team returned (退回) as not theirs: the first
    /// dispatch was wrong (counted for the dispatcher).
    pub dispatch_returned: u64,
}

impl Counts {
    /// The field names, in the order of the struct (SQL columns use them too).
    pub const FIELDS: [&'static str; 21] = [
        "reports",
        "problems",
        "own_found",
        "registered",
        "dispatched",
        "dispatched_on_time",
        "handled",
        "handled_on_time",
        "reworked",
        "closed",
        "closed_on_time",
        "reported_up_by_street",
        "reported_up_by_district",
        "reply_due",
        "replied",
        "satisfied",
        "accepted",
        "accepted_on_time",
        "checked",
        "checked_on_time",
        "dispatch_returned",
    ];

    /// The values in the order of [`Counts::FIELDS`].
    pub const fn values(&self) -> [u64; 21] {
        [
            self.reports,
            self.problems,
            self.own_found,
            self.registered,
            self.dispatched,
            self.dispatched_on_time,
            self.handled,
            self.handled_on_time,
            self.reworked,
            self.closed,
            self.closed_on_time,
            self.reported_up_by_street,
            self.reported_up_by_district,
            self.reply_due,
            self.replied,
            self.satisfied,
            self.accepted,
            self.accepted_on_time,
            self.checked,
            self.checked_on_time,
            self.dispatch_returned,
        ]
    }

    /// Counts from values in the order of [`Counts::FIELDS`].
    pub const fn from_values(v: [u64; 21]) -> Counts {
        Counts {
            reports: v[0],
            problems: v[1],
            own_found: v[2],
            registered: v[3],
            dispatched: v[4],
            dispatched_on_time: v[5],
            handled: v[6],
            handled_on_time: v[7],
            reworked: v[8],
            closed: v[9],
            closed_on_time: v[10],
            reported_up_by_street: v[11],
            reported_up_by_district: v[12],
            reply_due: v[13],
            replied: v[14],
            satisfied: v[15],
            accepted: v[16],
            accepted_on_time: v[17],
            checked: v[18],
            checked_on_time: v[19],
            dispatch_returned: v[20],
        }
    }

    /// The sums of both.
    pub fn add(&mut self, other: &Counts) {
        let mut sum = self.values();
        for (s, o) in sum.iter_mut().zip(other.values()) {
            *s = s.saturating_add(o);
        }
        *self = Counts::from_values(sum);
    }
}

impl CaseFacts {
    /// What `view` contributes. A case without a valid report contributes nothing.
    pub fn of(view: &CaseView) -> CaseFacts {
        let Some(report) = view.steps.first() else {
            return CaseFacts::default();
        };
        let Some(status) = view.status else {
            return CaseFacts::default();
        };
        let local = to_local(report.started_at);
        let month = format!("{:04}-{:02}", local.year(), local.month());
        let mut c = Counts {
            reports: 1,
            ..Counts::default()
        };
        let mut handler = None;
        let mut accepter = None;
        let mut checker = None;
        let mut dispatcher = None;
        if status != Status::Voided {
            c.problems = 1;
            c.own_found = u64::from(view.record.source == Some(Source::Patrol));
            let applied = |name: ActionName| {
                view.entries.iter().any(|e| {
                    e.outcome == Outcome::Applied
                        && e.entry.as_ref().is_some_and(|e| e.action.name() == name)
                })
            };
            let finished = |step: Step| {
                view.steps
                    .iter()
                    .filter(move |s| s.step == step && s.finished.is_some())
            };
            c.accepted = u64::from(applied(ActionName::Accept));
            c.accepted_on_time = u64::from(
                c.accepted == 1 && finished(Step::Accept).all(|s| s.on_time() == Some(true)),
            );
            c.checked = u64::from(applied(ActionName::Verify) || applied(ActionName::Rework));
            c.checked_on_time = u64::from(
                c.checked == 1 && finished(Step::Verify).all(|s| s.on_time() == Some(true)),
            );
            c.registered = u64::from(applied(ActionName::Register));
            if c.registered == 1 {
                c.dispatched = u64::from(view.counts.dispatches > 0);
                c.dispatched_on_time = u64::from(
                    c.dispatched == 1
                        && finished(Step::Dispatch)
                            .next()
                            .is_some_and(|s| s.on_time() == Some(true)),
                );
                c.handled = u64::from(c.dispatched == 1 && applied(ActionName::Handle));
                c.handled_on_time = u64::from(
                    c.handled == 1 && finished(Step::Handle).all(|s| s.on_time() == Some(true)),
                );
                c.reworked = u64::from(c.handled == 1 && view.counts.reworks > 0);
                c.closed = u64::from(status == Status::Closed);
                c.closed_on_time = u64::from(
                    c.closed == 1
                        && view
                            .steps
                            .iter()
                            .filter(|s| s.step != Step::Reply && s.finished.is_some())
                            .all(|s| s.on_time() == Some(true)),
                );
            }
            // Escalations, replayed: who raised the case out of each level; and who
            // accepted, dispatched first, handled and checked.
            let mut level = Level::Street;
            let mut dispatches_seen = 0u32;
            for folded in &view.entries {
                let (Outcome::Applied, Some(entry)) = (&folded.outcome, &folded.entry) else {
                    continue;
                };
                match &entry.action {
                    Action::Escalate => {
                        let grid = entry.grid.or(view.record.grid);
                        let own = entry.actor.scope.authority_over(grid.as_ref()) == Some(level);
                        match level {
                            Level::Street if own => c.reported_up_by_street = 1,
                            Level::District if own => c.reported_up_by_district = 1,
                            _ => {}
                        }
                        level = level.up().unwrap_or(Level::City);
                    }
                    Action::Handle => handler = Some(entry.actor.user.clone()),
                    Action::Accept => accepter = Some(entry.actor.user.clone()),
                    Action::Verify | Action::Rework => checker = Some(entry.actor.user.clone()),
                    Action::Dispatch { .. } => {
                        dispatches_seen += 1;
                        if dispatches_seen == 1 {
                            dispatcher = (entry.actor.role != Role::Server)
                                .then(|| entry.actor.user.clone());
                        }
                    }
                    // A team's return of the first dispatch says it was wrong; the
                    // server's (the category or place changed after it) does not, nor
                    // a return of a later dispatch (someone else's).
                    Action::Return if entry.actor.role != Role::Server && dispatches_seen == 1 => {
                        c.dispatch_returned = u64::from(c.dispatched == 1);
                    }
                    _ => {}
                }
            }
            if crate::case::fold::replies_to_caller(view.record.source) && status == Status::Closed
            {
                c.reply_due = 1;
                let reply = view
                    .entries
                    .iter()
                    .rev()
                    .find_map(|e| match (&e.outcome, &e.entry) {
                        (Outcome::Applied, Some(entry)) => match entry.action {
                            Action::Reply { satisfied, .. } => Some(satisfied),
                            _ => None,
                        },
                        _ => None,
                    });
                c.replied = u64::from(reply.is_some());
                c.satisfied = u64::from(reply == Some(true));
            }
        }
        CaseFacts {
            month: Some(month),
            level: Some(view.level),
            handler,
            accepter,
            checker,
            dispatcher,
            counts: c,
        }
    }
}

/// A month or a quarter, Zhengzhou time: what a ranking covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// `2026-11`.
    Month {
        /// Year.
        year: i32,
        /// 1–12.
        month: u32,
    },
    /// `2026-Q4`.
    Quarter {
        /// Year.
        year: i32,
        /// 1–4.
        quarter: u32,
    },
}

/// Why a period does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period {0:?}: a month like 2026-11 or a quarter like 2026-Q4, years 2000–2200")]
pub struct PeriodError(pub String);

impl Period {
    /// Parses `YYYY-MM` or `YYYY-Qn`.
    pub fn parse(text: &str) -> Result<Period, PeriodError> {
        let bad = || PeriodError(text.to_owned());
        let (year, rest) = text.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        if !(2000..=2200).contains(&year) {
            return Err(bad());
        }
        if let Some(q) = rest.strip_prefix('Q') {
            let quarter: u32 = match q {
                "1" => 1,
                "2" => 2,
                "3" => 3,
                "4" => 4,
                _ => return Err(bad()),
            };
            return Ok(Period::Quarter { year, quarter });
        }
        if rest.len() != 2 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let month: u32 = rest.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Period::Month { year, month })
    }

    /// Whether it is a quarter.
    pub const fn is_quarter(self) -> bool {
        matches!(self, Period::Quarter { .. })
    }

    /// The months it covers, as `YYYY-MM` (what [`CaseFacts::month`] holds).
    pub fn months(self) -> Vec<String> {
        match self {
            Period::Month { year, month } => vec![format!("{year:04}-{month:02}")],
            Period::Quarter { year, quarter } => (1..=3)
                .map(|i| format!("{year:04}-{:02}", (quarter - 1) * 3 + i))
                .collect(),
        }
    }

    /// Its first and last day, Zhengzhou time.
    pub fn days(self) -> (NaiveDate, NaiveDate) {
        let (year, first, last) = match self {
            Period::Month { year, month } => (year, month, month),
            Period::Quarter { year, quarter } => (year, quarter * 3 - 2, quarter * 3),
        };
        let start = NaiveDate::from_ymd_opt(year, first, 1).unwrap_or(NaiveDate::MIN);
        let next = if last == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, last + 1, 1)
        }
        .unwrap_or(NaiveDate::MAX);
        (start, next.pred_opt().unwrap_or(next))
    }

    /// Whether the period has ended at `now` (only an ended period can be published).
    pub fn ended_by(self, now: DateTime<Utc>) -> bool {
        let (_, last) = self.days();
        last.succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(from_local)
            .is_some_and(|end| now >= end)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Month { year, month } => write!(f, "{year:04}-{month:02}"),
            Period::Quarter { year, quarter } => write!(f, "{year:04}-Q{quarter}"),
        }
    }
}

/// The kinds of unit assessed, each on its own indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// A district, street or community (区、街道、社区).
    Region,
    /// A team or department the cases are dispatched to (专业部门).
    Team,
    /// A person who handled cases (处置人员).
    Handler,
    /// A person who reported problems and accepted and checked them on site
    /// (信息监督员).
    Reporter,
    /// A person who dispatched cases (派遣员 / 值班长).
    Dispatcher,
}

impl UnitKind {
    /// Every kind.
    pub const ALL: [UnitKind; 5] = [
        UnitKind::Region,
        UnitKind::Team,
        UnitKind::Handler,
        UnitKind::Reporter,
        UnitKind::Dispatcher,
    ];

    /// The identifier in TOML and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            UnitKind::Region => "region",
            UnitKind::Team => "team",
            UnitKind::Handler => "handler",
            UnitKind::Reporter => "reporter",
            UnitKind::Dispatcher => "dispatcher",
        }
    }
}

/// A rate of the plan or of national practice. Each is a fraction of two sums of
/// [`Counts`] (or of patrol duties, for coverage); `docs/assessment.md` defines each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// 派案率: dispatched / registered, of the problems within the unit's authority.
    DispatchRate,
    /// 按时派遣率: dispatched on time / dispatched.
    OnTimeDispatchRate,
    /// 结案率: closed / registered, within authority.
    CloseRate,
    /// 按期结案率: closed on time / registered, within authority.
    OnTimeCloseRate,
    /// 处置率: handled / dispatched.
    HandleRate,
    /// 按期处置率: handled on time / dispatched.
    OnTimeHandleRate,
    /// 返工率: reworked / handled (lower is better).
    ReworkRate,
    /// 上报率: reported up by the unit itself / problems that needed a higher level.
    ReportUpRate,
    /// 发现率: found by field staff / all problems in the area.
    DiscoveryRate,
    /// 见巡率: unit-grid duties walked / duties assigned.
    CoverageRate,
    /// 回访率: replied / callers owed a reply.
    ReplyRate,
    /// 满意率: satisfied / replied.
    SatisfactionRate,
    /// 有效上报率: problems / reports.
    ValidReportRate,
    /// 按时核实率: accepted on time / accepted.
    OnTimeAcceptRate,
    /// 按时核查率: checked on time / checked.
    OnTimeCheckRate,
    /// 准确派遣率: dispatched and not returned / dispatched.
    AccurateDispatchRate,
}

impl Indicator {
    /// Every indicator.
    pub const ALL: [Indicator; 16] = [
        Indicator::DispatchRate,
        Indicator::OnTimeDispatchRate,
        Indicator::CloseRate,
        Indicator::OnTimeCloseRate,
        Indicator::HandleRate,
        Indicator::OnTimeHandleRate,
        Indicator::ReworkRate,
        Indicator::ReportUpRate,
        Indicator::DiscoveryRate,
        Indicator::CoverageRate,
        Indicator::ReplyRate,
        Indicator::SatisfactionRate,
        Indicator::ValidReportRate,
        Indicator::OnTimeAcceptRate,
        Indicator::OnTimeCheckRate,
        Indicator::AccurateDispatchRate,
    ];

    /// The identifier in TOML, JSON and CSV.
    pub const fn as_str(self) -> &'static str {
        match self {
            Indicator::DispatchRate => "dispatch_rate",
            Indicator::OnTimeDispatchRate => "on_time_dispatch_rate",
            Indicator::CloseRate => "close_rate",
            Indicator::OnTimeCloseRate => "on_time_close_rate",
            Indicator::HandleRate => "handle_rate",
            Indicator::OnTimeHandleRate => "on_time_handle_rate",
            Indicator::ReworkRate => "rework_rate",
            Indicator::ReportUpRate => "report_up_rate",
            Indicator::DiscoveryRate => "discovery_rate",
            Indicator::CoverageRate => "coverage_rate",
            Indicator::ReplyRate => "reply_rate",
            Indicator::SatisfactionRate => "satisfaction_rate",
            Indicator::ValidReportRate => "valid_report_rate",
            Indicator::OnTimeAcceptRate => "on_time_accept_rate",
            Indicator::OnTimeCheckRate => "on_time_check_rate",
            Indicator::AccurateDispatchRate => "accurate_dispatch_rate",
        }
    }

    /// Chinese label.
    pub const fn name_zh(self) -> &'static str {
        match self {
            Indicator::DispatchRate => "派案率",
            Indicator::OnTimeDispatchRate => "按时派遣率",
            Indicator::CloseRate => "结案率",
            Indicator::OnTimeCloseRate => "按期结案率",
            Indicator::HandleRate => "处置率",
            Indicator::OnTimeHandleRate => "按期处置率",
            Indicator::ReworkRate => "返工率",
            Indicator::ReportUpRate => "上报率",
            Indicator::DiscoveryRate => "发现率",
            Indicator::CoverageRate => "见巡率",
            Indicator::ReplyRate => "回访率",
            Indicator::SatisfactionRate => "满意率",
            Indicator::ValidReportRate => "有效上报率",
            Indicator::OnTimeAcceptRate => "按时核实率",
            Indicator::OnTimeCheckRate => "按时核查率",
            Indicator::AccurateDispatchRate => "准确派遣率",
        }
    }

    /// English label.
    pub const fn name_en(self) -> &'static str {
        match self {
            Indicator::DispatchRate => "Dispatch rate",
            Indicator::OnTimeDispatchRate => "On-time dispatch rate",
            Indicator::CloseRate => "Close rate",
            Indicator::OnTimeCloseRate => "On-time close rate",
            Indicator::HandleRate => "Handle rate",
            Indicator::OnTimeHandleRate => "On-time handle rate",
            Indicator::ReworkRate => "Rework rate",
            Indicator::ReportUpRate => "Report-up rate",
            Indicator::DiscoveryRate => "Discovery rate",
            Indicator::CoverageRate => "Patrol coverage",
            Indicator::ReplyRate => "Reply rate",
            Indicator::SatisfactionRate => "Satisfaction rate",
            Indicator::ValidReportRate => "Valid report rate",
            Indicator::OnTimeAcceptRate => "On-time acceptance rate",
            Indicator::OnTimeCheckRate => "On-time check rate",
            Indicator::AccurateDispatchRate => "Accurate dispatch rate",
        }
    }

    /// Whether a lower rate is the better one (it scores `1 − rate`).
    pub const fn lower_is_better(self) -> bool {
        matches!(self, Indicator::ReworkRate)
    }

    /// Parses [`Indicator::as_str`].
    pub fn parse(text: &str) -> Option<Indicator> {
        Indicator::ALL.into_iter().find(|i| i.as_str() == text)
    }
}

/// A fraction: its numerator and denominator as counted, and the rate when the
/// denominator is not zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fraction {
    /// Numerator.
    pub numerator: u64,
    /// Denominator.
    pub denominator: u64,
}

impl Fraction {
    /// numerator / denominator; `None` for 0/0 (nothing to judge).
    pub fn rate(self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }
}

/// Patrol duties and walks of a region in the period (from the patrol rollup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Coverage {
    /// Unit-grid duties assigned (worker-days × grids).
    pub assigned: u64,
    /// Of those, walked.
    pub covered: u64,
}

/// What a unit's rates are computed from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnitCounts {
    /// All its cases.
    pub all: Counts,
    /// Its cases that stayed within its authority (a region's only; the rest = all).
    pub within: Counts,
    /// Its cases that needed a level above it (a region's only).
    pub above: Counts,
    /// A region's patrol coverage.
    pub coverage: Option<Coverage>,
}

impl UnitCounts {
    /// Sums groups of a region at `unit_level` (district, street, community): each
    /// group is the counts of its cases that ended at one level. A community's and a
    /// street's authority is street level; a district's, district level.
    pub fn of_region(unit_level: Level, groups: &[(Level, Counts)]) -> UnitCounts {
        let authority = unit_level.max(Level::Street);
        let mut unit = UnitCounts::default();
        for (level, counts) in groups {
            unit.all.add(counts);
            if *level <= authority {
                unit.within.add(counts);
            } else {
                unit.above.add(counts);
            }
        }
        unit
    }

    /// A team's or a person's counts (no authority split).
    pub fn of(counts: Counts) -> UnitCounts {
        UnitCounts {
            all: counts,
            within: counts,
            above: Counts::default(),
            coverage: None,
        }
    }

    /// A supervisor's (信息监督员) counts: the reports of the cases they reported, the
    /// acceptances of those they accepted, the checks of those they checked. Each
    /// argument sums every field of its cases; only that part is the person's work.
    pub fn of_supervisor(reported: &Counts, accepted: &Counts, checked: &Counts) -> UnitCounts {
        UnitCounts::of(Counts {
            reports: reported.reports,
            problems: reported.problems,
            own_found: reported.own_found,
            accepted: accepted.accepted,
            accepted_on_time: accepted.accepted_on_time,
            checked: checked.checked,
            checked_on_time: checked.checked_on_time,
            ..Counts::default()
        })
    }

    /// How many cases a unit of `kind` is judged on (the small-sample rule): a
    /// region's, team's or handler's problems; a supervisor's reports, acceptances
    /// and checks; a dispatcher's dispatches.
    pub fn cases(&self, kind: UnitKind) -> u64 {
        let a = &self.all;
        match kind {
            UnitKind::Region | UnitKind::Team | UnitKind::Handler => a.problems,
            UnitKind::Reporter => a.reports + a.accepted + a.checked,
            UnitKind::Dispatcher => a.dispatched,
        }
    }

    /// The fraction of `indicator` for a unit at `unit_level` (regions) or `None`
    /// (teams and people).
    pub fn fraction(&self, indicator: Indicator, unit_level: Option<Level>) -> Fraction {
        let f = |numerator, denominator| Fraction {
            numerator,
            denominator,
        };
        let w = &self.within;
        match indicator {
            Indicator::DispatchRate => f(w.dispatched, w.registered),
            Indicator::OnTimeDispatchRate => f(w.dispatched_on_time, w.dispatched),
            Indicator::CloseRate => f(w.closed, w.registered),
            Indicator::OnTimeCloseRate => f(w.closed_on_time, w.registered),
            Indicator::HandleRate => f(w.handled, w.dispatched),
            Indicator::OnTimeHandleRate => f(w.handled_on_time, w.dispatched),
            Indicator::ReworkRate => f(w.reworked, w.handled),
            Indicator::ReportUpRate => {
                let reported = match unit_level.map(|l| l.max(Level::Street)) {
                    Some(Level::Street) => self.above.reported_up_by_street,
                    Some(Level::District) => self.above.reported_up_by_district,
                    _ => 0,
                };
                f(reported, self.above.problems)
            }
            Indicator::DiscoveryRate => f(self.all.own_found, self.all.problems),
            Indicator::CoverageRate => {
                let c = self.coverage.unwrap_or_default();
                f(c.covered, c.assigned)
            }
            Indicator::ReplyRate => f(self.all.replied, self.all.reply_due),
            Indicator::SatisfactionRate => f(self.all.satisfied, self.all.replied),
            Indicator::ValidReportRate => f(self.all.problems, self.all.reports),
            Indicator::OnTimeAcceptRate => f(self.all.accepted_on_time, self.all.accepted),
            Indicator::OnTimeCheckRate => f(self.all.checked_on_time, self.all.checked),
            Indicator::AccurateDispatchRate => f(
                self.all
                    .dispatched
                    .saturating_sub(self.all.dispatch_returned),
                self.all.dispatched,
            ),
        }
    }
}

/// The operator's assessment rules: weights per kind of unit, grade bands, the
/// smallest sample ranked.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessmentRules {
    /// Fewer cases than this in the period: listed, not ranked.
    pub minimum_cases: u64,
    /// Grade floors, best first: (grade, floor score).
    pub grades: Vec<(String, f64)>,
    /// Each kind's indicators and weights (adding up to 100).
    pub weights: BTreeMap<UnitKind, Vec<(Indicator, f64)>>,
}

/// Why an assessment rules file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulesError {
    /// Not TOML of the expected layout.
    #[error("assessment rules: {0}")]
    Syntax(String),
    /// An indicator name no kind knows.
    #[error("assessment rules: [{kind}] has unknown indicator {name:?}")]
    UnknownIndicator {
        /// The kind's table.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A weight below zero or not finite.
    #[error("assessment rules: [{kind}] {indicator} = {weight}: weights are 0–100")]
    BadWeight {
        /// The kind's table.
        kind: &'static str,
        /// The indicator.
        indicator: &'static str,
        /// The weight.
        weight: f64,
    },
    /// The weights of a kind do not add up to 100.
    #[error("assessment rules: the weights of [{kind}] add up to {sum}, not 100")]
    WeightsNotHundred {
        /// The kind's table.
        kind: &'static str,
        /// Their sum.
        sum: f64,
    },
    /// A kind has no table.
    #[error("assessment rules: [{0}] is missing")]
    MissingKind(&'static str),
    /// Grade floors not strictly falling, or outside 0–100.
    #[error("assessment rules: grade floors must fall strictly from A, within 0–100 ({0})")]
    BadGrades(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    minimum_cases: u64,
    grades: BTreeMap<String, f64>,
    region: Option<BTreeMap<String, f64>>,
    team: Option<BTreeMap<String, f64>>,
    handler: Option<BTreeMap<String, f64>>,
    reporter: Option<BTreeMap<String, f64>>,
    dispatcher: Option<BTreeMap<String, f64>>,
}

impl AssessmentRules {
    /// The built-in rules.
    pub fn standard() -> AssessmentRules {
        #[allow(clippy::expect_used)]
        AssessmentRules::from_toml_str(DEFAULT_RULES).expect("the built-in rules are valid")
    }

    /// Parses and validates an operator's file.
    pub fn from_toml_str(text: &str) -> Result<AssessmentRules, RulesError> {
        let file: RulesFile =
            toml::from_str(text).map_err(|e| RulesError::Syntax(e.to_string()))?;
        let mut grades: Vec<(String, f64)> = file.grades.into_iter().collect();
        grades.sort_by(|a, b| a.0.cmp(&b.0));
        let mut last = f64::INFINITY;
        for (grade, floor) in &grades {
            if !floor.is_finite() || !(0.0..=100.0).contains(floor) || *floor >= last {
                return Err(RulesError::BadGrades(format!("{grade} = {floor}")));
            }
            last = *floor;
        }
        if grades.is_empty() {
            return Err(RulesError::BadGrades("no grades".into()));
        }
        let mut weights = BTreeMap::new();
        for (kind, table) in [
            (UnitKind::Region, file.region),
            (UnitKind::Team, file.team),
            (UnitKind::Handler, file.handler),
            (UnitKind::Reporter, file.reporter),
            (UnitKind::Dispatcher, file.dispatcher),
        ] {
            let table = table.ok_or(RulesError::MissingKind(kind.as_str()))?;
            let mut list = Vec::new();
            for (name, weight) in table {
                let indicator =
                    Indicator::parse(&name).ok_or_else(|| RulesError::UnknownIndicator {
                        kind: kind.as_str(),
                        name: name.clone(),
                    })?;
                if !weight.is_finite() || !(0.0..=100.0).contains(&weight) {
                    return Err(RulesError::BadWeight {
                        kind: kind.as_str(),
                        indicator: indicator.as_str(),
                        weight,
                    });
                }
                list.push((indicator, weight));
            }
            let sum: f64 = list.iter().map(|(_, w)| w).sum();
            if (sum - 100.0).abs() > 1e-6 {
                return Err(RulesError::WeightsNotHundred {
                    kind: kind.as_str(),
                    sum,
                });
            }
            list.sort_by_key(|(i, _)| *i);
            weights.insert(kind, list);
        }
        Ok(AssessmentRules {
            minimum_cases: file.minimum_cases,
            grades,
            weights,
        })
    }

    /// The indicators of a kind, with weights.
    pub fn indicators(&self, kind: UnitKind) -> &[(Indicator, f64)] {
        self.weights.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// A unit's score out of 100: the weighted mean of its indicators' values (a
    /// lower-is-better rate counts as `1 − rate`), over the indicators that have a
    /// denominator, so a unit is never marked down for what it had no case of.
    /// `None` when no weighted indicator has a denominator.
    pub fn score(
        &self,
        kind: UnitKind,
        unit: &UnitCounts,
        unit_level: Option<Level>,
    ) -> Option<f64> {
        let mut total = 0.0;
        let mut weight_sum = 0.0;
        for (indicator, weight) in self.indicators(kind) {
            if *weight == 0.0 {
                continue;
            }
            let Some(rate) = unit.fraction(*indicator, unit_level).rate() else {
                continue;
            };
            let value = if indicator.lower_is_better() {
                1.0 - rate
            } else {
                rate
            };
            total += weight * value;
            weight_sum += weight;
        }
        (weight_sum > 0.0).then(|| total / weight_sum * 100.0)
    }

    /// The grade of a score.
    pub fn grade(&self, score: f64) -> String {
        self.grades
            .iter()
            .find(|(_, floor)| score >= *floor)
            .map_or_else(|| "E".to_owned(), |(grade, _)| grade.clone())
    }
}

/// A unit as ranked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    /// The unit's key (a grid code prefix, a team id, a user id).
    pub unit: String,
    /// Its score, if any indicator had a denominator.
    pub score: Option<f64>,
    /// Its grade.
    pub grade: Option<String>,
    /// Its place (1 = best; ties share a place), `None` when not ranked.
    pub rank: Option<u32>,
    /// Why it is not ranked: `too_few_cases`, `no_score`.
    pub unranked: Option<&'static str>,
    /// The plan's flag: `penalty` (last place of a month), `reward` (top three of a
    /// quarter).
    pub flag: Option<&'static str>,
    /// Its cases (problems) in the period.
    pub cases: u64,
}

/// Ranks `units` (key, score, number of problems) for `period`: best score first,
/// ties sharing a place (1, 2, 2, 4); a unit with fewer than `minimum_cases` problems
/// or no score is listed after the ranked ones, unranked. The last place of a month
/// (every unit sharing it) is flagged `penalty`, places 1–3 of a quarter `reward`
/// (每月对最后一名实行经济处罚，每季度对前三名进行奖励). One ranked unit alone is
/// neither last nor flagged.
pub fn rank(
    units: Vec<(String, Option<f64>, u64)>,
    minimum_cases: u64,
    period: Period,
    rules: &AssessmentRules,
) -> Vec<Ranked> {
    let (mut ranked, unranked): (Vec<_>, Vec<_>) = units
        .into_iter()
        .partition(|(_, score, cases)| score.is_some() && *cases >= minimum_cases);
    ranked.sort_by(|a, b| {
        let (x, y) = (a.1.unwrap_or(0.0), b.1.unwrap_or(0.0));
        y.total_cmp(&x).then_with(|| a.0.cmp(&b.0))
    });
    let mut out = Vec::new();
    let mut place = 0u32;
    let mut previous: Option<f64> = None;
    let count = ranked.len();
    for (i, (unit, score, cases)) in ranked.into_iter().enumerate() {
        let s = score.unwrap_or(0.0);
        // Scores equal to 1e-9 share a place (sums of floats in another order).
        if previous.is_none_or(|p| (p - s).abs() > 1e-9) {
            place = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        previous = Some(s);
        out.push(Ranked {
            unit,
            score,
            grade: score.map(|s| rules.grade(s)),
            rank: Some(place),
            unranked: None,
            flag: None,
            cases,
        });
    }
    if count > 1 {
        match period {
            Period::Month { .. } => {
                let last = out.last().and_then(|r| r.rank);
                for r in out.iter_mut().filter(|r| r.rank == last) {
                    r.flag = Some("penalty");
                }
            }
            Period::Quarter { .. } => {
                for r in out.iter_mut().filter(|r| r.rank.is_some_and(|p| p <= 3)) {
                    r.flag = Some("reward");
                }
            }
        }
    }
    let mut rest: Vec<Ranked> = unranked
        .into_iter()
        .map(|(unit, score, cases)| Ranked {
            unit,
            score,
            grade: score.map(|s| rules.grade(s)),
            rank: None,
            unranked: Some(if score.is_none() {
                "no_score"
            } else {
                "too_few_cases"
            }),
            flag: None,
            cases,
        })
        .collect();
    rest.sort_by(|a, b| a.unit.cmp(&b.unit));
    out.extend(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
