// Hash router: every view and its filters live in the URL fragment (#/traces?model=…), so links share.
import { auth } from "./api.js";
import { clear, errorBox, h } from "./util.js";

const PAGES = {
  traces: () => import("./traces.js"),
  trace: () => import("./trace.js"),
  sessions: () => import("./sessions.js"),
  session: () => import("./sessions.js"),
  costs: () => import("./costs.js"),
  alerts: () => import("./alerts.js"),
  settings: () => import("./settings.js"),
};

export function currentRoute() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || "traces", args: parts.slice(1), params: new URLSearchParams(query) };
}

export function href(page, args = [], params = {}) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") u.set(k, v);
  const q = u.toString();
  return `#/${[page, ...args].map(encodeURIComponent).join("/")}${q ? "?" + q : ""}`;
}

// Change the query string of the current view without a reload (history entry unless replace).
export function setParams(params, { replace = true } = {}) {
  const r = currentRoute();
  const url = href(r.page, r.args, params);
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
}

let cleanup = null;
let token = 0;

async function render() {
  showWho();
  const route = currentRoute();
  const main = document.getElementById("main");
  for (const a of document.querySelectorAll("[data-nav]")) {
    const on = a.dataset.nav === route.page || (route.page === "trace" && a.dataset.nav === "traces")
      || (route.page === "session" && a.dataset.nav === "sessions");
    on ? a.setAttribute("aria-current", "page") : a.removeAttribute("aria-current");
  }
  const loader = PAGES[route.page];
  if (cleanup) { try { cleanup(); } catch { /* the old view is gone anyway */ } cleanup = null; }
  const mine = ++token;
  clear(main);
  if (!loader) {
    main.append(h("h1", null, "Not found"), h("p", null, h("a", { href: "#/traces" }, "Go to traces")));
    return;
  }
  try {
    const mod = await loader();
    if (mine !== token) return;
    const fn = route.page === "session" ? mod.renderSession : mod.render;
    cleanup = (await fn(main, route)) || null;
  } catch (err) {
    if (mine === token) main.append(errorBox(err));
  }
}

function showWho() {
  const who = document.getElementById("who");
  who.textContent = auth.key ? `key …${auth.key.slice(-4)}${auth.project ? " · " + auth.project : ""}` : "";
}

window.addEventListener("hashchange", render);
window.addEventListener("llmscope:auth", showWho);
document.addEventListener("keydown", (e) => {
  // "/" focuses the page's search box, as in most log/trace viewers.
  if (e.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) {
    const box = document.querySelector("[data-search]");
    if (box) { e.preventDefault(); box.focus(); }
  }
  // "j" (or ↓) with nothing focused enters the page's list or waterfall.
  const idle = document.activeElement === document.body || document.activeElement === document.getElementById("main");
  if (idle && (e.key === "j" || e.key === "ArrowDown")) {
    const first = document.querySelector(".wf-scroll, tr.rowlink");
    if (first) { e.preventDefault(); first.focus(); }
  }
});
showWho();
render();
