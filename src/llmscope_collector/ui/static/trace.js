// One trace: the waterfall (virtualized rows on a shared time axis) and the selected span's detail.
import { api } from "./api.js";
import { currentRoute, href, setParams } from "./app.js";
import { feedbackForm, scoreList, scoresSection } from "./scores.js";
import { clear, costEl, debounce, errorBox, exactUsd, fmtCost, fmtInOut, fmtInt, fmtMs, fmtTokens, h, hasUsage, timeEl } from "./util.js";

const ROW = 28; // px; must match --row in app.css
const OVERSCAN = 12;
const LLM_OPS = new Set(["chat", "text_completion", "generate_content", "embeddings", "completion"]);

function isLlm(sp) {
  return LLM_OPS.has(sp.operation) || (!!sp.request_model && sp.span_type !== "tool");
}

function isTool(sp) {
  return sp.operation === "execute_tool" || sp.span_type === "tool" || !!sp.tool_name;
}

function llmInfo(sp) {
  if (isLlm(sp)) {
    const bits = [sp.response_model || sp.request_model || sp.provider || "LLM"];
    if (hasUsage(sp)) {
      bits.push(`${fmtTokens(sp.input_tokens)}→${fmtTokens(sp.output_tokens)} tok`);
      if (sp.cost_usd !== null && sp.cost_usd !== undefined) bits.push(fmtCost(sp.cost_usd));
      else if (sp.cost_known === false) bits.push("unpriced");
    } else bits.push("no usage reported");
    if (sp.ttft_ms !== null && sp.ttft_ms !== undefined) bits.push(`TTFT ${fmtMs(sp.ttft_ms)}`);
    if (sp.counted === false) bits.push("(nested duplicate, not summed)");
    if (sp.error_type) bits.push(`⚠ ${sp.error_type}`);
    return bits.join(" · ");
  }
  if (isTool(sp)) return `tool ${sp.tool_name || ""}`.trim() + (sp.error_type ? ` · ⚠ ${sp.error_type}` : "");
  if (sp.agent_name) return `agent ${sp.agent_name}`;
  return sp.service_name || "";
}

function niceStep(total, n) {
  const raw = total / n;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

export async function render(root, route) {
  const traceId = route.args[0];
  let wf;
  try {
    wf = await api(`/v1/traces/${encodeURIComponent(traceId)}`);
  } catch (err) {
    root.append(h("h1", null, "Trace ", h("code", null, traceId)), errorBox(err), h("p", null, h("a", { href: "#/traces" }, "← Back to traces")));
    return;
  }
  const spans = wf.spans;
  const byId = new Map(spans.map((sp, i) => [sp.span_id, i]));
  const total = spans.reduce((m, sp) => Math.max(m, sp.start_offset_ms + sp.duration_ms), Math.max(wf.duration_ms, 0.001));
  const maxDepth = spans.reduce((m, sp) => Math.max(m, sp.depth), 0);
  const collapsed = new Set();
  const depthParam = Number(route.params.get("depth") || (spans.length > 5000 ? 3 : 0));
  if (depthParam > 0) collapseBelow(depthParam);
  let visible = [];
  let selected = route.params.get("span") && byId.has(route.params.get("span")) ? route.params.get("span") : null;

  function collapseBelow(depth) {
    collapsed.clear();
    for (const sp of spans) if (sp.depth >= depth - 1 && sp.children.length) collapsed.add(sp.span_id);
  }

  function computeVisible() {
    const out = [];
    let skip = Infinity;
    for (let i = 0; i < spans.length; i++) {
      const sp = spans[i];
      if (sp.depth > skip) continue;
      skip = Infinity;
      out.push(i);
      if (sp.children.length && collapsed.has(sp.span_id)) skip = sp.depth;
    }
    visible = out;
  }

  // Header: what the trace is, and its totals.
  const root0 = spans.find((sp) => !sp.parent_span_id) || spans[0];
  const t = wf.totals;
  root.append(h("div", { class: "trace-head" },
    h("p", { class: "muted" }, h("a", { href: "#/traces" }, "← Traces"), wf.session_id ? [" · session ", h("a", { href: href("session", [wf.session_id]) }, wf.session_id)] : null,
      wf.user_id ? ` · user ${wf.user_id}` : null),
    h("h1", null, root0 ? root0.name : "Trace", wf.state && wf.state !== "complete" ? h("span", { class: "tag" }, wf.state) : null,
      wf.state === "in_progress" ? h("button", { type: "button", title: "Spans of this trace are still arriving", onclick: () => window.dispatchEvent(new HashChangeEvent("hashchange")) }, "Refresh") : null,
      h("code", { class: "muted", title: "trace id" }, wf.trace_id)),
    h("dl", { class: "cards" },
      card("Start", timeEl(wf.start_time_unix_nano)),
      card("Duration", fmtMs(wf.duration_ms)),
      card("Spans", fmtInt(t.span_count)),
      card("LLM calls", fmtInt(t.llm_calls)),
      card("Tokens", h("span", { title: hasUsage(t) ? `${fmtInt(t.input_tokens)} in / ${fmtInt(t.output_tokens)} out; cache read ${fmtInt(t.cache_read_tokens)}, write ${fmtInt(t.cache_write_tokens)}; reasoning ${fmtInt(t.reasoning_tokens)}` : "no LLM call reported usage" },
        fmtInOut(t))),
      card("Cost", hasUsage(t) ? costEl(t.cost_usd, t.cost_unknown) : "–"),
      card("Errors", h("span", { class: t.error_count ? "status-error" : null }, fmtInt(t.error_count))),
    )));
  // Scores on the trace and its spans, and this viewer's thumbs up/down + comment.
  const loadScores = async () => (await api("/v1/scores", { params: { trace_id: wf.trace_id } })).scores;
  const scores = scoresSection(loadScores, wf.scores || []);
  root.append(h("section", { class: "trace-scores", "aria-label": "Scores" },
    h("h2", null, "Scores"), scores.el, feedbackForm(wf.trace_id, wf.scores || [], (score) => scores.add(score))));

  const depthSel = h("select", { "aria-label": "Expand to depth" },
    h("option", { value: "0" }, "all levels"),
    Array.from({ length: Math.min(maxDepth, 12) }, (_, i) => h("option", { value: String(i + 1), selected: depthParam === i + 1 }, `${i + 1} level${i ? "s" : ""}`)));
  depthSel.addEventListener("change", () => {
    const d = Number(depthSel.value);
    if (d > 0) collapseBelow(d); else collapsed.clear();
    updateParams({ depth: d || null });
    refresh();
  });
  const findBox = h("input", { type: "search", "data-search": "", placeholder: "Find span  ( / )", "aria-label": "Find span by name, model, tool or service", size: 22 });
  const findCount = h("span", { class: "muted", "aria-live": "polite" });
  let matches = [];
  let matchSet = new Set();
  let matchPos = -1;
  findBox.addEventListener("input", debounce(() => {
    const q = findBox.value.trim().toLowerCase();
    matches = [];
    if (q) {
      for (const sp of spans) {
        const hay = `${sp.name} ${sp.request_model || ""} ${sp.response_model || ""} ${sp.tool_name || ""} ${sp.service_name || ""} ${sp.span_id}`.toLowerCase();
        if (hay.includes(q)) matches.push(sp.span_id);
      }
    }
    matchSet = new Set(matches);
    matchPos = -1;
    findCount.textContent = q ? `${matches.length} match${matches.length === 1 ? "" : "es"}` : "";
    paint();
  }, 150));
  findBox.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !matches.length) return;
    e.preventDefault();
    matchPos = (matchPos + (e.shiftKey ? -1 : 1) + matches.length) % matches.length;
    findCount.textContent = `${matchPos + 1} of ${matches.length}`;
    select(matches[matchPos]);
  });
  root.append(h("div", { class: "toolbar" },
    findBox, findCount,
    h("label", { class: "inline" }, "Show", depthSel),
    h("button", { type: "button", onclick: () => { collapsed.clear(); depthSel.value = "0"; updateParams({ depth: null }); refresh(); } }, "Expand all"),
    h("button", { type: "button", onclick: () => { collapseBelow(1); depthSel.value = "1"; updateParams({ depth: 1 }); refresh(); } }, "Collapse all"),
    h("span", { class: "spacer" }),
    h("span", { class: "legend", "aria-hidden": "true" },
      h("span", null, h("i", { style: { background: "var(--bar-llm)" } }), "LLM"),
      h("span", null, h("i", { style: { background: "var(--bar-tool)" } }), "tool"),
      h("span", null, h("i", { style: { background: "var(--bar)" } }), "other"),
      h("span", null, h("i", { style: { background: "var(--err)" } }), "error"),
      h("span", null, h("i", { style: { background: "transparent", boxShadow: "0 0 0 2px var(--crit)" } }), "critical path ◆")),
    h("span", { class: "muted" }, "↑↓ move · ←→ collapse/expand · Enter details · Esc close · Enter in Find: next match"),
  ));

  // Time axis
  const step = niceStep(total, 5);
  const axis = h("div", { class: "wf-axis", "aria-hidden": "true" });
  for (let v = 0; v <= total + 1e-9; v += step) axis.append(h("span", { style: { left: `${(v / total) * 100}%` } }, fmtMs(v)));
  const head = h("div", { class: "wf-head", role: "presentation" }, h("div", null, `Span (${fmtInt(spans.length)})`), h("div", { class: "wf-info" }, "Model · tokens · cost · TTFT"), axis);
  const spacer = h("div", { class: "wf-spacer" });
  const scroller = h("div", {
    class: "wf-scroll", tabindex: 0, role: "tree", "aria-label": `Waterfall of ${spans.length} spans`, "aria-multiselectable": "false",
  }, spacer);
  const wfBox = h("section", { class: "wf", "aria-label": "Waterfall" }, head, scroller);
  const panel = h("aside", { class: "panel", "aria-label": "Span details", hidden: true });
  const layout = h("div", { class: "trace-layout" }, wfBox, panel);
  root.append(layout);

  let raf = 0;
  function paint() {
    raf = 0;
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(visible.length, Math.ceil((top + height) / ROW) + OVERSCAN);
    const frag = document.createDocumentFragment();
    for (let r = first; r < last; r++) frag.append(rowEl(spans[visible[r]], r));
    clear(spacer).append(frag);
    if (selected) scroller.setAttribute("aria-activedescendant", `span-${selected}`);
  }
  function schedule() { if (!raf) raf = requestAnimationFrame(paint); }
  scroller.addEventListener("scroll", schedule, { passive: true });
  window.addEventListener("resize", schedule);

  function rowEl(sp, r) {
    const err = sp.status_code === "ERROR";
    const kids = sp.children.length > 0;
    const open = kids && !collapsed.has(sp.span_id);
    const left = (sp.start_offset_ms / total) * 100;
    const width = (sp.duration_ms / total) * 100;
    const bar = h("div", {
      class: "wf-bar" + (isLlm(sp) ? " llm" : isTool(sp) ? " tool" : "") + (sp.critical_path ? " crit" : "") + (err ? " err" : ""),
      style: { left: `${left}%`, width: `${width}%` },
    });
    if (sp.ttft_ms && sp.duration_ms > 0) bar.append(h("span", { class: "ttft", style: { width: `${Math.min(100, (sp.ttft_ms / sp.duration_ms) * 100)}%` } }));
    // The duration label goes right of the bar, else left of it, else inside it (a bar across the axis).
    const durStyle = left + width <= 80 ? { left: `calc(${left + width}% + 4px)` }
      : left >= 15 ? { right: `calc(${100 - left}% + 4px)` } : { right: `calc(${100 - left - width}% + 4px)` };
    const inside = left + width > 80 && left < 15;
    const dur = h("span", { class: "wf-dur" + (inside ? " inside" : ""), style: durStyle }, fmtMs(sp.duration_ms));
    const tip = `${sp.name}\nstart +${fmtMs(sp.start_offset_ms)}, duration ${fmtMs(sp.duration_ms)} (self ${fmtMs(sp.self_time_ms)})`
      + `${sp.critical_path ? "\non the critical path" : ""}${err ? `\nERROR ${sp.status_message || sp.error_type || ""}` : ""}${sp.orphan ? "\norphan: parent not stored" : ""}`;
    return h("div", {
      class: "wf-row" + (err ? " err" : "") + (matchSet.has(sp.span_id) ? " match" : ""), id: `span-${sp.span_id}`, role: "treeitem", "aria-level": sp.depth + 1,
      "aria-expanded": kids ? String(open) : null, "aria-selected": sp.span_id === selected ? "true" : "false",
      "aria-setsize": visible.length, "aria-posinset": r + 1,
      style: { top: `${r * ROW}px` }, dataset: { spanId: sp.span_id }, title: tip,
    },
      h("div", { class: "wf-name", style: { paddingLeft: `${Math.min(sp.depth, 40) * 14 + 4}px` } },
        h("span", { class: "tw", dataset: { toggle: kids ? "1" : "" } }, kids ? (open ? "▾" : "▸") : ""),
        sp.critical_path ? h("span", { class: "crit", title: "critical path" }, "◆") : null,
        h("span", { class: "nm" }, sp.name),
        kids && !open ? h("span", { class: "tag" }, `+${descendants(sp)}`) : null,
        sp.orphan ? h("span", { class: "tag", title: "parent span not stored" }, "orphan") : null),
      h("div", { class: "wf-info", title: llmInfo(sp) }, llmInfo(sp)),
      h("div", { class: "wf-track" }, bar, dur),
    );
  }

  function descendants(sp) {
    let n = 0;
    for (let i = byId.get(sp.span_id) + 1; i < spans.length && spans[i].depth > sp.depth; i++) n++;
    return n;
  }

  function refresh() {
    computeVisible();
    spacer.style.height = `${visible.length * ROW}px`;
    scroller.style.height = `${visible.length * ROW + 2}px`; // capped by max-height; small traces leave no empty box
    paint();
  }

  function toggle(id, open) {
    if (open === undefined) open = collapsed.has(id);
    if (open) collapsed.delete(id); else collapsed.add(id);
    refresh();
  }

  function ensureVisible(id) {
    // Expand collapsed ancestors so the span has a row, then scroll it into view.
    let i = byId.get(id);
    let changed = false;
    while (i !== undefined && spans[i].parent_span_id && byId.has(spans[i].parent_span_id)) {
      const parent = spans[i].parent_span_id;
      if (collapsed.delete(parent)) changed = true;
      i = byId.get(parent);
    }
    if (changed) refresh();
    const r = visible.indexOf(byId.get(id));
    if (r < 0) return;
    const top = r * ROW;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + ROW > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = top + ROW - scroller.clientHeight;
  }

  function updateParams(extra) {
    const next = Object.fromEntries(currentRoute().params);
    for (const [k, v] of Object.entries(extra)) { if (v === null) delete next[k]; else next[k] = v; }
    setParams(next);
  }

  const loadDetail = debounce((id) => showSpan(id), 120);
  function select(id, { detail = true } = {}) {
    selected = id;
    ensureVisible(id);
    paint();
    updateParams({ span: id });
    if (detail) loadDetail(id);
  }

  function closePanel() {
    selected = null;
    panel.hidden = true;
    layout.classList.remove("with-panel");
    updateParams({ span: null });
    paint();
    scroller.focus();
  }

  spacer.addEventListener("click", (e) => {
    const row = e.target.closest(".wf-row");
    if (!row) return;
    if (e.target.closest("[data-toggle='1']")) { toggle(row.dataset.spanId); return; }
    select(row.dataset.spanId);
  });
  scroller.addEventListener("keydown", (e) => {
    const pos = selected ? visible.indexOf(byId.get(selected)) : -1;
    const go = (r) => { r = Math.max(0, Math.min(visible.length - 1, r)); select(spans[visible[r]].span_id); };
    const sp = selected ? spans[byId.get(selected)] : null;
    const page = Math.max(1, Math.floor(scroller.clientHeight / ROW) - 1);
    switch (e.key) {
      case "ArrowDown": case "j": go(pos + 1); break;
      case "ArrowUp": case "k": go(pos < 0 ? 0 : pos - 1); break;
      case "PageDown": go(pos + page); break;
      case "PageUp": go(pos - page); break;
      case "Home": go(0); break;
      case "End": go(visible.length - 1); break;
      case "ArrowRight": case "l":
        if (!sp) { go(0); break; }
        if (sp.children.length && collapsed.has(sp.span_id)) toggle(sp.span_id, true);
        else if (sp.children.length) go(pos + 1);
        break;
      case "ArrowLeft": case "h":
        if (!sp) break;
        if (sp.children.length && !collapsed.has(sp.span_id)) toggle(sp.span_id, false);
        else if (sp.parent_span_id && byId.has(sp.parent_span_id)) select(sp.parent_span_id);
        break;
      case "Enter": case " ": if (sp) showSpan(sp.span_id); break;
      case "Escape": closePanel(); break;
      default: return;
    }
    e.preventDefault();
  });

  let detailToken = 0;
  async function showSpan(id) {
    const mine = ++detailToken;
    const sp = spans[byId.get(id)];
    panel.hidden = false;
    layout.classList.add("with-panel");
    if (sp.synthetic) {  // the API's stand-in parent of orphans: nothing stored to fetch
      clear(panel).append(spanHeader(sp), h("p", null,
        "Not a stored span. The spans below it name a parent that was never received (lost, or not arrived yet), " +
        "so they are grouped here. It covers their time and counts in no total."));
      return;
    }
    clear(panel).append(spanHeader(sp), h("p", { class: "muted" }, "Loading…"));
    let detail = null;
    let failure = null;
    try {
      detail = await api(`/v1/spans/${wf.trace_id}/${id}`);
    } catch (err) {
      failure = err;
    }
    if (mine !== detailToken) return;
    clear(panel).append(spanHeader(sp), ...spanBody(sp, detail, failure));
  }

  function spanHeader(sp) {
    return h("header", null, h("h2", null, sp.name),
      h("button", { type: "button", "aria-label": "Close span details", title: "Close (Esc)", onclick: closePanel }, "✕"));
  }

  refresh();
  if (selected) { ensureVisible(selected); showSpan(selected); } else if (spans.length) selected = null;
  scroller.focus({ preventScroll: true });
  return () => { window.removeEventListener("resize", schedule); if (raf) cancelAnimationFrame(raf); };
}

function card(label, value) {
  return h("div", null, h("dt", null, label), h("dd", null, value));
}

function kv(pairs) {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === "") continue;
    dl.append(h("dt", null, k), h("dd", null, v));
  }
  return dl;
}

function jsonText(v) {
  return typeof v === "string" ? v : JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x), 2);
}

function spanBody(sp, detail, failure) {
  const out = [];
  const err = sp.status_code === "ERROR";
  out.push(kv([
    ["Span id", h("code", null, sp.span_id)],
    ["Kind", sp.kind],
    ["Status", h("span", { class: err ? "status-error" : "" }, sp.status_code + (sp.status_message ? `: ${sp.status_message}` : ""))],
    ["Service", sp.service_name],
    ["Start", detail ? timeEl(detail.start_time_unix_nano) : `+${fmtMs(sp.start_offset_ms)}`],
    ["Offset", `+${fmtMs(sp.start_offset_ms)}`],
    ["Duration", `${fmtMs(sp.duration_ms)} (self ${fmtMs(sp.self_time_ms)})`],
    ["Critical path", sp.critical_path ? "yes" : null],
    ["Scope", detail && detail.scope_name ? `${detail.scope_name} ${detail.scope_version || ""}` : null],
  ]));
  if (isLlm(sp) || sp.provider) {
    out.push(h("h3", null, "LLM call"), kv([
      ["Provider", sp.provider],
      ["Operation", sp.operation],
      ["Model", sp.response_model && sp.request_model && sp.response_model !== sp.request_model ? `${sp.request_model} → ${sp.response_model}` : (sp.response_model || sp.request_model)],
      ["Input tokens", sp.input_tokens !== null ? h("span", { class: "llm-in" }, fmtInt(sp.input_tokens)) : null],
      ["Output tokens", sp.output_tokens !== null ? h("span", { class: "llm-out" }, fmtInt(sp.output_tokens)) : null],
      ["Cache read / write", sp.cache_read_tokens || sp.cache_write_tokens ? `${fmtInt(sp.cache_read_tokens || 0)} / ${fmtInt(sp.cache_write_tokens || 0)}` : null],
      ["Reasoning tokens", sp.reasoning_tokens ? fmtInt(sp.reasoning_tokens) : null],
      ["Cost", h("span", { class: "llm-cost", title: [sp.cost_usd !== null && sp.cost_usd !== undefined ? exactUsd(sp.cost_usd) : null, detail && detail.cost_source ? `price source: ${detail.cost_source}` : null].filter(Boolean).join("\n") || null },
        !hasUsage(sp) ? "– (no usage reported)" : sp.cost_usd !== null && sp.cost_usd !== undefined ? fmtCost(sp.cost_usd) : sp.cost_known === false ? "no price known" : "–")],
      ["Reported cost", reportedCost(detail)],
      ["TTFT", sp.ttft_ms !== null && sp.ttft_ms !== undefined ? fmtMs(sp.ttft_ms) : null],
      ["Streamed", sp.is_stream ? "yes" : null],
      ["Finish", sp.finish_reasons ? sp.finish_reasons.join(", ") : null],
      ["Prompt", sp.prompt_name ? `${sp.prompt_name}${sp.prompt_version ? "@" + sp.prompt_version : ""}` : null],
      ["Response id", sp.response_id ? h("code", null, sp.response_id) : null],
      ["Summed in totals", sp.counted === false ? "no (nested duplicate of its parent call)" : null],
    ]));
  } else if (isTool(sp) || sp.agent_name) {
    out.push(kv([["Tool", sp.tool_name], ["Agent", sp.agent_name]]));
  }
  if (sp.exceptions && sp.exceptions.length) {
    out.push(h("h3", null, "Exception"));
    for (const ex of sp.exceptions) {
      out.push(h("div", { class: "exc" }, h("strong", { class: "status-error" }, ex.type || "Exception"), ": ", ex.message || "",
        h("span", { class: "muted" }, ` at +${fmtMs(ex.offset_ms)}`),
        ex.stacktrace ? h("details", null, h("summary", null, "Stack trace"), h("pre", null, ex.stacktrace)) : null));
    }
  }
  if (failure) {
    out.push(errorBox(failure));
    return out;
  }
  if (detail && detail.scores && detail.scores.length) out.push(h("h3", null, "Scores"), scoreList(detail.scores));
  const content = (detail && detail.content) || [];
  if (content.length) out.push(h("h3", null, "Conversation"), conversation(content));
  else if (isLlm(sp) && detail) out.push(h("h3", null, "Conversation"), h("p", { class: "muted capture-off" },
    "No prompt or answer was captured for this call: content capture was off in the app that made it. Turn it on with ",
    h("code", null, "llmscope.instrument(capture_content=True)"), " or ",
    h("code", null, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true"), " (other instrumentations have their own switch; see docs/sdk.md)."));
  const events = (sp.events || []).filter((ev) => ev.name !== "exception");
  if (events.length) {
    out.push(h("h3", null, `Events (${events.length})`));
    for (const ev of events) {
      out.push(h("details", null, h("summary", null, `+${fmtMs(ev.offset_ms)} `, h("strong", null, ev.name)), attrTable(ev.attributes || {})));
    }
  }
  out.push(h("h3", null, "Attributes"), attrTable(detail.attributes || {}));
  if (detail.links && detail.links.length) out.push(h("h3", null, "Links"), h("pre", null, jsonText(detail.links)));
  out.push(h("details", null, h("summary", null, "Resource"), attrTable(detail.resource_attributes || {})));
  return out;
}

function attrTable(attrs) {
  const keys = Object.keys(attrs).sort();
  if (!keys.length) return h("p", { class: "muted" }, "none");
  return h("table", { class: "attrs" }, h("tbody", null, keys.map((k) => {
    const text = jsonText(attrs[k]);
    return h("tr", null, h("td", null, k), h("td", null, text.length > 2000 ? h("details", null, h("summary", null, text.slice(0, 200) + "…"), text) : text));
  })));
}

// Captured content (OTel GenAI message JSON) as a chat: one bubble per message, tool calls inside.
function conversation(content) {
  const box = h("div", { class: "chat" });
  const order = { system: 0, tools: 1, input: 2, input_value: 2, tool_arguments: 3, tool_result: 4, output: 5, output_value: 5 };
  const parts = [...content].sort((a, b) => (order[a.kind] ?? 6) - (order[b.kind] ?? 6));
  for (const item of parts) {
    if (!item.available) {
      box.append(h("p", { class: "muted" }, `${item.kind}: content not available (deleted or not stored)`));
      continue;
    }
    const v = item.value;
    if (item.kind === "tools") {
      const list = Array.isArray(v) ? v : [v];
      box.append(h("details", null, h("summary", null, `Tools offered (${list.length}): ${list.map((t) => t && (t.name || (t.function && t.function.name))).filter(Boolean).join(", ")}`), h("pre", null, jsonText(v))));
    } else if (item.kind === "system") {
      box.append(message("system", Array.isArray(v) ? v : [v]));
    } else if (item.kind === "input" || item.kind === "output") {
      const msgs = Array.isArray(v) ? v : [v];
      for (const m of msgs) {
        if (m && typeof m === "object" && (m.role || m.parts)) {
          box.append(message(m.role || (item.kind === "output" ? "assistant" : "user"), m.parts || (m.content !== undefined ? [m.content] : []), m.finish_reason));
        } else box.append(message(item.kind === "output" ? "assistant" : "user", [m]));
      }
    } else if (item.kind === "tool_arguments") {
      box.append(h("div", { class: "toolcall" }, h("strong", null, "Tool arguments"), h("pre", null, jsonText(v))));
    } else if (item.kind === "tool_result") {
      box.append(h("div", { class: "toolcall" }, h("strong", null, "Tool result"), h("pre", null, jsonText(v))));
    } else {
      box.append(h("div", { class: "msg" }, h("div", { class: "role" }, item.kind.replace("_", " ")), h("div", { class: "text" }, jsonText(v))));
    }
  }
  return box;
}

export function message(role, parts, finish) {
  const el = h("div", { class: `msg ${role}` }, h("div", { class: "role" }, role, finish ? h("span", { class: "muted" }, ` · ${finish}`) : null));
  for (const p of parts) {
    if (p === null || p === undefined) continue;
    if (typeof p === "string") { el.append(h("div", { class: "text" }, p)); continue; }
    const type = p.type;
    if (type === "text" || type === "thinking" || type === "reasoning") {
      el.append(h("div", { class: "text" + (type !== "text" ? " muted" : "") }, p.content ?? p.text ?? ""));
    } else if (type === "tool_call") {
      el.append(h("div", { class: "toolcall" }, "→ calls ", h("strong", null, p.name || "tool"), p.id ? h("span", { class: "muted" }, ` (${p.id})`) : null,
        p.arguments !== undefined ? h("pre", null, jsonText(p.arguments)) : null));
    } else if (type === "tool_call_response") {
      el.append(h("div", { class: "toolcall" }, "← result", p.id ? h("span", { class: "muted" }, ` (${p.id})`) : null, h("pre", null, jsonText(p.response ?? p.result ?? p.content))));
    } else {
      el.append(h("pre", null, jsonText(p)));
    }
  }
  return el;
}

// The cost the instrumentation computed itself, when it is the one used (no price known here) or ours
// differs from it by over a cent per million tokens (the API decides: `reported_cost_differs`).
function reportedCost(detail) {
  const reported = detail && detail.genai ? detail.genai.reported_cost_usd : undefined;
  if (reported === null || reported === undefined) return null;
  const used = detail.cost_source === "reported";
  if (!used && !detail.reported_cost_differs) return null;
  const note = used ? "reported by the instrumentation; no price known here" : "the instrumentation's; ours differs by over $0.01 per million tokens";
  return h("span", { title: `${exactUsd(reported)} as the instrumentation computed it` }, `${fmtCost(reported)} (${note})`);
}
