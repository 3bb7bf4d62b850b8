// The console's entry: the session (GET /v1/console/session; the login form when there
// is none), the tabs the role may use, the map, and new cases and dispatches appearing
// without a reload: the push socket (GET /v1/push, authenticated by the same cookie)
// says when something in the caller's scope was written, and a periodic refresh covers
// a socket that is down.

import { api, setCsrf, onLoggedOut, ApiError } from "./api.js";
import { t, translate, toggle, lang, onChange } from "./i18n.js";
import { createMap, showCoverage } from "./map.js";
import { initCases, refresh as refreshCases, openCase } from "./cases.js";
import { initPatrol, load as loadPatrol } from "./patrol.js";
import { initHotline, activateHotline } from "./hotline.js";
import { initAssessment, load as loadAssessment } from "./assessment.js";

const REFRESH_MS = 60_000;
let session = null;
let view = "cases";
let socket = null;

function showLogin(message = "") {
  document.getElementById("main").hidden = true;
  document.getElementById("tabs").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  document.getElementById("login").hidden = false;
  const error = document.getElementById("login-error");
  error.textContent = message;
  error.hidden = !message;
  document.body.dataset.state = "login";
}

async function categories() {
  // The catalogue as Open311 services: code → "中文名 English name".
  const services = await api("/open311/v2/services.json");
  return new Map(services.map((s) => [s.service_code, s.service_name]));
}

async function start(answer) {
  session = answer;
  setCsrf(answer.csrf_token);
  document.getElementById("login").hidden = true;
  document.getElementById("main").hidden = false;
  document.getElementById("tabs").hidden = false;
  document.getElementById("logout").hidden = false;
  const u = answer.user;
  const who = () => {
    const role = lang() === "en" ? u.role.replaceAll("_", " ") : u.role_zh || u.role;
    document.getElementById("who").textContent = `${u.display_name || u.id} · ${role}`;
  };
  who();
  onChange(who);
  document.querySelector('[data-view="patrol"]').hidden = !(answer.may.review_patrol || answer.may.own_patrol);
  document.querySelector('[data-view="hotline"]').hidden = !answer.may.take_calls;
  document.querySelector('[data-view="assess"]').hidden = !answer.may.assess;
  createMap(answer);
  const cats = await categories();
  await initCases(answer, cats);
  if (answer.may.review_patrol || answer.may.own_patrol) initPatrol(answer.may.review_patrol);
  if (answer.may.assess) initAssessment(u.scope);
  if (answer.may.take_calls) initHotline(cats, (id) => refreshCases().then(() => openCase(id)));
  listen();
  setInterval(() => refreshCases().catch(() => {}), REFRESH_MS);
  show("cases");
  document.body.dataset.state = "ready";
}

function show(next) {
  view = next;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const name of ["cases", "patrol", "hotline", "assess"]) {
    document.getElementById(`view-${name}`).hidden = name !== view;
  }
  activateHotline(view === "hotline");
  if (view !== "patrol") showCoverage(null);
  if (view === "patrol") loadPatrol();
  if (view === "assess") loadAssessment();
}

/// The push socket: `sync_now` and `dispatch` notices mean a case in scope changed.
function listen() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/v1/push`);
  let timer = null;
  socket.addEventListener("message", (event) => {
    let notice = null;
    try {
      notice = JSON.parse(event.data);
    } catch {
      return;
    }
    if (notice.type === "hello") return;
    // A burst of notices is one refresh.
    clearTimeout(timer);
    timer = setTimeout(() => refreshCases().catch(() => {}), 300);
  });
  socket.addEventListener("close", () => {
    if (session) setTimeout(listen, 10_000);
  });
}

async function login(event) {
  event.preventDefault();
  const user = document.getElementById("login-user").value.trim();
  const password = document.getElementById("login-password").value;
  try {
    const answer = await api("/v1/console/session", { method: "POST", body: { user, password } });
    document.getElementById("login-password").value = "";
    await start(answer);
  } catch (e) {
    const word = e instanceof ApiError ? t(`error_${e.code}`) : "";
    showLogin(word && word !== `error_${e.code}` ? word : e instanceof ApiError ? e.message : String(e));
  }
}

async function logout() {
  try {
    await api("/v1/console/session", { method: "DELETE" });
  } finally {
    session = null;
    if (socket) socket.close();
    location.reload();
  }
}

translate();
document.getElementById("lang").addEventListener("click", () => {
  toggle();
  document.getElementById("lang").textContent = t("title") === "监督指挥" ? "English" : "中文";
});
document.getElementById("lang").textContent = t("title") === "监督指挥" ? "English" : "中文";
document.getElementById("login-form").addEventListener("submit", login);
document.getElementById("logout").addEventListener("click", logout);
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
onLoggedOut(() => {
  if (session) location.reload();
});

try {
  await start(await api("/v1/console/session"));
} catch (e) {
  if (e instanceof ApiError && (e.status === 401 || e.status === 403)) showLogin();
  else showLogin(String(e.message || e));
}
