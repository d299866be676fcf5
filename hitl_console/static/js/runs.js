// The runs list: filters, "load more", and statuses kept current by run.* events.
import { $, Live, Pager, ago, badge, describeError, el, link, say, when } from "./common.js";

const RUN_STATUS = { "run.started": "running", "run.waiting": "waiting_for_human",
  "run.completed": "completed", "run.failed": "failed" };
const rows = new Map();
const liveStatus = new Map(); // run id -> newest status from events (may be ahead of the row)

function row(r) {
  const status = liveStatus.get(r.id) || r.status;
  return el("tr", { dataset: { runId: r.id, runStatus: status, spider: r.spider } },
    el("td", {}, link(`/runs/${encodeURIComponent(r.id)}`, r.id.slice(0, 8))),
    el("td", {}, r.spider),
    el("td", { dataset: { field: "status" } }, badge(status)),
    el("td", {}, r.alive ? "yes" : "no"),
    el("td", {}, ago(r.created_at)),
    el("td", {}, when(r.finished_at)),
    el("td", {}, r.finish_reason || "–"));
}

function show(items, first) {
  if (first) {
    $("runs-body").replaceChildren();
    rows.clear();
  }
  for (const r of items) {
    const node = row(r);
    rows.set(r.id, node);
    $("runs-body").append(node);
  }
  $("runs-empty").hidden = rows.size > 0;
}

function filters() {
  const form = new FormData($("filters"));
  return { status: String(form.get("status") || ""), spider: String(form.get("spider") || "").trim() };
}

const pager = new Pager("/api/v1/runs", $("load-more"), show);
const load = () => pager.reset(filters()).catch((err) => say($("runs-error"), describeError(err)));

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = new URLSearchParams(Object.entries(filters()).filter(([, v]) => v));
  history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
  load();
});

new Live().on((ev) => {
  if (ev.type === "run.started" && !filters().status) {
    load();
    return;
  }
  const status = ev.type === "run.progress" ? ev.payload.status : RUN_STATUS[ev.type];
  if (!status) return;
  liveStatus.set(ev.run_id, status);
  const node = rows.get(ev.run_id);
  if (!node) return;
  node.dataset.runStatus = status;
  node.querySelector('[data-field="status"]').replaceChildren(badge(status));
}).start();

load();
