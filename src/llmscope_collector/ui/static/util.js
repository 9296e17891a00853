// DOM building and formatting helpers. Text is always set as text (never parsed as HTML).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const nf = new Intl.NumberFormat();

export function fmtInt(n) {
  return n === null || n === undefined ? "–" : nf.format(n);
}

export function fmtTokens(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(n >= 1e5 ? 0 : 1) + "k";
  return nf.format(n);
}

// One rule for US dollars everywhere (the same as llmscope_collector/money.py; a browser test holds
// them equal): a dollar or more to the cent; below, three significant digits in plain decimals.
const usdCents = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function fmtUsd(value) {
  if (value === 0) return "$0";
  if (!Number.isFinite(value)) return "–";
  const sign = value < 0 ? "-" : "";
  const amount = Math.abs(value);
  if (amount >= 1) return `${sign}$${usdCents.format(amount)}`;
  if (amount < 1e-12) return `${sign}<$0.000000000001`;
  const exponent = Number(amount.toExponential().split("e")[1]);
  const text = amount.toFixed(2 - exponent);
  if (Number(text) >= 1) return `${sign}$${usdCents.format(Number(text))}`;
  return `${sign}$${text.replace(/0+$/, "").replace(/\.$/, "")}`;
}

// The float's shortest decimal form, never in exponent notation: for tooltips and copies.
export function exactUsd(value) {
  const sign = value < 0 ? "-" : "";
  const [digits, exp] = Math.abs(value).toExponential().split("e");
  const e = Number(exp);
  const plain = digits.replace(".", "");
  let text;
  if (e < 0) text = "0." + "0".repeat(-e - 1) + plain;
  else if (plain.length > e + 1) text = plain.slice(0, e + 1) + "." + plain.slice(e + 1);
  else text = plain + "0".repeat(e + 1 - plain.length);
  return `${sign}$${text}`;
}

export function fmtCost(usd, unknown = 0) {
  if (usd === null || usd === undefined) return unknown ? "unpriced" : "–";
  const text = fmtUsd(usd);
  return unknown ? text + "+" : text;
}

// UI text with `code` in backticks: the backticked parts as <code>, never shown as literal backticks.
export function withCode(text) {
  return text.split("`").map((part, i) => (i % 2 ? h("code", null, part) : part));
}

// Whether any usage was reported: a call that failed before the provider counted tokens has none, and
// neither does a trace or session whose LLM calls all failed so. Then tokens and cost are unknown
// ("–"), not 0. A span says so with null counts; a sum can only say so by being 0 with calls in it.
export function hasUsage(x) {
  if ("llm_calls" in x) return !(x.llm_calls > 0 && !x.total_tokens && !x.cost_usd);
  return x.input_tokens !== null && x.input_tokens !== undefined || x.output_tokens !== null && x.output_tokens !== undefined;
}

// Tokens of a trace/session/span: "1.2k in / 80 out", or "–" when no usage was reported.
export function fmtInOut(x) {
  return hasUsage(x) ? `${fmtTokens(x.input_tokens)} in / ${fmtTokens(x.output_tokens)} out` : "–";
}

// A cost as an element whose tooltip (and copy) holds the exact value.
export function costEl(usd, unknown = 0) {
  const text = fmtCost(usd, unknown);
  if (usd === null || usd === undefined) return h("span", {}, text);
  return h("span", { class: "usd", title: exactUsd(usd) + (unknown ? " + calls without a known price" : "") }, text);
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms === 0) return "0";
  if (ms < 1) return ms.toFixed(2) + " ms";
  if (ms < 1000) return (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  const m = Math.floor(ms / 60000);
  return `${m} m ${Math.round((ms % 60000) / 1000)} s`;
}

export function fmtPct(x) {
  return x === null || x === undefined ? "–" : (x * 100).toFixed(x < 0.1 ? 1 : 0) + "%";
}

// Epoch-nanosecond fields arrive as BigInt (exact; see api.js) or numbers: milliseconds for arithmetic.
export function nsToMs(ns) {
  return Number(ns) / 1e6;
}

function exactNs(ns) {
  const big = BigInt(ns);
  const d = new Date(Number(big / 1000000n));
  const frac = String(big % 1000000000n).padStart(9, "0");
  const iso = d.toISOString().replace(/\.\d+Z$/, `.${frac}Z`);
  return { d, iso };
}

const dtShort = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const dtFull = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

// A <time> in the viewer's zone; hover shows the exact UTC instant (ns) and the full local time.
export function timeEl(ns) {
  if (ns === null || ns === undefined) return "–";
  const { d, iso } = exactNs(ns);
  return h("time", { datetime: iso, title: `${dtFull.format(d)}\n${iso}` }, dtShort.format(d));
}

export function timeFromSeconds(sec) {
  if (sec === null || sec === undefined) return "–";
  return timeEl(BigInt(Math.round(sec * 1e6)) * 1000n);
}

export function relTime(ns) {
  const diff = Date.now() - nsToMs(ns);
  if (diff < 60000) return `${Math.max(0, Math.round(diff / 1000))} s ago`;
  if (diff < 3600000) return `${Math.round(diff / 60000)} min ago`;
  if (diff < 86400000) return `${Math.round(diff / 3600000)} h ago`;
  return `${Math.round(diff / 86400000)} d ago`;
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "–";
}

export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// Roving focus for a list of rows: ArrowUp/Down (and j/k) move, Home/End jump, Enter activates.
export function rowKeys(container, selector, onActivate) {
  container.addEventListener("keydown", (e) => {
    const rows = [...container.querySelectorAll(selector)];
    const i = rows.indexOf(document.activeElement);
    if (i < 0) return;
    let next = -1;
    if (e.key === "ArrowDown" || e.key === "j") next = Math.min(rows.length - 1, i + 1);
    else if (e.key === "ArrowUp" || e.key === "k") next = Math.max(0, i - 1);
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = rows.length - 1;
    else if (e.key === "Enter") {
      e.preventDefault();
      onActivate(rows[i], e);
      return;
    }
    if (next >= 0) {
      e.preventDefault();
      rows[next].focus();
    }
  });
}

export function errorBox(err) {
  return h("div", { class: "error-box", role: "alert" }, err && err.message ? err.message : String(err));
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

// Named, stable colors for series (color-blind friendly-ish palette, works on light and dark).
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
export function color(i) {
  return PALETTE[i % PALETTE.length];
}

// One color per series name for the whole page, so a model has the same color in every chart.
const assigned = new Map();
export function colorFor(name) {
  if (!assigned.has(name)) assigned.set(name, color(assigned.size));
  return assigned.get(name);
}
