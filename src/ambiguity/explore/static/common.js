"use strict";
// Shared helpers of the explorer pages. Text from the store is always set as text, never as HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}
function fmt(v, digits = 3) {
  if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "–";
  return typeof v === "number" ? v.toFixed(digits) : String(v);
}
function segmentUrl(id) { return "/segment/" + encodeURIComponent(id); }
async function getJSON(url, opts) {
  const r = await fetch(url, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || (r.status + " " + r.statusText));
  return body;
}
function table(columns, rows) {
  const t = el("table", { class: "data" });
  t.append(el("thead", {}, el("tr", {}, ...columns.map(c => el("th", { text: c.title || c.key })))));
  const tb = el("tbody");
  for (const r of rows) tb.append(el("tr", {}, ...columns.map(c => { const v = c.render ? c.render(r) : fmt(r[c.key]); return el("td", {}, v); })));
  t.append(tb);
  return t;
}
function chip(q) { return el("span", { class: "chip q-" + q, "data-quadrant": q, text: q || "–" }); }
