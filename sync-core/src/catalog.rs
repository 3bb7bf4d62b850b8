//! The category catalogue (分类目录): which problems a case can be about, who
//! handles each by default, and how long each workflow step may take.
//!
//! The catalogue is data, not code. [`Catalog::builtin`] is the default, parsed from
//! `catalog/default.toml` ([`DEFAULT_TOML`], CJ/T 214 practice and the 2012 Zhengzhou
//! plan); an operator who wants another one writes a TOML file in the same format
//! (starting from [`DEFAULT_TOML`] or [`Catalog::to_toml_string`]) and the caller
//! parses it with [`Catalog::from_toml_str`]. Both go through the same parser and the
//! same validation. This module does no I/O: the caller reads the file.
//!
//! # Format
//!
//! ```toml
//! # Limits for the steps a category does not set itself.
//! [defaults]
//! accept = "1 working_hour"     # 受理/核实
//! register = "1 working_hour"   # 立案
//! dispatch = "1 working_hour"   # 派遣
//! verify = "4 working_hours"    # 核查
//! close = "1 working_day"       # 结案
//!
//! [[team]]                      # who handles cases; ids are [a-z][a-z0-9_]*
//! id = "sanitation"
//! name_zh = "环卫"
//! name_en = "Sanitation"
//! external = false              # optional; true for departments outside the bureau
//!
//! [[major_class]]               # 大类: kind letter + 2 digits
//! code = "E01"
//! name_zh = "市容环境"
//! name_en = "City appearance and environment"
//!
//! [[category]]                  # 小类: kind letter + 2-digit major + 2-digit minor
//! code = "E0102"
//! name_zh = "暴露垃圾"
//! name_en = "Exposed garbage"
//! team = "sanitation"           # default team; must be declared
//! plan_problem = "exposed_garbage"   # optional, see PlanProblem
//! aliases = ["垃圾堆"]          # optional search words
//! limits = { handle = "4 working_hours" }  # only the steps that differ
//! duplicate_radius_m = 100      # optional: reports this close are suggested as one
//! ```
//!
//! A time limit is the string `"<amount> <unit>"` with unit `working_hours`,
//! `working_days` or `hours` (calendar hours, for emergencies; the singular
//! `working_hour`, `working_day`, `hour` is accepted too). A category's limit for a
//! step is its own, else the one in `[defaults]`; every step must end up with one
//! (the reply to a caller, 回访, falls back to [`REPLY_FALLBACK`]).
//! Unknown keys are errors; so are duplicate codes or team ids, a category whose
//! major class is not declared or whose team is unknown, empty names, and limits of
//! zero or longer than 365 days (see [`CatalogError`]).

mod code;
mod limit;

/// The largest `duplicate_radius_m` a category may set.
pub const MAX_DUPLICATE_RADIUS_M: u32 = 5_000;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

pub use code::{CategoryCode, CodeError, Kind, MajorCode};
pub use limit::{
    Limits, MAX_DAYS, REPLY_FALLBACK, Step, StepLimits, TimeLimit, TimeLimitError, TimeUnit,
};

/// The text of the built-in catalogue, with its comments: a starting point for an
/// operator's own file.
pub const DEFAULT_TOML: &str = include_str!("catalog/default.toml");

/// Why a team id is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid team id {input:?}: use 1-64 characters a-z, 0-9 and _, starting with a letter")]
pub struct TeamIdError {
    /// The text that was given.
    pub input: String,
}

/// The identifier of a team, e.g. `enforcement`: 1-64 characters `a-z`, `0-9`,
/// `_`, starting with a letter. Cases and ownership rules refer to teams by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamId(String);

impl TeamId {
    /// Checks `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<TeamId, TeamIdError> {
        let id = id.into();
        let mut bytes = id.bytes();
        let valid = id.len() <= 64
            && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(TeamId(id))
        } else {
            Err(TeamIdError { input: id })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TeamId {
    type Error = TeamIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        TeamId::new(value)
    }
}

impl From<TeamId> for String {
    fn from(id: TeamId) -> String {
        id.0
    }
}

/// A team or department that handles cases (处置单位): one of the bureau's own
/// teams (执法 enforcement, 市政维护 municipal maintenance, 环卫 sanitation, …) or
/// an outside department the command centre dispatches to (供电 power, 燃气 gas, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    /// Identifier, e.g. `enforcement`.
    pub id: TeamId,
    /// Chinese name, e.g. 执法.
    pub name_zh: String,
    /// English name, e.g. Enforcement.
    pub name_en: String,
    /// Whether this is a department outside the city management bureau (a
    /// utility, the traffic police, …) rather than one of its own teams.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
}

/// A major class (大类) of one kind, e.g. component 01 公用设施.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MajorClass {
    /// Kind and 2-digit code, written `C01`.
    pub code: MajorCode,
    /// Chinese name, e.g. 公用设施.
    pub name_zh: String,
    /// English name, e.g. Public facilities.
    pub name_en: String,
}

impl MajorClass {
    /// Component or event.
    pub const fn kind(&self) -> Kind {
        self.code.kind()
    }
}

/// The problems the 2012 Zhengzhou plan sets out to fix (plan §四(二)2, 业务职责
/// (1)–(8)), so that assessment can count cases by them. Manhole covers are part of
/// item (2) 道路管养 in the plan but have their own numbering target, so they get
/// their own group; [`PlanProblem::plan_item`] folds them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanProblem {
    /// 占道经营: street vending and business occupying the road.
    StreetVending,
    /// 道路管养: road upkeep (damaged roads, bare soil, signs, bollards).
    RoadUpkeep,
    /// 井盖: missing or damaged manhole covers.
    ManholeCovers,
    /// 户外广告: outdoor advertising.
    OutdoorAdvertising,
    /// 门头牌匾: shopfront signs.
    ShopSigns,
    /// 暴露垃圾: exposed garbage and road cleaning.
    ExposedGarbage,
    /// 房屋立面: building facades.
    BuildingFacades,
    /// 空中管线和占道箱体: overhead lines and street cabinets.
    OverheadLinesAndCabinets,
    /// 城市亮化: street lighting (target: ≥ 98 % of street lights working).
    Lighting,
}

impl PlanProblem {
    /// All problems, in the plan's order.
    pub const ALL: [PlanProblem; 9] = [
        PlanProblem::StreetVending,
        PlanProblem::RoadUpkeep,
        PlanProblem::ManholeCovers,
        PlanProblem::OutdoorAdvertising,
        PlanProblem::ShopSigns,
        PlanProblem::ExposedGarbage,
        PlanProblem::BuildingFacades,
        PlanProblem::OverheadLinesAndCabinets,
        PlanProblem::Lighting,
    ];

    /// The identifier used in TOML and JSON, e.g. `street_vending`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PlanProblem::StreetVending => "street_vending",
            PlanProblem::RoadUpkeep => "road_upkeep",
            PlanProblem::ManholeCovers => "manhole_covers",
            PlanProblem::OutdoorAdvertising => "outdoor_advertising",
            PlanProblem::ShopSigns => "shop_signs",
            PlanProblem::ExposedGarbage => "exposed_garbage",
            PlanProblem::BuildingFacades => "building_facades",
            PlanProblem::OverheadLinesAndCabinets => "overhead_lines_and_cabinets",
            PlanProblem::Lighting => "lighting",
        }
    }

    /// The plan's item number (1–8); manhole covers are in item 2.
    pub const fn plan_item(self) -> u8 {
        match self {
            PlanProblem::StreetVending => 1,
            PlanProblem::RoadUpkeep | PlanProblem::ManholeCovers => 2,
            PlanProblem::OutdoorAdvertising => 3,
            PlanProblem::ShopSigns => 4,
            PlanProblem::ExposedGarbage => 5,
            PlanProblem::BuildingFacades => 6,
            PlanProblem::OverheadLinesAndCabinets => 7,
            PlanProblem::Lighting => 8,
        }
    }

    /// Chinese label, as the plan words it.
    pub const fn name_zh(self) -> &'static str {
        match self {
            PlanProblem::StreetVending => "占道经营",
            PlanProblem::RoadUpkeep => "道路管养",
            PlanProblem::ManholeCovers => "井盖",
            PlanProblem::OutdoorAdvertising => "户外广告",
            PlanProblem::ShopSigns => "门头牌匾",
            PlanProblem::ExposedGarbage => "暴露垃圾",
            PlanProblem::BuildingFacades => "房屋立面",
            PlanProblem::OverheadLinesAndCabinets => "空中管线和占道箱体",
            PlanProblem::Lighting => "城市亮化",
        }
    }

    /// English label.
    pub const fn name_en(self) -> &'static str {
        match self {
            PlanProblem::StreetVending => "Street vending",
            PlanProblem::RoadUpkeep => "Road upkeep",
            PlanProblem::ManholeCovers => "Manhole covers",
            PlanProblem::OutdoorAdvertising => "Outdoor advertising",
            PlanProblem::ShopSigns => "Shopfront signs",
            PlanProblem::ExposedGarbage => "Exposed garbage",
            PlanProblem::BuildingFacades => "Building facades",
            PlanProblem::OverheadLinesAndCabinets => "Overhead lines and street cabinets",
            PlanProblem::Lighting => "Street lighting",
        }
    }
}

impl fmt::Display for PlanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A category (小类), e.g. component 0101 上水井盖 or event 0102 暴露垃圾.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// Kind, major and minor class, written `C0101`.
    pub code: CategoryCode,
    /// Chinese name, e.g. 上水井盖.
    pub name_zh: String,
    /// English name, e.g. Water supply manhole cover.
    pub name_en: String,
    /// The team a case of this category is dispatched to unless an ownership rule
    /// says otherwise; always a team of the same catalogue.
    pub team: TeamId,
    /// The time limit of every step, with the catalogue's defaults filled in.
    pub limits: Limits,
    /// Which problem of the plan's list this category counts towards, if any.
    pub plan_problem: Option<PlanProblem>,
    /// Other words people use for it (for search), e.g. 无主井盖.
    pub aliases: Vec<String>,
    /// How far apart two open reports of this category may be and still be
    /// suggested as the same problem (metres, 1 to 5,000); `None`: by source
    /// (`crate::case::duplicates`).
    pub duplicate_radius_m: Option<u32>,
}

impl Category {
    /// Component or event.
    pub const fn kind(&self) -> Kind {
        self.code.kind()
    }

    /// The time limit of `step`.
    pub const fn limit(&self, step: Step) -> TimeLimit {
        self.limits.get(step)
    }
}

/// An entry of a catalogue file, as named in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The `[defaults]` table.
    Defaults,
    /// A `[[team]]`.
    Team(TeamId),
    /// A `[[major_class]]`.
    MajorClass(MajorCode),
    /// A `[[category]]`.
    Category(CategoryCode),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Defaults => f.write_str("[defaults]"),
            Entry::Team(id) => write!(f, "team \"{id}\""),
            Entry::MajorClass(code) => write!(f, "major class \"{code}\""),
            Entry::Category(code) => write!(f, "category \"{code}\""),
        }
    }
}

/// Why a catalogue was refused. Validation stops at the first problem, in file
/// order; every message names the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The text is not valid TOML or does not have the catalogue's shape: a syntax
    /// error, an unknown or missing key, a value of the wrong type, a malformed code,
    /// team id or time limit.
    #[error("invalid catalogue TOML{}: {message}", location(*.line, *.column))]
    Toml {
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// 1-based column (in characters) of the problem, when known.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A name (or an alias) is empty or only white space.
    #[error("{entry}: {field} must not be empty")]
    EmptyText {
        /// The entry.
        entry: Entry,
        /// The key, e.g. `name_en`.
        field: &'static str,
    },
    /// Two teams have the same id.
    #[error("team \"{id}\" is declared twice")]
    DuplicateTeam {
        /// The id.
        id: TeamId,
    },
    /// Two major classes have the same code.
    #[error("major class \"{code}\" is declared twice")]
    DuplicateMajorClass {
        /// The code.
        code: MajorCode,
    },
    /// Two categories have the same code.
    #[error("category \"{code}\" is declared twice")]
    DuplicateCategory {
        /// The code.
        code: CategoryCode,
    },
    /// A category's major class is not declared.
    #[error("category \"{code}\": major class \"{}\" is not declared", .code.major_code())]
    UnknownMajorClass {
        /// The category.
        code: CategoryCode,
    },
    /// A category's team is not declared.
    #[error("category \"{code}\": unknown team \"{team}\"")]
    UnknownTeam {
        /// The category.
        code: CategoryCode,
        /// The team it names.
        team: TeamId,
    },
    /// A time limit is zero.
    #[error("{entry}: the time limit for {step} is zero")]
    ZeroLimit {
        /// The entry.
        entry: Entry,
        /// The step.
        step: Step,
    },
    /// A time limit is longer than [`MAX_DAYS`].
    #[error("{entry}: the time limit for {step}, \"{limit}\", is longer than 365 days")]
    LimitTooLong {
        /// The entry.
        entry: Entry,
        /// The step.
        step: Step,
        /// The limit.
        limit: TimeLimit,
    },
    /// A duplicate radius out of range.
    #[error(
        "category \"{code}\": duplicate_radius_m = {radius} must be 1 to {MAX_DUPLICATE_RADIUS_M} metres"
    )]
    DuplicateRadius {
        /// The category.
        code: CategoryCode,
        /// The radius given.
        radius: u32,
    },
    /// A category has no limit for a step and `[defaults]` has none either.
    #[error("category \"{code}\": no time limit for {step}, and [defaults] has none")]
    MissingLimit {
        /// The category.
        code: CategoryCode,
        /// The step.
        step: Step,
    },
    /// The catalogue could not be written as TOML.
    #[error("could not write the catalogue as TOML: {message}")]
    Export {
        /// What went wrong.
        message: String,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

/// A validated category catalogue: teams, major classes and categories.
///
/// Every category's major class and team are in the catalogue, codes and team ids
/// are unique, names are not empty and every step of every category has a limit
/// between 1 unit and 365 days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    defaults: StepLimits,
    teams: Vec<Team>,
    major_classes: Vec<MajorClass>,
    categories: BTreeMap<CategoryCode, Category>,
}

static BUILTIN: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::from_toml_str(DEFAULT_TOML)
        .unwrap_or_else(|error| panic!("the built-in catalogue is invalid: {error}"))
});

impl Catalog {
    /// The built-in default catalogue, parsed once from [`DEFAULT_TOML`]. A unit
    /// test proves it parses, so this never panics.
    pub fn builtin() -> &'static Catalog {
        &BUILTIN
    }

    /// Parses and validates a catalogue in the format of the module documentation.
    pub fn from_toml_str(input: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = toml::from_str(input).map_err(|error| {
            let (line, column) = match error.span() {
                Some(span) => {
                    let (line, column) = line_column(input, span.start);
                    (Some(line), Some(column))
                }
                None => (None, None),
            };
            CatalogError::Toml {
                line,
                column,
                message: error.message().trim_end().to_owned(),
            }
        })?;
        Catalog::from_file(file)
    }

    /// Writes the catalogue as TOML that [`Catalog::from_toml_str`] reads back to
    /// an equal catalogue (without the comments of [`DEFAULT_TOML`]). Categories
    /// list only the limits that differ from `[defaults]`.
    pub fn to_toml_string(&self) -> Result<String, CatalogError> {
        toml::to_string(&self.to_file()).map_err(|error| CatalogError::Export {
            message: error.to_string(),
        })
    }

    /// The category with `code`.
    pub fn get(&self, code: &CategoryCode) -> Option<&Category> {
        self.categories.get(code)
    }

    /// All categories, components first, in code order.
    pub fn categories(&self) -> impl Iterator<Item = &Category> + '_ {
        self.categories.values()
    }

    /// The categories of one kind, in code order.
    pub fn categories_of(&self, kind: Kind) -> impl Iterator<Item = &Category> + '_ {
        self.categories
            .values()
            .filter(move |category| category.kind() == kind)
    }

    /// The categories of one major class, in code order.
    pub fn categories_in(&self, major: MajorCode) -> impl Iterator<Item = &Category> + '_ {
        self.categories
            .values()
            .filter(move |category| category.code.major_code() == major)
    }

    /// The categories that count towards one problem of the plan, in code order.
    pub fn categories_for(&self, problem: PlanProblem) -> impl Iterator<Item = &Category> + '_ {
        self.categories
            .values()
            .filter(move |category| category.plan_problem == Some(problem))
    }

    /// All teams, in file order.
    pub fn teams(&self) -> &[Team] {
        &self.teams
    }

    /// The team with `id`.
    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|team| team.id.as_str() == id)
    }

    /// All major classes, in file order.
    pub fn major_classes(&self) -> &[MajorClass] {
        &self.major_classes
    }

    /// The major classes of one kind, in file order.
    pub fn major_classes_of(&self, kind: Kind) -> impl Iterator<Item = &MajorClass> + '_ {
        self.major_classes
            .iter()
            .filter(move |class| class.kind() == kind)
    }

    /// Major class `major` (1-99) of `kind`.
    pub fn major_class(&self, kind: Kind, major: u8) -> Option<&MajorClass> {
        self.major_classes
            .iter()
            .find(|class| class.code.kind() == kind && class.code.major() == major)
    }

    /// The `[defaults]` table: limits for the steps a category does not set.
    pub fn defaults(&self) -> &StepLimits {
        &self.defaults
    }

    fn from_file(file: CatalogFile) -> Result<Catalog, CatalogError> {
        check_limits(&Entry::Defaults, &file.defaults)?;

        let mut team_ids = HashSet::new();
        for team in &file.teams {
            let entry = Entry::Team(team.id.clone());
            check_text(&entry, "name_zh", &team.name_zh)?;
            check_text(&entry, "name_en", &team.name_en)?;
            if !team_ids.insert(team.id.as_str()) {
                return Err(CatalogError::DuplicateTeam {
                    id: team.id.clone(),
                });
            }
        }

        let mut major_codes = HashSet::new();
        for class in &file.major_classes {
            let entry = Entry::MajorClass(class.code);
            check_text(&entry, "name_zh", &class.name_zh)?;
            check_text(&entry, "name_en", &class.name_en)?;
            if !major_codes.insert(class.code) {
                return Err(CatalogError::DuplicateMajorClass { code: class.code });
            }
        }

        let mut categories = BTreeMap::new();
        for entry in file.categories {
            let category = resolve_category(entry, &file.defaults, &team_ids, &major_codes)?;
            let code = category.code;
            if categories.insert(code, category).is_some() {
                return Err(CatalogError::DuplicateCategory { code });
            }
        }

        Ok(Catalog {
            defaults: file.defaults,
            teams: file.teams,
            major_classes: file.major_classes,
            categories,
        })
    }

    fn to_file(&self) -> CatalogFile {
        let categories = self
            .categories
            .values()
            .map(|category| {
                let mut limits = StepLimits::default();
                for (step, limit) in category.limits.iter() {
                    let default = self.defaults.get(step).or(match step {
                        Step::Reply => Some(REPLY_FALLBACK),
                        _ => None,
                    });
                    if default != Some(limit) {
                        limits.set(step, Some(limit));
                    }
                }
                CategoryEntry {
                    code: category.code,
                    name_zh: category.name_zh.clone(),
                    name_en: category.name_en.clone(),
                    team: category.team.clone(),
                    plan_problem: category.plan_problem,
                    aliases: category.aliases.clone(),
                    limits,
                    duplicate_radius_m: category.duplicate_radius_m,
                }
            })
            .collect();
        CatalogFile {
            defaults: self.defaults,
            teams: self.teams.clone(),
            major_classes: self.major_classes.clone(),
            categories,
        }
    }
}

/// The catalogue is serialized in its file form (so JSON and TOML look alike) and
/// deserializing validates it exactly as [`Catalog::from_toml_str`] does.
impl Serialize for Catalog {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_file().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Catalog {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = CatalogFile::deserialize(deserializer)?;
        Catalog::from_file(file).map_err(serde::de::Error::custom)
    }
}

/// A catalogue file as written, before validation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default, skip_serializing_if = "StepLimits::is_empty")]
    defaults: StepLimits,
    #[serde(rename = "team", default)]
    teams: Vec<Team>,
    #[serde(rename = "major_class", default)]
    major_classes: Vec<MajorClass>,
    #[serde(rename = "category", default)]
    categories: Vec<CategoryEntry>,
}

/// A `[[category]]` as written: only the limits that differ from `[defaults]`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryEntry {
    code: CategoryCode,
    name_zh: String,
    name_en: String,
    team: TeamId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan_problem: Option<PlanProblem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "StepLimits::is_empty")]
    limits: StepLimits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duplicate_radius_m: Option<u32>,
}

fn resolve_category(
    entry: CategoryEntry,
    defaults: &StepLimits,
    team_ids: &HashSet<&str>,
    major_codes: &HashSet<MajorCode>,
) -> Result<Category, CatalogError> {
    let code = entry.code;
    let at = Entry::Category(code);
    check_text(&at, "name_zh", &entry.name_zh)?;
    check_text(&at, "name_en", &entry.name_en)?;
    for alias in &entry.aliases {
        check_text(&at, "alias", alias)?;
    }
    if !major_codes.contains(&code.major_code()) {
        return Err(CatalogError::UnknownMajorClass { code });
    }
    if !team_ids.contains(entry.team.as_str()) {
        return Err(CatalogError::UnknownTeam {
            code,
            team: entry.team,
        });
    }
    check_limits(&at, &entry.limits)?;
    if let Some(radius) = entry.duplicate_radius_m
        && !(1..=MAX_DUPLICATE_RADIUS_M).contains(&radius)
    {
        return Err(CatalogError::DuplicateRadius { code, radius });
    }
    let limit = |step: Step| {
        entry
            .limits
            .get(step)
            .or(defaults.get(step))
            .ok_or(CatalogError::MissingLimit { code, step })
    };
    let limits = Limits {
        accept: limit(Step::Accept)?,
        register: limit(Step::Register)?,
        dispatch: limit(Step::Dispatch)?,
        handle: limit(Step::Handle)?,
        verify: limit(Step::Verify)?,
        close: limit(Step::Close)?,
        reply: entry
            .limits
            .reply
            .or(defaults.reply)
            .unwrap_or(REPLY_FALLBACK),
    };
    Ok(Category {
        code,
        name_zh: entry.name_zh,
        name_en: entry.name_en,
        team: entry.team,
        limits,
        plan_problem: entry.plan_problem,
        aliases: entry.aliases,
        duplicate_radius_m: entry.duplicate_radius_m,
    })
}

fn check_text(entry: &Entry, field: &'static str, text: &str) -> Result<(), CatalogError> {
    if text.trim().is_empty() {
        return Err(CatalogError::EmptyText {
            entry: entry.clone(),
            field,
        });
    }
    Ok(())
}

fn check_limits(entry: &Entry, limits: &StepLimits) -> Result<(), CatalogError> {
    for (step, limit) in limits.iter() {
        if limit.amount == 0 {
            return Err(CatalogError::ZeroLimit {
                entry: entry.clone(),
                step,
            });
        }
        if limit.is_too_long() {
            return Err(CatalogError::LimitTooLong {
                entry: entry.clone(),
                step,
                limit,
            });
        }
    }
    Ok(())
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}
