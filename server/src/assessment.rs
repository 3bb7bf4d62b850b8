//! Assessment reports (考核, docs/assessment.md): a period's figures and ranking for
//! one level of units, computed from the sums of the cases' stored facts and the
//! patrol rollup with sync-core's `assessment` definitions; published reports kept as
//! they stood; the CSV and XLSX downloads.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use wangge_sync_core::assessment::{
    AssessmentRules, Counts, Coverage, Period, UnitCounts, UnitKind, rank,
};
use wangge_sync_core::role::Level;

use crate::cases::CaseRules;
use crate::store::assessment::GroupBy;
use crate::store::patrol::CoverageBy;
use crate::store::{Store, StoreError};

/// Which units a report ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportLevel {
    /// Districts (in the city).
    District,
    /// Streets (in the city or a district).
    Street,
    /// Communities (in a district or street).
    Community,
    /// Teams and departments.
    Team,
    /// People who handled cases.
    Handler,
    /// Information supervisors (信息监督员): who reported, accepted and checked.
    Reporter,
    /// People who dispatched cases.
    Dispatcher,
}

impl ReportLevel {
    /// Every level.
    pub const ALL: [ReportLevel; 7] = [
        ReportLevel::District,
        ReportLevel::Street,
        ReportLevel::Community,
        ReportLevel::Team,
        ReportLevel::Handler,
        ReportLevel::Reporter,
        ReportLevel::Dispatcher,
    ];

    /// The identifier in queries and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReportLevel::District => "district",
            ReportLevel::Street => "street",
            ReportLevel::Community => "community",
            ReportLevel::Team => "team",
            ReportLevel::Handler => "handler",
            ReportLevel::Reporter => "reporter",
            ReportLevel::Dispatcher => "dispatcher",
        }
    }

    /// Parses [`ReportLevel::as_str`].
    pub fn parse(text: &str) -> Option<ReportLevel> {
        ReportLevel::ALL.into_iter().find(|l| l.as_str() == text)
    }

    const fn kind(self) -> UnitKind {
        match self {
            ReportLevel::District | ReportLevel::Street | ReportLevel::Community => {
                UnitKind::Region
            }
            ReportLevel::Team => UnitKind::Team,
            ReportLevel::Handler => UnitKind::Handler,
            ReportLevel::Reporter => UnitKind::Reporter,
            ReportLevel::Dispatcher => UnitKind::Dispatcher,
        }
    }

    const fn group(self) -> GroupBy {
        match self {
            ReportLevel::District => GroupBy::District,
            ReportLevel::Street => GroupBy::Street,
            ReportLevel::Community => GroupBy::Community,
            ReportLevel::Team => GroupBy::Team,
            ReportLevel::Handler => GroupBy::Handler,
            ReportLevel::Reporter => GroupBy::Reporter,
            ReportLevel::Dispatcher => GroupBy::Dispatcher,
        }
    }

    /// A region's level of authority.
    const fn region_level(self) -> Option<Level> {
        match self {
            ReportLevel::District => Some(Level::District),
            ReportLevel::Street => Some(Level::Street),
            ReportLevel::Community => Some(Level::Community),
            _ => None,
        }
    }
}

/// One rate as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateCell {
    /// Numerator.
    pub numerator: u64,
    /// Denominator.
    pub denominator: u64,
    /// numerator / denominator, `null` for 0/0.
    pub rate: Option<f64>,
}

/// One unit's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitLine {
    /// Its key: a grid code prefix, a team id or a user id.
    pub unit: String,
    /// Its name, when known.
    pub name: Option<String>,
    /// Place, `null` when not ranked.
    pub rank: Option<u32>,
    /// Score out of 100, one decimal.
    pub score: Option<f64>,
    /// Grade.
    pub grade: Option<String>,
    /// `penalty` or `reward`.
    pub flag: Option<&'static str>,
    /// Why it is not ranked.
    pub unranked: Option<&'static str>,
    /// Its cases in the period (problems; a reporter's reports).
    pub cases: u64,
    /// Every indicator of its kind.
    pub rates: BTreeMap<&'static str, RateCell>,
}

/// A report: one period, one level of units, within one area.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `2026-11` or `2026-Q4`.
    pub period: String,
    /// `district` … `reporter`.
    pub level: &'static str,
    /// The area (a district or street code; `""` for the city).
    pub within: String,
    /// The indicators scored, with their weights.
    pub indicators: Vec<Value>,
    /// Fewer cases than this: not ranked.
    pub minimum_cases: u64,
    /// How many units are ranked.
    pub ranked: usize,
    /// The units, ranked first.
    pub units: Vec<UnitLine>,
}

/// Computes a report.
pub async fn compute(
    store: &dyn Store,
    case_rules: &CaseRules,
    rules: &AssessmentRules,
    period: Period,
    level: ReportLevel,
    within: &str,
) -> Result<Report, StoreError> {
    let months = period.months();
    let rows = store
        .assessment_sums(&months, level.group(), within)
        .await?;
    // A supervisor's acceptances and checks are sums over the cases they accepted
    // and checked, each its own grouping.
    let mut supervised: BTreeMap<String, (Counts, Counts)> = BTreeMap::new();
    if level == ReportLevel::Reporter {
        for (by, accepted) in [(GroupBy::Accepter, true), (GroupBy::Checker, false)] {
            for row in store.assessment_sums(&months, by, within).await? {
                let entry = supervised.entry(row.unit).or_default();
                let sums = if accepted { &mut entry.0 } else { &mut entry.1 };
                sums.add(&row.counts);
            }
        }
    }
    let mut groups: BTreeMap<String, Vec<(Level, Counts)>> = BTreeMap::new();
    for unit in supervised.keys() {
        groups.entry(unit.clone()).or_default();
    }
    for row in rows {
        let case_level = match row.level.as_str() {
            "district" => Level::District,
            "city" => Level::City,
            _ => Level::Street,
        };
        groups
            .entry(row.unit)
            .or_default()
            .push((case_level, row.counts));
    }
    let coverage = match level {
        ReportLevel::District | ReportLevel::Street | ReportLevel::Community => {
            let by = match level {
                ReportLevel::District => CoverageBy::District,
                ReportLevel::Street => CoverageBy::Street,
                _ => CoverageBy::Community,
            };
            let (from, to) = period.days();
            let rows = store
                .patrol_coverage(within, (&from.to_string(), &to.to_string()), by)
                .await?;
            for row in &rows {
                groups.entry(row.key.clone()).or_default();
            }
            rows.into_iter()
                .map(|r| {
                    (
                        r.key,
                        Coverage {
                            assigned: u64::try_from(r.assigned).unwrap_or(0),
                            covered: u64::try_from(r.covered).unwrap_or(0),
                        },
                    )
                })
                .collect()
        }
        _ => BTreeMap::new(),
    };
    let kind = level.kind();
    let unit_level = level.region_level();
    let mut counted: BTreeMap<String, UnitCounts> = BTreeMap::new();
    let mut scored = Vec::new();
    for (unit, list) in groups {
        let mut sum = Counts::default();
        for (_, c) in &list {
            sum.add(c);
        }
        let mut counts = match unit_level {
            Some(l) => UnitCounts::of_region(l, &list),
            None if kind == UnitKind::Reporter => {
                let (accepted, checked) = supervised.get(&unit).copied().unwrap_or_default();
                UnitCounts::of_supervisor(&sum, &accepted, &checked)
            }
            None => UnitCounts::of(sum),
        };
        counts.coverage = coverage.get(&unit).copied();
        let score = rules.score(kind, &counts, unit_level);
        let cases = counts.cases(kind);
        scored.push((unit.clone(), score, cases));
        counted.insert(unit, counts);
    }
    let ranked = rank(scored, rules.minimum_cases, period, rules);
    let names = Names::new(store, case_rules, level).await?;
    let indicators = rules.indicators(kind);
    let units: Vec<UnitLine> = ranked
        .into_iter()
        .map(|r| {
            let counts = counted.get(&r.unit).cloned().unwrap_or_default();
            let rates = indicators
                .iter()
                .map(|(indicator, _)| {
                    let f = counts.fraction(*indicator, unit_level);
                    (
                        indicator.as_str(),
                        RateCell {
                            numerator: f.numerator,
                            denominator: f.denominator,
                            rate: f.rate(),
                        },
                    )
                })
                .collect();
            UnitLine {
                name: names.of(&r.unit),
                unit: r.unit,
                rank: r.rank,
                score: r.score.map(|s| (s * 10.0).round() / 10.0),
                grade: r.grade,
                flag: r.flag,
                unranked: r.unranked,
                cases: r.cases,
                rates,
            }
        })
        .collect();
    Ok(Report {
        period: period.to_string(),
        level: level.as_str(),
        within: within.to_owned(),
        indicators: indicators
            .iter()
            .map(|(i, w)| json!({"id": i.as_str(), "zh": i.name_zh(), "en": i.name_en(), "weight": w}))
            .collect(),
        minimum_cases: rules.minimum_cases,
        ranked: units.iter().filter(|u| u.rank.is_some()).count(),
        units,
    })
}

/// Names of units: regions from the grids' hierarchy, teams from the catalogue,
/// people from their accounts.
struct Names(BTreeMap<String, String>);

impl Names {
    async fn new(
        store: &dyn Store,
        rules: &CaseRules,
        level: ReportLevel,
    ) -> Result<Names, StoreError> {
        let mut names = BTreeMap::new();
        match level {
            ReportLevel::District | ReportLevel::Street | ReportLevel::Community => {
                if let Some(grids) = &rules.grids {
                    let h = grids.hierarchy();
                    match level {
                        ReportLevel::District => names
                            .extend(h.districts.iter().map(|(c, n)| (c.to_string(), n.clone()))),
                        ReportLevel::Street => {
                            names.extend(h.streets.iter().map(|(c, n)| (c.to_string(), n.clone())))
                        }
                        _ => names.extend(
                            h.communities
                                .iter()
                                .map(|(c, n)| (c.to_string(), n.clone())),
                        ),
                    }
                }
            }
            ReportLevel::Team => names.extend(rules.catalog.teams().iter().map(|t| {
                (
                    t.id.as_str().to_owned(),
                    format!("{} {}", t.name_zh, t.name_en),
                )
            })),
            ReportLevel::Handler | ReportLevel::Reporter | ReportLevel::Dispatcher => names.extend(
                store
                    .users()
                    .await?
                    .into_iter()
                    .map(|u| (u.id, u.display_name)),
            ),
        }
        Ok(Names(names))
    }

    fn of(&self, unit: &str) -> Option<String> {
        self.0.get(unit).cloned()
    }
}

/// The differences between a published report and its recomputation: per unit, the
/// fields whose values changed (`[{unit, field, published, now}]`).
pub fn differences(published: &Value, now: &Value) -> Vec<Value> {
    let index = |report: &Value| -> BTreeMap<String, Value> {
        report["units"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| Some((u["unit"].as_str()?.to_owned(), u.clone())))
            .collect()
    };
    let (before, after) = (index(published), index(now));
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for unit in keys {
        let old = before.get(unit).cloned().unwrap_or(Value::Null);
        let new = after.get(unit).cloned().unwrap_or(Value::Null);
        for field in ["rank", "score", "grade", "flag", "cases"] {
            if old.get(field) != new.get(field) {
                out.push(json!({
                    "unit": unit, "field": field,
                    "published": old.get(field), "now": new.get(field),
                }));
            }
        }
        let rates = |v: &Value| v.get("rates").cloned().unwrap_or(Value::Null);
        if let (Value::Object(a), Value::Object(b)) = (rates(&old), rates(&new)) {
            for (id, cell) in &a {
                if b.get(id) != Some(cell) {
                    out.push(json!({
                        "unit": unit, "field": id,
                        "published": cell, "now": b.get(id),
                    }));
                }
            }
        }
    }
    out
}

/// The header of the downloads: unit, name, place, score, grade, flag, cases, then
/// each indicator's rate, numerator and denominator.
fn header(report: &Value) -> Vec<String> {
    let mut header: Vec<String> = [
        "单位 unit",
        "名称 name",
        "名次 rank",
        "得分 score",
        "等级 grade",
        "奖惩 flag",
        "案件数 cases",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for i in report["indicators"].as_array().into_iter().flatten() {
        let zh = i["zh"].as_str().unwrap_or_default();
        let en = i["en"].as_str().unwrap_or_default();
        header.push(format!("{zh} {en}"));
        header.push(format!("{zh} 分子 numerator"));
        header.push(format!("{zh} 分母 denominator"));
    }
    header
}

/// A line's cells, numbers as numbers (`None` for an empty cell).
enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

fn cells(report: &Value, unit: &Value) -> Vec<Cell> {
    let text = |v: &Value| v.as_str().map_or(Cell::Empty, |s| Cell::Text(s.to_owned()));
    let number = |v: &Value| v.as_f64().map_or(Cell::Empty, Cell::Number);
    let flag = match unit["flag"].as_str() {
        Some("penalty") => Cell::Text("末位 penalty".into()),
        Some("reward") => Cell::Text("前三 reward".into()),
        _ => match unit["unranked"].as_str() {
            Some("too_few_cases") => Cell::Text("样本不足 too few cases".into()),
            Some(other) => Cell::Text(other.to_owned()),
            None => Cell::Empty,
        },
    };
    let mut out = vec![
        text(&unit["unit"]),
        text(&unit["name"]),
        number(&unit["rank"]),
        number(&unit["score"]),
        text(&unit["grade"]),
        flag,
        number(&unit["cases"]),
    ];
    for i in report["indicators"].as_array().into_iter().flatten() {
        let cell = &unit["rates"][i["id"].as_str().unwrap_or_default()];
        out.push(number(&cell["rate"]));
        out.push(number(&cell["numerator"]));
        out.push(number(&cell["denominator"]));
    }
    out
}

/// Why a download could not be written (never on valid input; reported as 500).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The CSV writer failed.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// The XLSX writer failed.
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// Writing into memory failed.
    #[error("csv: {0}")]
    Io(#[from] std::io::Error),
}

/// The report as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the
/// Chinese right); rates as fractions 0–1.
pub fn to_csv(report: &Value) -> Result<Vec<u8>, ExportError> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        w.write_record(header(report))?;
        for unit in report["units"].as_array().into_iter().flatten() {
            let record: Vec<String> = cells(report, unit)
                .into_iter()
                .map(|c| match c {
                    Cell::Text(t) => t,
                    Cell::Number(n) => n.to_string(),
                    Cell::Empty => String::new(),
                })
                .collect();
            w.write_record(record)?;
        }
        w.flush()?;
    }
    Ok(out)
}

/// The report as an XLSX workbook: one sheet, a bold header, rates as percentages.
pub fn to_xlsx(report: &Value) -> Result<Vec<u8>, ExportError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(format!(
        "{} {}",
        report["period"].as_str().unwrap_or_default(),
        report["level"].as_str().unwrap_or_default()
    ))?;
    let bold = Format::new().set_bold();
    let percent = Format::new().set_num_format("0.0%");
    for (col, title) in header(report).iter().enumerate() {
        let col = u16::try_from(col).unwrap_or(u16::MAX);
        sheet.write_string_with_format(0, col, title, &bold)?;
    }
    for (row, unit) in report["units"].as_array().into_iter().flatten().enumerate() {
        let row = u32::try_from(row + 1).unwrap_or(u32::MAX);
        for (col, cell) in cells(report, unit).into_iter().enumerate() {
            // Rates sit in every third column after the seven fixed ones.
            let is_rate = col >= 7 && (col - 7) % 3 == 0;
            let col = u16::try_from(col).unwrap_or(u16::MAX);
            match cell {
                Cell::Text(t) => {
                    sheet.write_string(row, col, t)?;
                }
                Cell::Number(n) if is_rate => {
                    sheet.write_number_with_format(row, col, n, &percent)?;
                }
                Cell::Number(n) => {
                    sheet.write_number(row, col, n)?;
                }
                Cell::Empty => {}
            }
        }
    }
    Ok(book.save_to_buffer()?)
}

/// Writes the facts of the cases stored before assessment existed (migration 0016
/// added `case_facts`; a case gets its row at its next write): each folded once, its
/// row inserted unless a write since has put a fresher one. Returns how many were
/// written. A document that does not load is skipped (and logged), never retried in
/// the same pass.
pub async fn backfill_facts(store: &dyn Store, rules: &CaseRules) -> Result<usize, StoreError> {
    let context = rules.context();
    let mut seen = std::collections::HashSet::new();
    let mut written = 0;
    loop {
        let ids: Vec<String> = store
            .facts_missing(500)
            .await?
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect();
        if ids.is_empty() {
            return Ok(written);
        }
        for id in ids {
            let doc = match crate::writes::load_stored(store, &id).await {
                Ok(Some(doc)) => doc,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(case = %id, %error, "assessment backfill: skipped");
                    continue;
                }
            };
            let view = wangge_sync_core::case::CaseDocument::from_automerge(doc).fold(&context);
            let row = crate::cases::case_row(&id, &view, crate::writes::now_ms());
            if let Some(facts) = crate::cases::facts_row(&row, &view) {
                store.facts_insert_missing(&facts).await?;
                written += 1;
            }
        }
    }
}

/// The rules file: the operator's TOML named by `WANGGE_ASSESSMENT` (validated; an
/// error names the table and indicator), else the built-in one.
pub fn rules_from_env() -> Result<AssessmentRules, String> {
    let Ok(path) = std::env::var("WANGGE_ASSESSMENT") else {
        return Ok(AssessmentRules::standard());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("WANGGE_ASSESSMENT={path}: reading it: {e}"))?;
    AssessmentRules::from_toml_str(&text).map_err(|e| format!("WANGGE_ASSESSMENT={path}: {e}"))
}
