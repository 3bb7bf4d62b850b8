// The map: district, street and community outlines further out, the unit grids from
// GET /v1/grids closer in (GCJ-02, the datum of Chinese base maps,
// so Leaflet's Web Mercator shows them in place over GCJ-02 tiles), the cases as
// markers by status and overdue, a patrol track. The base map is the operator's tile
// URL when there is one; otherwise the grids alone are the map.

import * as L from "./vendor/leaflet/leaflet-src.esm.js";
import { api } from "./api.js";
import { t, statusLabel, onChange } from "./i18n.js";

/// Unit grids are drawn from this zoom on (a request returns at most 2,000 grids).
const GRID_ZOOM = 15;

const STATUS_COLOURS = {
  reported: "#d9480f",
  accepted: "#e67700",
  registered: "#f59f00",
  dispatched: "#1971c2",
  handled: "#6741d9",
  verified: "#0c8599",
  closed: "#2b8a3e",
  voided: "#868e96",
  deferred: "#868e96",
};

let map;
let gridLayer = null;
let areaLayer = null;
let coverage = null;
let gridRequest = 0;
let gridCount = 0;
let hintKey = "";
const caseLayer = L.layerGroup();
const trackLayer = L.layerGroup();
const pickLayer = L.layerGroup();
let pickHandler = null;

/// A colour per community, so that communities (and their streets) stand apart.
function communityColour(code) {
  let h = 0;
  for (const c of code || "") h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h}, 55%, 42%)`;
}

/// The line under the map: how many grids it shows, or why none.
function hint(key = hintKey) {
  hintKey = key;
  const el = document.getElementById("map-hint");
  el.textContent = key === "grids_shown" ? `${gridCount} ${t(key)}` : key ? t(key) : "";
  el.dataset.grids = String(gridCount);
}

export function createMap(session) {
  map = L.map("map", { zoomControl: true, attributionControl: true });
  map.attributionControl.setPrefix(false);
  if (session.tiles) {
    L.tileLayer(session.tiles, { subdomains: "1234", maxZoom: 19 }).addTo(map);
  }
  caseLayer.addTo(map);
  trackLayer.addTo(map);
  pickLayer.addTo(map);
  const home = session.home;
  if (home) {
    const box = [
      [home[1], home[0]],
      [home[3], home[2]],
    ];
    L.rectangle(box, { color: "#495057", weight: 2, fill: false, dashArray: "6 4", interactive: false }).addTo(map);
    map.fitBounds(box, { maxZoom: 17, padding: [20, 20] });
  } else {
    map.setView([34.7466, 113.6253], 12);
  }
  map.on("moveend", drawGrids);
  map.on("click", (e) => pickHandler && pickHandler(e.latlng));
  onChange(() => hint());
  drawGrids();
  return map;
}

async function drawGrids() {
  const request = ++gridRequest;
  const b = map.getBounds();
  const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((n) => n.toFixed(6)).join(",");
  if (map.getZoom() < GRID_ZOOM) {
    if (gridLayer) gridLayer.remove();
    gridLayer = null;
    gridCount = 0;
    await drawAreas(request, bbox);
    return;
  }
  if (areaLayer) areaLayer.remove();
  areaLayer = null;
  let features;
  try {
    features = await api(`/v1/grids?bbox=${bbox}`);
  } catch (e) {
    if (request === gridRequest) refused(e);
    return;
  }
  if (request !== gridRequest) return;
  if (gridLayer) gridLayer.remove();
  gridLayer = L.geoJSON(features, {
    style: gridStyle,
    onEachFeature: (f, layer) => {
      const p = f.properties;
      layer.bindTooltip(
        [p.street_name, p.community_name, p.level3_name, p.code].filter(Boolean).join(" · "),
        { sticky: true },
      );
    },
  }).addTo(map);
  gridLayer.bringToBack();
  gridCount = features.features.length;
  hint("grids_shown");
}

/// A unit grid's look: its community's colour, filled by the patrol coverage (见巡率)
/// of its level-3 grid while patrol review shows one — green walked, orange partly,
/// red missed.
function gridStyle(f) {
  const row = coverage?.get(f.properties.level3);
  const fill = !row || !row.assigned ? null : row.covered >= row.assigned ? "#2b8a3e" : row.covered > 0 ? "#f08c00" : "#c92a2a";
  return {
    color: communityColour(f.properties.community),
    weight: 1,
    fillColor: fill || communityColour(f.properties.community),
    fillOpacity: fill ? 0.35 : 0.06,
  };
}

/// Shades the unit grids by the coverage rows of GET /v1/patrol/coverage?by=level3
/// (`null`: no shading).
export function showCoverage(rows) {
  coverage = rows ? new Map(rows.map((r) => [r.key, r])) : null;
  document.getElementById("map-hint").dataset.coverage = String(coverage ? coverage.size : 0);
  if (gridLayer) gridLayer.setStyle(gridStyle);
}

/// A map request the server refused: nothing drawn, and why.
function refused(e) {
  if (gridLayer) gridLayer.remove();
  if (areaLayer) areaLayer.remove();
  gridLayer = null;
  areaLayer = null;
  gridCount = 0;
  hint(e.code === "bbox_too_large" ? "too_many_grids" : e.code === "no_grids" ? "no_grids" : "failed");
}

/// Further out than unit grids: the outlines of the districts (below zoom 12), the
/// streets (12–13) or the communities (14), each the union of its grids, from
/// GET /v1/grids/outlines.
async function drawAreas(request, bbox) {
  const zoom = map.getZoom();
  const level = zoom < 12 ? "district" : zoom < 14 ? "street" : "community";
  let features;
  try {
    features = await api(`/v1/grids/outlines?level=${level}&bbox=${bbox}`);
  } catch (e) {
    if (request === gridRequest) refused(e);
    return;
  }
  if (request !== gridRequest) return;
  if (areaLayer) areaLayer.remove();
  areaLayer = L.geoJSON(features, {
    style: (f) => ({
      color: level === "district" ? "#343a40" : communityColour(f.properties.code),
      weight: level === "district" ? 3 : 2,
      fillOpacity: 0.04,
      className: `area area-${level}`,
    }),
    onEachFeature: (f, layer) => layer.bindTooltip(`${f.properties.name} ${f.properties.code}`, { sticky: true }),
  }).addTo(map);
  areaLayer.bringToBack();
  document.getElementById("map-hint").dataset.areas = String(features.features.length);
  hint("zoom_in");
}

/// The cases of a queue as markers; `open(id)` when one is clicked.
export function showCases(cases, open) {
  caseLayer.clearLayers();
  for (const c of cases) {
    if (!c.gcj02) continue;
    const [lon, lat] = c.gcj02;
    const marker = L.circleMarker([lat, lon], {
      radius: c.overdue ? 9 : 7,
      color: c.overdue ? "#c92a2a" : "#212529",
      weight: c.overdue ? 3 : 1,
      fillColor: STATUS_COLOURS[c.status] || "#495057",
      fillOpacity: 0.9,
      className: `case-marker status-${c.status}${c.overdue ? " overdue" : ""}`,
    });
    marker.bindTooltip(`${statusLabel(c.status)}${c.overdue ? " · " + t("overdue") : ""} · ${c.summary || c.id}`);
    marker.on("click", () => open(c.id));
    marker.addTo(caseLayer);
  }
}

export function focus(gcj02, zoom = 17) {
  if (gcj02) map.setView([gcj02[1], gcj02[0]], Math.max(zoom, map.getZoom()));
}

/// A patrol track (GeoJSON from …/track, GCJ-02): segments as lines, check-ins as dots.
export function showTrack(geojson) {
  trackLayer.clearLayers();
  if (!geojson) return;
  const layer = L.geoJSON(geojson, {
    style: () => ({ color: "#e8590c", weight: 4, opacity: 0.85 }),
    pointToLayer: (f, latlng) =>
      L.circleMarker(latlng, { radius: 5, color: "#0b7285", fillColor: "#fff", fillOpacity: 1, weight: 2 }),
  }).addTo(trackLayer);
  const bounds = layer.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { maxZoom: 17, padding: [20, 20] });
}

/// Lets the hotline desk pick a point (GCJ-02) on the map; `null` stops.
export function pickPoint(handler) {
  pickLayer.clearLayers();
  pickHandler = handler
    ? (latlng) => {
        pickLayer.clearLayers();
        L.circleMarker(latlng, { radius: 8, color: "#c2255c", weight: 3 }).addTo(pickLayer);
        handler(latlng);
      }
    : null;
}
