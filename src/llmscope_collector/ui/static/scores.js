// Scores on traces, spans and sessions: shown as chips, and the trace view's thumbs up/down + comment
// (a `POST /v1/scores` like any other client's, with the same API key as every other request).
import { api } from "./api.js";
import { h, s as svg, timeEl } from "./util.js";

// The score the thumbs write: boolean, true = thumbs up (Langfuse's user feedback is the same shape).
export const FEEDBACK = "feedback";
const CLIENT = "llmscope.clientId";

// One id per browser and trace: voting again (or adding a comment) replaces the earlier vote, as the
// API replaces a score sent again with its id.
function feedbackId(traceId) {
  let client = localStorage.getItem(CLIENT);
  if (!client) {
    client = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(CLIENT, client);
  }
  return `ui-${client}-${traceId}`;
}

const nf = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 });

// A thumb drawn here (no emoji font needed: servers and CI browsers often have none); down is up turned over.
function thumbIcon(up) {
  return svg("svg", { viewBox: "0 0 24 24", width: 16, height: 16, "aria-hidden": "true", class: "thumb-icon" + (up ? "" : " down") },
    svg("path", { d: "M2 10h4v11H2z", fill: "currentColor" }),
    svg("path", { d: "M8 21h9.2a2 2 0 0 0 2-1.6l1.5-7.2A2 2 0 0 0 18.7 10h-5.3l.9-4.4a1.8 1.8 0 0 0-3.2-1.4L8 9.5z", fill: "currentColor" }));
}

export function scoreValue(s) {
  if (s.data_type === "boolean") {
    const yes = s.value === 1 || s.label === "true";
    return s.name === FEEDBACK ? [thumbIcon(yes), yes ? " good" : " bad"] : (yes ? "true" : "false");
  }
  if (s.data_type === "categorical") return s.label ?? "";
  return s.value === null || s.value === undefined ? "–" : nf.format(s.value);
}

function scoreTitle(s) {
  return [
    `${s.name} = ${s.data_type === "numeric" ? s.value : s.label ?? s.value} (${s.data_type})`,
    s.comment ? `“${s.comment}”` : null,
    `source: ${s.source || "api"}${s.author ? ` · by ${s.author}` : ""}`,
    s.span_id ? `on span ${s.span_id}` : s.trace_id ? "on the trace" : "on the session",
    s.pending ? "saved; shown here once stored (a moment)" : null,
  ].filter(Boolean).join("\n");
}

// The scores as a list of chips (name, value, comment), newest first; `empty` when there are none.
export function scoreList(scores, { empty = "No scores yet." } = {}) {
  const list = h("ul", { class: "scores", "aria-label": "Scores" });
  if (!scores || !scores.length) {
    list.append(h("li", { class: "muted none" }, empty));
    return list;
  }
  for (const s of scores) {
    const yes = s.data_type === "boolean" && (s.value === 1 || s.label === "true");
    const no = s.data_type === "boolean" && !yes;
    list.append(h("li", { class: "score" + (yes ? " good" : no ? " bad" : "") + (s.pending ? " pending" : ""), title: scoreTitle(s), dataset: { name: s.name, id: s.id } },
      h("span", { class: "score-name" }, s.name), " ",
      h("strong", { class: "score-value" }, scoreValue(s)),
      s.span_id ? h("span", { class: "muted" }, " · span") : null,
      s.comment ? h("span", { class: "score-comment" }, ` “${s.comment}”`) : null,
      s.time_ns ? h("span", { class: "muted score-time" }, " · ", timeEl(s.time_ns)) : null));
  }
  return list;
}

// Thumbs up/down and an optional comment for one trace; `onSaved(score)` gets the score as sent.
export function feedbackForm(traceId, scores, onSaved) {
  const id = feedbackId(traceId);
  const mine = (scores || []).find((s) => s.id === id);
  let vote = mine ? (mine.value === 1 || mine.label === "true") : null;
  const status = h("span", { class: "muted", role: "status", "aria-live": "polite" });
  const comment = h("textarea", { name: "comment", rows: 1, maxlength: 4096, placeholder: "Comment (optional)", "aria-label": "Feedback comment" });
  comment.value = (mine && mine.comment) || "";
  const thumb = (value, label, icon) => h("button", {
    type: "button", class: "thumb", "aria-pressed": vote === value ? "true" : "false", "aria-label": label, title: label,
    onclick: () => { vote = value; paint(); send(); },
  }, thumbIcon(value), icon);
  const up = thumb(true, "Good answer (thumbs up)", "Good");
  const down = thumb(false, "Bad answer (thumbs down)", "Bad");
  const save = h("button", { type: "submit" }, "Send comment");
  function paint() {
    up.setAttribute("aria-pressed", vote === true ? "true" : "false");
    down.setAttribute("aria-pressed", vote === false ? "true" : "false");
  }
  async function send() {
    if (vote === null) { status.textContent = "Pick thumbs up or down first: the comment goes with your vote."; return; }
    const body = { id, name: FEEDBACK, value: vote, trace_id: traceId, source: "human", comment: comment.value.trim() || null };
    status.textContent = "Saving…";
    for (const b of [up, down, save]) b.disabled = true;
    try {
      await api("/v1/scores", { method: "POST", body });
      status.textContent = "Saved";
      onSaved({ ...body, data_type: "boolean", value: vote ? 1 : 0, label: String(vote), time_ns: null, pending: true });
    } catch (err) {
      status.textContent = `Not saved: ${err.message}`;
    } finally {
      for (const b of [up, down, save]) b.disabled = false;
    }
  }
  const form = h("form", { class: "feedback", "aria-label": "Rate this trace" },
    h("span", { class: "muted" }, "Rate this trace"), up, down, comment, save, status);
  form.addEventListener("submit", (e) => { e.preventDefault(); send(); });
  return form;
}

// A scores section that can show a new score at once and then the stored list (scores are queryable
// after the collector's next flush, about a second: until then the sent one is shown as pending).
export function scoresSection(load, initial, extra = null) {
  let scores = initial || [];
  const box = h("div", { class: "scores-box" });
  const paint = () => { box.replaceChildren(scoreList(scores), ...(extra ? [extra] : [])); };
  paint();
  return {
    el: box,
    add(score) {
      scores = [score, ...scores.filter((s) => s.id !== score.id)];
      paint();
      const refresh = async (tries) => {
        try {
          const stored = (await load()) || [];
          const found = stored.some((s) => s.id === score.id && s.label === score.label && (s.comment || null) === (score.comment || null));
          if (found || !tries) { scores = found ? stored : [score, ...stored.filter((s) => s.id !== score.id)]; paint(); }
          if (!found && tries) setTimeout(() => refresh(tries - 1), 1000);
        } catch { /* the pending chip stays */ }
      };
      setTimeout(() => refresh(5), 800);
    },
  };
}
