// Staffing: draw coverage against requirement with Chart.js (served from npm at /assets).
// The data comes from the canvas's data-chart attribute (JSON, HTML-escaped by Jinja);
// nothing is inserted as HTML.
(function () {
  "use strict";
  var COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

  function draw(canvas) {
    if (!window.Chart || canvas.dataset.drawn) { return; }
    var data = JSON.parse(canvas.dataset.chart || "{}");
    var groups = Object.keys(data.required || {});
    var sets = [];
    groups.forEach(function (g, i) {
      var colour = COLOURS[i % COLOURS.length];
      sets.push({ type: "bar", label: g + " required", data: data.required[g],
                  backgroundColor: colour + "55", borderColor: colour, borderWidth: 1 });
      if (data.coverage && data.coverage[g]) {
        sets.push({ type: "line", label: g + " scheduled", data: data.coverage[g],
                    borderColor: colour, backgroundColor: colour, stepped: "middle",
                    pointRadius: 2 });
      }
    });
    var old = window.Chart.getChart(canvas);
    if (old) { old.destroy(); }
    new window.Chart(canvas, {
      data: { labels: data.labels || [], datasets: sets },
      options: { animation: false, responsive: true,
                 scales: { y: { beginAtZero: true, title: { display: true, text: "agents" } } } }
    });
    canvas.dataset.drawn = "1";
  }

  function drawAll(root) {
    var scope = root && root.querySelectorAll ? root : document;
    scope.querySelectorAll("canvas[data-chart]").forEach(draw);
  }
  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:load", function (evt) { drawAll(evt.detail.elt); });
})();
