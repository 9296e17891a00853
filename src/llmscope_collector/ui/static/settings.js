// Settings: this browser's API key / project, and (with the admin token) projects and API keys.
import { api, auth } from "./api.js";
import { clear, empty, errorBox, h, timeEl, withCode } from "./util.js";

function isoToNs(iso) {
  return iso ? BigInt(Date.parse(iso)) * 1000000n : null;
}

export async function render(root) {
  root.append(h("h1", null, "Settings"));
  const keyInput = h("input", { type: "password", name: "key", value: auth.key, autocomplete: "off", size: 48, placeholder: "lsk_… or the admin token" });
  const projInput = h("input", { name: "project", value: auth.project, placeholder: "default" });
  const saved = h("span", { class: "muted", role: "status" });
  const authForm = h("form", { "aria-label": "API key" },
    h("fieldset", null, h("legend", null, "API key for this browser"),
      h("p", { class: "muted" }, "Not needed on loopback with the default auth mode. The key is stored in this browser's localStorage and sent as a bearer token."),
      h("div", { class: "toolbar" },
        h("label", null, "API key or admin token", keyInput),
        h("label", null, "Project (admin token only)", projInput),
        h("button", { class: "primary", type: "submit" }, "Save"),
        h("button", { type: "button", onclick: () => { auth.key = ""; auth.project = ""; keyInput.value = ""; projInput.value = ""; saved.textContent = "Forgotten."; changed(); } }, "Forget"),
        saved)));
  authForm.addEventListener("submit", (e) => {
    e.preventDefault();
    auth.key = keyInput.value.trim();
    auth.project = projInput.value.trim();
    saved.textContent = "Saved.";
    changed();
  });
  const admin = h("section", { "aria-label": "Projects and API keys" });
  root.append(authForm, h("h2", null, "Projects and API keys"), admin);

  function changed() {
    window.dispatchEvent(new Event("llmscope:auth"));
    loadProjects();
  }

  async function loadProjects() {
    clear(admin);
    const needsAdmin = () => h("p", { class: "notice" }, withCode("Managing projects and keys needs the admin token (printed by `llmscope serve` at first start, saved in `<data dir>/auth/admin-token`). Paste it above."));
    if (!auth.key) {  // without a token the answer is a 401: say what is needed instead of asking
      admin.append(needsAdmin());
      return;
    }
    let projects;
    try {
      projects = await api("/v1/projects");
    } catch (err) {
      admin.append(err.status === 401 || err.status === 403 ? needsAdmin() : errorBox(err));
      return;
    }
    const nameInput = h("input", { name: "name", required: true, pattern: "[a-z0-9][a-z0-9_-]*", placeholder: "new-project" });
    const createErr = h("div");
    const create = h("form", { class: "toolbar", "aria-label": "Create project" }, h("label", null, "New project", nameInput), h("button", { class: "primary", type: "submit" }, "Create project"), createErr);
    create.addEventListener("submit", async (e) => {
      e.preventDefault();
      try { await api("/v1/projects", { method: "POST", body: { name: nameInput.value.trim() } }); loadProjects(); } catch (err) { clear(createErr).append(errorBox(err)); }
    });
    admin.append(create);
    if (!projects.length) admin.append(empty("No projects."));
    for (const pr of projects) admin.append(await projectBox(pr));
  }
  await loadProjects();
}

async function projectBox(pr) {
  const box = h("fieldset", { class: "project", dataset: { project: pr.name } }, h("legend", null, pr.name));
  box.append(h("p", { class: "muted" }, "Created ", timeEl(isoToNs(pr.created_at)),
    ` · rate limit ${pr.rate_limit_spans_per_s === null ? "global default" : pr.rate_limit_spans_per_s + " spans/s"} · ${pr.active_keys} active key${pr.active_keys === 1 ? "" : "s"}`));
  const shown = h("div", { "aria-live": "polite" });
  const keysBox = h("div");
  const keyName = h("input", { name: "key_name", placeholder: "key name (optional)", maxlength: 200 });
  const form = h("form", { class: "toolbar", "aria-label": `Create API key for ${pr.name}` }, keyName, h("button", { class: "primary", type: "submit" }, "Create API key"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const created = await api(`/v1/projects/${encodeURIComponent(pr.name)}/keys`, { method: "POST", body: { name: keyName.value.trim() } });
      keyName.value = "";
      const copy = h("button", { type: "button", onclick: async () => { try { await navigator.clipboard.writeText(created.key); copy.textContent = "Copied"; } catch { copy.textContent = "Select and copy it"; } } }, "Copy");
      clear(shown).append(h("div", { class: "notice", role: "alert" },
        h("strong", null, "New API key — shown once, copy it now:"), h("div", { class: "secret", "data-new-key": "" }, created.key), copy));
      await loadKeys();
    } catch (err) { clear(shown).append(errorBox(err)); }
  });
  async function loadKeys() {
    clear(keysBox);
    let keys;
    try { keys = await api(`/v1/projects/${encodeURIComponent(pr.name)}/keys`); } catch (err) { keysBox.append(errorBox(err)); return; }
    if (!keys.length) { keysBox.append(empty("No API keys.")); return; }
    keysBox.append(h("table", { class: "data", "aria-label": `API keys of ${pr.name}` },
      h("thead", null, h("tr", null, ["Key", "Name", "Created", "Last used", "Status", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, keys.map((k) => h("tr", { dataset: { keyId: k.id } },
        h("td", null, h("code", null, `${k.prefix}…`)),
        h("td", null, k.name || "–"),
        h("td", null, timeEl(isoToNs(k.created_at))),
        h("td", null, k.last_used_at ? timeEl(isoToNs(k.last_used_at)) : "never"),
        h("td", null, k.revoked_at ? h("span", { class: "pill muted" }, "revoked") : h("span", { class: "pill ok" }, "active")),
        h("td", null, k.revoked_at ? null : h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(`Revoke key ${k.prefix}… of ${pr.name}? Apps using it are refused from the next request.`)) return;
          try { await api(`/v1/projects/${encodeURIComponent(pr.name)}/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" }); await loadKeys(); } catch (err) { keysBox.append(errorBox(err)); }
        } }, "Revoke")),
      )))));
  }
  box.append(form, shown, keysBox);
  await loadKeys();
  return box;
}
