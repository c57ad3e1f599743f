// Draws the hub's charts with Chart.js: each <canvas data-chart> has its data, as JSON, in the
// <script type="application/json" id="<canvas id>-data"> beside it.
(function () {
  "use strict";
  const colors = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#65a30d", "#db2777"];
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    const source = document.getElementById(canvas.id + "-data");
    if (!source) return;
    const series = JSON.parse(source.textContent);
    if (typeof Chart === "undefined") {
      canvas.replaceWith(document.createTextNode("Chart.js did not load: no chart."));
      return;
    }
    const many = series.type === "bar" && series.labels.length <= colors.length && canvas.dataset.chart === "earned";
    new Chart(canvas, {
      type: series.type,
      data: {
        labels: series.labels,
        datasets: [{
          label: series.label,
          data: series.values,
          backgroundColor: many ? colors.slice(0, series.values.length) : colors[0],
          borderColor: colors[0],
          borderWidth: series.type === "line" ? 2 : 0,
          pointRadius: series.type === "line" && series.values.length > 60 ? 0 : 2,
          fill: false,
        }],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: canvas.dataset.chart === "earned" ? "y" : "x",
        plugins: { legend: { display: false } },
        scales: { x: { ticks: { maxTicksLimit: 10 } }, y: { beginAtZero: true } },
      },
    });
  });
})();
