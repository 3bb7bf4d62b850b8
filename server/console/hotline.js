// The hotline desk (热线受理): a call taken in with POST /v1/cases — the place picked
// on the map (GCJ-02) or a grid code typed, the category, the description and the
// caller (kept on the server only; docs/intake.md).

import { api } from "./api.js";
import { t, bilingual, onChange } from "./i18n.js";
import { pickPoint } from "./map.js";
import { el } from "./cases.js";

let point = null;
let categories = new Map();

export function initHotline(cats, created) {
  categories = cats;
  fillCategories();
  onChange(fillCategories);
  const form = document.getElementById("hotline-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = document.getElementById("hotline-result");
    const body = {
      source: "hotline",
      category: document.getElementById("hotline-category").value,
      description: document.getElementById("hotline-description").value.trim(),
    };
    const grid = document.getElementById("hotline-grid").value.trim();
    if (grid) body.grid = grid;
    if (point) body.location = { lon: point.lng, lat: point.lat, crs: "gcj02" };
    const address = document.getElementById("hotline-address").value.trim();
    if (address) body.address = address;
    const name = document.getElementById("hotline-caller").value.trim();
    const phone = document.getElementById("hotline-phone").value.trim();
    if (name || phone) body.caller = { ...(name && { name }), ...(phone && { phone }) };
    const ticket = document.getElementById("hotline-ticket").value.trim();
    if (ticket) body.ticket = ticket;
    try {
      const answer = await api("/v1/cases", { method: "POST", body });
      const id = answer.id || answer.case?.id || "";
      result.textContent = `${t("created")}: ${id}`;
      result.dataset.case = id;
      form.reset();
      point = null;
      pickPoint(onPick);
      document.getElementById("hotline-point").textContent = "";
      created(id);
    } catch (e) {
      result.textContent = `${t("failed")}: ${e.message}`;
    }
  });
}

function onPick(latlng) {
  point = latlng;
  document.getElementById("hotline-point").textContent = `${t("pick_point")}: ${latlng.lng.toFixed(6)}, ${latlng.lat.toFixed(6)} (GCJ-02)`;
}

/// The map picks places only while the hotline desk is open.
export function activateHotline(active) {
  pickPoint(active ? onPick : null);
}

function fillCategories() {
  const select = document.getElementById("hotline-category");
  const chosen = select.value;
  select.replaceChildren(
    ...[...categories].map(([code, name]) => el("option", { value: code }, `${code} ${bilingual(name)}`)),
  );
  if (chosen) select.value = chosen;
}
