// FTD's dashboard chart: a symbol's fails over time (ftd.html), shares as bars, value as a line.
// Uses readJSON, mountChart and paddedX from /ui/static/app.js, loaded before this script.
"use strict";

function ftdDay(ts) {
  return new Date(ts * 1000).toISOString().slice(0, 10);
}

function ftdCompact(n) {
  if (n >= 1e9) return +(n / 1e9).toFixed(2) + "B";
  if (n >= 1e6) return +(n / 1e6).toFixed(2) + "M";
  if (n >= 1e3) return +(n / 1e3).toFixed(1) + "k";
  return String(n);
}

function ftdChart() {
  const data = readJSON("ftd-data");
  const el = document.getElementById("ftd-chart");
  if (!data || !el || data.x.length === 0) return;
  mountChart("ftd", el, {
    scales: { x: { time: true, range: paddedX(43200) },
              shares: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] },
              value: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    series: [
      { label: "date", value: (u, ts) => (ts == null ? "--" : ftdDay(ts)) },
      { label: "shares failed", scale: "shares", stroke: "#9aa3ad", fill: "rgba(154,163,173,0.45)",
        paths: uPlot.paths.bars({ size: [0.6, 24] }), points: { show: false } },
      { label: "value", scale: "value", stroke: "#1f5fbf", width: 2, spanGaps: false },
    ],
    axes: [
      { space: 70, incrs: [86400, 7 * 86400, 28 * 86400], values: (u, splits) => splits.map(ftdDay) },
      { scale: "value", label: "value", size: 60, values: (u, splits) => splits.map(ftdCompact) },
      { scale: "shares", side: 1, label: "shares", grid: { show: false }, size: 60,
        values: (u, splits) => splits.map(ftdCompact) },
    ],
  }, [data.x, data.quantity, data.value]);
}

document.addEventListener("DOMContentLoaded", ftdChart);
