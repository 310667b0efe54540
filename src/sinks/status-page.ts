/** The `spillway sink` status page at `/` and `/status`: self-contained, it polls /status.json every second. */
export const sinkStatusPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spillway sink</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2733; background: #f7f9fb; }
  h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 0 0 8px; }
  .sub { color: #5b6b7b; margin-bottom: 16px; }
  .sink { background: #fff; border: 1px solid #dde3ea; border-radius: 8px; padding: 12px 14px; margin-bottom: 16px; }
  .banner { padding: 8px 12px; border-radius: 6px; margin: 8px 0; background: #ffebe9; border: 1px solid #ff8182; }
  .figures { display: flex; flex-wrap: wrap; gap: 20px; margin: 6px 0 10px; }
  .figure .label { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: #5b6b7b; }
  .figure .value { font-size: 20px; font-weight: 600; }
  .up { color: #1a7f37; } .down { color: #cf222e; } .waiting { color: #cf222e; font-weight: 600; }
  canvas { width: 100%; max-width: 480px; height: 50px; display: block; }
  table { border-collapse: collapse; width: 100%; font-size: 12px; }
  th, td { padding: 3px 6px; border-bottom: 1px solid #eef1f4; text-align: right; }
  th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
  th { color: #5b6b7b; font-weight: 600; }
</style>
</head>
<body>
<h1>spillway sink</h1>
<div class="sub" id="sub">loading…</div>
<div id="sinks"></div>
<script>
"use strict";
const history = {};
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}
function figure(label, value, cls) {
  return el("div", { class: "figure" }, el("div", { class: "label" }, label), el("div", { class: "value " + (cls || "") }, String(value)));
}
function draw(canvas, values) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (values.length < 2) return;
  const max = Math.max(1, ...values);
  ctx.strokeStyle = "#1a7f37"; ctx.lineWidth = 2; ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * canvas.width;
    const y = canvas.height - 2 - (v / max) * (canvas.height - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}
function render(s) {
  document.getElementById("sub").textContent = s.sinks.length + " sink(s), up " + Math.round(s.uptimeSeconds) + " s";
  const root = document.getElementById("sinks");
  root.replaceChildren(...s.sinks.map((k) => {
    const h = history[k.name] || (history[k.name] = []);
    h.push(k.rowsPerSecond); if (h.length > 120) h.shift();
    const box = el("div", { class: "sink", "data-sink": k.name });
    box.append(el("h2", {}, k.name + " → " + k.kind + " " + k.target + " (" + k.topics.join(", ") + ")"));
    if (!k.databaseUp) box.append(el("div", { class: "banner", "data-role": "database-down" }, k.kind + " is unavailable: " + (k.lastError || "no answer") + ". Partitions wait and retry; nothing is committed that is not written."));
    box.append(el("div", { class: "figures" },
      figure("database", k.databaseUp ? "up" : "down", k.databaseUp ? "up" : "down"),
      figure("consumer", k.state),
      figure("rows written", k.rowsWritten),
      figure("rows/s", k.rowsPerSecond.toFixed(0)),
      figure("lag (records)", k.lagRecords),
      figure("already there", k.rowsExisting),
      figure("retries", k.retries),
      figure("dead letters", k.deadLettered)));
    const canvas = el("canvas", { width: "480", height: "50" });
    box.append(canvas);
    const table = el("table", {}, el("tr", {}, ...["partition", "state", "lag", "lag s", "rows", "last batch ms", "retries", "refused"].map((t) => el("th", {}, t))));
    for (const p of k.partitions) {
      table.append(el("tr", { "data-partition": p.topic + "[" + p.partition + "]" },
        el("td", {}, p.topic + "[" + p.partition + "]"),
        el("td", { class: p.state === "waiting" ? "waiting" : "" }, p.state),
        el("td", {}, p.lagRecords), el("td", {}, p.lagSeconds.toFixed(1)), el("td", {}, String(p.rowsWritten)),
        el("td", {}, p.lastBatchMs.toFixed(1)), el("td", {}, String(p.retries)), el("td", {}, String(p.refused))));
    }
    box.append(table);
    draw(canvas, h);
    return box;
  }));
}
async function tick() {
  try {
    const r = await fetch("status.json", { cache: "no-store" });
    render(await r.json());
  } catch (e) {
    document.getElementById("sub").textContent = "status unavailable: " + e.message;
  }
}
tick();
setInterval(tick, 1000);
</script>
</body>
</html>
`
