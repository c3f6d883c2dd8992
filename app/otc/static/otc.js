// OTC's dashboard charts: a symbol's daily VWAP, high-low band and volume (market.html).
// Uses readJSON and mountChart from /ui/static/app.js, loaded before this script.
"use strict";

function day(ts) {
  return new Date(ts * 1000).toISOString().slice(0, 10);
}

function compact(n) {
  if (n >= 1e6) return +(n / 1e6).toFixed(2) + "M";
  if (n >= 1e3) return +(n / 1e3).toFixed(1) + "k";
  return String(n);
}

function symbolChart() {
  const data = readJSON("symbol-data");
  const el = document.getElementById("symbol-chart");
  if (!data || !el || data.x.length === 0) return;
  mountChart("symbol", el, {
    scales: { x: { time: true }, vol: { range: (u, min, max) => [0, max * 3 || 1] } },
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    series: [
      { label: "date", value: (u, ts) => (ts == null ? "--" : day(ts)) },
      { label: "VWAP", stroke: "#1f5fbf", width: 2 },
      { label: "high", stroke: "rgba(31,95,191,0.35)", width: 1 },
      { label: "low", stroke: "rgba(31,95,191,0.35)", width: 1 },
      { label: "volume", scale: "vol", stroke: "#9aa3ad", fill: "rgba(154,163,173,0.45)",
        paths: uPlot.paths.bars({ size: [0.6, 24] }) },
    ],
    bands: [{ series: [2, 3], fill: "rgba(31,95,191,0.12)" }],
    axes: [
      { space: 70, incrs: [86400, 7 * 86400, 28 * 86400], values: (u, splits) => splits.map(day) },
      { label: "price" },
      { scale: "vol", side: 1, label: "volume", grid: { show: false }, size: 60,
        values: (u, splits) => splits.map(compact) },
    ],
  }, [data.x, data.vwap, data.high, data.low, data.volume]);
}

document.addEventListener("DOMContentLoaded", symbolChart);
