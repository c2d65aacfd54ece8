"use strict";
// The explorer: Figure 2 on a canvas, filters, a sortable paged table, and URL state. The server
// filters, counts, sorts and pages (/api/table) and draws the scatter's data (/api/scatter): the
// shown points when there are at most D.dense_above of them, each also an element of an SVG layer
// (data-segment-id, for scripts and tests; built in chunks after the first paint), or else a
// per-pixel density grid with no per-point layer. The page never holds every row.

const PAGE = 50;
const CHUNK = 4000; // overlay elements per animation frame
const M = { l: 46, r: 12, t: 12, b: 40 };
let D = null; // the summary: codes, models, weights, exact counts (/api/points)
const S = { model: 0, q: new Set(), label: "", split: "", metacol: "", metaval: "", smin: "", smax: "", stab: "", sort: "score", desc: true, page: 0 };
let P = null; // points mode: { ids, x, y, q, stability, pos: Map id -> k }
let G = null; // density mode: { W, H, total: Uint32Array, best: Uint8Array, n }
let T = null; // the table's page: { total, counts, columns, rows }
let selected = new Map(); // segment id -> [x, y] (p(correct) of the model and of fusion when selected)
let selBox = null; // density mode: { box: [x0, x1, y0, y1], count } (resolved by the server)
let grid = null;
let overlayGen = 0, allGen = 0, tableGen = 0;
const briefs = new Map();
const FILTERS = ["label", "split", "metacol", "metaval", "smin", "smax", "stab"];
const $ = id => document.getElementById(id);

function readURL() {
  const p = new URLSearchParams(location.search);
  const names = D.models.map(m => m.name);
  if (p.get("model") && names.includes(p.get("model"))) S.model = names.indexOf(p.get("model"));
  S.q = new Set((p.get("q") || "").split(",").filter(q => D.quadrants.includes(q)));
  for (const k of FILTERS) S[k] = p.get(k) || "";
  if (p.get("sort")) S.sort = p.get("sort");
  S.desc = p.get("desc") !== "0";
  S.page = Math.max(0, parseInt(p.get("page") || "0", 10) || 0);
}

function filterParams() {
  const p = new URLSearchParams();
  if (D.models.length) p.set("model", D.models[S.model].name);
  if (S.q.size) p.set("q", [...S.q].join(","));
  for (const k of FILTERS) if (S[k] !== "") p.set(k, S[k]);
  return p;
}

function writeURL() {
  const p = filterParams();
  if (S.sort !== "score") p.set("sort", S.sort);
  if (!S.desc) p.set("desc", "0");
  if (S.page) p.set("page", String(S.page));
  const qs = p.toString();
  history.replaceState(null, "", qs ? "?" + qs : location.pathname);
}

function model() { return D.models[S.model] || null; }

// -- the server's answers ------------------------------------------------------------------------
async function loadScatter() {
  const g = geometry(), p = filterParams();
  p.set("w", String(Math.max(1, Math.round(g.pw)))); p.set("h", String(Math.max(1, Math.round(g.ph))));
  const r = await fetch("/api/scatter?" + p);
  if (!r.ok) throw new Error(((await r.json().catch(() => ({}))).error) || r.status);
  if ((r.headers.get("Content-Type") || "").startsWith("application/json")) {
    const d = await r.json();
    d.pos = new Map(d.ids.map((s, k) => [s, k]));
    return { P: d, G: null };
  }
  const [W, H] = r.headers.get("X-Grid").split(",").map(Number), buf = await r.arrayBuffer();
  return { P: null, G: { W, H, total: new Uint32Array(buf, 0, W * H), best: new Uint8Array(buf, 4 * W * H, W * H), n: +r.headers.get("X-Drawn") } };
}

function tableParams(extra) {
  const p = filterParams();
  p.set("sort", S.sort); p.set("desc", S.desc ? "1" : "0");
  p.set("offset", String(S.page * PAGE)); p.set("limit", String(PAGE));
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p;
}
function loadTable() { return getJSON("/api/table?" + tableParams()); }

// -- the scatter ---------------------------------------------------------------------------
function geometry() {
  const c = $("plot");
  const w = c.clientWidth, h = c.clientHeight;
  return { w, h, pw: w - M.l - M.r, ph: h - M.t - M.b };
}
function px(g, x) { return M.l + x * g.pw; }
function py(g, y) { return M.t + (1 - y) * g.ph; }
function dataX(g, X) { return (X - M.l) / g.pw; }
function dataY(g, Y) { return 1 - (Y - M.t) / g.ph; }

function draw() {
  const c = $("plot"), g = geometry(), dpr = window.devicePixelRatio || 1;
  document.body.dataset.scatter = G ? "density" : "points";
  c.width = Math.round(g.w * dpr); c.height = Math.round(g.h * dpr);
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, g.w, g.h);
  const m = model();
  const t = D.threshold;
  const spans = { yellow: [0, t, 0, t], red: [t, 1, 0, t], green: [0, t, t, 1], blue: [t, 1, t, 1] };
  for (const [q, [x0, x1, y0, y1]] of Object.entries(spans)) {
    ctx.globalAlpha = 0.08; ctx.fillStyle = D.colours[q];
    ctx.fillRect(px(g, x0), py(g, y1), px(g, x1) - px(g, x0), py(g, y0) - py(g, y1));
  }
  ctx.globalAlpha = 1; ctx.strokeStyle = "#666"; ctx.lineWidth = 1;
  ctx.strokeRect(M.l, M.t, g.pw, g.ph);
  ctx.beginPath(); ctx.moveTo(px(g, t), M.t); ctx.lineTo(px(g, t), M.t + g.ph); ctx.moveTo(M.l, py(g, t)); ctx.lineTo(M.l + g.pw, py(g, t)); ctx.stroke();
  ctx.setLineDash([4, 4]); ctx.beginPath(); ctx.moveTo(px(g, 0), py(g, 0)); ctx.lineTo(px(g, 1), py(g, 1)); ctx.stroke(); ctx.setLineDash([]);
  ctx.fillStyle = "#333"; ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "center";
  for (let v = 0; v <= 1.0001; v += 0.25) {
    ctx.fillText(v.toFixed(2), px(g, v), M.t + g.ph + 16);
    ctx.save(); ctx.textAlign = "right"; ctx.fillText(v.toFixed(2), M.l - 6, py(g, v) + 4); ctx.restore();
  }
  ctx.fillText(m ? `${m.name}: p(correct label)` : "no predictions", M.l + g.pw / 2, g.h - 6);
  ctx.save(); ctx.translate(12, M.t + g.ph / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(`${D.fusion || "fusion"}: p(correct label)`, 0, 0); ctx.restore();
  grid = new Map();
  if (!m) return;
  if (G) drawDensity(ctx, g);
  const r = P && P.n > 20000 ? 1.4 : P && P.n > 3000 ? 2.2 : 3.2;
  for (let qi = 0; P && qi < D.quadrants.length; qi++) {
    ctx.fillStyle = D.colours[D.quadrants[qi]];
    for (let k = 0; k < P.n; k++) {
      if (P.q[k] !== qi) continue;
      const X = px(g, P.x[k]), Y = py(g, P.y[k]);
      ctx.globalAlpha = P.stability ? 0.15 + 0.85 * (P.stability[k] ?? 0) : 0.75;
      if (r > 2) { ctx.beginPath(); ctx.arc(X, Y, r, 0, 6.2832); ctx.fill(); } else ctx.fillRect(X - r, Y - r, 2 * r, 2 * r);
      const key = ((X / 8) | 0) * 4096 + ((Y / 8) | 0); // a number: no string per point
      let cell = grid.get(key); if (!cell) grid.set(key, cell = []); cell.push(k);
    }
  }
  ctx.globalAlpha = 1; ctx.strokeStyle = "#000"; ctx.lineWidth = 1.2;
  for (const [id, xy] of selected) {
    const k = P ? P.pos.get(id) : undefined;
    const [x, y] = k !== undefined ? [P.x[k], P.y[k]] : xy;
    if (x === null || y === null || x === undefined) continue;
    ctx.beginPath(); ctx.arc(px(g, x), py(g, y), r + 2, 0, 6.2832); ctx.stroke();
  }
  if (selBox) {
    const [x0, x1, y0, y1] = selBox.box;
    ctx.setLineDash([3, 3]); ctx.strokeRect(px(g, x0), py(g, y1), px(g, x1) - px(g, x0), py(g, y0) - py(g, y1)); ctx.setLineDash([]);
  }
}

function drawDensity(ctx, g) {
  // One pixel per bin (binned by the server, counts exact): its colour is the quadrant with most
  // points there, its opacity the log of the count, so a million points read as density.
  const { W, H, total, best } = G;
  const rgb = D.quadrants.map(q => { const h = D.colours[q].replace("#", ""); return [0, 2, 4].map(k => parseInt(h.slice(k, k + 2), 16)); });
  let top = 1;
  for (let p = 0; p < W * H; p++) if (total[p] > top) top = total[p];
  const img = new ImageData(W, H), px4 = img.data, lt = Math.log1p(top);
  for (let p = 0; p < W * H; p++) {
    const t = total[p];
    if (!t) continue;
    const c = rgb[best[p]], o = p * 4;
    px4[o] = c[0]; px4[o + 1] = c[1]; px4[o + 2] = c[2]; px4[o + 3] = Math.round(255 * (0.3 + 0.7 * Math.log1p(t) / lt));
  }
  const off = document.createElement("canvas"); off.width = W; off.height = H;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.globalAlpha = 1; ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, M.l, M.t, g.pw, g.ph);
}

function buildOverlay() {
  // One <circle data-segment-id> per drawn point, at its position: scripts and tests address
  // points through it; the canvas does the drawing and the hit-testing (the layer ignores the mouse).
  const gen = ++overlayGen, svg = $("overlay"), g = geometry();
  svg.replaceChildren();
  svg.setAttribute("width", g.w); svg.setAttribute("height", g.h);
  document.body.dataset.overlay = P ? "on" : "off";
  const n = P ? P.n : 0;
  let k = 0;
  const step = () => {
    if (gen !== overlayGen) return;
    const frag = document.createDocumentFragment();
    for (const end = Math.min(n, k + CHUNK); k < end; k++) {
      const c = document.createElementNS("http://www.w3.org/2000/svg", "circle");
      c.setAttribute("cx", px(g, P.x[k]).toFixed(1)); c.setAttribute("cy", py(g, P.y[k]).toFixed(1)); c.setAttribute("r", "3");
      c.setAttribute("data-segment-id", P.ids[k]); c.setAttribute("data-quadrant", D.quadrants[P.q[k]]);
      frag.append(c);
    }
    svg.append(frag);
    if (k < n) requestAnimationFrame(step);
    else document.body.setAttribute("data-points-ready", String(n));
  };
  requestAnimationFrame(step);
}

// -- hover, click, box ------------------------------------------------------------------------
function nearestLocal(ev) {
  if (!P || !grid) return -1;
  const rect = $("plot").getBoundingClientRect(), g = geometry();
  const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
  let best = -1, bd = 7 * 7;
  const cx = (x / 8) | 0, cy = (y / 8) | 0;
  for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
    for (const k of grid.get((cx + dx) * 4096 + (cy + dy)) || []) {
      const d = (px(g, P.x[k]) - x) ** 2 + (py(g, P.y[k]) - y) ** 2;
      if (d < bd) { bd = d; best = k; }
    }
  }
  return best;
}

let asking = false, pending = null;
async function nearestServer(ev) {
  // density mode: the server finds the nearest shown point within 7 pixels; one request at a time
  if (asking) { pending = ev; return undefined; }
  asking = true;
  const rect = $("plot").getBoundingClientRect(), g = geometry();
  const p = filterParams();
  p.set("x", dataX(g, ev.clientX - rect.left)); p.set("y", dataY(g, ev.clientY - rect.top));
  p.set("rx", 7 / g.pw); p.set("ry", 7 / g.ph);
  try { return await getJSON("/api/nearest?" + p); } catch (e) { return null; } finally {
    asking = false;
    if (pending) { const e2 = pending; pending = null; if (!drag) onMove(e2); }
  }
}

function tip(ev, id, q, x, y, label, score, text) {
  const t = $("tooltip"), wrap = $("plot-wrap").getBoundingClientRect();
  t.hidden = false;
  t.style.left = ev.clientX - wrap.left + 14 + "px"; t.style.top = ev.clientY - wrap.top + 10 + "px";
  t.replaceChildren(el("strong", { text: id }), " ", chip(q),
    el("div", { class: "muted", text: `label ${label ?? "–"} · unimodal ${fmt(x)} · fusion ${fmt(y)} · score ${fmt(score)}` }),
    el("div", { class: "tip-text", text }));
}

let drag = null;
function onDown(ev) { drag = { x: ev.clientX, y: ev.clientY, moved: false, add: ev.shiftKey }; }
async function onMove(ev) {
  if (drag) {
    if (Math.abs(ev.clientX - drag.x) + Math.abs(ev.clientY - drag.y) > 4) drag.moved = true;
    if (drag.moved) {
      const wrap = $("plot-wrap").getBoundingClientRect(), b = $("brush");
      b.hidden = false;
      b.style.left = Math.min(drag.x, ev.clientX) - wrap.left + "px"; b.style.top = Math.min(drag.y, ev.clientY) - wrap.top + "px";
      b.style.width = Math.abs(ev.clientX - drag.x) + "px"; b.style.height = Math.abs(ev.clientY - drag.y) + "px";
      $("tooltip").hidden = true;
      return;
    }
  }
  if (G) {
    const r = await nearestServer(ev);
    if (r === undefined) return; // superseded by a later move
    if (!r || !r.segment_id) { $("tooltip").hidden = true; return; }
    tip(ev, r.segment_id, r.quadrant, r.p_unimodal, r.p_fusion, r.label, r.score, r.transcript || "(no transcript)");
    return;
  }
  const k = nearestLocal(ev);
  if (k < 0) { $("tooltip").hidden = true; return; }
  const id = P.ids[k], b = briefs.get(id);
  tip(ev, id, D.quadrants[P.q[k]], P.x[k], P.y[k], b && b.label, b && b.score, b ? b.transcript || "(no transcript)" : "…");
  if (!briefs.has(id)) {
    briefs.set(id, null);
    getJSON("/api/brief/" + encodeURIComponent(id)).then(r => { briefs.set(id, r); onMove(ev); }).catch(() => briefs.delete(id));
  }
}
async function onUp(ev) {
  if (!drag) return;
  const d = drag; drag = null;
  $("brush").hidden = true;
  if (!d.moved) {
    if (G) { const r = await nearestServer(ev); if (r && r.segment_id) location.href = segmentUrl(r.segment_id); return; }
    const k = nearestLocal(ev);
    if (k >= 0) location.href = segmentUrl(P.ids[k]);
    return;
  }
  const rect = $("plot").getBoundingClientRect(), g = geometry();
  const X0 = Math.min(d.x, ev.clientX) - rect.left, X1 = Math.max(d.x, ev.clientX) - rect.left;
  const Y0 = Math.min(d.y, ev.clientY) - rect.top, Y1 = Math.max(d.y, ev.clientY) - rect.top;
  if (!d.add) { selected = new Map(); selBox = null; }
  if (P) {
    for (let k = 0; k < P.n; k++) {
      const X = px(g, P.x[k]), Y = py(g, P.y[k]);
      if (X >= X0 && X <= X1 && Y >= Y0 && Y <= Y1) selected.set(P.ids[k], [P.x[k], P.y[k]]);
    }
  } else if (G) { // the server resolves the box with the filters when an action runs
    const box = [dataX(g, X0), dataX(g, X1), dataY(g, Y1), dataY(g, Y0)];
    const r = await getJSON("/api/table?" + tableParams({ box: box.join(","), limit: "0" }));
    selected = new Map(); selBox = { box, count: r.total };
  }
  refresh("draw");
}

// -- table -----------------------------------------------------------------------------------
const NUMERIC = new Set(["p_unimodal", "p_fusion", "score", "stability"]);
function title(c) {
  return { segment_id: "segment", p_unimodal: "p unimodal", p_fusion: "p fusion", meta: S.metacol }[c] || c.replace(/^c:/, "");
}

function renderTable() {
  const cols = T.columns, col = cols.includes(S.sort) ? S.sort : "score";
  const head = el("tr", {}, el("th", { text: "sel" }), ...cols.map(c => el("th", {
    "data-key": c, "aria-sort": c === col ? (S.desc ? "descending" : "ascending") : null, class: "sortable",
    onclick: () => { if (S.sort === c) S.desc = !S.desc; else { S.sort = c; S.desc = NUMERIC.has(c) || c.startsWith("c:"); } S.page = 0; refresh("table"); },
  }, title(c) + (c === col ? (S.desc ? " ▾" : " ▴") : ""))));
  $("table").tHead.replaceChildren(head);
  const body = document.createDocumentFragment();
  for (const r of T.rows) {
    const id = r.segment_id;
    const box = el("input", { type: "checkbox", "aria-label": "select " + id, checked: selected.has(id),
      onchange: e => { selBox = null; if (e.target.checked) selected.set(id, [r.p_unimodal, r.p_fusion]); else selected.delete(id); refresh("draw"); } });
    body.append(el("tr", { "data-segment-id": id }, el("td", {}, box), ...cols.map(c => {
      const v = r[c], num = NUMERIC.has(c) || c.startsWith("c:");
      if (c === "segment_id") return el("td", {}, el("a", { href: segmentUrl(v), text: v }));
      if (c === "quadrant") return el("td", {}, v ? chip(v) : "–");
      return el("td", { class: num ? "num" : null, text: num ? fmt(v) : (v ?? "–") });
    })));
  }
  $("table").tBodies[0].replaceChildren(body);
  const pages = Math.max(1, Math.ceil(T.total / PAGE));
  const nav = (label, page, off) => el("button", { type: "button", disabled: off, onclick: () => { S.page = page; refresh("table"); } }, label);
  $("pager").replaceChildren(nav("‹ prev", S.page - 1, S.page === 0), ` page ${S.page + 1} of ${pages} (${T.total} rows) `, nav("next ›", S.page + 1, S.page >= pages - 1));
}

// -- side panel, actions ---------------------------------------------------------------------------
function renderSide() {
  $("legend").replaceChildren(...D.quadrants.map(q => el("li", {}, chip(q), ` ${D.meaning[q]}: `, el("strong", { "data-count": q, text: String(T.counts[q]) }))));
  $("summary").textContent = `${T.total} of ${D.n} segments shown · ${D.scheme} quadrants${D.fusion ? " · fusion " + D.fusion : ""}`;
  $("selinfo").textContent = selected.size ? `${selected.size} selected` : selBox ? `${selBox.count} selected (box)` : `none: actions apply to the ${T.total} shown`;
  if (selBox) $("selinfo").dataset.box = selBox.box.join(","); else delete $("selinfo").dataset.box;
  const comps = Object.keys(D.weights).map(c => D.components.includes(c)
    ? el("li", {}, el("strong", { text: c }), ` weight ${D.weights[c]}`)
    : el("li", { class: "muted", "data-unavailable": c }, `${c}: unavailable (${D.missing[c] || "no value"})`));
  $("components").replaceChildren(...comps);
}

function target() {
  if (selected.size) return { ids: [...selected.keys()] };
  const p = filterParams();
  if (selBox) p.set("box", selBox.box.join(","));
  return { query: p.toString() };
}
function actionBody(extra) { return JSON.stringify({ ...target(), modality: $("modality").value, model: model() ? model().name : null, ...extra }); }

async function addTask() {
  try {
    const r = await getJSON("/api/task", { method: "POST", headers: { "Content-Type": "application/json" }, body: actionBody({ task: $("taskname").value }) });
    $("status").textContent = `task ${r.task}: ${r.added} added, ${r.items} items; run: ambiguity annotate serve --task ${r.task}`;
  } catch (e) { $("status").textContent = "error: " + e.message; }
}
async function exportAs(format) {
  const r = await fetch("/api/export", { method: "POST", headers: { "Content-Type": "application/json" }, body: actionBody({ format }) });
  if (!r.ok) { $("status").textContent = "error: " + ((await r.json()).error || r.status); return; }
  const blob = await r.blob(), a = el("a", { href: URL.createObjectURL(blob), download: format === "csv" ? "selection.csv" : "selection-label-studio.json" });
  document.body.append(a); a.click(); a.remove();
  $("status").textContent = `exported ${selected.size || (selBox ? selBox.count : T.total)} segments (${format})`;
}

// -- wiring -------------------------------------------------------------------------------------
// what: "all" (filters or model changed: scatter and table), "table" (sort or page), "draw" (selection)
async function refresh(what = "all") {
  writeURL();
  if (what === "all") {
    const gen = ++allGen;
    tableGen++; // this answer's table is newer than any table request before it
    document.body.removeAttribute("data-points-ready");
    selBox = null;
    let sc, tb;
    try { [sc, tb] = await Promise.all([loadScatter(), loadTable()]); } catch (e) { showProblem("error: " + e.message); return; }
    if (gen !== allGen) return; // a later change superseded this one
    ({ P, G } = sc); T = tb;
    if (S.page > 0 && S.page * PAGE >= T.total) { S.page = Math.max(0, Math.ceil(T.total / PAGE) - 1); writeURL(); T = await loadTable(); } // a page past the end (an old link)
  } else if (what === "table") {
    const gen = ++tableGen;
    let tb;
    try { tb = await loadTable(); } catch (e) { showProblem("error: " + e.message); return; }
    if (gen !== tableGen) return;
    T = tb;
  }
  draw();
  renderSide();
  renderTable();
  if (document.body.dataset.view !== "explore") performance.mark("explore:first-render"); // read by bench/explore.py
  document.body.dataset.view = "explore";
  if (what === "all") buildOverlay(); // after the paint: its chunks run in later frames
}

function showProblem(text) { $("problem").hidden = false; $("problem").textContent = text; }

function controls() {
  const opt = (v, t) => el("option", { value: v, text: t ?? v });
  $("model").replaceChildren(...D.models.map((m, k) => opt(String(k), m.name)));
  $("model").value = String(S.model);
  $("quadrants").replaceChildren(el("legend", { text: "Quadrant" }), ...D.quadrants.map(q => el("label", { class: "qbox" },
    el("input", { type: "checkbox", value: q, "data-quadrant": q, checked: S.q.has(q), onchange: e => { if (e.target.checked) S.q.add(q); else S.q.delete(q); S.page = 0; refresh(); } }), chip(q))));
  $("label").append(...D.label.map(v => opt(v)));
  $("split").append(...D.split.map(v => opt(v)));
  $("metacol").append(...Object.keys(D.meta).map(v => opt(v)));
  const metaValues = () => $("metaval").replaceChildren(opt("", "all"), ...(D.meta[S.metacol] ? D.meta[S.metacol].map(v => opt(v)) : []));
  metaValues();
  for (const k of FILTERS) {
    $(k).value = S[k];
    $(k).addEventListener("change", () => { S[k] = $(k).value; if (k === "metacol") { S.metaval = ""; metaValues(); } S.page = 0; refresh(); });
  }
  $("stab-wrap").hidden = !D.models.some(m => m.stability);
  $("model").addEventListener("change", () => { S.model = +$("model").value; refresh(); });
  $("reset").addEventListener("click", () => { location.search = ""; });
  $("clear").addEventListener("click", () => { selected = new Map(); selBox = null; refresh("draw"); });
  $("addtask").addEventListener("click", addTask);
  $("csv").addEventListener("click", () => exportAs("csv"));
  $("ls").addEventListener("click", () => exportAs("label-studio"));
  const c = $("plot");
  c.addEventListener("mousedown", onDown);
  c.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  c.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  let t = null;
  window.addEventListener("resize", () => { clearTimeout(t); t = setTimeout(() => refresh(), 150); });
}

async function main() {
  try { D = await getJSON("/api/points"); } catch (e) { showProblem("error: " + e.message); return; }
  if (D.problem) { showProblem(D.problem); document.body.classList.add("no-predictions"); }
  readURL();
  controls();
  refresh();
}
main();
