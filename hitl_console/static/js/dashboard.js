// The dashboard: runs and open interventions, kept current by the event stream.
import { $, Live, ago, api, badge, debounce, el, fmtNumber, link, toast } from "./common.js";

const RUN_LIMIT = 20;
const OPEN_LIMIT = 100;
const PROGRESS = ["requests", "responses", "items", "parked", "resumed"];

let runs = [];
let open = [];
const liveStatus = new Map(); // run id -> status from the newest run.* event
const progress = new Map(); // run id -> the newest run.progress payload

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

function runRow(run) {
  const status = liveStatus.get(run.id) || run.status;
  const p = progress.get(run.id) || progressFromStats(run.stats);
  const row = el("tr", { dataset: { runId: run.id, runStatus: status, spider: run.spider } },
    el("td", {}, link(`/runs/${encodeURIComponent(run.id)}`, run.id.slice(0, 8))),
    el("td", {}, run.spider),
    el("td", { dataset: { field: "status" } }, badge(status)));
  for (const key of PROGRESS) row.append(el("td", { class: "num", dataset: { field: key } }, fmtNumber(p[key])));
  row.append(el("td", {}, ago(run.created_at)));
  return row;
}

function renderRuns() {
  $("runs-body").replaceChildren(...runs.map(runRow));
  $("runs-empty").hidden = runs.length > 0;
}

async function loadRuns() {
  runs = (await api("/api/v1/runs", { query: { limit: RUN_LIMIT } })).items;
  renderRuns();
}
const refreshRuns = debounce(loadRuns);

const RUN_STATUS = { "run.started": "running", "run.waiting": "waiting_for_human",
  "run.completed": "completed", "run.failed": "failed" };

function onRunEvent(ev) {
  if (!ev.run_id) return;
  if (ev.type === "run.progress") {
    progress.set(ev.run_id, ev.payload);
    if (ev.payload.status) liveStatus.set(ev.run_id, ev.payload.status);
  } else if (RUN_STATUS[ev.type]) {
    liveStatus.set(ev.run_id, RUN_STATUS[ev.type]);
    if (ev.payload && ev.payload.stats) progress.set(ev.run_id, progressFromStats(ev.payload.stats));
  } else {
    return;
  }
  if (runs.some((r) => r.id === ev.run_id)) renderRuns();
  else refreshRuns();
}

// --- interventions ----------------------------------------------------------------------------

function interventionRow(i) {
  const href = `/interventions/${i.id}`;
  return el("tr", { dataset: { interventionId: i.id, domain: i.domain, type: i.type } },
    el("td", {}, link(href, `#${i.id}`)),
    el("td", { dataset: { field: "type" } }, link(href, i.type)),
    el("td", { dataset: { field: "reason" } }, i.reason),
    el("td", { dataset: { field: "domain" } }, link(`/domains/${encodeURIComponent(i.domain)}`, i.domain)),
    el("td", { class: "num", dataset: { field: "parked" } }, fmtNumber(i.parked_count)),
    el("td", { dataset: { field: "age" } }, ago(i.created_at)),
    el("td", { class: "num", dataset: { field: "priority" } }, fmtNumber(i.priority)));
}

function renderOpen(freshId) {
  const rows = open.map(interventionRow);
  for (const row of rows) if (Number(row.dataset.interventionId) === freshId) row.classList.add("fresh");
  $("interventions-body").replaceChildren(...rows);
  $("open-count").textContent = String(open.length);
  $("interventions-empty").hidden = open.length > 0;
}

async function loadOpen() {
  open = (await api("/api/v1/interventions", { query: { status: "open", limit: OPEN_LIMIT } })).items;
  renderOpen();
}
const refreshOpen = debounce(loadOpen);

function onInterventionEvent(ev) {
  if (ev.type === "intervention.created") {
    if (!open.some((i) => i.id === ev.intervention_id)) {
      // Show it at once from the event; the refresh brings the rest (parked count, priority).
      open.unshift({ id: ev.intervention_id, type: ev.payload.type, reason: ev.payload.reason,
        domain: ev.domain, parked_count: 0, priority: 0,
        created_at: new Date(ev.timestamp * 1000).toISOString() });
      renderOpen(ev.intervention_id);
    }
    toast(`New intervention #${ev.intervention_id}: ${ev.payload.type} on ${ev.domain}`,
      { href: `/interventions/${ev.intervention_id}`, type: ev.type });
    refreshOpen();
  } else if (ev.type === "intervention.resolved" || ev.type === "intervention.cancelled") {
    open = open.filter((i) => i.id !== ev.intervention_id);
    renderOpen();
    refreshOpen();
  } else if (ev.type === "intervention.updated" || ev.type.startsWith("requests.")) {
    if (open.some((i) => i.domain === ev.domain)) refreshOpen();
  }
}

// --- start ------------------------------------------------------------------------------------

new Live().on(onRunEvent).on(onInterventionEvent).start();
Promise.all([loadRuns(), loadOpen()]).catch((err) => toast(`Could not load: ${err.message}`));
