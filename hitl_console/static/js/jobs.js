// The Jobs page: start a crawl (project and spider pickers), and the list, kept current by job.* events.
import { $, Live, Pager, ago, api, debounce, describeError, el, link, say } from "./common.js";
import { parseLines, statusCell } from "./jobwords.js";
import { createSchedule, loadSchedules } from "./schedules.js";

const projects = new Map(); // name -> project (with its spiders)
const rows = new Map();

// --- the start form -------------------------------------------------------------------------------

function fillSpiders() {
  const project = projects.get($("start-project").value);
  const spiders = project ? project.spiders : [];
  $("start-spider").replaceChildren(...spiders.map((s) => el("option", { value: s }, s)));
  $("start-submit").disabled = spiders.length === 0;
  if (project && project.spiders_error) say($("start-error"), `scrapy list failed in ${project.path}: ${project.spiders_error}`);
  else say($("start-error"), "");
}

async function loadProjects(keep = "") {
  const data = await api("/api/v1/projects");
  projects.clear();
  for (const p of data.items) projects.set(p.name, p);
  $("no-projects").hidden = projects.size > 0;
  $("start-form").hidden = projects.size === 0;
  $("start-project").replaceChildren(...data.items.map((p) => el("option", { value: p.name }, p.name)));
  if (keep && projects.has(keep)) $("start-project").value = keep;
  fillSpiders();
}

$("start-project").addEventListener("change", fillSpiders);

$("refresh-spiders").addEventListener("click", async () => {
  const name = $("start-project").value;
  if (!name) return;
  $("refresh-spiders").disabled = true;
  try {
    const project = await api(`/api/v1/projects/${encodeURIComponent(name)}/refresh`, { method: "POST" });
    projects.set(project.name, project);
    fillSpiders();
  } catch (err) {
    say($("start-error"), describeError(err));
  } finally {
    $("refresh-spiders").disabled = false;
  }
});

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say($("start-error"), "");
  let body;
  try {
    body = {
      project: $("start-project").value,
      spider: $("start-spider").value,
      args: parseLines($("start-args").value),
      settings: parseLines($("start-settings").value, { json: true }),
      priority: Number($("start-priority").value),
    };
  } catch (err) {
    say($("start-error"), err.message);
    return;
  }
  $("start-submit").disabled = true;
  const cron = $("start-cron").value.trim();
  try {
    if (cron) {
      await createSchedule(body, cron);
      $("start-cron").value = "";
      $("start-submit").disabled = false;
      $("schedules").scrollIntoView();
      return;
    }
    const job = await api("/api/v1/jobs", { method: "POST", json: body });
    location.assign(`/jobs/${job.id}`);
  } catch (err) {
    say($("start-error"), describeError(err));
    $("start-submit").disabled = false;
  }
});

// --- the list -------------------------------------------------------------------------------------

function row(job) {
  return el("tr", { dataset: { jobId: job.id, jobStatus: job.status } },
    el("td", {}, link(`/jobs/${job.id}`, `#${job.id}`)),
    el("td", {}, `${job.project} / ${job.spider}`),
    el("td", { dataset: { field: "status" } }, ...statusCell(job.status)),
    el("td", {}, job.requested_by || "–"),
    el("td", {}, ago(job.queued_at || job.created_at)),
    el("td", {}, job.finished_at ? ago(job.finished_at) : "–"));
}

function show(items, first) {
  if (first) {
    $("jobs-body").replaceChildren();
    rows.clear();
  }
  for (const job of items) {
    const node = row(job);
    rows.set(job.id, node);
    $("jobs-body").append(node);
  }
  $("jobs-empty").hidden = rows.size > 0;
}

function filters() {
  const form = new FormData($("filters"));
  return Object.fromEntries(["status", "project", "spider"].map((k) => [k, String(form.get(k) || "").trim()]));
}

const pager = new Pager("/api/v1/jobs", $("load-more"), show);
const load = () => pager.reset(filters()).catch((err) => say($("jobs-error"), describeError(err)));

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = new URLSearchParams(Object.entries(filters()).filter(([, v]) => v));
  history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
  load();
});

const reload = debounce(load, 300);
new Live().on((ev) => {
  if (!ev.type.startsWith("job.")) return;
  const node = rows.get(ev.payload.job_id);
  if (node && ev.payload.status) {
    node.dataset.jobStatus = ev.payload.status;
    node.querySelector('[data-field="status"]').replaceChildren(...statusCell(ev.payload.status));
  } else {
    reload(); // a new job: the list shows it
  }
}).start();

loadProjects().catch((err) => say($("start-error"), describeError(err)));
load();
loadSchedules();
