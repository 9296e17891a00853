// The JSON API client: same origin, the pasted API key (localStorage) as a bearer token.

const KEY = "llmscope.apiKey";
const PROJECT = "llmscope.project";

export const auth = {
  get key() { return localStorage.getItem(KEY) || ""; },
  set key(v) { v ? localStorage.setItem(KEY, v) : localStorage.removeItem(KEY); },
  get project() { return localStorage.getItem(PROJECT) || ""; },
  set project(v) { v ? localStorage.setItem(PROJECT, v) : localStorage.removeItem(PROJECT); },
};

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail ? body.detail : `HTTP ${status}`;
    super(status === 401 ? `${detail} — paste an API key in Settings` : detail);
    this.status = status;
    this.body = body;
  }
}

function headers(extra) {
  const out = { accept: "application/json", ...extra };
  if (auth.key) out.authorization = `Bearer ${auth.key}`;
  if (auth.project) out["x-llmscope-project"] = auth.project;
  return out;
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "") u.set(k, v);
  }
  const text = u.toString();
  return text ? `?${text}` : "";
}

// Epoch-nanosecond values exceed 2^53: keep them exact as BigInt (JSON.parse source text access).
function nsReviver(key, value, context) {
  if (typeof value === "number" && key.endsWith("_unix_nano") && context && /^\d+$/.test(context.source)) {
    return BigInt(context.source);
  }
  return value;
}

export function parseJson(text) {
  return JSON.parse(text, nsReviver);
}

// Paths are resolved against the page, so the UI also works behind a proxy under a path prefix.
function url(path, params) {
  return path.replace(/^\//, "") + qs(params);
}

export async function api(path, { method = "GET", body, params, signal } = {}) {
  const init = { method, headers: headers(body !== undefined ? { "content-type": "application/json" } : {}), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(url(path, params), init);
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = parseJson(text); } catch { data = { detail: text.slice(0, 200) }; }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// A file from the API (the same key as every request, so no plain link: it could not send the header);
// the server's file name from its content-disposition.
export async function download(path, params) {
  const res = await fetch(url(path, params), { headers: headers({ accept: "*/*" }) });
  if (!res.ok) {
    const text = await res.text();
    let data = null;
    try { data = parseJson(text); } catch { data = { detail: text.slice(0, 200) }; }
    throw new ApiError(res.status, data);
  }
  const match = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "");
  return { blob: await res.blob(), filename: match ? match[1] : null };
}

// Server-Sent Events over fetch (EventSource cannot send the authorization header).
// Calls onEvent({event, data, id}); reconnects after the server ends the stream; returns stop().
export function stream(path, params, onEvent, onState) {
  const ctrl = new AbortController();
  let stopped = false;
  let retry = 1000;
  async function run() {
    while (!stopped) {
      try {
        onState && onState("connecting");
        const res = await fetch(url(path, params), { headers: headers({ accept: "text/event-stream" }), signal: ctrl.signal });
        if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
        onState && onState("live");
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n/g, "\n");
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            const msg = { event: "message", data: "", id: null };
            const data = [];
            for (const line of block.split("\n")) {
              if (!line || line.startsWith(":")) continue;
              const i = line.indexOf(":");
              const field = i < 0 ? line : line.slice(0, i);
              const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
              if (field === "data") data.push(val);
              else if (field === "event") msg.event = val;
              else if (field === "id") msg.id = val;
              else if (field === "retry") retry = Number(val) || retry;
            }
            if (data.length) {
              msg.data = data.join("\n");
              onEvent(msg);
            }
          }
        }
        params = { ...params, backfill: 0 }; // after a reconnect, only what is new
      } catch (err) {
        if (stopped) return;
        onState && onState("error", err);
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return;
      }
      if (!stopped) await new Promise((r) => setTimeout(r, retry));
    }
  }
  run();
  return () => {
    stopped = true;
    ctrl.abort();
    onState && onState("off");
  };
}
