// The consultations queue: highest priority first, then the oldest; filters, "load more",
// live over the event stream, and a toast when a high-priority question comes in.
import { $, Live, Pager, ago, api, badge, describeError, el, fmtNumber, link, say, toast, when } from "./common.js";
import { ownerHint } from "./ownership.js";

const PAGE = 25;
const HIGH = Number($("queue").dataset.highPriority);
const known = new Map(); // id -> {c, node}, for live updates

function filters() {
  const form = new FormData($("filters"));
  return { state: String(form.get("state") || ""), min_priority: String(form.get("min_priority") || "").trim() };
}

function matches(c) {
  const f = filters();
  return (!f.state || f.state === c.state) && (f.min_priority === "" || c.priority >= Number(f.min_priority));
}

/** The queue's order: priority descending, then id (age) ascending, as the API pages it. */
function before(a, b) {
  return a.priority !== b.priority ? a.priority > b.priority : a.id < b.id;
}

function row(c) {
  const href = `/consultations/${c.id}`;
  const high = c.priority >= HIGH;
  return el("tr", { dataset: { consultationId: c.id, state: c.state, priority: c.priority },
    class: high ? "high" : null },
  el("td", {}, link(href, `#${c.id}`)),
  el("td", { class: "num", dataset: { field: "priority" } }, fmtNumber(c.priority),
    high ? el("span", { class: "badge badge-high" }, "high") : null),
  el("td", { dataset: { field: "state" } }, badge(c.state), ownerHint(c)),
  el("td", { dataset: { field: "title" }, class: "wrap" }, link(href, c.title)),
  el("td", { dataset: { field: "agent" } }, c.api_key_id ? `key #${c.api_key_id}` : "–"),
  el("td", { dataset: { field: "age" } }, ago(c.created_at)),
  el("td", { dataset: { field: "deadline" } }, c.state === "pending" ? when(c.deadline_at) : "–"));
}

function refreshEmpty() {
  const n = $("queue-body").children.length;
  $("queue-empty").hidden = n > 0;
  $("queue-count").textContent = n ? `(${n}${pager.cursor ? "+" : ""})` : "";
}

function show(items, first) {
  if (first) {
    $("queue-body").replaceChildren();
    known.clear();
  }
  for (const c of items) {
    if (known.has(c.id)) continue; // arrived live before its page
    const node = row(c);
    known.set(c.id, { c, node });
    $("queue-body").append(node);
  }
  refreshEmpty();
}

const pager = new Pager("/api/v1/consultations", $("load-more"), show);

function load() {
  say($("queue-error"), "");
  return pager.reset({ ...filters(), order: "priority", limit: PAGE })
    .catch((err) => say($("queue-error"), describeError(err)));
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const f = filters();
  // An empty state is kept in the URL: without it, the page opens on "pending".
  const query = new URLSearchParams({ state: f.state, ...(f.min_priority !== "" ? { min_priority: f.min_priority } : {}) });
  history.replaceState(null, "", `?${query}`);
  load();
});

// --- live -------------------------------------------------------------------------------------

/** Put ``node`` where ``c`` sorts among the rows shown. A row that sorts after the last one
 * while more pages remain is left out: "load more" brings it in its place. */
function place(c, node) {
  const rows = [...known.values()].filter((k) => k.c.id !== c.id);
  const next = rows.find((k) => before(c, k.c));
  if (next) next.node.before(node);
  else if (!pager.cursor) $("queue-body").append(node);
  else return false;
  return true;
}

async function upsert(id, fresh) {
  const c = await api(`/api/v1/consultations/${id}`);
  const old = known.get(id);
  if (old) {
    old.node.remove();
    known.delete(id);
  }
  if (matches(c)) {
    const node = row(c);
    if (fresh) node.classList.add("fresh");
    if (place(c, node)) known.set(id, { c, node });
  }
  refreshEmpty();
}

// One fetch at a time per consultation, so quick successive events cannot add it twice.
const chains = new Map();
function queueUpsert(id, fresh) {
  const next = (chains.get(id) || Promise.resolve()).then(() => upsert(id, fresh)).catch(() => {});
  chains.set(id, next);
}

new Live().on((ev) => {
  if (!ev.type.startsWith("consultation.")) return;
  const id = ev.payload && ev.payload.consultation_id;
  if (!id) return;
  if (ev.type === "consultation.created" && Number(ev.payload.priority) >= HIGH) {
    toast(`High-priority question #${id} (priority ${ev.payload.priority}): ${ev.payload.title || ""}`,
      { href: `/consultations/${id}`, type: "consultation.high_priority" });
  }
  if (ev.type === "consultation.created" || known.has(id)) queueUpsert(id, ev.type === "consultation.created");
}).start();

load();
