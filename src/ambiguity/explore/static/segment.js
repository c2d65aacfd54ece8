"use strict";
// One segment: transcript, media, probabilities, quadrants, score, attributions, features,
// neighbours, annotations. A section the store cannot fill says why; the rest still shows.
const SHORT = 600; // characters of a transcript shown before the expander
const $ = id => document.getElementById(id);
const sid = decodeURIComponent(location.pathname.replace(/^\/segment\//, ""));

function note(text, cls = "muted") { return el("p", { class: cls, text }); }
function section(id, content) { $(id).replaceChildren(...[].concat(content)); }
function failed(v) { return v && !Array.isArray(v) && v.error; }

function transcript(t) {
  if (!t) return note("(no transcript)");
  const p = el("p", { class: "transcript", id: "transcript", lang: "" });
  const chars = [...t]; // code points: never cut a non-ASCII character in half
  if (chars.length <= SHORT) { p.textContent = t; return p; }
  const short = chars.slice(0, SHORT).join("") + "…";
  p.textContent = short;
  p.dataset.truncated = "true";
  const btn = el("button", { type: "button", id: "expand", "aria-expanded": "false", "aria-controls": "transcript" }, `Show all (${chars.length} characters)`);
  btn.addEventListener("click", () => {
    const open = btn.getAttribute("aria-expanded") === "true";
    p.textContent = open ? short : t;
    p.dataset.truncated = open ? "true" : "false";
    btn.setAttribute("aria-expanded", open ? "false" : "true");
    btn.textContent = open ? `Show all (${chars.length} characters)` : "Show less";
  });
  return [p, btn];
}

// Aligned words (align group): click one to play the segment's media from it; bars under each
// word are its Praat pitch (upper) and intensity (lower) from the word_prosody group.
function words(w) {
  if (!w || !w.words || !w.words.length) return note(w && w.reason ? "no word timings: " + w.reason : "no word timings");
  const ps = w.words.map(x => x.pitch).filter(v => v !== null && v !== undefined);
  const ds = w.words.map(x => x.intensity).filter(v => v !== null && v !== undefined);
  const span = (v, lo, hi) => (v === null || v === undefined || hi <= lo ? 0 : 4 + 20 * (v - lo) / (hi - lo));
  const box = el("p", { class: "words", id: "words" });
  for (const x of w.words) {
    const b = el("button", { type: "button", class: "word", "data-start": x.start, title:
      `${fmt(x.start, 2)}–${fmt(x.end, 2)} s · confidence ${fmt(x.confidence, 2)}` +
      (x.pitch != null ? ` · pitch ${fmt(x.pitch, 0)} Hz` : "") + (x.intensity != null ? ` · ${fmt(x.intensity, 1)} dB` : "") }, x.word);
    const bars = el("span", { class: "word-bars" });
    const p = el("span", { class: "bar-pitch" }); p.style.cssText = `display:block;height:3px;background:#c0392b;width:${span(x.pitch, Math.min(...ps), Math.max(...ps))}px`;
    const d = el("span", { class: "bar-intensity" }); d.style.cssText = `display:block;height:3px;background:#2c3e50;width:${span(x.intensity, Math.min(...ds), Math.max(...ds))}px`;
    bars.append(p, d);
    b.append(bars);
    b.addEventListener("click", () => {
      const m = $("audio") || $("video-full") || $("video-muted");
      if (!m) return;
      m.currentTime = x.start;
      m.play();
    });
    box.append(b, " ");
  }
  return [box, note("click a word to play from it; bars: pitch (red), intensity (dark)")];
}

function media(m) {
  const out = [];
  if (m.missing && m.missing.length) out.push(el("p", { class: "error", id: "media-error", text: "media file not found: " + m.missing.join(", ") }));
  else if (m.error) out.push(el("p", { class: "error", id: "media-error", text: m.error }));
  else if (!m.urls || !Object.keys(m.urls).length) out.push(note("this segment has no media file"));
  if (m.urls.audio) out.push(el("h3", { text: "Audio" }), el("audio", { id: "audio", controls: true, preload: "auto", src: m.urls.audio }));
  if (m.urls.video) {
    const v = el("video", { id: "video-muted", controls: true, preload: "metadata", src: m.urls.video, playsinline: true });
    v.muted = true;
    out.push(el("h3", { text: "Video, muted" }), v);
  }
  if (m.urls.full) out.push(el("h3", { text: "Video with sound" }), el("video", { id: "video-full", controls: true, preload: "metadata", src: m.urls.full, playsinline: true }));
  return out;
}

function predictions(rows) {
  if (failed(rows)) return note(rows.error, "error");
  if (!rows.length) return note("no model predicted this segment");
  const classes = rows[0].classes || [];
  return table([
    { key: "model" }, { key: "kind" }, { key: "predicted" },
    { key: "p_correct", title: "p(correct)" },
    ...classes.map((c, k) => ({ key: "p:" + c, title: "p(" + c + ")", render: r => fmt(r.probs[k]) })),
    { key: "attention", title: "attention", render: r => (r.attention ? r.attention.map(a => fmt(a, 2)).join(" / ") + " (" + (r.modalities || []).join(" / ") + ")" : "–") },
  ], rows);
}

function quadrants(rows, scheme) {
  if (failed(rows)) return note(rows.error, "error");
  if (!rows.length) return note("no quadrant: the segment was not predicted by a unimodal and the fusion model");
  const t = table([
    { key: "unimodal" }, { key: "quadrant", render: r => chip(r.quadrant) }, { key: "p_unimodal", title: "p unimodal" }, { key: "p_fusion", title: "p fusion" },
    { key: "repeats", title: "share per quadrant over repeats", render: r => {
      const x = r.repeats;
      if (!x) return "one fixed split (run `ambiguity train GROUPS --folds 5` for the quadrant per repeat)";
      if (x.error) return x.error;
      return ["red", "green", "blue", "yellow"].map(q => `${q} ${fmt(x["share_" + q], 2)}`).join(" · ") + ` · stability ${fmt(x.stability, 2)}`;
    } },
  ], rows);
  return [t, note(`quadrants from the ${scheme} scheme`)];
}

function score(s, comps) {
  if (!s) return note("no score");
  const items = Object.entries(comps).map(([c, info]) => el("li", { "data-component": c },
    el("strong", { text: c }), ": ", info.available ? fmt(s[c]) : el("span", { class: "muted", text: "unavailable: " + info.needs })));
  return [el("p", {}, "score ", el("strong", { id: "score-value", text: fmt(s.score) }), ` (from ${s.n_components} component(s))`), el("ul", {}, ...items)];
}

function attributions(rows) {
  if (failed(rows)) return note(rows.error);
  if (!rows.length) return note("no attributions stored for this segment");
  const keys = Object.keys(rows[0]).filter(k => k !== "segment_id" && k !== "key");
  return table(keys.map(k => ({ key: k, render: r => (Array.isArray(r[k]) ? r[k].map(v => fmt(v)).join(" / ") : fmt(r[k])) })), rows);
}

function features(f) {
  if (failed(f)) return note(f.error);
  if (!f.rows.length) return note("no scalar features for this segment");
  const bar = z => { const b = el("span", { class: "zbar" + (z < 0 ? " neg" : "") }); b.style.width = Math.min(60, Math.abs(z) * 12) + "px"; return b; };
  return [note(`reference: ${f.reference}; ${f.rows.length} of ${f.total} features, largest |z| first`), table([
    { key: "group" }, { key: "feature" }, { key: "value" }, { key: "blue_mean", title: "blue mean" }, { key: "blue_sd", title: "blue SD" },
    { key: "z", render: r => el("span", {}, fmt(r.z, 2), " ", bar(r.z)) },
  ], f.rows)];
}

function neighbours(n) {
  if (failed(n)) return note(n.error);
  const list = el("ol", { class: "neighbours" });
  for (const r of n.rows) list.append(el("li", {}, el("a", { href: segmentUrl(r.segment_id), "data-segment-id": r.segment_id, text: r.segment_id }),
    " ", chip(r.quadrant), ` ${r.label ?? "–"} · distance ${fmt(r.distance)} · `, el("span", { class: "muted", text: r.transcript })));
  return [note(`${n.rows.length} nearest in ${n.group} (${n.metric})`), list];
}

function annotations(rows) {
  if (failed(rows)) return note(rows.error);
  if (!rows.length) return note("no annotations of this segment");
  return table([{ key: "task" }, { key: "annotator" }, { key: "round" }, { key: "judgment" }, { key: "answered_at", title: "answered" }], rows);
}

async function load(embedding) {
  const q = embedding ? "?embedding=" + encodeURIComponent(embedding) : "";
  let d;
  try { d = await getJSON("/api/segment/" + encodeURIComponent(sid) + q); } catch (e) { section("page", note("error: " + e.message, "error")); return; }
  document.title = d.segment_id + " · ambiguity explore";
  $("title").replaceChildren(el("strong", { id: "segment-id", text: d.segment_id }), ` · label ${d.label ?? "–"} · split ${d.split ?? "–"}` +
    (d.start_s !== null && d.end_s !== null ? ` · ${fmt(d.start_s, 2)}–${fmt(d.end_s, 2)} s` : ""));
  document.body.dataset.segmentId = d.segment_id;
  section("transcript-box", transcript(d.transcript));
  section("media", media(d.media));
  getJSON("/api/words/" + encodeURIComponent(sid)).then(w => section("words-box", words(w)), e => section("words-box", note("error: " + e.message, "error")));
  section("predictions", predictions(d.predictions));
  section("quadrant-list", quadrants(d.quadrants, d.scheme));
  section("score", score(d.score, d.components));
  section("attributions", attributions(d.attributions));
  section("features", features(d.features));
  $("embedding").replaceChildren(...d.embeddings.map(g => el("option", { value: g, text: g })));
  if (embedding) $("embedding").value = embedding;
  section("neighbours", neighbours(d.neighbours));
  section("annotations", annotations(d.annotations));
  section("metadata", Object.keys(d.metadata).length ? table([{ key: "key" }, { key: "value" }], Object.entries(d.metadata).map(([key, value]) => ({ key, value }))) : note("none"));
  document.body.dataset.view = "segment";
}

$("embedding").addEventListener("change", () => load($("embedding").value));
$("back").addEventListener("click", e => { if (document.referrer && new URL(document.referrer).origin === location.origin && history.length > 1) { e.preventDefault(); history.back(); } });
load(null);
