//! Who acts on a case: roles (岗位) from the plan and the standard digital city
//! management flow, the grid scope a person works in, and the identity every
//! timeline entry carries.
//!
//! An entry's identity is a *claim* stored in the document. The fold trusts it so
//! that every replica folds the same state without asking anyone; the server makes
//! the claim true by refusing incoming changes whose claims are not the
//! authenticated device's (see [`crate::case::rules`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::catalog::TeamId;
use crate::grid::GridCode;

/// A role (岗位). One person has one role per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Enforcement officer (执法队员), a field team.
    EnforcementOfficer,
    /// Assistant (协管员), a field team.
    Assistant,
    /// Municipal maintenance worker (市政维护), a field team.
    MunicipalMaintenance,
    /// Sanitation worker (环卫工人), a field team.
    SanitationWorker,
    /// Information supervisor (信息监督员), a field team that finds, verifies
    /// (核实) and checks (核查) but does not fix.
    InformationSupervisor,
    /// Grid leader (网格长) of a community's grids.
    GridLeader,
    /// Acceptor (受理员) at the command centre.
    Acceptor,
    /// Shift lead (值班长) at the command centre: registers and closes.
    ShiftLead,
    /// Dispatcher (派遣员) at the command centre.
    Dispatcher,
    /// Handler at a professional department (专业部门) outside the field teams.
    DepartmentHandler,
    /// Hotline operator (接线员) of 12319.
    HotlineOperator,
    /// District supervisor: a district leader who 分包 (is answerable for) a unit.
    DistrictSupervisor,
    /// City supervisor: a city leader who 分包 a district.
    CitySupervisor,
    /// System administrator: manages accounts, not cases.
    Admin,
    /// The server itself (routing, intake from Open311).
    Server,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 15] = [
        Role::EnforcementOfficer,
        Role::Assistant,
        Role::MunicipalMaintenance,
        Role::SanitationWorker,
        Role::InformationSupervisor,
        Role::GridLeader,
        Role::Acceptor,
        Role::ShiftLead,
        Role::Dispatcher,
        Role::DepartmentHandler,
        Role::HotlineOperator,
        Role::DistrictSupervisor,
        Role::CitySupervisor,
        Role::Admin,
        Role::Server,
    ];

    /// The identifier in documents, JSON and SQL, e.g. `shift_lead`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::EnforcementOfficer => "enforcement_officer",
            Role::Assistant => "assistant",
            Role::MunicipalMaintenance => "municipal_maintenance",
            Role::SanitationWorker => "sanitation_worker",
            Role::InformationSupervisor => "information_supervisor",
            Role::GridLeader => "grid_leader",
            Role::Acceptor => "acceptor",
            Role::ShiftLead => "shift_lead",
            Role::Dispatcher => "dispatcher",
            Role::DepartmentHandler => "department_handler",
            Role::HotlineOperator => "hotline_operator",
            Role::DistrictSupervisor => "district_supervisor",
            Role::CitySupervisor => "city_supervisor",
            Role::Admin => "admin",
            Role::Server => "server",
        }
    }

    /// Chinese label, e.g. 值班长.
    pub const fn name_zh(self) -> &'static str {
        match self {
            Role::EnforcementOfficer => "执法队员",
            Role::Assistant => "协管员",
            Role::MunicipalMaintenance => "市政维护",
            Role::SanitationWorker => "环卫工人",
            Role::InformationSupervisor => "信息监督员",
            Role::GridLeader => "网格长",
            Role::Acceptor => "受理员",
            Role::ShiftLead => "值班长",
            Role::Dispatcher => "派遣员",
            Role::DepartmentHandler => "专业部门",
            Role::HotlineOperator => "接线员",
            Role::DistrictSupervisor => "区级分包领导",
            Role::CitySupervisor => "市级分包领导",
            Role::Admin => "系统管理员",
            Role::Server => "系统",
        }
    }

    /// English label, e.g. Shift lead.
    pub const fn name_en(self) -> &'static str {
        match self {
            Role::EnforcementOfficer => "Enforcement officer",
            Role::Assistant => "Assistant",
            Role::MunicipalMaintenance => "Municipal maintenance",
            Role::SanitationWorker => "Sanitation worker",
            Role::InformationSupervisor => "Information supervisor",
            Role::GridLeader => "Grid leader",
            Role::Acceptor => "Acceptor",
            Role::ShiftLead => "Shift lead",
            Role::Dispatcher => "Dispatcher",
            Role::DepartmentHandler => "Department handler",
            Role::HotlineOperator => "Hotline operator",
            Role::DistrictSupervisor => "District supervisor",
            Role::CitySupervisor => "City supervisor",
            Role::Admin => "Administrator",
            Role::Server => "System",
        }
    }

    /// Which users this role may list: `None` for none, `Some(false)` for those whose
    /// grids overlap its own, `Some(true)` for everyone. The command centre, grid
    /// leaders and supervisors manage people; field workers, departments and the
    /// hotline do not.
    pub const fn lists_users(self) -> Option<bool> {
        match self {
            Role::Admin | Role::CitySupervisor | Role::Server => Some(true),
            Role::DistrictSupervisor
            | Role::ShiftLead
            | Role::Dispatcher
            | Role::Acceptor
            | Role::GridLeader => Some(false),
            _ => None,
        }
    }

    /// Whether this role may change postings (定岗: role, team and grids) at all:
    /// the administrator and the 分包 supervisors. Which postings exactly is
    /// [`Role::may_assign`].
    pub const fn assigns_postings(self) -> bool {
        matches!(
            self,
            Role::Admin | Role::CitySupervisor | Role::DistrictSupervisor
        )
    }

    /// Whether this role may give `role` to someone (or take it from them): nobody
    /// gives the server's role; only an administrator gives or takes the
    /// administrator's; a district supervisor neither the city supervisor's.
    pub const fn may_grant(self, role: Role) -> bool {
        match (self, role) {
            (_, Role::Server) => false,
            (Role::Admin, _) => true,
            (Role::CitySupervisor, Role::Admin) => false,
            (Role::CitySupervisor, _) => true,
            (Role::DistrictSupervisor, Role::Admin | Role::CitySupervisor) => false,
            (Role::DistrictSupervisor, _) => true,
            _ => false,
        }
    }

    /// Whether a person of this role working in `scope` may change a user's posting
    /// from (`user_role`, `user_scope`) to (`new_role`, `new_scope`). Both postings
    /// must be ones this role may grant ([`Role::may_grant`]) and both scopes must lie
    /// wholly inside `scope` ([`GridScope::encloses`]): a district supervisor moves
    /// people within the district, never into or out of another. An empty scope (a
    /// user not yet posted) lies inside every scope.
    pub fn may_assign(
        self,
        scope: &GridScope,
        user_role: Role,
        user_scope: &GridScope,
        new_role: Role,
        new_scope: &GridScope,
    ) -> Result<(), AssignRefused> {
        if !self.assigns_postings() {
            return Err(AssignRefused::NotAnAssigner(self));
        }
        if !self.may_grant(user_role) {
            return Err(AssignRefused::UserRole {
                assigner: self,
                role: user_role,
            });
        }
        if !self.may_grant(new_role) {
            return Err(AssignRefused::NewRole {
                assigner: self,
                role: new_role,
            });
        }
        if !scope.encloses(user_scope) {
            return Err(AssignRefused::UserScope(user_scope.clone()));
        }
        if !scope.encloses(new_scope) {
            return Err(AssignRefused::NewScope(new_scope.clone()));
        }
        Ok(())
    }

    /// Whether a posting in this role must name a team: the five field teams and the
    /// departments' handlers receive dispatched cases by team, so without one their
    /// work would reach nobody.
    pub const fn needs_team(self) -> bool {
        self.is_field_worker() || matches!(self, Role::DepartmentHandler)
    }

    /// Whether `assigner` may post `user` as `new_role` with `team` at all, before the
    /// grids are looked at ([`Role::may_assign`]): nobody changes their own posting (the
    /// city's only supervisor could demote itself and leave nobody to undo it), and a
    /// role that handles cases by team needs one ([`Role::needs_team`]).
    pub fn check_posting(
        assigner: &str,
        user: &str,
        new_role: Role,
        team: Option<&str>,
    ) -> Result<(), AssignRefused> {
        if assigner == user {
            return Err(AssignRefused::OwnPosting);
        }
        if new_role.needs_team() && team.is_none() {
            return Err(AssignRefused::TeamRequired(new_role));
        }
        Ok(())
    }

    /// Whether the role takes callers' reports in, sees their personal data and
    /// replies to them (回访): the hotline, the command centre's acceptor and shift
    /// lead, and the district and city supervisors; never a field role.
    pub const fn answers_callers(self) -> bool {
        matches!(
            self,
            Role::HotlineOperator
                | Role::Acceptor
                | Role::ShiftLead
                | Role::DistrictSupervisor
                | Role::CitySupervisor
        )
    }

    /// Whether this is one of the five field teams posted to level-3 grids.
    pub const fn is_field_worker(self) -> bool {
        matches!(
            self,
            Role::EnforcementOfficer
                | Role::Assistant
                | Role::MunicipalMaintenance
                | Role::SanitationWorker
                | Role::InformationSupervisor
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a posting change is refused ([`Role::may_assign`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignRefused {
    /// The role changes no postings.
    #[error("the role {0} changes no postings")]
    NotAnAssigner(Role),
    /// The user's current role is above what the assigner may grant.
    #[error("the role {assigner} may not change the posting of someone posted as {role}")]
    UserRole {
        /// The assigner's role.
        assigner: Role,
        /// The user's current role.
        role: Role,
    },
    /// The new role is above what the assigner may grant.
    #[error("the role {assigner} may not post anyone as {role}")]
    NewRole {
        /// The assigner's role.
        assigner: Role,
        /// The role asked for.
        role: Role,
    },
    /// The user works (also) outside the assigner's grids.
    #[error("the user's current grids {0} are not all inside yours")]
    UserScope(GridScope),
    /// The new grids are (partly) outside the assigner's.
    #[error("the new grids {0} are not all inside yours")]
    NewScope(GridScope),
    /// The assigner asked to change their own posting.
    #[error("nobody changes their own posting: ask another supervisor or an administrator")]
    OwnPosting,
    /// The role handles cases by team and no team was given.
    #[error("a {0} posting needs a team: its dispatched cases are routed by team")]
    TeamRequired(Role),
}

/// Why a role, scope or user id is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not one of [`Role::ALL`].
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    /// A scope item is neither `*` nor a grid code prefix of 2, 4, 6, 9, 12 or 15 digits.
    #[error("invalid scope item {0:?}: use * or a grid code prefix of 2, 4, 6, 9, 12 or 15 digits")]
    ScopeItem(String),
    /// A user id is empty, longer than 64 bytes or has characters other than
    /// letters, digits, `-`, `_`, `.`, `@` and `:`.
    #[error("invalid user id {0:?}")]
    UserId(String),
}

impl FromStr for Role {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| IdentityError::UnknownRole(text.to_owned()))
    }
}

/// The levels of the grid hierarchy, from a unit grid up to the whole city. A scope
/// has an authority level; a case has the level that must deal with it, which
/// escalation (逐级上报) raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A unit or level-3 grid.
    Grid,
    /// A community (社区/村组).
    Community,
    /// A street office, town or township (街道/镇/乡).
    Street,
    /// A district or county (区/县).
    District,
    /// The city.
    City,
}

impl Level {
    /// The identifier in documents and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Grid => "grid",
            Level::Community => "community",
            Level::Street => "street",
            Level::District => "district",
            Level::City => "city",
        }
    }

    /// Chinese label.
    pub const fn name_zh(self) -> &'static str {
        match self {
            Level::Grid => "网格",
            Level::Community => "社区",
            Level::Street => "街道",
            Level::District => "区",
            Level::City => "市",
        }
    }

    /// The next level up, if any.
    pub const fn up(self) -> Option<Level> {
        match self {
            Level::Grid => Some(Level::Community),
            Level::Community => Some(Level::Street),
            Level::Street => Some(Level::District),
            Level::District => Some(Level::City),
            Level::City => None,
        }
    }

    fn of_prefix(prefix: &str) -> Level {
        match prefix.len() {
            0..=4 => Level::City,
            5..=6 => Level::District,
            7..=9 => Level::Street,
            10..=12 => Level::Community,
            _ => Level::Grid,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The grids a person works in: grid code prefixes (a district `410102`, a street
/// `410102001`, a community, single unit grids) or the whole city (`*`).
///
/// Its text form, stored in every timeline entry, is the items joined by commas,
/// e.g. `410102003,410102004` or `*`. An empty scope covers nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GridScope {
    prefixes: Vec<String>,
}

impl GridScope {
    /// The whole city.
    pub fn everywhere() -> GridScope {
        GridScope {
            prefixes: vec![String::new()],
        }
    }

    /// A scope of the given prefixes (each 2, 4, 6, 9, 12 or 15 digits, or `*`).
    pub fn new<I, S>(items: I) -> Result<GridScope, IdentityError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut prefixes = Vec::new();
        for item in items {
            let item = item.as_ref().trim();
            if item == "*" {
                prefixes.push(String::new());
            } else if matches!(item.len(), 2 | 4 | 6 | 9 | 12 | 15)
                && item.bytes().all(|b| b.is_ascii_digit())
            {
                prefixes.push(item.to_owned());
            } else {
                return Err(IdentityError::ScopeItem(item.to_owned()));
            }
        }
        prefixes.sort();
        prefixes.dedup();
        Ok(GridScope { prefixes })
    }

    /// Whether the scope covers `grid`. A case outside every grid (no grid code)
    /// is covered only by a city-wide scope.
    pub fn covers(&self, grid: Option<&GridCode>) -> bool {
        match grid {
            Some(grid) => {
                let code = grid.to_string();
                self.prefixes.iter().any(|p| code.starts_with(p.as_str()))
            }
            None => self.prefixes.iter().any(String::is_empty),
        }
    }

    /// The highest level at which this scope covers `grid`, if it covers it: a
    /// district supervisor has district authority over the district's grids.
    pub fn authority_over(&self, grid: Option<&GridCode>) -> Option<Level> {
        let code = grid.map(ToString::to_string);
        self.prefixes
            .iter()
            .filter(|p| match &code {
                Some(code) => code.starts_with(p.as_str()),
                None => p.is_empty(),
            })
            .map(|p| Level::of_prefix(p))
            .max()
    }

    /// Whether the two scopes share any grid (one's prefix is a prefix of the
    /// other's): a district supervisor's scope overlaps every scope inside it.
    pub fn overlaps(&self, other: &GridScope) -> bool {
        self.prefixes.iter().any(|p| {
            other
                .prefixes
                .iter()
                .any(|q| p.starts_with(q.as_str()) || q.starts_with(p.as_str()))
        })
    }

    /// Whether every grid of `other` is in this scope (each of its prefixes starts
    /// with one of ours): `410102` encloses `410102001,410102002001` but neither
    /// `410102,410103001` nor `4101`. An empty `other` is enclosed by every scope.
    pub fn encloses(&self, other: &GridScope) -> bool {
        other
            .prefixes
            .iter()
            .all(|q| self.prefixes.iter().any(|p| q.starts_with(p.as_str())))
    }

    /// The prefixes, `""` standing for the whole city.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }
}

impl fmt::Display for GridScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, prefix) in self.prefixes.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(if prefix.is_empty() { "*" } else { prefix })?;
        }
        Ok(())
    }
}

impl FromStr for GridScope {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Ok(GridScope::default());
        }
        GridScope::new(text.split(','))
    }
}

impl TryFrom<String> for GridScope {
    type Error = IdentityError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<GridScope> for String {
    fn from(scope: GridScope) -> String {
        scope.to_string()
    }
}

/// Checks a user id: 1–64 bytes of ASCII letters, digits, `-`, `_`, `.`, `@`, `:`.
pub fn check_user_id(id: &str) -> Result<(), IdentityError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@:".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(IdentityError::UserId(id.to_owned()))
    }
}

/// Who made a change: the identity a timeline entry, a photo or a patrol review
/// claims, and that the server checks against the authenticated device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    /// The user's account id.
    pub user: String,
    /// The user's role.
    pub role: Role,
    /// The team the user belongs to, for the roles that handle cases.
    pub team: Option<TeamId>,
    /// The grids the user works in.
    pub scope: GridScope,
    /// The Automerge actor id of the device (hex), assigned at registration.
    pub device: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
