// Patrol review (巡查审核): a day's logs of a unit (GET /v1/patrol/logs), a log's
// check-ins, missed grids, anomalies and reviews (GET /v1/patrol/logs/{id}), its track
// on the map (…/track, GCJ-02), and approving or rejecting it with a reason
// (POST …/reviews, which reaches the worker's phone by sync).

import { api } from "./api.js";
import { t, time, bilingual, onChange } from "./i18n.js";
import { showTrack, showCoverage } from "./map.js";
import { el } from "./cases.js";

let logs = [];
let openId = null;
let reviewer = false;

/// Today in Beijing (the patrol's days are China dates).
function today() {
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

/// `mayReview`: the role reviews logs (a field worker sees their own, read only).
export function initPatrol(mayReview) {
  reviewer = mayReview;
  const day = document.getElementById("patrol-day");
  if (!day.value) day.value = today();
  document.getElementById("patrol-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    openId = null;
    load();
  });
  // An open log is drawn again in the new language, not only the list behind it.
  onChange(() => (openId ? openLog(openId) : render()));
}

export async function load() {
  const day = document.getElementById("patrol-day").value || today();
  const unit = document.getElementById("patrol-unit").value.trim();
  const status = document.getElementById("patrol-status");
  status.textContent = t("loading");
  const where = unit ? `&unit=${encodeURIComponent(unit)}` : "";
  if (reviewer) {
    // The day's coverage (见巡率) per level-3 grid shades the map.
    api(`/v1/patrol/coverage?day=${day}&by=level3${where}`)
      .then((c) => showCoverage(c.rows || []))
      .catch(() => showCoverage(null));
  }
  try {
    const answer = await api(`/v1/patrol/logs?day=${day}${where}`);
    logs = answer.logs || [];
    status.textContent = logs.length ? "" : t("no_logs");
  } catch (e) {
    logs = [];
    status.textContent = `${t("failed")}: ${e.message}`;
  }
  render();
  if (openId) await openLog(openId);
}

function render() {
  const body = document.querySelector("#patrol-table tbody");
  body.replaceChildren(
    ...logs.map((l) =>
      el(
        "tr",
        { "data-log": l.id, onclick: () => openLog(l.id) },
        el("td", {}, l.worker),
        el("td", {}, `${l.counted}/${l.checkins}`),
        el("td", {}, `${Math.round(l.distance_m)} ${t("metres")}`),
        el("td", {}, bilingual(l.verdict_label) || "—"),
      ),
    ),
  );
  document.getElementById("patrol-table").hidden = Boolean(openId);
}

export async function openLog(id) {
  const [data, track] = await Promise.all([
    api(`/v1/patrol/logs/${encodeURIComponent(id)}`),
    api(`/v1/patrol/logs/${encodeURIComponent(id)}/track`).catch(() => null),
  ]);
  openId = id;
  document.getElementById("patrol-table").hidden = true;
  const page = document.getElementById("patrol-page");
  page.hidden = false;
  page.dataset.log = id;
  page.dataset.verdict = data.log.verdict || "";
  showTrack(track);
  const reason = el("textarea", { name: "reason", id: "review-reason" });
  const error = el("p", { class: "error", hidden: true });
  const review = async (verdict) => {
    const comment = reason.value.trim();
    if (verdict === "reject" && !comment) {
      error.textContent = t("reason_needed");
      error.hidden = false;
      return;
    }
    try {
      await api(`/v1/patrol/logs/${encodeURIComponent(id)}/reviews`, {
        method: "POST",
        body: comment ? { verdict, comment } : { verdict },
      });
      await load();
      await openLog(id);
    } catch (e) {
      error.textContent = `${t("failed")}: ${e.message}`;
      error.hidden = false;
    }
  };
  const l = data.log;
  // replaceChildren would show a null as the text "null".
  page.replaceChildren(
    ...[
    el(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => {
          openId = null;
          page.hidden = true;
          showTrack(null);
          render();
        },
      },
      "← ",
      t("back"),
    ),
    el("h2", {}, `${l.worker} · ${l.day}`, " ", el("span", { class: "tag", id: "log-verdict" }, bilingual(l.verdict_label) || "—")),
    el(
      "dl",
      {},
      el("dt", {}, t("checkins")), el("dd", {}, `${l.counted}/${l.checkins}`),
      el("dt", {}, t("col_distance")), el("dd", {}, `${Math.round(l.distance_m)} ${t("metres")}`),
      el("dt", {}, t("missed")), el("dd", {}, (data.missed || []).map((m) => m.level3).join(", ") || "—"),
    ),
    el("h3", {}, t("anomalies")),
    el(
      "ul",
      {},
      (data.anomalies || []).length
        ? data.anomalies.map((a) => el("li", {}, [a.kind, a.detail, a.checkin_id].filter(Boolean).join(" · ")))
        : el("li", { class: "muted" }, t("none")),
    ),
    el("h3", {}, t("reviews")),
    el(
      "ul",
      { id: "log-reviews" },
      (data.reviews || []).length
        ? data.reviews.map((r) =>
            el("li", {}, [bilingual(r.verdict_label), r.user, r.comment, time(r.at)].filter(Boolean).join(" · ")),
          )
        : el("li", { class: "muted" }, t("none")),
    ),
    !reviewer
      ? null
      : el(
      "div",
      { class: "review" },
      el("label", {}, t("reason"), " ", reason),
      el("button", { type: "button", "data-verdict": "approve", onclick: () => review("approve") }, t("approve")),
      el("button", { type: "button", "data-verdict": "reject", class: "danger", onclick: () => review("reject") }, t("reject")),
      error,
    ),
    ].filter(Boolean),
  );
}
