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
          points: { show: xs.length < 40 },
          spanGaps: key !== "latency_ms",
          value: function (u, v) { return FORMAT[key](v); },
        });
        columns.push(s[key]);
      });
      var axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
      var width = Math.max(280, target.clientWidth || box.clientWidth);
      var chart = new window.uPlot(
        {
          width: width,
          height: 220,
          series: series,
          axes: [axis, Object.assign({}, axis, { size: 70, values: function (u, vals) { return vals.map(FORMAT[key]); } })],
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
