//! Ownership (权属): which team must handle a case, whether it is dispatched
//! automatically, and who the responsible people are.
//!
//! The catalogue gives every category a default team. Ownership rules refine it, per
//! category pattern and per area; overrides name stretches of the city — the roads and
//! bridges the city keeps maintaining itself (the 2012 plan devolves 38 roads and 17
//! bridges to the districts; the others stay with the city) — as lines with a buffer or
//! polygons, and win over every rule for their categories. Like the catalogue, the rules
//! are data: an operator's TOML file, parsed and checked here; this module does no I/O.
//!
//! # Format
//!
//! ```toml
//! [[rule]]
//! categories = ["E0102", "E0103"]   # a category, a major class ("E01"), a kind ("C"/"E") or "*"
//! area = "410105"                   # optional: a grid code prefix (district, street, …)
//! team = "sanitation"               # optional: a team of the catalogue (default: the category's)
//! dispatch = "auto"                 # "auto" or "queue" (the dispatcher's queue; the default)
//!
//! [[override]]
//! name = "金水路（市管道路）"
//! categories = ["C02", "E0401"]
//! team = "municipal_maintenance"
//! dispatch = "queue"
//! line = [[113.60, 34.76], [113.70, 34.76]]   # GCJ-02 lon/lat, like the grids
//! buffer_m = 30
//! # or: polygon = [[lon, lat], …] (closed or not)
//! ```
//!
//! # Precedence
//!
//! An override containing the case's position (for one of its categories) wins; the
//! first such in file order. Otherwise the matching rule with the most specific
//! category pattern wins (a category over a major class over a kind over `*`), then the
//! one with the narrowest area, then the first in file order. Otherwise the catalogue's
//! default team, dispatched through the queue.

use std::fmt;

use serde::Deserialize;

use crate::catalog::{Catalog, CategoryCode, Kind, TeamId};
use crate::geo::LonLat;
use crate::grid::GridCode;
use crate::role::{GridScope, Role};

/// How a case reaches its team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchMode {
    /// The server dispatches it at once (as the server's own timeline action).
    Auto,
    /// It waits in the dispatcher's queue (待派遣).
    #[default]
    Queue,
}

/// Which categories a rule or override is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CategoryPattern {
    /// Every category.
    Any,
    /// Every category of a kind.
    Kind(Kind),
    /// Every category of a major class.
    Major(Kind, u8),
    /// One category.
    Category(CategoryCode),
}

impl CategoryPattern {
    fn parse(text: &str) -> Option<CategoryPattern> {
        let kind = |c: char| Kind::from_prefix(c);
        let mut chars = text.chars();
        match (text.len(), chars.next()) {
            (1, Some('*')) => Some(CategoryPattern::Any),
            (1, Some(c)) => kind(c).map(CategoryPattern::Kind),
            (3, Some(c)) => {
                let digits = text.get(1..)?;
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let major: u8 = digits.parse().ok().filter(|m| *m > 0)?;
                Some(CategoryPattern::Major(kind(c)?, major))
            }
            _ => text.parse().ok().map(CategoryPattern::Category),
        }
    }

    /// Whether `category` matches.
    pub fn matches(&self, category: CategoryCode) -> bool {
        match self {
            CategoryPattern::Any => true,
            CategoryPattern::Kind(kind) => category.kind() == *kind,
            CategoryPattern::Major(kind, major) => {
                category.kind() == *kind && category.major() == *major
            }
            CategoryPattern::Category(code) => *code == category,
        }
    }

    /// 0 for `*` up to 3 for one category.
    pub fn specificity(&self) -> u8 {
        match self {
            CategoryPattern::Any => 0,
            CategoryPattern::Kind(_) => 1,
            CategoryPattern::Major(..) => 2,
            CategoryPattern::Category(_) => 3,
        }
    }
}

/// The pattern as written in the file: `*`, `C`, `E01` or `E0102`.
impl fmt::Display for CategoryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CategoryPattern::Any => f.write_str("*"),
            CategoryPattern::Kind(kind) => write!(f, "{}", kind.prefix()),
            CategoryPattern::Major(kind, major) => write!(f, "{}{major:02}", kind.prefix()),
            CategoryPattern::Category(code) => write!(f, "{code}"),
        }
    }
}

/// One rule: categories (in an area) → team.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Which categories.
    pub categories: Vec<CategoryPattern>,
    /// Grid code prefix the rule is limited to; `None` for the whole city.
    pub area: Option<String>,
    /// The team; `None` keeps the category's default team (a rule that only sets
    /// the dispatch mode).
    pub team: Option<TeamId>,
    /// Automatic or queued.
    pub dispatch: DispatchMode,
}

/// Where an override applies (GCJ-02, like the grids).
#[derive(Debug, Clone, PartialEq)]
pub enum OverrideShape {
    /// Within `buffer_m` metres of a line (a road, a bridge).
    Line {
        /// The vertices.
        points: Vec<LonLat>,
        /// Half-width, metres.
        buffer_m: f64,
    },
    /// Inside a polygon (a square, a park).
    Polygon {
        /// The ring.
        ring: Vec<LonLat>,
    },
}

/// A stretch of the city whose cases of some categories go to one team whatever the
/// rules say (e.g. a city-maintained road).
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Its name, e.g. 金水路.
    pub name: String,
    /// Which categories.
    pub categories: Vec<CategoryPattern>,
    /// The team.
    pub team: TeamId,
    /// Automatic or queued.
    pub dispatch: DispatchMode,
    /// Where.
    pub shape: OverrideShape,
}

impl Override {
    /// Whether `point` (GCJ-02) is in this override's area.
    pub fn contains(&self, point: LonLat) -> bool {
        match &self.shape {
            OverrideShape::Line { points, buffer_m } => points
                .windows(2)
                .any(|segment| segment_distance_m(point, segment[0], segment[1]) <= *buffer_m),
            OverrideShape::Polygon { ring } => inside(point, ring),
        }
    }
}

/// Distance in metres from `p` to the segment `a`–`b`, on a local flat projection
/// (exact enough over a city: the error is far below a buffer's width).
fn segment_distance_m(p: LonLat, a: LonLat, b: LonLat) -> f64 {
    let metres_per_degree_lat = 110_574.0;
    let metres_per_degree_lon = 111_320.0 * p.lat.to_radians().cos();
    let project = |q: LonLat| {
        (
            (q.lon - p.lon) * metres_per_degree_lon,
            (q.lat - p.lat) * metres_per_degree_lat,
        )
    };
    let ((ax, ay), (bx, by)) = (project(a), project(b));
    let (dx, dy) = (bx - ax, by - ay);
    let length2 = dx * dx + dy * dy;
    let t = if length2 > 0.0 {
        (-(ax * dx + ay * dy) / length2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (ax + t * dx, ay + t * dy);
    (cx * cx + cy * cy).sqrt()
}

/// Even-odd point in polygon.
fn inside(p: LonLat, ring: &[LonLat]) -> bool {
    let mut inside = false;
    let mut j = ring.len().saturating_sub(1);
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[j]);
        if (a.lat > p.lat) != (b.lat > p.lat)
            && p.lon < (b.lon - a.lon) * (p.lat - a.lat) / (b.lat - a.lat) + a.lon
        {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Which entry decided a routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The override of this name.
    Override(String),
    /// The rule at this index (0-based, file order).
    Rule(usize),
    /// The catalogue's default team for the category.
    CatalogDefault,
}

/// Where a case goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// The team that must handle it.
    pub team: TeamId,
    /// Automatic or queued.
    pub dispatch: DispatchMode,
    /// Why.
    pub decided_by: Decision,
}

/// Why a routing could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The category is not in the catalogue.
    #[error("category {0} is not in the catalogue")]
    UnknownCategory(CategoryCode),
}

/// Why an ownership file was refused; every message names the entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OwnershipError {
    /// Not TOML of the expected shape.
    #[error("ownership rules: {0}")]
    Toml(String),
    /// A problem in one entry.
    #[error("{entry}: {problem}")]
    Entry {
        /// `rule 3` or `override "金水路"`.
        entry: String,
        /// What is wrong.
        problem: String,
    },
}

/// The ownership rules and overrides, checked against a catalogue.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ownership {
    rules: Vec<Rule>,
    overrides: Vec<Override>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, rename = "rule")]
    rules: Vec<RuleEntry>,
    #[serde(default, rename = "override")]
    overrides: Vec<OverrideEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    categories: Vec<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    dispatch: DispatchMode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideEntry {
    name: String,
    categories: Vec<String>,
    team: String,
    #[serde(default)]
    dispatch: DispatchMode,
    #[serde(default)]
    line: Option<Vec<[f64; 2]>>,
    #[serde(default)]
    buffer_m: Option<f64>,
    #[serde(default)]
    polygon: Option<Vec<[f64; 2]>>,
}

/// The built-in rules: urgent categories are dispatched automatically.
pub const DEFAULT_TOML: &str = include_str!("ownership/default.toml");

/// The widest buffer an override line may have, metres.
pub const MAX_BUFFER_M: f64 = 500.0;

impl Ownership {
    /// The built-in rules ([`DEFAULT_TOML`]) for `catalog`.
    pub fn builtin(catalog: &Catalog) -> Result<Ownership, OwnershipError> {
        Ownership::from_toml_str(DEFAULT_TOML, catalog)
    }

    /// Parses and checks an ownership file against `catalog` (teams must exist).
    pub fn from_toml_str(input: &str, catalog: &Catalog) -> Result<Ownership, OwnershipError> {
        let file: File = toml::from_str(input).map_err(|e| OwnershipError::Toml(e.to_string()))?;
        let mut ownership = Ownership::default();
        for (index, entry) in file.rules.into_iter().enumerate() {
            let name = format!("rule {}", index + 1);
            let problem = |problem: String| OwnershipError::Entry {
                entry: name.clone(),
                problem,
            };
            let area = match entry.area {
                Some(area) => {
                    let scope: GridScope = area.parse().map_err(|e| problem(format!("{e}")))?;
                    match scope.prefixes() {
                        [one] if !one.is_empty() => Some(one.clone()),
                        _ => {
                            return Err(problem(format!(
                                "area {area:?} must be one grid code prefix"
                            )));
                        }
                    }
                }
                None => None,
            };
            ownership.rules.push(Rule {
                categories: patterns(&entry.categories).map_err(&problem)?,
                area,
                team: entry
                    .team
                    .map(|t| team(&t, catalog))
                    .transpose()
                    .map_err(&problem)?,
                dispatch: entry.dispatch,
            });
        }
        for entry in file.overrides {
            let name = format!("override {:?}", entry.name);
            let problem = |problem: String| OwnershipError::Entry {
                entry: name.clone(),
                problem,
            };
            if entry.name.trim().is_empty() {
                return Err(problem("name must not be empty".into()));
            }
            let shape = match (entry.line, entry.buffer_m, entry.polygon) {
                (Some(line), Some(buffer_m), None) => {
                    if line.len() < 2 {
                        return Err(problem("a line needs at least two points".into()));
                    }
                    if !(buffer_m > 0.0 && buffer_m <= MAX_BUFFER_M) {
                        return Err(problem(format!(
                            "buffer_m must be more than 0 and at most {MAX_BUFFER_M}"
                        )));
                    }
                    OverrideShape::Line {
                        points: positions(&line).map_err(&problem)?,
                        buffer_m,
                    }
                }
                (None, None, Some(polygon)) => {
                    let mut ring = positions(&polygon).map_err(&problem)?;
                    if ring.len() > 1 && ring.first() == ring.last() {
                        ring.pop();
                    }
                    if ring.len() < 3 {
                        return Err(problem("a polygon needs at least three corners".into()));
                    }
                    OverrideShape::Polygon { ring }
                }
                _ => {
                    return Err(problem(
                        "give either `line` with `buffer_m`, or `polygon`".into(),
                    ));
                }
            };
            ownership.overrides.push(Override {
                categories: patterns(&entry.categories).map_err(&problem)?,
                team: team(&entry.team, catalog).map_err(&problem)?,
                dispatch: entry.dispatch,
                shape,
                name: entry.name,
            });
        }
        Ok(ownership)
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The overrides, in file order.
    pub fn overrides(&self) -> &[Override] {
        &self.overrides
    }

    /// Where a case of `category` in `grid`, at `position` (GCJ-02), goes.
    pub fn route(
        &self,
        catalog: &Catalog,
        category: CategoryCode,
        grid: Option<GridCode>,
        position: Option<LonLat>,
    ) -> Result<Routing, RouteError> {
        let default = catalog
            .get(&category)
            .ok_or(RouteError::UnknownCategory(category))?;
        let matches = |patterns: &[CategoryPattern]| patterns.iter().any(|p| p.matches(category));
        if let Some(position) = position
            && let Some(over) = self
                .overrides
                .iter()
                .find(|o| matches(&o.categories) && o.contains(position))
        {
            return Ok(Routing {
                team: over.team.clone(),
                dispatch: over.dispatch,
                decided_by: Decision::Override(over.name.clone()),
            });
        }
        let code = grid.map(|g| g.to_string());
        let best = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| match (&rule.area, &code) {
                (None, _) => true,
                (Some(area), Some(code)) => code.starts_with(area.as_str()),
                (Some(_), None) => false,
            })
            .filter_map(|(index, rule)| {
                let specificity = rule
                    .categories
                    .iter()
                    .filter(|p| p.matches(category))
                    .map(CategoryPattern::specificity)
                    .max()?;
                let area = rule.area.as_ref().map_or(0, String::len);
                // Highest specificity, then narrowest area, then earliest in the file.
                Some(((specificity, area, std::cmp::Reverse(index)), index, rule))
            })
            .max_by_key(|(key, _, _)| *key);
        Ok(match best {
            Some((_, index, rule)) => Routing {
                team: rule.team.clone().unwrap_or_else(|| default.team.clone()),
                dispatch: rule.dispatch,
                decided_by: Decision::Rule(index),
            },
            None => Routing {
                team: default.team.clone(),
                dispatch: DispatchMode::Queue,
                decided_by: Decision::CatalogDefault,
            },
        })
    }
}

fn patterns(texts: &[String]) -> Result<Vec<CategoryPattern>, String> {
    if texts.is_empty() {
        return Err("categories must not be empty".into());
    }
    texts
        .iter()
        .map(|t| {
            CategoryPattern::parse(t.trim()).ok_or_else(|| {
                format!("{t:?} is not a category (E0102), a major class (E01), a kind (C/E) or *")
            })
        })
        .collect()
}

fn team(id: &str, catalog: &Catalog) -> Result<TeamId, String> {
    let team = TeamId::new(id).map_err(|e| e.to_string())?;
    catalog
        .team(team.as_str())
        .map(|_| team)
        .ok_or_else(|| format!("team {id:?} is not in the catalogue"))
}

fn positions(points: &[[f64; 2]]) -> Result<Vec<LonLat>, String> {
    points
        .iter()
        .map(|[lon, lat]| LonLat::new(*lon, *lat).map_err(|e| e.to_string()))
        .collect()
}

/// A person's posting (岗位分配): the grids they answer for, in a role and team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// User id.
    pub user: String,
    /// Role.
    pub role: Role,
    /// Team, for field workers and department handlers.
    pub team: Option<TeamId>,
    /// The grids.
    pub scope: GridScope,
}

/// The people a routed case concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Responsible {
    /// Members of the team posted to the case's grid, most closely posted first (a
    /// worker posted to the level-3 grid before one posted to the whole street).
    pub handlers: Vec<String>,
    /// Grid leaders (网格长) of the grid.
    pub grid_leaders: Vec<String>,
    /// The 分包 supervisors (下沉 officials) whose units contain the grid.
    pub supervisors: Vec<String>,
}

impl fmt::Display for Responsible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "handlers {:?}, grid leaders {:?}, supervisors {:?}",
            self.handlers, self.grid_leaders, self.supervisors
        )
    }
}

/// Who is responsible for a case routed to `team` in `grid`, from the postings.
pub fn responsible(postings: &[Posting], team: &TeamId, grid: GridCode) -> Responsible {
    let grid = Some(&grid);
    // The narrowest posting first: its authority level over the grid, lowest first.
    let mut handlers: Vec<(crate::role::Level, &str)> = postings
        .iter()
        .filter(|p| p.team.as_ref() == Some(team))
        .filter_map(|p| Some((p.scope.authority_over(grid)?, p.user.as_str())))
        .collect();
    handlers.sort();
    let of_role = |roles: &[Role]| -> Vec<String> {
        let mut users: Vec<String> = postings
            .iter()
            .filter(|p| roles.contains(&p.role) && p.scope.covers(grid))
            .map(|p| p.user.clone())
            .collect();
        users.sort();
        users.dedup();
        users
    };
    let mut seen = std::collections::HashSet::new();
    Responsible {
        handlers: handlers
            .into_iter()
            .filter(|(_, user)| seen.insert(*user))
            .map(|(_, user)| user.to_owned())
            .collect(),
        grid_leaders: of_role(&[Role::GridLeader]),
        supervisors: of_role(&[Role::DistrictSupervisor, Role::CitySupervisor]),
    }
}

/// Who else hears of a problem a field worker reported beyond their own authority
/// (超出职责范围): the plan's double report (双报告) to the community's grid leader
/// (网格长) and to the 下沉 official of the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleReport {
    /// The grid leaders posted to the grid's community or below.
    pub grid_leaders: Vec<String>,
    /// The 分包 supervisors posted most narrowly over the grid: a street's official
    /// rather than the district's, the city's only when nobody narrower is posted.
    pub officials: Vec<String>,
}

impl DoubleReport {
    /// Everyone to tell, once each, in order.
    pub fn recipients(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .grid_leaders
            .iter()
            .chain(&self.officials)
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The double report of a case `reporter` reported in `grid` and that routing gave to
/// `routed_team`; `None` when it is within the reporter's authority (their own team's
/// work) or the reporter is not a field worker (the hotline, a citizen, a supervisor).
/// The reporter is never told of their own report.
pub fn double_report(
    reporter: &Posting,
    routed_team: &TeamId,
    postings: &[Posting],
    grid: GridCode,
) -> Option<DoubleReport> {
    if !reporter.role.is_field_worker() || reporter.team.as_ref() == Some(routed_team) {
        return None;
    }
    let grid = Some(&grid);
    let others = || postings.iter().filter(|p| p.user != reporter.user);
    let mut grid_leaders: Vec<String> = others()
        .filter(|p| p.role == Role::GridLeader && p.scope.covers(grid))
        .map(|p| p.user.clone())
        .collect();
    grid_leaders.sort();
    grid_leaders.dedup();
    let supervisors: Vec<(crate::role::Level, &str)> = others()
        .filter(|p| matches!(p.role, Role::DistrictSupervisor | Role::CitySupervisor))
        .filter_map(|p| Some((p.scope.authority_over(grid)?, p.user.as_str())))
        .collect();
    let narrowest = supervisors.iter().map(|(level, _)| *level).min();
    let mut officials: Vec<String> = supervisors
        .iter()
        .filter(|(level, _)| Some(*level) == narrowest)
        .map(|(_, user)| (*user).to_owned())
        .collect();
    officials.sort();
    officials.dedup();
    Some(DoubleReport {
        grid_leaders,
        officials,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
