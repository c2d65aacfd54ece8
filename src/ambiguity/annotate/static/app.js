// The annotation page: plain JS, no build step. Everything shown comes from
// /api/state; text is always inserted with textContent (never as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;      // the last /api/state answer
let selected = null;   // index of the chosen label
let shownAt = 0;       // when the current pass was shown (for elapsed time)
let busy = false;      // a request is in flight: ignore further submits
let viewKey = "";      // item|round on screen, so media is not reloaded needlessly

const FLAG_TEXT = {
  text: "Pass 1 of 2 — judge from the TRANSCRIPT only",
  audio: "Pass 1 of 2 — judge from the AUDIO only",
  video: "Pass 1 of 2 — judge from the VIDEO only (no sound)",
};

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const r = await fetch(path, { credentials: "same-origin", ...opts });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  return { status: r.status, data };
}

function show(section) {
  $("login").hidden = section !== "login";
  $("study").hidden = section !== "study";
  $("logout").hidden = section !== "study";
}

function showLogin(message) {
  state = null; viewKey = "";
  document.body.dataset.view = "login";
  show("login");
  $("who").textContent = "";
  $("login-error").textContent = message || "";
  $("name").focus();
}

async function refresh() {
  const { status, data } = await api("/api/state");
  if (status === 401) return showLogin();
  if (status !== 200) { $("status").textContent = (data && data.error) || `error ${status}`; return; }
  state = data;
  render();
}

function mediaElement(kind, url) {
  const el = document.createElement(kind === "audio" ? "audio" : "video");
  el.controls = true;
  el.preload = "auto";
  el.src = url;
  if (kind === "video") { el.muted = true; el.setAttribute("muted", ""); }
  if (kind === "full") { el.playsInline = true; }
  el.id = "player";
  return el;
}

function render() {
  show("study");
  document.body.dataset.view = "study";
  $("who").textContent = `${state.annotator} · task ${state.task}`;
  $("definition").textContent = state.definition;
  $("instructions").textContent = state.instructions;
  $("progress").max = state.total;
  $("progress").value = state.done;
  const it = state.item;
  if (!it) {
    $("progress-text").textContent = `${state.done} of ${state.total} items done`;
    $("item").hidden = true;
    $("done").hidden = false;
    document.body.dataset.round = "done";
    document.body.dataset.item = "";
    return;
  }
  $("item").hidden = false;
  $("done").hidden = true;
  $("progress-text").textContent =
    `Item ${it.position} of ${state.total} · ${state.done} done · pass ${it.round === "unimodal" ? 1 : 2} of 2`;
  const key = `${it.item}|${it.round}`;
  if (key === viewKey) return;
  viewKey = key;
  selected = null;
  shownAt = performance.now();

  const flag = $("flag");
  flag.className = "flag" + (it.round === "multimodal" ? " full" : "");
  flag.textContent = it.round === "unimodal"
    ? FLAG_TEXT[it.flag] || `Pass 1 of 2 — ${it.flag} only`
    : "Pass 2 of 2 — the FULL clip: video, sound and transcript";

  const stage = $("stage");
  stage.replaceChildren();
  if (it.round === "unimodal") {
    if (it.flag === "text") {
      const p = document.createElement("p");
      p.className = "transcript"; p.textContent = it.transcript || "(no transcript)";
      stage.append(p);
    } else {
      const kind = Object.keys(it.media)[0];
      stage.append(mediaElement(kind, it.media[kind]));
    }
  } else {
    const full = it.media.full;
    stage.append(mediaElement(it.has_video ? "full" : "audio", full));
    const lab = document.createElement("div");
    lab.className = "transcript-label"; lab.textContent = "Transcript";
    const p = document.createElement("p");
    p.className = "transcript"; p.textContent = it.transcript || "(no transcript)";
    stage.append(lab, p);
  }

  const box = $("choice-buttons");
  box.replaceChildren();
  state.choices.forEach((c, i) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "choice"; b.dataset.index = String(i);
    b.setAttribute("aria-pressed", "false");
    const k = document.createElement("kbd"); k.textContent = String(i + 1);
    b.append(k, document.createTextNode(" " + c));
    b.addEventListener("click", () => choose(i));
    box.append(b);
  });
  $("submit").disabled = true;
  document.body.dataset.item = it.item;
  document.body.dataset.round = it.round;
}

function choose(i) {
  if (!state || !state.item || i < 0 || i >= state.choices.length) return;
  selected = i;
  document.querySelectorAll(".choice").forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.index) === i)));
  $("submit").disabled = false;
}

async function submit() {
  if (busy || selected === null || !state || !state.item) return;
  busy = true;
  const it = state.item;
  const body = { item: it.item, round: it.round, judgment: state.choices[selected],
                 elapsed_s: (performance.now() - shownAt) / 1000 };
  try {
    const { status, data } = await api("/api/answer", body);
    if (status === 401) return showLogin("Your session ended: log in again to resume.");
    if (status === 409) {  // answered meanwhile (another tab?): show where things stand now
      $("status").textContent = (data && data.error) || "already answered";
      viewKey = "";
      await refresh();
      return;
    }
    if (status !== 200) { $("status").textContent = (data && data.error) || `error ${status}`; return; }
    $("status").textContent = `Saved: item ${it.position}, pass ${it.round === "unimodal" ? 1 : 2} — ${body.judgment}`;
    state = data;
    render();
  } catch (e) {
    $("status").textContent = "Not saved: the server cannot be reached. Try again.";
  } finally {
    busy = false;
  }
}

document.addEventListener("keydown", (ev) => {
  if (ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA")) return;
  if (ev.ctrlKey || ev.metaKey || ev.altKey || !state) return;
  const player = $("player");
  if (/^[1-9]$/.test(ev.key)) { choose(Number(ev.key) - 1); ev.preventDefault(); }
  else if (ev.key === "Enter") { submit(); ev.preventDefault(); }
  else if (ev.key === " " && player) { player.paused ? player.play() : player.pause(); ev.preventDefault(); }
  else if ((ev.key === "r" || ev.key === "R") && player) { player.currentTime = 0; player.play(); }
  else if (ev.key === "d" || ev.key === "D") { $("definition-box").open = !$("definition-box").open; }
});

$("submit").addEventListener("click", submit);

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const { status, data } = await api("/api/login", { name: $("name").value.trim() });
  if (status !== 200) { $("login-error").textContent = (data && data.error) || `error ${status}`; return; }
  $("name").blur();
  await refresh();
});

$("logout").addEventListener("click", async () => { await api("/api/logout", {}); showLogin(); });

refresh();
