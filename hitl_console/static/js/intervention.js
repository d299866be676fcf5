// One intervention: what happened, the evidence, the actions, and the crawl resuming live.
import {
  $, Live, ago, api, compareIds, confirmAction, describeError, el, fmtNumber, link, page, parseTime, say, setBadge,
  when,
} from "./common.js";
import "./ownership.js"; // "I'm on it" (templates/_owner.html)
import { REASONS, TYPES } from "/words.js";
import "./liveview.js"; // a crawler's held captcha page, live (docs/live.md)

const id = Number($("intervention").dataset.interventionId);
const RUN_STATUS = { "run.started": "running", "run.waiting": "waiting_for_human",
  "run.completed": "completed", "run.failed": "failed" };
// Replaying the stream from the resolution shows the resumed count of a recent resolve too;
// older than this, the replay would be long and the count is in the run's stats anyway.
const REPLAY_WINDOW_MS = 3600 * 1000;
const CLOCK_MARGIN_MS = 2000;
// The evidence files a crawler keeps, in the order they are offered for download.
const ARTIFACTS = { screenshot: "screenshot (PNG)", html: "rendered HTML", body: "response body" };

let current = null;
let runId = null; // the run whose status is shown ("" for none)
let resolvedAtMs = null;
let resumed = 0;
let runStatusFromEvents = false;
const resumedEvents = []; // this domain's requests.resumed events, as they come

// --- rendering --------------------------------------------------------------------------------

function text(idName, value) {
  $(idName).textContent = value === null || value === undefined || value === "" ? "–" : String(value);
}

/** A legacy screenshot (in the evidence itself) is shown only when it is really a PNG in a
 * data: URL (or bare base64 PNG). Screenshots kept as artifacts come from the console. */
function screenshotSrc(value) {
  if (typeof value !== "string") return null;
  const compact = value.replace(/\s+/g, "");
  if (/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/.test(compact)) return compact;
  if (/^iVBORw0KGgo[A-Za-z0-9+/]*=*$/.test(compact)) return `data:image/png;base64,${compact}`;
  return null;
}

function fmtSize(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n)) return "?";
  if (n < 1000) return `${n} B`;
  return n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

function renderFacts(i) {
  setBadge($("i-status"), i.status);
  $("intervention").dataset.status = i.status;
  $("i-type").replaceChildren(...worded(TYPES[i.type] ? TYPES[i.type].label : i.type, i.type,
    TYPES[i.type] ? TYPES[i.type].explain : ""));
  $("i-reason").replaceChildren(...worded(REASONS[i.reason] || String(i.reason || "–").replaceAll("_", " "), i.reason));
  $("i-domain").replaceChildren(link(`/domains/${encodeURIComponent(i.domain)}`, i.domain));
  $("i-url").replaceChildren(i.url ? link(i.url, i.url) : "–");
  text("i-response-status", i.response_status);
  text("i-parked", fmtNumber(i.parked_count));
  text("i-priority", i.priority >= 50 ? `urgent (${i.priority})` : i.priority < 0 ? `low (${i.priority})`
    : `normal (${i.priority})`);
  text("i-vendor", i.vendor || "not recognised");
  $("i-run").replaceChildren(i.spider || "–", " / ",
    i.run_id ? link(`/runs/${encodeURIComponent(i.run_id)}`, i.run_id.slice(0, 8)) : "–");
  $("i-created").replaceChildren(ago(i.created_at));
  $("i-resolved").replaceChildren(i.resolved_at ? when(i.resolved_at) : "–",
    i.resolved_by ? ` by ${i.resolved_by}` : "");
  text("i-note", i.note);
}

/** Words first, the raw code after them in small type, the explanation on hover. */
function worded(words, code, explain = "") {
  const out = [el("span", { title: explain || null }, words)];
  if (code && code !== words) out.push(" ", el("small", { class: "code" }, el("code", {}, code)));
  return out;
}

/** The kept evidence files, by kind (only the kinds the console knows). */
function keptArtifacts(evidence) {
  const kept = evidence.artifacts;
  if (!kept || typeof kept !== "object" || Array.isArray(kept)) return {};
  return Object.fromEntries(Object.keys(ARTIFACTS).filter((kind) => kept[kind]).map((kind) => [kind, kept[kind]]));
}

function renderScreenshot(evidence, kept) {
  const shot = kept.screenshot;
  // ?v= the artifact id: a newer capture is fetched again, the same one is not redrawn.
  const src = shot ? `/interventions/${id}/screenshot?v=${encodeURIComponent(shot.id)}`
    : screenshotSrc(evidence.screenshot);
  const box = $("screenshot");
  if (box.dataset.src !== (src || "")) {
    box.dataset.src = src || "";
    const img = src ? el("img", { src, alt: "Screenshot of the blocked page", id: "screenshot-img" }) : null;
    img?.addEventListener("error", () => {
      box.replaceChildren(el("h3", {}, "Screenshot"), el("p", { class: "empty" }, "The screenshot could not be loaded."));
    });
    box.replaceChildren(...(!img ? [] : [
      el("h3", {}, "Screenshot"),
      // a data: URL cannot be opened in a tab; a kept screenshot opens full size
      shot ? el("a", { href: `/interventions/${id}/screenshot`, target: "_blank", rel: "noopener",
        title: "Open the screenshot full size in a new tab", id: "screenshot-link" }, img) : img,
    ]));
  }
  box.hidden = !src;
  $("evidence-views").classList.toggle("split", Boolean(src));
}

function renderArtifacts(kept) {
  const links = Object.entries(kept).map(([kind, meta]) =>
    el("a", { href: `/api/v1/interventions/${id}/artifacts/${kind}`, download: true, dataset: { artifact: kind } },
      `${ARTIFACTS[kind]}, ${fmtSize(meta.size)}`));
  $("artifact-links").replaceChildren(...links.flatMap((a, n) => (n ? [" · ", a] : [a])));
  if (!links.length) $("artifact-links").textContent = "none kept";
}

function renderEvidence(i) {
  const evidence = i.evidence && typeof i.evidence === "object" ? i.evidence : {};
  const kept = keptArtifacts(evidence);
  text("i-tier", evidence.tier);
  renderScreenshot(evidence, kept);
  renderArtifacts(kept);
  const rows = Object.entries(i.response_headers || {}).map(([name, value]) =>
    el("tr", { dataset: { header: name } }, el("td", {}, name),
      el("td", {}, Array.isArray(value) ? value.join(", ") : String(value))));
  $("headers-body").replaceChildren(...rows);
  if (!rows.length) $("headers-body").append(el("tr", {}, el("td", { class: "empty" }, "none kept")));
}

function renderParked(i) {
  const parked = i.parked_requests || [];
  $("parked-list").replaceChildren(...parked.map((p) =>
    el("li", { dataset: { parkId: p.park_id } }, p.url || "?", el("span", { class: "hint" },
      ` (${p.spider}${p.reason ? ", " + p.reason : ""})`))));
  $("parked-panel").hidden = parked.length === 0;
}

// What each step of an intervention's history was, in words; its action code stays beside it.
const HISTORY_WORDS = { created: "Opened", updated: "Seen again", resolved: "Resolved", cancelled: "Cancelled",
  expired: "Expired", owned: "Taken (\"I'm on it\")", released: "Given back" };

function renderHistory(i) {
  $("history").replaceChildren(...(i.history || []).map((h) => {
    const detail = h.detail || {};
    const bits = [];
    if (detail.note) bits.push(`note: ${detail.note}`);
    if (detail.reason) bits.push(REASONS[detail.reason] || String(detail.reason).replaceAll("_", " "));
    if (detail.action && h.action !== "created") bits.push(`action: ${detail.action}`);
    if (detail.parked !== undefined) bits.push(`${fmtNumber(detail.parked)} parked`);
    if (detail.cookie_names) {
      const n = detail.cookie_names.length;
      bits.push(`${n} cookie${n === 1 ? "" : "s"}: ${detail.cookie_names.join(", ")}`);
    }
    return el("li", { dataset: { action: h.action } },
      el("span", { class: "what" }, HISTORY_WORDS[h.action] || h.action),
      el("span", { class: "meta" }, `${String(h.actor || "").replace(/^(console|user):/, "")} · `, when(h.at), " ",
        el("small", { class: "code" }, el("code", {}, h.action))),
      bits.length ? el("div", { class: "meta" }, bits.join(" · ")) : null);
  }));
}

/** A run_anomaly (docs/settings.md#run-monitors): what alerted, in plain words, the monitor's
 * code in small type. It holds no request: no cookies to give, nothing resumes or fails. */
function renderAnomaly(i) {
  const anomaly = i.type === "run_anomaly";
  $("anomaly").hidden = !anomaly;
  $("resolve-cookies-form").hidden = anomaly;
  $("resolve-done").textContent = anomaly ? "I looked at the data" : "Mark done";
  $("cancel").textContent = anomaly ? "Dismiss" : "Cancel: fail the parked requests";
  if (!anomaly) return;
  const alerts = Array.isArray(i.evidence && i.evidence.alerts) ? i.evidence.alerts : [];
  $("anomaly-run").href = i.run_id ? `/runs/${encodeURIComponent(i.run_id)}` : "/runs";
  $("anomaly-alerts").replaceChildren(...alerts.map((a) => el("li", { dataset: { monitor: a.monitor } },
    el("div", {}, a.message || ""), el("small", { class: "hint" }, el("code", {}, a.monitor)))));
}

function render(i) {
  current = i;
  renderFacts(i);
  renderAnomaly(i);
  renderEvidence(i);
  renderParked(i);
  renderHistory(i);
  $("actions").hidden = i.status !== "open";
  if (i.status === "resolved" && i.type !== "run_anomaly") showOutcome(i);
}

// --- after resolving: resumed count and run status, live --------------------------------------

function setResumed(n) {
  resumed = n;
  $("resumed-count").textContent = String(n);
  $("resumed-count").dataset.resumed = String(n);
}

function setRunStatus(status) {
  const node = $("run-status");
  setBadge(node, status);
  node.dataset.runStatus = status || "";
  const ended = status === "completed" || status === "failed";
  say($("outcome-hint"), ended && resumed === 0
    ? "That run ended before resuming anything: the parked requests resume when the spider next runs."
    : "");
}

/** Show the status of ``newRunId``: from the API now, then from its run.* events. */
async function followRun(newRunId) {
  runId = newRunId || "";
  runStatusFromEvents = false;
  if (!runId) {
    $("outcome-run").textContent = "–";
    setRunStatus("");
    return;
  }
  $("outcome-run").replaceChildren(link(`/runs/${encodeURIComponent(runId)}`, runId.slice(0, 8)));
  try {
    const run = await api(`/api/v1/runs/${encodeURIComponent(runId)}`);
    // An event is newer than this answer if one arrived meanwhile.
    if (run.id === runId && !runStatusFromEvents) setRunStatus(run.status);
  } catch (err) {
    $("outcome-run").append(` (${describeError(err)})`);
  }
}

function showOutcome(i, toResume) {
  $("outcome").hidden = false;
  if (resolvedAtMs === null) resolvedAtMs = parseTime(i.resolved_at);
  if (toResume !== undefined) $("to-resume").textContent = `(${toResume} released to resume)`;
  if (runId === null) followRun(i.run_id);
  countResumed();
}

/** Sum the domain's requests.resumed events since the resolution. They are kept from the
 * start: the first ones can arrive before the answer that says when the resolution was. */
function countResumed() {
  if (resolvedAtMs === null || Number.isNaN(resolvedAtMs)) return;
  const since = resumedEvents.filter((ev) => ev.timestamp * 1000 >= resolvedAtMs - CLOCK_MARGIN_MS);
  setResumed(since.reduce((n, ev) => n + (ev.payload.count || 0), 0));
  // The crawler that resumes them may be a later run than the one that parked them.
  const latest = since[since.length - 1];
  if (latest && latest.run_id && latest.run_id !== runId) followRun(latest.run_id);
}

function onEvent(ev) {
  document.dispatchEvent(new CustomEvent("hitl:event", { detail: ev })); // for liveview.js
  if (!current) return;
  if (ev.type === "requests.resumed" && ev.domain === current.domain) {
    resumedEvents.push(ev);
    countResumed();
  }
  if (ev.type === "intervention.resolved" && ev.intervention_id === id && resolvedAtMs === null) {
    resolvedAtMs = ev.timestamp * 1000;
    countResumed();
  }
  if (ev.run_id && ev.run_id === runId) {
    const status = ev.type === "run.progress" ? ev.payload.status : RUN_STATUS[ev.type];
    if (status) {
      runStatusFromEvents = true;
      setRunStatus(status);
    }
  }
  if (ev.intervention_id === id && ev.type.startsWith("intervention.")) reload();
  else if (current.status === "open" && ev.domain === current.domain && ev.type.startsWith("requests.")) {
    reload();
  }
}

async function reload() {
  try {
    render(await api(`/api/v1/interventions/${id}`));
  } catch (err) {
    say($("i-error"), describeError(err));
  }
}

// --- actions ----------------------------------------------------------------------------------

async function act(button, errorBox, call) {
  say(errorBox, "");
  button.disabled = true;
  try {
    const result = await call();
    render(await api(`/api/v1/interventions/${id}`));
    return result;
  } catch (err) {
    say(errorBox, describeError(err));
    return null;
  } finally {
    button.disabled = false;
  }
}

function afterResolve(result) {
  if (!result || result.intervention.type === "run_anomaly") return; // nothing resumes
  resolvedAtMs = parseTime(result.intervention.resolved_at);
  showOutcome(result.intervention, result.requests_resumed);
  showReruns(result.reruns);
}

/** The crawls the resolve queued again (their crawler had exited while waiting), and how to
 * resume those nobody can start from here: a hand-started crawl in no registered project. */
function showReruns(reruns) {
  const box = $("outcome-reruns");
  if (!reruns || (!reruns.jobs.length && !reruns.manual.length)) return;
  box.replaceChildren(
    ...reruns.jobs.map((job) => el("p", {},
      "Its crawl had stopped waiting, so it was queued again: ", link(`/jobs/${job.id}`, `job ${job.id}`),
      " resumes it on the next free worker.")),
    ...reruns.manual.map((m) => el("div", { class: "howto" },
      el("p", {}, "No crawler is waiting for run ", link(`/runs/${m.run_id}`, m.run_id.slice(0, 8)),
        ` (${m.spider}), and its project is not registered, so nothing resumes it by itself. Run:`),
      el("pre", { class: "code" }, m.command),
      el("p", { class: "hint" }, "Or register its project once with ", el("code", {}, "hitl projects add PATH"),
        " so that later resolves re-run it."))),
  );
  box.hidden = false;
}

$("resolve-cookies-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const file = $("cookies-file").files[0];
  if (!file && !$("cookies-text").value.trim()) {
    say($("resolve-error"), "Choose a cookies file or paste the cookies first.");
    return;
  }
  if (!file) form.delete("cookies");
  form.set("action", "cookies");
  afterResolve(await act($("resolve-cookies"), $("resolve-error"), () =>
    api(`/api/v1/interventions/${id}/resolve`, { method: "POST", form })));
});

$("resolve-done-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  afterResolve(await act($("resolve-done"), $("action-error"), () =>
    api(`/api/v1/interventions/${id}/resolve`, { method: "POST",
      json: { resolution: { action: "done" }, note: $("done-note").value } })));
});

$("cancel-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const anomaly = current && current.type === "run_anomaly";
  const parked = current ? Number(current.parked_count) || 0 : 0;
  const requests = `${parked.toLocaleString()} parked request${parked === 1 ? "" : "s"}`;
  const answer = await confirmAction(anomaly
    ? { title: "Dismiss this finding?", body: "The run's data is not looked at any further.", confirm: "Dismiss",
      reason: "Why (for the history)", reasonValue: $("cancel-note").value }
    : { title: `Fail ${requests} of ${current ? current.domain : "this domain"}?`,
      body: "They are dropped from the crawl and will not be fetched. The domain is released, so new "
        + "requests to it are sent again. This cannot be undone.",
      confirm: `Fail ${requests}`, reason: "Why are you giving up? (kept in the history)",
      reasonValue: $("cancel-note").value });
  if (!answer) return; // kept open
  $("cancel-note").value = answer.reason;
  await act($("cancel"), $("action-error"), () =>
    api(`/api/v1/interventions/${id}/cancel`, { method: "POST", json: { note: answer.reason } }));
});

// --- start ------------------------------------------------------------------------------------

async function start() {
  let first;
  try {
    first = await api(`/api/v1/interventions/${id}`);
  } catch (err) {
    say($("i-error"), describeError(err));
    return;
  }
  render(first);
  // Resolved a little while ago: replay from then, so the resumed count starts right.
  let after = page.lastEventId;
  const resolvedAt = first.status === "resolved" ? parseTime(first.resolved_at) : NaN;
  if (!Number.isNaN(resolvedAt) && Date.now() - resolvedAt < REPLAY_WINDOW_MS) {
    const from = `${Math.max(0, resolvedAt - CLOCK_MARGIN_MS)}-0`;
    if (!after || compareIds(from, after) < 0) after = from;
  }
  new Live(after).on(onEvent).start();
}

start();
