// One job: its facts and status (kept current by job.* events), its log (paged, then live over
// /ws/jobs/<id>/log), and cancel, which asks first.
import { $, Live, api, confirmAction, describeError, el, say, toast, when } from "./common.js";
import { FINAL, JOB_STATUS, asLines, setStatusBadge } from "./jobwords.js";

const jobId = Number($("job").dataset.jobId);
const path = `/api/v1/jobs/${jobId}`;
let job = null;
let after = null; // the log's stream id we have read up to
let logSocket = null;

function render(data) {
  job = data;
  setStatusBadge($("job-status"), job.status);
  $("job-status-code").textContent = job.reason && job.reason !== job.status ? `${job.status} · ${job.reason}` : job.status;
  say($("job-why"), job.message || "");
  $("job-next").hidden = job.status !== "waiting_for_human";
  $("j-args").textContent = asLines(job.args);
  $("j-settings").textContent = asLines(job.settings);
  $("j-priority").textContent = job.priority > 0 ? `high (${job.priority})` : job.priority < 0 ? `low (${job.priority})` : "normal (0)";
  $("j-requested-by").textContent = job.requested_by || "–";
  $("j-worker").textContent = job.host ? `${job.host}, pid ${job.pid ?? "?"}${job.exit_code !== null ? `, exit code ${job.exit_code}` : ""}` : "not started yet";
  $("j-attempts").textContent = String(job.attempts);
  $("j-queued").replaceChildren(when(job.queued_at || job.created_at));
  $("j-started").replaceChildren(when(job.started_at));
  $("j-finished").replaceChildren(when(job.finished_at));
  const final = FINAL.includes(job.status);
  $("cancel-job").hidden = final;
  $("cancel-asked").hidden = final || !job.cancel_requested_at;
  $("log-state").textContent = final ? `(the job ${JOB_STATUS[job.status] || job.status})` : $("log-state").textContent;
}

async function load() {
  try {
    render(await api(path));
  } catch (err) {
    say($("j-error"), describeError(err));
  }
}

// --- the log ---------------------------------------------------------------------------------------

const MAX_LINES = 10000; // shown at most: the oldest batches leave the page (the API keeps them)
const batches = []; // line count of each text node in #log, oldest first
let shown = 0;

function append(lines) {
  if (!lines.length) return;
  const pre = $("log");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
  pre.append(lines.join("\n") + "\n");
  batches.push(lines.length);
  shown += lines.length;
  while (shown > MAX_LINES && batches.length > 1) {
    shown -= batches.shift();
    pre.firstChild.remove();
  }
  $("log-empty").hidden = true;
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

async function readLog() {
  for (;;) {
    const page = await api(`${path}/log`, { query: { after, limit: 1000 } });
    append(page.lines);
    after = page.after;
    if (!page.more) return;
  }
}

function follow(delay = 1000) {
  if (job && FINAL.includes(job.status) && logSocket === null) return; // ended before we came
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = after ? `?after=${encodeURIComponent(after)}` : "";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${jobId}/log${query}`);
  logSocket = socket;
  let ended = false;
  socket.addEventListener("open", () => { $("log-state").textContent = "(live)"; delay = 1000; });
  socket.addEventListener("message", (message) => {
    let msg;
    try {
      msg = JSON.parse(message.data);
    } catch {
      return;
    }
    if (msg.type === "log") {
      append(msg.lines || []);
      after = msg.after || after;
    } else if (msg.type === "end") {
      ended = true;
      load();
    }
  });
  socket.addEventListener("close", () => {
    if (ended) return;
    $("log-state").textContent = "(reconnecting)";
    setTimeout(() => follow(Math.min(delay * 2, 15000)), delay);
  });
}
addEventListener("pagehide", () => logSocket && logSocket.close());

// --- cancel -----------------------------------------------------------------------------------------

$("cancel-job").addEventListener("click", async () => {
  const running = job && job.status !== "queued";
  const answer = await confirmAction({
    title: `Cancel job ${jobId}?`,
    body: running
      ? "The crawl gets Scrapy's graceful stop, and is killed if it has not stopped within the grace period. "
        + "Items already delivered stay; to crawl again, start a new job."
      : "It has not started: it leaves the queue and never runs. To crawl later, start a new job.",
    confirm: "Cancel the job",
  });
  if (!answer) return;
  say($("cancel-error"), "");
  try {
    render(await api(`${path}/cancel`, { method: "POST" }));
    toast(job.status === "cancelled" ? `Job ${jobId} cancelled` : `Job ${jobId}: stop requested`);
  } catch (err) {
    say($("cancel-error"), describeError(err));
    load();
  }
});

// --- live status --------------------------------------------------------------------------------------

new Live().on((ev) => {
  if (ev.type.startsWith("job.") && ev.payload.job_id === jobId) load();
}).start();

(async () => {
  await load();
  try {
    await readLog();
  } catch (err) {
    say($("j-error"), describeError(err));
  }
  if (job && !FINAL.includes(job.status)) follow();
})();
