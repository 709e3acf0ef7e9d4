// Quality dashboard: draws small inline SVG charts from the figures the server stored.
// Data comes from json_script; every label is set with textContent (never innerHTML).
(function () {
  "use strict";
  const source = document.getElementById("quality-data");
  if (!source) return;
  const data = JSON.parse(source.textContent);
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = { expert: "#0a58ca", generalist: "#1a7f37", none: "#b26b00", any: "#6e7781" };
  const WIDTH = 520;

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, String(v)));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(container, height, label) {
    const root = el("svg", { viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", role: "img", "aria-label": label });
    container.appendChild(root);
    return root;
  }

  function empty(container, text) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = text || "No data yet.";
    container.appendChild(p);
  }

  function fmt(v, digits) {
    return v === null || v === undefined ? "–" : Number(v).toFixed(digits === undefined ? 2 : digits);
  }

  // Horizontal bars: rows [{label, value, low?, high?, n?}], value may be null (drawn as "–").
  function barChart(id, rows, opts) {
    const box = document.getElementById(id);
    if (!box) return;
    if (!rows.length) return empty(box);
    const o = Object.assign({ min: 0, max: null, digits: 2, color: "#0a58ca" }, opts || {});
    const values = rows.flatMap((r) => [r.value, r.low, r.high]).filter((v) => v !== null && v !== undefined);
    const lo = Math.min(o.min, ...values);
    const hi = o.max !== null ? Math.max(o.max, ...values) : Math.max(1, ...values);
    const left = 130, right = 60, rowH = 24, top = 8;
    const height = top + rows.length * rowH + 24;
    const root = svg(box, height, box.querySelector("figcaption").textContent);
    const x = (v) => left + ((v - lo) / (hi - lo || 1)) * (WIDTH - left - right);
    root.appendChild(el("line", { x1: x(Math.max(lo, 0)), x2: x(Math.max(lo, 0)), y1: top, y2: height - 20, stroke: "#57606a" }));
    rows.forEach((r, i) => {
      const y = top + i * rowH;
      const name = el("text", { x: left - 6, y: y + 16, "text-anchor": "end", "font-size": 12 });
      name.textContent = r.label.length > 18 ? r.label.slice(0, 17) + "…" : r.label;
      name.appendChild(el("title", {}, r.label));
      root.appendChild(name);
      if (r.value !== null && r.value !== undefined) {
        const x0 = x(Math.max(lo, 0)), x1 = x(r.value);
        const bar = el("rect", { x: Math.min(x0, x1), y: y + 4, width: Math.max(1, Math.abs(x1 - x0)), height: rowH - 8, fill: o.color, "fill-opacity": 0.8 });
        bar.appendChild(el("title", {}, `${r.label}: ${fmt(r.value, o.digits)}${r.n !== undefined ? ` (n=${r.n})` : ""}`));
        root.appendChild(bar);
      }
      if (r.low !== null && r.low !== undefined && r.high !== null && r.high !== undefined) {
        const cy = y + rowH / 2;
        root.appendChild(el("line", { x1: x(r.low), x2: x(r.high), y1: cy, y2: cy, stroke: "#1f2328", "stroke-width": 1.5 }));
        [r.low, r.high].forEach((v) => root.appendChild(el("line", { x1: x(v), x2: x(v), y1: cy - 5, y2: cy + 5, stroke: "#1f2328" })));
      }
      root.appendChild(el("text", { x: WIDTH - right + 6, y: y + 16, "font-size": 12 }, fmt(r.value, o.digits)));
    });
    if (o.threshold !== undefined && o.threshold !== null) {
      root.appendChild(el("line", { x1: x(o.threshold), x2: x(o.threshold), y1: top, y2: height - 20, stroke: "#b42318", "stroke-dasharray": "4 3" }));
    }
    [lo, hi].forEach((v, k) => root.appendChild(el("text", { x: x(v), y: height - 6, "font-size": 11, "text-anchor": k ? "end" : "start", fill: "#57606a" }, fmt(v, o.digits))));
  }

  // Cumulative lines over dates: points [{date, ...}], series [{key, label, color}].
  function lineChart(id, points, series) {
    const box = document.getElementById(id);
    if (!box) return;
    if (!points.length) return empty(box);
    const height = 200, left = 50, right = 16, top = 24, bottom = 28;
    const root = svg(box, height, box.querySelector("figcaption").textContent);
    const max = Math.max(1, ...points.flatMap((p) => series.map((s) => p[s.key])));
    const x = (i) => left + (points.length === 1 ? 0.5 : i / (points.length - 1)) * (WIDTH - left - right);
    const y = (v) => top + (1 - v / max) * (height - top - bottom);
    root.appendChild(el("line", { x1: left, x2: left, y1: top, y2: height - bottom, stroke: "#57606a" }));
    root.appendChild(el("line", { x1: left, x2: WIDTH - right, y1: height - bottom, y2: height - bottom, stroke: "#57606a" }));
    root.appendChild(el("text", { x: left - 4, y: top + 4, "text-anchor": "end", "font-size": 11 }, String(max)));
    root.appendChild(el("text", { x: left - 4, y: height - bottom, "text-anchor": "end", "font-size": 11 }, "0"));
    root.appendChild(el("text", { x: left, y: height - 8, "font-size": 11 }, points[0].date));
    if (points.length > 1) root.appendChild(el("text", { x: WIDTH - right, y: height - 8, "font-size": 11, "text-anchor": "end" }, points[points.length - 1].date));
    series.forEach((s, k) => {
      const path = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(" ");
      root.appendChild(el("path", { d: path, fill: "none", stroke: s.color, "stroke-width": 2 }));
      points.forEach((p, i) => {
        const dot = el("circle", { cx: x(i), cy: y(p[s.key]), r: 2.5, fill: s.color });
        dot.appendChild(el("title", {}, `${p.date}: ${s.label} ${p[s.key]}`));
        root.appendChild(dot);
      });
      root.appendChild(el("rect", { x: left + 10 + k * 190, y: 6, width: 10, height: 10, fill: s.color }));
      root.appendChild(el("text", { x: left + 24 + k * 190, y: 15, "font-size": 11 }, s.label));
    });
  }

  // Vertical bars for the lead-time histogram: bins [{lo, hi, count}].
  function histogram(id, bins) {
    const box = document.getElementById(id);
    if (!box) return;
    if (!bins.some((b) => b.count)) return empty(box);
    const height = 180, left = 40, bottom = 28, top = 10;
    const root = svg(box, height, box.querySelector("figcaption").textContent);
    const max = Math.max(1, ...bins.map((b) => b.count));
    const w = (WIDTH - left - 10) / bins.length;
    bins.forEach((b, i) => {
      const h = (b.count / max) * (height - top - bottom);
      const label = b.hi === null ? `≥${b.lo}` : `${b.lo}–${b.hi}`;
      const bar = el("rect", { x: left + i * w + 3, y: height - bottom - h, width: w - 6, height: h, fill: "#0a58ca", "fill-opacity": 0.8 });
      bar.appendChild(el("title", {}, `${label} s: ${b.count}`));
      root.appendChild(bar);
      root.appendChild(el("text", { x: left + i * w + w / 2, y: height - 10, "font-size": 11, "text-anchor": "middle" }, label));
      root.appendChild(el("text", { x: left + i * w + w / 2, y: height - bottom - h - 3, "font-size": 10, "text-anchor": "middle" }, String(b.count)));
    });
  }

  // Gold accuracy per skill: one group per domain, one bar per level, side by side.
  function skillChart(id, rows, threshold) {
    const box = document.getElementById(id);
    if (!box) return;
    if (!rows.length) return empty(box);
    const domains = [...new Set(rows.map((r) => r.domain))];
    const levels = [...new Set(rows.map((r) => r.level))];
    const height = 210, left = 40, bottom = 44, top = 24;
    const root = svg(box, height, box.querySelector("figcaption").textContent);
    const groupW = (WIDTH - left - 10) / domains.length;
    const barW = Math.min(40, (groupW - 16) / levels.length);
    const y = (v) => top + (1 - v) * (height - top - bottom);
    root.appendChild(el("text", { x: left - 4, y: y(1) + 4, "text-anchor": "end", "font-size": 11 }, "1.0"));
    root.appendChild(el("text", { x: left - 4, y: y(0), "text-anchor": "end", "font-size": 11 }, "0"));
    domains.forEach((d, gi) => {
      const gx = left + gi * groupW + 8;
      levels.forEach((lv, li) => {
        const r = rows.find((row) => row.domain === d && row.level === lv);
        if (!r || r.accuracy === null) return;
        const bx = gx + li * barW;
        const bar = el("rect", { x: bx, y: y(r.accuracy), width: barW - 4, height: y(0) - y(r.accuracy), fill: COLORS[lv] || "#6e7781" });
        bar.appendChild(el("title", {}, `${d || "no skill required"} · ${lv}: ${fmt(r.accuracy)} (n=${r.answers}, ${fmt(r.low)}–${fmt(r.high)})`));
        root.appendChild(bar);
        const cx = bx + (barW - 4) / 2;
        root.appendChild(el("line", { x1: cx, x2: cx, y1: y(r.low), y2: y(r.high), stroke: "#1f2328" }));
        root.appendChild(el("text", { x: cx, y: y(r.accuracy) - 3, "font-size": 10, "text-anchor": "middle" }, fmt(r.accuracy)));
      });
      root.appendChild(el("text", { x: gx + (levels.length * barW) / 2, y: height - bottom + 14, "font-size": 11, "text-anchor": "middle" }, d || "no skill required"));
    });
    if (threshold !== null && threshold !== undefined) {
      root.appendChild(el("line", { x1: left, x2: WIDTH - 10, y1: y(threshold), y2: y(threshold), stroke: "#b42318", "stroke-dasharray": "4 3" }));
    }
    levels.forEach((lv, i) => {
      root.appendChild(el("rect", { x: left + i * 110, y: height - 16, width: 10, height: 10, fill: COLORS[lv] || "#6e7781" }));
      root.appendChild(el("text", { x: left + 14 + i * 110, y: height - 7, "font-size": 11 }, lv));
    });
  }

  lineChart("chart-progress", data.progress || [], [
    { key: "annotations_total", label: "annotations", color: "#0a58ca" },
    { key: "tasks_completed_total", label: "tasks completed", color: "#1a7f37" },
  ]);
  barChart("chart-throughput", data.throughput || [], { digits: 0, max: 0 });
  histogram("chart-lead-time", data.lead_time || []);
  barChart("chart-agreement", data.agreement || [], { min: 0, max: 1 });
  barChart("chart-gold-annotators", data.gold_annotators || [], { min: 0, max: 1, threshold: data.threshold, color: "#1a7f37" });
  skillChart("chart-gold-skills", data.gold_skills || [], data.threshold);
  barChart("chart-prelabel", data.prelabel || [], { min: 0, max: 1, color: "#6f42c1" });
})();
