// FINRA's dashboard chart: a week's venue market share (finra.html).
// Uses readJSON and mountChart from /ui/static/app.js, loaded before this script.
"use strict";

// A week's venues as bars: x is the rank (0-based), labelled with the MPID.
function venueChart() {
  const data = readJSON("venue-data");
  const el = document.getElementById("venue-chart");
  if (!data || !el || data.x.length === 0) return;
  const mpid = (i) => (Number.isInteger(i) && data.mpid[i] !== undefined ? data.mpid[i] : "");
  mountChart("venues", el, {
    scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] },
              y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
    series: [
      { label: "venue", value: (u, i) => (i == null ? "--" : mpid(i)) },
      { label: "share of shares %", stroke: "#1f5fbf", fill: "rgba(31,95,191,0.45)",
        paths: uPlot.paths.bars({ size: [0.7, 48] }), points: { show: false } },
    ],
    axes: [
      { incrs: [1, 2, 5], space: 40, values: (u, splits) => splits.map(mpid) },
      { label: "% of shares" },
    ],
  }, [data.x, data.pct]);
}

document.addEventListener("DOMContentLoaded", venueChart);
