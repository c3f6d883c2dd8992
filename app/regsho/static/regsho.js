// Reg SHO's dashboard chart: a symbol's daily short ratio over its total volume (regsho.html).
// Uses readJSON, mountChart and paddedX from /ui/static/app.js, loaded before this script.
"use strict";

function regshoDay(ts) {
  return new Date(ts * 1000).toISOString().slice(0, 10);
}

function regshoCompact(n) {
  if (n >= 1e6) return +(n / 1e6).toFixed(2) + "M";
  if (n >= 1e3) return +(n / 1e3).toFixed(1) + "k";
  return String(n);
}

function regshoChart() {
  const data = readJSON("regsho-data");
  const el = document.getElementById("regsho-chart");
  if (!data || !el || data.x.length === 0) return;
  mountChart("regsho", el, {
    scales: { x: { time: true, range: paddedX(43200) },
              pct: { range: [0, 100] },
              vol: { range: (u, min, max) => [0, max * 1.5 || 1] } },
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    series: [
      { label: "date", value: (u, ts) => (ts == null ? "--" : regshoDay(ts)) },
      { label: "total volume", scale: "vol", stroke: "#9aa3ad", fill: "rgba(154,163,173,0.45)",
        paths: uPlot.paths.bars({ size: [0.6, 24] }), points: { show: false } },
      { label: "short ratio %", scale: "pct", stroke: "#c0392b", width: 2 },
    ],
    axes: [
      { space: 70, incrs: [86400, 7 * 86400, 28 * 86400], values: (u, splits) => splits.map(regshoDay) },
      { scale: "pct", label: "short ratio %" },
      { scale: "vol", side: 1, label: "total volume", grid: { show: false }, size: 60,
        values: (u, splits) => splits.map(regshoCompact) },
    ],
  }, [data.x, data.volume, data.ratio]);
}

document.addEventListener("DOMContentLoaded", regshoChart);
