"""The live page: one HTML document that polls the JSON routes and redraws itself.

No framework and nothing loaded from elsewhere (the page's CSP forbids it). Values
from the scheduler (job ids, reasons) are written with ``textContent``, never as
HTML, so a job named ``<script>`` stays text.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PAGE"]

PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>eventsched</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  h2 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
  #status { color: #666; margin-bottom: 1rem; }
  .cards { display: flex; flex-wrap: wrap; gap: .7rem; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6rem .9rem;
          min-width: 9rem; }
  .card .label { color: #666; font-size: .8rem; }
  .card .value { font-size: 1.4rem; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; background: #fff; }
  th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left;
           font-variant-numeric: tabular-nums; }
  th { background: #f0f0f0; }
  .bad { color: #b00020; }
</style>
</head>
<body>
<h1>eventsched</h1>
<div id="status">connecting&hellip;</div>
<div class="cards">
  <div class="card"><div class="label">state</div><div class="value" id="state">-</div></div>
  <div class="card"><div class="label">queue depth / capacity</div>
    <div class="value" id="queue">-</div></div>
  <div class="card"><div class="label">handled per second</div>
    <div class="value" id="rate">-</div></div>
  <div class="card"><div class="label">latency p50 / p99 (ms)</div>
    <div class="value" id="latency">-</div></div>
  <div class="card"><div class="label">handled / failed / timed out</div>
    <div class="value" id="outcomes">-</div></div>
  <div class="card"><div class="label">unaccounted</div>
    <div class="value" id="unaccounted">-</div></div>
</div>
<h2>Drops and rejections by reason</h2>
<table><thead><tr><th>kind</th><th>reason</th><th>count</th></tr></thead>
<tbody id="losses"></tbody></table>
<h2>Jobs</h2>
<table><thead><tr><th>id</th><th>trigger</th><th>next fire</th><th>last fire</th>
<th>runs</th><th>failures</th><th>paused</th></tr></thead>
<tbody id="jobs"></tbody></table>
<script>
"use strict";
let previous = null;
function text(id, value) { document.getElementById(id).textContent = value; }
function when(iso) {
  if (iso === null) { return "-"; }
  const at = new Date(iso);
  const seconds = Math.round((at.getTime() - Date.now()) / 1000);
  const relative = seconds >= 0 ? "in " + seconds + " s" : -seconds + " s ago";
  return at.toLocaleString() + " (" + relative + ")";
}
function ms(seconds) { return seconds === null ? "-" : (seconds * 1000).toFixed(2); }
function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = cell === null ? "-" : String(cell);
    tr.appendChild(td);
  }
  return tr;
}
async function refresh() {
  try {
    const [stats, jobs] = await Promise.all(
      ["api/stats", "api/jobs"].map((url) => fetch(url).then((r) => r.json())));
    const e = stats.events;
    const now = performance.now();
    text("state", stats.state);
    text("queue", e.still_queued + " / " + e.queue_capacity);
    if (previous !== null && now > previous.at) {
      const rate = (e.handled - previous.handled) / ((now - previous.at) / 1000);
      text("rate", rate.toFixed(1));
    }
    previous = { at: now, handled: e.handled };
    text("latency", ms(e.latency_p50) + " / " + ms(e.latency_p99));
    text("outcomes", e.handled + " / " + e.failed + " / " + e.timed_out);
    text("unaccounted", e.unaccounted);
    document.getElementById("unaccounted").className = e.unaccounted ? "value bad" : "value";
    const losses = document.getElementById("losses");
    losses.replaceChildren();
    for (const [kind, counts] of [["dropped", e.dropped], ["rejected", e.rejected]]) {
      for (const [reason, count] of Object.entries(counts)) {
        losses.appendChild(row([kind, reason, count]));
      }
    }
    if (!losses.children.length) { losses.appendChild(row(["-", "none", 0])); }
    const table = document.getElementById("jobs");
    table.replaceChildren();
    for (const job of jobs) {
      table.appendChild(row([job.id, job.trigger, when(job.next_fire_time),
                             when(job.last_fire_time), job.runs, job.failures,
                             job.paused ? "yes" : "no"]));
    }
    text("status", "updated " + new Date().toLocaleTimeString());
  } catch (error) {
    text("status", "not reachable: " + error);
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"""
