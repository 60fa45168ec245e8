// Report charts, drawn by Chart.js (installed from npm, served from /assets): the page puts
// the figures in a JSON script tag, this file only maps them onto charts.
(function () {
  "use strict";
  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return null;
    config.options = Object.assign({ responsive: true, animation: false }, config.options || {});
    var made = new Chart(canvas, config);
    canvas.dataset.rendered = "1";
    return made;
  }
  var STATE_COLOURS = { ready: "#2e7d32", not_ready: "#c62828", busy: "#1565c0", wrap_up: "#f9a825" };

  function reportCharts(d) {
    chart("chart-volume", {
      type: "bar",
      data: { labels: d.labels, datasets: [
        { label: "Offered", data: d.offered, backgroundColor: "#90a4ae" },
        { label: "Answered", data: d.answered, backgroundColor: "#1565c0" },
        { label: "Abandoned", data: d.abandoned, backgroundColor: "#c62828" },
        { label: "Agents required", data: d.required, type: "line", borderColor: "#f9a825",
          backgroundColor: "#f9a825", stepped: "middle", yAxisID: "y1" }
      ] },
      options: { scales: { y: { beginAtZero: true, position: "left", title: { display: true, text: "contacts" } },
        y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "agents" } } } }
    });
    chart("chart-sl", {
      type: "line",
      data: { labels: d.labels, datasets: [
        { label: "Service level %", data: d.sl, borderColor: "#2e7d32", yAxisID: "y" },
        { label: "ASA s", data: d.asa, borderColor: "#6a1b9a", yAxisID: "y1" }
      ] },
      options: { scales: { y: { min: 0, max: 100, position: "left" }, y1: { min: 0, position: "right", grid: { drawOnChartArea: false } } } }
    });
    chart("chart-wait", {
      type: "bar",
      data: { labels: d.bins, datasets: [
        { label: "Answered", data: d.hist_answered, backgroundColor: "#1565c0" },
        { label: "Abandoned", data: d.hist_abandoned, backgroundColor: "#c62828" }
      ] },
      options: { scales: { x: { stacked: true }, y: { stacked: true } } }
    });
    chart("chart-aht", {
      type: "bar",
      data: { labels: d.agents, datasets: [
        { label: "Talk / chat", data: d.talk, backgroundColor: "#1565c0" },
        { label: "Hold", data: d.hold, backgroundColor: "#90a4ae" },
        { label: "Wrap-up", data: d.wrap, backgroundColor: "#f9a825" }
      ] },
      options: { indexAxis: "y", scales: { x: { stacked: true }, y: { stacked: true } } }
    });
    var days = [];
    d.heat.forEach(function (c) { if (days.indexOf(c.day) < 0) days.push(c.day); });
    var most = Math.max.apply(null, [1].concat(d.heat.map(function (c) { return c.v; })));
    chart("chart-heat", {
      type: "matrix",
      data: { datasets: [{
        label: "Offered",
        data: d.heat.map(function (c) { return { x: c.hour, y: c.day, v: c.v }; }),
        backgroundColor: function (ctx) {
          var v = ctx.raw ? ctx.raw.v : 0;
          return "rgba(21, 101, 192, " + (0.08 + 0.92 * v / most).toFixed(2) + ")";
        },
        width: function (ctx) { var a = ctx.chart.chartArea; return a ? a.width / 24 - 1 : 10; },
        height: function (ctx) { var a = ctx.chart.chartArea; return a ? a.height / Math.max(days.length, 1) - 1 : 10; }
      }] },
      options: {
        aspectRatio: 3,
        plugins: { legend: { display: false } },
        scales: {
          x: { type: "linear", min: -0.5, max: 23.5, offset: false,
               afterBuildTicks: function (axis) {
                 axis.ticks = []; for (var h = 0; h < 24; h++) axis.ticks.push({ value: h });
               },
               ticks: { callback: function (v) { return v + ":00"; } } },
          y: { type: "category", labels: days, offset: true }
        }
      }
    });
  }

  function timelineChart(t) {
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var offset = t.offset_minutes[0] * 60000;
    var states = Object.keys(STATE_COLOURS);
    chart("chart-timeline", {
      type: "bar",
      data: { labels: t.agents, datasets: states.map(function (state) {
        return {
          label: state,
          backgroundColor: STATE_COLOURS[state],
          data: t.spans.filter(function (s) { return s.state === state; })
            .map(function (s) { return { y: s.agent, x: [s.from, s.to], reason: s.reason }; }),
          grouped: false
        };
      }) },
      options: {
        indexAxis: "y",
        scales: { x: { type: "linear", min: t.start, max: t.end, ticks: { callback: function (v) {
          var d = new Date(v + offset);
          return d.getUTCDate() + " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
        } } } }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var d = data("report-data");
    if (d) reportCharts(d);
    var t = data("timeline-data");
    if (t) timelineChart(t);
  });
})();
