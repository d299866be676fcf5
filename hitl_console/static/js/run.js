// One run: stats, the events timeline (paged, then live), and pause/unpause of its spider.
import {
  $, Live, Pager, api, compareIds, debounce, describeError, el, fmtDuration, fmtNumber, link, parseTime, say, setBadge,
  when,
} from "./common.js";
import { REASONS, STATUSES, TYPES } from "/words.js";

const runId = $("run").dataset.runId;
const path = `/api/v1/runs/${encodeURIComponent(runId)}`;
const RUN_STATUS = { "run.started": "running", "run.waiting": "waiting_for_human",
  "run.completed": "completed", "run.failed": "failed" };
let spider = "";
// The newest status an event announced: a crawler publishes run.completed before it writes
// the row, so an API answer read in between must not win over the event.
let liveStatus = "";
const seen = new Set(); // event ids in the timeline: paging and live may both bring one
const LIVE_STATUSES = ["running", "waiting_for_human"];
let alive = false; // the crawler's heartbeat, as the API last said
let paused = false;
// What the summary is made of: the run row, its newest counts (live, or the final stats), item routes.
const summary = { run: null, counts: null, stats: null, quality: null, endedAt: null };

function setStatus(status) {
  setBadge($("run-status"), status);
  if (STATUSES[status]) $("run-status").textContent = STATUSES[status];
  $("run-status").dataset.runStatus = status;
  setPaused(paused);
}

/** "Pause spider" only while the run is live (a finished run has nothing to pause); "Unpause"
 * whenever the spider is paused, since the pause holds every later run too. */
function setPaused(value) {
  paused = value;
  const live = alive || LIVE_STATUSES.includes($("run-status").dataset.runStatus);
  $("spider-paused").hidden = !paused;
  $("pause-spider").hidden = paused || !live;
  $("unpause-spider").hidden = !paused;
}

// --- the summary: pages, items by route, blocks, duration, rate; live while it runs -----------

function fmtBytes(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return "–";
  return v >= 1e9 ? `${(v / 1e9).toFixed(1)} GB` : v >= 1e6 ? `${Math.round(v / 1e6)} MB` : `${Math.round(v / 1e3)} kB`;
}

function countsFromStats(stats) {
  return { requests: stats["downloader/request_count"], responses: stats["downloader/response_count"],
    items: stats["item_scraped_count"], parked: stats["hitl/parked"], resumed: stats["hitl/resumed"] };
}

function small(code) {
  return el("small", { class: "code" }, el("code", {}, code));
}

function renderSummary() {
  const { run, stats, quality } = summary;
  if (!run) return;
  const counts = summary.counts || (stats && Object.keys(stats).length ? countsFromStats(stats) : run.progress) || {};
  const start = parseTime(run.created_at);
  const end = summary.endedAt || (run.finished_at ? parseTime(run.finished_at) : Date.now());
  const seconds = (end - start) / 1000;
  const rows = [
    ["Pages fetched", fmtNumber(counts.responses), "downloader/response_count"],
    ["Requests sent", fmtNumber(counts.requests), "downloader/request_count"],
    ["Items", fmtNumber(counts.items), "item_scraped_count"],
    ["Parked / resumed", `${fmtNumber(counts.parked ?? 0)} / ${fmtNumber(counts.resumed ?? 0)}`, "hitl/parked, hitl/resumed"],
    ["Duration", fmtDuration(seconds), null],
    ["Rate", seconds > 0 && counts.responses ? `${fmtNumber(Math.round((counts.responses / seconds) * 60))} pages/min` : "–", null],
  ];
  if (quality) {
    const parts = QUALITY_ORDER.filter((s) => quality[s]).map((s) => `${fmtNumber(quality[s])} ${STATUSES[s] || s}`);
    rows.splice(3, 0, ["Items by route", parts.join(" · ") || "none scored", null]);
  }
  if (stats) {
    const blocks = Object.entries(stats).filter(([k]) => k.startsWith("hitl/blocks/"));
    const total = blocks.reduce((n, [, v]) => n + Number(v || 0), 0);
    rows.push(["Blocks", total ? blocks.map(([k, v]) => `${REASONS[k.slice(12)] || k.slice(12).replaceAll("_", " ")}: ${fmtNumber(v)}`).join(" · ") : "none", "hitl/blocks/*"]);
    if (stats["memusage/max"]) rows.push(["Peak memory", fmtBytes(stats["memusage/max"]), "memusage/max"]);
    const overrides = stats["hitl/selectors/in_force"]; // the selector fixer's overrides this run read with
    if (overrides) rows.push(["Selector overrides", String(overrides).split(", ").join(" · "), "hitl/selectors/in_force"]);
  }
  $("summary-facts").replaceChildren(...rows.flatMap(([label, value, code]) => [
    el("dt", {}, label), el("dd", { dataset: { summary: label } }, value, code ? " " : null, code ? small(code) : null)]));
}

// What each run monitor checks, in plain words (scrapy_hitl/monitors.py); the code stays beside it.
const MONITOR_TITLES = {
  domain_without_items: "Every domain still yields items",
  item_count_drop: "Item count close to the usual",
  error_rate: "Few failed requests",
  block_rate: "Few blocked responses",
  finish_reason: "The run ended normally",
};
const MONITOR_STATUS = { ok: "ok", alert: "look at this", skipped: "not judged" };
const MONITORS_STAT = "hitl/monitors"; // where a closing event's stats carry the findings

/** One line per monitor: its verdict, what it checks, what it found, and its code in small type. */
function renderMonitors(findings) {
  const list = Array.isArray(findings) ? findings : [];
  $("monitors").hidden = list.length === 0;
  $("anomaly-link").hidden = !list.some((f) => f.status === "alert");
  $("monitor-list").replaceChildren(...list.map((f) => el("li", { dataset: { monitor: f.monitor, status: f.status } },
    el("span", { class: `badge badge-monitor-${String(f.status).replace(/[^a-z_]/g, "")}` },
      MONITOR_STATUS[f.status] || String(f.status)),
    " ", el("strong", {}, MONITOR_TITLES[f.monitor] || f.monitor),
    el("div", {}, f.message || ""),
    el("small", { class: "hint" }, el("code", {}, f.monitor), ` ${f.status}`))));
}

/** A raw stat, rounded: 99.99999999999999 is 100, a byte count says MB. */
function statValue(key, v) {
  if (typeof v === "number") {
    if (/memusage|bytes/.test(key)) return `${fmtNumber(v)} (${fmtBytes(v)})`;
    return Number.isInteger(v) ? fmtNumber(v) : fmtNumber(Math.round(v * 100) / 100);
  }
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function renderStats(stats) {
  const rows = Object.entries(stats || {}).filter(([k]) => k !== MONITORS_STAT).sort(([a], [b]) => a.localeCompare(b));
  $("stats-body").replaceChildren(...rows.map(([k, v]) =>
    el("tr", { dataset: { stat: k } }, el("td", {}, k), el("td", {}, statValue(k, v)))));
  $("stats-empty").hidden = rows.length > 0;
  $("stats-details").hidden = rows.length === 0;
  if (rows.length) {
    summary.stats = stats;
    renderSummary();
  }
}

function render(run) {
  spider = run.spider;
  alive = Boolean(run.alive);
  summary.run = run;
  setStatus(liveStatus || run.status);
  $("r-spider").textContent = run.spider;
  $("r-alive").textContent = run.alive ? "yes (heartbeat)" : "no";
  $("r-parked").textContent = fmtNumber(run.parked);
  $("r-args").textContent = Object.entries(run.args || {}).map(([k, v]) => `${k}=${v}`).join(" ") || "–";
  $("r-host").textContent = `${run.host || "?"} / ${run.pid ?? "?"}`;
  $("r-created").replaceChildren(when(run.created_at));
  $("r-finished").replaceChildren(when(run.finished_at));
  $("r-finish-reason").textContent = run.finish_reason || "–";
  setPaused(Boolean(run.spider_paused));
  renderStats(run.stats);
  renderMonitors(run.monitors);
  renderSummary();
}

const n = (v, one, many = `${one}s`) => `${fmtNumber(v ?? 0)} ${Number(v) === 1 ? one : many}`;

/** An event in words; its type (and anything not worded) stays beside it in small type. */
function eventWords(ev) {
  const p = ev.payload || {};
  const type = TYPES[p.type] ? TYPES[p.type].label : p.type;
  const reason = REASONS[p.reason] || String(p.reason || "").replaceAll("_", " ");
  switch (ev.type) {
    case "run.started": return "The crawl started";
    case "run.progress": return `${n(p.requests, "request")} sent, ${n(p.responses, "page")} fetched, ${n(p.items, "item")}`;
    case "run.waiting": return p.closed ? "Closed while waiting for a person" : "Waiting for a person: every remaining request is parked";
    case "run.completed": return `Completed (${String(p.finish_reason || "").replaceAll("_", " ")})`;
    case "run.failed": return `Failed (${String(p.finish_reason || "").replaceAll("_", " ")})`;
    case "intervention.created": return `${type}: ${reason} on ${ev.domain}`;
    case "intervention.resolved": return `Intervention #${ev.intervention_id} resolved`;
    case "intervention.cancelled": return `Intervention #${ev.intervention_id} cancelled: ${n(p.failed, "parked request")} failed`;
    case "requests.parked": return `${n(p.count, "request")} parked on ${ev.domain}${p.total !== undefined ? ` (${fmtNumber(p.total)} waiting)` : ""}`;
    case "requests.resumed": return `${n(p.count, "request")} resumed on ${ev.domain}`;
    case "requests.failed": return `${n(p.count, "request")} failed on ${ev.domain}`;
    case "item.review_required": return "An item was held for review";
    default: return null;
  }
}

function eventItem(ev) {
  const words = eventWords(ev);
  const raw = Object.entries(ev.payload || {}).filter(([k]) => k !== "stats")
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
  return el("li", { dataset: { eventId: ev.id, eventType: ev.type } },
    el("span", { class: "what" }, words || ev.type),
    el("span", { class: "meta" }, when(new Date(ev.timestamp * 1000).toISOString()),
      ev.domain ? ` · ${ev.domain}` : "", " ", small(ev.type)),
    !words && raw ? el("div", { class: "meta" }, raw) : null);
}

/** Add events to the timeline in stream order: pages of history and live events interleave. */
function addEvents(items) {
  const list = $("events");
  for (const ev of items) {
    if (!ev.id || seen.has(ev.id)) continue;
    seen.add(ev.id);
    let after = list.lastElementChild;
    while (after && compareIds(after.dataset.eventId, ev.id) > 0) after = after.previousElementSibling;
    if (after) after.after(eventItem(ev));
    else list.prepend(eventItem(ev));
  }
}

async function load() {
  try {
    render(await api(path));
  } catch (err) {
    say($("r-error"), describeError(err));
  }
}

// --- pages and items over time, from the run's run.progress events (then live) ------------------

const PROGRESS_PAGES = 10; // of 200 events each, at most, read for the chart
const progressPoints = new Map(); // event id -> {t, responses, items}

function addProgress(ev) {
  const p = ev.payload || {};
  const counts = p.responses !== undefined ? p : p.stats ? countsFromStats(p.stats) : null;
  if (!ev.id || !counts || counts.responses === undefined) return false;
  progressPoints.set(ev.id, { t: ev.timestamp * 1000, responses: Number(counts.responses) || 0,
    items: Number(counts.items) || 0 });
  return true;
}

/** Two lines on one time axis: pages fetched, items scraped (the counts are cumulative). */
function drawProgress() {
  const points = [...progressPoints.values()].sort((a, b) => a.t - b.t);
  $("progress-empty").hidden = points.length > 0;
  $("progress-chart").hidden = points.length === 0;
  if (!points.length) return;
  const W = 600, H = 160, L = 44, R = 10, T = 10, B = 22;
  const t0 = points[0].t;
  const span = Math.max(1, points[points.length - 1].t - t0);
  const max = Math.max(1, ...points.map((p) => Math.max(p.responses, p.items)));
  const x = (t) => L + ((t - t0) * (W - L - R)) / span;
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const line = (key, cls) => svg("polyline", { class: cls, points: points.map((p) => `${x(p.t)},${y(p[key])}`).join(" ") });
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, id: "progress-svg", "data-points": points.length });
  chart.append(
    svg("line", { class: "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: y(0) }),
    svg("text", { x: 2, y: T + 8 }, fmtNumber(max)),
    svg("text", { x: 2, y: y(0) }, "0"),
    svg("text", { x: W - R, y: H - 4, "text-anchor": "end" }, fmtDuration(span / 1000)),
    line("responses", "line pages"), line("items", "line items"),
    svg("text", { x: L + 6, y: T + 10, class: "legend pages" }, "pages"),
    svg("text", { x: L + 56, y: T + 10, class: "legend items" }, "items"));
  const last = points[points.length - 1]; // the newest counts as dots: one report alone still shows
  for (const [key, cls] of [["responses", "pages"], ["items", "items"]]) {
    const dot = svg("circle", { class: `dot ${cls}`, cx: x(last.t), cy: y(last[key]), r: 3 });
    dot.append(svg("title", {}, `${fmtNumber(last[key])} ${cls}`));
    chart.append(dot);
  }
  $("progress-chart").replaceChildren(chart);
}
const redrawProgress = debounce(drawProgress, 300);

async function loadProgress() {
  let cursor = null;
  for (let n = 0; n < PROGRESS_PAGES; n++) {
    const data = await api(`${path}/events`, { query: { limit: 200, cursor } });
    for (const ev of data.items) if (ev.type === "run.progress" || (ev.payload && ev.payload.closed)) addProgress(ev);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  drawProgress();
}

// --- items: counts per status and the score histogram -------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
const QUALITY_ORDER = ["delivered", "optional_review", "pending_review", "approved", "rejected", "skipped"];

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Ten bars, one per tenth of the score; red below 0.5 (held), amber below 0.9 (optional review). */
function histogram(buckets) {
  const width = 1000;
  const height = 170;
  const top = 14;
  const base = height - 18;
  const max = Math.max(1, ...buckets);
  const slot = width / buckets.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}` });
  buckets.forEach((n, i) => {
    const h = n ? Math.max(1, ((base - top) * n) / max) : 0;
    const bar = svg("rect", { x: i * slot + 4, y: base - h, width: slot - 8, height: h,
      class: i < 5 ? "low" : i < 9 ? "mid" : "", "data-bucket": i, "data-count": n });
    bar.append(svg("title", {}, `${(i / 10).toFixed(1)}–${((i + 1) / 10).toFixed(1)}: ${n}`));
    chart.append(bar,
      svg("text", { x: i * slot + slot / 2, y: height - 4, "text-anchor": "middle" }, (i / 10).toFixed(1)),
      svg("text", { x: i * slot + slot / 2, y: base - h - 3, "text-anchor": "middle" }, n ? fmtNumber(n) : ""));
  });
  return chart;
}

async function loadQuality() {
  try {
    const q = await api(`${path}/quality`);
    const total = Object.values(q.counts).reduce((a, b) => a + b, 0);
    summary.quality = q.counts;
    renderSummary();
    $("quality").hidden = total === 0;
    $("quality-counts").replaceChildren(...QUALITY_ORDER.flatMap((status) => [
      el("dt", {}, status.replace("_", " ")), el("dd", { dataset: { status } }, fmtNumber(q.counts[status] || 0))]));
    $("histogram").replaceChildren(histogram(q.score_histogram));
  } catch (err) {
    say($("r-error"), describeError(err));
  }
}
const refreshQuality = debounce(loadQuality, 400);

// --- error snapshots: the first failure of each kind per domain, with its page -------------------

function showPage(s) {
  const frame = $("snapshot-frame");
  frame.src = `/runs/${encodeURIComponent(runId)}/snapshots/${s.id}/html`; // served under a sandbox CSP
  frame.hidden = false;
  say($("snapshot-caption"), `The page of: ${s.summary} (${s.url})`);
}

function snapshotItem(s) {
  const base = `/runs/${encodeURIComponent(runId)}/snapshots/${s.id}`;
  const files = s.files || {};
  const actions = [];
  if (files.html) {
    const show = el("button", { type: "button", dataset: { show: s.id } }, "Show the page");
    show.addEventListener("click", () => showPage(s));
    actions.push(show, el("a", { href: `${path}/snapshots/${s.id}/html`, download: "" }, "Download HTML"));
  }
  if (files.screenshot) {
    actions.push(el("a", { href: `${base}/screenshot`, target: "_blank", rel: "noopener" }, "Screenshot"));
  }
  return el("li", { dataset: { snapshotId: s.id, source: s.source, code: s.code } },
    el("span", { class: "what" }, s.summary),
    el("div", { class: "meta" }, s.domain, ` · ${s.tier}`, s.status ? ` · ${s.status}` : "", " · ",
      when(s.created_at), " ", el("small", {}, el("code", {}, `${s.source} ${s.code}`))),
    el("div", { class: "meta" }, link(s.url)),
    actions.length ? el("div", { class: "buttons" }, ...actions)
      : el("div", { class: "meta" }, "No page was kept: no response came back."));
}

const snapshotPager = new Pager(`${path}/snapshots`, $("snapshots-more"), (items, first) => {
  if (first) $("snapshot-list").replaceChildren();
  $("snapshot-list").append(...items.map(snapshotItem));
  $("snapshots").hidden = $("snapshot-list").children.length === 0;
});
function loadSnapshots() {
  return snapshotPager.reset({ limit: 50 }).catch((err) => say($("r-error"), describeError(err)));
}
const refreshSnapshots = debounce(loadSnapshots, 1000);

async function pause(paused) {
  say($("pause-error"), "");
  try {
    const result = await api(`/api/v1/spiders/${encodeURIComponent(spider)}/${paused ? "pause" : "unpause"}`,
      { method: "POST" });
    setPaused(result.paused);
  } catch (err) {
    say($("pause-error"), describeError(err));
  }
}
$("pause-spider").addEventListener("click", () => pause(true));
$("unpause-spider").addEventListener("click", () => pause(false));

new Live().on((ev) => {
  if (ev.run_id === runId) {
    addEvents([ev]);
    if (ev.type.startsWith("item.") || ev.type === "run.progress" || ev.type === "run.completed") refreshQuality();
    if (ev.type.startsWith("run.") && ev.type !== "run.started") refreshSnapshots(); // kept while it runs
    const status = ev.type === "run.progress" ? ev.payload.status : RUN_STATUS[ev.type];
    if (status) {
      liveStatus = status;
      setStatus(status);
    }
    if (ev.type === "run.progress" || (ev.type === "run.waiting" && ev.payload.requests !== undefined)) {
      summary.counts = ev.payload; // live numbers, at the rate the crawler reports them
      renderSummary();
    }
    if ((ev.type === "run.progress" || (ev.payload && ev.payload.closed)) && addProgress(ev)) redrawProgress();
    if (ev.payload && ev.payload.closed) { // the final stats travel with the closing event
      renderStats(ev.payload.stats);
      renderMonitors((ev.payload.stats || {})[MONITORS_STAT]);
      $("r-finish-reason").textContent = ev.payload.finish_reason || "–";
      $("r-alive").textContent = "no";
      alive = false;
      summary.counts = null;
      summary.endedAt = ev.timestamp * 1000;
      renderSummary();
      $("r-finished").replaceChildren(when(new Date(ev.timestamp * 1000).toISOString()));
    }
  }
  if ((ev.type === "spider.paused" || ev.type === "spider.resumed") && ev.spider === spider) {
    setPaused(ev.type === "spider.paused");
  }
}).start();

load();
loadQuality();
loadSnapshots();
loadProgress().catch((err) => say($("r-error"), describeError(err)));
new Pager(`${path}/events`, $("load-more"), (items) => addEvents(items)).reset({ limit: 100 })
  .catch((err) => say($("r-error"), describeError(err)));
