// Alerts: rules with their state, history of state changes, create/edit/test/delete a rule.
import { api } from "./api.js";
import { href } from "./app.js";
import { clear, empty, errorBox, h, timeFromSeconds, withCode } from "./util.js";

const METRICS = {
  cost_usd: "Cost (USD)", tokens: "Tokens", error_rate: "Error rate", latency_p50: "Latency p50",
  latency_p95: "Latency p95", latency_p99: "Latency p99", ttft_p95: "Time to first token p95",
  request_count: "LLM calls", no_data: "No data (silence)",
};
const COMPARATORS = { gt: ">", gte: "≥", lt: "<", lte: "≤" };
const COMPARATOR_LABELS = { gt: "> above", gte: "≥ at or above", lt: "< below", lte: "≤ at or below" };

export function levelPill(state) {
  if (state && (state.evaluated_at === null || state.evaluated_at === undefined)) {
    return h("span", { class: "pill pending", title: "This rule has not been evaluated yet" }, "pending (not evaluated yet)");
  }
  const level = state ? state.level : "ok";
  return h("span", { class: `pill ${level === "ok" ? "ok" : level}` }, state && state.status !== level ? `${level} (${state.status})` : level);
}

export async function render(root, route) {
  const editing = route.params.get("edit"); // a rule id, or "new"
  root.append(h("h1", null, "Alerts"));
  const formBox = h("div");
  const rulesBox = h("div");
  const historyBox = h("div");
  root.append(h("div", { class: "toolbar" }, h("a", { class: "btn", href: href("alerts", [], { edit: "new" }) }, "New rule")), formBox,
    h("h2", null, "Rules"), rulesBox, h("h2", null, "History"), historyBox);

  let rules;
  try {
    rules = await api("/v1/alerts/rules");
  } catch (err) {
    rulesBox.append(err.status === 404 ? h("p", { class: "notice" }, withCode("Alert rules need the collector's evaluator (run `llmscope serve`).")) : errorBox(err));
    return;
  }
  if (editing) formBox.append(ruleForm(editing === "new" ? null : rules.find((r) => r.id === editing)));
  if (!rules.length) rulesBox.append(empty("No alert rules yet."));
  else {
    rulesBox.append(h("table", { class: "data", "aria-label": "Alert rules" },
      h("thead", null, h("tr", null, ["Rule", "Condition", "Window", "Severity", "State", "Value", "Evaluated", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, rules.map((r) => {
        const result = h("span", { class: "muted" });
        return h("tr", { dataset: { ruleId: r.id } },
          h("td", null, h("strong", null, r.name), r.enabled ? null : h("span", { class: "tag" }, "disabled")),
          h("td", null, h("span", { title: `${r.metric} ${r.comparator}` }, `${METRICS[r.metric] ?? r.metric} ${COMPARATORS[r.comparator] ?? r.comparator} ${r.alert_threshold ?? "–"}`), r.warning_threshold !== null ? h("span", { class: "muted" }, ` (warn ${r.warning_threshold})`) : null),
          h("td", null, `${r.window}, every ${r.every}${r.for !== "0s" ? `, for ${r.for}` : ""}`),
          h("td", null, r.severity),
          h("td", null, levelPill(r.state), r.state.error ? h("div", { class: "status-error" }, r.state.error) : null),
          h("td", { class: "num" }, r.state.value === null ? "–" : String(+r.state.value.toPrecision(4))),
          h("td", null, timeFromSeconds(r.state.evaluated_at)),
          h("td", null,
            h("a", { class: "btn", href: href("alerts", [], { edit: r.id }) }, "Edit"), " ",
            h("button", { type: "button", onclick: async () => {
              try {
                const t = await api(`/v1/alerts/rules/${r.id}/test`, { method: "POST" });
                result.textContent = ` now: ${t.value === null ? "no data" : +t.value.toPrecision(4)} → ${t.level ?? "no data"} (${t.samples} samples)`;
              } catch (err) { result.textContent = ` ${err.message}`; }
            } }, "Test"), " ",
            h("button", { type: "button", class: "danger", onclick: async () => {
              if (!confirm(`Delete the rule "${r.name}"?`)) return;
              try { await api(`/v1/alerts/rules/${r.id}`, { method: "DELETE" }); location.hash = href("alerts"); window.dispatchEvent(new HashChangeEvent("hashchange")); } catch (err) { result.textContent = ` ${err.message}`; }
            } }, "Delete"), result),
        );
      }))));
  }
  try {
    const events = await api("/v1/alerts/events", { params: { limit: 100 } });
    if (!events.length) historyBox.append(empty("No state changes yet."));
    else {
      historyBox.append(h("table", { class: "data", "aria-label": "Alert history" },
        h("thead", null, h("tr", null, ["When", "Rule", "Change", "Level", "Value", "Threshold"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", null, events.map((ev) => h("tr", null,
          h("td", null, timeFromSeconds(ev.at)),
          h("td", null, ev.rule_name),
          h("td", null, `${ev.previous_status} → ${ev.status}`, h("span", { class: "muted" }, ` (${ev.kind})`)),
          h("td", null, h("span", { class: `pill ${ev.level === "ok" ? "ok" : ev.level}` }, ev.level)),
          h("td", { class: "num" }, ev.value === null ? "–" : String(+ev.value.toPrecision(4))),
          h("td", { class: "num" }, ev.threshold ?? "–"),
        )))));
    }
  } catch (err) { historyBox.append(errorBox(err)); }
}

function ruleForm(rule) {
  const r = rule || { name: "", metric: "cost_usd", window: "1h", comparator: "gt", alert_threshold: null, warning_threshold: null, for: "0s", every: "1m", cooldown: "0s", renotify: "0s", no_data: "ok", severity: "error", filters: {}, channels: [], enabled: true };
  const field = (label, name, value, attrs = {}) => h("label", null, label, h("input", { name, value: value ?? "", ...attrs }));
  const choice = (label, name, options, value, labels = {}) => h("label", null, label, h("select", { name }, options.map((o) => h("option", { value: o, selected: o === value }, labels[o] ?? o))));
  const channel = r.channels[0] || { type: "webhook" };
  const errBox = h("div");
  const form = h("form", { class: "rule-form", "aria-label": rule ? `Edit rule ${r.name}` : "New alert rule" },
    h("fieldset", null, h("legend", null, rule ? `Edit “${r.name}”` : "New rule"),
      h("div", { class: "form-grid" },
        field("Name", "name", r.name, { required: true, maxlength: 200 }),
        choice("Metric", "metric", Object.keys(METRICS), r.metric, METRICS),
        choice("Comparator", "comparator", Object.keys(COMPARATORS), r.comparator, COMPARATOR_LABELS),
        field("Alert threshold", "alert_threshold", r.alert_threshold, { type: "number", step: "any" }),
        field("Warning threshold", "warning_threshold", r.warning_threshold, { type: "number", step: "any" }),
        field("Window (5m, 1h, month)", "window", r.window),
        field("Evaluate every", "every", r.every),
        field("For", "for", r.for),
        field("Cooldown", "cooldown", r.cooldown),
        field("Renotify", "renotify", r.renotify),
        choice("No data", "no_data", ["ok", "keep", "alert"], r.no_data),
        choice("Severity", "severity", ["critical", "error", "warning", "info"], r.severity),
        ...["model", "provider", "service", "session", "user", "prompt_name", "prompt_version"].map((k) => field(`Filter: ${k}`, `filter_${k}`, r.filters[k])),
        choice("Channel", "channel_type", ["none", "webhook", "slack", "email"], r.channels.length ? channel.type : "none"),
        field("Channel URL or e-mail addresses (comma-separated)", "channel_target", channel.url || (channel.to || []).join(", ")),
        field("Webhook secret (kept if empty)", "channel_secret", "", { type: "password", autocomplete: "off" }),
        h("label", { class: "inline" }, h("input", { type: "checkbox", name: "enabled", checked: r.enabled }), "Enabled"),
      ),
      errBox,
      h("div", { class: "toolbar" }, h("button", { class: "primary", type: "submit" }, rule ? "Save rule" : "Create rule"), h("a", { href: href("alerts") }, "Cancel"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const num = (k) => (f.get(k) === "" ? null : Number(f.get(k)));
    const filters = {};
    for (const k of ["model", "provider", "service", "session", "user", "prompt_name", "prompt_version"]) if (f.get(`filter_${k}`)) filters[k] = f.get(`filter_${k}`);
    const channels = [];
    const type = f.get("channel_type");
    const target = String(f.get("channel_target") || "").trim();
    if (type === "webhook") channels.push({ type, url: target, ...(f.get("channel_secret") ? { secret: f.get("channel_secret") } : {}) });
    else if (type === "slack") channels.push({ type, url: target });
    else if (type === "email") channels.push({ type, to: target.split(/[,\s]+/).filter(Boolean) });
    const body = {
      name: f.get("name"), metric: f.get("metric"), comparator: f.get("comparator"),
      alert_threshold: num("alert_threshold"), warning_threshold: num("warning_threshold"),
      window: f.get("window"), every: f.get("every"), for: f.get("for"), cooldown: f.get("cooldown"), renotify: f.get("renotify"),
      no_data: f.get("no_data"), severity: f.get("severity"), filters, channels, enabled: f.get("enabled") === "on",
    };
    try {
      if (rule) await api(`/v1/alerts/rules/${rule.id}`, { method: "PUT", body });
      else await api("/v1/alerts/rules", { method: "POST", body });
      location.hash = href("alerts");
    } catch (err) {
      clear(errBox).append(errorBox(err));
    }
  });
  return form;
}
