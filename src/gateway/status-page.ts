/** The live status page served at `/` and `/status`. Self-contained: no external scripts, fonts or styles. */
export const statusPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spillway gateway</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2733; background: #f7f9fb; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: #5b6b7b; margin-bottom: 16px; }
  .banner { padding: 10px 14px; border-radius: 6px; margin-bottom: 16px; background: #fff4d6; border: 1px solid #f0d48a; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 12px; }
  .card { background: #fff; border: 1px solid #dde3ea; border-radius: 8px; padding: 12px 14px; }
  .card h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: #5b6b7b; margin: 0 0 6px; }
  .big { font-size: 24px; font-weight: 600; }
  .state-closed { color: #1a7f37; } .state-open { color: #cf222e; } .state-half-open { color: #9a6700; }
  canvas { width: 100%; height: 60px; display: block; margin-top: 6px; }
  table { border-collapse: collapse; width: 100%; font-size: 12px; } td { padding: 2px 4px; border-bottom: 1px solid #eef1f4; overflow-wrap: anywhere; } td + td { text-align: right; }
  .muted { color: #8593a3; }
</style>
</head>
<body>
<h1>spillway gateway</h1>
<div class="sub" id="sub">loading…</div>
<div class="banner" id="banner" hidden></div>
<div class="grid">
  <div class="card"><h2>Breaker</h2><div class="big" id="breaker">–</div><table id="transitions"></table></div>
  <div class="card"><h2>Log depth</h2><div class="big" id="depth">–</div><div id="depthDetail" class="muted"></div><canvas id="depthChart" width="300" height="60"></canvas></div>
  <div class="card"><h2>Ingest rate</h2><div class="big" id="ingest">–</div><canvas id="ingestChart" width="300" height="60"></canvas></div>
  <div class="card"><h2>Delivery rate</h2><div class="big" id="delivery">–</div><canvas id="deliveryChart" width="300" height="60"></canvas></div>
  <div class="card"><h2>Refusals by reason</h2><table id="refusals"></table></div>
  <div class="card"><h2>Waiting for their topic</h2><div class="big" id="waiting">–</div><table id="waitingTopics"></table></div>
  <div class="card"><h2>Dead letters</h2><div class="big" id="deadLetters">–</div><table id="deadLetterTopics"></table></div>
</div>
<script>
"use strict";
const history = { ingest: [], delivery: [], depth: [] };
const keep = 120;
function push(list, v) { list.push(v); if (list.length > keep) list.shift(); }
function draw(id, values, color) {
  const c = document.getElementById(id);
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (values.length < 2) return;
  const max = Math.max(1, ...values);
  ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * c.width;
    const y = c.height - 2 - (v / max) * (c.height - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}
function text(id, value) { document.getElementById(id).textContent = value; }
function fmtBytes(n) { return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KiB" : n < 1073741824 ? (n / 1048576).toFixed(1) + " MiB" : (n / 1073741824).toFixed(2) + " GiB"; }
function rows(id, entries) {
  const t = document.getElementById(id);
  t.replaceChildren(...entries.map(([a, b]) => { const tr = document.createElement("tr"); const x = document.createElement("td"); x.textContent = a; const y = document.createElement("td"); y.textContent = b; tr.append(x, y); return tr; }));
}
async function tick() {
  try {
    const r = await fetch("status.json" + location.search, { cache: "no-store" });
    const s = await r.json();
    text("sub", s.mode === "embedded" ? "embedded default: no Kafka configured, events are kept in the local log" + (s.logDir ? " at " + s.logDir : "") : "delivering to Kafka at " + s.brokers.join(", ") + " (ack: " + s.ack + ")");
    const banner = document.getElementById("banner");
    const notes = [];
    if (s.mode === "embedded") notes.push("No Kafka is configured: events are stored durably in the local log and will be delivered once kafka.brokers is set.");
    if (s.openAuth) notes.push("No keys are configured: any client may write. Configure keys[] before exposing this gateway.");
    const waitingTopics = Object.entries(s.waiting.topics);
    if (waitingTopics.length) notes.push(s.waiting.events + " events wait for topics that do not exist (" + waitingTopics.map(([t]) => t).join(", ") + "): create them and the events are delivered, in order.");
    if (s.deadLetters.total) notes.push(s.deadLetters.total + " events were dead-lettered (Kafka will never take them as they are): see the reasons below, fix the cause, then run spillway log dump on the dead-letter log.");
    banner.hidden = notes.length === 0; banner.textContent = notes.join(" ");
    const b = document.getElementById("breaker");
    b.textContent = s.breaker.state; b.className = "big state-" + s.breaker.state;
    rows("transitions", s.breaker.transitions.slice(-5).reverse().map((t) => [t.from + " → " + t.to, t.reason]));
    text("depth", s.log.records + " records");
    text("depthDetail", fmtBytes(s.log.bytes) + " of " + fmtBytes(s.log.maxBytes) + "; oldest pending " + (s.log.oldestPendingSeconds === null ? "none" : s.log.oldestPendingSeconds.toFixed(1) + " s"));
    text("ingest", s.rates.ingest.toFixed(0) + " events/s");
    text("delivery", s.rates.delivery.toFixed(0) + " events/s");
    push(history.ingest, s.rates.ingest); push(history.delivery, s.rates.delivery); push(history.depth, s.log.records);
    draw("ingestChart", history.ingest, "#0969da"); draw("deliveryChart", history.delivery, "#1a7f37"); draw("depthChart", history.depth, "#9a6700");
    const refusals = Object.entries(s.refusals);
    rows("refusals", refusals.length ? refusals : [["none", ""]]);
    text("waiting", s.waiting.events + " events");
    rows("waitingTopics", waitingTopics.length ? waitingTopics : [["none", ""]]);
    text("deadLetters", s.deadLetters.total + " events");
    rows("deadLetterTopics", s.deadLetters.byTopic.length ? s.deadLetters.byTopic.slice(0, 10).map((d) => [d.topic + ": " + d.reason, d.count]) : [["none", ""]]);
  } catch (e) {
    text("sub", "status unavailable: " + e.message);
  }
}
tick();
setInterval(tick, 1000);
</script>
</body>
</html>
`
