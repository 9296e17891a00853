// Costs & metrics: summary cards, cost/tokens by model|provider|service, time series, prompt versions.
import { api } from "./api.js";
import { href } from "./app.js";
import { barChart, lineChart } from "./charts.js";
import { clear, colorFor, errorBox, fmtCost, fmtInt, fmtMs, fmtPct, fmtTokens, h, nsToMs, timeEl } from "./util.js";

const RANGES = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3, all: null };
const AUTO_INTERVAL = { "1h": "1m", "24h": "1h", "7d": "1h", "30d": "1d", all: "1d" };
const INTERVAL_MS = { "1m": 60e3, "1h": 3600e3, "1d": 86400e3 };
const PER = { "1m": "per minute", "1h": "per hour", "1d": "per day", hour: "per hour", day: "per day" };
const FINER = { "1d": "1h", "1h": "1m" };

// With no interval chosen: the range's own, made finer while the data would be a few dots (fresh
// data in a long range), and the time axis starts where the data does.
async function pickSeries(base, range, chosen, from) {
  let interval = chosen || AUTO_INTERVAL[range];
  let overall = await api("/v1/metrics/timeseries", { params: { ...base, interval } });
  while (!chosen && FINER[interval] && new Set(overall.points.map((pt) => pt.time_unix_nano)).size < 4) {
    const finer = await api("/v1/metrics/timeseries", { params: { ...base, interval: FINER[interval] } });
    if (!finer.points.length) break;
    interval = FINER[interval];
    overall = finer;
  }
  const xs = overall.points.map((pt) => nsToMs(pt.time_unix_nano));
  const start = chosen || !xs.length ? (from ? Date.parse(from) : null) : Math.max(from ? Date.parse(from) : -Infinity, Math.min(...xs) - 2 * INTERVAL_MS[interval]);
  return { interval, overall, domain: [start, Date.now()] };
}

export async function render(root, route) {
  const p = route.params;
  const range = RANGES[p.get("range")] !== undefined ? p.get("range") : "24h";
  const group = ["model", "provider", "service"].includes(p.get("group")) ? p.get("group") : "model";
  const chosen = ["1m", "1h", "1d"].includes(p.get("interval")) ? p.get("interval") : null;
  const from = RANGES[range] ? new Date(Date.now() - RANGES[range]).toISOString() : null;
  const filters = { service: p.get("service"), model: p.get("model"), provider: p.get("provider") };
  const nav = (over) => {
    const next = { ...Object.fromEntries(p), ...over };
    if (next.interval === "auto") delete next.interval;
    location.hash = href("costs", [], next);
  };

  const select = (label, name, options, value) => {
    const el = h("select", { name }, options.map((o) => h("option", { value: o, selected: o === value }, o)));
    el.addEventListener("change", () => nav({ [name]: el.value }));
    return h("label", null, label, el);
  };
  root.append(h("h1", null, "Costs & metrics"), h("form", { class: "filters", "aria-label": "Chart options", onsubmit: (e) => e.preventDefault() },
    select("Range", "range", Object.keys(RANGES), range),
    select("Group by", "group", ["model", "provider", "service"], group),
    select("Interval", "interval", ["auto", "1m", "1h", "1d"], chosen || "auto"),
    ...["service", "model", "provider"].map((k) => {
      const input = h("input", { name: k, value: p.get(k) || "", placeholder: "any" });
      input.addEventListener("change", () => nav({ [k]: input.value }));
      return h("label", null, `Only ${k}`, input);
    }),
  ));
  const summaryBox = h("div");
  const byGroup = h("div", { class: "charts" });
  const series = h("div", { class: "charts" });
  const prompts = h("section", { "aria-label": "Prompt versions" });
  const overTime = h("h2", null, "Over time");
  root.append(summaryBox, h("h2", null, `By ${group}`), byGroup, overTime, series, prompts);

  const base = { from, ...filters };
  let picked;
  try {
    picked = await pickSeries(base, range, chosen, from);
  } catch (err) {
    picked = err;
  }
  const interval = picked instanceof Error ? chosen || AUTO_INTERVAL[range] : picked.interval;
  const domain = picked instanceof Error ? [from ? Date.parse(from) : null, Date.now()] : picked.domain;
  overTime.textContent = `Over time (${PER[interval]}${chosen ? "" : ", interval chosen for the data"})`;
  // /v1/metrics/timeseries groups by model or service; by provider, usage over time comes from
  // /v1/costs?group_by=provider,hour|day and the rates are shown for all providers together.
  const tsGroup = group === "provider" ? null : group;
  const bucket = interval === "1d" ? "day" : "hour";
  const [summary, costs, grouped, providerUsage] = await Promise.all([
    api("/v1/metrics/summary", { params: base }),
    api("/v1/costs", { params: { ...base, group_by: group } }),
    api("/v1/metrics/timeseries", { params: { ...base, interval, group_by: tsGroup } }),
    group === "provider" ? api("/v1/costs", { params: { ...base, group_by: `provider,${bucket}` } }) : Promise.resolve(null),
  ].map((pr) => pr.catch((err) => err)));
  const overall = picked instanceof Error ? picked : picked.overall;
  const per = PER[interval];

  if (summary instanceof Error) summaryBox.append(errorBox(summary));
  else {
    const u = summary.usage;
    summaryBox.append(h("dl", { class: "cards" },
      card("LLM calls", fmtInt(summary.requests)),
      card("Errors", `${fmtInt(summary.errors)} (${fmtPct(summary.error_rate)})`),
      card("Cost", fmtCost(u.cost_usd, u.cost_unknown)),
      card("Tokens", `${fmtTokens(u.input_tokens)} in / ${fmtTokens(u.output_tokens)} out`),
      card("Latency p50 / p95 / p99", `${fmtMs(summary.latency.p50_ms)} / ${fmtMs(summary.latency.p95_ms)} / ${fmtMs(summary.latency.p99_ms)}`),
      card("TTFT p50 / p95", `${fmtMs(summary.ttft.p50_ms)} / ${fmtMs(summary.ttft.p95_ms)}`),
    ));
    if (u.cost_unknown) summaryBox.append(h("p", { class: "muted" }, `${fmtInt(u.cost_unknown)} calls have no known price and are not counted as $0.`));
  }

  if (costs instanceof Error) byGroup.append(errorBox(costs));
  else {
    const label = (g) => g.key[group] ?? "(none)";
    const tint = (g) => colorFor(`${group}:${label(g)}`);
    const groups = [...costs.groups].sort((a, b) => (b.usage.cost_usd || 0) - (a.usage.cost_usd || 0));
    byGroup.append(
      barChart({ title: `Cost by ${group}`, fmt: (v) => fmtCost(v), items: groups.map((g) => ({ label: label(g), color: tint(g), value: g.usage.cost_usd, title: `${fmtCost(g.usage.cost_usd, g.usage.cost_unknown)} over ${g.usage.llm_calls} calls` })) }),
      barChart({ title: `Tokens by ${group}`, fmt: fmtTokens, items: groups.map((g) => ({ label: label(g), color: tint(g), value: g.usage.total_tokens, title: `${fmtInt(g.usage.input_tokens)} in / ${fmtInt(g.usage.output_tokens)} out` })) }),
      barChart({ title: `LLM calls by ${group}`, fmt: fmtInt, items: groups.map((g) => ({ label: label(g), color: tint(g), value: g.usage.llm_calls })) }),
    );
  }

  if (grouped instanceof Error) series.append(errorBox(grouped));
  else {
    const by = seriesBy(grouped.points, tsGroup || "all");
    const note = tsGroup ? per : `${per}, all providers`;
    if (providerUsage && !(providerUsage instanceof Error)) {
      const usage = usageBy(providerUsage.groups, bucket);
      const perBucket = PER[bucket];  // cost by provider over time comes in hours or days
      series.append(
        lineChart({ domain, title: "Cost (USD)", note: perBucket, fmt: (v) => fmtCost(v), series: usage((u) => u.cost_usd) }),
        lineChart({ domain, title: "Tokens", note: perBucket, fmt: fmtTokens, series: usage((u) => u.total_tokens) }),
        lineChart({ domain, title: "LLM calls", note: perBucket, fmt: fmtInt, series: usage((u) => u.llm_calls) }),
      );
    } else {
      series.append(
        lineChart({ domain, title: "Cost (USD)", note, fmt: (v) => fmtCost(v), series: by((m) => m.usage.cost_usd) }),
        lineChart({ domain, title: "Tokens", note, fmt: fmtTokens, series: by((m) => m.usage.total_tokens) }),
        lineChart({ domain, title: "LLM calls", note, fmt: fmtInt, series: by((m) => m.requests) }),
      );
    }
    series.append(
      lineChart({ domain, title: "Error rate", note, fmt: fmtPct, series: by((m) => m.error_rate) }),
      lineChart({ domain, title: "Latency p95", note, fmt: fmtMs, series: by((m) => m.latency.p95_ms) }),
      lineChart({ domain, title: "TTFT p95", note, fmt: fmtMs, series: by((m) => m.ttft.p95_ms) }),
    );
  }
  if (!(overall instanceof Error)) {
    const one = (name, pick) => ({ name, points: overall.points.map((pt) => ({ x: nsToMs(pt.time_unix_nano), y: pick(pt.metrics) })) });
    series.append(
      lineChart({ domain, title: "Latency (all)", note: per, fmt: fmtMs, series: [one("p50", (m) => m.latency.p50_ms), one("p95", (m) => m.latency.p95_ms), one("p99", (m) => m.latency.p99_ms)] }),
      lineChart({ domain, title: "Time to first token (all)", note: per, fmt: fmtMs, series: [one("p50", (m) => m.ttft.p50_ms), one("p95", (m) => m.ttft.p95_ms), one("p99", (m) => m.ttft.p99_ms)] }),
    );
  }
  await promptSection(prompts, p, from, nav);
}

function usageBy(groups, bucket) {
  return (pick) => {
    const map = new Map();  // provider → bucket start → summed usage (additive, so rows that share a
    for (const g of groups) {  // label, e.g. no provider and "", add up instead of stacking dots)
      const key = g.key.provider || "(none)";
      const x = Date.parse(g.key[bucket]);
      if (!map.has(key)) map.set(key, new Map());
      const y = pick(g.usage);
      const prev = map.get(key).get(x);
      map.get(key).set(x, prev === undefined || prev === null ? y : y === null ? prev : prev + y);
    }
    return [...map].map(([name, pts]) => ({ name, points: [...pts].map(([x, y]) => ({ x, y })), color: colorFor(`provider:${name}`) }));
  };
}

function seriesBy(points, group) {
  return (pick) => {
    const map = new Map();
    for (const pt of points) {
      const key = pt.key ?? "all";
      if (!map.has(key)) map.set(key, []);
      map.get(key).push({ x: nsToMs(pt.time_unix_nano), y: pick(pt.metrics) });
    }
    return [...map].map(([name, pts]) => ({ name, points: pts, color: colorFor(`${group}:${name}`) }));
  };
}

async function promptSection(box, p, from, nav) {
  box.append(h("h2", null, "Prompt versions"));
  let list;
  try {
    list = await api("/v1/prompts", { params: { from } });
  } catch (err) {
    box.append(errorBox(err));
    return;
  }
  if (!list.prompts.length) {
    box.append(h("p", { class: "empty" }, "No LLM call in this range names a prompt (set gen_ai.prompt.name / llmscope.prompt(...) to compare versions)."));
    return;
  }
  const chosen = p.get("prompt") && list.prompts.some((x) => x.name === p.get("prompt")) ? p.get("prompt") : list.prompts[0].name;
  box.append(h("table", { class: "data", "aria-label": "Prompts" },
    h("thead", null, h("tr", null, ["Prompt", "Versions", "Uses", "Error rate", "Avg tokens", "Avg latency", "Cost", "Last used"].map((c, i) => h("th", { scope: "col", class: i ? "num" : null }, c)))),
    h("tbody", null, list.prompts.map((pr) => h("tr", { class: pr.name === chosen ? "selected" : null },
      h("td", null, h("a", { href: href("costs", [], { ...Object.fromEntries(p), prompt: pr.name }), "aria-current": pr.name === chosen ? "true" : null }, pr.name)),
      h("td", { class: "num" }, fmtInt(pr.versions)),
      h("td", { class: "num" }, fmtInt(pr.stats.uses)),
      h("td", { class: "num" }, fmtPct(pr.stats.error_rate)),
      h("td", { class: "num" }, pr.stats.avg_tokens === null ? "–" : fmtTokens(Math.round(pr.stats.avg_tokens))),
      h("td", { class: "num" }, fmtMs(pr.stats.avg_latency_ms)),
      h("td", { class: "num" }, fmtCost(pr.stats.usage.cost_usd, pr.stats.usage.cost_unknown)),
      h("td", { class: "num" }, timeEl(pr.stats.last_used_unix_nano)),
    )))));
  let versions;
  try {
    versions = await api(`/v1/prompts/${encodeURIComponent(chosen)}/versions`, { params: { from } });
  } catch (err) {
    box.append(errorBox(err));
    return;
  }
  const items = (pick, fmt) => versions.versions.map((v) => ({ label: v.version ?? "(unversioned)", value: pick(v.stats), title: fmt(pick(v.stats)) }));
  box.append(h("h3", null, `${chosen}: versions compared`), h("div", { class: "charts" },
    barChart({ title: "Uses", fmt: fmtInt, items: items((s) => s.uses, fmtInt) }),
    barChart({ title: "Error rate", fmt: fmtPct, items: items((s) => s.error_rate, fmtPct) }),
    barChart({ title: "Avg latency", fmt: fmtMs, items: items((s) => s.avg_latency_ms, fmtMs) }),
    barChart({ title: "Avg tokens", fmt: fmtTokens, items: items((s) => s.avg_tokens, fmtTokens) }),
    barChart({ title: "Cost per use", fmt: (v) => fmtCost(v), items: items((s) => (s.usage.cost_usd === null ? null : s.usage.cost_usd / Math.max(1, s.uses)), (v) => fmtCost(v)) }),
  ));
}

function card(label, value) {
  return h("div", null, h("dt", null, label), h("dd", null, value));
}

export { clear };
