// The case desk (案卷): a queue per step from GET /v1/cases filters, a case's page
// (GET /v1/cases/{id}: its timeline in order, photos, the actions the server says the
// caller may take now) and acting on it (POST /v1/cases/{id}/actions). The server
// decides everything; a refused action shows the server's reason.

import { api } from "./api.js";
import { t, statusLabel, actionLabel, sourceLabel, bilingual, time, lang, onChange } from "./i18n.js";
import { showCases, focus } from "./map.js";

const QUEUES = [
  { key: "q_reported", query: "status=reported" },
  { key: "q_accepted", query: "status=accepted" },
  { key: "q_registered", query: "status=registered" },
  { key: "q_dispatched", query: "status=dispatched" },
  { key: "q_handled", query: "status=handled" },
  { key: "q_verified", query: "status=verified" },
  { key: "q_overdue", query: "overdue=true" },
];
/// The closed calls whose caller is still owed the answer (回访), for those who call back.
const REPLY_QUEUE = { key: "q_reply", query: "status=closed&step=reply" };
const PAGE = 100;

/// The queues a field worker works from: their dispatched cases, what waits for the
/// check after their handling, and what is overdue (the command centre's steps are
/// not theirs to count).
const FIELD_QUEUES = ["q_dispatched", "q_handled", "q_overdue"];

let queues = QUEUES;
let queue = QUEUES[0];
let categories = new Map();
/// Team id → [中文名, English name], from the catalogue (GET /v1/catalogue).
let teams = new Map();
let rows = [];
let counts = new Map();
let openId = null;

/// Creates an element with text and attributes (never HTML from data: everything the
/// server sends is shown as text).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function categoryLabel(code) {
  const name = categories.get(code);
  return name ? `${bilingual(name)} (${code})` : code || "";
}

export function teamLabel(id) {
  const name = teams.get(id);
  return name ? `${name[lang() === "en" ? 1 : 0]} (${id})` : id || "";
}

export async function initCases(session, cats) {
  categories = cats;
  const served = await api("/v1/catalogue").catch(() => null);
  teams = new Map((served?.catalogue?.team || []).map((team) => [team.id, [team.name_zh, team.name_en]]));
  if (session.may.own_patrol) {
    queues = QUEUES.filter((q) => FIELD_QUEUES.includes(q.key));
    queue = queues[0];
  } else if (session.may.take_calls) {
    queues = [...QUEUES, REPLY_QUEUE];
  }
  onChange(render);
  await refresh();
}

/// Reloads every queue's count and the open queue's rows (and the open case).
export async function refresh() {
  const answers = await Promise.all(
    queues.map((q) => api(`/v1/cases?${q.query}&limit=${PAGE}`).then((a) => [q, a.cases])),
  );
  counts = new Map(answers.map(([q, cases]) => [q.key, cases.length]));
  rows = answers.find(([q]) => q === queue)[1];
  render();
  // A form being filled in is not wiped by a refresh a push notice started.
  const filling = document.querySelector("#case-page .action-form:not([hidden])");
  if (openId && !filling) await openCase(openId, false);
}

function render() {
  document.getElementById("queues").replaceChildren(
    ...queues.map((q) => {
      const n = counts.get(q.key) ?? 0;
      return el(
        "button",
        {
          type: "button",
          class: q === queue ? "queue active" : "queue",
          "data-queue": q.key,
          onclick: () => {
            queue = q;
            openId = null;
            refresh();
          },
        },
        t(q.key),
        " ",
        el("span", { class: "badge" }, n >= PAGE ? `${PAGE}+` : n),
      );
    }),
  );
  document.getElementById("queue-status").textContent = rows.length ? "" : t("none");
  const body = document.querySelector("#case-table tbody");
  body.replaceChildren(
    ...rows.map((c) =>
      el(
        "tr",
        { "data-case": c.id, class: c.overdue ? "overdue" : "", onclick: () => openCase(c.id) },
        el("td", {}, el("strong", {}, categoryLabel(c.category)), el("br"), c.address || c.summary || ""),
        el("td", {}, statusLabel(c.status), c.overdue ? el("span", { class: "tag overdue" }, t("overdue")) : null),
        el("td", {}, time(c.due_at)),
      ),
    ),
  );
  document.getElementById("case-table").hidden = Boolean(openId);
  showCases(rows, (id) => openCase(id));
}

export async function openCase(id, move = true) {
  const data = await api(`/v1/cases/${encodeURIComponent(id)}`);
  openId = id;
  document.getElementById("case-table").hidden = true;
  const page = document.getElementById("case-page");
  page.hidden = false;
  page.dataset.case = id;
  page.dataset.status = data.case.status || "";
  renderCase(page, data);
  if (move) focus(data.gcj02);
}

function closeCase() {
  openId = null;
  document.getElementById("case-page").hidden = true;
  document.getElementById("case-table").hidden = false;
}

function renderCase(page, data) {
  const c = data.case;
  const status = lang() === "en" ? data.status_en : data.status_zh;
  // replaceChildren would show a null as the text "null".
  page.replaceChildren(
    ...[
    el("button", { type: "button", class: "link", onclick: closeCase }, "← ", t("back")),
    el(
      "h2",
      {},
      categoryLabel(c.category),
      " ",
      el("span", { class: `tag status-${c.status}`, id: "case-status" }, status || statusLabel(c.status)),
      data.overdue ? el("span", { class: "tag overdue" }, t("overdue")) : null,
    ),
    el(
      "dl",
      {},
      el("dt", {}, t("address")), el("dd", {}, c.address || "—"),
      el("dt", {}, t("grid")), el("dd", {}, c.grid || "—"),
      el("dt", {}, t("source")), el("dd", {}, sourceLabel(c.source)),
      el("dt", {}, t("reported_at")), el("dd", {}, time(c.reported_at)),
      el("dt", {}, t("col_due")), el("dd", {}, time(c.due_at) || "—"),
      el("dt", {}, t("team")), el("dd", {}, [teamLabel(c.team), c.assignee].filter(Boolean).join(" / ") || "—"),
    ),
    el("p", { class: "description" }, data.description || ""),
    data.photos?.length
      ? el(
          "div",
          { class: "photos" },
          el("h3", {}, t("photos")),
          data.photos.map((p) =>
            el("a", { href: p.display, target: "_blank", rel: "noopener" }, el("img", { src: p.thumb, alt: p.role, loading: "lazy" })),
          ),
        )
      : null,
    el("h3", {}, t("actions")),
    actionsBlock(data),
    duplicatesBlock(data),
    el("h3", {}, t("timeline")),
    el(
      "ol",
      { class: "timeline" },
      data.timeline.map((e) =>
        el(
          "li",
          { class: e.applied ? "" : "ignored", "data-action": e.action },
          el("time", {}, e.at ? time(Date.parse(e.at)) : ""),
          " ",
          el("strong", {}, actionLabel(e.action)),
          " ",
          e.user ? `${e.user} (${lang() === "en" ? (e.role || "").replaceAll("_", " ") : e.role_zh || e.role})` : "",
          e.note ? el("div", { class: "note" }, e.note) : null,
          e.applied ? null : el("div", { class: "muted" }, t("ignored"), ": ", e.ignored_reason || ""),
        ),
      ),
    ),
    ].filter(Boolean),
  );
}

function actionsBlock(data) {
  const allowed = (data.allowed_actions || []).filter((a) => a !== "comment");
  const wrap = el("div", { class: "actions", id: "case-actions" });
  const form = el("form", { class: "action-form", hidden: true });
  const buttons = [...allowed, ...(data.allowed_actions || []).filter((a) => a === "comment")].map((a) =>
    el("button", { type: "button", "data-action": a, onclick: () => actionForm(form, data, a) }, actionLabel(a)),
  );
  if (!buttons.length) wrap.append(el("p", { class: "muted" }, t("no_actions")));
  wrap.append(...buttons, form);
  return wrap;
}

/// While a call waits to be accepted, the open cases of its category nearby (the
/// server's suggestion, for the roles that answer callers): each opens, and voids this
/// one as its duplicate where the workflow allows.
function duplicatesBlock(data) {
  const suggested = data.possible_duplicates || [];
  if (!suggested.length) return null;
  const mayVoid = (data.allowed_actions || []).includes("void");
  return el(
    "div",
    { class: "duplicates" },
    el("h3", {}, t("possible_duplicates")),
    el(
      "ul",
      {},
      suggested.map((d) =>
        el(
          "li",
          { "data-duplicate": d.id },
          el("button", { type: "button", class: "link", onclick: () => openCase(d.id) }, d.summary || d.id),
          ` · ${statusLabel(d.status)} · ${Math.round(d.distance_m)} ${t("metres")} · ${d.address || ""}`,
          mayVoid
            ? el(
                "button",
                {
                  type: "button",
                  onclick: async () => {
                    const form = document.querySelector("#case-actions .action-form");
                    await actionForm(form, data, "void");
                    form.querySelector("input[name=duplicate_of]").value = d.id;
                  },
                },
                t("void_as_duplicate"),
              )
            : null,
        ),
      ),
    ),
  );
}

/// The form of one action: its payload fields and a note.
async function actionForm(form, data, action) {
  const c = data.case;
  const fields = [];
  if (action === "dispatch") {
    let routing = null;
    if (c.category && c.lon !== null && c.lat !== null) {
      routing = await api(`/v1/routing?category=${c.category}&lon=${c.lon}&lat=${c.lat}`).catch(() => null);
    }
    const team = routing?.team || c.team || "";
    const people = routing?.responsible?.handlers || [];
    fields.push(
      el(
        "label",
        {},
        t("team"),
        " ",
        el(
          "select",
          { name: "team", required: true },
          teams.has(team) || !team ? null : el("option", { value: team, selected: true }, team),
          [...teams.keys()].map((id) => el("option", { value: id, selected: id === team }, teamLabel(id))),
        ),
      ),
      el(
        "label",
        {},
        t("assignee"),
        " ",
        el("select", { name: "assignee" }, el("option", { value: "" }, t("anyone")), people.map((p) => el("option", { value: p }, p))),
      ),
    );
  } else if (action === "request_extension") {
    fields.push(el("label", {}, t("extra"), " ", el("input", { name: "extra", required: true, value: "1 working_days" })));
  } else if (action === "decide_extension" || action === "decide_defer") {
    fields.push(el("label", {}, el("input", { type: "checkbox", name: "approved", checked: true }), " ", t("approved")));
  } else if (action === "reply") {
    fields.push(
      el(
        "label",
        {},
        t("channel"),
        " ",
        el("select", { name: "channel" }, ["phone", "sms", "in_person", "open311"].map((v) => el("option", { value: v }, v))),
      ),
      el("label", {}, el("input", { type: "checkbox", name: "satisfied", checked: true }), " ", t("satisfied")),
    );
  } else if (action === "void") {
    fields.push(el("label", {}, t("duplicate_of"), " ", el("input", { name: "duplicate_of" })));
  }
  const error = el("p", { class: "error", hidden: true });
  form.replaceChildren(
    el("h4", {}, actionLabel(action)),
    ...fields,
    el("label", {}, t("note"), " ", el("textarea", { name: "note", required: action === "reply" })),
    el("button", { type: "submit", "data-submit": action }, t("submit")),
    el("button", { type: "button", onclick: () => (form.hidden = true) }, t("cancel")),
    error,
  );
  form.hidden = false;
  form.onsubmit = async (event) => {
    event.preventDefault();
    const f = new FormData(form);
    const body = { action };
    for (const name of ["team", "assignee", "extra", "channel", "duplicate_of", "note"]) {
      const v = f.get(name);
      if (typeof v === "string" && v.trim()) body[name] = v.trim();
    }
    if (action === "decide_extension" || action === "decide_defer") body.approved = f.get("approved") === "on";
    if (action === "reply") body.satisfied = f.get("satisfied") === "on";
    try {
      await api(`/v1/cases/${encodeURIComponent(c.id)}/actions`, { method: "POST", body });
      await refresh();
      await openCase(c.id, false);
    } catch (e) {
      error.textContent = `${t("failed")}: ${e.message}`;
      error.hidden = false;
    }
  };
}
