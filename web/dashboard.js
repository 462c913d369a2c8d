/* offerloop's live dashboard: polls GET stats?minutes=60 every 2 s (a relative URL: this page is
   /api/dashboard, so it asks /api/stats) and updates its charts in place. Errors go to the status
   line, never to the console: the browser tests fail on console errors. */
(function () {
  "use strict";

  const POLL_MS = 2000;
  const STATS_URL = "stats?minutes=60";
  const PALETTE = ["#1f6feb", "#e36209", "#1a7f37", "#8250df", "#bf3989", "#0a7ea4", "#9a6700", "#57606a",
                   "#cf222e", "#2da44e"];
  const $ = (id) => document.getElementById(id);
  const count = new Intl.NumberFormat("en-US");
  const charts = {};
  let offers = [];  // the top offers last shown, for the bar chart's tooltip
  let promotionsShown = null;

  function percent(ctr, digits = 2) {
    return ctr === null || ctr === undefined ? "—" : (100 * ctr).toFixed(digits) + " %";
  }

  function clock(iso, seconds) {
    const time = new Date(iso);
    if (Number.isNaN(time.getTime())) return "";
    const parts = seconds ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
    return time.toLocaleTimeString([], parts);
  }

  function setText(id, text) {
    const element = $(id);
    if (element.textContent !== text) element.textContent = text;
  }

  function showStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status " + kind;
  }

  // ---------- charts: created once, then only their data changes ----------

  function lineChart(id, percentAxis) {
    return new window.Chart($(id), {
      type: "line",
      data: { labels: [], datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
        interaction: { mode: "index", intersect: false },
        elements: { point: { radius: 2, hitRadius: 6 }, line: { borderWidth: 2, tension: 0.25 } },
        scales: {
          x: { ticks: { maxTicksLimit: 8, maxRotation: 0 } },
          y: { beginAtZero: true, ticks: percentAxis ? { callback: (v) => percent(v, 1) } : {} },
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: percentAxis ? { callbacks: { label: (c) => `${c.dataset.label}: ${percent(c.parsed.y)}` } } : {},
        },
      },
    });
  }

  function offersChart() {
    return new window.Chart($("chart-offers"), {
      type: "bar",
      data: { labels: [], datasets: [{ label: "clicks", data: [], backgroundColor: "#1f6feb" }] },
      options: {
        indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { ticks: { autoSkip: false } } },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items) => (offers[items[0].dataIndex] || {}).title || items[0].label,
              label: (c) => `${count.format(c.parsed.x)} clicks`,
              afterLabel: (c) => {
                const offer = offers[c.dataIndex] || {};
                return [`CTR ${percent(offer.ctr)} of ${count.format(offer.impressions || 0)} impressions`,
                        [offer.kind, offer.category].filter(Boolean).join(" · ")];
              },
            },
          },
        },
      },
    });
  }

  function createCharts() {
    if (typeof window.Chart !== "function") return false;
    charts.model = lineChart("chart-model", true);
    charts.kind = lineChart("chart-kind", true);
    charts.simulation = lineChart("chart-simulation", true);
    charts.rate = lineChart("chart-rate", false);
    charts.offers = offersChart();
    return true;
  }

  // A series keeps its dataset object (so its colour and legend state) from one poll to the next:
  // existing ones stay in place, new ones are appended, vanished ones removed.
  function setSeries(chart, labels, series) {
    const kept = new Map(chart.data.datasets.map((d) => [d.label, d]));
    const wanted = new Map(series.map((s) => [s.label, s]));
    const datasets = chart.data.datasets.filter((d) => wanted.has(d.label));
    chart.$colours = chart.$colours || 0;
    for (const s of series) {
      let dataset = kept.get(s.label);
      if (!dataset) {
        const colour = s.colour || PALETTE[chart.$colours++ % PALETTE.length];
        dataset = { label: s.label, borderColor: colour, backgroundColor: colour, borderDash: s.dash || [] };
        datasets.push(dataset);
      }
      dataset.data = s.data;
    }
    chart.data.labels = labels;
    chart.data.datasets = datasets;
    chart.update();
  }

  // byModel / byKind series hold only the minutes with impressions: place them on the window's minutes.
  function onMinutes(minutes, points, value) {
    const data = new Array(minutes.size).fill(null);
    for (const point of points || []) {
      const index = minutes.get(Date.parse(point.time));
      if (index !== undefined) data[index] = value(point);
    }
    return data;
  }

  function drawCharts(stats) {
    const series = stats.series || [];
    const labels = series.map((p) => clock(p.time));
    const minutes = new Map(series.map((p, i) => [Date.parse(p.time), i]));
    const bucket = stats.bucketSeconds || 60;
    setSeries(charts.model, labels, (stats.byModel || []).map((m) => ({
      label: m.version, data: onMinutes(minutes, m.series, (p) => p.ctr) })));
    setSeries(charts.kind, labels, (stats.byKind || []).map((k) => ({
      label: k.kind, data: onMinutes(minutes, k.series, (p) => p.ctr) })));
    setSeries(charts.rate, labels, [
      { label: "impressions / s", data: series.map((p) => p.impressions / bucket), colour: "#1f6feb" },
      { label: "events / s", data: series.map((p) => p.eventsPerSecond), colour: "#e36209" },
    ]);
    drawSimulation(stats.simulation);
    offers = stats.offers || [];
    const bars = charts.offers;
    bars.data.labels = offers.map((o) => shorten(o.title || o.offerId, 32));
    bars.data.datasets[0].data = offers.map((o) => o.clicks);
    bars.update();
  }

  function drawSimulation(simulation) {
    const curve = (simulation && simulation.curve) || [];
    const state = simulation ? simulation.state : null;
    let note = "";
    if (!simulation || state === "idle" || !state) {
      note = "No simulation runs: start one with POST /api/simulation/start to compare against random and oracle.";
    } else if (!curve.length) {
      note = `The simulation is ${state}; its first minute is not complete yet.`;
    } else if (state !== "running") {
      note = `The simulation is ${state}; this is its last run.`;
    }
    setText("simulation-note", note);
    setSeries(charts.simulation, curve.map((p) => clock(p.minute)), [
      { label: "achieved", data: curve.map((p) => p.ctr), colour: "#1f6feb" },
      { label: "random", data: curve.map((p) => p.randomCtr), colour: "#8c959f", dash: [6, 4] },
      { label: "oracle", data: curve.map((p) => p.oracleCtr), colour: "#1a7f37", dash: [2, 3] },
    ]);
  }

  function shorten(text, length) {
    return text.length > length ? text.slice(0, length - 1) + "…" : text;
  }

  // ---------- numbers and the promotions table ----------

  // The model serving now: the version with the latest minute of impressions.
  function servingModel(byModel) {
    let best = null;
    let latest = -Infinity;
    for (const model of byModel || []) {
      const points = model.series || [];
      const last = points.length ? Date.parse(points[points.length - 1].time) : -Infinity;
      if (best === null || last > latest) {
        best = model.version;
        latest = last;
      }
    }
    return best;
  }

  function drawHeadline(stats) {
    const totals = stats.totals || {};
    setText("total-impressions", count.format(totals.impressions || 0));
    setText("total-clicks", count.format(totals.clicks || 0));
    setText("total-ctr", percent(totals.ctr));
    const rate = stats.eventsPerSecond || 0;
    setText("events-per-second", rate.toFixed(rate < 10 ? 2 : 1));
    setText("model-version", servingModel(stats.byModel) || "—");
    const updated = $("last-updated");
    updated.textContent = clock(stats.generatedAt, true) || new Date().toLocaleTimeString();
    updated.title = stats.generatedAt || "";
  }

  function estimate(value) {
    if (!value) return "—";
    const bounds = value.low !== undefined && value.low !== null ? ` [${percent(value.low)}, ${percent(value.high)}]` : "";
    return percent(value.estimate) + bounds;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
  }

  function drawPromotions(promotions) {
    const key = JSON.stringify(promotions || []);
    if (key === promotionsShown) return;
    promotionsShown = key;
    const body = $("promotions");
    const rows = (promotions || []).map((p) => {
      const row = document.createElement("tr");
      cell(row, p.version || "—");
      cell(row, p.time ? new Date(p.time).toLocaleString() : "—");
      cell(row, p.promoted ? "yes" : "no", p.promoted ? "yes" : "no");
      cell(row, estimate(p.candidate));
      cell(row, p.current ? `${p.current.version || ""} ${estimate(p.current)}`.trim() : "—");
      cell(row, p.reason || "", "reason");
      row.lastChild.title = p.reason || "";  // the whole reason on hover; the cell shows its start
      return row;
    });
    if (!rows.length) {
      const row = document.createElement("tr");
      cell(row, "No retrain reports yet.", "muted");
      row.firstChild.colSpan = 6;
      rows.push(row);
    }
    body.replaceChildren(...rows);
  }

  // ---------- polling ----------

  async function poll() {
    if (document.hidden) return;
    let response;
    try {
      response = await fetch(STATS_URL, { cache: "no-store", headers: { Accept: "application/json" } });
    } catch (error) {
      showStatus(`Cannot reach the app (${error.message}); retrying every ${POLL_MS / 1000} s.`, "error");
      return;
    }
    if (!response.ok) {
      showStatus(`Statistics unavailable (${await window.offerloop.failure(response)}); retrying every ${POLL_MS / 1000} s.`, "error");
      return;
    }
    let stats;
    try {
      stats = await response.json();
    } catch (error) {
      showStatus(`The statistics were not JSON (${error.message}); retrying.`, "error");
      return;
    }
    drawHeadline(stats);
    drawPromotions(stats.promotions);
    if (charts.model) {
      drawCharts(stats);
      showStatus("Live", "ok");
    } else {
      showStatus("Live; the charts are unavailable because Chart.js did not load.", "error");
    }
  }

  async function loop() {
    try {
      await poll();
    } catch (error) {  // a bug drawing an answer: say so, keep polling
      showStatus(`Could not show the statistics: ${error.message}`, "error");
    }
    window.setTimeout(loop, POLL_MS);
  }

  createCharts();
  loop();
})();
