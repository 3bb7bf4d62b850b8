// Assessment (考核评价, docs/assessment.md): a month's or quarter's rates and ranking
// of one level of units (GET /v1/assessment), each unit's score drawn as a bar, the
// plan's flags (末位 of a month, 前三 of a quarter), the downloads (CSV, XLSX: the same
// query with format=…), and publishing an ended period (POST /v1/assessment/reports).
// The server decides who sees what: a district supervisor's areas only.

import { api, ApiError } from "./api.js";
import { t, bilingual, lang, onChange, time } from "./i18n.js";
import { el } from "./cases.js";

const LEVELS = ["district", "street", "community", "team", "handler", "reporter", "dispatcher"];
let report = null;
let home = "";

/// The month before this one, Beijing time: the usual month to look at.
function lastMonth() {
  const now = new Date(Date.now() + 8 * 3600 * 1000);
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return d.toISOString().slice(0, 7);
}

/// `scope`: the caller's posting ("*" for the city): a district supervisor starts at
/// their district's streets.
export function initAssessment(scope) {
  home = scope === "*" ? "" : scope.split(",")[0];
  const level = document.getElementById("assess-level");
  level.replaceChildren(...LEVELS.map((l) => el("option", { value: l, "data-t": `level_${l}` }, t(`level_${l}`))));
  level.value = home ? "street" : "district";
  document.getElementById("assess-period").value = lastMonth();
  document.getElementById("assess-within").value = home;
  document.getElementById("assess-form").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  document.getElementById("assess-publish").addEventListener("click", publish);
  document.getElementById("assess-published").addEventListener("click", showPublished);
  onChange(render);
}

function query(format) {
  const period = document.getElementById("assess-period").value.trim();
  const level = document.getElementById("assess-level").value;
  const within = document.getElementById("assess-within").value.trim();
  const q = new URLSearchParams({ period, level });
  if (within) q.set("within", within);
  if (format) q.set("format", format);
  return `/v1/assessment?${q}`;
}

export async function load() {
  const status = document.getElementById("assess-status");
  status.textContent = t("loading");
  document.getElementById("assess-differences").hidden = true;
  try {
    report = await api(query());
    status.textContent = report.units.length ? "" : t("assess_empty");
  } catch (e) {
    report = null;
    status.textContent = `${t("failed")}: ${e instanceof ApiError ? e.message : e}`;
  }
  document.getElementById("assess-csv").href = query("csv");
  document.getElementById("assess-xlsx").href = query("xlsx");
  render();
}

async function publish() {
  const period = document.getElementById("assess-period").value.trim();
  const unit = document.getElementById("assess-within").value.trim();
  const status = document.getElementById("assess-status");
  try {
    const answer = await api("/v1/assessment/reports", { method: "POST", body: { period, unit } });
    status.textContent = `${t("published")} ${answer.period} · ${time(answer.published_at)}`;
  } catch (e) {
    status.textContent = `${t("failed")}: ${e instanceof ApiError ? e.message : e}`;
  }
}

/// The period as it was published for the area (the city's districts, or a
/// district's streets), and what has changed since (GET /v1/assessment/reports/…).
async function showPublished() {
  const period = document.getElementById("assess-period").value.trim();
  const unit = document.getElementById("assess-within").value.trim();
  const status = document.getElementById("assess-status");
  const list = document.getElementById("assess-differences");
  list.hidden = true;
  try {
    const answer = await api(`/v1/assessment/reports/${encodeURIComponent(period)}?unit=${encodeURIComponent(unit)}`);
    report = answer.published;
    status.textContent = `${t("published")} ${answer.period} · ${time(answer.published_at)} · ${answer.published_by}`;
    const changes = answer.differences || [];
    list.replaceChildren(
      el("li", { class: "muted" }, changes.length ? t("differences") : t("unchanged")),
      ...changes.map((d) =>
        el("li", { "data-unit": d.unit }, `${d.unit} ${d.field}: ${JSON.stringify(d.published)} → ${JSON.stringify(d.now)}`),
      ),
    );
    list.hidden = false;
  } catch (e) {
    status.textContent = `${t("failed")}: ${e instanceof ApiError ? e.message : e}`;
  }
  render();
}

function percent(cell) {
  if (!cell || cell.rate === null) return "–";
  return `${(cell.rate * 100).toFixed(1)}%`;
}

function render() {
  const table = document.getElementById("assess-table");
  if (!report) {
    table.replaceChildren();
    return;
  }
  const indicators = report.indicators;
  const head = el(
    "tr",
    {},
    el("th", {}, t("col_rank")),
    el("th", {}, t("col_unit")),
    el("th", {}, t("col_score")),
    el("th", {}, t("col_grade")),
    el("th", {}, t("col_cases")),
    indicators.map((i) => el("th", { title: `${i.zh} ${i.en} · ${i.weight}` }, lang() === "en" ? i.en : i.zh)),
  );
  const rows = report.units.map((u) =>
    el(
      "tr",
      { class: u.flag ? `flag-${u.flag}` : undefined, "data-unit": u.unit },
      el("td", {}, u.rank ?? "–"),
      el(
        "td",
        {},
        u.name ? `${bilingual(u.name)} ` : "",
        el("span", { class: "muted" }, u.unit),
        u.flag ? el("span", { class: `tag ${u.flag}` }, t(`flag_${u.flag}`)) : null,
        u.unranked ? el("span", { class: "tag" }, t(`unranked_${u.unranked}`)) : null,
      ),
      el(
        "td",
        { class: "score" },
        // The bar chart of the ranking: a native meter (no inline style under the CSP).
        u.score === null ? "–" : [el("meter", { min: 0, max: 100, low: 60, high: 90, optimum: 100, value: u.score }), ` ${u.score.toFixed(1)}`],
      ),
      el("td", {}, u.grade ?? "–"),
      el("td", {}, u.cases),
      indicators.map((i) => {
        const cell = u.rates[i.id];
        return el("td", { title: cell ? `${cell.numerator} / ${cell.denominator}` : "" }, percent(cell));
      }),
    ),
  );
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
}
