// The review queue: per run and spider, how many items wait (live), and the items of the
// chosen filter, lowest score first. Every row opens the side-by-side review page, which
// walks the same queue with "next".
import { $, Live, Pager, ago, api, badge, debounce, describeError, el, fmtNumber, link, say } from "./common.js";

const PAGE = 50;

function filters() {
  const form = new FormData($("filters"));
  return { status: String(form.get("status") || ""), run_id: String(form.get("run_id") || "").trim(),
    spider: String(form.get("spider") || "").trim() };
}

/** The review page of an item, carrying the queue's filters so "next" stays in it. */
function reviewHref(id) {
  const f = filters();
  return `/items/${id}?${new URLSearchParams(f)}`;
}

function failingSummary(failing) {
  const names = (failing || []).map((f) => (f.field ? `${f.check}: ${f.field}` : f.check));
  return names.length ? names.join(", ") : "–";
}

function row(item) {
  return el("tr", { dataset: { itemId: item.id, status: item.status } },
    el("td", {}, link(reviewHref(item.id), `#${item.id}`)),
    el("td", { class: "num", dataset: { field: "score" } }, item.score.toFixed(2)),
    el("td", { dataset: { field: "status" } }, badge(item.status)),
    el("td", { class: "wrap", dataset: { field: "failing" } }, failingSummary(item.failing)),
    el("td", { class: "wrap" }, item.url ? link(item.url, item.url) : "–"),
    el("td", {}, item.spider || "–"),
    el("td", {}, ago(item.created_at)));
}

function show(items, first) {
  if (first) $("queue-body").replaceChildren();
  $("queue-body").append(...items.map(row));
  const n = $("queue-body").children.length;
  $("queue-empty").hidden = n > 0;
  $("queue-count").textContent = n ? `(${n}${pager.cursor ? "+" : ""})` : "";
}

const pager = new Pager("/api/v1/items", $("load-more"), show);

function loadItems() {
  say($("queue-error"), "");
  return pager.reset({ ...filters(), order: "score", limit: PAGE })
    .catch((err) => say($("queue-error"), describeError(err)));
}

function groupRow(g) {
  const run = g.run_id || "";
  const pick = (status) => `?${new URLSearchParams({ status, run_id: run, spider: g.spider || "" })}`;
  return el("tr", { dataset: { runId: run, spider: g.spider || "" } },
    el("td", {}, run ? link(`/runs/${encodeURIComponent(run)}`, run.slice(0, 8)) : "–"),
    el("td", {}, g.spider || "–"),
    el("td", { class: "num", dataset: { field: "pending_review" } },
      link(pick("pending_review"), fmtNumber(g.pending_review))),
    el("td", { class: "num", dataset: { field: "optional_review" } },
      link(pick("optional_review"), fmtNumber(g.optional_review))),
    el("td", { class: "num" }, g.min_score === null ? "–" : Number(g.min_score).toFixed(2)));
}

async function loadCounts() {
  try {
    const q = await api("/api/v1/items/queue");
    $("groups-body").replaceChildren(...q.items.map(groupRow));
    $("groups-empty").hidden = q.items.length > 0;
    $("queue-total").textContent = `(${fmtNumber(q.pending_review)} held, ${fmtNumber(q.optional_review)} optional)`;
    $("queue-total").dataset.pending = q.pending_review;
  } catch (err) {
    say($("queue-error"), describeError(err));
  }
}

// A link in the summary sets the filters through the URL; so does the form.
$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  history.replaceState(null, "", `?${new URLSearchParams(filters())}`);
  loadItems();
});

// Crawlers store items in batches and reviewers act one by one: a burst of events, one refresh.
const refresh = debounce(() => {
  loadCounts();
  loadItems();
}, 400);
new Live().on((ev) => {
  if (ev.type === "item.review_required" || ev.type === "item.reviewed") refresh();
}).start();

loadCounts();
loadItems();
