// Market Spine dashboard: charts (vendored uPlot) and live updates (one EventSource per tab).
// Served from /ui/static; the Content-Security-Policy allows no inline script.
// A data domain's charts are in its own script (app/<domain>/static), which uses
// readJSON and mountChart from here (classic scripts share one global scope).
"use strict";

window.spineCharts = {};

function readJSON(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

function chartSize(el) {
  return { width: Math.max(el.clientWidth, 280), height: window.innerWidth < 640 ? 240 : 320 };
}

function mountChart(name, el, opts, data) {
  const chart = new uPlot({ ...opts, ...chartSize(el) }, data, el);
  window.spineCharts[name] = chart;
  window.addEventListener("resize", () => chart.setSize(chartSize(el)));
  return chart;
}

// A bar chart's x range, half a bar's step wider on each side: the first and last
// bars are drawn whole, not cut in half at the plot's edges.
function paddedX(half) {
  return (u, min, max) => (min == null ? [min, max] : [min - half, max + half]);
}

// Phone width: the menu is behind a button (app.css hides the nav under 640px).
function menuToggle() {
  const button = document.getElementById("menu-toggle");
  if (!button) return;
  button.addEventListener("click", () => {
    const open = button.closest("header").classList.toggle("open");
    button.setAttribute("aria-expanded", String(open));
  });
}

function throughputChart() {
  const data = readJSON("throughput-data");
  const el = document.getElementById("throughput-chart");
  if (!data || !el) return;
  const bars = uPlot.paths.bars({ size: [0.8, 12] });
  mountChart("throughput", el, {
    scales: { x: { time: true, range: paddedX(30) } },
    series: [
      {},
      { label: "completed", stroke: "#16794c", fill: "rgba(22,121,76,0.35)", paths: bars },
      { label: "failed", stroke: "#b42318", fill: "rgba(180,35,24,0.45)", paths: bars },
    ],
    axes: [{}, { label: "per minute" }],
  }, [data.x, data.completed, data.failed]);
}

// ---------------------------------------------------------------- live updates

const TERMINAL = ["completed", "failed", "cancelled"];

const POLL_MS = 5000;
const STREAM_AGAIN_MS = 60000;

// Live changes from one EventSource. A server at its cap on live streams
// (SPINE_UI_MAX_LIVE_STREAMS) answers 503 and the browser gives the stream up
// (readyState CLOSED): the page then calls `poll` every few seconds, and tries
// the stream again a minute later.
function connect(after, onChange, poll) {
  const dot = document.getElementById("live");
  if (dot) dot.hidden = false;
  let source = null;
  let timer = null;
  const open = () => {
    source = new EventSource("/ui/events?after=" + encodeURIComponent(after));
    source.addEventListener("open", () => dot && dot.classList.add("on"));
    source.addEventListener("error", () => {
      if (dot) dot.classList.remove("on");
      if (source.readyState === EventSource.CLOSED) pollAwhile();
    });
    source.addEventListener("change", (msg) => {
      const change = JSON.parse(msg.data);
      after = Math.max(Number(after) || 0, change.event_id);
      onChange(change);
    });
  };
  const pollAwhile = () => {
    const until = Date.now() + STREAM_AGAIN_MS;
    const tick = async () => {
      try {
        await poll();
      } catch (e) {
        // the server is busy or away: the next tick asks again
      }
      timer = Date.now() < until ? setTimeout(tick, POLL_MS) : (open(), null);
    };
    timer = setTimeout(tick, POLL_MS);
  };
  open();
  window.addEventListener("pagehide", () => {
    if (source) source.close();
    clearTimeout(timer);
  });
}

// The page as the server renders it now (for polling), or null.
async function freshPage() {
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return null;
  return new DOMParser().parseFromString(await response.text(), "text/html");
}

function setStatus(el, status) {
  el.textContent = status;
  el.className = "status status-" + status;
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function newRow(c) {
  const tr = document.createElement("tr");
  tr.dataset.id = c.execution_id;
  tr.className = "fresh";
  const link = document.createElement("a");
  link.className = "mono";
  link.href = "/ui/executions/" + encodeURIComponent(c.execution_id);
  link.textContent = c.execution_id.slice(-8);  // the random end: a time-ordered id starts with its time
  const first = document.createElement("td");
  first.appendChild(link);
  const status = document.createElement("span");
  setStatus(status, c.status);
  const statusCell = document.createElement("td");
  statusCell.appendChild(status);
  const created = c.created_at.replace("T", " ").slice(0, 19);
  tr.append(first, cell(c.pipeline), cell(c.lane), statusCell, cell(created, "mono"),
            cell((c.error || "").slice(0, 120), "error"));
  return tr;
}

function executionsList() {
  const table = document.getElementById("executions");
  if (!table) return;
  const body = table.tBodies[0];
  const wanted = table.dataset;
  const matches = (c) => (!wanted.status || wanted.status === c.status) &&
    (!wanted.pipeline || wanted.pipeline === c.pipeline) && (!wanted.lane || wanted.lane === c.lane);
  connect(wanted.after, (c) => {
    const row = body.querySelector('tr[data-id="' + CSS.escape(c.execution_id) + '"]');
    if (row) {
      setStatus(row.querySelector(".status"), c.status);
      row.querySelector(".error").textContent = (c.error || "").slice(0, 120);
    } else if (c.event_type === "created" && wanted.liveInsert === "yes" && matches(c)) {
      const empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      body.insertBefore(newRow(c), body.firstChild);
    }
  }, async () => {
    const fresh = await freshPage();
    const rows = fresh && fresh.getElementById("executions");
    if (rows) body.innerHTML = rows.tBodies[0].innerHTML;
  });
}

function executionDetail() {
  const section = document.getElementById("execution");
  if (!section) return;
  const id = section.dataset.id;
  const status = document.getElementById("status");
  const progress = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const timeline = document.getElementById("timeline");
  // A button's form is on its way (cancel, retry): its answer is the fresh page, and a
  // reload now would abort it.
  let leaving = false;
  document.addEventListener("submit", () => { leaving = true; });
  const showAfresh = () => { if (!leaving) window.location.replace(window.location.pathname); };
  connect(section.dataset.after, (c) => {
    if (c.execution_id !== id || timeline.querySelector('[data-event="' + c.event_id + '"]')) return;
    setStatus(status, c.status);
    const li = document.createElement("li");
    li.dataset.event = c.event_id;
    const when = document.createElement("span");
    when.className = "mono";
    when.textContent = c.timestamp.replace("T", " ").slice(0, 19) + " ";
    const what = document.createElement("b");
    what.textContent = c.event_type;
    li.append(when, what);
    if (Object.keys(c.payload).length) {
      const { traceback, ...rest } = c.payload;
      const code = document.createElement("code");
      code.textContent = " " + JSON.stringify(rest);
      li.append(code);
      if (traceback) {  // as text, lines and all, not as an escaped JSON string
        const details = document.createElement("details");
        const summary = document.createElement("summary");
        summary.textContent = "Traceback";
        const pre = document.createElement("pre");
        pre.className = "traceback";
        pre.textContent = traceback;
        details.append(summary, pre);
        li.append(details);
      }
    }
    timeline.appendChild(li);
    if (c.event_type === "progress" && c.payload.total) {
      progress.max = c.payload.total;
      progress.value = c.payload.done;
      progressText.textContent = c.payload.message || "";
    }
    // The end changes which buttons apply and may bring an error: show the page afresh.
    if (TERMINAL.includes(c.event_type) && section.dataset.status !== c.status) showAfresh();
  }, async () => {
    const fresh = await freshPage();
    const now = fresh && fresh.getElementById("execution");
    const events = fresh && fresh.getElementById("timeline");
    if (!now || !events) return;
    if (now.dataset.status !== section.dataset.status ||
        events.children.length !== timeline.children.length) showAfresh();
  });
}

// The overview is rendered again by the server (at most every 2 s) when something
// changed, and its parts are swapped in place: counts, backlog, workers, chart.
function overviewLive() {
  const grid = document.getElementById("overview");
  if (!grid) return;
  let pending = null;
  const refresh = async () => {
    pending = null;
    const fresh = await freshPage();
    if (!fresh) return;
    for (const id of ["counts", "oldest", "workers", "totals", "schedules"]) {
      const now = fresh.getElementById(id);
      if (now) document.getElementById(id).innerHTML = now.innerHTML;
    }
    const data = JSON.parse(fresh.getElementById("throughput-data").textContent);
    const chart = window.spineCharts.throughput;
    if (chart) chart.setData([data.x, data.completed, data.failed]);
  };
  connect(grid.dataset.after, () => {
    if (!pending) pending = setTimeout(refresh, 2000);
  }, refresh);
}

document.addEventListener("DOMContentLoaded", () => {
  menuToggle();
  overviewLive();
  throughputChart();
  executionsList();
  executionDetail();
});
