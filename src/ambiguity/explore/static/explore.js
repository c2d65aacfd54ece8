"use strict";
// The explorer: Figure 2 on a canvas, an SVG layer with one element per drawn point
// (data-segment-id, for scripts and tests; built in chunks after the first paint so
// 100k points stay responsive), filters, a sortable paged table, and URL state.

const PAGE = 50;
const CHUNK = 4000; // overlay elements per animation frame
const M = { l: 46, r: 12, t: 12, b: 40 };
// Above D.dense_above shown points the scatter is binned per pixel (the counts stay exact) and
// there is no per-point SVG layer (a million elements would stall the page).
let D = null;
const S = { model: 0, q: new Set(), label: "", split: "", metacol: "", metaval: "", smin: "", smax: "", stab: "", sort: "score", desc: true, page: 0 };
let shown = new Int32Array(0); // indices of the points passing the filters
let selected = new Set(); // indices
let grid = null;
let overlayGen = 0;
const briefs = new Map();
const $ = id => document.getElementById(id);

function readURL() {
  const p = new URLSearchParams(location.search);
  const names = D.models.map(m => m.name);
  if (p.get("model") && names.includes(p.get("model"))) S.model = names.indexOf(p.get("model"));
  S.q = new Set((p.get("q") || "").split(",").filter(q => D.quadrants.includes(q)));
  for (const k of ["label", "split", "metacol", "metaval", "smin", "smax", "stab"]) S[k] = p.get(k) || "";
  if (p.get("sort")) S.sort = p.get("sort");
  S.desc = p.get("desc") !== "0";
  S.page = Math.max(0, parseInt(p.get("page") || "0", 10) || 0);
}

function writeURL() {
  const p = new URLSearchParams();
  if (D.models.length) p.set("model", D.models[S.model].name);
  if (S.q.size) p.set("q", [...S.q].join(","));
  for (const k of ["label", "split", "metacol", "metaval", "smin", "smax", "stab"]) if (S[k] !== "") p.set(k, S[k]);
  if (S.sort !== "score") p.set("sort", S.sort);
  if (!S.desc) p.set("desc", "0");
  if (S.page) p.set("page", String(S.page));
  const qs = p.toString();
  history.replaceState(null, "", qs ? "?" + qs : location.pathname);
}

function model() { return D.models[S.model] || null; }

function applyFilters() {
  const m = model();
  const lab = S.label === "" ? -2 : D.label.values.indexOf(S.label);
  const spl = S.split === "" ? -2 : D.split.values.indexOf(S.split);
  const meta = S.metacol && D.meta[S.metacol] ? D.meta[S.metacol] : null;
  const mv = meta && S.metaval !== "" ? meta.values.indexOf(S.metaval) : -2;
  const qs = new Set([...S.q].map(q => D.quadrants.indexOf(q)));
  const lo = S.smin === "" ? null : +S.smin, hi = S.smax === "" ? null : +S.smax;
  const st = S.stab === "" || !m || !m.stability ? null : +S.stab;
  const out = [];
  for (let i = 0; i < D.n; i++) {
    if (lab !== -2 && D.label.codes[i] !== lab) continue;
    if (spl !== -2 && D.split.codes[i] !== spl) continue;
    if (mv !== -2 && meta.codes[i] !== mv) continue;
    if (qs.size && (!m || !qs.has(m.q[i]))) continue;
    const s = D.score[i];
    if (lo !== null && (s === null || s < lo)) continue;
    if (hi !== null && (s === null || s > hi)) continue;
    if (st !== null && (m.stability[i] === null || m.stability[i] < st)) continue;
    out.push(i);
  }
  shown = Int32Array.from(out);
}

// -- the scatter ---------------------------------------------------------------------------
function geometry() {
  const c = $("plot");
  const w = c.clientWidth, h = c.clientHeight;
  return { w, h, pw: w - M.l - M.r, ph: h - M.t - M.b };
}
function px(g, x) { return M.l + x * g.pw; }
function py(g, y) { return M.t + (1 - y) * g.ph; }

function draw() {
  const c = $("plot"), g = geometry(), dpr = window.devicePixelRatio || 1;
  document.body.dataset.scatter = "points";
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
  const r = shown.length > 20000 ? 1.4 : shown.length > 3000 ? 2.2 : 3.2;
  if (shown.length > D.dense_above) drawDensity(ctx, g, m);
  for (let qi = 0; qi < D.quadrants.length && shown.length <= D.dense_above; qi++) {
    ctx.fillStyle = D.colours[D.quadrants[qi]];
    for (const i of shown) {
      if (m.q[i] !== qi || m.x[i] === null || m.y[i] === null) continue;
      const X = px(g, m.x[i]), Y = py(g, m.y[i]);
      ctx.globalAlpha = m.stability ? 0.15 + 0.85 * (m.stability[i] ?? 0) : 0.75;
      if (r > 2) { ctx.beginPath(); ctx.arc(X, Y, r, 0, 6.2832); ctx.fill(); } else ctx.fillRect(X - r, Y - r, 2 * r, 2 * r);
      const key = ((X / 8) | 0) * 4096 + ((Y / 8) | 0); // a number: no string per point
      let cell = grid.get(key); if (!cell) grid.set(key, cell = []); cell.push(i);
    }
  }
  if (shown.length > D.dense_above) for (const i of shown) { // hit-testing cells only (the picture is the density)
    if (m.q[i] < 0 || m.x[i] === null || m.y[i] === null) continue;
    const key = ((px(g, m.x[i]) / 8) | 0) * 4096 + ((py(g, m.y[i]) / 8) | 0);
    let cell = grid.get(key); if (!cell) grid.set(key, cell = []); cell.push(i);
  }
  ctx.globalAlpha = 1; ctx.strokeStyle = "#000"; ctx.lineWidth = 1.2;
  for (const i of selected) {
    if (m.x[i] === null || m.y[i] === null) continue;
    ctx.beginPath(); ctx.arc(px(g, m.x[i]), py(g, m.y[i]), r + 2, 0, 6.2832); ctx.stroke();
  }
}

function drawDensity(ctx, g, m) {
  // One pixel per bin: its colour is the quadrant with most points there, its opacity the
  // log of the count, so a million points read as density rather than a blot.
  const W = Math.max(1, Math.round(g.pw)), H = Math.max(1, Math.round(g.ph)), nq = D.quadrants.length;
  const counts = new Uint32Array(W * H * nq);
  for (const i of shown) {
    const q = m.q[i], x = m.x[i], y = m.y[i];
    if (q < 0 || x === null || y === null) continue;
    const bx = Math.min(W - 1, (x * W) | 0), by = Math.min(H - 1, ((1 - y) * H) | 0);
    counts[(by * W + bx) * nq + q]++;
  }
  const rgb = D.quadrants.map(q => { const h = D.colours[q].replace("#", ""); return [0, 2, 4].map(k => parseInt(h.slice(k, k + 2), 16)); });
  let top = 1;
  for (let p = 0; p < W * H; p++) { let t = 0; for (let q = 0; q < nq; q++) t += counts[p * nq + q]; if (t > top) top = t; }
  const img = new ImageData(W, H), px4 = img.data, lt = Math.log1p(top);
  for (let p = 0; p < W * H; p++) {
    let t = 0, best = 0;
    for (let q = 0; q < nq; q++) { const c = counts[p * nq + q]; t += c; if (c > counts[p * nq + best]) best = q; }
    if (!t) continue;
    px4.set([...rgb[best], Math.round(255 * (0.3 + 0.7 * Math.log1p(t) / lt))], p * 4);
  }
  const off = document.createElement("canvas"); off.width = W; off.height = H;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.globalAlpha = 1; ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, M.l, M.t, g.pw, g.ph);
  document.body.dataset.scatter = "density";
}

function buildOverlay() {
  // One <circle data-segment-id> per drawn point, at its position: scripts and tests address
  // points through it; the canvas does the drawing and the hit-testing (the layer ignores the mouse).
  const gen = ++overlayGen, svg = $("overlay"), m = model(), g = geometry();
  svg.replaceChildren();
  svg.setAttribute("width", g.w); svg.setAttribute("height", g.h);
  document.body.removeAttribute("data-points-ready");
  const todo = m && shown.length <= D.dense_above ? Array.from(shown).filter(i => m.x[i] !== null && m.y[i] !== null && m.q[i] >= 0) : [];
  document.body.dataset.overlay = m && shown.length > D.dense_above ? "off" : "on";
  let k = 0;
  const step = () => {
    if (gen !== overlayGen) return;
    const frag = document.createDocumentFragment();
    for (const end = Math.min(todo.length, k + CHUNK); k < end; k++) {
      const i = todo[k], c = document.createElementNS("http://www.w3.org/2000/svg", "circle");
      c.setAttribute("cx", px(g, m.x[i]).toFixed(1)); c.setAttribute("cy", py(g, m.y[i]).toFixed(1)); c.setAttribute("r", "3");
      c.setAttribute("data-segment-id", D.ids[i]); c.setAttribute("data-quadrant", D.quadrants[m.q[i]]);
      frag.append(c);
    }
    svg.append(frag);
    if (k < todo.length) requestAnimationFrame(step);
    else document.body.setAttribute("data-points-ready", String(todo.length));
  };
  requestAnimationFrame(step);
}

function nearest(ev) {
  const m = model(); if (!m || !grid) return -1;
  const rect = $("plot").getBoundingClientRect(), g = geometry();
  const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
  let best = -1, bd = 7 * 7;
  const cx = (x / 8) | 0, cy = (y / 8) | 0;
  for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
    for (const i of grid.get((cx + dx) * 4096 + (cy + dy)) || []) {
      const d = (px(g, m.x[i]) - x) ** 2 + (py(g, m.y[i]) - y) ** 2;
      if (d < bd) { bd = d; best = i; }
    }
  }
  return best;
}

let drag = null;
function onDown(ev) { drag = { x: ev.clientX, y: ev.clientY, moved: false, add: ev.shiftKey }; }
function onMove(ev) {
  const tip = $("tooltip");
  if (drag) {
    if (Math.abs(ev.clientX - drag.x) + Math.abs(ev.clientY - drag.y) > 4) drag.moved = true;
    if (drag.moved) {
      const wrap = $("plot-wrap").getBoundingClientRect(), b = $("brush");
      b.hidden = false;
      b.style.left = Math.min(drag.x, ev.clientX) - wrap.left + "px"; b.style.top = Math.min(drag.y, ev.clientY) - wrap.top + "px";
      b.style.width = Math.abs(ev.clientX - drag.x) + "px"; b.style.height = Math.abs(ev.clientY - drag.y) + "px";
      tip.hidden = true;
      return;
    }
  }
  const i = nearest(ev);
  if (i < 0) { tip.hidden = true; return; }
  const m = model(), wrap = $("plot-wrap").getBoundingClientRect();
  tip.hidden = false;
  tip.style.left = ev.clientX - wrap.left + 14 + "px"; tip.style.top = ev.clientY - wrap.top + 10 + "px";
  tip.replaceChildren(el("strong", { text: D.ids[i] }), " ", chip(D.quadrants[m.q[i]]),
    el("div", { class: "muted", text: `label ${D.label.values[D.label.codes[i]] ?? "–"} · unimodal ${fmt(m.x[i])} · fusion ${fmt(m.y[i])} · score ${fmt(D.score[i])}` }),
    el("div", { class: "tip-text", text: briefs.has(i) ? briefs.get(i) : "…" }));
  if (!briefs.has(i)) {
    briefs.set(i, "…");
    getJSON("/api/brief/" + encodeURIComponent(D.ids[i])).then(b => { briefs.set(i, b.transcript || "(no transcript)"); onMove(ev); }).catch(() => briefs.delete(i));
  }
}
function onUp(ev) {
  if (!drag) return;
  const d = drag; drag = null;
  $("brush").hidden = true;
  if (!d.moved) {
    const i = nearest(ev);
    if (i >= 0) location.href = segmentUrl(D.ids[i]);
    return;
  }
  const m = model(), rect = $("plot").getBoundingClientRect(), g = geometry();
  const x0 = Math.min(d.x, ev.clientX) - rect.left, x1 = Math.max(d.x, ev.clientX) - rect.left;
  const y0 = Math.min(d.y, ev.clientY) - rect.top, y1 = Math.max(d.y, ev.clientY) - rect.top;
  if (!d.add) selected = new Set();
  for (const i of shown) {
    if (!m || m.x[i] === null || m.y[i] === null) continue;
    const X = px(g, m.x[i]), Y = py(g, m.y[i]);
    if (X >= x0 && X <= x1 && Y >= y0 && Y <= y1) selected.add(i);
  }
  refresh(false);
}

// -- table -----------------------------------------------------------------------------------
function columns() {
  // every sort key is a number: ids are sorted in the points document, so the index is the id's
  // order, and categorical codes follow their sorted values (quadrants: red, green, blue, yellow)
  const m = model();
  const code = (c, i) => (c.codes[i] >= 0 ? c.codes[i] : null);
  const cols = [
    { key: "segment_id", title: "segment", get: i => D.ids[i], key_of: i => i },
    { key: "quadrant", title: "quadrant", get: i => (m && m.q[i] >= 0 ? D.quadrants[m.q[i]] : null), key_of: i => (m && m.q[i] >= 0 ? m.q[i] : null) },
    { key: "label", title: "label", get: i => D.label.values[D.label.codes[i]] ?? null, key_of: i => code(D.label, i) },
    { key: "split", title: "split", get: i => D.split.values[D.split.codes[i]] ?? null, key_of: i => code(D.split, i) },
    { key: "p_unimodal", title: "p unimodal", get: i => (m ? m.x[i] : null), num: true },
    { key: "p_fusion", title: "p fusion", get: i => (m ? m.y[i] : null), num: true },
    { key: "score", title: "score", get: i => D.score[i], num: true },
  ];
  if (m && m.stability) cols.push({ key: "stability", title: "stability", get: i => m.stability[i], num: true });
  for (const c of Object.keys(D.components)) cols.push({ key: "c:" + c, title: c, get: i => D.components[c][i], num: true });
  if (S.metacol && D.meta[S.metacol]) { const mc = D.meta[S.metacol]; cols.push({ key: "meta", title: S.metacol, get: i => mc.values[mc.codes[i]] ?? null, key_of: i => code(mc, i) }); }
  return cols;
}

function renderTable() {
  const cols = columns();
  const col = cols.find(c => c.key === S.sort) || cols.find(c => c.key === "score");
  const dir = S.desc ? -1 : 1;
  const keyOf = col.key_of || col.get;
  const keys = new Float64Array(D.n);
  for (const i of shown) { const v = keyOf(i); keys[i] = v === null || v === undefined ? Infinity : dir * v; } // missing last
  const rows = Int32Array.from(shown).sort((a, b) => (keys[a] - keys[b]) || (a - b));
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  S.page = Math.min(S.page, pages - 1);
  const head = el("tr", {}, el("th", { text: "sel" }), ...cols.map(c => el("th", {
    "data-key": c.key, "aria-sort": c.key === col.key ? (S.desc ? "descending" : "ascending") : null, class: "sortable",
    onclick: () => { if (S.sort === c.key) S.desc = !S.desc; else { S.sort = c.key; S.desc = !!c.num; } S.page = 0; refresh(false); },
  }, c.title + (c.key === col.key ? (S.desc ? " ▾" : " ▴") : ""))));
  $("table").tHead.replaceChildren(head);
  const body = document.createDocumentFragment();
  for (const i of rows.subarray(S.page * PAGE, S.page * PAGE + PAGE)) {
    const box = el("input", { type: "checkbox", "aria-label": "select " + D.ids[i], checked: selected.has(i),
      onchange: e => { if (e.target.checked) selected.add(i); else selected.delete(i); refresh(false, false); } });
    body.append(el("tr", { "data-segment-id": D.ids[i] }, el("td", {}, box), ...cols.map(c => {
      const v = c.get(i);
      if (c.key === "segment_id") return el("td", {}, el("a", { href: segmentUrl(v), text: v }));
      if (c.key === "quadrant") return el("td", {}, v ? chip(v) : "–");
      return el("td", { class: c.num ? "num" : null, text: c.num ? fmt(v) : (v ?? "–") });
    })));
  }
  $("table").tBodies[0].replaceChildren(body);
  const nav = (label, page, off) => el("button", { type: "button", disabled: off, onclick: () => { S.page = page; refresh(false); } }, label);
  $("pager").replaceChildren(nav("‹ prev", S.page - 1, S.page === 0), ` page ${S.page + 1} of ${pages} (${rows.length} rows) `, nav("next ›", S.page + 1, S.page >= pages - 1));
}

// -- side panel, actions ---------------------------------------------------------------------------
function renderSide() {
  const m = model(), counts = D.quadrants.map(() => 0);
  if (m) for (const i of shown) if (m.q[i] >= 0) counts[m.q[i]]++;
  $("legend").replaceChildren(...D.quadrants.map((q, k) => el("li", {}, chip(q), ` ${D.meaning[q]}: `, el("strong", { "data-count": q, text: String(counts[k]) }))));
  $("summary").textContent = `${shown.length} of ${D.n} segments shown · ${D.scheme} quadrants${D.fusion ? " · fusion " + D.fusion : ""}`;
  $("selinfo").textContent = selected.size ? `${selected.size} selected` : `none: actions apply to the ${shown.length} shown`;
  const comps = Object.keys(D.weights).map(c => D.components[c]
    ? el("li", {}, el("strong", { text: c }), ` weight ${D.weights[c]}`)
    : el("li", { class: "muted", "data-unavailable": c }, `${c}: unavailable (${D.missing[c] || "no value"})`));
  $("components").replaceChildren(...comps);
}

function targetIds() { return (selected.size ? [...selected] : Array.from(shown)).map(i => D.ids[i]); }
function actionBody(extra) { return JSON.stringify({ ids: targetIds(), modality: $("modality").value, model: model() ? model().name : null, ...extra }); }

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
  $("status").textContent = `exported ${targetIds().length} segments (${format})`;
}

// -- wiring -------------------------------------------------------------------------------------
function refresh(refilter = true, overlay = refilter) {
  if (refilter) applyFilters();
  writeURL();
  draw();
  renderSide();
  renderTable();
  if (document.body.dataset.view !== "explore") performance.mark("explore:first-render"); // read by bench/explore.py
  document.body.dataset.view = "explore";
  if (overlay) buildOverlay(); // after the paint: its chunks run in later frames
}

function controls() {
  const opt = (v, t) => el("option", { value: v, text: t ?? v });
  $("model").replaceChildren(...D.models.map((m, k) => opt(String(k), m.name)));
  $("model").value = String(S.model);
  $("quadrants").replaceChildren(el("legend", { text: "Quadrant" }), ...D.quadrants.map(q => el("label", { class: "qbox" },
    el("input", { type: "checkbox", value: q, "data-quadrant": q, checked: S.q.has(q), onchange: e => { if (e.target.checked) S.q.add(q); else S.q.delete(q); S.page = 0; refresh(); } }), chip(q))));
  $("label").append(...D.label.values.map(v => opt(v)));
  $("split").append(...D.split.values.map(v => opt(v)));
  $("metacol").append(...Object.keys(D.meta).map(v => opt(v)));
  const metaValues = () => $("metaval").replaceChildren(opt("", "all"), ...(D.meta[S.metacol] ? D.meta[S.metacol].values.map(v => opt(v)) : []));
  metaValues();
  for (const k of ["label", "split", "metacol", "metaval", "smin", "smax", "stab"]) {
    $(k).value = S[k];
    $(k).addEventListener("change", () => { S[k] = $(k).value; if (k === "metacol") { S.metaval = ""; metaValues(); } S.page = 0; refresh(); });
  }
  $("stab-wrap").hidden = !D.models.some(m => m.stability);
  $("model").addEventListener("change", () => { S.model = +$("model").value; refresh(); });
  $("reset").addEventListener("click", () => { location.search = ""; });
  $("clear").addEventListener("click", () => { selected = new Set(); refresh(false); });
  $("addtask").addEventListener("click", addTask);
  $("csv").addEventListener("click", () => exportAs("csv"));
  $("ls").addEventListener("click", () => exportAs("label-studio"));
  const c = $("plot");
  c.addEventListener("mousedown", onDown);
  c.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  c.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  let t = null;
  window.addEventListener("resize", () => { clearTimeout(t); t = setTimeout(() => refresh(false, true), 150); });
}

async function main() {
  try { D = await getJSON("/api/points"); } catch (e) { $("problem").hidden = false; $("problem").textContent = "error: " + e.message; return; }
  for (const m of D.models) m.y = D.y; // the fusion model's p(correct): one column for every panel
  if (D.problem) { $("problem").hidden = false; $("problem").textContent = D.problem; document.body.classList.add("no-predictions"); }
  readURL();
  controls();
  refresh();
}
main();
