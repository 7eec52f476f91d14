// Report charts (Chart.js, served locally). Every chart repeats a data table printed under it.
(function () {
  "use strict";
  if (typeof Chart !== "function") { return; }
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var COLOURS = {phone: "#1d70b8", email: "#4c2c92", webchat: "#00703c", web_form: "#f47738",
                 open311: "#85994b", face_to_face: "#d4351c", letter: "#505a5f"};
  var reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  Chart.defaults.animation = reduceMotion ? false : Chart.defaults.animation;
  Chart.defaults.maintainAspectRatio = false;

  var channels = [];
  data.series.forEach(function (row) {
    Object.keys(row).forEach(function (k) { if (k !== "period" && channels.indexOf(k) < 0) { channels.push(k); } });
  });
  new Chart(document.getElementById("chart-periods"), {
    type: "bar",
    data: {
      labels: data.series.map(function (r) { return r.period; }),
      datasets: channels.map(function (c) {
        return {label: c, data: data.series.map(function (r) { return r[c] || 0; }), backgroundColor: COLOURS[c] || "#6f777b"};
      })
    },
    options: {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}}}
  });

  new Chart(document.getElementById("chart-shift"), {
    type: "line",
    data: {
      labels: data.shift.map(function (m) { return m.month; }),
      datasets: [
        {label: "Estimated cost (£)", data: data.shift.map(function (m) { return m.estimated_cost_gbp; }), borderColor: "#00703c", backgroundColor: "#00703c"},
        {label: "All-phone baseline (£)", data: data.shift.map(function (m) { return m.all_phone_baseline_gbp; }), borderColor: "#d4351c", backgroundColor: "#d4351c", borderDash: [6, 4]}
      ]
    },
    options: {scales: {y: {beginAtZero: true}}}
  });
}());
