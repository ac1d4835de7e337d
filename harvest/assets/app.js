"use strict";
// The dashboard: state from the API once, then live samples and status changes from the
// event stream (/api/events). Nothing here reads a device: the service answers from memory.

const HISTORY = 120;
const devices = new Map(); // name -> { detail, rows: Map(point -> row elements), card }
const history = new Map(); // "device/point" -> [[time, number]]

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (_) { body = { error: response.statusText }; }
  return { ok: response.ok, status: response.status, body };
}

function show(value, unit) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value === "number") {
    const text = Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 100 ? 1 : 2);
    return unit ? `${text} ${unit}` : text;
  }
  return String(value);
}

function numeric(value) {
  if (typeof value === "number") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  return null;
}

function statusText(status) {
  let text = status.state.replace("_", " ");
  if (status.state === "backing_off" && status.until) {
    const seconds = Math.max(0, status.until - Date.now() / 1000);
    text += ` (${seconds.toFixed(1)} s)`;
  }
  return text;
}

function drawTrend(svg, series) {
  const points = series.filter(([, v]) => v !== null);
  svg.replaceChildren();
  if (points.length < 2) return;
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  let lo = Math.min(...points.map(([, v]) => v)), hi = Math.max(...points.map(([, v]) => v));
  if (hi === lo) { hi += 1; lo -= 1; }
  const coords = points.map(([t, v]) => {
    const x = t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * 100;
    const y = 30 - ((v - lo) / (hi - lo)) * 28;
    return `${x.toFixed(2)},${y.toFixed(2)}`;
  });
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.append(line);
  const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
  title.textContent = `${points.length} samples, ${show(lo)} … ${show(hi)}`;
  svg.append(title);
}

function renderStatus(device) {
  const { detail, card } = device;
  const badge = card.querySelector(".status");
  badge.textContent = statusText(detail.status);
  badge.className = `badge status ${detail.status.state}`;
  const error = card.querySelector(".error-text");
  error.textContent = detail.status.error ? `${detail.status.error}` : "";
  const counters = detail.counters;
  const exceptions = Object.values(counters.exceptions || {}).reduce((a, b) => a + b, 0);
  const rtt = counters.mean_rtt_ms === null ? "–" : `${counters.mean_rtt_ms.toFixed(1)} ms`;
  card.querySelector(".counters").replaceChildren(
    ...[["polls", counters.polls], ["requests", counters.requests], ["responses", counters.responses],
      ["timeouts", counters.timeouts], ["exceptions", exceptions], ["reconnects", counters.reconnects],
      ["mean RTT", rtt]].map(([k, v]) => el("span", {}, `${k} `, el("b", {}, String(v)))));
  card.querySelector(".toggle-connection").textContent = { disabled: "Enable", disconnected: "Connect" }[detail.status.state] || "Disconnect";
}

function setValue(device, point, value, quality, reason) {
  const row = device.rows.get(point);
  if (!row) return;
  row.value.textContent = show(value, row.unit);
  row.value.dataset.raw = JSON.stringify(value ?? null);
  row.quality.textContent = quality;
  row.quality.className = `quality ${quality}`;
  row.quality.title = reason || "";
}

function lastValue(row) {
  return JSON.parse(row.value.dataset.raw || "null");
}

// The engine marks a device's values stale when it stops reading it (disconnected, disabled,
// backing off) without sending a sample; the page follows the status the same way.
const IDLE = ["disconnected", "disabled", "backing_off"];
function markStaleIfIdle(device) {
  if (!IDLE.includes(device.detail.status.state)) return;
  for (const [point, row] of device.rows) {
    const value = lastValue(row);
    if (value !== null && row.quality.textContent === "good") {
      setValue(device, point, value, "stale", `not read while ${statusText(device.detail.status)}`);
    }
  }
}

// Point names are identifiers: a narrow screen may wrap them after an underscore, not mid-word.
function breakable(name) {
  const parts = name.split("_");
  return parts.flatMap((part, i) => (i < parts.length - 1 ? [`${part}_`, document.createElement("wbr")] : [part]));
}

function writeControl(name, point) {
  const answer = el("div", { class: "answer", "data-answer": point.name });
  let controls = [];
  const send = async (value) => {
    answer.textContent = "sending…";
    answer.className = "answer";
    // One write at a time per point: a second press would race the first.
    for (const control of controls) control.disabled = true;
    try {
      const result = await api(`/api/devices/${encodeURIComponent(name)}/write`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ [point.name]: value }),
      });
      if (result.ok) {
        const sample = result.body.written[point.name];
        answer.textContent = `written; device reads back ${show(sample.value, point.unit)}`;
        answer.className = "answer ok";
      } else {
        answer.textContent = `${result.status}: ${result.body.error}`;
        answer.className = "answer fail";
      }
    } catch (error) {
      answer.textContent = `not sent: ${error.message}`;
      answer.className = "answer fail";
    } finally {
      for (const control of controls) control.disabled = false;
    }
  };
  if (point.type === "bool") {
    controls = [el("button", { onclick: () => send(true), "data-write": point.name, "data-value": "on" }, "On"),
      el("button", { onclick: () => send(false), "data-write": point.name, "data-value": "off" }, "Off")];
  } else {
    const input = el("input", { "data-write": point.name, "aria-label": `new value for ${point.name}`,
      inputmode: point.type === "string" ? "text" : "decimal", placeholder: "value" });
    const submit = () => {
      if (point.type === "string") return send(input.value);
      const number = Number(input.value.trim());
      if (input.value.trim() === "" || Number.isNaN(number)) {
        answer.textContent = "enter a number"; answer.className = "answer fail"; return;
      }
      return send(number);
    };
    input.addEventListener("keydown", (event) => { if (event.key === "Enter") submit(); });
    controls = [input, el("button", { class: "primary", onclick: submit, "data-set": point.name }, "Set")];
  }
  return [el("div", { class: "write" }, ...controls), answer];
}

function buildCard(detail) {
  const name = detail.name;
  const card = el("section", { class: "card", "data-device": name });
  const toggle = el("button", { class: "toggle-connection", onclick: async () => {
    const device = devices.get(name);
    // A disabled device is enabled (the API refuses to connect it); a disconnected one connected.
    const action = { disabled: "enable", disconnected: "connect" }[device.detail.status.state] || "disconnect";
    const result = await api(`/api/devices/${encodeURIComponent(name)}/${action}`, { method: "POST" });
    if (result.ok) { device.detail.status = result.body.status; renderStatus(device); markStaleIfIdle(device); }
    else card.querySelector(".error-text").textContent = `${result.status}: ${result.body.error}`;
  } }, "Disconnect");
  card.append(
    el("h2", {}, el("span", {}, name), el("span", { class: "badge status" }, "")),
    el("div", { class: "meta" }, `${detail.type || "device"} · unit\u00a0${detail.unit_id} · ${detail.link.description} · every\u00a0${detail.interval_ms / 1000}\u00a0s`),
    el("div", { class: "error-text" }),
    el("div", { class: "counters" }),
    el("div", { class: "actions" }, toggle));
  const rows = new Map();
  const table = el("table");
  for (const point of detail.points) {
    const value = el("span", { class: "v" }, "–");
    const quality = el("span", { class: "quality" }, "");
    const spark = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    spark.setAttribute("class", "spark");
    spark.setAttribute("viewBox", "0 0 100 32");
    spark.setAttribute("preserveAspectRatio", "none");
    const valueCell = el("td", { class: "value" }, value, quality);
    if (point.access === "read-write") valueCell.append(...writeControl(name, point));
    table.append(el("tr", { "data-point": point.name },
      el("td", { class: "name" }, ...breakable(point.name)), el("td", { class: "trend" }, spark), valueCell));
    rows.set(point.name, { value, quality, spark, unit: point.unit });
  }
  card.append(table);
  return { detail, rows, card };
}

async function loadDevice(name) {
  const [detail, data, past] = await Promise.all([
    api(`/api/devices/${encodeURIComponent(name)}`),
    api(`/api/devices/${encodeURIComponent(name)}/data`),
    api(`/api/devices/${encodeURIComponent(name)}/history?limit=${HISTORY}`)]);
  if (!detail.ok) return null;
  const device = buildCard(detail.body);
  for (const point of data.body.points || []) setValue(device, point.name, point.value, point.quality, point.reason);
  for (const [point, samples] of Object.entries(past.body.points || {})) {
    const series = samples.map((s) => [s.timestamp, numeric(s.value)]);
    history.set(`${name}/${point}`, series);
    drawTrend(device.rows.get(point).spark, series);
  }
  renderStatus(device);
  return device;
}

async function loadAll() {
  const list = await api("/api/devices");
  const main = document.getElementById("devices");
  if (!list.ok) { main.replaceChildren(el("p", { class: "empty" }, `cannot load devices: ${list.body.error}`)); return; }
  const loaded = await Promise.all(list.body.devices.map((d) => loadDevice(d.name)));
  devices.clear();
  main.replaceChildren();
  for (const device of loaded.filter(Boolean)) { devices.set(device.detail.name, device); main.append(device.card); }
  if (devices.size === 0) main.append(el("p", { class: "empty" }, "No devices configured."));
}

async function refreshCounters() {
  const list = await api("/api/devices");
  if (!list.ok) return;
  for (const summary of list.body.devices) {
    const device = devices.get(summary.name);
    if (!device) continue;
    Object.assign(device.detail, { counters: summary.counters, status: summary.status });
    renderStatus(device);
  }
}

function connectStream() {
  const badge = document.getElementById("stream");
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => { badge.textContent = "live"; badge.className = "badge live"; });
  source.addEventListener("error", () => { badge.textContent = "reconnecting…"; badge.className = "badge down"; });
  source.addEventListener("sample", (event) => {
    const sample = JSON.parse(event.data);
    const device = devices.get(sample.device);
    if (!device) return;
    const row = device.rows.get(sample.point);
    if (!row) return;
    if (sample.quality === "good") setValue(device, sample.point, sample.value, "good");
    else {
      // A failed read keeps the last value, now stale, as the engine does; with none it is bad.
      const previous = lastValue(row);
      setValue(device, sample.point, previous, previous === null ? "bad" : "stale", sample.reason);
    }
    const key = `${sample.device}/${sample.point}`;
    const series = history.get(key) || [];
    series.push([sample.timestamp, numeric(sample.value)]);
    while (series.length > HISTORY) series.shift();
    history.set(key, series);
    drawTrend(row.spark, series);
  });
  source.addEventListener("status", (event) => {
    const change = JSON.parse(event.data);
    const device = devices.get(change.device);
    if (!device) return;
    device.detail.status = change.status;
    renderStatus(device);
    markStaleIfIdle(device);
  });
  source.addEventListener("lagged", () => loadAll());
}

function bytes(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}

// The broker link and the store-and-forward queue; drops are shown, never hidden.
async function refreshMqtt() {
  const state = await api("/api/mqtt");
  const badge = document.getElementById("mqtt");
  if (!state.ok || !state.body.enabled) { badge.hidden = true; return; }
  const s = state.body;
  badge.hidden = false;
  const queue = s.backlog_polls > 0 ? ` · queued ${s.backlog_polls} polls (${bytes(s.backlog_bytes)})` : "";
  const dropped = s.dropped_polls > 0 ? ` · ${s.dropped_polls} dropped` : "";
  badge.textContent = `MQTT ${s.connected ? "connected" : "offline"}${queue}${dropped}`;
  badge.className = `badge ${s.connected && s.dropped_polls === 0 ? "live" : "down"}`;
}

loadAll().then(connectStream);
setInterval(refreshCounters, 2000);
refreshMqtt();
setInterval(refreshMqtt, 2000);
