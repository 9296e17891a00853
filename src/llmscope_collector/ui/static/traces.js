// Traces: filters + full-text search, sortable columns, cursor pagination, live tail over SSE.
import { api, download, parseJson, stream } from "./api.js";
import { currentRoute, href, setParams } from "./app.js";
import { clear, costEl, empty, errorBox, fmtCost, fmtInOut, fmtInt, fmtMs, fmtTokens, h, hasUsage, rowKeys, shortId, timeEl, withCode } from "./util.js";

const FILTERS = [
  ["q", "Search prompts & completions", "search"],
  ["service", "Service"],
  ["model", "Model"],
  ["provider", "Provider"],
  ["session", "Session"],
  ["user", "User"],
  ["tag", "Tag"],
  ["prompt_name", "Prompt"],
  ["min_duration_ms", "Min duration (ms)", "number"],
  ["min_tokens", "Min tokens", "number"],
  ["min_cost", "Min cost ($)", "text"],
];
// Quick ranges: `from` = now minus this much (and no `to`), like Phoenix's and Langfuse's presets.
const PRESETS = [["15 min", 15 * 60e3], ["1 h", 3600e3], ["24 h", 86400e3], ["7 d", 7 * 86400e3]];
// Filters with a value picker (named as the API's `field`): the values the API serves for the page's time
// range, most frequent first, then any other value of the loaded rows (live-tail arrivals; field of a list row).
const PICKERS = { service: (t) => [t.service_name, ...(t.services || [])], model: (t) => t.models, provider: (t) => t.providers, session: (t) => [t.session_id], user: (t) => [t.user_id], tag: (t) => t.tags };
// The pickers' values of one time range (`from`|`to`), fetched once per range however often the page is drawn
// (each filter change draws it again); a field with PICK_LIMIT values or more asks again by prefix as one types.
const PICK_LIMIT = 200;
let pickCache = { key: null, values: null };
function rangeValues(from, to) {
  const key = `${from || ""}|${to || ""}`;
  if (pickCache.key !== key) {
    const range = {};
    if (from) range.from = from;
    if (to) range.to = to;
    const cache = { key, values: null };
    cache.values = Promise.all(Object.keys(PICKERS).map((field) =>
      api("/v1/traces/values", { params: { ...range, field, limit: PICK_LIMIT } })
        .then((body) => [field, body.values], () => { cache.key = null; return [field, null]; }),  // asked again next time
    )).then(Object.fromEntries);
    pickCache = cache;
  }
  return pickCache.values;
}
const traceCount = (n) => `${fmtInt(n)} trace${n === 1 ? "" : "s"}`;

// Route parameters that are the page's own, not filters (the rest go to the API as they are).
const PAGE_PARAMS = ["live", "order", "sort", "range"];
// `score.<name><op><value>` filters, written `name op value` in the form: how each operator travels
// in a query string (`score.x>=1` is the key `score.x>` with the value `1`; `>`/`<` keep the value in the key).
const SCORE_RE = /^\s*([^\s<>=!]+)\s*(>=|<=|!=|=|>|<)\s*(\S.*?)\s*$/;
function scoreParam(text) {
  const m = SCORE_RE.exec(text);
  if (!m) return null;
  const [, name, op, value] = m;
  if (op === ">" || op === "<") return [`score.${name}${op}${value}`, ""];
  return [`score.${name}${op === "=" ? "" : op[0]}`, value];
}
function scoreText(key, value) {
  return value === "" ? key.slice(6) : `${key.slice(6)}=${value}`;
}

// Server-side sorts (the API's `sort`); "errors" sorts the loaded rows (the API has no such sort).
const COLUMNS = [
  { key: "start", label: "Start", sort: "start" },
  { key: "name", label: "Trace" },
  { key: "preview", label: "Input → Output" },
  { key: "service", label: "Service" },
  { key: "duration", label: "Duration", sort: "duration", num: true },
  { key: "spans", label: "Spans", num: true },
  { key: "llm", label: "LLM calls", num: true },
  { key: "tokens", label: "Tokens", sort: "tokens", num: true },
  { key: "cost", label: "Cost", sort: "cost", num: true },
  { key: "errors", label: "Errors", sort: "errors", num: true },
  { key: "models", label: "Models" },
  { key: "session", label: "Session" },
];

export function traceRow(t, { fresh = false } = {}) {
  const open = () => { location.hash = href("trace", [t.trace_id]); };
  const tr = h("tr", {
    class: "rowlink" + (fresh ? " fresh" : ""), tabindex: 0, dataset: { traceId: t.trace_id },
    onclick: (e) => { if (!e.target.closest("a")) open(); },
  },
    h("td", { class: "nowrap" }, timeEl(t.start_time_unix_nano)),
    h("td", null, h("a", { href: href("trace", [t.trace_id]), tabindex: -1 }, t.name || "(no root yet)"),
      t.state !== "complete" ? h("span", { class: "tag", title: "complete: root arrived; in_progress: still receiving; incomplete: idle without root" }, t.state) : null,
      h("div", { class: "muted mono" }, shortId(t.trace_id))),
    h("td", { class: "preview" }, previews(t)),
    h("td", null, t.service_name || "–"),
    h("td", { class: "num" }, fmtMs(t.duration_ms)),
    h("td", { class: "num" }, fmtInt(t.span_count)),
    h("td", { class: "num" }, fmtInt(t.llm_calls)),
    h("td", { class: "num", title: fmtInOut(t) }, hasUsage(t) ? fmtTokens(t.total_tokens) : "–"),
    h("td", { class: "num" }, hasUsage(t) ? costEl(t.cost_usd, t.cost_unknown) : "–"),
    h("td", { class: "num" + (t.error_count ? " status-error" : "") }, t.error_count ? fmtInt(t.error_count) : "0"),
    h("td", null, (t.models || []).map((m) => h("span", { class: "tag" }, m))),
    h("td", null, t.session_id ? h("a", { href: href("session", [t.session_id]), tabindex: -1 }, t.session_id) : "–"),
  );
  return tr;
}

// The first line of the first question and of the last answer (from captured content), one line each,
// the whole preview on hover; "–" when the trace's calls captured no content.
function previews(t) {
  if (!t.preview_input && !t.preview_output) {
    return h("span", { class: "muted", title: "No prompt or answer was captured for this trace's LLM calls" }, "–");
  }
  const line = (cls, label, text) => (text ? h("div", { class: `pv ${cls}`, title: text }, h("span", { class: "pv-k" }, label), text) : null);
  return [line("pv-in", "In", t.preview_input), line("pv-out", "Out", t.preview_output)];
}

export function traceTable(traces, { sort, order, onSort } = {}) {
  const headRow = h("tr", null, COLUMNS.map((c) => {
    const active = sort === c.sort && c.sort;
    const th = h("th", { scope: "col", class: c.num ? "num" : null, "aria-sort": active ? (order === "asc" ? "ascending" : "descending") : null });
    if (c.sort && onSort) th.append(h("button", { class: "sort", type: "button", onclick: () => onSort(c.sort) }, c.label));
    else th.append(c.label);
    return th;
  }));
  const body = h("tbody", null, traces.map((t) => traceRow(t)));
  const table = h("table", { class: "data", "aria-label": "Traces" }, h("thead", null, headRow), body);
  rowKeys(body, "tr.rowlink", (tr) => { location.hash = href("trace", [tr.dataset.traceId]); });
  return table;
}

function matchesLive(t, p) {
  const eq = (k, v) => !p.get(k) || v === p.get(k);
  if (!eq("service", t.service_name) && !(t.services || []).includes(p.get("service"))) return false;
  if (p.get("model") && !(t.models || []).includes(p.get("model"))) return false;
  if (p.get("provider") && !(t.providers || []).includes(p.get("provider"))) return false;
  if (p.get("status") && p.get("status") !== t.status) return false;
  if (!eq("session", t.session_id) || !eq("user", t.user_id)) return false;
  if (p.get("tag") && !(t.tags || []).includes(p.get("tag"))) return false;
  // Filters the stream cannot judge (search, attributes, minimums, time) pause the live rows.
  if ([...p.keys()].some((k) => k.startsWith("score."))) return false;
  return !["q", "min_duration_ms", "min_tokens", "min_cost", "from", "to", "prompt_name", "state"].some((k) => p.get(k));
}

export async function render(root, route) {
  const p = route.params;
  const sort = p.get("sort") || "start";
  const order = p.get("order") || "desc";
  let stopLive = null;

  const form = h("form", { class: "filters", role: "search", "aria-label": "Trace filters" });
  const lists = {};
  let picked = {};  // field → the API's values for the range ({value, traces}), or those of a typed prefix
  for (const [name, label, type] of FILTERS) {
    if (PICKERS[name]) lists[name] = h("datalist", { id: `pick-${name}` });
    const input = h("input", {
      name, type: type || "text", value: p.get(name) || "", class: type === "number" ? "narrow" : null,
      "data-search": name === "q" ? "" : null, placeholder: name === "q" ? "text in captured content  ( / )" : null,
      min: type === "number" ? 0 : null, list: PICKERS[name] ? `pick-${name}` : null, autocomplete: PICKERS[name] ? "off" : null,
    });
    if (PICKERS[name]) input.addEventListener("input", () => pickByPrefix(name, input.value));
    form.append(h("label", null, label, input, lists[name] || null));
  }
  // `attr.<key>=<value>` filters on any span attribute; one is editable here, more via the URL.
  const attrs = [...p].filter(([k]) => k.startsWith("attr.")).map(([k, v]) => `${k.slice(5)}=${v}`);
  form.append(h("label", null, "Attribute (key=value)", h("input", { name: "_attr", value: attrs.join(" "), placeholder: "user.tier=gold" })));
  // `score.<name><op><value>` filters: one editable here (`feedback=true`, `helpfulness>=0.5`), more via the URL.
  const scoreFilters = [...p].filter(([k]) => k.startsWith("score.")).map(([k, v]) => scoreText(k, v));
  const scoreInput = h("input", { name: "_score", value: scoreFilters.join(", "), placeholder: "feedback=true, helpfulness>=0.5", list: "pick-score", autocomplete: "off",
    title: "A score: name, then = != >= <= > <, then a number or a category (true/false for thumbs)" });
  const scorePicks = h("datalist", { id: "pick-score" });
  // Sort by a score (`sort=score.<name>`: the trace's average of it; only scored traces are listed).
  const sortByScore = h("button", { type: "button", class: "link", title: "List the traces that have this score, highest average first (only scored traces)",
    onclick: () => {
      const name = (scoreInput.value.match(/^\s*([^\s<>=!,;]+)/) || [])[1];
      if (!name) { scoreInput.setCustomValidity("Type a score name to sort by"); scoreInput.reportValidity(); return; }
      const next = Object.fromEntries(p);
      next.sort = `score.${name}`;
      next.order = "desc";
      location.hash = href("traces", [], next);
    } }, "sort by it");
  form.append(h("label", null, h("span", null, "Score ", sortByScore), scoreInput, scorePicks));
  scoreInput.addEventListener("input", () => scoreInput.setCustomValidity(""));
  scoreChoices().then((choices) => scorePicks.append(...choices.map((v) => h("option", { value: v })))).catch(() => {});
  const statusSel = h("select", { name: "status" }, ["", "error", "ok"].map((v) => h("option", { value: v, selected: p.get("status") === v }, v || "any")));
  const stateSel = h("select", { name: "state" }, ["", "complete", "in_progress", "incomplete"].map((v) => h("option", { value: v, selected: p.get("state") === v }, v || "any")));
  form.append(h("label", null, "Status", statusSel), h("label", null, "State", stateSel));
  const toLocal = (iso) => (iso ? iso.slice(0, 16) : "");
  form.append(
    h("label", null, "From (local)", h("input", { name: "from", type: "datetime-local", value: p.get("from") ? toLocal(localIso(p.get("from"))) : "" })),
    h("label", null, "To (local)", h("input", { name: "to", type: "datetime-local", value: p.get("to") ? toLocal(localIso(p.get("to"))) : "" })),
    h("button", { class: "primary", type: "submit" }, "Apply"),
    h("button", { type: "button", onclick: () => { location.hash = href("traces"); } }, "Clear"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = {};
    for (const [k, v] of new FormData(form)) {
      if (!v) continue;
      if (k === "_score") {
        const bad = [];
        for (const expr of String(v).split(/\s*[,;]\s*|\s+(?=[^\s<>=!]+\s*(?:>=|<=|!=|=|>|<))/)) {
          if (!expr.trim()) continue;
          const pair = scoreParam(expr);
          if (pair) next[pair[0]] = pair[1]; else bad.push(expr);
        }
        if (bad.length) { scoreInput.setCustomValidity(`Not name op value: ${bad.join(", ")}`); scoreInput.reportValidity(); return; }
        continue;
      }
      if (k === "_attr") {
        for (const pair of String(v).split(/\s+/)) {
          const i = pair.indexOf("=");
          if (i > 0) next[`attr.${pair.slice(0, i)}`] = pair.slice(i + 1);
        }
        continue;
      }
      next[k] = (k === "from" || k === "to") ? new Date(v).toISOString() : v;
    }
    for (const k of ["sort", "order", "live"]) if (p.get(k)) next[k] = p.get(k);
    if (p.get("range") && next.from === p.get("from") && !next.to) next.range = p.get("range");
    location.hash = href("traces", [], next);
  });

  const presets = h("div", { class: "toolbar presets", role: "group", "aria-label": "Time range" },
    h("span", { class: "muted" }, "Last"),
    PRESETS.map(([label, ms]) => {
      const active = p.get("range") === label;
      return h("button", { type: "button", "aria-pressed": active ? "true" : "false", onclick: () => {
        const next = Object.fromEntries(p);
        delete next.to;
        next.from = new Date(Date.now() - ms).toISOString();
        next.range = label;
        location.hash = href("traces", [], next);
      } }, label);
    }),
    p.get("range") ? h("button", { type: "button", onclick: () => {
      const next = Object.fromEntries(p);
      for (const k of ["from", "to", "range"]) delete next[k];
      location.hash = href("traces", [], next);
    } }, "any time") : null);

  const liveDot = h("span", { class: "live-dot", "aria-hidden": "true" });
  const liveText = h("span", { class: "muted" }, "");
  const liveBtn = h("button", { type: "button", "aria-pressed": p.get("live") === "1" ? "true" : "false", title: "Show new traces as they are stored (Server-Sent Events)" },
    liveDot, "Live tail");
  const count = h("span", { class: "muted", "aria-live": "polite" });
  const scoreSort = sort.startsWith("score.") ? h("button", { type: "button", class: "score-sort", "aria-pressed": "true",
    title: "Sorted by the trace's average of this score (only scored traces); click to reverse", onclick: () => onSort(sort) },
    `Score ${sort.slice(6)} ${order === "asc" ? "▲" : "▼"}`) : null;
  const toolbar = h("div", { class: "toolbar" }, liveBtn, liveText, scoreSort, h("span", { class: "spacer" }), count, exportControls(() => filterParams));
  const tableBox = h("div");
  const more = h("div", { class: "more" });
  root.append(h("h1", null, "Traces"), form, presets, toolbar, tableBox, more);

  const params = {};
  for (const [k, v] of p) if (!PAGE_PARAMS.includes(k)) params[k] = v;
  const filterParams = { ...params };  // what the export selects: every trace the filters match
  if (sort !== "errors") { params.sort = sort; params.order = order; }
  params.limit = 50;
  let rows = [];
  let tbody = null;

  function onSort(col) {
    const next = Object.fromEntries(p);
    next.order = col === sort && order === "desc" ? "asc" : "desc";
    next.sort = col;
    location.hash = href("traces", [], next);
  }

  function draw() {
    const shown = sort === "errors" ? [...rows].sort((a, b) => (order === "asc" ? 1 : -1) * (a.error_count - b.error_count)) : rows;
    clear(tableBox);
    if (!shown.length) {
      tableBox.append(empty(Object.keys(params).length > 3 ? "No trace matches these filters." : withCode("No traces yet. Send some with the SDK, or run `llmscope demo`.")));
    }
    const table = traceTable(shown, { sort, order, onSort });
    tbody = table.tBodies[0];
    if (shown.length) tableBox.append(table);
    count.textContent = `${rows.length} trace${rows.length === 1 ? "" : "s"} shown`;
    for (const name of Object.keys(PICKERS)) fillPicker(name);
  }

  function fillPicker(name) {
    const served = picked[name] || [];
    const known = new Set(served.map((v) => v.value));
    const seen = [...new Set(rows.flatMap((t) => PICKERS[name](t) || []).filter((v) => v && !known.has(v)))].sort();
    clear(lists[name]).append(
      ...served.map((v) => h("option", { value: v.value, label: traceCount(v.traces) })),
      ...seen.slice(0, PICK_LIMIT).map((v) => h("option", { value: v })),
    );
  }

  // More values than the picker holds: as one types, the values starting with the text (debounced).
  const prefixTimers = {};
  let rangePicks = {};
  function pickByPrefix(name, text) {
    clearTimeout(prefixTimers[name]);
    if ((rangePicks[name] || []).length < PICK_LIMIT) return;  // the range's values are all there already
    prefixTimers[name] = setTimeout(async () => {
      const params = { field: name, limit: PICK_LIMIT };
      for (const k of ["from", "to"]) if (p.get(k)) params[k] = p.get(k);
      if (text) params.prefix = text;
      try {
        picked = { ...picked, [name]: text ? (await api("/v1/traces/values", { params })).values : rangePicks[name] };
        fillPicker(name);
      } catch { /* the range's values stay offered */ }
    }, 250);
  }
  rangeValues(p.get("from"), p.get("to")).then((values) => {
    rangePicks = values;
    picked = { ...values };
    for (const name of Object.keys(PICKERS)) fillPicker(name);
  });

  async function load(cursor) {
    const page = await api("/v1/traces", { params: { ...params, cursor } });
    rows = cursor ? rows.concat(page.traces) : page.traces;
    draw();
    clear(more);
    if (page.next_cursor) {
      more.append(h("button", { type: "button", onclick: async (e) => { e.target.disabled = true; try { await load(page.next_cursor); } catch (err) { more.append(errorBox(err)); } } }, "Load more"));
    }
  }

  function setLive(on) {
    liveBtn.setAttribute("aria-pressed", on ? "true" : "false");
    if (stopLive) { stopLive(); stopLive = null; }
    const next = Object.fromEntries(currentRoute().params);
    if (on) next.live = "1"; else delete next.live;
    setParams(next);
    if (!on) { liveDot.className = "live-dot"; liveText.textContent = ""; return; }
    const live = sort === "start" && order === "desc";
    stopLive = stream("/v1/traces/stream", { backfill: 0 }, (msg) => {
      if (msg.event !== "trace") return;
      const t = parseJson(msg.data);
      const i = rows.findIndex((r) => r.trace_id === t.trace_id);
      if (i >= 0) {
        rows[i] = t;
        const old = tbody && tbody.querySelector(`tr[data-trace-id="${t.trace_id}"]`);
        if (old) old.replaceWith(traceRow(t, { fresh: true }));
        return;
      }
      if (!live || !matchesLive(t, p)) return;
      rows.unshift(t);
      if (!tbody) { draw(); return; }
      tbody.prepend(traceRow(t, { fresh: true }));
      count.textContent = `${rows.length} traces shown`;
    }, (state, err) => {
      liveDot.className = "live-dot " + (state === "live" ? "live" : state === "error" ? "error" : "");
      liveText.textContent = state === "live" ? (live ? "watching for new traces" : "updating shown traces (sort by start ↓ to see new ones)")
        : state === "error" ? `stream error: ${err && err.message}` : state === "connecting" ? "connecting…" : "";
    });
  }
  liveBtn.addEventListener("click", () => setLive(liveBtn.getAttribute("aria-pressed") !== "true"));

  try {
    await load(null);
  } catch (err) {
    tableBox.append(errorBox(err));
  }
  if (p.get("live") === "1") setLive(true);
  return () => { if (stopLive) stopLive(); };
}

function localIso(text) {
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) return "";
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString();
}

// Score filters to pick from: the names (and categories) of the scores recorded lately.
async function scoreChoices() {
  const from = new Date(Date.now() - 30 * 86400e3).toISOString();
  const { scores } = await api("/v1/scores", { params: { from, limit: 1000 } });
  const out = new Set();
  for (const s of scores) {
    if (s.data_type === "numeric") out.add(`${s.name}>=`);
    else if (s.label !== null && s.label !== undefined && out.size < 200) out.add(`${s.name}=${s.label}`);
  }
  return [...out].sort();
}

// The export: `GET /v1/export` with the list's filters (every matching trace, not only the rows loaded),
// as the formats the server offers (read from its OpenAPI document, so a new format shows up by itself).
let exportFormats = null;
async function formatsOffered() {
  exportFormats ||= fetch("schema/openapi.json").then((r) => r.json()).then((doc) => {
    const params = (((doc.paths || {})["/v1/export"] || {}).get || {}).parameters || [];
    const format = params.find((x) => x.name === "format");
    const schema = (format && format.schema) || {};
    const values = schema.enum || (schema.oneOf || schema.anyOf || []).flatMap((x) => x.enum || (x.const ? [x.const] : []));
    return values.length ? values : ["jsonl", "csv"];
  }).catch(() => ["jsonl", "csv"]);
  return exportFormats;
}

const FORMAT_LABELS = { csv: "CSV", jsonl: "JSON lines", parquet: "Parquet" };

function exportControls(filters) {
  const format = h("select", { name: "export-format", "aria-label": "Export format" }, h("option", { value: "csv" }, "CSV"));
  const level = h("select", { name: "export-level", "aria-label": "Export rows" },
    h("option", { value: "traces" }, "one row per trace"), h("option", { value: "spans" }, "one row per span"));
  formatsOffered().then((values) => {
    clear(format).append(...["csv", ...values.filter((v) => v !== "csv")].filter((v) => values.includes(v))
      .map((v) => h("option", { value: v }, FORMAT_LABELS[v] || v)));
  });
  const status = h("span", { class: "muted", role: "status", "aria-live": "polite" });
  const button = h("button", { type: "button", title: "Download every trace these filters match (GET /v1/export)" }, "Export");
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Exporting…";
    try {
      const { blob, filename } = await download("/v1/export", { ...filters(), format: format.value, level: level.value });
      const a = h("a", { href: URL.createObjectURL(blob), download: filename || `llmscope-${level.value}.${format.value}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
      status.textContent = "";
    } catch (err) {
      status.textContent = `Export failed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return h("span", { class: "export", role: "group", "aria-label": "Export" }, format, level, button, status);
}
