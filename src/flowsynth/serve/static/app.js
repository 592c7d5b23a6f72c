// flowsynth web page: plain JS over the JSON API (see flowsynth/serve/web.py).
"use strict";

const $ = (id) => document.getElementById(id);
const ui = { state: null, map: null, dragging: 0, audioVersion: -1, audioTimer: null, inflight: null, queued: null };

function setStatus(text) { $("status").textContent = text || ""; }

async function api(path, body) {
  const options = body === undefined ? {} : body instanceof FormData
    ? { method: "POST", body }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) { setStatus(data.error || data.detail || response.statusText); throw new Error(data.error); }
  setStatus("");
  return data;
}

// One request in flight per control; the latest value waits and replaces older ones.
function send(path, body) {
  if (ui.inflight) { ui.queued = [path, body]; return; }
  ui.inflight = api(path, body).then(show).catch(() => {}).finally(() => {
    ui.inflight = null;
    if (ui.queued) { const [p, b] = ui.queued; ui.queued = null; send(p, b); }
  });
}

function knob(container, kind, item) {
  const label = document.createElement("label");
  label.innerHTML = `<span class="name"></span><span class="value"></span>`;
  label.querySelector(".name").textContent = kind === "macro" ? `${item.index}: ${item.name}` : item.name;
  label.title = kind === "macro" ? `turning up: ${item.label} (latent dimension ${item.dim})` : `${item.kind} knob`;
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: -1, max: 1, step: 0.01, value: item.value });
  input.id = `${kind}-${item.index}`;
  input.dataset.index = item.index;
  input.addEventListener("pointerdown", () => { ui.dragging++; });
  input.addEventListener("pointerup", () => { ui.dragging = Math.max(0, ui.dragging - 1); });
  input.addEventListener("input", () => {
    label.querySelector(".value").textContent = Number(input.value).toFixed(2);
    send(`/api/${kind}`, { index: item.index, value: Number(input.value) });
  });
  label.appendChild(input);
  container.appendChild(label);
}

function buildKnobs(state) {
  const macros = $("macros"), semantic = $("semantic");
  macros.innerHTML = ""; semantic.innerHTML = "";
  state.macros.filter((m) => m.visible).forEach((m) => knob(macros, "macro", m));
  state.semantic.forEach((s) => knob(semantic, "semantic", s));
  for (const select of [$("xy-x"), $("xy-y")]) {
    select.innerHTML = "";
    state.macros.forEach((m) => select.add(new Option(`${m.index}: ${m.name}`, m.index)));
  }
  $("xy-x").value = 0; $("xy-y").value = Math.min(1, state.macros.length - 1);
  $("params").innerHTML = state.param_names.map((n, i) => `<tr><td>${n}</td><td id="param-${i}"></td></tr>`).join("");
}

function clamp(v) { return Math.max(-1, Math.min(1, v)); }

function show(state) {
  const first = !ui.state;
  if (first || ui.state.macros.length !== state.macros.length) buildKnobs(state);
  ui.state = state;
  $("preset").textContent = state.preset;
  $("preset").dataset.version = state.version;
  $("freeze").checked = state.freeze;
  $("server-note").hidden = !state.audio;
  for (const [kind, items] of [["macro", state.macros], ["semantic", state.semantic]]) {
    for (const item of items) {
      const input = $(`${kind}-${item.index}`);
      if (!input) continue;
      if (document.activeElement !== input || !ui.dragging) input.value = clamp(item.value);
      input.parentElement.querySelector(".value").textContent = item.value.toFixed(2);
    }
  }
  state.params.forEach((v, i) => { const cell = $(`param-${i}`); if (cell) cell.textContent = v.toFixed(4); });
  $("morph").disabled = !state.path;
  drawXY(); drawMap();
  scheduleAudio(state.version);
}

// The page's sound follows the state: a new WAV per version, fetched once the knobs rest.
function scheduleAudio(version) {
  if (version === ui.audioVersion) return;
  clearTimeout(ui.audioTimer);
  ui.audioTimer = setTimeout(() => {
    const player = $("player");
    ui.audioVersion = version;
    player.src = `/api/audio.wav?v=${version}`;
    player.dataset.version = version;
    if ($("autoplay").checked) player.play().catch(() => {});
  }, 150);
}

function drawXY() {
  const canvas = $("xy"), ctx = canvas.getContext("2d"), s = ui.state;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#2d313a";
  ctx.beginPath(); ctx.moveTo(canvas.width / 2, 0); ctx.lineTo(canvas.width / 2, canvas.height);
  ctx.moveTo(0, canvas.height / 2); ctx.lineTo(canvas.width, canvas.height / 2); ctx.stroke();
  if (!s) return;
  const x = clamp(s.macros[Number($("xy-x").value)].value), y = clamp(s.macros[Number($("xy-y").value)].value);
  ctx.fillStyle = "#7fd1b9";
  ctx.beginPath(); ctx.arc((x + 1) / 2 * canvas.width, (1 - y) / 2 * canvas.height, 7, 0, 2 * Math.PI); ctx.fill();
}

function xyMove(event) {
  const canvas = $("xy"), box = canvas.getBoundingClientRect();
  const x = clamp(((event.clientX - box.left) / box.width) * 2 - 1), y = clamp(1 - ((event.clientY - box.top) / box.height) * 2);
  const values = {}; values[$("xy-x").value] = x; values[$("xy-y").value] = y;
  send("/api/macros", { values });
}

function mapScale() {
  const canvas = $("map"), pts = ui.map.points, pad = 14;
  const xs = pts.map((p) => p.x), ys = pts.map((p) => p.y);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  return {
    x: (v) => pad + ((v - x0) / (x1 - x0 || 1)) * (canvas.width - 2 * pad),
    y: (v) => canvas.height - pad - ((v - y0) / (y1 - y0 || 1)) * (canvas.height - 2 * pad),
  };
}

function colour(p) {
  if (!("centroid_hz" in p)) return "#7f8a99";
  const t = Math.max(0, Math.min(1, (Math.log2(Math.max(p.centroid_hz, 20)) - 6) / 7));
  return `hsl(${260 - 200 * t}, 70%, ${35 + 30 * t}%)`;
}

function drawMap() {
  const canvas = $("map"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!ui.map || !ui.map.points.length) return;
  const scale = mapScale();
  for (const p of ui.map.points) {
    ctx.fillStyle = colour(p);
    ctx.beginPath(); ctx.arc(scale.x(p.x), scale.y(p.y), 3, 0, 2 * Math.PI); ctx.fill();
  }
  if (ui.state && ui.state.map_xy) {
    const [x, y] = ui.state.map_xy;
    ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(scale.x(x), scale.y(y), 8, 0, 2 * Math.PI); ctx.stroke();
  }
}

function nearestPoint(event) {
  if (!ui.map || !ui.map.points.length) return null;
  const box = $("map").getBoundingClientRect(), scale = mapScale();
  const cx = (event.clientX - box.left) * ($("map").width / box.width), cy = (event.clientY - box.top) * ($("map").height / box.height);
  let best = null, distance = Infinity;
  for (const p of ui.map.points) {
    const d = (scale.x(p.x) - cx) ** 2 + (scale.y(p.y) - cy) ** 2;
    if (d < distance) { best = p; distance = d; }
  }
  return best;
}

function setupEvents() {
  $("freeze").addEventListener("change", () => send("/api/freeze", { freeze: $("freeze").checked }));
  const xy = $("xy");
  xy.addEventListener("pointerdown", (e) => { ui.dragging++; xy.setPointerCapture(e.pointerId); xyMove(e); });
  xy.addEventListener("pointermove", (e) => { if (xy.hasPointerCapture(e.pointerId)) xyMove(e); });
  xy.addEventListener("pointerup", () => { ui.dragging = Math.max(0, ui.dragging - 1); });
  $("xy-x").addEventListener("change", drawXY); $("xy-y").addEventListener("change", drawXY);
  $("map").addEventListener("click", (e) => { const p = nearestPoint(e); if (p) send("/api/preset", { key: p.i }); });
  $("map").addEventListener("mousemove", (e) => { const p = nearestPoint(e); $("map-hover").textContent = p ? p.name : ""; });
  $("path-set").addEventListener("click", () => {
    const key = (v) => (/^\d+$/.test(v.trim()) ? Number(v) : v.trim());
    send("/api/path", {
      start: key($("path-start").value), end: key($("path-end").value), steps: 9, method: $("path-method").value,
    });
  });
  $("morph").addEventListener("input", () => send("/api/morph", { t: Number($("morph").value) }));
  $("server-note").addEventListener("click", () => api("/api/note", { note: 60, velocity: 100 }).catch(() => {}));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (!file) return;
    const form = new FormData(); form.append("file", file);
    setStatus(`matching ${file.name}…`);
    api("/api/match", form).then(show).catch(() => {});
  });
}

async function poll() {
  try {
    const state = await api("/api/state");
    if (!ui.dragging && (!ui.state || state.version !== ui.state.version)) show(state);
  } catch (e) { /* the status line says why */ }
  setTimeout(poll, 1000);
}

async function start() {
  setupEvents();
  ui.map = await api("/api/map");
  show(await api("/api/state"));
  setTimeout(poll, 1000);
}

start();
