// The dashboard: the reviewer's inbox (what waits for a person, most urgent first) and the
// runs with their counts, kept current by the event stream.
import { $, ApiFailure, Live, ago, api, badge, debounce, describeError, el, fmtNumber, link, say, toast } from "./common.js";
import { STATUSES, TYPES } from "/words.js";

const RUN_LIMIT = 20;
const INBOX_LIMIT = 100;
const PROGRESS = ["requests", "responses", "items", "parked", "resumed"];
const HIGH = 50; // from this priority up a row says "urgent" (the consultations' threshold)

let runs = [];
let rows = [];
let selected = -1; // index of the row j/k selected
const liveStatus = new Map(); // run id -> status from the newest run.* event
const progress = new Map(); // run id -> the newest counts from run.progress / run.waiting

// --- runs -------------------------------------------------------------------------------------

function progressFromStats(stats = {}) {
  return {
    requests: stats["downloader/request_count"],
    responses: stats["downloader/response_count"],
    items: stats["item_scraped_count"],
    parked: stats["hitl/parked"],
    resumed: stats["hitl/resumed"],
  };
}

function runCounts(run) {
  if (progress.has(run.id)) return progress.get(run.id);
  if (run.stats && Object.keys(run.stats).length) return progressFromStats(run.stats);
  // Still running: the stats come at close; until then the newest run.progress it saved.
  return run.progress || (run.status === "running" ? Object.fromEntries(PROGRESS.map((k) => [k, 0])) : {});
}

function runRow(run) {
  const status = liveStatus.get(run.id) || run.status;
  const p = runCounts(run);
  const row = el("tr", { dataset: { runId: run.id, runStatus: status, spider: run.spider } },
    el("td", {}, link(`/runs/${encodeURIComponent(run.id)}`, run.id.slice(0, 8))),
    el("td", {}, run.spider),
    el("td", { dataset: { field: "status" } }, statusBadge(status)));
  for (const key of PROGRESS) row.append(el("td", { class: "num", dataset: { field: key } }, fmtNumber(p[key])));
  row.append(el("td", {}, ago(run.created_at)));
  return row;
}

function statusBadge(status) {
  const node = badge(status);
  if (STATUSES[status]) node.textContent = STATUSES[status];
  return node;
}

function renderRuns() {
  $("runs-body").replaceChildren(...runs.map(runRow));
  $("runs-empty").hidden = runs.length > 0;
}

async function loadRuns() {
  runs = (await api("/api/v1/runs", { query: { limit: RUN_LIMIT } })).items;
  renderRuns();
}

// A run the table does not show yet: fetch the list once for it, not once per event (a run
// reports progress every few seconds). One still missing after that (older than the newest
// RUN_LIMIT) is left alone.
const fetchedFor = new Set();
function showNewRun(runId) {
  if (fetchedFor.has(runId)) return;
  fetchedFor.add(runId);
  loadRuns().catch(() => fetchedFor.delete(runId));
}

const RUN_STATUS = { "run.started": "running", "run.waiting": "waiting_for_human",
  "run.completed": "completed", "run.failed": "failed" };

/** Update one run's counts in place: a progress event changes five cells, not the table. */
function patchRun(runId) {
  const row = document.querySelector(`#runs-body tr[data-run-id="${CSS.escape(runId)}"]`);
  const run = runs.find((r) => r.id === runId);
  if (!row || !run) return false;
  const fresh = runRow(run);
  row.dataset.runStatus = fresh.dataset.runStatus;
  for (const cell of fresh.querySelectorAll("td[data-field]")) {
    const old = row.querySelector(`td[data-field="${cell.dataset.field}"]`);
    if (old && old.textContent !== cell.textContent) old.replaceWith(cell);
  }
  return true;
}

function onRunEvent(ev) {
  if (!ev.run_id) return;
  const p = ev.payload || {};
  if (ev.type === "run.progress") {
    progress.set(ev.run_id, p);
    if (p.status) liveStatus.set(ev.run_id, p.status);
  } else if (RUN_STATUS[ev.type]) {
    liveStatus.set(ev.run_id, RUN_STATUS[ev.type]);
    if (p.stats) progress.set(ev.run_id, progressFromStats(p.stats));
    else if (p.requests !== undefined) progress.set(ev.run_id, p); // run.waiting carries the counts
  } else {
    return;
  }
  if (!patchRun(ev.run_id)) showNewRun(ev.run_id);
}

// --- the inbox --------------------------------------------------------------------------------

function priorityWords(n) {
  if (n >= HIGH) return el("span", { class: "badge badge-high", title: `priority ${n}` }, "urgent");
  if (n < 0) return el("span", { class: "hint", title: `priority ${n}` }, "low priority");
  return null;
}

function codes(list) {
  return el("small", { class: "code" }, ...list.flatMap((c, n) => (n ? [" · ", el("code", {}, c)] : [el("code", {}, c)])));
}

/** Age, parked requests, who is on it (when someone is), then the codes: " · " between. */
function meta(r) {
  const bits = [ago(r.created_at)];
  if (r.kind === "intervention" && r.type !== "run_anomaly") {
    bits.push(el("span", { dataset: { field: "parked" } }, `${fmtNumber(r.parked_count)} parked`));
  }
  if (r.kind === "review") bits.push(el("span", { dataset: { field: "count" } }, `lowest score ${Number(r.min_score).toFixed(2)}`));
  const owner = r.owner && typeof r.owner === "object" ? r.owner.email || r.owner.name : r.owner;
  if (owner) bits.push(el("span", { class: "inbox-owner", dataset: { field: "owner" } }, `${owner} is on it`));
  bits.push(codes(r.codes || []));
  return bits.flatMap((b, n) => (n ? [" · ", b] : [b]));
}

function inboxRow(r, n) {
  const isIntervention = r.kind === "intervention";
  const label = isIntervention && TYPES[r.type] ? TYPES[r.type].label : r.label;
  const item = el("li", {
    class: `inbox-row kind-${r.kind}`, tabindex: "-1",
    dataset: { kind: r.kind, href: r.href, index: String(n), priority: String(r.priority),
      interventionId: isIntervention ? String(r.id) : null, domain: r.domain || null,
      type: r.type || null, runId: r.kind === "review" ? r.run_id || "" : null,
      consultationId: r.kind === "consultation" ? String(r.id) : null },
  },
  el("div", { class: "what" }, el("span", { class: `kind kind-${r.kind}` }, label), priorityWords(r.priority)),
  el("div", { class: "title" }, link(r.href, r.title)),
  el("div", { class: "meta" }, ...meta(r)));
  item.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    select(n);
  });
  return item;
}

function renderInbox(freshId) {
  const nodes = rows.map(inboxRow);
  for (const node of nodes) if (Number(node.dataset.interventionId) === freshId) node.classList.add("fresh");
  $("inbox").replaceChildren(...nodes);
  $("inbox-empty").hidden = rows.length > 0;
  if (selected >= rows.length) selected = rows.length - 1;
  if (selected >= 0) mark(selected);
}

function renderCounts(counts, more) {
  const parts = [];
  if (counts.interventions) parts.push(`${fmtNumber(counts.interventions)} open intervention${counts.interventions === 1 ? "" : "s"}`);
  if (counts.reviews) parts.push(`${fmtNumber(counts.reviews)} held item${counts.reviews === 1 ? "" : "s"}`);
  if (counts.consultations) parts.push(`${fmtNumber(counts.consultations)} question${counts.consultations === 1 ? "" : "s"}`);
  $("inbox-count").textContent = parts.join(" · ");
  $("inbox-count").dataset.total = String(rows.length);
  $("inbox-more").hidden = !more;
}

let inboxLoads = 0; // loads started: only the newest one's answer is shown

async function loadInbox(freshId) {
  const load = ++inboxLoads;
  try {
    const data = await api("/api/v1/inbox", { query: { limit: INBOX_LIMIT } });
    if (load !== inboxLoads) return; // a later load is under way: this answer is older than it
    rows = data.items;
    renderInbox(freshId);
    renderCounts(data.counts, data.more);
    say($("inbox-error"), "");
  } catch (err) {
    if (load !== inboxLoads) return;
    if (!(err instanceof ApiFailure && err.status === 401)) say($("inbox-error"), `Could not load the inbox: ${describeError(err)}`);
  }
}
const refreshInbox = debounce(loadInbox);

function onInboxEvent(ev) {
  if (ev.type === "intervention.created") {
    if (!rows.some((r) => r.kind === "intervention" && r.id === ev.intervention_id)) {
      // Show it at once from the event; the refresh brings the rest (parked count, priority).
      const type = ev.payload.type;
      rows.unshift({ kind: "intervention", id: ev.intervention_id, type, reason: ev.payload.reason,
        domain: ev.domain, parked_count: 0, priority: 0, href: `/interventions/${ev.intervention_id}`,
        title: `${(ev.payload.reason || "").replaceAll("_", " ")} on ${ev.domain}`, codes: [type, ev.payload.reason],
        created_at: new Date(ev.timestamp * 1000).toISOString() });
      renderInbox(ev.intervention_id);
    }
    const label = TYPES[ev.payload.type] ? TYPES[ev.payload.type].label : ev.payload.type;
    toast(`New intervention #${ev.intervention_id}: ${label} on ${ev.domain}`,
      { href: `/interventions/${ev.intervention_id}`, type: ev.type });
    refreshInbox(ev.intervention_id);
  } else if (["intervention.resolved", "intervention.cancelled", "intervention.expired"].includes(ev.type)) {
    rows = rows.filter((r) => !(r.kind === "intervention" && r.id === ev.intervention_id));
    renderInbox();
    refreshInbox();
  } else if (ev.type.startsWith("intervention.")) { // updated, owned ("I'm on it"), released
    refreshInbox();
  } else if (ev.type.startsWith("requests.")) {
    if (rows.some((r) => r.kind === "intervention" && r.domain === ev.domain)) refreshInbox();
  } else if (ev.type.startsWith("item.") || ev.type.startsWith("consultation.")) {
    refreshInbox();
  }
}

// --- keyboard: j/k move, Enter opens ----------------------------------------------------------

function mark(n) {
  for (const node of document.querySelectorAll("#inbox li.selected")) {
    node.classList.remove("selected");
    node.removeAttribute("aria-selected");
  }
  const node = $("inbox").children[n];
  if (!node) return;
  node.classList.add("selected");
  node.setAttribute("aria-selected", "true");
}

function select(n) {
  if (!rows.length) return;
  selected = Math.max(0, Math.min(rows.length - 1, n));
  mark(selected);
  const node = $("inbox").children[selected];
  node.focus({ preventScroll: true });
  node.scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, textarea, select, [contenteditable]")) return;
  if (event.key === "j") select(selected + 1);
  else if (event.key === "k") select(selected < 0 ? 0 : selected - 1);
  else if (event.key === "Enter" && selected >= 0 && !event.target.closest("a, button")) {
    location.assign(rows[selected].href);
  } else return;
  event.preventDefault();
});

// --- start ------------------------------------------------------------------------------------

new Live().on(onRunEvent).on(onInboxEvent).start();
Promise.all([loadRuns(), loadInbox()]).catch((err) => toast(`Could not load: ${describeError(err)}`));
