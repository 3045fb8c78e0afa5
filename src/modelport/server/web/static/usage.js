// The usage page's charts: uPlot (shipped in vendor/) drawing the timeline the server wrote
// into the page, one line per model or provider; redrawn for the theme and the width.
(function () {
  "use strict";

  // Distinct in both themes; the legend names each series too.
  var COLORS = ["#3b82f6", "#f97316", "#14b8a6", "#a855f7", "#eab308", "#ef4444", "#22c55e", "#64748b"];
  var FORMAT = {
    calls: function (v) { return v == null ? "–" : v.toLocaleString(); },
    tokens: function (v) { return v == null ? "–" : v.toLocaleString(); },
    cost_usd: function (v) { return v == null ? "–" : "$" + (v < 0.01 && v > 0 ? v.toPrecision(2) : v.toFixed(2)); },
    latency_ms: function (v) { return v == null ? "–" : v.toFixed(0) + " ms"; },
  };
  var WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8, 1e9];
  var charts = [];

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function draw() {
    var block = document.getElementById("usage-data");
    var box = document.getElementById("usage-charts");
    if (!block || !box || !window.uPlot) return;
    var data = JSON.parse(block.textContent);
    var xs = data.times.map(function (t) { return Date.parse(t) / 1000; });
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    var text = css("--text"), grid = css("--border");
    box.querySelectorAll(".chart").forEach(function (target) {
      var key = target.getAttribute("data-key");
      var series = [{}];
      var columns = [xs];
      data.series.forEach(function (s, i) {
        series.push({
          label: s.key,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          // A mean latency is drawn only where there were calls: as points, not a line.
          points: { show: key === "latency_ms" || xs.length < 40, size: key === "latency_ms" ? 7 : 5, fill: COLORS[i % COLORS.length] },
          spanGaps: key !== "latency_ms",
          value: function (u, v) { return FORMAT[key](v); },
        });
        columns.push(s[key]);
      });
      var axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
      var y = Object.assign({}, axis, {
        size: key === "cost_usd" ? 96 : 70,
        values: function (u, vals) { return vals.map(FORMAT[key]); },
      });
      // Calls and tokens are whole numbers: no tick between 1 and 2.
      if (key === "calls" || key === "tokens") y.incrs = WHOLE;
      var width = Math.max(280, target.clientWidth || box.clientWidth);
      var chart = new window.uPlot(
        {
          width: width,
          height: 220,
          series: series,
          axes: [axis, y],
          scales: { x: { time: true } },
          legend: { live: true },
          cursor: { drag: { x: false, y: false } },
        },
        columns,
        target
      );
      target.setAttribute("data-drawn", String(data.series.length));
      charts.push(chart);
    });
  }

  var pending = null;
  function redraw() {
    clearTimeout(pending);
    pending = setTimeout(draw, 150);
  }

  function setup() {
    draw();
    window.addEventListener("resize", redraw);
    // The theme toggle sets data-theme; the system's theme may change too.
    new MutationObserver(redraw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
    var form = document.getElementById("usage-form");
    if (form) {
      form.querySelectorAll("select").forEach(function (select) {
        select.addEventListener("change", function () { form.requestSubmit(); });
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
