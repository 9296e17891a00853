// Sessions: the list with per-session metrics, and one session as a timeline of its traces.
import { api } from "./api.js";
import { message } from "./trace.js";
import { href } from "./app.js";
import { scoreList } from "./scores.js";
import { traceTable } from "./traces.js";
import { clear, costEl, empty, errorBox, fmtCost, fmtInOut, fmtInt, fmtMs, fmtTokens, h, hasUsage, nsToMs, rowKeys, timeEl, withCode } from "./util.js";

export async function render(root, route) {
  const p = route.params;
  const form = h("form", { class: "filters", role: "search", "aria-label": "Session filters" },
    h("label", null, "User", h("input", { name: "user", value: p.get("user") || "", "data-search": "" })),
    h("button", { class: "primary", type: "submit" }, "Apply"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const user = new FormData(form).get("user");
    location.hash = href("sessions", [], user ? { user } : {});
  });
  const box = h("div");
  const more = h("div", { class: "more" });
  root.append(h("h1", null, "Sessions"), form, box, more);
  const tbody = h("tbody");
  const table = h("table", { class: "data", "aria-label": "Sessions" },
    h("thead", null, h("tr", null, ["Session", "User", "First activity", "Last activity", "Traces", "LLM calls", "Tokens", "Cost", "Errors", "p50", "p95"]
      .map((c, i) => h("th", { scope: "col", class: i >= 4 ? "num" : null }, c)))),
    tbody);
  rowKeys(tbody, "tr.rowlink", (tr) => { location.hash = href("session", [tr.dataset.sessionId]); });
  let count = 0;

  async function load(cursor) {
    const page = await api("/v1/sessions", { params: { user: p.get("user"), cursor, limit: 50 } });
    for (const ss of page.sessions) {
      count++;
      tbody.append(h("tr", { class: "rowlink", tabindex: 0, dataset: { sessionId: ss.session_id }, onclick: () => { location.hash = href("session", [ss.session_id]); } },
        h("td", null, h("a", { href: href("session", [ss.session_id]), tabindex: -1 }, ss.session_id)),
        h("td", null, ss.user_id || "–"),
        h("td", null, timeEl(ss.first_activity_unix_nano)),
        h("td", null, timeEl(ss.last_activity_unix_nano)),
        h("td", { class: "num" }, fmtInt(ss.trace_count)),
        h("td", { class: "num" }, fmtInt(ss.llm_calls)),
        h("td", { class: "num", title: fmtInOut(ss) }, hasUsage(ss) ? fmtTokens(ss.total_tokens) : "–"),
        h("td", { class: "num" }, hasUsage(ss) ? costEl(ss.cost_usd, ss.cost_unknown) : "–"),
        h("td", { class: "num" + (ss.error_traces ? " status-error" : "") }, ss.error_traces ? `${ss.error_traces} trace${ss.error_traces === 1 ? "" : "s"}` : "0"),
        h("td", { class: "num" }, fmtMs(ss.latency.p50_ms)),
        h("td", { class: "num" }, fmtMs(ss.latency.p95_ms)),
      ));
    }
    clear(box).append(count ? table : empty(withCode("No sessions yet. Traces carry a session when the app sets `session.id` (`llmscope.session(...)` in the SDK).")));
    clear(more);
    if (page.next_cursor) more.append(h("button", { type: "button", onclick: () => load(page.next_cursor).catch((err) => more.append(errorBox(err))) }, "Load more"));
  }
  try { await load(null); } catch (err) { box.append(errorBox(err)); }
}

export async function renderSession(root, route) {
  const id = route.args[0];
  root.append(h("p", { class: "muted" }, h("a", { href: "#/sessions" }, "← Sessions")));
  let detail;
  try {
    detail = await api(`/v1/sessions/${encodeURIComponent(id)}`);
  } catch (err) {
    root.append(h("h1", null, "Session ", h("code", null, id)), errorBox(err));
    return;
  }
  const ss = detail.session;
  const status = h("span", { role: "status", class: "muted" });
  const remove = h("button", { type: "button", class: "danger", onclick: async () => {
    if (!confirm(`Delete session ${ss.session_id}: its ${ss.trace_count} traces, their spans and captured content, from disk? This cannot be undone.`)) return;
    remove.disabled = true;
    try {
      const report = await api(`/v1/sessions/${encodeURIComponent(ss.session_id)}`, { method: "DELETE" });
      status.textContent = `Deleted ${report.traces_deleted} traces, ${report.spans_deleted} spans.`;
      location.hash = href("sessions");
    } catch (err) { remove.disabled = false; status.textContent = err.message; }
  } }, "Delete session");
  root.append(h("div", { class: "toolbar" }, h("h1", { style: { margin: 0 } }, "Session ", h("code", null, ss.session_id)), h("span", { class: "spacer" }), remove, status),
    h("dl", { class: "cards" },
      card("User", ss.user_id || "–"),
      card("First activity", timeEl(ss.first_activity_unix_nano)),
      card("Last activity", timeEl(ss.last_activity_unix_nano)),
      card("Traces", fmtInt(ss.trace_count)),
      card("LLM calls", fmtInt(ss.llm_calls)),
      card("Tokens", fmtInOut(ss)),
      card("Cost", hasUsage(ss) ? costEl(ss.cost_usd, ss.cost_unknown) : "–"),
      card("Errors", h("span", { class: ss.error_count ? "status-error" : null }, fmtInt(ss.error_count))),
      card("Latency p50 / p95", `${fmtMs(ss.latency.p50_ms)} / ${fmtMs(ss.latency.p95_ms)}`),
    ));
  root.append(h("section", { class: "session-scores", "aria-label": "Scores" }, h("h2", null, "Scores"),
    scoreList(detail.scores || [], { empty: "No scores on this session or its traces yet." })));
  const traces = [...detail.traces].sort((a, b) => nsToMs(a.start_time_unix_nano) - nsToMs(b.start_time_unix_nano));
  const chat = h("section", { class: "chat transcript", "aria-label": "Session transcript" }, h("p", { class: "muted" }, "Loading the conversation…"));
  root.append(h("h2", null, "Conversation"), chat);
  transcript(chat, traces);  // fills in while the rest of the page is read
  root.append(h("h2", null, "Timeline"), timeline(traces));
  if (detail.traces_truncated) root.append(h("p", { class: "notice" }, "Only the first traces of this session are shown."));
  root.append(h("h2", null, "Traces"), traceTable(traces));
}

// The session as one chat across its traces: per trace (in time order), the user's last message to
// the first LLM call and the last call's answer, from captured content; each turn links its trace.
const TRANSCRIPT_TRACES = 30;

async function turnOf(t) {
  const wf = await api(`/v1/traces/${t.trace_id}`);
  const calls = wf.spans.filter((sp) => sp.operation === "chat" || sp.operation === "text_completion" || sp.operation === "generate_content");
  if (!calls.length) return { t, user: null, answer: null };
  const read = async (sp) => (await api(`/v1/spans/${t.trace_id}/${sp.span_id}`)).content || [];
  const [first, last] = await Promise.all([read(calls[0]), calls.length > 1 ? read(calls[calls.length - 1]) : null]);
  const messages = (items, kind) => items.filter((c) => c.kind === kind && c.available).flatMap((c) => (Array.isArray(c.value) ? c.value : [c.value]));
  const user = messages(first, "input").filter((m) => m && m.role === "user").pop() || null;
  const answer = messages(last || first, "output").pop() || null;
  return { t, user, answer };
}

async function transcript(box, traces) {
  const shown = traces.slice(0, TRANSCRIPT_TRACES);
  const turns = [];
  for (let i = 0; i < shown.length; i += 4) {  // a few traces at a time
    turns.push(...(await Promise.all(shown.slice(i, i + 4).map((t) => turnOf(t).catch(() => ({ t, user: null, answer: null }))))));
  }
  clear(box);
  let any = false;
  for (const { t, user, answer } of turns) {
    box.append(h("div", { class: "turn-head muted" }, timeEl(t.start_time_unix_nano), " · ", h("a", { href: href("trace", [t.trace_id]) }, t.name || t.trace_id.slice(0, 8))));
    if (user) box.append(message("user", user.parts || [user.content]));
    if (answer) box.append(message(answer.role || "assistant", answer.parts || [answer.content], answer.finish_reason));
    if (!user && !answer) box.append(h("p", { class: "muted" }, "No captured content in this trace."));
    any = any || !!(user || answer);
  }
  if (!any) {
    box.append(h("p", { class: "muted" }, withCode("Nothing to read: content capture was off in the app (`llmscope.instrument(capture_content=True)` turns it on).")));
  }
  if (traces.length > shown.length) box.append(h("p", { class: "muted" }, `The first ${shown.length} of ${traces.length} traces.`));
}

// One row per trace on the session's axis (first start → last end); the gaps are the user's think time.
function timeline(traces) {
  const box = h("section", { class: "timeline", "aria-label": "Session timeline" });
  if (!traces.length) return box;
  const t0 = nsToMs(traces[0].start_time_unix_nano);
  const t1 = Math.max(...traces.map((t) => nsToMs(t.start_time_unix_nano) + t.duration_ms));
  const span = Math.max(t1 - t0, 1);
  const axis = h("div", { class: "wf-axis" });
  for (let i = 0; i <= 4; i++) axis.append(h("span", { style: { left: `${i * 25}%`, transform: i === 4 ? "translateX(-100%)" : i ? "translateX(-50%)" : "none" } }, `+${fmtMs((span * i) / 4)}`));
  box.append(h("div", { class: "tl-axis", "aria-hidden": "true" }, h("div", { style: { padding: "0 10px" } }, "Trace"), axis));
  let prevEnd = null;
  for (const t of traces) {
    const start = nsToMs(t.start_time_unix_nano);
    const left = ((start - t0) / span) * 100;
    const width = (t.duration_ms / span) * 100;
    const gap = prevEnd === null ? null : start - prevEnd;
    prevEnd = Math.max(prevEnd ?? 0, start + t.duration_ms);
    const title = `${t.name || t.trace_id}\n+${fmtMs(start - t0)} · ${fmtMs(t.duration_ms)} · ${fmtTokens(t.total_tokens)} tokens · ${fmtCost(t.cost_usd, t.cost_unknown)}${t.error_count ? ` · ${t.error_count} errors` : ""}`;
    box.append(h("div", { class: "tl-row" },
      h("div", { class: "tl-label" }, timeEl(t.start_time_unix_nano), h("a", { href: href("trace", [t.trace_id]) }, t.name || t.trace_id.slice(0, 8))),
      h("div", { class: "tl-track" },
        h("a", { class: "tl-bar" + (t.status === "error" ? " err" : ""), href: href("trace", [t.trace_id]), tabindex: -1, title, "aria-label": title, style: { left: `${left}%`, width: `${width}%` } }),
        gap !== null && gap > 0 ? h("span", { class: "tl-gap", style: left > 70 ? { right: `calc(${100 - left}% + 4px)` } : { left: `calc(${left + width}% + 4px)` } }, `${fmtMs(t.duration_ms)} · after ${fmtMs(gap)} idle`) : h("span", { class: "tl-gap", style: { left: `calc(${left + width}% + 4px)` } }, fmtMs(t.duration_ms)),
      )));
  }
  return box;
}

function card(label, value) {
  return h("div", null, h("dt", null, label), h("dd", null, value));
}
