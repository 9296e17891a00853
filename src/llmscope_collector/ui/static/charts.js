// Inline SVG charts, drawn by hand: a time-series line chart and a horizontal bar chart.
// Every mark has a <title> with its exact value (hover), and each chart has a text summary.
import { color, h, s } from "./util.js";

const W = 520;

function niceMax(v) {
  if (!(v > 0)) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (v <= m * mag) return m * mag;
  return 10 * mag;
}

const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const hourFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const secFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "long" });

// series: [{name, points: [{x: ms since epoch, y: number|null}]}]
// domain: [fromMs, toMs] of the selected range (else the data's own extent).
export function lineChart({ title, series, fmt = String, height = 200, note, domain }) {
  const H = height;
  const pad = { l: 56, r: 12, t: 10, b: 24 };
  const all = series.flatMap((sr) => sr.points.filter((p) => p.y !== null && p.y !== undefined));
  const fig = h("figure", { class: "chart", dataset: { chart: title } });
  fig.append(h("figcaption", null, h("span", null, title), note ? h("span", { class: "muted" }, note) : null));
  if (!all.length) {
    fig.append(h("p", { class: "empty" }, "No data in this range."));
    return fig;
  }
  let x0 = Math.min(...all.map((p) => p.x), domain && domain[0] !== null ? domain[0] : Infinity);
  let x1 = Math.max(...all.map((p) => p.x), domain && domain[1] !== null ? domain[1] : -Infinity);
  if (x0 === x1) { x0 -= 60000; x1 += 60000; }
  const tickFmt = x1 - x0 > 2 * 86400e3 ? dayFmt : x1 - x0 > 600e3 ? hourFmt : secFmt;
  const yMax = niceMax(Math.max(...all.map((p) => p.y)));
  const X = (x) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const Y = (y) => pad.t + (1 - y / yMax) * (H - pad.t - pad.b);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: ${series.length} series, maximum ${fmt(Math.max(...all.map((p) => p.y)))}` });
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.append(s("line", { class: "grid", x1: pad.l, x2: W - pad.r, y1: Y(v), y2: Y(v) }),
      s("text", { x: pad.l - 6, y: Y(v) + 3.5, "text-anchor": "end" }, fmt(v)));
  }
  const ticks = 4;
  for (let i = 0; i <= ticks; i++) {
    const x = x0 + ((x1 - x0) * i) / ticks;
    svg.append(s("text", { x: X(x), y: H - 6, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle" }, tickFmt.format(new Date(x))));
  }
  series.forEach((sr, si) => {
    const c = sr.color || color(si);
    const pts = sr.points.filter((p) => p.y !== null && p.y !== undefined).sort((a, b) => a.x - b.x);
    // One line through the buckets in time order: a second point in the same bucket starts a new
    // stroke instead of drawing a vertical segment that reads as a jump.
    const d = pts.map((p, i) => `${i && pts[i - 1].x !== p.x ? "L" : "M"}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(" ");
    if (pts.length > 1) svg.append(s("path", { d, fill: "none", stroke: c, "stroke-width": 2, "stroke-linejoin": "round" }));
    for (const p of pts) {
      svg.append(s("circle", { class: "hit", cx: X(p.x), cy: Y(p.y), r: pts.length > 60 ? 2 : 3.5, fill: c },
        s("title", null, `${sr.name}\n${fullFmt.format(new Date(p.x))}\n${fmt(p.y)}`)));
    }
  });
  fig.append(svg);
  const key = legend(series);
  if (key) fig.append(key);
  return fig;
}

// items: [{label, value, title?}] — horizontal bars, largest first as given.
export function barChart({ title, items, fmt = String, note }) {
  const fig = h("figure", { class: "chart", dataset: { chart: title } });
  fig.append(h("figcaption", null, h("span", null, title), note ? h("span", { class: "muted" }, note) : null));
  const shown = items.filter((it) => it.value !== null && it.value !== undefined);
  if (!shown.length) {
    fig.append(h("p", { class: "empty" }, "No data in this range."));
    return fig;
  }
  const rowH = 24;
  const labelW = 170;
  const H = shown.length * rowH + 8;
  const max = Math.max(...shown.map((it) => it.value)) || 1;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: ${shown.map((it) => `${it.label} ${fmt(it.value)}`).join(", ")}` });
  shown.forEach((it, i) => {
    const y = 4 + i * rowH;
    const w = Math.max(1, (it.value / max) * (W - labelW - 80));
    const label = it.label.length > 26 ? it.label.slice(0, 25) + "…" : it.label;
    svg.append(
      s("text", { x: labelW - 8, y: y + 15, "text-anchor": "end" }, label, s("title", null, it.label)),
      s("rect", { class: "hit", x: labelW, y: y + 3, width: w, height: rowH - 8, rx: 3, fill: it.color || color(i) },
        s("title", null, `${it.label}: ${it.title || fmt(it.value)}`)),
      s("text", { x: labelW + w + 6, y: y + 15 }, fmt(it.value)),
    );
  });
  fig.append(svg);
  return fig;
}

function legend(series) {
  if (series.length < 2) return null;
  return h("div", { class: "chart-legend" }, series.map((sr, i) => h("span", null, h("i", { style: { background: sr.color || color(i) } }), sr.name)));
}
